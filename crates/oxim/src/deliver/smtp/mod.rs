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

mod auth;
mod callout;
mod conn;
mod connect;
mod ehlo_cache;
mod pool;

use std::net::IpAddr;
use std::time::Duration;

use crate::errno::Errno;
use oxim_log::Tfo;
use oxim_net::ClientTfo;
use oxim_smtp::{BodyType, ClientEvent, Envelope, RcptVerdict, Reply, TransactionResult, Verdict};
use oxim_tls::{ClientTlsOptions, TlsSession};

pub use auth::ClientAuthParams;
pub use callout::{callout_open, reply_lines, CalloutConn};
use conn::{all_of, classify, open, reply_text, OpenError, OutgoingConn, Session};
pub use ehlo_cache::EhloCache;
pub use pool::{ConnKey, Pool, PoolRef, Ticket};

/// A remote host at one address: the one to try, and then the one a
/// delivery outcome names (`H=name [ip]`), with the name it was listed
/// under.
///
/// The host types, from routing to the log: a router chooses
/// [`RoutedHost`](crate::deliver::route::RoutedHost)s (a name, perhaps not
/// yet resolved); the smtp transport resolves them into `Host`s; log lines
/// borrow a `Host` as [`oxim_log::RemoteHost`]. The client of an SMTP
/// session is an [`oxim_log::SenderHost`] in its log lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    pub name: String,
    pub ip: IpAddr,
    pub port: u16,
    /// `hosts_try_fastopen` matched this host.
    pub try_tfo: bool,
}

impl Host {
    /// The host as a log line shows it.
    pub fn log(&self) -> oxim_log::RemoteHost<'_> {
        oxim_log::RemoteHost {
            name: &self.name,
            ip: self.ip,
            port: self.port,
        }
    }
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
    /// Early pipelining allowed with this host (`hosts_pipe_connect`
    /// matched and `helo_data` does not need `$sending_ip_address`): the
    /// cache of EHLO answers to use and keep.
    pub pipe_connect: Option<EhloCache>,
    /// SMTP AUTH for this host; `None`: no client authenticators.
    pub auth: Option<ClientAuthParams>,
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

/// Why a recipient was not delivered (fields of Exim's `defer (N): ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpError {
    pub errno: Errno,
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
    /// What TFO did for the connection, as the log shows it.
    pub tfo: Tfo,
    /// The message went with BDAT (CHUNKING).
    pub chunking: bool,
    /// The commands were pipelined (` L` with `+pipelining`).
    pub pipelined: bool,
    /// ... starting before the banner (` L*`).
    pub early_pipe: bool,
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
    /// Authenticated as `name[:id]` (` A=` on `=>` lines).
    pub auth: Option<String>,
    /// Log lines from authentication attempts (`... authenticator failed
    /// H=...`), for the caller to log with the message id.
    pub auth_notes: Vec<String>,
    /// The session start (`PS=` with `+protocol_detail`); `None` for a
    /// host not tried or a continued connection.
    pub sequence: Option<String>,
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
    /// `AUTH=` for MAIL on an authenticated connection (the transport's
    /// `authenticated_sender`, else the one the message came with).
    pub auth_sender: Option<String>,
}

#[derive(Debug)]
enum ConvError {
    /// Temporary, affects all recipients.
    Temp(SmtpError),
    /// A 5xx to MAIL or the like: all recipients fail.
    Perm(SmtpError),
}

fn temp(errno: Errno, errno_text: Option<&str>, message: String) -> ConvError {
    ConvError::Temp(SmtpError {
        errno,
        errno_text: errno_text.map(str::to_string),
        message: Some(message),
        with_host: true,
    })
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
    let result = |tfo, chunking, continued, outcomes, try_next_host, tls| HostResult {
        host: host.clone(),
        tfo,
        chunking,
        pipelined: false,
        early_pipe: false,
        continued,
        skipped: false,
        outcomes,
        try_next_host,
        tls,
        tls_failed: false,
        auth: None,
        auth_notes: Vec::new(),
        sequence: None,
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
            errno: Errno::HostRetry,
            errno_text: None,
            message: Some("retry time not reached for any host".into()),
            with_host: false,
        };
        let mut r = result(
            Tfo::client(ClientTfo::NotTried),
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
                Err(OpenError {
                    error,
                    tls_failed,
                    auth_notes,
                    sequence,
                }) => {
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
                        Tfo::client(ClientTfo::NotTried),
                        false,
                        false,
                        all_of(outcome, n),
                        next,
                        None,
                    );
                    r.tls_failed = tls_failed;
                    r.auth_notes = auth_notes;
                    r.sequence = (!sequence.is_empty()).then_some(sequence);
                    return r;
                }
            },
        };
        // An earlier transaction left unfinished: RSET, or start again
        // on a new connection if that fails.
        if sess.conn.smtp.needs_rset() && !reset(&mut sess.conn).await {
            sess.conn.quit(params.command_timeout).await;
            continue;
        }
        let replies_before = sess.conn.smtp.replies();
        sess.conn.used_bdat = false;
        sess.conn.data_written = 0;
        let r = transaction(&mut sess, msg).await;
        // The message in the SYN: the connection was made by the
        // transaction's first write, and failed.
        if let (Err(ConvError::Temp(e)), None, Some(g)) = (&r, sess.conn.facts, guard.as_mut()) {
            g.down = Some(e.clone());
        }
        // A parked connection the server closed meanwhile fails at once
        // (no reply, or a 421 as the first one): start again on a new one.
        let replies = sess.conn.smtp.replies() - replies_before;
        let closing = sess.conn.smtp.closing();
        if reused && sess.conn.broken && (replies == 0 || (replies == 1 && closing)) {
            sess.conn.quit(params.command_timeout).await;
            continue;
        }
        sess.messages += 1;
        let continued = sess.messages > 1;
        let tfo = if continued {
            Tfo::client(ClientTfo::NotTried)
        } else {
            sess.log_tfo()
        };
        let chunking = sess.conn.used_bdat;
        let pipelined = sess.caps().pipelining && !params.avoid_pipelining;
        let early_pipe = sess.early_pipe && !continued;
        // A continued connection keeps the TLS it was opened with.
        let tls = sess.conn.tls.clone();
        let auth = sess.auth.clone();
        let auth_notes = std::mem::take(&mut sess.auth_notes);
        let sequence = (!continued).then(|| sess.conn.smtp.sequence().to_string());
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
        let mut r = result(tfo, chunking, continued, outcomes, try_next_host, tls);
        r.pipelined = pipelined;
        r.early_pipe = early_pipe;
        r.auth = auth;
        r.auth_notes = auth_notes;
        r.sequence = sequence;
        return r;
    }
}

/// RSET on a parked connection; false if the server did not say 2xx.
async fn reset(conn: &mut OutgoingConn) -> bool {
    matches!(conn.exchange("RSET", "RSET").await, Ok(r) if r.is_positive())
}

use crate::errno::io_text as strip_os_error;

/// One message on an open session: MAIL, RCPTs, DATA or BDAT, the final
/// reply, as `oxim_smtp::ClientSession` conducts them. Leaves the session
/// ready for the next MAIL (or marked for RSET, or broken).
async fn transaction(
    sess: &mut Session,
    msg: &Outgoing<'_>,
) -> Result<Vec<RcptOutcome>, ConvError> {
    let env = Envelope {
        from: msg.sender.to_string(),
        rcpts: msg.recipients.to_vec(),
        size: Some(msg.size as u64),
        body: msg.body_8bitmime.then_some(BodyType::EightBitMime),
        smtputf8: false,
        auth: sess.auth.as_ref().and(msg.auth_sender.clone()),
    };
    let conn = &mut sess.conn;
    if !conn.smtp.transaction(env, &[msg.headers, b"\n", msg.body]) {
        conn.broken = true;
        return Err(temp(
            Errno::SmtpFormat,
            None,
            "SMTP client: cannot start a transaction now".into(),
        ));
    }
    conn.used_bdat = conn.smtp.transaction_uses_bdat();
    let ev = conn.drive().await;
    conn.broken |= conn.smtp.closing();
    let result = match ev {
        Ok(ClientEvent::Done(r)) => r,
        // The banner or EHLO reply owed to an early-pipelined EHLO came
        // first and refused: the connection is unusable.
        Ok(ClientEvent::Refused { reply, after, .. }) => {
            conn.broken = true;
            return Err(classify(&reply, Errno::SmtpFormat, &after));
        }
        Ok(other) => {
            conn.broken = true;
            return Err(temp(
                Errno::SmtpFormat,
                None,
                format!("SMTP client: unexpected {other:?}"),
            ));
        }
        // A refused pipelined MAIL decides, whatever happens to the
        // replies drained behind it.
        Err(e) if conn.smtp.awaiting().is_some_and(|a| a.draining) => {
            let r = conn.smtp.abandon();
            return match outcomes(&r) {
                Err(mail) => Err(mail),
                Ok(_) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    outcomes(&result)
}

/// The outcome of every recipient from the replies: MAIL's or DATA's
/// refusal for all, else each one's RCPT refusal or the final reply.
fn outcomes(r: &TransactionResult) -> Result<Vec<RcptOutcome>, ConvError> {
    let prefix = |p: bool| if p { "pipelined " } else { "" };
    match r.verdict() {
        Verdict::Mail(m) => Err(classify(
            m,
            Errno::Mail4xx,
            &format!("{}{}", prefix(r.mail_pipelined), r.mail_command),
        )),
        Verdict::Data(d) => Err(classify(
            d,
            Errno::Data4xx,
            &format!("{}DATA", prefix(r.data_pipelined)),
        )),
        Verdict::Recipients(v) => Ok(v
            .iter()
            .zip(&r.rcpt_commands)
            .map(|(v, cmd)| match v {
                RcptVerdict::Refused(x) => rcpt_outcome(x, cmd),
                RcptVerdict::Final(f) => final_outcome(f),
                RcptVerdict::NoReply => RcptOutcome::Deferred(SmtpError {
                    errno: Errno::SmtpFormat,
                    errno_text: None,
                    message: Some("no reply from remote host".into()),
                    with_host: true,
                }),
            })
            .collect()),
    }
}

/// The reply at the end of the data, for a recipient whose RCPT was
/// accepted.
fn final_outcome(r: &Reply) -> RcptOutcome {
    if r.is_positive() {
        return RcptOutcome::Delivered {
            confirmation: reply_text(r),
        };
    }
    match classify(r, Errno::Data4xx, "end of data") {
        ConvError::Perm(e) => RcptOutcome::Failed(e),
        ConvError::Temp(e) => RcptOutcome::Deferred(e),
    }
}

/// A refused RCPT as that recipient's outcome.
fn rcpt_outcome(r: &Reply, cmd: &str) -> RcptOutcome {
    match classify(r, Errno::Rcpt4xx, cmd) {
        ConvError::Perm(e) => RcptOutcome::Failed(e),
        ConvError::Temp(e) => RcptOutcome::Deferred(e),
    }
}
