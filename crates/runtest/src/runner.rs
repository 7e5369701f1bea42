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
use crate::latin1;
use crate::munge::Style;
use crate::sandbox;
use crate::script;
use crate::tree::{Capabilities, TestTree, TreeError, Unmet};
use crate::users::{HarnessUsers, SuidCopies};

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
    /// Tests run at once (each in its own namespaces).
    pub jobs: usize,
    /// Write one JSON line per test here.
    pub report: Option<PathBuf>,
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
    /// Tests the runner could not run.
    pub errors: usize,
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

/// Run `exim -C <minimal configuration> ARGS` in a scratch directory
/// (harness mode); returns (exit status, stdout, stderr).
fn minimal_run(exim: &Path, args: &[&str]) -> Result<(bool, String, String), BvError> {
    let setup = |what: &str, e: io::Error| BvError::Setup(format!("{what}: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("oxim-runtest-bv-")
        .tempdir()
        .map_err(|e| setup("temp dir", e))?;
    let link = dir.path().join("exim");
    std::os::unix::fs::symlink(exim, &link).map_err(|e| setup("symlink", e))?;
    let conf = dir.path().join("bv.conf");
    let minimal = format!(
        "# oxim-runtest: minimal configuration\nspool_directory = {d}/spool\nlog_file_path = {d}/%slog\n",
        d = dir.path().display()
    );
    fs::write(&conf, minimal).map_err(|e| setup("writing bv.conf", e))?;
    let out = Command::new(&link)
        .arg("-C")
        .arg(&conf)
        .args(args)
        .env_clear()
        .env("PATH", sandbox::SYSTEM_PATH)
        .env("OXIM_TEST_HARNESS", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BvError::Spawn {
            exim: exim.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Whether `exim -bP macro NAME` exits 0 (Exim's runtest `feature` check).
pub fn macro_defined(exim: &Path, name: &str) -> bool {
    matches!(minimal_run(exim, &["-bP", "macro", name]), Ok((true, _, _)))
}

/// Run `exim -bV` (harness mode, a minimal configuration naming only the
/// spool directory and log path, in a scratch directory) and parse it.
pub fn query_capabilities(exim: &Path) -> Result<Capabilities, BvError> {
    let (ok, text, stderr) = minimal_run(exim, &["-bV"])?;
    if !ok && !text.contains("Support for:") {
        return Err(BvError::Failed {
            exim: exim.to_path_buf(),
            status: "non-zero exit".into(),
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(Capabilities::parse(&text))
}

struct Outer<'a> {
    opts: &'a Options,
    tree: TestTree,
    caps: std::sync::OnceLock<Result<Capabilities, BvError>>,
    host_netns: std::sync::OnceLock<Result<u64, String>>,
    features: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    /// The sandbox's caller and exim user, and the setuid copies of oxim
    /// (as root without `--caller`; made at the first test).
    users: std::sync::OnceLock<Result<Option<(HarnessUsers, SuidCopies)>, String>>,
}

impl Outer<'_> {
    /// Made once: see [`crate::users`]. `None` when the runner is not root
    /// or runs as `--caller`.
    fn users(&self) -> &Result<Option<(HarnessUsers, SuidCopies)>, String> {
        self.users.get_or_init(|| {
            if self.opts.caller.is_some() || !sandbox::is_root() {
                return Ok(None);
            }
            let users = HarnessUsers::choose().map_err(|e| format!("sandbox users: {e:#}"))?;
            let copies = SuidCopies::make(&self.opts.exim, &users)
                .map_err(|e| format!("setuid copies of oxim: {e:#}"))?;
            Ok(copies.map(|c| (users, c)))
        })
    }

    fn caps(&self) -> &Result<Capabilities, BvError> {
        self.caps
            .get_or_init(|| query_capabilities(&self.opts.exim))
    }

    /// Whether `exim -bP macro NAME` succeeds (a `feature` line of `REQUIRES`).
    fn feature(&self, name: &str) -> bool {
        if let Ok(cache) = self.features.lock() {
            if let Some(v) = cache.get(name) {
                return *v;
            }
        }
        let v = macro_defined(&self.opts.exim, name);
        if let Ok(mut cache) = self.features.lock() {
            cache.insert(name.to_string(), v);
        }
        v
    }

    /// Decide whether and how to run a test; `Err` is a final verdict.
    fn precheck(&self, num: &str) -> Result<PathBuf, Result<Outcome, RunError>> {
        let Some(path) = self.tree.script(num) else {
            return Err(Ok(Outcome::Error(format!(
                "no script for test {num} under {}/scripts",
                self.tree.root().display()
            ))));
        };
        let text = match latin1::read(&crate::tree::resolve_link(&path)) {
            Ok(t) => t,
            Err(e) => {
                return Err(Ok(Outcome::Error(format!(
                    "reading {}: {e}",
                    path.display()
                ))))
            }
        };
        let parsed = match script::parse(&text) {
            Ok(s) => s,
            Err(e) => return Err(Ok(Outcome::Error(format!("{}: {e}", path.display())))),
        };
        let requires = self.tree.requires(&path);
        let frozen = parsed.has_flag("need_move_frozen_messages");
        if parsed.uses_exim() || !requires.is_empty() || frozen {
            if !self.opts.exim.is_file() {
                return Err(Ok(Outcome::Error(format!(
                    "oxim binary {} not found (build it with `cargo build -p oxim`, or give --exim / OXIM_BIN)",
                    self.opts.exim.display()
                ))));
            }
            let exim = self.opts.exim.clone();
            let caps = match self.caps() {
                Ok(c) => c.clone(),
                Err(e) => return Err(Ok(Outcome::Error(e.to_string()))),
            };
            if parsed.uses_exim() {
                if let Err(missing) = caps.check_base() {
                    return Err(Err(RunError::BaseRequirements { exim, missing }));
                }
            }
            let feature = |m: &str| self.feature(m);
            match caps.check_requires(&requires, &feature) {
                Ok(()) => {}
                Err(Unmet::Missing(line)) => {
                    return Err(Ok(Outcome::Skip(format!("unmet REQUIRES: {line}"))))
                }
                Err(Unmet::Unknown(line)) => {
                    return Err(Ok(Outcome::Error(format!(
                        "unknown line in {}: {line:?}",
                        path.with_file_name("REQUIRES").display()
                    ))))
                }
            }
            if frozen && !caps.support.contains("move_frozen_messages") {
                return Err(Ok(Outcome::Skip(
                    "need_move_frozen_messages: -bV has no move_frozen_messages support".into(),
                )));
            }
        }
        Ok(path)
    }

    fn run_one(&self, num: &str) -> Result<(Outcome, Option<PathBuf>), RunError> {
        let script = match self.precheck(num) {
            Ok(p) => p,
            Err(verdict) => return verdict.map(|o| (o, None)),
        };
        let host_netns = match self
            .host_netns
            .get_or_init(|| sandbox::namespace_inode("net").map_err(|e| e.to_string()))
        {
            Ok(i) => *i,
            Err(e) => return Ok((Outcome::Error(e.clone()), None)),
        };
        let work = match tempfile::Builder::new()
            .prefix(&format!("oxim-runtest-{num}-"))
            .tempdir()
        {
            Ok(d) => d.keep(),
            Err(e) => return Ok((Outcome::Error(format!("creating work dir: {e}")), None)),
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
        match self.users() {
            Ok(Some((users, copies))) => {
                args.push("--users".into());
                args.push(users.to_arg());
                args.push("--suid-exim".into());
                args.push(copies.exim().display().to_string());
                args.push("--suid-exim-exim".into());
                args.push(copies.exim_exim().display().to_string());
            }
            Ok(None) => {}
            Err(e) => return Outcome::Error(e.clone()),
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
            Err(e) => return Outcome::Error(format!("creating {}: {e}", log_path.display())),
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Error(format!(
                    "cannot run unshare (util-linux) to build the sandbox: {e}"
                ))
            }
        };
        // The test's time limit runs from the moment the sandbox is set up
        // (it says so with READY_FILE): creating namespaces and configuring
        // their interfaces is the runner's work, not the MTA's; a sandbox
        // that cannot be built within SETUP_LIMIT is an ERROR, not a FAIL.
        let started = Instant::now();
        let ready_file = work.join(exec::READY_FILE);
        let mut deadline: Option<Instant> = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) => {}
                Err(e) => return Outcome::Error(format!("waiting for the sandbox: {e}")),
            }
            let now = Instant::now();
            match deadline {
                None if ready_file.exists() => deadline = Some(now + o.timeout),
                None if now.duration_since(started) >= SETUP_LIMIT => break Err(false),
                Some(d) if now >= d => break Err(true),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let status = match status {
            Ok(s) => s,
            Err(ready) => {
                // --kill-child makes the sandbox's PID 1 (and with it every
                // process in the namespace) die with unshare.
                let _ = child.kill();
                let _ = child.wait();
                return if ready {
                    Outcome::Fail(format!(
                        "timed out after {} s (sandbox killed)",
                        o.timeout.as_secs()
                    ))
                } else {
                    Outcome::Error(format!(
                        "the sandbox was not set up within {} s (sandbox killed)",
                        SETUP_LIMIT.as_secs()
                    ))
                };
            }
        };
        match fs::read_to_string(work.join(RESULT_FILE)) {
            Ok(text) => Outcome::decode(&text).unwrap_or_else(|| {
                Outcome::Error(format!(
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
                Outcome::Error(msg)
            }
        }
    }
}

/// One finished test.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Test number.
    pub test: String,
    /// Script directory (`0000-Basic`).
    pub directory: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Notes from the run (emulated delays).
    pub notes: Vec<String>,
    /// Kept work directory.
    pub kept: Option<PathBuf>,
}

impl Verdict {
    /// `PASS`, `FAIL`, `SKIP` or `ERROR`.
    pub fn word(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
            Outcome::Error(_) => "ERROR",
        }
    }

    /// The full explanation (empty for PASS).
    pub fn detail(&self) -> &str {
        match &self.outcome {
            Outcome::Pass => "",
            Outcome::Fail(m) | Outcome::Skip(m) | Outcome::Error(m) => m,
        }
    }
}

/// Run the selected tests, printing verdicts to `out`.
pub fn run(opts: &Options, out: &mut impl Write) -> Result<Summary, RunError> {
    let tree = TestTree::open(&opts.tree, opts.style)?;
    let tests = tree.select(&opts.tests)?;
    let dirs: Vec<String> = tests
        .iter()
        .map(|n| {
            tree.script(n)
                .and_then(|p| {
                    p.parent()
                        .and_then(|d| d.file_name())
                        .map(|d| d.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "?".into())
        })
        .collect();
    let outer = Outer {
        opts,
        tree,
        caps: std::sync::OnceLock::new(),
        host_netns: std::sync::OnceLock::new(),
        features: std::sync::Mutex::new(std::collections::HashMap::new()),
        users: std::sync::OnceLock::new(),
    };
    let mut report = match &opts.report {
        Some(p) => Some(io::BufWriter::new(fs::File::create(p)?)),
        None => None,
    };
    let started_all = Instant::now();
    let queue = std::sync::Mutex::new((0..tests.len()).collect::<std::collections::VecDeque<_>>());
    let (tx, rx) = std::sync::mpsc::channel::<Result<Verdict, RunError>>();
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut fatal = None;
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            let tx = tx.clone();
            let (outer, queue, tests, dirs) = (&outer, &queue, &tests, &dirs);
            scope.spawn(move || loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(i) = next else { break };
                let num = &tests[i];
                let started = Instant::now();
                let result = outer.run_one(num).map(|(outcome, work)| {
                    let notes = work.as_deref().map(delay_notes).unwrap_or_default();
                    let kept = match work {
                        Some(w) if outer.opts.keep => Some(w),
                        Some(w) => {
                            let _ = fs::remove_dir_all(&w);
                            None
                        }
                        None => None,
                    };
                    Verdict {
                        test: num.clone(),
                        directory: dirs[i].clone(),
                        outcome,
                        seconds: started.elapsed().as_secs_f64(),
                        notes,
                        kept,
                    }
                });
                let stop = result.is_err();
                if tx.send(result).is_err() || stop {
                    if stop {
                        if let Ok(mut q) = queue.lock() {
                            q.clear();
                        }
                    }
                    break;
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(v) => {
                    if let Err(e) = print_verdict(out, &v) {
                        fatal.get_or_insert(RunError::Io(e));
                    }
                    if let Some(r) = report.as_mut() {
                        if let Err(e) = writeln!(r, "{}", report_line(&v)) {
                            fatal.get_or_insert(RunError::Io(e));
                        }
                    }
                    verdicts.push(v);
                }
                Err(e) => {
                    fatal.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = fatal {
        return Err(e);
    }
    if let Some(mut r) = report {
        r.flush()?;
    }
    let mut summary = Summary::default();
    for v in &verdicts {
        match v.outcome {
            Outcome::Pass => summary.passed += 1,
            Outcome::Fail(_) => summary.failed += 1,
            Outcome::Skip(_) => summary.skipped += 1,
            Outcome::Error(_) => summary.errors += 1,
        }
    }
    if verdicts.len() > 1 {
        verdicts.sort_by(|a, b| a.test.cmp(&b.test));
        write!(out, "{}", summary_tables(&verdicts))?;
    }
    writeln!(
        out,
        "{} tests in {:.0} s with {} job(s)",
        verdicts.len(),
        started_all.elapsed().as_secs_f64(),
        opts.jobs.max(1)
    )?;
    writeln!(
        out,
        "{} passed, {} failed, {} skipped, {} errors",
        summary.passed, summary.failed, summary.skipped, summary.errors
    )?;
    Ok(summary)
}

fn print_verdict(out: &mut impl Write, v: &Verdict) -> io::Result<()> {
    let num = &v.test;
    match &v.outcome {
        Outcome::Pass => writeln!(out, "{num} PASS ({:.1} s)", v.seconds)?,
        Outcome::Skip(why) => writeln!(out, "{num} SKIP: {}", why.trim_end())?,
        Outcome::Fail(_) | Outcome::Error(_) => {
            let why = v.detail().trim_end();
            writeln!(out, "{num} {}: {}", v.word(), reason_line(why))?;
            for l in why.lines() {
                writeln!(out, "    {l}")?;
            }
        }
    }
    for note in &v.notes {
        writeln!(out, "    note: {note}")?;
    }
    if let Some(w) = &v.kept {
        writeln!(out, "    work dir kept: {}", w.display())?;
    }
    out.flush()
}

fn json_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if u32::from(c) < 0x20 => o.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// One JSON object (one line) for the report.
pub fn report_line(v: &Verdict) -> String {
    format!(
        "{{\"test\":{},\"directory\":{},\"verdict\":{},\"reason\":{},\"category\":{},\"seconds\":{:.1}}}",
        json_string(&v.test),
        json_string(&v.directory),
        json_string(v.word()),
        json_string(&reason_line(v.detail())),
        json_string(&category(v)),
        v.seconds
    )
}

/// The one-line reason of a verdict's explanation.
pub fn reason_line(detail: &str) -> String {
    crate::reason::one_line(detail)
}

/// The reason class used in the summary table.
pub fn category(v: &Verdict) -> String {
    crate::reason::category(v.word(), v.detail())
}

/// The per-directory and per-reason tables.
pub fn summary_tables(verdicts: &[Verdict]) -> String {
    use std::collections::BTreeMap;
    let mut by_dir: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut by_reason: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let idx = |w: &str| match w {
        "PASS" => 0,
        "FAIL" => 1,
        "SKIP" => 2,
        _ => 3,
    };
    for v in verdicts {
        by_dir.entry(&v.directory).or_default()[idx(v.word())] += 1;
        if !matches!(v.outcome, Outcome::Pass) {
            *by_reason.entry((category(v), v.word())).or_default() += 1;
        }
    }
    let mut s = String::from("\n=== per directory ===\n");
    s.push_str(&format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>5}\n",
        "directory", "tests", "PASS", "FAIL", "SKIP", "ERROR"
    ));
    for (d, c) in &by_dir {
        s.push_str(&format!(
            "{:<32} {:>5} {:>5} {:>5} {:>5} {:>5}\n",
            d,
            c.iter().sum::<usize>(),
            c[0],
            c[1],
            c[2],
            c[3]
        ));
    }
    let mut reasons: Vec<((String, &str), usize)> = by_reason.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    s.push_str("\n=== per reason ===\n");
    s.push_str(&format!("{:>5} {:<5} reason\n", "tests", "what"));
    for ((r, w), n) in &reasons {
        s.push_str(&format!("{n:>5} {w:<5} {r}\n"));
    }
    s.push('\n');
    s
}

/// How long building and configuring a sandbox's namespaces may take
/// (not counted in the test's own time limit).
const SETUP_LIMIT: Duration = Duration::from_secs(60);

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
