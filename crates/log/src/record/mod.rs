//! Typed log records and their rendering as Exim's text: this module holds
//! the record type and its dispatch, one submodule per kind of line.
//!
//! Every record borrows its strings from the caller, so building one costs
//! no allocation; rendering appends to a caller-supplied `String`.

mod common;
mod daemon;
mod delivery;
mod received;
mod reject;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::selector::{LogSelector, Selector};

pub use common::*;
pub use daemon::*;
pub use delivery::*;
pub use received::*;
pub use reject::*;

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
        /// ` I=`: the local end (`+incoming_interface`).
        interface: Option<(IpAddr, u16)>,
        /// Connections open, this one included.
        count: u32,
    },
    /// End of an incoming SMTP connection.
    SmtpClosed {
        /// The client, with what is known by now (HELO name...).
        host: SenderHost<'a>,
        /// ` I=`: the local end (`+incoming_interface`).
        interface: Option<(IpAddr, u16)>,
        /// Ident, if known.
        ident: Option<&'a str>,
        /// `D=` connection duration (printed when given).
        duration: Option<Duration>,
        /// How it ended.
        how: SmtpEnd<'a>,
    },
    /// `SMTP connection [Ci=n] from <ident>` and, with `end`, `... D=<t>
    /// closed by QUIT`: the start and end of an SMTP session on stdin
    /// (`-bs`), which Exim names by the caller (`+smtp_connection`).
    LocalSmtp {
        /// The caller (`NULL` when there is none, as Exim prints it).
        ident: Option<&'a str>,
        /// The session's number (the process's, as in Exim).
        conn_id: u64,
        /// The session's length and how it ended (`closed by QUIT`).
        end: Option<(Duration, &'a str)>,
    },
    /// `no MAIL in SMTP connection from ...`: a session that ended
    /// without any MAIL command (`+smtp_no_mail`).
    NoMail {
        /// The client (`None` for a local `-bs` session: the ident only).
        host: Option<SenderHost<'a>>,
        /// Ident (the caller of a local session).
        ident: Option<&'a str>,
        /// TCP Fast Open on the connection (` TFO` / ` TFO*` before
        /// `SMTP`).
        tfo: Tfo,
        /// `D=` the session's duration.
        duration: Duration,
        /// `A=`: authenticator and id.
        auth: Option<(&'a str, Option<&'a str>)>,
        /// `X=` and friends.
        tls: Option<TlsLog<'a>>,
        /// `C=`: the recent commands (empty: no `C=`).
        commands: &'a str,
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
    /// `rejected from <sender> H=...: Non-CRLF-terminated header, under
    /// CHUNKING: message abandoned`: a BDAT message whose first header
    /// line ended in a bare LF (Exim 4.97.1's SMTP-smuggling rule; main log
    /// with `+size_reject`, reject log always).
    ChunkingNotCrlf {
        /// The envelope sender.
        sender: &'a str,
        /// The client; `None` for a local `-bs` session.
        host: Option<SenderHost<'a>>,
        /// The local sender's login, shown as `U=` when there is no host.
        ident: Option<&'a str>,
    },
    /// `<id> H=host [ip] TFO* replayed transaction XOXIM-TXID=<token>
    /// answered again, not received twice`: a copy of a transaction already
    /// accepted as message `id` (a duplicated TCP Fast Open SYN that carried
    /// it), answered with that message's reply and not stored again.
    ReplayedTransaction {
        /// The message the first copy became.
        id: &'a str,
        /// The client of the copy.
        host: SenderHost<'a>,
        /// The copy's connection (` TFO*` when its SYN carried it).
        tfo: Tfo,
        /// The client's transaction token.
        token: &'a str,
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
            LogRecord::ReplayedTransaction { id, .. } => Some(id),
            LogRecord::Rejected(r) => r.id,
            LogRecord::RejectedWithHeaders { rejected, .. } => rejected.id,
            LogRecord::Text { id, .. } | LogRecord::Panic { id, .. } => *id,
            LogRecord::DaemonStarted(_)
            | LogRecord::QueueRunStart { .. }
            | LogRecord::QueueRunEnd { .. }
            | LogRecord::SmtpConnection { .. }
            | LogRecord::SmtpClosed { .. }
            | LogRecord::NoMail { .. }
            | LogRecord::LocalSmtp { .. }
            | LogRecord::ConnectionRefused { .. }
            | LogRecord::TooManyConnections { .. }
            | LogRecord::HeaderTooLong { .. }
            | LogRecord::ChunkingNotCrlf { .. } => None,
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
            LogRecord::NoMail { .. } => main_if(sel.has(Selector::SmtpNoMail)),
            LogRecord::LocalSmtp { .. } => main_if(sel.has(Selector::SmtpConnection)),
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
            LogRecord::ChunkingNotCrlf { .. } => Dest {
                main: sel.has(Selector::SizeReject),
                reject: true,
                panic: false,
            },
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
                out.push_str(if r.fake_reject { "(= " } else { "<= " });
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
            LogRecord::SmtpConnection {
                host,
                interface,
                count,
            } => {
                out.push_str("SMTP connection from ");
                host.render(sel, out);
                render_interface(*interface, sel, out);
                host.render_conn_id(sel, out);
                let _ = write!(out, " (TCP/IP connection count = {count})");
            }
            LogRecord::SmtpClosed {
                host,
                interface,
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
                        // Exim puts the connection's number before "from"
                        // on this line.
                        out.push_str("SMTP connection");
                        host.render_conn_id(sel, out);
                        out.push_str(" from ");
                        host.render(sel, out);
                        render_interface(*interface, sel, out);
                        if let Some(u) = ident {
                            let _ = write!(out, " U={u}");
                        }
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
            LogRecord::LocalSmtp {
                ident,
                conn_id,
                end,
            } => {
                out.push_str("SMTP connection");
                render_conn_id(Some(*conn_id), sel, out);
                let _ = write!(out, " from {}", ident.unwrap_or("NULL"));
                if let Some((d, how)) = end {
                    let _ = write!(out, " D={} {how}", format_duration(*d, ms));
                }
            }
            LogRecord::NoMail {
                host,
                ident,
                tfo,
                duration,
                auth,
                tls,
                commands,
            } => {
                out.push_str("no MAIL in ");
                let mark = tfo.mark().trim_start();
                if !mark.is_empty() {
                    out.push_str(mark);
                    out.push(' ');
                }
                out.push_str("SMTP connection from ");
                match host {
                    Some(h) => host_and_ident(h, *ident, sel, out),
                    None => out.push_str(ident.unwrap_or("unknown")),
                }
                let _ = write!(out, " D={}", format_duration(*duration, ms));
                if let Some((name, id)) = auth {
                    let _ = write!(out, " A={name}");
                    if let Some(id) = id {
                        let _ = write!(out, ":{id}");
                    }
                }
                if let Some(tls) = tls {
                    tls.render(sel, out);
                }
                if !commands.is_empty() {
                    let _ = write!(out, " C={commands}");
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
            LogRecord::ChunkingNotCrlf {
                sender,
                host,
                ident,
            } => {
                let _ = write!(out, "rejected from <{}>", printing(sender, false));
                if let Some(h) = host {
                    out.push_str(" H=");
                    h.render(sel, out);
                } else if let Some(u) = ident {
                    let _ = write!(out, " U={u}");
                }
                out.push_str(": Non-CRLF-terminated header, under CHUNKING: message abandoned");
            }
            LogRecord::ReplayedTransaction {
                host, tfo, token, ..
            } => {
                out.push_str("H=");
                host.render(sel, out);
                render_tfo(tfo, sel, out);
                let _ = write!(
                    out,
                    " replayed transaction XOXIM-TXID={}: answered as the first copy, not received again",
                    printing(token, false)
                );
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
                if text.is_empty() {
                    // A connection that failed: the system's words only.
                    if let Some(e) = errno_text {
                        let _ = write!(out, " {e}");
                    }
                } else {
                    let _ = write!(out, ": {text}");
                    if let Some(e) = errno_text {
                        let _ = write!(out, ": {e}");
                    }
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

/// ` I=[ip]:port`: the local end of an incoming connection
/// (`+incoming_interface`).
fn render_interface(interface: Option<(IpAddr, u16)>, sel: &LogSelector, out: &mut String) {
    if let (Some((ip, port)), true) = (interface, sel.has(Selector::IncomingInterface)) {
        let _ = write!(out, " I=[{ip}]:{port}");
    }
}
