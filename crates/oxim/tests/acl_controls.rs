//! The ACL `control =` and `remove_header` modifiers, seen as a user sees
//! them: the replies, the log lines, what is left on the queue and what is
//! delivered; and the controls oxim does not implement refused when the
//! configuration is read.

mod common;

use common::*;

const CONF: &str = r#"
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
exim_user = root
never_users =
log_file_path = DIR/log/%slog
acl_smtp_rcpt = rcpt_acl
acl_smtp_data = data_acl

begin acl

rcpt_acl:
  accept  local_parts = freeze
          control = freeze
  accept  local_parts = queue
          control = queue_only
  accept  local_parts = fake
          control = fakereject
  accept  local_parts = fakedefer
          control = fakedefer/This is a rather long customised message that should get automatically split up into more than one response line.
  accept  local_parts = strip
          remove_header = x-secret : ^(?i)x-other-
  warn    local_parts = caseful
          control = caseful_local_part
          logwrite = caseful $local_part
          control = caselower_local_part
          logwrite = lower $local_part
  accept

data_acl:
  accept

begin routers

local:
  driver = accept
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory
  user = root
"#;

/// One message by `-bs -odi` to `rcpt` with `headers`; returns the
/// session's output.
fn send(dir: &TestDir, conf: &str, rcpt: &str, headers: &str) -> String {
    let script = format!(
        "helo test\r\nmail from:<sender@test.ex>\r\nrcpt to:<{rcpt}>\r\ndata\r\n{headers}Subject: hi\r\n\r\nbody\r\n.\r\nquit\r\n"
    );
    let out = dir.run(&["-C", conf, "-bs", "-odi"], &script);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup() -> (TestDir, String) {
    let dir = TestDir::new();
    let conf = dir.write("test.conf", CONF);
    (dir, conf.to_str().unwrap().to_string())
}

#[test]
fn freeze_and_queue_only_hold_the_message() {
    let (dir, conf) = setup();
    let out = send(&dir, &conf, "freeze@test.ex", "");
    assert!(out.contains("250 OK id="), "{out}");
    let out = send(&dir, &conf, "queue@test.ex", "");
    assert!(out.contains("250 OK id="), "{out}");
    let log = dir.read("log/mainlog");
    assert!(log.contains(" frozen by ACL"), "{log}");
    assert!(
        log.contains(" no immediate delivery: queued by ACL"),
        "{log}"
    );
    assert!(!log.contains("=> "), "nothing is delivered: {log}");
    assert!(!dir.path().join("mail/freeze").exists());
    assert!(!dir.path().join("mail/queue").exists());
    // Both wait on the queue; the first is frozen.
    let bp = dir.run_ok(&["-C", &conf, "-bp"], "");
    let bp = String::from_utf8_lossy(&bp.stdout);
    assert_eq!(bp.matches("*** frozen ***").count(), 1, "{bp}");
    assert!(bp.contains("queue@test.ex"), "{bp}");
}

#[test]
fn fake_rejections_answer_a_refusal_and_still_deliver() {
    let (dir, conf) = setup();
    let out = send(&dir, &conf, "fake@test.ex", "");
    assert!(
        out.contains(
            "550-Your message has been rejected but is being kept for evaluation.\r\n\
             550-If it was a legitimate message, it may still be delivered to the target\r\n\
             550 recipient(s).\r\n"
        ),
        "{out}"
    );
    let out = send(&dir, &conf, "fakedefer@test.ex", "");
    assert!(
        out.contains(
            "450-This is a rather long customised message that should get automatically\r\n\
             450 split up into more than one response line.\r\n"
        ),
        "{out}"
    );
    let log = dir.read("log/mainlog");
    // fakereject marks the arrival with `(=`; fakedefer does not.
    assert!(
        log.lines().any(|l| l.contains(" (= sender@test.ex")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains(" <= sender@test.ex")),
        "{log}"
    );
    assert!(dir.read("mail/fake").contains("body"));
    assert!(dir.read("mail/fakedefer").contains("body"));
}

#[test]
fn remove_header_takes_names_and_patterns() {
    let (dir, conf) = setup();
    let out = send(
        &dir,
        &conf,
        "strip@test.ex",
        "X-Secret: 1\r\nX-Other-Thing: 2\r\nX-Kept: 3\r\n",
    );
    assert!(out.contains("250 OK id="), "{out}");
    let mail = dir.read("mail/strip");
    assert!(mail.contains("X-Kept: 3"), "{mail}");
    assert!(!mail.contains("X-Secret"), "{mail}");
    assert!(!mail.contains("X-Other-Thing"), "{mail}");
}

#[test]
fn local_part_case_in_the_rcpt_acl() {
    let (dir, conf) = setup();
    send(&dir, &conf, "CaseFul@test.ex", "");
    let log = dir.read("log/mainlog");
    assert!(log.contains("caseful CaseFul"), "{log}");
    assert!(log.contains("lower caseful"), "{log}");
}

#[test]
fn controls_and_conditions_oxim_lacks_are_refused_with_file_and_line() {
    for (line, want) in [
        (
            "  accept control = cutthrough_delivery",
            "control \"cutthrough_delivery\" is not supported by oxim",
        ),
        (
            "  accept control = no_such_thing",
            "unknown control modifier \"no_such_thing\"",
        ),
        (
            "  deny ratelimit = 10 / 1h / strict",
            "ACL condition \"ratelimit\" is not supported by oxim",
        ),
    ] {
        let dir = TestDir::new();
        let text = CONF.replace(
            "  accept  local_parts = freeze",
            &format!("{line}\n  accept  local_parts = freeze"),
        );
        let conf = dir.write("test.conf", &text);
        let out = dir.run(&["-C", conf.to_str().unwrap(), "-bV"], "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{line}: accepted");
        assert!(err.contains(want), "{line}: {err}");
        assert!(err.contains("line 14"), "{line}: {err}");
    }
}

#[test]
fn a_session_without_mail_is_logged_with_its_commands() {
    let (dir, conf) = setup();
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "acl_smtp_rcpt = rcpt_acl",
        "acl_smtp_rcpt = rcpt_acl\nlog_selector = +smtp_no_mail",
    );
    std::fs::write(&conf, text).unwrap();
    dir.run(&["-C", &conf, "-bs"], "ehlo test\r\nnoop\r\nquit\r\n");
    // A session with a MAIL command is not.
    send(&dir, &conf, "queue@test.ex", "");
    let log = dir.read("log/mainlog");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("no MAIL")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    let who = users_login();
    assert!(
        lines[0].ends_with(&format!(
            "no MAIL in SMTP connection from {who} D=0s C=EHLO,NOOP,QUIT"
        )),
        "{log}"
    );
}

#[test]
fn log_selectors_oxim_lacks_are_refused() {
    let (dir, conf) = setup();
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "acl_smtp_rcpt = rcpt_acl",
        "acl_smtp_rcpt = rcpt_acl\nlog_selector = +unknown_in_list",
    );
    std::fs::write(&conf, text).unwrap();
    let out = dir.run(&["-C", &conf, "-bV"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log_selector \"+unknown_in_list\" is not supported by oxim"),
        "{err}"
    );
}

/// The login of the user running the tests (the `-bs` caller).
fn users_login() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
