//! oxim-net: TCP listeners and connectors with TCP Fast Open (RFC 7413) on both
//! sides, and an *honest* per-connection account of what TFO actually did.
//!
//! The platform split follows quinn-udp: the private `sys` module has one
//! submodule per OS. On Linux the real socket options are used
//! (`TCP_FASTOPEN` on listeners, `sendto` with
//! `MSG_FASTOPEN` on clients, `TCP_INFO` and the kernel's TCP metrics cache to
//! judge the outcome). Everywhere else the crate compiles, [`tfo_supported`]
//! returns `false`, listeners are plain and [`connect`] does a plain connect
//! reporting [`ClientTfo::NotTried`].
//!
//! What the outcomes mean, and the kernel evidence behind each of them, is
//! written down in `TFO-FINDINGS.md` next to this crate's `Cargo.toml`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tokio::io::AsyncReadExt;
//! let opts = oxim_net::ConnectOptions { try_tfo: true, ..Default::default() };
//! let mut conn = oxim_net::connect("127.0.0.1:25".parse().unwrap(), &opts).await?;
//! let mut banner = [0u8; 512];
//! let n = conn.stream.read(&mut banner).await?;
//! // The facts the log (` TFO`) and the metrics read: the kernel's outcome,
//! // and the banner's timing where the path is long enough to tell.
//! let facts = conn.facts();
//! let doubtful = facts.cookie_unconfirmed(Some(std::time::Instant::now()));
//! # let _ = (facts.tfo.is_tfo(), doubtful, n); Ok(()) }
//! ```
//!
//! This crate holds the facts only; the Exim log text (` TFO`, ` TFO*`,
//! `TFO=`) is written by oxim-log from these types.
#![warn(missing_docs)]

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

mod counters;
mod evidence;
mod facts;
mod lazy;
mod sys;
#[cfg(target_os = "linux")]
pub mod testns;

pub use counters::{TfoCounters, TfoCountersSnapshot};
pub use evidence::{CookieLookup, TfoEvidence};
pub use facts::{ConnectFacts, FirstByte, TIMING_MIN_RTT};
pub use lazy::TfoIo;
pub use sys::tcp_info;
pub use sys::TcpInfoProbe;

/// Whether this platform can do TCP Fast Open at all (Linux: the socket options
/// exist). Cheap: no syscall. Used for `-bV`'s `TCP_Fast_Open` and the
/// `_HAVE_TCP_FASTOPEN` macro.
///
/// Whether the running kernel has TFO *enabled* is a separate question (the
/// `net.ipv4.tcp_fastopen` sysctl, per network namespace): see
/// [`tfo_sysctl`].
pub fn tfo_supported() -> bool {
    sys::TFO_SUPPORTED
}

/// The value of `net.ipv4.tcp_fastopen` in the caller's network namespace
/// (bit 0 = client enabled, bit 1 = server enabled), or `None` where the
/// platform has no such setting or it cannot be read.
pub fn tfo_sysctl() -> Option<u32> {
    sys::tfo_sysctl()
}

/// What TFO did for a connection we accepted (server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerTfo {
    /// A normal three-way handshake (no cookie, a cookie request, or a rejected
    /// cookie).
    #[default]
    None,
    /// The client presented a valid cookie; the socket was created from the SYN
    /// (the server could speak before the handshake completed).
    Cookie,
    /// Valid cookie and the SYN also carried data that we accepted.
    CookieWithData,
}

impl ServerTfo {
    /// A short stable name, for debug output, metrics labels and the spool:
    /// `none`, `cookie`, `cookie-data`.
    pub fn name(self) -> &'static str {
        match self {
            ServerTfo::None => "none",
            ServerTfo::Cookie => "cookie",
            ServerTfo::CookieWithData => "cookie-data",
        }
    }

    /// The outcome [`ServerTfo::name`] names.
    pub fn from_name(name: &str) -> Option<ServerTfo> {
        [
            ServerTfo::None,
            ServerTfo::Cookie,
            ServerTfo::CookieWithData,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// True when the connection was a TFO connection (with or without data).
    pub fn is_tfo(self) -> bool {
        !matches!(self, ServerTfo::None)
    }

    /// Judge an accepted socket from its `TCP_INFO`, without counting it in
    /// [`TfoCounters::global`]. See [`server_tfo`].
    pub fn probe(sock: &impl AsFd) -> ServerTfo {
        sys::server_tfo(sock.as_fd())
    }
}

/// Displays as [`ServerTfo::name`].
impl fmt::Display for ServerTfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What TFO did for a connection we opened (client side).
///
/// Only [`ClientTfo::CookieAccepted`] and [`ClientTfo::DataAcked`] mean the
/// handshake really was a Fast Open one ([`ClientTfo::is_tfo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientTfo {
    /// TFO was not attempted (not asked for, unsupported platform, disabled
    /// by `net.ipv4.tcp_fastopen`, or suppressed by the kernel's blackhole
    /// detection).
    #[default]
    NotTried,
    /// We had no cookie for the server: the SYN carried a cookie request (and
    /// no data). A normal handshake; the next connection may use the cookie.
    CookieRequested,
    /// Our SYN carried a cookie (and no data) and the server did not reject
    /// it: its SYN-ACK neither replaced the cookie nor reported a failure. The
    /// server could send its banner one round trip earlier.
    ///
    /// Limit (kernel fact, see `TFO-FINDINGS.md`): a server that *ignores*
    /// cookies (TFO disabled on that listener or by sysctl after we cached its
    /// cookie, or its TFO queue full) answers exactly like one that accepts a
    /// data-less cookie. Only timing tells them apart:
    /// [`ConnectFacts::first_byte`].
    CookieAccepted,
    /// Our SYN carried a cookie but the server did not accept it (it sent a new
    /// cookie, did not acknowledge our SYN data, or the SYN had to be
    /// retransmitted without it). A normal handshake.
    CookieRejected,
    /// Our SYN carried a cookie and data, and the server acknowledged the data
    /// in its SYN-ACK.
    DataAcked,
}

impl ClientTfo {
    /// True only when the handshake really was a Fast Open one.
    pub fn is_tfo(self) -> bool {
        matches!(self, ClientTfo::CookieAccepted | ClientTfo::DataAcked)
    }

    /// A short stable name, for debug output and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            ClientTfo::NotTried => "not-tried",
            ClientTfo::CookieRequested => "cookie-requested",
            ClientTfo::CookieAccepted => "cookie-accepted",
            ClientTfo::CookieRejected => "cookie-rejected",
            ClientTfo::DataAcked => "data-acked",
        }
    }
}

impl fmt::Display for ClientTfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A listening socket and what happened when TFO was enabled on it.
#[derive(Debug)]
pub struct Listening {
    /// The bound, listening, non-blocking socket.
    pub listener: TcpListener,
    /// `None` when TFO was enabled (or not asked for); the error from
    /// `setsockopt(TCP_FASTOPEN)` otherwise. Not fatal: the listener works
    /// without TFO.
    pub tfo_error: Option<io::Error>,
}

/// Open a listening TCP socket: `SO_REUSEADDR`, `IPV6_V6ONLY` for IPv6
/// addresses, non-blocking, and `TCP_FASTOPEN` with queue length
/// `tfo_queue_len` set before `listen` (0 = no TFO).
///
/// Failure to enable TFO is not fatal: it is logged with `tracing::warn!` and
/// the listener is returned anyway. Use [`listen_detailed`] to see it.
pub fn listen(addr: SocketAddr, tfo_queue_len: u32, backlog: i32) -> io::Result<TcpListener> {
    let Listening {
        listener,
        tfo_error,
    } = listen_detailed(addr, tfo_queue_len, backlog)?;
    if let Some(e) = tfo_error {
        tracing::warn!(%addr, error = %e, "could not enable TCP Fast Open on listener");
    }
    Ok(listener)
}

/// Like [`listen`], but reports a failure to enable TFO instead of logging it.
pub fn listen_detailed(
    addr: SocketAddr,
    tfo_queue_len: u32,
    backlog: i32,
) -> io::Result<Listening> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    let tfo_error = if tfo_queue_len > 0 {
        sys::set_server_fastopen(sock.as_fd(), tfo_queue_len).err()
    } else {
        None
    };
    sock.listen(backlog)?;
    Ok(Listening {
        listener: sock.into(),
        tfo_error,
    })
}

/// Read the TFO-relevant `TCP_INFO` fields of any TCP socket (Linux; an
/// `Unsupported` error elsewhere).
pub fn tcp_info(sock: &impl AsFd) -> io::Result<TcpInfoProbe> {
    sys::get_tcp_info(sock.as_fd())
}

/// Set the server's TFO cookie key on a listening socket
/// (`setsockopt(TCP_FASTOPEN_KEY)`, 16 bytes). Cookies issued under another
/// key are then rejected. Without it the namespace-wide key
/// (`net.ipv4.tcp_fastopen_key`) is used.
pub fn set_fastopen_key(listener: &impl AsFd, key: &[u8; 16]) -> io::Result<()> {
    sys::set_fastopen_key(listener.as_fd(), key)
}

/// Judge an accepted connection: was it a Fast Open one? Counts the result in
/// [`TfoCounters::global`], so call it once per accepted connection (use
/// [`ServerTfo::probe`] to look without counting).
///
/// Linux ≥ 6.16 reports `TCPI_OPT_TFO_CHILD` for a socket created from a valid
/// cookie for its whole life, which this uses. On older kernels only a SYN
/// that carried data (`TCPI_OPT_SYN_DATA`) or a socket still in `SYN_RECV` can
/// be recognised: a data-less cookie connection whose handshake already
/// completed is then reported as [`ServerTfo::None`].
pub fn server_tfo(sock: &impl AsFd) -> ServerTfo {
    let outcome = ServerTfo::probe(sock);
    TfoCounters::global().record_server(outcome);
    outcome
}

/// Options for [`connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Try TCP Fast Open (`hosts_try_fastopen` matched).
    pub try_tfo: bool,
    /// Give up when the connection is not established within this time.
    pub timeout: Duration,
    /// Local address to bind to (`interface` option), port chosen by the kernel.
    pub bind: Option<IpAddr>,
    /// Data to put in the SYN when a cookie allows it. Usually empty for SMTP,
    /// where the server speaks first; e.g. a TLS ClientHello for TLS-on-connect.
    /// Whatever the kernel does not put in the SYN is sent right after the
    /// handshake, so all of it is always sent exactly once.
    pub syn_data: Vec<u8>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            try_tfo: false,
            timeout: Duration::from_secs(300),
            bind: None,
            syn_data: Vec::new(),
        }
    }
}

/// An established client connection and what TFO did for it.
#[derive(Debug)]
pub struct Connected {
    /// The connected stream; any `syn_data` has been sent in full.
    pub stream: tokio::net::TcpStream,
    client_tfo: ClientTfo,
    handshake: Duration,
    connected_at: Instant,
    syn_data_in_syn: usize,
    evidence: TfoEvidence,
}

impl Connected {
    /// What TFO did for this connection (judged when the handshake completed,
    /// from kernel state; see `TFO-FINDINGS.md`).
    pub fn client_tfo(&self) -> ClientTfo {
        self.client_tfo
    }

    /// Time from the first SYN to the completed handshake.
    pub fn handshake_time(&self) -> Duration {
        self.handshake
    }

    /// The facts kept with the stream once it is split off
    /// ([`TfoIo::facts`]).
    pub fn facts(&self) -> ConnectFacts {
        ConnectFacts::of(self)
    }

    /// Timing evidence, for a connection where the server speaks first:
    /// [`ConnectFacts::first_byte`] as a yes/no. `Some(true)` when the first
    /// byte (received at `first_byte_at`) came too early for a server that
    /// waited for our handshake ACK (proof that it used our cookie),
    /// `Some(false)` when it did not (no TFO, *or* a server slower than one
    /// round trip to write its banner), and `None` when the round trip is
    /// under [`TIMING_MIN_RTT`] and timing cannot tell anything.
    pub fn tfo_proven_by_first_byte(&self, first_byte_at: Instant) -> Option<bool> {
        match self.facts().first_byte(first_byte_at) {
            FirstByte::Early => Some(true),
            FirstByte::Late => Some(false),
            FirstByte::Unmeasurable => None,
        }
    }

    /// The path's round-trip time: the kernel's estimate after the handshake
    /// (from TCP timestamps, valid even when the SYN was retransmitted), else
    /// the handshake's duration.
    pub fn path_rtt(&self) -> Duration {
        match self.evidence.after {
            Some(p) if p.rtt_us > 0 => Duration::from_micros(p.rtt_us.into()),
            _ => self.handshake,
        }
    }

    /// When the handshake completed (the moment [`connect`] saw the socket
    /// connected).
    pub fn connected_at(&self) -> Instant {
        self.connected_at
    }

    /// How many bytes of `syn_data` the kernel put in the SYN (the rest was
    /// written after the handshake).
    pub fn syn_data_in_syn(&self) -> usize {
        self.syn_data_in_syn
    }

    /// The `TCP_INFO` fields read right after the handshake, when available.
    pub fn tcp_info(&self) -> Option<&TcpInfoProbe> {
        self.evidence.after.as_ref()
    }

    /// Everything the judgement in [`Connected::client_tfo`] was based on
    /// (for debug output and investigations).
    pub fn evidence(&self) -> &TfoEvidence {
        &self.evidence
    }

    /// Split into the stream and the outcome.
    pub fn into_parts(self) -> (tokio::net::TcpStream, ClientTfo) {
        (self.stream, self.client_tfo)
    }
}

/// Open a TCP connection to `addr`, with TCP Fast Open when `opts.try_tfo`
/// and the platform supports it, and judge the TFO outcome.
///
/// On Linux this sends the SYN with `sendto(MSG_FASTOPEN)` on an unconnected
/// non-blocking socket, handles `EINPROGRESS`, waits for the handshake (bounded
/// by `opts.timeout`, giving `ErrorKind::TimedOut`), then writes whatever part
/// of `opts.syn_data` did not fit in the SYN. The outcome is counted in
/// [`TfoCounters::global`].
pub async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> io::Result<Connected> {
    let fut = sys::connect(addr, opts);
    let connected = match tokio::time::timeout(opts.timeout, fut).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connection to {addr} timed out"),
            ))
        }
    };
    TfoCounters::global().record_client(connected.client_tfo);
    Ok(connected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        for t in [
            ServerTfo::None,
            ServerTfo::Cookie,
            ServerTfo::CookieWithData,
        ] {
            assert_eq!(ServerTfo::from_name(&t.to_string()), Some(t));
        }
        assert_eq!(ServerTfo::CookieWithData.to_string(), "cookie-data");
        assert_eq!(ServerTfo::from_name("TFO"), None);
        assert!(!ServerTfo::None.is_tfo());
        assert!(ServerTfo::CookieWithData.is_tfo());
    }

    #[test]
    fn client_tfo_only_when_accepted() {
        for (c, tfo) in [
            (ClientTfo::NotTried, false),
            (ClientTfo::CookieRequested, false),
            (ClientTfo::CookieAccepted, true),
            (ClientTfo::CookieRejected, false),
            (ClientTfo::DataAcked, true),
        ] {
            assert_eq!(c.is_tfo(), tfo, "{c}");
        }
    }

    #[test]
    fn supported_matches_platform() {
        assert_eq!(
            tfo_supported(),
            cfg!(all(target_os = "linux", not(oxim_net_force_fallback)))
        );
    }
}
