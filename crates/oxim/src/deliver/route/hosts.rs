//! Routers that find hosts: manualroute (its route lists) and dnslookup
//! (MX and address records), with the helpers they share.

use std::net::IpAddr;

use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::settings::{RouterKind, RouterSpec};
use crate::vars::Vars;

use super::{transport_result, AddrData, Routed, RoutedHost, Routing};

/// Parse a host list as manualroute writes it (`a:b:[1.2.3.4]`), where a
/// host may carry its own port as Exim allows (`host::25` in the list, so
/// `host:25` once split; `[ipv6]:25`).
pub(super) fn parse_hosts(list: &str) -> Vec<RoutedHost> {
    oxim_conf::lists::list_items(list)
        .iter()
        .map(|h| {
            let (name, port) = split_port(h);
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            let mut rh = RoutedHost::named(bare.to_string(), bare.parse().ok());
            rh.port = port;
            rh
        })
        .collect()
}

/// `name:port` or `[addr]:port` into the host and its port; anything else
/// (a bare IPv6 address included) is a host without a port.
fn split_port(item: &str) -> (&str, Option<u16>) {
    let split = if item.starts_with('[') {
        item.rsplit_once("]:")
            .map(|(h, p)| (&item[..h.len() + 1], p))
    } else {
        item.split_once(':').filter(|(_, p)| !p.contains(':'))
    };
    match split.and_then(|(h, p)| Some((h, p.trim().parse::<u16>().ok()?))) {
        Some((h, p)) => (h, Some(p)),
        None => (item, None),
    }
}

/// One `route_list` item or `route_data` value: the domain pattern (none
/// for route_data), the host list (which may be in double quotes) and the
/// option words after it.
pub(super) fn split_route_item(text: &str, with_pattern: bool) -> (String, String, Vec<String>) {
    let mut rest = text.trim_start();
    let mut pattern = String::new();
    if with_pattern {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        pattern = rest[..end].to_string();
        rest = rest[end..].trim_start();
    }
    let mut hosts = String::new();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut chars = quoted.char_indices();
        let mut end = quoted.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        hosts.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => hosts.push(c),
            }
        }
        rest = &quoted[end..];
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        hosts = rest[..end].to_string();
        rest = &rest[end..];
    }
    let options = rest.split_whitespace().map(str::to_string).collect();
    (pattern, hosts, options)
}

/// A random number from the standard library's per-process hash keys.
/// Fisher-Yates shuffle for `hosts_randomize`.
pub(super) fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = usize::try_from(crate::random::random_u64() % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
}

/// Addresses of a host name, as the delivery code finds them too.
pub async fn host_addresses(
    ctx: &Ctx,
    name: &str,
) -> Result<Vec<IpAddr>, crate::dns::LookupFailure> {
    if name.eq_ignore_ascii_case("localhost") {
        return Ok(vec![IpAddr::from([127, 0, 0, 1])]);
    }
    ctx.dns.addresses(name).await
}

pub(super) async fn manualroute(
    ctx: &Ctx,
    r: &RouterSpec,
    vars: &Vars,
    data: AddrData,
) -> Option<Routing> {
    let RouterKind::ManualRoute {
        route_list,
        route_data,
        hosts_randomize,
        host_find_failed,
        host_all_ignored,
    } = &r.kind
    else {
        return None;
    };
    let defer = |message: String| {
        Some(Routing::from(Routed::Defer {
            router: Some(r.name.clone()),
            message,
        }))
    };
    let domain = vars.get("domain").unwrap_or("").to_string();
    let (hosts_text, options) = if let Some(rd) = route_data {
        match oxim_conf::expand(rd, vars) {
            Ok(v) if v.trim().is_empty() => return None,
            Ok(v) => {
                let (_, hosts, options) = split_route_item(&v, false);
                (hosts, options)
            }
            Err(e) => return defer(format!("failed to expand route_data: {e}")),
        }
    } else if let Some(rl) = route_list {
        let mut found = None;
        for item in oxim_conf::lists::ListIter::with_default(rl, ';') {
            let (pattern, hosts, options) = split_route_item(&item, true);
            if pattern.is_empty() {
                continue;
            }
            match oxim_conf::match_domain(&pattern, &domain, &ctx.config, vars) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return defer(format!("route_list: {e}")),
            }
            match oxim_conf::expand(&hosts, vars) {
                Ok(h) => found = Some((h, options)),
                Err(e) => return defer(format!("failed to expand route_list: {e}")),
            }
            break;
        }
        found?
    } else {
        return None;
    };
    let mut names = parse_hosts(&hosts_text);
    if names.is_empty() {
        return None;
    }
    let randomize = options
        .iter()
        .fold(*hosts_randomize, |acc, o| match o.as_str() {
            "randomize" => true,
            "no_randomize" => false,
            _ => acc,
        });
    if randomize {
        shuffle(&mut names);
    }
    // Look the names up now, as Exim does, so -bt shows the addresses and a
    // host that does not exist is handled by host_find_failed.
    let mut hosts = Vec::new();
    let mut ignored = 0;
    let mut notes = Vec::new();
    for h in names {
        if let Some(ip) = h.ip {
            if ignore_target(ctx, r, &h.name, ip, vars) {
                ignored += 1;
            } else {
                hosts.push(h);
            }
            continue;
        }
        match host_addresses(ctx, &h.name).await {
            Ok(ips) => {
                let kept: Vec<IpAddr> = ips
                    .into_iter()
                    .filter(|&ip| !ignore_target(ctx, r, &h.name, ip, vars))
                    .collect();
                if kept.is_empty() {
                    ignored += 1;
                }
                hosts.extend(kept.into_iter().map(|ip| RoutedHost {
                    port: h.port,
                    ..RoutedHost::named(h.name.clone(), Some(ip))
                }))
            }
            Err(_) => {
                notes.push(format!("no IP address found for host {}", h.name));
                let message = format!("lookup of host \"{}\" failed in {} router", h.name, r.name);
                let mut out = Routing::from(match host_find_failed.as_str() {
                    "ignore" => {
                        ignored += 1;
                        continue;
                    }
                    "decline" => return None,
                    "fail" => Routed::Fail {
                        router: Some(r.name.clone()),
                        message,
                    },
                    _ => Routed::Defer {
                        router: Some(r.name.clone()),
                        message,
                    },
                });
                out.freeze = host_find_failed == "freeze";
                out.errno = Errno::UnknownHost;
                out.notes = notes;
                return Some(out);
            }
        }
    }
    if hosts.is_empty() && ignored > 0 {
        let message = "all hosts ignored".to_string();
        return match host_all_ignored.as_str() {
            "decline" => None,
            "fail" => Some(
                Routed::Fail {
                    router: Some(r.name.clone()),
                    message,
                }
                .into(),
            ),
            _ => defer(message),
        };
    }
    let mut out = transport_result(ctx, r, hosts, vars, data);
    // The router's own notes first, then those of the self check.
    notes.append(&mut out.notes);
    out.notes = notes;
    Some(out)
}

/// The names dnslookup tries for `domain`, in order: the domain itself, or
/// for a single-component one with `qualify_single` the resolver's search
/// domains appended instead (the resolver's RES_DEFNAMES rule, which never
/// sends the bare name); then each `widen_domains` item appended.
pub(super) fn lookup_candidates(
    domain: &str,
    qualify_single: bool,
    search: &[String],
    widen: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    if qualify_single && !domain.contains('.') && !search.is_empty() {
        out.extend(search.iter().map(|s| format!("{domain}.{s}")));
    } else {
        out.push(domain.to_string());
    }
    out.extend(widen.iter().map(|w| format!("{domain}.{w}")));
    out
}

/// The router's `ignore_target_hosts` matches this host (by address, or
/// by name); a list that does not expand ignores nothing.
fn ignore_target(ctx: &Ctx, r: &RouterSpec, name: &str, ip: IpAddr, vars: &Vars) -> bool {
    let Some(list) = &r.ignore_target_hosts else {
        return false;
    };
    let Ok(list) = oxim_conf::expand_with_config(list, vars, &ctx.config) else {
        return false;
    };
    oxim_conf::match_host(&list, ip, Some(name), &ctx.config, vars).unwrap_or(false)
}

/// Hosts for one domain name: its MX records (each host looked up), else
/// its own address records. `Ok(None)`: the name does not exist.
pub(super) async fn hosts_for(
    ctx: &Ctx,
    domain: &str,
) -> Result<Option<Vec<RoutedHost>>, crate::dns::LookupFailure> {
    use crate::dns::LookupFailure;
    match ctx.dns.mx(domain).await {
        Ok(mxs) if !mxs.is_empty() => {
            let mut hosts = Vec::new();
            for m in mxs {
                // An MX naming an IP address is against the RFCs; Exim
                // takes it as that address only with allow_mx_to_ip.
                let literal = m.exchange.trim_end_matches('.').parse::<IpAddr>();
                if let Ok(ip) = literal {
                    if ctx.settings.allow_mx_to_ip {
                        hosts.push(RoutedHost {
                            name: m.exchange.trim_end_matches('.').to_string(),
                            ip: Some(ip),
                            allow_local: false,
                            mx: Some(m.preference),
                            port: None,
                        });
                    }
                    continue;
                }
                match ctx.dns.addresses(&m.exchange).await {
                    Ok(ips) => hosts.extend(ips.into_iter().map(|ip| RoutedHost {
                        name: m.exchange.clone(),
                        ip: Some(ip),
                        allow_local: false,
                        mx: Some(m.preference),
                        port: None,
                    })),
                    // Not found: the MX host is skipped. Temporary: kept,
                    // to be looked up again at delivery.
                    Err(LookupFailure::NotFound) => {}
                    Err(LookupFailure::Temporary(_)) => hosts.push(RoutedHost {
                        name: m.exchange.clone(),
                        ip: None,
                        allow_local: false,
                        mx: Some(m.preference),
                        port: None,
                    }),
                }
            }
            Ok(Some(hosts))
        }
        Ok(_) | Err(LookupFailure::NotFound) => match ctx.dns.addresses(domain).await {
            Ok(ips) => Ok(Some(
                ips.into_iter()
                    .map(|ip| RoutedHost::named(domain.to_string(), Some(ip)))
                    .collect(),
            )),
            Err(LookupFailure::NotFound) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// dnslookup: the decision, and the domain when widening or qualifying
/// changed it.
pub(super) async fn dnslookup(
    ctx: &Ctx,
    r: &RouterSpec,
    widen_domains: &Option<String>,
    qualify_single: bool,
    vars: &Vars,
    data: AddrData,
) -> Option<(Routing, Option<String>)> {
    let domain = vars.get("domain").unwrap_or("").to_string();
    if domain.is_empty() {
        return None;
    }
    let widen = match widen_domains {
        Some(w) => match oxim_conf::expand(w, vars) {
            Ok(v) => oxim_conf::lists::list_items(&v),
            Err(e) => {
                return Some((
                    Routed::Defer {
                        router: Some(r.name.clone()),
                        message: format!("failed to expand widen_domains: {e}"),
                    }
                    .into(),
                    None,
                ))
            }
        },
        None => Vec::new(),
    };
    let search = if qualify_single && !domain.contains('.') {
        crate::dns::search_domains()
    } else {
        Vec::new()
    };
    for name in lookup_candidates(&domain, qualify_single, &search, &widen) {
        match hosts_for(ctx, &name).await {
            Ok(Some(hosts)) if hosts.is_empty() => {
                return Some((
                    Routed::Fail {
                        router: Some(r.name.clone()),
                        message: "all relevant MX records point to non-existent hosts".into(),
                    }
                    .into(),
                    None,
                ))
            }
            Ok(Some(mut hosts)) => {
                let from_mx = hosts.iter().any(|h| h.mx.is_some());
                hosts.retain(|h| {
                    h.ip.is_none_or(|ip| !ignore_target(ctx, r, &h.name, ip, vars))
                });
                if hosts.is_empty() {
                    // Every address ignored: as if none existed.
                    if !from_mx {
                        return None;
                    }
                    return Some((
                        Routed::Fail {
                            router: Some(r.name.clone()),
                            message: "all relevant MX records point to non-existent hosts".into(),
                        }
                        .into(),
                        None,
                    ));
                }
                let changed = (name != domain).then_some(name);
                return Some((transport_result(ctx, r, hosts, vars, data), changed));
            }
            Ok(None) => continue,
            // Exim's text, without the resolver's detail.
            Err(crate::dns::LookupFailure::Temporary(_)) => {
                return Some((
                    Routed::Defer {
                        router: Some(r.name.clone()),
                        message: "host lookup did not complete".into(),
                    }
                    .into(),
                    None,
                ))
            }
            Err(crate::dns::LookupFailure::NotFound) => continue,
        }
    }
    None
}

/// Is `ip` one of this host's own addresses? As in Exim, that means an
/// address of one of its interfaces (127.0.0.1 and ::1 for loopback, not all
/// of 127.0.0.0/8), or the unspecified address.
/// Whether `ip` is this host for routing and the smtp transport: an
/// address of one of its interfaces, or one listed in
/// `extra_local_interfaces`.
pub fn is_local_host(ctx: &Ctx, ip: IpAddr) -> bool {
    is_local_address(ip)
        || ctx
            .settings
            .extra_local_interfaces
            .split(':')
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .any(|a| a == ip)
}

/// [`is_local_host`] for a named host: also a host whose name is in the
/// domain list `hosts_treat_as_local` (as Exim, whatever its address).
pub fn is_local_named(ctx: &Ctx, name: &str, ip: Option<IpAddr>, vars: &Vars) -> bool {
    let list = ctx.config.main.str("hosts_treat_as_local");
    if !list.is_empty() && !name.is_empty() {
        if let Ok(list) = oxim_conf::expand(list, vars) {
            if oxim_conf::match_domain(&list, name, &ctx.config, vars).unwrap_or(false) {
                return true;
            }
        }
    }
    ip.is_some_and(|ip| is_local_host(ctx, ip))
}

pub fn is_local_address(ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return true;
    }
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs.into_iter().any(|a| {
            a.address.is_some_and(|s| {
                s.as_sockaddr_in().map(|v4| IpAddr::V4(v4.ip())) == Some(ip)
                    || s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())) == Some(ip)
            })
        }),
        // Without the interface list, at least the loopback addresses.
        Err(_) => {
            ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_items() {
        let (p, h, o) = split_route_item(
            r#"*.example  "127.0.0.1 : mx.example"  randomize byname"#,
            true,
        );
        assert_eq!(p, "*.example");
        assert_eq!(h, "127.0.0.1 : mx.example");
        assert_eq!(o, vec!["randomize", "byname"]);
        let (p, h, o) = split_route_item("a.b:c.d", false);
        assert_eq!((p.as_str(), h.as_str()), ("", "a.b:c.d"));
        assert!(o.is_empty());
    }

    #[test]
    fn shuffle_keeps_items_and_varies_order() {
        let orig: Vec<u32> = (0..8).collect();
        let mut seen_other = false;
        for _ in 0..50 {
            let mut v = orig.clone();
            shuffle(&mut v);
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(sorted, orig);
            seen_other |= v != orig;
        }
        assert!(seen_other, "50 shuffles of 8 items never changed the order");
    }

    #[test]
    fn candidates() {
        let search = vec!["corp.example".to_string()];
        let widen = vec!["a.example".to_string(), "b.example".to_string()];
        assert_eq!(
            lookup_candidates("host", true, &search, &widen),
            vec!["host.corp.example", "host.a.example", "host.b.example"]
        );
        assert_eq!(lookup_candidates("host", false, &search, &[]), vec!["host"]);
        assert_eq!(lookup_candidates("x.y", true, &search, &[]), vec!["x.y"]);
        // No search domain: the bare name is all there is to try.
        assert_eq!(lookup_candidates("host", true, &[], &[]), vec!["host"]);
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

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn hosts_with_ports() {
        let h = parse_hosts("<; 127.0.0.1:1225; b.example; [::1]:26; ::1");
        let got: Vec<_> = h.iter().map(|h| (h.name.as_str(), h.port)).collect();
        assert_eq!(
            got,
            [
                ("127.0.0.1", Some(1225)),
                ("b.example", None),
                ("::1", Some(26)),
                ("::1", None)
            ]
        );
    }
}
