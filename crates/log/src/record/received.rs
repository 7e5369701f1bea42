//! `<=` lines: a message received.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::selector::{LogSelector, Selector};

use super::*;

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
    pub tfo: Tfo,
    /// `U=`: ident or local login.
    pub ident: Option<&'a str>,
    /// `P=`: received protocol (`local`, `esmtp`, `esmtps`, ...).
    pub protocol: Option<&'a str>,
    /// TLS of the incoming connection.
    pub tls: Option<TlsLog<'a>>,
    /// `A=`: authenticator name and authenticated id.
    pub auth: Option<(&'a str, Option<&'a str>)>,
    /// ` L`: PIPELINING was advertised (and what the client did with it).
    pub pipelining: Option<PipeliningLog>,
    /// ` PRDR`: the client asked for per-recipient data responses.
    pub prdr: bool,
    /// ` K`: the message came with CHUNKING (BDAT).
    pub chunking: bool,
    /// `S=`: message size.
    pub size: u64,
    /// `RT=`: time taken to receive (`+receive_time`).
    pub receive_time: Option<Duration>,
    /// `DKIM=`: the domain of the first passing DKIM signature (`+dkim`).
    pub dkim: Option<&'a str>,
    /// `id=`: the Message-ID header value without `<>`.
    pub message_id: Option<&'a str>,
    /// The Message-ID was generated here (logged as `id*=` and only with
    /// `+msg_id_created`).
    pub message_id_created: bool,
    /// `T="..."`: the Subject (`+subject`), raw header value.
    pub subject: Option<&'a str>,
    /// `for ...`: the envelope recipients (`+received_recipients`).
    pub recipients: &'a [&'a str],
    /// The client was told the message was refused (`control =
    /// fakereject`): the line starts `(=` instead of `<=`.
    pub fake_reject: bool,
    /// ` Ci=`: the number of the connection (or local session) it came
    /// in on (`+connection_id`).
    pub conn_id: Option<u64>,
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
            pipelining: None,
            prdr: false,
            chunking: false,
            size,
            receive_time: None,
            dkim: None,
            message_id: None,
            message_id_created: false,
            subject: None,
            recipients: &[],
            fake_reject: false,
            conn_id: None,
        }
    }

    /// Renders everything after `<= `.
    pub(crate) fn render_body(&self, sel: &LogSelector, out: &mut String) {
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
        render_conn_id(self.conn_id, sel, out);
        if let Some(p) = self.protocol {
            let _ = write!(out, " P={p}");
        }
        if let Some(p) = &self.pipelining {
            p.render(sel, out, true);
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
        if self.prdr {
            out.push_str(" PRDR");
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
        if let Some(d) = self.dkim {
            if sel.has(Selector::Dkim) {
                let _ = write!(out, " DKIM={d}");
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
