//! Access control lists: evaluate an ACL's statements in order and produce a
//! verdict. Rejections are data (a verdict with texts), not errors.

use std::net::IpAddr;

use oxim_conf::{Acl, AclCondition, AclVerb, Probe, Trace};

pub mod dnslists;
mod header_sender;

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
    /// `control = no_pipelining` and friends seen on the way.
    pub controls: Vec<String>,
    /// Lines to write to the main log (`logwrite =`).
    pub logwrites: Vec<String>,
    /// Why a verification failed, the reply's text when no `message` is
    /// set (`550 Unrouteable address`).
    pub verify_message: Option<String>,
    /// `log_message` texts of `warn` statements that held (logged as
    /// `<host> Warning: <text>`).
    pub warnings: Vec<String>,
    /// The `message` may be shown with a temporary refusal (a `defer`
    /// verb decided; Exim's `acl_temp_details`).
    pub temp_details: bool,
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
            warnings: Vec::new(),
            temp_details: false,
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

async fn condition(
    ctx: &Ctx,
    c: &AclCondition,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    out: &mut AclOutcome,
    t: &mut AclTrace,
) -> Cond {
    match c.name.as_str() {
        "message" => {
            t.trace.line(|| format!("  message: {}", c.value));
            out.pending.0 = Some(c.value.clone());
            return Cond::True;
        }
        "log_message" => {
            t.trace.line(|| format!("l_message: {}", c.value));
            out.pending.1 = Some(c.value.clone());
            return Cond::True;
        }
        _ => {}
    }
    let value = match oxim_conf::expand_with_config(&c.value, &*vars, &ctx.config) {
        Ok(v) => v,
        Err(e) if e.is_forced_fail() => return Cond::False,
        Err(source) => {
            return Cond::Error(ConditionError::AclString {
                text: c.value.clone(),
                source,
            })
        }
    };
    trace_check(&mut t.trace, c, &value);
    let cfg = &ctx.config;
    let result: Result<bool, ConditionError> = match c.name.as_str() {
        "logwrite" => {
            out.logwrites.push(value);
            return Cond::True;
        }
        "control" => {
            out.controls.push(value);
            return Cond::True;
        }
        "set" => {
            if let Some((name, v)) = value.split_once('=') {
                let name = name.trim().trim_start_matches('$');
                vars.set(name, v.trim());
            }
            return Cond::True;
        }
        "delay" => {
            // Exim's delay modifier: hold this client up (others go on).
            match oxim_conf::options::parse_time(value.trim()) {
                Some(secs) => {
                    tokio::time::sleep(std::time::Duration::from_secs(secs.min(3600))).await;
                    return Cond::True;
                }
                None => return Cond::Error(ConditionError::BadDelay(value)),
            }
        }
        "add_header" | "remove_header" | "endpass" => return Cond::True,
        "hosts" => match env.host_ip {
            Some(ip) => {
                let connection = t.connection();
                if t.client.name.is_none() {
                    t.client.name = env.host_name.map(str::to_string);
                }
                let key = ip.to_string();
                let mut p = Probe::new(&mut t.trace, "host");
                p.want_value = true;
                p.key = Some(&key);
                p.cache = Some(&mut t.hosts);
                let r = crate::host_lists::match_client(
                    ctx,
                    &value,
                    ip,
                    &mut t.client,
                    vars,
                    &connection,
                    &mut p,
                )
                .await;
                match r {
                    Err(oxim_conf::ListError::Defer(why)) => return Cond::Defer(why),
                    r => r.map_err(ConditionError::from),
                }
            }
            // Locally submitted messages match an empty item only.
            None => Ok(value.split(':').any(|i| i.trim().is_empty())),
        },
        "domains" => {
            let d = env.recipient.map(|r| split_address(r).1).unwrap_or("");
            let mut p = Probe::new(&mut t.trace, d);
            p.want_value = true;
            p.cache = Some(&mut t.domains);
            oxim_conf::match_domain_probe(&value, d, cfg, &*vars, &mut p)
                .map_err(ConditionError::from)
        }
        "local_parts" => {
            let l = env.recipient.map(|r| split_address(r).0).unwrap_or("");
            let mut p = Probe::new(&mut t.trace, l);
            p.want_value = true;
            p.cache = Some(&mut t.local_parts);
            oxim_conf::match_local_part_probe(&value, l, cfg, &*vars, &mut p)
                .map_err(ConditionError::from)
        }
        "senders" => {
            let a = env.sender.unwrap_or("");
            let mut p = Probe::new(&mut t.trace, a);
            p.want_value = true;
            p.cache = Some(&mut t.senders);
            oxim_conf::match_address_probe(&value, a, cfg, &*vars, &mut p)
                .map_err(ConditionError::from)
        }
        "recipients" => {
            let a = env.recipient.unwrap_or("");
            let mut p = Probe::new(&mut t.trace, a);
            p.want_value = true;
            oxim_conf::match_address_probe(&value, a, cfg, &*vars, &mut p)
                .map_err(ConditionError::from)
        }
        "condition" => {
            let t = value.trim();
            if t.is_empty()
                || t == "0"
                || t.eq_ignore_ascii_case("no")
                || t.eq_ignore_ascii_case("false")
            {
                Ok(false)
            } else {
                Ok(true)
            }
        }
        // True when the session authenticated with an authenticator whose
        // instance name is in the list.
        "authenticated" => match vars
            .get("sender_host_authenticated")
            .filter(|n| !n.is_empty())
            .map(str::to_string)
        {
            Some(name) => {
                oxim_conf::match_domain(&value, &name, cfg, &*vars).map_err(ConditionError::from)
            }
            None => Ok(false),
        },
        "dnslists" => {
            if value != c.value {
                t.trace.line(|| format!("expanded list: {value}"));
            }
            let mut logs = Vec::new();
            let r = dnslists::check(
                ctx,
                &value,
                env.host_ip,
                vars,
                &mut t.dnsbl,
                &mut t.trace,
                &mut logs,
            )
            .await;
            out.logwrites.extend(logs);
            match r {
                dnslists::Listed::Yes => Ok(true),
                dnslists::Listed::No => Ok(false),
                dnslists::Listed::Defer => return Cond::Defer(String::new()),
            }
        }
        "verify" => match verify(ctx, &value, vars, env, out, t).await {
            Ok(b) => Ok(b),
            Err(c) => return c,
        },
        // Exim's limit on nested `acl =` calls, which stops a loop.
        "acl" if t.trace.level >= 20 => Err(ConditionError::AclTooDeep),
        "acl" => match cfg.resolve_acl(&value) {
            Some(sub) => {
                t.trace.level += 1;
                let r = Box::pin(eval_traced(ctx, &sub, vars, env, t)).await;
                t.trace.level -= 1;
                if r.message.is_some() {
                    out.message = r.message.clone();
                }
                if r.log_message.is_some() && r.verdict != Verdict::Defer {
                    out.log_message = r.log_message.clone();
                }
                // A nested defer is the caller's defer (as in Exim).
                if r.verdict == Verdict::Defer {
                    return Cond::Error(ConditionError::NestedDefer(
                        r.log_message.clone().unwrap_or_default(),
                    ));
                }
                Ok(r.verdict == Verdict::Accept)
            }
            None => Err(ConditionError::AclNotFound(value)),
        },
        other => Err(ConditionError::Unsupported(other.to_string())),
    };
    match result {
        Ok(b) if b != c.negated => Cond::True,
        Ok(_) => Cond::False,
        Err(e) => Cond::Error(e),
    }
}

/// A sender verification that did not succeed, kept for the message
/// (Exim's `sender_verified_failed`): the first refusal it causes shows
/// its details and logs `sender verify fail for <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderVerifyFailure {
    pub address: String,
    /// Why routing failed (`Unrouteable address`), for the log.
    pub message: Option<String>,
    /// The text shown to the client before the refusal, if any.
    pub user_message: Option<String>,
    /// The verification deferred rather than failed.
    pub defer: bool,
    /// Already reported (or `/no_details` asked for no details).
    pub told: bool,
}

/// `verify = sender[=address]` and `verify = recipient` with their
/// options. Callouts are not implemented and are refused, never passed.
async fn verify(
    ctx: &Ctx,
    what: &str,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    out: &mut AclOutcome,
    t: &mut AclTrace,
) -> Result<bool, Cond> {
    let mut parts = what.split('/');
    let head = parts.next().unwrap_or("").trim();
    let (kind, explicit) = match head.split_once('=') {
        Some((k, a)) => (k.trim(), Some(a.trim())),
        None => (head, None),
    };
    let (mut defer_ok, mut no_details) = (false, false);
    for opt in parts {
        let opt = opt.trim();
        match opt {
            "defer_ok" => defer_ok = true,
            "no_details" => no_details = true,
            _ if opt.starts_with("callout") => {
                return Err(Cond::Error(ConditionError::Unsupported(format!(
                    "verify = {what} (callouts)"
                ))))
            }
            _ => {
                return Err(Cond::Error(ConditionError::Unsupported(format!(
                    "verify = {what} (option \"{opt}\")"
                ))))
            }
        }
    }
    if kind == "header_sender" && explicit.is_none() {
        return header_sender::verify(ctx, vars, env, out, t, defer_ok).await;
    }
    if kind == "header_syntax" && explicit.is_none() {
        if header_syntax(vars, env.host_ip.is_some()) {
            return Ok(true);
        }
        out.verify_message = vars.get("acl_verify_message").map(str::to_string);
        return Ok(false);
    }
    let is_sender = match kind {
        "sender" => true,
        "recipient" if explicit.is_none() => false,
        "helo" | "reverse_host_lookup" if explicit.is_none() && !what.contains('/') => {
            return Ok(env.host_name.is_some())
        }
        other => {
            return Err(Cond::Error(ConditionError::UnknownVerify(
                other.to_string(),
            )))
        }
    };
    let address = if is_sender {
        explicit.or(env.sender)
    } else {
        env.recipient
    };
    let Some(address) = address else {
        return Ok(false);
    };
    if is_sender && address.is_empty() {
        return Ok(true); // the null sender always verifies
    }
    // The sender is verified once per message; the result is reused.
    if is_sender {
        if let Some(prev) = t.sender_verified.iter().find(|(a, _)| a == address) {
            return match &prev.1 {
                None => Ok(true),
                Some(f) => sender_failed(out, f.defer, defer_ok),
            };
        }
    }
    t.trace.level += 1;
    t.trace
        .line(|| ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>".into());
    let (failed, defer, detailed) =
        route_for_verify(ctx, address, env.sender.unwrap_or(""), vars, t, is_sender).await;
    t.trace
        .line(|| "----------- end verify ------------".into());
    t.trace.level -= 1;
    let Some(message) = failed else {
        if is_sender {
            t.sender_verified.push((address.to_string(), None));
        }
        return Ok(true);
    };
    if !is_sender {
        vars.set("recipient_verify_failure", if defer { "" } else { "route" });
        if defer && defer_ok {
            return Ok(true);
        }
        vars.set("acl_verify_message", message.clone());
        out.verify_message = Some(message);
        return if defer {
            Err(Cond::VerifyDefer)
        } else {
            Ok(false)
        };
    }
    vars.set("sender_verify_failure", if defer { "" } else { "route" });
    let f = SenderVerifyFailure {
        address: address.to_string(),
        user_message: (!defer && detailed).then(|| message.clone()),
        message: Some(message),
        defer,
        told: no_details,
    };
    t.sender_verified
        .push((address.to_string(), Some(f.clone())));
    if t.sender_verify_failed.is_none() && !(defer && defer_ok) {
        t.sender_verify_failed = Some(f);
    }
    sender_failed(out, defer, defer_ok)
}

/// Route `address` as verification does: a redirection verifies when
/// every address it produces verifies. The failure's text, whether it was
/// temporary, and whether the text is for the client too (Exim's user
/// message: no router took the address, or a redirection's `:fail:`).
async fn route_for_verify(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    vars: &Vars,
    t: &mut AclTrace,
    is_sender: bool,
) -> (Option<String>, bool, bool) {
    use crate::deliver::route::{route_traced, Routed};
    let mut pending = vec![(address.to_string(), 0usize)];
    while let Some((a, depth)) = pending.pop() {
        let routed = route_traced(ctx, &a, sender, vars, true, 0, &mut t.trace)
            .await
            .routed;
        match routed {
            Routed::Fail { message, router } => {
                let detailed = router.is_none_or(|name| {
                    ctx.drivers.routers.iter().any(|r| {
                        r.name == name
                            && matches!(r.kind, crate::settings::RouterKind::Redirect { .. })
                    })
                });
                return (Some(message), false, detailed);
            }
            Routed::Defer { message, .. } => return (Some(message), true, false),
            // Pipes and files (`direct`) verify without being routed.
            Routed::Redirected { children, .. } if depth < 20 => {
                let children = children.into_iter().rev();
                pending.extend(children.map(|c| (ctx.qualify_recipient(&c), depth + 1)));
            }
            Routed::Redirected { .. } => {
                return (Some("too many levels of redirection".into()), false, true)
            }
            // A router with fail_verify_sender/_recipient turns its
            // success into a failure while verifying.
            Routed::Transport { router, .. } | Routed::Blackhole { router } => {
                let forced = ctx.drivers.routers.iter().any(|r| {
                    r.name == router
                        && if is_sender {
                            r.fail_verify_sender
                        } else {
                            r.fail_verify_recipient
                        }
                });
                if forced {
                    let message = format!("{router} router forced verify failure");
                    return (Some(message), false, false);
                }
            }
        }
    }
    (None, false, false)
}

fn sender_failed(out: &mut AclOutcome, defer: bool, defer_ok: bool) -> Result<bool, Cond> {
    if defer && defer_ok {
        return Ok(true);
    }
    out.verify_message = Some(
        if defer {
            "Could not complete sender verify"
        } else {
            "Sender verify failed"
        }
        .to_string(),
    );
    if defer {
        Err(Cond::VerifyDefer)
    } else {
        Ok(false)
    }
}

/// `verify = header_syntax`: every address in the header lines that hold
/// addresses (From, To, Cc, Bcc, Sender, Reply-To and their Resent-
/// forms) is well formed, and qualified when the message came from
/// another host. A failure sets `$acl_verify_message` as Exim words it.
fn header_syntax(vars: &mut Vars, remote: bool) -> bool {
    const NAMES: &[&str] = &["sender", "reply-to", "from", "to", "cc", "bcc"];
    for h in &unfolded_headers(vars) {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let lname = name.trim().to_ascii_lowercase();
        let bare = lname.strip_prefix("resent-").unwrap_or(&lname);
        if !NAMES.contains(&bare) {
            continue;
        }
        for item in split_address_list(value) {
            let failure = match address_in(&item) {
                None => Some("malformed address"),
                Some(a) if a.is_empty() => None,
                Some(a) if remote && !a.contains('@') => Some("unqualified address not permitted"),
                Some(_) => None,
            };
            if let Some(why) = failure {
                vars.set(
                    "acl_verify_message",
                    format!(
                        "{why}: failing address in \"{}:\" header is: {}",
                        name.trim(),
                        item.trim()
                    ),
                );
                return false;
            }
        }
    }
    true
}

/// The message's header lines, unfolded (continuation lines join the
/// header before them).
fn unfolded_headers(vars: &Vars) -> Vec<String> {
    let raw = vars.get("message_headers_raw").unwrap_or("");
    let mut headers: Vec<String> = Vec::new();
    for line in raw.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            headers.push(line.to_string());
        }
    }
    headers
}

/// Split a header's address list at the commas outside quotes, angle
/// brackets and comments; a group (`name: a, b;`) gives its members.
fn split_address_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut angle, mut paren) = (false, 0i32, 0i32);
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '"' if paren == 0 => quote = !quote,
            '(' if !quote => paren += 1,
            ')' if !quote && paren > 0 => paren -= 1,
            '<' if !quote && paren == 0 => angle += 1,
            '>' if !quote && paren == 0 && angle > 0 => angle -= 1,
            // A group's name ends with a colon; its list with ';'.
            ':' if !quote && paren == 0 && angle == 0 => {
                cur.clear();
                continue;
            }
            ',' | ';' if !quote && paren == 0 && angle == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The address in one list item (`Name <a@b>`, `a@b (Name)`), empty for
/// `<>`; None when it is not well formed.
fn address_in(item: &str) -> Option<String> {
    // Comments go.
    let mut text = String::new();
    let mut depth = 0;
    let mut quote = false;
    for c in item.chars() {
        match c {
            '"' if depth == 0 => {
                quote = !quote;
                text.push(c);
            }
            '(' if !quote => depth += 1,
            ')' if !quote && depth > 0 => depth -= 1,
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    if quote || depth != 0 {
        return None;
    }
    let text = text.trim();
    let addr = match (text.find('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].trim().to_string(),
        (None, None) => text.to_string(),
        _ => return None,
    };
    // Outside quotes an address has no spaces.
    let mut q = false;
    for c in addr.chars() {
        if c == '"' {
            q = !q;
        } else if c.is_whitespace() && !q {
            return None;
        }
    }
    if addr.starts_with('@') || addr.ends_with('@') {
        return None;
    }
    Some(addr)
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
}

/// A refusal decided after a failed verification says why, unless the
/// statement gave its own texts.
fn apply_verify_message(out: &mut AclOutcome) {
    if let Some(m) = out.verify_message.take() {
        if out.message.is_none() {
            out.message = Some(m.clone());
        }
        if out.log_message.is_none() {
            out.log_message = Some(m);
        }
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
            .map(|h| format!("SMTP connection from {}", h.trim_start_matches("H=")))
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
                Cond::Defer(e) => {
                    t.trace
                        .line(|| format!("{verb}: condition test deferred in {acl_name}"));
                    if st.verb == AclVerb::Warn {
                        all_true = false;
                        deferred = true;
                        break;
                    }
                    resolve_texts(ctx, vars, &mut out);
                    out.verdict = Verdict::Defer;
                    out.log_message = Some(e);
                    return out;
                }
                Cond::VerifyDefer => {
                    t.trace
                        .line(|| format!("{verb}: condition test deferred in {acl_name}"));
                    if st.verb == AclVerb::Warn {
                        all_true = false;
                        deferred = true;
                        break;
                    }
                    resolve_texts(ctx, vars, &mut out);
                    out.verdict = Verdict::Defer;
                    let m = out.verify_message.take();
                    if out.message.is_none() {
                        out.message = m.clone();
                    }
                    if out.log_message.is_none() {
                        out.log_message = m;
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
                out.verdict = Verdict::Deny;
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
            return out;
        }
        out.verify_message = None;
        if st.verb == AclVerb::Warn && all_true {
            if let Some(l) = out.log_message.take() {
                if out.message.as_deref() != Some(l.as_str()) {
                    match &t.host_ident {
                        Some(h) => ctx.log_text(None, &format!("{h} Warning: {l}")),
                        None => out.warnings.push(l),
                    }
                }
            }
        }
        // Texts set by a statement that did not decide do not carry over,
        // except for warn, whose side effects stand.
        if st.verb != AclVerb::Warn {
            out.message = None;
            out.log_message = None;
        }
        out.verify_message = None;
    }
    // Falling off the end is an implicit deny.
    t.trace.line(|| format!("end of {acl_name}: implicit DENY"));
    out.verdict = Verdict::Deny;
    out
}
