//! Walking a list: negation, named lists, files, the trace of what
//! matched, and the per-kind item values.

use super::*;

/// Outcome of matching one list item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Hit {
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

pub(super) type ItemFn<'f> = dyn FnMut(&str, bool, &mut Probe<'_>) -> Result<Hit, ListError> + 'f;

pub(super) fn kind_name(kind: ListKind) -> &'static str {
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
    pub(super) item_data: Option<String>,
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
pub(super) fn walk(
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
pub(super) enum Decided {
    Item(bool),
    End(bool),
    /// An item that could not be decided ended the list.
    Unknown(bool),
}

/// The data a matching item gives (`$domain_data` and friends): the
/// pattern for domains and local parts, and for hosts matched by name.
pub(super) fn item_value(
    kind: ListKind,
    item: &str,
    cfg: &Config,
    ctx: &dyn ExpandContext,
) -> Option<String> {
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
pub(super) fn walk_items(
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
pub(super) fn visible(s: &str) -> String {
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
pub(super) fn unknown(
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
pub(super) fn strip_file_comment(line: &str, kind: ListKind) -> &str {
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
