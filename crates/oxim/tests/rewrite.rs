//! Address rewriting (issue 14, issue 13 item 5): `begin rewrite` applied
//! at reception (envelope and headers, seen in the log and in the delivered
//! mail), `-brw`, a transport's `headers_rewrite` and `return_path` (what a
//! smarthost receives), and `-t` with a recipient named twice.

mod common;

use common::*;

fn local_conf(rewrite: &str, extra_main: &str) -> String {
    format!(
        r#"
{TEST_MAIN}
{extra_main}
begin routers

local:
  driver = accept
  domains = +local_domains
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory
  return_path_add

begin rewrite
{rewrite}
"#
    )
}

const RULES: &str = r#"
*@old.example          $local_part@new.example
joe@test.ex            "Joe Bloggs <joe.bloggs@test.ex>"  Ffsw
*@*.test.ex            $1@test.ex   T
"#;

#[test]
fn reception_rewrites_envelope_and_headers() {
    let dir = TestDir::new();
    let c = dir.write(
        "conf",
        &local_conf(RULES, "log_selector = +address_rewrite"),
    );
    let c = c.to_str().unwrap();
    dir.run_ok(
        &["-C", c, "-odi", "-f", "joe@test.ex", "user@sub.test.ex"],
        "From: joe\nTo: friend@old.example, user\nCc: Other <x@elsewhere.example>\nSubject: hi\n\nbody\n",
    );
    let log = dir.read("log/mainlog");
    // The envelope: sender (F, only the address part of a `w` result) and
    // recipient (T).
    assert!(log.contains("<= joe.bloggs@test.ex U="), "{log}");
    assert!(
        log.contains("=> user <user@test.ex> R=local T=mbox"),
        "{log}"
    );
    assert!(
        log.contains("\"user@sub.test.ex\" from env-to rewritten as \"user@test.ex\" by rule 3"),
        "{log}"
    );
    let mail = dir.read("mail/user");
    assert!(
        mail.contains("Return-path: <joe.bloggs@test.ex>\n"),
        "{mail}"
    );
    // Headers: the whole From: item replaced (w), an unqualified To:
    // address qualified, an old domain rewritten, phrases kept.
    assert!(
        mail.contains("\nFrom: Joe Bloggs <joe.bloggs@test.ex>\n"),
        "{mail}"
    );
    assert!(
        mail.contains("\nTo: friend@new.example, user@test.ex\n"),
        "{mail}"
    );
    assert!(
        mail.contains("\nCc: Other <x@elsewhere.example>\n"),
        "{mail}"
    );
    // The old versions stay on the spool only: never delivered.
    assert!(!mail.contains("X-rewrote"), "{mail}");
    assert_eq!(mail.matches("\nFrom: ").count(), 1, "{mail}");
}

#[test]
fn brw_shows_each_place() {
    let dir = TestDir::new();
    let c = dir.write("conf", &local_conf(RULES, ""));
    let out = dir.run_ok(&["-C", c.to_str().unwrap(), "-brw", "joe@test.ex"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "  sender: Joe Bloggs <joe.bloggs@test.ex>\n    from: Joe Bloggs <joe.bloggs@test.ex>\n      to: joe@test.ex\n      cc: joe@test.ex\n     bcc: joe@test.ex\nreply-to: joe@test.ex\nenv-from: joe.bloggs@test.ex\n  env-to: joe@test.ex\n"
    );
    let c = dir.write("conf2", &local_conf("", ""));
    let out = dir.run_ok(&["-C", c.to_str().unwrap(), "-brw", "a@b"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No rewrite rules are defined\n"
    );
}

#[test]
fn extracted_recipient_named_twice_is_delivered_once() {
    let dir = TestDir::new();
    let c = dir.write("conf", &local_conf("", ""));
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "-t"],
        "To: user, user@test.ex\nCc: user\nSubject: twice\n\nbody\n",
    );
    let mail = dir.read("mail/user");
    assert_eq!(mail.matches("Subject: twice").count(), 1, "{mail}");
    let log = dir.read("log/mainlog");
    assert_eq!(log.matches("=> user <user@test.ex>").count(), 1, "{log}");
    assert!(log.contains("Completed"), "{log}");
}

fn smarthost_conf(port: u16, transport_extra: &str) -> String {
    format!(
        r#"
{TEST_MAIN}
begin routers

smarthost:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = remote_smtp_smarthost

begin transports

remote_smtp_smarthost:
  driver = smtp
  port = {port}
  command_timeout = 5s
{transport_extra}
"#
    )
}

#[test]
fn smarthost_transport_hides_local_addresses() {
    let fake = FakeSmtp::start(vec![], &[]);
    let dir = TestDir::new();
    // As Debian's satellite transport (its REMOTE_SMTP_HEADERS_REWRITE and
    // REMOTE_SMTP_RETURN_PATH with a readhost).
    let extra = r#"  headers_rewrite = *@+local_domains $1@hidden.example frs : *@myhost.test.ex $1@hidden.example frs
  return_path = ${if match_domain{$sender_address_domain}{+local_domains}{${sender_address_local_part}@hidden.example}fail}"#;
    let c = dir.write("conf", &smarthost_conf(fake.port, extra));
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "-f", "tester@test.ex", "friend@far.example"],
        "From: Tester <tester@test.ex>\nTo: friend@far.example\nCc: other@test.ex\nSubject: hidden\n\nbody\n",
    );
    let got = fake.received();
    let text = got.join("\n");
    assert!(
        got.iter().any(|l| l == "MAIL FROM:<tester@hidden.example>"),
        "{text}"
    );
    let log = dir.read("log/mainlog");
    assert!(log.contains("=> friend@far.example R=smarthost"), "{log}");
}

#[test]
fn transport_rules_may_not_touch_the_envelope() {
    let dir = TestDir::new();
    let c = dir.write(
        "conf",
        &smarthost_conf(25, "  headers_rewrite = *@test.ex x@y.example F"),
    );
    let out = dir.run(&["-C", c.to_str().unwrap(), "-bV"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "rewrite rule specifies a non-header rewrite - not allowed at transport time -"
        ),
        "{err}"
    );
    assert!(err.contains("line "), "{err}");
}

#[test]
fn local_transport_rewrites_headers_it_writes() {
    let dir = TestDir::new();
    let conf = local_conf("", "").replace(
        "  return_path_add\n",
        "  return_path_add\n  headers_rewrite = *@test.ex $local_part@hidden.example f : \
         *@new.example \"$1@x.example\" t\n  return_path = ${if eq{$return_path}{me@test.ex}{bounces@hidden.example}fail}\n",
    );
    let c = dir.write("conf", &conf);
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "-f",
            "me@test.ex",
            "user@test.ex",
        ],
        "From: Me <me@test.ex>\nTo: user@test.ex, a@new.example\nAdded: x\n\nbody\n",
    );
    let mail = dir.read("mail/user");
    assert!(
        mail.contains("Return-path: <bounces@hidden.example>\n"),
        "{mail}"
    );
    assert!(mail.contains("\nFrom: Me <me@hidden.example>\n"), "{mail}");
    assert!(mail.contains("\nTo: user@test.ex, a@x.example\n"), "{mail}");
    // The spool keeps the message as received.
    let log = dir.read("log/mainlog");
    assert!(log.contains("<= me@test.ex U="), "{log}");
}

#[test]
fn redirected_addresses_are_rewritten_unless_no_rewrite() {
    let dir = TestDir::new();
    let conf = local_conf("*@old.test.ex  $local_part@test.ex  T", "").replace(
        "begin routers\n",
        "begin routers\n\nalias:\n  driver = redirect\n  local_parts = alias\n  data = user@old.test.ex\n\nkeep:\n  driver = redirect\n  local_parts = keep\n  no_rewrite\n  data = user@old.test.ex\n\nold:\n  driver = accept\n  domains = old.test.ex\n  transport = mbox\n",
    );
    let c = dir.write("conf", &conf);
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "alias@test.ex",
            "keep@test.ex",
        ],
        "Subject: r\n\nbody\n",
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("=> user <alias@test.ex> R=local T=mbox"),
        "{log}"
    );
    assert!(log.contains("=> user <keep@test.ex> R=old T=mbox"), "{log}");
}
