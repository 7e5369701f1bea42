//! Streams that become TLS in place (STARTTLS), and a lazily connecting TCP
//! stream whose first write goes into the SYN (TLS on connect with TCP Fast
//! Open: the ClientHello rides in the SYN when a cookie is cached).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use oxim_net::{ClientTfo, ConnectOptions, Connected};
use rustls::pki_types::ServerName;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::{exim_cipher, ClientTls, TlsError};

/// What was negotiated, for `X=`, `CV=`, `P=esmtps` and `$tls_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLS1.3:TLS_AES_256_GCM_SHA384:256`.
    pub cipher: String,
    /// `TLS1.3`.
    pub version: String,
    /// The suite's standard (IANA) name, `TLS_AES_256_GCM_SHA384` (Exim's
    /// `$tls_in_cipher_std`, used in `Received:`).
    pub cipher_std: String,
    /// The peer's certificate passed the checks (client side); `None` when
    /// no certificate was asked for (server side), so no `CV=` is logged.
    pub certificate_verified: Option<bool>,
}

/// A stream that is plain until TLS starts on it.
pub enum MaybeTls<S> {
    /// Not (yet) TLS.
    Plain(S),
    /// We are the TLS client.
    Client(Box<client::TlsStream<S>>),
    /// We are the TLS server.
    Server(Box<server::TlsStream<S>>),
    /// A handshake failed; the connection is unusable.
    Broken,
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection lost in TLS setup")
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// TLS is up.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Client(_) | MaybeTls::Server(_))
    }

    /// The underlying transport.
    pub fn get_ref(&self) -> Option<&S> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Client(t) => Some(t.get_ref().0),
            MaybeTls::Server(t) => Some(t.get_ref().0),
            MaybeTls::Broken => None,
        }
    }

    /// Run a server handshake on the plain stream. With `early`, those bytes
    /// (the SMTP banner) are queued before the handshake and, with a
    /// configuration from [`crate::ServerTls::config`]`(true)`, leave with
    /// the server's handshake flight.
    pub async fn start_server(
        &mut self,
        config: Arc<ServerConfig>,
        early: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<TlsSession, TlsError> {
        let MaybeTls::Plain(s) = std::mem::replace(self, MaybeTls::Broken) else {
            return Err(TlsError::NotPlain);
        };
        let acceptor = TlsAcceptor::from(config);
        let early = early.map(<[u8]>::to_vec);
        let fut = acceptor.accept_with(s, move |conn| {
            if let Some(b) = early {
                use std::io::Write;
                // Buffered by rustls until the keys allow sending it.
                let _ = conn.writer().write_all(&b);
            }
        });
        let tls = match tokio::time::timeout(timeout, fut).await {
            Err(_) => return Err(TlsError::Handshake("timed out".into())),
            Ok(Err(e)) => return Err(TlsError::Handshake(e.to_string())),
            Ok(Ok(t)) => t,
        };
        let cipher = exim_cipher(tls.get_ref().1).unwrap_or_default();
        let version = cipher.split(':').next().unwrap_or_default().to_string();
        let cipher_std = standard_name(tls.get_ref().1);
        *self = MaybeTls::Server(Box::new(tls));
        Ok(TlsSession {
            cipher,
            version,
            cipher_std,
            certificate_verified: None,
        })
    }

    /// Run a client handshake with the server named `host` (a DNS name or
    /// an address; used for the certificate name check).
    pub async fn start_client(
        &mut self,
        tls: &ClientTls,
        host: &str,
        timeout: Duration,
    ) -> Result<TlsSession, (TlsError, Option<S>)> {
        let MaybeTls::Plain(s) = std::mem::replace(self, MaybeTls::Broken) else {
            return Err((TlsError::NotPlain, None));
        };
        // On failure the transport comes back with the error, so that the
        // caller can tell a failed connection (TLS on connect) from a failed
        // handshake.
        let name = server_name(host);
        let connector = TlsConnector::from(tls.config.clone());
        let fut = connector.connect(name.clone(), s).into_fallible();
        let t = match tokio::time::timeout(timeout, fut).await {
            Err(_) => return Err((TlsError::Handshake("timed out".into()), None)),
            Ok(Err((e, io))) => return Err((TlsError::Io(e), Some(io))),
            Ok(Ok(t)) => t,
        };
        let cipher = exim_cipher(t.get_ref().1).unwrap_or_default();
        let version = cipher.split(':').next().unwrap_or_default().to_string();
        let verified = tls.verified(t.get_ref().1, &name);
        let cipher_std = standard_name(t.get_ref().1);
        *self = MaybeTls::Client(Box::new(t));
        Ok(TlsSession {
            cipher,
            version,
            cipher_std,
            certificate_verified: Some(verified),
        })
    }
}

fn standard_name(c: &rustls::CommonState) -> String {
    c.negotiated_cipher_suite()
        .map(|s| crate::names::standard_suite_name(s.suite()))
        .unwrap_or_default()
}

/// The name to check the certificate against: a DNS name when `host` is
/// one, else an IP address, else a placeholder that matches nothing.
fn server_name(host: &str) -> ServerName<'static> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name is valid"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Client(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            MaybeTls::Server(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Client(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            MaybeTls::Server(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Client(t) => Pin::new(t.as_mut()).poll_flush(cx),
            MaybeTls::Server(t) => Pin::new(t.as_mut()).poll_flush(cx),
            MaybeTls::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Client(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            MaybeTls::Server(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            MaybeTls::Broken => Poll::Ready(Ok(())),
        }
    }
}

/// What the TCP connection did (for ` TFO`/` TFO*` and `+tfo_detail`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectFacts {
    /// TFO outcome as judged by oxim-net.
    pub tfo: ClientTfo,
    /// Path round-trip time.
    pub rtt: Duration,
    /// When the handshake completed.
    pub connected_at: Instant,
}

impl ConnectFacts {
    fn of(c: &Connected) -> ConnectFacts {
        ConnectFacts {
            tfo: c.client_tfo(),
            rtt: c.path_rtt(),
            connected_at: c.connected_at(),
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Connected>> + Send>>;

enum TfoState {
    Idle(SocketAddr, ConnectOptions),
    Connecting(ConnectFuture, usize),
    Ready(TcpStream),
    Failed,
}

/// A TCP stream that connects on its first write, putting that write's
/// bytes into the SYN when TCP Fast Open allows (the kernel sends whatever
/// does not fit right after the handshake). Wrapped in a TLS client stream,
/// the first write is the ClientHello.
pub struct TfoIo {
    state: TfoState,
    facts: Option<ConnectFacts>,
}

impl TfoIo {
    /// Not connected yet: `addr` with `opts` (`syn_data` is replaced by the
    /// first write).
    pub fn lazy(addr: SocketAddr, opts: ConnectOptions) -> TfoIo {
        TfoIo {
            state: TfoState::Idle(addr, opts),
            facts: None,
        }
    }

    /// Already connected.
    pub fn connected(c: Connected) -> TfoIo {
        let facts = ConnectFacts::of(&c);
        let (stream, _) = c.into_parts();
        TfoIo {
            state: TfoState::Ready(stream),
            facts: Some(facts),
        }
    }

    /// The connection's facts, once connected.
    pub fn facts(&self) -> Option<ConnectFacts> {
        self.facts
    }

    /// The TCP stream, once connected.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.state {
            TfoState::Ready(s) => Some(s),
            _ => None,
        }
    }

    fn poll_connect(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match &mut self.state {
                TfoState::Idle(addr, opts) => {
                    let addr = *addr;
                    let mut opts = opts.clone();
                    opts.syn_data = data.to_vec();
                    let n = data.len();
                    let fut = Box::pin(async move { oxim_net::connect(addr, &opts).await });
                    self.state = TfoState::Connecting(fut, n);
                }
                TfoState::Connecting(fut, n) => {
                    let n = *n;
                    match fut.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            self.state = TfoState::Failed;
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(c)) => {
                            self.facts = Some(ConnectFacts::of(&c));
                            let (stream, _) = c.into_parts();
                            let _ = stream.set_nodelay(true);
                            self.state = TfoState::Ready(stream);
                            // All of the first write was sent (in the SYN or
                            // right after the handshake).
                            return Poll::Ready(Ok(n));
                        }
                    }
                }
                TfoState::Ready(_) | TfoState::Failed => unreachable!("checked by callers"),
            }
        }
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "not connected")
}

impl AsyncRead for TfoIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            TfoState::Ready(s) => Pin::new(s).poll_read(cx, buf),
            _ => Poll::Ready(Err(not_connected())),
        }
    }
}

impl AsyncWrite for TfoIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.state {
            TfoState::Ready(s) => Pin::new(s).poll_write(cx, buf),
            TfoState::Failed => Poll::Ready(Err(not_connected())),
            _ => this.poll_connect(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.state {
            TfoState::Ready(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TfoState::Failed => Poll::Ready(Err(not_connected())),
            // The whole first flight goes into the SYN, not just its first
            // slice.
            _ => {
                let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
                this.poll_connect(cx, &all)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            TfoState::Ready(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            TfoState::Ready(s) => Pin::new(s).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
