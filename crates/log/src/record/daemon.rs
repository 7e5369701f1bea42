//! The daemon's own lines: listening sockets, started.

use std::fmt::Write as _;
use std::net::IpAddr;

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
    pub(crate) fn render(&self, out: &mut String) {
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
    pub(crate) fn render(&self, out: &mut String) {
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
