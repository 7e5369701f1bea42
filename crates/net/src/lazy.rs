//! A TCP stream that connects on its first write, so that the first write
//! can ride in the SYN (TLS on connect with TCP Fast Open: the ClientHello).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{ConnectFacts, ConnectOptions, Connected};

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
                    let fut = Box::pin(async move { crate::connect(addr, &opts).await });
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
