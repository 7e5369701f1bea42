//! `verify = sender` and `verify = recipient`: routing an address as
//! verification does, and what a failure leaves behind.

use super::callout::{self, CalloutOpts};
use super::*;

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
    /// A callout could not be completed (Exim's ERRNO_CALLOUTDEFER).
    pub callout_defer: bool,
    /// The callout's `MAIL FROM:<>` (or connection) was refused.
    pub nsfail: bool,
    /// The callout's `postmaster@domain` was refused.
    pub pmfail: bool,
}

/// `verify = sender[=address]` and `verify = recipient` with their
/// options. Callouts are not implemented and are refused, never passed.
pub(super) async fn verify(
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
    let mut co: Option<CalloutOpts> = None;
    let fresh = || CalloutOpts {
        timeout: callout::DEFAULT_TIMEOUT,
        ..CalloutOpts::default()
    };
    let header_sender_kind = kind == "header_sender";
    for opt in parts {
        let opt = opt.trim();
        let lower = opt.to_ascii_lowercase();
        match lower.as_str() {
            "defer_ok" => defer_ok = true,
            "no_details" => no_details = true,
            "callout_defer_ok" => co.get_or_insert_with(fresh).defer_ok = true,
            "check_postmaster" => co.get_or_insert_with(fresh).pm_mailfrom = Some(String::new()),
            _ if lower.starts_with("callout") => {
                let o = co.get_or_insert_with(fresh);
                o.timeout = callout::DEFAULT_TIMEOUT;
                let rest = opt[7..].trim_start();
                if !rest.is_empty() {
                    let Some(list) = rest.strip_prefix('=') else {
                        return Err(Cond::Error(ConditionError::BadVerify(format!(
                            "'=' expected after \"callout\" in ACL condition \"{what}\""
                        ))));
                    };
                    callout::parse_options(what, list, header_sender_kind, o)
                        .map_err(Cond::Error)?;
                }
            }
            _ => {
                return Err(Cond::Error(ConditionError::Unsupported(format!(
                    "verify = {what} (option \"{opt}\")"
                ))))
            }
        }
    }
    let co = co.filter(|o| !o.timeout.is_zero());
    // -bh makes no callouts (-bhc does).
    let host_testing = matches!(
        ctx.inv.mode,
        crate::cli::Mode::HostCheck { callout: false, .. }
    );
    if kind == "header_sender" && explicit.is_none() {
        return header_sender::verify(ctx, vars, env, out, t, defer_ok).await;
    }
    if kind == "header_syntax" && explicit.is_none() {
        if header_syntax(vars, env.host_ip.is_some()) {
            return Ok(true);
        }
        out.verify_message = vars.get("acl_verify_message").map(str::to_string);
        // smtp_return_error_details: the client is told what is wrong.
        if ctx.settings.smtp_return_error_details {
            out.verify_user_message = out
                .verify_message
                .as_ref()
                .map(|m| format!("Rejected after DATA: {m}"));
        } else {
            out.verify_log_only = true;
        }
        return Ok(false);
    }
    // A message with no client host (the command line, -bs without
    // -oMa) passes a reverse lookup check, as in Exim.
    if kind == "reverse_host_lookup" && explicit.is_none() && env.host_ip.is_none() {
        return Ok(true);
    }
    // verify = certificate: only a TLS session can have a verified client
    // certificate; without TLS it fails with Exim's text.
    if kind == "certificate" && explicit.is_none() && !what.contains('/') {
        if vars.get("tls_in_cipher").unwrap_or("").is_empty() {
            out.verify_message = Some("no verified certificate".into());
            return Ok(false);
        }
        return Err(Cond::Error(ConditionError::Unsupported(format!(
            "verify = {what} in a TLS session"
        ))));
    }
    if t.not_smtp.is_some() && kind == "recipient" {
        return Err(Cond::Error(ConditionError::Forbidden(format!(
            "cannot verify recipient in ACL for {}",
            t.not_smtp.unwrap_or_default()
        ))));
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
    // The sender is verified once per message; the result is reused
    // (not with a callout: its own cache decides).
    if is_sender && co.is_none() {
        if let Some(prev) = t.sender_verified.iter().find(|(a, _)| a == address) {
            return match &prev.1 {
                None => Ok(true),
                Some(f) => sender_failed(out, f.defer, defer_ok, f.callout_defer),
            };
        }
    }
    t.trace.level += 1;
    t.trace
        .line(|| ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>".into());
    let mut remotes = Vec::new();
    let (mut failed, mut defer, detailed) = route_for_verify_full(
        ctx,
        address,
        env.sender.unwrap_or(""),
        vars,
        t,
        is_sender,
        &mut remotes,
    )
    .await;
    if failed.is_none() && co.is_some() && host_testing && !remotes.is_empty() {
        let level = std::mem::replace(&mut t.trace.level, 0);
        for l in [
            "Attempting full verification using callout",
            "... callout omitted by default when host testing",
            "(Use -bhc if you want the callouts to happen.)",
        ] {
            t.trace.line(|| l.into());
        }
        t.trace.level = level;
    }
    t.trace
        .line(|| "----------- end verify ------------".into());
    t.trace.level -= 1;
    // Routing worked: with a callout, the hosts are asked.
    let mut called: Option<callout::CalloutResult> = None;
    if let (None, Some(o), false) = (&failed, &co, host_testing) {
        for (a, transport, hosts) in &remotes {
            let from = if is_sender {
                String::new()
            } else if o.use_sender {
                env.sender.unwrap_or("").to_string()
            } else if o.use_postmaster {
                format!("postmaster@{}", ctx.qualify_domain)
            } else {
                String::new()
            };
            let r = run_callout(ctx, a, !is_sender, from, o, transport, hosts, vars).await;
            if let Some(r) = r.filter(|r| r.rc != callout::Rc::Ok || r.failure.is_some()) {
                let stop = r.rc != callout::Rc::Ok;
                called = Some(r);
                if stop {
                    break;
                }
            }
        }
    }
    let mut user_message = None;
    let mut callout_defer = false;
    let (mut nsfail, mut pmfail) = (false, false);
    if let Some(r) = &called {
        let which = if is_sender {
            "sender_verify_failure"
        } else {
            "recipient_verify_failure"
        };
        vars.set(which, r.failure.unwrap_or(""));
        if r.rc != callout::Rc::Ok {
            defer = r.rc == callout::Rc::Defer;
            callout_defer = defer;
            failed = Some(r.message.clone().unwrap_or_default());
            user_message = r.user_message.clone();
            nsfail = r.nsfail;
            pmfail = r.pmfail;
        }
    }
    let callout_defer_ok = callout_defer && co.as_ref().is_some_and(|o| o.defer_ok);
    let Some(message) = failed else {
        if is_sender {
            t.sender_verified.push((address.to_string(), None));
        }
        return Ok(true);
    };
    if !is_sender {
        if called.is_none() {
            vars.set("recipient_verify_failure", if defer { "" } else { "route" });
        }
        if defer && (defer_ok || callout_defer_ok) {
            return Ok(true);
        }
        vars.set("acl_verify_message", message.clone());
        out.verify_message = (!message.is_empty()).then_some(message);
        out.verify_user_message = user_message;
        out.verify_temp_details = callout_defer;
        return if defer {
            Err(Cond::VerifyDefer)
        } else {
            Ok(false)
        };
    }
    if called.is_none() {
        vars.set("sender_verify_failure", if defer { "" } else { "route" });
    }
    let f = SenderVerifyFailure {
        address: address.to_string(),
        user_message: if called.is_some() {
            user_message.filter(|_| !defer)
        } else {
            (!defer && detailed).then(|| message.clone())
        },
        message: (!message.is_empty()).then_some(message),
        defer,
        told: no_details,
        callout_defer,
        nsfail,
        pmfail,
    };
    t.sender_verified
        .push((address.to_string(), Some(f.clone())));
    if t.sender_verify_failed.is_none() && !(defer && (defer_ok || callout_defer_ok)) {
        t.sender_verify_failed = Some(f);
    }
    let r = sender_failed(out, defer, defer_ok || callout_defer_ok, callout_defer);
    if callout_defer {
        if let Some(m) = called.and_then(|c| c.user_message) {
            out.verify_user_message = Some(m);
        }
    }
    r
}

/// A callout for `address`, routed to `transport` with `hosts`; `None`
/// when there is nothing to call (not an smtp transport, no hosts).
#[allow(clippy::too_many_arguments)]
async fn run_callout(
    ctx: &Ctx,
    address: &str,
    is_recipient: bool,
    from: String,
    o: &CalloutOpts,
    transport: &str,
    hosts: &[crate::deliver::route::RoutedHost],
    vars: &Vars,
) -> Option<callout::CalloutResult> {
    let mut tv = vars.clone();
    tv.set_address(address);
    let req = callout::Request {
        address,
        is_recipient,
        from,
        opts: o,
    };
    // Hosts but nothing to reach them with (no transport, not smtp, no
    // address found): Exim's callout cannot complete.
    let undone = || Some(callout::nothing_to_call(ctx, &req));
    // The router's transport option may be an expansion.
    let transport = if transport.contains('$') {
        oxim_conf::expand_with_config(transport, &tv, &ctx.config).ok()?
    } else {
        transport.to_string()
    };
    let transport = transport.trim();
    let Some(spec) = ctx.drivers.transport(transport) else {
        return if hosts.is_empty() { None } else { undone() };
    };
    let crate::settings::TransportKind::Smtp(smtp) = &spec.kind else {
        if hosts.is_empty() {
            return None;
        }
        ctx.log_text(
            None,
            &format!("callout transport '{transport}': it is not an smtp transport"),
        );
        return undone();
    };
    let connect = o.connect.unwrap_or(o.timeout);
    let targets =
        match crate::deliver::callout_targets(ctx, transport, smtp, hosts, &tv, o.timeout, connect)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                ctx.log_text(
                    None,
                    &format!("<{address}>: failed to set up the callout: {e}"),
                );
                return undone();
            }
        };
    if targets.is_empty() {
        return if hosts.is_empty() && smtp.hosts.is_none() {
            None
        } else {
            undone()
        };
    }
    Some(callout::callout(ctx, &req, targets, &tv).await)
}

/// Route `address` as verification does: a redirection verifies when
/// every address it produces verifies. The failure's text, whether it was
/// temporary, and whether the text is for the client too (Exim's user
/// message: no router took the address, or a redirection's `:fail:`).
pub(crate) async fn route_for_verify(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    vars: &Vars,
    t: &mut AclTrace,
    is_sender: bool,
) -> (Option<String>, bool, bool) {
    let mut remotes = Vec::new();
    route_for_verify_full(ctx, address, sender, vars, t, is_sender, &mut remotes).await
}

/// An address that routed to a transport: itself, the transport, and the
/// router's hosts.
pub(crate) type RoutedRemote = (String, String, Vec<crate::deliver::route::RoutedHost>);

/// [`route_for_verify`], also collecting the addresses that routed to a
/// transport (a callout asks their hosts).
pub(crate) async fn route_for_verify_full(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    vars: &Vars,
    t: &mut AclTrace,
    is_sender: bool,
    remotes: &mut Vec<RoutedRemote>,
) -> (Option<String>, bool, bool) {
    use crate::deliver::route::{route_traced, Routed};
    let address = crate::rewrite::for_verify(ctx, address, !is_sender, vars, false);
    let mut pending = vec![(address, 0usize)];
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
            Routed::Transport {
                router,
                transport,
                hosts,
                ..
            } => {
                if let Some(message) = forced_failure(ctx, &router, is_sender) {
                    return (Some(message), false, false);
                }
                remotes.push((a.clone(), transport, hosts));
            }
            Routed::Blackhole { router, .. } => {
                if let Some(message) = forced_failure(ctx, &router, is_sender) {
                    return (Some(message), false, false);
                }
            }
        }
    }
    (None, false, false)
}

/// A router with fail_verify_sender/_recipient turns its success into a
/// failure while verifying.
fn forced_failure(ctx: &Ctx, router: &str, is_sender: bool) -> Option<String> {
    let forced = ctx.drivers.routers.iter().any(|r| {
        r.name == router
            && if is_sender {
                r.fail_verify_sender
            } else {
                r.fail_verify_recipient
            }
    });
    forced.then(|| format!("{router} router forced verify failure"))
}

pub(super) fn sender_failed(
    out: &mut AclOutcome,
    defer: bool,
    defer_ok: bool,
    callout_defer: bool,
) -> Result<bool, Cond> {
    if defer && defer_ok {
        return Ok(true);
    }
    out.verify_message = Some(
        if callout_defer {
            "Could not complete sender verify callout"
        } else if defer {
            "Could not complete sender verify"
        } else {
            "Sender verify failed"
        }
        .to_string(),
    );
    out.verify_temp_details = callout_defer;
    if defer {
        Err(Cond::VerifyDefer)
    } else {
        Ok(false)
    }
}
