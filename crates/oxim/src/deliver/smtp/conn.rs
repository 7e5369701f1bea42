//! One SMTP client connection: connecting (with TFO, or TLS on connect),
//! greeting, EHLO/HELO, STARTTLS, reading replies and sending commands.

use std::net::SocketAddr;
use std::time::Duration;

use oxim_log::Tfo;
use oxim_net::{ClientTfo, ConnectFacts, ConnectOptions, TfoIo};
use oxim_smtp::{EhloCapabilities, Reply, ReplyError, ReplyParser};
use oxim_tls::{MaybeTls, TlsSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errno::Errno;

use super::connect::{connect, connect_error, tls_client};
use super::ehlo_cache;
use super::{strip_os_error, temp, ConvError, Host, RcptOutcome, SmtpError, SmtpParams, TlsParams};

/// A client connection to another SMTP server (the session driver's
/// connections from clients are `smtp_in`'s `IncomingConn`).
pub(super) struct OutgoingConn {
    pub(super) stream: MaybeTls<TfoIo>,
    /// What TLS negotiated, once up.
    pub(super) tls: Option<TlsSession>,
    /// The TLS handshake after STARTTLS failed.
    pub(super) tls_failed: bool,
    pub(super) host_name: String,
    pub(super) host_ip: std::net::IpAddr,
    pub(super) host_port: u16,
    pub(super) parser: ReplyParser,
    /// When the first byte from the server arrived (the banner).
    pub(super) first_byte_at: Option<std::time::Instant>,
    pub(super) used_bdat: bool,
    pub(super) buf: Vec<u8>,
    pub(super) host_text: String,
    /// A read or write failed: the connection cannot be used again.
    pub(super) broken: bool,
    /// Replies read so far on this connection.
    pub(super) replies: u64,
    /// The server said 421: it is closing the connection.
    pub(super) closing: bool,
    /// The commands now in flight were pipelined (`pipelined ` in errors).
    pub(super) pipelined: bool,
    /// Bytes of message data written in the current transaction (Exim's
    /// `(N bytes written)` after a timeout).
    pub(super) data_written: usize,
    /// Early pipelining (PIPECONNECT): EHLO went without waiting for the
    /// banner, on the strength of this cached answer; the banner and the
    /// EHLO reply are still to be read.
    pub(super) early: Option<EhloCapabilities>,
    /// Commands to go out with the next write (the early EHLO, so that it
    /// travels with the first transaction in one segment).
    pub(super) unsent: Vec<u8>,
    /// STARTTLS went pipelined behind the early EHLO (as Exim does when the
    /// cached answer offers it); its reply is still to be read.
    pub(super) starttls_sent: bool,
    /// The connection is not made yet: the first write goes into the TCP
    /// Fast Open SYN (the message in the SYN, see `transaction_bdat`).
    pub(super) in_syn: bool,
    /// What the TCP handshake did (oxim-net's facts), once it is made.
    pub(super) facts: Option<ConnectFacts>,
    /// The session start as Exim's `PS=` shows it: `e` EHLO, `h` HELO,
    /// `s` STARTTLS, `a` each authenticator tried.
    pub(super) sequence: String,
}

/// An open SMTP connection after EHLO.
pub(super) struct Session {
    pub(super) conn: OutgoingConn,
    pub(super) caps: EhloCapabilities,
    /// Messages sent on this connection so far.
    pub(super) messages: usize,
    /// A transaction may still be open on the server: RSET before MAIL.
    pub(super) needs_rset: bool,
    /// The transport's command_timeout, for the QUIT at the end of a run.
    pub(super) quit_timeout: Duration,
    /// The connection was opened with early pipelining (` L*`).
    pub(super) early_pipe: bool,
    /// Authenticated as `name[:id]`.
    pub(super) auth: Option<String>,
    /// Log lines from the authentication attempts, not yet taken.
    pub(super) auth_notes: Vec<String>,
}

impl Session {
    /// What TFO did for this connection, for the log: the kernel's
    /// outcome, doubted when the banner came too late for a server that
    /// used our cookie (see `open`).
    pub(super) fn log_tfo(&self) -> Tfo {
        match self.conn.facts {
            Some(f) => Tfo::Client {
                outcome: f.tfo,
                unconfirmed: f.cookie_unconfirmed(self.conn.first_byte_at),
            },
            None => Tfo::client(ClientTfo::NotTried),
        }
    }
}

/// `250 OK id=...` as Exim logs a reply: its lines as they came, joined
/// by `\n` (`250-first\n250 last`).
pub(super) fn reply_text(r: &Reply) -> String {
    let mut s = String::new();
    let last = r.text.len().saturating_sub(1);
    for (i, line) in r.text.iter().enumerate() {
        if i > 0 {
            // Exim keeps the line break as the two characters `\n`.
            s.push_str("\\n");
        }
        s.push_str(&r.code.to_string());
        s.push(if i < last { '-' } else { ' ' });
        s.push_str(line);
    }
    if r.text.is_empty() {
        s.push_str(&r.code.to_string());
    }
    s
}

pub(super) fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

impl OutgoingConn {
    pub(super) fn prefix(&self) -> &'static str {
        if self.pipelined {
            "pipelined "
        } else {
            ""
        }
    }

    pub(super) fn timeout_error(&self, after: &str) -> ConvError {
        let mut m = format!("SMTP timeout after {}{after}", self.prefix());
        if self.data_written > 0 {
            m.push_str(&format!(" ({} bytes written)", self.data_written));
        }
        temp(Errno::Os(libc::ETIMEDOUT), Some("Connection timed out"), m)
    }

    pub(super) fn closed_error(&self, after: &str) -> ConvError {
        temp(
            Errno::SmtpClosed,
            None,
            format!(
                "Remote host closed connection in response to {}{after}",
                self.prefix()
            ),
        )
    }

    pub(super) async fn read_reply(
        &mut self,
        timeout: Duration,
        after: &str,
    ) -> Result<Reply, ConvError> {
        let r = self.read_reply_inner(timeout, after).await;
        match &r {
            Ok(reply) => {
                self.replies += 1;
                if reply.code == 421 {
                    self.closing = true;
                    self.broken = true;
                }
            }
            Err(_) => self.broken = true,
        }
        r
    }

    pub(super) async fn read_reply_inner(
        &mut self,
        timeout: Duration,
        after: &str,
    ) -> Result<Reply, ConvError> {
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(ReplyError::Malformed { line }) => {
                    let shown = line.trim();
                    let m = if shown.is_empty() {
                        format!(
                            "Malformed SMTP reply (an empty line) in response to {}{after}",
                            self.prefix()
                        )
                    } else {
                        format!(
                            "Malformed SMTP reply in response to {}{after}: {shown}",
                            self.prefix()
                        )
                    };
                    return Err(temp(Errno::SmtpFormat, None, m));
                }
                Err(e) => {
                    return Err(temp(
                        Errno::SmtpFormat,
                        None,
                        format!(
                            "Malformed SMTP reply in response to {}{after}: {e}",
                            self.prefix()
                        ),
                    ))
                }
            }
            self.buf.resize(16 * 1024, 0);
            let n = match tokio::time::timeout(timeout, self.stream.read(&mut self.buf)).await {
                Err(_) => return Err(self.timeout_error(after)),
                Ok(Err(e)) if is_closed(&e) => return Err(self.closed_error(after)),
                Ok(Err(e)) => {
                    return Err(temp(
                        e.raw_os_error().map_or(Errno::SmtpClosed, Errno::Os),
                        Some(&strip_os_error(&e)),
                        self.host_text.clone(),
                    ))
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(self.closed_error(after));
            }
            if self.first_byte_at.is_none() {
                self.first_byte_at = Some(std::time::Instant::now());
            }
            self.parser.feed(&self.buf[..n]);
        }
    }

    /// Write `data`: commands, or with `data_block` the message data, whose failures Exim reports as a
    /// timeout or closed connection "after sending data block". The data
    /// goes in blocks, each with its own `timeout` (Exim's data_timeout is
    /// per block, so a big message on a slow link is not cut off).
    pub(super) async fn send(
        &mut self,
        data: &[u8],
        timeout: Duration,
        data_block: bool,
    ) -> Result<(), ConvError> {
        if !self.unsent.is_empty() {
            let mut all = std::mem::take(&mut self.unsent);
            all.extend_from_slice(data);
            return self.send_block(&all, timeout, data_block).await;
        }
        if !data_block {
            return self.send_block(data, timeout, false).await;
        }
        for block in data.chunks(64 * 1024) {
            self.send_block(block, timeout, true).await?;
        }
        Ok(())
    }

    pub(super) async fn send_block(
        &mut self,
        data: &[u8],
        timeout: Duration,
        data_block: bool,
    ) -> Result<(), ConvError> {
        if std::mem::take(&mut self.in_syn) {
            // This write makes the connection: it goes into the SYN as far
            // as the kernel lets it (the rest right after the handshake),
            // and a failure is a failure to connect.
            let r = self.stream.write_all(data).await;
            self.facts = self.stream.get_ref().and_then(TfoIo::facts);
            if let Err(e) = r {
                self.broken = true;
                if self.facts.is_none() {
                    return Err(ConvError::Temp(connect_error(&e)));
                }
                return Err(temp(
                    e.raw_os_error().map_or(Errno::SmtpClosed, Errno::Os),
                    Some(&strip_os_error(&e)),
                    format!(
                        "send() to {} failed: {}",
                        self.host_text,
                        strip_os_error(&e)
                    ),
                ));
            }
            if data_block {
                self.data_written += data.len();
            }
            return Ok(());
        }
        let r = match tokio::time::timeout(timeout, self.stream.write_all(data)).await {
            Err(_) if data_block => Err(self.timeout_error("sending data block")),
            Ok(Err(e)) if data_block && is_closed(&e) => {
                Err(self.closed_error("sending data block"))
            }
            Err(_) => Err(temp(
                Errno::Os(libc::ETIMEDOUT),
                Some("Connection timed out"),
                format!("send() to {} failed: Connection timed out", self.host_text),
            )),
            Ok(Err(e)) => {
                let text = strip_os_error(&e);
                Err(temp(
                    e.raw_os_error().map_or(Errno::SmtpClosed, Errno::Os),
                    Some(&text),
                    format!("send() to {} failed: {text}", self.host_text),
                ))
            }
            Ok(Ok(())) => Ok(()),
        };
        if r.is_err() {
            self.broken = true;
        } else if data_block {
            self.data_written += data.len();
        }
        r
    }

    /// Send QUIT and close. The reply to QUIT does not change any outcome,
    /// so we do not wait for it: the write side is shut and the socket
    /// dropped.
    pub(super) async fn quit(&mut self, timeout: Duration) {
        if self.in_syn {
            // Never connected: nothing to say QUIT on.
            return;
        }
        if !self.broken {
            let _ = self.send(b"QUIT\r\n", timeout, false).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

pub(super) fn classify(r: &Reply, errno_4xx: Errno, after: &str) -> ConvError {
    let e = SmtpError {
        errno: if r.code >= 500 {
            Errno::None
        } else {
            errno_4xx
        },
        errno_text: None,
        message: Some(format!(
            "SMTP error from remote mail server after {after}: {}",
            reply_text(r)
        )),
        with_host: true,
    };
    if r.code >= 500 {
        ConvError::Perm(e)
    } else {
        ConvError::Temp(e)
    }
}

/// The same outcome for every recipient.
pub(super) fn all_of(o: RcptOutcome, n: usize) -> Vec<RcptOutcome> {
    vec![o; n]
}

/// A connection that could not be opened: why, and whether it was the TLS
/// handshake after STARTTLS that failed (`tls_tempfail_tryclear` may then
/// try again in clear).
pub(super) struct OpenError {
    pub(super) error: ConvError,
    pub(super) tls_failed: bool,
    /// Log lines from authentication attempts before the failure.
    pub(super) auth_notes: Vec<String>,
    /// The session start so far (`PS=`).
    pub(super) sequence: String,
}

/// Connect (TLS first for `protocol = smtps`), read the banner, say EHLO
/// (HELO if EHLO is refused), and start TLS when offered and wanted.
pub(super) async fn open(host: &Host, params: &SmtpParams) -> Result<Session, OpenError> {
    // Early pipelining: with a cached EHLO answer that offered PIPECONNECT,
    // EHLO goes at once (in the SYN when a TFO cookie allows it) and the
    // first transaction follows without waiting for the banner.
    let early = params
        .pipe_connect
        .as_ref()
        .filter(|_| !params.avoid_pipelining && !params.tls.as_ref().is_some_and(|t| t.on_connect))
        .and_then(|c| {
            let hit = c
                .read(&ehlo_cache::key(host.ip, host.port))
                .filter(|c| c.pipe_connect && c.pipelining);
            crate::metrics::pipe_connect(hit.is_some());
            hit
        });
    let mut unsent = match &early {
        Some(_) => format!("EHLO {}\r\n", params.helo_data).into_bytes(),
        None => Vec::new(),
    };
    // Exim sends STARTTLS right behind the early EHLO when the cached
    // answer offers it, and reads the banner and the EHLO reply before its
    // reply.
    let starttls_sent = early.as_ref().is_some_and(|c| c.starttls) && params.tls.is_some();
    if starttls_sent {
        unsent.extend_from_slice(b"STARTTLS\r\n");
    }
    let opts = ConnectOptions {
        try_tfo: host.try_tfo,
        timeout: params.connect_timeout,
        bind: params.interface,
        syn_data: Vec::new(),
    };
    let failed = |error| OpenError {
        error,
        tls_failed: false,
        auth_notes: Vec::new(),
        sequence: String::new(),
    };
    // The message in the SYN: with a TFO cookie the early EHLO and the
    // first transaction go into the SYN itself, for a server that offered
    // replay-safe transactions (XOXIM-TXID) with CHUNKING: the connection
    // is made by the transaction's first write.
    let in_syn = host.try_tfo
        && early.as_ref().is_some_and(|c| {
            c.tx_token
                && c.chunking
                && params.try_chunking
                && params.auth.is_none()
                && !params.tls.as_ref().is_some_and(|t| t.require || c.starttls)
        });
    let (stream, tls) = if in_syn {
        let addr = SocketAddr::new(host.ip, host.port);
        (MaybeTls::Plain(TfoIo::lazy(addr, opts)), None)
    } else {
        match connect(host, params, opts).await {
            Ok(c) => c,
            Err(Err(e)) => return Err(failed(e)),
            Err(Ok(e)) => return Err(failed(ConvError::Temp(connect_error(&e)))),
        }
    };
    let facts = stream.get_ref().and_then(TfoIo::facts);
    if let Some(t) = stream.get_ref().and_then(TfoIo::tcp) {
        let _ = t.set_nodelay(true);
    }
    let mut conn = OutgoingConn {
        stream,
        tls,
        tls_failed: false,
        host_name: host.name.clone(),
        host_ip: host.ip,
        host_port: host.port,
        first_byte_at: None,
        used_bdat: false,
        parser: ReplyParser::new(),
        buf: Vec::new(),
        host_text: format!("{} [{}]", host.name, host.ip),
        broken: false,
        replies: 0,
        closing: false,
        pipelined: false,
        data_written: 0,
        early: early.clone(),
        unsent,
        starttls_sent,
        in_syn,
        facts,
        sequence: String::new(),
    };
    if early.is_some() {
        conn.sequence.push('e');
        if starttls_sent {
            conn.sequence.push('s');
        }
    }
    let early_pipe = early.is_some();
    let greeted = match early {
        // STARTTLS and AUTH cannot be pipelined past: read the answers now
        // (one round trip saved still), then go on as usual.
        Some(c)
            if params.auth.is_some()
                || params.tls.as_ref().is_some_and(|t| t.require || c.starttls) =>
        {
            match reap_early(&mut conn, params).await {
                Ok(caps) => secure(&mut conn, params, caps).await,
                Err(e) => Err(e),
            }
        }
        Some(cached) => Ok(cached),
        None => greet(&mut conn, params).await,
    };
    let caps = match greeted {
        Ok(c) => c,
        Err(error) => {
            conn.quit(params.command_timeout).await;
            return Err(OpenError {
                error,
                tls_failed: conn.tls_failed,
                auth_notes: Vec::new(),
                sequence: std::mem::take(&mut conn.sequence),
            });
        }
    };
    let (auth, auth_notes) = match &params.auth {
        Some(ap) => {
            let done =
                super::auth::authenticate(&mut conn, &caps, host, ap, params.command_timeout).await;
            match done.result {
                Ok(a) => (a, done.notes),
                Err(error) => {
                    conn.quit(params.command_timeout).await;
                    return Err(OpenError {
                        error,
                        tls_failed: false,
                        auth_notes: done.notes,
                        sequence: std::mem::take(&mut conn.sequence),
                    });
                }
            }
        }
        None => (None, Vec::new()),
    };
    // The kernel cannot tell a server that accepted our cookie from one that
    // ignored it (no TFO on that socket). On a path with a measurable round
    // trip the banner's timing can: with TFO it follows the SYN-ACK at once,
    // without it a full round trip later. When the two disagree the log keeps
    // the kernel's judgement and says so in the +tfo_detail item; no
    // judgement is made on paths shorter than oxim_net::TIMING_MIN_RTT.
    // With early pipelining nothing has been read yet: the judgement is
    // made when it is wanted (Session::log_tfo).
    Ok(Session {
        conn,
        caps,
        messages: 0,
        needs_rset: false,
        quit_timeout: params.command_timeout,
        early_pipe,
        auth,
        auth_notes,
    })
}

/// The banner and the EHLO reply owed to an early-pipelined EHLO. A refusal
/// of either drops the cached answer (the next connection waits for the
/// banner again); an answer that differs from the cache replaces it, or
/// drops it when PIPECONNECT is no longer offered. What was sent on the
/// strength of the cache stands: its replies decide the transaction.
pub(super) async fn reap_early(
    conn: &mut OutgoingConn,
    params: &SmtpParams,
) -> Result<EhloCapabilities, ConvError> {
    let Some(cached) = conn.early.take() else {
        return Err(temp(Errno::SmtpFormat, None, "no early pipelining".into()));
    };
    let t = params.command_timeout;
    if !conn.unsent.is_empty() {
        conn.send(b"", t, false).await?;
    }
    let key = ehlo_cache::key(conn.host_ip, conn.host_port);
    let cache = params.pipe_connect.as_ref();
    let was = std::mem::replace(&mut conn.pipelined, true);
    let banner = conn.read_reply(t, "initial connection").await;
    let banner = match banner {
        Ok(b) if b.code / 100 == 2 => b,
        other => {
            conn.pipelined = was;
            if let Some(c) = cache {
                c.forget(&key);
            }
            crate::metrics::pipe_connect_fallback();
            return Err(match other {
                Ok(b) => classify(&b, Errno::SmtpFormat, "initial connection"),
                Err(e) => e,
            });
        }
    };
    drop(banner);
    let ehlo_cmd = format!("EHLO {}", params.helo_data);
    let ehlo = conn.read_reply(t, &ehlo_cmd).await;
    conn.pipelined = was;
    let ehlo = match ehlo {
        Ok(r) if r.code / 100 == 2 => r,
        other => {
            if let Some(c) = cache {
                c.forget(&key);
            }
            crate::metrics::pipe_connect_fallback();
            return Err(match other {
                Ok(r) => classify(&r, Errno::SmtpFormat, &ehlo_cmd),
                Err(e) => e,
            });
        }
    };
    let caps = EhloCapabilities::from_reply(&ehlo);
    if let Some(c) = cache.filter(|_| !ehlo_cache::same_offer(&caps, &cached)) {
        crate::metrics::pipe_connect_fallback();
        if caps.pipe_connect && caps.pipelining {
            c.write(&key, &ehlo);
        } else {
            c.forget(&key);
        }
    }
    Ok(caps)
}

/// The banner, EHLO, and on a connection not yet encrypted STARTTLS when
/// the server offers it (then EHLO again), or an error when TLS is
/// required and not offered.
pub(super) async fn greet(
    conn: &mut OutgoingConn,
    params: &SmtpParams,
) -> Result<EhloCapabilities, ConvError> {
    let t = params.command_timeout;
    let banner = conn.read_reply(t, "initial connection").await?;
    if banner.code / 100 != 2 {
        return Err(classify(&banner, Errno::SmtpFormat, "initial connection"));
    }
    let caps = hello(conn, params).await?;
    secure(conn, params, caps).await
}

/// STARTTLS when the server offers it and we want it (then EHLO again), or
/// an error when TLS is required and not offered.
pub(super) async fn secure(
    conn: &mut OutgoingConn,
    params: &SmtpParams,
    mut caps: EhloCapabilities,
) -> Result<EhloCapabilities, ConvError> {
    if let Some(tls) = params.tls.as_ref().filter(|_| conn.tls.is_none()) {
        // A STARTTLS pipelined on the strength of the cache has its reply
        // read even when the fresh EHLO answer no longer offers it.
        if caps.starttls || conn.starttls_sent {
            starttls(conn, params, tls).await?;
            // Everything learnt in clear is forgotten: EHLO again.
            caps = hello(conn, params).await?;
        } else if tls.require {
            return Err(temp(
                Errno::TlsRequired,
                None,
                "a TLS session is required, but the server did not offer TLS support".into(),
            ));
        }
    }
    Ok(caps)
}

/// EHLO, or HELO when EHLO is refused.
pub(super) async fn hello(
    conn: &mut OutgoingConn,
    params: &SmtpParams,
) -> Result<EhloCapabilities, ConvError> {
    let t = params.command_timeout;
    let ehlo_cmd = format!("EHLO {}", params.helo_data);
    conn.sequence.push('e');
    conn.send(format!("{ehlo_cmd}\r\n").as_bytes(), t, false)
        .await?;
    let ehlo = conn.read_reply(t, &ehlo_cmd).await?;
    if ehlo.code / 100 == 2 {
        let caps = EhloCapabilities::from_reply(&ehlo);
        // Exim caches the answer in clear of a server offering PIPECONNECT
        // when early pipelining would be allowed with it.
        if let Some(c) = params.pipe_connect.as_ref() {
            if conn.tls.is_none() && caps.pipe_connect && caps.pipelining {
                c.write(&ehlo_cache::key(conn.host_ip, conn.host_port), &ehlo);
            }
        }
        return Ok(caps);
    }
    let helo_cmd = format!("HELO {}", params.helo_data);
    conn.sequence.push('h');
    conn.send(format!("{helo_cmd}\r\n").as_bytes(), t, false)
        .await?;
    let helo = conn.read_reply(t, &helo_cmd).await?;
    if helo.code / 100 != 2 {
        return Err(classify(&helo, Errno::SmtpFormat, &helo_cmd));
    }
    Ok(EhloCapabilities::default())
}

/// STARTTLS and the handshake. A refusal is fatal only when TLS is
/// required; a failed handshake always is for this connection (the caller
/// may try again in clear, `tls_tempfail_tryclear`).
pub(super) async fn starttls(
    conn: &mut OutgoingConn,
    params: &SmtpParams,
    tls: &TlsParams,
) -> Result<(), ConvError> {
    let t = params.command_timeout;
    if !std::mem::take(&mut conn.starttls_sent) {
        conn.sequence.push('s');
        conn.send(b"STARTTLS\r\n", t, false).await?;
    }
    let r = conn.read_reply(t, "STARTTLS").await?;
    if r.code != 220 {
        if tls.require {
            let mut e = classify(&r, Errno::TlsRequired, "STARTTLS");
            if let ConvError::Perm(x) = e {
                e = ConvError::Temp(x);
            }
            return Err(e);
        }
        return Ok(());
    }
    // Replies pipelined behind the 220 would be plaintext injected into
    // the TLS session: there must be none. Neither that nor a failed
    // handshake leaves a connection to say QUIT on.
    if conn.parser.buffered() > 0 {
        conn.tls_failed = true;
        conn.broken = true;
        return Err(temp(
            Errno::TlsFailure,
            None,
            "TLS session: (STARTTLS): unexpected data after 220 response".into(),
        ));
    }
    let client = tls_client(&tls.client)?;
    match conn.stream.start_client(&client, &conn.host_name, t).await {
        Ok(s) => {
            conn.tls = Some(s);
            Ok(())
        }
        Err((e, _)) => {
            conn.tls_failed = true;
            conn.broken = true;
            Err(temp(
                Errno::TlsFailure,
                None,
                format!("TLS session: (handshake): {e}"),
            ))
        }
    }
}
