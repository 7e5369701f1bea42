//! The smtp transport: SMTP client conversations, with TCP Fast Open for
//! hosts matching `hosts_try_fastopen`, PIPELINING and CHUNKING when offered,
//! TLS (STARTTLS when offered, or `protocol = smtps`), and per-recipient
//! outcomes that the delivery process turns into log lines.
//!
//! A [`Pool`] lets the deliveries of one queue run share connections: a
//! connection that finished a transaction is parked under its host and the
//! next message for that host sends its `MAIL FROM` down it (Exim's
//! continued connections, `*` after the host on the `=>` line), up to
//! `connection_max_messages` messages per connection. A parked connection
//! keeps its TLS session: a message sent down it is encrypted the same way
//! (and logs the same `X=`/`CV=`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use oxim_net::{ClientTfo, ConnectOptions};
use oxim_smtp::{DotStuffer, EhloCapabilities, Reply, ReplyError, ReplyParser};
use oxim_tls::{ClientTls, ClientTlsOptions, MaybeTls, TfoIo, TlsSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Shortest path round trip on which the banner's timing is used to check
/// that a server really used our TFO cookie.
const TFO_TIMING_MIN_RTT: Duration = Duration::from_millis(10);

/// A host to try, with the name it was listed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    pub name: String,
    pub ip: IpAddr,
    pub port: u16,
    /// `hosts_try_fastopen` matched this host.
    pub try_tfo: bool,
}

/// Settings of one smtp transport instance, already expanded.
#[derive(Debug, Clone)]
pub struct SmtpParams {
    pub helo_data: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub final_timeout: Duration,
    pub max_rcpt: usize,
    pub avoid_pipelining: bool,
    /// `hosts_try_chunking` matched: use BDAT when offered.
    pub try_chunking: bool,
    pub interface: Option<IpAddr>,
    /// `connection_max_messages`: messages down one connection (0: no limit).
    pub connection_max_messages: usize,
    /// TLS for this host; `None`: never (e.g. `hosts_avoid_tls` matched).
    pub tls: Option<TlsParams>,
}

/// TLS settings for one host, options already matched against it.
#[derive(Debug, Clone)]
pub struct TlsParams {
    /// `protocol = smtps`: TLS before the banner.
    pub on_connect: bool,
    /// `hosts_require_tls` matched: no delivery in clear.
    pub require: bool,
    /// How the server's certificate is checked.
    pub client: ClientTlsOptions,
}

/// Exim's pseudo-errno values for SMTP-level failures.
pub mod errno {
    /// Remote host closed the connection.
    pub const SMTP_CLOSED: i32 = -18;
    /// Unexpected reply format.
    pub const SMTP_FORMAT: i32 = -19;
    /// 4xx to RCPT.
    pub const RCPT_4XX: i32 = -44;
    /// 4xx to MAIL.
    pub const MAIL_4XX: i32 = -45;
    /// 4xx to DATA or after the data.
    pub const DATA_4XX: i32 = -46;
    /// The TLS handshake failed.
    pub const TLS_FAILURE: i32 = -37;
    /// TLS was required but not offered (or refused).
    pub const TLS_REQUIRED: i32 = -38;
}

/// Why a recipient was not delivered (fields of Exim's `defer (N): ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpError {
    pub errno: i32,
    /// System error text (`Connection refused`), if any.
    pub errno_text: Option<String>,
    /// SMTP-level text (`SMTP timeout after EHLO x`, `SMTP error from ...`).
    pub message: Option<String>,
    /// Whether the host was reached (`H=` appears in the log).
    pub with_host: bool,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted; the final reply text for `C="..."`.
    Delivered { confirmation: String },
    /// 4xx or a connection problem.
    Deferred(SmtpError),
    /// 5xx.
    Failed(SmtpError),
}

/// Result of a conversation with one host.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: Host,
    pub tfo: ClientTfo,
    /// A finer `+tfo_detail` value than `tfo.name()`, when timing adds to
    /// what the kernel said.
    pub tfo_detail: Option<&'static str>,
    /// The message went with BDAT (CHUNKING).
    pub chunking: bool,
    /// The message went down a connection that an earlier message had
    /// used (`*` after the host in the log).
    pub continued: bool,
    /// The host was not tried: a connection to it failed earlier in this
    /// queue run (the outcomes repeat that failure).
    pub skipped: bool,
    pub outcomes: Vec<RcptOutcome>,
    /// Whether trying another host could help (connection-level failure).
    pub try_next_host: bool,
    /// The session was encrypted (` X=`, ` CV=` on `=>` lines); for a
    /// continued connection, the TLS it was opened with.
    pub tls: Option<TlsSession>,
    /// The TLS handshake after STARTTLS failed (delivery in clear may be
    /// tried, `tls_tempfail_tryclear`).
    pub tls_failed: bool,
}

/// The message as it goes on the wire (LF line ends, converted by the stuffer).
pub struct Outgoing<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub headers: &'a [u8],
    pub body: &'a [u8],
    pub size: usize,
    /// Received with `BODY=8BITMIME`: announce it where 8BITMIME is offered.
    pub body_8bitmime: bool,
}

#[derive(Debug)]
enum ConvError {
    /// Temporary, affects all recipients.
    Temp(SmtpError),
    /// A 5xx to MAIL or the like: all recipients fail.
    Perm(SmtpError),
}

fn temp(errno: i32, errno_text: Option<&str>, message: String) -> ConvError {
    ConvError::Temp(SmtpError {
        errno,
        errno_text: errno_text.map(str::to_string),
        message: Some(message),
        with_host: true,
    })
}

/// What identifies interchangeable connections: same transport settings,
/// same host and port, same local interface and HELO name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub transport: String,
    pub ip: IpAddr,
    pub port: u16,
    pub interface: Option<IpAddr>,
    pub helo: String,
}

#[derive(Default)]
struct HostSlot {
    /// A connection that finished a transaction and can take another.
    idle: Option<Session>,
    /// Opening a connection failed earlier (this error); later messages do
    /// not try again (Exim's host retry record, for one run).
    down: Option<SmtpError>,
}

/// Connections shared by the deliveries of one queue run. One connection
/// per host at a time: a delivery for a host whose connection is in use
/// waits for it and then sends its message down the same connection.
#[derive(Default)]
pub struct Pool {
    slots: std::sync::Mutex<HashMap<ConnKey, Arc<tokio::sync::Mutex<HostSlot>>>>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool::default()
    }

    fn slot(&self, key: &ConnKey) -> Arc<tokio::sync::Mutex<HostSlot>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }

    /// QUIT and close every parked connection (end of the queue run).
    pub async fn close_all(&self) {
        let slots: Vec<_> = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.drain().map(|(_, v)| v).collect()
        };
        for s in slots {
            let idle = s.lock().await.idle.take();
            if let Some(mut sess) = idle {
                let t = sess.quit_timeout;
                sess.conn.quit(t).await;
            }
        }
    }
}

/// A queue-run delivery's share of `queue_run_max`. A delivery that has to
/// wait for a host busy with another message gives its share back, so that
/// messages queued for a slow host do not stop the others. It does not take
/// it again: once the host is free it goes on down that host's connection,
/// at most one per host beyond `queue_run_max`, and never waits for a share
/// while it holds a host (which could deadlock).
pub struct Ticket {
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl Ticket {
    /// Wait for a share of `sem`.
    pub async fn new(sem: Arc<tokio::sync::Semaphore>) -> Option<Ticket> {
        let p = sem.acquire_owned().await.ok()?;
        Some(Ticket {
            permit: std::sync::Mutex::new(Some(p)),
        })
    }

    fn release(&self) {
        self.permit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// The pool a delivery uses, and its queue-run share when it may give it
/// back while waiting (a delivery with one remote transport call).
#[derive(Clone, Copy)]
pub struct PoolRef<'a> {
    pub pool: &'a Pool,
    pub ticket: Option<&'a Ticket>,
}

struct Conn {
    stream: MaybeTls<TfoIo>,
    /// What TLS negotiated, once up.
    tls: Option<TlsSession>,
    /// The TLS handshake after STARTTLS failed.
    tls_failed: bool,
    host_name: String,
    parser: ReplyParser,
    /// When the first byte from the server arrived (the banner).
    first_byte_at: Option<std::time::Instant>,
    used_bdat: bool,
    buf: Vec<u8>,
    host_text: String,
    /// A read or write failed: the connection cannot be used again.
    broken: bool,
    /// Replies read so far on this connection.
    replies: u64,
    /// The server said 421: it is closing the connection.
    closing: bool,
    /// The commands now in flight were pipelined (`pipelined ` in errors).
    pipelined: bool,
    /// Bytes of message data written in the current transaction (Exim's
    /// `(N bytes written)` after a timeout).
    data_written: usize,
}

/// An open SMTP connection after EHLO.
struct Session {
    conn: Conn,
    caps: EhloCapabilities,
    tfo: ClientTfo,
    tfo_detail: Option<&'static str>,
    /// Messages sent on this connection so far.
    messages: usize,
    /// A transaction may still be open on the server: RSET before MAIL.
    needs_rset: bool,
    /// The transport's command_timeout, for the QUIT at the end of a run.
    quit_timeout: Duration,
}

/// `250 OK id=...` as Exim logs a reply (lines joined with a newline).
fn reply_text(r: &Reply) -> String {
    let mut s = r.code.to_string();
    for (i, line) in r.text.iter().enumerate() {
        s.push(if i == 0 { ' ' } else { '\n' });
        if i > 0 {
            s.push_str(&r.code.to_string());
            s.push(' ');
        }
        s.push_str(line);
    }
    s
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

impl Conn {
    fn prefix(&self) -> &'static str {
        if self.pipelined {
            "pipelined "
        } else {
            ""
        }
    }

    fn timeout_error(&self, after: &str) -> ConvError {
        let mut m = format!("SMTP timeout after {}{after}", self.prefix());
        if self.data_written > 0 {
            m.push_str(&format!(" ({} bytes written)", self.data_written));
        }
        temp(libc::ETIMEDOUT, Some("Connection timed out"), m)
    }

    fn closed_error(&self, after: &str) -> ConvError {
        temp(
            errno::SMTP_CLOSED,
            None,
            format!(
                "Remote host closed connection in response to {}{after}",
                self.prefix()
            ),
        )
    }

    async fn read_reply(&mut self, timeout: Duration, after: &str) -> Result<Reply, ConvError> {
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

    async fn read_reply_inner(
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
                    return Err(temp(errno::SMTP_FORMAT, None, m));
                }
                Err(e) => {
                    return Err(temp(
                        errno::SMTP_FORMAT,
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
                        e.raw_os_error().unwrap_or(errno::SMTP_CLOSED),
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
    async fn send(
        &mut self,
        data: &[u8],
        timeout: Duration,
        data_block: bool,
    ) -> Result<(), ConvError> {
        if !data_block {
            return self.send_block(data, timeout, false).await;
        }
        for block in data.chunks(64 * 1024) {
            self.send_block(block, timeout, true).await?;
        }
        Ok(())
    }

    async fn send_block(
        &mut self,
        data: &[u8],
        timeout: Duration,
        data_block: bool,
    ) -> Result<(), ConvError> {
        let r = match tokio::time::timeout(timeout, self.stream.write_all(data)).await {
            Err(_) if data_block => Err(self.timeout_error("sending data block")),
            Ok(Err(e)) if data_block && is_closed(&e) => {
                Err(self.closed_error("sending data block"))
            }
            Err(_) => Err(temp(
                libc::ETIMEDOUT,
                Some("Connection timed out"),
                format!("send() to {} failed: Connection timed out", self.host_text),
            )),
            Ok(Err(e)) => {
                let text = strip_os_error(&e);
                Err(temp(
                    e.raw_os_error().unwrap_or(errno::SMTP_CLOSED),
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
    async fn quit(&mut self, timeout: Duration) {
        if !self.broken {
            let _ = self.send(b"QUIT\r\n", timeout, false).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

fn classify(r: &Reply, errno_4xx: i32, after: &str) -> ConvError {
    let e = SmtpError {
        errno: if r.code >= 500 { 0 } else { errno_4xx },
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
fn all_of(o: RcptOutcome, n: usize) -> Vec<RcptOutcome> {
    vec![o; n]
}

fn tls_client(opts: &ClientTlsOptions) -> Result<ClientTls, ConvError> {
    ClientTls::new(opts).map_err(|e| {
        temp(
            errno::TLS_FAILURE,
            None,
            format!("TLS session: (certificate setup): {e}"),
        )
    })
}

/// Connect, with the TLS handshake first for `protocol = smtps`: then the
/// ClientHello is the data that goes into the SYN when a TFO cookie is
/// cached. Errors: the connection failed (`Err(Ok(e))`), or the handshake
/// did (`Err(Err(..))`).
async fn connect(
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
            errno::TLS_FAILURE,
            None,
            format!("TLS session: (handshake): {e}"),
        ))),
    }
}

/// A connection that could not be opened: why, and whether it was the TLS
/// handshake after STARTTLS that failed (`tls_tempfail_tryclear` may then
/// try again in clear).
struct OpenError {
    error: ConvError,
    tls_failed: bool,
}

/// Connect (TLS first for `protocol = smtps`), read the banner, say EHLO
/// (HELO if EHLO is refused), and start TLS when offered and wanted.
async fn open(host: &Host, params: &SmtpParams) -> Result<Session, OpenError> {
    let opts = ConnectOptions {
        try_tfo: host.try_tfo,
        timeout: params.connect_timeout,
        bind: params.interface,
        syn_data: Vec::new(),
    };
    let failed = |error| OpenError {
        error,
        tls_failed: false,
    };
    let (stream, tls) = match connect(host, params, opts).await {
        Ok(c) => c,
        Err(Err(e)) => return Err(failed(e)),
        Err(Ok(e)) => {
            let (errno, text) = match e.kind() {
                std::io::ErrorKind::TimedOut => {
                    (libc::ETIMEDOUT, "Connection timed out".to_string())
                }
                _ => (
                    e.raw_os_error().unwrap_or(libc::ECONNREFUSED),
                    strip_os_error(&e),
                ),
            };
            let err = SmtpError {
                errno,
                errno_text: Some(text),
                message: None,
                with_host: false,
            };
            return Err(failed(ConvError::Temp(err)));
        }
    };
    let facts = stream.get_ref().and_then(TfoIo::facts);
    let (tfo, rtt, connected_at) = match facts {
        Some(f) => (f.tfo, f.rtt, f.connected_at),
        None => (
            ClientTfo::NotTried,
            Duration::ZERO,
            std::time::Instant::now(),
        ),
    };
    if let Some(t) = stream.get_ref().and_then(TfoIo::tcp) {
        let _ = t.set_nodelay(true);
    }
    let mut conn = Conn {
        stream,
        tls,
        tls_failed: false,
        host_name: host.name.clone(),
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
    };
    let caps = match greet(&mut conn, params).await {
        Ok(c) => c,
        Err(error) => {
            conn.quit(params.command_timeout).await;
            return Err(OpenError {
                error,
                tls_failed: conn.tls_failed,
            });
        }
    };
    // The kernel cannot tell a server that accepted our cookie from one that
    // ignored it (no TFO on that socket). On a path with a measurable round
    // trip the banner's timing can: with TFO it follows the SYN-ACK at once,
    // without it a full round trip later. When the two disagree the log keeps
    // the kernel's judgement and says so in the +tfo_detail item. On a path
    // of a few milliseconds the difference drowns in scheduling delays (a
    // busy server answers its banner a few ms late), so no judgement is made
    // below TFO_TIMING_MIN_RTT.
    let tfo_detail = match (tfo, conn.first_byte_at) {
        (ClientTfo::CookieAccepted, Some(t)) if rtt >= TFO_TIMING_MIN_RTT => {
            if t.saturating_duration_since(connected_at) < rtt / 2 {
                None
            } else {
                Some("cookie-unconfirmed")
            }
        }
        _ => None,
    };
    Ok(Session {
        conn,
        caps,
        tfo,
        tfo_detail,
        messages: 0,
        needs_rset: false,
        quit_timeout: params.command_timeout,
    })
}

/// The banner, EHLO, and on a connection not yet encrypted STARTTLS when
/// the server offers it (then EHLO again), or an error when TLS is
/// required and not offered.
async fn greet(conn: &mut Conn, params: &SmtpParams) -> Result<EhloCapabilities, ConvError> {
    let t = params.command_timeout;
    let banner = conn.read_reply(t, "initial connection").await?;
    if banner.code / 100 != 2 {
        return Err(classify(&banner, errno::SMTP_FORMAT, "initial connection"));
    }
    let mut caps = hello(conn, params).await?;
    if let Some(tls) = params.tls.as_ref().filter(|_| conn.tls.is_none()) {
        if caps.starttls {
            starttls(conn, params, tls).await?;
            // Everything learnt in clear is forgotten: EHLO again.
            caps = hello(conn, params).await?;
        } else if tls.require {
            return Err(temp(
                errno::TLS_REQUIRED,
                None,
                "a TLS session is required, but the server did not offer TLS support".into(),
            ));
        }
    }
    Ok(caps)
}

/// EHLO, or HELO when EHLO is refused.
async fn hello(conn: &mut Conn, params: &SmtpParams) -> Result<EhloCapabilities, ConvError> {
    let t = params.command_timeout;
    let ehlo_cmd = format!("EHLO {}", params.helo_data);
    conn.send(format!("{ehlo_cmd}\r\n").as_bytes(), t, false)
        .await?;
    let ehlo = conn.read_reply(t, &ehlo_cmd).await?;
    if ehlo.code / 100 == 2 {
        return Ok(EhloCapabilities::from_reply(&ehlo));
    }
    let helo_cmd = format!("HELO {}", params.helo_data);
    conn.send(format!("{helo_cmd}\r\n").as_bytes(), t, false)
        .await?;
    let helo = conn.read_reply(t, &helo_cmd).await?;
    if helo.code / 100 != 2 {
        return Err(classify(&helo, errno::SMTP_FORMAT, &helo_cmd));
    }
    Ok(EhloCapabilities::default())
}

/// STARTTLS and the handshake. A refusal is fatal only when TLS is
/// required; a failed handshake always is for this connection (the caller
/// may try again in clear, `tls_tempfail_tryclear`).
async fn starttls(conn: &mut Conn, params: &SmtpParams, tls: &TlsParams) -> Result<(), ConvError> {
    let t = params.command_timeout;
    conn.send(b"STARTTLS\r\n", t, false).await?;
    let r = conn.read_reply(t, "STARTTLS").await?;
    if r.code != 220 {
        if tls.require {
            let mut e = classify(&r, errno::TLS_REQUIRED, "STARTTLS");
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
            errno::TLS_FAILURE,
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
                errno::TLS_FAILURE,
                None,
                format!("TLS session: (handshake): {e}"),
            ))
        }
    }
}

/// Deliver `msg` to one host, down a parked connection from `pool` when
/// there is one. Never panics on peer behaviour; every failure becomes an
/// outcome. The `&str` with the pool names the transport.
pub async fn deliver_to_host(
    host: &Host,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
    pool: Option<(PoolRef<'_>, &str)>,
) -> HostResult {
    let n = msg.recipients.len();
    let result = |tfo, tfo_detail, chunking, continued, outcomes, try_next_host, tls| HostResult {
        host: host.clone(),
        tfo,
        tfo_detail,
        chunking,
        continued,
        skipped: false,
        outcomes,
        try_next_host,
        tls,
        tls_failed: false,
    };
    let slot = pool.map(|(p, transport)| {
        p.pool.slot(&ConnKey {
            transport: transport.to_string(),
            ip: host.ip,
            port: host.port,
            interface: params.interface,
            helo: params.helo_data.clone(),
        })
    });
    let ticket = pool.and_then(|(p, _)| p.ticket);
    let mut guard = match &slot {
        Some(s) => Some(match s.clone().try_lock_owned() {
            Ok(g) => g,
            Err(_) => {
                // Busy with another message: wait without holding a share
                // of queue_run_max.
                if let Some(t) = ticket {
                    t.release();
                }
                s.clone().lock_owned().await
            }
        }),
        None => None,
    };
    if guard.as_ref().is_some_and(|g| g.down.is_some()) {
        // Exim's words for a host it does not try because of an earlier
        // failure (ERRNO_HRETRY).
        let e = SmtpError {
            errno: -53,
            errno_text: None,
            message: Some("retry time not reached for any host".into()),
            with_host: false,
        };
        let mut r = result(
            ClientTfo::NotTried,
            None,
            false,
            false,
            all_of(RcptOutcome::Deferred(e), n),
            true,
            None,
        );
        r.skipped = true;
        return r;
    }
    let mut parked = guard.as_mut().and_then(|g| g.idle.take());
    // A connection in clear is no use where TLS is required.
    if params.tls.as_ref().is_some_and(|t| t.require) {
        if let Some(mut s) = parked.take_if(|s| s.conn.tls.is_none()) {
            s.conn.quit(params.command_timeout).await;
        }
    }
    loop {
        let reused = parked.is_some();
        let mut sess = match parked.take() {
            Some(s) => s,
            None => match open(host, params).await {
                Ok(s) => s,
                Err(OpenError { error, tls_failed }) => {
                    let (outcome, next) = match error {
                        ConvError::Temp(e) => {
                            // Not after a failed TLS handshake: the host
                            // may yet be tried in clear.
                            if let Some(g) = guard.as_mut().filter(|_| !tls_failed) {
                                g.down = Some(e.clone());
                            }
                            (RcptOutcome::Deferred(e), true)
                        }
                        ConvError::Perm(e) => (RcptOutcome::Failed(e), false),
                    };
                    let mut r = result(
                        ClientTfo::NotTried,
                        None,
                        false,
                        false,
                        all_of(outcome, n),
                        next,
                        None,
                    );
                    r.tls_failed = tls_failed;
                    return r;
                }
            },
        };
        // An earlier transaction left unfinished: RSET, or start again
        // on a new connection if that fails.
        if sess.needs_rset {
            if !reset(&mut sess.conn, params.command_timeout).await {
                sess.conn.quit(params.command_timeout).await;
                continue;
            }
            sess.needs_rset = false;
        }
        let replies_before = sess.conn.replies;
        sess.conn.used_bdat = false;
        sess.conn.data_written = 0;
        let r = transaction(&mut sess, params, msg).await;
        // A parked connection the server closed meanwhile fails at once
        // (no reply, or a 421 as the first one): start again on a new one.
        let replies = sess.conn.replies - replies_before;
        if reused && sess.conn.broken && (replies == 0 || (replies == 1 && sess.conn.closing)) {
            sess.conn.quit(params.command_timeout).await;
            continue;
        }
        sess.messages += 1;
        let continued = sess.messages > 1;
        let (tfo, tfo_detail) = if continued {
            (ClientTfo::NotTried, None)
        } else {
            (sess.tfo, sess.tfo_detail)
        };
        let chunking = sess.conn.used_bdat;
        // A continued connection keeps the TLS it was opened with.
        let tls = sess.conn.tls.clone();
        let limit = params.connection_max_messages;
        let keep = !sess.conn.broken && (limit == 0 || sess.messages < limit);
        match guard.as_mut() {
            Some(g) if keep => g.idle = Some(sess),
            _ => sess.conn.quit(params.command_timeout).await,
        }
        // A temporary failure of the whole conversation lets the next host
        // be tried; a permanent one does not.
        let (outcomes, try_next_host) = match r {
            Ok(outcomes) => (outcomes, false),
            Err(ConvError::Temp(e)) => (all_of(RcptOutcome::Deferred(e), n), true),
            Err(ConvError::Perm(e)) => (all_of(RcptOutcome::Failed(e), n), false),
        };
        return result(
            tfo,
            tfo_detail,
            chunking,
            continued,
            outcomes,
            try_next_host,
            tls,
        );
    }
}

/// RSET on a parked connection; false if the server did not say 2xx.
async fn reset(conn: &mut Conn, t: Duration) -> bool {
    if conn.send(b"RSET\r\n", t, false).await.is_err() {
        return false;
    }
    matches!(conn.read_reply(t, "RSET").await, Ok(r) if r.code / 100 == 2)
}

/// "Connection refused" rather than "Connection refused (os error 111)".
fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

/// One message on an open session: MAIL, RCPTs, DATA or BDAT, the final
/// reply. Leaves the session ready for the next MAIL (or marked for RSET,
/// or broken).
async fn transaction(
    sess: &mut Session,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
) -> Result<Vec<RcptOutcome>, ConvError> {
    let conn = &mut sess.conn;
    conn.pipelined = false;
    let caps = &sess.caps;
    let pipelining = caps.pipelining && !params.avoid_pipelining;
    let mut mail = format!("MAIL FROM:<{}>", msg.sender);
    if caps.size_advertised {
        mail.push_str(&format!(" SIZE={}", msg.size));
    }
    if caps.eight_bit_mime && msg.body_8bitmime {
        mail.push_str(" BODY=8BITMIME");
    }
    let rcpt_cmds: Vec<String> = msg
        .recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>"))
        .collect();

    let outcomes: Vec<Option<RcptOutcome>> = vec![None; msg.recipients.len()];
    // Until the final reply says otherwise, the server may hold an open
    // transaction.
    sess.needs_rset = true;
    let r = if pipelining && caps.chunking && params.try_chunking {
        transaction_bdat(conn, params, msg, &mail, &rcpt_cmds, outcomes).await
    } else {
        transaction_data(conn, params, msg, pipelining, &mail, &rcpt_cmds, outcomes).await
    };
    if let Ok((_, clean)) = &r {
        sess.needs_rset = !clean;
    }
    r.map(|(o, _)| o)
}

/// MAIL, RCPTs and DATA (pipelined in one write when `pipelining`), then
/// the dot-stuffed message. Returns the outcomes and whether the server is
/// back outside a transaction.
async fn transaction_data(
    conn: &mut Conn,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
    pipelining: bool,
    mail: &str,
    rcpt_cmds: &[String],
    mut outcomes: Vec<Option<RcptOutcome>>,
) -> Result<(Vec<RcptOutcome>, bool), ConvError> {
    let t = params.command_timeout;
    if pipelining {
        // MAIL, every RCPT and DATA in one write; replies read in order.
        let mut batch = String::with_capacity(64 + 40 * rcpt_cmds.len());
        batch.push_str(mail);
        batch.push_str("\r\n");
        for c in rcpt_cmds {
            batch.push_str(c);
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        conn.send(batch.as_bytes(), t, false).await?;
        conn.pipelined = true;
    } else {
        conn.send(format!("{mail}\r\n").as_bytes(), t, false)
            .await?;
    }
    let r = conn.read_reply(t, mail).await?;
    if r.code / 100 != 2 {
        let err = classify(&r, errno::MAIL_4XX, &format!("{}{mail}", conn.prefix()));
        if pipelining {
            // Drain the replies to the pipelined RCPTs and DATA (a failure
            // here leaves the connection marked broken).
            for c in rcpt_cmds.iter().map(String::as_str).chain(["DATA"]) {
                if conn.read_reply(t, c).await.is_err() {
                    break;
                }
            }
        }
        return Err(err);
    }
    for (i, cmd) in rcpt_cmds.iter().enumerate() {
        if !pipelining {
            conn.send(format!("{cmd}\r\n").as_bytes(), t, false).await?;
        }
        // RCPT errors name the command without the "pipelined " prefix.
        let was = std::mem::replace(&mut conn.pipelined, false);
        let r = conn.read_reply(t, cmd).await;
        conn.pipelined = was;
        outcomes[i] = rcpt_outcome(&r?, cmd);
    }
    let any_accepted = outcomes.iter().any(Option::is_none);
    if !pipelining {
        if !any_accepted {
            return Ok((finish(outcomes), false));
        }
        conn.send(b"DATA\r\n", t, false).await?;
    }
    let r = conn.read_reply(t, "DATA").await?;
    if r.code / 100 != 3 {
        if !any_accepted {
            return Ok((finish(outcomes), false));
        }
        return Err(classify(
            &r,
            errno::DATA_4XX,
            &format!("{}DATA", conn.prefix()),
        ));
    }
    conn.pipelined = false;
    if !any_accepted {
        // The server said 354 although every RCPT failed: end it cleanly.
        conn.send(b".\r\n", params.data_timeout, true).await?;
        conn.read_reply(params.final_timeout, "end of data").await?;
        return Ok((finish(outcomes), true));
    }
    let mut stuffer = DotStuffer::new();
    let mut wire =
        Vec::with_capacity(msg.headers.len() + msg.body.len() + msg.body.len() / 32 + 16);
    stuffer.encode(msg.headers, &mut wire);
    stuffer.encode(b"\n", &mut wire);
    stuffer.encode(msg.body, &mut wire);
    stuffer.finish(&mut wire);
    conn.send(&wire, params.data_timeout, true).await?;
    let r = conn.read_reply(params.final_timeout, "end of data").await?;
    apply_final_reply(&mut outcomes, &r);
    Ok((finish(outcomes), true))
}

/// PIPELINING + CHUNKING: MAIL, every RCPT and `BDAT n LAST` with the whole
/// message go in one write; the replies are read in order. One round trip
/// fewer than DATA, which waits for 354.
async fn transaction_bdat(
    conn: &mut Conn,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
    mail: &str,
    rcpt_cmds: &[String],
    mut outcomes: Vec<Option<RcptOutcome>>,
) -> Result<(Vec<RcptOutcome>, bool), ConvError> {
    let t = params.command_timeout;
    let mut body =
        Vec::with_capacity(msg.headers.len() + msg.body.len() + msg.body.len() / 32 + 16);
    let mut enc = DotStuffer::crlf_only();
    enc.encode(msg.headers, &mut body);
    enc.encode(b"\n", &mut body);
    enc.encode(msg.body, &mut body);
    enc.finish(&mut body);
    let mut wire = Vec::with_capacity(body.len() + 64 + 40 * rcpt_cmds.len());
    wire.extend_from_slice(mail.as_bytes());
    wire.extend_from_slice(b"\r\n");
    for c in rcpt_cmds {
        wire.extend_from_slice(c.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(format!("BDAT {} LAST\r\n", body.len()).as_bytes());
    wire.extend_from_slice(&body);
    conn.used_bdat = true;
    conn.send(&wire, params.data_timeout, true).await?;
    conn.pipelined = true;
    let r = conn.read_reply(t, mail).await?;
    let mail_ok = r.code / 100 == 2;
    let mail_err = (!mail_ok).then(|| classify(&r, errno::MAIL_4XX, &format!("pipelined {mail}")));
    conn.pipelined = false;
    for (i, cmd) in rcpt_cmds.iter().enumerate() {
        let r = conn.read_reply(t, cmd).await?;
        if mail_ok {
            outcomes[i] = rcpt_outcome(&r, cmd);
        }
    }
    let r = conn.read_reply(params.final_timeout, "end of data").await?;
    if let Some(e) = mail_err {
        return Err(e);
    }
    apply_final_reply(&mut outcomes, &r);
    Ok((finish(outcomes), true))
}

/// The reply at the end of the data decides every recipient still open.
fn apply_final_reply(outcomes: &mut [Option<RcptOutcome>], r: &Reply) {
    let confirmation = reply_text(r);
    let end = (r.code / 100 != 2).then(|| classify(r, errno::DATA_4XX, "end of data"));
    for o in outcomes.iter_mut().filter(|o| o.is_none()) {
        *o = Some(match &end {
            None => RcptOutcome::Delivered {
                confirmation: confirmation.clone(),
            },
            Some(ConvError::Perm(e)) => RcptOutcome::Failed(e.clone()),
            Some(ConvError::Temp(e)) => RcptOutcome::Deferred(e.clone()),
        });
    }
}

/// A non-2xx reply to RCPT as that recipient's outcome.
fn rcpt_outcome(r: &Reply, cmd: &str) -> Option<RcptOutcome> {
    (r.code / 100 != 2).then(|| match classify(r, errno::RCPT_4XX, cmd) {
        ConvError::Perm(e) => RcptOutcome::Failed(e),
        ConvError::Temp(e) => RcptOutcome::Deferred(e),
    })
}

fn finish(outcomes: Vec<Option<RcptOutcome>>) -> Vec<RcptOutcome> {
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(RcptOutcome::Deferred(SmtpError {
                errno: errno::SMTP_FORMAT,
                errno_text: None,
                message: Some("no reply from remote host".into()),
                with_host: true,
            }))
        })
        .collect()
}
