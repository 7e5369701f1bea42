//! Finding the real Exim that tests compare oxim with (Debian's exim4,
//! unpacked by `bench/get-exim.sh`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::TestDir;

pub const DEFAULT_EXIM: &str = "/var/tmp/oxim-peers-exim/usr/sbin/exim4";
pub const EXIM_USER: &str = "Debian-exim";

/// The Exim binary (path from `OXIM_EXIM_BIN`, default [`DEFAULT_EXIM`]),
/// or None (after saying so loudly) when the test must be
/// skipped.
pub fn exim() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var("OXIM_EXIM_BIN").unwrap_or_else(|_| DEFAULT_EXIM.into()));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !bin.is_file() {
        assert!(
            !ci,
            "CI=true but no Exim at {} (bench/get-exim.sh installs it)",
            bin.display()
        );
        // Straight to the file descriptor: the test harness captures
        // eprintln!, and this must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP: no Exim at {} (set OXIM_EXIM_BIN or run bench/get-exim.sh): \
             output NOT compared with Exim ***\n",
            bin.display()
        );
        return None;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "comparing with Exim needs root (Exim runs -C configurations as {EXIM_USER})"
    );
    Some(bin)
}

/// A directory Exim (running as its own user) can use.
pub fn exim_dir() -> TestDir {
    let dir = TestDir::new();
    for sub in ["spool", "log", "mail"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    chmod(dir.path(), "755");
    chown_to_exim(dir.path());
    dir
}

pub fn chmod(path: &Path, mode: &str) {
    let st = Command::new("chmod").arg(mode).arg(path).status().unwrap();
    assert!(st.success(), "chmod {mode} {}", path.display());
}

/// Give `path` (recursively) to Exim's user; the config file stays root's.
pub fn chown_to_exim(path: &Path) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{EXIM_USER}:{EXIM_USER}"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chown to {EXIM_USER} (bench/get-exim.sh creates the user): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write the configuration both programs read. Exim insists that it is
/// owned by root and not writable by others.
pub fn write_conf(dir: &TestDir, exim: &Path, body: &str) -> PathBuf {
    let text = format!(
        "exim_path = {}\nexim_user = {EXIM_USER}\nkeep_environment =\nprimary_hostname = myhost.test.ex\n\
         qualify_domain = test.ex\nspool_directory = DIR/spool\nlog_file_path = DIR/log/%slog\n\
         helo_lookup_domains =\nhost_lookup =\ndomainlist local_domains = test.ex\n{body}",
        exim.display()
    );
    let p = dir.write("test.conf", &text);
    let st = Command::new("chown")
        .arg("root:root")
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success());
    chmod(&p, "644");
    p
}

pub fn run(bin: &Path, dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
