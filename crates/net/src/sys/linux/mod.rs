//! Linux: the real TCP Fast Open.

mod metrics;

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::AsyncWriteExt;

use super::tcp_info::{TcpInfoProbe, TCP_SYN_RECV};
use crate::evidence::{judge_client, CookieLookup, TfoEvidence};
use crate::{ConnectOptions, Connected, ServerTfo};

use metrics::fastopen_cookie;

pub(crate) const TFO_SUPPORTED: bool = true;

/// Read `net.ipv4.tcp_fastopen` of the calling thread's network namespace.
pub(crate) fn tfo_sysctl() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `getsockopt(TCP_INFO)`: the one raw call the crate makes for probing.
pub(crate) fn get_tcp_info(fd: BorrowedFd<'_>) -> io::Result<TcpInfoProbe> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `fd` is a valid open descriptor for the borrow's lifetime; `buf`
    // is writable for `len` bytes and `len` points to a live socklen_t that the
    // kernel updates to the number of bytes written (never more than given).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = usize::try_from(len).unwrap_or(0).min(buf.len());
    Ok(TcpInfoProbe::parse(&buf[..len]))
}

/// `setsockopt(TCP_FASTOPEN, qlen)` on a socket about to listen.
pub(crate) fn set_server_fastopen(fd: BorrowedFd<'_>, qlen: u32) -> io::Result<()> {
    let qlen = libc::c_int::try_from(qlen)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TFO queue length too large"))?;
    set_int_opt(fd, libc::TCP_FASTOPEN, qlen)
}

/// `setsockopt(TCP_FASTOPEN_KEY)` with one 16-byte key.
pub(crate) fn set_fastopen_key(fd: BorrowedFd<'_>, key: &[u8; 16]) -> io::Result<()> {
    // SAFETY: `fd` is valid for the borrow; `key` is a readable 16-byte array
    // and its exact length is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_FASTOPEN_KEY,
            key.as_ptr().cast(),
            key.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int_opt(fd: BorrowedFd<'_>, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is valid for the borrow; the option value is a c_int living
    // on the stack for the duration of the call, and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            opt,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Server judgement from `TCP_INFO` (see [`crate::server_tfo`]).
pub(crate) fn server_tfo(fd: BorrowedFd<'_>) -> ServerTfo {
    match get_tcp_info(fd) {
        Ok(p) => judge_server(&p),
        Err(_) => ServerTfo::None,
    }
}

pub(crate) fn judge_server(p: &TcpInfoProbe) -> ServerTfo {
    // `TCPI_OPT_SYN_DATA` on an accepted socket is only ever set for a child
    // created from a valid cookie whose SYN carried data.
    if p.syn_data() {
        ServerTfo::CookieWithData
    } else if p.tfo_child() || p.state == TCP_SYN_RECV {
        // SYN_RECV on an accepted socket: pre-6.16 sign of a TFO child whose
        // handshake has not completed yet.
        ServerTfo::Cookie
    } else {
        ServerTfo::None
    }
}

/// The local address the kernel would use to reach `dst` (a UDP `connect`
/// sends no packet, it only consults the routing table).
fn route_source(dst: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = match dst {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let udp = UdpSocket::bind(any).ok()?;
    let port = if dst.port() == 0 { 9 } else { dst.port() };
    udp.connect(SocketAddr::new(dst.ip(), port)).ok()?;
    Some(udp.local_addr().ok()?.ip())
}

fn in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

pub(crate) async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> io::Result<Connected> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    if let Some(ip) = opts.bind {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    let dst = SockAddr::from(addr);
    let start = Instant::now();

    let mut evidence = TfoEvidence {
        tried: false,
        at_send: None,
        after: None,
        cookie_before: CookieLookup::Unknown,
        cookie_after: CookieLookup::Unknown,
    };
    let mut in_syn = 0usize;
    let mut source = None;
    if opts.try_tfo {
        source = opts.bind.or_else(|| route_source(addr));
        evidence.cookie_before = fastopen_cookie(source, addr.ip());
        match sock.send_to_with_flags(
            &opts.syn_data,
            &dst,
            libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL,
        ) {
            Ok(n) => {
                evidence.tried = true;
                in_syn = n;
            }
            Err(e) if in_progress(&e) => evidence.tried = true,
            // Client TFO disabled by `net.ipv4.tcp_fastopen`: plain connect.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                evidence.cookie_before = CookieLookup::Unknown;
                start_connect(&sock, &dst)?;
            }
            Err(e) => return Err(e),
        }
        if evidence.tried {
            evidence.at_send = get_tcp_info(sock.as_fd()).ok();
        }
    } else {
        start_connect(&sock, &dst)?;
    }

    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(sock))?;
    wait_connected(&stream).await?;
    let connected_at = Instant::now();
    let handshake = connected_at.duration_since(start);

    evidence.after = get_tcp_info(stream.as_fd()).ok();
    if evidence.tried && !matches!(evidence.cookie_before, CookieLookup::Unknown) {
        let local = stream.local_addr().ok().map(|a| a.ip());
        if local.is_some() && local != source {
            // Routed from another source than predicted: the "before" lookup
            // was about another cache entry and tells nothing.
            evidence.cookie_before = CookieLookup::Unknown;
        } else {
            evidence.cookie_after = fastopen_cookie(source, addr.ip());
        }
    }
    let client_tfo = judge_client(&evidence);
    tracing::debug!(%addr, ?evidence, %client_tfo, "TFO client judgement");

    let mut stream = stream;
    if let Some(rest) = opts.syn_data.get(in_syn..) {
        if !rest.is_empty() {
            stream.write_all(rest).await?;
        }
    }
    Ok(Connected {
        stream,
        client_tfo,
        handshake,
        connected_at,
        syn_data_in_syn: in_syn,
        evidence,
    })
}

/// Wait until a non-blocking connect has completed: writable, no pending
/// error, and a peer. A readiness event that finds the socket still
/// connecting is treated as spurious (its readiness is cleared, no spinning).
async fn wait_connected(stream: &tokio::net::TcpStream) -> io::Result<()> {
    loop {
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        let r = stream.try_io(tokio::io::Interest::WRITABLE, || match stream.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e),
        });
        match r {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn start_connect(sock: &Socket, dst: &SockAddr) -> io::Result<()> {
    match sock.connect(dst) {
        Ok(()) => Ok(()),
        Err(e) if in_progress(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tcp_info::{TCPI_OPT_SYN_DATA, TCPI_OPT_TFO_CHILD};
    use super::*;

    #[test]
    fn server_decision_table() {
        let p = |state, options| TcpInfoProbe {
            state,
            options,
            ..Default::default()
        };
        assert_eq!(judge_server(&p(1, 0)), ServerTfo::None);
        assert_eq!(judge_server(&p(1, TCPI_OPT_TFO_CHILD)), ServerTfo::Cookie);
        assert_eq!(judge_server(&p(TCP_SYN_RECV, 0)), ServerTfo::Cookie);
        assert_eq!(
            judge_server(&p(1, TCPI_OPT_TFO_CHILD | TCPI_OPT_SYN_DATA)),
            ServerTfo::CookieWithData
        );
    }
}
