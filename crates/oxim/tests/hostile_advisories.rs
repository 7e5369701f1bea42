//! Hostile input taken from published MTA vulnerabilities (issue 18): each
//! test names the advisory class it comes from and checks what oxim does
//! instead. Classes covered elsewhere are listed at the end of this comment.
//!
//! - SMTP smuggling (CVE-2023-51766 Exim, CVE-2023-51764 Postfix,
//!   CVE-2023-51765 Sendmail): [`smuggling_transcript_gives_one_message`],
//!   [`line_ending_mixtures_side_by_side_with_exim`],
//!   [`lf_only_remote_client_cannot_end_the_data_early`],
//!   [`chunked_message_with_bare_lf_header_is_refused`],
//!   [`relayed_bodies_carry_no_bare_cr_or_lf`].
//! - Untrusted data expanded (CVE-2019-10149 "Return of the WIZard",
//!   CVE-2023-42115 AUTH): [`recipient_and_header_text_never_expanded_on_bounce`],
//!   [`auth_data_is_never_expanded`].
//! - Shell between an address and a command (OpenSMTPD CVE-2020-7247,
//!   CVE-2020-8794): [`pipe_gets_hostile_addresses_as_single_arguments`].
//! - Newlines into the spool `-H` file (21Nails CVE-2020-28015,
//!   CVE-2020-28021, CVE-2020-28026): [`no_input_adds_a_line_to_the_header_file`].
//! - Unbounded numbers (21Nails CVE-2020-28017/28020, CVE-2020-28019 BDAT):
//!   [`size_and_bdat_numbers_are_bounded`]; `-H` counts in
//!   `crates/spool/tests/header_format.rs` (`hostile_header_files_are_refused`).
//! - Open-relay probes: [`relay_probes_refused_where_exim_refuses`].
//! - Files through a path the caller chose, setuid (21Nails
//!   CVE-2020-28007/28014, pid file `-oP`):
//!   [`pid_file_is_never_written_through_a_symlink`].
//!
//! Elsewhere: plaintext pipelined after STARTTLS (Postfix CVE-2011-0411) in
//! `tests/tls.rs` (`plaintext_pipelined_after_starttls_is_refused`,
//! `plaintext_after_starttls_is_not_executed`), no TLS early data in
//! `crates/tls/tests/tls.rs` (`server_takes_no_early_data`); expansion items in HELO,
//! MAIL and RCPT in `tests/reception.rs`
//! (`expansion_items_from_the_network_stay_text`); `-C`/`-D` of a setuid
//! oxim in `tests/privilege.rs`.
//!
//! The Exim column of the comparison tables is what Debian's Exim 4.96
//! (patched for CVE-2023-51766) answered on 2026-12-07; when that Exim is
//! present (`bench/get-exim.sh`) the tests run it again and require the same
//! answers (under `CI=true` it must be present).

mod common;
#[path = "common/exim.rs"]
mod exim;
#[path = "common/setuid.rs"]
mod setuid;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::*;

/// oxim's configuration for the local tests: the shared test main section,
/// no host lookups, plus `extra`.
fn oxim_conf(dir: &TestDir, extra: &str) -> String {
    let text = format!("{TEST_MAIN}host_lookup =\nsmtp_max_synprot_errors = 100\n{extra}");
    dir.write("test.conf", &text).display().to_string()
}

/// Reply codes from the first `354` on (`"354 250 221"`).
fn codes_from_354(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    let mut codes = Vec::new();
    let mut on = false;
    for line in text.lines() {
        on |= line.starts_with("354");
        if on && line.len() >= 4 && line.as_bytes()[3] == b' ' {
            codes.push(&line[..3]);
        }
    }
    codes.join(" ")
}

/// The bodies (`-D` files without their id line) in `spool/input`, sorted.
fn spooled_bodies(spool: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(spool.join("input")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with("-D") {
                let d = std::fs::read(e.path()).unwrap();
                let nl = d.iter().position(|&b| b == b'\n').unwrap();
                out.push(d[nl + 1..].to_vec());
            }
        }
    }
    out.sort();
    out
}

fn spooled_headers(spool: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(spool.join("input")) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with("-H") {
                out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// SMTP smuggling

/// A body in which `seq` (a line-ending mixture around a dot) is followed by
/// a whole smuggled transaction, then the real end of data.
fn smuggling_body(seq: &str) -> String {
    format!(
        "Subject: first\r\n\r\nhello{seq}MAIL FROM:<smuggled@test.ex>\r\n\
         RCPT TO:<you@test.ex>\r\nDATA\r\nSubject: s\r\n\r\nevil\r\n.\r\n"
    )
}

struct Mixture {
    name: &'static str,
    /// What follows `DATA\r\n` (QUIT is added).
    data: String,
    /// Exim 4.96's replies from its 354 on, as recorded.
    exim_replies: &'static str,
    /// Exim 4.96's `-D` bodies, as recorded.
    exim_bodies: Vec<Vec<u8>>,
}

/// The table of issue 18: line-ending mixtures around the dot, with Exim's
/// answers. One message with the "smuggled" commands as body text is the
/// right answer; two messages (`250 250 250 354 250`) is smuggling.
fn mixtures() -> Vec<Mixture> {
    // Every smuggling row stores its first line, then the would-be
    // commands as body text.
    let body = |head: &[u8]| {
        [
            head,
            b"MAIL FROM:<smuggled@test.ex>\nRCPT TO:<you@test.ex>\nDATA\nSubject: s\n\nevil\n",
        ]
        .concat()
    };
    vec![
        Mixture {
            name: "LF.CRLF",
            data: smuggling_body("\n.\r\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello .\n")],
        },
        Mixture {
            name: "CRLF.LF",
            data: smuggling_body("\r\n.\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n ")],
        },
        Mixture {
            name: "LF.LF",
            data: smuggling_body("\n.\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello . ")],
        },
        Mixture {
            name: "CR.CR",
            data: smuggling_body("\r.\r"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n.\n")],
        },
        Mixture {
            name: "CRLF.CR",
            data: smuggling_body("\r\n.\r"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n\n")],
        },
        Mixture {
            name: "CR.LF",
            data: smuggling_body("\r.\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n. ")],
        },
        Mixture {
            name: "CRLF.NUL CRLF",
            data: smuggling_body("\r\n.\0\r\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n\0\n")],
        },
        Mixture {
            name: "CRLF NUL.CRLF",
            data: smuggling_body("\r\n\0.\r\n"),
            exim_replies: "354 250 221",
            exim_bodies: vec![body(b"hello\n\0.\n")],
        },
        Mixture {
            name: "bare LF then dot in a header",
            data:
                "Subject: first\r\nX-A: b\n.\r\nMAIL FROM:<smuggled@test.ex>\r\n\r\nbody\r\n.\r\n"
                    .into(),
            exim_replies: "354 250 221",
            // "MAIL FROM:..." is no header: it starts the body.
            exim_bodies: vec![b"MAIL FROM:<smuggled@test.ex>\n\nbody\n".to_vec()],
        },
        // The control: a real end of data, then a second transaction.
        Mixture {
            name: "CRLF.CRLF (real end)",
            data: smuggling_body("\r\n.\r\n"),
            exim_replies: "354 250 250 250 354 250 221",
            exim_bodies: vec![b"evil\n".to_vec(), b"hello\n".to_vec()],
        },
        // A local client writing Unix line ends throughout (first line LF):
        // Exim 4.97.1 keeps "LF . LF" as its end, and so does oxim for -bs
        // (not for remote clients: see the next test).
        Mixture {
            name: "LF-only local client",
            data:
                "Subject: first\n\nhello\n.\nMAIL FROM:<smuggled@test.ex>\nRCPT TO:<you@test.ex>\n\
                   DATA\nSubject: s\n\nevil\n.\n"
                    .into(),
            exim_replies: "354 250 250 250 354 250 221",
            exim_bodies: vec![b"evil\n".to_vec(), b"hello\n".to_vec()],
        },
    ]
}

fn session(data: &str) -> String {
    format!("EHLO x\r\nMAIL FROM:<a@test.ex>\r\nRCPT TO:<you@test.ex>\r\nDATA\r\n{data}QUIT\r\n")
}

fn show(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| String::from_utf8_lossy(b).escape_debug().to_string())
        .collect()
}

/// Issue 18 acceptance: every line-ending mixture through `-bs`, oxim's
/// replies and stored bodies against Exim 4.96's (recorded, and re-checked
/// live when Exim is here).
#[test]
fn line_ending_mixtures_side_by_side_with_exim() {
    let exim_bin = exim::exim();
    let mut table =
        String::from("\nmixture                        oxim                         Exim 4.96\n");
    for m in mixtures() {
        let input = session(&m.data);
        let dir = TestDir::new();
        let conf = oxim_conf(&dir, "acl_smtp_rcpt = accept\n");
        let o = dir.run(&["-C", &conf, "-bs", "-odq"], &input);
        let oxim_replies = codes_from_354(&o.stdout);
        let oxim_bodies = spooled_bodies(&dir.path().join("spool"));
        table.push_str(&format!(
            "{:<30} {:<28} {}\n",
            m.name, oxim_replies, m.exim_replies
        ));
        let want = &m.exim_bodies;
        assert_eq!(oxim_replies, m.exim_replies, "{}: replies", m.name);
        assert_eq!(show(&oxim_bodies), show(want), "{}: stored bodies", m.name);
        if let Some(bin) = &exim_bin {
            let edir = exim::exim_dir();
            let econf = exim::write_conf(&edir, bin, "acl_smtp_rcpt = accept\n");
            let e = exim::run(
                bin,
                edir.path(),
                &["-C", econf.to_str().unwrap(), "-bs", "-odq"],
                &input,
            );
            assert_eq!(
                codes_from_354(&e.stdout),
                m.exim_replies,
                "{}: Exim now answers differently: {}",
                m.name,
                String::from_utf8_lossy(&e.stdout)
            );
            assert_eq!(
                show(&spooled_bodies(&edir.path().join("spool"))),
                show(want),
                "{}: Exim now stores differently",
                m.name
            );
        }
    }
    println!("{table}");
}

/// A daemon on a free port: queue only, CHUNKING offered, every recipient
/// accepted unless `extra` sets its own `acl_smtp_rcpt`.
fn daemon(dir: &TestDir, extra: &str) -> (Daemon, u16) {
    let port = free_port();
    let acl = if extra.contains("acl_smtp_rcpt") {
        ""
    } else {
        "acl_smtp_rcpt = accept\n"
    };
    let conf = oxim_conf(
        dir,
        &format!("{acl}queue_only\nchunking_advertise_hosts = *\n{extra}"),
    );
    let d = Daemon::start(dir, &["-C", &conf, "-oX", &port.to_string()]);
    (d, port)
}

/// A client on `port` that has said `EHLO helo` and opened a transaction
/// from `from` to you@test.ex.
fn open_transaction(port: u16, helo: &str, from: &str) -> Client {
    let mut c = Client::connect(port);
    assert!(c.cmd(&format!("EHLO {helo}")).starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
    assert!(c.cmd("RCPT TO:<you@test.ex>").starts_with("250"));
    c
}

/// Issue 18's transcript (CVE-2023-51766 class) over TCP: `<LF>.<CR><LF>`
/// does not end the data, the smuggled MAIL is body text, one message.
#[test]
fn smuggling_transcript_gives_one_message() {
    let dir = TestDir::new();
    let (_d, port) = daemon(&dir, "");
    let mut c = open_transaction(port, "t", "a@test.ex");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: first\r\n\r\nhello\r\n\n.\r\nMAIL FROM:<smuggled@localhost>\r\n");
    c.send("RCPT TO:<you@test.ex>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    assert!(c.cmd("QUIT").starts_with("221"));
    let log = dir.read("log/mainlog");
    let received: Vec<&str> = log.lines().filter(|l| l.contains(" <= ")).collect();
    assert_eq!(received.len(), 1, "{log}");
    assert!(received[0].contains("<= a@test.ex "), "{log}");
    assert!(!log.contains("smuggled@localhost"), "{log}");
    let bodies = spooled_bodies(&dir.path().join("spool"));
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&bodies[0]),
        "hello\n .\nMAIL FROM:<smuggled@localhost>\nRCPT TO:<you@test.ex>\nDATA\n\
         Subject: smuggled\n\nevil\n"
    );
}

/// A remote client whose message starts with bare-LF lines could end it with
/// `<LF>.<LF>` under Exim's rule (its LF-only mode); a relay that passes
/// bare LFs on would then carry a smuggled message. oxim ends remote data
/// only at `<CR><LF>.<CR><LF>` (bare LFs still end lines there).
#[test]
fn lf_only_remote_client_cannot_end_the_data_early() {
    let dir = TestDir::new();
    let (_d, port) = daemon(&dir, "");
    let mut c = open_transaction(port, "t", "a@test.ex");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: first\n\nhello\n.\nMAIL FROM:<smuggled@test.ex>\n");
    c.send("RCPT TO:<you@test.ex>\nDATA\nSubject: s\n\nevil\n.\n");
    // Nothing has ended the data yet: the next line is still body.
    c.send("tail\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    assert!(c.cmd("QUIT").starts_with("221"));
    let log = dir.read("log/mainlog");
    assert_eq!(log.matches(" <= ").count(), 1, "{log}");
    let bodies = spooled_bodies(&dir.path().join("spool"));
    assert_eq!(
        String::from_utf8_lossy(&bodies[0]),
        "hello\n.\nMAIL FROM:<smuggled@test.ex>\nRCPT TO:<you@test.ex>\nDATA\nSubject: s\n\n\
         evil\n.\ntail\n"
    );
}

/// CHUNKING and a first header line ended by a bare LF: refused as Exim
/// 4.97.1 refuses it (Exim's test 0900), with its reply and log line.
#[test]
fn chunked_message_with_bare_lf_header_is_refused() {
    let dir = TestDir::new();
    let (_d, port) = daemon(&dir, "");
    let mut c = open_transaction(port, "tester", "someone@some.domain");
    let msg = "To: Susan@random.com\nFrom: Sam@random.com\r\nSubject: This is a Bodyless test message\r\n\r\n";
    c.send(&format!("BDAT {} LAST\r\n{msg}", msg.len()));
    assert_eq!(c.reply(), "552 Message header not CRLF terminated");
    // The session goes on.
    assert!(c.cmd("MAIL FROM:<someone@some.domain>").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    let want = "rejected from <someone@some.domain> H=(tester) [127.0.0.1]: \
                Non-CRLF-terminated header, under CHUNKING: message abandoned";
    for log in ["log/mainlog", "log/rejectlog"] {
        let lines = log_lines(&dir.read(log));
        assert!(lines.iter().any(|l| l == want), "{log}: {lines:#?}");
    }
    assert!(spooled_bodies(&dir.path().join("spool")).is_empty());
}

/// What a downstream server sees from oxim's smtp transport: a body with
/// bare CRs, lone dots and CRLF-dot-CRLF inside goes out with CRLF line ends
/// only and one end of data, so oxim cannot carry a smuggling payload to a
/// weaker server.
#[test]
fn relayed_bodies_carry_no_bare_cr_or_lf() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"220 capture ESMTP\r\n").unwrap();
        let mut data = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                w.write_all(b"250-capture\r\n250 PIPELINING\r\n").unwrap();
            } else if upper.starts_with("DATA") {
                w.write_all(b"354 go\r\n").unwrap();
                // Raw bytes up to the first CRLF . CRLF.
                let mut byte = [0u8; 1];
                while !data.ends_with(b"\r\n.\r\n") {
                    if r.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    data.push(byte[0]);
                }
                w.write_all(b"250 OK\r\n").unwrap();
            } else if upper.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n");
                break;
            } else {
                w.write_all(b"250 OK\r\n").unwrap();
            }
        }
        data
    });
    let dir = TestDir::new();
    let conf = oxim_conf(
        &dir,
        &format!(
            "begin routers\nout:\n  driver = accept\n  transport = out\n\
             begin transports\nout:\n  driver = smtp\n  hosts = 127.0.0.1\n  port = {port}\n  allow_localhost\n"
        ),
    );
    // A local message (stdin, -i) with bare CRs and dots where a lenient
    // server would see line ends and an end of data.
    let body = "Subject: payload\n\nhello\r.\rMAIL FROM:<smuggled@example.org>\n.\n\
                x\r\n.\r\nRCPT TO:<v@example.org>\n..two\nend";
    let o = dir.run(&["-C", &conf, "-odi", "-i", "you@example.org"], body);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let wire = server.join().unwrap();
    assert!(
        wire.ends_with(b"\r\n.\r\n"),
        "{}",
        String::from_utf8_lossy(&wire)
    );
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR sent at {i}");
        }
        if b == b'\n' {
            assert!(i > 0 && wire[i - 1] == b'\r', "bare LF sent at {i}");
        }
    }
    let text = String::from_utf8_lossy(&wire);
    assert_eq!(text.matches("\r\n.\r\n").count(), 1, "{text}");
    assert!(
        text.contains("\r\n\r\nhello\r\n..\r\nMAIL FROM:<smuggled@example.org>\r\n..\r\nx\r\n..\r\nRCPT TO:<v@example.org>\r\n...two\r\nend\r\n.\r\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Untrusted data expanded

/// CVE-2019-10149 ("Return of the WIZard"): a recipient local part holding
/// `${run{...}}` was expanded while Exim handled its failure. Here the
/// recipient fails routing and bounces, the bounce is delivered, and the
/// hostile text (recipient, Subject, body) stays text everywhere: log,
/// bounce, delivered message.
#[test]
fn recipient_and_header_text_never_expanded_on_bounce() {
    let dir = TestDir::new();
    let d = dir.path().display().to_string();
    let conf = oxim_conf(
        &dir,
        &format!(
            "acl_smtp_rcpt = accept\n\
             begin routers\nlocal:\n  driver = accept\n  local_parts = you\n  transport = mbox\n\
             begin transports\nmbox:\n  driver = appendfile\n  file = {d}/mail/$local_part\n  create_directory\n"
        ),
    );
    let run = format!("${{run{{/bin/touch {d}/pwned}}}}");
    let input = format!(
        "EHLO x\r\nMAIL FROM:<you@test.ex>\r\nRCPT TO:<\"{run}\"@test.ex>\r\nRCPT TO:<you@test.ex>\r\n\
         DATA\r\nSubject: {run}\r\n\r\nbody {run}\r\n.\r\nQUIT\r\n"
    );
    let o = dir.run(&["-C", &conf, "-bs", "-odi"], &input);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("250 Accepted").count(), 2, "{out}");
    assert!(out.contains("250 OK id="), "{out}");
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(&format!("** \"{run}\"@test.ex : Unrouteable address")),
        "{log}"
    );
    let mbox = dir.read("mail/you");
    assert!(mbox.contains(&format!("\nSubject: {run}\n")), "{mbox}");
    assert!(mbox.contains(&format!("\nbody {run}\n")), "{mbox}");
    // The bounce for the hostile recipient reached you@test.ex with the
    // address as text.
    assert!(mbox.contains("Mail delivery failed"), "{mbox}");
    assert!(mbox.contains(&format!("\"{run}\"@test.ex")), "{mbox}");
    assert!(
        !dir.path().join("pwned").exists(),
        "an expansion item was run"
    );
}

/// CVE-2023-42115 (Exim AUTH EXTERNAL out-of-bounds write) and the AUTH
/// half of CVE-2019-10149's relatives: AUTH data never reaches the expander
/// or the spool; without authenticators AUTH is refused as Exim refuses it,
/// and the MAIL AUTH= parameter (xtext) cannot carry a line into `-H`
/// (21Nails CVE-2020-28021).
#[test]
fn auth_data_is_never_expanded() {
    let dir = TestDir::new();
    let d = dir.path().display().to_string();
    let (_dm, port) = daemon(&dir, "");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO x").starts_with("250"));
    let run = format!("${{run{{/bin/touch {d}/pwned}}}}");
    let b64 = base64_plain(&format!("\0{run}\0{run}"));
    let r = c.cmd(&format!("AUTH PLAIN {b64}"));
    assert!(r.starts_with("503"), "{r}");
    let r = c.cmd("AUTH EXTERNAL =");
    assert!(r.starts_with("503"), "{r}");
    // AUTH= with an xtext-encoded newline and a flag line.
    let r = c.cmd("MAIL FROM:<a@test.ex> AUTH=x+0A-local+0A-frozen+201");
    assert!(r.starts_with("250") || r.starts_with("501"), "{r}");
    if r.starts_with("250") {
        assert!(c.cmd("RCPT TO:<you@test.ex>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        assert!(c.cmd("Subject: x\r\n\r\nbody\r\n.").starts_with("250"));
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    for h in spooled_headers(&dir.path().join("spool")) {
        assert_no_forged_flags(&h, false, 1);
    }
    assert!(!dir.path().join("pwned").exists());
}

fn base64_plain(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `-H` file read back: no hostile value became a flag line (frozen,
/// `-N`, manual thaw, local error, an unknown flag) or an extra recipient,
/// and the file holds no NUL. `local` says whether `-local` belongs there.
fn assert_no_forged_flags(h: &str, local: bool, recipients: usize) {
    assert!(!h.contains('\0'), "NUL in\n{h}");
    let (env, _) = oxim_spool::parse_header(h.as_bytes()).expect("own -H file reads back");
    assert_eq!(env.local, local, "{h}");
    assert!(
        env.frozen.is_none() && !env.dont_deliver && !env.manual_thaw && !env.localerror,
        "forged flag in\n{h}"
    );
    assert!(
        env.extra.is_empty(),
        "unknown flag lines {:?} in\n{h}",
        env.extra
    );
    assert_eq!(env.recipients.len(), recipients, "{h}");
}

// ---------------------------------------------------------------------------
// No shell between an address and a command

/// OpenSMTPD CVE-2020-7247 (`MAIL FROM:<;sleep 66;>` reached a shell) and
/// CVE-2020-8794: addresses full of shell syntax reach a pipe command as
/// one argument each, and nothing in them runs.
#[test]
fn pipe_gets_hostile_addresses_as_single_arguments() {
    let dir = TestDir::new();
    let d = dir.path().display().to_string();
    let script = dir.write(
        "args.sh",
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > DIR/args.out\ncat > /dev/null\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = oxim_conf(
        &dir,
        &format!(
            "acl_smtp_rcpt = accept\n\
             begin routers\nall:\n  driver = accept\n  transport = p\n\
             begin transports\np:\n  driver = pipe\n  command = {d}/args.sh $sender_address $local_part\n"
        ),
    );
    let sender = format!(
        "\"$(touch {d}/pwned1)`touch {d}/pwned2`;touch {d}/pwned3;|touch {d}/pwned4\"@example.net"
    );
    let rcpt = format!("\"x y;touch {d}/pwned5 &\"@test.ex");
    let input = format!(
        "EHLO x\r\nMAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    );
    let o = dir.run(&["-C", &conf, "-bs", "-odi"], &input);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("250 OK id="), "{out}");
    let args = dir.read("args.out");
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args.len(), 2, "{args:?}\n{}", dir.read("log/mainlog"));
    assert_eq!(args[0], format!("[{sender}]"));
    // One argument holding the whole local part. (Exim gives $local_part
    // without its quotes; oxim still keeps them: an Exim difference, not a
    // way in.)
    let local = rcpt.rsplit_once('@').unwrap().0.trim_matches('"');
    assert_eq!(args[1].trim_matches(['[', ']']).trim_matches('"'), local);
    for n in 1..=5 {
        assert!(!dir.path().join(format!("pwned{n}")).exists(), "pwned{n}");
    }
}

// ---------------------------------------------------------------------------
// Newlines into the spool header file

/// 21Nails CVE-2020-28015 (newline in `-F`/`-f` into `-H`), CVE-2020-28026
/// (line truncation and injection in spool_read_header): whatever the
/// command line and the SMTP session give, each value stays on its line.
#[test]
fn no_input_adds_a_line_to_the_header_file() {
    let dir = TestDir::new();
    let conf = oxim_conf(
        &dir,
        "acl_smtp_rcpt = accept\nacl_smtp_data = accept set acl_m_x = $h_subject:\n",
    );
    // A line break in -f (Exim 4.96 refuses it too) or an -oM* value (Exim
    // takes -oMr's, and its -H file then holds a "-N" line of the caller's
    // making) is refused with a clear error; nothing is queued.
    for (opt, value) in [
        ("-f", "evil\n-local\n@test.ex"),
        ("-f", "evil@test.ex\r\nX-Injected: yes"),
        ("-oMr", "proto\n-N"),
        ("-oMs", "host.example\n-local"),
        ("-oMt", "ident\r-frozen 1"),
        ("-oMas", "a@b\n-N"),
    ] {
        // (No input: the command stops before reading any.)
        let o = dir.run(&["-C", &conf, "-odq", opt, value, "you@test.ex"], "");
        assert_eq!(o.status.code(), Some(1), "{opt} {value:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("line break not allowed"), "{err}");
    }
    let glued = dir.run(
        &["-C", &conf, "-odq", "-fevil\n-local@test.ex", "you@test.ex"],
        "",
    );
    assert_eq!(glued.status.code(), Some(1));
    assert!(spooled_headers(&dir.path().join("spool")).is_empty());
    // What is accepted is written one value a line.
    dir.run_ok(
        &[
            "-C",
            &conf,
            "-odq",
            "-f",
            "ok@test.ex",
            "-oMr",
            "proto",
            "you@test.ex",
        ],
        "Subject: s\n\nbody\n",
    );
    let hs = spooled_headers(&dir.path().join("spool"));
    assert_eq!(hs.len(), 1);
    assert_no_forged_flags(&hs[0], true, 1);
    assert!(hs[0].contains("\n-received_protocol proto\n"), "{}", hs[0]);
    // Over SMTP: a header value with bare LF and CR, and an ACL variable
    // taken from it.
    let (_d, port) = daemon(&dir, "acl_smtp_data = accept set acl_m_x = $h_subject:\n");
    let mut c = open_transaction(port, "x", "a@test.ex");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: a\n-local\r-frozen 1\r\nX-B: \0nul\r\n\r\nbody\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    let hs = spooled_headers(&dir.path().join("spool"));
    let remote: Vec<&String> = hs.iter().filter(|h| h.contains("-host_address")).collect();
    assert_eq!(hs.len(), 2);
    assert_eq!(remote.len(), 1);
    assert_no_forged_flags(remote[0], false, 1);
}

// ---------------------------------------------------------------------------
// Numbers

/// 21Nails CVE-2020-28017/28020 (integer overflows on sizes and counts) and
/// CVE-2020-28019 (BDAT): SIZE= and BDAT sizes are bounded, with Exim's
/// replies where Exim gives one; the daemon keeps serving.
#[test]
fn size_and_bdat_numbers_are_bounded() {
    let dir = TestDir::new();
    let (_d, port) = daemon(&dir, "message_size_limit = 10M\n");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO x").starts_with("250"));
    // Exim 4.96: 552 for each (huge, negative and past-u64 sizes count as
    // the largest size, never wrap).
    for size in [
        "99999999999999999999999",
        "-1",
        "18446744073709551617",
        "4294967297",
        "60000000",
    ] {
        assert_eq!(
            c.cmd(&format!("MAIL FROM:<a@test.ex> SIZE={size}")),
            "552 Message size exceeds maximum permitted",
            "SIZE={size}"
        );
    }
    assert!(c.cmd("MAIL FROM:<a@test.ex> SIZE=100").starts_with("250"));
    assert!(c.cmd("RCPT TO:<you@test.ex>").starts_with("250"));
    for bad in [
        "BDAT -5",
        "BDAT 0x10",
        "BDAT",
        "BDAT 99999999999999999999999 LAST",
    ] {
        let r = c.cmd(bad);
        assert!(r.starts_with("501"), "{bad}: {r}");
    }
    // A sane chunk still works, and the message is received.
    c.send("BDAT 20 LAST\r\nSubject: x\r\n\r\nbody\r\n");
    let r = c.reply();
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));
    assert_eq!(
        spooled_bodies(&dir.path().join("spool")),
        vec![b"body\n".to_vec()]
    );
}

// ---------------------------------------------------------------------------
// Open-relay probes

/// The classic relay probes against the demo configuration's ACL (accept
/// local domains, refuse the rest): percent hack, source routes, bang paths,
/// quoted local parts holding `@`, `%` and `!`, IP literals, upper case,
/// trailing dots. oxim refuses each where Exim 4.96 refuses it, with the
/// same code (recorded; re-checked live when Exim is here).
#[test]
fn relay_probes_refused_where_exim_refuses() {
    const PROBES: &[(&str, &str)] = &[
        ("user%example.org@test.ex", "250"),
        ("@test.ex:user@example.org", "550"),
        ("@a.example,@test.ex:user@example.org", "550"),
        ("example.org!user@test.ex", "250"),
        ("example.org!user", "501"),
        ("\"user@example.org\"@test.ex", "250"),
        ("\"user%example.org\"@test.ex", "250"),
        ("\"user!x\"@test.ex", "250"),
        ("user@[192.0.2.7]", "501"),
        ("user@[127.0.0.1]", "501"),
        ("user@TEST.EX", "250"),
        ("user@test.ex.", "501"),
        ("user@example.org", "550"),
        ("user@example.org.", "501"),
        ("user@example.org@test.ex", "501"),
        ("user%test.ex@example.org", "550"),
        ("USER@EXAMPLE.ORG", "550"),
    ];
    const ACL: &str = "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
                       accept  domains = +local_domains\n  deny    message = relay not permitted\n";
    let dir = TestDir::new();
    let (_d, port) = daemon(&dir, ACL);
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO probe.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@example.net>").starts_with("250"));
    let mut oxim_codes = Vec::new();
    for (rcpt, _) in PROBES {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        oxim_codes.push(r[..3].to_string());
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    let want: Vec<String> = PROBES.iter().map(|p| p.1.to_string()).collect();
    let table: Vec<String> = PROBES
        .iter()
        .zip(&oxim_codes)
        .map(|((r, e), o)| format!("{r:<40} oxim {o}  Exim {e}"))
        .collect();
    println!("{}", table.join("\n"));
    assert_eq!(oxim_codes, want, "\n{}", table.join("\n"));
    if let Some(bin) = exim::exim() {
        // Exim as a remote host would see it: -bs with -oMa (the caller,
        // root, is trusted).
        let edir = exim::exim_dir();
        let econf = exim::write_conf(
            &edir,
            &bin,
            &format!("smtp_max_synprot_errors = 100\n{ACL}"),
        );
        let mut input = String::from("EHLO probe.example\r\nMAIL FROM:<a@example.net>\r\n");
        for (rcpt, _) in PROBES {
            input.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        input.push_str("QUIT\r\n");
        let e = exim::run(
            &bin,
            edir.path(),
            &[
                "-C",
                econf.to_str().unwrap(),
                "-bs",
                "-oMa",
                "192.0.2.1",
                "-odq",
            ],
            &input,
        );
        let text = String::from_utf8_lossy(&e.stdout);
        let codes: Vec<String> = text
            .lines()
            .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
            .map(|l| l[..3].to_string())
            .collect();
        // 220, EHLO 250, MAIL 250, the probes, 221.
        assert_eq!(codes.len(), PROBES.len() + 4, "{text}");
        assert_eq!(
            codes[3..3 + PROBES.len()],
            want[..],
            "Exim now answers:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// Files through a path the caller chose

fn plant_victim(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let precious = dir.join("precious");
    std::fs::write(&precious, "precious\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
    let victim = dir.join("victim");
    std::os::unix::fs::symlink(&precious, &victim).unwrap();
    (precious, victim)
}

fn untouched(precious: &Path, victim: &Path) {
    assert_eq!(std::fs::read_to_string(precious).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(victim)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// 21Nails CVE-2020-28007/28014: Exim wrote its pid file (as root) through
/// a path or symlink its caller chose. oxim never follows a symlink for the
/// pid file, replaces only an earlier pid file, and an oxim installed
/// setuid starts no daemon for a caller who is not root, the exim user or
/// in its group.
#[test]
fn pid_file_is_never_written_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let (precious, victim) = plant_victim(dir.path());
    let conf = oxim_conf(&dir, "");
    for target in [&victim, &precious] {
        let port = free_port().to_string();
        let o = dir.run(
            &[
                "-C",
                &conf,
                "-bdf",
                "-oX",
                &port,
                "-oP",
                target.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(o.status.code(), Some(1), "{}", target.display());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("exists and is not a pid file"), "{err}");
        untouched(&precious, &victim);
    }
    // A fresh path: written 0644 with the pid; removed at a clean stop.
    let port = free_port();
    let d = Daemon::start(&dir, &["-C", &conf, "-oX", &port.to_string()]);
    let meta = std::fs::metadata(&d.pid_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        std::fs::read_to_string(&d.pid_file).unwrap(),
        format!("{}\n", d.pid())
    );
    let pid_file = d.pid_file.clone();
    // Once it serves (its signal handlers are set up by then), stop it.
    let mut c = Client::connect(port);
    assert!(c.cmd("QUIT").starts_with("221"));
    std::thread::sleep(Duration::from_millis(300));
    d.signal(libc::SIGTERM);
    assert!(wait_for(Duration::from_secs(10), || !pid_file.exists()));
    drop(d);

    // Installed setuid, run by nobody: refused before anything is written.
    let s = setuid::Setuid::new();
    s.private_conf("etc/oxim/configure", "/var/spool/oxim-setuid-test");
    let (precious, victim) = plant_victim(s.dir.path());
    let port = free_port().to_string();
    let o = s.run_as_nobody(&["-bdf", "-oX", &port, "-oP", victim.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("permission denied; not admin"),
        "{o:?}"
    );
    untouched(&precious, &victim);
    let o = s.run_as_nobody(&["-bd", "-oX", &port, "-oP", victim.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    untouched(&precious, &victim);
}
