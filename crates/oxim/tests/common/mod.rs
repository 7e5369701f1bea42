//! Helpers for integration tests that run the real `oxim` binary on loopback.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The main-section lines the local test configurations start with: a spool
/// and logs under the test directory (`DIR`), and the user running the tests
/// (root in CI) kept as exim user and allowed to deliver to files.
pub const TEST_MAIN: &str = "\
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
exim_user = root
never_users =
log_file_path = DIR/log/%slog
helo_lookup_domains =
domainlist local_domains = test.ex
";

/// Path of the binary under test.
pub fn oxim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxim"))
}

/// A free loopback port (bound then released).
///
/// Ports come from below the kernel's ephemeral range (32768 and up), so an
/// outgoing connection of a test running in parallel cannot take the port
/// between this check and the daemon's bind; each call in a process tries a
/// new port, starting at a place that depends on the process id. The port
/// is free on every address (IPv4 and IPv6), as a daemon binds them all.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919);
    for _ in 0..20_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (base.wrapping_add(n.wrapping_mul(97)) % 22_000) as u16;
        // A daemon listens on every address: the port must be free on all.
        let v4_free = TcpListener::bind(("0.0.0.0", port)).is_ok();
        if v4_free && TcpListener::bind(("::", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A temporary test directory with a config file.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `name` with `text`, replacing `DIR` by the directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        let text = text.replace("DIR", &self.path().display().to_string());
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    /// Run oxim with `args`, feeding `stdin`; the command must succeed
    /// (its stderr is shown if not).
    pub fn run_ok(&self, args: &[&str], stdin: &str) -> Output {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "oxim {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run oxim with `args`, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(oxim_bin())
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn oxim");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait oxim")
    }
}

/// A daemon that is killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub pid_file: PathBuf,
}

impl Daemon {
    /// Start `oxim -bdf` with extra args and wait until the pid file appears.
    pub fn start(dir: &TestDir, args: &[&str]) -> Daemon {
        let pid_file = dir.path().join("daemon.pid");
        let child = Command::new(oxim_bin())
            .args(args)
            .arg("-bdf")
            .arg("-oP")
            .arg(&pid_file)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon");
        let mut d = Daemon { child, pid_file };
        let mut exited = None;
        let up = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = d.child.try_wait() {
                exited = Some(status);
                return true;
            }
            d.pid_file.exists()
        });
        if let Some(status) = exited.filter(|_| !d.pid_file.exists()) {
            let mut err = String::new();
            if let Some(mut e) = d.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("daemon exited ({status}) before writing its pid file: {err}");
        }
        assert!(up, "daemon did not write its pid file within 20 s");
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // The kill command keeps this test free of unsafe code.
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Resident memory of process `pid` in KiB (`VmRSS`), 0 if unknown.
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A line-oriented SMTP client for talking to the daemon under test.
pub struct Client {
    pub stream: std::net::TcpStream,
    pub reader: std::io::BufReader<std::net::TcpStream>,
}

impl Client {
    /// Connect to 127.0.0.1:`port` and require the 220 banner.
    pub fn connect(port: u16) -> Client {
        let (c, banner) = Client::open(port, None);
        assert!(banner.starts_with("220 "), "{banner}");
        c
    }

    /// Connect to 127.0.0.1:`port`, from `source` when given (another
    /// loopback address), and return the first reply, whatever it is.
    pub fn open(port: u16, source: Option<std::net::IpAddr>) -> (Client, String) {
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = match source {
            None => std::net::TcpStream::connect(to).expect("connect"),
            Some(ip) => {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .expect("socket");
                sock.bind(&std::net::SocketAddr::new(ip, 0).into())
                    .expect("bind source address");
                sock.connect(&to.into()).expect("connect");
                sock.into()
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut c = Client { stream, reader };
        let first = c.reply();
        (c, first)
    }

    /// Read one (possibly multi-line) reply; returns its last line, or
    /// "EOF" when the server closed the connection.
    pub fn reply(&mut self) -> String {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return "EOF".into();
            }
            let line = line.trim_end().to_string();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line;
            }
        }
    }

    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n"));
        self.reply()
    }
}

/// Strip the timestamp (and millisecond part) from a log line.
pub fn strip_time(line: &str) -> &str {
    // "2024-01-02 03:04:05 " or "2024-01-02 03:04:05.678 "
    let b = line.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[13] == b':' {
        let rest = &line[19..];
        let rest = if rest.starts_with('.') {
            &rest[4..]
        } else {
            rest
        };
        return rest.trim_start();
    }
    line
}

/// Log lines without timestamps.
pub fn log_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| strip_time(l).to_string()).collect()
}

/// A scripted SMTP server on a loopback port, for transport tests: it
/// answers each command by the first matching rule and records every line
/// it received, and whether each command arrived before its predecessor was
/// answered (i.e. was pipelined). Each connection is served by its own
/// thread and counted.
///
/// Besides replies, a rule can hold one of these actions:
/// - `<close>`: close the connection instead of answering;
/// - `<silent>`: send nothing and keep reading (a server that hangs);
/// - `<stall>`: stop reading for five seconds, then close (a server that
///   stops taking data);
/// - a reply ending in `<close>` (`250 OK<close>`): send the reply, then
///   close the connection.
///
/// Pseudo-commands: `<BANNER>` (the greeting; default `220 fake ESMTP`),
/// `<BODY>` (the first line of message data: `<close>` drops the
/// connection in the middle of the data), `.` (the end of the data).
pub struct FakeSmtp {
    pub port: u16,
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Commands that were already buffered when the server read the one
    /// before them.
    pub pipelined: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Connections accepted so far.
    pub connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

type Rules = [(&'static str, &'static str)];

impl FakeSmtp {
    /// `rules`: (command prefix, reply) pairs, e.g. ("RCPT", "550 no such user").
    /// Prefixes are matched against the upper-cased command. Unmatched
    /// commands get `250 OK`; DATA gets `354 go ahead` unless a rule says
    /// otherwise (`503` when no recipient was accepted); the end of data
    /// gets the "." rule or `250 OK id=fake`.
    pub fn start(
        rules: Vec<(&'static str, &'static str)>,
        ehlo_caps: &'static [&'static str],
    ) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake smtp");
        let port = listener.local_addr().unwrap().port();
        let fake = FakeSmtp {
            port,
            lines: Default::default(),
            pipelined: Default::default(),
            connections: Default::default(),
        };
        let rules: std::sync::Arc<Rules> = rules.into();
        let (l2, p2, c2) = (
            fake.lines.clone(),
            fake.pipelined.clone(),
            fake.connections.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (l3, p3, r3) = (l2.clone(), p2.clone(), rules.clone());
                std::thread::spawn(move || {
                    Self::serve(stream, &r3, ehlo_caps, &l3, &p3);
                });
            }
        });
        fake
    }

    fn rule(rules: &Rules, upper: &str) -> Option<&'static str> {
        rules
            .iter()
            .find(|(p, _)| upper.starts_with(p))
            .map(|r| r.1)
    }

    fn serve(
        mut stream: std::net::TcpStream,
        rules: &Rules,
        ehlo_caps: &'static [&'static str],
        lines: &std::sync::Mutex<Vec<String>>,
        pipelined: &std::sync::Mutex<Vec<String>>,
    ) {
        use std::io::{BufRead, BufReader, Write as _};
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut silent = false;
        match Self::rule(rules, "<BANNER>") {
            Some("<silent>") => silent = true,
            Some("<close>") => return,
            Some(b) => {
                let _ = stream.write_all(format!("{b}\r\n").as_bytes());
            }
            None => {
                let _ = stream.write_all(b"220 fake ESMTP\r\n");
            }
        }
        let mut in_data = false;
        let mut data_lines = 0usize;
        // Recipients accepted in the current transaction.
        let mut rcpt_ok = 0usize;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if silent {
                continue;
            }
            let line = line.trim_end().to_string();
            if in_data {
                data_lines += 1;
                match Self::rule(rules, "<BODY>") {
                    Some("<close>") if data_lines == 1 => return,
                    Some("<stall>") if data_lines == 1 => {
                        std::thread::sleep(Duration::from_secs(5));
                        return;
                    }
                    _ => {}
                }
                if line == "." {
                    in_data = false;
                    let r = rules
                        .iter()
                        .find(|(p, _)| *p == ".")
                        .map(|r| r.1)
                        .unwrap_or("250 OK id=fake");
                    match r {
                        "<close>" => return,
                        "<silent>" => silent = true,
                        r => {
                            let (r, close) = match r.strip_suffix("<close>") {
                                Some(r) => (r, true),
                                None => (r, false),
                            };
                            let _ = stream.write_all(format!("{r}\r\n").as_bytes());
                            if close {
                                return;
                            }
                        }
                    }
                }
                continue;
            }
            // Anything already buffered arrived before our reply.
            if !reader.buffer().is_empty() {
                let next = String::from_utf8_lossy(reader.buffer())
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                pipelined.lock().unwrap().push(next);
            }
            lines.lock().unwrap().push(line.clone());
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                let mut r = String::from("250-fake\r\n");
                for (i, c) in ehlo_caps.iter().enumerate() {
                    let sep = if i + 1 == ehlo_caps.len() { ' ' } else { '-' };
                    r.push_str(&format!("250{sep}{c}\r\n"));
                }
                if ehlo_caps.is_empty() {
                    r = "250 fake\r\n".into();
                }
                r
            } else if let Some(r) = Self::rule(rules, &upper) {
                match r {
                    "<close>" => return,
                    "<silent>" => {
                        silent = true;
                        continue;
                    }
                    r => format!("{r}\r\n"),
                }
            } else if upper.starts_with("DATA") && rcpt_ok == 0 {
                "503 no valid recipients\r\n".into()
            } else if upper.starts_with("DATA") {
                "354 go ahead\r\n".into()
            } else if upper.starts_with("QUIT") {
                let _ = stream.write_all(b"221 bye\r\n");
                break;
            } else {
                "250 OK\r\n".into()
            };
            if upper.starts_with("MAIL") || upper.starts_with("RSET") {
                rcpt_ok = 0;
            } else if upper.starts_with("RCPT") && reply.starts_with('2') {
                rcpt_ok += 1;
            }
            if upper.starts_with("DATA") && reply.starts_with('3') {
                in_data = true;
                data_lines = 0;
            }
            let _ = stream.write_all(reply.as_bytes());
        }
    }

    pub fn received(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// How many connections the server accepted.
    pub fn connection_count(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Received commands that start with `prefix` (e.g. `MAIL FROM`).
    pub fn count(&self, prefix: &str) -> usize {
        self.received()
            .iter()
            .filter(|l| l.to_ascii_uppercase().starts_with(prefix))
            .count()
    }
}
