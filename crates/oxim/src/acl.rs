//! Access control lists: evaluate an ACL's statements in order and produce a
//! verdict. Rejections are data (a verdict with texts), not errors.

use std::net::IpAddr;

use oxim_conf::{Acl, AclCondition, AclVerb};

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
}

impl AclOutcome {
    fn new(verdict: Verdict) -> Self {
        AclOutcome {
            verdict,
            message: None,
            log_message: None,
            controls: Vec::new(),
            logwrites: Vec::new(),
        }
    }
}

/// The facts an ACL can test.
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
    Error(ConditionError),
}

async fn condition(
    ctx: &Ctx,
    c: &AclCondition,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    out: &mut AclOutcome,
) -> Cond {
    let value = match oxim_conf::expand(&c.value, &*vars) {
        Ok(v) => v,
        Err(e) if e.is_forced_fail() => return Cond::False,
        Err(source) => {
            return Cond::Error(ConditionError::AclString {
                text: c.value.clone(),
                source,
            })
        }
    };
    let cfg = &ctx.config;
    let result: Result<bool, ConditionError> = match c.name.as_str() {
        "message" => {
            out.message = Some(value);
            return Cond::True;
        }
        "log_message" => {
            out.log_message = Some(value);
            return Cond::True;
        }
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
            Some(ip) => oxim_conf::match_host(&value, ip, env.host_name, cfg, &*vars)
                .map_err(ConditionError::from),
            // Locally submitted messages match an empty item only.
            None => Ok(value.split(':').any(|i| i.trim().is_empty())),
        },
        "domains" => {
            let d = env.recipient.map(|r| split_address(r).1).unwrap_or("");
            oxim_conf::match_domain(&value, d, cfg, &*vars).map_err(ConditionError::from)
        }
        "local_parts" => {
            let l = env.recipient.map(|r| split_address(r).0).unwrap_or("");
            oxim_conf::match_local_part(&value, l, cfg, &*vars).map_err(ConditionError::from)
        }
        "senders" => oxim_conf::match_address(&value, env.sender.unwrap_or(""), cfg, &*vars)
            .map_err(ConditionError::from),
        "recipients" => oxim_conf::match_address(&value, env.recipient.unwrap_or(""), cfg, &*vars)
            .map_err(ConditionError::from),
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
        "verify" => verify(ctx, &value, vars, env).await,
        "acl" => match cfg.resolve_acl(&value) {
            Some(sub) => {
                let r = Box::pin(eval(ctx, &sub, vars, env)).await;
                if r.message.is_some() {
                    out.message = r.message.clone();
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

async fn verify(
    ctx: &Ctx,
    what: &str,
    vars: &Vars,
    env: &AclEnv<'_>,
) -> Result<bool, ConditionError> {
    let kind = what.split('/').next().unwrap_or("").trim();
    let address = match kind {
        "recipient" => env.recipient,
        "sender" => env.sender,
        "helo" | "reverse_host_lookup" => return Ok(env.host_name.is_some()),
        other => return Err(ConditionError::UnknownVerify(other.to_string())),
    };
    let Some(address) = address else {
        return Ok(false);
    };
    if address.is_empty() {
        return Ok(true); // the null sender always verifies
    }
    let r = crate::deliver::route::route(ctx, address, env.sender.unwrap_or(""), vars, true)
        .await
        .routed;
    Ok(!matches!(
        r,
        crate::deliver::route::Routed::Fail { .. } | crate::deliver::route::Routed::Defer { .. }
    ))
}

/// Evaluate `acl`. `vars` receives `set` variables.
pub async fn eval(ctx: &Ctx, acl: &Acl, vars: &mut Vars, env: &AclEnv<'_>) -> AclOutcome {
    let mut out = AclOutcome::new(Verdict::Deny);
    for st in &acl.statements {
        let mut all_true = true;
        let mut after_endpass = false;
        for c in &st.conditions {
            if c.name == "endpass" {
                after_endpass = true;
                continue;
            }
            match condition(ctx, c, vars, env, &mut out).await {
                Cond::True => {}
                Cond::False => {
                    all_true = false;
                    break;
                }
                Cond::Error(e) => {
                    out.verdict = Verdict::Defer;
                    out.log_message = Some(e.to_string());
                    return out;
                }
            }
        }
        let verdict = match (st.verb, all_true) {
            (AclVerb::Accept, true) => Some(Verdict::Accept),
            (AclVerb::Accept, false) if after_endpass => Some(Verdict::Deny),
            (AclVerb::Deny, true) => Some(Verdict::Deny),
            (AclVerb::Defer, true) => Some(Verdict::Defer),
            (AclVerb::Discard, true) => Some(Verdict::Discard),
            (AclVerb::Drop, true) => Some(Verdict::Drop),
            (AclVerb::Require, false) => Some(Verdict::Deny),
            _ => None,
        };
        if let Some(v) = verdict {
            out.verdict = v;
            return out;
        }
        // Texts set by a statement that did not decide do not carry over,
        // except for warn, whose side effects stand.
        if st.verb != AclVerb::Warn {
            out.message = None;
            out.log_message = None;
        }
    }
    // Falling off the end is an implicit deny.
    out.verdict = Verdict::Deny;
    out
}
