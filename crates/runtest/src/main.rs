//! `oxim-runtest`: run Exim's test scripts against oxim.
//!
//! ```text
//! oxim-runtest [--tests DIR] [--exim PATH] [--keep] [-v] [--timeout SECS]
//!              [--style old|head] [--caller USER] [--jobs N] [--report FILE]
//!              [TEST|FROM-TO ...]
//! oxim-runtest client [-t SECS] IP PORT      < script
//! oxim-runtest server [-oP PIDFILE] PORT [N] < script
//! ```
//! Invoked through a link named `tc` it acts as the sandbox's `tc` shim.

#![forbid(unsafe_code)]

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use oxim_runtest::client::{self, ClientArgs};
use oxim_runtest::exec::TestConfig;
use oxim_runtest::munge::Style;
use oxim_runtest::runner::{self, Options, SANDBOX_SUBCOMMAND};
use oxim_runtest::server::{self, ServerArgs};
use oxim_runtest::tcshim;

const USAGE: &str =
    "usage: oxim-runtest [--tests DIR] [--exim PATH] [--delayer PATH] [--keep] [-v] \
[--timeout SECS] [--style old|head] [--caller USER] [--jobs N] [--report FILE]
       [TEST|FROM-TO ...]
       oxim-runtest client [-t SECS] IP PORT < script
       oxim-runtest server [-t SECS] [-oP PIDFILE] PORT [COUNT] < script
environment: OXIM_EXIM_TESTS_TREE (test tree), OXIM_EXIM_TESTS (dir holding 2d58d8154/ and HEAD/),
             OXIM_BIN (oxim binary), OXIM_DELAYER (delay helper)";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let rest: Vec<String> = args.drain(1..).collect();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "tc" {
        return code(tcshim::main(&rest));
    }
    let result = match rest.first().map(String::as_str) {
        Some("client") => run_client(&rest[1..]),
        Some("server") => run_server(&rest[1..]),
        Some(SANDBOX_SUBCOMMAND) => run_sandbox(&rest[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(0)
        }
        _ => run_tests(&rest),
    };
    match result {
        Ok(status) => code(status),
        Err(e) => {
            eprintln!("oxim-runtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(1))
}

fn run_client(args: &[String]) -> Result<i32> {
    let args = ClientArgs::parse(args)?;
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    Ok(client::run(&args, stdin.lock(), &mut out)?)
}

fn run_server(args: &[String]) -> Result<i32> {
    let args = ServerArgs::parse(args)?;
    let stdin = BufReader::new(io::stdin());
    let mut out = io::stdout().lock();
    Ok(server::run(&args, stdin, &mut out)?)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// Default tree: `$OXIM_EXIM_TESTS_TREE`, `$OXIM_EXIM_TESTS/2d58d8154/test`,
/// else `<repo>/../shared/exim-tests/2d58d8154/test`.
fn default_tree() -> PathBuf {
    if let Some(t) = std::env::var_os("OXIM_EXIM_TESTS_TREE") {
        return PathBuf::from(t);
    }
    if let Some(t) = std::env::var_os("OXIM_EXIM_TESTS") {
        return PathBuf::from(t).join("2d58d8154/test");
    }
    repo_root().join("../shared/exim-tests/2d58d8154/test")
}

fn sibling(name: &str) -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
}

fn value(it: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<String> {
    it.next()
        .cloned()
        .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
}

fn parse_style(s: &str) -> Result<Style> {
    match s {
        "old" => Ok(Style::Old),
        "head" => Ok(Style::Head),
        _ => bail!("--style must be old or head, not {s:?}"),
    }
}

fn run_tests(args: &[String]) -> Result<i32> {
    let runner_exe = std::env::current_exe().context("locating own executable")?;
    let mut opts = Options {
        tree: default_tree(),
        exim: std::env::var_os("OXIM_BIN")
            .map(PathBuf::from)
            .or_else(|| sibling("oxim"))
            .unwrap_or_else(|| PathBuf::from("oxim")),
        delayer: std::env::var_os("OXIM_DELAYER")
            .map(PathBuf::from)
            .or_else(|| sibling("oxim-delayer")),
        runner: runner_exe,
        keep: false,
        verbose: false,
        timeout: Duration::from_secs(120),
        style: None,
        caller: None,
        tests: Vec::new(),
        jobs: 1,
        report: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tests" => opts.tree = PathBuf::from(value(&mut it, a)?),
            "--exim" => opts.exim = PathBuf::from(value(&mut it, a)?),
            "--delayer" => opts.delayer = Some(PathBuf::from(value(&mut it, a)?)),
            "--keep" => opts.keep = true,
            "-v" | "--verbose" => opts.verbose = true,
            "--timeout" => {
                let v = value(&mut it, a)?;
                let secs: u64 = v.parse().with_context(|| format!("--timeout {v:?}"))?;
                opts.timeout = Duration::from_secs(secs.max(1));
            }
            "--style" => opts.style = Some(parse_style(&value(&mut it, a)?)?),
            "--caller" => opts.caller = Some(value(&mut it, a)?),
            "--jobs" | "-j" => {
                let v = value(&mut it, a)?;
                let n: usize = v.parse().with_context(|| format!("--jobs {v:?}"))?;
                opts.jobs = n.max(1);
            }
            "--report" => opts.report = Some(PathBuf::from(value(&mut it, a)?)),
            s if s.starts_with('-') => bail!("unknown option {s}\n{USAGE}"),
            _ => opts.tests.push(a.clone()),
        }
    }
    if opts.caller.is_some() && !oxim_runtest::sandbox::is_root() {
        bail!("--caller needs root (the runner must be able to switch to that user)");
    }
    if let Ok(abs) = opts.exim.canonicalize() {
        opts.exim = abs;
    }
    if let Some(d) = opts.delayer.as_ref().and_then(|d| d.canonicalize().ok()) {
        opts.delayer = Some(d);
    }
    let mut out = io::stdout().lock();
    let summary = runner::run(&opts, &mut out)?;
    Ok(if summary.failed > 0 || summary.errors > 0 {
        1
    } else {
        0
    })
}

fn run_sandbox(args: &[String]) -> Result<i32> {
    let mut tree = None;
    let mut test = None;
    let mut script = None;
    let mut work = None;
    let mut exim = None;
    let mut style = Style::Old;
    let mut host_netns = None;
    let mut delayer = None;
    let mut caller = None;
    let mut users = None;
    let mut suid_exim = None;
    let mut suid_exim_exim = None;
    let mut verbose = false;
    let mut timeout = Duration::from_secs(115);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tree" => tree = Some(PathBuf::from(value(&mut it, a)?)),
            "--test" => test = Some(value(&mut it, a)?),
            "--script" => script = Some(PathBuf::from(value(&mut it, a)?)),
            "--work" => work = Some(PathBuf::from(value(&mut it, a)?)),
            "--exim" => exim = Some(PathBuf::from(value(&mut it, a)?)),
            "--style" => style = parse_style(&value(&mut it, a)?)?,
            "--delayer" => delayer = Some(PathBuf::from(value(&mut it, a)?)),
            "--caller" => caller = Some(value(&mut it, a)?),
            "--users" => {
                users = Some(oxim_runtest::users::HarnessUsers::from_arg(&value(
                    &mut it, a,
                )?)?)
            }
            "--suid-exim" => suid_exim = Some(PathBuf::from(value(&mut it, a)?)),
            "--suid-exim-exim" => suid_exim_exim = Some(PathBuf::from(value(&mut it, a)?)),
            "--host-netns" => {
                let v = value(&mut it, a)?;
                host_netns = Some(
                    v.parse::<u64>()
                        .with_context(|| format!("--host-netns {v:?}"))?,
                );
            }
            "--timeout-ms" => {
                let v = value(&mut it, a)?;
                let ms: u64 = v.parse().with_context(|| format!("--timeout-ms {v:?}"))?;
                timeout = Duration::from_millis(ms);
            }
            "-v" => verbose = true,
            other => bail!("{SANDBOX_SUBCOMMAND}: unexpected argument {other:?}"),
        }
    }
    let missing = |what: &str| anyhow!("{SANDBOX_SUBCOMMAND}: missing {what}");
    let cfg = TestConfig {
        tree: tree.ok_or_else(|| missing("--tree"))?,
        style,
        testnum: test.ok_or_else(|| missing("--test"))?,
        script: script.ok_or_else(|| missing("--script"))?,
        work: work.ok_or_else(|| missing("--work"))?,
        exim: exim.ok_or_else(|| missing("--exim"))?,
        runner: std::env::current_exe().context("locating own executable")?,
        delayer,
        caller,
        users: match (users, suid_exim, suid_exim_exim) {
            (Some(users), Some(exim), Some(exim_exim)) => Some(oxim_runtest::exec::SandboxUsers {
                users,
                exim,
                exim_exim,
            }),
            (None, None, None) => None,
            _ => {
                bail!("{SANDBOX_SUBCOMMAND}: --users, --suid-exim and --suid-exim-exim go together")
            }
        },
        verbose,
        timeout,
    };
    let host_netns = host_netns.ok_or_else(|| missing("--host-netns"))?;
    Ok(runner::sandbox_main(&cfg, host_netns))
}
