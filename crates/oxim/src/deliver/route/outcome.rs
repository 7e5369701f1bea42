//! What a router's acceptance adds: generic effects, the `self` option,
//! user and group, the transport.

use super::*;

/// Attach the router's generic effects (errors_to, headers_add,
/// headers_remove, unseen) to a successful decision.
pub(super) fn accepted(
    r: &RouterSpec,
    index: usize,
    mut routing: Routing,
    vars: &Vars,
    verifying: bool,
) -> Routing {
    if matches!(routing.routed, Routed::Fail { .. } | Routed::Defer { .. }) {
        return routing;
    }
    let defer = |what: &str, e: String| -> Routing {
        Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("failed to expand {what} in {} router: {e}", r.name),
        }
        .into()
    };
    let mut props = Props::default();
    if let Some(e) = &r.errors_to {
        match oxim_conf::expand(e, vars) {
            Ok(v) => props.errors_to = Some(v.trim().to_string()),
            Err(err) => return defer("errors_to", err.to_string()),
        }
    }
    // Both are lists whose items are expanded one by one; an item that is
    // empty or forced to fail has no effect.
    if let Some(list) = &r.headers_add {
        match oxim_conf::expand_list_items(list, '\n', vars) {
            Ok(items) => props
                .headers_add
                .extend(items.iter().map(|v| v.trim_end_matches('\n').to_string())),
            Err(err) => return defer("headers_add", err.to_string()),
        }
    }
    if let Some(list) = &r.headers_remove {
        match oxim_conf::expand_list_items(list, ':', vars) {
            Ok(items) => props.headers_remove = items,
            Err(err) => return defer("headers_remove", err.to_string()),
        }
    }
    // Exim ignores `unseen` when verifying.
    let mut unseen_next = None;
    if let (Some(u), false) = (&r.unseen, verifying) {
        match oxim_conf::expand(u, vars)
            .map_err(ConditionError::from)
            .and_then(|v| condition_true(&v))
        {
            Ok(true) => unseen_next = Some(index + 1),
            Ok(false) => {}
            Err(err) => return defer("unseen", err.to_string()),
        }
    }
    routing.props = props;
    routing.unseen_next = unseen_next;
    routing
}

/// Apply the router's `self` option. The host list is cut at the first
/// host that is this host (a lower-priority MX is dropped along with all
/// after it); only when that leaves nothing does `self` decide.
pub(super) fn check_self(
    ctx: &Ctx,
    r: &RouterSpec,
    mut hosts: Vec<RoutedHost>,
    vars: &Vars,
) -> Result<Vec<RoutedHost>, Box<Routing>> {
    let Some(first_local) = hosts
        .iter()
        .position(|h| is_local_named(ctx, &h.name, h.ip, vars))
    else {
        return Ok(hosts);
    };
    if first_local > 0 {
        // Keep only hosts better than ours (for MX: a lower preference).
        let cut = hosts[first_local].mx;
        hosts.truncate(first_local);
        if let Some(pref) = cut {
            hosts.retain(|h| h.mx.is_none_or(|p| p < pref));
        }
        if !hosts.is_empty() {
            return Ok(hosts);
        }
    }
    let message = if hosts[first_local].mx.is_some() {
        "lowest numbered MX record points to local host"
    } else {
        "remote host address is the local host"
    }
    .to_string();
    match r.self_action.as_str() {
        "send" => {
            for h in hosts.iter_mut() {
                h.allow_local = true;
            }
            Ok(hosts)
        }
        "pass" => {
            let mut out = Routing::from(Routed::Fail {
                router: None,
                message,
            });
            out.pass = true;
            Err(Box::new(out))
        }
        "fail" => Err(Box::new(
            Routed::Fail {
                router: Some(r.name.clone()),
                message,
            }
            .into(),
        )),
        action => {
            let mut out = Routing::from(Routed::Defer {
                router: Some(r.name.clone()),
                message: message.clone(),
            });
            if action == "freeze" {
                out.freeze = true;
                out.notes
                    .push(format!("{message}: {}", vars.get("domain").unwrap_or("")));
                out.notes_in_bt = true;
            }
            Err(Box::new(out))
        }
    }
}

/// The router's `user` and `group` (expanded), which override what
/// `check_local_user` found.
pub(super) fn router_ids(
    ctx: &Ctx,
    r: &RouterSpec,
    vars: &Vars,
    data: &mut AddrData,
) -> Result<(), String> {
    if let Some(u) = &r.user {
        let name = oxim_conf::expand_with_config(u, vars, &ctx.config)
            .map_err(|e| format!("failed to expand user in {} router: {e}", r.name))?;
        let (uid, gid, _) = crate::privilege::find_user(name.trim())
            .map_err(|e| format!("{e:#} in {} router", r.name))?;
        data.uid = Some(uid);
        if gid.is_some() {
            data.gid = gid;
        }
    }
    if let Some(g) = &r.group {
        let name = oxim_conf::expand_with_config(g, vars, &ctx.config)
            .map_err(|e| format!("failed to expand group in {} router: {e}", r.name))?;
        let gid = crate::privilege::find_group(name.trim())
            .map_err(|e| format!("{e:#} in {} router", r.name))?;
        data.gid = Some(gid);
    }
    Ok(())
}

pub(crate) fn transport_result(
    ctx: &Ctx,
    r: &RouterSpec,
    hosts: Vec<RoutedHost>,
    vars: &Vars,
    data: AddrData,
) -> Routing {
    let hosts = match check_self(ctx, r, hosts, vars) {
        Ok(h) => h,
        Err(routing) => return *routing,
    };
    match &r.transport {
        Some(t) => match transport_name(ctx, r, t, vars) {
            Ok(transport) => Routed::Transport {
                router: r.name.clone(),
                transport,
                hosts,
                data,
            }
            .into(),
            Err(message) => Routed::Defer {
                router: Some(r.name.clone()),
                message,
            }
            .into(),
        },
        None => {
            let mut routing = Routing::from(Routed::Defer {
                router: Some(r.name.clone()),
                message: no_transport(r),
            });
            routing.hosts_without_transport = hosts;
            routing
        }
    }
}

/// The router's `transport` option, expanded when it holds a `$` (as
/// Exim does, with the address's variables): an expansion failure or a
/// name that names no transport defers the address.
fn transport_name(ctx: &Ctx, r: &RouterSpec, t: &str, vars: &Vars) -> Result<String, String> {
    if !t.contains('$') {
        return Ok(t.to_string());
    }
    let name = oxim_conf::expand_with_config(t, vars, &ctx.config).map_err(|e| {
        format!(
            "failed to expand transport \"{t}\" in {} router: {e}",
            r.name
        )
    })?;
    match ctx.drivers.transport(&name) {
        Some(_) => Ok(name),
        None => Err(format!(
            "transport \"{name}\" not found in {} router",
            r.name
        )),
    }
}

pub(super) fn no_transport(r: &RouterSpec) -> String {
    format!("No transport set by {} router", r.name)
}
