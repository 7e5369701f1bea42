//! The smtp transport: one SMTP client conversation per host, with TCP Fast
//! Open for hosts matching `hosts_try_fastopen`, PIPELINING when offered, and
//! per-recipient outcomes that the delivery process turns into log lines.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use oxim_net::{ClientTfo, ConnectOptions};
use oxim_smtp::{DotStuffer, EhloCapabilities, Reply, ReplyParser};
use oxim_tls::{ClientTls, ClientTlsOptions, MaybeTls, TfoIo, TlsSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Shortest path round trip on which the banner's timing is used to check
/// that a server really used our TFO cookie.
const TFO_TIMING_MIN_RTT: Duration = Duration::from_millis(10);

/// A host to try, with the name it was listed under.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub const SMTP_FORMAT: i32 = -17;
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
    pub outcomes: Vec<RcptOutcome>,
    /// Whether trying another host could help (connection-level failure).
    pub try_next_host: bool,
    /// The session was encrypted (` X=`, ` CV=` on `=>` lines).
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

struct Conn {
    stream: MaybeTls<TfoIo>,
    /// What TLS negotiated, once up.
    tls: Option<TlsSession>,
    tls_failed: bool,
    host_name: String,
    parser: ReplyParser,
    /// When the first byte from the server arrived (the banner).
    first_byte_at: Option<std::time::Instant>,
    used_bdat: bool,
    buf: Vec<u8>,
    host_text: String,
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

impl Conn {
    async fn read_reply(&mut self, timeout: Duration, after: &str) -> Result<Reply, ConvError> {
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => {
                    return Err(temp(
                        errno::SMTP_FORMAT,
                        None,
                        format!(
                            "bad SMTP reply in response to {after} from {}: {e}",
                            self.host_text
                        ),
                    ))
                }
            }
            self.buf.resize(16 * 1024, 0);
            let n = match tokio::time::timeout(timeout, self.stream.read(&mut self.buf)).await {
                Err(_) => {
                    return Err(temp(
                        libc::ETIMEDOUT,
                        Some("Connection timed out"),
                        format!("SMTP timeout after {after}"),
                    ))
                }
                Ok(Err(e)) => {
                    return Err(temp(
                        e.raw_os_error().unwrap_or(errno::SMTP_CLOSED),
                        Some(&strip_os_error(&e)),
                        format!("SMTP error after {after}"),
                    ))
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(temp(
                    errno::SMTP_CLOSED,
                    None,
                    format!("Remote host closed connection in response to {after}"),
                ));
            }
            if self.first_byte_at.is_none() {
                self.first_byte_at = Some(std::time::Instant::now());
            }
            self.parser.feed(&self.buf[..n]);
        }
    }

    async fn send(&mut self, data: &[u8], timeout: Duration, what: &str) -> Result<(), ConvError> {
        match tokio::time::timeout(timeout, self.stream.write_all(data)).await {
            Err(_) => Err(temp(
                libc::ETIMEDOUT,
                Some("Connection timed out"),
                format!("SMTP timeout while sending {what}"),
            )),
            Ok(Err(e)) => Err(temp(
                e.raw_os_error().unwrap_or(errno::SMTP_CLOSED),
                Some(&strip_os_error(&e)),
                format!("send() to {} failed while sending {what}", self.host_text),
            )),
            Ok(Ok(())) => Ok(()),
        }
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
async fn open(
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

/// Deliver `msg` to one host. Never panics on peer behaviour; every failure
/// becomes an outcome.
pub async fn deliver_to_host(host: &Host, params: &SmtpParams, msg: &Outgoing<'_>) -> HostResult {
    let opts = ConnectOptions {
        try_tfo: host.try_tfo,
        timeout: params.connect_timeout,
        bind: params.interface,
        syn_data: Vec::new(),
    };
    let all = |o: RcptOutcome| vec![o; msg.recipients.len()];
    let (stream, tls) = match open(host, params, opts).await {
        Ok(c) => c,
        Err(Err(ConvError::Temp(e) | ConvError::Perm(e))) => {
            return HostResult {
                host: host.clone(),
                tfo: ClientTfo::NotTried,
                tfo_detail: None,
                chunking: false,
                outcomes: all(RcptOutcome::Deferred(e)),
                try_next_host: true,
                tls: None,
                tls_failed: false,
            };
        }
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
            return HostResult {
                host: host.clone(),
                tfo: ClientTfo::NotTried,
                tfo_detail: None,
                chunking: false,
                outcomes: all(RcptOutcome::Deferred(SmtpError {
                    errno,
                    errno_text: Some(text),
                    message: None,
                    with_host: false,
                })),
                try_next_host: true,
                tls: None,
                tls_failed: false,
            };
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
    };
    let result = converse(&mut conn, params, msg).await;
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
    match result {
        Ok(outcomes) => HostResult {
            host: host.clone(),
            tfo,
            tfo_detail,
            chunking: conn.used_bdat,
            outcomes,
            try_next_host: false,
            tls: conn.tls.clone(),
            tls_failed: false,
        },
        Err(ConvError::Temp(e)) => HostResult {
            host: host.clone(),
            tfo,
            tfo_detail,
            chunking: conn.used_bdat,
            outcomes: all(RcptOutcome::Deferred(e)),
            try_next_host: true,
            tls: conn.tls.clone(),
            tls_failed: conn.tls_failed,
        },
        Err(ConvError::Perm(e)) => HostResult {
            host: host.clone(),
            tfo,
            tfo_detail,
            chunking: conn.used_bdat,
            outcomes: all(RcptOutcome::Failed(e)),
            try_next_host: false,
            tls: conn.tls.clone(),
            tls_failed: false,
        },
    }
}

/// "Connection refused" rather than "Connection refused (os error 111)".
fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

async fn converse(
    conn: &mut Conn,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
) -> Result<Vec<RcptOutcome>, ConvError> {
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
    let pipelining = caps.pipelining && !params.avoid_pipelining;
    let mut mail = format!("MAIL FROM:<{}>", msg.sender);
    if caps.size.is_some() {
        mail.push_str(&format!(" SIZE={}", msg.size));
    }
    let rcpt_cmds: Vec<String> = msg
        .recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>"))
        .collect();

    let mut outcomes: Vec<Option<RcptOutcome>> = vec![None; msg.recipients.len()];
    if pipelining && caps.chunking && params.try_chunking {
        return converse_bdat(conn, params, msg, &mail, &rcpt_cmds, outcomes).await;
    }
    if pipelining {
        // MAIL, every RCPT and DATA in one write; replies read in order.
        let mut batch = String::with_capacity(64 + 40 * rcpt_cmds.len());
        batch.push_str(&mail);
        batch.push_str("\r\n");
        for c in &rcpt_cmds {
            batch.push_str(c);
            batch.push_str("\r\n");
        }
        batch.push_str("DATA\r\n");
        conn.send(batch.as_bytes(), t, &mail).await?;
    } else {
        conn.send(format!("{mail}\r\n").as_bytes(), t, &mail)
            .await?;
    }
    let r = conn.read_reply(t, &mail).await?;
    if r.code / 100 != 2 {
        if pipelining {
            // Drain the replies to the pipelined RCPTs and DATA.
            for c in &rcpt_cmds {
                let _ = conn.read_reply(t, c).await;
            }
            let _ = conn.read_reply(t, "DATA").await;
        }
        quit(conn, params).await;
        return Err(classify(&r, errno::MAIL_4XX, &mail));
    }
    for (i, cmd) in rcpt_cmds.iter().enumerate() {
        if !pipelining {
            conn.send(format!("{cmd}\r\n").as_bytes(), t, cmd).await?;
        }
        let r = conn.read_reply(t, cmd).await?;
        outcomes[i] = rcpt_outcome(&r, cmd);
    }
    let any_accepted = outcomes.iter().any(Option::is_none);
    if !pipelining {
        if !any_accepted {
            quit(conn, params).await;
            return Ok(finish(outcomes));
        }
        conn.send(b"DATA\r\n", t, "DATA").await?;
    }
    let r = conn.read_reply(t, "DATA").await?;
    if r.code / 100 != 3 {
        quit(conn, params).await;
        if !any_accepted {
            return Ok(finish(outcomes));
        }
        return Err(classify(&r, errno::DATA_4XX, "DATA"));
    }
    if !any_accepted {
        // The server said 354 although every RCPT failed: end it cleanly.
        conn.send(b".\r\n", params.data_timeout, "data block")
            .await?;
        let _ = conn.read_reply(params.final_timeout, "end of data").await;
        quit(conn, params).await;
        return Ok(finish(outcomes));
    }
    let mut stuffer = DotStuffer::new();
    let mut wire =
        Vec::with_capacity(msg.headers.len() + msg.body.len() + msg.body.len() / 32 + 16);
    stuffer.encode(msg.headers, &mut wire);
    stuffer.encode(b"\n", &mut wire);
    stuffer.encode(msg.body, &mut wire);
    stuffer.finish(&mut wire);
    conn.send(&wire, params.data_timeout, "data block").await?;
    let r = conn.read_reply(params.final_timeout, "end of data").await?;
    apply_final_reply(&mut outcomes, &r);
    quit(conn, params).await;
    Ok(finish(outcomes))
}

/// EHLO, or HELO when EHLO is refused.
async fn hello(conn: &mut Conn, params: &SmtpParams) -> Result<EhloCapabilities, ConvError> {
    let t = params.command_timeout;
    let ehlo_cmd = format!("EHLO {}", params.helo_data);
    conn.send(format!("{ehlo_cmd}\r\n").as_bytes(), t, &ehlo_cmd)
        .await?;
    let ehlo = conn.read_reply(t, &ehlo_cmd).await?;
    if ehlo.code / 100 == 2 {
        return Ok(EhloCapabilities::from_reply(&ehlo));
    }
    let helo_cmd = format!("HELO {}", params.helo_data);
    conn.send(format!("{helo_cmd}\r\n").as_bytes(), t, &helo_cmd)
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
    conn.send(b"STARTTLS\r\n", t, "STARTTLS").await?;
    let r = conn.read_reply(t, "STARTTLS").await?;
    if r.code != 220 {
        if tls.require {
            let mut e = classify(&r, errno::TLS_REQUIRED, "STARTTLS");
            if let ConvError::Perm(x) = e {
                e = ConvError::Temp(x);
            }
            quit(conn, params).await;
            return Err(e);
        }
        return Ok(());
    }
    // Replies pipelined behind the 220 would be plaintext injected into
    // the TLS session: there must be none.
    if conn.parser.buffered() > 0 {
        conn.tls_failed = true;
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
            Err(temp(
                errno::TLS_FAILURE,
                None,
                format!("TLS session: (handshake): {e}"),
            ))
        }
    }
}

/// PIPELINING + CHUNKING: MAIL, every RCPT and `BDAT n LAST` with the whole
/// message go in one write; the replies are read in order. One round trip
/// fewer than DATA, which waits for 354.
async fn converse_bdat(
    conn: &mut Conn,
    params: &SmtpParams,
    msg: &Outgoing<'_>,
    mail: &str,
    rcpt_cmds: &[String],
    mut outcomes: Vec<Option<RcptOutcome>>,
) -> Result<Vec<RcptOutcome>, ConvError> {
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
    conn.send(&wire, params.data_timeout, mail).await?;
    let r = conn.read_reply(t, mail).await?;
    let mail_ok = r.code / 100 == 2;
    let mail_err = (!mail_ok).then(|| classify(&r, errno::MAIL_4XX, mail));
    for (i, cmd) in rcpt_cmds.iter().enumerate() {
        let r = conn.read_reply(t, cmd).await?;
        if mail_ok {
            outcomes[i] = rcpt_outcome(&r, cmd);
        }
    }
    let r = conn.read_reply(params.final_timeout, "end of data").await?;
    quit(conn, params).await;
    if let Some(e) = mail_err {
        return Err(e);
    }
    apply_final_reply(&mut outcomes, &r);
    Ok(finish(outcomes))
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

/// Send QUIT and close. The reply to QUIT does not change any outcome, so we
/// do not wait for it: the write side is shut and the socket dropped.
async fn quit(conn: &mut Conn, params: &SmtpParams) {
    let _ = conn.send(b"QUIT\r\n", params.command_timeout, "QUIT").await;
    let _ = conn.stream.shutdown().await;
}
