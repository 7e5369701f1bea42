//! The harness commands of Exim's runtest besides `exim`, `client`,
//! `server` and `perl`: shell commands, `dump`, the utilities, `write`,
//! `background`, `###` comments and `munge`.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{append, error, exit_code, fail, PendingServer, Runner, StepFail, StepResult};
use crate::custom;
use crate::latin1;
use crate::script::{parse_size, ExitExpect};

impl Runner<'_> {
    /// A helper program of Exim's (`exim_dumpdb`, `exinext`, ...): the
    /// sandbox's link to oxim for the hints utilities, else oxim's
    /// equivalent looked for under that name next to the oxim binary.
    pub(super) fn utility_path(&self, name: &str) -> Option<PathBuf> {
        if super::HINTS_UTILITIES.contains(&name) {
            let p = self.work("bin").join(name);
            if p.exists() {
                return Some(p);
            }
        }
        let dir = self.cfg.exim.parent()?;
        let p = dir.join(name);
        p.is_file().then_some(p)
    }

    /// `### text`: copied to the four output files.
    pub(super) fn comment(&mut self, text: &str) -> StepResult {
        let line = format!("{}\n", self.subst.apply(text));
        for f in [
            "test-stdout",
            "test-stderr",
            "test-stderr-server",
            "test-stdout-server",
        ] {
            append(&self.work(f))?
                .write_all(&latin1::encode(&line))
                .map_err(|e| StepFail::Error(format!("writing {f}: {e}")))?;
        }
        Ok(())
    }

    /// `write FILE [sizes]` / `catwrite`: data lines are written as they
    /// are in the script (Exim does not substitute them).
    pub(super) fn write_file(
        &mut self,
        file: &str,
        cat: bool,
        sizes: &[String],
        pre: &[String],
        post: &[String],
    ) -> StepResult {
        let file = self.subst.apply(file);
        let mut text = String::new();
        for l in pre {
            text.push_str(l);
            text.push('\n');
        }
        for spec in sizes {
            let Some((count, len, lead)) = parse_size(spec) else {
                return error(format!("write: bad size {spec:?}"));
            };
            let n = len.saturating_sub(lead.chars().count() + 1);
            for _ in 0..count {
                text.push_str(&lead);
                text.push_str(&"a".repeat(n));
                text.push('\n');
            }
        }
        for l in post {
            text.push_str(l);
            text.push('\n');
        }
        let path = self.work(&file);
        latin1::write(&path, &text)
            .map_err(|e| StepFail::Error(format!("write {}: {e}", path.display())))?;
        if cat {
            let cat_text = format!("==========\n{text}==========\n");
            append(&self.work("test-stdout"))?
                .write_all(&latin1::encode(&cat_text))
                .map_err(|e| StepFail::Error(format!("catwrite: {e}")))?;
        }
        Ok(())
    }

    /// `munge NAME`: the last one named applies at comparison time.
    pub(super) fn select_munge(&mut self, name: &str) -> StepResult {
        if !custom::known(name) {
            return error(format!("munge {name}: no such canned munge"));
        }
        self.note(&format!("munge {name}"));
        self.munge = Some(name.to_string());
        Ok(())
    }

    /// A Unix command handed to the shell in the test directory, output
    /// appended to test-stdout / test-stderr (`cat2`: stdout replaces
    /// test-stderr). `sudo ...` runs as root, the rest as the caller.
    pub(super) fn shell(
        &mut self,
        line: &str,
        cat2: bool,
        env: &[(String, String)],
        expect: ExitExpect,
    ) -> StepResult {
        let line = self.subst.apply(line);
        let (sudo, body) = match line.strip_prefix("sudo ") {
            Some(rest) => (true, rest.trim_start().to_string()),
            None => (false, line.clone()),
        };
        let full = if cat2 {
            format!("{body} 2>&1 >test-stderr")
        } else {
            format!("{body} >>test-stdout 2>>test-stderr")
        };
        self.note(&format!("shell: {full}"));
        let mut cmd = self.command("/bin/sh", !sudo);
        cmd.arg("-c").arg(latin1::os(&full));
        for (k, v) in env {
            cmd.env(k, latin1::os(v));
        }
        cmd.stdin(Stdio::null())
            .stdout(append(&self.work("runtest.log"))?)
            .stderr(append(&self.work("runtest.log"))?);
        let status = self.run_with_input(cmd, Vec::new(), "shell command")?;
        if expect.accepts(status) {
            Ok(())
        } else {
            fail(format!(
                "`{line}` exited with status {status}, expected {expect}{}",
                self.tail("test-stderr", 5)
            ))
        }
    }

    /// Run a utility through the shell with `>>test-stdout` (and its exit
    /// code echoed there, as Exim's runtest does).
    fn run_utility_line(&mut self, name: &str, line: String, stderr_too: bool) -> StepResult {
        let full = if stderr_too {
            format!("({line}; echo {name} exit code = $?) >>test-stdout 2>>test-stderr")
        } else {
            format!("({line}; echo {name} exit code = $?) >>test-stdout")
        };
        self.note(&format!("utility: {full}"));
        let mut cmd = self.command("/bin/sh", true);
        cmd.arg("-c").arg(latin1::os(&full));
        cmd.stdin(Stdio::null())
            .stdout(append(&self.work("runtest.log"))?)
            .stderr(append(&self.work("runtest.log"))?);
        let status = self.run_with_input(cmd, Vec::new(), name)?;
        if status == 0 {
            Ok(())
        } else {
            fail(format!(
                "{name} (via the shell) exited with status {status}"
            ))
        }
    }

    /// `exinext`, `exigrep`, `exiqgrep`, `eximstats`, `exim_id_update`,
    /// `dbmbuild` (runs `exim_dbmbuild`), `exim_lock`.
    pub(super) fn utility(&mut self, word: &str, args: &str, _expect: ExitExpect) -> StepResult {
        let args = self.subst.apply(args);
        let name = if word == "dbmbuild" {
            "exim_dbmbuild"
        } else {
            word
        };
        let Some(bin) = self.utility_path(name) else {
            return fail(format!("oxim has no {name} utility ({word} {args})"));
        };
        let bin = bin.display().to_string();
        let dir = self.cfg.work.display().to_string();
        let exim = self.work("bin/exim").display().to_string();
        let conf = self.work("test-config").display().to_string();
        self.copy_conf()?;
        match word {
            "dbmbuild" => {
                let mut w = args.split_whitespace();
                let (a, b) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
                self.run_utility_line(name, format!("{bin} {dir}/{a} {dir}/{b}"), false)
            }
            "exinext" => self.run_utility_line(
                name,
                format!("{bin} -DEXIM_PATH={exim} -C {conf} {args}"),
                false,
            ),
            "exigrep" | "eximstats" => {
                self.run_utility_line(name, format!("{bin} {args} {dir}/spool/log/mainlog"), false)
            }
            "exiqgrep" => {
                self.run_utility_line(name, format!("{bin} -E {exim} -C {conf} {args}"), false)
            }
            "exim_id_update" => {
                self.run_utility_line(name, format!("{bin} {args} {dir}/spool/input"), true)
            }
            "exim_lock" => {
                // Runs like `server`: not waited for until the next exim command.
                self.finish_server()?;
                let mut cmd = self.command("/bin/sh", true);
                cmd.arg("-c")
                    .arg(latin1::os(&format!("exec {bin} {args} >>test-stdout")));
                let child = cmd
                    .stdin(Stdio::piped())
                    .spawn()
                    .map_err(|e| StepFail::Error(format!("starting exim_lock: {e}")))?;
                std::thread::sleep(Duration::from_millis(100));
                let mut child = child;
                let stdin = child.stdin.take();
                self.server = Some(PendingServer {
                    child,
                    stdin,
                    expect: ExitExpect::Is(0),
                    line: 0,
                });
                Ok(())
            }
            other => error(format!("unknown utility {other}")),
        }
    }

    /// `dump DB`: `exim_dumpdb SPOOL DB`, sorted the way Exim's runtest
    /// sorts it, after a `+++++` line in test-stdout.
    pub(super) fn dump(&mut self, db: &str) -> StepResult {
        let Some(bin) = self.utility_path("exim_dumpdb") else {
            return fail(format!(
                "oxim has no exim_dumpdb (Exim-format listing of its hints databases) for `dump {db}`"
            ));
        };
        let out = Command::new(&bin)
            .arg(self.work("spool"))
            .arg(db)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| StepFail::Error(format!("running {}: {e}", bin.display())))?;
        let text = latin1::decode(&out.stdout);
        let ipv4 = self.subst.params().host_ipv4.clone();
        let mut listing = String::from("+++++++++++++++++++++++++++\n");
        if db == "retry" {
            // Records are separated by "\n  "; sort by the key with the
            // host's address written as the munged form.
            let mut items: Vec<(String, String)> = text
                .split("\n  ")
                .map(|item| {
                    let key = item
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .replace(&ipv4, "ip4.ip4.ip4.ip4");
                    (key, item.to_string())
                })
                .collect();
            items.sort();
            for (_, item) in items {
                let lines: Vec<&str> = item.trim().lines().map(str::trim_start).collect();
                listing.push_str(&format!("  {}\n", lines.join("\n")));
            }
        } else {
            let mut lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
            if db == "callout" {
                lines.sort_by(|a, b| a.get(21..).cmp(&b.get(21..)));
            } else if db == "seen" {
                lines.sort_by_key(|l| l.replacen(&ipv4, "ip4.ip4.ip4.ip4", 1));
            }
            listing.extend(lines);
        }
        append(&self.work("test-stdout"))?
            .write_all(&latin1::encode(&listing))
            .map_err(|e| StepFail::Error(format!("writing test-stdout: {e}")))?;
        Ok(())
    }

    /// `background` + command: started with stdin from test-stdout, output
    /// to test-stdout / test-stderr-server; `killdaemon` stops it.
    pub(super) fn background(&mut self, line: &str, env: &[(String, String)]) -> StepResult {
        let line = self.subst.apply(line);
        self.note(&format!("background: {line}"));
        let mut cmd = self.command("/bin/sh", true);
        cmd.arg("-c").arg(latin1::os(&format!("exec {line}")));
        for (k, v) in env {
            cmd.env(k, latin1::os(v));
        }
        let stdin = fs::File::open(self.work("test-stdout"))
            .map_err(|e| StepFail::Error(format!("background: test-stdout: {e}")))?;
        let child = cmd
            .stdin(stdin)
            .stdout(append(&self.work("test-stdout"))?)
            .stderr(append(&self.work("test-stderr-server"))?)
            .spawn()
            .map_err(|e| StepFail::Error(format!("background {line}: {e}")))?;
        self.daemons.push(child.id() as i32);
        self.background.push(child);
        std::thread::sleep(Duration::from_millis(300));
        if let Some(c) = self.background.last_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                self.note(&format!(
                    "background command exited at once with {}",
                    exit_code(status)
                ));
            }
        }
        Ok(())
    }
}
