//! Checking the server's certificate as Exim's smtp transport does:
//! against the CAs (or certificates) in `tls_verify_certificates`, with the
//! host name check of `tls_verify_cert_hostnames` optional, and the result
//! either enforced (`tls_verify_hosts`) or only recorded for `CV=`
//! (`tls_try_verify_hosts`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// The checks of one client configuration.
#[derive(Debug)]
pub(crate) struct ExiVerifier {
    /// Certificates trusted as anchors (also accepted as the server's own
    /// certificate when presented as is, as OpenSSL does).
    anchors: Vec<CertificateDer<'static>>,
    /// Path building; `None` when no anchor could be used by webpki.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    /// Fail the handshake when the checks fail.
    pub(crate) enforce: bool,
    provider: Arc<CryptoProvider>,
}

impl ExiVerifier {
    pub(crate) fn new(
        anchors: Vec<CertificateDer<'static>>,
        check_name: bool,
        enforce: bool,
        provider: Arc<CryptoProvider>,
    ) -> ExiVerifier {
        let mut store = RootCertStore::empty();
        let _ = store.add_parsable_certificates(anchors.iter().cloned());
        let webpki = if store.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .ok()
        };
        ExiVerifier {
            anchors,
            webpki,
            check_name,
            enforce,
            provider,
        }
    }

    /// Whether the chain the server presented is trusted (and, when asked
    /// for, names `name`).
    pub(crate) fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), Error> {
        // A certificate listed in tls_verify_certificates is trusted as it
        // stands (the usual self-signed setup): only its dates are checked,
        // and its names when asked for.
        if self
            .anchors
            .iter()
            .any(|a| a.as_ref() == end_entity.as_ref())
        {
            let (not_before, not_after) = crate::der::validity(end_entity)
                .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
            let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            if now_s < not_before {
                return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
            }
            if now_s > not_after {
                return Err(Error::InvalidCertificate(CertificateError::Expired));
            }
            if self.check_name {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, name)?;
            }
            return Ok(());
        }
        let Some(webpki) = &self.webpki else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        match webpki.verify_server_cert(end_entity, intermediates, name, &[], now) {
            Ok(_) => Ok(()),
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl ServerCertVerifier for ExiVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.enforce {
            self.check(end_entity, intermediates, server_name, now)?;
        }
        // Not enforced: the result is worked out again after the handshake
        // for CV=; the handshake signatures are always checked below.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
