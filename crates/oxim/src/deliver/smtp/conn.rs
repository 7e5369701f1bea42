//! One SMTP client connection: the I/O around `oxim_smtp::ClientSession`,
//! which decides everything said on the wire. Here: connecting (with TFO,
//! TLS on connect, or the connection made by the first write when a whole
//! transaction rides in the SYN), reading and writing with the transport's
//! timeouts, the TLS handshake after STARTTLS, the EHLO cache, and Exim's
//! words for what went wrong.

use std::net::SocketAddr;
use std::time::Duration;

use oxim_log::Tfo;
use oxim_net::{ClientTfo, ConnectFacts, ConnectOptions, TfoIo};
use oxim_smtp::{
    ClientConfig, ClientEvent, ClientSession, EhloCapabilities, Reply, ReplyError, Step,
};
use oxim_tls::{MaybeTls, TlsSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::errno::Errno;

use super::connect::{connect, connect_error, new_tx_token, tls_client};
use super::ehlo_cache::{self, EhloCache};
use super::{strip_os_error, temp, ConvError, Host, RcptOutcome, SmtpError, SmtpParams};

/// A client connection to another SMTP server (the session driver's
/// connections from clients are `smtp_in`'s `IncomingConn`).
pub(super) struct OutgoingConn {
    pub(super) stream: MaybeTls<TfoIo>,
    /// The conversation, sans I/O.
    pub(super) smtp: ClientSession,
    /// What TLS negotiated, once up.
    pub(super) tls: Option<TlsSession>,
    /// The TLS handshake after STARTTLS failed.
    pub(super) tls_failed: bool,
    pub(super) host_name: String,
    /// When the first byte from the server arrived (the banner).
    pub(super) first_byte_at: Option<std::time::Instant>,
    pub(super) buf: Vec<u8>,
    pub(super) host_text: String,
    /// A read or write failed, or the server said 421: the connection
    /// cannot be used again.
    pub(super) broken: bool,
    /// Bytes of message data written in the current transaction (Exim's
    /// `(N bytes written)` after a timeout).
    pub(super) data_written: usize,
    /// The connection is not made yet: the first write goes into the TCP
    /// Fast Open SYN (the message in the SYN).
    pub(super) in_syn: bool,
    /// What the TCP handshake did (oxim-net's facts), once it is made.
    pub(super) facts: Option<ConnectFacts>,
    /// The current transaction's body goes with BDAT.
    pub(super) used_bdat: bool,
    command_timeout: Duration,
    data_timeout: Duration,
    final_timeout: Duration,
    /// The EHLO cache (early pipelining allowed with this host) and the
    /// host's key in it.
    cache: Option<(EhloCache, String)>,
}

/// An open SMTP connection after EHLO.
pub(super) struct Session {
    pub(super) conn: OutgoingConn,
    /// Messages sent on this connection so far.
    pub(super) messages: usize,
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
    /// used our cookie. The kernel cannot tell a server that accepted our
    /// cookie from one that ignored it (no TFO on that socket); on a path
    /// with a measurable round trip the banner's timing can (see
    /// `oxim_net::ConnectFacts::cookie_unconfirmed`).
    pub(super) fn log_tfo(&self) -> Tfo {
        match self.conn.facts {
            Some(f) => Tfo::Client {
                outcome: f.tfo,
                unconfirmed: f.cookie_unconfirmed(self.conn.first_byte_at),
            },
            None => Tfo::client(ClientTfo::NotTried),
        }
    }

    /// What the server offers.
    pub(super) fn caps(&self) -> &EhloCapabilities {
        self.conn.smtp.capabilities()
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

fn prefix(pipelined: bool) -> &'static str {
    if pipelined {
        "pipelined "
    } else {
        ""
    }
}

impl OutgoingConn {
    fn timeout_error(&self, pipelined: bool, after: &str) -> ConvError {
        let mut m = format!("SMTP timeout after {}{after}", prefix(pipelined));
        if self.data_written > 0 {
            m.push_str(&format!(" ({} bytes written)", self.data_written));
        }
        temp(Errno::Os(libc::ETIMEDOUT), Some("Connection timed out"), m)
    }

    fn closed_error(pipelined: bool, after: &str) -> ConvError {
        temp(
            Errno::SmtpClosed,
            None,
            format!(
                "Remote host closed connection in response to {}{after}",
                prefix(pipelined)
            ),
        )
    }

    /// Run the conversation until it has something to report: writes and
    /// reads as the session says, the EHLO cache kept on the way. An
    /// error leaves the connection broken.
    pub(super) async fn drive(&mut self) -> Result<ClientEvent, ConvError> {
        loop {
            match self.smtp.next_step() {
                Step::Write { bytes, data } => self.send(&bytes, data).await?,
                Step::Read => self.read_more().await?,
                Step::Event(ClientEvent::Ehlo {
                    reply,
                    caps,
                    tls,
                    early,
                }) => self.cache_ehlo(&reply, &caps, tls, early),
                Step::Event(ClientEvent::Malformed(e)) => {
                    self.broken = true;
                    return Err(self.malformed(&e));
                }
                Step::Event(ev) => {
                    if let ClientEvent::Refused { early: true, .. } = ev {
                        self.early_failed();
                    }
                    return Ok(ev);
                }
                Step::Idle => {
                    self.broken = true;
                    return Err(temp(
                        Errno::SmtpFormat,
                        None,
                        "SMTP client: nothing to wait for".into(),
                    ));
                }
            }
        }
    }

    /// Exim caches the answer in clear of a server offering PIPECONNECT;
    /// an early-pipelined EHLO whose answer differs from the cache replaces
    /// it, or drops it when PIPECONNECT is gone. What was sent on the
    /// strength of the cache stands: its replies decide the transaction.
    fn cache_ehlo(&self, reply: &Reply, caps: &EhloCapabilities, tls: bool, early: Option<bool>) {
        let Some((cache, key)) = &self.cache else {
            return;
        };
        let offers = caps.pipe_connect && caps.pipelining;
        match early {
            None if !tls && offers => cache.write(key, reply),
            None | Some(true) => {}
            Some(false) => {
                crate::metrics::pipe_connect_fallback();
                if offers {
                    cache.write(key, reply);
                } else {
                    cache.forget(key);
                }
            }
        }
    }

    /// The banner or EHLO reply owed to an early-pipelined EHLO was a
    /// refusal or never came: the next connection waits for the banner.
    fn early_failed(&self) {
        if let Some((cache, key)) = &self.cache {
            cache.forget(key);
        }
        crate::metrics::pipe_connect_fallback();
    }

    fn malformed(&self, e: &ReplyError) -> ConvError {
        let a = self.smtp.awaiting().unwrap_or_else(|| oxim_smtp::Awaiting {
            after: "reply".into(),
            pipelined: false,
            final_reply: false,
            early: false,
            draining: false,
        });
        if a.early {
            self.early_failed();
        }
        let p = prefix(a.pipelined);
        let after = a.after;
        let m = match e {
            ReplyError::Malformed { line } if line.trim().is_empty() => {
                format!("Malformed SMTP reply (an empty line) in response to {p}{after}")
            }
            ReplyError::Malformed { line } => {
                format!(
                    "Malformed SMTP reply in response to {p}{after}: {}",
                    line.trim()
                )
            }
            e => format!("Malformed SMTP reply in response to {p}{after}: {e}"),
        };
        temp(Errno::SmtpFormat, None, m)
    }

    /// Read what the server sent and give it to the session.
    async fn read_more(&mut self) -> Result<(), ConvError> {
        let (after, pipelined, final_reply, early) = match self.smtp.awaiting() {
            Some(a) => (a.after, a.pipelined, a.final_reply, a.early),
            None => ("reply".to_string(), false, false, false),
        };
        let timeout = if final_reply {
            self.final_timeout
        } else {
            self.command_timeout
        };
        self.buf.resize(16 * 1024, 0);
        let r = tokio::time::timeout(timeout, self.stream.read(&mut self.buf)).await;
        let err = match r {
            Err(_) => Some(self.timeout_error(pipelined, &after)),
            Ok(Err(e)) if is_closed(&e) => Some(Self::closed_error(pipelined, &after)),
            Ok(Err(e)) => Some(temp(
                e.raw_os_error().map_or(Errno::SmtpClosed, Errno::Os),
                Some(&strip_os_error(&e)),
                self.host_text.clone(),
            )),
            Ok(Ok(0)) => Some(Self::closed_error(pipelined, &after)),
            Ok(Ok(n)) => {
                if self.first_byte_at.is_none() {
                    self.first_byte_at = Some(std::time::Instant::now());
                }
                self.smtp.input(&self.buf[..n]);
                None
            }
        };
        if let Some(e) = err {
            self.broken = true;
            if early {
                self.early_failed();
            }
            return Err(e);
        }
        Ok(())
    }

    /// Write `data`: commands, or (`data_block`) message data, whose
    /// failures Exim reports as a timeout or closed connection "after
    /// sending data block". The data goes in blocks, each with its own
    /// timeout (Exim's data_timeout is per block, so a big message on a
    /// slow link is not cut off).
    async fn send(&mut self, data: &[u8], data_block: bool) -> Result<(), ConvError> {
        if !data_block {
            return self.send_block(data, self.command_timeout, false).await;
        }
        for block in data.chunks(64 * 1024) {
            self.send_block(block, self.data_timeout, true).await?;
        }
        Ok(())
    }

    async fn send_block(
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
            Err(_) if data_block => Err(self.timeout_error(false, "sending data block")),
            Ok(Err(e)) if data_block && is_closed(&e) => {
                Err(Self::closed_error(false, "sending data block"))
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

    /// One command and its reply (AUTH exchanges, a callout's commands,
    /// RSET). A refusal of an early-pipelined banner or EHLO that comes
    /// first is the error.
    pub(super) async fn exchange(&mut self, line: &str, after: &str) -> Result<Reply, ConvError> {
        if !self.smtp.command(line, after) {
            return Err(temp(
                Errno::SmtpFormat,
                None,
                format!("SMTP client: cannot send {after} now"),
            ));
        }
        let ev = self.drive().await;
        self.broken |= self.smtp.closing();
        match ev? {
            ClientEvent::Reply(r) => Ok(r),
            ClientEvent::Refused { reply, after, .. } => {
                self.broken = true;
                Err(classify(&reply, Errno::SmtpFormat, &after))
            }
            other => {
                self.broken = true;
                Err(temp(
                    Errno::SmtpFormat,
                    None,
                    format!("SMTP client: unexpected {other:?}"),
                ))
            }
        }
    }

    /// Send QUIT and close. The reply to QUIT does not change any outcome,
    /// so we do not wait for it: the write side is shut and the socket
    /// dropped.
    pub(super) async fn quit(&mut self, _timeout: Duration) {
        if self.in_syn {
            // Never connected: nothing to say QUIT on.
            return;
        }
        if !self.broken {
            let q = self.smtp.quit();
            let _ = self.send(&q, false).await;
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
/// (HELO if EHLO is refused), start TLS when offered and wanted, and
/// authenticate when the host wants it. With early pipelining the EHLO
/// waits to go with the first transaction (in the SYN when a TFO cookie
/// and the server allow it).
pub(super) async fn open(host: &Host, params: &SmtpParams) -> Result<Session, OpenError> {
    let on_connect = params.tls.as_ref().is_some_and(|t| t.on_connect);
    let cfg = ClientConfig {
        use_pipelining: !params.avoid_pipelining,
        use_chunking: params.try_chunking,
        starttls: params.tls.as_ref().map(|t| t.require),
        tls_on_connect: on_connect,
        auth: params.auth.is_some(),
        ..ClientConfig::new(params.helo_data.clone())
    };
    // Early pipelining: with a cached EHLO answer that offered PIPECONNECT,
    // EHLO goes at once (in the SYN when a TFO cookie allows it) and the
    // first transaction follows without waiting for the banner.
    let key = ehlo_cache::key(host.ip, host.port);
    let early = params
        .pipe_connect
        .as_ref()
        .filter(|_| !params.avoid_pipelining && !on_connect)
        .and_then(|c| {
            let hit = c.read(&key).filter(|c| c.pipe_connect && c.pipelining);
            crate::metrics::pipe_connect(hit.is_some());
            hit
        });
    // The message in the SYN: with a TFO cookie the early EHLO and the
    // first transaction go into the SYN itself, for a server that offered
    // replay-safe transactions (XOXIM-TXID) with CHUNKING: the connection
    // is made by the transaction's first write.
    let in_syn = host.try_tfo
        && early
            .as_ref()
            .is_some_and(|c| cfg.syn_transaction_possible(c));
    let mut smtp = ClientSession::new(cfg);
    if let Some(c) = early.clone() {
        smtp.start_early(c, in_syn.then(new_tx_token));
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
        smtp,
        tls,
        tls_failed: false,
        host_name: host.name.clone(),
        first_byte_at: None,
        buf: Vec::new(),
        host_text: format!("{} [{}]", host.name, host.ip),
        broken: false,
        data_written: 0,
        in_syn,
        facts,
        used_bdat: false,
        command_timeout: params.command_timeout,
        data_timeout: params.data_timeout,
        final_timeout: params.final_timeout,
        cache: params.pipe_connect.clone().map(|c| (c, key)),
    };
    if let Err(error) = hello(&mut conn, params).await {
        conn.quit(params.command_timeout).await;
        return Err(OpenError {
            error,
            tls_failed: conn.tls_failed,
            auth_notes: Vec::new(),
            sequence: conn.smtp.sequence().to_string(),
        });
    }
    let (auth, auth_notes) = match &params.auth {
        Some(ap) => {
            let caps = conn.smtp.capabilities().clone();
            let done = super::auth::authenticate(&mut conn, &caps, host, ap).await;
            match done.result {
                Ok(a) => (a, done.notes),
                Err(error) => {
                    conn.quit(params.command_timeout).await;
                    return Err(OpenError {
                        error,
                        tls_failed: false,
                        auth_notes: done.notes,
                        sequence: conn.smtp.sequence().to_string(),
                    });
                }
            }
        }
        None => (None, Vec::new()),
    };
    Ok(Session {
        conn,
        messages: 0,
        quit_timeout: params.command_timeout,
        early_pipe: early.is_some(),
        auth,
        auth_notes,
    })
}

/// The session's start up to ready: banner, EHLO or HELO, STARTTLS and the
/// TLS handshake (then EHLO again), as the session asks.
async fn hello(conn: &mut OutgoingConn, params: &SmtpParams) -> Result<(), ConvError> {
    loop {
        let ev = conn.drive().await;
        conn.broken |= conn.smtp.closing();
        match ev? {
            ClientEvent::Ready => return Ok(()),
            ClientEvent::Refused { reply, after, .. } => {
                return Err(classify(&reply, Errno::SmtpFormat, &after))
            }
            ClientEvent::StartTls { injected } => {
                // Replies pipelined behind the 220 would be plaintext
                // injected into the TLS session: there must be none.
                // Neither that nor a failed handshake leaves a connection
                // to say QUIT on.
                if injected {
                    conn.tls_failed = true;
                    conn.broken = true;
                    return Err(temp(
                        Errno::TlsFailure,
                        None,
                        "TLS session: (STARTTLS): unexpected data after 220 response".into(),
                    ));
                }
                let Some(tls) = params.tls.as_ref() else {
                    conn.broken = true;
                    return Err(temp(Errno::TlsFailure, None, "TLS not wanted".into()));
                };
                let client = tls_client(&tls.client)?;
                let t = params.command_timeout;
                match conn.stream.start_client(&client, &conn.host_name, t).await {
                    Ok(s) => {
                        conn.tls = Some(s);
                        conn.smtp.tls_started();
                    }
                    Err((e, _)) => {
                        conn.tls_failed = true;
                        conn.broken = true;
                        return Err(temp(
                            Errno::TlsFailure,
                            None,
                            format!("TLS session: (handshake): {e}"),
                        ));
                    }
                }
            }
            ClientEvent::StartTlsRefused(r) => {
                let mut e = classify(&r, Errno::TlsRequired, "STARTTLS");
                if let ConvError::Perm(x) = e {
                    e = ConvError::Temp(x);
                }
                return Err(e);
            }
            ClientEvent::TlsNotOffered => {
                return Err(temp(
                    Errno::TlsRequired,
                    None,
                    "a TLS session is required, but the server did not offer TLS support".into(),
                ))
            }
            other => {
                conn.broken = true;
                return Err(temp(
                    Errno::SmtpFormat,
                    None,
                    format!("SMTP client: unexpected {other:?}"),
                ));
            }
        }
    }
}
