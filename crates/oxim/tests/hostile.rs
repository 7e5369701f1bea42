//! Hostile clients: many idle connections must not stop the daemon from
//! answering a new client promptly, and memory stays bounded (issue
//! "Reliability", item 3).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn many_idle_connections_do_not_starve_a_new_client() {
    // Each side needs one descriptor per connection.
    let want: usize = std::env::var("OXIM_HOSTILE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    // Room for one descriptor per connection on each side (the daemon
    // inherits the limit); as root the hard limit can be raised too.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let need = want as u64 + 256;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < need && setrlimit(Resource::RLIMIT_NOFILE, need.max(soft), need.max(hard)).is_err() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = if soft < need {
        // The machine's hard limit is lower and cannot be raised here: use
        // as many connections as it allows, and say so.
        let fit = usize::try_from(soft.saturating_sub(256))
            .unwrap_or(0)
            .max(200);
        eprintln!("hostile: open-files limit {soft}: testing {fit} connections instead of {want}");
        fit
    } else {
        want
    };
    let dir = TestDir::new();
    let port = free_port();
    let conf = dir.write(
        "h.conf",
        "primary_hostname = h.test.ex\nspool_directory = DIR/spool\nexim_user = root\nlog_file_path = DIR/log/%slog\n\
         helo_lookup_domains =\nsmtp_accept_max = 0\nacl_smtp_rcpt = accept\n",
    );
    let d = Daemon::start(
        &dir,
        &["-C", conf.to_str().unwrap(), "-oX", &port.to_string()],
    );
    let before = rss_kib(d.pid());
    let mut idle = Vec::with_capacity(want);
    for i in 0..want {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} failed: {e} (raise the open-files limit?)"),
        }
    }
    // Give the daemon a moment to accept them all, then a new client.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    w.write_all(b"EHLO new.example\r\n").unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.starts_with("250 ") {
            break;
        }
        assert!(line.starts_with("250-"), "{line}");
    }
    let answered = start.elapsed();
    let during = rss_kib(d.pid());
    println!(
        "hostile: {want} idle connections; new client answered (banner+EHLO) in {:.1} ms; daemon RSS {} KiB before, {} KiB with them ({:.1} KiB per connection)",
        answered.as_secs_f64() * 1000.0,
        before,
        during,
        during.saturating_sub(before) as f64 / want as f64
    );
    assert!(
        answered < Duration::from_secs(1),
        "new client waited {answered:?}"
    );
    // Bounded: well under 64 KiB per idle connection.
    assert!(
        during.saturating_sub(before) < (want as u64) * 64,
        "daemon grew by {} KiB for {want} connections",
        during - before
    );
    drop(idle);
}
