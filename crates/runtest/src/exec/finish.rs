//! The end of a test: the scripted server's verdict, processes left in
//! the sandbox, stopping daemons, and comparing the output.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Outcome, Runner};
use crate::compare::{CompareOptions, Comparer};
use crate::latin1;
use crate::munge::{Identity, Munger, Style};
use crate::script::Script;

pub(super) fn wait_gone(pid: i32, timeout: Duration) -> bool {
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

pub(super) fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
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
    /// Let processes still running in the sandbox (a delivery process a
    /// daemon forked before it was stopped) finish before the output is
    /// compared: we are PID 1 of the namespace, so they are ours to reap.
    /// Waits at most `limit`; what is left is logged and killed with the
    /// sandbox.
    pub(super) fn wait_for_stragglers(&mut self, limit: Duration) {
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
    pub(super) fn stop_daemons(&mut self, announce: bool) {
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

    pub(super) fn cleanup(&mut self) {
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

    pub(super) fn compare(&mut self, script: &Script) -> Outcome {
        let p = self.subst.params();
        let identity = Identity {
            hostname: p.hostname.clone(),
            testdir: p.dir.clone(),
            caller: p.caller.clone(),
            caller_group: p.caller_group.clone(),
            caller_home: p.caller_home.clone(),
            caller_uid: p.caller_uid,
            caller_gid: p.caller_gid,
            exim_user: p.exim_user.clone(),
            exim_uid: nix::unistd::User::from_name(&p.exim_user)
                .ok()
                .flatten()
                .map_or(p.caller_uid, |u| u.uid.as_raw()),
            exim_gid: nix::unistd::Group::from_name(&p.exim_group)
                .ok()
                .flatten()
                .map_or(p.caller_gid, |g| g.gid.as_raw()),
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
                rmfiltertest: script.has_flag("rmfiltertest"),
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
