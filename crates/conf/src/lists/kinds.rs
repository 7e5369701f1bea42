//! Domain, local-part and address lists.

use super::*;

pub(super) fn domain_item(
    item: &str,
    domain: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    domain_item_case(item, domain, true, cfg, ctx)
}

/// [`domain_item`]; names compared casefully unless `caseless` (the domain
/// of an address-list item after `+caseful`).
fn domain_item_case(
    item: &str,
    domain: &str,
    caseless: bool,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    if item == "@" {
        return Ok(primary_hostname(cfg, ctx).eq_ignore_ascii_case(domain));
    }
    if item == "@[]" {
        let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) else {
            return Ok(false);
        };
        let lit = lit.strip_prefix("IPv6:").unwrap_or(lit);
        return Ok(lit
            .parse::<IpAddr>()
            .is_ok_and(|ip| local_interface_ips(cfg, ctx).contains(&ip)));
    }
    if item.starts_with("@mx_") {
        return Err(ListError::Unsupported(item.to_string()));
    }
    if item.starts_with('+') {
        return match_domain(item, domain, cfg, ctx);
    }
    if let Some(r) = lookup_item(item, domain, ctx)? {
        return Ok(r);
    }
    match_string(item, domain, caseless)
}

/// Exim's test for a whole-address lookup in an address list: a name of
/// letters, digits and hyphens, an optional `*` then `@`, then `;`.
fn whole_address_lookup(item: &str) -> bool {
    let rest = item.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-');
    let rest = rest.strip_prefix('*').unwrap_or(rest);
    let rest = rest.strip_prefix('@').unwrap_or(rest);
    rest.starts_with(';')
}

/// Matches `domain` against a domain list.
///
/// All `match_*` functions take the list *already expanded* by the caller
/// (expanding it here again would re-expand untrusted data); the contents
/// of `+name` named lists are expanded when referenced. Items: `!`
/// negation, `+name`, `*`/`*suffix` wildcards, `^regex` (optionally in
/// `\N...\N`), `@` (primary host name), `@[]` (local interface literals),
/// `lsearch;file` lookups, and plain case-insensitive names. The first
/// matching item decides (a negated item means "no match"); when nothing
/// matches, the result is "match" only if the last item was negated, so
/// `! +local_domains` matches every non-local domain (Exim's rule).
pub fn match_domain(
    list: &str,
    domain: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    let mut trace = Trace::off();
    match_domain_probe(list, domain, cfg, ctx, &mut Probe::new(&mut trace, ""))
}

/// [`match_domain`] with a [`Probe`] (trace, named-list cache, item data).
pub fn match_domain_probe(
    list: &str,
    domain: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    probe: &mut Probe<'_>,
) -> Result<bool, ListError> {
    let mut caseful = false;
    walk(
        list,
        ListKind::Domain,
        cfg,
        ctx,
        0,
        &mut caseful,
        probe,
        &mut |item, _, _| domain_item(item, domain, cfg, ctx).map(Hit::from),
    )
}

/// Matches `local_part` against a local-part list. Matching is caseless
/// unless the list contains `+caseful` (which applies to later items).
pub fn match_local_part(
    list: &str,
    local_part: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    let mut trace = Trace::off();
    match_local_part_probe(list, local_part, cfg, ctx, &mut Probe::new(&mut trace, ""))
}

/// [`match_local_part`] with a [`Probe`] (trace, named-list cache, item data).
pub fn match_local_part_probe(
    list: &str,
    local_part: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    probe: &mut Probe<'_>,
) -> Result<bool, ListError> {
    let mut caseful = false;
    walk(
        list,
        ListKind::LocalPart,
        cfg,
        ctx,
        0,
        &mut caseful,
        probe,
        &mut |item, caseful, _| {
            if let Some(r) = lookup_item(item, local_part, ctx)? {
                return Ok(r.into());
            }
            match_string(item, local_part, !caseful).map(Hit::from)
        },
    )
}

/// Matches an address (`local@domain`) against an address list. Domains
/// are caseless; local parts too unless `+caseful` precedes the item.
pub fn match_address(
    list: &str,
    address: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    let mut trace = Trace::off();
    match_address_probe(list, address, cfg, ctx, &mut Probe::new(&mut trace, ""))
}

/// [`match_address`] with a [`Probe`] (trace, named-list cache, item data).
pub fn match_address_probe(
    list: &str,
    address: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    probe: &mut Probe<'_>,
) -> Result<bool, ListError> {
    let (lp, dom) = match address.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (address, ""),
    };
    let mut caseful = false;
    walk(
        list,
        ListKind::Address,
        cfg,
        ctx,
        0,
        &mut caseful,
        probe,
        &mut |item, caseful, probe| {
            let p = unquote_regex(item);
            if p.starts_with('^') {
                // The domain is always matched in lower case.
                let subject = match address.rsplit_once('@') {
                    Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
                    None => address.to_string(),
                };
                return regex_match(p, &subject, !caseful).map(Hit::from);
            }
            if let Some(lookup) = item.strip_prefix("@@") {
                if lookup.contains(';') {
                    if address.is_empty() {
                        return Ok(Hit::No);
                    }
                    return split_lookup(lookup, lp, dom, caseful, ctx).map(Hit::from);
                }
            }
            if whole_address_lookup(item) {
                if let Some(r) = lookup_item(item, address, ctx)? {
                    return Ok(r.into());
                }
            }
            // An empty address matches only an empty item.
            if address.is_empty() {
                return Ok(item.is_empty().into());
            }
            // The local part first; then the domain, as a one-item domain
            // list (traced as such, as Exim does).
            let magic = |d: &str| ["", "[]", "mx_any", "mx_primary", "mx_secondary"].contains(&d);
            let owned;
            let d = match item.rsplit_once('@') {
                // "@domain": any local part at that domain (and "@" alone
                // is the primary host name).
                Some(("", "")) => "@",
                Some(("", d)) => d,
                // "lp@@", "lp@@[]", "lp@@mx_any"...: the special domains.
                Some((l, d)) if l.ends_with('@') && magic(d) => {
                    if !match_string(&l[..l.len() - 1], lp, !caseful)? {
                        return Ok(Hit::No);
                    }
                    owned = format!("@{d}");
                    owned.as_str()
                }
                Some((l, d)) => {
                    if !match_string(l, lp, !caseful)? {
                        return Ok(Hit::No);
                    }
                    d
                }
                None => item,
            };
            // An unexpanded list (a retry rule's pattern) still has the
            // domain part expanded by Exim: "\N" protects the rest.
            let d = match d.strip_prefix("\\N") {
                Some(r) => r.strip_suffix("\\N").unwrap_or(r),
                None => d,
            };
            // The subject's domain is compared in lower case (casefully
            // after "+caseful", so an upper-case item never matches).
            let subject = dom.to_ascii_lowercase();
            if !probe.trace.on() {
                return Ok(domain_item_case(d, &subject, !caseful, cfg, ctx)?.into());
            }
            let mut sub = Probe::new(&mut *probe.trace, &subject);
            let mut cf = false;
            let r = walk(
                &d.replace(':', "::"),
                ListKind::Domain,
                cfg,
                ctx,
                0,
                &mut cf,
                &mut sub,
                &mut |i, _, _| domain_item_case(i, &subject, !caseful, cfg, ctx).map(Hit::from),
            )?;
            Ok(r.into())
        },
    )
}

/// `@@type;file` in an address list: the domain is looked up, and the data
/// is a list of local-part patterns (`!` negates; a last item `>key`
/// chains on to the entry for `key`). No entry means no match.
fn split_lookup(
    lookup: &str,
    lp: &str,
    dom: &str,
    caseful: bool,
    ctx: &dyn ExpandContext,
) -> Result<bool, ListError> {
    // A local part of "*" (a retry rule's key) never matches.
    if lp == "*" {
        return Ok(false);
    }
    let mut key = Some(dom.to_string());
    let mut watchdog = 50;
    while let Some(k) = key.take() {
        watchdog -= 1;
        if watchdog == 0 {
            return Err(ListError::Unsupported(format!(
                "loop detected in lookup of local part of {lp}@{dom} in @@{lookup}"
            )));
        }
        let Some(Some(data)) = lookup_data(lookup, &k, ctx)? else {
            return Ok(false);
        };
        let mut items: Vec<String> = ListIter::new(&data).collect();
        if let Some(last) = items.last() {
            if let Some(next) = last.trim_start().strip_prefix('>') {
                key = Some(next.trim().to_string());
                items.pop();
            }
        }
        for it in &items {
            let (neg, pat) = match it.strip_prefix('!') {
                Some(p) => (true, p.trim_start()),
                None => (false, it.as_str()),
            };
            if match_string(pat, lp, !caseful)? {
                return Ok(!neg);
            }
        }
    }
    Ok(false)
}

/// Matches `address` against one address-list item (already expanded), as
/// a rewriting rule's pattern is matched: local parts casefully, the
/// domain in lower case. On a match, the numeric variables the match sets:
/// `$0` the whole address, then the parts matched by `*` wildcards (local
/// part first, then domain) or a regular expression's groups.
pub fn match_address_item_setup(
    item: &str,
    address: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<Option<Vec<String>>, ListError> {
    let (neg, item) = negation(item);
    let r = address_item_setup(item, address, cfg, ctx)?;
    Ok(match (neg, r) {
        (false, r) => r,
        (true, Some(_)) => None,
        (true, None) => Some(vec![address.to_string()]),
    })
}

fn address_item_setup(
    item: &str,
    address: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Result<Option<Vec<String>>, ListError> {
    let mut nums = vec![address.to_string()];
    let (lp, dom) = match address.rsplit_once('@') {
        Some((l, d)) => (l, d.to_ascii_lowercase()),
        None => (address, String::new()),
    };
    let subject = if address.contains('@') {
        format!("{lp}@{dom}")
    } else {
        address.to_string()
    };
    if item.starts_with('+') {
        let hit = match_address(item, address, cfg, ctx)?;
        return Ok(hit.then_some(nums));
    }
    let p = unquote_regex(item);
    if p.starts_with('^') {
        let re = regex::RegexBuilder::new(p)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| ListError::Regex {
                pattern: p.to_string(),
                message: e.to_string(),
            })?;
        return Ok(re.captures(&subject).map(|caps| {
            caps.iter()
                .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                .collect()
        }));
    }
    if whole_address_lookup(item) {
        if let Some(r) = lookup_item(item, address, ctx)? {
            return Ok(r.then_some(nums));
        }
    }
    if address.is_empty() {
        return Ok(item.is_empty().then_some(nums));
    }
    if let Some(lookup) = item.strip_prefix("@@") {
        if lookup.contains(';') {
            return Ok(split_lookup(lookup, lp, &dom, true, ctx)?.then_some(nums));
        }
    }
    let magic = |d: &str| ["", "[]", "mx_any", "mx_primary", "mx_secondary"].contains(&d);
    let owned;
    let dpat = match item.rsplit_once('@') {
        Some((l, d)) => {
            let (l, d) = if l.ends_with('@') && magic(d) {
                owned = format!("@{d}");
                (&l[..l.len() - 1], owned.as_str())
            } else {
                (l, d)
            };
            if let Some(suffix) = l.strip_prefix('*') {
                if !lp.ends_with(suffix) {
                    return Ok(None);
                }
                nums.push(lp[..lp.len() - suffix.len()].to_string());
            } else if l != lp {
                return Ok(None);
            }
            d
        }
        None => item,
    };
    if let Some(suffix) = dpat.strip_prefix('*') {
        if !dom.ends_with(suffix) {
            return Ok(None);
        }
        nums.push(dom[..dom.len() - suffix.len()].to_string());
        return Ok(Some(nums));
    }
    Ok(domain_item_case(dpat, &dom, false, cfg, ctx)?.then_some(nums))
}
