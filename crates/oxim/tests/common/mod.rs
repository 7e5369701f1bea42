//! Helpers for integration tests that run the real `oxim` binary on loopback.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn oxim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxim"))
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
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
        let d = Daemon { child, pid_file };
        assert!(
            wait_for(Duration::from_secs(10), || d.pid_file.exists()),
            "daemon did not write its pid file"
        );
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
