//! oxim-tls end to end: PEM loading (combined key+cert file as Exim's tests
//! use), handshakes over loopback, `X=`/`CV=` values, certificate checks,
//! and the early banner (TLS 1.3 half-RTT data).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxim_tls::{ClientTls, ClientTlsOptions, MaybeTls, RootSource, ServerTls, TlsError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Pki {
    _dir: tempfile::TempDir,
    /// Key then certificate in one file, like Exim's aux-fixed/cert1.
    combined: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A self-signed certificate for `names`; `ca` makes it a CA certificate
/// (basicConstraints CA:TRUE, as Exim's test certificate is).
fn pki(names: &[&str], ca: bool) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    }
    let cert = params.self_signed(&key).unwrap();
    let combined = dir.path().join("combined.pem");
    std::fs::write(&combined, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pki {
        _dir: dir,
        combined,
        cert: cert_path,
        key: key_path,
    }
}

fn client(roots: &Path, check_name: bool, require: bool) -> ClientTls {
    ClientTls::new(&ClientTlsOptions {
        roots: RootSource::Path(roots.to_path_buf()),
        check_name,
        require_verify: require,
        try_verify: true,
    })
    .unwrap()
}

const T: Duration = Duration::from_secs(10);

/// One handshake over loopback; the server writes `banner` (early or after
/// the handshake) and the client reads it. Returns the client's and the
/// server's sessions (or the client's error) and what the client read.
async fn handshake(
    server: &ServerTls,
    client_tls: &ClientTls,
    host: &str,
    early: bool,
) -> (
    Result<oxim_tls::TlsSession, String>,
    Result<oxim_tls::TlsSession, String>,
    Vec<u8>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let cfg = server.config(early);
    let srv = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut io = MaybeTls::Plain(s);
        let banner = b"220 hello\r\n";
        let r = io
            .start_server(cfg, early.then_some(&banner[..]), T)
            .await
            .map_err(|e| e.to_string());
        if r.is_ok() && !early {
            io.write_all(banner).await.unwrap();
        }
        let _ = io.flush().await;
        if r.is_ok() {
            // Wait for the client's goodbye so nothing is cut short.
            let mut b = [0u8; 16];
            let _ = io.read(&mut b).await;
        }
        r
    });
    let s = TcpStream::connect(addr).await.unwrap();
    let mut io = MaybeTls::Plain(s);
    let c = io
        .start_client(client_tls, host, T)
        .await
        .map_err(|(e, _)| e.to_string());
    let mut got = Vec::new();
    if c.is_ok() {
        let mut b = [0u8; 64];
        let n = io.read(&mut b).await.unwrap();
        got.extend_from_slice(&b[..n]);
        io.write_all(b"QUIT\r\n").await.unwrap();
        io.flush().await.unwrap();
    }
    drop(io);
    (c, srv.await.unwrap(), got)
}

#[test]
fn combined_file_gives_key_and_certificate() {
    let p = pki(&["localhost"], false);
    assert_eq!(oxim_tls::load_certs(&p.combined).unwrap().len(), 1);
    assert!(oxim_tls::load_key(&p.combined).is_ok());
    // The server loads the key from the certificate file when no key file
    // is given (Exim's tls_privatekey default).
    ServerTls::from_files(&p.combined, None).unwrap();
    ServerTls::from_files(&p.cert, Some(&p.key)).unwrap();
}

#[test]
fn clear_errors_for_bad_files() {
    let p = pki(&["localhost"], false);
    let e = ServerTls::from_files(Path::new("/nonexistent/cert.pem"), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read /nonexistent/cert.pem: No such file or directory"
    );
    let e = ServerTls::from_files(&p.cert, None).unwrap_err();
    assert!(e.to_string().contains("no private key found in"), "{e}");
    let e = ServerTls::from_files(&p.key, None).unwrap_err();
    assert!(e.to_string().contains("no certificate found in"), "{e}");
    // A key that does not belong to the certificate.
    let other = pki(&["localhost"], false);
    let e = ServerTls::from_files(&p.cert, Some(&other.key)).unwrap_err();
    assert!(matches!(e, TlsError::Config(_)), "{e}");
}

#[tokio::test]
async fn tls13_aes256_and_verified_certificate() {
    let p = pki(&["localhost"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    let (c, s, got) = handshake(&server, &client(&p.cert, true, true), "localhost", false).await;
    let c = c.unwrap();
    let s = s.unwrap();
    assert_eq!(c.cipher, "TLS1.3:TLS_AES_256_GCM_SHA384:256");
    assert_eq!(s.cipher, c.cipher);
    assert_eq!(c.version, "TLS1.3");
    assert_eq!(c.certificate_verified, Some(true));
    // The server asked for no client certificate: no CV= on its side.
    assert_eq!(s.certificate_verified, None);
    assert_eq!(got, b"220 hello\r\n");
}

#[tokio::test]
async fn self_signed_ca_certificate_is_trusted_directly() {
    // Like Exim's aux-fixed/cert1: a CA certificate used as the server's own
    // and listed in tls_verify_certificates; hostname check off (":").
    let p = pki(&["test.ex"], true);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    let (c, _, _) = handshake(
        &server,
        &client(&p.combined, false, true),
        "127.0.0.1",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(true));
    // With the hostname check on, 127.0.0.1 is not test.ex: CV=no when only
    // tried, a failed handshake when required.
    let (c, _, _) = handshake(
        &server,
        &client(&p.combined, true, false),
        "127.0.0.1",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(false));
    let (c, s, _) = handshake(
        &server,
        &client(&p.combined, true, true),
        "127.0.0.1",
        false,
    )
    .await;
    assert!(c.unwrap_err().contains("certificate"));
    assert!(s.is_err());
}

#[tokio::test]
async fn untrusted_certificate() {
    let p = pki(&["localhost"], false);
    let other = pki(&["localhost"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    // Only tried: the session works and CV=no.
    let (c, _, _) = handshake(
        &server,
        &client(&other.cert, true, false),
        "localhost",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(false));
    // Required: the handshake fails and says why.
    let (c, _, _) = handshake(
        &server,
        &client(&other.cert, true, true),
        "localhost",
        false,
    )
    .await;
    let e = c.unwrap_err();
    // (Both test certificates have rcgen's default subject, so webpki finds
    // an "issuer" whose signature does not match.)
    assert!(e.contains("invalid peer certificate"), "{e}");
    // Verification not asked for at all: CV=no without a check.
    let none = ClientTls::new(&ClientTlsOptions {
        roots: RootSource::Path(p.cert.clone()),
        check_name: true,
        require_verify: false,
        try_verify: false,
    })
    .unwrap();
    let (c, _, _) = handshake(&server, &none, "localhost", false).await;
    assert_eq!(c.unwrap().certificate_verified, Some(false));
}

#[tokio::test]
async fn name_check() {
    let p = pki(&["mx.example.org"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    let (c, _, _) = handshake(
        &server,
        &client(&p.cert, true, false),
        "mx.example.org",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(true));
    let (c, _, _) = handshake(
        &server,
        &client(&p.cert, true, false),
        "other.example.org",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(false));
    let (c, _, _) = handshake(
        &server,
        &client(&p.cert, false, false),
        "other.example.org",
        false,
    )
    .await;
    assert_eq!(c.unwrap().certificate_verified, Some(true));
}

#[tokio::test]
async fn early_banner_arrives() {
    let p = pki(&["localhost"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    let (c, s, got) = handshake(&server, &client(&p.cert, true, true), "localhost", true).await;
    assert!(c.is_ok() && s.is_ok());
    assert_eq!(got, b"220 hello\r\n");
}

/// With the early-banner configuration the banner is in the server's first
/// flight: the client can read it before it has sent anything after its
/// ClientHello. Without it, the banner waits for the client's Finished.
#[test]
fn early_banner_goes_with_the_server_flight() {
    let p = pki(&["localhost"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    let ctls = client(&p.cert, true, true);
    for early in [true, false] {
        let cfg = oxim_tls::client_config_for_tests(&ctls);
        let mut cl = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
        let mut sv = rustls::ServerConnection::new(server.config(early)).unwrap();
        sv.writer().write_all(b"220 early\r\n").unwrap();
        // ClientHello -> server.
        let mut hello = Vec::new();
        cl.write_tls(&mut hello).unwrap();
        sv.read_tls(&mut &hello[..]).unwrap();
        sv.process_new_packets().unwrap();
        // Server flight -> client.
        let mut flight = Vec::new();
        while sv.wants_write() {
            sv.write_tls(&mut flight).unwrap();
        }
        cl.read_tls(&mut &flight[..]).unwrap();
        cl.process_new_packets().unwrap();
        let mut buf = [0u8; 32];
        let n = match cl.reader().read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("{e}"),
        };
        if early {
            assert_eq!(&buf[..n], b"220 early\r\n");
        } else {
            assert_eq!(n, 0, "banner sent before the client's Finished");
        }
    }
}

/// Issue 18 (plaintext or early data injected around the TLS start, the
/// class of Postfix CVE-2011-0411): the server accepts no TLS 1.3 0-RTT
/// early data in either configuration (so nothing from a client can be
/// read before the handshake is complete), and only TLS 1.2 and 1.3 are
/// spoken (rustls has no renegotiation, so no second handshake can start
/// mid-session).
#[test]
fn server_takes_no_early_data() {
    let p = pki(&["localhost"], false);
    let server = ServerTls::from_files(&p.combined, None).unwrap();
    for early_banner in [false, true] {
        let cfg = server.config(early_banner);
        assert_eq!(cfg.max_early_data_size, 0, "early_banner={early_banner}");
    }
}
