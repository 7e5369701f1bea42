//! Typed log records and the one place that renders them as Exim's text.
//!
//! Every record borrows its strings from the caller, so building one costs
//! no allocation; rendering appends to a caller-supplied `String`.

use crate::selector::{LogSelector, Selector};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// The TCP Fast Open marker Exim prints after the host: ` TFO` when the
/// connection was made with a TFO cookie, ` TFO*` when the SYN also carried
/// data that the peer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TfoMark {
    /// ` TFO`
    Cookie,
    /// ` TFO*`
    Data,
}

/// TCP Fast Open facts about a connection, as the caller judged them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tfo<'a> {
    /// Exim's marker (`None`: no TFO, nothing printed).
    pub mark: Option<TfoMark>,
    /// Detailed outcome printed as ` TFO=<detail>` when the `tfo_detail`
    /// selector is on, e.g. `requested`, `accepted`, `rejected`, `data`,
    /// `none`, `cookie`.
    pub detail: Option<&'a str>,
}

impl<'a> Tfo<'a> {
    /// A TFO value with only the marker.
    pub fn mark(mark: TfoMark) -> Tfo<'a> {
        Tfo {
            mark: Some(mark),
            detail: None,
        }
    }
}

/// The remote end of an incoming connection (Exim's `sender_fullhost`).
///
/// Rendered `name (helo) [ip]` — the HELO name is shown only when it differs
/// from the host name and from the bracketed address; either name may be
/// absent: `(helo) [ip]`, `name [ip]`, `[ip]`. `:port` follows `]` with
/// `+incoming_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderHost<'a> {
    /// Verified host name (reverse lookup), if any.
    pub name: Option<&'a str>,
    /// HELO/EHLO argument, if any.
    pub helo: Option<&'a str>,
    /// Remote address.
    pub ip: IpAddr,
    /// Remote port.
    pub port: u16,
}

impl<'a> SenderHost<'a> {
    /// A host known only by address.
    pub fn new(ip: IpAddr, port: u16) -> SenderHost<'a> {
        SenderHost {
            name: None,
            helo: None,
            ip,
            port,
        }
    }

    fn render(&self, sel: &LogSelector, out: &mut String) {
        if let Some(name) = self.name {
            out.push_str(name);
            out.push(' ');
        }
        if let Some(helo) = self.helo {
            let same_as_name = self.name.is_some_and(|n| n.eq_ignore_ascii_case(helo));
            let literal = helo
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .map(|h| h.strip_prefix("IPv6:").unwrap_or(h))
                .and_then(|h| h.parse::<IpAddr>().ok());
            if !same_as_name && literal != Some(self.ip) {
                let _ = write!(out, "({}) ", printing(helo, false));
            }
        }
        let _ = write!(out, "[{}]", self.ip);
        if sel.has(Selector::IncomingPort) {
            let _ = write!(out, ":{}", self.port);
        }
    }
}

/// A remote host used for a delivery: ` H=name [ip]` (`:port` with
/// `+outgoing_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteHost<'a> {
    /// The host name as the router/transport knew it (may be the address).
    pub name: &'a str,
    /// The address connected to.
    pub ip: IpAddr,
    /// The port connected to.
    pub port: u16,
}

impl RemoteHost<'_> {
    fn render(&self, sel: &LogSelector, out: &mut String) {
        let _ = write!(out, " H={} [{}]", self.name, self.ip);
        if sel.has(Selector::OutgoingPort) {
            let _ = write!(out, ":{}", self.port);
        }
    }
}

/// TLS facts for `X=`, `CV=`, `DN=`, `SNI=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsLog<'a> {
    /// Protocol and cipher, as Exim prints it (e.g.
    /// `TLS1.3:TLS_AES_256_GCM_SHA384:256`).
    pub cipher: &'a str,
    /// Whether the session was resumed (`*` after the cipher with
    /// `+tls_resumption`).
    pub resumed: bool,
    /// Peer certificate verification result; `None` when no certificate was
    /// asked for, in which case `CV=` is not printed.
    pub certificate_verified: Option<bool>,
    /// Peer certificate DN.
    pub peerdn: Option<&'a str>,
    /// SNI.
    pub sni: Option<&'a str>,
}

impl TlsLog<'_> {
    fn render(&self, sel: &LogSelector, out: &mut String) {
        if sel.has(Selector::TlsCipher) {
            let _ = write!(out, " X={}", self.cipher);
            if self.resumed && sel.has(Selector::TlsResumption) {
                out.push('*');
            }
        }
        if let Some(v) = self.certificate_verified {
            if sel.has(Selector::TlsCertificateVerified) {
                out.push_str(if v { " CV=yes" } else { " CV=no" });
            }
        }
        if let Some(dn) = self.peerdn {
            if sel.has(Selector::TlsPeerdn) {
                let _ = write!(out, " DN=\"{}\"", printing(dn, true));
            }
        }
        if let Some(sni) = self.sni {
            if sel.has(Selector::TlsSni) {
                let _ = write!(out, " SNI={}", printing(sni, false));
            }
        }
    }
}

fn render_tfo(tfo: &Tfo<'_>, sel: &LogSelector, out: &mut String) {
    match tfo.mark {
        Some(TfoMark::Cookie) => out.push_str(" TFO"),
        Some(TfoMark::Data) => out.push_str(" TFO*"),
        None => {}
    }
    if let Some(d) = tfo.detail {
        if sel.has(Selector::TfoDetail) {
            let _ = write!(out, " TFO={d}");
        }
    }
}

/// Formats a duration as Exim does in `QT=`, `DT=`, `RT=`, `D=`: `1h2m3s`
/// style (`0s` for zero); with `+millisec`, durations under five seconds
/// get milliseconds instead (`2.345s`), as in Exim.
pub fn format_duration(d: Duration, millisec: bool) -> String {
    if millisec && d.as_secs() < 5 {
        return format!("{}.{:03}s", d.as_secs(), d.subsec_millis());
    }
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut s = String::new();
    for (unit, len) in [('w', 7 * 86400), ('d', 86400), ('h', 3600), ('m', 60)] {
        if secs >= len {
            let _ = write!(s, "{}{unit}", secs / len);
            secs %= len;
        }
    }
    if secs > 0 {
        let _ = write!(s, "{secs}s");
    }
    s
}

/// Makes text safe for a log line as Exim's `string_printing` does:
/// non-printing bytes become `\n`, `\r`, `\t` or `\ooo`, a backslash is
/// doubled, and with `quotes` a double quote becomes `\"`.
pub fn printing(s: &str, quotes: bool) -> std::borrow::Cow<'_, str> {
    let clean = s
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && !(quotes && b == b'"'));
    if clean {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' if quotes => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `<=`: a message was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<'a> {
    /// Message id.
    pub id: &'a str,
    /// Envelope sender (empty for `<>`).
    pub sender: &'a str,
    /// `R=`: id of the message this one is a bounce of.
    pub reference: Option<&'a str>,
    /// The sending host (absent for local submission).
    pub host: Option<SenderHost<'a>>,
    /// `I=[ip]:port`: the local interface (`+incoming_interface`).
    pub interface: Option<(IpAddr, u16)>,
    /// TCP Fast Open on the incoming connection.
    pub tfo: Tfo<'a>,
    /// `U=`: ident or local login.
    pub ident: Option<&'a str>,
    /// `P=`: received protocol (`local`, `esmtp`, `esmtps`, ...).
    pub protocol: Option<&'a str>,
    /// TLS of the incoming connection.
    pub tls: Option<TlsLog<'a>>,
    /// `A=`: authenticator name and authenticated id.
    pub auth: Option<(&'a str, Option<&'a str>)>,
    /// ` K`: the message came with CHUNKING (BDAT).
    pub chunking: bool,
    /// `S=`: message size.
    pub size: u64,
    /// `RT=`: time taken to receive (`+receive_time`).
    pub receive_time: Option<Duration>,
    /// `id=`: the Message-ID header value without `<>`.
    pub message_id: Option<&'a str>,
    /// The Message-ID was generated here (logged as `id*=` and only with
    /// `+msg_id_created`).
    pub message_id_created: bool,
    /// `T="..."`: the Subject (`+subject`), raw header value.
    pub subject: Option<&'a str>,
    /// `for ...`: the envelope recipients (`+received_recipients`).
    pub recipients: &'a [&'a str],
}

impl<'a> Received<'a> {
    /// A record with the required fields; set the others as needed.
    pub fn new(id: &'a str, sender: &'a str, size: u64) -> Received<'a> {
        Received {
            id,
            sender,
            reference: None,
            host: None,
            interface: None,
            tfo: Tfo::default(),
            ident: None,
            protocol: None,
            tls: None,
            auth: None,
            chunking: false,
            size,
            receive_time: None,
            message_id: None,
            message_id_created: false,
            subject: None,
            recipients: &[],
        }
    }

    /// Renders everything after `<= `.
    fn render_body(&self, sel: &LogSelector, out: &mut String) {
        out.push_str(if self.sender.is_empty() {
            "<>"
        } else {
            self.sender
        });
        if let Some(r) = self.reference {
            let _ = write!(out, " R={r}");
        }
        if let Some(h) = &self.host {
            out.push_str(" H=");
            h.render(sel, out);
            if let Some((ip, port)) = self.interface {
                if sel.has(Selector::IncomingInterface) {
                    let _ = write!(out, " I=[{ip}]:{port}");
                }
            }
        }
        render_tfo(&self.tfo, sel, out);
        if let Some(u) = self.ident {
            let _ = write!(out, " U={u}");
        }
        if let Some(p) = self.protocol {
            let _ = write!(out, " P={p}");
        }
        if let Some(tls) = &self.tls {
            tls.render(sel, out);
        }
        if let Some((name, id)) = self.auth {
            let _ = write!(out, " A={name}");
            if let Some(id) = id {
                let _ = write!(out, ":{id}");
            }
        }
        if self.chunking {
            out.push_str(" K");
        }
        let _ = write!(out, " S={}", self.size);
        if let Some(rt) = self.receive_time {
            if sel.has(Selector::ReceiveTime) {
                let _ = write!(
                    out,
                    " RT={}",
                    format_duration(rt, sel.has(Selector::Millisec))
                );
            }
        }
        if let Some(mid) = self.message_id {
            if self.message_id_created {
                if sel.has(Selector::MsgIdCreated) {
                    let _ = write!(out, " id*={}", printing(mid, false));
                }
            } else if sel.has(Selector::MsgId) {
                let _ = write!(out, " id={}", printing(mid, false));
            }
        }
        if let Some(subject) = self.subject {
            if sel.has(Selector::Subject) {
                let _ = write!(
                    out,
                    " T=\"{}\"",
                    printing(subject.trim_end_matches(['\n', '\r']), true)
                );
            }
        }
        if sel.has(Selector::ReceivedSender) {
            let _ = write!(out, " from <{}>", self.sender);
        }
        if sel.has(Selector::ReceivedRecipients) && !self.recipients.is_empty() {
            out.push_str(" for");
            for r in self.recipients {
                out.push(' ');
                out.push_str(r);
            }
        }
    }
}

/// Which flag a delivery line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryFlag {
    /// `=>`: first address of a delivery.
    #[default]
    First,
    /// `->`: further address delivered in the same delivery.
    Further,
    /// `*>`: delivery suppressed (`-N`).
    Suppressed,
}

impl DeliveryFlag {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryFlag::First => "=>",
            DeliveryFlag::Further => "->",
            DeliveryFlag::Suppressed => "*>",
        }
    }
}

/// The address part common to `=>`, `==`, `**` lines:
/// `address [(parent, ...)] [<original>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogAddress<'a> {
    /// The address as delivered (e.g. `:blackhole:`, a pipe, or the final
    /// rewritten address).
    pub address: &'a str,
    /// Intermediate parents, shown in parentheses with `+all_parents`
    /// (nearest first).
    pub parents: &'a [&'a str],
    /// The original (top-level) recipient when it differs from `address`,
    /// shown as ` <original>`.
    pub original: Option<&'a str>,
}

impl<'a> LogAddress<'a> {
    /// A plain address.
    pub fn new(address: &'a str) -> LogAddress<'a> {
        LogAddress {
            address,
            parents: &[],
            original: None,
        }
    }

    /// An address generated from `original` (redirection or rewriting).
    pub fn from_original(address: &'a str, original: &'a str) -> LogAddress<'a> {
        LogAddress {
            address,
            parents: &[],
            original: Some(original),
        }
    }

    fn render(&self, sel: &LogSelector, out: &mut String) {
        out.push_str(self.address);
        if sel.has(Selector::AllParents) && !self.parents.is_empty() {
            out.push_str(" (");
            for (i, p) in self.parents.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(p);
            }
            out.push(')');
        }
        if let Some(o) = self.original {
            let _ = write!(out, " <{o}>");
        }
    }
}

/// `=>` / `->` / `*>`: an address was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<'a> {
    /// Message id.
    pub id: &'a str,
    /// `=>`, `->` or `*>`.
    pub flag: DeliveryFlag,
    /// The address.
    pub address: LogAddress<'a>,
    /// Envelope sender: `F=<...>` with `+sender_on_delivery`.
    pub sender: &'a str,
    /// Return path: `P=<...>` with `+return_path_on_delivery`.
    pub return_path: Option<&'a str>,
    /// `R=`: router.
    pub router: Option<&'a str>,
    /// `T=`: transport.
    pub transport: Option<&'a str>,
    /// `S=`: size delivered (`+delivery_size`).
    pub size: Option<u64>,
    /// Remote host (SMTP/LMTP deliveries).
    pub host: Option<RemoteHost<'a>>,
    /// The message went down a connection an earlier message had used:
    /// `*` at the end of the host part (after `H=`, `I=` and TFO), as in
    /// Exim's continued connections.
    pub continued: bool,
    /// `I=[ip]:port`: local interface used (`+outgoing_interface`).
    pub interface: Option<(IpAddr, u16)>,
    /// TCP Fast Open on the outgoing connection.
    pub tfo: Tfo<'a>,
    /// TLS of the outgoing connection.
    pub tls: Option<TlsLog<'a>>,
    /// `A=`: authenticator used.
    pub auth: Option<&'a str>,
    /// ` K`: sent with CHUNKING.
    pub chunking: bool,
    /// `C="..."`: the remote server's final response
    /// (`+smtp_confirmation`, default on).
    pub confirmation: Option<&'a str>,
    /// `QT=`: time on queue (`+queue_time`).
    pub queue_time: Option<Duration>,
    /// `DT=`: time taken by the delivery (`+deliver_time`).
    pub deliver_time: Option<Duration>,
}

impl<'a> Delivered<'a> {
    /// A record with the required fields; set the others as needed.
    pub fn new(id: &'a str, address: LogAddress<'a>, sender: &'a str) -> Delivered<'a> {
        Delivered {
            id,
            flag: DeliveryFlag::First,
            address,
            sender,
            return_path: None,
            router: None,
            transport: None,
            size: None,
            host: None,
            continued: false,
            interface: None,
            tfo: Tfo::default(),
            tls: None,
            auth: None,
            chunking: false,
            confirmation: None,
            queue_time: None,
            deliver_time: None,
        }
    }

    /// Renders everything after the flag and its space.
    fn render_body(&self, sel: &LogSelector, out: &mut String) {
        let ms = sel.has(Selector::Millisec);
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            Some(self.return_path.unwrap_or(self.sender)),
            self.router,
            self.transport,
        );
        if let Some(s) = self.size {
            if sel.has(Selector::DeliverySize) {
                let _ = write!(out, " S={s}");
            }
        }
        if let Some(h) = &self.host {
            h.render(sel, out);
            if let Some((ip, port)) = self.interface {
                if sel.has(Selector::OutgoingInterface) {
                    let _ = write!(out, " I=[{ip}]:{port}");
                }
            }
            render_tfo(&self.tfo, sel, out);
            // Exim appends it to the whole host part (H=, I=, TFO).
            if self.continued {
                out.push('*');
            }
        }
        if let Some(tls) = &self.tls {
            tls.render(sel, out);
        }
        if let Some(a) = self.auth {
            let _ = write!(out, " A={a}");
        }
        if self.chunking {
            out.push_str(" K");
        }
        if let Some(c) = self.confirmation {
            if sel.has(Selector::SmtpConfirmation) {
                let _ = write!(out, " C=\"{}\"", printing(c, true));
            }
        }
        if let Some(qt) = self.queue_time {
            if sel.has(Selector::QueueTime) {
                let _ = write!(out, " QT={}", format_duration(qt, ms));
            }
        }
        render_deliver_time(sel, out, self.deliver_time);
    }
}

/// The part shared by `=>`, `==` and `**` lines: the address, ` F=<sender>`
/// (+sender_on_delivery), ` P=<return path>` (+return_path_on_delivery, for
/// the lines that carry it: `return_path` is `None` on `==` lines), ` R=`,
/// ` T=`.
fn render_route(
    sel: &LogSelector,
    out: &mut String,
    address: &LogAddress<'_>,
    sender: &str,
    return_path: Option<&str>,
    router: Option<&str>,
    transport: Option<&str>,
) {
    address.render(sel, out);
    if sel.has(Selector::SenderOnDelivery) {
        let _ = write!(out, " F=<{sender}>");
    }
    if let Some(p) = return_path {
        if sel.has(Selector::ReturnPathOnDelivery) {
            let _ = write!(out, " P=<{p}>");
        }
    }
    if let Some(r) = router {
        let _ = write!(out, " R={r}");
    }
    if let Some(t) = transport {
        let _ = write!(out, " T={t}");
    }
}

/// ` DT=` (+deliver_time).
fn render_deliver_time(sel: &LogSelector, out: &mut String, dt: Option<Duration>) {
    if let Some(dt) = dt {
        if sel.has(Selector::DeliverTime) {
            let _ = write!(
                out,
                " DT={}",
                format_duration(dt, sel.has(Selector::Millisec))
            );
        }
    }
}

/// The error part of `==` and `**` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryError<'a> {
    /// Exim's error number (`defer (N)`): an errno when positive, one of
    /// Exim's internal codes when negative.
    pub errno: i32,
    /// `strerror` text for a positive errno (`: Connection timed out`).
    pub errno_text: Option<&'a str>,
    /// Host the error concerns (` H=name [ip]`).
    pub host: Option<RemoteHost<'a>>,
    /// The error message (`: SMTP timeout after ...`).
    pub message: Option<&'a str>,
}

impl DeliveryError<'_> {
    fn render(&self, sel: &LogSelector, out: &mut String) {
        if let Some(t) = self.errno_text {
            let _ = write!(out, ": {t}");
        }
        if let Some(h) = &self.host {
            h.render(sel, out);
        }
        if let Some(m) = self.message {
            let _ = write!(out, ": {}", printing(m, false));
        }
    }
}

/// `==`: delivery of an address was deferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred<'a> {
    /// Message id.
    pub id: &'a str,
    /// The address.
    pub address: LogAddress<'a>,
    /// Envelope sender: `F=<...>` with `+sender_on_delivery`.
    pub sender: &'a str,
    /// `R=`: router.
    pub router: Option<&'a str>,
    /// `T=`: transport.
    pub transport: Option<&'a str>,
    /// `DT=` (`+deliver_time`).
    pub deliver_time: Option<Duration>,
    /// What went wrong.
    pub error: DeliveryError<'a>,
    /// The deferral is only "retry time not reached": logged only with
    /// `+retry_defer` (default on).
    pub retry_not_reached: bool,
}

impl<'a> Deferred<'a> {
    /// A record with the required fields; set the others as needed.
    pub fn new(
        id: &'a str,
        address: LogAddress<'a>,
        sender: &'a str,
        error: DeliveryError<'a>,
    ) -> Deferred<'a> {
        Deferred {
            id,
            address,
            sender,
            router: None,
            transport: None,
            deliver_time: None,
            error,
            retry_not_reached: false,
        }
    }

    fn render_body(&self, sel: &LogSelector, out: &mut String) {
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            None,
            self.router,
            self.transport,
        );
        render_deliver_time(sel, out, self.deliver_time);
        let _ = write!(out, " defer ({})", self.error.errno);
        self.error.render(sel, out);
    }
}

/// `**`: delivery of an address failed permanently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<'a> {
    /// Message id.
    pub id: &'a str,
    /// The address.
    pub address: LogAddress<'a>,
    /// Envelope sender: `F=<...>` with `+sender_on_delivery`.
    pub sender: &'a str,
    /// Return path: `P=<...>` with `+return_path_on_delivery`.
    pub return_path: Option<&'a str>,
    /// `R=`: router.
    pub router: Option<&'a str>,
    /// `T=`: transport.
    pub transport: Option<&'a str>,
    /// `DT=` (`+deliver_time`).
    pub deliver_time: Option<Duration>,
    /// What went wrong.
    pub error: DeliveryError<'a>,
}

impl<'a> Failed<'a> {
    /// A record with the required fields; set the others as needed.
    pub fn new(
        id: &'a str,
        address: LogAddress<'a>,
        sender: &'a str,
        error: DeliveryError<'a>,
    ) -> Failed<'a> {
        Failed {
            id,
            address,
            sender,
            return_path: None,
            router: None,
            transport: None,
            deliver_time: None,
            error,
        }
    }

    fn render_body(&self, sel: &LogSelector, out: &mut String) {
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            Some(self.return_path.unwrap_or(self.sender)),
            self.router,
            self.transport,
        );
        render_deliver_time(sel, out, self.deliver_time);
        self.error.render(sel, out);
    }
}

/// What a daemon listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen<'a> {
    /// Wildcard sockets on these ports, each rendered `port N` followed by
    /// ` (<families>)` when given, as Exim does:
    /// `port 25 (IPv6 and IPv4) port 587 (IPv6 and IPv4)`.
    Ports {
        /// The ports.
        ports: &'a [u16],
        /// Address families text, e.g. `IPv6 and IPv4`, `IPv4`.
        families: Option<&'a str>,
    },
    /// Specific addresses: `[ip]:port ...`.
    Addresses(&'a [(IpAddr, u16)]),
}

impl Listen<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Listen::Ports { ports, families } => {
                for (i, p) in ports.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "port {p}");
                    if let Some(f) = families {
                        let _ = write!(out, " ({f})");
                    }
                }
            }
            Listen::Addresses(addrs) => {
                for (i, (ip, port)) in addrs.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "[{ip}]:{port}");
                }
            }
        }
    }
}

/// `exim x.yz daemon started: pid=N, no queue runs, listening for SMTP on
/// port N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonStarted<'a> {
    /// Program name and version as printed, e.g. `exim x.yz`.
    pub version: &'a str,
    /// The daemon's pid.
    pub pid: u32,
    /// Queue-run interval as given on the command line (`-q30m`); `None`
    /// logs `no queue runs`.
    pub queue_interval: Option<&'a str>,
    /// Plain SMTP listeners (`None`: `not listening for SMTP`, unless
    /// `smtps` is set).
    pub smtp: Option<Listen<'a>>,
    /// SMTP-over-TLS listeners (`tls_on_connect_ports`, `-tls-on-connect`).
    pub smtps: Option<Listen<'a>>,
}

impl DaemonStarted<'_> {
    fn render(&self, out: &mut String) {
        let _ = write!(out, "{} daemon started: pid={}, ", self.version, self.pid);
        match self.queue_interval {
            Some(q) => out.push_str(q),
            None => out.push_str("no queue runs"),
        }
        match (&self.smtp, &self.smtps) {
            (None, None) => out.push_str(", not listening for SMTP"),
            (Some(l), None) => {
                out.push_str(", listening for SMTP on ");
                l.render(out);
            }
            (None, Some(l)) => {
                out.push_str(", listening for SMTPS on ");
                l.render(out);
            }
            (Some(a), Some(b)) => {
                out.push_str(", listening for SMTP on ");
                a.render(out);
                out.push_str(" and for SMTPS on ");
                b.render(out);
            }
        }
    }
}

/// Where in the SMTP dialogue a rejection happened, and its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectWhat<'a> {
    /// `rejected connection` (connect ACL).
    Connection,
    /// `rejected EHLO or HELO <name>`.
    Helo(&'a str),
    /// `rejected MAIL <sender>`.
    Mail(&'a str),
    /// `rejected RCPT <recipient>`.
    Rcpt(&'a str),
    /// `rejected after DATA`.
    AfterData,
    /// `rejected VRFY <address>`.
    Vrfy(&'a str),
    /// Any other text after `rejected `.
    Other(&'a str),
}

/// `H=... [F=<sender>] rejected RCPT <x>: reason` (main and reject log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// Message id, when a message was being received (after DATA).
    pub id: Option<&'a str>,
    /// The client.
    pub host: SenderHost<'a>,
    /// `U=`: ident.
    pub ident: Option<&'a str>,
    /// `F=<...>`: the envelope sender, once MAIL was accepted.
    pub sender: Option<&'a str>,
    /// What was rejected.
    pub what: RejectWhat<'a>,
    /// A temporary rejection (4xx): `temporarily rejected`.
    pub temporary: bool,
    /// The reason (ACL `log_message`/`message`).
    pub reason: Option<&'a str>,
}

/// What the reject log shows of a rejected message after its line:
///
/// ```text
/// Envelope-from: <sender>
/// Envelope-to: <rcpt1>
///     <rcpt2>
/// P Received: ...
///   Subject: ...
/// ```
///
/// Each header line is preceded by its spool type character (see
/// `oxim-spool`'s header kinds; a space for other headers) and a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RejectedHeaders<'a> {
    /// Envelope sender (empty for `<>`), if MAIL had been accepted.
    pub envelope_from: Option<&'a str>,
    /// Envelope recipients accepted so far.
    pub envelope_to: &'a [&'a str],
    /// Header lines as `(type character, full text including newline)`.
    pub headers: &'a [(char, &'a str)],
}

impl RejectedHeaders<'_> {
    fn render(&self, out: &mut String) {
        if let Some(f) = self.envelope_from {
            let _ = writeln!(out, "Envelope-from: <{f}>");
        }
        for (i, r) in self.envelope_to.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "Envelope-to: <{r}>");
            } else {
                let _ = writeln!(out, "    <{r}>");
            }
        }
        for (kind, text) in self.headers {
            out.push(*kind);
            out.push(' ');
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
}

impl Rejected<'_> {
    fn render_body(&self, sel: &LogSelector, out: &mut String) {
        out.push_str("H=");
        self.host.render(sel, out);
        if let Some(u) = self.ident {
            let _ = write!(out, " U={u}");
        }
        if let Some(s) = self.sender {
            let _ = write!(out, " F=<{s}>");
        }
        out.push_str(if self.temporary {
            " temporarily rejected "
        } else {
            " rejected "
        });
        match self.what {
            RejectWhat::Connection => out.push_str("connection in \"connect\" ACL"),
            RejectWhat::Helo(h) => {
                let _ = write!(out, "EHLO or HELO {}", printing(h, false));
            }
            RejectWhat::Mail(s) => {
                let _ = write!(out, "MAIL <{s}>");
            }
            RejectWhat::Rcpt(r) => {
                let _ = write!(out, "RCPT <{r}>");
            }
            RejectWhat::AfterData => out.push_str("after DATA"),
            RejectWhat::Vrfy(a) => {
                let _ = write!(out, "VRFY <{a}>");
            }
            RejectWhat::Other(t) => out.push_str(t),
        }
        if let Some(r) = self.reason {
            let _ = write!(out, ": {}", printing(r, false));
        }
    }
}

/// How an incoming SMTP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpEnd<'a> {
    /// `SMTP connection from H [D=..] closed by QUIT` (`+smtp_connection`).
    Quit,
    /// `SMTP connection from H [D=..] closed by DROP in ACL`
    /// (`+smtp_connection`).
    Drop,
    /// `unexpected disconnection while reading SMTP command from H [D=..]`
    /// (`+lost_incoming_connection`, default on).
    Lost,
    /// `SMTP command timeout on connection from H [D=..]`
    /// (`+lost_incoming_connection`).
    Timeout,
    /// `SMTP data timeout (message abandoned) on connection from H
    /// F=<sender> [D=..]` (`+lost_incoming_connection`).
    DataTimeout {
        /// The envelope sender of the abandoned message.
        sender: &'a str,
    },
    /// oxim's `smtp_session_max_time`: `SMTP session time limit exceeded on
    /// connection from H [D=..]` (`+lost_incoming_connection`).
    SessionTimeLimit,
    /// `SMTP connection from H [D=..] <text>` (`+smtp_connection`).
    Other(&'a str),
}

/// The remote host part of connection lines (`[ip]`, `(helo) [ip]`, ...),
/// as [`SenderHost`] renders it, plus `U=ident`.
fn host_and_ident(host: &SenderHost<'_>, ident: Option<&str>, sel: &LogSelector, out: &mut String) {
    host.render(sel, out);
    if let Some(u) = ident {
        let _ = write!(out, " U={u}");
    }
}

/// A line that is not about one message's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord<'a> {
    /// `<=` line.
    Received(Received<'a>),
    /// `=>`, `->`, `*>` line.
    Delivered(Delivered<'a>),
    /// `==` line.
    Deferred(Deferred<'a>),
    /// `**` line.
    Failed(Failed<'a>),
    /// `<id> Completed` (with `QT=` under `+queue_time_overall`).
    Completed {
        /// Message id.
        id: &'a str,
        /// Time on queue for the whole message.
        queue_time: Option<Duration>,
    },
    /// Daemon start line.
    DaemonStarted(DaemonStarted<'a>),
    /// `SMTP connection from [ip] (TCP/IP connection count = N)`
    /// (`+smtp_connection`).
    SmtpConnection {
        /// The client.
        host: SenderHost<'a>,
        /// Connections open, this one included.
        count: u32,
    },
    /// End of an incoming SMTP connection.
    SmtpClosed {
        /// The client, with what is known by now (HELO name...).
        host: SenderHost<'a>,
        /// Ident, if known.
        ident: Option<&'a str>,
        /// `D=` connection duration (printed when given).
        duration: Option<Duration>,
        /// How it ended.
        how: SmtpEnd<'a>,
    },
    /// `refused connection from [ip] (reason)` (main log with
    /// `+connection_reject`, reject log always).
    ConnectionRefused {
        /// The client.
        host: SenderHost<'a>,
        /// E.g. `host_reject_connection`.
        reason: &'a str,
    },
    /// `Connection from [ip][:port][ I=[ip]:port] refused: too many
    /// connections[ from that IP address]` (`smtp_accept_max`,
    /// `smtp_accept_max_per_host`; main log with `+connection_reject`).
    TooManyConnections {
        /// The client.
        ip: IpAddr,
        /// Its port (`+incoming_port`).
        port: u16,
        /// The local end (`+incoming_interface`).
        interface: Option<(IpAddr, u16)>,
        /// The per-host limit was hit, not the total.
        per_host: bool,
    },
    /// `ridiculously long message header received from H (more than N
    /// characters): message abandoned` (`header_maxsize`), or `overlong
    /// message header line ...` (`header_line_maxsize`).
    HeaderTooLong {
        /// The client; `None` for a local message.
        host: Option<SenderHost<'a>>,
        /// The local sender's login, shown when there is no host.
        ident: Option<&'a str>,
        /// The limit that was exceeded.
        limit: u64,
        /// `header_line_maxsize` (one header line), not `header_maxsize`.
        line: bool,
    },
    /// An ACL rejection (main and reject log).
    Rejected(Rejected<'a>),
    /// An ACL rejection after the message's header was read: like
    /// [`LogRecord::Rejected`], and the reject log also gets the envelope
    /// and header lines (with `+rejected_header`, default on).
    RejectedWithHeaders {
        /// The rejection line.
        rejected: Rejected<'a>,
        /// What follows it in the reject log.
        headers: RejectedHeaders<'a>,
    },
    /// `H=name [ip]: <text>[: <errno text>]` — a remote host error during
    /// delivery, logged before the `==`/`**` line.
    HostError {
        /// Message id.
        id: &'a str,
        /// The host.
        host: RemoteHost<'a>,
        /// What happened.
        text: &'a str,
        /// `strerror` text, if any.
        errno_text: Option<&'a str>,
    },
    /// Free text (Exim's `logwrite` and other one-off lines), optionally
    /// about a message, sent to the chosen logs.
    Text {
        /// Message id to prefix, if any.
        id: Option<&'a str>,
        /// The text, without newline.
        text: &'a str,
        /// Where it goes.
        dest: Dest,
    },
    /// `Start queue run: pid=N` (`+queue_run`, default on).
    QueueRunStart {
        /// The queue runner's pid.
        pid: u32,
    },
    /// `End queue run: pid=N` (`+queue_run`, default on).
    QueueRunEnd {
        /// The queue runner's pid.
        pid: u32,
    },
    /// A panic: written to the panic log and the main log.
    Panic {
        /// Message id to prefix, if any.
        id: Option<&'a str>,
        /// The text.
        text: &'a str,
    },
}

/// Set of log files a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dest {
    /// mainlog
    pub main: bool,
    /// rejectlog
    pub reject: bool,
    /// paniclog
    pub panic: bool,
}

impl Dest {
    /// Main log only.
    pub const MAIN: Dest = Dest {
        main: true,
        reject: false,
        panic: false,
    };
    /// Nowhere.
    pub const NONE: Dest = Dest {
        main: false,
        reject: false,
        panic: false,
    };
}

impl<'a> LogRecord<'a> {
    /// The message id the line starts with, if any.
    pub fn id(&self) -> Option<&'a str> {
        match self {
            LogRecord::Received(r) => Some(r.id),
            LogRecord::Delivered(r) => Some(r.id),
            LogRecord::Deferred(r) => Some(r.id),
            LogRecord::Failed(r) => Some(r.id),
            LogRecord::Completed { id, .. } => Some(id),
            LogRecord::HostError { id, .. } => Some(id),
            LogRecord::Rejected(r) => r.id,
            LogRecord::RejectedWithHeaders { rejected, .. } => rejected.id,
            LogRecord::Text { id, .. } | LogRecord::Panic { id, .. } => *id,
            LogRecord::DaemonStarted(_)
            | LogRecord::QueueRunStart { .. }
            | LogRecord::QueueRunEnd { .. }
            | LogRecord::SmtpConnection { .. }
            | LogRecord::SmtpClosed { .. }
            | LogRecord::ConnectionRefused { .. }
            | LogRecord::TooManyConnections { .. }
            | LogRecord::HeaderTooLong { .. } => None,
        }
    }

    /// Which logs the record goes to under `sel` (Exim's selectors gate
    /// only the main log; rejections always reach the reject log).
    pub fn destinations(&self, sel: &LogSelector) -> Dest {
        let main_if = |on: bool| Dest {
            main: on,
            ..Dest::NONE
        };
        match self {
            LogRecord::Deferred(d) => {
                main_if(!d.retry_not_reached || sel.has(Selector::RetryDefer))
            }
            LogRecord::SmtpConnection { .. } => main_if(sel.has(Selector::SmtpConnection)),
            LogRecord::SmtpClosed { how, .. } => main_if(match how {
                SmtpEnd::Lost
                | SmtpEnd::Timeout
                | SmtpEnd::DataTimeout { .. }
                | SmtpEnd::SessionTimeLimit => sel.has(Selector::LostIncomingConnection),
                _ => sel.has(Selector::SmtpConnection),
            }),
            LogRecord::ConnectionRefused { .. } => Dest {
                main: sel.has(Selector::ConnectionReject),
                reject: true,
                panic: false,
            },
            LogRecord::TooManyConnections { .. } => main_if(sel.has(Selector::ConnectionReject)),
            LogRecord::Rejected(_) | LogRecord::RejectedWithHeaders { .. } => Dest {
                main: true,
                reject: true,
                panic: false,
            },
            LogRecord::Text { dest, .. } => *dest,
            LogRecord::QueueRunStart { .. } | LogRecord::QueueRunEnd { .. } => {
                main_if(sel.has(Selector::QueueRun))
            }
            LogRecord::Panic { .. } => Dest {
                main: true,
                reject: false,
                panic: true,
            },
            _ => Dest::MAIN,
        }
    }

    /// Appends the line's text (message id included, no timestamp, no
    /// newline) to `out`.
    pub fn render_into(&self, sel: &LogSelector, out: &mut String) {
        if let Some(id) = self.id() {
            out.push_str(id);
            out.push(' ');
        }
        let ms = sel.has(Selector::Millisec);
        match self {
            LogRecord::Received(r) => {
                out.push_str("<= ");
                r.render_body(sel, out);
            }
            LogRecord::Delivered(d) => {
                out.push_str(d.flag.as_str());
                out.push(' ');
                d.render_body(sel, out);
            }
            LogRecord::Deferred(d) => {
                out.push_str("== ");
                d.render_body(sel, out);
            }
            LogRecord::Failed(f) => {
                out.push_str("** ");
                f.render_body(sel, out);
            }
            LogRecord::Completed { queue_time, .. } => {
                out.push_str("Completed");
                if let Some(qt) = queue_time {
                    if sel.has(Selector::QueueTimeOverall) {
                        let _ = write!(out, " QT={}", format_duration(*qt, ms));
                    }
                }
            }
            LogRecord::DaemonStarted(d) => d.render(out),
            LogRecord::QueueRunStart { pid } => {
                let _ = write!(out, "Start queue run: pid={pid}");
            }
            LogRecord::QueueRunEnd { pid } => {
                let _ = write!(out, "End queue run: pid={pid}");
            }
            LogRecord::SmtpConnection { host, count } => {
                out.push_str("SMTP connection from ");
                host.render(sel, out);
                let _ = write!(out, " (TCP/IP connection count = {count})");
            }
            LogRecord::SmtpClosed {
                host,
                ident,
                duration,
                how,
            } => {
                let d = |out: &mut String| {
                    if let Some(d) = duration {
                        let _ = write!(out, " D={}", format_duration(*d, ms));
                    }
                };
                match how {
                    SmtpEnd::Lost => {
                        out.push_str("unexpected disconnection while reading SMTP command from ");
                        host_and_ident(host, *ident, sel, out);
                        d(out);
                    }
                    SmtpEnd::Timeout => {
                        out.push_str("SMTP command timeout on connection from ");
                        host_and_ident(host, *ident, sel, out);
                        d(out);
                    }
                    SmtpEnd::DataTimeout { sender } => {
                        out.push_str("SMTP data timeout (message abandoned) on connection from ");
                        host_and_ident(host, *ident, sel, out);
                        let _ = write!(out, " F=<{}>", printing(sender, false));
                        d(out);
                    }
                    SmtpEnd::SessionTimeLimit => {
                        out.push_str("SMTP session time limit exceeded on connection from ");
                        host_and_ident(host, *ident, sel, out);
                        d(out);
                    }
                    SmtpEnd::Quit | SmtpEnd::Drop | SmtpEnd::Other(_) => {
                        out.push_str("SMTP connection from ");
                        host_and_ident(host, *ident, sel, out);
                        d(out);
                        out.push(' ');
                        out.push_str(match how {
                            SmtpEnd::Quit => "closed by QUIT",
                            SmtpEnd::Drop => "closed by DROP in ACL",
                            SmtpEnd::Other(t) => t,
                            _ => "",
                        });
                    }
                }
            }
            LogRecord::ConnectionRefused { host, reason } => {
                out.push_str("refused connection from ");
                host.render(sel, out);
                let _ = write!(out, " ({reason})");
            }
            LogRecord::TooManyConnections {
                ip,
                port,
                interface,
                per_host,
            } => {
                let _ = write!(out, "Connection from [{ip}]");
                if sel.has(Selector::IncomingPort) {
                    let _ = write!(out, ":{port}");
                }
                if let (Some((iip, iport)), true) =
                    (interface, sel.has(Selector::IncomingInterface))
                {
                    let _ = write!(out, " I=[{iip}]:{iport}");
                }
                out.push_str(" refused: too many connections");
                if *per_host {
                    out.push_str(" from that IP address");
                }
            }
            LogRecord::HeaderTooLong {
                host,
                ident,
                limit,
                line,
            } => {
                out.push_str(if *line {
                    "overlong message header line received from "
                } else {
                    "ridiculously long message header received from "
                });
                match host {
                    Some(h) => h.render(sel, out),
                    None => out.push_str(ident.unwrap_or("")),
                }
                let _ = write!(out, " (more than {limit} characters): message abandoned");
            }
            LogRecord::Rejected(r) => r.render_body(sel, out),
            LogRecord::RejectedWithHeaders { rejected, .. } => rejected.render_body(sel, out),
            LogRecord::HostError {
                host,
                text,
                errno_text,
                ..
            } => {
                let _ = write!(out, "H={} [{}]", host.name, host.ip);
                if sel.has(Selector::OutgoingPort) {
                    let _ = write!(out, ":{}", host.port);
                }
                let _ = write!(out, ": {text}");
                if let Some(e) = errno_text {
                    let _ = write!(out, ": {e}");
                }
            }
            LogRecord::Text { text, .. } | LogRecord::Panic { text, .. } => out.push_str(text),
        }
    }

    /// The line's text (message id included, no timestamp, no newline).
    pub fn render(&self, sel: &LogSelector) -> String {
        let mut s = String::with_capacity(160);
        self.render_into(sel, &mut s);
        s
    }

    /// Lines that follow this record's line in the reject log only (the
    /// envelope and headers of a rejected message), each ending in a
    /// newline; `None` when there are none.
    pub fn reject_extra(&self, sel: &LogSelector) -> Option<String> {
        match self {
            LogRecord::RejectedWithHeaders { headers: h, .. }
                if sel.has(Selector::RejectedHeader) =>
            {
                let mut out = String::new();
                h.render(&mut out);
                (!out.is_empty()).then_some(out)
            }
            _ => None,
        }
    }

    /// The text of the line as written to the message's own log
    /// (`msglog/<id>`), without timestamp and message id: `Received from`
    /// instead of `<=`; deferral and failure lines without their `==`/`**`
    /// flag (as in Exim's expected msglogs); delivery lines keep `=>`.
    /// `None` for records that have no msglog form. (Exim leaves later
    /// "retry time not reached" deferrals out of the msglog; that choice is
    /// the caller's.)
    pub fn render_msglog(&self, sel: &LogSelector) -> Option<String> {
        let mut out = String::with_capacity(160);
        match self {
            LogRecord::Received(r) => {
                out.push_str("Received from ");
                r.render_body(sel, &mut out);
            }
            LogRecord::Delivered(d) => {
                out.push_str(d.flag.as_str());
                out.push(' ');
                d.render_body(sel, &mut out);
            }
            LogRecord::Deferred(d) => d.render_body(sel, &mut out),
            LogRecord::Failed(f) => f.render_body(sel, &mut out),
            LogRecord::HostError { .. } | LogRecord::Text { id: Some(_), .. } => {
                let full = self.render(sel);
                let id_len = self.id().map_or(0, |i| i.len() + 1);
                out.push_str(full.get(id_len..).unwrap_or(""));
            }
            LogRecord::Completed { .. } => out.push_str("Completed"),
            _ => return None,
        }
        Some(out)
    }
}
