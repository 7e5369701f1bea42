//! Streams that become TLS in place (STARTTLS). For TLS on connect with TCP
//! Fast Open the transport is oxim-net's lazily connecting `TfoIo`, whose
//! first write (the ClientHello) rides in the SYN when a cookie is cached.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
