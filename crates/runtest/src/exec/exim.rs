//! The script's `exim` commands: the configuration, the binary, `$msgN`
//! ids, daemons (waiting for their pid file), inetd wait mode, and plain
//! runs fed with the data lines.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::input::Chunk;
use super::{append, error, exit_code, fail, Runner, StepFail, StepResult};
use crate::latin1;
use crate::script::ExitExpect;

/// How to run one `exim` command of a script.
pub(crate) struct EximRun<'a> {
    pub(super) sudo: bool,
    pub(super) sudo_user: Option<&'a str>,
    pub(super) env: &'a [(String, String)],
    pub(super) wait: u64,
    pub(super) special: &'a str,
    pub(super) args: &'a str,
    pub(super) data: &'a [String],
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

impl Runner<'_> {
    pub(super) fn copy_conf(&self) -> StepResult {
        let conf = crate::tree::resolve_link(&self.cfg.tree.join("confs").join(&self.cfg.testnum));
        let text = latin1::read(&conf)
            .map_err(|e| StepFail::Error(format!("reading {}: {e}", conf.display())))?;
        latin1::write(&self.work("test-config"), &self.subst.apply(&text))
            .map_err(|e| StepFail::Error(format!("writing test-config: {e}")))
    }

    /// The binary for `exim` (`special` empty), `exim_exim` (the same MTA,
    /// Exim's copy owned by the Exim user) or another `exim_NAME` utility
    /// (looked for next to the oxim binary).
    pub(super) fn exim_binary(&self, special: &str) -> Result<PathBuf, StepFail> {
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
    pub(super) fn substitute_msg_ids(&mut self, args: &str) -> Result<String, StepFail> {
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
        // As root: the queue may be listed by admin users only.
        self.base_env(&mut cmd);
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

    pub(super) fn exim(&mut self, run: &EximRun<'_>, expect: ExitExpect) -> StepResult {
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
        let mut cmd = if let Some(user) = run.sudo_user {
            let mut cmd = Command::new("/bin/sh");
            self.base_env(&mut cmd);
            let Some(u) = nix::unistd::User::from_name(user).ok().flatten() else {
                return error(format!("sudo -u {user}: no such user"));
            };
            use std::os::unix::process::CommandExt;
            cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
            cmd
        } else {
            self.command("/bin/sh", !run.sudo)
        };
        cmd.arg("-c").arg(latin1::os(&line));
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
}
