//! Callout verification (issue 14): `verify = recipient/callout` and
//! `verify = sender/callout` ask the next hop (a fake SMTP server on
//! loopback) during an `-bs` session; the client sees Exim's replies, the
//! log Exim's lines, and the `callout` hints cache spares a second
//! connection. `control = cutthrough_delivery`, not implemented, is refused
//! rather than ignored.

mod common;

use common::*;

fn conf(port: u16, acl: &str) -> String {
    format!(
        r#"
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
exim_user = root
never_users =
log_file_path = DIR/log/%slog
acl_smtp_rcpt = rcpt_acl
acl_smtp_mail = mail_acl
queue_only

begin acl

mail_acl:
  deny    senders = ^checked@
         !verify = sender/callout
  accept

rcpt_acl:
{acl}

begin routers

remote:
  driver = manualroute
  route_list = * 127.0.0.1::{port}
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
  allow_localhost
  hosts_try_fastopen = :
"#
    )
}

fn session(dir: &TestDir, conf: &str, from: &str, to: &str) -> String {
    let input = format!("HELO client\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nQUIT\r\n");
    let out = dir.run(&["-C", conf, "-bs"], &input);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn recipient_callout_refusal_is_passed_on_and_cached() {
    let fake = FakeSmtp::start(vec![("RCPT TO:<NOBODY@", "550 no such user")], &[]);
    let dir = TestDir::new();
    let c = dir.write(
        "test.conf",
        &conf(fake.port, "  accept  verify = recipient/callout"),
    );
    let c = c.to_str().unwrap();
    let out = session(&dir, c, "a@b.example", "nobody@remote.example");
    assert!(
        out.contains("550-Callout verification failed:\r\n550 550 no such user\r\n"),
        "{out}"
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(
            "rejected RCPT <nobody@remote.example>: 127.0.0.1 [127.0.0.1] : \
             SMTP error from remote mail server after RCPT TO:<nobody@remote.example>: 550 no such user"
        ),
        "{log}"
    );
    assert_eq!(fake.count("MAIL FROM:<>"), 1, "{:?}", fake.received());
    // The refusal is cached: the same question makes no new connection.
    let out = session(&dir, c, "a@b.example", "nobody@remote.example");
    assert!(
        out.contains("550 Previous (cached) callout verification failure"),
        "{out}"
    );
    assert_eq!(fake.connection_count(), 1);
    // An address the server takes is accepted.
    let out = session(&dir, c, "a@b.example", "somebody@remote.example");
    assert!(out.contains("250 Accepted"), "{out}");
    assert_eq!(fake.connection_count(), 2);
}

#[test]
fn sender_callout_refused_null_sender_gets_exims_explanation() {
    let fake = FakeSmtp::start(vec![("MAIL FROM:<>", "550 no bounces here")], &[]);
    let dir = TestDir::new();
    let c = dir.write("test.conf", &conf(fake.port, "  accept"));
    let out = session(
        &dir,
        c.to_str().unwrap(),
        "checked@b.example",
        "x@y.example",
    );
    assert!(
        out.contains("550-Callback setup failed while verifying <checked@b.example>\r\n"),
        "{out}"
    );
    assert!(out.contains("550-Sent:     MAIL FROM:<>\r\n"), "{out}");
    assert!(out.contains("550 Sender verify failed\r\n"), "{out}");
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(
            "sender verify fail for <checked@b.example>: 127.0.0.1 [127.0.0.1] : \
             response to \"MAIL FROM:<>\" was: 550 no bounces here"
        ),
        "{log}"
    );
}

#[test]
fn callout_to_a_closed_port_defers_with_exims_text() {
    let port = free_port();
    let dir = TestDir::new();
    let c = dir.write(
        "test.conf",
        &conf(port, "  accept  verify = recipient/callout=5s"),
    );
    let out = session(&dir, c.to_str().unwrap(), "a@b.example", "x@remote.example");
    assert!(
        out.contains("451 Could not complete recipient verify callout\r\n"),
        "{out}"
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(
            "temporarily rejected RCPT <x@remote.example>: Could not complete recipient verify \
             callout: 127.0.0.1 [127.0.0.1] : Connection refused"
        ),
        "{log}"
    );
}

#[test]
fn cutthrough_delivery_is_refused_not_ignored() {
    // Refused when the configuration is read, with file and line.
    let fake = FakeSmtp::start(vec![], &[]);
    let dir = TestDir::new();
    let c = dir.write(
        "test.conf",
        &conf(fake.port, "  accept  control = cutthrough_delivery"),
    );
    let out = dir.run(&["-C", c.to_str().unwrap(), "-bs"], "quit\r\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Exim configuration error in line"), "{err}");
    assert!(
        err.contains("control \"cutthrough_delivery\" is not supported by oxim"),
        "{err}"
    );
    assert_eq!(fake.connection_count(), 0);
}
