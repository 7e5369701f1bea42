//! Token substitution applied to configurations, command lines and data
//! (RUNTEST-NOTES section 2).

use std::path::Path;

use regex::{Captures, Regex};

/// Standard port numbers of Exim's harness.
pub const PORT_N: u16 = 1223;
/// Port used by scripted `server` commands.
pub const PORT_S: u16 = 1224;
/// Port of the MTA daemon.
pub const PORT_D: u16 = 1225;

/// Names of the harness ports, with their numbers (`PORT_D2..4` follow `PORT_D`).
pub const PORTS: &[(&str, u16)] = &[
    ("PORT_N", PORT_N),
    ("PORT_S", PORT_S),
    ("PORT_D", PORT_D),
    ("PORT_D2", 1226),
    ("PORT_D3", 1227),
    ("PORT_D4", 1228),
];

/// `PORT_DYNAMIC`: Exim's runtest takes the first free port from 1024 up
/// on 127.0.0.1, which in the sandbox's fresh network namespace is 1024.
pub const PORT_DYNAMIC: u16 = 1024;

/// The values tokens are replaced with, for one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Absolute test (work) directory, without trailing slash.
    pub dir: String,
    /// Login name of the caller.
    pub caller: String,
    /// Caller uid.
    pub caller_uid: u32,
    /// Caller gid.
    pub caller_gid: u32,
    /// Caller's primary group name.
    pub caller_group: String,
    /// Caller home directory.
    pub caller_home: String,
    /// Value for `EXIMUSER`.
    pub exim_user: String,
    /// Value for `EXIMGROUP`.
    pub exim_group: String,
    /// Dotted host name of the sandbox.
    pub hostname: String,
    /// The sandbox's IPv4 address.
    pub host_ipv4: String,
    /// The sandbox's IPv6 address, if any.
    pub host_ipv6: Option<String>,
    /// Test number (four digits).
    pub testnum: String,
}

impl Params {
    /// The caller's identity from the running process, other fields as given.
    pub fn for_current_user(
        dir: &Path,
        hostname: &str,
        host_ipv4: &str,
        host_ipv6: Option<&str>,
        testnum: &str,
    ) -> Params {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let user = nix::unistd::User::from_uid(uid).ok().flatten();
        let mut p = Params::for_user(user.as_ref(), uid.as_raw(), gid.as_raw());
        p.fill(dir, hostname, host_ipv4, host_ipv6, testnum);
        p
    }

    /// The identity of a named user (`--caller`), other fields as given.
    /// `None` when the user does not exist.
    pub fn for_named_user(
        name: &str,
        dir: &Path,
        hostname: &str,
        host_ipv4: &str,
        host_ipv6: Option<&str>,
        testnum: &str,
    ) -> Option<Params> {
        let user = nix::unistd::User::from_name(name).ok().flatten()?;
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        let mut p = Params::for_user(Some(&user), uid, gid);
        p.fill(dir, hostname, host_ipv4, host_ipv6, testnum);
        Some(p)
    }

    /// The sandbox's own caller and exim user (see [`crate::users`]).
    pub fn for_sandbox_users(
        users: &crate::users::HarnessUsers,
        dir: &Path,
        hostname: &str,
        host_ipv4: &str,
        host_ipv6: Option<&str>,
        testnum: &str,
    ) -> Params {
        let (c, e) = (&users.caller, &users.exim);
        let mut p = Params {
            dir: String::new(),
            caller: c.name.clone(),
            caller_uid: c.uid,
            caller_gid: c.gid,
            caller_group: c.name.clone(),
            caller_home: c.home.clone(),
            exim_user: e.name.clone(),
            exim_group: e.name.clone(),
            hostname: String::new(),
            host_ipv4: String::new(),
            host_ipv6: None,
            testnum: String::new(),
        };
        p.fill(dir, hostname, host_ipv4, host_ipv6, testnum);
        p
    }

    fn for_user(user: Option<&nix::unistd::User>, uid: u32, gid: u32) -> Params {
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten();
        let caller = user
            .map(|u| u.name.clone())
            .unwrap_or_else(|| uid.to_string());
        let caller_home = user
            .map(|u| u.dir.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_string());
        let caller_group = group.map(|g| g.name).unwrap_or_else(|| gid.to_string());
        Params {
            dir: String::new(),
            exim_user: caller.clone(),
            exim_group: caller_group.clone(),
            caller,
            caller_uid: uid,
            caller_gid: gid,
            caller_group,
            caller_home,
            hostname: String::new(),
            host_ipv4: String::new(),
            host_ipv6: None,
            testnum: String::new(),
        }
    }

    fn fill(
        &mut self,
        dir: &Path,
        hostname: &str,
        host_ipv4: &str,
        host_ipv6: Option<&str>,
        testnum: &str,
    ) {
        self.dir = dir.to_string_lossy().trim_end_matches('/').to_string();
        self.hostname = hostname.to_string();
        self.host_ipv4 = host_ipv4.to_string();
        self.host_ipv6 = host_ipv6.map(str::to_string);
        self.testnum = testnum.to_string();
    }
}

/// Performs the word-bounded substitutions of Exim's harness.
#[derive(Debug, Clone)]
pub struct Substituter {
    params: Params,
    words: Regex,
    dir: Regex,
}

impl Substituter {
    /// Build a substituter for one test.
    pub fn new(params: Params) -> Substituter {
        // Longest alternatives first is not needed: \b on both sides makes
        // `PORT_D` unable to match inside `PORT_D2` or `CALLER` inside `CALLER_NAME`.
        let words = Regex::new(
            r"\b(CALLER_UID|CALLER_GID|CALLERGROUP|CALLER|EXIMUSER|EXIMGROUP|HOSTNAME|HOSTIPV4|HOSTIPV6|PORT_N|PORT_S|PORT_D2|PORT_D3|PORT_D4|PORT_DYNAMIC|PORT_D|V4NET|V6NET|TESTNUM)\b",
        )
        .expect("static regex");
        let dir = Regex::new(r"\bDIR/").expect("static regex");
        Substituter { params, words, dir }
    }

    /// The parameters in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Substitute one piece of text (any number of lines).
    pub fn apply(&self, text: &str) -> String {
        let p = &self.params;
        let dir_slash = format!("{}/", p.dir);
        let text = self.dir.replace_all(text, regex::NoExpand(&dir_slash));
        self.words
            .replace_all(&text, |c: &Captures<'_>| {
                let tok = &c[1];
                match tok {
                    "CALLER" => p.caller.clone(),
                    "CALLER_UID" => p.caller_uid.to_string(),
                    "CALLER_GID" => p.caller_gid.to_string(),
                    "CALLERGROUP" => p.caller_group.clone(),
                    "EXIMUSER" => p.exim_user.clone(),
                    "EXIMGROUP" => p.exim_group.clone(),
                    "HOSTNAME" => p.hostname.clone(),
                    "HOSTIPV4" => p.host_ipv4.clone(),
                    "HOSTIPV6" => p.host_ipv6.clone().unwrap_or_else(|| tok.to_string()),
                    "V4NET" => "224".to_string(),
                    "V6NET" => "ff00".to_string(),
                    "TESTNUM" => p.testnum.clone(),
                    "PORT_DYNAMIC" => PORT_DYNAMIC.to_string(),
                    port => PORTS
                        .iter()
                        .find(|(name, _)| *name == port)
                        .map(|(_, n)| n.to_string())
                        .unwrap_or_else(|| port.to_string()),
                }
            })
            .into_owned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn params() -> Params {
        Params {
            dir: "/tmp/work".into(),
            caller: "joe".into(),
            caller_uid: 1000,
            caller_gid: 100,
            caller_group: "users".into(),
            caller_home: "/home/joe".into(),
            exim_user: "joe".into(),
            exim_group: "users".into(),
            hostname: "testhost.oxim.example".into(),
            host_ipv4: "198.18.0.1".into(),
            host_ipv6: Some("2001:2::1".into()),
            testnum: "1990".into(),
        }
    }

    #[test]
    fn substitutes_word_bounded_tokens() {
        let s = Substituter::new(params());
        assert_eq!(
            s.apply("port = PORT_D\nhosts = HOSTIPV4 : PORT_D2"),
            "port = 1225\nhosts = 198.18.0.1 : 1226"
        );
        assert_eq!(
            s.apply("rcpt to:CALLER@HOSTNAME"),
            "rcpt to:joe@testhost.oxim.example"
        );
        assert_eq!(s.apply("uid CALLER_UID gid CALLER_GID"), "uid 1000 gid 100");
        assert_eq!(s.apply("test TESTNUM V4NET.0.0.1"), "test 1990 224.0.0.1");
    }

    #[test]
    fn named_user_identity() {
        let p = Params::for_named_user(
            "root",
            Path::new("/w/"),
            "h.example",
            "198.18.0.1",
            None,
            "0001",
        )
        .expect("root exists");
        assert_eq!((p.caller.as_str(), p.caller_uid), ("root", 0));
        assert_eq!(p.dir, "/w");
        assert_eq!(Substituter::new(p).apply("CALLER_UID DIR/x"), "0 /w/x");
        assert!(Params::for_named_user(
            "no-such-user-oxim",
            Path::new("/w"),
            "h",
            "1.2.3.4",
            None,
            "1"
        )
        .is_none());
    }

    #[test]
    fn leaves_macros_and_partial_words_alone() {
        let s = Substituter::new(params());
        for keep in [
            "gecos_name = CALLER_NAME",
            "exim_path = EXIM_PATH",
            "log_file_path = DIR/spool/log/SERVER%slog",
            "XCALLER PORT_DX MYHOSTNAME",
            "DIR without slash",
        ] {
            let out = s.apply(keep);
            assert!(!out.contains("joe"), "{keep} -> {out}");
            assert!(!out.contains("1225"), "{keep} -> {out}");
        }
        assert_eq!(
            s.apply("log_file_path = DIR/spool/log/SERVER%slog"),
            "log_file_path = /tmp/work/spool/log/SERVER%slog"
        );
        assert_eq!(
            s.apply(".include DIR/aux-var/x"),
            ".include /tmp/work/aux-var/x"
        );
    }
}
