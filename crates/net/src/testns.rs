//! Test helper: run code inside a fresh, private network namespace with `lo`
//! up and TCP Fast Open enabled for client and server.
//!
//! A network namespace belongs to a thread, so [`run_in_new_netns`] spawns a
//! dedicated thread, moves only that thread into a new namespace and runs the
//! closure there. Threads and child processes it starts inherit the namespace;
//! the rest of the process (other tests) is unaffected. Build a
//! `tokio::runtime::Builder::new_current_thread()` runtime inside the closure
//! for async code. Needs root (`CAP_SYS_ADMIN`); without it the function
//! returns [`NetnsError::NotRoot`], which tests should turn into a failure with
//! a clear message, never a silent pass.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;

/// Why a namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Creating network namespaces needs root.
    #[error("creating a network namespace needs root (euid 0); run this test as root")]
    NotRoot,
    /// `unshare(CLONE_NEWNET)` failed.
    #[error("unshare(CLONE_NEWNET) failed: {0}")]
    Unshare(#[source] io::Error),
    /// Bringing `lo` up failed.
    #[error("could not bring lo up: {0}")]
    LoopbackUp(#[source] io::Error),
    /// Writing a sysctl failed.
    #[error("could not set sysctl {name}: {source}")]
    Sysctl {
        /// The sysctl path under `/proc/sys`.
        name: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The thread could not be spawned.
    #[error("could not spawn the namespace thread: {0}")]
    Spawn(#[source] io::Error),
    /// The closure panicked (the panic message is kept when it was a string).
    #[error("the code run in the namespace panicked: {0}")]
    Panicked(String),
}

/// Run `f` on a new thread inside a new network namespace prepared by
/// [`prepare_current_thread`], and return its result.
pub fn run_in_new_netns<T, F>(f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !nix::unistd::geteuid().is_root() {
        return Err(NetnsError::NotRoot);
    }
    let handle = std::thread::Builder::new()
        .name("oxim-netns".into())
        .spawn(move || -> Result<T, NetnsError> {
            prepare_current_thread()?;
            Ok(f())
        })
        .map_err(NetnsError::Spawn)?;
    match handle.join() {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            Err(NetnsError::Panicked(msg))
        }
    }
}

/// Move the calling thread into a new network namespace, bring `lo` up and set
/// `net.ipv4.tcp_fastopen=3` and `net.ipv4.tcp_fastopen_blackhole_timeout_sec=0`.
/// Only call this on a thread dedicated to the namespace (or in a child
/// process).
pub fn prepare_current_thread() -> Result<(), NetnsError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(NetnsError::NotRoot);
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetnsError::Unshare(e.into()))?;
    loopback_up().map_err(NetnsError::LoopbackUp)?;
    set_sysctl("net/ipv4/tcp_fastopen", "3")?;
    set_sysctl("net/ipv4/tcp_fastopen_blackhole_timeout_sec", "0")?;
    Ok(())
}

/// Write a sysctl of the calling thread's network namespace, e.g.
/// `set_sysctl("net/ipv4/tcp_fastopen", "3")`.
pub fn set_sysctl(name: &str, value: &str) -> Result<(), NetnsError> {
    std::fs::write(format!("/proc/sys/{name}"), value).map_err(|source| NetnsError::Sysctl {
        name: name.to_owned(),
        source,
    })
}

fn loopback_up() -> io::Result<()> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is a plain C struct for which all-zero bytes are valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the flags
    // into `req`, which is a valid, exclusively borrowed `ifreq`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `TcpExt` counters of the calling thread's network namespace (from
/// `/proc/thread-self/net/netstat`), e.g. `TCPFastOpenActive`,
/// `TCPFastOpenPassive`, `TCPFastOpenCookieReqd`, `TCPFastOpenPassiveFail`.
pub fn tcp_ext_counters() -> io::Result<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    Ok(parse_netstat(&text, "TcpExt:"))
}

fn parse_netstat(text: &str, prefix: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let mut out = BTreeMap::new();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        for (n, v) in names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
        {
            if let Ok(v) = v.parse() {
                out.insert(n.to_owned(), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_netstat_pairs() {
        let text =
            "TcpExt: SyncookiesSent TCPFastOpenActive\nTcpExt: 0 7\nIpExt: InNoRoutes\nIpExt: 3\n";
        let m = parse_netstat(text, "TcpExt:");
        assert_eq!(m.get("TCPFastOpenActive"), Some(&7));
        assert_eq!(m.get("SyncookiesSent"), Some(&0));
        assert!(!m.contains_key("InNoRoutes"));
    }
}
