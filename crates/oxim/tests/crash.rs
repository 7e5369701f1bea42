//! No lost mail: a daemon relaying to a counting sink is killed with SIGKILL
//! at random moments under load and restarted each time; in the end every
//! message a client got a 250 for has reached the sink (issue "Reliability",
//! reduced form: 500 messages, 5 kills; `OXIM_CRASH_MESSAGES` and
//! `OXIM_CRASH_KILLS` scale it up).

mod common;

use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An SMTP sink that records the `X-Test-Seq` header of every message it
/// accepts (and how often it saw each).
fn start_sink(seen: Arc<Mutex<HashMap<String, u32>>>) -> u16 {
    start_sink_on(TcpListener::bind("127.0.0.1:0").unwrap(), seen)
}

/// [`start_sink`] on a listener of the caller's.
fn start_sink_on(listener: TcpListener, seen: Arc<Mutex<HashMap<String, u32>>>) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let _ = w.write_all(b"220 sink ESMTP\r\n");
                let mut in_data = false;
                let mut seq: Option<String> = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end();
                    if in_data {
                        if l == "." {
                            in_data = false;
                            if let Some(s) = seq.take() {
                                *seen.lock().unwrap().entry(s).or_insert(0) += 1;
                            }
                            let _ = w.write_all(b"250 OK\r\n");
                        } else if let Some(v) = l.strip_prefix("X-Test-Seq: ") {
                            seq = Some(v.to_string());
                        }
                        continue;
                    }
                    let u = l.to_ascii_uppercase();
                    let reply: &[u8] = if u.starts_with("EHLO") {
                        b"250-sink\r\n250 PIPELINING\r\n"
                    } else if u.starts_with("DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else if u.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = w.write_all(reply);
                }
            });
        }
    });
    port
}

/// Send one message; true only if the server said 250 after the data.
fn send_one(port: u16, seq: usize) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut reply = || -> Option<String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Some(line);
            }
        }
    };
    let ok = |r: Option<String>, code: &str| r.is_some_and(|l| l.starts_with(code));
    if !ok(reply(), "220") {
        return false;
    }
    let steps: [(&str, &str); 4] = [
        ("EHLO load.example\r\n", "250"),
        ("MAIL FROM:<load@example.org>\r\n", "250"),
        ("RCPT TO:<sink@remote.example>\r\n", "250"),
        ("DATA\r\n", "354"),
    ];
    for (cmd, code) in steps {
        if w.write_all(cmd.as_bytes()).is_err() || !ok(reply(), code) {
            return false;
        }
    }
    let body = format!(
        "X-Test-Seq: {seq}\r\nSubject: load {seq}\r\n\r\n{}\r\n.\r\n",
        "x".repeat(1500)
    );
    if w.write_all(body.as_bytes()).is_err() {
        return false;
    }
    let accepted = ok(reply(), "250");
    let _ = w.write_all(b"QUIT\r\n");
    accepted
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_under_load_loses_nothing() {
    let total = env_num("OXIM_CRASH_MESSAGES", 500);
    let kills = env_num("OXIM_CRASH_KILLS", 5);
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let sink = start_sink(seen.clone());
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write(
        "crash.conf",
        &format!(
            r#"
primary_hostname = crash.test.ex
spool_directory = DIR/spool
# The tests run as whoever runs them (root in CI): keep that user.
exim_user = root
log_file_path = DIR/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
smtp_accept_max = 0

begin routers

out:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
  port = {sink}
  command_timeout = 10s

begin retry

* * F,1h,1s
"#
        ),
    );
    let conf = conf.to_str().unwrap().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "-C".to_string(),
            conf.clone(),
            "-oX".into(),
            port.to_string(),
            "-q1s".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    let accepted: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (accepted, next, stop) = (accepted.clone(), next.clone(), stop.clone());
        clients.push(std::thread::spawn(move || loop {
            let seq = {
                let mut n = next.lock().unwrap();
                if *n >= total || stop.load(Ordering::Relaxed) {
                    return;
                }
                *n += 1;
                *n
            };
            if send_one(port, seq) {
                accepted.lock().unwrap().push(seq);
            } else {
                // Not acknowledged: the client may retry it later (as a
                // real client would) under the same number.
                std::thread::sleep(Duration::from_millis(20));
                if send_one(port, seq) {
                    accepted.lock().unwrap().push(seq);
                }
            }
        }));
    }

    // Kill and restart the daemon at pseudo-random moments.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let args0 = args(&[]);
    let refs: Vec<&str> = args0.iter().map(String::as_str).collect();
    let mut daemon = Daemon::start(&dir, &refs);
    for _ in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(100 + rng % 400));
        daemon.signal(9);
        drop(daemon);
        let _ = std::fs::remove_file(dir.path().join("daemon.pid"));
        daemon = Daemon::start(&dir, &refs);
    }
    for c in clients {
        c.join().unwrap();
    }
    // Let queue runs finish what the kills interrupted.
    let want: Vec<usize> = accepted.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let missing = {
            let s = seen.lock().unwrap();
            want.iter()
                .filter(|q| !s.contains_key(&q.to_string()))
                .count()
        };
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(daemon);
    let s = seen.lock().unwrap();
    let lost: Vec<&usize> = want
        .iter()
        .filter(|q| !s.contains_key(&q.to_string()))
        .collect();
    let dups: u32 = s.values().map(|&n| n.saturating_sub(1)).sum();
    println!(
        "crash test: {} sent, {} acknowledged, {} reached the sink, {} lost, {} duplicates, {} kills",
        total,
        want.len(),
        s.len(),
        lost.len(),
        dups,
        kills
    );
    assert!(
        want.len() * 10 >= total * 9,
        "too few messages accepted: {}",
        want.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged but never delivered: {lost:?}"
    );
}

/// The configuration of the commit log tests: relay everything to
/// 127.0.0.1:`sink`, queue runs every second.
fn relay_conf(dir: &TestDir, sink: u16) -> String {
    let conf = dir.write(
        "relay.conf",
        &format!(
            r#"
primary_hostname = crash.test.ex
spool_directory = DIR/spool
exim_user = root
log_file_path = DIR/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
smtp_accept_max = 0

begin routers

out:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
  port = {sink}
  command_timeout = 10s

begin retry

* * F,1h,1s
"#
        ),
    );
    conf.to_str().unwrap().to_string()
}

fn segments(dir: &TestDir) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.path().join("spool/commitlog"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn spool_files(dir: &TestDir, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.path().join("spool/input"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(suffix) && !n.starts_with("tmp-")
        })
        .collect();
    v.sort();
    v
}

/// A power failure right after the 250s: the commit log is the only copy
/// of the messages that reached the disk. The daemon is killed while the
/// next hop is down (the messages wait on the queue, their files written
/// without syncs), then their spool files are damaged the ways a crash
/// leaves unsynced files: gone, `-H` empty, only `-D` gone; and the log's
/// last record is torn (half an append). The restarted daemon restores
/// every message from the log and delivers each exactly once.
#[test]
fn commit_log_restores_acknowledged_messages_after_a_crash() {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let sink_port = free_port();
    let dir = TestDir::new();
    let conf = relay_conf(&dir, sink_port);
    let port = free_port();
    let args = ["-C", conf.as_str(), "-oX", &port.to_string(), "-q1s"];
    let daemon = Daemon::start(&dir, &args);
    let total = 9;
    for seq in 1..=total {
        assert!(send_one(port, seq), "message {seq} not accepted");
    }
    // The segment holds them; nothing has checkpointed yet (5 s idle).
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1, "{segs:?}");
    daemon.signal(9);
    drop(daemon);
    let _ = std::fs::remove_file(dir.path().join("daemon.pid"));
    let headers = spool_files(&dir, "-H");
    assert_eq!(headers.len(), total, "{headers:?}");
    for (i, h) in headers.iter().enumerate() {
        let d = h.with_file_name(h.file_name().unwrap().to_string_lossy().replace("-H", "-D"));
        match i % 3 {
            0 => {
                std::fs::remove_file(h).unwrap();
                std::fs::remove_file(&d).unwrap();
            }
            1 => std::fs::write(h, b"").unwrap(),
            _ => std::fs::remove_file(&d).unwrap(),
        }
    }
    // A torn last record: the start of an append that never finished.
    let seg = &segs[0];
    let mut f = std::fs::OpenOptions::new().append(true).open(seg).unwrap();
    f.write_all(b"OXCLM\xff\x00\x00\x00\x12\x34").unwrap();
    drop(f);

    start_sink_on(
        TcpListener::bind(("127.0.0.1", sink_port)).unwrap(),
        seen.clone(),
    );
    let daemon = Daemon::start(&dir, &args);
    let delivered = wait_for(Duration::from_secs(60), || {
        seen.lock().unwrap().len() == total
    });
    let log = dir.read("log/mainlog");
    assert!(
        delivered,
        "not all delivered: {:?}\n{log}",
        seen.lock().unwrap()
    );
    assert!(
        log.contains(&format!(
            "commit log replayed: 1 segment(s), {total} message(s) restored, 0 synced, 11 damaged byte(s) skipped"
        )),
        "{log}"
    );
    assert_eq!(
        log.matches("spool files restored from the commit log")
            .count(),
        total
    );
    // Wait for the queue to empty, then check nothing came twice.
    assert!(wait_for(Duration::from_secs(30), || spool_files(
        &dir, "-H"
    )
    .is_empty()));
    drop(daemon);
    let s = seen.lock().unwrap();
    assert!(s.values().all(|&n| n == 1), "duplicates: {s:?}");
}

/// Messages delivered and removed before a crash are not brought back by
/// the replay (their removal is noted in the log), and messages still
/// waiting are neither lost nor doubled; a clean stop leaves no log.
#[test]
fn commit_log_replay_brings_back_nothing_delivered() {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let sink_port = start_sink(seen.clone());
    let dir = TestDir::new();
    let conf = relay_conf(&dir, sink_port);
    let port = free_port();
    let args = ["-C", conf.as_str(), "-oX", &port.to_string(), "-q1s"];
    let daemon = Daemon::start(&dir, &args);
    let total = 12;
    for seq in 1..=total {
        assert!(send_one(port, seq), "message {seq} not accepted");
    }
    assert!(wait_for(Duration::from_secs(30), || {
        seen.lock().unwrap().len() == total && spool_files(&dir, "-H").is_empty()
    }));
    // Killed before a checkpoint: the segment still has their records.
    daemon.signal(9);
    drop(daemon);
    let _ = std::fs::remove_file(dir.path().join("daemon.pid"));
    assert_eq!(segments(&dir).len(), 1);
    let daemon = Daemon::start(&dir, &args);
    assert!(wait_for(Duration::from_secs(10), || dir
        .read("log/mainlog")
        .contains(
            "commit log replayed: 1 segment(s), 0 message(s) restored, 0 synced"
        )));
    // Two queue runs later, still nothing new at the sink.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(spool_files(&dir, "-H").is_empty());
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.len(), total);
        assert!(s.values().all(|&n| n == 1), "duplicates: {s:?}");
    }
    // One more message opens a new segment; a clean stop (SIGTERM) syncs
    // and deletes it.
    assert!(send_one(port, total + 1));
    assert!(wait_for(Duration::from_secs(30), || seen
        .lock()
        .unwrap()
        .len()
        == total + 1));
    assert_eq!(segments(&dir).len(), 1);
    daemon.signal(15);
    assert!(
        wait_for(Duration::from_secs(20), || segments(&dir).is_empty()),
        "{:?}",
        segments(&dir)
    );
    drop(daemon);
}
