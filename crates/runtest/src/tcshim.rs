//! The `tc` found first on the sandbox's PATH. It runs the real `tc`; when
//! that fails for `qdisc add dev DEV root netem delay N` (no `sch_netem` in
//! the kernel) it starts the NFQUEUE delayer (`oxim-delayer`) instead, and
//! `qdisc del dev DEV root` stops it again. The measured RTT is logged to the
//! test's `runtest.log`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a `tc` command line asks for, as far as the shim cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcRequest {
    /// `qdisc add|replace|change dev DEV root netem delay DELAY`.
    AddDelay {
        /// Interface.
        dev: String,
        /// Delay as written (e.g. `50ms`).
        delay: String,
    },
    /// `qdisc del|delete dev DEV root`.
    DeleteRoot {
        /// Interface.
        dev: String,
    },
    /// Anything else: only the real `tc` can do it.
    Other,
}

/// Classify `tc` arguments.
pub fn classify(args: &[String]) -> TcRequest {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["qdisc", "add" | "replace" | "change", "dev", dev, "root", "netem", "delay", delay, ..] => {
            TcRequest::AddDelay {
                dev: (*dev).to_string(),
                delay: (*delay).to_string(),
            }
        }
        ["qdisc", "del" | "delete", "dev", dev, "root", ..] => TcRequest::DeleteRoot {
            dev: (*dev).to_string(),
        },
        _ => TcRequest::Other,
    }
}

fn real_tc() -> Option<PathBuf> {
    ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc", "/bin/tc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn delayer() -> PathBuf {
    if let Some(p) = std::env::var_os("OXIM_DELAYER") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("oxim-delayer")))
        .unwrap_or_else(|| PathBuf::from("oxim-delayer"))
}

/// Environment variable with the inode of the host's network namespace, set
/// by the sandboxed runner for the processes it starts.
pub const HOST_NETNS_ENV: &str = "OXIM_RUNTEST_HOST_NETNS";

/// Whether the runner told us the host's netns inode and ours differs from it.
fn proven_private_netns() -> bool {
    let Some(host) = std::env::var(HOST_NETNS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return false;
    };
    crate::sandbox::namespace_inode("net").is_ok_and(|here| here != host)
}

fn log(work: &Path, msg: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join(crate::exec::LOG_FILE))
    {
        let _ = writeln!(f, "tc: {msg}");
    }
}

/// Entry point when invoked as `tc`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let work = std::env::var_os("OXIM_RUNTEST_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let real = real_tc().map(|tc| Command::new(tc).args(args).output());
    if let Some(Ok(out)) = &real {
        if out.status.success() {
            let _ = std::io::stdout().write_all(&out.stdout);
            let _ = std::io::stderr().write_all(&out.stderr);
            log(&work, &format!("real tc {} succeeded", args.join(" ")));
            return 0;
        }
    }
    let request = classify(args);
    let pidfile = |dev: &str| work.join(format!("delayer-{dev}.pid"));
    match &request {
        TcRequest::AddDelay { dev, delay } => {
            let mut cmd = Command::new(delayer());
            cmd.args(["start", "--dev", dev, "--delay", delay, "--pidfile"])
                .arg(pidfile(dev));
            if proven_private_netns() {
                // oxim-delayer guesses "initial namespace" when its netns equals
                // PID 1's, which is always so in our PID namespace; the runner
                // has compared against the host's namespace itself.
                cmd.arg("--i-know");
            }
            let status = cmd.status();
            match status {
                Ok(s) if s.success() => {
                    let rtt = Command::new(delayer())
                        .args(["rtt", "--addr", "127.0.0.1"])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .unwrap_or_else(|e| format!("unknown ({e})"));
                    log(
                        &work,
                        &format!("netem unavailable: oxim-delayer delays {dev} by {delay}; measured RTT {rtt} ms"),
                    );
                    return 0;
                }
                Ok(s) => {
                    log(&work, &format!("oxim-delayer start failed: {s}"));
                    eprintln!("tc: netem unavailable and oxim-delayer start failed ({s})");
                    return 2;
                }
                Err(e) => {
                    log(&work, &format!("cannot run {}: {e}", delayer().display()));
                    eprintln!(
                        "tc: netem unavailable and cannot run {}: {e}",
                        delayer().display()
                    );
                    return 2;
                }
            }
        }
        TcRequest::DeleteRoot { dev } if pidfile(dev).exists() => {
            let status = Command::new(delayer())
                .args(["stop", "--pidfile"])
                .arg(pidfile(dev))
                .status();
            let _ = std::fs::remove_file(pidfile(dev));
            return match status {
                Ok(s) if s.success() => {
                    log(&work, &format!("oxim-delayer on {dev} stopped"));
                    0
                }
                Ok(s) => {
                    eprintln!("tc: oxim-delayer stop failed ({s})");
                    2
                }
                Err(e) => {
                    eprintln!("tc: cannot run {}: {e}", delayer().display());
                    2
                }
            };
        }
        _ => {}
    }
    match real {
        Some(Ok(out)) => {
            let _ = std::io::stdout().write_all(&out.stdout);
            let _ = std::io::stderr().write_all(&out.stderr);
            exit_code(out.status)
        }
        Some(Err(e)) => {
            eprintln!("tc: {e}");
            127
        }
        None => {
            eprintln!("tc: command not found");
            127
        }
    }
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn classifies_netem_commands() {
        assert_eq!(
            classify(&v("qdisc add dev lo root netem delay 50ms")),
            TcRequest::AddDelay {
                dev: "lo".into(),
                delay: "50ms".into()
            }
        );
        assert_eq!(
            classify(&v("qdisc delete dev lo root")),
            TcRequest::DeleteRoot { dev: "lo".into() }
        );
        assert_eq!(classify(&v("qdisc show dev lo")), TcRequest::Other);
        assert_eq!(classify(&[]), TcRequest::Other);
    }
}
