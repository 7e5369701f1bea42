//! Running one test inside the sandbox: preparing the work directory,
//! starting the test DNS server, executing the script's commands and
//! comparing the results (RUNTEST-NOTES sections 0, 1 and 4).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

mod exim;
mod finish;
mod input;
mod peers;
mod prepare;
mod steps;

pub use exim::{daemon_args, is_daemon};
pub use input::{perl_unescape, split_data_prefix, stdin_bytes};

use crate::latin1;
use crate::munge::Style;
use crate::sandbox;
use crate::script::{self, ClientKind, Command as Cmd, ExitExpect, Step};
use crate::subst::{Params, Substituter};
use exim::EximRun;

/// Name of the file in the work directory that carries the verdict from the
/// sandboxed process back to the outer runner.
pub const RESULT_FILE: &str = "runtest-result";
/// The runner's own log of what it did (steps, sandbox notes, measured RTT).
pub const LOG_FILE: &str = "runtest.log";
/// Created in the work directory once the sandbox is set up: the outer
/// runner's per-test time limit counts from then.
pub const READY_FILE: &str = "sandbox-ready";

/// Exim's hints utilities, which the oxim binary is when called by their
/// names: the sandbox's `bin/` has a symlink for each.
pub(crate) const HINTS_UTILITIES: [&str; 4] =
    ["exim_dumpdb", "exim_tidydb", "exim_fixdb", "exinext"];

/// Verdict for one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All comparisons matched.
    Pass,
    /// Something failed; the text explains (diffs included).
    Fail(String),
    /// Not run; the text names the unmet requirement.
    Skip(String),
    /// The runner could not run the test (unknown command, unreadable
    /// file, zone error, sandbox failure); the text explains.
    Error(String),
}

impl Outcome {
    /// Serialise for [`RESULT_FILE`].
    pub fn encode(&self) -> String {
        match self {
            Outcome::Pass => "PASS\n".to_string(),
            Outcome::Fail(m) => format!("FAIL\n{m}"),
            Outcome::Skip(m) => format!("SKIP\n{m}"),
            Outcome::Error(m) => format!("ERROR\n{m}"),
        }
    }

    /// Parse what [`Outcome::encode`] wrote.
    pub fn decode(text: &str) -> Option<Outcome> {
        let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
        match head {
            "PASS" => Some(Outcome::Pass),
            "FAIL" => Some(Outcome::Fail(rest.to_string())),
            "SKIP" => Some(Outcome::Skip(rest.to_string())),
            "ERROR" => Some(Outcome::Error(rest.to_string())),
            _ => None,
        }
    }
}

/// Everything the sandboxed process needs to run a test.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Root of the Exim-layout tree.
    pub tree: PathBuf,
    /// Id/munging style.
    pub style: Style,
    /// Test number.
    pub testnum: String,
    /// Path of the script.
    pub script: PathBuf,
    /// Private work directory (DIR).
    pub work: PathBuf,
    /// The oxim binary (run as `exim` through a symlink).
    pub exim: PathBuf,
    /// This runner's executable (for `client`, `server` and the `tc` shim).
    pub runner: PathBuf,
    /// The delay helper (`oxim-delayer`), if known.
    pub delayer: Option<PathBuf>,
    /// Echo progress to stderr.
    pub verbose: bool,
    /// Run `exim`, `client`, `server` and plain `perl` as this user instead
    /// of the runner's (needs root); `sudo perl` stays root.
    pub caller: Option<String>,
    /// The sandbox's own caller and exim user (the runner is root and has
    /// no `--caller`): the script's commands run as the caller, and `exim`
    /// is the setuid copy of oxim (see [`crate::users`]).
    pub users: Option<SandboxUsers>,
    /// Time limit for the whole test inside the sandbox; commands still
    /// running when it expires are killed and the test fails naming them.
    pub timeout: Duration,
}

/// See [`TestConfig::users`].
#[derive(Debug, Clone)]
pub struct SandboxUsers {
    /// The accounts.
    pub users: crate::users::HarnessUsers,
    /// The setuid-root copy of oxim.
    pub exim: PathBuf,
    /// The copy setuid to the exim user (`exim_exim`).
    pub exim_exim: PathBuf,
}

/// What ends a test early: the product misbehaved (FAIL) or the runner
/// could not do what the script asked (ERROR).
pub(crate) enum StepFail {
    /// Verdict FAIL with this reason.
    Fail(String),
    /// Verdict ERROR with this reason.
    Error(String),
}

pub(crate) type StepResult = Result<(), StepFail>;

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, StepFail> {
    Err(StepFail::Fail(msg.into()))
}

pub(crate) fn error<T>(msg: impl Into<String>) -> Result<T, StepFail> {
    Err(StepFail::Error(msg.into()))
}

struct PendingServer {
    child: Child,
    stdin: Option<ChildStdin>,
    expect: ExitExpect,
    line: usize,
}

/// Runs one test's script in the current (sandboxed) process.
struct Runner<'a> {
    cfg: &'a TestConfig,
    subst: Substituter,
    log: Option<File>,
    server: Option<PendingServer>,
    daemons: Vec<i32>,
    host_netns: u64,
    deadline: Instant,
    caller_ids: Option<(u32, u32)>,
    /// The canned munge selected by `munge NAME`.
    munge: Option<String>,
    /// Processes started by `background`.
    background: Vec<Child>,
    /// The listening socket behind `PORT_DYNAMIC`, if the script uses it.
    dynamic: Option<std::net::TcpListener>,
}

/// Signals whose disposition the commands of a script must find at their
/// default: the runner stops daemons with SIGINT (2019 tree) or SIGTERM,
/// and scripts' own programs expect the usual behaviour.
const DEFAULT_SIGNALS: [i32; 4] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// Make the programs the script starts begin with the default action for
/// [`DEFAULT_SIGNALS`], whatever the runner inherited: a signal ignored
/// here (the runner started in the background by a non-interactive shell
/// has SIGINT and SIGQUIT ignored) would stay ignored across `exec`, and a
/// daemon would then shrug off the runner's SIGINT until killed 10 s
/// later. A caught signal is reset to its default by `exec`, so catching
/// them here (as Exim's runtest, whose Perl handlers the commands it
/// starts do not keep) is enough.
fn default_signals_for_children() -> std::io::Result<()> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in DEFAULT_SIGNALS {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&flag))?;
    }
    Ok(())
}

/// Set up the sandbox (we are PID 1 of fresh namespaces) and run the test.
pub fn run_sandboxed(cfg: &TestConfig, host_netns: u64) -> Outcome {
    if let Err(e) = default_signals_for_children() {
        return Outcome::Error(format!("sandbox: catching signals: {e}"));
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.work.join(LOG_FILE))
        .ok();
    let setup_started = Instant::now();
    let report = match sandbox::setup(host_netns, &cfg.work.join("etc")) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("sandbox: {e}")),
    };
    let _ = File::create(cfg.work.join(READY_FILE));
    if let Some(l) = log.as_mut() {
        let _ = writeln!(
            l,
            "sandbox: hostname {} ipv4 {} ipv6 {} on {}",
            sandbox::HOSTNAME,
            sandbox::HOST_IPV4,
            sandbox::HOST_IPV6,
            report.interface
        );
        for n in &report.notes {
            let _ = writeln!(l, "sandbox: {n}");
        }
        let _ = writeln!(
            l,
            "sandbox: set up in {} ms",
            setup_started.elapsed().as_millis()
        );
    }
    if let Some(u) = &cfg.users {
        if let Err(e) = u.users.install(&cfg.work.join("etc")) {
            return Outcome::Error(format!("sandbox users: {e:#}"));
        }
        if let Some(l) = log.as_mut() {
            let _ = writeln!(
                l,
                "sandbox: caller {} ({}), exim user {} ({}), exim is {}",
                u.users.caller.name,
                u.users.caller.uid,
                u.users.exim.name,
                u.users.exim.uid,
                u.exim.display()
            );
        }
    }
    let params = match (&cfg.caller, &cfg.users) {
        (None, Some(u)) => Params::for_sandbox_users(
            &u.users,
            &cfg.work,
            sandbox::HOSTNAME,
            sandbox::HOST_IPV4,
            Some(sandbox::HOST_IPV6),
            &cfg.testnum,
        ),
        (None, None) => Params::for_current_user(
            &cfg.work,
            sandbox::HOSTNAME,
            sandbox::HOST_IPV4,
            Some(sandbox::HOST_IPV6),
            &cfg.testnum,
        ),
        (Some(name), _) => match Params::for_named_user(
            name,
            &cfg.work,
            sandbox::HOSTNAME,
            sandbox::HOST_IPV4,
            Some(sandbox::HOST_IPV6),
            &cfg.testnum,
        ) {
            Some(p) => p,
            None => return Outcome::Error(format!("--caller {name}: no such user")),
        },
    };
    let caller_ids = (cfg.caller.is_some() || cfg.users.is_some())
        .then_some((params.caller_uid, params.caller_gid));
    let mut runner = Runner {
        cfg,
        subst: Substituter::new(params),
        log,
        server: None,
        daemons: Vec::new(),
        host_netns,
        deadline: Instant::now() + cfg.timeout,
        caller_ids,
        munge: None,
        background: Vec::new(),
        dynamic: None,
    };
    let outcome = runner.run();
    runner.cleanup();
    outcome
}

fn append(path: &Path) -> Result<File, StepFail> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StepFail::Fail(format!("opening {}: {e}", path.display())))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl Runner<'_> {
    fn note(&mut self, msg: &str) {
        if let Some(l) = self.log.as_mut() {
            let _ = writeln!(l, "{msg}");
        }
        if self.cfg.verbose {
            eprintln!("  [{}] {msg}", self.cfg.testnum);
        }
    }

    fn work(&self, rel: &str) -> PathBuf {
        self.cfg.work.join(rel)
    }

    /// The last `n` lines of a work-dir file, as a labelled block (empty if none).
    fn tail(&self, rel: &str, n: usize) -> String {
        let text = read_lossy(&self.work(rel));
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let from = lines.len().saturating_sub(n);
        let mut out = format!("\nlast lines of {rel}:");
        for l in &lines[from..] {
            out.push_str("\n  ");
            out.push_str(l);
        }
        out
    }

    fn run(&mut self) -> Outcome {
        let text = match latin1::read(&crate::tree::resolve_link(&self.cfg.script)) {
            Ok(t) => t,
            Err(e) => return Outcome::Error(format!("reading {}: {e}", self.cfg.script.display())),
        };
        let script = match script::parse(&text) {
            Ok(s) => s,
            Err(e) => return Outcome::Error(format!("{}: {e}", self.cfg.script.display())),
        };
        let stop = |f: StepFail, prefix: &str| match f {
            StepFail::Fail(m) => Outcome::Fail(format!("{prefix}{m}")),
            StepFail::Error(m) => Outcome::Error(format!("{prefix}{m}")),
        };
        if text.contains("PORT_DYNAMIC") {
            let port = crate::subst::PORT_DYNAMIC;
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => self.dynamic = Some(l),
                Err(e) => {
                    return Outcome::Error(format!("PORT_DYNAMIC: binding 127.0.0.1:{port}: {e}"))
                }
            }
        }
        // Whatever goes wrong while preparing is the runner's problem.
        if let Err(StepFail::Fail(m) | StepFail::Error(m)) = self.prepare(&script) {
            return Outcome::Error(m);
        }
        for step in &script.steps {
            if let Err(f) = self.step(step) {
                return stop(f, &format!("script line {}: ", step.line));
            }
        }
        if let Err(f) = self.finish_server() {
            return stop(f, "");
        }
        self.stop_daemons(false);
        self.wait_for_stragglers(Duration::from_secs(10));
        self.compare(&script)
    }

    fn step(&mut self, step: &Step) -> StepResult {
        match &step.command {
            Cmd::Exim {
                sudo,
                sudo_user,
                env,
                wait,
                special,
                args,
                data,
            } => {
                let mut env = env.clone();
                env.extend(step.env.iter().cloned());
                let run = EximRun {
                    sudo: *sudo,
                    sudo_user: sudo_user.as_deref(),
                    env: &env,
                    wait: *wait,
                    special,
                    args,
                    data,
                };
                self.exim(&run, step.expect)
            }
            Cmd::KillDaemon => {
                self.note("killdaemon");
                self.stop_daemons(true);
                Ok(())
            }
            Cmd::Sleep(n) => {
                self.note(&format!("sleep {n}"));
                self.sleep(Duration::from_secs(*n))
            }
            Cmd::MilliSleep(n) => self.sleep(Duration::from_millis(*n)),
            Cmd::Perl { sudo, args, data } => self.perl(*sudo, args, data, &step.env, step.expect),
            Cmd::Client {
                kind,
                word,
                args,
                data,
            } => {
                self.note(&format!("{word} {args}"));
                self.client(*kind == ClientKind::Tls, args, data, &step.env, step.expect)
            }
            Cmd::Server { args, data } => self.server(args, data, step.expect, step.line),
            Cmd::Write {
                file,
                cat,
                sizes,
                pre,
                post,
            } => self.write_file(file, *cat, sizes, pre, post),
            Cmd::Echo(text) => {
                let t = self.subst.apply(text);
                self.note(&format!("echo: {t}"));
                Ok(())
            }
            Cmd::Comment(text) => self.comment(text),
            Cmd::Gnutls => Ok(()),
            Cmd::Munge(name) => self.select_munge(name),
            Cmd::Shell { line, cat2 } => self.shell(line, *cat2, &step.env, step.expect),
            Cmd::Dump(db) => self.dump(db),
            Cmd::Utility { name, args } => self.utility(name, args, step.expect),
            Cmd::Background(line) => self.background(line, &step.env),
        }
    }

    /// Sleep, but not past the test's time limit.
    fn sleep(&self, d: Duration) -> StepResult {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if d > left {
            std::thread::sleep(left);
            return fail(format!(
                "sleeping {:.1} s would run past the test's time limit ({:.1} s)",
                d.as_secs_f64(),
                self.cfg.timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(d);
        Ok(())
    }
}

/// Read a file that may not exist, as text.
pub fn read_lossy(path: &Path) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_roundtrip() {
        for o in [
            Outcome::Pass,
            Outcome::Fail("x\ny\n".into()),
            Outcome::Skip("support X".into()),
            Outcome::Error("unknown command".into()),
        ] {
            assert_eq!(Outcome::decode(&o.encode()), Some(o));
        }
        assert_eq!(Outcome::decode("garbage"), None);
    }
}
