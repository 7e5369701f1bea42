//! Access control lists: evaluate an ACL's statements in order and produce a
//! verdict. Rejections are data (a verdict with texts), not errors.

use std::net::IpAddr;

use oxim_conf::{Acl, AclCondition, AclVerb, Probe, Trace};

mod callout;
mod conditions;
pub mod control;
pub mod dnslists;
mod header_sender;
mod headers;
mod verify;

pub(crate) use verify::route_for_verify;
pub use verify::SenderVerifyFailure;

use conditions::*;
use headers::*;
use verify::*;

use crate::condition::ConditionError;
use crate::ctx::Ctx;
use crate::vars::{split_address, Vars};

/// How an ACL ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Deny,
    Defer,
    Discard,
    Drop,
}

/// The verdict plus the texts set by `message` and `log_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclOutcome {
    pub verdict: Verdict,
    /// Text for the SMTP reply (`message =`).
    pub message: Option<String>,
    /// Text for the log (`log_message =`).
    pub log_message: Option<String>,
    /// `control = ...` settings reached on the way.
    pub controls: Vec<control::Control>,
    /// Lines to write to the main log (`logwrite =`).
    pub logwrites: Vec<String>,
    /// Why a verification failed, the reply's text when no `message` is
    /// set (`550 Unrouteable address`).
    pub verify_message: Option<String>,
    /// A verification's text for the client when it differs from the
    /// log's (a callout's `Callout verification failed:` and the reply).
    pub verify_user_message: Option<String>,
    /// The verification's text may be shown with a temporary refusal (a
    /// callout that could not complete).
    pub verify_temp_details: bool,
    /// The verification's text is for the log only (a header syntax
    /// error without `smtp_return_error_details`).
    pub verify_log_only: bool,
    /// The verb of the statement that decided (`None`: the implicit deny
    /// at the end); the QUIT and not-QUIT ACLs may not refuse by a verb.
    pub decided_by: Option<AclVerb>,
    /// `log_message` texts of `warn` statements that held (logged as
    /// `<host> Warning: <text>`).
    pub warnings: Vec<String>,
    /// The `message` may be shown with a temporary refusal (a `defer`
    /// verb decided; Exim's `acl_temp_details`).
    pub temp_details: bool,
    /// Header lines to add to the message (`add_header =`, and the
    /// `message` of a `warn` that held), expanded, each possibly with a
    /// position prefix (`:at_start:` ...) and several lines.
    pub added_headers: Vec<String>,
    /// `remove_header =` lists (expanded), in the order reached.
    pub removed_headers: Vec<String>,
    /// The current statement's `message` and `log_message`, unexpanded:
    /// as in Exim they are expanded only once the statement has decided
    /// (so they can use `$dnslist_domain` and the like).
    pub pending: (Option<String>, Option<String>),
}

impl AclOutcome {
    fn new(verdict: Verdict) -> Self {
        AclOutcome {
            verdict,
            message: None,
            log_message: None,
            controls: Vec::new(),
            logwrites: Vec::new(),
            verify_message: None,
            verify_user_message: None,
            verify_temp_details: false,
            verify_log_only: false,
            decided_by: None,
            warnings: Vec::new(),
            temp_details: false,
            added_headers: Vec::new(),
            removed_headers: Vec::new(),
            pending: (None, None),
        }
    }

    /// A fresh outcome with `verdict`.
    pub fn with_verdict(verdict: Verdict) -> Self {
        Self::new(verdict)
    }
}

/// Expands the statement's pending `message` and `log_message` (Exim does
/// it when the statement's result is one that uses them). An empty result
/// leaves the text set before; a failed expansion is logged and ignored.
fn resolve_texts(ctx: &Ctx, vars: &Vars, out: &mut AclOutcome) {
    let (m, l) = std::mem::take(&mut out.pending);
    for (raw, is_log) in [(m, false), (l, true)] {
        let Some(raw) = raw else { continue };
        match oxim_conf::expand_with_config(&raw, vars, &ctx.config) {
            Ok(v) if v.is_empty() => {}
            Ok(v) if is_log => out.log_message = Some(v),
            Ok(v) => out.message = Some(v),
            Err(e) if e.is_forced_fail() => {}
            Err(e) => ctx.log_text(
                None,
                &format!("failed to expand ACL message \"{raw}\": {e}"),
            ),
        }
    }
}

/// The ACL an `acl_*` option names. A value starting with an ACL verb
/// is the text of an inline ACL, used as written (its conditions are
/// expanded when evaluated, once). Otherwise the value is expanded (it may
/// choose an ACL by condition) and must then name an ACL: expanded text is
/// never parsed as ACL text, so data in a variable can never become policy or
/// be expanded twice.
pub fn named_by_option(ctx: &Ctx, option: &str, vars: &Vars) -> Option<oxim_conf::Acl> {
    let raw = ctx.config.main.str(option).trim();
    if raw.is_empty() {
        return None;
    }
    let first = raw.split_whitespace().next().unwrap_or("");
    if oxim_conf::AclVerb::from_name(first).is_some() || !raw.contains('$') {
        return ctx.config.resolve_acl(raw);
    }
    let name = match oxim_conf::expand(raw, vars) {
        Ok(v) => v.trim().to_string(),
        Err(e) => {
            ctx.log_text(None, &format!("failed to expand {option}: {e}"));
            String::new()
        }
    };
    match ctx.config.acl(&name) {
        Some(acl) => Some(acl.clone()),
        None if name.is_empty() => None,
        None => {
            ctx.log_text(None, &format!("{option}: ACL \"{name}\" not found"));
            // Deny rather than accept when the policy cannot be found.
            oxim_conf::acl::parse_inline(option, "deny").ok()
        }
    }
}

/// The facts an ACL can test.
#[derive(Clone, Copy)]
pub struct AclEnv<'a> {
    pub host_ip: Option<IpAddr>,
    pub host_name: Option<&'a str>,
    pub sender: Option<&'a str>,
    /// The recipient being tested (RCPT ACL).
    pub recipient: Option<&'a str>,
}

enum Cond {
    True,
    False,
    /// A lookup could not complete (Exim's DEFER); the text is for the log.
    Defer(String),
    /// A verification could not complete: its text (in the outcome's
    /// `verify_message`) is both the reply and the log reason.
    VerifyDefer,
    Error(ConditionError),
}

/// Conditions whose value Exim does not expand before testing (the list
/// matchers expand lists themselves; `acl` expands the name).
fn expanded_later(name: &str) -> bool {
    matches!(
        name,
        "acl"
            | "authenticated"
            | "dnslists"
            | "domains"
            | "encrypted"
            | "hosts"
            | "local_parts"
            | "recipients"
            | "sender_domains"
            | "senders"
    )
}

/// `check <name> = <raw>`, and the expanded value below it when it differs.
fn trace_check(trace: &mut Trace, c: &AclCondition, value: &str) {
    if !trace.on() {
        return;
    }
    let neg = if c.negated { "!" } else { "" };
    let (lhs, raw, shown) = if c.name == "set" {
        let (var, raw) = c.value.split_once('=').unwrap_or((c.value.as_str(), ""));
        let shown = value.split_once('=').map_or(value, |(_, v)| v).trim();
        (
            format!("check set {} ", var.trim()),
            raw.trim().to_string(),
            shown.to_string(),
        )
    } else {
        (
            format!("check {neg}{} ", c.name),
            c.value.clone(),
            value.to_string(),
        )
    };
    trace.line(|| format!("{lhs}= {raw}"));
    if !expanded_later(&c.name) && shown != raw {
        trace.plain(|| format!("{}= {shown}", " ".repeat(lhs.len())));
    }
}

/// What `-bh` traces, with the named-list results Exim keeps: per
/// connection for hosts, per message for senders, per recipient for
/// domains and local parts (the caller clears them).
#[derive(Debug, Default)]
pub struct AclTrace {
    pub trace: Trace,
    pub hosts: oxim_conf::ListCache,
    pub senders: oxim_conf::ListCache,
    pub domains: oxim_conf::ListCache,
    pub local_parts: oxim_conf::ListCache,
    /// The client as the log names it (`H=(helo) [ip]`): `warn` statements
    /// log their `log_message` with it as they hold.
    pub host_ident: Option<String>,
    /// The client's host name as found so far (host lists look it up when
    /// they need it).
    pub client: crate::host_lists::ClientName,
    /// Sender verifications done for this message, with their failures
    /// (the caller clears them at each new message).
    pub sender_verified: Vec<(String, Option<SenderVerifyFailure>)>,
    /// The failed sender verification that the next refusal reports.
    pub sender_verify_failed: Option<SenderVerifyFailure>,
    /// DNS black list lookups done in this session.
    pub dnsbl: dnslists::DnsblCache,
    /// Header lines the MAIL, RCPT, predata and DATA ACLs of the current
    /// message asked for (see [`AclOutcome::added_headers`]).
    pub added_headers: Vec<String>,
    /// Batched SMTP (-bS): none of the SMTP ACLs run (Exim runs only the
    /// non-SMTP ACLs for it; "batched SMTP is not really SMTP").
    pub no_smtp_acls: bool,
    /// `remove_header` lists of those ACLs.
    pub removed_headers: Vec<String>,
    /// Controls of the current message (`freeze`, `queue_only`, ...);
    /// the caller resets them at each new message.
    pub message_controls: control::MessageControls,
    /// Controls for the rest of the connection (`no_pipelining`, ...).
    pub session_controls: control::SessionControls,
    /// Set for the ACLs of a message that does not come over SMTP
    /// (`acl_not_smtp_start`: `"non-SMTP-start"`, `acl_not_smtp`:
    /// `"non-SMTP"`, Exim's names): conditions about an SMTP client or
    /// recipient are errors there, as in Exim.
    pub not_smtp: Option<&'static str>,
}

/// A refusal decided after a failed verification says why, unless the
/// statement gave its own texts.
fn apply_verify_message(out: &mut AclOutcome) {
    let log = out.verify_message.take();
    let log_only = std::mem::take(&mut out.verify_log_only);
    let user = out
        .verify_user_message
        .take()
        .or_else(|| if log_only { None } else { log.clone() });
    if out.message.is_none() {
        out.message = user;
    }
    if out.log_message.is_none() {
        out.log_message = log;
    }
}

fn yielded(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "ACCEPT",
        Verdict::Deny => "DENY",
        Verdict::Defer => "DEFER",
        Verdict::Discard => "DISCARD",
        Verdict::Drop => "DROP",
    }
}

impl AclTrace {
    /// `SMTP connection from <client>`, as Exim describes the session in
    /// some log lines.
    pub fn connection(&self) -> String {
        self.host_ident
            .as_deref()
            .and_then(|h| h.strip_prefix("H="))
            .map(|h| format!("SMTP connection from {h}"))
            .unwrap_or_default()
    }
}

/// Evaluate `acl`. `vars` receives `set` variables; `t` takes Exim's
/// `-bh` trace of each statement and condition (when on) and keeps the
/// named-list results.
pub async fn eval_traced(
    ctx: &Ctx,
    acl: &Acl,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    t: &mut AclTrace,
) -> AclOutcome {
    let named = ctx.config.acl(&acl.name).is_some();
    let acl_name = if named {
        t.trace.line(|| format!("using ACL \"{}\"", acl.name));
        format!("ACL {}", acl.name)
    } else {
        "inline ACL".to_string()
    };
    let mut out = AclOutcome::new(Verdict::Deny);
    for st in &acl.statements {
        // As in Exim, a verification's texts live until the next
        // statement starts (the implicit deny at the end uses the last).
        out.verify_message = None;
        out.verify_user_message = None;
        out.verify_temp_details = false;
        out.verify_log_only = false;
        let verb = st.verb.name();
        t.trace.line(|| {
            let mut l = format!("processing {acl_name} \"{verb}\"");
            if let Some((file, line)) = &st.source {
                l.push_str(&format!(" ({file} {line})"));
            }
            l
        });
        let mut all_true = true;
        let mut deferred = false;
        let mut after_endpass = false;
        for c in &st.conditions {
            if c.name == "endpass" {
                after_endpass = true;
                continue;
            }
            match condition(ctx, c, vars, env, &mut out, t).await {
                Cond::True => {}
                Cond::False => {
                    all_true = false;
                    break;
                }
                deferral @ (Cond::Defer(_) | Cond::VerifyDefer) => {
                    t.trace
                        .line(|| format!("{verb}: condition test deferred in {acl_name}"));
                    if st.verb == AclVerb::Warn {
                        all_true = false;
                        deferred = true;
                        break;
                    }
                    resolve_texts(ctx, vars, &mut out);
                    out.verdict = Verdict::Defer;
                    // smtp_return_error_details lets a temporary refusal
                    // show why (Exim's acl_temp_details).
                    out.temp_details |= ctx.settings.smtp_return_error_details;
                    if let Cond::Defer(e) = deferral {
                        out.log_message = Some(e);
                    } else {
                        // The verification's text is both reply and reason
                        // (a callout may have its own text for the reply,
                        // which it lets a temporary refusal show).
                        out.temp_details |= std::mem::take(&mut out.verify_temp_details);
                        apply_verify_message(&mut out);
                    }
                    return out;
                }
                Cond::Error(e) => {
                    t.trace
                        .line(|| format!("{verb}: condition test error in {acl_name}"));
                    resolve_texts(ctx, vars, &mut out);
                    out.verdict = Verdict::Defer;
                    out.log_message = Some(e.to_string());
                    return out;
                }
            }
        }
        // The texts apply when the statement decides (or a warn holds).
        let decides = match st.verb {
            AclVerb::Require => !all_true,
            AclVerb::Accept => all_true || after_endpass,
            _ => all_true,
        };
        if decides {
            resolve_texts(ctx, vars, &mut out);
        } else {
            out.pending = (None, None);
        }
        if !deferred {
            let result = if all_true { "succeeded" } else { "failed" };
            t.trace
                .line(|| format!("{verb}: condition test {result} in {acl_name}"));
        }
        let verdict = match (st.verb, all_true) {
            (AclVerb::Accept, true) => Some(Verdict::Accept),
            (AclVerb::Accept, false) if after_endpass => {
                t.trace
                    .line(|| "accept: endpass encountered - denying access".into());
                apply_verify_message(&mut out);
                out.verdict = Verdict::Deny;
                out.decided_by = Some(st.verb);
                return out;
            }
            (AclVerb::Deny, true) => Some(Verdict::Deny),
            (AclVerb::Defer, true) => Some(Verdict::Defer),
            (AclVerb::Discard, true) => Some(Verdict::Discard),
            (AclVerb::Drop, true) => Some(Verdict::Drop),
            (AclVerb::Require, false) => {
                apply_verify_message(&mut out);
                t.trace.line(|| format!("end of {acl_name}: not OK"));
                out.verdict = Verdict::Deny;
                out.decided_by = Some(st.verb);
                return out;
            }
            _ => None,
        };
        if let Some(v) = verdict {
            out.temp_details = v == Verdict::Defer;
            apply_verify_message(&mut out);
            t.trace
                .line(|| format!("end of {acl_name}: {}", yielded(v)));
            out.verdict = v;
            out.decided_by = Some(st.verb);
            return out;
        }
        if st.verb == AclVerb::Warn && all_true {
            // A warn's `message` adds a header line, as add_header does
            // (Exim's older usage, still honoured).
            let message = out.message.take();
            if let Some(l) = out.log_message.take() {
                if message.as_deref() != Some(l.as_str()) {
                    match &t.host_ident {
                        Some(h) => ctx.log_text(None, &format!("{h} Warning: {l}")),
                        None => out.warnings.push(l),
                    }
                }
            }
            if let Some(m) = message {
                out.added_headers.push(m);
            }
        }
        // Texts set by a statement that did not decide do not carry over,
        // except for warn, whose side effects stand.
        if st.verb != AclVerb::Warn {
            out.message = None;
            out.log_message = None;
        }
    }
    // Falling off the end is an implicit deny.
    t.trace.line(|| format!("end of {acl_name}: implicit DENY"));
    apply_verify_message(&mut out);
    out.verdict = Verdict::Deny;
    out
}
