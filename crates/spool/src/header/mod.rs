//! The `-H` file: envelope and header lines, in Exim's spool format.
//!
//! Layout (one item per line unless said otherwise):
//!
//! ```text
//! <id>-H
//! <login> <uid> <gid>
//! <<sender>>
//! <received time, seconds> <warning count>
//! -<flag> [value]             (zero or more; e.g. -received_protocol esmtp)
//! -aclc <name> <len>          (ACL variables: the value follows on the next
//! <value of len bytes>         line(s) and is itself followed by a newline)
//! XX | YN <address> ...       (non-recipients tree: addresses already
//!                              delivered, in pre-order; XX when empty)
//! <recipient count>
//! <recipient>                 (count times)
//! <blank line>
//! NNNc <header text>          (zero or more: NNN is the length of the text,
//!                              at least 3 digits, c the type character; the
//!                              text includes its newline and continuation
//!                              lines)
//! ```
//!
//! [`parse_header`] is pure and total: any byte string yields either a value
//! or a [`FormatError`], never a panic.

use crate::id::MessageId;
use oxim_net::ServerTfo;
use std::borrow::Cow;
use std::fmt::Write as _;

mod format;
mod parse;

pub use format::format_header;
pub use parse::parse_header;

use parse::{join_addr_port, parse_extended_recipient};

/// One recipient of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    /// The envelope recipient address, as given in RCPT TO (without `<>`).
    pub address: String,
    /// True once the address has been delivered (it is in the non-recipients
    /// tree, or in the `-J` journal).
    pub done: bool,
    /// DSN ORCPT value, if any.
    pub orcpt: Option<String>,
    /// Per-recipient errors address, if any.
    pub errors_to: Option<String>,
    /// DSN NOTIFY flags (Exim's bit values).
    pub dsn_flags: u32,
    /// Index of the "parent" recipient for one-time aliases, or -1.
    pub pno: i32,
}

impl Recipient {
    /// A plain recipient, not yet delivered.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            pno: -1,
            ..Recipient::default()
        }
    }

    fn is_plain(&self) -> bool {
        self.orcpt.is_none() && self.errors_to.is_none() && self.dsn_flags == 0 && self.pno < 0
    }
}

/// TLS facts about the incoming connection, as Exim records them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// `-tls_cipher`: the cipher suite string as logged in `X=`.
    pub cipher: Option<String>,
    /// `-tls_peerdn`: the client certificate's DN.
    pub peerdn: Option<String>,
    /// `-tls_sni`: the SNI the client sent.
    pub sni: Option<String>,
    /// `-tls_certificate_verified`: the client certificate was verified.
    pub certificate_verified: bool,
    /// `-tls_ver`: protocol version.
    pub ver: Option<String>,
}

/// Everything in a `-H` file apart from the header lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The message id.
    pub id: MessageId,
    /// Login name of the user that submitted the message (or the Exim user).
    pub login: String,
    /// Uid of that user.
    pub uid: u32,
    /// Gid of that user.
    pub gid: u32,
    /// Envelope sender without `<>`; empty for a bounce.
    pub sender: String,
    /// Reception time, seconds since the epoch.
    pub received_time: u64,
    /// Sub-second part of the reception time, microseconds.
    pub received_time_usec: u32,
    /// Number of delay warnings sent so far.
    pub warning_count: u32,
    /// `-received_protocol` (`local`, `esmtp`, `esmtps`, ...).
    pub protocol: Option<String>,
    /// `-ident`: RFC 1413 ident or local login.
    pub ident: Option<String>,
    /// `-host_address`: the sending host's IP address.
    pub host_address: Option<String>,
    /// The sending host's port (stored with the address as `ip.port`).
    pub host_port: Option<u16>,
    /// `-host_name`: the verified host name of the sender.
    pub host_name: Option<String>,
    /// `-helo_name`: the HELO/EHLO argument.
    pub helo_name: Option<String>,
    /// `-host_auth`: the authenticator name (`$received_protocol` suffix).
    pub host_auth: Option<String>,
    /// `-host_auth_pubname`: the public (SASL mechanism) name of that
    /// authenticator.
    pub host_auth_pubname: Option<String>,
    /// `-auth_id`: authenticated id.
    pub auth_id: Option<String>,
    /// `-auth_sender`: AUTH= sender.
    pub auth_sender: Option<String>,
    /// `-interface_address`: local IP address the message arrived on.
    pub interface_address: Option<String>,
    /// The local port (stored as `ip.port`).
    pub interface_port: Option<u16>,
    /// `-active_hostname`, when it differs from the primary host name.
    pub active_hostname: Option<String>,
    /// `-body_linecount`.
    pub body_linecount: Option<u64>,
    /// `-max_received_linelength`.
    pub max_received_linelength: Option<u64>,
    /// `-body_zerocount`: number of NUL bytes in the body.
    pub body_zerocount: Option<u64>,
    /// `-frozen <time>`: frozen since this time.
    pub frozen: Option<u64>,
    /// `-local`: the message was submitted locally.
    pub local: bool,
    /// `-localerror`: errors go to the local sender, not by mail.
    pub localerror: bool,
    /// `-deliver_firsttime`: no delivery has been attempted yet.
    pub deliver_firsttime: bool,
    /// `-manual_thaw`: was thawed by an administrator.
    pub manual_thaw: bool,
    /// `-N`: deliveries are to be suppressed (`-N` option).
    pub dont_deliver: bool,
    /// TLS information about the incoming connection.
    pub tls: TlsInfo,
    /// `-oxim_tfo <outcome>`: oxim extension, TCP Fast Open outcome of the
    /// incoming connection (`cookie`, `cookie-data`; no line when none).
    pub tfo: ServerTfo,
    /// `-oxim_8bitmime`: oxim extension, the message came with
    /// `BODY=8BITMIME` (passed on where the next host offers 8BITMIME).
    pub body_8bitmime: bool,
    /// ACL variables (`-aclc name` / `-aclm name`), name including the
    /// `c`/`m` prefix letter, e.g. `("c0", "value")`. A name that starts
    /// with neither is written as a `c` variable.
    pub acl_vars: Vec<(String, String)>,
    /// Other `-name value` lines, preserved in order (empty value for a bare
    /// `-name`).
    pub extra: Vec<(String, String)>,
    /// Delivered addresses that are not among `recipients` (e.g. addresses
    /// generated by redirection); they stay in the non-recipients tree.
    /// Read back sorted (byte order) and without duplicates.
    pub non_recipients: Vec<String>,
    /// The envelope recipients, in RCPT order.
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    /// An envelope for `id` with the given sender and every other field empty
    /// or zero; fill in the rest with struct update syntax or assignments.
    pub fn new(id: MessageId, sender: impl Into<String>) -> Envelope {
        Envelope {
            id,
            login: String::new(),
            uid: 0,
            gid: 0,
            sender: sender.into(),
            received_time: 0,
            received_time_usec: 0,
            warning_count: 0,
            protocol: None,
            ident: None,
            host_address: None,
            host_port: None,
            host_name: None,
            helo_name: None,
            host_auth: None,
            host_auth_pubname: None,
            auth_id: None,
            auth_sender: None,
            interface_address: None,
            interface_port: None,
            active_hostname: None,
            body_linecount: None,
            max_received_linelength: None,
            body_zerocount: None,
            frozen: None,
            local: false,
            localerror: false,
            deliver_firsttime: false,
            manual_thaw: false,
            dont_deliver: false,
            tls: TlsInfo::default(),
            tfo: ServerTfo::None,
            body_8bitmime: false,
            acl_vars: Vec::new(),
            extra: Vec::new(),
            non_recipients: Vec::new(),
            recipients: Vec::new(),
        }
    }

    /// Recipients not yet delivered.
    pub fn pending_recipients(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients.iter().filter(|r| !r.done)
    }
}

/// Header line type characters used in the `-H` file.
pub mod kind {
    /// Deleted header (kept in the file, not transmitted).
    pub const DELETED: char = '*';
    /// `Received:`
    pub const RECEIVED: char = 'P';
    /// `Message-Id:`
    pub const MESSAGE_ID: char = 'I';
    /// `From:`
    pub const FROM: char = 'F';
    /// `To:`
    pub const TO: char = 'T';
    /// `Cc:`
    pub const CC: char = 'C';
    /// `Bcc:`
    pub const BCC: char = 'B';
    /// `Reply-To:`
    pub const REPLY_TO: char = 'R';
    /// `Sender:`
    pub const SENDER: char = 'S';
    /// Any other header.
    pub const OTHER: char = ' ';
}

/// One header line (possibly with continuation lines) as stored in `-H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Type character, see [`kind`].
    pub kind: char,
    /// The full header text including the final newline, e.g.
    /// `"Subject: hi\n"` (one is added on writing when missing).
    pub text: String,
}

impl Header {
    /// A header whose type is derived from its name (see [`header_kind`]).
    pub fn new(text: impl Into<String>) -> Header {
        let text = text.into();
        Header {
            kind: header_kind(&text),
            text,
        }
    }

    /// True unless the header is marked deleted.
    pub fn is_live(&self) -> bool {
        self.kind != kind::DELETED
    }

    /// The header name (text before the colon), if it has one.
    pub fn name(&self) -> Option<&str> {
        let (name, _) = self.text.split_once(':')?;
        Some(name.trim_end())
    }
}

/// The type character Exim uses for a header, from its name.
pub fn header_kind(text: &str) -> char {
    let name = text.split(':').next().unwrap_or("").trim_end();
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("Received") {
        kind::RECEIVED
    } else if is("Message-Id") {
        kind::MESSAGE_ID
    } else if is("From") {
        kind::FROM
    } else if is("To") {
        kind::TO
    } else if is("Cc") {
        kind::CC
    } else if is("Bcc") {
        kind::BCC
    } else if is("Reply-To") {
        kind::REPLY_TO
    } else if is("Sender") {
        kind::SENDER
    } else {
        kind::OTHER
    }
}

/// What is wrong with a `-H` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatErrorKind {
    /// The file ended before the named item.
    #[error("file truncated: missing {0}")]
    Truncated(&'static str),
    /// The first line is not `<id>-H`.
    #[error("bad first line (expected <id>-H)")]
    BadIdLine,
    /// The first line's id differs from the expected one.
    #[error("id line names a different message")]
    WrongId,
    /// The `login uid gid` line is malformed.
    #[error("bad login/uid/gid line")]
    BadOwnerLine,
    /// The sender line is not `<...>`.
    #[error("bad sender line")]
    BadSenderLine,
    /// The time line is not `seconds warnings`.
    #[error("bad time line")]
    BadTimeLine,
    /// A numeric flag value did not parse.
    #[error("bad value for -{0}")]
    BadFlagValue(String),
    /// An ACL variable block is malformed.
    #[error("bad ACL variable")]
    BadAclVar,
    /// A non-recipients tree line is malformed.
    #[error("bad non-recipients tree line")]
    BadTreeLine,
    /// The recipient count line is malformed.
    #[error("bad recipient count")]
    BadRecipientCount,
    /// The line after the recipients is not blank.
    #[error("missing blank line after recipients")]
    MissingBlankLine,
    /// A header line's `NNNc ` prefix is malformed.
    #[error("bad header prefix")]
    BadHeaderPrefix,
    /// A header's text is not followed correctly or is shorter than declared.
    #[error("header text shorter than its declared length")]
    ShortHeader,
    /// The file holds a NUL byte (Exim never writes one; a NUL would cut
    /// a field short in C, and a hand-made file must not be trusted).
    #[error("NUL byte in the file")]
    Nul,
}

/// A `-H` parse error with the 1-based line number where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct FormatError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: FormatErrorKind,
}

/// Total length of the live (not deleted) header texts: the header part of
/// the message size as `exim -bp` counts it.
pub fn header_size(headers: &[Header]) -> u64 {
    headers
        .iter()
        .filter(|h| h.is_live())
        .map(|h| h.text.len() as u64)
        .sum()
}
