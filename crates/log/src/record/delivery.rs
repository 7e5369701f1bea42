//! `=>`, `->`, `==` and `**` lines: delivered, deferred, failed.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::selector::{LogSelector, Selector};

use super::*;

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
    pub(crate) fn as_str(self) -> &'static str {
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

    pub(crate) fn render(&self, sel: &LogSelector, out: &mut String) {
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
    /// No transport ran, so there is no return path to show (Exim's
    /// `/dev/null` deliveries): no `P=` even with
    /// `+return_path_on_delivery`.
    pub no_return_path: bool,
    /// `R=`: router.
    pub router: Option<&'a str>,
    /// `T=`: transport.
    pub transport: Option<&'a str>,
    /// `S=`: size delivered (`+delivery_size`).
    pub size: Option<u64>,
    /// ` ST=name` after a local delivery that had a shadow transport
    /// (with its error in brackets when the shadow delivery failed).
    pub shadow: Option<&'a str>,
    /// Remote host (SMTP/LMTP deliveries).
    pub host: Option<RemoteHost<'a>>,
    /// The message went down a connection an earlier message had used:
    /// `*` at the end of the host part (after `H=`, `I=` and TFO), as in
    /// Exim's continued connections.
    pub continued: bool,
    /// `I=[ip]:port`: local interface used (`+outgoing_interface`).
    pub interface: Option<(IpAddr, u16)>,
    /// TCP Fast Open on the outgoing connection.
    pub tfo: Tfo,
    /// `PS=` (`+protocol_detail`): the steps of the SMTP session start
    /// (`e` EHLO, `h` HELO, `s` STARTTLS, `a` each AUTH tried).
    pub protocol_sequence: Option<&'a str>,
    /// TLS of the outgoing connection.
    pub tls: Option<TlsLog<'a>>,
    /// `A=`: authenticator used.
    pub auth: Option<&'a str>,
    /// ` L`: the commands were pipelined (` L*`: before the banner).
    pub pipelining: Option<PipeliningLog>,
    /// ` K`: sent with CHUNKING.
    pub chunking: bool,
    /// ` DKIM=domain:selector`: the message was signed (`+dkim_verbose`).
    pub dkim: Option<&'a str>,
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
            no_return_path: false,
            router: None,
            transport: None,
            size: None,
            shadow: None,
            host: None,
            continued: false,
            interface: None,
            tfo: Tfo::default(),
            protocol_sequence: None,
            tls: None,
            auth: None,
            pipelining: None,
            chunking: false,
            dkim: None,
            confirmation: None,
            queue_time: None,
            deliver_time: None,
        }
    }

    /// Renders everything after the flag and its space.
    pub(crate) fn render_body(&self, sel: &LogSelector, out: &mut String) {
        let ms = sel.has(Selector::Millisec);
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            (!self.no_return_path).then(|| self.return_path.unwrap_or(self.sender)),
            self.router,
            self.transport,
        );
        if let Some(s) = self.size {
            if sel.has(Selector::DeliverySize) {
                let _ = write!(out, " S={s}");
            }
        }
        if let Some(st) = self.shadow {
            let _ = write!(out, " {st}");
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
            render_protocol_sequence(sel, out, self.protocol_sequence);
        }
        if let Some(tls) = &self.tls {
            tls.render(sel, out);
        }
        if let Some(a) = self.auth {
            let _ = write!(out, " A={a}");
        }
        if let Some(p) = &self.pipelining {
            p.render(sel, out, false);
        }
        if self.chunking {
            out.push_str(" K");
        }
        if let Some(d) = self.dkim {
            if sel.has(Selector::DkimVerbose) {
                let _ = write!(out, " DKIM={d}");
            }
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
pub(crate) fn render_route(
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
pub(crate) fn render_deliver_time(sel: &LogSelector, out: &mut String, dt: Option<Duration>) {
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
    /// `PS=` after the host on `**` lines (`+protocol_detail`).
    pub protocol_sequence: Option<&'a str>,
}

/// ` PS=steps` with `+protocol_detail`.
fn render_protocol_sequence(sel: &LogSelector, out: &mut String, ps: Option<&str>) {
    if let Some(ps) = ps {
        if sel.has(Selector::ProtocolDetail) {
            let _ = write!(out, " PS={ps}");
        }
    }
}

impl DeliveryError<'_> {
    /// The `==` form: `: errno text`, the host, `: message`.
    pub(crate) fn render(&self, sel: &LogSelector, out: &mut String) {
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

    /// The `**` form of current Exim (since its 2025 protocol-sequence
    /// change): the host first, then ` : errno text` and ` : message`.
    pub(crate) fn render_failure(&self, sel: &LogSelector, out: &mut String) {
        if let Some(h) = &self.host {
            h.render(sel, out);
            render_protocol_sequence(sel, out, self.protocol_sequence);
        }
        if let Some(t) = self.errno_text {
            let _ = write!(out, " : {t}");
        }
        if let Some(m) = self.message {
            let _ = write!(out, " : {}", printing(m, false));
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
    /// No router was run (the address's routing retry time has not come):
    /// Exim shows ` routing` where ` R=` would be.
    pub routing: bool,
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
            routing: false,
        }
    }

    pub(crate) fn render_body(&self, sel: &LogSelector, out: &mut String) {
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            None,
            self.router,
            self.transport,
        );
        if self.routing && self.router.is_none() {
            out.push_str(" routing");
        }
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

    pub(crate) fn render_body(&self, sel: &LogSelector, out: &mut String) {
        render_route(
            sel,
            out,
            &self.address,
            self.sender,
            // As Exim, an address that failed before any transport ran
            // (routing, a suspected loop) has no return path to show.
            self.return_path.or(self.transport.map(|_| self.sender)),
            self.router,
            self.transport,
        );
        self.error.render_failure(sel, out);
        render_deliver_time(sel, out, self.deliver_time);
    }
}
