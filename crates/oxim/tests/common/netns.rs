//! Helpers for integration tests that run two oxim instances inside a private
//! network namespace: namespace setup, the NFQUEUE delayer, a daemon guard,
//! bounded client runs, cookie-cache control, a small TFO banner client and
//! log-line parsing.
//!
//! Everything here acts only on the namespace of the calling thread (created
//! by [`in_netns`]); child processes inherit it. Nothing touches the host's
//! interfaces or sysctls.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oxim_net::{testns, ClientTfo, ConnectOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for any single oxim run or wait in these tests: a hang is a
/// failure, never a stuck test.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Run `f` in a fresh network namespace (lo up, `tcp_fastopen=3`, blackhole
/// timeout 0) and return its result. Panics with a clear message when not
/// root or when the namespace cannot be made; a panic inside `f` is re-raised
/// with its message.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match testns::run_in_new_netns(f) {
        Ok(v) => v,
        Err(testns::NetnsError::NotRoot) => panic!(
            "this test needs root (euid 0) to create a private network namespace; \
             run it as root (it does not pass silently without)"
        ),
        Err(e) => panic!("network namespace test failed: {e}"),
    }
}

/// Write a sysctl of the current namespace, e.g. `sysctl("net/ipv4/tcp_fastopen", "1")`.
pub fn sysctl(name: &str, value: &str) {
    testns::set_sysctl(name, value).unwrap_or_else(|e| panic!("sysctl {name}={value}: {e}"));
}

/// `<dir of the oxim binary>/NAME`, or a panic naming the missing file.
pub fn sibling_bin(name: &str) -> PathBuf {
    let oxim = PathBuf::from(env!("CARGO_BIN_EXE_oxim"));
    let dir = oxim.parent().expect("oxim binary has a directory");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: build it first (`cargo build -p oxim-delayer`, or run \
         `cargo test --workspace`, which builds every binary)",
        p.display()
    );
    p
}

/// Forget the kernel's TFO cookie (tcp_metrics entry) for `ip` in this
/// namespace. Exit status 2 means there was none, which is fine.
pub fn flush_cookie(ip: &str) {
    let st = Command::new("ip")
        .args(["tcp_metrics", "delete", ip])
        .stderr(Stdio::null())
        .status()
        .expect("run `ip tcp_metrics delete` (iproute2 needed)");
    assert!(
        st.success() || st.code() == Some(2),
        "ip tcp_metrics delete {ip} failed: {st}"
    );
}

/// Run `cmd` to completion within `limit`, stdin from `stdin` (or none),
/// stdout/stderr captured in a file under `dir`. Kills it and panics on
/// timeout (a hang).
pub fn run_bounded_with_input(
    mut cmd: Command,
    dir: &Path,
    what: &str,
    limit: Duration,
    stdin: Option<&Path>,
) -> (ExitStatus, String) {
    let out_path = dir.join(format!("{what}.out"));
    let out = std::fs::File::create(&out_path).expect("create output file");
    let err = out.try_clone().expect("dup output file");
    let input = match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).expect("open stdin file")),
        None => Stdio::null(),
    };
    let mut child = cmd
        .stdin(input)
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = wait_child(&mut child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{what} did not finish within {limit:?} (hang); output: {}",
            std::fs::read_to_string(&out_path).unwrap_or_default()
        )
    });
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

/// [`run_bounded_with_input`] without input.
pub fn run_bounded(cmd: Command, dir: &Path, what: &str, limit: Duration) -> (ExitStatus, String) {
    run_bounded_with_input(cmd, dir, what, limit, None)
}

/// Wait for `child` to exit within `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The NFQUEUE delayer on `lo`, stopped when dropped.
pub struct Delayer {
    bin: PathBuf,
    pidfile: PathBuf,
}

impl Delayer {
    /// `oxim-delayer start --dev lo --delay DELAY` plus `extra` options; returns
    /// once packets are being delayed.
    pub fn start(dir: &Path, delay: &str, extra: &[&str]) -> Delayer {
        let bin = sibling_bin("oxim-delayer");
        let pidfile = dir.join("delayer.pid");
        let mut cmd = Command::new(&bin);
        cmd.args(["start", "--dev", "lo", "--delay", delay, "--pidfile"])
            .arg(&pidfile)
            .arg("--log")
            .arg(dir.join("delayer.log"))
            .args(extra);
        let (st, out) = run_bounded(cmd, dir, "delayer-start", LIMIT);
        assert!(st.success(), "oxim-delayer start failed ({st}): {out}");
        Delayer { bin, pidfile }
    }

    /// Median TCP connect time (one RTT) in ms, measured by `oxim-delayer rtt`.
    pub fn rtt_ms(&self, dir: &Path) -> f64 {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["rtt", "--addr", "127.0.0.1", "--count", "5"]);
        let (st, out) = run_bounded(cmd, dir, "delayer-rtt", LIMIT);
        assert!(st.success(), "oxim-delayer rtt failed: {out}");
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("oxim-delayer rtt printed {out:?}"))
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("stop")
            .arg("--pidfile")
            .arg(&self.pidfile)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An `oxim -bdf` daemon in its own directory, killed when dropped.
pub struct ServerDaemon {
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl ServerDaemon {
    /// Start `oxim -C conf -bdf -oX port -oP dir/daemon.pid` in `dir` and wait
    /// for its pid file.
    pub fn start(dir: &Path, conf: &Path, port: u16) -> ServerDaemon {
        let mut d = ServerDaemon {
            dir: dir.to_path_buf(),
            args: vec![
                "-C".into(),
                conf.display().to_string(),
                "-oX".into(),
                port.to_string(),
            ],
            child: None,
        };
        d.spawn();
        d
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("daemon.pid")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.pid_file());
        let err = std::fs::File::create(self.dir.join("daemon.stderr")).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxim"))
            .args(&self.args)
            .arg("-bdf")
            .arg("-oP")
            .arg(self.pid_file())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn oxim daemon");
        let pid_file = self.pid_file();
        let up = wait_until(LIMIT, || {
            pid_file.exists() || matches!(child.try_wait(), Ok(Some(_)))
        });
        let exited = child.try_wait().ok().flatten();
        if !up || exited.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "oxim daemon did not come up (exit {exited:?}); stderr: {}",
                std::fs::read_to_string(self.dir.join("daemon.stderr")).unwrap_or_default()
            );
        }
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop the daemon and start it again with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The daemon's main log.
    pub fn mainlog(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/mainlog")).unwrap_or_default()
    }

    /// Wait for the `<=` line of the message for `rcpt` and return it.
    pub fn wait_received(&self, rcpt: &str) -> String {
        let mut line = None;
        let ok = wait_until(LIMIT, || {
            line = find_line(&self.mainlog(), " <= ", rcpt);
            line.is_some()
        });
        assert!(
            ok,
            "server logged no <= line for {rcpt} within {LIMIT:?}; log:\n{}",
            self.mainlog()
        );
        line.unwrap_or_default()
    }
}

impl Drop for ServerDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first log line containing both `marker` (e.g. `" <= "`) and `needle`,
/// with the timestamp removed.
pub fn find_line(log: &str, marker: &str, needle: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(marker) && l.contains(needle))
        .map(|l| strip_time(l).to_string())
}

/// `line` without its leading `YYYY-MM-DD HH:MM:SS[.mmm] ` timestamp.
pub fn strip_time(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() > 20 && b[4] == b'-' && b[13] == b':' {
        let rest = &line[19..];
        let rest = rest
            .strip_prefix('.')
            .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
            .unwrap_or(rest);
        return rest.trim_start();
    }
    line
}

/// The TFO elements that follow the `[ip]` (or `[ip]:port`) of a log line:
/// `(mark, detail)`, e.g. `(Some("TFO"), Some("cookie-accepted"))` for
/// `... [127.0.0.1] TFO TFO=cookie-accepted C=...`.
pub fn tfo_elements(line: &str) -> (Option<String>, Option<String>) {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let Some(ip_at) = toks
        .iter()
        .position(|t| t.starts_with('[') && (t.ends_with(']') || t.contains("]:")))
    else {
        panic!("no [ip] in log line {line:?}");
    };
    let mut mark = None;
    let mut detail = None;
    for t in &toks[ip_at + 1..] {
        if *t == "TFO" || *t == "TFO*" {
            mark = Some((*t).to_string());
        } else if let Some(d) = t.strip_prefix("TFO=") {
            detail = Some(d.to_string());
        } else {
            break;
        }
    }
    // A TFO element anywhere else would be a misplaced element.
    let elsewhere = toks[..=ip_at]
        .iter()
        .any(|t| *t == "TFO" || *t == "TFO*" || t.starts_with("TFO="));
    assert!(!elsewhere, "TFO element before the host in {line:?}");
    (mark, detail)
}

/// The result of one connection made by [`banner_probe`].
#[derive(Debug, Clone, Copy)]
pub struct BannerProbe {
    /// From the first SYN to the end of the banner line.
    pub to_banner: Duration,
    /// What oxim-net judged for the connection.
    pub outcome: ClientTfo,
    /// [`oxim_net::Connected::tfo_proven_by_first_byte`] for the banner's
    /// first byte: `Some(true)` proves the server used our cookie, `None`
    /// when the RTT is too small to tell.
    pub proven: Option<bool>,
}

/// Connect to `addr` (with TFO when `try_tfo`), read the `220` banner, send
/// QUIT, and time connect → banner. Bounded by [`LIMIT`].
pub fn banner_probe(addr: SocketAddr, try_tfo: bool, syn_data: &[u8]) -> BannerProbe {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let opts = ConnectOptions {
            try_tfo,
            timeout: LIMIT,
            bind: None,
            syn_data: syn_data.to_vec(),
        };
        let work = async {
            let t0 = Instant::now();
            let mut c = oxim_net::connect(addr, &opts).await?;
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            let mut proven = None;
            while !got.windows(2).any(|w| w == b"\r\n") {
                let n = c.stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed before the banner",
                    ));
                }
                if got.is_empty() {
                    proven = c.tfo_proven_by_first_byte(Instant::now());
                }
                got.extend_from_slice(&buf[..n]);
            }
            let to_banner = t0.elapsed();
            if !got.starts_with(b"220") {
                return Err(std::io::Error::other(format!(
                    "unexpected banner {:?}",
                    String::from_utf8_lossy(&got)
                )));
            }
            c.stream.write_all(b"QUIT\r\n").await?;
            let _ = c.stream.read(&mut buf).await;
            Ok::<_, std::io::Error>(BannerProbe {
                to_banner,
                outcome: c.client_tfo(),
                proven,
            })
        };
        match tokio::time::timeout(LIMIT, work).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => panic!("banner probe to {addr}: {e}"),
            Err(_) => panic!("banner probe to {addr} hung for {LIMIT:?}"),
        }
    })
}

/// Median of a non-empty slice of durations.
pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}
