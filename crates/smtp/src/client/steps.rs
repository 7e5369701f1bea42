//! What the client session asks of its caller ([`Step`]), what it reports
//! ([`ClientEvent`], [`Awaiting`]), and its policy ([`ClientConfig`]).

use super::*;
use crate::error::ReplyError;

/// How much of a first flight may go into a TCP Fast Open SYN: a
/// 1500-byte path's MSS less the largest TCP options of a SYN, so that a
/// whole transaction rides in the SYN on any ordinary path.
pub const SYN_DATA_MAX: usize = 1460 - 40;

/// What the I/O loop does next ([`ClientSession::next_step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes to the server. `data`: they carry message data
    /// (the transport's data timeout applies to them).
    Write {
        /// The bytes.
        bytes: Vec<u8>,
        /// Message data (BDAT with its chunk, or the dot-stuffed body).
        data: bool,
    },
    /// A reply is owed: read from the server and give the bytes to
    /// [`ClientSession::input`]. [`ClientSession::awaiting`] says which.
    Read,
    /// Something for the caller.
    Event(ClientEvent),
    /// Nothing to do until the caller starts something (a transaction, a
    /// command).
    Idle,
}

/// Something the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A positive EHLO reply (the caller may cache it). `tls`: it came
    /// over TLS. `early`: it answered an EHLO sent on the strength of a
    /// cached answer ([`ClientSession::start_early`]); `Some(true)` when it
    /// offers what the cached one did ([`EhloCapabilities::same_offer`]).
    Ehlo {
        /// The reply.
        reply: Reply,
        /// What it offers.
        caps: EhloCapabilities,
        /// It came over TLS.
        tls: bool,
        /// Early pipelining: whether it matches the cached answer.
        early: Option<bool>,
    },
    /// Greeting and hello done (and STARTTLS, when wanted): transactions
    /// and commands may start.
    Ready,
    /// The server refused the session: the reply to `after` (the greeting
    /// as `initial connection`, EHLO or HELO). `early`: it answered
    /// early-pipelined commands (the cached EHLO answer is no good). The
    /// session is over.
    Refused {
        /// The refusal.
        reply: Reply,
        /// What it answered, as Exim names it in errors.
        after: String,
        /// It answered early-pipelined commands.
        early: bool,
    },
    /// STARTTLS was accepted: run the TLS handshake, then call
    /// [`ClientSession::tls_started`]. `injected`: the server sent more
    /// after its 220, which must not be carried into the TLS session (give
    /// up on the connection).
    StartTls {
        /// Bytes followed the 220.
        injected: bool,
    },
    /// STARTTLS was refused although TLS is required. The session is over.
    StartTlsRefused(Reply),
    /// TLS is required but the server does not offer STARTTLS. The
    /// session is over.
    TlsNotOffered,
    /// The reply to [`ClientSession::command`].
    Reply(Reply),
    /// A transaction ended ([`ClientSession::transaction`]).
    Done(TransactionResult),
    /// The server's bytes are not an SMTP reply. The session is over.
    Malformed(ReplyError),
}

/// The reply the session waits for, for the caller's timeout choice and
/// for error texts (`SMTP timeout after pipelined MAIL FROM:<a@b>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    /// What it answers, as Exim names it: `initial connection`, the command
    /// (`EHLO name`, `MAIL FROM:<a@b> SIZE=10`), `end of data`.
    pub after: String,
    /// The command went pipelined with others (`pipelined ` in errors).
    pub pipelined: bool,
    /// The reply at the end of the data (the final timeout applies).
    pub final_reply: bool,
    /// It answers early-pipelined commands (banner or EHLO).
    pub early: bool,
    /// A MAIL refused with pipelined commands behind it: this reply is
    /// only drained, the transaction's outcome is known
    /// ([`ClientSession::abandon`]).
    pub draining: bool,
}

/// Client policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Name sent with EHLO/HELO.
    pub helo_name: String,
    /// Pipeline MAIL, RCPT and DATA/BDAT when the server offers PIPELINING.
    pub use_pipelining: bool,
    /// Send the body with BDAT when the server offers CHUNKING (and
    /// PIPELINING: the whole transaction then goes in one write).
    pub use_chunking: bool,
    /// STARTTLS when the server offers it: `None` never, `Some(false)`
    /// when offered, `Some(true)` required.
    pub starttls: Option<bool>,
    /// TLS is up from the start (`protocol = smtps`).
    pub tls_on_connect: bool,
    /// The caller will authenticate after the hello: an early-pipelined
    /// EHLO must be answered before the session is ready.
    pub auth: bool,
    /// Limits for reply parsing.
    pub reply_limits: crate::reply::ReplyLimits,
}

impl ClientConfig {
    /// Defaults: pipelining and chunking when offered, no TLS, no AUTH.
    pub fn new(helo_name: impl Into<String>) -> Self {
        Self {
            helo_name: helo_name.into(),
            use_pipelining: true,
            use_chunking: true,
            starttls: None,
            tls_on_connect: false,
            auth: false,
            reply_limits: crate::reply::ReplyLimits::default(),
        }
    }

    /// Whether a whole transaction may ride in a TCP Fast Open SYN with a
    /// server whose cached EHLO answer is `cached`: it takes replay-safe
    /// transactions (`XOXIM-TXID`) and CHUNKING, we would use BDAT, and
    /// nothing (STARTTLS, AUTH) must be answered first.
    pub fn syn_transaction_possible(&self, cached: &EhloCapabilities) -> bool {
        cached.tx_token
            && cached.chunking
            && cached.pipelining
            && cached.pipe_connect
            && self.use_chunking
            && self.use_pipelining
            && !self.auth
            && !self.tls_on_connect
            && !matches!(self.starttls, Some(true))
            && !(self.starttls.is_some() && cached.starttls)
    }
}
