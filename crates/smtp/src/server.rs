//! The server side: [`ServerSession`], a sans-I/O SMTP receiver.
//!
//! The caller (daemon, `-bs`) moves bytes; the session parses commands,
//! enforces sequencing and syntax with Exim's reply texts, and hands policy
//! decisions to the caller as [`Event`]s:
//!
//! ```
//! use oxim_smtp::{Event, Reply, ServerConfig, ServerSession};
//!
//! // Like `exim -bs`: local input, no synchronisation checks.
//! let cfg = ServerConfig { enforce_sync: false, ..ServerConfig::default() };
//! let mut s = ServerSession::new(cfg);
//! s.greet(Reply::new(220, "mx.example ESMTP")).unwrap();
//! s.handle_input(b"HELO client.example\r\nMAIL FROM:<a@b.example>\r\n");
//! while let Some(ev) = s.poll_event() {
//!     match ev {
//!         Event::Helo { .. } => s.respond(Reply::new(250, "mx.example Hello client.example")).unwrap(),
//!         Event::Mail(_) => s.accept_mail().unwrap(),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(s.take_output(), b"220 mx.example ESMTP\r\n250 mx.example Hello client.example\r\n250 OK\r\n");
//! ```
//!
//! Events for which [`Event::needs_response`] is true (commands that need a
//! policy decision) block further parsing until [`ServerSession::respond`]
//! (or one of its helpers) is called; the reply code decides the transition
//! (a `2xx` to `MAIL` opens the transaction, `354` to `DATA` starts the body,
//! and so on). The other events are informational: the session has already
//! written its reply.

use std::collections::VecDeque;

use crate::address::{parse_params, parse_path_arg, Param};
use crate::client::{BodyType, EhloCapabilities};
use crate::data::{DataDecoder, DataSummary, LineEnding, LineRules};
use crate::error::{AddressError, SessionError};
use crate::reply::Reply;

/// Exim's `SMTP_CMD_BUFFER_SIZE`: longest accepted command line.
pub const DEFAULT_MAX_LINE_LEN: usize = 16384;

/// Session policy that does not change during a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Longest command line accepted, excluding CRLF (Exim: 16384, large
    /// enough for AUTH initial responses). Longer lines get `500 Command line
    /// too long`.
    pub max_line_len: usize,
    /// `smtp_enforce_sync`: reject a client that sends before it has seen the
    /// greeting, or sends past a command that must be the last in its group,
    /// with `554 SMTP synchronization error` and close. Turn off for `-bs`.
    pub enforce_sync: bool,
    /// `helo_required`-style flag: `MAIL` before `HELO`/`EHLO` gets
    /// `503 HELO or EHLO required`.
    pub helo_required: bool,
    /// `helo_accept_junk_hosts` matched: accept any HELO argument.
    pub helo_accept_junk: bool,
    /// `helo_allow_chars`: extra characters allowed in a HELO name.
    pub helo_allow_chars: String,
    /// `smtp_max_synprot_errors` (Exim default 3): more syntax or protocol
    /// errors than this close the session.
    pub max_synprot_errors: u32,
    /// `smtp_max_unknown_commands` (Exim default 3).
    pub max_unknown_commands: u32,
    /// Accept `MAIL FROM:<user>` without a domain (the caller qualifies it).
    pub allow_unqualified_sender: bool,
    /// Accept `RCPT TO:<user>` without a domain (`postmaster` always is).
    pub allow_unqualified_recipient: bool,
    /// `recipients_max` (0 = unlimited).
    pub recipients_max: usize,
    /// `recipients_max_reject`: reject excess recipients with 552, not 452.
    pub recipients_max_reject: bool,
    /// Line ending of the decoded body handed out in [`Event::DataChunk`].
    pub data_line_ending: LineEnding,
    /// Which bytes end a body line and the data (see [`LineRules`]). The
    /// default, [`LineRules::FirstLineCrlfEnd`], is for remote clients: the
    /// data ends only with `CRLF . CRLF` (the SMTP smuggling defence).
    /// [`LineRules::FirstLine`] (Exim 4.97.1) suits local `-bs` clients,
    /// which may write bare LFs throughout and end with `LF . LF`.
    pub line_rules: LineRules,
    /// `allow_domain_literals`: accept `user@[192.0.2.1]` in MAIL and RCPT.
    /// Off (Exim's default): such addresses get `501 <...>: domain literals
    /// not allowed`, as in Exim.
    pub allow_domain_literals: bool,
    /// Accept `AUTH` even when it was not advertised.
    pub allow_auth_unadvertised: bool,
    /// Early pipelining (Exim's `pipelining_connect_advertise_hosts`, the
    /// `PIPECONNECT` extension): the client may send before the greeting
    /// and pipeline past HELO/EHLO, until its first DATA/BDAT. This is what
    /// lets a TFO client put EHLO, MAIL, RCPT and `BDAT n LAST` in its SYN.
    pub pipe_connect: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_line_len: DEFAULT_MAX_LINE_LEN,
            enforce_sync: true,
            helo_required: false,
            helo_accept_junk: false,
            helo_allow_chars: String::new(),
            max_synprot_errors: 3,
            max_unknown_commands: 3,
            allow_unqualified_sender: false,
            allow_unqualified_recipient: false,
            recipients_max: 0,
            recipients_max_reject: false,
            data_line_ending: LineEnding::Lf,
            line_rules: LineRules::FirstLineCrlfEnd,
            allow_domain_literals: false,
            allow_auth_unadvertised: false,
            pipe_connect: false,
        }
    }
}

/// The pipelining facts behind the ` L` item of a `<=` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipeliningUse {
    /// PIPELINING was advertised.
    pub advertised: bool,
    /// A reply was due while the client's next command was already here.
    pub used: bool,
    /// PIPECONNECT was advertised.
    pub early_advertised: bool,
    /// The client sent before the banner, or past its first EHLO without
    /// waiting for the reply.
    pub early_used: bool,
}

/// What the server will advertise in its EHLO reply (see [`ehlo_reply`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extensions {
    /// `None`: no SIZE line; `Some(0)`: `SIZE` without a limit (as Exim does
    /// with `message_size_limit = 0`); `Some(n)`: `SIZE n`.
    pub size: Option<u64>,
    /// `8BITMIME` (`accept_8bitmime`).
    pub eight_bit_mime: bool,
    /// `DSN`.
    pub dsn: bool,
    /// `ETRN` (an ETRN ACL exists).
    pub etrn: bool,
    /// `VRFY` (a VRFY ACL exists).
    pub vrfy: bool,
    /// `EXPN` (an EXPN ACL exists).
    pub expn: bool,
    /// `PIPELINING`.
    pub pipelining: bool,
    /// `PIPECONNECT` (early pipelining; only sent with PIPELINING).
    pub pipe_connect: bool,
    /// SASL mechanisms for the `AUTH` line (upper-cased on output).
    pub auth: Vec<String>,
    /// `CHUNKING`.
    pub chunking: bool,
    /// `STARTTLS`.
    pub starttls: bool,
    /// `PRDR`.
    pub prdr: bool,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
    /// Final `HELP` line (Exim always sends it).
    pub help: bool,
}

/// Build an EHLO reply in Exim's layout and order: greeting line
/// `hostname greeting`, then SIZE, 8BITMIME, DSN, ETRN, VRFY, EXPN,
/// PIPELINING, PIPECONNECT, AUTH, CHUNKING, STARTTLS, PRDR, SMTPUTF8, HELP.
///
/// `greeting` is usually [`hello_text`]`(..)`, e.g. `Hello abcd [127.0.0.1]`.
pub fn ehlo_reply(hostname: &str, greeting: &str, ext: &Extensions) -> Reply {
    let mut lines = vec![format!("{hostname} {greeting}")];
    match ext.size {
        Some(0) => lines.push("SIZE".into()),
        Some(n) => lines.push(format!("SIZE {n}")),
        None => {}
    }
    let flags = [
        (ext.eight_bit_mime, "8BITMIME"),
        (ext.dsn, "DSN"),
        (ext.etrn, "ETRN"),
        (ext.vrfy, "VRFY"),
        (ext.expn, "EXPN"),
        (ext.pipelining, "PIPELINING"),
        (ext.pipelining && ext.pipe_connect, "PIPECONNECT"),
    ];
    lines.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_owned()));
    if !ext.auth.is_empty() {
        let mut l = String::from("AUTH");
        for m in &ext.auth {
            l.push(' ');
            l.push_str(&m.to_ascii_uppercase());
        }
        lines.push(l);
    }
    let flags = [
        (ext.chunking, "CHUNKING"),
        (ext.starttls, "STARTTLS"),
        (ext.prdr, "PRDR"),
        (ext.smtputf8, "SMTPUTF8"),
        (ext.help, "HELP"),
    ];
    lines.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_owned()));
    Reply::from_lines(250, lines)
}

/// Exim's greeting text for HELO/EHLO replies:
/// `Hello [ident at ]name[ [ip]]`, where `name` is the looked-up host name if
/// known, else the HELO argument.
pub fn hello_text(
    helo_name: &str,
    host_name: Option<&str>,
    ident: Option<&str>,
    ip: Option<&str>,
) -> String {
    let mut s = String::from("Hello ");
    if let Some(i) = ident {
        s.push_str(i);
        s.push_str(" at ");
    }
    s.push_str(host_name.unwrap_or(helo_name));
    if let Some(ip) = ip {
        s.push_str(" [");
        s.push_str(ip);
        s.push(']');
    }
    s
}

/// Exim's HELP reply. `starttls` adds STARTTLS; `acl_commands` lists any of
/// `ETRN`, `EXPN`, `VRFY` that have ACLs.
pub fn help_reply(starttls: bool, acl_commands: &[&str]) -> Reply {
    let mut l = String::from(" AUTH");
    if starttls {
        l.push_str(" STARTTLS");
    }
    l.push_str(" HELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP");
    for c in acl_commands {
        l.push(' ');
        l.push_str(c);
    }
    // Exim writes "214" immediately followed by the list (which starts with a
    // space), so the line is "214 AUTH ...".
    Reply::from_lines(214, ["Commands supported:".to_owned(), l[1..].to_owned()])
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Helo { ehlo: bool },
    Mail,
    Rcpt,
    Data,
    DataEnd,
    Quit,
    Other,
    StartTls,
    Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    PreGreeting,
    Command,
    Data,
    /// Reading a BDAT chunk; `discard` when the chunk is being thrown away.
    Bdat {
        remaining: u64,
        size: u64,
        last: bool,
        discard: bool,
    },
    /// After a non-LAST BDAT: only BDAT, RSET, NOOP, QUIT.
    BdatNext,
    /// After a BDAT error: only RSET and QUIT.
    RsetOnly,
    AuthContinue,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Helo,
    Ehlo,
    Auth,
    StartTls,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Quit,
    Rset,
    Etrn,
    Vrfy,
    Expn,
    Help,
    Noop,
}

/// (name, verb, takes an argument) in Exim's matching order.
const COMMANDS: &[(&[u8], Verb, bool)] = &[
    (b"HELO", Verb::Helo, true),
    (b"EHLO", Verb::Ehlo, true),
    (b"AUTH", Verb::Auth, true),
    (b"STARTTLS", Verb::StartTls, false),
    (b"MAIL FROM:", Verb::Mail, true),
    (b"RCPT TO:", Verb::Rcpt, true),
    (b"DATA", Verb::Data, false),
    (b"BDAT", Verb::Bdat, true),
    (b"QUIT", Verb::Quit, false),
    (b"RSET", Verb::Rset, false),
    (b"ETRN", Verb::Etrn, true),
    (b"VRFY", Verb::Vrfy, true),
    (b"EXPN", Verb::Expn, true),
    (b"HELP", Verb::Help, true),
    (b"NOOP", Verb::Noop, true),
];

fn identify(line: &[u8]) -> Option<(Verb, bool, usize)> {
    COMMANDS.iter().find_map(|&(name, verb, has_arg)| {
        let n = name.len();
        let matches = line.len() >= n
            && line[..n].eq_ignore_ascii_case(name)
            && (name[n - 1] == b':' || line.len() == n || line[n] == b' ');
        matches.then_some((verb, has_arg, n))
    })
}

impl Verb {
    /// Must this command be the last of what the client has sent?
    /// (Exim's command ordering: HELO, EHLO, DATA, VRFY, EXPN, NOOP, ETRN,
    /// STARTTLS always; MAIL, RCPT, RSET too when PIPELINING was not
    /// advertised; AUTH, QUIT, HELP, BDAT never.)
    fn needs_sync(self, pipelining: bool) -> bool {
        match self {
            Verb::Helo
            | Verb::Ehlo
            | Verb::Data
            | Verb::Vrfy
            | Verb::Expn
            | Verb::Noop
            | Verb::Etrn
            | Verb::StartTls => true,
            Verb::Mail | Verb::Rcpt | Verb::Rset => !pipelining,
            Verb::Auth | Verb::Quit | Verb::Help | Verb::Bdat => false,
        }
    }
}

/// A sans-I/O SMTP server session. See the [module docs](self).
#[derive(Debug)]
pub struct ServerSession {
    cfg: ServerConfig,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    /// The last command line read, as sent (Exim's `$smtp_command`).
    last_command: String,
    phase: Phase,
    pending: Option<Pending>,
    pending_verb: Option<Verb>,
    queued: VecDeque<Event>,
    discarding_long_line: bool,
    long_line_start: String,
    // Connection state.
    helo_name: Option<String>,
    pending_helo: Option<String>,
    helo_seen: bool,
    /// Early pipelining still allowed (until the first DATA/BDAT).
    pipe_connect_ok: bool,
    /// What the log's `L` flag reports (see [`PipeliningUse`]).
    pipelining_use: PipeliningUse,
    /// The transaction's body came by BDAT: the last chunk's size and the
    /// total so far (for Exim's final reply).
    bdat_sizes: Option<(u64, u64)>,
    esmtp: bool,
    adv: EhloCapabilities,
    authenticated: bool,
    tls: bool,
    synprot_errors: u32,
    unknown_commands: u32,
    // Transaction state.
    mail: bool,
    rcpts: usize,
    rcpt_count: usize,
    too_many: bool,
    rcpt_reply: Option<String>,
    rcpt_reply_same: bool,
    /// The reply being sent is a policy refusal ([`ServerSession::reject`]).
    policy_reply: bool,
    last_was_rej_mail: bool,
    last_was_rcpt: bool,
    decoder: DataDecoder,
    /// Complete input lines so far (commands and body lines).
    lines_in: u64,
}

impl ServerSession {
    /// A new session; call [`ServerSession::greet`] to send the banner.
    pub fn new(cfg: ServerConfig) -> Self {
        let decoder = DataDecoder::data(cfg.data_line_ending, cfg.line_rules);
        let pipe_connect_ok = cfg.pipe_connect;
        Self {
            cfg,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
            last_command: String::new(),
            phase: Phase::PreGreeting,
            pending: None,
            pending_verb: None,
            queued: VecDeque::new(),
            discarding_long_line: false,
            long_line_start: String::new(),
            helo_name: None,
            pending_helo: None,
            helo_seen: false,
            pipe_connect_ok,
            pipelining_use: PipeliningUse::default(),
            bdat_sizes: None,
            esmtp: false,
            adv: EhloCapabilities::default(),
            authenticated: false,
            tls: false,
            synprot_errors: 0,
            unknown_commands: 0,
            mail: false,
            rcpts: 0,
            rcpt_count: 0,
            too_many: false,
            rcpt_reply: None,
            rcpt_reply_same: true,
            policy_reply: false,
            last_was_rej_mail: false,
            last_was_rcpt: false,
            decoder,
            lines_in: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// Accept `AUTH` even when it was not advertised (Exim's
    /// `control = allow_auth_unadvertised`, set by the connect ACL).
    pub fn set_allow_auth_unadvertised(&mut self, allow: bool) {
        self.cfg.allow_auth_unadvertised = allow;
    }

    // ----- output ---------------------------------------------------------

    /// Take everything written so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Text for the person at the terminal, written between replies as it
    /// is (Exim's `-bh` notes such as "that is not a real message id").
    pub fn note(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// The command line behind the event just polled, as the client sent
    /// it (non-printing characters shown as `?`).
    pub fn last_command(&self) -> &str {
        &self.last_command
    }

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Drop `n` written bytes from the front of [`ServerSession::output`].
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
    }

    /// True if there is output to write.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    // ----- state ----------------------------------------------------------

    /// Coarse state.
    pub fn state(&self) -> SessionState {
        match self.phase {
            Phase::PreGreeting => SessionState::PreGreeting,
            Phase::Command | Phase::BdatNext | Phase::RsetOnly => SessionState::Command,
            Phase::Data | Phase::Bdat { .. } => SessionState::Data,
            Phase::AuthContinue => SessionState::Auth,
            Phase::Closed => SessionState::Closed,
        }
    }

    /// True once the session is over (after QUIT, a fatal error or
    /// [`ServerSession::shutdown`]): write the remaining output and close.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while an event waits for [`ServerSession::respond`].
    pub fn awaiting_response(&self) -> bool {
        self.pending.is_some()
    }

    /// The accepted HELO/EHLO name, if any.
    pub fn helo_name(&self) -> Option<&str> {
        self.helo_name.as_deref()
    }

    /// True after an accepted EHLO.
    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    /// What the last accepted EHLO reply advertised.
    pub fn advertised(&self) -> &EhloCapabilities {
        &self.adv
    }

    /// True after a `235` to AUTH.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// True after a `220` to STARTTLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True between an accepted MAIL and the end of the transaction.
    pub fn in_transaction(&self) -> bool {
        self.mail
    }

    /// Recipients accepted in the current transaction.
    pub fn accepted_recipients(&self) -> usize {
        self.rcpts
    }

    /// Bytes received but not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.inbuf.len() - self.pos
    }

    /// Complete input lines processed so far: command lines, body lines and
    /// the terminating `.` line. With [`ServerSession::mid_line`] it lets the
    /// caller time each line from its first byte (`smtp_receive_timeout`).
    pub fn lines_received(&self) -> u64 {
        self.lines_in
    }

    /// True when part of a line has arrived and the rest has not (checked
    /// after [`ServerSession::poll_event`] returned `None`).
    pub fn mid_line(&self) -> bool {
        match self.phase {
            Phase::Data | Phase::Bdat { .. } => !self.decoder.at_line_start(),
            Phase::Closed => false,
            _ => self.discarding_long_line || self.buffered_input() > 0,
        }
    }

    // ----- input ----------------------------------------------------------

    /// Buffer bytes received from the client. Never blocks; call
    /// [`ServerSession::poll_event`] afterwards.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.pos == self.inbuf.len() {
            self.inbuf.clear();
            self.pos = 0;
        } else if self.pos >= 8192 && self.pos * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        self.inbuf.extend_from_slice(bytes);
    }

    /// Send the greeting. With [`ServerConfig::enforce_sync`], input that
    /// arrived before the greeting gets `554 SMTP synchronization error`
    /// instead (reported as an [`Event::Error`]) and the session closes. A
    /// non-2xx greeting (e.g. `554` from the connect ACL) closes the session.
    pub fn greet(&mut self, reply: Reply) -> Result<(), SessionError> {
        if self.phase != Phase::PreGreeting {
            return Err(SessionError::AlreadyGreeted);
        }
        if self.cfg.enforce_sync && !self.pipe_connect_ok && self.buffered_input() > 0 {
            let ev = self.sync_failure(None, true);
            self.queued.push_back(ev);
            return Ok(());
        }
        if self.pipe_connect_ok && self.buffered_input() > 0 {
            self.pipelining_use.early_used = true;
        }
        reply.write_to(&mut self.out);
        self.phase = if reply.is_positive() {
            Phase::Command
        } else {
            Phase::Closed
        };
        Ok(())
    }

    /// Write an unsolicited reply (e.g. `421 ... shutting down`) and close.
    pub fn shutdown(&mut self, reply: Reply) {
        if self.phase != Phase::Closed {
            reply.write_to(&mut self.out);
            self.phase = Phase::Closed;
            self.pending = None;
        }
    }

    /// Produce the next event, or `None` when more input (or a response to
    /// the previous event) is needed.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(ev) = self.queued.pop_front() {
            return Some(ev);
        }
        loop {
            if self.pending.is_some() {
                return None;
            }
            match self.phase {
                Phase::PreGreeting | Phase::Closed => return None,
                Phase::Data => return self.poll_data(),
                Phase::Bdat { .. } => {
                    if let Some(ev) = self.poll_bdat() {
                        return Some(ev);
                    }
                    if matches!(self.phase, Phase::Bdat { .. }) {
                        return None;
                    }
                }
                Phase::Command | Phase::BdatNext | Phase::RsetOnly | Phase::AuthContinue => {
                    let ev = match self.next_line()? {
                        Line::Text(line) => self.process_line(line),
                        Line::TooLong(start) => {
                            self.last_was_rcpt = false;
                            if self.phase == Phase::AuthContinue {
                                // An over-long SASL response ends the
                                // exchange; the caller answers it.
                                self.phase = Phase::Command;
                                self.pending = Some(Pending::Auth);
                                self.pending_verb = None;
                                return Some(Event::AuthResponseTooLong);
                            }
                            Some(self.synprot(
                                ErrorKind::LineTooLong,
                                500,
                                None,
                                "Command line too long",
                                &start,
                            ))
                        }
                    };
                    if let Some(ev) = ev {
                        return Some(ev);
                    }
                }
            }
        }
    }

    // ----- responses ------------------------------------------------------

    /// Answer the event that is waiting. The reply code decides the state
    /// transition (see [`Event`]).
    pub fn respond(&mut self, reply: Reply) -> Result<(), SessionError> {
        if self.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        let pending = self.pending.take().ok_or(SessionError::NothingPending)?;
        let verb = self.pending_verb.take();
        // Exim re-checks synchronisation after a (possibly slow) ACL accepted
        // a command that must be the last in its group.
        if reply.is_positive() || reply.code == 354 {
            if let Some(v) = verb {
                if self.sync_violated(v) {
                    let ev = self.sync_failure(Some(format!("{v:?}").to_ascii_uppercase()), false);
                    self.queued.push_back(ev);
                    return Ok(());
                }
            }
        }
        match pending {
            Pending::Helo { ehlo } => {
                if reply.is_positive() {
                    self.esmtp = ehlo;
                    self.adv = if ehlo {
                        EhloCapabilities::from_reply(&reply)
                    } else {
                        EhloCapabilities::default()
                    };
                    self.pipelining_use.advertised |= self.adv.pipelining;
                    if self.adv.pipelining && self.adv.pipe_connect {
                        self.pipelining_use.early_advertised = true;
                        // Exim: more input already waiting behind the first
                        // EHLO means the client did not wait for its reply.
                        if !self.helo_seen && self.pipe_connect_ok && self.buffered_input() > 0 {
                            self.pipelining_use.early_used = true;
                        }
                    }
                    self.helo_seen = true;
                    self.helo_name = self.pending_helo.take();
                    self.reset_transaction();
                } else {
                    // As Exim: a refused HELO forgets the previous name too.
                    self.pending_helo = None;
                    self.helo_name = None;
                }
            }
            Pending::Mail => {
                if reply.is_positive() {
                    self.mail = true;
                    self.last_was_rej_mail = false;
                } else {
                    self.last_was_rej_mail = true;
                }
            }
            Pending::Rcpt => {
                self.note_rcpt_reply(&reply);
                if reply.is_positive() {
                    self.rcpts += 1;
                }
            }
            Pending::Data => {
                if reply.code == 354 {
                    self.decoder =
                        DataDecoder::data(self.cfg.data_line_ending, self.cfg.line_rules);
                    self.phase = Phase::Data;
                }
            }
            Pending::DataEnd => {
                self.reset_transaction();
                if self.phase != Phase::Closed {
                    self.phase = Phase::Command;
                }
            }
            Pending::Quit => {
                reply.write_to(&mut self.out);
                self.phase = Phase::Closed;
                return Ok(());
            }
            Pending::StartTls => {
                if reply.is_positive() {
                    // Anything pipelined after STARTTLS was sent in clear and
                    // must not be treated as part of the TLS session.
                    self.pos = self.inbuf.len();
                    self.tls = true;
                    self.helo_name = None;
                    self.helo_seen = false;
                    self.esmtp = false;
                    self.adv = EhloCapabilities::default();
                    self.authenticated = false;
                    self.reset_transaction();
                }
            }
            Pending::Auth => {
                if reply.is_intermediate() {
                    self.phase = Phase::AuthContinue;
                } else {
                    if reply.is_positive() {
                        self.authenticated = true;
                    }
                    self.phase = Phase::Command;
                }
            }
            Pending::Other => {}
        }
        // Exim's pipeline_response(): a reply written while the client's
        // next command is already here means the client pipelined.
        if self.adv.pipelining && self.buffered_input() > 0 {
            self.pipelining_use.used = true;
        }
        reply.write_to(&mut self.out);
        Ok(())
    }

    /// Whether PIPECONNECT may be advertised now: the host is in
    /// `pipelining_connect_advertise_hosts` and no DATA/BDAT has been seen.
    pub fn pipe_connect_acceptable(&self) -> bool {
        self.pipe_connect_ok
    }

    /// What the client did with PIPELINING and PIPECONNECT so far (the
    /// `L` flag of Exim's `<=` line with `+pipelining`).
    pub fn pipelining_use(&self) -> PipeliningUse {
        self.pipelining_use
    }

    /// Accept HELO/EHLO with Exim's reply: for EHLO the multi-line
    /// [`ehlo_reply`], for HELO `250 hostname greeting`.
    pub fn accept_ehlo(
        &mut self,
        hostname: &str,
        greeting: &str,
        ext: &Extensions,
    ) -> Result<(), SessionError> {
        match self.pending {
            Some(Pending::Helo { ehlo: true }) => self.respond(ehlo_reply(hostname, greeting, ext)),
            Some(Pending::Helo { ehlo: false }) => self.accept_helo(hostname, greeting),
            _ => Err(SessionError::NothingPending),
        }
    }

    /// Accept HELO (or EHLO without extensions): `250 hostname greeting`.
    pub fn accept_helo(&mut self, hostname: &str, greeting: &str) -> Result<(), SessionError> {
        self.respond(Reply::from_lines(250, [format!("{hostname} {greeting}")]))
    }

    /// `250 OK` to MAIL.
    pub fn accept_mail(&mut self) -> Result<(), SessionError> {
        self.respond(Reply::new(250, "OK"))
    }

    /// `250 Accepted` to RCPT.
    pub fn accept_rcpt(&mut self) -> Result<(), SessionError> {
        self.respond(Reply::new(250, "Accepted"))
    }

    /// `354 Enter message, ending with "." on a line by itself` to DATA.
    pub fn start_data(&mut self) -> Result<(), SessionError> {
        self.respond(Reply::new(
            354,
            "Enter message, ending with \".\" on a line by itself",
        ))
    }

    /// `250 OK id=<id>` at the end of the body; after BDAT, as Exim,
    /// preceded by a line acknowledging the last chunk and the total.
    pub fn accept_message(&mut self, id: &str) -> Result<(), SessionError> {
        match self.bdat_sizes {
            Some((chunk, total)) => self.respond(Reply::from_lines(
                250,
                [
                    format!(" {chunk} byte chunk, total {total}"),
                    format!("OK id={id}"),
                ],
            )),
            None => self.respond(Reply::new(250, format!("OK id={id}"))),
        }
    }

    /// `221 <hostname> closing connection` to QUIT.
    pub fn accept_quit(&mut self, hostname: &str) -> Result<(), SessionError> {
        self.respond(Reply::new(221, format!("{hostname} closing connection")))
    }

    /// Reject the waiting command with `reply` (same as
    /// [`ServerSession::respond`]; reads better at call sites).
    /// A refusal by policy: as in Exim (which sends these with
    /// `smtp_respond`), the `All RCPT commands were rejected` summary
    /// repeats its text without the code.
    pub fn reject(&mut self, reply: Reply) -> Result<(), SessionError> {
        self.policy_reply = true;
        let r = self.respond(reply);
        self.policy_reply = false;
        r
    }

    /// Refuse the pending command, sending first `preamble` as
    /// continuation lines with the reply's code (Exim's details of a
    /// failed sender verification). Only `reply` counts as the command's
    /// answer (e.g. in the `All RCPT commands were rejected` summary).
    pub fn reject_with_preamble(
        &mut self,
        preamble: &[String],
        reply: Reply,
    ) -> Result<(), SessionError> {
        if self.pending.is_some() && self.phase != Phase::Closed {
            for line in preamble {
                self.out
                    .extend_from_slice(format!("{:03}-{line}\r\n", reply.code).as_bytes());
            }
        }
        self.reject(reply)
    }

    // ----- internals ------------------------------------------------------

    fn reset_transaction(&mut self) {
        self.bdat_sizes = None;
        self.mail = false;
        self.rcpts = 0;
        self.rcpt_count = 0;
        self.too_many = false;
        self.rcpt_reply = None;
        self.rcpt_reply_same = true;
    }

    fn note_rcpt_reply(&mut self, reply: &Reply) {
        let line = if self.policy_reply {
            reply.text.first().cloned().unwrap_or_default()
        } else {
            reply.first_line()
        };
        match &self.rcpt_reply {
            None => self.rcpt_reply = Some(line),
            Some(prev) if *prev != line => self.rcpt_reply_same = false,
            Some(_) => {}
        }
    }

    fn write(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    /// Is there input beyond the current command that the client should not
    /// have sent yet?
    fn sync_violated(&self, verb: Verb) -> bool {
        self.cfg.enforce_sync && self.buffered_input() > 0 && self.verb_needs_sync(verb)
    }

    fn verb_needs_sync(&self, verb: Verb) -> bool {
        let early = self.pipe_connect_ok && matches!(verb, Verb::Helo | Verb::Ehlo);
        !early && verb.needs_sync(self.adv.pipelining)
    }

    fn sync_failure(&mut self, line: Option<String>, before_greeting: bool) -> Event {
        let avail = &self.inbuf[self.pos..];
        let next_input = printable(&avail[..avail.len().min(150)]);
        let reply = Reply::new(554, "SMTP synchronization error");
        self.write(&reply);
        self.phase = Phase::Closed;
        self.pending = None;
        Event::Error(ProtocolError {
            kind: ErrorKind::Synchronization {
                before_greeting,
                next_input,
            },
            line: line.unwrap_or_default(),
            detail: if before_greeting {
                "input sent without waiting for greeting".into()
            } else {
                format!(
                    "next input sent too soon: pipelining was{} advertised",
                    if self.adv.pipelining { "" } else { " not" }
                )
            },
            reply,
            closing: true,
        })
    }

    /// Next complete line (without the LF), handling over-long lines.
    fn next_line(&mut self) -> Option<Line> {
        let avail = &self.inbuf[self.pos..];
        // At most what is certainly buffered when a line is found too long,
        // so the logged text does not depend on how the input was split.
        let keep = LONG_LINE_LOGGED.min(self.cfg.max_line_len.saturating_add(2));
        match memchr::memchr(b'\n', avail) {
            None => {
                if self.discarding_long_line || avail.len() > self.cfg.max_line_len + 1 {
                    if !self.discarding_long_line {
                        self.long_line_start = printable(&avail[..avail.len().min(keep)]);
                    }
                    self.discarding_long_line = true;
                    self.pos = self.inbuf.len();
                }
                None
            }
            Some(nl) => {
                let too_long = self.discarding_long_line || nl > self.cfg.max_line_len + 1;
                let line = if too_long {
                    let start = if self.discarding_long_line {
                        std::mem::take(&mut self.long_line_start)
                    } else {
                        printable(&avail[..nl.min(keep)])
                    };
                    Line::TooLong(start)
                } else {
                    Line::Text(avail[..nl].to_vec())
                };
                self.pos += nl + 1;
                self.discarding_long_line = false;
                self.lines_in += 1;
                Some(line)
            }
        }
    }

    /// Count a syntax/protocol error and write `code data: errmess`, adding
    /// Exim's "Too many syntax or protocol errors" when over the limit.
    fn synprot(
        &mut self,
        kind: ErrorKind,
        code: u16,
        data: Option<&str>,
        errmess: &str,
        line: &str,
    ) -> Event {
        self.synprot_errors += 1;
        let closing = self.synprot_errors > self.cfg.max_synprot_errors;
        let text = match data {
            Some(d) => format!("{d}: {errmess}"),
            None => errmess.to_owned(),
        };
        let mut reply = Reply::from_lines(code, [text]);
        if closing {
            reply.text.push("Too many syntax or protocol errors".into());
            self.phase = Phase::Closed;
        }
        self.write(&reply);
        Event::Error(ProtocolError {
            kind,
            line: line.to_owned(),
            detail: errmess.to_owned(),
            reply,
            closing,
        })
    }

    /// Write a reply that does not count as a protocol error.
    fn plain_error(&mut self, kind: ErrorKind, reply: Reply, line: &str, detail: &str) -> Event {
        self.write(&reply);
        Event::Error(ProtocolError {
            kind,
            line: line.to_owned(),
            detail: detail.to_owned(),
            reply,
            closing: false,
        })
    }

    fn set_pending(&mut self, p: Pending, verb: Verb) {
        self.pending = Some(p);
        self.pending_verb = Some(verb);
    }

    fn process_line(&mut self, raw: Vec<u8>) -> Option<Event> {
        if self.phase == Phase::AuthContinue {
            let l = raw.strip_suffix(b"\r").unwrap_or(&raw);
            self.pending = Some(Pending::Auth);
            self.pending_verb = None;
            self.phase = Phase::Command;
            return Some(Event::AuthResponse(String::from_utf8_lossy(l).into_owned()));
        }
        let mut end = raw.len();
        while end > 0 && raw[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let bytes = &raw[..end];
        let had_nul = memchr::memchr(0, bytes).is_some();
        let line = printable(bytes);
        self.last_command.clone_from(&line);
        if had_nul {
            self.last_was_rcpt = false;
            self.synprot_errors += 1;
            let closing = self.synprot_errors > self.cfg.max_synprot_errors;
            let reply = Reply::new(501, "NUL characters are not allowed in SMTP commands");
            self.write(&reply);
            if closing {
                self.phase = Phase::Closed;
            }
            return Some(Event::Error(ProtocolError {
                kind: ErrorKind::NulCharacter,
                line,
                detail: "NUL character(s) present (shown as '?')".into(),
                reply,
                closing,
            }));
        }
        let ident = identify(bytes);
        let sync_verb_needed = match ident {
            Some((v, _, _)) => self.verb_needs_sync(v),
            None => true,
        };
        if self.cfg.enforce_sync && sync_verb_needed && self.buffered_input() > 0 {
            return Some(self.sync_failure(Some(line), false));
        }
        let was_rcpt = self.last_was_rcpt;
        let was_rej_mail = self.last_was_rej_mail;
        self.last_was_rcpt = false;
        self.last_was_rej_mail = false;
        let Some((verb, has_arg, n)) = ident else {
            return Some(self.unknown(&line));
        };
        let arg_start = bytes[n..]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .map_or(bytes.len(), |p| n + p);
        let arg = String::from_utf8_lossy(&bytes[arg_start..]).into_owned();
        if !has_arg && !arg.is_empty() {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "unexpected argument data",
                &line,
            ));
        }
        match self.phase {
            Phase::BdatNext => match verb {
                Verb::Bdat | Verb::Quit | Verb::Rset | Verb::Noop => {}
                _ => {
                    self.phase = Phase::RsetOnly;
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "only BDAT permissible after non-LAST BDAT",
                        &line,
                    ));
                }
            },
            Phase::RsetOnly => match verb {
                Verb::Quit | Verb::Rset => {}
                _ => {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "only RSET accepted now",
                        &line,
                    ));
                }
            },
            _ => {}
        }
        match verb {
            Verb::Helo | Verb::Ehlo => self.cmd_helo(verb, arg, &line),
            Verb::Mail => self.cmd_mail(arg, &line),
            Verb::Rcpt => {
                self.last_was_rcpt = true;
                self.cmd_rcpt(arg, &line, was_rej_mail)
            }
            Verb::Data => self.cmd_data(&line, was_rcpt, None),
            Verb::Bdat => self.cmd_bdat(&arg, &line, was_rcpt),
            Verb::Rset => {
                self.reset_transaction();
                self.phase = Phase::Command;
                self.write(&Reply::new(250, "Reset OK"));
                Some(Event::Rset)
            }
            Verb::Noop => {
                self.write(&Reply::new(250, "OK"));
                Some(Event::Noop)
            }
            Verb::Quit => {
                self.set_pending(Pending::Quit, verb);
                Some(Event::Quit)
            }
            Verb::Vrfy => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Vrfy(arg))
            }
            Verb::Expn => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Expn(arg))
            }
            Verb::Help => {
                self.set_pending(Pending::Other, verb);
                Some(Event::Help(arg))
            }
            Verb::Etrn => {
                if self.mail {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "ETRN is not permitted inside a transaction",
                        &line,
                    ));
                }
                self.set_pending(Pending::Other, verb);
                Some(Event::Etrn(arg))
            }
            Verb::StartTls => {
                if !self.adv.starttls || self.tls {
                    return Some(self.synprot(
                        ErrorKind::Sequence,
                        503,
                        None,
                        "STARTTLS command used when not advertised",
                        &line,
                    ));
                }
                self.set_pending(Pending::StartTls, verb);
                Some(Event::StartTls)
            }
            Verb::Auth => self.cmd_auth(arg, &line),
        }
    }

    fn unknown(&mut self, line: &str) -> Event {
        self.unknown_commands += 1;
        if self.unknown_commands > self.cfg.max_unknown_commands {
            let reply = Reply::new(500, "Too many unrecognized commands");
            self.write(&reply);
            self.phase = Phase::Closed;
            return Event::Error(ProtocolError {
                kind: ErrorKind::UnknownCommand,
                line: line.to_owned(),
                detail: "unrecognized command".into(),
                reply,
                closing: true,
            });
        }
        self.synprot(
            ErrorKind::UnknownCommand,
            500,
            None,
            "unrecognized command",
            line,
        )
    }

    fn cmd_helo(&mut self, verb: Verb, arg: String, line: &str) -> Option<Event> {
        let ehlo = verb == Verb::Ehlo;
        if !self.check_helo(&arg) {
            let hello = if ehlo { "EHLO" } else { "HELO" };
            self.synprot_errors += 1;
            let closing = self.synprot_errors > self.cfg.max_synprot_errors;
            if closing {
                self.phase = Phase::Closed;
            }
            let reply = Reply::new(501, format!("Syntactically invalid {hello} argument(s)"));
            self.write(&reply);
            return Some(Event::Error(ProtocolError {
                kind: ErrorKind::Syntax,
                line: line.to_owned(),
                detail: "syntactically invalid argument(s)".into(),
                reply,
                closing,
            }));
        }
        self.pending_helo = Some(arg.clone());
        self.set_pending(Pending::Helo { ehlo }, verb);
        Some(Event::Helo { ehlo, name: arg })
    }

    fn check_helo(&self, s: &str) -> bool {
        if self.cfg.helo_accept_junk {
            return true;
        }
        if let Some(inner) = s.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return false;
            };
            let lower = inner.get(..5).map(str::to_ascii_lowercase);
            return match lower.as_deref() {
                Some("ipv6:") => inner[5..].parse::<std::net::Ipv6Addr>().is_ok(),
                Some("ipv4:") => inner[5..].parse::<std::net::Ipv4Addr>().is_ok(),
                _ => inner.parse::<std::net::IpAddr>().is_ok(),
            };
        }
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '-'
                    || self.cfg.helo_allow_chars.contains(c)
            })
    }

    fn cmd_mail(&mut self, arg: String, line: &str) -> Option<Event> {
        // Reset when the MAIL is accepted.
        self.last_was_rej_mail = true;
        if self.cfg.helo_required && !self.helo_seen {
            return Some(self.plain_error(
                ErrorKind::Sequence,
                Reply::new(503, "HELO or EHLO required"),
                line,
                "no HELO/EHLO given",
            ));
        }
        if self.mail {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "sender already given",
                line,
            ));
        }
        if arg.is_empty() {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "MAIL must have an address operand",
                line,
            ));
        }
        // Any new MAIL abandons the previous transaction.
        self.reset_transaction();
        let parsed = match parse_path_arg(&arg, true) {
            Ok(p) if self.literal_refused(Ok(&p.path)) => {
                return Some(self.literal_not_allowed(&arg, line));
            }
            Err(e) if self.literal_refused(Err(&e)) => {
                return Some(self.literal_not_allowed(&arg, line));
            }
            Ok(p) => p,
            Err(e) => {
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    501,
                    Some(&arg),
                    &e.to_string(),
                    line,
                ));
            }
        };
        let path_text = parsed.path_text.to_owned();
        let rest = parsed.rest;
        let rest_off = arg.len() - rest.len();
        let mut mf = MailFrom {
            from: parsed.path.address().to_owned(),
            params: Vec::new(),
            size: None,
            body: None,
            smtputf8: false,
            raw: arg.clone(),
        };
        let unqualified = !parsed.path.is_null() && parsed.path.domain().is_none();
        // Exim only looks for ESMTP options after EHLO; otherwise they are
        // trailing junk after the address.
        let params = if self.esmtp {
            parse_params(rest)
        } else if rest.is_empty() {
            Ok(Vec::new())
        } else {
            Err(crate::address::BadParam {
                offset: 0,
                end: rest.len(),
            })
        };
        let params = match params {
            Ok(p) => p,
            Err(bad) => {
                return Some(self.bad_param(&arg, &path_text, rest_off, bad.end, line));
            }
        };
        let mut ret_seen = false;
        let mut envid_seen = false;
        for ((k, v), _s, e) in &params {
            let value = v.as_deref();
            let ok = match (k.as_str(), value) {
                ("SIZE", Some(v)) => match size_param(v) {
                    Some(n) => {
                        mf.size = Some(n);
                        true
                    }
                    None => false,
                },
                ("BODY", Some(v)) if self.adv.eight_bit_mime => match BodyType::parse(v) {
                    Some(b) => {
                        mf.body = Some(b);
                        true
                    }
                    None => {
                        return Some(self.synprot(
                            ErrorKind::Syntax,
                            501,
                            None,
                            "invalid data for BODY",
                            line,
                        ));
                    }
                },
                ("RET", Some(v)) => {
                    if self.adv.dsn {
                        if ret_seen {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "RET can be specified once only",
                                line,
                            ));
                        }
                        ret_seen = true;
                        if !v.eq_ignore_ascii_case("HDRS") && !v.eq_ignore_ascii_case("FULL") {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "Value for RET is invalid",
                                line,
                            ));
                        }
                    }
                    true
                }
                ("ENVID", Some(_)) => {
                    if self.adv.dsn {
                        if envid_seen {
                            return Some(self.synprot(
                                ErrorKind::Syntax,
                                501,
                                None,
                                "ENVID can be specified once only",
                                line,
                            ));
                        }
                        envid_seen = true;
                    }
                    true
                }
                ("AUTH", Some(_)) | ("PRDR", None) => true,
                ("SMTPUTF8", None) => {
                    if !self.adv.smtputf8 {
                        return Some(self.synprot(
                            ErrorKind::Syntax,
                            501,
                            None,
                            "SMTPUTF8 used when not advertised",
                            line,
                        ));
                    }
                    mf.smtputf8 = true;
                    true
                }
                _ => false,
            };
            if !ok {
                // Exim stops extracting options at the first bad one from
                // the end and then fails on the address.
                let last_bad = params
                    .iter()
                    .rev()
                    .find(|((k2, v2), _, _)| !self.mail_param_known(k2, v2.as_deref()))
                    .map_or(*e, |(_, _, e2)| *e2);
                return Some(self.bad_param(&arg, &path_text, rest_off, last_bad, line));
            }
        }
        mf.params = params.into_iter().map(|(kv, _, _)| kv).collect();
        if unqualified && !self.cfg.allow_unqualified_sender {
            return Some(self.plain_error(
                ErrorKind::Syntax,
                Reply::new(
                    501,
                    format!("{path_text}: sender address must contain a domain"),
                ),
                line,
                "unqualified sender rejected",
            ));
        }
        if let (Some(n), Some(limit)) = (mf.size, self.adv.size) {
            if n > limit {
                return Some(self.plain_error(
                    ErrorKind::Limit,
                    Reply::new(552, "Message size exceeds maximum permitted"),
                    line,
                    "message too big",
                ));
            }
        }
        self.set_pending(Pending::Mail, Verb::Mail);
        Some(Event::Mail(mf))
    }

    /// A domain literal (well-formed or not) where they are not allowed.
    fn literal_refused(&self, parsed: Result<&crate::address::Path, &AddressError>) -> bool {
        !self.cfg.allow_domain_literals
            && match parsed {
                Ok(p) => p.domain().is_some_and(|d| d.starts_with('[')),
                Err(e) => matches!(e, AddressError::MalformedLiteral),
            }
    }

    fn literal_not_allowed(&mut self, arg: &str, line: &str) -> Event {
        self.synprot(
            ErrorKind::Syntax,
            501,
            Some(arg),
            "domain literals not allowed",
            line,
        )
    }

    fn mail_param_known(&self, k: &str, v: Option<&str>) -> bool {
        match (k, v) {
            ("SIZE", Some(v)) => size_param(v).is_some(),
            ("BODY", Some(_)) => self.adv.eight_bit_mime,
            ("RET" | "ENVID" | "AUTH", Some(_)) | ("PRDR" | "SMTPUTF8", None) => true,
            _ => false,
        }
    }

    /// Exim-style failure for an option it could not use: the option text
    /// ends up after the address and fails address parsing.
    fn bad_param(
        &mut self,
        arg: &str,
        path_text: &str,
        rest_off: usize,
        bad_end: usize,
        line: &str,
    ) -> Event {
        let data = arg[..(rest_off + bad_end).min(arg.len())].trim_end();
        let junk: String = arg[rest_off..data.len().max(rest_off)]
            .chars()
            .take(32)
            .collect();
        let msg = format!("malformed address: {junk} may not follow {path_text}");
        self.synprot(ErrorKind::Syntax, 501, Some(data), &msg, line)
    }

    fn cmd_rcpt(&mut self, arg: String, line: &str, was_rej_mail: bool) -> Option<Event> {
        self.rcpt_count += 1;
        if !self.mail {
            let ev = if self.adv.pipelining && was_rej_mail {
                self.last_was_rej_mail = true;
                self.plain_error(
                    ErrorKind::Sequence,
                    Reply::new(503, "sender not yet given"),
                    line,
                    "sender not yet given",
                )
            } else {
                // Not a valid RCPT for the purposes of the DATA reply.
                self.last_was_rcpt = false;
                self.synprot(ErrorKind::Sequence, 503, None, "sender not yet given", line)
            };
            if let Event::Error(e) = &ev {
                let r = e.reply.clone();
                self.note_rcpt_reply(&r);
            }
            return Some(ev);
        }
        if arg.is_empty() {
            let ev = self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "RCPT must have an address operand",
                line,
            );
            self.note_error_reply(&ev);
            return Some(ev);
        }
        let parsed = match parse_path_arg(&arg, false) {
            Ok(p) if self.literal_refused(Ok(&p.path)) => {
                let ev = self.literal_not_allowed(&arg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
            Err(e) if self.literal_refused(Err(&e)) => {
                let ev = self.literal_not_allowed(&arg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
            Ok(p) => p,
            Err(e) => {
                let ev = self.synprot(ErrorKind::Syntax, 501, Some(&arg), &e.to_string(), line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        };
        let path_text = parsed.path_text.to_owned();
        let rest = parsed.rest;
        let rest_off = arg.len() - rest.len();
        let params = if self.esmtp {
            parse_params(rest)
        } else if rest.is_empty() {
            Ok(Vec::new())
        } else {
            Err(crate::address::BadParam {
                offset: 0,
                end: rest.len(),
            })
        };
        let params = match params {
            Ok(p) => p,
            Err(bad) => {
                let ev = self.bad_param(&arg, &path_text, rest_off, bad.end, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        };
        let (mut notify_seen, mut orcpt_seen) = (false, false);
        for ((k, v), _, e) in &params {
            let dsn = self.adv.dsn;
            let res: Result<(), &str> = match (k.as_str(), v.as_deref()) {
                ("NOTIFY", Some(v)) if dsn => {
                    if notify_seen {
                        Err("NOTIFY can be specified once only")
                    } else {
                        notify_seen = true;
                        let valid = v.eq_ignore_ascii_case("NEVER")
                            || v.split(',').all(|w| {
                                ["SUCCESS", "FAILURE", "DELAY"]
                                    .iter()
                                    .any(|k| w.eq_ignore_ascii_case(k))
                            });
                        if valid {
                            Ok(())
                        } else {
                            Err("Invalid value for NOTIFY parameter")
                        }
                    }
                }
                ("ORCPT", Some(_)) if dsn => {
                    if orcpt_seen {
                        Err("ORCPT can be specified once only")
                    } else {
                        orcpt_seen = true;
                        Ok(())
                    }
                }
                _ => {
                    let ev = self.bad_param(&arg, &path_text, rest_off, *e, line);
                    self.note_error_reply(&ev);
                    return Some(ev);
                }
            };
            if let Err(msg) = res {
                let ev = self.synprot(ErrorKind::Syntax, 501, None, msg, line);
                self.note_error_reply(&ev);
                return Some(ev);
            }
        }
        let to = parsed.path.address().to_owned();
        if parsed.path.domain().is_none()
            && !to.eq_ignore_ascii_case("postmaster")
            && !self.cfg.allow_unqualified_recipient
        {
            let ev = self.plain_error(
                ErrorKind::Syntax,
                Reply::new(
                    501,
                    format!("{path_text}: recipient address must contain a domain"),
                ),
                line,
                "unqualified recipient rejected",
            );
            self.note_error_reply(&ev);
            return Some(ev);
        }
        if self.cfg.recipients_max > 0 && self.rcpt_count > self.cfg.recipients_max {
            self.too_many = true;
            let reply = if self.cfg.recipients_max_reject {
                Reply::new(552, "too many recipients")
            } else {
                Reply::new(452, "too many recipients")
            };
            let ev = self.plain_error(ErrorKind::Limit, reply, line, "too many recipients");
            self.note_error_reply(&ev);
            return Some(ev);
        }
        self.set_pending(Pending::Rcpt, Verb::Rcpt);
        Some(Event::Rcpt(RcptTo {
            to,
            params: params.into_iter().map(|(kv, _, _)| kv).collect(),
            raw: arg,
        }))
    }

    fn note_error_reply(&mut self, ev: &Event) {
        if let Event::Error(e) = ev {
            let r = e.reply.clone();
            self.note_rcpt_reply(&r);
        }
    }

    /// DATA, or the checks shared with BDAT (`bdat = Some((size, last))`).
    fn cmd_data(&mut self, line: &str, was_rcpt: bool, bdat: Option<(u64, bool)>) -> Option<Event> {
        self.pipe_connect_ok = false;
        let name = if bdat.is_some() { "BDAT" } else { "DATA" };
        if self.rcpts == 0 {
            let mut lines = Vec::new();
            if self.rcpt_reply_same {
                if let Some(r) = &self.rcpt_reply {
                    lines.push("All RCPT commands were rejected with this error:".to_owned());
                    lines.push(r.clone());
                }
            }
            let ev = if self.adv.pipelining && was_rcpt {
                lines.push(format!("Valid RCPT command must precede {name}"));
                self.plain_error(
                    ErrorKind::Sequence,
                    Reply::from_lines(503, lines),
                    line,
                    "no valid recipients",
                )
            } else {
                let msg = format!("valid RCPT command must precede {name}");
                let mut ev = self.synprot(ErrorKind::Sequence, 503, None, &msg, line);
                if !lines.is_empty() {
                    // Prefix the summary lines to what synprot wrote.
                    if let Event::Error(e) = &mut ev {
                        let written = e.reply.to_bytes();
                        let new_len = self.out.len() - written.len();
                        self.out.truncate(new_len);
                        lines.append(&mut e.reply.text);
                        e.reply = Reply::from_lines(503, lines);
                        e.reply.write_to(&mut self.out);
                    }
                }
                ev
            };
            if let Some((size, _)) = bdat {
                if self.phase != Phase::Closed {
                    self.phase = Phase::Bdat {
                        remaining: size,
                        size,
                        last: false,
                        discard: true,
                    };
                }
            }
            return Some(ev);
        }
        if self.too_many && self.cfg.recipients_max_reject {
            self.mail = false;
            return Some(self.plain_error(
                ErrorKind::Limit,
                Reply::new(554, "Too many recipients"),
                line,
                "too many recipients",
            ));
        }
        match bdat {
            None => {
                self.set_pending(Pending::Data, Verb::Data);
                Some(Event::Data)
            }
            Some((size, last)) => {
                self.decoder = DataDecoder::bdat(self.cfg.data_line_ending, self.cfg.line_rules);
                self.bdat_sizes = Some((size, size));
                self.phase = Phase::Bdat {
                    remaining: size,
                    size,
                    last,
                    discard: false,
                };
                Some(Event::Bdat { size, last })
            }
        }
    }

    fn cmd_bdat(&mut self, arg: &str, line: &str, was_rcpt: bool) -> Option<Event> {
        if !self.adv.chunking {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "BDAT command used when CHUNKING not advertised",
                line,
            ));
        }
        let mut words = arg.split_ascii_whitespace();
        let size = words.next().and_then(|w| w.parse::<u64>().ok());
        let Some(size) = size else {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "missing size for BDAT command",
                line,
            ));
        };
        let last = match (words.next(), words.next()) {
            (None, _) => false,
            (Some(w), None) if w.eq_ignore_ascii_case("LAST") => true,
            _ => {
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    501,
                    None,
                    "unexpected argument data",
                    line,
                ));
            }
        };
        if self.phase == Phase::BdatNext {
            // A continuation chunk of the running transaction.
            if let Some((_, total)) = self.bdat_sizes {
                self.bdat_sizes = Some((size, total + size));
            }
            if size == 0 && !last {
                self.phase = Phase::RsetOnly;
                return Some(self.synprot(
                    ErrorKind::Syntax,
                    504,
                    None,
                    "zero size for BDAT command",
                    line,
                ));
            }
            self.phase = Phase::Bdat {
                remaining: size,
                size,
                last,
                discard: false,
            };
            return Some(Event::Bdat { size, last });
        }
        if size == 0 && !last && self.rcpts > 0 {
            self.phase = Phase::RsetOnly;
            return Some(self.synprot(
                ErrorKind::Syntax,
                504,
                None,
                "zero size for BDAT command",
                line,
            ));
        }
        self.cmd_data(line, was_rcpt, Some((size, last)))
    }

    fn cmd_auth(&mut self, arg: String, line: &str) -> Option<Event> {
        if self.adv.auth.is_empty() && !self.cfg.allow_auth_unadvertised {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "AUTH command used when not advertised",
                line,
            ));
        }
        if self.authenticated {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "already authenticated",
                line,
            ));
        }
        if self.mail {
            return Some(self.synprot(
                ErrorKind::Sequence,
                503,
                None,
                "not permitted in mail transaction",
                line,
            ));
        }
        let (mech, initial) = match arg.split_once([' ', '\t']) {
            Some((m, rest)) => (
                m.to_owned(),
                Some(rest.trim_start().to_owned()).filter(|s| !s.is_empty()),
            ),
            None => (arg.clone(), None),
        };
        if !mech
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Some(self.synprot(
                ErrorKind::Syntax,
                501,
                None,
                "invalid character in authentication mechanism name",
                line,
            ));
        }
        self.set_pending(Pending::Auth, Verb::Auth);
        Some(Event::Auth {
            mechanism: mech,
            initial,
        })
    }

    fn poll_data(&mut self) -> Option<Event> {
        let avail = &self.inbuf[self.pos..];
        let mut out = Vec::with_capacity(avail.len());
        let before = self.decoder.summary().lines;
        let n = self.decoder.decode(avail, &mut out);
        self.lines_in += self.decoder.summary().lines - before;
        self.pos += n;
        if !out.is_empty() {
            return Some(Event::DataChunk(out));
        }
        if self.decoder.is_ended() {
            // The terminating "." line.
            self.lines_in += 1;
            self.phase = Phase::Command;
            self.pending = Some(Pending::DataEnd);
            self.pending_verb = None;
            return Some(Event::DataEnd(self.decoder.summary()));
        }
        None
    }

    fn poll_bdat(&mut self) -> Option<Event> {
        let Phase::Bdat {
            remaining,
            size,
            last,
            discard,
        } = self.phase
        else {
            return None;
        };
        let avail = self.inbuf.len() - self.pos;
        let take = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
        let chunk_range = self.pos..self.pos + take;
        self.pos += take;
        let remaining = remaining - take as u64;
        let mut out = Vec::new();
        if !discard && take > 0 {
            out.reserve(take);
            let before = self.decoder.summary().lines;
            self.decoder.decode(&self.inbuf[chunk_range], &mut out);
            self.lines_in += self.decoder.summary().lines - before;
        }
        if remaining > 0 {
            self.phase = Phase::Bdat {
                remaining,
                size,
                last,
                discard,
            };
            return (!out.is_empty()).then_some(Event::DataChunk(out));
        }
        // Chunk complete.
        if discard {
            self.phase = Phase::Command;
            return None;
        }
        if last {
            self.decoder.finish(&mut out);
            self.phase = Phase::Command;
            if !out.is_empty() {
                // Deliver the data first; DataEnd follows on the next poll.
                self.queued
                    .push_back(Event::DataEnd(self.decoder.summary()));
                self.pending = Some(Pending::DataEnd);
                self.pending_verb = None;
                return Some(Event::DataChunk(out));
            }
            self.pending = Some(Pending::DataEnd);
            self.pending_verb = None;
            return Some(Event::DataEnd(self.decoder.summary()));
        }
        let reply = Reply::new(250, format!("{size} byte chunk received"));
        self.write(&reply);
        self.phase = Phase::BdatNext;
        (!out.is_empty()).then_some(Event::DataChunk(out))
    }
}

/// One input line, or the marker for a discarded over-long line.
enum Line {
    Text(Vec<u8>),
    /// The first [`LONG_LINE_LOGGED`] bytes of the discarded line.
    TooLong(String),
}

/// How much of an over-long command line is kept for the log.
const LONG_LINE_LOGGED: usize = 100;

/// Lossy, printable rendering of client input for logs: NUL becomes `?`.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "?")
}

/// Exim's reading of `SIZE=`: an optionally signed decimal number; a value
/// that overflows, is negative or is past `INT_MAX` counts as `INT_MAX`
/// (so a huge or negative size is "too big", never wrapped round).
/// Anything else is not a SIZE value.
fn size_param(v: &str) -> Option<u64> {
    const INT_MAX: u64 = i32::MAX as u64;
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<u64>().unwrap_or(u64::MAX);
    if negative && n != 0 {
        return Some(INT_MAX);
    }
    Some(n.min(INT_MAX))
}

#[cfg(test)]
mod tests {

    /// SIZE= is bounded as Exim bounds it (CVE-2020-28017 class: no
    /// wrap-round): huge and negative sizes are too big, junk is no size.
    #[test]
    fn size_parameter_bounds() {
        let max = i32::MAX as u64;
        assert_eq!(size_param("1000"), Some(1000));
        assert_eq!(size_param("+7"), Some(7));
        assert_eq!(size_param("-0"), Some(0));
        assert_eq!(size_param("-1"), Some(max));
        assert_eq!(size_param("99999999999999999999999"), Some(max));
        assert_eq!(size_param("18446744073709551617"), Some(max));
        assert_eq!(size_param("4294967296"), Some(max));
        for junk in ["", "-", "0x10", "1e9", "12 ", " 12", "1-2"] {
            assert_eq!(size_param(junk), None, "{junk:?}");
        }
    }
    use super::*;

    #[test]
    fn identifies_commands_like_exim() {
        assert_eq!(identify(b"MAIL FROM:<a@b>").map(|v| v.0), Some(Verb::Mail));
        assert_eq!(identify(b"mail from: <a@b>").map(|v| v.0), Some(Verb::Mail));
        assert_eq!(
            identify(b"mail from:x").map(|v| (v.0, v.2)),
            Some((Verb::Mail, 10))
        );
        assert_eq!(identify(b"MAIL  FROM:<a@b>"), None);
        assert_eq!(identify(b"DATA").map(|v| v.0), Some(Verb::Data));
        assert_eq!(identify(b"DATAX"), None);
        assert_eq!(
            identify(b"data x").map(|v| (v.0, v.1)),
            Some((Verb::Data, false))
        );
        assert_eq!(identify(b"STARTTLS").map(|v| v.0), Some(Verb::StartTls));
        assert_eq!(identify(b"QUI"), None);
        assert_eq!(identify(b""), None);
    }

    #[test]
    fn sync_rules_follow_pipelining() {
        for v in [
            Verb::Helo,
            Verb::Ehlo,
            Verb::Data,
            Verb::Noop,
            Verb::StartTls,
        ] {
            assert!(v.needs_sync(true) && v.needs_sync(false), "{v:?}");
        }
        for v in [Verb::Mail, Verb::Rcpt, Verb::Rset] {
            assert!(!v.needs_sync(true) && v.needs_sync(false), "{v:?}");
        }
        for v in [Verb::Quit, Verb::Auth, Verb::Help, Verb::Bdat] {
            assert!(!v.needs_sync(true) && !v.needs_sync(false), "{v:?}");
        }
    }

    #[test]
    fn helo_argument_check() {
        let s = ServerSession::new(ServerConfig {
            helo_allow_chars: "_".into(),
            ..ServerConfig::default()
        });
        for ok in [
            "a.b-c",
            "A1",
            "x_y",
            "[127.0.0.1]",
            "[IPv6:::1]",
            "[ipv4:1.2.3.4]",
            "[::1]",
        ] {
            assert!(s.check_helo(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a@b",
            "[1.2.3]",
            "[IPv6:1.2.3.4]",
            "[1.2.3.4",
            "ü",
        ] {
            assert!(!s.check_helo(bad), "{bad}");
        }
        let junk = ServerSession::new(ServerConfig {
            helo_accept_junk: true,
            ..ServerConfig::default()
        });
        assert!(junk.check_helo("any thing @ all"));
    }

    #[test]
    fn hello_text_forms() {
        assert_eq!(
            hello_text("abcd", None, None, Some("127.0.0.1")),
            "Hello abcd [127.0.0.1]"
        );
        assert_eq!(
            hello_text("abcd", Some("localhost"), Some("u"), Some("::1")),
            "Hello u at localhost [::1]"
        );
        assert_eq!(hello_text("x", None, None, None), "Hello x");
    }

    #[test]
    fn output_can_be_consumed_partially() {
        let mut s = ServerSession::new(ServerConfig::default());
        s.greet(Reply::new(220, "hi")).unwrap();
        assert!(s.has_output());
        s.consume_output(4);
        assert_eq!(s.output(), b"hi\r\n");
        s.consume_output(100);
        assert!(!s.has_output());
    }

    /// Feed `bytes`, answer every event that needs it (354 to DATA, 250
    /// otherwise), and report (lines received, mid-line).
    fn feed(s: &mut ServerSession, bytes: &[u8]) -> (u64, bool) {
        s.handle_input(bytes);
        while let Some(ev) = s.poll_event() {
            if ev.needs_response() {
                let code = if matches!(ev, Event::Data) { 354 } else { 250 };
                s.respond(Reply::new(code, "OK")).unwrap();
            }
        }
        (s.lines_received(), s.mid_line())
    }

    #[test]
    fn partial_lines_are_visible_for_line_timeouts() {
        let mut s = ServerSession::new(ServerConfig {
            enforce_sync: false,
            ..ServerConfig::default()
        });
        s.greet(Reply::new(220, "hi")).unwrap();
        assert_eq!(feed(&mut s, b""), (0, false));
        assert_eq!(feed(&mut s, b"NO"), (0, true));
        assert_eq!(feed(&mut s, b"OP\r\nNO"), (1, true));
        assert_eq!(feed(&mut s, b"OP\r\n"), (2, false));
        // An over-long line being discarded is still a partial line.
        assert_eq!(feed(&mut s, &[b'x'; 20_000]), (2, true));
        assert_eq!(feed(&mut s, b"\r\n"), (3, false));
        // Body lines count too, a CR waiting for its LF is mid-line, and so
        // is a lone dot that may turn out to be the terminator.
        feed(&mut s, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        assert_eq!(feed(&mut s, b""), (6, false));
        assert_eq!(feed(&mut s, b"Subject: x\r"), (6, true));
        assert_eq!(feed(&mut s, b"\n\r\nbody"), (8, true));
        assert_eq!(feed(&mut s, b"\r\n"), (9, false));
        assert_eq!(feed(&mut s, b"."), (9, true));
        assert_eq!(feed(&mut s, b"\r\n"), (10, false));
        assert_eq!(s.state(), SessionState::Command);
        assert_eq!(feed(&mut s, b"QU"), (10, true));
    }
}
