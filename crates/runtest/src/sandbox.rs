//! The per-test sandbox: fresh network, mount, UTS and PID namespaces made by
//! util-linux `unshare`, with `lo` up, the test address on a dummy
//! interface (or `lo` where the kernel has no dummy driver), TCP Fast Open
//! sysctls, a dotted host name and private `/etc/resolv.conf` and `/etc/hosts`.
//!
//! The outer runner re-executes itself through [`unshare_command`]; the inner
//! process (PID 1 of the new PID namespace) calls [`setup`] before anything
//! else, which first proves that it is not in the host's network namespace.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

/// Host name set inside the sandbox.
pub const HOSTNAME: &str = "testhost.oxim.example";
/// The sandbox's IPv4 address (RFC 2544 benchmarking range).
pub const HOST_IPV4: &str = "198.18.0.1";
/// The sandbox's IPv6 address (RFC 5180 benchmarking range).
pub const HOST_IPV6: &str = "2001:2::1";

/// PATH for the system tools the sandbox uses (`ip`, `dnsmasq`); as a normal
/// user /usr/sbin is often missing from PATH.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Failures while building the sandbox.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// We are still in the host's network namespace: refuse to touch anything.
    #[error(
        "refusing to configure the network: still in the host's network namespace (inode {0})"
    )]
    HostNamespace(u64),
    /// A namespace file could not be read.
    #[error("cannot read {path}: {source}")]
    Namespace {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// A setup command failed.
    #[error("sandbox setup: `{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status / stderr.
        detail: String,
    },
    /// A file operation failed.
    #[error("sandbox setup: {what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// Error.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("sandbox setup: {what}: {source}")]
    Sys {
        /// What we were doing.
        what: String,
        /// Error.
        source: nix::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Inode of a namespace link of the current process (e.g. `net`).
pub fn namespace_inode(kind: &str) -> Result<u64, SandboxError> {
    let path = PathBuf::from(format!("/proc/self/ns/{kind}"));
    fs::metadata(&path)
        .map(|m| m.ino())
        .map_err(|source| SandboxError::Namespace { path, source })
}

/// Whether the current process is root (in its user namespace).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The `unshare` invocation that runs `program args` in fresh namespaces.
/// As a normal user, a user namespace is added (`-r`); this works only where
/// unprivileged user namespaces are allowed.
pub fn unshare_command(program: &Path, args: &[String]) -> Command {
    let mut c = Command::new("unshare");
    if !is_root() {
        c.arg("--map-root-user");
    }
    c.args([
        "--net",
        "--mount",
        "--uts",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
    ]);
    c.arg(program);
    c.args(args);
    c
}

/// Run a setup command; its failure is an error.
fn run(cmd: &str, args: &[&str]) -> Result<(), SandboxError> {
    let out = Command::new(cmd)
        .args(args)
        .env("PATH", SYSTEM_PATH)
        .output()
        .map_err(|e| SandboxError::Command {
            command: format!("{cmd} {}", args.join(" ")),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Command {
            command: format!("{cmd} {}", args.join(" ")),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// What [`setup`] did, for the test log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupReport {
    /// Interface carrying the test addresses (`oxim0` or `lo`).
    pub interface: String,
    /// Lines describing the steps.
    pub notes: Vec<String>,
}

/// Configure the namespaces we are in. `host_netns` is the inode of the
/// network namespace the outer runner lives in; `etc_dir` receives the private
/// `resolv.conf` and `hosts` that are bind-mounted over `/etc`.
pub fn setup(host_netns: u64, etc_dir: &Path) -> Result<SetupReport, SandboxError> {
    let here = namespace_inode("net")?;
    if here == host_netns {
        return Err(SandboxError::HostNamespace(here));
    }
    let mut report = SetupReport::default();
    run("ip", &["link", "set", "lo", "up"])?;
    let dummy = run("ip", &["link", "add", "oxim0", "type", "dummy"]).is_ok();
    let dev = if dummy {
        run("ip", &["link", "set", "oxim0", "up"])?;
        "oxim0"
    } else {
        report
            .notes
            .push("no dummy interface support: test addresses live on lo".into());
        "lo"
    };
    report.interface = dev.to_string();
    run(
        "ip",
        &["addr", "add", &format!("{HOST_IPV4}/24"), "dev", dev],
    )?;
    run(
        "ip",
        &[
            "-6",
            "addr",
            "add",
            &format!("{HOST_IPV6}/64"),
            "dev",
            dev,
            "nodad",
        ],
    )?;
    for (key, value) in [
        ("net/ipv4/tcp_fastopen", "3"),
        ("net/ipv4/tcp_fastopen_blackhole_timeout_sec", "0"),
    ] {
        let path = Path::new("/proc/sys").join(key);
        if path.exists() {
            fs::write(&path, value).map_err(io_err(format!("writing {}", path.display())))?;
        } else {
            report.notes.push(format!("{} not present", path.display()));
        }
    }
    nix::unistd::sethostname(HOSTNAME).map_err(|source| SandboxError::Sys {
        what: "sethostname".into(),
        source,
    })?;
    fs::create_dir_all(etc_dir).map_err(io_err("creating etc dir"))?;
    let resolv = etc_dir.join("resolv.conf");
    let hosts = etc_dir.join("hosts");
    fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions attempts:1 timeout:2\n",
    )
    .map_err(io_err("writing resolv.conf"))?;
    fs::write(
        &hosts,
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .map_err(io_err("writing hosts"))?;
    for (src, dst) in [(&resolv, "/etc/resolv.conf"), (&hosts, "/etc/hosts")] {
        nix::mount::mount(
            Some(src.as_path()),
            dst,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| SandboxError::Sys {
            what: format!("bind-mounting {} on {dst}", src.display()),
            source,
        })?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_host_namespace() {
        let here = namespace_inode("net").unwrap();
        let dir = tempfile::tempdir().unwrap();
        match setup(here, dir.path()) {
            Err(SandboxError::HostNamespace(i)) => assert_eq!(i, here),
            other => panic!("expected refusal, got {other:?}"),
        }
        // Nothing was written.
        assert!(!dir.path().join("resolv.conf").exists());
    }

    #[test]
    fn unshare_command_shape() {
        let c = unshare_command(Path::new("/bin/true"), &["x".to_string()]);
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "--net",
            "--mount",
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing in {args:?}");
        }
        assert_eq!(
            args[args.len() - 2..],
            ["/bin/true".to_string(), "x".to_string()]
        );
    }
}
