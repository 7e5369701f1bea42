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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
