//! `verify = sender` and `verify = recipient`: routing an address as
//! verification does, and what a failure leaves behind.

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
pub(crate) async fn route_for_verify(
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
            Routed::Transport { router, .. } | Routed::Blackhole { router, .. } => {
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

pub(super) fn sender_failed(
    out: &mut AclOutcome,
    defer: bool,
    defer_ok: bool,
) -> Result<bool, Cond> {
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
