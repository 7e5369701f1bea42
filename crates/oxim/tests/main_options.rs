//! Main options that act on messages as Exim's do (issue 14): the non-SMTP
//! ACL (`acl_not_smtp`), `queue_only_override`, `received_headers_max`.
//! Each test checks what a user sees: the log lines, the exit status, the
//! mail that arrives.

mod common;

use common::*;

fn conf(main: &str, acls: &str) -> String {
    format!(
        r#"
{TEST_MAIN}
trusted_users = root
{main}

begin acl
{acls}

begin routers

local:
  driver = accept
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory
"#
    )
}

fn submit(dir: &TestDir, c: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut all = vec!["-C", c.to_str().unwrap()];
    all.extend_from_slice(args);
    dir.run(&all, stdin)
}

const NOT_SMTP: &str = r#"
not_smtp:
  deny    senders = bad@test.ex
          message = don't like sender $sender_address
  discard senders = drop@test.ex
          log_message = into the void
  deny    senders = host@test.ex
          hosts = 1.2.3.4
  warn    senders = queue@test.ex
          control = queue_only
  accept  add_header = X-Recipients: $recipients_count $recipients
"#;

#[test]
fn acl_not_smtp_accepts_and_adds_headers() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("acl_not_smtp = not_smtp", NOT_SMTP));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "ok@test.ex", "u1@test.ex", "u2@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mail = dir.read("mail/u1");
    assert!(
        mail.contains("X-Recipients: 2 u1@test.ex, u2@test.ex\n"),
        "{mail}"
    );
}

#[test]
fn acl_not_smtp_refusal_is_logged_and_mailed_to_the_sender() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("acl_not_smtp = not_smtp", NOT_SMTP));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "bad@test.ex", "u1@test.ex"],
        "Subject: s\n\nthe body\n",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter().any(|l| l
            .ends_with("F=<bad@test.ex> rejected by non-SMTP ACL: don't like sender bad@test.ex")),
        "{log:#?}"
    );
    let reject = dir.read("log/rejectlog");
    assert!(
        reject.contains("Envelope-from: <bad@test.ex>\nEnvelope-to: <u1@test.ex>\n"),
        "{reject}"
    );
    // Nothing for the recipient; the sender is told, with the message.
    assert_eq!(dir.read("mail/u1"), "");
    let bounce = dir.read("mail/bad");
    assert!(
        bounce.contains("Subject: Mail failure - rejected by local scanning code\n"),
        "{bounce}"
    );
    assert!(
        bounce.contains("The following error was given:\n\n  don't like sender bad@test.ex\n"),
        "{bounce}"
    );
    assert!(
        bounce
            .contains("------ This is a copy of your message, including all the headers. ------\n"),
        "{bounce}"
    );
    assert!(bounce.contains("the body\n"), "{bounce}");
    // The report is its own message, referring to the refused one.
    assert!(log.iter().any(|l| l.contains("<= <> R=")), "{log:#?}");
}

#[test]
fn acl_not_smtp_refusal_goes_to_stderr_with_oep() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("acl_not_smtp = not_smtp", NOT_SMTP));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-oep", "-f", "bad@test.ex", "u1@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("message rejected by non-SMTP ACL: don't like sender bad@test.ex"),
        "{err}"
    );
    assert_eq!(dir.read("mail/bad"), "");
}

#[test]
fn acl_not_smtp_cannot_test_the_client() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("acl_not_smtp = not_smtp", NOT_SMTP));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "host@test.ex", "u1@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("F=<host@test.ex> rejected by non-SMTP ACL: cannot test hosts condition in non-SMTP ACL"),
        "{log}"
    );
    // No message text from the ACL: Exim's words for the sender.
    let bounce = dir.read("mail/host");
    assert!(
        bounce.contains("\n  local configuration problem\n"),
        "{bounce}"
    );
}

#[test]
fn acl_not_smtp_discard_and_queue_only() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("acl_not_smtp = not_smtp", NOT_SMTP));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "drop@test.ex", "u1@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.ends_with("=> blackhole (non-SMTP ACL discarded recipients): into the void")),
        "{log:#?}"
    );
    assert_eq!(dir.read("mail/u1"), "");

    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "queue@test.ex", "u1@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert!(out.status.success());
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.ends_with("no immediate delivery: queued by ACL")),
        "{log:#?}"
    );
    assert_eq!(dir.read("mail/u1"), "");
    let listed = submit(&dir, &c, &["-bpc"], "");
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "1");
}

#[test]
fn queue_only_override_off_keeps_odi_messages_queued() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("queue_only\nno_queue_only_override", ""));
    let out = submit(&dir, &c, &["-odi", "u1@test.ex"], "Subject: s\n\nbody\n");
    assert!(out.status.success());
    assert_eq!(dir.read("mail/u1"), "");
    let c2 = dir.write("c2.conf", &conf("queue_only", ""));
    let out = submit(&dir, &c2, &["-odi", "u2@test.ex"], "Subject: s\n\nbody\n");
    assert!(out.status.success());
    assert!(dir.read("mail/u2").contains("body"));
}

#[test]
fn received_headers_max_fails_a_looping_message() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("received_headers_max = 2", ""));
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "me@test.ex", "u1@test.ex"],
        "Received: from a\nReceived: from b\n\nbody\n",
    );
    assert!(out.status.success());
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l
                .ends_with("** u1@test.ex : Too many \"Received\" headers - suspected mail loop")),
        "{log:#?}"
    );
    assert_eq!(dir.read("mail/u1"), "");
    assert!(dir
        .read("mail/me")
        .contains("Too many \"Received\" headers"));
}

#[test]
fn hosts_treat_as_local_makes_a_named_host_this_host() {
    let dir = TestDir::new();
    let conf = |extra: &str| {
        format!(
            "{TEST_MAIN}\n{extra}\nbegin routers\nr:\n  driver = manualroute\n  \
             route_list = * 192.0.2.1\n  self = fail\n  transport = smtp\n\
             begin transports\nsmtp:\n  driver = smtp\n"
        )
    };
    let c = dir.write("c.conf", &conf("hosts_treat_as_local = 192.0.2.1"));
    let out = submit(&dir, &c, &["-bt", "a@remote.example"], "");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a@remote.example is undeliverable: remote host address is the local host"),
        "{text}"
    );
    let c = dir.write("c2.conf", &conf(""));
    let out = submit(&dir, &c, &["-bt", "a@remote.example"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("host 192.0.2.1 [192.0.2.1]"));
}

#[test]
fn received_count_is_seen_by_acls_and_routers() {
    let dir = TestDir::new();
    let main = "acl_not_smtp = count";
    let acls = "count:\n  accept add_header = X-ACL: $received_count\n";
    let text = conf(main, acls).replace(
        "  transport = mbox\n",
        "  transport = mbox\n  headers_add = X-Router: $received_count\n",
    );
    let c = dir.write("c.conf", &text);
    let out = submit(
        &dir,
        &c,
        &["-odi", "u1@test.ex"],
        "Received: one\nReceived: two\n\nbody\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mail = dir.read("mail/u1");
    assert!(mail.contains("X-ACL: 3\n"), "{mail}");
    assert!(mail.contains("X-Router: 3\n"), "{mail}");
}

#[test]
fn smtp_return_error_details_says_why_after_data() {
    let dir = TestDir::new();
    let session = "helo test\r\nmail from:<>\r\nrcpt to:<u1@test.ex>\r\ndata\r\nFrom: <bad@syntax\r\n\r\nbody\r\n.\r\nquit\r\n";
    let acls = "data:\n  require verify = header_syntax\n  accept\n";
    let plain = dir.write("c.conf", &conf("acl_smtp_data = data", acls));
    let out = submit(&dir, &plain, &["-bs"], session);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\r\n550 Administrative prohibition\r\n"),
        "{text}"
    );
    let detailed = dir.write(
        "d.conf",
        &conf("acl_smtp_data = data\nsmtp_return_error_details", acls),
    );
    let out = submit(&dir, &detailed, &["-bs"], session);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\r\n550 Rejected after DATA: ")
            && text.contains("failing address in \"From:\" header is: <bad@syntax"),
        "{text}"
    );
}

#[test]
fn acl_smtp_quit_logs_and_sets_the_221_text() {
    let dir = TestDir::new();
    let acls = "quit:\n  warn logwrite = mails: $acl_c1\n  accept message = Bye now\n\
                mail:\n  warn set acl_c1 = ${eval:0$acl_c1+1}\n  accept\n\
                bad:\n  deny message = Go away\n";
    let c = dir.write(
        "c.conf",
        &conf(
            "acl_smtp_quit = quit\nacl_smtp_mail = mail\nacl_smtp_rcpt = accept",
            acls,
        ),
    );
    let session = "helo x\r\nmail from:<a@test.ex>\r\nrset\r\nmail from:<b@test.ex>\r\nquit\r\n";
    let out = submit(&dir, &c, &["-bs"], session);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("221 Bye now\r\n"), "{text}");
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(log.iter().any(|l| l.ends_with("mails: 2")), "{log:#?}");
    // A QUIT ACL that refuses is a configuration error; QUIT still works.
    let c = dir.write("d.conf", &conf("acl_smtp_quit = bad", acls));
    let out = submit(&dir, &c, &["-bs"], "quit\r\n");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("221 Go away\r\n"));
    let panic = dir.read("log/paniclog");
    assert!(
        panic.contains("ACL for QUIT returned ERROR: QUIT or not-QUIT toplevel ACL may not fail ('deny' verb used incorrectly)"),
        "{panic}"
    );
}

#[test]
fn queue_domains_are_left_for_the_queue_run() {
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf("queue_domains = later.example", ""));
    let out = submit(
        &dir,
        &c,
        &["-odi", "u1@later.example", "u2@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert!(out.status.success());
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l
                .ends_with("== u1@later.example routing defer (-56): domain is in queue_domains")),
        "{log:#?}"
    );
    assert!(dir.read("mail/u2").contains("body"));
    assert_eq!(dir.read("mail/u1"), "");
    let out = submit(&dir, &c, &["-q"], "");
    assert!(out.status.success());
    assert!(dir.read("mail/u1").contains("body"));
}

#[test]
fn errors_copy_sends_the_bounce_to_more_addresses() {
    let dir = TestDir::new();
    let main = "errors_copy = *@test.ex postmaster@test.ex,copy-$local_part@test.ex";
    let text = conf(main, "").replace(
        "  transport = mbox\n",
        "  transport = mbox\n  local_parts = !nobody\n",
    );
    let c = dir.write("c.conf", &text);
    let out = submit(
        &dir,
        &c,
        &["-odi", "-f", "me@test.ex", "nobody@test.ex"],
        "Subject: s\n\nbody\n",
    );
    assert!(out.status.success());
    for who in ["me", "postmaster", "copy-me"] {
        let mbox = dir.read(&format!("mail/{who}"));
        assert!(mbox.contains("Mail delivery failed"), "{who}: {mbox}");
        // The copies are blind: the bounce is to the sender.
        assert!(mbox.contains("\nTo: me@test.ex\n"), "{who}: {mbox}");
    }
}

#[test]
fn return_path_remove_drops_the_header_a_message_arrives_with() {
    let dir = TestDir::new();
    let input =
        "Return-path: <forged@example.org>\nEnvelope-to: x@example.org\nSubject: s\n\nbody\n";
    let c = dir.write("c.conf", &conf("", ""));
    submit(&dir, &c, &["-odi", "-f", "me@test.ex", "u1@test.ex"], input);
    let mbox = dir.read("mail/u1");
    assert!(!mbox.contains("forged@example.org"), "{mbox}");
    assert!(!mbox.contains("x@example.org"), "{mbox}");
    let c = dir.write("d.conf", &conf("no_return_path_remove", ""));
    submit(&dir, &c, &["-odi", "-f", "me@test.ex", "u2@test.ex"], input);
    let mbox = dir.read("mail/u2");
    assert!(mbox.contains("Return-path: <forged@example.org>"), "{mbox}");
}
