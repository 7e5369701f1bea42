//! The outer runner: selects tests, checks `REQUIRES` against `exim -bV`,
//! runs each test in a fresh sandbox (re-executing this binary through
//! `unshare`), enforces the per-test timeout and prints the verdicts.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::exec::{self, Outcome, TestConfig, RESULT_FILE};
use crate::munge::Style;
use crate::sandbox;
use crate::script;
use crate::tree::{Capabilities, TestTree, TreeError};

/// Subcommand name of the sandboxed half of the runner.
pub const SANDBOX_SUBCOMMAND: &str = "__sandbox";

/// Errors that stop a whole run (as opposed to failing one test).
#[derive(Debug, Error)]
pub enum RunError {
    /// The tree or selection is unusable.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The MTA lacks what Exim's harness requires of every build.
    #[error("exim -bV of {exim} lacks required drivers: {missing} (Exim's runtest aborts here)")]
    BaseRequirements {
        /// The binary.
        exim: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// Writing the report failed.
    #[error("writing report: {0}")]
    Io(#[from] io::Error),
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Exim-layout test tree.
    pub tree: PathBuf,
    /// The oxim binary.
    pub exim: PathBuf,
    /// The delay helper.
    pub delayer: Option<PathBuf>,
    /// This executable (re-executed inside the sandbox).
    pub runner: PathBuf,
    /// Keep work directories of failed tests.
    pub keep: bool,
    /// Verbose progress on stderr.
    pub verbose: bool,
    /// Per-test time limit.
    pub timeout: Duration,
    /// Run the MTA and the scripted peers as this user (root only).
    pub caller: Option<String>,
    /// Style override (detected from the tree otherwise).
    pub style: Option<Style>,
    /// Test selection words (`1990`, `0012-0020`); empty = all.
    pub tests: Vec<String>,
}

/// Counts of verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that were skipped.
    pub skipped: usize,
}

/// Why `exim -bV` could not be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BvError {
    /// Preparing the scratch directory failed.
    #[error("preparing exim -bV: {0}")]
    Setup(String),
    /// The binary could not be started.
    #[error("cannot run {exim} -bV: {reason}")]
    Spawn {
        /// The binary.
        exim: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// It ran but failed without printing a `Support for:` line.
    #[error("{exim} -bV failed ({status}): {stderr}")]
    Failed {
        /// The binary.
        exim: PathBuf,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
}

/// Run `exim -bV` (harness mode, a minimal configuration naming only the
/// spool directory and log path, in a scratch directory) and parse it.
pub fn query_capabilities(exim: &Path) -> Result<Capabilities, BvError> {
    let setup = |what: &str, e: io::Error| BvError::Setup(format!("{what}: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("oxim-runtest-bv-")
        .tempdir()
        .map_err(|e| setup("temp dir", e))?;
    let link = dir.path().join("exim");
    std::os::unix::fs::symlink(exim, &link).map_err(|e| setup("symlink", e))?;
    let conf = dir.path().join("bv.conf");
    let minimal = format!(
        "# oxim-runtest: minimal configuration for exim -bV\nspool_directory = {d}/spool\nlog_file_path = {d}/%slog\n",
        d = dir.path().display()
    );
    fs::write(&conf, minimal).map_err(|e| setup("writing bv.conf", e))?;
    let out = Command::new(&link)
        .arg("-C")
        .arg(&conf)
        .arg("-bV")
        .env_clear()
        .env("PATH", sandbox::SYSTEM_PATH)
        .env("OXIM_TEST_HARNESS", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BvError::Spawn {
            exim: exim.to_path_buf(),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !text.contains("Support for:") {
        return Err(BvError::Failed {
            exim: exim.to_path_buf(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(Capabilities::parse(&text))
}

struct Outer<'a> {
    opts: &'a Options,
    tree: TestTree,
    caps: Option<Result<Capabilities, BvError>>,
    host_netns: Option<u64>,
}

impl Outer<'_> {
    fn caps(&mut self) -> &Result<Capabilities, BvError> {
        let exim = &self.opts.exim;
        self.caps.get_or_insert_with(|| query_capabilities(exim))
    }

    /// Decide whether and how to run a test; `Err` is a final verdict.
    fn precheck(&mut self, num: &str) -> Result<(PathBuf, bool), Result<Outcome, RunError>> {
        let Some(path) = self.tree.script(num) else {
            return Err(Ok(Outcome::Fail(format!(
                "no script for test {num} under {}/scripts",
                self.tree.root().display()
            ))));
        };
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                return Err(Ok(Outcome::Fail(format!(
                    "reading {}: {e}",
                    path.display()
                ))))
            }
        };
        let parsed = match script::parse(&text) {
            Ok(s) => s,
            Err(e) => return Err(Ok(Outcome::Fail(format!("{}: {e}", path.display())))),
        };
        let requires = self.tree.requires(&path);
        if parsed.uses_exim() || !requires.is_empty() {
            if !self.opts.exim.is_file() {
                return Err(Ok(Outcome::Fail(format!(
                    "oxim binary {} not found (build it with `cargo build -p oxim`, or give --exim / OXIM_BIN)",
                    self.opts.exim.display()
                ))));
            }
            let exim = self.opts.exim.clone();
            let caps = match self.caps() {
                Ok(c) => c.clone(),
                Err(e) => return Err(Ok(Outcome::Fail(e.to_string()))),
            };
            if parsed.uses_exim() {
                if let Err(missing) = caps.check_base() {
                    return Err(Err(RunError::BaseRequirements { exim, missing }));
                }
            }
            if let Err(unmet) = caps.check_requires(&requires) {
                return Err(Ok(Outcome::Skip(format!("unmet REQUIRES: {unmet}"))));
            }
        }
        Ok((path, parsed.uses_exim()))
    }

    fn run_one(&mut self, num: &str) -> Result<(Outcome, Option<PathBuf>), RunError> {
        let script = match self.precheck(num) {
            Ok((p, _)) => p,
            Err(verdict) => return verdict.map(|o| (o, None)),
        };
        let host_netns = match self.host_netns {
            Some(i) => i,
            None => match sandbox::namespace_inode("net") {
                Ok(i) => *self.host_netns.insert(i),
                Err(e) => return Ok((Outcome::Fail(e.to_string()), None)),
            },
        };
        let work = match tempfile::Builder::new()
            .prefix(&format!("oxim-runtest-{num}-"))
            .tempdir()
        {
            Ok(d) => d.keep(),
            Err(e) => return Ok((Outcome::Fail(format!("creating work dir: {e}")), None)),
        };
        let outcome = self.sandboxed(num, &script, &work, host_netns);
        Ok((outcome, Some(work)))
    }

    fn sandboxed(&self, num: &str, script: &Path, work: &Path, host_netns: u64) -> Outcome {
        let o = self.opts;
        let mut args = vec![
            SANDBOX_SUBCOMMAND.to_string(),
            "--tree".into(),
            self.tree.root().display().to_string(),
            "--test".into(),
            num.to_string(),
            "--script".into(),
            script.display().to_string(),
            "--work".into(),
            work.display().to_string(),
            "--exim".into(),
            o.exim.display().to_string(),
            "--style".into(),
            match self.tree.style() {
                Style::Old => "old".into(),
                Style::Head => "head".into(),
            },
            "--host-netns".into(),
            host_netns.to_string(),
            // The inside stops a few seconds early so it can still say what hung.
            "--timeout-ms".into(),
            inner_timeout(o.timeout).as_millis().to_string(),
        ];
        if let Some(d) = &o.delayer {
            args.push("--delayer".into());
            args.push(d.display().to_string());
        }
        if let Some(c) = &o.caller {
            args.push("--caller".into());
            args.push(c.clone());
        }
        if o.verbose {
            args.push("-v".into());
        }
        let log_path = work.join("sandbox.log");
        let mut cmd = sandbox::unshare_command(&o.runner, &args);
        cmd.stdin(Stdio::null());
        match fs::File::create(&log_path) {
            Ok(f) => {
                let f2 = f.try_clone();
                cmd.stdout(f);
                if o.verbose {
                    cmd.stderr(Stdio::inherit());
                } else if let Ok(f2) = f2 {
                    cmd.stderr(f2);
                }
            }
            Err(e) => return Outcome::Fail(format!("creating {}: {e}", log_path.display())),
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Fail(format!(
                    "cannot run unshare (util-linux) to build the sandbox: {e}"
                ))
            }
        };
        let deadline = Instant::now() + o.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Outcome::Fail(format!("waiting for the sandbox: {e}")),
            }
        };
        let Some(status) = status else {
            // --kill-child makes the sandbox's PID 1 (and with it every
            // process in the namespace) die with unshare.
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Fail(format!(
                "timed out after {} s (sandbox killed)",
                o.timeout.as_secs()
            ));
        };
        match fs::read_to_string(work.join(RESULT_FILE)) {
            Ok(text) => Outcome::decode(&text).unwrap_or_else(|| {
                Outcome::Fail(format!(
                    "malformed result file {}",
                    work.join(RESULT_FILE).display()
                ))
            }),
            Err(_) => {
                let log = exec::read_lossy(&log_path);
                let mut msg = format!("sandbox ended ({status}) without a verdict");
                if !log.trim().is_empty() {
                    msg.push_str(&format!(":\n{}", log.trim_end()));
                }
                if log.contains("unshare failed") || log.contains("Operation not permitted") {
                    msg.push_str(if sandbox::is_root() {
                        "\n(namespaces could not be created even as root)"
                    } else {
                        "\n(as a normal user this needs unprivileged user namespaces; run as root otherwise)"
                    });
                }
                Outcome::Fail(msg)
            }
        }
    }
}

/// Run the selected tests, printing verdicts to `out`.
pub fn run(opts: &Options, out: &mut impl Write) -> Result<Summary, RunError> {
    let tree = TestTree::open(&opts.tree, opts.style)?;
    let tests = tree.select(&opts.tests)?;
    let mut outer = Outer {
        opts,
        tree,
        caps: None,
        host_netns: None,
    };
    let mut summary = Summary::default();
    for num in &tests {
        let started = Instant::now();
        let (outcome, work) = outer.run_one(num)?;
        let secs = started.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Pass => {
                summary.passed += 1;
                writeln!(out, "{num} PASS ({secs:.1} s)")?;
            }
            Outcome::Skip(why) => {
                summary.skipped += 1;
                writeln!(out, "{num} SKIP: {}", why.trim_end())?;
            }
            Outcome::Fail(why) => {
                summary.failed += 1;
                let why = why.trim_end();
                let (first, rest) = why.split_once('\n').unwrap_or((why, ""));
                writeln!(out, "{num} FAIL: {first}")?;
                for l in rest.lines() {
                    writeln!(out, "    {l}")?;
                }
            }
        }
        if let Some(work) = work.as_ref() {
            for note in delay_notes(work) {
                writeln!(out, "    note: {note}")?;
            }
        }
        if let Some(work) = work {
            if opts.keep {
                writeln!(out, "    work dir kept: {}", work.display())?;
            } else {
                let _ = fs::remove_dir_all(&work);
            }
        }
        out.flush()?;
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.skipped
    )?;
    Ok(summary)
}

/// The time limit inside the sandbox: a little shorter than the outer one,
/// so that the inside can still report which command hung.
fn inner_timeout(outer: Duration) -> Duration {
    outer
        .saturating_sub(Duration::from_secs(5))
        .max(outer.mul_f64(0.9))
}

/// What the `tc` shim logged about emulated delays (including the measured RTT).
fn delay_notes(work: &Path) -> Vec<String> {
    exec::read_lossy(&work.join(exec::LOG_FILE))
        .lines()
        .filter_map(|l| l.strip_prefix("tc: "))
        .filter(|l| !l.starts_with("real tc"))
        .map(str::to_string)
        .collect()
}

/// Entry point of the sandboxed half: run one test and write its verdict.
pub fn sandbox_main(cfg: &TestConfig, host_netns: u64) -> i32 {
    let outcome = exec::run_sandboxed(cfg, host_netns);
    match fs::write(cfg.work.join(RESULT_FILE), outcome.encode()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("oxim-runtest: writing verdict: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_timeout_is_shorter() {
        assert_eq!(
            inner_timeout(Duration::from_secs(120)),
            Duration::from_secs(115)
        );
        assert_eq!(
            inner_timeout(Duration::from_secs(10)),
            Duration::from_secs(9)
        );
        assert!(inner_timeout(Duration::from_secs(1)) < Duration::from_secs(1));
    }
}
