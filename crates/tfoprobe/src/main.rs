//! `oxim-tfo-probe`: time to banner and to the final 250 of SMTP sessions,
//! with and without a TCP Fast Open cookie, per TFO outcome, in ms and round
//! trips. See `--help` and README.md.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use oxim_tfoprobe::{
    format_samples, measure_rtt, measure_session, server_message_id, summarize, Labelled,
    SessionOpts,
};

const HELP: &str = "\
oxim-tfo-probe: measure what TCP Fast Open saves on SMTP

Default mode (root): create a private network namespace (lo up,
net.ipv4.tcp_fastopen=3), add DELAY each way on lo (netem, or oxim-delayer
where the kernel has no sch_netem), start
an oxim daemon there, measure the RTT, then run COUNT SMTP sessions per
phase and print, per connection and in summary per TFO outcome, the time
from the first SYN to the 220 banner and to the 250 after DATA, in ms and
in round trips.

With --connect HOST:PORT: measure an existing server from the current
network namespace instead (no delay is added; no oxim is started).

USAGE:
  oxim-tfo-probe [OPTIONS]
OPTIONS:
  --count N            sessions per phase (default 20)
  --delay D            delay each way on lo, e.g. 50ms; 0 = none (default 50ms)
  --phases LIST        comma-separated, run in order (default no-cookie,cookie;
                       with --connect: no-tfo,cookie):
                         no-tfo     TFO not tried
                         no-cookie  TFO tried with the cached cookie deleted
                                    first (`ip tcp_metrics delete IP`)
                         cookie     TFO tried with the cookie the previous
                                    session left in the cache
  --connect HOST:PORT  measure this server instead of a private oxim daemon
  --flush-cookies      allow `no-cookie` with --connect (deletes the cached
                       TCP metrics for that address in the current namespace)
  --oxim PATH          oxim binary (default: next to this program)
  --delayer PATH       oxim-delayer binary (default: next to this program)
  --emulator E         how to add the delay: auto (netem when the kernel has
                       sch_netem, else oxim-delayer; default), netem, delayer
  --rcpt ADDR          envelope recipient (default sink@probe.test)
  --size BYTES         message size (default 1200)
  --keep DIR           keep the daemon's files in DIR (default: temporary)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NoTfo,
    NoCookie,
    Cookie,
}

impl Phase {
    fn parse(s: &str) -> Result<Phase> {
        Ok(match s {
            "no-tfo" => Phase::NoTfo,
            "no-cookie" => Phase::NoCookie,
            "cookie" => Phase::Cookie,
            _ => bail!("unknown phase {s:?} (no-tfo, no-cookie, cookie)"),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Phase::NoTfo => "no-tfo",
            Phase::NoCookie => "no-cookie",
            Phase::Cookie => "cookie",
        }
    }
}

#[derive(Debug, Clone)]
struct Args {
    count: usize,
    delay: String,
    phases: Option<Vec<Phase>>,
    connect: Option<SocketAddr>,
    flush_cookies: bool,
    oxim: Option<PathBuf>,
    delayer: Option<PathBuf>,
    emulator: Emulator,
    rcpt: String,
    size: usize,
    keep: Option<PathBuf>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Option<Args>> {
        let mut a = Args {
            count: 20,
            delay: "50ms".into(),
            phases: None,
            connect: None,
            flush_cookies: false,
            oxim: None,
            delayer: None,
            emulator: Emulator::Auto,
            rcpt: "sink@probe.test".into(),
            size: 1200,
            keep: None,
        };
        let mut delay_given = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| anyhow!("{arg} needs a value"))
            };
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--count" => {
                    let v = value()?;
                    a.count = v.parse().with_context(|| format!("bad --count {v:?}"))?;
                    if a.count == 0 {
                        bail!("--count must be at least 1");
                    }
                }
                "--delay" => {
                    a.delay = value()?;
                    parse_delay(&a.delay)?;
                    delay_given = true;
                }
                "--phases" => {
                    a.phases = Some(
                        value()?
                            .split(',')
                            .map(|p| Phase::parse(p.trim()))
                            .collect::<Result<_>>()?,
                    )
                }
                "--connect" => {
                    let v = value()?;
                    a.connect = Some(v.parse().with_context(|| {
                        format!("bad --connect {v:?} (want IP:PORT or [IPv6]:PORT)")
                    })?);
                }
                "--flush-cookies" => a.flush_cookies = true,
                "--oxim" => a.oxim = Some(value()?.into()),
                "--delayer" => a.delayer = Some(value()?.into()),
                "--emulator" => {
                    a.emulator = match value()?.as_str() {
                        "auto" => Emulator::Auto,
                        "netem" => Emulator::Netem,
                        "delayer" => Emulator::Delayer,
                        other => bail!("bad --emulator {other:?} (auto, netem, delayer)"),
                    }
                }
                "--rcpt" => a.rcpt = value()?,
                "--size" => {
                    let v = value()?;
                    a.size = v.parse().with_context(|| format!("bad --size {v:?}"))?;
                }
                "--keep" => a.keep = Some(value()?.into()),
                other => bail!("unknown option {other:?} (try --help)"),
            }
        }
        if a.connect.is_some() {
            if delay_given {
                bail!("--delay only applies to the private namespace mode (not with --connect)");
            }
            let phases = a
                .phases
                .get_or_insert_with(|| vec![Phase::NoTfo, Phase::Cookie]);
            if phases.contains(&Phase::NoCookie) && !a.flush_cookies {
                bail!(
                    "phase no-cookie with --connect deletes this namespace's cached TCP \
                     metrics for the server: add --flush-cookies to allow it"
                );
            }
        }
        Ok(Some(a))
    }

    fn phases(&self) -> Vec<Phase> {
        self.phases
            .clone()
            .unwrap_or_else(|| vec![Phase::NoCookie, Phase::Cookie])
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("oxim-tfo-probe: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match args.connect {
        Some(addr) => run_sessions(&args, addr, None),
        None => run_in_namespace(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxim-tfo-probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A binary next to this program, or the one given.
fn sibling(given: &Option<PathBuf>, name: &str) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let p = me.with_file_name(name);
    if !p.is_file() {
        bail!(
            "{} not found next to this program (build it: cargo build -p oxim -p oxim-delayer), \
             or pass --{} PATH",
            p.display(),
            name.trim_start_matches("oxim-").trim_start_matches("oxim")
        );
    }
    Ok(p)
}

fn run_in_namespace(args: Args) -> Result<()> {
    let oxim = sibling(&args.oxim, "oxim")?;
    match oxim_net::testns::run_in_new_netns(move || namespace_body(&args, &oxim)) {
        Ok(r) => r,
        Err(oxim_net::testns::NetnsError::NotRoot) => {
            bail!("creating the private network namespace needs root (or use --connect HOST:PORT)")
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// `50ms`, `0.05s`, `1500us`, `50` (ms).
fn parse_delay(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad delay {s:?}"))?;
    let secs = match unit {
        "" | "ms" => n / 1e3,
        "s" => n,
        "us" => n / 1e6,
        _ => bail!("bad delay unit in {s:?} (use s, ms or us)"),
    };
    if !(0.0..=10.0).contains(&secs) {
        bail!("delay {s:?} out of range (0 to 10 s)");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// How the delay is added on lo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emulator {
    /// netem when the kernel has it, else oxim-delayer.
    Auto,
    /// `tc qdisc add dev lo root netem delay D` (needs `sch_netem`).
    Netem,
    /// oxim-delayer (NFQUEUE).
    Delayer,
}

/// Add `delay` each way on lo of the current (private) namespace. Returns a
/// description and, for the delayer, a guard that stops it.
fn add_delay(args: &Args, delay: Duration, dir: &Path) -> Result<(String, Option<DelayerGuard>)> {
    let us = format!("{}us", delay.as_micros());
    if args.emulator != Emulator::Delayer {
        let netem = Command::new("tc")
            .args(["qdisc", "add", "dev", "lo", "root", "netem", "delay", &us])
            .stderr(Stdio::null())
            .status();
        match netem {
            Ok(st) if st.success() => {
                // The qdisc goes away with the namespace.
                return Ok((format!("{} each way on lo (netem)", args.delay), None));
            }
            _ if args.emulator == Emulator::Netem => {
                bail!("`tc qdisc add dev lo root netem` failed: no sch_netem? (try --emulator delayer)")
            }
            _ => {}
        }
    }
    let bin = sibling(&args.delayer, "oxim-delayer")?;
    let pidfile = dir.join("delayer.pid");
    let st = Command::new(&bin)
        .args(["start", "--dev", "lo", "--delay", &us, "--pidfile"])
        .arg(&pidfile)
        .arg("--log")
        .arg(dir.join("delayer.log"))
        .status()
        .with_context(|| format!("run {}", bin.display()))?;
    if !st.success() {
        bail!("oxim-delayer start failed ({st}); is iptables with NFQUEUE available?");
    }
    Ok((
        format!("{} each way on lo (oxim-delayer, NFQUEUE)", args.delay),
        Some(DelayerGuard { bin, pidfile }),
    ))
}

/// Port of the private daemon (the namespace is ours alone).
const PORT: u16 = 2525;

const SERVER_CONF: &str = "\
primary_hostname = probe-server.test
spool_directory = DIR/spool
log_file_path = DIR/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
log_selector = +received_recipients +tfo_detail
begin routers
sink:
  driver = redirect
  data = :blackhole:
";

/// Stops the delayer when dropped (it removes its rules).
struct DelayerGuard {
    bin: PathBuf,
    pidfile: PathBuf,
}

impl Drop for DelayerGuard {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .args(["stop", "--pidfile"])
            .arg(&self.pidfile)
            .status();
    }
}

fn namespace_body(args: &Args, oxim: &Path) -> Result<()> {
    let delay = parse_delay(&args.delay)?;
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let dir = match &args.keep {
        Some(k) => {
            std::fs::create_dir_all(k).with_context(|| format!("create {}", k.display()))?;
            k.canonicalize()?
        }
        None => tmp.path().to_path_buf(),
    };
    let conf = dir.join("server.conf");
    std::fs::write(
        &conf,
        SERVER_CONF.replace("DIR", &dir.display().to_string()),
    )
    .context("write server configuration")?;

    let (how, _delay_guard) = if delay.is_zero() {
        ("no delay on lo".to_string(), None)
    } else {
        add_delay(args, delay, &dir)?
    };
    let _daemon = Daemon(start_daemon(oxim, &conf, &dir)?);
    let addr = SocketAddr::from(([127, 0, 0, 1], PORT));
    println!("private namespace: oxim daemon on {addr}, {how}");
    run_sessions(args, addr, Some(&dir.join("log/mainlog")))
}

/// The private daemon: SIGTERM when dropped, SIGKILL if it lingers.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = i32::try_from(self.0.id()).map(nix::unistd::Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(oxim: &Path, conf: &Path, dir: &Path) -> Result<Child> {
    let pid_file = dir.join("daemon.pid");
    let mut child = Command::new(oxim)
        .arg("-C")
        .arg(conf)
        .args(["-bdf", "-oX", &PORT.to_string(), "-oP"])
        .arg(&pid_file)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {}", oxim.display()))?;
    let start = Instant::now();
    while !pid_file.exists() {
        if let Some(st) = child.try_wait()? {
            bail!("the oxim daemon exited at start ({st})");
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            bail!("the oxim daemon wrote no pid file within 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child)
}

fn flush_cookie(ip: IpAddr) -> Result<()> {
    let st = Command::new("ip")
        .args(["tcp_metrics", "delete", &ip.to_string()])
        .stderr(Stdio::null())
        .status()
        .context("run `ip tcp_metrics delete` (iproute2)")?;
    // 2: there was no entry.
    if !(st.success() || st.code() == Some(2)) {
        bail!("ip tcp_metrics delete {ip} failed ({st})");
    }
    Ok(())
}

/// Measure the RTT, run every phase, print the results. `server_log`: the
/// private daemon's main log, to show what the server logged per session.
fn run_sessions(args: &Args, addr: SocketAddr, server_log: Option<&Path>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let rtt = rt
        .block_on(measure_rtt(addr, 5))
        .context("measuring the RTT")?;
    let mut samples = Vec::new();
    for phase in args.phases() {
        for _ in 0..args.count {
            if phase == Phase::NoCookie {
                flush_cookie(addr.ip())?;
            }
            let o = SessionOpts {
                try_tfo: phase != Phase::NoTfo,
                rcpt: args.rcpt.clone(),
                body_size: args.size,
                ..SessionOpts::default()
            };
            let s = rt
                .block_on(measure_session(addr, &o))
                .with_context(|| format!("{} session {}", phase.name(), samples.len() + 1))?;
            samples.push(Labelled {
                phase: phase.name().to_string(),
                sample: s,
                server: None,
            });
        }
    }
    if let Some(log) = server_log {
        attach_server_outcomes(log, &mut samples);
    }
    println!("{}", format_samples(&samples, rtt));
    print!("{}", summarize(&samples, rtt));
    Ok(())
}

/// Fill in what the daemon logged (`TFO=<detail>` on its `<=` line) for
/// each session, matched by the message id in the final 250.
fn attach_server_outcomes(log: &Path, samples: &mut [Labelled]) {
    let wanted = samples.len();
    let start = Instant::now();
    let mut by_id: HashMap<String, String> = HashMap::new();
    // The daemon writes its <= line before the 250; allow for buffering.
    while by_id.len() < wanted && start.elapsed() < Duration::from_secs(5) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        by_id = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace().skip(2);
                let id = f.next()?;
                (f.next()? == "<=").then_some(())?;
                let detail = l.split_whitespace().find_map(|w| w.strip_prefix("TFO="))?;
                Some((id.to_string(), detail.to_string()))
            })
            .collect();
        if by_id.len() < wanted {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for s in samples {
        s.server = server_message_id(&s.sample.final_reply).and_then(|id| by_id.get(id).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Option<Args>> {
        Args::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_and_connect_rules() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!(a.count, 20);
        assert_eq!(a.phases(), vec![Phase::NoCookie, Phase::Cookie]);
        let a = parse(&["--connect", "127.0.0.1:25"]).unwrap().unwrap();
        assert_eq!(a.phases(), vec![Phase::NoTfo, Phase::Cookie]);
        assert!(parse(&["--connect", "127.0.0.1:25", "--delay", "50ms"]).is_err());
        assert!(parse(&["--connect", "127.0.0.1:25", "--phases", "no-cookie"]).is_err());
        assert!(parse(&[
            "--connect",
            "[::1]:25",
            "--phases",
            "no-cookie",
            "--flush-cookies"
        ])
        .unwrap()
        .is_some());
        assert!(parse(&["--count", "0"]).is_err());
        assert!(parse(&["--phases", "cookie,bogus"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--delay", "fast"]).is_err());
        assert!(parse(&["--emulator", "tc"]).is_err());
    }

    #[test]
    fn delays() {
        assert_eq!(parse_delay("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_delay("50").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_delay("0.05s").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_delay("1500us").unwrap(), Duration::from_micros(1500));
        assert!(parse_delay("0ms").unwrap().is_zero());
        assert!(parse_delay("-1ms").is_err());
        assert!(parse_delay("11s").is_err());
        assert!(parse_delay("5m").is_err());
    }
}
