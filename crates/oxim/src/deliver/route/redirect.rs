//! The redirect router: expanding `data` or `file` into new addresses.

use super::*;

pub(super) fn redirect(
    ctx: &Ctx,
    r: &RouterSpec,
    vars: &Vars,
    rdata: &AddrData,
    verifying: bool,
) -> Option<Routing> {
    let RouterKind::Redirect {
        data,
        file,
        allow_defer,
        allow_fail,
        filter: fopts,
        file_transport,
        pipe_transport,
        qualify_domain,
        qualify_preserve_domain,
        rewrite,
        ..
    } = &r.kind
    else {
        return None;
    };
    // The domain an unqualified generated address gets here (None: the
    // global qualify_recipient, applied later).
    let qualify = if *qualify_preserve_domain {
        vars.get("domain").map(str::to_string)
    } else if let Some(q) = qualify_domain {
        match oxim_conf::expand_with_config(q, vars, &ctx.config) {
            Ok(v) => Some(v),
            Err(e) => {
                return Some(Routing::from(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{q}\": {e}"),
                }))
            }
        }
    } else {
        None
    };
    let (allow_defer, allow_fail) = (*allow_defer, *allow_fail);
    let text = if let Some(d) = data {
        match oxim_conf::expand_with_config(d, vars, &ctx.config) {
            Ok(v) => v,
            // A forced failure makes the router decline (Exim's spec,
            // "Redirection data"), the next router is tried.
            Err(e) if e.is_forced_fail() => return None,
            Err(e) => {
                return Some(Routing::from(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{d}\": {e}"),
                }))
            }
        }
    } else if let Some(f) = file {
        let path = match oxim_conf::expand_with_config(f, vars, &ctx.config) {
            Ok(v) => v,
            Err(e) if e.is_forced_fail() => return None,
            Err(e) => {
                return Some(Routing::from(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{f}\": {e}"),
                }))
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(Routing::from(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to open {path}: {e}"),
                }))
            }
        }
    } else {
        return None;
    };
    if let Some(routing) =
        filter::run_if_filter(ctx, r, vars, rdata, &text, data.is_some(), verifying, fopts)
    {
        return routing;
    }
    redirect_list(
        r,
        rdata,
        &text,
        allow_defer,
        allow_fail,
        file_transport,
        pipe_transport,
    )
    .map(|mut routed| {
        if let (Routed::Redirected { children, .. }, Some(d)) = (&mut routed, &qualify) {
            for c in children.iter_mut().filter(|c| !c.contains('@')) {
                *c = format!("{c}@{d}");
            }
        }
        // Generated addresses are rewritten as envelope recipients (Exim's
        // `rewrite` option of the redirect router, on by default).
        let rules = &ctx.rewrite;
        if let (Routed::Redirected { children, .. }, true) = (&mut routed, *rewrite) {
            if rules.exist & oxim_conf::rewrite::flag::ENV_TO != 0 {
                let mut notes = Vec::new();
                let env = crate::rewrite::env(ctx, vars);
                for c in children.iter_mut().filter(|c| !c.starts_with(':')) {
                    *c = env.rewrite_address(rules, c, true, false, &mut notes);
                }
                crate::rewrite::log_notes(ctx, vars.get("message_exim_id"), notes);
            }
        }
        Routing::from(routed)
    })
}

/// A plain redirection list (not a filter).
fn redirect_list(
    r: &RouterSpec,
    rdata: &AddrData,
    text: &str,
    allow_defer: bool,
    allow_fail: bool,
    file_transport: &Option<String>,
    pipe_transport: &Option<String>,
) -> Option<Routed> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed == ":blackhole:" {
        return Some(Routed::Blackhole {
            router: r.name.clone(),
            discarded: false,
        });
    }
    // `:fail:` and `:defer:` with their text, each deferred instead when
    // the router does not permit it.
    for (keyword, permitted) in [(":fail:", allow_fail), (":defer:", allow_defer)] {
        let Some(rest) = trimmed.strip_prefix(keyword) else {
            continue;
        };
        let router = Some(r.name.clone());
        return Some(if !permitted {
            Routed::Defer {
                router,
                message: format!("{keyword} not permitted"),
            }
        } else if keyword == ":fail:" {
            Routed::Fail {
                router,
                message: rest.trim().to_string(),
            }
        } else {
            Routed::Defer {
                router,
                message: rest.trim().to_string(),
            }
        });
    }
    if trimmed == ":unknown:" {
        return None;
    }
    let mut children = Vec::new();
    let mut direct = Vec::new();
    let items = trimmed
        .split([',', '\n'])
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && !s.starts_with('#'));
    for item in items {
        // A path or a pipe is delivered, not routed (unquoted: `/file`,
        // `|command`; Exim also takes them in double quotes).
        let bare = item.trim_matches('"');
        if bare.starts_with('/') || bare.starts_with('|') {
            let pipe = bare.starts_with('|');
            let mut data = rdata.clone();
            let (name, value) = if pipe {
                ("address_pipe", bare.to_string())
            } else {
                ("address_file", bare.to_string())
            };
            data.vars.push((name.into(), value));
            direct.push(Direct {
                target: bare.to_string(),
                router: r.name.clone(),
                transport: if pipe {
                    pipe_transport.clone()
                } else {
                    file_transport.clone()
                },
                data,
                forbidden: None,
            });
            continue;
        }
        let a = crate::message::extract_addresses(item)
            .into_iter()
            .next()
            .unwrap_or_default();
        if !a.is_empty() {
            children.push(a);
        }
    }
    if children.is_empty() && direct.is_empty() {
        return None;
    }
    Some(Routed::Redirected {
        children,
        direct,
        router: r.name.clone(),
    })
}
