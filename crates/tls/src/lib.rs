//! oxim-tls: TLS for oxim's SMTP server and smtp transport, on rustls (ring
//! provider).
//!
//! What lives here, so that the daemon and the transport only need small
//! hooks:
//! - loading certificates and keys from PEM files, including Exim's usual
//!   combined file (key and certificate in one, `tls_privatekey` unset);
//! - building rustls configurations from Exim options (server:
//!   `tls_certificate`/`tls_privatekey`; client: `tls_verify_certificates`,
//!   `tls_verify_cert_hostnames`, verification required or only tried);
//! - the `X=` text as Exim with OpenSSL writes it
//!   (`TLS1.3:TLS_AES_256_GCM_SHA384:256`) and `CV=`;
//! - streams that switch from plain to TLS in place (STARTTLS), and a TCP
//!   connector that puts the TLS ClientHello into the SYN (TLS on connect with
//!   TCP Fast Open).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod der;
mod names;
mod pem;
mod stream;
mod verify;

pub use config::{client_config_for_tests, ClientTls, ClientTlsOptions, RootSource, ServerTls};
pub use names::{exim_cipher, openssl_suite_name, standard_suite_name, suite_bits, version_name};
pub use pem::{load_certs, load_key};
pub use stream::{MaybeTls, TlsSession};

/// Errors from setting up TLS or running a handshake.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{0}")]
    Files(String),
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("{0}")]
    Config(String),
    /// An I/O error during the handshake: the TCP connection could not be
    /// made (TLS on connect), or the handshake failed (rustls errors come as
    /// `InvalidData`).
    #[error("{}", crate::pem::strip_os_error(.0))]
    Io(std::io::Error),
    /// The handshake failed (or timed out).
    #[error("{0}")]
    Handshake(String),
    /// The stream is not in a state where TLS can start (already TLS, or
    /// lost by an earlier failure).
    #[error("TLS cannot start on this connection")]
    NotPlain,
}
