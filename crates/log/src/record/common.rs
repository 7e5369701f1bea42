//! What several kinds of line share: hosts, TFO and TLS elements,
//! durations, printable text.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use oxim_net::{ClientTfo, ServerTfo};

use crate::selector::{LogSelector, Selector};

/// TCP Fast Open facts about the connection a line is about, as oxim-net
/// judged them. This crate alone turns them into Exim's ` TFO` (a connection
/// made with a TFO cookie) and ` TFO*` (the SYN also carried data the peer
/// accepted), and oxim's ` TFO=<outcome>` under `+tfo_detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tfo {
    /// Not a TCP connection (local submission, local delivery): nothing.
    #[default]
    NotTcp,
    /// An incoming connection (`<=` lines).
    Server(ServerTfo),
    /// An outgoing connection (`=>` lines).
    Client {
        /// The kernel's judgement at the handshake.
        outcome: ClientTfo,
        /// The kernel saw the cookie accepted but the banner came a full
        /// round trip late ([`oxim_net::ConnectFacts::cookie_unconfirmed`]).
        unconfirmed: bool,
    },
}

impl Tfo {
    /// An outgoing connection judged by the kernel alone.
    pub fn client(outcome: ClientTfo) -> Tfo {
        Tfo::Client {
            outcome,
            unconfirmed: false,
        }
    }

    /// Exim's marker: ` TFO`, ` TFO*` or nothing.
    pub(crate) fn mark(&self) -> &'static str {
        match self {
            Tfo::NotTcp
            | Tfo::Server(ServerTfo::None)
            | Tfo::Client {
                outcome:
                    ClientTfo::NotTried | ClientTfo::CookieRequested | ClientTfo::CookieRejected,
                ..
            } => "",
            Tfo::Server(ServerTfo::Cookie)
            | Tfo::Client {
                outcome: ClientTfo::CookieAccepted,
                ..
            } => " TFO",
            Tfo::Server(ServerTfo::CookieWithData)
            | Tfo::Client {
                outcome: ClientTfo::DataAcked,
                ..
            } => " TFO*",
        }
    }

    /// The `+tfo_detail` value.
    fn detail(&self) -> Option<&'static str> {
        Some(match self {
            Tfo::NotTcp => return None,
            Tfo::Server(ServerTfo::None) => "none",
            Tfo::Server(ServerTfo::Cookie) => "cookie",
            Tfo::Server(ServerTfo::CookieWithData) => "cookie-data",
            Tfo::Client {
                outcome: ClientTfo::CookieAccepted,
                unconfirmed: true,
            } => "cookie-unconfirmed",
            Tfo::Client { outcome, .. } => match outcome {
                ClientTfo::NotTried => "not-tried",
                ClientTfo::CookieRequested => "cookie-requested",
                ClientTfo::CookieAccepted => "cookie-accepted",
                ClientTfo::CookieRejected => "cookie-rejected",
                ClientTfo::DataAcked => "data-acked",
            },
        })
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
    /// The connection's number (` Ci=` with `+connection_id`).
    pub conn_id: Option<u64>,
}

impl<'a> SenderHost<'a> {
    /// A host known only by address.
    pub fn new(ip: IpAddr, port: u16) -> SenderHost<'a> {
        SenderHost {
            name: None,
            helo: None,
            ip,
            port,
            conn_id: None,
        }
    }

    /// ` Ci=<n>` when the connection has a number and `+connection_id`
    /// is on.
    pub(crate) fn render_conn_id(&self, sel: &LogSelector, out: &mut String) {
        render_conn_id(self.conn_id, sel, out);
    }

    /// The host as log lines show it after `H=` (name, `(helo)`, `[ip]`,
    /// `:port` with `+incoming_port`).
    pub fn describe(&self, sel: &LogSelector) -> String {
        let mut s = String::new();
        self.render(sel, &mut s);
        s
    }

    pub(crate) fn render(&self, sel: &LogSelector, out: &mut String) {
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
    pub(crate) fn render(&self, sel: &LogSelector, out: &mut String) {
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
    pub(crate) fn render(&self, sel: &LogSelector, out: &mut String) {
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

pub(crate) fn render_tfo(tfo: &Tfo, sel: &LogSelector, out: &mut String) {
    out.push_str(tfo.mark());
    if let Some(d) = tfo.detail() {
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

/// The remote host part of connection lines (`[ip]`, `(helo) [ip]`, ...),
/// as [`SenderHost`] renders it, plus `U=ident`.
pub(crate) fn host_and_ident(
    host: &SenderHost<'_>,
    ident: Option<&str>,
    sel: &LogSelector,
    out: &mut String,
) {
    host.render(sel, out);
    if let Some(u) = ident {
        let _ = write!(out, " U={u}");
    }
    host.render_conn_id(sel, out);
}

/// ` Ci=<n>` (`+connection_id`): the number of the incoming connection.
pub(crate) fn render_conn_id(id: Option<u64>, sel: &LogSelector, out: &mut String) {
    if let (Some(id), true) = (id, sel.has(Selector::ConnectionId)) {
        let _ = write!(out, " Ci={id}");
    }
}

/// Exim's early pipelining (PIPECONNECT) as the ` L` item shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyPipe {
    /// Not offered (server) or not used (client).
    #[default]
    No,
    /// Offered by the server, not used by the client: ` L.`.
    Advertised,
    /// Used: ` L*`.
    Used,
}

/// The ` L` item of `<=` and `=>` lines (`+pipelining`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipeliningLog {
    /// The client pipelined (on `<=` lines a `-` follows when it did not).
    pub used: bool,
    pub early: EarlyPipe,
}

impl PipeliningLog {
    pub(super) fn render(&self, sel: &LogSelector, out: &mut String, received: bool) {
        if !sel.has(Selector::Pipelining) {
            return;
        }
        out.push_str(" L");
        match self.early {
            EarlyPipe::Used => out.push('*'),
            EarlyPipe::Advertised if received => out.push('.'),
            _ => {}
        }
        if received && !self.used {
            out.push('-');
        }
    }
}
