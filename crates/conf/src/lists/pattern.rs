//! Matching one item: regular expressions, wildcards, lookups, and the
//! values items refer to (the primary host name, local interfaces).

use super::*;

pub(super) fn regex_match(pattern: &str, subject: &str, caseless: bool) -> Result<bool, ListError> {
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(caseless)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ListError::Regex {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?;
    Ok(re.is_match(subject))
}

/// Strips `\N...\N` quoting from a regex item.
pub(super) fn unquote_regex(p: &str) -> &str {
    p.strip_prefix("\\N")
        .and_then(|r| r.strip_suffix("\\N"))
        .unwrap_or(p)
}

/// Exim's basic string pattern: `^regex`, `*suffix`, or equality.
pub(super) fn match_string(
    pattern: &str,
    subject: &str,
    caseless: bool,
) -> Result<bool, ListError> {
    let p = unquote_regex(pattern);
    if p.starts_with('^') {
        return regex_match(p, subject, caseless);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        if subject.len() < suffix.len() {
            return Ok(false);
        }
        let tail = &subject.as_bytes()[subject.len() - suffix.len()..];
        return Ok(if caseless {
            tail.eq_ignore_ascii_case(suffix.as_bytes())
        } else {
            tail == suffix.as_bytes()
        });
    }
    Ok(if caseless {
        pattern.eq_ignore_ascii_case(subject)
    } else {
        pattern == subject
    })
}

/// `type;file` lookups inside lists (the lsearch family, see
/// [`crate::lookup`]). `None` when the item is not a lookup.
pub(super) fn lookup_item(
    item: &str,
    key: &str,
    ctx: &dyn ExpandContext,
) -> Result<Option<bool>, ListError> {
    Ok(lookup_data(item, key, ctx)?.map(|d| d.is_some()))
}

/// [`lookup_item`] giving the data found.
pub(super) fn lookup_data(
    item: &str,
    key: &str,
    ctx: &dyn ExpandContext,
) -> Result<Option<Option<String>>, ListError> {
    let Some((ltype, file)) = item.split_once(';') else {
        return Ok(None);
    };
    let ltype = ltype.trim();
    if ltype.is_empty()
        || !ltype
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-*@_(),=.".contains(&c))
    {
        return Ok(None);
    }
    let Some(spec) = crate::lookup::LookupSpec::parse(ltype) else {
        return Err(ListError::Unsupported(item.to_string()));
    };
    let file = file.trim();
    let text = ctx
        .read_file(file)
        .ok_or_else(|| ListError::Expand(ExpandError::LookupFile(file.to_string())))?;
    Ok(Some(crate::lookup::search(&spec, &text, key)))
}

pub(super) fn primary_hostname(cfg: &Config, ctx: &dyn ExpandContext) -> String {
    ctx.var("primary_hostname")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| cfg.main.str("primary_hostname").to_string())
}

pub(super) fn local_interface_ips(cfg: &Config, ctx: &dyn ExpandContext) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = Vec::new();
    let src = ctx
        .var("interface_addresses")
        .unwrap_or_else(|| cfg.main.str("local_interfaces").to_string());
    for item in ListIter::new(&src) {
        // "ip.port" and "[ip]:port" forms: keep the address part.
        let t = item.trim_start_matches('[');
        let t = t.split(']').next().unwrap_or(t);
        if let Ok(a) = t.parse::<IpAddr>() {
            v.push(a);
        } else if let Some((a, _port)) = t.rsplit_once('.') {
            if let Ok(a) = a.parse::<IpAddr>() {
                v.push(a);
            }
        }
    }
    if v.is_empty() {
        v.push(IpAddr::from([127, 0, 0, 1]));
        v.push(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]));
    }
    v
}

/// Splits off a leading `!` (with optional white space after it).
pub(super) fn negation(item: &str) -> (bool, &str) {
    match item.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, item),
    }
}
