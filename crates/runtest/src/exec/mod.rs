//! Running one test inside the sandbox: preparing the work directory,
//! starting the test DNS server, executing the script's commands and
//! comparing the results (RUNTEST-NOTES sections 0, 1 and 4).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

mod steps;

use crate::compare::{CompareOptions, Comparer};
use crate::dns;
use crate::latin1;
use crate::munge::{Identity, Munger, Style};
use crate::sandbox;
use crate::script::{self, ClientKind, Command as Cmd, ExitExpect, Script, Step};
use crate::subst::{Params, Substituter};

/// Name of the file in the work directory that carries the verdict from the
/// sandboxed process back to the outer runner.
pub const RESULT_FILE: &str = "runtest-result";
/// The runner's own log of what it did (steps, sandbox notes, measured RTT).
pub const LOG_FILE: &str = "runtest.log";

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
    /// Time limit for the whole test inside the sandbox; commands still
    /// running when it expires are killed and the test fails naming them.
    pub timeout: Duration,
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

/// Set up the sandbox (we are PID 1 of fresh namespaces) and run the test.
pub fn run_sandboxed(cfg: &TestConfig, host_netns: u64) -> Outcome {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.work.join(LOG_FILE))
        .ok();
    let report = match sandbox::setup(host_netns, &cfg.work.join("etc")) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("sandbox: {e}")),
    };
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
    }
    let params = match &cfg.caller {
        None => Params::for_current_user(
            &cfg.work,
            sandbox::HOSTNAME,
            sandbox::HOST_IPV4,
            Some(sandbox::HOST_IPV6),
            &cfg.testnum,
        ),
        Some(name) => match Params::for_named_user(
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
    let caller_ids = cfg
        .caller
        .as_ref()
        .map(|_| (params.caller_uid, params.caller_gid));
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

/// Server script lines as bytes (each with its newline; not substituted).
pub fn stdin_bytes(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&latin1::encode(l));
        out.push(b'\n');
    }
    out
}

/// A piece of a command's input.
pub(crate) enum Chunk {
    /// Bytes to write.
    Bytes(Vec<u8>),
    /// A pause (`:sleep:N`, or `N exim` before closing stdin).
    Sleep(Duration),
}

/// How to run one `exim` command of a script.
pub(crate) struct EximRun<'a> {
    sudo: bool,
    sudo_user: Option<&'a str>,
    env: &'a [(String, String)],
    wait: u64,
    special: &'a str,
    args: &'a str,
    data: &'a [String],
}

/// `:name:rest` at the start of a data line (Exim: `^(:\S+?:)(.*)`).
pub fn split_data_prefix(line: &str) -> (Option<&str>, &str) {
    if let Some(body) = line.strip_prefix(':') {
        if let Some(end) = body.find(':') {
            let name = &body[..end];
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                return (Some(&line[..end + 2]), &line[end + 2..]);
            }
        }
    }
    (None, line)
}

/// What Perl's `eval "\"$_\""` makes of the escapes in a line: `\n`,
/// `\r`, `\t`, `\e`, `\a`, `\f`, `\0`, `\NNN` (octal), `\xHH`,
/// `\x{H..}`; other backslashed characters stand for themselves.
pub fn perl_unescape(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' || i >= chars.len() {
            out.push(c);
            continue;
        }
        let e = chars[i];
        i += 1;
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'e' => out.push('\u{1b}'),
            'a' => out.push('\u{7}'),
            'f' => out.push('\u{c}'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                let mut n = 1;
                while n < 3 && i < chars.len() && chars[i].is_digit(8) {
                    v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(char::from_u32(v).unwrap_or('?'));
            }
            'x' => {
                let mut v = 0;
                if i < chars.len() && chars[i] == '{' {
                    i += 1;
                    while i < chars.len() && chars[i] != '}' {
                        v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                        i += 1;
                    }
                    i += 1;
                } else {
                    let mut n = 0;
                    while n < 2 && i < chars.len() && chars[i].is_ascii_hexdigit() {
                        v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                        i += 1;
                        n += 1;
                    }
                }
                out.push(char::from_u32(v).unwrap_or('?'));
            }
            other => out.push(other),
        }
    }
    out
}

/// Rewrite a daemon command line: ` -bd ` becomes ` -bdf -oP <pidfile> `.
pub fn daemon_args(args: &str, pidfile: &Path) -> String {
    let padded = format!(" {args} ");
    padded
        .replacen(" -bd ", &format!(" -bdf -oP {} ", pidfile.display()), 1)
        .trim()
        .to_string()
}

/// Whether an exim command line starts a daemon (Exim's runtest rule).
pub fn is_daemon(args: &str) -> bool {
    let padded = format!(" {args} ");
    padded.contains(" -DSERVER=server ") && !padded.contains(" -DNOTDAEMON ")
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            Err(_) => {
                // Not our child: gone when /proc has no live entry for it.
                match fs::read_to_string(format!("/proc/{pid}/stat")) {
                    Err(_) => return true,
                    Ok(s) => {
                        let state = s.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
                        if state == Some('Z') {
                            return true;
                        }
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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

    fn prepare(&mut self, script: &Script) -> StepResult {
        for d in ["spool", "test-mail", "aux-var", "dnszones", "bin"] {
            fs::create_dir_all(self.work(d))
                .map_err(|e| StepFail::Fail(format!("creating {d}: {e}")))?;
        }
        for f in ["test-stdout", "test-stderr"] {
            append(&self.work(f))?;
        }
        if let Some((uid, gid)) = self.caller_ids {
            for d in ["", "spool", "test-mail", "aux-var"] {
                let path = self.work(d);
                nix::unistd::chown(
                    &path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(|e| {
                    StepFail::Fail(format!("chown {} to the caller: {e}", path.display()))
                })?;
            }
        }
        let tree = self.cfg.tree.clone();
        self.copy_substituted(&tree.join("aux-var-src"), &self.work("aux-var"))?;
        self.copy_substituted(&tree.join("dnszones-src"), &self.work("dnszones"))?;
        for (name, text) in dns::generated_zone_files(sandbox::HOSTNAME, sandbox::HOST_IPV4) {
            fs::write(self.work("dnszones").join(name), text)
                .map_err(|e| StepFail::Fail(format!("writing generated zone: {e}")))?;
        }
        // DIR/aux-fixed is the tree's own (certificates, keys, fixed data),
        // as in Exim's test directory; it is not substituted.
        let fixed = tree.join("aux-fixed");
        if fixed.is_dir() {
            symlink(&fixed, self.work("aux-fixed"))
                .map_err(|e| StepFail::Fail(format!("linking aux-fixed: {e}")))?;
        }
        let bin = self.work("bin");
        symlink(&self.cfg.exim, bin.join("exim"))
            .map_err(|e| StepFail::Fail(format!("linking exim: {e}")))?;
        // Exim's `exim_exim` is its binary owned by the Exim user.
        symlink(&self.cfg.exim, bin.join("exim_exim"))
            .map_err(|e| StepFail::Fail(format!("linking exim_exim: {e}")))?;
        // Exim's hints utilities are the oxim binary called by their names.
        for util in HINTS_UTILITIES {
            symlink(&self.cfg.exim, bin.join(util))
                .map_err(|e| StepFail::Fail(format!("linking {util}: {e}")))?;
        }
        symlink(&self.cfg.runner, bin.join("tc"))
            .map_err(|e| StepFail::Fail(format!("linking tc shim: {e}")))?;
        if script.uses_exim() {
            let conf = self.cfg.tree.join("confs").join(&self.cfg.testnum);
            if !conf.is_file() {
                return fail(format!("missing configuration {}", conf.display()));
            }
            if !self.cfg.exim.is_file() {
                return fail(format!(
                    "oxim binary {} not found (build it with `cargo build -p oxim`, or give --exim / OXIM_BIN)",
                    self.cfg.exim.display()
                ));
            }
        }
        self.start_dns()
    }

    fn copy_substituted(&self, from: &Path, to: &Path) -> StepResult {
        let Ok(rd) = fs::read_dir(from) else {
            return Ok(());
        };
        for e in rd.filter_map(Result::ok) {
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = self.subst.apply(&e.file_name().to_string_lossy());
            let text = latin1::read(&e.path())
                .map_err(|err| StepFail::Error(format!("reading {}: {err}", e.path().display())))?;
            latin1::write(&to.join(&name), &self.subst.apply(&text))
                .map_err(|err| StepFail::Error(format!("writing {name}: {err}")))?;
        }
        Ok(())
    }

    /// Serve the test's zone files on 127.0.0.1:53 with fakens semantics
    /// (see [`crate::dnsserver`]); queries are logged to `dns.log`.
    fn start_dns(&mut self) -> StepResult {
        let dir = self.work("dnszones");
        let zones = crate::fakens::Zones::load(&dir).map_err(|e| {
            StepFail::Error(format!("reading zone files in {}: {e}", dir.display()))
        })?;
        // fakens qualifies single-label names with the `qualify.x.y`
        // domain; a resolver does that from `search` in resolv.conf (it is
        // bind-mounted over /etc/resolv.conf, so appending updates it).
        if let Some(q) = zones.qualify_domain() {
            let resolv = self.work("etc/resolv.conf");
            OpenOptions::new()
                .append(true)
                .open(&resolv)
                .and_then(|mut f| writeln!(f, "search {q}"))
                .map_err(|e| {
                    StepFail::Error(format!("adding search {q} to {}: {e}", resolv.display()))
                })?;
        }
        let log = File::create(self.work("dns.log")).ok();
        crate::dnsserver::start(zones, "127.0.0.1:53".parse().expect("static address"), log)
            .map_err(|e| StepFail::Error(format!("test DNS server on 127.0.0.1:53: {e}")))?;
        self.note("dns: fakens-style server on 127.0.0.1:53 (udp, tcp)");
        Ok(())
    }

    /// The environment of processes started by the script (Exim cuts it down).
    /// Like [`Runner::base_env`], and run the command as the `--caller` user.
    fn caller_env(&self, cmd: &mut Command) {
        self.base_env(cmd);
        if let Some((uid, gid)) = self.caller_ids {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
    }

    fn base_env(&self, cmd: &mut Command) {
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.work("bin").display()
        );
        cmd.env_clear()
            .env("USER", &self.subst.params().caller)
            .env("SHELL", "/bin/sh")
            .env("PATH", path)
            .env(
                "TERM",
                std::env::var("TERM").unwrap_or_else(|_| "dumb".to_string()),
            )
            .env("EXIM_TEST_NUMBER", &self.cfg.testnum)
            .env("OXIM_TEST_HARNESS", "1")
            .env("OXIM_TEST_MSGID", self.cfg.style.msgid_env());
        for (k, v) in std::env::vars() {
            if k.starts_with("EXIM_TEST_") && k != "EXIM_TEST_NUMBER" {
                cmd.env(k, v);
            }
        }
        cmd.current_dir(&self.cfg.work);
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

    fn copy_conf(&self) -> StepResult {
        let conf = crate::tree::resolve_link(&self.cfg.tree.join("confs").join(&self.cfg.testnum));
        let text = latin1::read(&conf)
            .map_err(|e| StepFail::Error(format!("reading {}: {e}", conf.display())))?;
        latin1::write(&self.work("test-config"), &self.subst.apply(&text))
            .map_err(|e| StepFail::Error(format!("writing test-config: {e}")))
    }

    /// The binary for `exim` (`special` empty), `exim_exim` (the same MTA,
    /// Exim's copy owned by the Exim user) or another `exim_NAME` utility
    /// (looked for next to the oxim binary).
    fn exim_binary(&self, special: &str) -> Result<PathBuf, StepFail> {
        match special {
            "" => Ok(self.work("bin/exim")),
            "_exim" => Ok(self.work("bin/exim_exim")),
            other => {
                let name = format!("exim{other}");
                self.utility_path(&name)
                    .ok_or_else(|| StepFail::Fail(format!("oxim has no {name} utility")))
            }
        }
    }

    /// `$msg1`, `$msg2`, ... in arguments: the ids on the queue, oldest first.
    fn substitute_msg_ids(&mut self, args: &str) -> Result<String, StepFail> {
        if !args.contains("$msg") {
            return Ok(args.to_string());
        }
        let bin = self.work("bin/exim");
        let mut cmd = Command::new(&bin);
        cmd.arg("-bp");
        if let Some(q) = args.split_whitespace().find(|w| w.starts_with("-qG")) {
            cmd.arg(q);
        }
        cmd.arg(format!("-DEXIM_PATH={}", bin.display()))
            .arg("-C")
            .arg(self.work("test-config"));
        self.caller_env(&mut cmd);
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| StepFail::Error(format!("listing the queue for $msg: {e}")))?;
        let text = latin1::decode(&out.stdout);
        let mut ids: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let age = w.next()?;
                let ok = age.len() > 1
                    && age[..age.len() - 1].bytes().all(|b| b.is_ascii_digit())
                    && age.ends_with(['s', 'm', 'h', 'd', 'w']);
                if !ok {
                    return None;
                }
                let _size = w.next()?;
                let id = w.next()?.to_string();
                let parts: Vec<&str> = id.split('-').collect();
                let key = format!(
                    "{}.{}",
                    parts.first().unwrap_or(&""),
                    parts.get(2).unwrap_or(&"")
                );
                Some((key, id))
            })
            .collect();
        ids.sort();
        let mut out_args = args.to_string();
        for (i, (_, id)) in ids.iter().enumerate().rev() {
            out_args = out_args.replace(&format!("$msg{}", i + 1), id);
        }
        if out_args.contains("$msg") {
            return fail(format!(
                "not enough messages on the queue for {args:?} (exim -bp listed {})",
                ids.len()
            ));
        }
        Ok(out_args)
    }

    fn exim(&mut self, run: &EximRun<'_>, expect: ExitExpect) -> StepResult {
        self.copy_conf()?;
        let bin = self.exim_binary(run.special)?;
        let args = self.subst.apply(run.args);
        let args = self.substitute_msg_ids(&args)?;
        let padded = format!(" {args} ");
        let daemon = is_daemon(&args);
        let server_conf = padded.contains(" -DSERVER=server ");
        let inetd = padded.contains(" -DSERVER=wait:");
        let (pidfile, args) = if daemon {
            match padded.split_once(" -oP ") {
                Some((_, rest)) => {
                    let file = rest.split_whitespace().next().unwrap_or_default();
                    (
                        PathBuf::from(file),
                        padded.replacen(" -bd ", " -bdf ", 1).trim().to_string(),
                    )
                }
                None => {
                    let p = self.work("spool/exim-daemon.pid");
                    let a = daemon_args(&args, &p);
                    (p, a)
                }
            }
        } else {
            (PathBuf::new(), args)
        };
        let line = format!(
            "exec {bin} -DEXIM_PATH={bin} -C {conf} {args}",
            bin = bin.display(),
            conf = self.work("test-config").display()
        );
        self.note(&format!("exim: {line}"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(latin1::os(&line));
        if let Some(user) = run.sudo_user {
            self.base_env(&mut cmd);
            let Some(u) = nix::unistd::User::from_name(user).ok().flatten() else {
                return error(format!("sudo -u {user}: no such user"));
            };
            use std::os::unix::process::CommandExt;
            cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        } else if run.sudo {
            self.base_env(&mut cmd);
        } else {
            self.caller_env(&mut cmd);
        }
        for (k, v) in run.env {
            cmd.env(k, latin1::os(&self.subst.apply(v)));
        }
        cmd.stdout(append(&self.work("test-stdout"))?);
        let stderr_file = if server_conf {
            "test-stderr-server"
        } else {
            "test-stderr"
        };
        if daemon {
            let _ = fs::remove_file(&pidfile);
            cmd.stdin(Stdio::null())
                .stderr(append(&self.work("test-stderr-server"))?);
            let mut child = cmd
                .spawn()
                .map_err(|e| StepFail::Error(format!("starting exim daemon: {e}")))?;
            // Exim's runtest polls 30 x 0.3 s.
            for _ in 0..30 {
                if let Ok(text) = fs::read_to_string(&pidfile) {
                    if let Ok(pid) = text.trim().parse::<i32>() {
                        self.note(&format!("daemon running, pid {pid}"));
                        self.daemons.push(pid);
                        return Ok(());
                    }
                }
                if let Ok(Some(status)) = child.try_wait() {
                    return fail(format!(
                        "exim daemon exited with {} before writing its pid file {}{}",
                        exit_code(status),
                        pidfile.display(),
                        self.tail("test-stderr-server", 10)
                    ));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let _ = child.kill();
            let _ = child.wait();
            return fail(format!(
                "exim daemon never wrote its pid file {} (waited 9 s){}",
                pidfile.display(),
                self.tail("test-stderr-server", 10)
            ));
        }
        if inetd {
            // `-DSERVER=wait:PORT_DYNAMIC`: the daemon gets the listening
            // socket as its stdin (inetd wait mode) and is not waited for.
            let Some(listener) = self.dynamic.as_ref() else {
                return error("-DSERVER=wait: without PORT_DYNAMIC in the script");
            };
            let sock = listener
                .try_clone()
                .map_err(|e| StepFail::Error(format!("PORT_DYNAMIC socket: {e}")))?;
            let fd: std::os::fd::OwnedFd = sock.into();
            cmd.stdin(Stdio::from(fd))
                .stderr(append(&self.work("test-stderr-server"))?);
            let child = cmd
                .spawn()
                .map_err(|e| StepFail::Error(format!("starting exim (wait mode): {e}")))?;
            self.daemons.push(i32::try_from(child.id()).unwrap_or(0));
            self.background.push(child);
            std::thread::sleep(Duration::from_millis(300));
            return Ok(());
        }
        cmd.stderr(append(&self.work(stderr_file))?);
        let mut input = self.data_chunks(run.data)?;
        if run.wait > 0 {
            input.push(Chunk::Sleep(Duration::from_secs(run.wait)));
        }
        let status = self.run_with_input(cmd, input, "exim")?;
        let result = if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "exim{} {args} exited with status {status}, expected {expect}{}{}",
                run.special,
                self.tail(stderr_file, 10),
                self.tail("test-stdout", 10)
            ))
        };
        // A scripted server runs until the next exim command has finished.
        self.finish_server()?;
        result
    }

    fn run_with_input(
        &mut self,
        mut cmd: Command,
        input: Vec<Chunk>,
        what: &str,
    ) -> Result<i32, StepFail> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| StepFail::Error(format!("starting {what}: {e}")))?;
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                for chunk in input {
                    match chunk {
                        // The command may legitimately not read all of its input.
                        Chunk::Bytes(b) => {
                            if stdin.write_all(&b).is_err() {
                                break;
                            }
                        }
                        Chunk::Sleep(d) => std::thread::sleep(d),
                    }
                }
            })
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= self.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return fail(format!(
                        "{what} still running at the test's time limit ({} s); killed",
                        self.cfg.timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return fail(format!("waiting for {what}: {e}")),
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(exit_code(status))
    }

    /// A script's data lines as the command's input, with Exim's data
    /// prefixes (`:eval:`, `:noeol:`, `:sleep:N`, `:file:F`); substituted.
    pub(crate) fn data_chunks(&self, data: &[String]) -> Result<Vec<Chunk>, StepFail> {
        let mut out = Vec::new();
        for raw in data {
            let line = self.subst.apply(raw);
            let (prefix, rest) = split_data_prefix(&line);
            match prefix {
                Some(":eval:") => {
                    let mut b = latin1::encode(&perl_unescape(rest));
                    b.push(b'\n');
                    out.push(Chunk::Bytes(b));
                }
                Some(":noeol:") => {
                    out.push(Chunk::Bytes(latin1::encode(
                        rest.trim_end_matches(['\r', '\n']),
                    )));
                }
                Some(":sleep:") => {
                    let secs: u64 = rest.trim().parse().map_err(|_| {
                        StepFail::Error(format!(":sleep: needs a number of seconds, not {rest:?}"))
                    })?;
                    out.push(Chunk::Sleep(Duration::from_secs(secs)));
                }
                Some(":file:") => {
                    let path = self.cfg.work.join(rest);
                    let bytes = fs::read(&path)
                        .map_err(|e| StepFail::Error(format!(":file: {}: {e}", path.display())))?;
                    out.push(Chunk::Bytes(bytes));
                }
                // The 2019 tree's runtest: a trailing `\NONL\` drops the newline.
                _ if self.cfg.style == Style::Old && line.trim_end().ends_with("\\NONL\\") => {
                    let t = line.trim_end();
                    out.push(Chunk::Bytes(latin1::encode(&t[..t.len() - 6])));
                }
                _ => {
                    let mut b = latin1::encode(&line);
                    b.push(b'\n');
                    out.push(Chunk::Bytes(b));
                }
            }
        }
        Ok(out)
    }

    fn perl(
        &mut self,
        sudo: bool,
        args: &str,
        data: &[String],
        env: &[(String, String)],
        expect: ExitExpect,
    ) -> StepResult {
        let input = self.data_chunks(data)?;
        let args = self.subst.apply(args);
        self.note(&format!(
            "{}perl {args}: {} line(s)",
            if sudo { "sudo " } else { "" },
            data.len()
        ));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(latin1::os(&format!("exec perl {args}")));
        if sudo {
            self.base_env(&mut cmd);
        } else {
            self.caller_env(&mut cmd);
        }
        for (k, v) in env {
            cmd.env(k, latin1::os(v));
        }
        cmd.env("OXIM_RUNTEST_WORK", &self.cfg.work)
            .env(crate::tcshim::HOST_NETNS_ENV, self.host_netns.to_string());
        if let Some(d) = &self.cfg.delayer {
            cmd.env("OXIM_DELAYER", d);
        }
        // `sudo perl` blocks do privileged environment set-up; their output is
        // kept apart and not compared (see README.md).
        let (out, err) = if sudo {
            ("test-stdout-sudo", "test-stderr-sudo")
        } else {
            ("test-stdout", "test-stderr")
        };
        cmd.stdout(append(&self.work(out))?)
            .stderr(append(&self.work(err))?);
        let status = self.run_with_input(cmd, input, "perl")?;
        if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "perl exited with status {status}, expected {expect}{}",
                self.tail(err, 5)
            ))
        }
    }

    fn client(
        &mut self,
        tls: bool,
        args: &str,
        data: &[String],
        env: &[(String, String)],
        expect: ExitExpect,
    ) -> StepResult {
        let args = self.subst.apply(args);
        self.note(&format!("client {args}"));
        let mut cmd = Command::new(&self.cfg.runner);
        self.caller_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, latin1::os(v));
        }
        cmd.arg("client");
        if tls {
            cmd.arg("--tls");
        }
        cmd.args(args.split_whitespace().map(latin1::os));
        cmd.stdout(append(&self.work("test-stdout"))?)
            .stderr(append(&self.work("test-stderr"))?);
        let input = self.data_chunks(data)?;
        let status = self.run_with_input(cmd, input, "client")?;
        if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "client {args} exited with status {status}, expected {expect}{}{}",
                self.tail("test-stdout", 12),
                self.tail("test-stderr-server", 5)
            ))
        }
    }

    fn server(
        &mut self,
        args: &str,
        data: &[String],
        expect: ExitExpect,
        line: usize,
    ) -> StepResult {
        self.finish_server()?;
        let args = self.subst.apply(args);
        self.note(&format!("server {args}"));
        let pidfile = self.work("aux-var/server-daemon.pid");
        let _ = fs::remove_file(&pidfile);
        let mut cmd = Command::new(&self.cfg.runner);
        self.caller_env(&mut cmd);
        cmd.arg("server")
            .arg("-oP")
            .arg(&pidfile)
            .args(args.split_whitespace())
            .stdin(Stdio::piped())
            .stdout(append(&self.work("test-stdout-server"))?)
            .stderr(append(&self.work("test-stderr-server"))?);
        let mut child = cmd
            .spawn()
            .map_err(|e| StepFail::Fail(format!("starting server: {e}")))?;
        let mut stdin = child.stdin.take();
        // The server script is passed raw (not substituted), ended by `++++`.
        let mut input = stdin_bytes(data);
        input.extend_from_slice(b"++++\n");
        // A server that exits at once (bad arguments) closes its stdin;
        // that is reported below with its exit status.
        if let Some(s) = stdin.as_mut() {
            if let Err(e) = s.write_all(&input) {
                self.note(&format!("feeding server script: {e}"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pidfile.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let code = exit_code(status);
                let msg = format!(
                    "server {args} exited with {code} before listening{}",
                    self.tail("test-stderr-server", 3)
                );
                // Status 2: the runner's server cannot do what was asked.
                return if code == 2 { error(msg) } else { fail(msg) };
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return fail(format!("server {args} did not start listening"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.server = Some(PendingServer {
            child,
            stdin,
            expect,
            line,
        });
        Ok(())
    }

    fn finish_server(&mut self) -> StepResult {
        let Some(mut s) = self.server.take() else {
            return Ok(());
        };
        drop(s.stdin.take());
        let limit = self
            .deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(60));
        let Some(status) = wait_child(&mut s.child, limit) else {
            let _ = s.child.kill();
            let _ = s.child.wait();
            return fail(format!("server (script line {}) did not finish", s.line));
        };
        let code = exit_code(status);
        self.note(&format!("server finished with status {code}"));
        if s.expect.accepts(code) {
            Ok(())
        } else {
            fail(format!(
                "server (script line {}) exited with status {code}, expected {}{}",
                s.line,
                s.expect,
                self.tail("test-stdout-server", 12)
            ))
        }
    }

    /// Let processes still running in the sandbox (a delivery process a
    /// daemon forked before it was stopped) finish before the output is
    /// compared: we are PID 1 of the namespace, so they are ours to reap.
    /// Waits at most `limit`; what is left is logged and killed with the
    /// sandbox.
    fn wait_for_stragglers(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let me = std::process::id();
        let own: Vec<u32> = self.background.iter().map(Child::id).collect();
        loop {
            while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
            {}
            let left: Vec<u32> = fs::read_dir("/proc")
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                        .filter(|pid| *pid != me && !own.contains(pid))
                        .filter(|pid| {
                            fs::read_to_string(format!("/proc/{pid}/stat"))
                                .ok()
                                .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
                                .unwrap_or(false)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                self.note(&format!(
                    "processes still running when the output was compared: {left:?}"
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signal daemons whose pid files are in spool/ (and any we started).
    fn stop_daemons(&mut self, announce: bool) {
        let sig = match self.cfg.style {
            Style::Old => Signal::SIGINT,
            Style::Head => Signal::SIGTERM,
        };
        let mut pids: Vec<(i32, Option<PathBuf>)> = Vec::new();
        if let Ok(rd) = fs::read_dir(self.work("spool")) {
            for e in rd.filter_map(Result::ok) {
                if e.file_name().to_string_lossy().starts_with("exim-daemon.") {
                    if let Some(pid) = fs::read_to_string(e.path())
                        .ok()
                        .and_then(|t| t.trim().parse::<i32>().ok())
                    {
                        pids.push((pid, Some(e.path())));
                    }
                }
            }
        }
        for pid in std::mem::take(&mut self.daemons) {
            if !pids.iter().any(|(p, _)| *p == pid) {
                pids.push((pid, None));
            }
        }
        if announce && pids.is_empty() {
            self.note("killdaemon: no daemon pid file found");
        }
        for (pid, file) in pids {
            if pid <= 1 {
                continue;
            }
            let _ = kill(Pid::from_raw(pid), sig);
            if !wait_gone(pid, Duration::from_secs(10)) {
                self.note(&format!("daemon {pid} ignored {sig}; killing it"));
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = wait_gone(pid, Duration::from_secs(5));
            }
            if let Some(f) = file {
                let _ = fs::remove_file(f);
            }
        }
    }

    fn cleanup(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        self.stop_daemons(false);
        for mut c in self.background.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn compare(&mut self, script: &Script) -> Outcome {
        let p = self.subst.params();
        let identity = Identity {
            hostname: p.hostname.clone(),
            testdir: p.dir.clone(),
            caller: p.caller.clone(),
            caller_group: p.caller_group.clone(),
            caller_home: p.caller_home.clone(),
            caller_uid: p.caller_uid,
            caller_gid: p.caller_gid,
            ipv4: p.host_ipv4.clone(),
            ipv6: p.host_ipv6.clone(),
        };
        let mut munger = Munger::new(self.cfg.style, identity);
        let comparer = Comparer {
            tree: &self.cfg.tree,
            work: &self.cfg.work,
            testnum: &self.cfg.testnum,
            options: CompareOptions {
                no_msglog_check: script.has_flag("no_msglog_check"),
                no_stdout_check: script.has_flag("no_stdout_check"),
                no_stderr_check: script.has_flag("no_stderr_check"),
                no_munge: script.has_flag("no_munge"),
                sortlog: script.has_flag("sortlog"),
            },
            custom: self.munge.as_deref(),
        };
        let mismatches = comparer.compare_all(&mut munger);
        if mismatches.is_empty() {
            return Outcome::Pass;
        }
        let mut msg = String::new();
        for m in &mismatches {
            msg.push_str(&format!(
                "mismatch in {}:\n{}\n",
                m.what,
                latin1::display(m.detail.trim_end())
            ));
        }
        Outcome::Fail(msg)
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
    fn daemon_rewrite() {
        let p = Path::new("/w/spool/exim-daemon.pid");
        assert!(is_daemon("-DSERVER=server -bd -oX 1225"));
        assert!(!is_daemon("-DSERVER=server -DNOTDAEMON -bd"));
        assert!(!is_daemon("-bd -oX 1225"));
        assert_eq!(
            daemon_args("-DSERVER=server -bd -oX 1225", p),
            "-DSERVER=server -bdf -oP /w/spool/exim-daemon.pid -oX 1225"
        );
        assert_eq!(
            daemon_args("-bd -DSERVER=server -oX 1225", p),
            "-bdf -oP /w/spool/exim-daemon.pid -DSERVER=server -oX 1225"
        );
    }

    #[test]
    fn stdin_markers() {
        assert_eq!(split_data_prefix(":noeol:b"), (Some(":noeol:"), "b"));
        assert_eq!(split_data_prefix(":sleep:2"), (Some(":sleep:"), "2"));
        assert_eq!(split_data_prefix("a:b:"), (None, "a:b:"));
        assert_eq!(perl_unescape(r"a\r\nb\x41\101\\"), "a\r\nbAA\\");
        assert_eq!(stdin_bytes(&["a".to_string()]), b"a\n".to_vec());
    }

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
