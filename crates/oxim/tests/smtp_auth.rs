//! SMTP AUTH (issue 16, point 1): oxim as a server and as a client.
//!
//! - Malformed exchanges against an oxim daemon: bad base64, an over-long
//!   SASL response, a cancel with `*`, an unknown mechanism, a wrong
//!   password, AUTH when not advertised; each gets Exim's reply and log line
//!   and the session goes on.
//! - Interop with real Exim 4.96 (Debian's exim4 unpacked by
//!   `bench/get-exim.sh`, path from `OXIM_EXIM_BIN`): oxim authenticates to
//!   an Exim daemon (PLAIN, then CRAM-MD5) and Exim authenticates to an oxim
//!   daemon (PLAIN, then CRAM-MD5), both over STARTTLS; each side's
//!   `<=`/`=>` lines show it.
//!   Without Exim these print a SKIP line (a failure under `CI=true`); they
//!   need root (Exim runs `-C` configurations as its own user).

mod common;
#[path = "common/exim.rs"]
mod exim;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use exim::{chown_to_exim, exim, exim_dir, run, write_conf};

/// Server authenticators, the same text for oxim and Exim.
const SERVER_AUTHS: &str = r#"
begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{userx}}{eq{$auth3}{secret}}}}
  server_set_id = $auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = User Name : Password
  server_condition = ${if and {{eq{$auth1}{userx}}{eq{$auth2}{secret}}}}
  server_set_id = $auth1

cram:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = ${if eq{$auth1}{ph10}{tanstaaftanstaaf}fail}
  server_set_id = $auth1
"#;

/// Accept mail for test.ex only from an authenticated client.
const SERVER_POLICY: &str = r#"
acl_smtp_rcpt = rcpt

begin acl

rcpt:
  accept authenticated = *
  deny    message = authentication required

begin routers

local:
  driver = accept
  domains = +local_domains : remote.example
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/mbox
"#;

/// A client that authenticates with `client` (an authenticators section)
/// to 127.0.0.1:`port` for remote.example.
fn client_conf(port: u16, client: &str) -> String {
    format!(
        r#"
begin routers

smarthost:
  driver = manualroute
  domains = remote.example
  route_list = * 127.0.0.1 byname
  self = send
  transport = smarthost

begin transports

smarthost:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_require_auth = *
  hosts_try_fastopen = :

begin retry

* * F,1h,10m

{client}"#
    )
}

const CLIENT_PLAIN: &str = r#"
begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  client_send = ^userx^secret
  client_set_id = userx
"#;

/// Debian's exim4-config PLAIN client, reading DIR/passwd.client, which
/// sends the password only over TLS.
const CLIENT_DEBIAN_PLAIN: &str = r#"
begin authenticators

PLAIN:
  driver = plaintext
  public_name = PLAIN
  client_send = "<; ${if !eq{$tls_out_cipher}{}\
                    {^${extract{1}{:}{${lookup{$host}nwildlsearch{DIR/passwd.client}{$value}fail}}}\
                     ^${extract{2}{:}{${lookup{$host}nwildlsearch{DIR/passwd.client}{$value}fail}}}\
                    }fail}"
"#;

const CLIENT_CRAM: &str = r#"
begin authenticators

cram:
  driver = cram_md5
  public_name = CRAM-MD5
  client_name = ph10
  client_secret = tanstaaftanstaaf
"#;

/// oxim as the server: the policy and authenticators above, and STARTTLS
/// with a throwaway self-signed certificate.
fn oxim_server_conf(dir: &TestDir) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    dir.write(
        "server.pem",
        &format!("{}{}", key.serialize_pem(), cert.pem()),
    );
    let body = format!(
        "primary_hostname = myhost.test.ex\nqualify_domain = test.ex\n\
         spool_directory = DIR/spool\nlog_file_path = DIR/log/%slog\nexim_user = root\n\
         never_users =\nhost_lookup =\nhelo_lookup_domains =\n\
         tls_certificate = DIR/server.pem\n\
         domainlist local_domains = test.ex\n{SERVER_POLICY}{SERVER_AUTHS}"
    );
    std::fs::create_dir_all(dir.path().join("mail")).unwrap();
    dir.write("server.conf", &body).display().to_string()
}

fn b64(s: &[u8]) -> String {
    oxim_smtp::sasl::b64_encode(s)
}

/// Every line of a multi-line reply.
fn ehlo_lines(c: &mut Client) -> Vec<String> {
    use std::io::BufRead;
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if c.reader.read_line(&mut line).unwrap_or(0) == 0 {
            return lines;
        }
        let line = line.trim_end().to_string();
        let last = line.len() < 4 || line.as_bytes()[3] != b'-';
        lines.push(line);
        if last {
            return lines;
        }
    }
}

fn mainlog(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log/mainlog")).unwrap_or_default()
}

/// Malformed and failed exchanges: Exim's replies, one log line each (main
/// and reject log), and the session carries on to a successful AUTH.
#[test]
fn malformed_auth_gets_exims_replies_and_log_lines() {
    let dir = TestDir::new();
    let conf = oxim_server_conf(&dir);
    let port = free_port();
    let _d = Daemon::start(&dir, &["-C", &conf, "-oX", &port.to_string()]);
    let mut c = Client::connect(port);
    c.send("EHLO client.example\r\n");
    let ehlo = ehlo_lines(&mut c);
    assert!(
        ehlo.iter().any(|l| l == "250-AUTH PLAIN LOGIN CRAM-MD5"),
        "{ehlo:?}"
    );
    // Not base64 at all, and base64 without its padding.
    assert_eq!(c.cmd("AUTH PLAIN !!!!"), "501 Invalid base64 data");
    assert_eq!(c.cmd("AUTH PLAIN dXNlcng"), "501 Invalid base64 data");
    // A prompt answered with bad base64, then with a line longer than the
    // 16 KiB command buffer, then cancelled.
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlciBOYW1l");
    assert_eq!(c.cmd("not base64!"), "501 Invalid base64 data");
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlciBOYW1l");
    assert_eq!(c.cmd(&"A".repeat(20_000)), "501 Invalid base64 data");
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlciBOYW1l");
    assert_eq!(c.cmd(&b64(b"userx")), "334 UGFzc3dvcmQ=");
    assert_eq!(c.cmd("*"), "501 Authentication cancelled");
    // Data where none is expected, an unknown mechanism, a wrong password.
    assert_eq!(
        c.cmd("AUTH CRAM-MD5 dGVzdA=="),
        "553 Initial data not expected"
    );
    assert_eq!(
        c.cmd("AUTH XYZZY"),
        "504 XYZZY authentication mechanism not supported"
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0userx\0wrong"))),
        "535 Incorrect authentication data"
    );
    // Not authenticated: the RCPT ACL refuses.
    assert!(c.cmd("MAIL FROM:<a@client.example>").starts_with("250"));
    assert_eq!(
        c.cmd("RCPT TO:<userx@test.ex>"),
        "550 authentication required"
    );
    assert!(c.cmd("RSET").starts_with("250"));
    // And the session still works.
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64(b"\0userx\0secret"))),
        "235 Authentication succeeded"
    );
    assert_eq!(c.cmd("AUTH PLAIN ="), "503 already authenticated");
    assert!(c
        .cmd("MAIL FROM:<a@client.example> AUTH=a+2Bb@client.example")
        .starts_with("250"));
    assert!(c.cmd("RCPT TO:<userx@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: hi\r\n\r\nbody\r\n.").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    let log = mainlog(dir.path());
    let lines: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| l.contains("authenticator failed"))
        .collect();
    let host = "H=(client.example) [127.0.0.1]";
    assert_eq!(
        lines,
        [
            format!("plain authenticator failed for {host}: 501 Invalid base64 data"),
            format!("plain authenticator failed for {host}: 501 Invalid base64 data"),
            format!("login authenticator failed for {host}: 501 Invalid base64 data"),
            format!("login authenticator failed for {host}: 501 Invalid base64 data"),
            format!("login authenticator failed for {host}: 501 Authentication cancelled"),
            format!("cram authenticator failed for {host}: 553 Initial data not expected"),
            format!(
                "plain authenticator failed for {host}: 535 Incorrect authentication data \
                 (set_id=userx)"
            ),
        ],
        "{log}"
    );
    let reject = std::fs::read_to_string(dir.path().join("log/rejectlog")).unwrap_or_default();
    assert_eq!(
        reject.matches("authenticator failed").count(),
        7,
        "{reject}"
    );
    assert!(
        log.contains(" P=esmtpa A=plain:userx S="),
        "the <= line names the authenticator and id:\n{log}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || dir
            .read("mail/mbox")
            .contains("body")),
        "delivered"
    );
}

fn exim_daemon(bin: &Path, dir: &Path, conf: &Path, port: u16) -> Child {
    let pid = dir.join("exim.pid");
    let child = Command::new(bin)
        .args([
            "-C",
            conf.to_str().unwrap(),
            "-bdf",
            "-oX",
            &port.to_string(),
        ])
        .arg("-oP")
        .arg(&pid)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exim");
    assert!(
        wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "Exim daemon did not listen"
    );
    child
}

/// oxim's smtp transport authenticates to Exim 4.96 with PLAIN, then with
/// CRAM-MD5, then with Debian's PLAIN client reading `passwd.client`, over
/// the STARTTLS Exim offers (its self-signed certificate);
/// Exim's `<=` line shows `P=esmtpsa X=... A=<authenticator>:<id>` and
/// oxim's `=>` line `A=<authenticator>[:id]`.
#[test]
fn oxim_authenticates_to_exim() {
    let Some(bin) = exim() else { return };
    let edir = exim_dir();
    let econf = write_conf(&edir, &bin, &format!("{SERVER_POLICY}{SERVER_AUTHS}"));
    chown_to_exim(&edir.path().join("mail"));
    let port = free_port();
    let mut exim_d = exim_daemon(&bin, edir.path(), &econf, port);

    for (client, oxim_a, exim_a) in [
        (CLIENT_PLAIN, "A=plain:userx", "A=plain:userx"),
        (CLIENT_CRAM, "A=cram", "A=cram:ph10"),
        (CLIENT_DEBIAN_PLAIN, "A=PLAIN", "A=plain:userx"),
    ] {
        let odir = TestDir::new();
        odir.write(
            "passwd.client",
            "# target:login:password\n127.0.0.1:userx:secret\n",
        );
        let conf = odir.write(
            "client.conf",
            &format!(
                "primary_hostname = oxim.example\nspool_directory = DIR/spool\n\
                 log_file_path = DIR/log/%slog\nexim_user = root\n{}",
                client_conf(port, client)
            ),
        );
        let c = conf.display().to_string();
        odir.run_ok(
            &[
                "-C",
                &c,
                "-odi",
                "-f",
                "sender@oxim.example",
                "userx@remote.example",
            ],
            "Subject: via oxim\n\nhello Exim\n",
        );
        let olog = mainlog(odir.path());
        // Exim offers STARTTLS (and CHUNKING): X=... and K may come too.
        assert!(
            olog.lines().any(|l| l.contains(
                "=> userx@remote.example R=smarthost T=smarthost H=127.0.0.1 [127.0.0.1] "
            ) && l.contains(&format!(" {oxim_a} "))
                && l.contains(" C=\"250")),
            "oxim's => line:\n{olog}"
        );
        let elog = std::fs::read_to_string(edir.path().join("log/mainlog")).unwrap_or_default();
        assert!(
            elog.lines().any(
                |l| l.contains("<= sender@oxim.example H=(oxim.example) [127.0.0.1]")
                    && l.contains(" P=esmtpsa X=TLS1.3:")
                    && l.contains(&format!(" {exim_a} "))
            ),
            "Exim's <= line for {oxim_a}:\n{elog}"
        );
    }
    let _ = exim_d.kill();
    let _ = exim_d.wait();
}

/// Exim 4.96 authenticates to an oxim daemon with PLAIN, then CRAM-MD5,
/// over STARTTLS; oxim's `<=` line shows `P=esmtpsa X=...
/// A=<authenticator>:<id>`.
#[test]
fn exim_authenticates_to_oxim() {
    let Some(bin) = exim() else { return };
    let sdir = TestDir::new();
    let sconf = oxim_server_conf(&sdir);
    let port = free_port();
    let _d = Daemon::start(&sdir, &["-C", &sconf, "-oX", &port.to_string()]);

    for (client, exim_a) in [(CLIENT_PLAIN, "A=plain:userx"), (CLIENT_CRAM, "A=cram")] {
        let edir = exim_dir();
        // Exim's client: mail for remote.example goes to oxim.
        let econf = write_conf(&edir, &bin, &client_conf(port, client));
        let o = run(
            &bin,
            edir.path(),
            &[
                "-C",
                econf.to_str().unwrap(),
                "-odi",
                "-f",
                "sender@exim.example",
                "userx@remote.example",
            ],
            "Subject: via Exim\n\nhello oxim\n",
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let elog = std::fs::read_to_string(edir.path().join("log/mainlog")).unwrap_or_default();
        assert!(
            elog.lines().any(|l| l.contains(
                "=> userx@remote.example R=smarthost T=smarthost H=127.0.0.1 [127.0.0.1] "
            ) && l.contains(&format!(" {exim_a} "))
                && l.contains(" C=\"250")),
            "Exim's => line:\n{elog}"
        );
    }
    let olog = mainlog(sdir.path());
    for oxim_a in ["A=plain:userx", "A=cram:ph10"] {
        assert!(
            olog.lines().any(|l| l
                .contains("<= sender@exim.example H=(myhost.test.ex) [127.0.0.1]")
                && l.contains(" P=esmtpsa X=TLS1.3:")
                && l.contains(&format!(" {oxim_a} "))),
            "oxim's <= line for {oxim_a}:\n{olog}"
        );
    }
}
