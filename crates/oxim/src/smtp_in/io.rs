//! The session's byte stream and the writing of the session's replies with
//! deadlines.

use oxim_smtp::ServerSession;
use oxim_tls::MaybeTls;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// [`write_out`] that gives up at `deadline`: `Ok(false)` if it did.
pub async fn write_by<W: AsyncWrite + Unpin>(
    w: &mut W,
    sess: &mut ServerSession,
    batch: bool,
    deadline: Option<Instant>,
) -> std::io::Result<bool> {
    match deadline {
        Some(d) => match tokio::time::timeout_at(d, write_out(w, sess, batch)).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        },
        None => write_out(w, sess, batch).await.map(|()| true),
    }
}

pub async fn write_out<W: AsyncWrite + Unpin>(
    w: &mut W,
    sess: &mut ServerSession,
    batch: bool,
) -> std::io::Result<()> {
    let out = sess.take_output();
    if !out.is_empty() && !batch {
        w.write_all(&out).await?;
        w.flush().await?;
    }
    Ok(())
}

/// The session's byte stream: a TCP connection (plain until STARTTLS or
/// TLS on connect), or stdin/stdout for `-bs`/`-bS`.
pub enum ServerIo {
    Tcp(MaybeTls<TcpStream>),
    Std(tokio::io::Stdin, tokio::io::Stdout),
}

impl ServerIo {
    /// Input a client sent before it could have seen our banner, read
    /// without waiting (for `smtp_enforce_sync`). Plain TCP only.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let ServerIo::Tcp(MaybeTls::Plain(s)) = self else {
            return Vec::new();
        };
        let mut buf = vec![0u8; 4096];
        match s.try_read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                buf
            }
            Err(_) => Vec::new(),
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            ServerIo::Std(r, _) => std::pin::Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_shutdown(cx),
        }
    }
}
