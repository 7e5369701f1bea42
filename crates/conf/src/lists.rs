//! Exim list iteration and matching (domain, host, address and local-part
//! lists), spec chapter "Domain, host, address, and local part lists".

use std::net::IpAddr;

use crate::config::{Config, ListKind};
use crate::expand::{self, ExpandContext, ExpandError};
use crate::trace::{ListCache, Trace};

/// Maximum depth of `+name` references (guards against loops).
const MAX_NAMED_DEPTH: usize = 16;

/// Why a list could not be matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Expanding the list failed.
    #[error("failed to expand list: {0}")]
    Expand(#[from] ExpandError),
    /// `+name` refers to an undefined list.
    #[error("unknown named {kind} list \"+{name}\"")]
    UnknownNamedList {
        /// `domain`, `host`, `address` or `localpart`.
        kind: &'static str,
        /// The name after `+`.
        name: String,
    },
    /// A pattern form oxim does not implement yet (e.g. `@mx_any`, `dbm;`).
    #[error("unsupported list item \"{0}\"")]
    Unsupported(String),
    /// A regular expression item did not compile.
    #[error("regular expression error in \"{pattern}\": {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// A `/path` item names a file that cannot be read.
    #[error("failed to open {0} when checking a list")]
    File(String),
    /// `+name` references nest too deeply (probably a loop).
    #[error("named list references nest too deeply")]
    TooDeep,
    /// A lookup the list needed could not complete (temporary).
    #[error("{0}")]
    Defer(String),
}

/// Iterates over the items of an Exim list: default separator `:`, `<X`
/// at the start changes it, a doubled separator stands for itself, items
/// are trimmed of surrounding white space.
#[derive(Debug, Clone)]
pub struct ListIter<'a> {
    rest: &'a str,
    sep: char,
}

impl<'a> ListIter<'a> {
    /// Starts iterating `list` with the default separator `:`.
    pub fn new(list: &'a str) -> Self {
        Self::with_default(list, ':')
    }

    /// Starts iterating `list` whose default separator is `default_sep`
    /// (e.g. `;` for `route_list`); `<X` at the start still overrides it.
    pub fn with_default(list: &'a str, default_sep: char) -> Self {
        let t = list.trim_start();
        let mut chars = t.chars();
        if chars.next() == Some('<') {
            if let Some(c) = chars.next() {
                if c.is_ascii_punctuation() || c.is_ascii_control() {
                    return ListIter {
                        rest: chars.as_str(),
                        sep: c,
                    };
                }
            }
        }
        ListIter {
            rest: t,
            sep: default_sep,
        }
    }

    /// The separator in use.
    pub fn separator(&self) -> char {
        self.sep
    }
}

impl Iterator for ListIter<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let sep = self.sep;
        let s = self
            .rest
            .trim_start_matches(|c: char| c.is_whitespace() && c != sep);
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        // A doubled separator stands for itself, except for control
        // characters (such as newline), which cannot be escaped.
        let escapable = !sep.is_ascii_control();
        let mut item = String::new();
        let mut it = s.char_indices().peekable();
        let mut end = s.len();
        while let Some((i, c)) = it.next() {
            if c == sep {
                if escapable && it.peek().map(|&(_, n)| n) == Some(sep) {
                    item.push(c);
                    it.next();
                    continue;
                }
                end = i + c.len_utf8();
                break;
            }
            item.push(c);
        }
        self.rest = &s[end..];
        let trimmed = item.trim_end().len();
        item.truncate(trimmed);
        Some(item)
    }
}

/// Splits a list into its items.
pub fn list_items(list: &str) -> Vec<String> {
    ListIter::new(list).collect()
}

fn regex_match(pattern: &str, subject: &str, caseless: bool) -> Result<bool, ListError> {
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
fn unquote_regex(p: &str) -> &str {
    p.strip_prefix("\\N")
        .and_then(|r| r.strip_suffix("\\N"))
        .unwrap_or(p)
}

/// Exim's basic string pattern: `^regex`, `*suffix`, or equality.
fn match_string(pattern: &str, subject: &str, caseless: bool) -> Result<bool, ListError> {
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
fn lookup_item(item: &str, key: &str, ctx: &dyn ExpandContext) -> Result<Option<bool>, ListError> {
    Ok(lookup_data(item, key, ctx)?.map(|d| d.is_some()))
}

/// [`lookup_item`] giving the data found.
fn lookup_data(
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

fn primary_hostname(cfg: &Config, ctx: &dyn ExpandContext) -> String {
    ctx.var("primary_hostname")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| cfg.main.str("primary_hostname").to_string())
}

fn local_interface_ips(cfg: &Config, ctx: &dyn ExpandContext) -> Vec<IpAddr> {
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
fn negation(item: &str) -> (bool, &str) {
    match item.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, item),
    }
}

/// Outcome of matching one list item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hit {
    /// The item matches the subject.
    Yes,
    /// The item does not match.
    No,
    /// The item could not be decided (a host name pattern when the host's
    /// name is unknown, a name that does not resolve); `+include_unknown` /
    /// `+ignore_unknown` decide. The text says why.
    Unknown(String),
}

impl From<bool> for Hit {
    fn from(b: bool) -> Self {
        if b {
            Hit::Yes
        } else {
            Hit::No
        }
    }
}

type ItemFn<'f> = dyn FnMut(&str, bool, &mut Probe<'_>) -> Result<Hit, ListError> + 'f;

fn kind_name(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Domain => "domain",
        ListKind::Host => "host",
        ListKind::Address => "address",
        ListKind::LocalPart => "local part",
    }
}

/// What a list match reports besides its result: the trace (Exim's `-bh`
/// output), the named-list cache, and the data of the matching item.
pub struct Probe<'a> {
    /// Where the trace goes (usually off).
    pub trace: &'a mut Trace,
    /// The subject as the trace names it (`host`, the domain, ...).
    pub name: &'a str,
    /// The option whose value the list is (`host in host_lookup?`); the
    /// trace shows the list text instead when there is none.
    pub option: Option<&'a str>,
    /// Results of named lists for this subject, when the caller keeps them.
    pub cache: Option<&'a mut ListCache>,
    /// The caller takes the matching item's data (traced when cached).
    pub want_value: bool,
    /// The data of the item that matched.
    pub value: Option<String>,
    /// The cache key the trace shows, when not `name` (hosts: the address).
    pub key: Option<&'a str>,
    /// Data the matching item produced (a lookup's result), set by the
    /// item matcher.
    item_data: Option<String>,
}

impl<'a> Probe<'a> {
    /// A probe that traces into `trace` and caches nothing.
    pub fn new(trace: &'a mut Trace, name: &'a str) -> Probe<'a> {
        Probe {
            trace,
            name,
            option: None,
            cache: None,
            want_value: false,
            value: None,
            key: None,
            item_data: None,
        }
    }
}

/// The trace line for an option whose value is empty.
pub fn trace_unset(trace: &mut Trace, name: &str, option: &str) {
    trace.line(|| format!("{name} in {option}? no (option unset)"));
}

/// Generic list walk (Exim's `match_check_list`): the first matching item
/// decides; at the end of the list the result is "match" only if the last
/// item was negated. `caseful` is switched on by a `+caseful` item in
/// address and local part lists and stays on for the rest of the match.
#[allow(clippy::too_many_arguments)]
fn walk(
    list: &str,
    kind: ListKind,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    depth: usize,
    caseful: &mut bool,
    probe: &mut Probe<'_>,
    item_match: &mut ItemFn<'_>,
) -> Result<bool, ListError> {
    if depth > MAX_NAMED_DEPTH {
        return Err(ListError::TooDeep);
    }
    // The caller has expanded the top-level list (as Exim does for the
    // options that are expanded); the text of a named list comes from the
    // configuration and is expanded here, when it is used.
    let expanded;
    let text = if depth == 0 {
        list
    } else {
        expanded = expand::expand(list, ctx)?;
        expanded.as_str()
    };
    let tracing = probe.trace.on();
    let ot = if !tracing {
        String::new()
    } else {
        match (depth, probe.option) {
            (0, Some(o)) => format!("{} in {o}?", probe.name),
            _ => {
                // Exim shows the list as the separator-parsed text.
                let shown = text.trim_start();
                let shown = match shown.strip_prefix('<') {
                    Some(r) if r.starts_with(|c: char| c.is_ascii_punctuation()) => {
                        r[1..].trim_start()
                    }
                    _ => shown,
                };
                format!("{} in \"{shown}\"?", probe.name)
            }
        }
    };
    probe.trace.line(|| ot.clone());
    probe.trace.level += 1;
    let r = walk_items(text, kind, cfg, ctx, depth, caseful, probe, item_match, &ot);
    match &r {
        Ok(Decided::Item(b)) => {
            let b = *b;
            probe.trace.level -= 1;
            Ok(b)
        }
        // Exim returns from here without undoing the list's indentation:
        // the rest of its trace stays one level deeper.
        Ok(Decided::Unknown(b)) => Ok(*b),
        Ok(Decided::End(b)) => {
            let b = *b;
            probe.trace.level -= 1;
            probe
                .trace
                .line(|| format!("{ot} {} (end of list)", if b { "yes" } else { "no" }));
            Ok(b)
        }
        Err((e, item)) => {
            probe.trace.level -= 1;
            probe
                .trace
                .line(|| format!("{ot} list match deferred for {item}"));
            Err(e.clone())
        }
    }
}

/// How a list walk ended: an item decided, or the end of the list.
enum Decided {
    Item(bool),
    End(bool),
    /// An item that could not be decided ended the list.
    Unknown(bool),
}

/// The data a matching item gives (`$domain_data` and friends): the
/// pattern for domains and local parts, and for hosts matched by name.
fn item_value(kind: ListKind, item: &str, cfg: &Config, ctx: &dyn ExpandContext) -> Option<String> {
    match kind {
        ListKind::Domain | ListKind::LocalPart => Some(if item == "@" {
            primary_hostname(cfg, ctx)
        } else {
            item.to_string()
        }),
        ListKind::Host => {
            let by_address = item == "*"
                || item == "@"
                || item == "@[]"
                || item.contains(';')
                || cidr_match(item, IpAddr::from([0, 0, 0, 0])).is_some()
                || item
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c));
            (!by_address).then(|| item.to_string())
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_items(
    text: &str,
    kind: ListKind,
    cfg: &Config,
    ctx: &dyn ExpandContext,
    depth: usize,
    caseful: &mut bool,
    probe: &mut Probe<'_>,
    item_match: &mut ItemFn<'_>,
    ot: &str,
) -> Result<Decided, (ListError, String)> {
    let mut include_unknown = false;
    let mut ignore_unknown = false;
    let mut last_negated = false;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for raw in ListIter::new(text) {
        probe
            .trace
            .line(|| format!("list element: {}", visible(&raw)));
        let fail = |e: ListError| (e, raw.clone());
        match (kind, raw.as_str()) {
            (ListKind::Address | ListKind::LocalPart, "+caseful") => {
                *caseful = true;
                continue;
            }
            (ListKind::Host, "+include_unknown") => {
                (include_unknown, ignore_unknown) = (true, false);
                continue;
            }
            (ListKind::Host, "+ignore_unknown") => {
                (include_unknown, ignore_unknown) = (false, true);
                continue;
            }
            (ListKind::Host, "+include_defer" | "+ignore_defer") => continue,
            _ => {}
        }
        let (neg, item) = negation(&raw);
        last_negated = neg;
        if let Some(path) = item.strip_prefix('/').map(|_| item) {
            // A file of patterns, one per line.
            let Some(content) = ctx.read_file(path) else {
                return Err(fail(ListError::File(path.to_string())));
            };
            let mut file_neg = neg;
            for line in content.lines() {
                let line = strip_file_comment(line, kind).trim();
                if line.is_empty() {
                    continue;
                }
                let (lneg, pat) = negation(line);
                file_neg = neg != lneg;
                match item_match(pat, *caseful, probe).map_err(fail)? {
                    Hit::Yes => {
                        probe.trace.line(|| {
                            format!("{ot} {} (matched \"{line}\" in {path})", yes_no(!neg))
                        });
                        if probe.want_value {
                            probe.value = Some(pat.to_string());
                        }
                        return Ok(Decided::Item(!file_neg));
                    }
                    Hit::No => {}
                    Hit::Unknown(why) => {
                        // From a file, Exim's return undoes the indentation.
                        if let Some(d) = unknown(probe, ot, &why, include_unknown, ignore_unknown) {
                            let (Decided::Unknown(b) | Decided::Item(b) | Decided::End(b)) = d;
                            return Ok(Decided::Item(b));
                        }
                    }
                }
            }
            last_negated = file_neg;
            continue;
        }
        if let Some(name) = item.strip_prefix('+') {
            let Some(sub) = cfg.named_lists.get(kind, name) else {
                return Err(fail(ListError::UnknownNamedList {
                    kind: kind_name(kind),
                    name: name.to_string(),
                }));
            };
            let sub = sub.to_string();
            let cacheable = !sub.contains('$');
            probe.trace.line(|| format!(" start sublist {name}"));
            probe.trace.level += 2;
            let cached = if cacheable {
                probe.cache.as_ref().and_then(|c| c.get(name).cloned())
            } else {
                None
            };
            let (matched, note) = match cached {
                Some((m, data)) => {
                    probe.trace.level -= 2;
                    probe
                        .trace
                        .line(|| format!("cached {} match for +{name}", yes_no(m)));
                    if probe.want_value {
                        probe.trace.line(|| {
                            format!("cached lookup data = {}", data.as_deref().unwrap_or("NULL"))
                        });
                        probe.value = data;
                    }
                    (m, " - cached")
                }
                None => {
                    let saved = probe.option.take();
                    probe.value = None;
                    let r = walk(&sub, kind, cfg, ctx, depth + 1, caseful, probe, item_match);
                    probe.option = saved;
                    probe.trace.level -= 2;
                    probe.trace.line(|| format!(" end sublist {name}"));
                    let m = r.map_err(fail)?;
                    if cacheable && probe.cache.is_some() {
                        let data = if probe.want_value {
                            probe.value.clone()
                        } else {
                            None
                        };
                        if let Some(d) = &data {
                            let key = probe.key.unwrap_or(probe.name);
                            probe.trace.line(|| {
                                format!(
                                    "data from lookup saved for cache for +{name}: key '{key}' value '{d}'"
                                )
                            });
                        }
                        if let Some(c) = probe.cache.as_mut() {
                            c.put(name, m, data);
                        }
                    }
                    (m, "")
                }
            };
            if matched {
                probe
                    .trace
                    .line(|| format!("{ot} {} (matched \"{raw}\"{note})", yes_no(!neg)));
                return Ok(Decided::Item(!neg));
            }
            continue;
        }
        probe.item_data = None;
        match item_match(item, *caseful, probe).map_err(fail)? {
            Hit::Yes => {
                probe
                    .trace
                    .line(|| format!("{ot} {} (matched \"{raw}\")", yes_no(!neg)));
                if probe.want_value {
                    probe.value = probe
                        .item_data
                        .take()
                        .or_else(|| item_value(kind, item, cfg, ctx));
                }
                return Ok(Decided::Item(!neg));
            }
            Hit::No => {}
            Hit::Unknown(why) => {
                if let Some(d) = unknown(probe, ot, &why, include_unknown, ignore_unknown) {
                    return Ok(d);
                }
            }
        }
    }
    Ok(Decided::End(last_negated))
}

/// Exim's `%W`: spaces and control characters made visible in the trace.
fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push('\u{2591}'),
            '\n' => out.push_str("\u{21a9}\n"),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// An item that could not be decided: skipped after `+ignore_unknown`,
/// otherwise it decides the list (a match after `+include_unknown`).
fn unknown(
    probe: &mut Probe<'_>,
    ot: &str,
    why: &str,
    include: bool,
    ignore: bool,
) -> Option<Decided> {
    if ignore {
        probe
            .trace
            .line(|| format!("{why}: item ignored by +ignore_unknown"));
        return None;
    }
    probe
        .trace
        .line(|| format!("{ot} {} ({why})", if include { "yes" } else { "no" }));
    Some(Decided::Unknown(include))
}

/// Removes a `#` comment from a line of a list file. In address and local
/// part lists `#` starts a comment only at the start of the line or after
/// white space, because it is valid in local parts.
fn strip_file_comment(line: &str, kind: ListKind) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'#' {
            continue;
        }
        let strict = matches!(kind, ListKind::Address | ListKind::LocalPart);
        if !strict || i == 0 || b[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

fn domain_item(
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
fn masked_ip_key(ip: IpAddr, mask: Option<u32>, colons: bool) -> String {
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
/// `$sender_host_address`) against a host list: as in Exim, only an empty
/// item matches it (`hosts = :`, `match_ip{}{:@[]}`); negation and named
/// lists apply as usual.
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
        &mut |item, _, _| Ok(item.is_empty().into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::MapContext;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.main.set_value(
            "primary_hostname",
            crate::Value::Str("myhost.test.ex".into()),
        );
        c.named_lists
            .insert(ListKind::Domain, "local_domains", "test.ex : @");
        c.named_lists.insert(ListKind::Host, "nolog", "127.0.0.1");
        c.named_lists.insert(ListKind::Domain, "loop", "+loop");
        c
    }

    #[test]
    fn iterates_like_exim() {
        assert_eq!(list_items("a : b::c :  : d"), vec!["a", "b:c", "", "d"]);
        assert_eq!(list_items("<; ::1 ; 127.0.0.1"), vec!["::1", "127.0.0.1"]);
        assert_eq!(list_items(""), Vec::<String>::new());
        assert_eq!(list_items(":"), vec![""]);
        assert_eq!(list_items("a:"), vec!["a"]);
        assert_eq!(list_items("<\n a\n\n b \n"), vec!["a", "", "b"]);
        assert_eq!(list_items("<, a,,b , c"), vec!["a,b", "c"]);
    }

    #[test]
    fn domains() {
        let c = cfg();
        let x = MapContext::new();
        assert!(match_domain("@", "MyHost.test.ex", &c, &x).unwrap());
        assert!(match_domain("+local_domains", "test.ex", &c, &x).unwrap());
        assert!(!match_domain("! +local_domains", "test.ex", &c, &x).unwrap());
        // A list ending in a negative item matches what it did not exclude.
        assert!(match_domain("!+local_domains", "other.ex", &c, &x).unwrap());
        assert!(match_domain("!+local_domains : *", "other.ex", &c, &x).unwrap());
        assert!(match_domain("*.example.com", "a.b.example.com", &c, &x).unwrap());
        assert!(!match_domain("*.example.com", "example.com", &c, &x).unwrap());
        assert!(match_domain("\\N^a\\d+\\.x$\\N", "A12.x", &c, &x).unwrap());
        assert!(match_domain("@[]", "[127.0.0.1]", &c, &x).unwrap());
        assert!(match_no_host(":@[]", &c, &x).unwrap());
        assert!(match_no_host(" : ", &c, &x).unwrap());
        assert!(!match_no_host("@[] : 127.0.0.1", &c, &x).unwrap());
        assert!(!match_no_host("* : 127.0.0.1", &c, &x).unwrap());
        assert!(match_domain("*", "anything", &c, &x).unwrap());
        assert!(matches!(
            match_domain("+nosuch", "a", &c, &x),
            Err(ListError::UnknownNamedList { .. })
        ));
        assert_eq!(match_domain("+loop", "a", &c, &x), Err(ListError::TooDeep));
    }

    #[test]
    fn hosts() {
        let c = cfg();
        let x = MapContext::new();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(match_host("127.0.0.0/8", lo, None, &c, &x).unwrap());
        assert!(match_host("+nolog", lo, None, &c, &x).unwrap());
        assert!(!match_host("10.0.0.0/8", lo, None, &c, &x).unwrap());
        assert!(match_host("<; ::1 ; 127.0.0.1", lo, None, &c, &x).unwrap());
        assert!(match_host("*.test.ex", lo, Some("a.test.ex"), &c, &x).unwrap());
        assert!(!match_host("*.test.ex", lo, None, &c, &x).unwrap());
        assert!(match_host("localhost", lo, Some("localhost"), &c, &x).unwrap());
        assert!(!match_host(":", lo, None, &c, &x).unwrap());
        assert!(!match_host("! 127.0.0.1 : *", lo, None, &c, &x).unwrap());
        // A name pattern with no known host name decides the whole list
        // unless +ignore_unknown / +include_unknown say otherwise.
        assert!(!match_host("*.ex : 127.0.0.1", lo, None, &c, &x).unwrap());
        assert!(match_host("+ignore_unknown : *.ex : 127.0.0.1", lo, None, &c, &x).unwrap());
        assert!(match_host("+include_unknown : *.ex", lo, None, &c, &x).unwrap());
        assert!(match_host("@", lo, Some("MYHOST.test.ex"), &c, &x).unwrap());
        assert!(match_host("localhost", lo, None, &c, &x).unwrap());
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!match_host("localhost", other, None, &c, &x).unwrap());
    }

    #[test]
    fn file_items() {
        let c = cfg();
        let x = MapContext::new().file(
            "/etc/doms",
            "# local ones\na.ex   # comment\n!b.ex\n\n*.c.ex\n",
        );
        assert!(match_domain("/etc/doms", "a.ex", &c, &x).unwrap());
        assert!(!match_domain("/etc/doms", "b.ex", &c, &x).unwrap());
        assert!(match_domain("/etc/doms", "x.c.ex", &c, &x).unwrap());
        assert!(!match_domain("/etc/doms", "z.ex", &c, &x).unwrap());
        assert!(match_domain("! /etc/doms", "z.ex", &c, &x).unwrap());
        assert!(!match_domain("! /etc/doms", "a.ex", &c, &x).unwrap());
        assert!(matches!(
            match_domain("/nonexistent", "a.ex", &c, &x),
            Err(ListError::File(_))
        ));
        let y = MapContext::new().file("/lp", "a#b\n#c\n");
        assert!(match_local_part("/lp", "a#b", &c, &y).unwrap());
    }

    #[test]
    fn addresses_and_local_parts() {
        let c = cfg();
        let x = MapContext::new();
        assert!(match_address("*@test.ex", "a@test.ex", &c, &x).unwrap());
        assert!(match_address("a@+local_domains", "a@test.ex", &c, &x).unwrap());
        assert!(match_address("test.ex", "b@TEST.ex", &c, &x).unwrap());
        assert!(!match_address("a@test.ex", "b@test.ex", &c, &x).unwrap());
        assert!(match_address("^b@", "b@test.ex", &c, &x).unwrap());
        assert!(match_local_part("postmaster : abuse", "abuse", &c, &x).unwrap());
        assert!(match_local_part("Abuse", "abuse", &c, &x).unwrap());
        assert!(!match_local_part("+caseful : Abuse", "abuse", &c, &x).unwrap());
        assert!(!match_address("+caseful : A@test.ex", "a@test.ex", &c, &x).unwrap());
        assert!(match_address("A@TEST.ex", "a@test.ex", &c, &x).unwrap());
    }
}

#[cfg(test)]
mod negative_tail_tests {
    use super::*;

    #[test]
    fn list_ending_in_negative_item_matches_the_rest() {
        let cfg = crate::parse_str(
            "domainlist local_domains = test.ex\n",
            "t",
            &[],
            &crate::MemFs::new(),
        )
        .expect("config");
        let ctx = crate::MapContext::new();
        assert!(match_domain("! +local_domains", "x.y.z", &cfg, &ctx).unwrap());
        assert!(!match_domain("! +local_domains", "test.ex", &cfg, &ctx).unwrap());
        assert!(!match_domain("! a.b : c.d", "a.b", &cfg, &ctx).unwrap());
        assert!(!match_domain("a.b : c.d", "x.y", &cfg, &ctx).unwrap());
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn traced(f: impl FnOnce(&mut Trace)) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut t = Trace::to(Box::new(lines.clone()));
        f(&mut t);
        let v = lines.lock().unwrap().clone();
        v
    }

    #[test]
    fn named_sublists_are_traced_and_cached_as_exim_does() {
        let cfg = crate::parse_str(
            "domainlist local_domains = test.ex : myhost.ex\nhostlist relay_hosts = *\n",
            "t",
            &[],
            &crate::MemFs::new(),
        )
        .expect("config");
        let ctx = crate::MapContext::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut cache = ListCache::new();
        let lines = traced(|t| {
            for _ in 0..2 {
                let mut p = Probe::new(t, "host");
                p.cache = Some(&mut cache);
                p.want_value = true;
                assert!(match_host_probe("+relay_hosts", ip, None, &cfg, &ctx, &mut p).unwrap());
            }
            let mut p = Probe::new(t, "a.b");
            assert!(!match_domain_probe("+local_domains", "a.b", &cfg, &ctx, &mut p).unwrap());
        });
        let want = [
            "host in \"+relay_hosts\"?",
            " list element: +relay_hosts",
            "  start sublist relay_hosts",
            "   host in \"*\"?",
            "   \u{254e}list element: *",
            "   \u{254e}host in \"*\"? yes (matched \"*\")",
            "  end sublist relay_hosts",
            " host in \"+relay_hosts\"? yes (matched \"+relay_hosts\")",
            "host in \"+relay_hosts\"?",
            " list element: +relay_hosts",
            "  start sublist relay_hosts",
            " cached yes match for +relay_hosts",
            " cached lookup data = NULL",
            " host in \"+relay_hosts\"? yes (matched \"+relay_hosts\" - cached)",
            "a.b in \"+local_domains\"?",
            " list element: +local_domains",
            "  start sublist local_domains",
            "   a.b in \"test.ex : myhost.ex\"?",
            "   \u{254e}list element: test.ex",
            "   \u{254e}list element: myhost.ex",
            "   a.b in \"test.ex : myhost.ex\"? no (end of list)",
            "  end sublist local_domains",
            "a.b in \"+local_domains\"? no (end of list)",
        ];
        assert_eq!(lines, want);
    }
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

fn host_list_lookups_in(
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
