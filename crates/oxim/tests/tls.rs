//! TLS between two oxim instances on loopback (and against scripted peers):
//! STARTTLS and SMTPS relays with the log elements Exim writes (`X=`, `CV=`,
//! `P=esmtps`), required TLS and required verification deferring, delivery
//! in clear after a failed handshake (`tls_tempfail_tryclear`), and a server
//! that ignores plaintext sent after STARTTLS.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A throwaway self-signed certificate for localhost and 127.0.0.1 (key and
/// certificate in one file, as Exim's tests keep them) in `dir`, plus the
/// certificate alone (for the client's `tls_verify_certificates`).
fn make_cert(dir: &TestDir, stem: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    dir.write(
        &format!("{stem}.pem"),
        &format!("{}{}", key.serialize_pem(), cert.pem()),
    );
    dir.write(&format!("{stem}-cert.pem"), &cert.pem());
}

const CONF: &str = r#"
SERVER =
primary_hostname = myhost.test.ex
spool_directory = DIR/spool
.ifdef SERVER
log_file_path = DIR/log/SERVER%slog
.else
log_file_path = DIR/log/%slog
.endif
helo_lookup_domains =
chunking_advertise_hosts =
acl_smtp_rcpt = accept
SERVER_TLS

begin routers

server:
  driver = redirect
  condition = ${if eq {SERVER}{server}{yes}{no}}
  data = :blackhole:

client:
  driver = accept
  condition = ${if eq {SERVER}{server}{no}{yes}}
  transport = to_server

begin transports

to_server:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = PORT
  command_timeout = 5s
  CLIENT_TLS

begin retry

* * F,5d,10s
"#;

fn write_conf(dir: &TestDir, port: u16, server_tls: &str, client_tls: &str) -> String {
    dir.write(
        "test.conf",
        &CONF
            .replace("PORT", &port.to_string())
            .replace("SERVER_TLS", server_tls)
            .replace("CLIENT_TLS", client_tls),
    )
    .display()
    .to_string()
}

/// Writes the configuration and starts its server side (`-DSERVER=server`)
/// on a free port (returned with the daemon and the file's path); the client
/// side uses the same file.
fn start_server(dir: &TestDir, server_tls: &str, client_tls: &str) -> (Daemon, String, u16) {
    let port = free_port();
    let conf = write_conf(dir, port, server_tls, client_tls);
    let d = Daemon::start(
        dir,
        &["-C", &conf, "-DSERVER=server", "-oX", &port.to_string()],
    );
    (d, conf, port)
}

fn find<'a>(lines: &'a [String], pat: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(pat))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no log line with {pat:?} in {lines:#?}"))
}

/// Send one message through the client; return (client log, server log)
/// once the server has logged `Completed` (or after a short wait when
/// `expect_server` is false).
fn relay(dir: &TestDir, conf: &str, expect_server: bool) -> (Vec<String>, Vec<String>) {
    let out = dir.run_ok(
        &["-C", conf, "-odi", "a@test.ex"],
        "Subject: tls\n\nHello\n",
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if expect_server {
        assert!(
            wait_for(Duration::from_secs(10), || dir
                .read("log/servermainlog")
                .contains("Completed")),
            "server did not complete: {}",
            dir.read("log/servermainlog")
        );
    } else {
        std::thread::sleep(Duration::from_millis(300));
    }
    (
        log_lines(&dir.read("log/mainlog")),
        log_lines(&dir.read("log/servermainlog")),
    )
}

const X: &str = "X=TLS1.3:TLS_AES_256_GCM_SHA384:256";

#[test]
fn starttls_relay_logs_cipher_and_verification() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let (_d, conf, _) = start_server(
        &dir,
        "tls_certificate = DIR/server.pem",
        "tls_verify_certificates = DIR/server-cert.pem",
    );
    let (client, server) = relay(&dir, &conf, true);
    let srv = find(&server, " <= ");
    let server_id = srv.split_whitespace().next().unwrap();
    let dlv = find(&client, " => ");
    // The certificate names 127.0.0.1, so the default name check passes.
    assert!(
        dlv.replace(" TFO", "").ends_with(&format!(
            "=> a@test.ex R=client T=to_server H=127.0.0.1 [127.0.0.1] {X} CV=yes C=\"250 OK id={server_id}\""
        )),
        "{dlv}"
    );
    // STARTTLS was taken: the protocol is esmtps and no CV= on the server
    // (it asked for no client certificate).
    assert!(
        srv.replace(" TFO", "")
            .contains(&format!(" H=(myhost.test.ex) [127.0.0.1] P=esmtps {X} S=")),
        "{srv}"
    );
    assert!(!srv.contains("CV="), "{srv}");
}

#[test]
fn smtps_relay_on_tls_on_connect_port() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let port = free_port();
    let conf = write_conf(
        &dir,
        port,
        &format!("tls_certificate = DIR/server.pem\ntls_on_connect_ports = {port}"),
        "protocol = smtps\n  tls_verify_certificates = DIR/server-cert.pem",
    );
    let _d = Daemon::start(
        &dir,
        &["-C", &conf, "-DSERVER=server", "-oX", &port.to_string()],
    );
    let (client, server) = relay(&dir, &conf, true);
    assert!(
        find(&server, "daemon started").ends_with(&format!("listening for SMTPS on port {port}")),
        "{server:?}"
    );
    let dlv = find(&client, " => ");
    assert!(
        dlv.contains(&format!(" {X} CV=yes C=\"250 OK id=")),
        "{dlv}"
    );
    let srv = find(&server, " <= ");
    assert!(srv.contains(&format!(" P=esmtps {X} S=")), "{srv}");
    // A plain SMTP client on that port gets no banner in clear: the server
    // waits for a ClientHello and drops the connection on garbage.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"EHLO plain\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("220 "), "{buf:?}");
    assert!(wait_for(Duration::from_secs(5), || dir
        .read("log/servermainlog")
        .contains(
            "TLS error on connection from [127.0.0.1] (handshake)"
        )));
}

/// Exim's default Received: text names the TLS version and suite.
#[test]
fn received_header_names_tls() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let port = free_port();
    // queue_only keeps the server's copy on the spool (the client's -odi
    // overrides it for the client, as in Exim).
    let conf = write_conf(
        &dir,
        port,
        "tls_certificate = DIR/server.pem\nqueue_only",
        "tls_verify_certificates = DIR/server-cert.pem",
    );
    let _d = Daemon::start(
        &dir,
        &["-C", &conf, "-DSERVER=server", "-oX", &port.to_string()],
    );
    dir.run_ok(
        &["-C", &conf, "-odi", "a@test.ex"],
        "Subject: tls\n\nHello\n",
    );
    assert!(wait_for(Duration::from_secs(10), || dir
        .read("log/servermainlog")
        .contains(" <= ")));
    let server = log_lines(&dir.read("log/servermainlog"));
    let id = find(&server, " <= ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let spool = std::fs::read_dir(dir.path().join("spool/input"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy() == format!("{id}-H"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("server's -H file");
    assert!(
        spool.contains(
            "by myhost.test.ex with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\t(oxim "
        ),
        "{spool}"
    );
}

#[test]
fn require_tls_against_server_without_tls_defers() {
    let dir = TestDir::new();
    // No STARTTLS offered (without this, a self-signed certificate would be).
    let (_d, conf, _) = start_server(&dir, "tls_advertise_hosts =", "hosts_require_tls = *");
    let (client, server) = relay(&dir, &conf, false);
    let def = find(&client, " == ");
    assert!(
        def.ends_with(
            "== a@test.ex R=client T=to_server defer (-38) H=127.0.0.1 [127.0.0.1]: a TLS session is required, but the server did not offer TLS support"
        ),
        "{def}"
    );
    assert!(!client.iter().any(|l| l.contains(" => ")), "{client:?}");
    assert!(!server.iter().any(|l| l.contains(" <= ")), "{server:?}");
}

#[test]
fn bad_certificate_defers_when_verification_is_required() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    make_cert(&dir, "other");
    let (_d, conf, _) = start_server(
        &dir,
        "tls_certificate = DIR/server.pem",
        "tls_verify_certificates = DIR/other-cert.pem\n  tls_verify_hosts = *",
    );
    let (client, server) = relay(&dir, &conf, false);
    let def = find(&client, " == ");
    assert!(
        def.contains("defer (-37) H=127.0.0.1 [127.0.0.1]: TLS session: (handshake): ")
            && def.contains("invalid peer certificate"),
        "{def}"
    );
    // No delivery, and no fallback to clear text.
    assert!(!client.iter().any(|l| l.contains(" => ")), "{client:?}");
    assert!(!server.iter().any(|l| l.contains(" <= ")), "{server:?}");
}

#[test]
fn untrusted_certificate_only_tried_gives_cv_no() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    make_cert(&dir, "other");
    let (_d, conf, _) = start_server(
        &dir,
        "tls_certificate = DIR/server.pem",
        "tls_verify_certificates = DIR/other-cert.pem",
    );
    let (client, _) = relay(&dir, &conf, true);
    let dlv = find(&client, " => ");
    assert!(dlv.contains(&format!(" {X} CV=no C=\"250 OK id=")), "{dlv}");
}

#[test]
fn hosts_avoid_tls_delivers_in_clear() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let (_d, conf, _) = start_server(
        &dir,
        "tls_certificate = DIR/server.pem",
        "hosts_avoid_tls = *",
    );
    let (client, server) = relay(&dir, &conf, true);
    assert!(!find(&client, " => ").contains(" X="), "{client:?}");
    assert!(find(&server, " <= ").contains(" P=esmtp S="), "{server:?}");
}

/// A server that says 220 to STARTTLS and then does not speak TLS: the
/// handshake fails, and with tls_tempfail_tryclear (default) the message
/// goes in clear on a new connection; with hosts_require_tls it stays.
#[test]
fn failed_handshake_falls_back_to_clear_unless_required() {
    for require in [false, true] {
        let dir = TestDir::new();
        let fake = FakeSmtp::start(
            vec![("STARTTLS", "220 go ahead")],
            &["PIPELINING", "STARTTLS"],
        );
        let conf = write_conf(
            &dir,
            fake.port,
            "",
            if require { "hosts_require_tls = *" } else { "" },
        );
        let out = dir.run_ok(&["-C", &conf, "-odi", "a@test.ex"], "Subject: x\n\nHello\n");
        assert!(out.stderr.is_empty());
        let client = log_lines(&dir.read("log/mainlog"));
        if require {
            let def = find(&client, " == ");
            assert!(
                def.contains("defer (-37) H=127.0.0.1 [127.0.0.1]: TLS session: (handshake): "),
                "{def}"
            );
            assert!(
                !client.iter().any(|l| l.contains("unencrypted")),
                "{client:?}"
            );
            assert!(!fake.received().iter().any(|l| l.starts_with("MAIL")));
        } else {
            // (The fake server answers the binary ClientHello as if it
            // were commands, so how the handshake ends varies.)
            let fallback = find(&client, "delivering unencrypted");
            assert!(
                fallback.contains(" TLS session: (handshake): ")
                    && fallback.ends_with(
                        ": delivering unencrypted to H=127.0.0.1 [127.0.0.1] (not in hosts_require_tls)"
                    ),
                "{client:?}"
            );
            let dlv = find(&client, " => ");
            assert!(
                dlv.ends_with("C=\"250 OK id=fake\"") && !dlv.contains("X="),
                "{dlv}"
            );
            let got = fake.received();
            assert_eq!(
                got.iter().filter(|l| l.starts_with("EHLO")).count(),
                2,
                "{got:?}"
            );
            assert_eq!(
                got.iter().filter(|l| *l == "STARTTLS").count(),
                1,
                "{got:?}"
            );
        }
    }
}

/// A queue run's messages for one host go down one TLS connection (STARTTLS
/// or SMTPS): the handshake happens once, the continued messages are
/// encrypted too, and their `=>` lines carry Exim's `*` after the host and
/// then the same `X=`/`CV=`.
#[test]
fn queue_run_reuses_the_tls_connection() {
    for smtps in [false, true] {
        let dir = TestDir::new();
        make_cert(&dir, "server");
        let port = free_port();
        let (server_tls, client_tls) = if smtps {
            (
                format!("tls_certificate = DIR/server.pem\ntls_on_connect_ports = {port}"),
                "protocol = smtps\n  tls_verify_certificates = DIR/server-cert.pem",
            )
        } else {
            (
                "tls_certificate = DIR/server.pem".to_string(),
                "tls_verify_certificates = DIR/server-cert.pem",
            )
        };
        let conf = write_conf(
            &dir,
            port,
            &format!("{server_tls}\nlog_selector = +smtp_connection"),
            client_tls,
        );
        let _d = Daemon::start(
            &dir,
            &["-C", &conf, "-DSERVER=server", "-oX", &port.to_string()],
        );
        for i in 0..3 {
            dir.run_ok(
                &["-C", &conf, "-odq", &format!("r{i}@test.ex")],
                &format!("Subject: m{i}\n\nbody {i}\n"),
            );
        }
        dir.run_ok(&["-C", &conf, "-qf"], "");
        assert!(
            wait_for(Duration::from_secs(10), || dir
                .read("log/servermainlog")
                .matches("Completed")
                .count()
                == 3),
            "server did not complete: {}",
            dir.read("log/servermainlog")
        );
        let client = log_lines(&dir.read("log/mainlog"));
        let server = log_lines(&dir.read("log/servermainlog"));
        // One connection, every message over TLS.
        let connections = server
            .iter()
            .filter(|l| l.contains("SMTP connection from") && l.contains("connection count"))
            .count();
        assert_eq!(connections, 1, "{server:#?}");
        let received: Vec<_> = server.iter().filter(|l| l.contains(" <= ")).collect();
        assert_eq!(received.len(), 3, "{server:#?}");
        for r in &received {
            assert!(r.contains(&format!(" P=esmtps {X} S=")), "{r}");
        }
        let dlv: Vec<_> = client
            .iter()
            .filter(|l| l.contains(" => "))
            .map(|l| l.replace(" TFO", ""))
            .collect();
        assert_eq!(dlv.len(), 3, "{client:#?}");
        let fresh = format!(" H=127.0.0.1 [127.0.0.1] {X} CV=yes C=\"250 OK id=");
        let continued = format!(" H=127.0.0.1 [127.0.0.1]* {X} CV=yes C=\"250 OK id=");
        assert_eq!(
            dlv.iter().filter(|l| l.contains(&fresh)).count(),
            1,
            "smtps={smtps} {dlv:#?}"
        );
        assert_eq!(
            dlv.iter().filter(|l| l.contains(&continued)).count(),
            2,
            "smtps={smtps} {dlv:#?}"
        );
    }
}

/// After a failed handshake and the delivery in clear that follows
/// (`tls_tempfail_tryclear`), the host is not written off for the rest of
/// the queue run: the next message goes down the connection in clear
/// (one delivery at a time, so that the second finds the first's
/// connection parked).
#[test]
fn queue_run_after_failed_handshake_goes_on_in_clear() {
    let dir = TestDir::new();
    let fake = FakeSmtp::start(
        vec![("STARTTLS", "220 go ahead")],
        &["PIPELINING", "STARTTLS"],
    );
    let conf = write_conf(&dir, fake.port, "queue_run_max = 1", "");
    for i in 0..2 {
        dir.run_ok(
            &["-C", &conf, "-odq", &format!("r{i}@test.ex")],
            "Subject: x\n\nHello\n",
        );
    }
    dir.run_ok(&["-C", &conf, "-qf"], "");
    let client = log_lines(&dir.read("log/mainlog"));
    assert_eq!(
        client
            .iter()
            .filter(|l| l.contains("delivering unencrypted"))
            .count(),
        1,
        "{client:#?}"
    );
    assert!(
        !client.iter().any(|l| l.contains("retry time not reached")),
        "{client:#?}"
    );
    let dlv: Vec<_> = client.iter().filter(|l| l.contains(" => ")).collect();
    assert_eq!(dlv.len(), 2, "{client:#?}");
    assert!(dlv.iter().all(|l| !l.contains(" X=")), "{dlv:#?}");
    assert_eq!(
        dlv.iter()
            .filter(|l| l.contains(" H=127.0.0.1 [127.0.0.1]* C=\"250 OK id=fake\""))
            .count(),
        1,
        "{dlv:#?}"
    );
    let got = fake.received();
    assert_eq!(
        got.iter().filter(|l| *l == "STARTTLS").count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        got.iter().filter(|l| l.starts_with("MAIL FROM")).count(),
        2,
        "{got:?}"
    );
}

/// Read one SMTP reply (all its lines).
fn read_reply(r: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return lines;
        }
        lines.push(line.trim_end().to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return lines;
        }
    }
}

/// Connect, read the banner, EHLO (STARTTLS must be offered).
fn plain_session(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(read_reply(&mut r)[0].starts_with("220 "));
    (&s).write_all(b"EHLO me.example\r\n").unwrap();
    let ehlo = read_reply(&mut r);
    assert!(ehlo.iter().any(|l| l == "250-STARTTLS"), "{ehlo:?}");
    (s, r)
}

/// Commands pipelined after STARTTLS were sent in clear and must never act
/// inside the TLS session (the STARTTLS command injection attack). With
/// `smtp_enforce_sync` (default) such a client is out of sync and is
/// dropped; without it the plaintext is thrown away at the 220.
#[test]
fn plaintext_pipelined_after_starttls_is_refused() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let (_d, _, port) = start_server(&dir, "tls_certificate = DIR/server.pem", "");
    let (s, mut r) = plain_session(port);
    (&s).write_all(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut r), vec!["554 SMTP synchronization error"]);
    assert!(read_reply(&mut r).is_empty(), "connection not closed");
}

#[tokio::test]
async fn plaintext_after_starttls_is_not_executed() {
    let dir = TestDir::new();
    make_cert(&dir, "server");
    let (_d, _, port) = start_server(
        &dir,
        "tls_certificate = DIR/server.pem\nsmtp_enforce_sync = false",
        "",
    );

    // Part 1: STARTTLS with a pipelined plaintext command.
    let (s, mut r) = plain_session(port);
    (&s).write_all(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut r), vec!["220 TLS go ahead"]);
    assert!(r.buffer().is_empty(), "nothing may follow the 220 in clear");
    drop(r);
    s.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(s).unwrap();
    let client = oxim_tls::ClientTls::new(&oxim_tls::ClientTlsOptions {
        roots: oxim_tls::RootSource::Path(dir.path().join("server-cert.pem")),
        check_name: true,
        require_verify: true,
        try_verify: true,
    })
    .unwrap();
    let mut io = oxim_tls::MaybeTls::Plain(tcp);
    let sess = io
        .start_client(&client, "127.0.0.1", Duration::from_secs(5))
        .await
        .map_err(|(e, _)| e.to_string())
        .unwrap();
    assert_eq!(sess.certificate_verified, Some(true));
    // The first reply inside TLS answers our EHLO, not the injected MAIL;
    // STARTTLS is no longer offered.
    io.write_all(b"EHLO me.example\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    while !got.contains("250 ") {
        let n = tokio::time::timeout(Duration::from_secs(5), io.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("250-myhost.test.ex Hello"), "{got}");
    assert!(!got.contains("STARTTLS"), "{got}");
    // The injected MAIL was dropped: a RCPT now needs a MAIL first.
    io.write_all(b"RCPT TO:<a@test.ex>\r\n").await.unwrap();
    let n = io.read(&mut buf).await.unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(reply.starts_with("503"), "{reply}");
    io.write_all(b"QUIT\r\n").await.unwrap();

    // Part 2: plain text instead of a handshake: the connection is dropped.
    let (s, mut r) = plain_session(port);
    (&s).write_all(b"STARTTLS\r\n").unwrap();
    assert_eq!(read_reply(&mut r), vec!["220 TLS go ahead"]);
    (&s).write_all(b"MAIL FROM:<plain@example.com>\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("250"),
        "plain text was answered: {rest:?}"
    );
    assert!(wait_for(Duration::from_secs(5), || dir
        .read("log/servermainlog")
        .contains(
            "TLS error on connection from (me.example) [127.0.0.1] (handshake)"
        )));
}

/// The `encrypted` ACL condition matches the cipher suite of the incoming
/// connection (false in clear), `$tls_cipher` is the incoming cipher, and
/// a refusal on an encrypted connection logs its `X=` after the client.
#[test]
fn encrypted_condition_and_cipher_in_rejections() {
    for clear in [true, false] {
        let dir = TestDir::new();
        make_cert(&dir, "server");
        let port = free_port();
        let client_tls = if clear {
            "hosts_avoid_tls = *"
        } else {
            "tls_verify_certificates = DIR/server-cert.pem"
        };
        let conf = CONF
            .replace("PORT", &port.to_string())
            .replace("SERVER_TLS", "tls_certificate = DIR/server.pem")
            .replace("CLIENT_TLS", client_tls)
            .replace("acl_smtp_rcpt = accept", "acl_smtp_rcpt = check_rcpt")
            .replace(
                "begin routers",
                "begin acl\n\ncheck_rcpt:\n  \
                 deny message = in clear\n    !encrypted = *\n  \
                 deny message = cipher $tls_cipher\n    encrypted = *_GCM_SHA384\n  \
                 accept\n\nbegin routers",
            );
        let conf = dir.write("test.conf", &conf);
        let conf = conf.to_str().unwrap();
        let _d = Daemon::start(
            &dir,
            &["-C", conf, "-DSERVER=server", "-oX", &port.to_string()],
        );
        dir.run_ok(&["-C", conf, "-odi", "a@test.ex"], "Subject: x\n\nHello\n");
        assert!(
            wait_for(Duration::from_secs(10), || dir
                .read("log/servermainlog")
                .contains(" rejected RCPT ")),
            "{}\n{}",
            dir.read("log/mainlog"),
            dir.read("log/servermainlog")
        );
        let server = log_lines(&dir.read("log/servermainlog"));
        let rej = find(&server, " rejected RCPT ");
        let want = if clear {
            "H=(myhost.test.ex) [127.0.0.1] F=<root@myhost.test.ex> rejected RCPT <a@test.ex>: in clear"
                .to_string()
        } else {
            format!(
                "H=(myhost.test.ex) [127.0.0.1] {X} F=<root@myhost.test.ex> rejected RCPT <a@test.ex>: cipher {}",
                &X[2..]
            )
        };
        assert!(rej.ends_with(&want), "{rej}");
        let client = log_lines(&dir.read("log/mainlog"));
        let reason = if clear { "in clear" } else { "cipher TLS1.3" };
        assert!(
            find(&client, " ** ").contains(&format!(": 550 {reason}")),
            "{client:?}"
        );
    }
}
