//! Certificates and keys from PEM files.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Every certificate in a PEM file, in order (a leaf and its chain, or a CA
/// bundle). Other PEM sections (a private key in a combined file) are
/// skipped. A file without any certificate is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Files(format!("cannot read {}: {}", path.display(), pem_err(&e))))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Files(format!("bad PEM in {}: {}", path.display(), pem_err(&e))))?;
    if certs.is_empty() {
        return Err(TlsError::Files(format!(
            "no certificate found in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in a PEM file.
/// Certificates in the same file are skipped, so Exim's combined key+cert
/// file works for both options.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::Files(format!("no private key found in {}", path.display()))
        }
        e => TlsError::Files(format!(
            "cannot read key from {}: {}",
            path.display(),
            pem_err(&e)
        )),
    })
}

fn pem_err(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => strip_os_error(io),
        e => format!("{e:?}"),
    }
}

/// "No such file or directory" rather than "... (os error 2)".
pub(crate) fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}
