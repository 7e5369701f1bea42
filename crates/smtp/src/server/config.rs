//! Session policy: limits, checks and the extensions a session offers.

use super::*;

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
    /// oxim's `XOXIM-TXID` (replay-safe transactions, see
    /// [`crate::TX_TOKEN_KEYWORD`]), just before HELP.
    pub tx_token: bool,
    /// Final `HELP` line (Exim always sends it).
    pub help: bool,
}
