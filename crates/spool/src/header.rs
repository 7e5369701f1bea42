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

/// Renders the `-H` file contents for an envelope and its headers.
pub fn format_header(env: &Envelope, headers: &[Header]) -> Vec<u8> {
    let mut s =
        String::with_capacity(512 + headers.iter().map(|h| h.text.len() + 5).sum::<usize>());
    // Writing to a String cannot fail.
    let _ = writeln!(s, "{}-H", env.id);
    let _ = writeln!(s, "{} {} {}", one_line(&env.login), env.uid, env.gid);
    let _ = writeln!(s, "<{}>", one_line(&env.sender));
    let _ = writeln!(s, "{} {}", env.received_time, env.warning_count);
    let _ = writeln!(
        s,
        "-received_time_usec .{:06}",
        env.received_time_usec.min(999_999)
    );
    let opt = |s: &mut String, name: &str, v: &Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(s, "-{name} {}", one_line(v));
        }
    };
    let num = |s: &mut String, name: &str, v: Option<u64>| {
        if let Some(v) = v {
            let _ = writeln!(s, "-{name} {v}");
        }
    };
    let flag = |s: &mut String, name: &str, v: bool| {
        if v {
            let _ = writeln!(s, "-{name}");
        }
    };
    opt(&mut s, "helo_name", &env.helo_name);
    if let Some(a) = &env.host_address {
        let _ = writeln!(
            s,
            "-host_address {}",
            one_line(&join_addr_port(a, env.host_port))
        );
    }
    opt(&mut s, "host_name", &env.host_name);
    opt(&mut s, "host_auth", &env.host_auth);
    if let Some(a) = &env.interface_address {
        let _ = writeln!(
            s,
            "-interface_address {}",
            one_line(&join_addr_port(a, env.interface_port))
        );
    }
    opt(&mut s, "active_hostname", &env.active_hostname);
    opt(&mut s, "received_protocol", &env.protocol);
    opt(&mut s, "ident", &env.ident);
    opt(&mut s, "auth_id", &env.auth_id);
    opt(&mut s, "auth_sender", &env.auth_sender);
    for (name, value) in &env.acl_vars {
        // Exim's form: "-aclc <name> <len>" then the value and a newline.
        let (scope, var) = match name.as_bytes().first() {
            Some(b'c' | b'm') => name.split_at(1),
            _ => ("c", name.as_str()),
        };
        // The value is length-counted (it may hold newlines); a NUL, which
        // the reader refuses, becomes `?` (same length).
        let value = value.replace('\0', "?");
        let _ = writeln!(s, "-acl{scope} {} {}", one_line(var), value.len());
        let _ = writeln!(s, "{value}");
    }
    num(&mut s, "body_linecount", env.body_linecount);
    num(
        &mut s,
        "max_received_linelength",
        env.max_received_linelength,
    );
    num(&mut s, "body_zerocount", env.body_zerocount);
    num(&mut s, "frozen", env.frozen);
    flag(&mut s, "local", env.local);
    flag(&mut s, "localerror", env.localerror);
    flag(&mut s, "deliver_firsttime", env.deliver_firsttime);
    flag(&mut s, "manual_thaw", env.manual_thaw);
    flag(&mut s, "N", env.dont_deliver);
    flag(
        &mut s,
        "tls_certificate_verified",
        env.tls.certificate_verified,
    );
    opt(&mut s, "tls_cipher", &env.tls.cipher);
    opt(&mut s, "tls_peerdn", &env.tls.peerdn);
    opt(&mut s, "tls_sni", &env.tls.sni);
    opt(&mut s, "tls_ver", &env.tls.ver);
    if env.tfo.is_tfo() {
        let _ = writeln!(s, "-oxim_tfo {}", env.tfo.name());
    }
    flag(&mut s, "oxim_8bitmime", env.body_8bitmime);
    for (name, value) in &env.extra {
        let name = one_line(name);
        if value.is_empty() {
            let _ = writeln!(s, "-{name}");
        } else {
            let _ = writeln!(s, "-{name} {}", one_line(value));
        }
    }

    // Non-recipients tree: done recipients plus other delivered addresses.
    let mut tree: Vec<Cow<'_, str>> = env
        .recipients
        .iter()
        .filter(|r| r.done)
        .map(|r| one_line(&r.address))
        .chain(env.non_recipients.iter().map(|a| one_line(a)))
        .collect();
    tree.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    tree.dedup();
    if tree.is_empty() {
        s.push_str("XX\n");
    } else {
        write_tree(&mut s, &tree);
    }

    let _ = writeln!(s, "{}", env.recipients.len());
    for r in &env.recipients {
        let address = one_line(&r.address);
        // A plain line that would read back as an extended one (an address
        // ending in "... n,n#n") is written in the extended form instead, so
        // that no address can give itself an errors_to or DSN flags.
        if r.is_plain() && parse_extended_recipient(&address).is_none() {
            let _ = writeln!(s, "{address}");
        } else {
            let orcpt = one_line(r.orcpt.as_deref().unwrap_or(""));
            let errors_to = one_line(r.errors_to.as_deref().unwrap_or(""));
            let _ = writeln!(
                s,
                "{} {} {},{} {} {},{}#3",
                address,
                orcpt,
                orcpt.len(),
                r.dsn_flags,
                errors_to,
                errors_to.len(),
                r.pno
            );
        }
    }
    s.push('\n');
    for h in headers {
        // The type must be one ASCII character other than a digit, and the
        // text must end in a newline, or the file could not be read back.
        let kind = if (h.kind.is_ascii_graphic() && !h.kind.is_ascii_digit()) || h.kind == ' ' {
            h.kind
        } else {
            kind::OTHER
        };
        // A NUL becomes `?`, as Exim does in headers (same length).
        let text = if h.text.contains('\0') {
            Cow::Owned(h.text.replace('\0', "?"))
        } else {
            Cow::Borrowed(h.text.as_str())
        };
        if text.ends_with('\n') {
            let _ = write!(s, "{:03}{kind} {}", text.len(), text);
        } else {
            let _ = writeln!(s, "{:03}{kind} {}", text.len() + 1, text);
        }
    }
    s.into_bytes()
}

/// A value written on one line of the file: line feeds (which no SMTP-given
/// value can contain) are replaced by spaces so that no input can add a line
/// of its own to the file, and NULs (which the reader refuses) by `?`.
fn one_line(v: &str) -> Cow<'_, str> {
    if v.contains(['\n', '\0']) {
        Cow::Owned(v.replace('\n', " ").replace('\0', "?"))
    } else {
        Cow::Borrowed(v)
    }
}

/// Writes a balanced binary search tree of sorted, unique `items` in
/// pre-order, each node as `<L><R> <address>` with `Y`/`N` telling whether
/// the left/right subtree exists. Iterative: no recursion on input size.
fn write_tree(s: &mut String, items: &[Cow<'_, str>]) {
    let mut stack: Vec<(usize, usize)> = vec![(0, items.len())];
    while let Some((lo, hi)) = stack.pop() {
        if lo >= hi {
            continue;
        }
        let mid = lo + (hi - lo) / 2;
        let left = mid > lo;
        let right = mid + 1 < hi;
        let _ = writeln!(
            s,
            "{}{} {}",
            if left { 'Y' } else { 'N' },
            if right { 'Y' } else { 'N' },
            items[mid]
        );
        // Pre-order: node, left subtree, right subtree.
        stack.push((mid + 1, hi));
        stack.push((lo, mid));
    }
}

/// A cursor over the lines of the file.
struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn err(&self, kind: FormatErrorKind) -> FormatError {
        FormatError {
            line: self.line,
            kind,
        }
    }

    /// Next line without its newline. A final line without a newline counts
    /// as truncated. Invalid UTF-8 is replaced (U+FFFD) rather than rejected,
    /// so a message with 8-bit junk in an address can still be listed and
    /// handled.
    fn next_line(&mut self, what: &'static str) -> Result<Cow<'a, str>, FormatError> {
        self.line += 1;
        let rest = &self.data[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err(FormatErrorKind::Truncated(what)));
        };
        self.pos += nl + 1;
        Ok(String::from_utf8_lossy(&rest[..nl]))
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Takes exactly `n` bytes (may span lines; counts the newlines seen).
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err(FormatErrorKind::Truncated(what)))?;
        let chunk = &self.data[self.pos..end];
        self.line += chunk.iter().filter(|&&b| b == b'\n').count();
        self.pos = end;
        Ok(chunk)
    }
}

fn lossy_owned(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits `addr.port` (Exim stores the port after the last dot). Only a
/// valid IP address followed by a valid port is split; anything else is
/// kept whole, without a port, so that writing it back is lossless.
fn split_addr_port(v: &str) -> (String, Option<u16>) {
    match v.rsplit_once('.') {
        Some((a, p)) if a.parse::<std::net::IpAddr>().is_ok() => match parse_num::<u16>(p) {
            Some(port) => (a.to_string(), Some(port)),
            None => (v.to_string(), None),
        },
        _ => (v.to_string(), None),
    }
}

/// `addr.port` as Exim writes it, or the bare value when there is no port.
fn join_addr_port(addr: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{addr}.{p}"),
        None => addr.to_string(),
    }
}

/// Parses an extended recipient line
/// `address orcpt orcpt_len,dsn_flags errors_to errors_len,pno#3`
/// (or the older `address errors_to errors_len,pno#1`), working from the end
/// because addresses may contain spaces. Returns `None` for a plain line.
fn parse_extended_recipient(line: &str) -> Option<Recipient> {
    let (body, flags) = line.rsplit_once('#')?;
    let flags: u32 = parse_num(flags)?;
    // Trailing "<errors_to> <len>,<pno>"
    let (rest, nums) = body.rsplit_once(' ')?;
    let (elen, pno) = nums.split_once(',')?;
    let elen: usize = parse_num(elen)?;
    let pno: i32 = if let Some(neg) = pno.strip_prefix('-') {
        -parse_num::<i32>(neg)?
    } else {
        parse_num(pno)?
    };
    // rest = "<address>[ ... ] <errors_to>" where errors_to has length elen
    let split = rest.len().checked_sub(elen)?;
    if !rest.is_char_boundary(split) {
        return None;
    }
    let errors_to = &rest[split..];
    let mut rest = rest[..split].strip_suffix(' ')?;
    let mut r = Recipient::new("");
    r.pno = pno;
    r.errors_to = (!errors_to.is_empty()).then(|| errors_to.to_string());
    if flags & 0x02 != 0 {
        // DSN part: "<address> <orcpt> <orcpt_len>,<dsn_flags>"
        let (head, nums) = rest.rsplit_once(' ')?;
        let (olen, dflags) = nums.split_once(',')?;
        let olen: usize = parse_num(olen)?;
        r.dsn_flags = parse_num(dflags)?;
        let split = head.len().checked_sub(olen)?;
        if !head.is_char_boundary(split) {
            return None;
        }
        let orcpt = &head[split..];
        r.orcpt = (!orcpt.is_empty()).then(|| orcpt.to_string());
        rest = head[..split].strip_suffix(' ')?;
    }
    r.address = rest.to_string();
    Some(r)
}

/// Parses the contents of a `-H` file. Total: never panics.
///
/// The recipients' `done` flags are set from the non-recipients tree; tree
/// entries that are not recipients end up in `Envelope::non_recipients`.
pub fn parse_header(data: &[u8]) -> Result<(Envelope, Vec<Header>), FormatError> {
    use FormatErrorKind as K;
    let mut l = Lines {
        data,
        pos: 0,
        line: 0,
    };

    if let Some(at) = data.iter().position(|&b| b == 0) {
        l.line = data[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(FormatError {
            line: l.line,
            kind: K::Nul,
        });
    }

    let idline = l.next_line("id line")?;
    let id: MessageId = idline
        .strip_suffix("-H")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| l.err(K::BadIdLine))?;

    let owner = l.next_line("login line")?;
    let mut parts = owner.rsplitn(3, ' ');
    let (gid, uid, login) = (parts.next(), parts.next(), parts.next());
    let (Some(gid), Some(uid), Some(login)) = (gid, uid, login) else {
        return Err(l.err(K::BadOwnerLine));
    };
    let (Some(uid), Some(gid)) = (parse_num::<u32>(uid), parse_num::<u32>(gid)) else {
        return Err(l.err(K::BadOwnerLine));
    };

    let sender_line = l.next_line("sender line")?;
    let sender = sender_line
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .map(str::to_string)
        .ok_or_else(|| l.err(K::BadSenderLine))?;

    let tline = l.next_line("time line")?;
    let (t, w) = tline.split_once(' ').ok_or_else(|| l.err(K::BadTimeLine))?;
    let (Some(received_time), Some(warning_count)) = (parse_num(t), parse_num(w)) else {
        return Err(l.err(K::BadTimeLine));
    };

    let mut env = Envelope::new(id, sender);
    env.login = login.to_string();
    env.uid = uid;
    env.gid = gid;
    env.received_time = received_time;
    env.warning_count = warning_count;

    // Flag lines.
    while l.peek() == Some(b'-') {
        let line = l.next_line("flag line")?;
        let body = line.get(1..).unwrap_or("");
        let (name, value) = match body.split_once(' ') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let bad = |l: &Lines<'_>| l.err(K::BadFlagValue(name.to_string()));
        let text = || value.unwrap_or("").to_string();
        let number = |l: &Lines<'_>| value.and_then(parse_num::<u64>).ok_or_else(|| bad(l));
        match name {
            "received_time_usec" => {
                env.received_time_usec = value
                    .and_then(|v| v.strip_prefix('.'))
                    .and_then(parse_num::<u32>)
                    .filter(|&u| u < 1_000_000)
                    .ok_or_else(|| bad(&l))?;
            }
            "helo_name" => env.helo_name = Some(text()),
            "host_address" => {
                let (a, p) = split_addr_port(value.unwrap_or(""));
                env.host_address = Some(a);
                env.host_port = p;
            }
            "interface_address" => {
                let (a, p) = split_addr_port(value.unwrap_or(""));
                env.interface_address = Some(a);
                env.interface_port = p;
            }
            "host_name" => env.host_name = Some(text()),
            "host_auth" => env.host_auth = Some(text()),
            "active_hostname" => env.active_hostname = Some(text()),
            "received_protocol" => env.protocol = Some(text()),
            "ident" => env.ident = Some(text()),
            "auth_id" => env.auth_id = Some(text()),
            "auth_sender" => env.auth_sender = Some(text()),
            "body_linecount" => env.body_linecount = Some(number(&l)?),
            "max_received_linelength" => env.max_received_linelength = Some(number(&l)?),
            "body_zerocount" => env.body_zerocount = Some(number(&l)?),
            "frozen" => env.frozen = Some(number(&l)?),
            "local" => env.local = true,
            "localerror" => env.localerror = true,
            "deliver_firsttime" => env.deliver_firsttime = true,
            "manual_thaw" => env.manual_thaw = true,
            "N" => env.dont_deliver = true,
            "tls_certificate_verified" => env.tls.certificate_verified = true,
            "tls_cipher" => env.tls.cipher = Some(text()),
            "tls_peerdn" => env.tls.peerdn = Some(text()),
            "tls_sni" => env.tls.sni = Some(text()),
            "tls_ver" => env.tls.ver = Some(text()),
            "oxim_tfo" => {
                // `TFO`/`TFO*`: as written by oxim before the outcome was
                // typed (the log suffix).
                env.tfo = match value {
                    Some("TFO") => ServerTfo::Cookie,
                    Some("TFO*") => ServerTfo::CookieWithData,
                    v => v.and_then(ServerTfo::from_name).ok_or_else(|| bad(&l))?,
                }
            }
            "oxim_8bitmime" => env.body_8bitmime = true,
            n if (n.starts_with("aclc") || n.starts_with("aclm")) && n.len() > 4 => {
                // "-aclc <name> <len>" (Exim 4.8x+: name after the space) or
                // our "-aclc<name> <len>"; value follows.
                let var = &n[3..];
                let (var, len) = match value.and_then(|v| v.split_once(' ')) {
                    Some((extra, len)) => (format!("{var}{extra}"), len),
                    None => (var.to_string(), value.unwrap_or("")),
                };
                let len: usize = parse_num(len).ok_or_else(|| l.err(K::BadAclVar))?;
                let v = l.take(len, "ACL variable value")?;
                if l.take(1, "ACL variable terminator")? != b"\n" {
                    return Err(l.err(K::BadAclVar));
                }
                env.acl_vars.push((var, lossy_owned(v)));
            }
            "aclc" | "aclm" => {
                // Exim's form: "-aclc <name> <len>".
                let (var, len) = value
                    .and_then(|v| v.rsplit_once(' '))
                    .ok_or_else(|| l.err(K::BadAclVar))?;
                let len: usize = parse_num(len).ok_or_else(|| l.err(K::BadAclVar))?;
                let var = format!("{}{}", &name[3..], var);
                let v = l.take(len, "ACL variable value")?;
                if l.take(1, "ACL variable terminator")? != b"\n" {
                    return Err(l.err(K::BadAclVar));
                }
                env.acl_vars.push((var, lossy_owned(v)));
            }
            _ => env.extra.push((name.to_string(), text())),
        }
    }

    // Non-recipients tree, pre-order; only the node count matters to read it.
    let mut tree: Vec<String> = Vec::new();
    let first = l.next_line("non-recipients tree")?;
    if first.as_ref() != "XX" {
        let mut pending: usize = 1;
        let mut line = first;
        loop {
            let b = line.as_bytes();
            if b.len() < 3 || b[2] != b' ' {
                return Err(l.err(K::BadTreeLine));
            }
            let flag = |c: u8| match c {
                b'Y' => Ok(1usize),
                b'N' => Ok(0usize),
                _ => Err(l.err(K::BadTreeLine)),
            };
            pending = pending - 1 + flag(b[0])? + flag(b[1])?;
            tree.push(line.get(3..).unwrap_or("").to_string());
            if pending == 0 {
                break;
            }
            line = l.next_line("non-recipients tree node")?;
        }
    }

    let count_line = l.next_line("recipient count")?;
    let count: usize = parse_num(&count_line).ok_or_else(|| l.err(K::BadRecipientCount))?;
    // Each recipient needs at least one byte: bound the allocation by input.
    let mut recipients = Vec::with_capacity(count.min(data.len() - l.pos));
    for _ in 0..count {
        let line = l.next_line("recipient")?;
        let r = parse_extended_recipient(&line).unwrap_or_else(|| Recipient::new(line));
        recipients.push(r);
    }
    if !l.next_line("blank line")?.is_empty() {
        return Err(l.err(K::MissingBlankLine));
    }

    // Headers until EOF.
    let mut headers = Vec::new();
    while l.pos < data.len() {
        let rest = &data[l.pos..];
        let ndigits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(3..=9).contains(&ndigits) || rest.len() < ndigits + 2 || rest[ndigits + 1] != b' ' {
            return Err(l.err(K::BadHeaderPrefix));
        }
        let len: usize = String::from_utf8_lossy(&rest[..ndigits])
            .parse()
            .map_err(|_| l.err(K::BadHeaderPrefix))?;
        let kind = rest[ndigits];
        if !kind.is_ascii_graphic() && kind != b' ' {
            return Err(l.err(K::BadHeaderPrefix));
        }
        l.pos += ndigits + 2;
        let text = l
            .take(len, "header text")
            .map_err(|_| l.err(K::ShortHeader))?;
        if text.last() != Some(&b'\n') {
            return Err(l.err(K::ShortHeader));
        }
        headers.push(Header {
            kind: char::from(kind),
            text: lossy_owned(text),
        });
    }

    let tree_set: std::collections::HashSet<&str> = tree.iter().map(String::as_str).collect();
    for r in &mut recipients {
        r.done = tree_set.contains(r.address.as_str());
    }
    let rcpt_set: std::collections::HashSet<&str> =
        recipients.iter().map(|r| r.address.as_str()).collect();
    env.non_recipients = tree
        .iter()
        .filter(|a| !rcpt_set.contains(a.as_str()))
        .cloned()
        .collect();
    // A set: keep it in the (byte) order the tree is written in.
    env.non_recipients.sort_unstable();
    env.non_recipients.dedup();
    env.recipients = recipients;
    Ok((env, headers))
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
