//! What the session does for each SMTP event: policy (ACLs, limits),
//! the reply, and for a whole message its way onto the spool and into
//! delivery.

use std::sync::Arc;

use oxim_log::{LogRecord, RejectWhat, SmtpEnd};
use oxim_smtp::{
    hello_text, help_reply, DataSummary, Event, Extensions, MailFrom, RcptTo, Reply, ServerSession,
};

use crate::acl::{self, AclEnv, AclTrace, Verdict};
use crate::ctx::Ctx;
use crate::message::{HeaderExcess, Message};
use crate::receive::{self, Source};
use crate::vars::Vars;

mod auth_cmd;
mod dkim;
mod message;
mod prdr;
mod quit;
mod sender_verify;
mod vrfy;

use auth_cmd::{auth_command, log_synprot, mail_auth_param};
use message::*;
use quit::quit_acl;
use sender_verify::sender_verify_details;

use super::conn::{
    domain_option, host_ident, host_option, log_end, log_reject, log_reject_id, lookup_host_name,
    replied, sender_host, sync_client_name, IncomingConn, State,
};

/// The ACL an `acl_smtp_*` option names (see [`acl::named_by_option`]).
pub fn acl_for(ctx: &Ctx, option: &str, vars: &Vars) -> Option<oxim_conf::Acl> {
    acl::named_by_option(ctx, option, vars)
}

/// Run the ACL that `option` names, if there is one, and log its
/// `logwrite` lines: the one way the session checks an ACL. The option is
/// read with the session's variables; the ACL runs with them too (its
/// changes stay: connect, HELO, predata, DATA), or, given `per_command`,
/// with a copy that function prepares (MAIL, RCPT: the sender or recipient
/// variables are for that command only).
pub async fn check_acl(
    ctx: &Ctx,
    option: &str,
    session_vars: &mut Vars,
    per_command: Option<&(dyn Fn(&mut Vars) + Sync)>,
    env: &AclEnv<'_>,
    trace: &mut AclTrace,
) -> Option<acl::AclOutcome> {
    check_acl_id(ctx, option, session_vars, per_command, env, trace, None).await
}

/// [`check_acl`] for a message that has its id: `logwrite` lines carry it.
pub async fn check_acl_id(
    ctx: &Ctx,
    option: &str,
    session_vars: &mut Vars,
    per_command: Option<&(dyn Fn(&mut Vars) + Sync)>,
    env: &AclEnv<'_>,
    trace: &mut AclTrace,
    id: Option<&str>,
) -> Option<acl::AclOutcome> {
    if trace.no_smtp_acls {
        return None;
    }
    let acl = acl_for(ctx, option, session_vars)?;
    let o = match per_command {
        Some(prepare) => {
            let mut vars = session_vars.clone();
            prepare(&mut vars);
            let o = acl::eval_traced(ctx, &acl, &mut vars, env, trace).await;
            session_vars.keep_acl_vars(&vars);
            o
        }
        None => acl::eval_traced(ctx, &acl, session_vars, env, trace).await,
    };
    log_acl_writes(ctx, &o, id);
    // Header lines asked for in the ACLs that see a message; others have
    // no message to add them to.
    if matches!(
        option,
        "acl_smtp_mail" | "acl_smtp_rcpt" | "acl_smtp_predata" | "acl_smtp_data"
    ) {
        trace.added_headers.extend(o.added_headers.iter().cloned());
        trace
            .removed_headers
            .extend(o.removed_headers.iter().cloned());
        trace.message_controls.absorb(&o.controls);
    }
    trace.session_controls.absorb(&o.controls);
    Some(o)
}

/// An ACL refused a command: log it (main and reject logs, with the ACL's
/// `log_message`, else its `message`) and send the refusal.
#[allow(clippy::too_many_arguments)]
fn refuse(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    sess: &mut ServerSession,
    o: &acl::AclOutcome,
    sender: Option<&str>,
    what: RejectWhat<'_>,
    default_code: u16,
) {
    refuse_id(ctx, conn, st, sess, o, None, sender, what, default_code);
}

/// [`refuse`] for a message that has its id (after DATA).
#[allow(clippy::too_many_arguments)]
fn refuse_id(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    sess: &mut ServerSession,
    o: &acl::AclOutcome,
    id: Option<&str>,
    sender: Option<&str>,
    what: RejectWhat<'_>,
    default_code: u16,
) {
    // `control = no_multiline_responses`: neither the sender verification
    // details nor more than the first line of the message.
    let one_line = st.acl.session_controls.no_multiline_responses;
    let mut preamble = if one_line {
        Vec::new()
    } else {
        sender_verify_details(ctx, conn, st, o)
    };
    // A temporary refusal that may give details: with
    // smtp_return_error_details, why the sender could not be verified
    // comes first (each time, as Exim).
    if !one_line
        && o.verdict == Verdict::Defer
        && o.temp_details
        && o.message.is_some()
        && ctx.settings.smtp_return_error_details
    {
        if let Some(m) = st
            .acl
            .sender_verify_failed
            .as_ref()
            .and_then(|f| f.message.clone())
        {
            preamble = m.lines().map(str::to_string).collect();
        }
    }
    // Only the first line of a multi-line message is logged.
    let reason = o
        .log_message
        .clone()
        .or(o.message.clone())
        .map(|r| r.split('\n').next().unwrap_or_default().to_string());
    log_reject_id(
        ctx,
        conn,
        st,
        id,
        sender,
        what,
        o.verdict == Verdict::Defer,
        reason.as_deref(),
    );
    let mut reply = deny_reply(o, default_code, "Administrative prohibition");
    if one_line {
        reply.text.truncate(1);
    }
    replied(ctx, sess.reject_with_preamble(&preamble, reply));
}

/// `SMTP call from <client> dropped: <why>` (main and reject logs), the
/// client named as Exim's `host_and_ident(FALSE)` does.
fn log_dropped(ctx: &Ctx, conn: &IncomingConn, st: &State, why: &str) {
    let who = match host_ident(conn, st) {
        Some(h) => {
            let h = h.strip_prefix("H=").unwrap_or(&h).to_string();
            match &conn.ident {
                Some(u) => format!("{h} U={u}"),
                None => h,
            }
        }
        None => conn.ident.clone().unwrap_or_else(|| "unknown".into()),
    };
    ctx.log(&LogRecord::Text {
        id: None,
        text: &format!("SMTP call from {who} dropped: {why}"),
        dest: oxim_log::Dest {
            main: true,
            reject: true,
            panic: false,
        },
    });
}

/// Whether a local session (no host address) is in host list `option`:
/// as Exim checks it against an empty address, only `*` or an empty item
/// matches (or, negated, excludes it); a list ending in a negated item
/// matches it.
fn local_in_list(ctx: &Ctx, st: &State, option: &str) -> bool {
    let Ok(list) = oxim_conf::expand(ctx.config.main.str(option), &st.vars) else {
        return false;
    };
    oxim_conf::match_no_host(&list, &ctx.config, &st.vars).unwrap_or(false)
}

/// Whether a local caller may give `sender` as the envelope sender: a
/// trusted caller may, others only when `untrusted_set_sender` matches.
pub(super) fn may_set_sender(ctx: &Ctx, sender: &str, vars: &crate::vars::Vars) -> bool {
    crate::ctx::may_set_sender(ctx, sender, vars)
}

/// The address of a MAIL or RCPT command as the client wrote it (Exim logs
/// this, not the parsed address): after the colon, without the options,
/// at most 100 characters.
fn command_address(line: &str) -> Option<String> {
    let (_, arg) = line.split_once(':')?;
    let arg = arg.trim();
    let addr = if arg.starts_with('<') {
        match arg.find('>') {
            Some(i) => &arg[..=i],
            None => arg,
        }
    } else {
        arg.split_whitespace().next().unwrap_or("")
    };
    Some(addr.chars().take(100).collect())
}

fn log_acl_writes(ctx: &Ctx, o: &acl::AclOutcome, id: Option<&str>) {
    for l in &o.logwrites {
        // A newline in the text is logged as "\n", keeping one line.
        ctx.log_text(id, &l.replace('\n', "\\n"));
    }
}

/// Exim's reply to a refusal: the ACL's code for a deny, 451 for a
/// defer (with the ACL's message only when a `defer` verb gave one).
pub fn deny_reply(o: &acl::AclOutcome, default_code: u16, default_text: &str) -> Reply {
    if o.verdict == Verdict::Defer {
        return match (&o.message, o.temp_details) {
            (Some(m), true) => with_message_code(451, m, true),
            _ => Reply::new(451, "Temporary local problem - please try later"),
        };
    }
    match &o.message {
        // VRFY's 252 may be replaced by any code (Exim does not check it).
        Some(m) => with_message_code(default_code, m, default_code != 252),
        None => Reply::new(default_code, default_text),
    }
}

/// A reply with `text`, whose leading `NNN ` (an ACL message's own code)
/// replaces `code` when it is of the same class (first digit), or always
/// when `check` is off; a code of the wrong class is dropped from the text,
/// as Exim does (it also logs that to the panic log).
fn with_message_code(code: u16, text: &str, check: bool) -> Reply {
    let b = text.as_bytes();
    let has_code = b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ';
    if !has_code {
        return Reply::new(code, text);
    }
    let own: u16 = text[..3].parse().unwrap_or(code);
    let rest = &text[4..];
    if check && own / 100 != code / 100 {
        return Reply::new(code, rest);
    }
    Reply::new(own, rest)
}

pub fn protocol(conn: &IncomingConn, st: &State) -> String {
    match conn.base_protocol {
        "smtp" => super::tls::protocol_name(st.esmtp, st.tls.is_some(), st.auth.done.is_some()),
        "local-smtp" if st.esmtp && st.auth.done.is_some() => "local-esmtpa".into(),
        "local-smtp" if st.esmtp => "local-esmtp".into(),
        p => p.into(),
    }
}

/// One SMTP event: the session counts it, applies policy and answers.
pub async fn handle_event(
    ctx: &Arc<Ctx>,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    ev: Event,
    size_limit: u64,
) {
    st.commands += 1;
    // Exim checks smtp_accept_max_nonmail_hosts when the first non-mail
    // command arrives (one HELO/EHLO and one RSET per message are free).
    let nonmail = match &ev {
        Event::Helo { .. } => std::mem::replace(&mut st.helo_counted, true),
        Event::Rset => std::mem::replace(&mut st.rset_counted, true),
        Event::Auth { .. } => std::mem::replace(&mut st.auth_counted, true),
        Event::Noop | Event::Etrn(_) | Event::Vrfy(_) | Event::Expn(_) | Event::Help(_) => true,
        _ => false,
    };
    if let (true, None) = (nonmail, st.count_nonmail) {
        st.count_nonmail = Some(match conn.peer {
            Some(p) => host_option(ctx, st, "smtp_accept_max_nonmail_hosts", p.ip()).await,
            // A local session is checked as an empty address: only "*" (or
            // an empty item) can match it.
            None => local_in_list(ctx, st, "smtp_accept_max_nonmail_hosts"),
        });
    }
    if nonmail && st.count_nonmail == Some(true) {
        st.nonmail_count += 1;
        let max = ctx.expand_int("smtp_accept_max_nonmail", &st.vars, 10);
        if u64::from(st.nonmail_count) > max {
            let verb = sess
                .last_command()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            log_dropped(
                ctx,
                conn,
                st,
                &format!("too many nonmail commands (last was \"{verb}\")"),
            );
            sess.drop_instead(Reply::new(554, "Too many nonmail commands"));
            st.lost = true;
            return;
        }
    }
    match ev {
        Event::Helo { ehlo, name } => helo(ctx, conn, sess, st, ehlo, name, size_limit).await,
        Event::Mail(m) => {
            st.vars.clear_acl_m();
            st.vars.set("smtp_command", format!("MAIL FROM:{}", m.raw));
            mail(ctx, conn, sess, st, m, size_limit).await;
        }
        Event::Rcpt(r) => {
            st.vars.set("smtp_command", format!("RCPT TO:{}", r.raw));
            rcpt(ctx, conn, sess, st, r).await;
        }
        Event::Data => data(ctx, conn, sess, st).await,
        Event::DataChunk(chunk) => data_chunk(ctx, conn, st, chunk, size_limit),
        Event::DataEnd(summary) => data_end(ctx, conn, sess, st, summary).await,
        Event::Quit => {
            let text = quit_acl(ctx, conn, st).await;
            // Logged before the slot is given back: a stopping daemon waits
            // for the slots, and the line must be written by then.
            log_end(ctx, conn, st, SmtpEnd::Quit);
            conn.slot.release();
            match text {
                Some(m) => replied(ctx, sess.respond(Reply::new(221, m))),
                None => replied(ctx, sess.accept_quit(&ctx.primary_hostname)),
            }
        }
        Event::Vrfy(arg) => vrfy::vrfy(ctx, conn, sess, st, &arg).await,
        Event::Expn(arg) => vrfy::expn(ctx, conn, sess, st, &arg).await,
        Event::Help(_) => {
            replied(ctx, sess.respond(help_reply(false, &[])));
        }
        Event::Etrn(arg) => etrn(ctx, conn, sess, st, &arg).await,
        Event::StartTls => {
            // Handled by the session loop (it needs the stream).
            replied(
                ctx,
                sess.respond(Reply::new(454, "TLS currently unavailable")),
            );
        }
        Event::Auth { mechanism, initial } => {
            auth_command(ctx, conn, sess, st, &mechanism, initial.as_deref()).await;
        }
        Event::AuthResponse(line) => super::auth::response(ctx, conn, sess, st, Some(&line)),
        Event::AuthResponseTooLong => super::auth::response(ctx, conn, sess, st, None),
        Event::Bdat { .. } => {
            // The first chunk of a message starts a new body.
            if !st.bdat {
                st.bdat = true;
                st.start_body();
            }
        }
        Event::Rset | Event::Noop => {}
        Event::Error(e) => {
            if e.synprot {
                let syntax = e.kind != oxim_smtp::ErrorKind::Sequence;
                log_synprot(ctx, conn, st, syntax, &e.line, &e.detail);
            }
            if e.closing && e.kind == oxim_smtp::ErrorKind::UnknownCommand {
                let last = e.line.trim_end();
                log_dropped(
                    ctx,
                    conn,
                    st,
                    &format!("too many unrecognized commands (last was \"{last}\")"),
                );
            } else if e.closing {
                log_end(ctx, conn, st, SmtpEnd::Other(&e.detail));
            }
        }
    }
}

/// HELO/EHLO: the host name lookup `helo_lookup_domains` asks for, the HELO
/// ACL, the greeting and the extensions offered.
async fn helo(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    ehlo: bool,
    name: String,
    size_limit: u64,
) {
    let peer_ip = conn.peer.map(|p| p.ip());
    st.helo = Some(name.clone());
    st.esmtp = ehlo;
    st.vars.set("sender_helo_name", name.clone());
    if let Some(ip) = peer_ip {
        if st.host_name.is_none() {
            let helo = name.to_ascii_lowercase();
            let list = &ctx.settings.helo_lookup_domains;
            if domain_option(ctx, st, "helo_lookup_domains", list, &helo) {
                st.host_name = lookup_host_name(ctx, ip).await;
                st.lookup_done = true;
                if let Some(n) = &st.host_name {
                    st.vars.set("sender_host_name", n.clone());
                }
            }
        }
    }
    let env = AclEnv {
        host_ip: peer_ip,
        host_name: st.host_name.as_deref(),
        sender: None,
        recipient: None,
    };
    st.acl.host_ident = super::conn::acl_ident(conn, st);
    let env = AclEnv {
        host_name: st.host_name.as_deref(),
        ..env
    };
    let o = check_acl(ctx, "acl_smtp_helo", &mut st.vars, None, &env, &mut st.acl).await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept) {
        replied(
            ctx,
            sess.reject(deny_reply(&o, 550, "Administrative prohibition")),
        );
        return;
    }
    let ip_text = peer_ip.map(|i| i.to_string());
    // A local session (-bs) greets its caller: `Hello <ident> at <name>`.
    let ident = conn.ident.as_deref();
    let greeting = hello_text(&name, st.host_name.as_deref(), ident, ip_text.as_deref());
    // The advertising lists, in Exim's order (traced under -bh).
    let (mut pipelining, mut chunking) = (false, false);
    let no_pipelining = st.acl.session_controls.no_pipelining;
    match (peer_ip, ehlo) {
        (Some(ip), true) => {
            host_option(ctx, st, "dsn_advertise_hosts", ip).await;
            pipelining =
                !no_pipelining && host_option(ctx, st, "pipelining_advertise_hosts", ip).await;
            chunking = host_option(ctx, st, "chunking_advertise_hosts", ip).await;
        }
        // A local session (-bs) is "no host": `*` matches it (Exim's
        // defaults advertise PIPELINING and CHUNKING to it).
        (None, true) => {
            pipelining = !no_pipelining && local_in_list(ctx, st, "pipelining_advertise_hosts");
            chunking = local_in_list(ctx, st, "chunking_advertise_hosts");
        }
        _ => {}
    }
    let ext = Extensions {
        size: Some(size_limit),
        eight_bit_mime: ctx.settings.accept_8bitmime,
        pipelining,
        chunking,
        prdr: ctx.settings.prdr_enable,
        pipe_connect: sess.pipe_connect_acceptable(),
        // oxim's replay-safe transactions, for clients that put a whole
        // transaction (BDAT LAST) into a TCP Fast Open SYN: offered with
        // early pipelining and CHUNKING (see `replay`).
        tx_token: pipelining && chunking && sess.pipe_connect_acceptable(),
        // Offered whenever the command's ACL is set, as in Exim.
        etrn: ehlo && !ctx.config.main.str("acl_smtp_etrn").trim().is_empty(),
        vrfy: ehlo && !ctx.config.main.str("acl_smtp_vrfy").trim().is_empty(),
        expn: ehlo && !ctx.config.main.str("acl_smtp_expn").trim().is_empty(),
        help: true,
        auth: if ehlo {
            super::auth::advertise(ctx, conn, st)
        } else {
            st.auth.advertised.clear();
            Vec::new()
        },
        starttls: st.tls.is_none()
            && peer_ip.is_some_and(|ip| {
                super::tls::advertise(ctx, ip, st.host_name.as_deref(), &st.vars)
            }),
        ..Extensions::default()
    };
    replied(
        ctx,
        sess.accept_ehlo(&ctx.primary_hostname, &greeting, &ext),
    );
}

/// MAIL FROM: who may choose the sender, the SIZE limit, the MAIL ACL.
async fn mail(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    m: MailFrom,
    size_limit: u64,
) {
    // A new message: its sender has not been verified yet.
    st.acl.sender_verified.clear();
    // Header lines and controls of an earlier transaction are not this
    // one's.
    st.acl.added_headers.clear();
    st.acl.removed_headers.clear();
    st.acl.message_controls = Default::default();
    st.acl.sender_verify_failed = None;
    let peer_ip = conn.peer.map(|p| p.ip());
    // An untrusted local caller's MAIL FROM stands during the SMTP
    // dialogue (ACLs, logs); the message gets the caller's own address
    // (see `data_end`), as in Exim.
    let sender = if m.from.is_empty() || m.from.contains('@') {
        m.from.clone()
    } else {
        ctx.qualify_recipient(&m.from)
    };
    if let (Some(sz), true) = (m.size, size_limit > 0) {
        if sz > size_limit {
            replied(
                ctx,
                sess.reject(Reply::new(552, "Message size exceeds maximum permitted")),
            );
            return;
        }
    }
    st.auth.mail_sender = None;
    st.vars.set("authenticated_sender", "");
    let prdr = if sess.prdr_requested() { "yes" } else { "no" };
    st.vars.set("prdr_requested", prdr);
    if let Some((_, Some(value))) = m.params.iter().find(|(k, _)| k == "AUTH") {
        if value != "<>" && !mail_auth_param(ctx, conn, sess, st, value).await {
            return;
        }
    }
    let env = AclEnv {
        host_ip: peer_ip,
        host_name: st.host_name.as_deref(),
        sender: Some(&sender),
        recipient: None,
    };
    let with_sender = |v: &mut Vars| {
        v.set("sender_address", sender.clone());
    };
    let o = check_acl(
        ctx,
        "acl_smtp_mail",
        &mut st.vars,
        Some(&with_sender),
        &env,
        &mut st.acl,
    )
    .await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept) {
        let what = match command_address(sess.last_command()) {
            Some(a) => format!("MAIL {a}"),
            None => format!("MAIL <{sender}>"),
        };
        let what = RejectWhat::Other(&what);
        refuse(ctx, conn, st, sess, &o, None, what, 550);
        return;
    }
    st.vars.set("sender_address", sender.clone());
    st.sender = Some(sender);
    st.body_8bitmime = m.body == Some(oxim_smtp::BodyType::EightBitMime);
    st.tx_token = m.tx_token.clone();
    st.recipients.clear();
    // $rcpt_count counts this transaction's RCPT commands.
    st.vars.set("rcpt_count", "0");
    st.vars.set("recipients_count", "0");
    st.submission = false;
    replied(ctx, sess.accept_mail());
}

/// RCPT TO: the RCPT ACL (without one, every recipient is refused over
/// TCP, as in Exim).
async fn rcpt(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    rc: RcptTo,
) {
    let peer_ip = conn.peer.map(|p| p.ip());
    let rcpt = ctx.qualify_recipient(&rc.to);
    st.acl.domains.clear();
    st.acl.local_parts.clear();
    let sender = st.sender.clone().unwrap_or_default();
    // Without an RCPT ACL Exim refuses every recipient over TCP.
    let env = AclEnv {
        host_ip: peer_ip,
        host_name: st.host_name.as_deref(),
        sender: Some(&sender),
        recipient: Some(&rcpt),
    };
    // $rcpt_count includes this command; $recipients_count counts those
    // accepted before it.
    let rcpt_count = st
        .vars
        .get("rcpt_count")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        + 1;
    st.vars.set("rcpt_count", rcpt_count.to_string());
    st.vars
        .set("recipients_count", st.recipients.len().to_string());
    // As in Exim, the ACL sees the local part lower-cased (`control =
    // caseful_local_part` restores it).
    let with_recipient = |v: &mut Vars| {
        v.set_address(&rcpt);
        let lower = crate::vars::split_address(&rcpt).0.to_lowercase();
        v.set("local_part", lower);
    };
    let checked = check_acl(
        ctx,
        "acl_smtp_rcpt",
        &mut st.vars,
        Some(&with_recipient),
        &env,
        &mut st.acl,
    )
    .await;
    sync_client_name(st);
    let outcome = match checked {
        Some(o) => Some(o),
        None if conn.peer.is_none() => None,
        None => Some(acl::AclOutcome::with_verdict(Verdict::Deny)),
    };
    match outcome {
        Some(o) if o.verdict != Verdict::Accept && o.verdict != Verdict::Discard => {
            let what = match command_address(sess.last_command()) {
                Some(a) => format!("RCPT {a}"),
                None => format!("RCPT <{rcpt}>"),
            };
            let what = RejectWhat::Other(&what);
            refuse(ctx, conn, st, sess, &o, Some(&sender), what, 550);
        }
        Some(o) if o.verdict == Verdict::Discard => {
            replied(ctx, sess.accept_rcpt());
        }
        o => {
            // `control = submission[/options]`: this message is a
            // submission (headers fixed up at reception).
            if o.as_ref().is_some_and(|o| {
                o.controls
                    .iter()
                    .any(|c| matches!(c, acl::control::Control::Submission(_)))
            }) {
                st.submission = true;
            }
            st.recipients.push(rcpt);
            replied(ctx, sess.accept_rcpt());
        }
    }
}

/// ETRN: only `-bh` goes through with it (tracing what it would run);
/// otherwise oxim refuses it.
async fn etrn(ctx: &Ctx, conn: &IncomingConn, sess: &mut ServerSession, st: &mut State, arg: &str) {
    if !conn.checking || acl_for(ctx, "acl_smtp_etrn", &st.vars).is_none() {
        replied(
            ctx,
            sess.respond(Reply::new(458, "Administrative prohibition")),
        );
        return;
    }
    let env = AclEnv {
        host_ip: conn.peer.map(|p| p.ip()),
        host_name: st.host_name.as_deref(),
        sender: None,
        recipient: None,
    };
    st.vars.set("smtp_command", sess.last_command().to_string());
    if ctx.selector.has(oxim_log::Selector::Etrn) {
        let from = host_ident(conn, st).unwrap_or_default();
        let from = from.trim_start_matches("H=");
        ctx.log_text(None, &format!("ETRN {arg} received from {from}"));
    }
    let o = check_acl(ctx, "acl_smtp_etrn", &mut st.vars, None, &env, &mut st.acl).await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept) {
        let what = format!("ETRN {arg}");
        refuse(ctx, conn, st, sess, &o, None, RejectWhat::Other(&what), 458);
        return;
    }
    if ctx.settings.smtp_etrn_command.is_none() && !arg.starts_with('#') {
        replied(
            ctx,
            sess.respond(Reply::new(501, "argument must begin with #")),
        );
        return;
    }
    st.acl
        .trace
        .plain(|| "ETRN command is: exim -R".to_string());
    st.acl
        .trace
        .plain(|| "ETRN command execution skipped".to_string());
    replied(ctx, sess.respond(Reply::new(250, "OK")));
}
