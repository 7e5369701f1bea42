//! DKIM signing in the smtp transport when the key is bad: the failure is
//! logged with the transport's name; without `dkim_strict` the message goes
//! unsigned (as in Exim), with `dkim_strict = true` it is deferred and
//! nothing is sent. (Good signatures: the 4500-DKIM conformance scripts
//! and `dkim_interop.rs`, where Exim 4.96 verifies them.)

mod common;

use common::*;

fn conf(port: u16, extra: &str) -> String {
    format!(
        r#"
{TEST_MAIN}
begin routers

remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = signer

begin transports

signer:
  driver = smtp
  port = {port}
  hosts_try_fastopen = :
  dkim_domain = example.com
  dkim_selector = sel
{extra}

begin retry

* * F,1h,10m
"#
    )
}

fn send(dir: &TestDir, c: &str) -> String {
    dir.run_ok(
        &["-C", c, "-odi", "-f", "me@test.ex", "you@remote.example"],
        "From: me@test.ex\nSubject: s\n\nbody\n",
    );
    dir.read("log/mainlog")
}

#[test]
fn unusable_key_without_dkim_strict_sends_unsigned_and_says_why() {
    for (setup, expect) in [
        (
            "garbage",
            "DKIM: signer transport: dkim_private_key for example.com:sel unusable: ",
        ),
        (
            "missing",
            "DKIM: signer transport: cannot read dkim_private_key file DIR/missing.pem: \
             No such file or directory",
        ),
    ] {
        let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
        let dir = TestDir::new();
        dir.write(
            "garbage.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let c = dir.write(
            "c.conf",
            &conf(fake.port, &format!("  dkim_private_key = DIR/{setup}.pem")),
        );
        let log = send(&dir, c.to_str().unwrap());
        let expect = expect.replace("DIR", &dir.path().display().to_string());
        assert!(log.contains(&expect), "{setup}: {log}");
        let delivered: Vec<&str> = log.lines().filter(|l| l.contains(" => you@")).collect();
        assert_eq!(delivered.len(), 1, "{setup}: {log}");
        assert!(!delivered[0].contains("DKIM="), "{setup}: {log}");
        assert_eq!(fake.count("MAIL FROM"), 1);
    }
}

#[test]
fn unusable_key_with_dkim_strict_defers_and_sends_nothing() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    dir.write("bad.pem", "not a key at all\n");
    let c = dir.write(
        "c.conf",
        &conf(
            fake.port,
            "  dkim_private_key = DIR/bad.pem\n  dkim_strict = ${if eq{1}{1}{true}{false}}",
        ),
    );
    let log = send(&dir, c.to_str().unwrap());
    assert!(
        log.contains("DKIM: message could not be signed, and dkim_strict is set. Deferring message delivery."),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l
            .contains("== you@remote.example R=remote T=signer defer (13): Permission denied")
            && l.contains("DKIM: signer transport: dkim_private_key for example.com:sel unusable")),
        "{log}"
    );
    assert_eq!(fake.connection_count(), 0, "nothing may be sent unsigned");
}

#[test]
fn dkim_private_key_zero_or_empty_means_do_not_sign() {
    for value in ["0", "false", "${if eq{a}{b}{x}}"] {
        let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
        let dir = TestDir::new();
        let c = dir.write(
            "c.conf",
            &conf(
                fake.port,
                &format!("  dkim_private_key = {value}\n  dkim_strict = true"),
            ),
        );
        let log = send(&dir, c.to_str().unwrap());
        assert!(!log.contains("DKIM"), "{value}: {log}");
        assert!(
            log.contains(" => you@remote.example R=remote T=signer"),
            "{value}: {log}"
        );
    }
}

#[test]
fn failed_expansion_is_logged_to_the_panic_log_too() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, "  dkim_private_key = ${bogus}"));
    let log = send(&dir, c.to_str().unwrap());
    let want = "failed to expand dkim_private_key: unknown variable in \"${bogus}\"";
    assert!(log.contains(want), "{log}");
    assert!(dir.read("log/paniclog").contains(want), "{log}");
    // Not strict: sent unsigned.
    assert!(
        log.contains(" => you@remote.example R=remote T=signer"),
        "{log}"
    );
}
