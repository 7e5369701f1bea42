//! `oxim-delayer`: delay every packet leaving an interface by a fixed time,
//! through NFQUEUE, for kernels without `sch_netem`. See `--help`.

#![forbid(unsafe_code)]

mod hold;
mod nfqueue;
mod packet;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::time::TimeSpec;

use hold::HoldQueue;
use nfqueue::{Queue, Verdict};

const HELP: &str = "\
oxim-delayer: delay packets through NFQUEUE (a netem stand-in)

Every packet sent out of DEV is held for DELAY and then accepted, in order.
On lo both directions leave through OUTPUT, so 50ms gives a ~100ms RTT.
Run it inside a network namespace you created (unshare -n, ip netns): it
refuses the host's initial namespace unless --i-know is given.

USAGE:
  oxim-delayer start --dev DEV --delay DELAY [OPTIONS]
      Install `iptables -t mangle -A OUTPUT -o DEV -j NFQUEUE --queue-num N`
      (and the ip6tables twin when ip6tables exists), bind the queue, write
      the pid file, detach, and exit 0 once packets are being delayed.
      --queue-num N          NFQUEUE number (default 0)
      --pidfile FILE         pid file (default /run/oxim-delayer.<netns>.pid;
                             the rule is recorded in FILE.rule)
      --foreground           do not detach; stop with SIGTERM/SIGINT
      --log FILE             where a detached delayer writes its messages
                             (default: discarded)
      --drop-syn-data-once   drop the first TCP SYN that carries data (TFO
                             fault test: the kernel must retransmit without it)
      --dup-syn-data-once AFTER
                             let the first IPv4 TCP SYN that carries data
                             through, and send an exact copy of it AFTER later
                             (TFO replay test: a duplicated SYN that arrives
                             when the first connection is gone)
      --i-know               allow running in the initial network namespace
  oxim-delayer stop [--pidfile FILE]
      Stop the delayer: it removes its rules and releases held packets.
  oxim-delayer rtt [--addr IP] [--count N]
      Listen on IP (default 127.0.0.1), time N TCP connects (default 5) and
      print the median connect time (one RTT) in milliseconds, e.g. `100.5`.

DELAY is a number with a unit: 50ms, 0.05s, 1500us (no unit = ms).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxim-delayer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        print!("{HELP}");
        bail!("no command given");
    };
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return Ok(());
    }
    match cmd.as_str() {
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            Ok(())
        }
        "start" => start(&StartArgs::parse(rest)?),
        "stop" => stop(&parse_pidfile_only(rest)?),
        "rtt" => rtt(rest),
        other => bail!("unknown command {other:?} (try --help)"),
    }
}

/// Options of `start`.
#[derive(Debug, Clone, PartialEq)]
struct StartArgs {
    dev: String,
    delay: Duration,
    queue_num: u16,
    pidfile: Option<PathBuf>,
    foreground: bool,
    log: Option<PathBuf>,
    drop_syn_data_once: bool,
    /// Send a copy of the first SYN carrying data this long after it.
    dup_syn_data_after: Option<Duration>,
    i_know: bool,
    /// Internal: the detached child tells its parent when it is ready.
    notify_ready: bool,
}

impl StartArgs {
    fn parse(args: &[String]) -> Result<StartArgs> {
        let mut dev = None;
        let mut delay = None;
        let mut a = StartArgs {
            dev: String::new(),
            delay: Duration::ZERO,
            queue_num: 0,
            pidfile: None,
            foreground: false,
            log: None,
            drop_syn_data_once: false,
            dup_syn_data_after: None,
            i_know: false,
            notify_ready: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| anyhow!("{arg} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--dev" => dev = Some(value()?),
                "--delay" => delay = Some(parse_duration(&value()?)?),
                "--queue-num" => {
                    let v = value()?;
                    a.queue_num = v
                        .parse()
                        .with_context(|| format!("bad --queue-num {v:?}"))?;
                }
                "--pidfile" => a.pidfile = Some(value()?.into()),
                "--log" => a.log = Some(value()?.into()),
                "--foreground" => a.foreground = true,
                "--drop-syn-data-once" => a.drop_syn_data_once = true,
                "--dup-syn-data-once" => a.dup_syn_data_after = Some(parse_duration(&value()?)?),
                "--i-know" => a.i_know = true,
                "--notify-ready" => a.notify_ready = true,
                other => bail!("unknown option {other:?} for start (try --help)"),
            }
        }
        a.dev = dev.ok_or_else(|| anyhow!("start needs --dev"))?;
        if a.dev.is_empty() || a.dev.len() > 15 || a.dev.contains(['/', ' ']) {
            bail!("bad interface name {:?}", a.dev);
        }
        a.delay = delay.ok_or_else(|| anyhow!("start needs --delay"))?;
        Ok(a)
    }

    /// The arguments for the detached child.
    fn child_args(&self, pidfile: &Path) -> Vec<String> {
        let mut v = vec![
            "start".to_owned(),
            "--dev".to_owned(),
            self.dev.clone(),
            "--delay".to_owned(),
            format!("{}us", self.delay.as_micros()),
            "--queue-num".to_owned(),
            self.queue_num.to_string(),
            "--pidfile".to_owned(),
            pidfile.display().to_string(),
            "--foreground".to_owned(),
            "--notify-ready".to_owned(),
        ];
        if let Some(log) = &self.log {
            v.extend(["--log".to_owned(), log.display().to_string()]);
        }
        if self.drop_syn_data_once {
            v.push("--drop-syn-data-once".to_owned());
        }
        if let Some(d) = self.dup_syn_data_after {
            v.extend([
                "--dup-syn-data-once".to_owned(),
                format!("{}us", d.as_micros()),
            ]);
        }
        if self.i_know {
            v.push("--i-know".to_owned());
        }
        v
    }
}

fn parse_pidfile_only(args: &[String]) -> Result<Option<PathBuf>> {
    match args {
        [] => Ok(None),
        [flag, f] if flag == "--pidfile" => Ok(Some(f.into())),
        _ => bail!("usage: oxim-delayer stop [--pidfile FILE]"),
    }
}

/// `50ms`, `0.05s`, `1500us`, `50` (ms).
fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "ms" | "msec" => n / 1e3,
        "s" | "sec" => n,
        "us" | "usec" => n / 1e6,
        _ => bail!("bad duration unit in {s:?} (use s, ms or us)"),
    };
    if !secs.is_finite() || !(0.0..=3600.0).contains(&secs) {
        bail!("duration {s:?} out of range (0 to 1 hour)");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn netns_id(pid: &str) -> Result<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("reading /proc/{pid}/ns/net"))?;
    Ok(link.display().to_string())
}

/// Whether we run in the host's initial network namespace.
///
/// Comparing `/proc/self/ns/net` with `/proc/1/ns/net` is not enough: inside
/// a PID namespace (the scenario runner's sandbox) pid 1 shares *our* private
/// namespace, and in some sandboxes pid 1 cannot be read at all. The kernel
/// itself tells: it registers `net.core.netdev_max_backlog` (and, since 5.x,
/// `devconf_inherit_init_net`) for the initial namespace only, and
/// `/proc/sys` shows the sysctls of the reader's namespace.
fn in_initial_netns() -> bool {
    ["netdev_max_backlog", "devconf_inherit_init_net"]
        .iter()
        .any(|f| Path::new("/proc/sys/net/core").join(f).exists())
}

fn default_pidfile() -> Result<PathBuf> {
    let ns = netns_id("self")?;
    let inode: String = ns.chars().filter(char::is_ascii_digit).collect();
    let dir = if Path::new("/run").is_dir() {
        "/run"
    } else {
        "/tmp"
    };
    Ok(PathBuf::from(format!("{dir}/oxim-delayer.{inode}.pid")))
}

fn rule_file(pidfile: &Path) -> PathBuf {
    let mut s = pidfile.as_os_str().to_owned();
    s.push(".rule");
    PathBuf::from(s)
}

fn read_pid(pidfile: &Path) -> Result<Option<i32>> {
    match std::fs::read_to_string(pidfile) {
        Ok(s) => Ok(Some(s.trim().parse().with_context(|| {
            format!("{} does not hold a pid", pidfile.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", pidfile.display())),
    }
}

/// Alive, not a zombie, and an oxim-delayer (a stale pid file may name a
/// recycled pid: never signal a stranger).
fn alive(pid: i32) -> bool {
    let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .next()
                .is_some_and(|argv0| argv0.ends_with(b"oxim-delayer"))
        })
        .unwrap_or(false);
    ours && running(pid)
}

/// The process exists and is not a zombie.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

// ---------- iptables ----------

fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn rule_args(op: &str, dev: &str, queue_num: u16) -> Vec<String> {
    [
        "-w",
        "-t",
        "mangle",
        op,
        "OUTPUT",
        "-o",
        dev,
        "-j",
        "NFQUEUE",
        "--queue-num",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([queue_num.to_string()])
    .collect()
}

fn iptables(prog: &str, args: &[String]) -> Result<bool> {
    let out = Command::new(tool(prog))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {prog} (apt-get install iptables)"))?;
    if out.status.success() {
        return Ok(true);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // `-C`/`-D` of a missing rule exit 1; everything else is a real failure.
    if out.status.code() == Some(1) && args.iter().any(|a| a == "-C" || a == "-D") {
        return Ok(false);
    }
    bail!("{prog} {} failed: {}", args.join(" "), err.trim())
}

/// The programs whose rule we install: iptables always, ip6tables when present.
fn rule_programs() -> Vec<&'static str> {
    let mut v = vec!["iptables"];
    if tool("ip6tables").exists() {
        v.push("ip6tables");
    }
    v
}

fn install_rules(dev: &str, queue_num: u16) -> Result<()> {
    for prog in rule_programs() {
        iptables(prog, &rule_args("-A", dev, queue_num))?;
    }
    Ok(())
}

fn remove_rules(dev: &str, queue_num: u16) {
    for prog in rule_programs() {
        // Remove every copy (a crashed earlier run may have left one).
        for _ in 0..16 {
            match iptables(prog, &rule_args("-D", dev, queue_num)) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    eprintln!("oxim-delayer: {e:#}");
                    break;
                }
            }
        }
    }
}

// ---------- start / daemon ----------

fn start(a: &StartArgs) -> Result<()> {
    let here = netns_id("self")?;
    if !a.i_know && in_initial_netns() {
        bail!(
            "refusing to run in the initial network namespace ({here}); run inside a \
             namespace you created (unshare -n, ip netns exec) or pass --i-know"
        );
    }
    let pidfile = match &a.pidfile {
        Some(p) => p.clone(),
        None => default_pidfile()?,
    };
    if let Some(pid) = read_pid(&pidfile)? {
        if alive(pid) {
            bail!("already running as pid {pid} ({})", pidfile.display());
        }
    }
    if a.foreground {
        daemon(a, &pidfile)
    } else {
        spawn_detached(a, &pidfile)
    }
}

/// Re-run ourselves in the foreground as a detached child and wait until it
/// reports that the queue is bound and the rule installed.
fn spawn_detached(a: &StartArgs, pidfile: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating own executable")?;
    let mut child = Command::new(exe)
        .args(a.child_args(pidfile))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning the delayer")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no child stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() == "ready" {
        return Ok(());
    }
    let out = child
        .wait_with_output()
        .context("waiting for the delayer")?;
    bail!(
        "the delayer did not start ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn daemon(a: &StartArgs, pidfile: &Path) -> Result<()> {
    if a.notify_ready {
        // Leave the caller's session and process group.
        nix::unistd::setsid().context("setsid")?;
    }
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;
    let sigfd = SignalFd::new(&signals).context("signalfd")?;

    // Whole packets when one is to be copied, else just the headers.
    let copy_range = if a.dup_syn_data_after.is_some() {
        65_535
    } else {
        128
    };
    let mut queue = Queue::bind(a.queue_num, copy_range, 65_536).with_context(|| {
        format!(
            "binding NFQUEUE {} (is another program using it?)",
            a.queue_num
        )
    })?;
    std::fs::write(pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pidfile.display()))?;
    std::fs::write(rule_file(pidfile), format!("{}\n{}\n", a.dev, a.queue_num))
        .context("writing the rule file")?;
    if let Err(e) = install_rules(&a.dev, a.queue_num) {
        remove_rules(&a.dev, a.queue_num);
        let _ = std::fs::remove_file(pidfile);
        let _ = std::fs::remove_file(rule_file(pidfile));
        return Err(e);
    }
    if a.notify_ready {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
        drop(out);
        detach_output(a.log.as_deref())?;
    }
    eprintln!(
        "oxim-delayer: delaying {} by {:?} (queue {}, pid {})",
        a.dev,
        a.delay,
        a.queue_num,
        std::process::id()
    );

    let result = event_loop(&mut queue, &sigfd, a);

    remove_rules(&a.dev, a.queue_num);
    let _ = queue.unbind();
    let _ = std::fs::remove_file(rule_file(pidfile));
    let _ = std::fs::remove_file(pidfile);
    result
}

/// Point stdout and stderr at the log file (or /dev/null) so the parent's
/// pipes close.
fn detach_output(log: Option<&Path>) -> Result<()> {
    let target = match log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("opening {}", p.display()))?,
        None => std::fs::OpenOptions::new().write(true).open("/dev/null")?,
    };
    nix::unistd::dup2_stdout(target.as_fd()).context("dup2 stdout")?;
    nix::unistd::dup2_stderr(target.as_fd()).context("dup2 stderr")?;
    Ok(())
}

fn event_loop(queue: &mut Queue, sigfd: &SignalFd, a: &StartArgs) -> Result<()> {
    let mut hold = HoldQueue::new(a.delay);
    let mut drop_syn_data = a.drop_syn_data_once;
    let mut dup_syn_data = a.dup_syn_data_after;
    // The copy to send, and when.
    let mut copy: Option<(Instant, Vec<u8>)> = None;
    let (mut delayed, mut dropped) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        let timeout = [
            hold.next_due_in(now),
            copy.as_ref()
                .map(|(due, _)| due.saturating_duration_since(now)),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(TimeSpec::from_duration);
        let mut fds = [
            PollFd::new(queue.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::ppoll(&mut fds, timeout, None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("ppoll"),
        }
        let stop = fds[1].any().unwrap_or(false);
        let readable = fds[0].any().unwrap_or(false);
        if readable {
            let now = Instant::now();
            for p in queue.recv_packets().context("reading NFQUEUE")? {
                if drop_syn_data && packet::is_syn_with_data(&p.payload) {
                    drop_syn_data = false;
                    dropped += 1;
                    queue.verdict(p.id, Verdict::Drop)?;
                    eprintln!(
                        "oxim-delayer: dropped a SYN carrying data (packet {})",
                        p.id
                    );
                    continue;
                }
                if let Some(after) = dup_syn_data.filter(|_| packet::is_syn_with_data(&p.payload)) {
                    dup_syn_data = None;
                    if packet::is_whole_ipv4(&p.payload) {
                        copy = Some((now + after, p.payload.clone()));
                    } else {
                        eprintln!("oxim-delayer: a SYN carrying data not copied (not whole IPv4)");
                    }
                }
                hold.push(p.id, now);
                delayed += 1;
            }
        }
        // Everything older than the newest due packet is due too (FIFO) and
        // every dropped packet already has its verdict: one batch verdict.
        if let Some(&last) = hold.pop_due(Instant::now()).last() {
            queue.verdict_up_to(last, Verdict::Accept)?;
        }
        if copy.as_ref().is_some_and(|(due, _)| *due <= Instant::now()) {
            if let Some((_, bytes)) = copy.take() {
                // The copy leaves through OUTPUT like any packet, and is
                // delayed like one.
                match packet::send_raw_ipv4(&bytes) {
                    Ok(()) => eprintln!(
                        "oxim-delayer: sent a copy of a SYN carrying data ({} bytes)",
                        bytes.len()
                    ),
                    Err(e) => eprintln!("oxim-delayer: could not send the SYN copy: {e}"),
                }
            }
        }
        if stop {
            if let Ok(Some(info)) = sigfd.read_signal() {
                eprintln!("oxim-delayer: signal {}, stopping", info.ssi_signo);
            }
            // Release what we hold rather than dropping it.
            eprintln!("oxim-delayer: releasing {} held packets", hold.len());
            if let Some(&last) = hold.drain().last() {
                queue.verdict_up_to(last, Verdict::Accept)?;
            }
            eprintln!(
                "oxim-delayer: {delayed} packets delayed, {dropped} dropped, {} notification overruns",
                queue.overruns()
            );
            return Ok(());
        }
    }
}

// ---------- stop ----------

fn stop(pidfile: &Option<PathBuf>) -> Result<()> {
    let pidfile = match pidfile {
        Some(p) => p.clone(),
        None => default_pidfile()?,
    };
    let pid = read_pid(&pidfile)?;
    if let Some(pid) = pid.filter(|p| alive(*p)) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM)
            .with_context(|| format!("signalling pid {pid}"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(pid) {
            if Instant::now() > deadline {
                bail!("pid {pid} did not stop within 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    } else if let Some(pid) = pid {
        eprintln!("oxim-delayer: pid {pid} is not running; cleaning up");
    } else {
        eprintln!("oxim-delayer: no pid file {}", pidfile.display());
    }
    // The daemon cleans up after itself; if it died, do it here.
    let rules = rule_file(&pidfile);
    if let Ok(text) = std::fs::read_to_string(&rules) {
        let mut lines = text.lines();
        if let (Some(dev), Some(Ok(q))) = (lines.next(), lines.next().map(str::parse::<u16>)) {
            remove_rules(dev, q);
        }
        let _ = std::fs::remove_file(&rules);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}

// ---------- rtt ----------

fn rtt(args: &[String]) -> Result<()> {
    let mut addr: IpAddr = "127.0.0.1".parse()?;
    let mut count = 5usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let v = it.next().ok_or_else(|| anyhow!("{arg} needs a value"))?;
        match arg.as_str() {
            "--addr" => addr = v.parse().with_context(|| format!("bad --addr {v:?}"))?,
            "--count" => count = v.parse().with_context(|| format!("bad --count {v:?}"))?,
            other => bail!("unknown option {other:?} for rtt"),
        }
    }
    if !(1..=100).contains(&count) {
        bail!("--count must be 1 to 100");
    }
    let listener = TcpListener::bind(SocketAddr::new(addr, 0))
        .with_context(|| format!("listening on {addr}"))?;
    let target = listener.local_addr()?;
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        let s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
            .with_context(|| format!("connecting to {target}"))?;
        samples.push(t.elapsed());
        drop(s);
        let _ = listener.accept();
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!("{:.1}", median.as_secs_f64() * 1e3);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("50").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("0.25s").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("1500us").unwrap(),
            Duration::from_micros(1500)
        );
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("99999s").is_err());
    }

    #[test]
    fn start_args_round_trip_through_the_child_command_line() {
        let a = StartArgs::parse(&s(&[
            "--dev",
            "lo",
            "--delay",
            "50ms",
            "--queue-num",
            "7",
            "--drop-syn-data-once",
            "--dup-syn-data-once",
            "1.5s",
        ]))
        .unwrap();
        assert_eq!((a.dev.as_str(), a.queue_num), ("lo", 7));
        assert_eq!(a.delay, Duration::from_millis(50));
        let child = a.child_args(Path::new("/tmp/p.pid"));
        let b = StartArgs::parse(&child[1..]).unwrap();
        assert_eq!(b.delay, a.delay);
        assert_eq!(b.pidfile.as_deref(), Some(Path::new("/tmp/p.pid")));
        assert!(b.foreground && b.notify_ready && b.drop_syn_data_once);
        assert_eq!(b.dup_syn_data_after, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn private_namespace_is_not_the_initial_one() {
        let private = oxim_net::testns::run_in_new_netns(in_initial_netns)
            .expect("creating a network namespace needs root; run the tests as root");
        assert!(!private);
    }

    #[test]
    fn start_args_errors() {
        assert!(StartArgs::parse(&s(&["--delay", "50ms"])).is_err());
        assert!(StartArgs::parse(&s(&["--dev", "lo"])).is_err());
        assert!(StartArgs::parse(&s(&["--dev", "lo", "--delay"])).is_err());
        assert!(StartArgs::parse(&s(&["--dev", "a/b", "--delay", "1ms"])).is_err());
        assert!(StartArgs::parse(&s(&["--dev", "lo", "--delay", "1ms", "--bogus"])).is_err());
    }

    #[test]
    fn rule_arguments() {
        assert_eq!(
            rule_args("-A", "lo", 3).join(" "),
            "-w -t mangle -A OUTPUT -o lo -j NFQUEUE --queue-num 3"
        );
    }
}
