//! Exim's hints utilities and Debian's command names on the real binary:
//! a deferred delivery leaves a retry record that `exim_dumpdb` lists in
//! Exim's format, `exim_fixdb` ages it, `exim_tidydb` removes it; the
//! binary called as `mailq`, `runq` and `newaliases` does what Exim does.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn conf(port: u16) -> String {
    format!(
        r#"
{TEST_MAIN}
begin routers

remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
  port = {port}
  hosts_try_fastopen = :

begin retry

* * F,1h,10m
"#
    )
}

/// The oxim binary under another name (a symlink in the test directory).
fn named(dir: &TestDir, name: &str) -> PathBuf {
    let link = dir.path().join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(oxim_bin(), &link).expect("symlink");
    }
    link
}

fn run_named(dir: &TestDir, name: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(named(dir, name))
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `dd-Mon-yyyy hh:mm:ss`
fn is_dump_time(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20 && b[2] == b'-' && b[6] == b'-' && b[11] == b' ' && b[14] == b':'
}

#[test]
fn dump_fix_and_tidy_a_retry_record() {
    let dir = TestDir::new();
    // Nothing listens on this port: the delivery is deferred.
    let port = free_port();
    let c = dir.write("c.conf", &conf(port));
    let c = c.to_str().unwrap();
    dir.run_ok(
        &["-C", c, "-odi", "x@remote.example"],
        "Subject: s\n\nbody\n",
    );
    let spool = dir.path().join("spool").display().to_string();

    let out = run_named(&dir, "exim_dumpdb", &[&spool, "retry"], "");
    assert!(out.status.success(), "{}", text(&out));
    let dump = text(&out);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 2, "{dump}");
    // "  KEY 111 MORE Connection refused", then first/last/next times.
    let mut first = lines[0].split_whitespace();
    let key = first.next().unwrap().to_string();
    assert!(lines[0].starts_with("  "), "{dump}");
    assert_eq!(first.next(), Some("111"), "{dump}");
    assert!(lines[0].ends_with("Connection refused"), "{dump}");
    let times: Vec<&str> = lines[1].split("  ").collect();
    assert_eq!(times.len(), 3, "{dump}");
    assert!(times.iter().all(|t| is_dump_time(t.trim_end())), "{dump}");

    // -k: the keys only.
    let out = run_named(&dir, "exim_dumpdb", &["-k", &spool, "retry"], "");
    assert_eq!(text(&out), format!("  {key}\n"));

    // A fresh record survives a tidy with a week's limit.
    let out = run_named(&dir, "exim_tidydb", &["-t", "7d", &spool, "retry"], "");
    assert!(out.status.success());
    assert_eq!(
        text(&out),
        format!("Tidying Exim hints database {spool}/db/retry\nTidying complete\n")
    );

    // Make it old (last try on 1 Jan 2001, 00:00) with exim_fixdb...
    let out = run_named(
        &dir,
        "exim_fixdb",
        &[&spool, "retry"],
        &format!("{key} 3 0101010000\nq\n"),
    );
    let fixed = text(&out);
    assert!(
        fixed.contains("3 last try:     01-Jan-2001 00:00:00\n"),
        "{fixed}"
    );

    // ... and the tidy removes it, leaving an empty database.
    let out = run_named(&dir, "exim_tidydb", &["-t", "7d", &spool, "retry"], "");
    assert_eq!(
        text(&out),
        format!(
            "Tidying Exim hints database {spool}/db/retry\n\
             deleted {key} (too old)\nTidying complete\n"
        )
    );
    let out = run_named(&dir, "exim_dumpdb", &[&spool, "retry"], "");
    assert!(out.status.success());
    assert_eq!(text(&out), "");

    // A database oxim does not keep cannot be opened; a bad name is a usage error.
    let out = run_named(&dir, "exim_dumpdb", &[&spool, "wait-smtp"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out),
        format!("** Failed to open hintsdb {spool}/db/wait-smtp: No such file or directory\n")
    );
    let out = run_named(&dir, "exim_dumpdb", &[&spool, "bogus"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).starts_with("Usage: exim_dumpdb"));
}

#[test]
fn debian_command_names() {
    let dir = TestDir::new();
    let port = free_port();
    let c = dir.write("c.conf", &conf(port));
    let c = c.to_str().unwrap();
    dir.run_ok(
        &["-C", c, "-odq", "x@remote.example"],
        "Subject: s\n\nbody\n",
    );

    // mailq is -bp: the message is listed (not taken as a recipient).
    let out = run_named(&dir, "mailq", &["-C", c], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = text(&out);
    assert!(listing.contains("x@remote.example"), "{listing}");
    let id = listing.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(text(&dir.run_ok(&["-C", c, "-bp"], "")), listing);

    // runq is -q: one queue run, which tries the message (and defers it).
    let out = run_named(&dir, "runq", &["-C", c], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.contains("== x@remote.example")),
        "{log}"
    );

    // newaliases is -bi: without bi_command there is nothing to do.
    let out = run_named(&dir, "newaliases", &["-C", c], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text(&out), "");

    // With bi_command, that program runs (here it leaves a mark).
    let mark = dir.path().join("ran");
    let script = dir.write("bi.sh", &format!("#!/bin/sh\ntouch {}\n", mark.display()));
    set_exec(&script);
    let c2 = dir.write(
        "c2.conf",
        &format!("bi_command = {}\n{}", script.display(), conf(port)),
    );
    let out = run_named(&dir, "newaliases", &["-C", c2.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(mark.exists());
}

fn set_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}
