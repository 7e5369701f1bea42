//! A setuid-root copy of oxim run as `nobody`, for the tests of an oxim
//! installed setuid (`tests/privilege.rs`, `tests/hostile_advisories.rs`).
//! Needs root (mount namespaces, setpriv).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::common::{oxim_bin, TestDir};

/// Let other users reach the test directory (tempdirs are 0700).
pub fn open_up(dir: &TestDir) {
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A setuid-root copy of oxim in a world-reachable directory, with a fake
/// `/etc` (mounted in a private mount namespace) holding `/etc/oxim`.
pub struct Setuid {
    pub dir: TestDir,
}

impl Setuid {
    pub fn new() -> Setuid {
        let dir = TestDir::new();
        open_up(&dir);
        let p = dir.path();
        std::fs::create_dir(p.join("bin")).unwrap();
        std::fs::copy(oxim_bin(), p.join("bin/oxim")).unwrap();
        std::fs::set_permissions(p.join("bin/oxim"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        // etc/: every entry of the real /etc (reached through realetc/,
        // where it is mounted), plus oxim/.
        std::fs::create_dir(p.join("realetc")).unwrap();
        std::fs::create_dir_all(p.join("etc/oxim")).unwrap();
        for e in std::fs::read_dir("/etc").unwrap() {
            let name = e.unwrap().file_name();
            if name != "oxim" {
                std::os::unix::fs::symlink(
                    p.join("realetc").join(&name),
                    p.join("etc").join(&name),
                )
                .unwrap();
            }
        }
        Setuid { dir }
    }

    /// A root-owned configuration file readable only by root.
    pub fn private_conf(&self, rel: &str, spool: &str) -> String {
        let path = self.dir.write(rel, &format!("spool_directory = {spool}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }

    /// Run the setuid copy as `nobody` in the namespace.
    pub fn run_as_nobody(&self, args: &[&str]) -> Output {
        let script = r#"set -e
t=$1; shift
mount --bind /etc "$t/realetc"
mount --bind "$t/etc" /etc
exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$t/bin/oxim" "$@""#;
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(self.dir.path())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run unshare")
    }

    /// [`Setuid::run_as_nobody`] with `input` on the standard input.
    pub fn run_as_nobody_with(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let script = r#"set -e
t=$1; shift
mount --bind /etc "$t/realetc"
mount --bind "$t/etc" /etc
exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$t/bin/oxim" "$@""#;
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(self.dir.path())
            .args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run unshare");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().expect("wait")
    }
}
