//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The runner binary under test.
pub fn runner() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxim-runtest"))
}

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sandbox needs namespaces, sysctls and bind mounts: root only in CI.
pub fn require_root(what: &str) {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "{what} needs root (it builds network/mount/UTS/PID namespaces, sets sysctls \
             and bind-mounts /etc files inside them); run the tests as root"
        );
    }
}

/// Run the runner with arguments; returns (exit code, stdout).
pub fn run(args: &[&str]) -> (i32, String, Output) {
    let out = Command::new(runner())
        .args(args)
        .output()
        .expect("running oxim-runtest");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout, out)
}

/// Copy a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}
