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

use crate::compare::{CompareOptions, Comparer};
use crate::dns;
use crate::munge::{Identity, Munger, Style};
use crate::sandbox;
use crate::script::{self, ClientKind, Command as Cmd, ExitExpect, Script, Step};
use crate::subst::{Params, Substituter};

/// Name of the file in the work directory that carries the verdict from the
/// sandboxed process back to the outer runner.
pub const RESULT_FILE: &str = "runtest-result";
/// The runner's own log of what it did (steps, sandbox notes, measured RTT).
pub const LOG_FILE: &str = "runtest.log";

/// Verdict for one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All comparisons matched.
    Pass,
    /// Something failed; the text explains (diffs included).
    Fail(String),
    /// Not run; the text names the unmet requirement.
    Skip(String),
}

impl Outcome {
    /// Serialise for [`RESULT_FILE`].
    pub fn encode(&self) -> String {
        match self {
            Outcome::Pass => "PASS\n".to_string(),
            Outcome::Fail(m) => format!("FAIL\n{m}"),
            Outcome::Skip(m) => format!("SKIP\n{m}"),
        }
    }

    /// Parse what [`Outcome::encode`] wrote.
    pub fn decode(text: &str) -> Option<Outcome> {
        let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
        match head {
            "PASS" => Some(Outcome::Pass),
            "FAIL" => Some(Outcome::Fail(rest.to_string())),
            "SKIP" => Some(Outcome::Skip(rest.to_string())),
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

/// A failure that ends the test early.
struct StepFail(String);

type StepResult = Result<(), StepFail>;

fn fail<T>(msg: impl Into<String>) -> Result<T, StepFail> {
    Err(StepFail(msg.into()))
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
    dnsmasq: Option<Child>,
    host_netns: u64,
    deadline: Instant,
    caller_ids: Option<(u32, u32)>,
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
        Err(e) => return Outcome::Fail(format!("sandbox: {e}")),
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
            None => return Outcome::Fail(format!("--caller {name}: no such user")),
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
        dnsmasq: None,
        host_netns,
        deadline: Instant::now() + cfg.timeout,
        caller_ids,
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
        .map_err(|e| StepFail(format!("opening {}: {e}", path.display())))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Turn data lines into stdin bytes (`:noeol:` prefix / `\NONL\` suffix = no newline).
pub fn stdin_bytes(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        if let Some(t) = l.strip_prefix(":noeol:") {
            out.extend_from_slice(t.as_bytes());
        } else if let Some(t) = l.strip_suffix("\\NONL\\") {
            out.extend_from_slice(t.as_bytes());
        } else {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
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

/// Whether something listens on 127.0.0.1:53/udp (per /proc/net/udp).
fn dns_listening() -> bool {
    fs::read_to_string("/proc/net/udp")
        .map(|t| t.lines().any(|l| l.contains("0100007F:0035")))
        .unwrap_or(false)
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
        let text = match fs::read_to_string(&self.cfg.script) {
            Ok(t) => t,
            Err(e) => return Outcome::Fail(format!("reading {}: {e}", self.cfg.script.display())),
        };
        let script = match script::parse(&text) {
            Ok(s) => s,
            Err(e) => return Outcome::Fail(format!("{}: {e}", self.cfg.script.display())),
        };
        if let Err(StepFail(m)) = self.prepare(&script) {
            return Outcome::Fail(m);
        }
        for step in &script.steps {
            if let Err(StepFail(m)) = self.step(step) {
                return Outcome::Fail(format!("script line {}: {m}", step.line));
            }
        }
        if let Err(StepFail(m)) = self.finish_server() {
            return Outcome::Fail(m);
        }
        self.stop_daemons(false);
        self.compare(&script)
    }

    fn prepare(&mut self, script: &Script) -> StepResult {
        for d in ["spool", "test-mail", "aux-var", "dnszones", "bin"] {
            fs::create_dir_all(self.work(d)).map_err(|e| StepFail(format!("creating {d}: {e}")))?;
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
                .map_err(|e| StepFail(format!("chown {} to the caller: {e}", path.display())))?;
            }
        }
        let tree = self.cfg.tree.clone();
        self.copy_substituted(&tree.join("aux-var-src"), &self.work("aux-var"))?;
        self.copy_substituted(&tree.join("dnszones-src"), &self.work("dnszones"))?;
        for (name, text) in dns::generated_zone_files(sandbox::HOSTNAME, sandbox::HOST_IPV4) {
            fs::write(self.work("dnszones").join(name), text)
                .map_err(|e| StepFail(format!("writing generated zone: {e}")))?;
        }
        // DIR/aux-fixed is the tree's own (certificates, keys, fixed data),
        // as in Exim's test directory; it is not substituted.
        let fixed = tree.join("aux-fixed");
        if fixed.is_dir() {
            symlink(&fixed, self.work("aux-fixed"))
                .map_err(|e| StepFail(format!("linking aux-fixed: {e}")))?;
        }
        let bin = self.work("bin");
        symlink(&self.cfg.exim, bin.join("exim"))
            .map_err(|e| StepFail(format!("linking exim: {e}")))?;
        symlink(&self.cfg.runner, bin.join("tc"))
            .map_err(|e| StepFail(format!("linking tc shim: {e}")))?;
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
            let text = fs::read(e.path())
                .map_err(|err| StepFail(format!("reading {}: {err}", e.path().display())))?;
            let text = self.subst.apply(&String::from_utf8_lossy(&text));
            fs::write(to.join(&name), text)
                .map_err(|err| StepFail(format!("writing {name}: {err}")))?;
        }
        Ok(())
    }

    fn start_dns(&mut self) -> StepResult {
        let dir = self.work("dnszones");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| StepFail(format!("reading dnszones: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db."))
            .collect();
        names.sort();
        let mut zones = Vec::new();
        for n in &names {
            let text = fs::read_to_string(dir.join(n))
                .map_err(|e| StepFail(format!("reading zone {n}: {e}")))?;
            zones.push(dns::parse_zone(n, &text).map_err(|e| StepFail(format!("dns: {e}")))?);
        }
        // Resolvers reading /etc/resolv.conf get localhost from here too.
        zones.push(dns::Zone {
            origin: String::new(),
            records: vec![dns::Record {
                name: "localhost".into(),
                rtype: "A".into(),
                data: "127.0.0.1".into(),
            }],
            pass_on_not_found: true,
            unsupported: vec![],
        });
        let log = self.work("dnsmasq.log");
        let conf = dns::dnsmasq_config(&mut zones, &log.to_string_lossy());
        for z in &zones {
            for u in &z.unsupported {
                self.note(&format!(
                    "dns: record not served (unsupported by dnsmasq): {u}"
                ));
            }
        }
        let conf_path = self.work("dnsmasq.conf");
        fs::write(&conf_path, conf).map_err(|e| StepFail(format!("writing dnsmasq.conf: {e}")))?;
        let child = Command::new("dnsmasq")
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(append(&self.work("dnsmasq.stderr"))?)
            .env("PATH", sandbox::SYSTEM_PATH)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return fail(format!(
                    "cannot start dnsmasq ({e}); install the dnsmasq-base package"
                ))
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dns_listening() {
            if let Ok(Some(s)) = child.try_wait() {
                let mut err = read_lossy(&self.work("dnsmasq.stderr"));
                err.push_str(&read_lossy(&self.work("dnsmasq.log")));
                return fail(format!("dnsmasq exited ({s}):\n{}", err.trim()));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return fail("dnsmasq did not start listening on 127.0.0.1:53 within 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.note(&format!(
            "dns: dnsmasq serving {} zone file(s)",
            names.len()
        ));
        self.dnsmasq = Some(child);
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
                env,
                args,
                data,
            } => self.exim(*sudo, env, args, data, step.expect),
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
            Cmd::Perl { sudo, data } => self.perl(*sudo, data, step.expect),
            Cmd::Client { kind, args, data } => {
                if *kind == ClientKind::Tls {
                    return fail("TLS clients (client-ssl/-gnutls/-anytls) are not supported");
                }
                self.client(args, data, step.expect)
            }
            Cmd::Server { args, data } => self.server(args, data, step.expect, step.line),
            Cmd::Write { file, cat, data } => {
                let text: String = data.iter().map(|l| self.subst.apply(l) + "\n").collect();
                let path = self.work(file);
                fs::write(&path, &text)
                    .map_err(|e| StepFail(format!("write {}: {e}", path.display())))?;
                if *cat {
                    append(&self.work("test-stdout"))?
                        .write_all(text.as_bytes())
                        .map_err(|e| StepFail(format!("catwrite: {e}")))?;
                }
                Ok(())
            }
            Cmd::Echo(text) => {
                let t = self.subst.apply(text);
                self.note(&format!("echo: {t}"));
                Ok(())
            }
            Cmd::Gnutls => Ok(()),
            Cmd::Munge(name) => {
                self.note(&format!(
                    "munge {name}: no canned munges are defined; ignored"
                ));
                Ok(())
            }
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
        let conf = self.cfg.tree.join("confs").join(&self.cfg.testnum);
        let text = fs::read_to_string(&conf)
            .map_err(|e| StepFail(format!("reading {}: {e}", conf.display())))?;
        fs::write(self.work("test-config"), self.subst.apply(&text))
            .map_err(|e| StepFail(format!("writing test-config: {e}")))
    }

    fn exim(
        &mut self,
        sudo: bool,
        env: &[(String, String)],
        args: &str,
        data: &[String],
        expect: ExitExpect,
    ) -> StepResult {
        self.copy_conf()?;
        let bin = self.work("bin/exim");
        let args = self.subst.apply(args);
        let daemon = is_daemon(&args);
        let pidfile = self.work("spool/exim-daemon.pid");
        let args = if daemon {
            daemon_args(&args, &pidfile)
        } else {
            args
        };
        let line = format!(
            "exec {bin} -DEXIM_PATH={bin} -C {conf} {args}",
            bin = bin.display(),
            conf = self.work("test-config").display()
        );
        self.note(&format!("exim: {line}"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(&line);
        if sudo {
            self.base_env(&mut cmd);
        } else {
            self.caller_env(&mut cmd);
        }
        for (k, v) in env {
            cmd.env(k, self.subst.apply(v));
        }
        cmd.stdout(append(&self.work("test-stdout"))?);
        if daemon {
            let _ = fs::remove_file(&pidfile);
            cmd.stdin(Stdio::null())
                .stderr(append(&self.work("test-stderr-server"))?);
            let mut child = cmd
                .spawn()
                .map_err(|e| StepFail(format!("starting exim daemon: {e}")))?;
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
        cmd.stdin(Stdio::piped())
            .stderr(append(&self.work("test-stderr"))?);
        let input: Vec<u8> = stdin_bytes(
            &data
                .iter()
                .map(|l| self.subst.apply(l))
                .collect::<Vec<String>>(),
        );
        let status = self.run_with_input(cmd, input, "exim")?;
        let result = if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "exim {args} exited with status {status}, expected {expect}{}{}",
                self.tail("test-stderr", 10),
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
        input: Vec<u8>,
        what: &str,
    ) -> Result<i32, StepFail> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| StepFail(format!("starting {what}: {e}")))?;
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                // The command may legitimately not read all of its input.
                let _ = stdin.write_all(&input);
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

    fn perl(&mut self, sudo: bool, data: &[String], expect: ExitExpect) -> StepResult {
        let program: Vec<String> = data.iter().map(|l| self.subst.apply(l)).collect();
        self.note(&format!(
            "{}perl: {} line(s)",
            if sudo { "sudo " } else { "" },
            program.len()
        ));
        let mut cmd = Command::new("perl");
        if sudo {
            self.base_env(&mut cmd);
        } else {
            self.caller_env(&mut cmd);
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
        let status = self.run_with_input(cmd, stdin_bytes(&program), "perl")?;
        if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "perl exited with status {status}, expected {expect}"
            ))
        }
    }

    fn client(&mut self, args: &str, data: &[String], expect: ExitExpect) -> StepResult {
        let args = self.subst.apply(args);
        self.note(&format!("client {args}"));
        let mut cmd = Command::new(&self.cfg.runner);
        self.caller_env(&mut cmd);
        cmd.arg("client").args(args.split_whitespace());
        cmd.stdout(append(&self.work("test-stdout"))?)
            .stderr(append(&self.work("test-stderr"))?);
        let lines: Vec<String> = data.iter().map(|l| self.subst.apply(l)).collect();
        let status = self.run_with_input(cmd, stdin_bytes(&lines), "client")?;
        if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "client {args} exited with status {status}, expected {expect}{}",
                self.tail("test-stdout", 12)
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
            .map_err(|e| StepFail(format!("starting server: {e}")))?;
        let mut stdin = child.stdin.take();
        // The server script is passed raw (not substituted), ended by `++++`.
        let mut input = stdin_bytes(data);
        input.extend_from_slice(b"++++\n");
        if let Some(s) = stdin.as_mut() {
            s.write_all(&input)
                .map_err(|e| StepFail(format!("feeding server script: {e}")))?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pidfile.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return fail(format!(
                    "server {args} exited with {} before listening",
                    exit_code(status)
                ));
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
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
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
                m.detail.trim_end()
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
        let lines = vec![
            "a".to_string(),
            ":noeol:b".to_string(),
            "c\\NONL\\".to_string(),
        ];
        assert_eq!(stdin_bytes(&lines), b"a\nbc".to_vec());
    }

    #[test]
    fn outcome_roundtrip() {
        for o in [
            Outcome::Pass,
            Outcome::Fail("x\ny\n".into()),
            Outcome::Skip("support X".into()),
        ] {
            assert_eq!(Outcome::decode(&o.encode()), Some(o));
        }
        assert_eq!(Outcome::decode("garbage"), None);
    }
}
