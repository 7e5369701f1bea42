//! The script's `perl`, `client` and `server` commands (the scripted SMTP
//! peers run as this runner's `client`/`server` subcommands).

use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::finish::wait_child;
use super::input::stdin_bytes;
use super::PendingServer;
use super::{append, error, exit_code, fail, Runner, StepFail, StepResult};
use crate::latin1;
use crate::script::ExitExpect;

impl Runner<'_> {
    pub(super) fn perl(
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
        let mut cmd = self.command("/bin/sh", !sudo);
        cmd.arg("-c").arg(latin1::os(&format!("exec perl {args}")));
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

    pub(super) fn client(
        &mut self,
        tls: bool,
        args: &str,
        data: &[String],
        env: &[(String, String)],
        expect: ExitExpect,
    ) -> StepResult {
        let args = self.subst.apply(args);
        self.note(&format!("client {args}"));
        let mut cmd = self.command(&self.cfg.runner, true);
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

    pub(super) fn server(
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
        let mut cmd = self.command(&self.cfg.runner, true);
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

    pub(super) fn finish_server(&mut self) -> StepResult {
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
}
