//! Privilege handling (issue 8, "Privilege"): started as root oxim runs as
//! the exim user, keeps other users out of its spool and logs, refuses file
//! and pipe deliveries as a user on `never_users`, and an oxim installed
//! setuid gives up root for `-C`/`-D` from other callers. Every test here
//! needs root and fails (does not pass silently) without it.

mod common;
#[path = "common/setuid.rs"]
mod setuid;

use common::*;
use setuid::{open_up, Setuid};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn require_root(what: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{what} needs root (it starts oxim as root and checks whom it runs as): run the tests as root"
    );
}

/// The documented default exim user.
/// oxim's default exim user: `Debian-exim` where the system has it (as
/// Debian's build of Exim), else `mail`.
fn mail_ids() -> (u32, u32) {
    let debian = nix::unistd::User::from_name("Debian-exim").expect("passwd lookup");
    let u = debian.unwrap_or_else(|| {
        nix::unistd::User::from_name("mail")
            .expect("passwd lookup")
            .expect("this test needs the system user `mail`, oxim's default exim user")
    });
    (u.uid.as_raw(), u.gid.as_raw())
}

fn default_exim_name() -> &'static str {
    match nix::unistd::User::from_name("Debian-exim") {
        Ok(Some(_)) => "Debian-exim",
        _ => "mail",
    }
}

/// `Uid:`/`Gid:` lines of /proc/<pid>/status: real, effective, saved, fs.
fn proc_ids(pid: i32) -> (Vec<u32>, Vec<u32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("status line")
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    (ids("Uid:"), ids("Gid:"))
}

/// Send one message over SMTP; returns the reply to the final dot.
fn smtp_send(port: u16, from: &str, to: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            reader.read_line(&mut l).expect("read reply");
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    };
    assert!(reply().starts_with("220"));
    for (cmd, code) in [
        ("EHLO client.test.ex".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let r = reply();
        assert!(r.starts_with(code), "{cmd}: {r}");
    }
    w.write_all(b"Subject: privilege\r\n\r\nhello\r\n.\r\n")
        .unwrap();
    let r = reply();
    let _ = w.write_all(b"QUIT\r\n");
    r
}

fn mode_and_owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn daemon_started_as_root_runs_as_the_default_exim_user() {
    require_root("daemon_started_as_root_runs_as_the_default_exim_user");
    let (uid, gid) = mail_ids();
    let dir = TestDir::new();
    open_up(&dir);
    let port = free_port();
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    // No exim_user: the default (mail) applies.
    let conf = |port: u16| {
        format!(
            r#"
local_interfaces = 127.0.0.1
daemon_smtp_ports = {port}
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
log_file_path = DIR/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept

begin acl

accept:
  accept

begin routers

out:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
  port = {}
  allow_localhost
"#,
            fake.port
        )
    };
    let c = dir.write("c.conf", &conf(port));
    let daemon = Daemon::start(&dir, &["-C", c.to_str().unwrap()]);
    let (uids, gids) = proc_ids(daemon.pid());
    assert_eq!(uids, vec![uid; 4], "real/effective/saved/fs uid");
    assert_eq!(gids, vec![gid; 4], "real/effective/saved/fs gid");

    // It still accepts and delivers.
    let r = smtp_send(port, "a@test.ex", "b@remote.test.ex");
    assert!(r.starts_with("250"), "{r}");
    assert!(
        wait_for(Duration::from_secs(10), || dir
            .read("log/mainlog")
            .contains("Completed")),
        "no delivery: {}",
        dir.read("log/mainlog")
    );
    assert!(fake
        .received()
        .iter()
        .any(|l| l == "RCPT TO:<b@remote.test.ex>"));
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(&format!(
            "daemon running as exim user {} (uid={uid} gid={gid})",
            default_exim_name()
        )),
        "{log}"
    );

    // Spool and logs belong to the exim user and keep other users out.
    for d in ["spool", "spool/input", "spool/msglog", "spool/db", "log"] {
        assert_eq!(
            mode_and_owner(&dir.path().join(d)),
            (0o750, uid, gid),
            "directory {d}"
        );
    }
    assert_eq!(
        mode_and_owner(&dir.path().join("log/mainlog")),
        (0o640, uid, gid)
    );

    // SIGHUP re-reads the configuration as the exim user; a new port needs
    // a restart, which the daemon says, and the old one keeps serving.
    let other = free_port();
    dir.write("c.conf", &conf(other));
    daemon.signal(1);
    assert!(
        wait_for(Duration::from_secs(10), || dir
            .read("log/mainlog")
            .contains("restart the daemon")),
        "{}",
        dir.read("log/mainlog")
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("SIGHUP received: re-read configuration"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "listening addresses changed in the configuration; still listening on 127.0.0.1:{port}"
        )),
        "{log}"
    );
    assert!(smtp_send(port, "a@test.ex", "c@remote.test.ex").starts_with("250"));
    assert_eq!(proc_ids(daemon.pid()).0, vec![uid; 4]);
    drop(daemon);
}

fn never_users_conf(extra: &str) -> String {
    format!(
        r#"
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
log_file_path = DIR/log/%slog
exim_user = root
{extra}

begin routers

to_file:
  driver = accept
  local_parts = file
  transport = t_file

to_pipe:
  driver = accept
  local_parts = pipe
  transport = t_pipe

begin transports

t_file:
  driver = appendfile
  file = DIR/mbox

t_pipe:
  driver = pipe
  command = /bin/sh -c "cat > DIR/piped"
"#
    )
}

#[test]
fn file_and_pipe_deliveries_as_root_are_refused_by_default() {
    require_root("file_and_pipe_deliveries_as_root_are_refused_by_default");
    let dir = TestDir::new();
    let c = dir.write("c.conf", &never_users_conf(""));
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "file@test.ex",
            "pipe@test.ex",
        ],
        "Subject: x\n\nbody\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    for t in ["t_file", "t_pipe"] {
        let reason = format!("User 0 set for {t} transport is on the never_users list");
        assert!(
            log.iter()
                .any(|l| l.ends_with(&reason) && !l.contains("==")),
            "{reason} not logged: {log:#?}"
        );
        assert!(
            log.iter()
                .any(|l| l.contains(&format!("T={t} defer (-29): {reason}"))),
            "no deferral: {log:#?}"
        );
        assert!(dir.read("log/paniclog").contains(&reason));
    }
    assert!(!dir.path().join("mbox").exists(), "the mailbox was written");
    assert!(!dir.path().join("piped").exists(), "the pipe ran");

    // The same deliveries with never_users emptied do happen.
    let dir = TestDir::new();
    let c = dir.write("c.conf", &never_users_conf("never_users ="));
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "file@test.ex",
            "pipe@test.ex",
        ],
        "Subject: x\n\nbody\n",
    );
    assert!(
        dir.read("mbox").contains("body"),
        "{}",
        dir.read("log/mainlog")
    );
    assert!(
        dir.read("piped").contains("body"),
        "{}",
        dir.read("log/mainlog")
    );
}

#[test]
fn submission_as_root_leaves_spool_files_to_the_exim_user() {
    require_root("submission_as_root_leaves_spool_files_to_the_exim_user");
    let (uid, gid) = mail_ids();
    let dir = TestDir::new();
    open_up(&dir);
    let c = dir.write(
        "c.conf",
        "primary_hostname = myhost.test.ex\nspool_directory = DIR/spool\n\
         log_file_path = DIR/log/%slog\n",
    );
    dir.run_ok(&["-C", c.to_str().unwrap(), "-odq", "x@test.ex"], "hi\n");
    let input = dir.path().join("spool/input");
    let files: Vec<_> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        let (mode, u, g) = mode_and_owner(&f);
        assert_eq!((u, g), (uid, gid), "{}", f.display());
        assert_eq!(mode & 0o007, 0, "{} readable by others", f.display());
    }
}

#[test]
fn missing_exim_user_is_a_clear_error_as_root() {
    require_root("missing_exim_user_is_a_clear_error_as_root");
    let dir = TestDir::new();
    let c = dir.write(
        "c.conf",
        "spool_directory = DIR/spool\nexim_user = no-such-user-oxim\n",
    );
    let out = dir.run(&["-C", c.to_str().unwrap(), "-odq", "x@test.ex"], "hi\n");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exim_user: user no-such-user-oxim was not found")
            && err.contains("set exim_user"),
        "{err}"
    );
    assert!(!dir.path().join("spool/input").exists());
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn setuid_oxim_drops_root_for_untrusted_dash_c_and_dash_d() {
    require_root("setuid_oxim_drops_root_for_untrusted_dash_c_and_dash_d");
    let s = Setuid::new();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody")
        .uid
        .as_raw();
    let system = s.private_conf("etc/oxim/configure", "/var/spool/system-conf");
    assert!(system.ends_with("etc/oxim/configure"));
    let untrusted = s.private_conf("untrusted.conf", "/var/spool/untrusted");
    let trusted = s.private_conf("trusted.conf", "/var/spool/trusted");
    s.dir.write(
        "etc/oxim/trusted_configs",
        &format!("# trusted\n{trusted}\n"),
    );

    // Without -C or -D: the root-only system configuration is read, so
    // root was kept.
    let o = s.run_as_nobody(&["-bP", "spool_directory"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "spool_directory = /var/spool/system-conf\n"
    );

    // -C with a file that is not trusted: root is given up before the file
    // is read, so a root-only file cannot be read.
    let o = s.run_as_nobody(&["-C", &untrusted, "-d", "-bP", "spool_directory"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("changed uid/gid: -C, -D, -be or -bf forces real uid")
            && err.contains(&format!("uid={nobody} gid="))
            && err.contains(&format!("euid={nobody} egid=")),
        "{}",
        text(&o)
    );
    assert!(err.contains("ermission denied"), "{}", text(&o));
    assert!(o.stdout.is_empty());

    // -D with the system configuration: the same.
    let o = s.run_as_nobody(&["-DX=1", "-d", "-bP", "spool_directory"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("euid={nobody} egid=")),
        "{}",
        text(&o)
    );

    // -C with a file listed in /etc/oxim/trusted_configs keeps root.
    let o = s.run_as_nobody(&["-C", &trusted, "-bP", "spool_directory"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "spool_directory = /var/spool/trusted\n"
    );

    // A trusted list that others can write vouches for nothing.
    let list = s.dir.path().join("etc/oxim/trusted_configs");
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = s.run_as_nobody(&["-C", &trusted, "-bP", "spool_directory"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn exim_user_root_keeps_root_with_one_warning() {
    require_root("exim_user_root_keeps_root_with_one_warning");
    let dir = TestDir::new();
    let port = free_port();
    let c = dir.write(
        "c.conf",
        "exim_user = root\nprimary_hostname = myhost.test.ex\nspool_directory = DIR/spool\n\
         log_file_path = DIR/log/%slog\n",
    );
    let daemon = Daemon::start(
        &dir,
        &[
            "-C",
            c.to_str().unwrap(),
            "-oX",
            &format!("127.0.0.1.{port}"),
        ],
    );
    assert_eq!(proc_ids(daemon.pid()).0, vec![0; 4]);
    assert!(wait_for(Duration::from_secs(5), || dir
        .read("log/mainlog")
        .contains("warning")));
    let log = dir.read("log/mainlog");
    assert_eq!(
        log.matches("warning: daemon running as root (exim_user is root)")
            .count(),
        1,
        "{log}"
    );
}

/// Issue 13 item 6: an ordinary user submits through oxim installed
/// setuid, on a spool that the exim user owns as Debian leaves it
/// (mode 0750); `-f` of an untrusted caller counts only for `<>`, a
/// `From:` that is not theirs gets a `Sender:`, and `mailq` is for admin
/// users only (Exim 4.96's `permission denied`, exit 1).
#[test]
fn ordinary_user_submits_through_setuid_oxim_and_mailq_is_refused() {
    require_root("ordinary_user_submits_through_setuid_oxim_and_mailq_is_refused");
    let s = Setuid::new();
    let (euid, egid) = mail_ids();
    let spool = s.dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    nix::unistd::chown(
        &spool,
        Some(nix::unistd::Uid::from_raw(euid)),
        Some(nix::unistd::Gid::from_raw(egid)),
    )
    .unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o750)).unwrap();
    let conf = s.dir.write(
        "etc/oxim/configure",
        &format!(
            "spool_directory = {}\nqualify_domain = example.org\n",
            spool.display()
        ),
    );
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();

    let o = s.run_as_nobody_with(
        &["-odq", "-t"],
        "To: someone@example.org\nFrom: boss@example.org\nSubject: hi\n\nbody\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = s.run_as_nobody_with(
        &["-odq", "-f", "boss@example.org", "u2@example.org"],
        "Subject: forged\n\nbody\n",
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = s.run_as_nobody_with(
        &["-odq", "-f", "<>", "u3@example.org"],
        "Subject: null\n\nb\n",
    );
    assert!(o.status.success(), "{}", text(&o));

    let log = std::fs::read_to_string(spool.join("log/mainlog")).expect("mainlog");
    let received: Vec<&str> = log.lines().filter(|l| l.contains(" <= ")).collect();
    assert_eq!(received.len(), 3, "{log}");
    assert!(
        received[0].contains("<= nobody@example.org U=nobody P=local"),
        "{log}"
    );
    // -f from an untrusted caller is ignored, except <>.
    assert!(
        received[1].contains("<= nobody@example.org U=nobody P=local"),
        "{log}"
    );
    assert!(received[2].contains("<= <> U=nobody P=local"), "{log}");

    // The spool files are the exim user's; the -H file names the caller.
    let mut with_sender = 0;
    for e in std::fs::read_dir(spool.join("input")).unwrap() {
        let p = e.unwrap().path();
        let (mode, uid, _) = mode_and_owner(&p);
        assert_eq!((mode & 0o777, uid), (0o640, euid), "{}", p.display());
        if p.to_string_lossy().ends_with("-H") {
            let h = std::fs::read_to_string(&p).unwrap();
            // After the file's own name: login, uid, gid of the caller.
            assert!(
                h.lines()
                    .nth(1)
                    .is_some_and(|l| l.starts_with("nobody 65534 ")),
                "{h}"
            );
            if h.contains("Sender: ") {
                with_sender += 1;
                assert!(h.contains("<nobody@example.org>"), "{h}");
            }
        }
    }
    // Only the message whose From: is someone else's gets a Sender:.
    assert_eq!(with_sender, 1);

    let o = s.run_as_nobody_with(&["-bp"], "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("permission denied"),
        "{}",
        text(&o)
    );
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let id = received[0].split_whitespace().nth(2).unwrap();
    let o = s.run_as_nobody_with(&["-Mvh", id], "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Permission denied\n");
}
