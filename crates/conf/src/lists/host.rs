//! Host lists: addresses, networks, names, and what matching them has
//! to look up.

use super::*;

/// Matches `ip` against an address or CIDR network; `None` if `pattern`
/// is not an address.
pub(crate) fn cidr_match(pattern: &str, ip: IpAddr) -> Option<bool> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let p: IpAddr = addr.parse().ok()?;
    let ip = match (p, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    Some(match (p, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    })
}

/// Matches a host (IP address and, if known, its verified name) against a
/// host list. Plain host names match when `ctx` resolves them to `ip`
/// (see [`ExpandContext::host_addresses`]) or, failing that, when they
/// equal `name`.
pub fn match_host(
    list: &str,
    ip: IpAddr,
    name: Option<&str>,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    let mut trace = Trace::off();
    match_host_probe(list, ip, name, cfg, ctx, &mut Probe::new(&mut trace, ""))
}

/// [`match_host`] with a [`Probe`] (trace, named-list cache, item data).
pub fn match_host_probe(
    list: &str,
    ip: IpAddr,
    name: Option<&str>,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    probe: &mut Probe<'_>,
) -> Result<bool, ListError> {
    let mut caseful = false;
    // The client's names once known (looked up when an item needs them).
    let mut known: Option<Vec<String>> = name.map(|n| vec![n.to_string()]);
    walk(
        list,
        ListKind::Host,
        cfg,
        ctx,
        0,
        &mut caseful,
        probe,
        &mut |item, _, probe| {
            if item == "*" {
                return Ok(Hit::Yes);
            }
            if item.is_empty() {
                return Ok(Hit::No);
            }
            if let Some(r) = cidr_match(item, ip) {
                return Ok(r.into());
            }
            if item == "@[]" {
                return Ok(local_interface_ips(cfg, ctx).contains(&ip).into());
            }
            if let Some((mask, lookup)) = net_lookup(item) {
                let key = masked_ip_key(ip, mask, lookup.starts_with("iplsearch"));
                if let Some(r) = lookup_data(lookup, &key, ctx)? {
                    let hit = r.is_some();
                    probe.item_data = r;
                    return Ok(hit.into());
                }
                return Err(ListError::Unsupported(item.to_string()));
            }
            // iplsearch and friends are keyed by the address; other lookups
            // by the host's name (below).
            if item.starts_with("ip") {
                if let Some(r) = lookup_data(item, &ip.to_string(), ctx)? {
                    let hit = r.is_some();
                    probe.item_data = r;
                    return Ok(hit.into());
                }
            }
            // "@" stands for the primary host name.
            let owned;
            let item = if item == "@" {
                owned = primary_hostname(cfg, ctx);
                owned.as_str()
            } else {
                item
            };
            let plain = item
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c));
            if plain {
                // A plain name matches if it resolves to the host's address.
                match ctx.find_host(item, probe.trace) {
                    Some(crate::expand::HostFind::Found(addrs)) => {
                        return Ok(addrs.contains(&ip).into())
                    }
                    Some(crate::expand::HostFind::NotFound(why)) => return Ok(Hit::Unknown(why)),
                    Some(crate::expand::HostFind::Again(why)) => return Err(ListError::Defer(why)),
                    None => {}
                }
                if let Some(addrs) = ctx.host_addresses(item) {
                    return Ok(addrs.contains(&ip).into());
                }
                // Without a resolver, "localhost" still means the loopback address.
                if item.eq_ignore_ascii_case("localhost") {
                    return Ok(ip.is_loopback().into());
                }
            }
            // Other patterns match the host's (verified) name.
            if known.is_none() {
                probe
                    .trace
                    .line(|| format!("sender host name required, to match against {item}"));
                probe.trace.level += 1;
                let r = ctx.sender_host_names(probe.trace);
                probe.trace.level -= 1;
                match r {
                    Some(Ok(names)) => known = Some(names),
                    Some(Err(why)) => return Ok(Hit::Unknown(why)),
                    None => return Ok(Hit::Unknown(format!("failed to find host name for {ip}"))),
                }
            }
            for n in known.iter().flatten() {
                if let Some(r) = lookup_data(item, n, ctx)? {
                    if let Some(d) = r {
                        probe.item_data = Some(d);
                        return Ok(Hit::Yes);
                    }
                    continue;
                }
                if match_string(item, n, true)? {
                    return Ok(Hit::Yes);
                }
            }
            Ok(Hit::No)
        },
    )
}

/// Matches "no host" (a locally submitted message, an empty
/// `$sender_host_address`) against a host list: as in Exim, an empty item
/// matches it (`hosts = :`, `match_ip{}{:@[]}`) and so does `*`, which
/// matches everything; no other item does. Negation and named lists apply
/// as usual (`! 127.0.0.1` alone matches no host, the list's last item
/// being negated).
pub fn match_no_host(list: &str, cfg: &Config, ctx: &dyn ExpandContext) -> Result<bool, ListError> {
    let mut caseful = false;
    let mut trace = Trace::off();
    walk(
        list,
        ListKind::Host,
        cfg,
        ctx,
        0,
        &mut caseful,
        &mut Probe::new(&mut trace, ""),
        &mut |item, _, _| Ok((item.is_empty() || item == "*").into()),
    )
}

/// What matching a host list against a client may have to look up: the
/// plain host names in it (forward lookups) and whether some item needs
/// the client's own host name (a reverse lookup). Named lists are
/// followed. A caller that resolves asynchronously does the lookups first
/// and answers [`ExpandContext::find_host`] and
/// [`ExpandContext::sender_host_names`] from them.
pub fn host_list_lookups(list: &str, cfg: &Config, ctx: &dyn ExpandContext) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut wants_name = false;
    host_list_lookups_in(list, cfg, ctx, 0, &mut names, &mut wants_name);
    (names, wants_name)
}

pub(super) fn host_list_lookups_in(
    list: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    depth: usize,
    names: &mut Vec<String>,
    wants_name: &mut bool,
) {
    if depth > MAX_NAMED_DEPTH {
        return;
    }
    for raw in ListIter::new(list) {
        let (_, item) = negation(&raw);
        if item.starts_with('/') {
            if let Some(text) = ctx.read_file(item) {
                for line in text.lines() {
                    let line = strip_file_comment(line, ListKind::Host).trim();
                    if !line.is_empty() {
                        let (_, pat) = negation(line);
                        let escaped = pat.replace(':', "::");
                        host_list_lookups_in(&escaped, cfg, ctx, depth + 1, names, wants_name);
                    }
                }
            }
            continue;
        }
        if item.is_empty()
            || item == "*"
            || item == "@[]"
            || item.starts_with('/')
            || (item.contains(';') && (item.starts_with("net") || item.starts_with("ip")))
            || cidr_match(item, IpAddr::from([0, 0, 0, 0])).is_some()
        {
            continue;
        }
        if let Some(name) = item.strip_prefix('+') {
            if let Some(sub) = cfg.named_lists.get(ListKind::Host, name) {
                if let Ok(text) = expand::expand(sub, ctx) {
                    host_list_lookups_in(&text, cfg, ctx, depth + 1, names, wants_name);
                }
            }
            continue;
        }
        let item = if item == "@" {
            primary_hostname(cfg, ctx)
        } else {
            item.to_string()
        };
        if item
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c))
        {
            if !names.contains(&item) {
                names.push(item);
            }
        } else {
            *wants_name = true;
        }
    }
}

/// `net[N]-type;file` in a host list: the mask length (`None` when absent)
/// and the `type;file` part.
fn net_lookup(item: &str) -> Option<(Option<u32>, &str)> {
    let rest = item.strip_prefix("net")?;
    let (semi, _) = rest.split_once(';')?;
    let digits = semi.bytes().take_while(u8::is_ascii_digit).count();
    let lookup = rest[digits..].strip_prefix('-')?;
    let mask = if digits == 0 {
        None
    } else {
        Some(rest[..digits].parse().ok()?)
    };
    Some((mask, lookup))
}

/// The key of a `net[N]-` lookup: the address masked to N bits, in Exim's
/// text form (IPv6 as eight 4-digit groups, separated by dots except for
/// `iplsearch`), with `/N` appended when a mask is given.
pub(super) fn masked_ip_key(ip: IpAddr, mask: Option<u32>, colons: bool) -> String {
    let mut s = match ip {
        IpAddr::V4(a) => {
            let bits = mask.unwrap_or(32).min(32);
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            std::net::Ipv4Addr::from(u32::from(a) & m).to_string()
        }
        IpAddr::V6(a) => {
            let bits = mask.unwrap_or(128).min(128);
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let v = u128::from(a) & m;
            let sep = if colons { ":" } else { "." };
            (0..8)
                .map(|i| format!("{:04x}", (v >> (112 - 16 * i)) & 0xffff))
                .collect::<Vec<_>>()
                .join(sep)
        }
    };
    if let Some(m) = mask {
        s.push_str(&format!("/{m}"));
    }
    s
}
