//! Limits a public MTA needs against hostile clients, and crash leftovers on
//! the spool (issue 8, "Hostile clients" and "crash"): per-line and
//! per-session timeouts against slowloris clients, header size limits and
//! message_size_limit enforced while the message streams in, connection
//! limits in total and per host, recipients_max, temporary files left by a
//! crash, and truncated -H files.

mod common;

use common::*;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The main section shared by these tests (routers and transports follow).
fn base() -> String {
    format!(
        r#"
{TEST_MAIN}acl_smtp_rcpt = accept domains = +local_domains
queue_only

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

/// Write a configuration with `extra` main options and start a daemon on it.
fn start(dir: &TestDir, extra: &str) -> (Daemon, u16, String) {
    let port = free_port();
    let conf = dir.write("test.conf", &format!("{extra}\n{}", base()));
    let conf = conf.to_str().unwrap().to_string();
    let d = Daemon::start(dir, &["-C", &conf, "-oX", &port.to_string()]);
    (d, port, conf)
}

/// MAIL, RCPT and DATA for one message, each required to succeed.
fn envelope(c: &mut Client) {
    let r = c.cmd("MAIL FROM:<s@example.org>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("RCPT TO:<u@test.ex>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
}

/// Send `bytes` one at a time, `every` apart, until the server says
/// something. Returns that reply and the time since the first byte.
fn trickle(c: &mut Client, bytes: &[u8], every: Duration) -> (String, Duration) {
    c.stream.set_read_timeout(Some(every)).unwrap();
    let t0 = Instant::now();
    let mut line = String::new();
    for b in bytes {
        if c.stream.write_all(&[*b]).is_err() {
            break;
        }
        match c.reader.read_line(&mut line) {
            Ok(0) => return ("EOF".into(), t0.elapsed()),
            Ok(_) => return (line.trim_end().to_string(), t0.elapsed()),
            Err(_) => continue, // nothing yet: the pause between bytes
        }
    }
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = c.reader.read_line(&mut line);
    (line.trim_end().to_string(), t0.elapsed())
}

fn assert_between(what: &str, d: Duration, lo: f64, hi: f64) {
    let s = d.as_secs_f64();
    assert!(
        (lo..=hi).contains(&s),
        "{what}: took {s:.2} s, expected {lo}..{hi} s"
    );
}

/// Slowloris: a client trickling one byte per second of a command line, or
/// of a body line, is cut off once the line has taken smtp_receive_timeout;
/// a client sending a complete NOOP every second is cut off at
/// smtp_session_max_time. Meanwhile another client is served, and a line
/// that arrives in two parts within the timeout is fine.
#[test]
fn slow_clients_are_cut_off_per_line_and_per_session() {
    let dir = TestDir::new();
    let (_d, port, _) = start(
        &dir,
        "smtp_receive_timeout = 2s\nsmtp_session_max_time = 5s",
    );
    let sec = Duration::from_secs(1);

    let command = thread::spawn(move || {
        let mut c = Client::connect(port);
        trickle(&mut c, b"NOOP and a line that never ends", sec)
    });
    let data = thread::spawn(move || {
        let mut c = Client::connect(port);
        assert!(c.cmd("EHLO slowdata.example").starts_with("250 "));
        envelope(&mut c);
        trickle(&mut c, b"Subject: a body line that never ends", sec)
    });
    let noop = thread::spawn(move || {
        let mut c = Client::connect(port);
        let t0 = Instant::now();
        assert!(c.cmd("EHLO noop.example").starts_with("250 "));
        loop {
            let r = c.cmd("NOOP");
            if !r.starts_with("250") || t0.elapsed() > Duration::from_secs(15) {
                return (r, t0.elapsed());
            }
            thread::sleep(sec);
        }
    });
    let served = thread::spawn(move || {
        thread::sleep(sec);
        let mut c = Client::connect(port);
        // One command line in two parts, 1 s apart: within the timeout.
        c.send("EHLO ok.");
        thread::sleep(sec);
        let r = c.cmd("example");
        assert!(r.starts_with("250 "), "{r}");
        envelope(&mut c);
        c.send("Subject: served\r\n\r\nfine\r\n.\r\n");
        let r = c.reply();
        assert!(r.starts_with("250 OK id="), "{r}");
        assert!(c.cmd("QUIT").starts_with("221"));
    });

    let (r, took) = command.join().unwrap();
    assert_eq!(
        r,
        "421 myhost.test.ex: SMTP command timeout - closing connection"
    );
    assert_between("trickled command line", took, 1.5, 3.5);
    let (r, took) = data.join().unwrap();
    assert_eq!(
        r,
        "421 myhost.test.ex SMTP incoming data timeout - closing connection."
    );
    assert_between("trickled body line", took, 1.5, 3.5);
    let (r, took) = noop.join().unwrap();
    assert_eq!(
        r,
        "421 myhost.test.ex: SMTP session time limit exceeded - closing connection"
    );
    assert_between("NOOP every second", took, 4.5, 7.0);
    served.join().unwrap();

    let log = log_lines(&dir.read("log/mainlog"));
    let has = |prefix: &str| log.iter().any(|l| l.starts_with(prefix));
    assert!(
        has("SMTP command timeout on connection from [127.0.0.1] D="),
        "{log:#?}"
    );
    assert!(
        has("SMTP data timeout (message abandoned) on connection from (slowdata.example) [127.0.0.1] F=<s@example.org> D="),
        "{log:#?}"
    );
    assert!(
        has("SMTP session time limit exceeded on connection from (noop.example) [127.0.0.1] D="),
        "{log:#?}"
    );
    // Only the served client's message was accepted.
    assert_eq!(
        log.iter().filter(|l| l.contains(" <= ")).count(),
        1,
        "{log:#?}"
    );
}

/// A client that pipelines commands and never reads the replies cannot
/// park the session in a blocked write: it is dropped once a reply has
/// waited smtp_receive_timeout to be taken.
#[test]
fn client_that_never_reads_is_dropped() {
    let dir = TestDir::new();
    // No host is subject to smtp_accept_max_nonmail here: the RSETs must
    // not end the session before the write timeout does.
    let (_d, port, _) = start(
        &dir,
        "smtp_receive_timeout = 2s\nsmtp_accept_max_nonmail_hosts =",
    );
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO deaf.example").starts_with("250 "));
    let mut w = c.stream.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let t0 = Instant::now();
    let writer = thread::spawn(move || {
        let block = b"RSET\r\n".repeat(10_000);
        // Until the socket fills up (the server stopped reading) or closes.
        while w.write_all(&block).is_ok() && t0.elapsed() < Duration::from_secs(30) {}
    });
    let dropped = wait_for(Duration::from_secs(20), || {
        dir.read("log/mainlog")
            .contains("SMTP command timeout on connection from (deaf.example) [127.0.0.1]")
    });
    assert!(dropped, "a client that never reads was not dropped");
    assert_between("dropping the deaf client", t0.elapsed(), 1.5, 10.0);
    writer.join().unwrap();
}

/// smtp_accept_max_nonmail: one RSET and one EHLO per message are free,
/// the other non-mail commands count, and one too many ends the session
/// with Exim's 554 and log line.
#[test]
fn too_many_nonmail_commands_drop_the_session() {
    let dir = TestDir::new();
    let (_d, port, _) = start(&dir, "smtp_accept_max_nonmail = 2");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO busy.example").starts_with("250 "));
    assert!(c.cmd("RSET").starts_with("250 "));
    assert!(c.cmd("NOOP").starts_with("250 "));
    assert!(c.cmd("NOOP").starts_with("250 "));
    assert_eq!(c.cmd("NOOP"), "554 Too many nonmail commands");
    let dropped = wait_for(Duration::from_secs(10), || {
        dir.read("log/mainlog").contains(
            "SMTP call from (busy.example) [127.0.0.1] dropped: too many nonmail commands (last was \"NOOP\")",
        )
    });
    assert!(dropped, "{}", dir.read("log/mainlog"));
}

/// header_maxsize and header_line_maxsize: Exim's replies and log lines;
/// the body does not count, and the session goes on after a rejection.
#[test]
fn header_limits_reject_with_exims_replies() {
    let dir = TestDir::new();
    let (_d, port, _) = start(
        &dir,
        "header_maxsize = 2000\nheader_line_maxsize = 500\nchunking_advertise_hosts = *",
    );
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO c.example").starts_with("250 "));

    // 40 short fields, about 3000 characters in all.
    envelope(&mut c);
    let many: String = (0..40)
        .map(|i| format!("X-Filler-{i:02}: {}\r\n", "f".repeat(60)))
        .collect();
    c.send(&format!("{many}\r\nbody\r\n.\r\n"));
    assert_eq!(c.reply(), "552 Message header is ridiculously long");

    // One folded field of about 640 characters.
    envelope(&mut c);
    let folded: String = (0..10)
        .map(|_| format!(" {}\r\n", "g".repeat(60)))
        .collect();
    c.send(&format!(
        "Subject: s\r\nX-Folded: a\r\n{folded}\r\nbody\r\n.\r\n"
    ));
    assert_eq!(c.reply(), "552 A message header line is too long");

    // Under both limits, with a body far bigger than either: accepted.
    envelope(&mut c);
    let folded: String = (0..6).map(|_| format!(" {}\r\n", "h".repeat(60))).collect();
    let body = format!("{}\r\n", "b".repeat(998)).repeat(100);
    c.send(&format!(
        "Subject: fits\r\nX-Folded: a\r\n{folded}\r\n{body}.\r\n"
    ));
    let r = c.reply();
    assert!(r.starts_with("250 OK id="), "{r}");

    // The same limits hold for a message sent in BDAT chunks.
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    let msg = format!("{many}\r\nbody\r\n");
    let (first, rest) = msg.split_at(1000);
    c.send(&format!("BDAT {}\r\n{first}", first.len()));
    assert!(c.reply().starts_with("250"));
    c.send(&format!("BDAT {} LAST\r\n{rest}", rest.len()));
    assert_eq!(c.reply(), "552 Message header is ridiculously long");
    assert!(c.cmd("QUIT").starts_with("221"));

    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("ridiculously long message header"))
            .count(),
        2,
        "{log:#?}"
    );
    for want in [
        "ridiculously long message header received from (c.example) [127.0.0.1] (more than 2000 characters): message abandoned",
        "overlong message header line received from (c.example) [127.0.0.1] (more than 500 characters): message abandoned",
    ] {
        assert!(log.iter().any(|l| l == want), "no {want:?} in {log:#?}");
    }
    assert_eq!(
        log.iter().filter(|l| l.contains(" <= ")).count(),
        1,
        "{log:#?}"
    );
}

/// Send DATA content of `total` bytes made by repeating `unit`, then the
/// terminating dot, while a thread samples the daemon's resident memory.
/// Returns (reply, largest growth over the starting RSS in KiB).
fn send_big(c: &mut Client, pid: i32, head: &str, unit: &[u8], total: usize) -> (String, u64) {
    let before = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    c.send(head);
    let block: Vec<u8> = unit.repeat((1 << 20) / unit.len());
    let mut sent = 0;
    while sent < total {
        c.stream.write_all(&block).unwrap();
        sent += block.len();
    }
    c.send("\r\n.\r\n");
    let r = c.reply();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (r, peak.load(Ordering::Relaxed).saturating_sub(before))
}

fn big_mb() -> usize {
    std::env::var("OXIM_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// message_size_limit is checked while the body streams in: a 200 MB body
/// against a 1 MB limit gets 552 and the daemon never holds it in memory.
#[test]
fn oversized_message_is_refused_without_buffering_it() {
    let dir = TestDir::new();
    let (d, port, _) = start(&dir, "message_size_limit = 1M");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO big.example").starts_with("250 "));
    envelope(&mut c);
    let mb = big_mb();
    let line = format!("{}\r\n", "x".repeat(1022));
    let (r, grew) = send_big(
        &mut c,
        d.pid(),
        "Subject: big\r\n\r\n",
        line.as_bytes(),
        mb << 20,
    );
    println!("limits: {mb} MB body against a 1 MB limit: daemon RSS grew by {grew} KiB");
    assert_eq!(r, "552 Message size exceeds maximum permitted");
    assert!(
        grew < 32 * 1024,
        "daemon grew by {grew} KiB while refusing a {mb} MB message"
    );
    // The session goes on and a normal message is accepted.
    envelope(&mut c);
    c.send("Subject: small\r\n\r\nok\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    let main = dir.read("log/mainlog");
    assert!(
        main.contains("rejected after DATA: message too big"),
        "{main}"
    );
}

/// header_maxsize is checked while streaming too: an endless header line is
/// refused without being held in memory, even with no message_size_limit.
#[test]
fn endless_header_is_refused_without_buffering_it() {
    let dir = TestDir::new();
    let (d, port, _) = start(&dir, "message_size_limit = 0");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO big.example").starts_with("250 "));
    envelope(&mut c);
    let mb = big_mb() / 2;
    let (r, grew) = send_big(&mut c, d.pid(), "X-Endless: ", b"e", mb << 20);
    println!("limits: {mb} MB header line: daemon RSS grew by {grew} KiB");
    assert_eq!(r, "552 Message header is ridiculously long");
    assert!(
        grew < 32 * 1024,
        "daemon grew by {grew} KiB while refusing a {mb} MB header"
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter().any(|l| l == "ridiculously long message header received from (big.example) [127.0.0.1] (more than 1048576 characters): message abandoned"),
        "{log:#?}"
    );
}

/// smtp_accept_max and smtp_accept_max_per_host: one connection too many
/// gets Exim's 421 and log line while those already in are served; another
/// address still gets in under the per-host limit; a closed connection
/// frees its place.
#[test]
fn connection_limits_in_total_and_per_host() {
    let dir = TestDir::new();
    let (_d, port, _) = start(&dir, "smtp_accept_max = 3\nsmtp_accept_max_per_host = 2");
    let from = |ip: &str| -> (Client, String) {
        let ip: IpAddr = ip.parse().unwrap();
        Client::open(port, Some(ip))
    };
    let (mut a1, r) = from("127.0.0.1");
    assert!(r.starts_with("220 "), "{r}");
    let (mut a2, r) = from("127.0.0.1");
    assert!(r.starts_with("220 "), "{r}");
    // A third from the same address: over the per-host limit.
    let (mut a3, r) = from("127.0.0.1");
    assert_eq!(
        r,
        "421 Too many concurrent SMTP connections from this IP address; please try again later."
    );
    assert_eq!(a3.reply(), "EOF");
    drop(a3);
    thread::sleep(Duration::from_millis(200));
    // Another address is still let in...
    let (mut b1, r) = from("127.0.0.2");
    assert!(r.starts_with("220 "), "{r}");
    // ...until the total is reached.
    let (mut c1, r) = from("127.0.0.3");
    assert_eq!(
        r,
        "421 Too many concurrent SMTP connections; please try again later."
    );
    assert_eq!(c1.reply(), "EOF");
    // The connections already in are served.
    for c in [&mut a1, &mut a2, &mut b1] {
        assert!(c.cmd("EHLO in.example").starts_with("250 "));
    }
    // Once one leaves, its address may connect again.
    assert!(a1.cmd("QUIT").starts_with("221"));
    drop(a1);
    assert!(
        wait_for(Duration::from_secs(5), || from("127.0.0.1")
            .1
            .starts_with("220 ")),
        "place not freed after QUIT"
    );
    drop((a2, b1));
    let log = log_lines(&dir.read("log/mainlog"));
    for want in [
        "Connection from [127.0.0.1] refused: too many connections from that IP address",
        "Connection from [127.0.0.3] refused: too many connections",
    ] {
        assert!(log.iter().any(|l| l == want), "no {want:?} in {log:#?}");
    }
}

/// recipients_max: the recipient after the maximum gets Exim's 452, and the
/// message goes to those accepted.
#[test]
fn recipients_over_the_maximum_get_452() {
    let dir = TestDir::new();
    let (_d, port, conf) = start(&dir, "recipients_max = 2");
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO c.example").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<a@test.ex>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@test.ex>").starts_with("250"));
    assert_eq!(c.cmd("RCPT TO:<c@test.ex>"), "452 too many recipients");
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: two\r\n\r\nx\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    let out = dir.run_ok(&["-C", &conf, "-bp"], "");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("a@test.ex") && listing.contains("b@test.ex"),
        "{listing}"
    );
    assert!(!listing.contains("c@test.ex"), "{listing}");
}

// ----- crash leftovers ------------------------------------------------------

/// Queue a message from the command line; returns its id.
fn queue_message(dir: &TestDir, conf: &str, subject: &str) -> String {
    let before = dir.read("log/mainlog").lines().count();
    dir.run_ok(
        &["-C", conf, "-odq", "u@test.ex"],
        &format!("Subject: {subject}\n\n{subject} body\n"),
    );
    let log = dir.read("log/mainlog");
    let line = log
        .lines()
        .skip(before)
        .find(|l| l.contains(" <= "))
        .expect("<= line");
    strip_time(line).split(' ').next().unwrap().to_string()
}

fn input(dir: &TestDir) -> PathBuf {
    dir.path().join("spool/input")
}

/// Set a file's modification time `ago` in the past.
fn age(path: &Path, ago: &str) {
    let ok = std::process::Command::new("touch")
        .arg("-d")
        .arg(ago)
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "touch -d {ago} {}", path.display());
}

/// Well-formed ids that are not `id`: its second character changed to
/// each of `chars` (skipping the one it has).
fn other_ids(id: &str, chars: &str) -> Vec<String> {
    chars
        .chars()
        .filter(|c| !id[1..].starts_with(*c))
        .map(|c| format!("{}{c}{}", &id[..1], &id[2..]))
        .collect()
}

/// What a crash between the spool write and the rename leaves behind:
/// temporary files, and a -D file whose -H file was never renamed into
/// place. They are never listed or delivered, and queue runs remove them,
/// with a log line, once they are old.
#[test]
fn crash_debris_is_never_delivered_and_old_debris_is_removed() {
    let dir = TestDir::new();
    let conf = dir.write("c.conf", &base());
    let conf = conf.to_str().unwrap();
    let real = queue_message(&dir, conf, "real");
    let inp = input(&dir);
    let h = std::fs::read(inp.join(format!("{real}-H"))).unwrap();
    let d = std::fs::read(inp.join(format!("{real}-D"))).unwrap();
    // Debris from three crashed receptions, as the spool writer names it.
    let ghosts = other_ids(&real, "XYZW");
    let (g1, g2, g3) = (&ghosts[0], &ghosts[1], &ghosts[2]);
    let ghost = |id: &str, text: &[u8]| {
        String::from_utf8_lossy(text)
            .replace(&real, id)
            .replace("real", "ghost")
    };
    let old_tmp_d = inp.join(format!("tmp-{g1}-D"));
    let old_tmp_h = inp.join(format!("tmp-{g1}-H"));
    std::fs::write(&old_tmp_d, ghost(g1, &d)).unwrap();
    std::fs::write(&old_tmp_h, ghost(g1, &h)).unwrap();
    // -D renamed, -H not: a crash between the two renames.
    let old_lone_d = inp.join(format!("{g2}-D"));
    std::fs::write(&old_lone_d, ghost(g2, &d)).unwrap();
    let old_tmp_h2 = inp.join(format!("tmp-{g2}-H"));
    std::fs::write(&old_tmp_h2, ghost(g2, &h)).unwrap();
    for p in [&old_tmp_d, &old_tmp_h, &old_lone_d, &old_tmp_h2] {
        age(p, "2 hours ago");
    }
    // A recent temporary file may belong to a reception in progress.
    let recent = inp.join(format!("tmp-{g3}-D"));
    std::fs::write(&recent, ghost(g3, &d)).unwrap();

    let out = dir.run_ok(&["-C", conf, "-bp"], "");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&real), "{listing}");
    for g in [g1, g2, g3] {
        assert!(
            !listing.contains(g.as_str()),
            "debris {g} listed: {listing}"
        );
    }
    dir.run_ok(&["-C", conf, "-qf"], "");
    let mbox = dir.read("mail/u");
    assert_eq!(mbox.matches("Subject: ").count(), 1, "{mbox}");
    assert!(mbox.contains("Subject: real"), "{mbox}");
    assert!(!mbox.contains("ghost"), "debris delivered: {mbox}");
    for p in [&old_tmp_d, &old_tmp_h, &old_lone_d, &old_tmp_h2] {
        assert!(!p.exists(), "{} not removed", p.display());
    }
    assert!(recent.exists(), "a recent temporary file was removed");
    let log = log_lines(&dir.read("log/mainlog"));
    for p in [&old_tmp_d, &old_tmp_h, &old_lone_d, &old_tmp_h2] {
        let want = format!("removed stale spool file {} (left by a crash)", p.display());
        assert!(log.contains(&want), "no {want:?} in {log:#?}");
    }
}

/// Truncate message `id`'s -H file: to nothing, or in the middle of a line.
fn damage(dir: &TestDir, id: &str, to_nothing: bool) {
    let path = input(dir).join(format!("{id}-H"));
    let text = std::fs::read(&path).unwrap();
    let cut = if to_nothing {
        0
    } else {
        // Half way, moved back off a line end so the cut is mid-line.
        let mut cut = text.len() / 2;
        while text[cut - 1] == b'\n' || text[cut] == b'\n' {
            cut -= 1;
        }
        cut
    };
    std::fs::write(&path, &text[..cut]).unwrap();
}

/// The checks after a command met a damaged message: it did not panic, it
/// logged Exim's format error naming the file, and the message's files are
/// in quarantine/ with the reason, no longer in input/.
fn assert_quarantined(dir: &TestDir, out: &std::process::Output, id: &str, size: usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    let log = log_lines(&dir.read("log/mainlog"));
    let want = format!("{id} Format error in spool file {id}-H: size={size}");
    assert!(log.contains(&want), "no {want:?} in {log:#?}");
    let q = dir.path().join("spool/quarantine");
    for f in [format!("{id}-H"), format!("{id}-D"), format!("{id}.reason")] {
        assert!(q.join(&f).exists(), "{f} not in quarantine");
    }
    assert!(!input(dir).join(format!("{id}-H")).exists());
    assert!(!input(dir).join(format!("{id}-D")).exists());
}

/// A -H file truncated by a crash (to nothing, or mid-line) is reported and
/// quarantined by -M, -bp, -qf and -q, which never crash on it; the other
/// messages are still listed and delivered.
#[test]
fn truncated_header_files_are_quarantined_by_every_queue_command() {
    let dir = TestDir::new();
    let conf = dir.write("c.conf", &base());
    let conf = conf.to_str().unwrap();
    let ids: Vec<String> = (1..=5)
        .map(|i| queue_message(&dir, conf, &format!("m{i}")))
        .collect();
    let h_len = |id: &str| {
        std::fs::metadata(input(&dir).join(format!("{id}-H")))
            .map(|m| m.len() as usize)
            .unwrap()
    };

    // -M on a message cut mid-line: an error, not a crash.
    damage(&dir, &ids[0], false);
    let size = h_len(&ids[0]);
    let out = dir.run(&["-C", conf, "-M", &ids[0]], "");
    assert!(!out.status.success(), "-M on a damaged message succeeded");
    assert_quarantined(&dir, &out, &ids[0], size);

    // -bp with an empty -H file: the others are still listed.
    damage(&dir, &ids[1], true);
    let out = dir.run(&["-C", conf, "-bp"], "");
    assert_quarantined(&dir, &out, &ids[1], 0);
    let listing = String::from_utf8_lossy(&out.stdout);
    for id in &ids[2..] {
        assert!(listing.contains(id.as_str()), "{id} not listed: {listing}");
    }

    // -qf with one of each: both quarantined, the good one delivered.
    damage(&dir, &ids[2], false);
    damage(&dir, &ids[3], true);
    let size = h_len(&ids[2]);
    let out = dir.run(&["-C", conf, "-qf"], "");
    assert!(out.status.success());
    assert_quarantined(&dir, &out, &ids[2], size);
    assert_quarantined(&dir, &out, &ids[3], 0);
    assert!(dir.read("mail/u").contains("Subject: m5"));

    // -q likewise.
    let good = queue_message(&dir, conf, "m6");
    let bad = queue_message(&dir, conf, "m7");
    damage(&dir, &bad, true);
    let out = dir.run(&["-C", conf, "-q"], "");
    assert!(out.status.success());
    assert_quarantined(&dir, &out, &bad, 0);
    assert!(!input(&dir).join(format!("{good}-H")).exists());

    let mbox = dir.read("mail/u");
    assert_eq!(mbox.matches("Subject: ").count(), 2, "{mbox}");
    assert!(mbox.contains("Subject: m6"), "{mbox}");
    let out = dir.run_ok(&["-C", conf, "-bp"], "");
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
