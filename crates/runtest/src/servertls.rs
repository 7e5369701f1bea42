//! The scripted server's connections: TCP or unix-domain, and TLS started
//! on a TCP connection by the script's `*starttls` line (Exim's `server
//! -tls CERT KEY`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CipherSuite, ServerConfig, ServerConnection, StreamOwned};

/// One accepted connection of the scripted server.
pub enum ServerConn {
    /// Plain TCP.
    Tcp(TcpStream),
    /// Unix-domain stream socket.
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// Left behind by a failed TLS start.
    Closed,
}

impl Read for ServerConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ServerConn::Tcp(s) => s.read(buf),
            ServerConn::Unix(s) => s.read(buf),
            ServerConn::Tls(s) => s.read(buf),
            ServerConn::Closed => Ok(0),
        }
    }
}

impl Write for ServerConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ServerConn::Tcp(s) => s.write(buf),
            ServerConn::Unix(s) => s.write(buf),
            ServerConn::Tls(s) => s.write(buf),
            ServerConn::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            ServerConn::Tcp(s) => s.flush(),
            ServerConn::Unix(s) => s.flush(),
            ServerConn::Tls(s) => s.flush(),
            ServerConn::Closed => Ok(()),
        }
    }
}

/// A connection the script's `*starttls` can switch to TLS.
pub trait StartTls: Read + Write {
    /// Run the server side of a TLS handshake on this connection and
    /// return the negotiated cipher in OpenSSL's spelling.
    /// `early` holds bytes of the handshake already read from it.
    fn start_tls(&mut self, config: Option<&Arc<ServerConfig>>, early: &[u8])
        -> io::Result<String>;
}

impl StartTls for ServerConn {
    fn start_tls(
        &mut self,
        config: Option<&Arc<ServerConfig>>,
        early: &[u8],
    ) -> io::Result<String> {
        let Some(config) = config else {
            return Err(io::Error::other("*starttls without -tls CERT KEY"));
        };
        let tcp = match std::mem::replace(self, ServerConn::Closed) {
            ServerConn::Tcp(s) => s,
            other => {
                *self = other;
                return Err(io::Error::other("*starttls needs a plain TCP connection"));
            }
        };
        let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        let mut early = early;
        while !early.is_empty() {
            conn.read_tls(&mut early)?;
            conn.process_new_packets().map_err(io::Error::other)?;
        }
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        let cipher = tls
            .conn
            .negotiated_cipher_suite()
            .map(|s| openssl_name(s.suite()))
            .unwrap_or_default();
        *self = ServerConn::Tls(Box::new(tls));
        Ok(cipher)
    }
}

/// OpenSSL's name for a cipher suite, as Exim's `server` prints it.
fn openssl_name(s: CipherSuite) -> String {
    let name = match s {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        other => return format!("{other:?}"),
    };
    name.to_string()
}

/// Server TLS settings from a PEM certificate (chain) file and key file.
pub fn config(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| io::Error::other(format!("{}: {e:?}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io::Error::other(format!("{}: {e:?}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| io::Error::other(format!("{}: {e:?}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(cfg))
}

impl<T: StartTls + ?Sized> StartTls for &mut T {
    fn start_tls(
        &mut self,
        config: Option<&Arc<ServerConfig>>,
        early: &[u8],
    ) -> io::Result<String> {
        (**self).start_tls(config, early)
    }
}
