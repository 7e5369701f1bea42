//! Reception through the real daemon: durability across SIGKILL, and a table
//! of bad inputs with the replies and log lines a client and an operator
//! should see (issue "Reception").

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CONF: &str = r#"
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
# The tests run as whoever runs them (root in CI): keep that user, and let
# it deliver to files.
exim_user = root
never_users =
log_file_path = DIR/log/%slog
helo_lookup_domains =
domainlist local_domains = test.ex
acl_smtp_rcpt = rcpt_acl
message_size_limit = 10K
recipients_max = 3
smtp_max_synprot_errors = 50
queue_only
# No STARTTLS (without this, as in Exim, a self-signed certificate is used).
tls_advertise_hosts =

begin acl

rcpt_acl:
  deny    local_parts = blocked
          message = that user is blocked
  accept  domains = +local_domains
  deny    message = relay not permitted

begin routers

local:
  driver = accept
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory
"#;

fn start(dir: &TestDir) -> (Daemon, u16, String) {
    let port = free_port();
    let conf = dir.write("test.conf", CONF);
    let conf = conf.to_str().unwrap().to_string();
    let d = Daemon::start(dir, &["-C", &conf, "-oX", &port.to_string()]);
    (d, port, conf)
}

#[test]
fn message_survives_sigkill_right_after_250() {
    survives_sigkill(CONF);
}

/// The same with per-file fdatasync forced.
#[test]
fn message_survives_sigkill_right_after_250_with_fdatasync() {
    survives_sigkill(&CONF.replace("queue_only", "queue_only\nspool_sync = fdatasync"));
}

/// The same with one syncfs(2) per group commit instead of per-file syncs.
#[test]
fn message_survives_sigkill_right_after_250_with_syncfs() {
    survives_sigkill(&CONF.replace("queue_only", "queue_only\nspool_sync = syncfs"));
}

fn survives_sigkill(conf_text: &str) {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write("test.conf", conf_text);
    let conf = conf.to_str().unwrap().to_string();
    let daemon = Daemon::start(&dir, &["-C", &conf, "-oX", &port.to_string()]);
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO client.example").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let body: String = (0..200)
        .map(|i| format!("line {i} of the body\r\n"))
        .collect();
    c.send(&format!("Subject: durable\r\n\r\n{body}.\r\n"));
    let r = c.reply();
    assert!(r.starts_with("250 OK id="), "{r}");
    let id = r.trim_start_matches("250 OK id=").to_string();
    // Kill it the moment the 250 arrives: no chance to tidy up.
    daemon.signal(9);
    drop(daemon);
    // The message is complete on the spool...
    let listing = dir.run(&["-C", &conf, "-bp"], "");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(
        listing.contains(&id) && listing.contains("u@test.ex"),
        "{listing}"
    );
    // ...and a queue run delivers all of it.
    dir.run_ok(&["-C", &conf, "-qf"], "");
    let mbox = dir.read("mail/u");
    assert!(mbox.contains("Subject: durable"), "{mbox}");
    assert!(mbox.contains("line 199 of the body\n"), "body truncated");
    assert_eq!(mbox.matches("line ").count(), 200);
}

/// (what is sent, the reply code it must get).
const BAD: &[(&str, &str)] = &[
    ("NOSUCHCOMMAND", "500"),
    ("MAIL FROM:<s@example.org>", "250"),
    ("MAIL FROM:<s@example.org>", "503"), // sender already given
    ("RSET", "250"),
    ("RCPT TO:<u@test.ex>", "503"), // RCPT before MAIL
    ("DATA", "503"),                // DATA before MAIL
    ("MAIL FROM:<bad address@>", "501"),
    ("MAIL FROM:<s@example.org>", "250"),
    ("DATA", "503"), // no valid recipient
    ("RCPT TO:<>", "501"),
    ("RCPT TO:<blocked@test.ex>", "550"),
    ("RCPT TO:<x@elsewhere.example>", "550"),
    ("RSET", "250"),
    ("MAIL FROM:<s@example.org>", "250"),
    ("RCPT TO:<a@test.ex>", "250"),
    ("RCPT TO:<b@test.ex>", "250"),
    ("RCPT TO:<c@test.ex>", "250"),
    ("RCPT TO:<d@test.ex>", "452"), // recipients_max
    ("RSET", "250"),
    ("MAIL FROM:<s@example.org> SIZE=999999", "552"),
    ("MAIL FROM:<s@example.org> BODY=NONSENSE", "501"),
    ("NOOP", "250"),
    ("HELP", "214"),
    ("VRFY u@test.ex", "252"),
    ("EXPN list", "550"),
    ("STARTTLS", "503"), // not advertised
];

#[test]
fn bad_input_gets_clear_replies_and_the_daemon_keeps_serving() {
    let dir = TestDir::new();
    let (_daemon, port, _conf) = start(&dir);
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO client.example").starts_with("250 "));
    for (i, (line, code)) in BAD.iter().enumerate() {
        let r = c.cmd(line);
        assert!(
            r.starts_with(code),
            "case {i}: {line:?} got {r:?}, want {code}"
        );
    }
    // An over-long command line is refused.
    let long = format!("MAIL FROM:<{}@example.org>", "x".repeat(20_000));
    let r = c.cmd(&long);
    assert!(r.starts_with("500"), "{r}");
    // A message over message_size_limit is refused after DATA, nothing kept.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let big = "y".repeat(100) + "\r\n";
    c.send(&format!("Subject: big\r\n\r\n{}.\r\n", big.repeat(200)));
    let r = c.reply();
    assert!(r.starts_with("552"), "{r}");
    // Still serving this client: a good message goes through.
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: fine\r\n\r\nok\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    assert!(c.cmd("QUIT").starts_with("221"));

    // A client that keeps sending junk is dropped after the error limit,
    // while another client is served normally at the same time.
    let mut junk = Client::connect(port);
    let mut other = Client::connect(port);
    let mut last = String::new();
    for _ in 0..5 {
        last = junk.cmd("JUNK");
        if last.starts_with("421") || last == "EOF" {
            break;
        }
    }
    assert!(
        last.starts_with("421") || last == "EOF",
        "junk client not dropped: {last}"
    );
    assert!(other.cmd("EHLO other.example").starts_with("250 "));
    assert!(other.cmd("QUIT").starts_with("221"));

    // The rejections are in the main and reject logs with the host and reason.
    let main = dir.read("log/mainlog");
    let reject = dir.read("log/rejectlog");
    for log in [&main, &reject] {
        assert!(
            log.contains("H=(client.example) [127.0.0.1] F=<s@example.org> rejected RCPT <blocked@test.ex>: that user is blocked"),
            "{log}"
        );
        assert!(
            log.contains("H=(client.example) [127.0.0.1] F=<s@example.org> rejected RCPT <x@elsewhere.example>: relay not permitted"),
            "{log}"
        );
    }
    assert!(
        main.contains("rejected after DATA: message too big"),
        "{main}"
    );
    // Exactly one message was accepted ("fine"; queue_only keeps it queued).
    let accepted = main.lines().filter(|l| l.contains(" <= ")).count();
    assert_eq!(accepted, 1, "{main}");
}

#[test]
fn silent_client_times_out_with_421() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write(
        "t.conf",
        &CONF.replace("queue_only", "queue_only\nsmtp_receive_timeout = 1s"),
    );
    let _d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let mut c = Client::connect(port);
    let mut rest = String::new();
    let _ = c.reader.read_to_string(&mut rest);
    assert!(rest.starts_with("421 "), "{rest}");
    assert!(rest.contains("SMTP command timeout"), "{rest}");
}

/// Untrusted text (HELO name, sender, recipient) is never expanded again:
/// expansion items in it reach the log as plain text.
#[test]
fn expansion_items_from_the_network_stay_text() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write(
        "x.conf",
        &CONF.replace(
            "acl_smtp_rcpt = rcpt_acl",
            "acl_smtp_rcpt = accept logwrite = SEEN helo=$sender_helo_name from=$sender_address to=$local_part@$domain",
        ),
    );
    let _d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let evil = "${run{/bin/touch DIR/pwned}}";
    let evil = evil.replace("DIR", &dir.path().display().to_string());
    let mut c = Client::connect(port);
    let helo = format!("EHLO {}", evil.replace(' ', ""));
    let r = c.cmd(&helo);
    // Exim refuses such a HELO name outright; either way it is not run.
    let helo_ok = r.starts_with("250");
    if !helo_ok {
        assert!(r.starts_with("501"), "{r}");
        assert!(c.cmd("EHLO plain.example").starts_with("250"));
    }
    assert!(c
        .cmd("MAIL FROM:<\"${lookup{x}lsearch{/etc/passwd}}\"@example.org>")
        .starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:<\"{}\"@test.ex>", evil));
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));
    let main = dir.read("log/mainlog");
    let seen = main
        .lines()
        .find(|l| l.contains("SEEN"))
        .expect("logwrite line");
    assert!(
        seen.contains("from=\"${lookup{x}lsearch{/etc/passwd}}\"@example.org"),
        "{seen}"
    );
    // The RCPT ACL sees the local part lower-cased, as in Exim.
    let lower = evil.to_lowercase();
    assert!(seen.contains(&format!("to=\"{lower}\"@test.ex")), "{seen}");
    if helo_ok {
        assert!(seen.contains("helo=${run{"), "{seen}");
    }
    assert!(
        !dir.path().join("pwned").exists(),
        "an expansion item from the network was run"
    );
}

/// A full spool disk: the client gets a 4xx, nothing is logged as received,
/// and nothing half-written is left as a message. Root only (tmpfs mount
/// inside a private mount namespace).
#[test]
fn full_spool_disk_gives_451_and_claims_nothing() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root to mount a small tmpfs in a private mount namespace");
    }
    let dir = TestDir::new();
    let port = free_port();
    std::fs::create_dir_all(dir.path().join("spool")).unwrap();
    let conf = dir.write("full.conf", CONF);
    // The daemon runs in its own mount namespace with a 16 KiB spool.
    let pid_file = dir.path().join("daemon.pid");
    let script = format!(
        "mount -t tmpfs -o size=16k tmpfs {spool} && exec {bin} -C {conf} -oX {port} -bdf -oP {pid}",
        spool = dir.path().join("spool").display(),
        bin = oxim_bin().display(),
        conf = conf.display(),
        pid = pid_file.display(),
    );
    let child = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("unshare");
    // Stop the daemon however the test ends.
    struct Guard(std::process::Child, std::path::PathBuf);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(&self.1) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Guard(child, pid_file.clone());
    assert!(
        wait_for(std::time::Duration::from_secs(10), || pid_file.exists()),
        "daemon did not start"
    );
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO client.example").starts_with("250 "));
    // A message that fits is accepted...
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send("Subject: small\r\n\r\nfits\r\n.\r\n");
    assert!(c.reply().starts_with("250 OK id="));
    // ...one that does not fit gets a temporary error.
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = "z".repeat(998) + "\r\n";
    c.send(&format!("Subject: big\r\n\r\n{}.\r\n", line.repeat(9)));
    let r = c.reply();
    assert!(r.starts_with("451"), "{r}");
    // The session goes on.
    assert!(c.cmd("QUIT").starts_with("221"));
    drop(guard);
    let main = dir.read("log/mainlog");
    assert_eq!(
        main.lines().filter(|l| l.contains(" <= ")).count(),
        1,
        "{main}"
    );
    assert!(main.contains("spool write failed"), "{main}");
}

/// SIGHUP re-reads the configuration; SIGTERM stops the daemon within a
/// second and removes its pid file.
#[test]
fn sighup_reloads_and_sigterm_stops_promptly() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write("h.conf", &format!("smtp_banner = first banner\n{CONF}"));
    let mut d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let banner = |port: u16| {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    };
    assert_eq!(banner(port), "220 first banner\r\n");
    dir.write("h.conf", &format!("smtp_banner = second banner\n{CONF}"));
    d.signal(1);
    assert!(
        wait_for(Duration::from_secs(5), || banner(port)
            == "220 second banner\r\n"),
        "configuration not reloaded"
    );
    let start = std::time::Instant::now();
    d.signal(15);
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "daemon still running 1 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    assert!(!d.pid_file.exists(), "pid file left behind");
}

/// A session open when the daemon is told to stop may still finish what its
/// client sends next (as Exim's session processes outlive the daemon): a
/// message sent then is accepted and logged, QUIT gets its 221, and then
/// the daemon exits; meanwhile no new connection is taken.
#[test]
fn open_session_finishes_after_sigterm() {
    let dir = TestDir::new();
    let (mut d, port, _) = start(&dir);
    let mut c = Client::connect(port);
    assert!(c.cmd("EHLO client.example").starts_with("250 "));
    d.signal(15);
    assert!(
        wait_for(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_err()),
        "still taking connections after SIGTERM"
    );
    assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let done = c.cmd("Subject: late\r\n\r\nbody\r\n.");
    assert!(done.starts_with("250 OK id="), "{done}");
    let id = done["250 OK id=".len()..].trim().to_string();
    assert!(c.cmd("QUIT").starts_with("221 "));
    assert!(
        wait_for(Duration::from_secs(10), || d
            .child
            .try_wait()
            .unwrap()
            .is_some()),
        "daemon still running after its last session ended"
    );
    let log = dir.read("log/mainlog");
    assert!(log.contains(&format!("{id} <= s@example.org")), "{log}");
}

/// Talk before the banner: refused (smtp_enforce_sync) from a host not in
/// `pipelining_connect_advertise_hosts`, answered in order from one that is
/// (Exim's early pipelining; the option's default is `*`).
fn early_talk(connect_hosts: Option<&str>) -> String {
    let dir = TestDir::new();
    let port = free_port();
    // A slow connect ACL gives the early bytes time to arrive first.
    let mut extra = String::from("queue_only\nacl_smtp_connect = accept delay = 1s");
    if let Some(h) = connect_hosts {
        extra.push_str(&format!("\npipelining_connect_advertise_hosts = {h}"));
    }
    let conf = dir.write("s.conf", &CONF.replace("queue_only", &extra));
    let _d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"EHLO too.early\r\nMAIL FROM:<a@b.example>\r\nQUIT\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut rest = String::new();
    let _ = BufReader::new(s).read_to_string(&mut rest);
    rest
}

#[test]
fn input_before_the_banner_is_a_synchronization_error() {
    let rest = early_talk(Some(":"));
    assert!(rest.starts_with("554 "), "{rest}");
    assert!(rest.contains("synchronization error"), "{rest}");
}

#[test]
fn input_before_the_banner_is_early_pipelining_by_default() {
    let rest = early_talk(None);
    let codes: Vec<&str> = rest.lines().map(|l| &l[..4]).collect();
    assert_eq!(codes.first(), Some(&"220 "), "{rest}");
    assert!(rest.contains("250-PIPECONNECT\r\n"), "{rest}");
    assert!(rest.contains("250 OK\r\n221 "), "{rest}");
}

/// SIGUSR1 logs the group-commit counters; with `spool_sync = syncfs` every
/// group was made durable with syncfs(2), with `fdatasync` none was.
#[test]
fn sigusr1_reports_how_groups_were_synced() {
    for (mode, syncfs) in [("syncfs", 1), ("fdatasync", 0)] {
        let dir = TestDir::new();
        let port = free_port();
        let conf = dir.write("s.conf", &format!("spool_sync = {mode}\n{CONF}"));
        let d = Daemon::start(
            &dir,
            &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
        );
        let mut c = Client::connect(port);
        assert!(c.cmd("EHLO client.example").starts_with("250 "));
        assert!(c.cmd("MAIL FROM:<s@example.org>").starts_with("250"));
        assert!(c.cmd("RCPT TO:<u@test.ex>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send("Subject: one\r\n\r\nbody\r\n.\r\n");
        assert!(c.reply().starts_with("250 OK id="));
        d.signal(10);
        let want = format!("spool commits: messages=1 batches=1 syncfs={syncfs}");
        assert!(
            wait_for(Duration::from_secs(5), || dir
                .read("log/mainlog")
                .contains(&want)),
            "{mode}: no {want:?} in\n{}",
            dir.read("log/mainlog")
        );
    }
}

/// `smtp_connect_backlog` sets the listen queue (what `ss` shows as Send-Q
/// of a listening socket).
#[test]
fn smtp_connect_backlog_sets_the_listen_queue() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write("b.conf", &format!("smtp_connect_backlog = 7\n{CONF}"));
    let _d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) is needed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    let send_q: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    // One listening socket per address family.
    assert!(
        !send_q.is_empty() && send_q.iter().all(|q| *q == "7"),
        "{text}"
    );
}

/// Batched SMTP (-bS) runs none of the SMTP ACLs (Exim runs only the
/// non-SMTP ones for it), and a trusted caller's MAIL sender is the From:
/// oxim adds, without the caller's name.
#[test]
fn batched_smtp_skips_the_smtp_acls_and_uses_the_mail_sender_for_from() {
    let dir = TestDir::new();
    let conf = dir.write("test.conf", CONF);
    let out = dir.run(
        &["-C", conf.to_str().unwrap(), "-bS"],
        "EHLO test\r\nMAIL FROM:<sender@source.dom>\r\nRCPT TO:<blocked@test.ex>\r\n\
         DATA\r\nSubject: foo\r\n\r\ndata\r\n.\r\nQUIT\r\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.contains("<= sender@source.dom U=root P=local-bsmtp S=")),
        "{log:#?}"
    );
    let input = dir.path().join("spool/input");
    let header = std::fs::read_dir(&input)
        .expect("spool/input")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("-H"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("a -H file");
    assert!(header.contains("\nblocked@test.ex\n"), "{header}");
    assert!(header.contains("F From: sender@source.dom\n"), "{header}");
    assert!(!dir.read("log/rejectlog").contains("blocked"));
}
