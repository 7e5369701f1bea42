//! Preparing the work directory (the Exim tree's auxiliary files,
//! substituted; the `exim` links; the caller's ownership), the test DNS
//! server, and the environment of the commands a script runs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use super::{append, fail, Runner, StepFail, StepResult};
use crate::dns;
use crate::latin1;
use crate::sandbox;
use crate::script::Script;

/// util-linux `setpriv` (absolute, as the commands' PATH is the script's).
fn setpriv() -> &'static str {
    ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("setpriv")
}

impl Runner<'_> {
    pub(super) fn prepare(&mut self, script: &Script) -> StepResult {
        for d in ["spool", "test-mail", "aux-var", "dnszones", "bin"] {
            fs::create_dir_all(self.work(d))
                .map_err(|e| StepFail::Fail(format!("creating {d}: {e}")))?;
        }
        for f in ["test-stdout", "test-stderr"] {
            append(&self.work(f))?;
        }
        if let Some((uid, gid)) = self.caller_ids {
            // The shell lines of a script, run as the caller, append to
            // test-stdout and test-stderr themselves.
            for d in [
                "",
                "spool",
                "test-mail",
                "aux-var",
                "test-stdout",
                "test-stderr",
            ] {
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
        if let Some(u) = &self.cfg.users {
            // As Exim's runtest: the work directory is the caller's and
            // readable by all; the spool is the exim user's, mode 0755.
            let exim = &u.users.exim;
            let spool = self.work("spool");
            nix::unistd::chown(
                &spool,
                Some(nix::unistd::Uid::from_raw(exim.uid)),
                Some(nix::unistd::Gid::from_raw(exim.gid)),
            )
            .map_err(|e| {
                StepFail::Fail(format!("chown {} to the exim user: {e}", spool.display()))
            })?;
            use std::os::unix::fs::PermissionsExt;
            for d in ["", "spool"] {
                fs::set_permissions(self.work(d), fs::Permissions::from_mode(0o755))
                    .map_err(|e| StepFail::Fail(format!("chmod 0755 {d}: {e}")))?;
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
        // as in Exim's test directory; it is not substituted (the links the
        // copy lost, such as the hashed names of a CA directory, are restored).
        let fixed = tree.join("aux-fixed");
        if fixed.is_dir() {
            crate::tree::link_tree(&fixed, &self.work("aux-fixed"))
                .map_err(|e| StepFail::Fail(format!("linking aux-fixed: {e}")))?;
        }
        let bin = self.work("bin");
        let (exim, exim_exim) = match &self.cfg.users {
            Some(u) => (u.exim.clone(), u.exim_exim.clone()),
            None => (self.cfg.exim.clone(), self.cfg.exim.clone()),
        };
        symlink(&exim, bin.join("exim"))
            .map_err(|e| StepFail::Fail(format!("linking exim: {e}")))?;
        // Exim's `exim_exim` is its binary owned by the Exim user.
        symlink(&exim_exim, bin.join("exim_exim"))
            .map_err(|e| StepFail::Fail(format!("linking exim_exim: {e}")))?;
        // Exim's hints utilities are the oxim binary called by their names.
        for util in super::HINTS_UTILITIES {
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

    pub(super) fn copy_substituted(&self, from: &Path, to: &Path) -> StepResult {
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
    pub(super) fn start_dns(&mut self) -> StepResult {
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

    /// A command the script runs, with its environment (Exim cuts it
    /// down, see [`Runner::base_env`]); with `as_caller`, run as the
    /// caller when there is one (`--caller`, or the sandbox's own), with
    /// the caller's supplementary groups (the sandbox's caller is in the
    /// exim group, as Exim's runtest requires of its caller): through
    /// util-linux `setpriv`, as the standard library's user switch drops
    /// them.
    pub(super) fn command(&self, program: impl AsRef<std::ffi::OsStr>, as_caller: bool) -> Command {
        let mut cmd = match self.caller_ids {
            Some((uid, gid)) if as_caller => {
                let mut c = Command::new(setpriv());
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            _ => Command::new(program),
        };
        self.base_env(&mut cmd);
        cmd
    }

    pub(super) fn base_env(&self, cmd: &mut Command) {
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
        if let Some(u) = &self.cfg.users {
            cmd.env("OXIM_TEST_EXIM_USER", &u.users.exim.name);
        }
        for (k, v) in std::env::vars() {
            if k.starts_with("EXIM_TEST_") && k != "EXIM_TEST_NUMBER" {
                cmd.env(k, v);
            }
        }
        cmd.current_dir(&self.cfg.work);
    }
}
