//! `verify = header_sender`: some address in the Sender:, Reply-To: or
//! From: header (tried in that order) must verify.

use super::{
    address_in, route_for_verify, split_address_list, unfolded_headers, AclEnv, AclOutcome,
    AclTrace, Cond,
};
use crate::ctx::Ctx;
use crate::vars::Vars;

/// Exim's answer: the first address that verifies makes the condition
/// true; when none does it is false (or deferred when one deferred), with
/// Exim's log texts. The reply keeps its default text, as in Exim without
/// `smtp_return_error_details`.
pub(super) async fn verify(
    ctx: &Ctx,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    out: &mut AclOutcome,
    t: &mut AclTrace,
    defer_ok: bool,
) -> Result<bool, Cond> {
    let headers = unfolded_headers(vars);
    let mut deferred = false;
    let mut log: Option<String> = None;
    'types: for want in ["sender", "reply-to", "from"] {
        for h in &headers {
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case(want) {
                continue;
            }
            let name = name.trim();
            for item in split_address_list(value) {
                let item = item.trim().to_string();
                t.trace
                    .line(|| format!("verifying {name}: header address {item}"));
                let Some(address) = address_in(&item) else {
                    log = Some(format!(
                        "syntax error in '{name}:' header when scanning for sender: \
                         malformed address in \"{item}\""
                    ));
                    deferred = false;
                    break 'types;
                };
                if address.is_empty() {
                    continue;
                }
                let cached = t
                    .sender_verified
                    .iter()
                    .find(|(a, _)| *a == address)
                    .map(|(_, f)| f.as_ref().map(|f| f.defer));
                let outcome = match cached {
                    Some(result) => {
                        t.trace
                            .line(|| "previously checked as envelope sender".into());
                        result
                    }
                    None => {
                        t.trace.level += 1;
                        t.trace
                            .line(|| ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>".into());
                        let sender = env.sender.unwrap_or("");
                        let (failed, defer, _) =
                            route_for_verify(ctx, &address, sender, vars, t, true).await;
                        t.trace.level -= 1;
                        failed.map(|_| defer)
                    }
                };
                match outcome {
                    None => return Ok(true),
                    Some(true) => deferred = true,
                    Some(false) => {}
                }
            }
        }
    }
    if deferred && defer_ok {
        return Ok(true);
    }
    let text = log.unwrap_or_else(|| {
        if deferred {
            "all attempts to verify a sender in a header line deferred"
        } else {
            "there is no valid sender in any header line"
        }
        .to_string()
    });
    if out.log_message.is_none() {
        out.log_message = Some(text);
    }
    if deferred {
        Err(Cond::VerifyDefer)
    } else {
        Ok(false)
    }
}
