//! The router chain: each address is offered to the routers in order until one
//! accepts, redirects, fails or defers it.

use std::net::IpAddr;

use crate::ctx::Ctx;
use crate::settings::{RouterKind, RouterSpec};
use crate::vars::{split_address, Vars};

/// A host chosen by a router (manualroute, dnslookup).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoutedHost {
    pub name: String,
    /// Known address (IP literal or looked up); None until resolved.
    pub ip: Option<IpAddr>,
    /// The router's `self = send` allows this host although it is us.
    pub allow_local: bool,
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

/// Route one address through the chain starting at router index `start`.
pub async fn route(ctx: &Ctx, address: &str, sender: &str, base: &Vars, verifying: bool) -> Routed {
    let mut vars = base.clone();
    vars.set_address(address);
    for r in &ctx.drivers.routers {
        match preconditions(ctx, r, address, sender, &vars, verifying) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                return Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand condition for {} router: {e}", r.name),
                }
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
                }
            }
        }
        let outcome = match &r.kind {
            RouterKind::Accept => Some(transport_result(r, Vec::new())),
            RouterKind::Redirect {
                data,
                file,
                allow_defer,
                allow_fail,
            } => redirect(r, data, file, *allow_defer, *allow_fail, &rvars),
            RouterKind::ManualRoute {
                route_list,
                route_data,
            } => manualroute(r, route_list, route_data, &rvars),
            RouterKind::DnsLookup => dnslookup(ctx, r, &rvars).await,
        };
        match outcome {
            Some(o) => return o,
            None if r.more => continue,
            None => break,
        }
    }
    Routed::Fail {
        router: None,
        message: "Unrouteable address".into(),
    }
}

/// Apply the router's `self` option when one of its hosts is this host.
fn check_self(
    r: &RouterSpec,
    mut hosts: Vec<RoutedHost>,
) -> Result<Vec<RoutedHost>, Option<Routed>> {
    let is_self = |h: &RoutedHost| h.ip.is_some_and(super::is_local_address);
    if !hosts.iter().any(is_self) {
        return Ok(hosts);
    }
    let first_local = hosts
        .iter()
        .find(|h| is_self(h))
        .map(|h| h.name.clone())
        .unwrap_or_default();
    match r.self_action.as_str() {
        "send" => {
            for h in hosts.iter_mut() {
                h.allow_local = true;
            }
            Ok(hosts)
        }
        "pass" => Err(None),
        "fail" => Err(Some(Routed::Fail {
            router: Some(r.name.clone()),
            message: format!("lowest numbered MX record points to local host: {first_local}"),
        })),
        _ => Err(Some(Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("lowest numbered MX record points to local host: {first_local}"),
        })),
    }
}

fn transport_result(r: &RouterSpec, hosts: Vec<RoutedHost>) -> Routed {
    let hosts = match check_self(r, hosts) {
        Ok(h) => h,
        Err(Some(routed)) => return routed,
        Err(None) => {
            return Routed::Fail {
                router: Some(r.name.clone()),
                message: "Unrouteable address".into(),
            }
        }
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

/// Parse a host list as manualroute writes it (`a:b:[1.2.3.4]`).
fn parse_hosts(list: &str) -> Vec<RoutedHost> {
    oxim_conf::lists::list_items(list)
        .iter()
        .map(|h| {
            let bare = h.trim_start_matches('[').trim_end_matches(']');
            RoutedHost {
                name: bare.to_string(),
                ip: bare.parse().ok(),
                allow_local: false,
            }
        })
        .collect()
}

fn manualroute(
    r: &RouterSpec,
    route_list: &Option<String>,
    route_data: &Option<String>,
    vars: &Vars,
) -> Option<Routed> {
    let domain = vars.get("domain").unwrap_or("").to_string();
    let hosts_text = if let Some(rd) = route_data {
        match oxim_conf::expand(rd, vars) {
            Ok(v) if v.trim().is_empty() => return None,
            Ok(v) => v,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand route_data: {e}"),
                })
            }
        }
    } else if let Some(rl) = route_list {
        let mut found = None;
        for item in rl.split(';') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mut parts = item.splitn(2, char::is_whitespace);
            let pattern = parts.next().unwrap_or("");
            let rest = parts.next().unwrap_or("").trim();
            let matched = pattern == "*"
                || pattern.eq_ignore_ascii_case(&domain)
                || pattern.strip_prefix("*.").is_some_and(|s| {
                    domain
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", s.to_ascii_lowercase()))
                });
            if matched {
                let hosts = rest.split_whitespace().next().unwrap_or("").to_string();
                match oxim_conf::expand(&hosts, vars) {
                    Ok(h) => found = Some(h),
                    Err(e) => {
                        return Some(Routed::Defer {
                            router: Some(r.name.clone()),
                            message: format!("failed to expand route_list: {e}"),
                        })
                    }
                }
                break;
            }
        }
        found?
    } else {
        return None;
    };
    let hosts = parse_hosts(&hosts_text);
    if hosts.is_empty() {
        return None;
    }
    Some(transport_result(r, hosts))
}

async fn dnslookup(ctx: &Ctx, r: &RouterSpec, vars: &Vars) -> Option<Routed> {
    let domain = vars.get("domain").unwrap_or("").to_string();
    if domain.is_empty() {
        return None;
    }
    match ctx.dns.mx(&domain).await {
        Ok(mxs) if !mxs.is_empty() => {
            let hosts = mxs
                .into_iter()
                .map(|m| RoutedHost {
                    name: m.exchange,
                    ip: None,
                    allow_local: false,
                })
                .collect();
            Some(transport_result(r, hosts))
        }
        Ok(_) | Err(crate::dns::LookupFailure::NotFound) => {
            // No MX: fall back to the domain's own address records.
            match ctx.dns.addresses(&domain).await {
                Ok(_) => Some(transport_result(
                    r,
                    vec![RoutedHost {
                        name: domain,
                        ip: None,
                        allow_local: false,
                    }],
                )),
                Err(crate::dns::LookupFailure::NotFound) => None,
                Err(crate::dns::LookupFailure::Temporary(e)) => Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("host lookup did not complete: {e}"),
                }),
            }
        }
        Err(crate::dns::LookupFailure::Temporary(e)) => Some(Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("host lookup did not complete: {e}"),
        }),
    }
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
    fn host_lists() {
        let h = parse_hosts("<; 127.0.0.1 ; mx.example ; [::1]");
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h[1].ip, None);
        assert_eq!(h[2].ip, Some("::1".parse().unwrap()));
    }
}
