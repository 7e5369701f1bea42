//! SMTP AUTH on the server side (RFC 4954) with Exim's authenticator
//! drivers `plaintext` and `cram_md5`: which mechanisms EHLO offers, the
//! SASL exchange line by line, `server_condition`, `server_set_id`, the
//! replies and log lines Exim gives for each outcome, and `AUTH=` on MAIL.

use std::collections::VecDeque;

use oxim_log::{Dest, LogRecord};
use oxim_smtp::sasl;
use oxim_smtp::{Reply, ServerSession};

use crate::ctx::Ctx;
use crate::settings::{AuthMech, AuthSpec};
use crate::vars::Vars;

use super::conn::{host_and_ident, list_match_host, replied, AuthProgress, IncomingConn, State};

/// How many `$auth<n>` variables there are (Exim's AUTH_VARS).
const AUTH_VARS: usize = 4;
/// How many numeric variables an authenticator may set (EXPAND_MAXN).
const EXPAND_MAXN: usize = 20;

/// Where an exchange ended (Exim's return codes from the drivers).
enum Outcome {
    Ok,
    /// Log text, and the text after the user-visible `435 ...` (with a
    /// leading `: ` when there is one).
    Defer(String, String),
    Fail,
    Bad64,
    Cancelled,
    Unexpected,
}

/// One step of an exchange: another challenge, or the end.
enum Step {
    Challenge(Vec<u8>),
    Done(Outcome),
}

/// The mechanisms to list after `AUTH` in the EHLO reply (upper-cased by
/// the reply builder), remembering which were offered: `auth_advertise_hosts`
/// must match the client, then each server authenticator's
/// `server_advertise_condition`. Nothing once authenticated.
pub fn advertise(ctx: &Ctx, conn: &IncomingConn, st: &mut State) -> Vec<String> {
    st.auth.advertised.clear();
    let auths = &ctx.drivers.authenticators;
    if auths.is_empty() || st.auth.done.is_some() {
        return Vec::new();
    }
    let ip = conn.peer.map(|p| p.ip());
    // A local -bs session has no host: Exim matches an empty host then.
    let hosts_ok = match ip {
        Some(_) => list_match_host(
            ctx,
            "auth_advertise_hosts",
            ip,
            st.host_name.as_deref(),
            &st.vars,
        ),
        None => {
            // As in Exim, `*` (or an empty item) matches a local session.
            let list = &ctx.settings.auth_advertise_hosts;
            oxim_conf::expand(list, &st.vars)
                .is_ok_and(|l| oxim_conf::match_no_host(&l, &ctx.config, &st.vars).unwrap_or(false))
        }
    };
    if !hosts_ok {
        return Vec::new();
    }
    let mut names = Vec::new();
    for (i, a) in auths.iter().enumerate() {
        if !a.is_server() {
            continue;
        }
        let offered = match &a.advertise_condition {
            None => true,
            Some(c) => match oxim_conf::expand(c, &st.vars) {
                Ok(v) => truthy(&v),
                Err(e) if e.is_forced_fail() => false,
                Err(e) => {
                    ctx.log_text(
                        None,
                        &format!(
                            "failed to expand server_advertise_condition in {} authenticator: {e}",
                            a.name
                        ),
                    );
                    false
                }
            },
        };
        if offered {
            st.auth.advertised.push(i);
            names.push(a.public_name.clone());
        }
    }
    names
}

fn truthy(v: &str) -> bool {
    let t = v.trim();
    !(t.is_empty() || t == "0" || t.eq_ignore_ascii_case("no") || t.eq_ignore_ascii_case("false"))
}

/// `AUTH mechanism [initial-response]` (the AUTH ACL has accepted it).
pub fn command(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    mechanism: &str,
    initial: Option<&str>,
) {
    st.vars.set("authentication_failed", "1");
    let unadvertised_ok = sess.config().allow_auth_unadvertised;
    let found = ctx
        .drivers
        .authenticators
        .iter()
        .enumerate()
        .find(|(i, a)| {
            a.public_name.eq_ignore_ascii_case(mechanism)
                && a.is_server()
                && (st.auth.advertised.contains(i) || unadvertised_ok)
        })
        .map(|(i, _)| i);
    let Some(index) = found else {
        replied(
            ctx,
            sess.respond(Reply::new(
                504,
                format!("{mechanism} authentication mechanism not supported"),
            )),
        );
        return;
    };
    let spec = &ctx.drivers.authenticators[index];
    let mut progress = AuthProgress {
        index,
        items: Vec::new(),
        prompts: VecDeque::new(),
        prompts_done: 0,
        challenge: None,
    };
    let initial = initial.unwrap_or("");
    let step = match &spec.mech {
        AuthMech::Plaintext { server_prompts, .. } => {
            plaintext_start(ctx, st, &mut progress, server_prompts.as_deref(), initial)
        }
        AuthMech::CramMd5 { .. } if !initial.is_empty() => Step::Done(Outcome::Unexpected),
        AuthMech::CramMd5 { .. } => {
            let challenge = if ctx.harness.active {
                // Exim's test harness always sends the RFC's example.
                "<1896.697170952@postoffice.reston.mci.net>".to_string()
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                format!("<{}.{now}@{}>", std::process::id(), ctx.primary_hostname)
            };
            progress.challenge = Some(challenge.clone());
            Step::Challenge(challenge.into_bytes())
        }
    };
    next(ctx, conn, sess, st, progress, step);
}

/// A line after a `334` (`None`: the line was too long).
pub fn response(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    line: Option<&str>,
) {
    let Some(mut progress) = st.auth.progress.take() else {
        // The session only reports a response after our 334.
        replied(
            ctx,
            sess.respond(Reply::new(503, "no authentication in progress")),
        );
        return;
    };
    let step = match line {
        None => Step::Done(Outcome::Bad64),
        Some("*") => Step::Done(Outcome::Cancelled),
        Some(text) => {
            let spec = &ctx.drivers.authenticators[progress.index];
            match &spec.mech {
                AuthMech::Plaintext { .. } => match sasl::b64_decode(text) {
                    None => Step::Done(Outcome::Bad64),
                    Some(data) => {
                        // Each response gives at least one item.
                        for item in sasl::split_at_nul(&data) {
                            if progress.items.len() < EXPAND_MAXN {
                                progress.items.push(item);
                            }
                        }
                        plaintext_prompt(ctx, st, &mut progress)
                    }
                },
                AuthMech::CramMd5 { server_secret, .. } => {
                    let challenge = progress.challenge.clone().unwrap_or_default();
                    cram_md5_check(
                        ctx,
                        st,
                        &mut progress,
                        spec,
                        server_secret.as_deref(),
                        &challenge,
                        text,
                    )
                }
            }
        }
    };
    next(ctx, conn, sess, st, progress, step);
}

fn next(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    progress: AuthProgress,
    step: Step,
) {
    match step {
        Step::Challenge(bytes) => {
            replied(ctx, sess.respond(Reply::new(334, sasl::b64_encode(&bytes))));
            st.auth.progress = Some(progress);
        }
        Step::Done(outcome) => finish(ctx, conn, sess, st, progress, outcome),
    }
}

/// Put the items in `$auth1`.. and `$1`.. for an expansion.
fn set_auth_vars(vars: &mut Vars, items: &[String]) {
    for i in 0..AUTH_VARS {
        vars.set(
            &format!("auth{}", i + 1),
            items.get(i).cloned().unwrap_or_default(),
        );
    }
    let mut numeric = vec![String::new()];
    numeric.extend(items.iter().cloned());
    vars.set_numeric(numeric);
}

fn clear_auth_vars(vars: &mut Vars) {
    for i in 0..AUTH_VARS {
        vars.set(&format!("auth{}", i + 1), "");
    }
    vars.set_numeric(Vec::new());
}

fn plaintext_start(
    ctx: &Ctx,
    st: &mut State,
    progress: &mut AuthProgress,
    prompts: Option<&str>,
    initial: &str,
) -> Step {
    if let Some(p) = prompts {
        match oxim_conf::expand(p, &st.vars) {
            Ok(list) => {
                progress.prompts = oxim_conf::lists::list_items(&list).into();
            }
            Err(e) => return Step::Done(Outcome::Defer(e.to_string(), String::new())),
        }
    }
    if initial == "=" {
        progress.items.push(String::new());
    } else if !initial.is_empty() {
        let Some(data) = sasl::b64_decode(initial) else {
            return Step::Done(Outcome::Bad64);
        };
        if !data.is_empty() {
            progress.items = sasl::split_at_nul(&data);
            progress.items.truncate(EXPAND_MAXN);
        }
    }
    plaintext_prompt(ctx, st, progress)
}

fn plaintext_prompt(ctx: &Ctx, st: &mut State, progress: &mut AuthProgress) -> Step {
    // Prompts already answered (a response may carry several items
    // separated by NULs) are not sent.
    while progress.prompts_done < progress.items.len() && progress.prompts.pop_front().is_some() {
        progress.prompts_done += 1;
    }
    if progress.items.len() < EXPAND_MAXN {
        if let Some(p) = progress.prompts.pop_front() {
            progress.prompts_done += 1;
            return Step::Challenge(p.into_bytes());
        }
    }
    let spec = &ctx.drivers.authenticators[progress.index];
    set_auth_vars(&mut st.vars, &progress.items);
    Step::Done(server_condition(spec, &st.vars, false))
}

/// `server_condition`: unset lets everything through (for plaintext it is
/// always set: it is what makes it a server); "yes"/"true"/"1" pass,
/// empty/"no"/"false"/"0" fail, anything else defers with that text.
fn server_condition(spec: &AuthSpec, vars: &Vars, _unused: bool) -> Outcome {
    let Some(cond) = &spec.server_condition else {
        return Outcome::Ok;
    };
    match oxim_conf::expand(cond, vars) {
        Err(e) if e.is_forced_fail() => Outcome::Fail,
        Err(e) => Outcome::Defer(e.to_string(), String::new()),
        Ok(v) => {
            if v.is_empty()
                || v == "0"
                || v.eq_ignore_ascii_case("no")
                || v.eq_ignore_ascii_case("false")
            {
                Outcome::Fail
            } else if v == "1" || v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true") {
                Outcome::Ok
            } else {
                Outcome::Defer(v.clone(), format!(": {v}"))
            }
        }
    }
}

fn cram_md5_check(
    _ctx: &Ctx,
    st: &mut State,
    progress: &mut AuthProgress,
    spec: &AuthSpec,
    server_secret: Option<&str>,
    challenge: &str,
    text: &str,
) -> Step {
    let Some(data) = sasl::b64_decode(text) else {
        return Step::Done(Outcome::Bad64);
    };
    let Some((name, digest)) = sasl::cram_md5_split(&data) else {
        // The user name is still known for the log when there is one.
        let name_end = data
            .iter()
            .position(|c| c.is_ascii_whitespace())
            .unwrap_or(data.len());
        progress.items = vec![String::from_utf8_lossy(&data[..name_end]).into_owned()];
        return Step::Done(Outcome::Fail);
    };
    progress.items = vec![name];
    set_auth_vars(&mut st.vars, &progress.items);
    let secret = match oxim_conf::expand(server_secret.unwrap_or(""), &st.vars) {
        Ok(s) => s,
        Err(e) if e.is_forced_fail() => return Step::Done(Outcome::Fail),
        Err(e) => return Step::Done(Outcome::Defer(e.to_string(), String::new())),
    };
    let expected = sasl::cram_md5_digest(secret.as_bytes(), challenge.as_bytes());
    if !sasl::cram_md5_matches(digest, &expected) {
        return Step::Done(Outcome::Fail);
    }
    Step::Done(server_condition(spec, &st.vars, false))
}

/// The end of an exchange: `server_set_id`, the reply, the log line, and
/// on success the session's authenticated state.
fn finish(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    progress: AuthProgress,
    outcome: Outcome,
) {
    let spec = &ctx.drivers.authenticators[progress.index];
    // server_set_id is expanded whatever the outcome: a failure's log line
    // names the id tried.
    set_auth_vars(&mut st.vars, &progress.items);
    let mut set_id_error = None;
    let set_id = spec
        .server_set_id
        .as_ref()
        .and_then(|s| match oxim_conf::expand(s, &st.vars) {
            Ok(v) => Some(printing(&v)),
            Err(e) => {
                set_id_error = Some(e.to_string());
                None
            }
        });
    clear_auth_vars(&mut st.vars);
    let note = match &set_id {
        Some(id) if !id.is_empty() => format!(" (set_id={id})"),
        _ => String::new(),
    };
    let (reply, log) = match outcome {
        Outcome::Ok if spec.server_set_id.is_none() || set_id.is_some() => {
            st.vars.set("sender_host_authenticated", spec.name.clone());
            st.vars.set("authentication_failed", "0");
            st.vars.set("authenticated_fail_id", "");
            if let Some(id) = &set_id {
                st.vars.set("authenticated_id", id.clone());
            }
            st.auth.done = Some((spec.name.clone(), set_id.clone()));
            st.auth.pubname = Some(spec.public_name.clone());
            st.vars.set_auth_pubname(Some(spec.public_name.clone()));
            replied(
                ctx,
                sess.respond(Reply::new(235, "Authentication succeeded")),
            );
            return;
        }
        // Authenticated, but server_set_id did not expand: a temporary
        // error, as in Exim.
        Outcome::Ok => (
            "435 Unable to authenticate at present".to_string(),
            format!(
                "435 Unable to authenticate at present: {}",
                set_id_error.unwrap_or_default()
            ),
        ),
        Outcome::Defer(msg, user) => {
            remember_fail_id(st, &set_id);
            (
                format!("435 Unable to authenticate at present{user}"),
                format!("435 Unable to authenticate at present{note}: {msg}"),
            )
        }
        Outcome::Bad64 => (
            "501 Invalid base64 data".to_string(),
            "501 Invalid base64 data".to_string(),
        ),
        Outcome::Cancelled => (
            "501 Authentication cancelled".to_string(),
            "501 Authentication cancelled".to_string(),
        ),
        Outcome::Unexpected => (
            "553 Initial data not expected".to_string(),
            "553 Initial data not expected".to_string(),
        ),
        Outcome::Fail => {
            remember_fail_id(st, &set_id);
            (
                "535 Incorrect authentication data".to_string(),
                format!("535 Incorrect authentication data{note}"),
            )
        }
    };
    let code: u16 = reply[..3].parse().unwrap_or(535);
    replied(ctx, sess.respond(Reply::new(code, &reply[4..])));
    let text = format!(
        "{} authenticator failed for {}: {log}",
        spec.name,
        host_and_ident(ctx, conn, st)
    );
    ctx.log(&LogRecord::Text {
        id: None,
        text: &text,
        dest: Dest {
            main: true,
            reject: true,
            panic: false,
        },
    });
}

fn remember_fail_id(st: &mut State, set_id: &Option<String>) {
    if let Some(id) = set_id {
        st.vars.set("authenticated_fail_id", id.clone());
    }
}

/// Exim keeps only printing characters in an id (it goes into the spool
/// file and log lines): others are shown as escapes.
fn printing(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The value of `AUTH=<xtext>` on MAIL, decoded; `None` for undecodable
/// xtext or a control character (a line break above all, which could never
/// be a mailbox): Exim's `501 invalid data for AUTH`.
pub fn decode_mail_param(value: &str) -> Option<String> {
    sasl::xtext_decode(value).filter(|d| !d.chars().any(char::is_control))
}

/// Whether `AUTH=` on MAIL is kept (`$authenticated_sender`): `accepted`
/// is the verdict of `acl_smtp_mailauth` when it is set, else whether
/// the client authenticated; then the authenticator's
/// `server_mail_auth_condition` must pass. Otherwise the value is
/// ignored with Exim's log line (`why` says what refused it).
pub fn mail_param(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    value: &str,
    decoded: String,
    accepted: bool,
    why: &str,
) {
    st.auth.mail_sender = None;
    let why = if !accepted {
        Some(why.to_string())
    } else {
        match &st.auth.done {
            None => None,
            Some((name, id)) => {
                let cond = ctx
                    .drivers
                    .authenticators
                    .iter()
                    .find(|a| &a.name == name)
                    .and_then(|a| a.mail_auth_condition.clone());
                let mut vars = st.vars.clone();
                vars.set("authenticated_sender", decoded.clone());
                match cond.map(|c| oxim_conf::expand(&c, &vars)) {
                    None => None,
                    Some(Ok(v)) if truthy(&v) => None,
                    Some(_) => Some(match id {
                        Some(id) => {
                            format!("server_mail_auth_condition failed: authenticated ID=\"{id}\"")
                        }
                        None => "server_mail_auth_condition failed".to_string(),
                    }),
                }
            }
        }
    };
    match why {
        None => {
            st.vars.set("authenticated_sender", decoded.clone());
            st.auth.mail_sender = Some(decoded);
        }
        Some(why) => {
            st.vars.set("authenticated_sender", "");
            ctx.log_text(
                None,
                &format!(
                    "ignoring AUTH={value} from {} ({why})",
                    host_and_ident(ctx, conn, st)
                ),
            );
        }
    }
}
