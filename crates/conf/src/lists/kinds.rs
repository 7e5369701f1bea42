//! Domain, local-part and address lists.

use super::*;

pub(super) fn domain_item(
    item: &str,
    domain: &str,
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
    match_string(item, domain, true)
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
                return regex_match(p, address, !caseful).map(Hit::from);
            }
            if let Some(r) = lookup_item(item, address, ctx)? {
                return Ok(r.into());
            }
            if item.is_empty() {
                return Ok(address.is_empty().into());
            }
            // The local part first; then the domain, as a one-item domain
            // list (traced as such, as Exim does).
            let d = match item.rsplit_once('@') {
                // "@domain": any local part at that domain (and "@" alone
                // is the primary host name).
                Some(("", "")) => "@",
                Some(("", d)) => d,
                Some((l, d)) => {
                    if !match_string(l, lp, !caseful)? {
                        return Ok(Hit::No);
                    }
                    d
                }
                None => item,
            };
            if !probe.trace.on() {
                return Ok(domain_item(d, dom, cfg, ctx)?.into());
            }
            let subject = dom.to_ascii_lowercase();
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
                &mut |i, _, _| domain_item(i, dom, cfg, ctx).map(Hit::from),
            )?;
            Ok(r.into())
        },
    )
}
