//! One ACL condition: expanded, evaluated, traced.

use super::*;

pub(super) async fn condition(
    ctx: &Ctx,
    c: &AclCondition,
    vars: &mut Vars,
    env: &AclEnv<'_>,
    out: &mut AclOutcome,
    t: &mut AclTrace,
) -> Cond {
    if let Some(place) = t.not_smtp {
        if let Some(err) = forbidden_without_smtp(c, place) {
            return Cond::Error(err);
        }
    }
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
        "control" => match super::control::Control::parse(&value) {
            Ok(super::control::Control::CasefulLocalPart(caseful)) => {
                // Only the RCPT ACL has a recipient to take it from.
                let Some(rcpt) = env.recipient else {
                    return Cond::Error(ConditionError::BadControl(format!(
                        "control \"{value}\" is allowed only in the RCPT ACL"
                    )));
                };
                let lp = split_address(rcpt).0;
                vars.set(
                    "local_part",
                    if caseful {
                        lp.to_string()
                    } else {
                        lp.to_lowercase()
                    },
                );
                return Cond::True;
            }
            Ok(ctl) => {
                out.controls.push(ctl);
                return Cond::True;
            }
            Err(why) => return Cond::Error(ConditionError::BadControl(why)),
        },
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
        "add_header" => {
            out.added_headers.push(value);
            return Cond::True;
        }
        "remove_header" => {
            for spec in oxim_conf::lists::list_items(&value) {
                let spec = spec.trim();
                if spec.starts_with('^') {
                    if let Err(e) = regex::Regex::new(spec) {
                        return Cond::Error(ConditionError::BadControl(format!(
                            "remove_header: bad regular expression \"{spec}\": {e}"
                        )));
                    }
                }
            }
            out.removed_headers.push(value);
            return Cond::True;
        }
        // `continue`: the value is expanded for its side effects only.
        "continue" | "endpass" => return Cond::True,
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
            // A locally submitted message is "no host": an empty item or
            // `*` matches it, negations count as usual.
            None => oxim_conf::match_no_host(&value, cfg, &*vars).map_err(ConditionError::from),
        },
        "domains" => {
            let d = env.recipient.map(|r| split_address(r).1).unwrap_or("");
            let mut p = Probe::new(&mut t.trace, d);
            p.want_value = true;
            p.cache = Some(&mut t.domains);
            oxim_conf::match_domain_probe(&value, d, cfg, &*vars, &mut p)
                .map_err(ConditionError::from)
        }
        // The domain of the sender (none for `<>`).
        "sender_domains" => {
            let d = env
                .sender
                .and_then(|s| s.rsplit_once('@'))
                .map_or("", |(_, d)| d);
            let mut p = Probe::new(&mut t.trace, d);
            p.want_value = true;
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
        // The connection's TLS cipher (the part between the first two
        // colons of $tls_in_cipher, as Exim) in a string list; false
        // without TLS.
        "encrypted" => match vars.get("tls_in_cipher").filter(|c| !c.is_empty()) {
            Some(cipher) => {
                let name = match cipher.split_once(':') {
                    Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
                    None => cipher,
                };
                oxim_conf::match_local_part(&value, name, cfg, &*vars).map_err(ConditionError::from)
            }
            None => Ok(false),
        },
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
        // Any of the DKIM statuses (the current signature's in the DKIM
        // ACL) in the list.
        "dkim_status" => Ok(vars.dkim_status().is_some_and(|all| {
            all.iter().any(|s| {
                oxim_conf::lists::list_items(&value)
                    .iter()
                    .any(|i| i.trim().eq_ignore_ascii_case(s))
            })
        })),
        "dkim_signers" => {
            let cur = vars.get("dkim_cur_signer").unwrap_or("").to_string();
            oxim_conf::match_address(&value, &cur, cfg, &*vars).map_err(ConditionError::from)
        }
        "acl" if t.trace.level >= 20 => Err(ConditionError::AclTooDeep),
        "acl" => match cfg.resolve_acl(&value) {
            Some(sub) => {
                t.trace.level += 1;
                let r = Box::pin(eval_traced(ctx, &sub, vars, env, t)).await;
                t.trace.level -= 1;
                if r.message.is_some() {
                    out.message = r.message.clone();
                }
                // What the called ACL did on the way stands for its caller.
                out.controls.extend(r.controls.iter().cloned());
                out.added_headers.extend(r.added_headers.iter().cloned());
                out.removed_headers
                    .extend(r.removed_headers.iter().cloned());
                out.logwrites.extend(r.logwrites.iter().cloned());
                out.warnings.extend(r.warnings.iter().cloned());
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

/// Exim's refusal of a condition or modifier that has no meaning for a
/// message that did not come over SMTP (`cannot test hosts condition in
/// non-SMTP ACL`); `place` is Exim's name for the ACL. `dnslists` without
/// an explicit key would test the client's address, which there is none
/// of.
fn forbidden_without_smtp(c: &AclCondition, place: &str) -> Option<ConditionError> {
    let name = c.name.as_str();
    let (verb, what) = match name {
        "authenticated" | "domains" | "encrypted" | "hosts" | "local_parts" | "recipients"
        | "spf" | "spf_guess" | "atrn_domains" | "dkim_signers" | "dkim_status"
        | "dmarc_status" | "decode" | "mime_regex" => ("test", name.to_string()),
        "queue" if place == "non-SMTP" => ("use", name.to_string()),
        "dnslists"
            if oxim_conf::ListIter::new(&c.value)
                .any(|item| !item.starts_with('+') && !item.contains('/')) =>
        {
            ("test", "auto-keyed dnslists".to_string())
        }
        _ => return None,
    };
    Some(ConditionError::Forbidden(format!(
        "cannot {verb} {what} condition in {place} ACL"
    )))
}
