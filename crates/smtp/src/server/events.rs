//! What the session hands its caller: parsed commands, protocol errors,
//! the events needing a policy decision, and the session's state.

use super::*;

/// The parsed `MAIL FROM:` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The reverse path without brackets; empty for `<>`. Quoted local parts
    /// keep their quotes. May be unqualified if
    /// [`ServerConfig::allow_unqualified_sender`] is set.
    pub from: String,
    /// All ESMTP parameters (keywords upper-cased), including those below.
    pub params: Vec<Param>,
    /// `SIZE=`.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<BodyType>,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
    /// `XOXIM-TXID=`: the client's token for this transaction (only where
    /// the server offered it, see [`crate::TX_TOKEN_KEYWORD`]).
    pub tx_token: Option<String>,
    /// The command argument as received (after `MAIL FROM:`).
    pub raw: String,
}

/// The parsed `RCPT TO:` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    /// The forward path without brackets (may be unqualified: `postmaster`,
    /// or anything when [`ServerConfig::allow_unqualified_recipient`]).
    pub to: String,
    /// ESMTP parameters (keywords upper-cased).
    pub params: Vec<Param>,
    /// The command argument as received (after `RCPT TO:`).
    pub raw: String,
}

/// Class of a problem the session answered by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad syntax in an argument (`501`).
    Syntax,
    /// Command out of sequence (`503`).
    Sequence,
    /// Unrecognised command (`500`).
    UnknownCommand,
    /// Command line longer than [`ServerConfig::max_line_len`].
    LineTooLong,
    /// NUL byte in a command.
    NulCharacter,
    /// A message-size or recipient-count limit was hit (`552`/`452`).
    Limit,
    /// Input arrived before the reply it should have waited for. The session
    /// has written `554 SMTP synchronization error` and is closed.
    Synchronization {
        /// The client sent before the greeting.
        before_greeting: bool,
        /// Up to 150 bytes of the early input (lossy, for the log).
        next_input: String,
    },
}

/// A reply the session sent on its own, reported for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The offending command line (lossy UTF-8, NULs shown as `?`).
    pub line: String,
    /// Exim's log reason (e.g. `domain missing or malformed`).
    pub detail: String,
    /// The reply that was written.
    pub reply: Reply,
    /// The session closed after this (too many errors, sync failure).
    pub closing: bool,
    /// Counted as a syntax or protocol error (Exim's `synprot_error`, which
    /// logs it with `+smtp_syntax_error` / `+smtp_protocol_error`).
    pub synprot: bool,
}

/// Something the caller must know about or decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `HELO`/`EHLO` with a syntactically valid name. Needs a response: use
    /// [`ServerSession::accept_ehlo`] / [`ServerSession::accept_helo`] or
    /// reject.
    Helo {
        /// `EHLO` rather than `HELO`.
        ehlo: bool,
        /// The argument as given.
        name: String,
    },
    /// `MAIL FROM:`; needs a response (`2xx` opens the transaction).
    Mail(MailFrom),
    /// `RCPT TO:`; needs a response (`2xx` accepts the recipient).
    Rcpt(RcptTo),
    /// `DATA` with at least one accepted recipient; needs a response: `354`
    /// ([`ServerSession::start_data`]) starts the body, anything else rejects.
    Data,
    /// `BDAT` starting a chunked body (informational: the chunk data follows
    /// as [`Event::DataChunk`]s; intermediate chunks are acknowledged by the
    /// session, the last one ends with [`Event::DataEnd`]).
    Bdat {
        /// Chunk size in bytes.
        size: u64,
        /// `LAST` was given.
        last: bool,
    },
    /// Decoded body bytes (dot-unstuffed, line endings per
    /// [`ServerConfig::data_line_ending`]).
    DataChunk(Vec<u8>),
    /// End of the body; needs a response (e.g. `250 OK id=...`). The
    /// transaction is reset whatever the reply.
    DataEnd(DataSummary),
    /// `RSET` (already answered `250 Reset OK`).
    Rset,
    /// `NOOP` (already answered `250 OK`).
    Noop,
    /// `QUIT`; needs a response ([`ServerSession::accept_quit`]); the session
    /// closes after it.
    Quit,
    /// `VRFY arg`; needs a response.
    Vrfy(String),
    /// `EXPN arg`; needs a response.
    Expn(String),
    /// `HELP [arg]`; needs a response ([`help_reply`]).
    Help(String),
    /// `ETRN arg` outside a transaction; needs a response.
    Etrn(String),
    /// `STARTTLS` (advertised); needs a response. After a `220` the session
    /// discards buffered plaintext and resets; start TLS, then feed the
    /// decrypted bytes.
    StartTls,
    /// `AUTH mechanism [initial-response]`; needs a response. `334` continues
    /// the exchange (the next line arrives as [`Event::AuthResponse`]), `235`
    /// marks the session authenticated.
    Auth {
        /// Mechanism name as given.
        mechanism: String,
        /// Initial response, if any.
        initial: Option<String>,
    },
    /// A line of a SASL exchange after a `334`; needs a response.
    AuthResponse(String),
    /// A SASL response line longer than [`ServerConfig::max_line_len`]
    /// (discarded); needs a response (Exim: `501 Invalid base64 data`).
    AuthResponseTooLong,
    /// The session answered a bad command by itself.
    Error(ProtocolError),
}

impl Event {
    /// True if [`ServerSession::respond`] must be called before more events
    /// are produced.
    pub fn needs_response(&self) -> bool {
        !matches!(
            self,
            Event::Bdat { .. } | Event::DataChunk(_) | Event::Rset | Event::Noop | Event::Error(_)
        )
    }
}

/// Coarse session state, for the caller's information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for [`ServerSession::greet`].
    PreGreeting,
    /// Reading commands.
    Command,
    /// Receiving a DATA or BDAT body.
    Data,
    /// Inside a SASL exchange.
    Auth,
    /// Closed; flush the output and drop the connection.
    Closed,
}
