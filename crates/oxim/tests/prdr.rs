//! PRDR through the real daemon: a client that asks for it gets one answer
//! per recipient after the data, the message is stored for those accepted
//! only, and the log says what was decided for each.

mod common;

use common::*;
use std::time::Duration;

fn conf() -> String {
    format!(
        "{TEST_MAIN}prdr_enable = true
acl_smtp_rcpt = accept
acl_smtp_data_prdr = prdr_acl
queue_only

begin acl

prdr_acl:
  defer   local_parts = later
  deny    local_parts = never
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
"
    )
}

/// Send one message to `rcpts` with `MAIL FROM:<s@example.org> PRDR` and
/// return every reply line after the data.
fn send(port: u16, rcpts: &[&str]) -> Vec<String> {
    let mut c = Client::connect(port);
    // (The reply to MAIL shows that PRDR was advertised.)
    assert!(c.cmd("EHLO client.example").starts_with("250 "));
    assert_eq!(
        c.cmd("MAIL FROM:<s@example.org> PRDR").trim_end(),
        "250 OK, PRDR Requested"
    );
    for r in rcpts {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).starts_with("250"));
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: prdr\r\n\r\nbody\r\n.\r\n");
    let mut replies = vec![c.reply()];
    if replies[0].starts_with("353") {
        for _ in 0..=rcpts.len() {
            replies.push(c.reply());
        }
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    replies.iter().map(|r| r.trim_end().to_string()).collect()
}

#[test]
fn each_recipient_gets_its_answer_and_only_the_accepted_stay() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write("test.conf", &conf());
    let _d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );

    let r = send(port, &["ok@test.ex", "later@test.ex", "never@test.ex"]);
    assert_eq!(r[0], "353 PRDR content analysis beginning");
    assert_eq!(r[1], "250 PRDR R=<ok@test.ex> acceptance");
    assert_eq!(r[2], "450 PRDR R=<later@test.ex> temporary refusal");
    assert_eq!(r[3], "550 PRDR R=<never@test.ex> refusal");
    assert!(
        r[4].starts_with("250 id=") && r[4].ends_with(" message accepted for some recipients"),
        "{r:?}"
    );
    let id = r[4][7..].split(' ').next().unwrap().to_string();

    // Every recipient refused: nothing is stored.
    let r = send(port, &["never@test.ex", "never@test.ex"]);
    assert!(
        r[3].starts_with("550 id=") && r[3].ends_with(" message rejected for all recipients"),
        "{r:?}"
    );

    // -bp lists the stored message with its one recipient.
    let out = dir.run(&["-C", conf.to_str().unwrap(), "-bp"], "");
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listing.contains(&id), "{listing}");
    assert!(listing.contains("ok@test.ex"), "{listing}");
    assert!(!listing.contains("later@test.ex"), "{listing}");
    assert_eq!(listing.matches("<s@example.org>").count(), 1, "{listing}");

    let log = wait_for_log(&dir, " PRDR S=");
    let lines = log_lines(&log);
    for want in [
        format!("{id} PRDR R=<ok@test.ex> acceptance"),
        format!("{id} PRDR R=<later@test.ex> temporary refusal"),
        format!("{id} PRDR R=<never@test.ex> refusal"),
    ] {
        assert!(lines.contains(&want), "{want} not in {log}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{id} <= s@example.org H=")) && l.contains(" PRDR S=")),
        "{log}"
    );
}

fn wait_for_log(dir: &TestDir, needle: &str) -> String {
    let path = dir.path().join("log/mainlog");
    let mut text = String::new();
    wait_for(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.contains(needle)
    });
    text
}
