//! The router chain: each address is offered to the routers in order until one
//! accepts, redirects, fails or defers it.

mod hosts;

use std::net::IpAddr;

use crate::ctx::Ctx;
use crate::settings::{RouterKind, RouterSpec};
use crate::vars::{split_address, Vars};

use hosts::{dnslookup, manualroute};
pub use hosts::{host_addresses, is_local_address};

/// A host chosen by a router (manualroute, dnslookup).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoutedHost {
    pub name: String,
    /// Known address (IP literal or looked up); None until resolved.
    pub ip: Option<IpAddr>,
    /// The router's `self = send` allows this host although it is us.
    pub allow_local: bool,
    /// The MX preference when the host came from an MX record.
    pub mx: Option<u16>,
}

impl RoutedHost {
    fn named(name: String, ip: Option<IpAddr>) -> RoutedHost {
        RoutedHost {
            name,
            ip,
            allow_local: false,
            mx: None,
        }
    }
}

/// What a router adds to the addresses it handles, inherited by the
/// addresses a redirection generates from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Props {
    /// `errors_to`: where bounces go and the return path of the delivery;
    /// `Some("")` means no bounce at all.
    pub errors_to: Option<String>,
    /// `headers_add` lines, in the order they are added.
    pub headers_add: Vec<String>,
    /// `headers_remove` names.
    pub headers_remove: Vec<String>,
}

impl Props {
    /// The properties of an address routed by a router that set `own`,
    /// when the address already carried `self` (from its parents).
    pub fn with(&self, own: &Props) -> Props {
        let mut p = self.clone();
        if own.errors_to.is_some() {
            p.errors_to = own.errors_to.clone();
        }
        p.headers_add.extend(own.headers_add.iter().cloned());
        p.headers_remove.extend(own.headers_remove.iter().cloned());
        p
    }
}

/// A router's decision plus what comes with it.
#[derive(Debug, Clone)]
pub struct Routing {
    pub routed: Routed,
    /// The accepting router's errors_to and header changes.
    pub props: Props,
    /// `unseen`: a copy of the address goes on to the router at this index.
    pub unseen_next: Option<usize>,
    /// For a deferral: the errno Exim logs (`defer (-32)`), and whether the
    /// message is to be frozen (manualroute's `host_find_failed = freeze`).
    pub errno: i32,
    pub freeze: bool,
    /// Lines for the main log, written before the outcome's own.
    pub notes: Vec<String>,
    /// Whether `-bt` shows the notes too (Exim logs them while testing).
    pub notes_in_bt: bool,
    /// `self = pass`: go on to the next router; `routed` holds the failure
    /// to report if no router takes the address.
    pub pass: bool,
}

impl From<Routed> for Routing {
    fn from(routed: Routed) -> Routing {
        Routing {
            routed,
            props: Props::default(),
            unseen_next: None,
            errno: -1,
            freeze: false,
            notes: Vec::new(),
            notes_in_bt: false,
            pass: false,
        }
    }
}

/// The decision for one address.
#[derive(Debug, Clone)]
pub enum Routed {
    /// Deliver through `transport` (to `hosts` when the router chose them).
    Transport {
        router: String,
        transport: String,
        hosts: Vec<RoutedHost>,
    },
    /// `:blackhole:`: discard, logged as delivered.
    Blackhole { router: String },
    /// Replaced by these addresses, to be routed from the first router.
    Redirected { children: Vec<String> },
    /// Permanent failure.
    Fail {
        router: Option<String>,
        message: String,
    },
    /// Temporary failure.
    Defer {
        router: Option<String>,
        message: String,
    },
}

fn list_match(
    list: &Option<String>,
    vars: &Vars,
    f: impl FnOnce(&str) -> Result<bool, String>,
) -> Result<bool, String> {
    match list {
        None => Ok(true),
        Some(raw) => {
            let expanded = oxim_conf::expand(raw, vars).map_err(|e| e.to_string())?;
            f(&expanded)
        }
    }
}

/// Run the generic preconditions of a router. `Ok(false)` means "skip".
fn preconditions(
    ctx: &Ctx,
    r: &RouterSpec,
    address: &str,
    sender: &str,
    vars: &Vars,
    verifying: bool,
) -> Result<bool, String> {
    if r.verify_only && !verifying {
        return Ok(false);
    }
    if !r.verify && verifying {
        return Ok(false);
    }
    let (lp, domain) = split_address(address);
    let cfg = &ctx.config;
    if !list_match(&r.domains, vars, |l| {
        oxim_conf::match_domain(l, domain, cfg, vars).map_err(|e| e.to_string())
    })? {
        return Ok(false);
    }
    if !list_match(&r.local_parts, vars, |l| {
        oxim_conf::match_local_part(l, lp, cfg, vars).map_err(|e| e.to_string())
    })? {
        return Ok(false);
    }
    if r.check_local_user && nix::unistd::User::from_name(lp).ok().flatten().is_none() {
        return Ok(false);
    }
    if !list_match(&r.senders, vars, |l| {
        oxim_conf::match_address(l, sender, cfg, vars).map_err(|e| e.to_string())
    })? {
        return Ok(false);
    }
    if let Some(cond) = &r.condition {
        let v = oxim_conf::expand(cond, vars).map_err(|e| e.to_string())?;
        if !condition_true(&v)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Exim's truth rule for a `condition` option's expanded value.
fn condition_true(v: &str) -> Result<bool, String> {
    let t = v.trim();
    if t.is_empty() || t == "0" || t.eq_ignore_ascii_case("no") || t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if t.chars().all(|c| c.is_ascii_digit())
        || t.eq_ignore_ascii_case("yes")
        || t.eq_ignore_ascii_case("true")
    {
        Ok(true)
    } else {
        Err(format!("\"{t}\" is not a valid condition value"))
    }
}

/// Route one address through the whole chain.
pub async fn route(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
) -> Routing {
    route_from(ctx, address, sender, base, verifying, 0).await
}

/// Route one address through the chain starting at router index `start`
/// (past 0 for the copy an `unseen` router passes on).
pub async fn route_from(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
    start: usize,
) -> Routing {
    let mut vars = base.clone();
    vars.set_address(address);
    let mut passed = None;
    for (index, r) in ctx.drivers.routers.iter().enumerate().skip(start) {
        match preconditions(ctx, r, address, sender, &vars, verifying) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                return Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand condition for {} router: {e}", r.name),
                }
                .into()
            }
        }
        let mut rvars = vars.clone();
        if let Some(ad) = &r.address_data {
            match oxim_conf::expand(ad, &rvars) {
                Ok(v) => {
                    rvars.set("address_data", v);
                }
                Err(e) => {
                    return Routed::Defer {
                        router: Some(r.name.clone()),
                        message: format!("failed to expand address_data: {e}"),
                    }
                    .into()
                }
            }
        }
        let outcome: Option<Routing> = match &r.kind {
            RouterKind::Accept => Some(transport_result(r, Vec::new(), &rvars)),
            RouterKind::Redirect {
                data,
                file,
                allow_defer,
                allow_fail,
            } => redirect(r, data, file, *allow_defer, *allow_fail, &rvars).map(Routing::from),
            RouterKind::ManualRoute { .. } => manualroute(ctx, r, &rvars).await,
            RouterKind::DnsLookup {
                widen_domains,
                qualify_single,
            } => {
                let found = dnslookup(ctx, r, widen_domains, *qualify_single, &rvars).await;
                found.map(|(routing, domain)| match domain {
                    // A widened or qualified domain makes a new address,
                    // routed again from the first router (as in Exim).
                    Some(d) => Routing::from(Routed::Redirected {
                        children: vec![format!("{}@{d}", split_address(address).0)],
                    }),
                    None => routing,
                })
            }
        };
        match outcome {
            // `self = pass`: the next router, whatever `more` says.
            Some(routing) if routing.pass => {
                passed = Some(routing.routed);
                continue;
            }
            Some(routing) => {
                let mut routing = accepted(r, index, routing, &rvars, verifying);
                // errors_to is used only when the address verifies (as in
                // Exim); otherwise bounces go to the sender as usual.
                // Not while verifying, which also stops the check recursing.
                let check_errors_to = routing.props.errors_to.clone().filter(|e| !e.is_empty());
                if let (Some(e), false) = (check_errors_to, verifying) {
                    let e = ctx.qualify_recipient(&e);
                    routing.props.errors_to = Some(e.clone());
                    let check = Box::pin(route(ctx, &e, "", base, true)).await;
                    if matches!(check.routed, Routed::Fail { .. } | Routed::Defer { .. }) {
                        routing.props.errors_to = None;
                    }
                }
                return routing;
            }
            None if r.more => continue,
            None => break,
        }
    }
    // Unrouted; after a `self = pass`, with its reason.
    passed
        .unwrap_or(Routed::Fail {
            router: None,
            message: "Unrouteable address".into(),
        })
        .into()
}

/// Attach the router's generic effects (errors_to, headers_add,
/// headers_remove, unseen) to a successful decision.
fn accepted(
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
    if let Some(list) = &r.headers_add {
        // Newline-separated items, each expanded on its own; an item that
        // expands to nothing adds nothing.
        for item in list.split('\n') {
            match oxim_conf::expand(item, vars) {
                Ok(v) => {
                    let v = v.trim_end_matches('\n');
                    if !v.trim().is_empty() {
                        props.headers_add.push(v.to_string());
                    }
                }
                Err(err) => return defer("headers_add", err.to_string()),
            }
        }
    }
    if let Some(list) = &r.headers_remove {
        match oxim_conf::expand(list, vars) {
            Ok(v) => props.headers_remove = oxim_conf::lists::list_items(&v),
            Err(err) => return defer("headers_remove", err.to_string()),
        }
    }
    // Exim ignores `unseen` when verifying.
    let mut unseen_next = None;
    if let (Some(u), false) = (&r.unseen, verifying) {
        match oxim_conf::expand(u, vars)
            .map_err(|e| e.to_string())
            .and_then(|v| condition_true(&v))
        {
            Ok(true) => unseen_next = Some(index + 1),
            Ok(false) => {}
            Err(err) => return defer("unseen", err),
        }
    }
    routing.props = props;
    routing.unseen_next = unseen_next;
    routing
}

/// Apply the router's `self` option. The host list is cut at the first
/// host that is this host (a lower-priority MX is dropped along with all
/// after it); only when that leaves nothing does `self` decide.
fn check_self(
    r: &RouterSpec,
    mut hosts: Vec<RoutedHost>,
    vars: &Vars,
) -> Result<Vec<RoutedHost>, Box<Routing>> {
    let Some(first_local) = hosts
        .iter()
        .position(|h| h.ip.is_some_and(is_local_address))
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

fn transport_result(r: &RouterSpec, hosts: Vec<RoutedHost>, vars: &Vars) -> Routing {
    let hosts = match check_self(r, hosts, vars) {
        Ok(h) => h,
        Err(routing) => return *routing,
    };
    match &r.transport {
        Some(t) => Routed::Transport {
            router: r.name.clone(),
            transport: t.clone(),
            hosts,
        },
        None => Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("No transport set by {} router", r.name),
        },
    }
    .into()
}

fn redirect(
    r: &RouterSpec,
    data: &Option<String>,
    file: &Option<String>,
    allow_defer: bool,
    allow_fail: bool,
    vars: &Vars,
) -> Option<Routed> {
    let text = if let Some(d) = data {
        match oxim_conf::expand(d, vars) {
            Ok(v) => v,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{d}\": {e}"),
                })
            }
        }
    } else if let Some(f) = file {
        let path = match oxim_conf::expand(f, vars) {
            Ok(v) => v,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{f}\": {e}"),
                })
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to open {path}: {e}"),
                })
            }
        }
    } else {
        return None;
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed == ":blackhole:" {
        return Some(Routed::Blackhole {
            router: r.name.clone(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix(":fail:") {
        if !allow_fail {
            return Some(Routed::Defer {
                router: Some(r.name.clone()),
                message: ":fail: not permitted".into(),
            });
        }
        return Some(Routed::Fail {
            router: Some(r.name.clone()),
            message: rest.trim().to_string(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix(":defer:") {
        if !allow_defer {
            return Some(Routed::Defer {
                router: Some(r.name.clone()),
                message: ":defer: not permitted".into(),
            });
        }
        return Some(Routed::Defer {
            router: Some(r.name.clone()),
            message: rest.trim().to_string(),
        });
    }
    if trimmed == ":unknown:" {
        return None;
    }
    let children: Vec<String> = trimmed
        .split([',', '\n'])
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && !s.starts_with('#'))
        .map(|s| {
            crate::message::extract_addresses(s)
                .into_iter()
                .next()
                .unwrap_or_default()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if children.is_empty() {
        return None;
    }
    Some(Routed::Redirected { children })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_values() {
        assert_eq!(condition_true("yes"), Ok(true));
        assert_eq!(condition_true(" no "), Ok(false));
        assert_eq!(condition_true(""), Ok(false));
        assert_eq!(condition_true("12"), Ok(true));
        assert!(condition_true("maybe").is_err());
    }

    #[test]
    fn props_inherit() {
        let parent = Props {
            errors_to: Some("owner@x".into()),
            headers_add: vec!["X-A: 1".into()],
            headers_remove: vec!["Subject".into()],
        };
        let own = Props {
            errors_to: None,
            headers_add: vec!["X-B: 2".into()],
            headers_remove: vec![],
        };
        let p = parent.with(&own);
        assert_eq!(p.errors_to.as_deref(), Some("owner@x"));
        assert_eq!(p.headers_add, vec!["X-A: 1", "X-B: 2"]);
        assert_eq!(p.headers_remove, vec!["Subject"]);
    }
}
