//! Delivery outcomes against a scripted SMTP server (issue "Delivery"):
//! pipelining on the wire, 4xx -> `==` then a queue run delivers, 5xx -> `**`
//! and a bounce in the sender's mailbox.

mod common;

use common::*;

fn conf(port: u16) -> String {
    format!(
        r#"
{TEST_MAIN}
begin routers

local:
  driver = accept
  domains = +local_domains
  transport = mbox

remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory

smtp:
  driver = smtp
  port = {port}
  command_timeout = 5s

begin retry

* * F,1h,1s
"#
    )
}

#[test]
fn pipelined_envelope_is_one_flight() {
    let fake = FakeSmtp::start(vec![], &["SIZE 1000000", "PIPELINING", "HELP"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port));
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "-f",
            "me@test.ex",
            "x@remote.example",
            "y@remote.example",
        ],
        "Subject: s\n\nbody\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter().any(|l| l.contains(
            "=> x@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\""
        )),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains(
            "-> y@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\""
        )),
        "{log:#?}"
    );
    // RCPTs and DATA were on the wire before the reply to MAIL was read.
    let p = fake.pipelined.lock().unwrap().clone();
    assert!(
        p.iter()
            .any(|l| l.starts_with("RCPT TO:<x@remote.example>")),
        "{p:?}"
    );
    assert!(p.iter().any(|l| l.starts_with("DATA")), "{p:?}");
    let got = fake.received();
    assert!(
        got.iter()
            .any(|l| l.starts_with("MAIL FROM:<me@test.ex> SIZE=")),
        "{got:?}"
    );
}

#[test]
fn temporary_error_defers_then_queue_run_delivers_once() {
    let fake = FakeSmtp::start(vec![("RCPT", "451 try later")], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port));
    let c = c.to_str().unwrap();
    dir.run_ok(
        &["-C", c, "-odi", "z@remote.example"],
        "Subject: s\n\nbody\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let d = log
        .iter()
        .find(|l| l.contains(" == "))
        .expect("a defer line");
    assert!(d.contains("z@remote.example R=remote T=smtp defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<z@remote.example>: 451 try later"), "{d}");
    // Still queued; a forced queue run against a server that now accepts
    // delivers it exactly once.
    let ok = FakeSmtp::start(vec![], &["PIPELINING"]);
    let c2 = dir.write("c2.conf", &conf(ok.port));
    dir.run_ok(&["-C", c2.to_str().unwrap(), "-qf"], "");
    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("=> z@remote.example"))
            .count(),
        1,
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.ends_with("Completed")), "{log:#?}");
    assert_eq!(
        ok.received()
            .iter()
            .filter(|l| l.starts_with("DATA"))
            .count(),
        1
    );
    // A second run finds nothing to do.
    dir.run_ok(&["-C", c2.to_str().unwrap(), "-qf"], "");
    assert_eq!(
        ok.received()
            .iter()
            .filter(|l| l.starts_with("DATA"))
            .count(),
        1
    );
}

#[test]
fn permanent_error_fails_and_bounces_to_sender() {
    let fake = FakeSmtp::start(vec![("RCPT", "550 no such user")], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port));
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "-f",
            "sender@test.ex",
            "nobody@remote.example",
        ],
        "Subject: hello\n\nbody text\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let f = log
        .iter()
        .find(|l| l.contains(" ** "))
        .expect("a failure line");
    assert!(f.contains("nobody@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after RCPT TO:<nobody@remote.example>: 550 no such user"), "{f}");
    // The bounce: received with a null sender and R=<original id>, delivered
    // to the sender's mailbox.
    let orig = log
        .iter()
        .find(|l| l.contains(" <= sender@test.ex"))
        .unwrap();
    let orig_id = orig.split_whitespace().next().unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains(&format!(" <= <> R={orig_id} "))),
        "{log:#?}"
    );
    let mbox = dir.read("mail/sender");
    assert!(mbox.starts_with("From MAILER-DAEMON "), "{mbox}");
    assert!(
        mbox.contains("Subject: Mail delivery failed: returning message to sender"),
        "{mbox}"
    );
    // Exim's layout: the host, then the command and the response on lines
    // of their own; the report part repeats the response.
    assert!(mbox.contains("  nobody@remote.example\n    host 127.0.0.1 [127.0.0.1]\n    SMTP error from remote mail server after RCPT TO:<nobody@remote.example>:\n    550 no such user\n"), "{mbox}");
    assert!(mbox.contains("Final-Recipient: rfc822;nobody@remote.example\nStatus: 5.0.0\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 no such user\n"), "{mbox}");
    assert!(
        mbox.contains("Subject: hello") && mbox.contains("body text"),
        "{mbox}"
    );
}

#[test]
fn undeliverable_bounce_is_frozen_and_only_forced_runs_touch_it() {
    // The bounce goes to a sender whose server refuses everything.
    let fake = FakeSmtp::start(vec![("RCPT", "550 no")], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port));
    let c = c.to_str().unwrap();
    dir.run_ok(
        &[
            "-C",
            c,
            "-odi",
            "-f",
            "gone@remote.example",
            "nobody@remote.example",
        ],
        "Subject: s\n\nbody\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let bounce = log
        .iter()
        .find(|l| l.contains(" <= <> R="))
        .expect("a bounce");
    let bid = bounce.split_whitespace().next().unwrap().to_string();
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("{bid} ** gone@remote.example"))),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == &format!("{bid} Frozen (delivery error message)")),
        "{log:#?}"
    );
    // Still on the queue, frozen: a plain forced run leaves it alone...
    let before = fake.received().len();
    assert!(dir.run(&["-C", c, "-qf"], "").status.success());
    assert_eq!(fake.received().len(), before, "frozen message was tried");
    let listing = String::from_utf8_lossy(&dir.run(&["-C", c, "-bp"], "").stdout).to_string();
    assert!(listing.contains(&bid), "{listing}");
    // ...-M thaws and tries it.
    assert!(dir.run(&["-C", c, "-M", &bid], "").status.success());
    assert!(
        fake.received().len() > before,
        "-M did not try the frozen message"
    );
}

/// A mailbox path that names a device or FIFO is never written, locked or
/// chmod'ed: `/dev/null` succeeds without writing (as in Exim), anything
/// else that is not a regular file defers with Exim's message. (A delivery
/// once chmod'ed the machine's /dev/null to the transport's mode.)
#[test]
fn mailbox_that_is_not_a_regular_file_is_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    dir.write(
        "conf",
        &format!(
            r#"
{TEST_MAIN}
begin routers

null:
  driver = accept
  local_parts = null
  transport = devnull

fifo:
  driver = accept
  local_parts = fifo
  transport = fifo

begin transports

devnull:
  driver = appendfile
  file = /dev/null
  mode = 0600

fifo:
  driver = appendfile
  file = DIR/fifo
  mode = 0600
"#
        ),
    );
    let null_mode =
        |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let before = null_mode(std::path::Path::new("/dev/null"));
    let conf = dir.path().join("conf");
    let conf = conf.to_str().unwrap();
    dir.run(
        &["-C", conf, "-odi", "null@test.ex", "fifo@test.ex"],
        "Subject: x\n\nbody\n",
    );
    assert_eq!(
        null_mode(std::path::Path::new("/dev/null")),
        before,
        "/dev/null's mode changed"
    );
    assert_eq!(null_mode(&fifo), 0o644, "the FIFO's mode changed");
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("=> null <null@test.ex> R=null T=devnull"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "== fifo@test.ex R=fifo T=fifo defer (-1): mailbox {} is not a regular file",
            fifo.display()
        )),
        "{log}"
    );
}
