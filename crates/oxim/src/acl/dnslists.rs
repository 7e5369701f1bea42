//! The `dnslists` ACL condition: is the client (or a given key) listed in
//! DNS black lists? Items are `domain[=ip,ip | ==.. | &mask | !=.. ][/keys]`,
//! optionally `txtdomain,domain`, and `+include_unknown`, `+exclude_unknown`,
//! `+defer_unknown`. Lookups are cached for the session, for the TTL the
//! DNS gave. On a match `$dnslist_domain`, `$dnslist_matched`,
//! `$dnslist_value` and `$dnslist_text` are set.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use oxim_conf::{ListIter, Trace};

use crate::ctx::Ctx;
use crate::dns::LookupFailure;
use crate::vars::Vars;

/// Positive answers are kept at most this long (Exim's limit).
const MAX_TTL: u32 = 3600;

/// The session's cache of black list lookups, by query name.
#[derive(Debug, Default)]
pub struct DnsblCache(HashMap<String, Entry>);

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    expiry: Instant,
    /// The TXT record, once looked up.
    text: Option<Option<String>>,
}

#[derive(Debug, Clone)]
enum Answer {
    Found(Vec<Ipv4Addr>),
    NotFound,
    Defer,
}

/// What to do when a lookup cannot complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Include,
    Exclude,
    Defer,
}

/// The result of a `dnslists` condition.
#[derive(Debug, PartialEq, Eq)]
pub enum Listed {
    Yes,
    No,
    /// A lookup deferred under `+defer_unknown`.
    Defer,
}

/// How the returned addresses must relate to an item's address list.
#[derive(Debug, Clone, Copy)]
struct IpTest<'a> {
    list: &'a str,
    bitmask: bool,
    negated: bool,
    all: bool,
}

/// The reversed form of an address as black lists key it: dotted octets
/// for IPv4, nibbles for IPv6.
fn invert(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (0..32)
                .map(|i| format!("{:x}", (v >> (4 * i)) & 0xf))
                .collect::<Vec<_>>()
                .join(".")
        }
    }
}

/// Runs the check over an expanded list. `logs` collects main-log lines.
pub async fn check(
    ctx: &Ctx,
    list: &str,
    host_ip: Option<IpAddr>,
    vars: &mut Vars,
    cache: &mut DnsblCache,
    trace: &mut Trace,
    logs: &mut Vec<String>,
) -> Listed {
    let mut unknown = Unknown::Exclude;
    for item in ListIter::new(list) {
        trace.plain(|| format!("dnslists check: {item}"));
        if item.starts_with('+') {
            match item.to_ascii_lowercase().as_str() {
                "+include_unknown" => unknown = Unknown::Include,
                "+exclude_unknown" => unknown = Unknown::Exclude,
                "+defer_unknown" => unknown = Unknown::Defer,
                _ => logs.push(format!("unknown item in dnslist (ignored): {item}")),
            }
            continue;
        }
        let (head, keys) = match item.split_once('/') {
            Some((h, k)) => (h, Some(k)),
            None => (item.as_str(), None),
        };
        // "domain=ips", "domain==ips", "domain&mask", "domain=&mask",
        // each optionally negated with "!" before the "=" or "&".
        let (mut domains, test) = match head.find(['=', '&']) {
            None => (head, None),
            Some(i) => {
                let bitmask0 = head.as_bytes()[i] == b'&';
                let (mut d, mut rest) = (&head[..i], &head[i + 1..]);
                let negated = d.ends_with('!');
                if negated {
                    d = &d[..d.len() - 1];
                }
                let (mut bitmask, mut all) = (bitmask0, false);
                if !bitmask0 && (rest.starts_with('=') || rest.starts_with('&')) {
                    bitmask = rest.starts_with('&');
                    all = true;
                    rest = &rest[1..];
                }
                (
                    d,
                    Some(IpTest {
                        list: rest,
                        bitmask,
                        negated,
                        all,
                    }),
                )
            }
        };
        // "txtdomain,domain": the second is looked up first.
        let mut txt_domain = domains;
        if let Some((t, d)) = domains.split_once(',') {
            txt_domain = t;
            domains = d;
        }
        for d in [domains, txt_domain] {
            if !d
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
            {
                logs.push(format!(
                    "dnslists domain \"{d}\" contains strange characters - is this right?"
                ));
                break;
            }
        }
        let keyed: Vec<(String, String)> = match keys {
            None => {
                let Some(ip) = host_ip else { return Listed::No };
                vec![(ip.to_string(), invert(ip))]
            }
            Some(k) => ListIter::new(k)
                .map(|k| {
                    let prepend = k
                        .parse::<IpAddr>()
                        .map(invert)
                        .unwrap_or_else(|_| k.clone());
                    (k, prepend)
                })
                .collect(),
        };
        let mut deferred = false;
        for (key, prepend) in keyed {
            let r = one(
                ctx, domains, txt_domain, &key, &prepend, test, unknown, cache, trace, logs, vars,
            )
            .await;
            match r {
                Some(Listed::Yes) => {
                    vars.set("dnslist_domain", txt_domain);
                    vars.set("dnslist_matched", key.clone());
                    trace.plain(|| format!("=> that means {key} is listed at {txt_domain}"));
                    return Listed::Yes;
                }
                Some(Listed::Defer) => deferred = true,
                _ => {}
            }
        }
        if deferred {
            return Listed::Defer;
        }
    }
    Listed::No
}

/// One lookup of `prepend.domain`; `None` is "not listed".
#[allow(clippy::too_many_arguments)]
async fn one(
    ctx: &Ctx,
    domain: &str,
    txt_domain: &str,
    key: &str,
    prepend: &str,
    test: Option<IpTest<'_>>,
    unknown: Unknown,
    cache: &mut DnsblCache,
    trace: &mut Trace,
    logs: &mut Vec<String>,
    vars: &mut Vars,
) -> Option<Listed> {
    let query = format!("{prepend}.{domain}");
    if query.len() >= 256 {
        logs.push(format!("dnslist query is too long (ignored): {query}..."));
        return None;
    }
    let now = Instant::now();
    let fresh = cache.0.get(&query).is_some_and(|e| e.expiry > now);
    if fresh {
        trace.plain(|| "dnslists: using result of previous lookup".into());
    } else {
        if cache.0.contains_key(&query) {
            trace.plain(|| "cached data found but past valid time; ".into());
        }
        trace.plain(|| format!("new DNS lookup for {query}"));
        let (answer, ttl) = match ctx.dns.a_with_ttl(&query).await {
            Ok((addrs, ttl)) => (Answer::Found(addrs), ttl.min(MAX_TTL)),
            Err((LookupFailure::NotFound, neg)) => (Answer::NotFound, neg.unwrap_or(MAX_TTL)),
            Err((LookupFailure::Temporary(_), _)) => (Answer::Defer, MAX_TTL),
        };
        trace.plain(|| format!("dnslists: wrote cache entry, ttl={ttl}"));
        cache.0.insert(
            query.clone(),
            Entry {
                answer,
                expiry: now + Duration::from_secs(u64::from(ttl)),
                text: None,
            },
        );
    }
    let entry = cache.0.get(&query).cloned()?;
    match &entry.answer {
        Answer::Found(addrs) => {
            let value = addrs
                .iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            trace.plain(|| format!("DNS lookup for {query} succeeded (yielding {value})"));
            let in_127 = |a: &Ipv4Addr| a.octets()[0] == 127;
            let discard = |a: &Ipv4Addr, logs: &mut Vec<String>| {
                logs.push(format!(
                    "DNS list lookup for {key} at {domain} returned {a}; \
                     not in 127.0/8 and discarded"
                ))
            };
            if let Some(t) = test {
                let listed: Vec<Ipv4Addr> = ListIter::with_default(t.list, ',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
                let matches = |a: &Ipv4Addr, logs: &mut Vec<String>| {
                    if t.bitmask {
                        let mask = if in_127(a) {
                            u32::from(*a)
                        } else {
                            discard(a, logs);
                            0
                        };
                        listed.iter().any(|l| u32::from(*l) & mask == u32::from(*l))
                    } else {
                        listed.contains(a)
                    }
                };
                // "=": any returned address matches; "==": all of them.
                let mut stop_found = false;
                for a in addrs {
                    let m = matches(a, logs);
                    if t.all != m {
                        stop_found = true;
                        break;
                    }
                }
                let accepted = if t.negated != t.all {
                    !stop_found
                } else {
                    stop_found
                };
                if !accepted {
                    let why = match (t.negated, t.all) {
                        (false, false) => "was no match",
                        (true, false) => "was an exclude match",
                        (false, true) => "was an IP address that did not match",
                        (true, true) => "were no IP addresses that did not match",
                    };
                    trace.plain(|| "=> but we are not accepting this block class because".into());
                    trace.plain(|| {
                        format!(
                            "=> there {why} for {}{}{}",
                            if t.all { "=" } else { "" },
                            if t.bitmask { '&' } else { '=' },
                            t.list
                        )
                    });
                    return None;
                }
            } else {
                let mut ok = false;
                for a in addrs {
                    if in_127(a) {
                        ok = true;
                    } else {
                        discard(a, logs);
                    }
                }
                if !ok {
                    return None;
                }
            }
            if txt_domain != domain {
                return Box::pin(one(
                    ctx, txt_domain, txt_domain, key, prepend, None, unknown, cache, trace, logs,
                    vars,
                ))
                .await;
            }
            let text = match entry.text {
                Some(t) => t,
                None => {
                    let t = ctx.dns.txt(&query).await;
                    if let Some(e) = cache.0.get_mut(&query) {
                        e.text = Some(t.clone());
                    }
                    t
                }
            };
            vars.set("dnslist_value", value);
            vars.set("dnslist_text", text.unwrap_or_default());
            Some(Listed::Yes)
        }
        Answer::Defer => {
            let how = match unknown {
                Unknown::Include => "assumed in list",
                Unknown::Exclude => "assumed not in list",
                Unknown::Defer => "returned DEFER",
            };
            logs.push(format!(
                "DNS list lookup defer (probably timeout) for {query}: {how}"
            ));
            match unknown {
                Unknown::Include => Some(Listed::Yes),
                Unknown::Exclude => None,
                Unknown::Defer => Some(Listed::Defer),
            }
        }
        Answer::NotFound => {
            trace.plain(|| format!("DNS lookup for {query} failed"));
            trace.plain(|| format!("=> that means {key} is not listed at {domain}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reversed_as_black_lists_expect() {
        assert_eq!(invert("192.168.62.43".parse().unwrap()), "43.62.168.192");
        let v6 = invert("3ffe:ffff:836f:a00:a:800:200a:c031".parse().unwrap());
        assert!(v6.starts_with("1.3.0.c.a.0.0.2.0.0.8.0.a.0.0.0.0.0.a.0"));
        assert!(v6.ends_with("f.f.f.f.e.f.f.3"));
    }
}
