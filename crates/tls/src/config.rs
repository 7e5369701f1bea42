//! rustls configurations built from Exim options.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::ClientConnection;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ServerConfig};

use crate::verify::ExiVerifier;
use crate::{load_certs, load_key, TlsError};

/// The provider: ring, with rustls's suite order, which puts AES-256-GCM
/// first for both TLS 1.3 and TLS 1.2.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: `tls_certificate` and `tls_privatekey`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    normal: Arc<ServerConfig>,
    early: Arc<ServerConfig>,
}

impl ServerTls {
    /// Load the certificate chain from `cert` and the key from `key`
    /// (Exim's default for an unset `tls_privatekey`: the certificate file,
    /// which then holds both).
    pub fn from_files(cert: &Path, key: Option<&Path>) -> Result<ServerTls, TlsError> {
        let chain = load_certs(cert)?;
        let key = load_key(key.unwrap_or(cert))?;
        Self::from_parts(chain, key)
    }

    /// A certificate made up for `name` (self-signed, ECDSA P-256, fresh
    /// key), as Exim uses when `tls_certificate` is unset.
    pub fn self_signed(name: &str) -> Result<ServerTls, TlsError> {
        let fail = |e: rcgen::Error| TlsError::Config(format!("self-signed certificate: {e}"));
        let key = rcgen::KeyPair::generate().map_err(fail)?;
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .map_err(fail)?
            .self_signed(&key)
            .map_err(fail)?;
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        Self::from_parts(vec![cert.der().clone()], der.into())
    }

    fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<ServerTls, TlsError> {
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(format!("certificate/key: {e}")))?;
        // Our preference (AES-256-GCM first) decides, as Exim's OpenSSL
        // setup does with SSL_OP_CIPHER_SERVER_PREFERENCE.
        cfg.ignore_client_order = true;
        let mut early = cfg.clone();
        // tls_early_banner_hosts: application data (the banner) goes out with
        // the server's handshake flight, before the client's Finished.
        early.send_half_rtt_data = true;
        Ok(ServerTls {
            normal: Arc::new(cfg),
            early: Arc::new(early),
        })
    }

    /// The configuration to use; `early_banner` lets data written before
    /// the handshake completes go out with the server's first flight
    /// (TLS 1.3 "0.5-RTT" data).
    pub fn config(&self, early_banner: bool) -> Arc<ServerConfig> {
        if early_banner {
            self.early.clone()
        } else {
            self.normal.clone()
        }
    }
}

/// Where the client's trust anchors come from (`tls_verify_certificates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// `system` (Exim's default): the platform bundle (`$SSL_CERT_FILE`, else
    /// the usual Debian/Red Hat/Alpine paths).
    System,
    /// A PEM file (one certificate or a bundle) or a directory of PEM files.
    Path(PathBuf),
}

/// How a client checks the server (smtp transport options, per host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsOptions {
    /// `tls_verify_certificates`.
    pub roots: RootSource,
    /// `tls_verify_cert_hostnames` matched: the certificate must name the host.
    pub check_name: bool,
    /// `tls_verify_hosts` matched: a failed check fails the handshake.
    pub require_verify: bool,
    /// `tls_try_verify_hosts` (or `tls_verify_hosts`) matched: the check is
    /// made and reported as `CV=yes|no`. When false, `CV=no` is reported
    /// without checking.
    pub try_verify: bool,
}

/// A client configuration and the checks that go with it.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    verifier: Arc<ExiVerifier>,
    try_verify: bool,
}

const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn load_roots(src: &RootSource) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    match src {
        RootSource::System => {
            let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
            let path = env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
                .find(|p| p.is_file());
            // No bundle: nothing verifies (CV=no), which only matters when
            // verification is required.
            Ok(match path {
                Some(p) => load_certs(&p)?,
                None => Vec::new(),
            })
        }
        RootSource::Path(p) if p.is_dir() => {
            let mut out = Vec::new();
            let rd = std::fs::read_dir(p).map_err(|e| {
                TlsError::Files(format!(
                    "cannot read {}: {}",
                    p.display(),
                    crate::pem::strip_os_error(&e)
                ))
            })?;
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files.iter().filter(|f| f.is_file()) {
                // Files without certificates (hash links to nothing, keys)
                // are skipped, as OpenSSL's directory lookup does.
                if let Ok(c) = load_certs(f) {
                    out.extend(c);
                }
            }
            Ok(out)
        }
        RootSource::Path(p) => load_certs(p),
    }
}

impl ClientTls {
    /// Build a client configuration. No SNI is sent (Exim sends one only
    /// when `tls_sni` is set).
    pub fn new(opts: &ClientTlsOptions) -> Result<ClientTls, TlsError> {
        let anchors = load_roots(&opts.roots)?;
        let provider = provider();
        let verifier = Arc::new(ExiVerifier::new(
            anchors,
            opts.check_name,
            opts.require_verify,
            provider.clone(),
        ));
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        cfg.enable_sni = false;
        Ok(ClientTls {
            config: Arc::new(cfg),
            verifier,
            try_verify: opts.try_verify || opts.require_verify,
        })
    }

    /// `CV=`: did the certificate the server presented pass the checks?
    /// `false` when verification was not asked for.
    pub fn verified(&self, conn: &ClientConnection, name: &ServerName<'_>) -> bool {
        if !self.try_verify {
            return false;
        }
        let Some(certs) = conn.peer_certificates() else {
            return false;
        };
        let Some((ee, rest)) = certs.split_first() else {
            return false;
        };
        self.verifier.check(ee, rest, name, UnixTime::now()).is_ok()
    }

    /// The verification of a certificate chain as [`ClientTls::verified`]
    /// does it, for a chain at hand (tests, diagnostics).
    pub fn check_chain(
        &self,
        chain: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), TlsError> {
        let (ee, rest) = chain
            .split_first()
            .ok_or_else(|| TlsError::Handshake("no certificate".into()))?;
        self.verifier
            .check(ee, rest, name, now)
            .map_err(|e| TlsError::Handshake(e.to_string()))
    }
}

/// The rustls configuration inside a [`ClientTls`] (for tests that drive
/// rustls directly).
#[doc(hidden)]
pub fn client_config_for_tests(c: &ClientTls) -> Arc<ClientConfig> {
    c.config.clone()
}
