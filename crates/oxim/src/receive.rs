//! Accepting a message: header fix-ups, spool write (durable before any
//! acknowledgement), the `<=` log line, and hand-off to delivery.

use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use oxim_log::{LogRecord, Received, SenderHost, Tfo};
use oxim_net::ServerTfo;
use oxim_spool::{Envelope, Header, MessageId, Recipient};

use crate::ctx::Ctx;
use crate::loaded::Loaded;
use crate::message::{default_received, HeaderField, Message, ReceivedInfo};

/// Where a message came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// `local`, `local-smtp`, `local-bsmtp`, `smtp`, `esmtp`, ...
    pub protocol: String,
    /// Local submitter's login (`U=`), None for remote SMTP.
    pub ident: Option<String>,
    /// Remote peer, for SMTP over TCP.
    pub peer: Option<SocketAddr>,
    /// Name found by reverse lookup (verified), if any.
    pub host_name: Option<String>,
    pub helo: Option<String>,
    /// Local end of the connection.
    pub interface: Option<SocketAddr>,
    pub tfo: ServerTfo,
    /// For a bounce: the id of the message it reports on (`R=` in the log).
    pub reference: Option<String>,
    /// The client asked for PRDR (` PRDR` on the `<=` line).
    pub prdr: bool,
    /// The body came with BDAT (` K` in the log).
    pub chunking: bool,
    /// PIPELINING offered, and how the client used it (` L` with
    /// `+pipelining`); `None` where it was not advertised.
    pub pipelining: Option<oxim_log::PipeliningLog>,
    /// A trusted caller set the sender with -f (changes the From: added
    /// to a message that has none).
    pub sender_set: bool,
    /// TLS of the incoming connection (` X=` in the log, `P=esmtps`).
    pub tls: Option<oxim_tls::TlsSession>,
    /// An ACL set `control = submission`: missing Message-Id: and Date:
    /// are added as for a local message.
    pub submission: bool,
    /// SMTP AUTH: the authenticator's instance name and the
    /// `server_set_id` result (` A=name:id` in the log).
    pub auth: Option<(String, Option<String>)>,
    /// The public (SASL mechanism) name of that authenticator.
    pub auth_pubname: Option<String>,
    /// `AUTH=` on MAIL, when accepted (`$authenticated_sender`); for a
    /// message from a local user, `login@qualify_domain`.
    pub auth_sender: Option<String>,
    /// `$authenticated_id` of a message from a local user (its login),
    /// kept in the spool file without an authenticator (no ` A=`).
    pub local_auth_id: Option<String>,
    /// The user a message oxim makes itself (a bounce) is from: the
    /// process's own user (the exim user), not the caller of the command
    /// that led to it; `None` for the caller.
    pub user: Option<crate::ctx::Caller>,
    /// `DKIM=` on the `<=` line: the first passing signature's domain.
    pub dkim: Option<String>,
    /// `control = fakereject`: kept and delivered, the client told 550
    /// (the log line starts `(=`).
    pub fake_reject: bool,
    /// `control = suppress_local_fixups`.
    pub suppress_local_fixups: bool,
    /// The number of the SMTP connection or session it came in on (` Ci=`).
    pub conn_id: Option<u64>,
}

impl Source {
    pub fn local(ctx: &Ctx, protocol: &str) -> Source {
        Source {
            protocol: protocol.to_string(),
            ident: Some(ctx.caller.login.clone()),
            peer: None,
            host_name: None,
            helo: None,
            interface: None,
            tfo: ServerTfo::None,
            reference: None,
            prdr: false,
            chunking: false,
            pipelining: None,
            sender_set: false,
            tls: None,
            submission: false,
            auth: None,
            auth_pubname: None,
            auth_sender: None,
            local_auth_id: None,
            user: None,
            dkim: None,
            fake_reject: false,
            suppress_local_fixups: false,
            // As Exim: a message from a local process carries its number.
            conn_id: Some(u64::from(std::process::id())),
        }
    }

    fn is_local(&self) -> bool {
        self.peer.is_none()
    }

    /// The `from ...` part of Received: for a remote host.
    fn rcvhost(&self) -> Option<String> {
        let peer = self.peer?;
        let ip = peer.ip();
        let mut s = String::new();
        match (&self.host_name, &self.helo) {
            (Some(n), Some(h)) if n.eq_ignore_ascii_case(h) => {
                s.push_str(&format!("{n} ([{ip}])"));
            }
            (Some(n), Some(h)) => s.push_str(&format!("{n} ([{ip}] helo={h})")),
            (Some(n), None) => s.push_str(&format!("{n} ([{ip}])")),
            (None, Some(h)) => s.push_str(&format!("[{ip}] (helo={h})")),
            (None, None) => s.push_str(&format!("[{ip}]")),
        }
        // An ident (-oMt) goes inside the parentheses, opening them if
        // there are none.
        if let Some(u) = &self.ident {
            if s.ends_with(')') {
                s.pop();
                s.push_str(&format!(" ident={u})"));
            } else {
                s.push_str(&format!(" (ident={u})"));
            }
        }
        Some(s)
    }
}

/// Exim's `local_from_check` (default on) for a message from a local
/// caller who is not trusted: a `Sender:` it brought is dropped (unless
/// `local_sender_retain`), and when its `From:` is not the caller's own
/// address (`login@qualify_domain`, or the bare login) a `Sender:` naming
/// the caller is added. Messages oxim makes itself (bounces, replies) are
/// not checked.
fn local_from_check(ctx: &Ctx, source: &Source, msg: &mut Message) {
    if !source.is_local() || source.user.is_some() || ctx.caller.trusted {
        return;
    }
    if !ctx.config.main.bool("local_sender_retain") {
        msg.headers.retain(|h| !h.is("sender"));
    }
    if !ctx.config.main.bool("local_from_check") {
        return;
    }
    let Some(from) = msg.header("from") else {
        return;
    };
    let login = &ctx.caller.login;
    let generated = format!("{login}@{}", ctx.qualify_domain);
    let value = from.text.split_once(':').map_or("", |(_, v)| v);
    // More than one address (or none) is not the caller's own, as in Exim.
    let own = match crate::message::extract_addresses(value).as_slice() {
        [a] => {
            a.eq_ignore_ascii_case(&generated)
                || (!a.contains('@') && a.eq_ignore_ascii_case(login))
        }
        _ => false,
    };
    if own {
        return;
    }
    let name = ctx
        .inv
        .full_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| gecos_name(ctx))
        .unwrap_or_default();
    msg.headers
        .push(HeaderField::new(format!("Sender: {name} <{generated}>")));
}

/// The sender's full name for a locally generated From: header.
fn gecos_name(ctx: &Ctx) -> Option<String> {
    if let Some(gecos) = &ctx.settings.gecos_name {
        let v = oxim_conf::expand(gecos, &ctx.base_vars()).ok()?;
        return (!v.is_empty()).then_some(v);
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(ctx.caller.uid))
        .ok()
        .flatten()?;
    let g = user.gecos.to_string_lossy();
    let name = g.split(',').next().unwrap_or("").trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// A message with its headers fixed up and its envelope built, ready to be
/// written to the spool.
pub struct Prepared {
    pub env: Envelope,
    pub headers: Vec<Header>,
    pub msg: Message,
    recipients: Vec<String>,
    id_created: bool,
    at: std::time::SystemTime,
}

impl Prepared {
    /// The recipients the `<=` line lists (`+received_recipients`): those
    /// the message had as its data ended, also when a PRDR round then
    /// refused some of them (as Exim logs it).
    pub fn log_recipients(&mut self, list: Vec<String>) {
        self.recipients = list;
    }
}

/// Accept a message as it is (the command line, bounces, autoreply): add
/// headers, write the spool durably through [`store`], log `<=`. Returns
/// the loaded message for immediate delivery.
pub async fn accept(
    ctx: &Ctx,
    id: MessageId,
    source: &Source,
    sender: &str,
    recipients: &[String],
    msg: Message,
) -> Result<Loaded> {
    let p = prepare(ctx, id, source, sender, recipients, msg);
    store(ctx, source, p)
        .await
        .with_context(|| format!("spool write failed for {id}"))
}

/// Write a prepared message durably (through the group-commit writer,
/// which shares fsyncs between concurrent messages, when it runs), then log
/// `<=` as [`finish`] does. The one way onto the spool: SMTP calls it after
/// its own checks, everything else through [`accept`].
pub async fn store(ctx: &Ctx, source: &Source, p: Prepared) -> Result<Loaded> {
    match ctx.writer() {
        Some(w) => {
            w.write(p.env.clone(), p.headers.clone(), p.msg.body.clone())
                .await?
        }
        None => ctx.spool.write_bytes(&p.env, &p.headers, &p.msg.body)?,
    }
    crate::metrics::received();
    if source
        .pipelining
        .is_some_and(|p| p.early == oxim_log::EarlyPipe::Used)
    {
        crate::metrics::early_pipelined_in();
    }
    Ok(finish(ctx, source, p))
}

impl Prepared {
    /// Add the header lines ACLs asked for (`add_header`), each where its
    /// prefix puts it (see [`place_acl_headers`]).
    /// Removes the header lines `remove_header` lists name (Exim's
    /// specifiers: a header name, any case, or a `^` regular expression
    /// matched against the whole line).
    pub fn remove_acl_headers(&mut self, lists: &[String]) {
        let matchers: Vec<HeaderSpec> = lists
            .iter()
            .flat_map(|l| oxim_conf::lists::list_items(l))
            .filter(|s| !s.trim().is_empty())
            .map(|s| HeaderSpec::new(s.trim()))
            .collect();
        if matchers.is_empty() {
            return;
        }
        let before = self.msg.headers.len();
        self.msg
            .headers
            .retain(|h| !matchers.iter().any(|m| m.matches(&h.text)));
        if self.msg.headers.len() != before {
            self.headers = spool_headers(&self.msg.headers);
        }
    }

    pub fn add_acl_headers(&mut self, added: &[String]) {
        if added.is_empty() {
            return;
        }
        place_acl_headers(&mut self.msg.headers, added);
        self.headers = spool_headers(&self.msg.headers);
    }
}

/// One `remove_header` specifier.
enum HeaderSpec {
    /// A header name (without its colon), compared without case.
    Name(String),
    /// `^...`: a regular expression anchored at the start of the line.
    Regex(Option<regex::Regex>),
}

impl HeaderSpec {
    fn new(spec: &str) -> HeaderSpec {
        if spec.starts_with('^') {
            // The ACL refused a pattern that does not compile (see
            // `acl::conditions`), so `None` is not expected here.
            HeaderSpec::Regex(regex::Regex::new(spec).ok())
        } else {
            HeaderSpec::Name(spec.trim_end_matches(':').trim().to_ascii_lowercase())
        }
    }

    fn matches(&self, line: &str) -> bool {
        match self {
            HeaderSpec::Name(n) => line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim_end().eq_ignore_ascii_case(n)),
            HeaderSpec::Regex(Some(re)) => re.is_match(line),
            HeaderSpec::Regex(None) => false,
        }
    }
}

/// Where an added header line goes (Exim's `:at_start:` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    End,
    Start,
    AfterReceived,
    StartRfc,
}

/// Put ACL-added header lines into `headers` as Exim does: each
/// `add_header` text loses leading newlines and may hold several lines
/// (a newline not followed by white space starts another); a line may
/// start with `:at_start:`, `:after_received:`, `:at_start_rfc:` or
/// `:at_end:` (the default); a line that does not start with a header
/// name gets `X-ACL-Warn: ` in front; a line already added is not added
/// again.
pub fn place_acl_headers(headers: &mut Vec<HeaderField>, added: &[String]) {
    let mut lines: Vec<(Place, String)> = Vec::new();
    for text in added {
        let text = text.trim_start_matches('\n').trim_end_matches('\n');
        if text.is_empty() {
            continue;
        }
        let mut rest = text;
        while !rest.is_empty() {
            // The end of this line: a newline not followed by space or tab.
            let mut end = rest.len();
            let mut from = 0;
            while let Some(i) = rest[from..].find('\n') {
                let nl = from + i;
                match rest.as_bytes().get(nl + 1) {
                    Some(b' ' | b'\t') => from = nl + 1,
                    _ => {
                        end = nl;
                        break;
                    }
                }
            }
            let mut line = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
            let mut place = Place::End;
            let lower = line.to_ascii_lowercase();
            for (prefix, p) in [
                (":after_received:", Place::AfterReceived),
                (":at_start_rfc:", Place::StartRfc),
                (":at_start:", Place::Start),
                (":at_end:", Place::End),
            ] {
                if lower.starts_with(prefix) {
                    place = p;
                    line = line[prefix.len()..].trim_start_matches([' ', '\t']);
                    break;
                }
            }
            let named = line
                .find(|c: char| c == ':' || !c.is_ascii_graphic())
                .is_some_and(|i| line.as_bytes()[i] == b':');
            let hdr = if named {
                format!("{line}\n")
            } else {
                format!("X-ACL-Warn: {line}\n")
            };
            if !lines.iter().any(|(_, h)| *h == hdr) {
                lines.push((place, hdr));
            }
        }
    }
    let is = |h: &HeaderField, name: &str| h.is(name);
    let mut after_received: Option<usize> = None;
    for (place, text) in lines {
        let field = HeaderField::new(text);
        match place {
            Place::End => headers.push(field),
            Place::Start => {
                headers.insert(0, field);
                after_received = after_received.map(|i| i + 1);
            }
            Place::AfterReceived => {
                // After the first block of Received: lines (found once, as
                // Exim does, so that several end up in reverse order).
                let at = *after_received.get_or_insert_with(|| {
                    let first = headers.iter().position(|h| is(h, "received"));
                    match first {
                        Some(f) => {
                            let mut i = f;
                            while headers.get(i + 1).is_some_and(|h| is(h, "received")) {
                                i += 1;
                            }
                            i + 1
                        }
                        None => headers.len(),
                    }
                });
                headers.insert(at.min(headers.len()), field);
            }
            Place::StartRfc => {
                let mut i = 0;
                while headers.get(i).is_some_and(|h| {
                    is(h, "received") || h.name().to_ascii_lowercase().starts_with("resent-")
                }) {
                    i += 1;
                }
                headers.insert(i, field);
                if after_received.is_some_and(|a| i <= a) {
                    after_received = after_received.map(|a| a + 1);
                }
            }
        }
    }
}

/// Build headers and envelope (no I/O).
pub fn prepare(
    ctx: &Ctx,
    id: MessageId,
    source: &Source,
    sender: &str,
    recipients: &[String],
    mut msg: Message,
) -> Prepared {
    let now = crate::time::LocalTime::now();
    let date = now.rfc2822();
    let id_text = id.to_string();
    // Address rewriting (Exim's order: the envelope recipients, then the
    // sender once the local header fix-ups are done, then the headers).
    // Unqualified addresses in headers are qualified for local messages.
    let rules = &ctx.rewrite;
    let allow_unqualified = source.is_local();
    let mut rw_vars = ctx.base_vars();
    if let Some(p) = source.peer {
        rw_vars.set("sender_host_address", p.ip().to_string());
    }
    if let Some(h) = &source.host_name {
        rw_vars.set("sender_host_name", h.clone());
    }
    rw_vars
        .set("sender_address", sender.to_string())
        .set("received_protocol", source.protocol.clone())
        .set("message_exim_id", id_text.clone());
    let rw = crate::rewrite::env(ctx, &rw_vars);
    let mut rcpt_notes = Vec::new();
    let raw_recipients = recipients;
    let rewritten: Vec<String>;
    let recipients: &[String] = if rules.exist & oxim_conf::rewrite::flag::ENV_TO == 0 {
        raw_recipients
    } else {
        rewritten = raw_recipients
            .iter()
            .map(|r| rw.rewrite_address(rules, r, true, true, &mut rcpt_notes))
            .collect();
        &rewritten
    };
    let mut sender_notes = Vec::new();
    let raw_sender = sender;
    let rewritten_sender;
    let sender = if rules.is_empty() || sender.is_empty() {
        sender
    } else {
        rewritten_sender = rw.rewrite_address(rules, sender, false, true, &mut sender_notes);
        rewritten_sender.as_str()
    };
    // What the envelope rewriting logs, and the old headers recording it
    // (placed as Exim places them: after a generated Message-Id:, and
    // after generated From:/Sender: lines, respectively).
    let mut rcpt_old = old_fields(crate::rewrite::log_notes(ctx, Some(&id_text), rcpt_notes));
    let mut sender_old = old_fields(crate::rewrite::log_notes(ctx, Some(&id_text), sender_notes));
    // Before any header is added: the longest line as received.
    let max_linelength = msg.max_line_length();
    // `for <address>` when the message had one recipient as its data
    // ended (the header is made before the ACLs after the data run); a
    // PRDR round only happens with several, whatever it left.
    let received_for = (!source.prdr && recipients.len() == 1).then(|| recipients[0].as_str());
    let received = default_received(&ReceivedInfo {
        rcvhost: source.rcvhost(),
        ident: if source.is_local() {
            source.ident.as_deref()
        } else {
            None
        },
        helo: if source.is_local() {
            source.helo.as_deref()
        } else {
            None
        },
        primary_hostname: &ctx.primary_hostname,
        protocol: &source.protocol,
        version: ctx.version,
        product: ctx.harness.product(),
        sender,
        id: &id_text,
        received_for,
        date: &date,
        style: ctx.header_style,
        tls: source
            .tls
            .as_ref()
            .map(|t| (t.version.as_str(), t.cipher_std.as_str())),
    });
    msg.headers.insert(0, received);
    let mut id_created = false;
    if source.submission && !source.is_local() {
        if msg.header("message-id").is_none() && msg.header("resent-message-id").is_none() {
            id_created = true;
            msg.headers.push(HeaderField::new(format!(
                "Message-Id: <E{id_text}@{}>",
                ctx.primary_hostname
            )));
        }
        if msg.header("date").is_none() {
            msg.headers.push(HeaderField::new(format!("Date: {date}")));
        }
    }
    // `control = suppress_local_fixups`: a local message keeps its header
    // as it came (no Message-Id:, From: or Date: added, Sender: kept).
    if source.is_local() && !source.suppress_local_fixups {
        if msg.header("message-id").is_none() && msg.header("resent-message-id").is_none() {
            id_created = true;
            msg.headers.push(HeaderField::new(format!(
                "Message-Id: <E{id_text}@{}>",
                ctx.primary_hostname
            )));
        }
        msg.headers.append(&mut rcpt_old);
        // Exim 4.96: a sender given with -f is used as it is, and a null
        // one adds no From: at all; otherwise the caller's name and login.
        let given = source.sender_set;
        if msg.header("from").is_none() && !(given && raw_sender.is_empty()) {
            // A reply oxim makes is from its user's address, without a name.
            let own = source.user.as_ref();
            let addr = format!(
                "{}@{}",
                own.map_or(&ctx.caller.login, |u| &u.login),
                ctx.qualify_domain
            );
            // -F names the sender in either case.
            let from = match ctx.inv.full_name.clone().filter(|n| !n.is_empty()) {
                Some(n) if given => format!("From: {n} <{raw_sender}>"),
                None if given => format!("From: {raw_sender}"),
                _ if own.is_some() => format!("From: {addr}"),
                Some(n) => format!("From: {n} <{addr}>"),
                None => match gecos_name(ctx) {
                    Some(n) => format!("From: {n} <{addr}>"),
                    None => format!("From: {addr}"),
                },
            };
            msg.headers.push(HeaderField::new(from));
        }
        local_from_check(ctx, source, &mut msg);
        msg.headers.append(&mut sender_old);
        if msg.header("date").is_none() {
            msg.headers.push(HeaderField::new(format!("Date: {date}")));
        }
    }

    msg.headers.append(&mut rcpt_old);
    msg.headers.append(&mut sender_old);
    if !rules.is_empty() || allow_unqualified {
        // Not our own Received: (the first header); an old copy of each
        // header changed stays before it.
        let mut notes = Vec::new();
        let mut out = Vec::with_capacity(msg.headers.len() + 4);
        for (i, mut h) in std::mem::take(&mut msg.headers).into_iter().enumerate() {
            if i > 0 && !h.old {
                if let Some(new) = rw.rewrite_header(
                    rules,
                    &h.text,
                    allow_unqualified,
                    allow_unqualified,
                    &mut notes,
                ) {
                    let mut old = HeaderField::new(std::mem::replace(&mut h.text, new));
                    old.old = true;
                    out.push(old);
                }
            }
            out.push(h);
        }
        msg.headers = out;
        let mut more = old_fields(crate::rewrite::log_notes(ctx, Some(&id_text), notes));
        msg.headers.append(&mut more);
    }
    let mut env = Envelope::new(id, sender);
    let user = source.user.as_ref().unwrap_or(&ctx.caller);
    env.login = user.login.clone();
    env.uid = user.uid;
    env.gid = user.gid;
    env.received_time = now.epoch_secs();
    env.received_time_usec = now.subsec_micros();
    env.protocol = Some(source.protocol.clone());
    env.ident = source.ident.clone();
    env.local = source.is_local();
    env.host_address = source.peer.map(|p| p.ip().to_string());
    env.host_port = source.peer.map(|p| p.port());
    env.host_name = source.host_name.clone();
    env.helo_name = source.helo.clone();
    env.interface_address = source.interface.map(|p| p.ip().to_string());
    env.interface_port = source.interface.map(|p| p.port());
    env.body_linecount = Some(msg.body_lines() as u64);
    env.max_received_linelength = Some(max_linelength as u64);
    env.deliver_firsttime = true;
    // -N is kept with the message: later deliveries are bypassed too.
    env.dont_deliver = ctx.inv.dont_deliver;
    env.tfo = source.tfo;
    if let Some(t) = &source.tls {
        env.tls.cipher = Some(t.cipher.clone());
        env.tls.ver = Some(t.version.clone());
        env.tls.certificate_verified = t.certificate_verified == Some(true);
    }
    if let Some((name, id)) = &source.auth {
        env.host_auth = Some(name.clone());
        env.host_auth_pubname = source.auth_pubname.clone();
        env.auth_id = id.clone();
    } else {
        env.auth_id = source.local_auth_id.clone();
    }
    env.auth_sender = source.auth_sender.clone();
    env.recipients = recipients.iter().map(Recipient::new).collect();
    // return_path_remove, delivery_date_remove, envelope_to_remove.
    let main = &ctx.config.main;
    crate::message::mark_removed(
        &mut msg.headers,
        [
            main.bool("return_path_remove"),
            main.bool("delivery_date_remove"),
            main.bool("envelope_to_remove"),
        ],
    );
    let headers = spool_headers(&msg.headers);
    Prepared {
        env,
        headers,
        msg,
        recipients: raw_recipients.to_vec(),
        id_created,
        at: now.system_time(),
    }
}

/// The header lines as the spool keeps them (old ones marked so, never
/// transmitted).
fn spool_headers(headers: &[HeaderField]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| {
            let mut sh = Header::new(h.text.clone());
            if h.old {
                sh.kind = oxim_spool::header::kind::DELETED;
            }
            sh
        })
        .collect()
}

/// Old (never transmitted) header lines from their texts.
fn old_fields(texts: Vec<String>) -> Vec<HeaderField> {
    texts
        .into_iter()
        .map(|t| {
            let mut h = HeaderField::new(t);
            h.old = true;
            h
        })
        .collect()
}

/// Log `<=` (main log and msglog) for a message now safely on the spool,
/// and hand it over for delivery.
pub fn finish(ctx: &Ctx, source: &Source, p: Prepared) -> Loaded {
    let Prepared {
        env,
        headers,
        msg,
        recipients,
        id_created,
        at,
        ..
    } = p;
    let id_text = env.id.to_string();
    let sender = env.sender.as_str();
    let size = msg.size();
    let message_id = msg.message_id();
    let subject = msg.header("subject").map(|h| h.value());
    let rcpt_refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let mut rec = Received::new(&id_text, sender, size as u64);
    rec.host = source.peer.map(|p| SenderHost {
        name: source.host_name.as_deref(),
        helo: source.helo.as_deref(),
        ip: p.ip(),
        port: p.port(),
        conn_id: None,
    });
    rec.interface = source.interface.map(|i| (i.ip(), i.port()));
    rec.tfo = match source.peer {
        Some(_) => Tfo::Server(source.tfo),
        None => Tfo::NotTcp,
    };
    rec.ident = source.ident.as_deref();
    rec.protocol = Some(&source.protocol);
    rec.tls = source.tls.as_ref().map(crate::ctx::tls_log);
    rec.auth = source
        .auth
        .as_ref()
        .map(|(name, id)| (name.as_str(), id.as_deref()));
    rec.reference = source.reference.as_deref();
    rec.prdr = source.prdr;
    rec.fake_reject = source.fake_reject;
    rec.conn_id = source.conn_id;
    rec.chunking = source.chunking;
    rec.pipelining = source.pipelining;
    rec.dkim = source.dkim.as_deref();
    rec.message_id = message_id.as_deref();
    rec.message_id_created = id_created;
    rec.subject = subject.as_deref();
    rec.recipients = &rcpt_refs;
    let rec = LogRecord::Received(rec);
    ctx.log(&rec);
    let msglog = ctx.logger.msglog_line(&rec, at);
    let loaded = Loaded::new(env, headers, msg.body);
    if let Some(line) = msglog {
        loaded.note_msglog(line);
    }
    loaded
}
