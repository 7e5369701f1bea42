//! Making the TCP connection of an SMTP client session: with TCP Fast
//! Open, TLS first for `protocol = smtps`, or not at all until the first
//! write when a whole transaction is to ride in the SYN.

use std::net::SocketAddr;

use oxim_net::{ConnectOptions, TfoIo};
use oxim_tls::{ClientTls, ClientTlsOptions, MaybeTls, TlsSession};

use crate::errno::Errno;

use super::{strip_os_error, temp, ConvError, Host, SmtpError, SmtpParams};

pub(super) fn tls_client(opts: &ClientTlsOptions) -> Result<ClientTls, ConvError> {
    ClientTls::new(opts).map_err(|e| {
        temp(
            Errno::TlsFailure,
            None,
            format!("TLS session: (certificate setup): {e}"),
        )
    })
}

/// Connect, with the TLS handshake first for `protocol = smtps`: then the
/// ClientHello is the data that goes into the SYN when a TFO cookie is
/// cached. Errors: the connection failed (`Err(Ok(e))`), or the handshake
/// did (`Err(Err(..))`).
pub(super) async fn connect(
    host: &Host,
    params: &SmtpParams,
    opts: ConnectOptions,
) -> Result<(MaybeTls<TfoIo>, Option<TlsSession>), Result<std::io::Error, ConvError>> {
    let addr = SocketAddr::new(host.ip, host.port);
    let Some(tls) = params.tls.as_ref().filter(|t| t.on_connect) else {
        let c = oxim_net::connect(addr, &opts).await.map_err(Ok)?;
        return Ok((MaybeTls::Plain(TfoIo::connected(c)), None));
    };
    let client = tls_client(&tls.client).map_err(Err)?;
    let mut io = MaybeTls::Plain(TfoIo::lazy(addr, opts));
    let limit = params.connect_timeout + params.command_timeout;
    match io.start_client(&client, &host.name, limit).await {
        Ok(s) => Ok((io, Some(s))),
        Err((oxim_tls::TlsError::Io(e), Some(t))) if t.facts().is_none() => Err(Ok(e)),
        Err((e, _)) => Err(Err(temp(
            Errno::TlsFailure,
            None,
            format!("TLS session: (handshake): {e}"),
        ))),
    }
}

/// A failure to connect, as a delivery outcome (no `H=` text: the host is
/// named by the caller).
pub(super) fn connect_error(e: &std::io::Error) -> SmtpError {
    let (errno, text) = match e.kind() {
        std::io::ErrorKind::TimedOut => (
            Errno::Os(libc::ETIMEDOUT),
            "Connection timed out".to_string(),
        ),
        _ => (
            Errno::Os(e.raw_os_error().unwrap_or(libc::ECONNREFUSED)),
            strip_os_error(e),
        ),
    };
    SmtpError {
        errno,
        errno_text: Some(text),
        message: None,
        with_host: false,
    }
}

/// A fresh random transaction token for `XOXIM-TXID` (128 bits, hex).
pub(super) fn new_tx_token() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        b[..8].copy_from_slice(&crate::random::random_u64().to_le_bytes());
        b[8..].copy_from_slice(&crate::random::random_u64().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
