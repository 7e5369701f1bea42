//! The caller and the exim user of Exim's test suite, inside the sandbox.
//!
//! Exim's runtest is run by an ordinary user (the *caller*, `CALLER` in the
//! expected files) and calls a setuid-root copy of Exim whose exim user is
//! another account (`EXIMUSER`); bounces carry `U=EXIMUSER`, `-Mvh` shows
//! the caller's uid, `-f` from the caller is not trusted, and so on. The
//! runner, started as root, does the same without touching the host's
//! accounts:
//!
//! - [`HarnessUsers::choose`] picks two unused uids and gids on the host;
//!   [`HarnessUsers::install`] (inside the sandbox's mount namespace) writes
//!   copies of `/etc/passwd` and `/etc/group` with the two accounts added and
//!   bind-mounts them over the originals, so the sandbox sees them and the
//!   host does not;
//! - [`SuidCopies::make`] copies the oxim binary once per run into a
//!   directory only those two accounts (and root) can enter, owned by root
//!   with mode 04755 (and a second copy setuid and setgid to the exim user,
//!   Exim's `exim_exim`), and patches the copies' harness marker as Exim's
//!   runtest patches its copy of Exim: such a copy keeps root with `-C` and
//!   `-D` as Exim's test binary does. The directory is removed when the run
//!   ends.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};

/// The marker compiled into oxim (see oxim's `harness.rs`); the runner's
/// copies get [`MARKER_ON`] in its place.
pub const MARKER_OFF: &[u8; 32] = b"oxim-harness-binary:no;\0\0\0\0\0\0\0\0\0";
/// The patched marker.
pub const MARKER_ON: &[u8; 32] = b"oxim-harness-binary:yes\0\0\0\0\0\0\0\0\0";

/// Login name of the caller the runner creates.
pub const CALLER_NAME: &str = "oxtester";
/// Login (and group) name of the exim user the runner creates.
pub const EXIM_NAME: &str = "oxexim";

/// One account made for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login and primary group name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory (not created).
    pub home: String,
}

/// The caller and the exim user of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessUsers {
    /// Who runs the script's commands.
    pub caller: Account,
    /// oxim's exim user.
    pub exim: Account,
}

fn ids_in(text: &str, field: usize) -> std::collections::HashSet<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(field)?.parse().ok())
        .collect()
}

fn names_in(text: &str) -> std::collections::HashSet<String> {
    text.lines()
        .filter_map(|l| l.split(':').next())
        .map(str::to_string)
        .collect()
}

impl HarnessUsers {
    /// Two accounts whose names, uids and gids the host's `/etc/passwd` and
    /// `/etc/group` do not use (uids and gids from 61000 up).
    pub fn choose() -> Result<HarnessUsers> {
        Self::choose_from(
            &fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?,
            &fs::read_to_string("/etc/group").context("reading /etc/group")?,
        )
    }

    fn choose_from(passwd: &str, group: &str) -> Result<HarnessUsers> {
        let (uids, gids) = (ids_in(passwd, 2), ids_in(group, 2));
        let (users, groups) = (names_in(passwd), names_in(group));
        for n in [CALLER_NAME, EXIM_NAME] {
            if users.contains(n) || groups.contains(n) {
                bail!("the host already has a user or group {n}: the runner's sandbox accounts would clash");
            }
        }
        let mut free = (61000u32..65000).filter(|i| !uids.contains(i) && !gids.contains(i));
        let mut next = || {
            free.next()
                .ok_or_else(|| anyhow!("no free uid/gid in 61000-65000"))
        };
        let (c, e) = (next()?, next()?);
        Ok(HarnessUsers {
            caller: Account {
                name: CALLER_NAME.into(),
                uid: c,
                gid: c,
                home: format!("/home/{CALLER_NAME}"),
            },
            exim: Account {
                name: EXIM_NAME.into(),
                uid: e,
                gid: e,
                home: "/nonexistent".into(),
            },
        })
    }

    /// The form passed to the sandboxed runner (`name:uid:gid:home,...`).
    pub fn to_arg(&self) -> String {
        [&self.caller, &self.exim]
            .iter()
            .map(|a| format!("{}:{}:{}:{}", a.name, a.uid, a.gid, a.home))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Read [`HarnessUsers::to_arg`]'s form.
    pub fn from_arg(s: &str) -> Result<HarnessUsers> {
        let accounts: Vec<Account> = s
            .split(',')
            .map(|a| {
                let f: Vec<&str> = a.split(':').collect();
                if f.len() != 4 {
                    bail!("bad account {a:?}");
                }
                Ok(Account {
                    name: f[0].to_string(),
                    uid: f[1].parse().context("uid")?,
                    gid: f[2].parse().context("gid")?,
                    home: f[3].to_string(),
                })
            })
            .collect::<Result<_>>()?;
        match <[Account; 2]>::try_from(accounts) {
            Ok([caller, exim]) => Ok(HarnessUsers { caller, exim }),
            Err(_) => bail!("expected two accounts in {s:?}"),
        }
    }

    /// Inside the sandbox: make the accounts exist by bind-mounting copies
    /// of `/etc/passwd` and `/etc/group` (written in `etc_dir`) that have
    /// them added.
    pub fn install(&self, etc_dir: &Path) -> Result<()> {
        let mut passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        let mut group = fs::read_to_string("/etc/group").context("reading /etc/group")?;
        for (text, extra) in [
            (&mut passwd, self.passwd_lines()),
            (&mut group, self.group_lines()),
        ] {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&extra);
        }
        fs::create_dir_all(etc_dir).context("creating the sandbox's etc directory")?;
        for (name, text) in [("passwd", passwd), ("group", group)] {
            let copy = etc_dir.join(name);
            let mut f =
                fs::File::create(&copy).with_context(|| format!("writing {}", copy.display()))?;
            f.write_all(text.as_bytes())?;
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o644))?;
            let dst = format!("/etc/{name}");
            nix::mount::mount(
                Some(copy.as_path()),
                dst.as_str(),
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("bind-mounting {} on {dst}", copy.display()))?;
        }
        self.make_caller_home()
    }

    /// The caller's home directory exists, owned by the caller, as on the
    /// machines Exim's suite runs on (a local delivery for a
    /// `check_local_user` address runs in the user's home). Made on a tmpfs
    /// mounted over its parent inside the sandbox, so the host is untouched.
    fn make_caller_home(&self) -> Result<()> {
        let home = Path::new(&self.caller.home);
        if home.is_dir() {
            return Ok(());
        }
        let parent = home
            .parent()
            .ok_or_else(|| anyhow!("caller home {} has no parent", home.display()))?;
        nix::mount::mount(
            Some("tmpfs"),
            parent,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=0755"),
        )
        .with_context(|| format!("mounting a tmpfs on {}", parent.display()))?;
        fs::create_dir(home).with_context(|| format!("creating {}", home.display()))?;
        nix::unistd::chown(
            home,
            Some(nix::unistd::Uid::from_raw(self.caller.uid)),
            Some(nix::unistd::Gid::from_raw(self.caller.gid)),
        )
        .with_context(|| format!("chown {}", home.display()))?;
        fs::set_permissions(home, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    fn passwd_lines(&self) -> String {
        [
            (&self.caller, "Oxim Tester"),
            (&self.exim, "oxim exim user"),
        ]
        .iter()
        .map(|(a, gecos)| {
            format!(
                "{}:x:{}:{}:{gecos}:{}:/bin/sh\n",
                a.name, a.uid, a.gid, a.home
            )
        })
        .collect()
    }

    /// The caller is a member of the exim group, as Exim's runtest
    /// requires (so it is an admin user).
    fn group_lines(&self) -> String {
        format!(
            "{}:x:{}:\n{}:x:{}:{}\n",
            self.caller.name, self.caller.gid, self.exim.name, self.exim.gid, self.caller.name
        )
    }
}

/// The runner's setuid copies of the oxim binary (see the module comment);
/// removed on drop.
#[derive(Debug)]
pub struct SuidCopies {
    dir: PathBuf,
}

impl SuidCopies {
    /// Copy `oxim` twice into a fresh directory under the temporary
    /// directory: `exim` (root, 04755) and `exim_exim` (the exim user,
    /// 06755), both with the harness marker patched. The directory is
    /// owned by the caller, group the exim user's, mode 0750. `None` when
    /// the binary has no harness marker (not oxim: the runner's own tests
    /// use a fake MTA script), which then runs as before, as root.
    pub fn make(oxim: &Path, users: &HarnessUsers) -> Result<Option<SuidCopies>> {
        let bytes = fs::read(oxim).with_context(|| format!("reading {}", oxim.display()))?;
        let Some(patched) = patch_marker(&bytes) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("oxim-runtest-suid-")
            .tempdir()
            .context("creating the directory for the setuid copies")?
            .keep();
        let copies = SuidCopies { dir };
        let own = |p: &Path, uid: u32, gid: u32| {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .with_context(|| format!("chown {}", p.display()))
        };
        for (name, uid, gid, mode) in [
            ("exim", 0, 0, 0o4755),
            ("exim_exim", users.exim.uid, users.exim.gid, 0o6755),
        ] {
            let p = copies.dir.join(name);
            fs::write(&p, &patched).with_context(|| format!("writing {}", p.display()))?;
            own(&p, uid, gid)?;
            // After chown, which clears the set-id bits.
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        }
        own(&copies.dir, users.caller.uid, users.exim.gid)?;
        fs::set_permissions(&copies.dir, fs::Permissions::from_mode(0o750))?;
        Ok(Some(copies))
    }

    /// The setuid-root copy.
    pub fn exim(&self) -> PathBuf {
        self.dir.join("exim")
    }

    /// The copy setuid to the exim user.
    pub fn exim_exim(&self) -> PathBuf {
        self.dir.join("exim_exim")
    }
}

impl Drop for SuidCopies {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `bytes` with every [`MARKER_OFF`] replaced by [`MARKER_ON`]; `None`
/// when there is none.
pub fn patch_marker(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    let mut found = false;
    let mut i = 0;
    while let Some(pos) = out[i..]
        .windows(MARKER_OFF.len())
        .position(|w| w == MARKER_OFF)
    {
        let at = i + pos;
        out[at..at + MARKER_ON.len()].copy_from_slice(MARKER_ON);
        found = true;
        i = at + MARKER_ON.len();
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_free_ids_and_round_trips() {
        let passwd = "root:x:0:0::/root:/bin/sh\nu:x:61000:61000::/:/bin/sh\n";
        let group = "root:x:0:\ng:x:61001:\n";
        let u = HarnessUsers::choose_from(passwd, group).unwrap();
        assert_eq!((u.caller.uid, u.caller.gid), (61002, 61002));
        assert_eq!((u.exim.uid, u.exim.gid), (61003, 61003));
        assert_eq!(HarnessUsers::from_arg(&u.to_arg()).unwrap(), u);
        assert!(HarnessUsers::choose_from("oxexim:x:5:5::/:/bin/sh\n", "").is_err());
    }

    #[test]
    fn patches_every_marker() {
        let mut b = b"xx".to_vec();
        b.extend_from_slice(MARKER_OFF);
        b.extend_from_slice(b"yy");
        b.extend_from_slice(MARKER_OFF);
        let p = patch_marker(&b).unwrap();
        assert_eq!(p.len(), b.len());
        assert_eq!(&p[2..34], MARKER_ON);
        assert_eq!(&p[36..68], MARKER_ON);
        assert!(patch_marker(b"nothing here").is_none());
    }
}
