//! Single-key file lookups (`lsearch` family) shared by `${lookup}` and by
//! `type;file` items in lists.
//!
//! Supported types: `lsearch` (caseless keys), `wildlsearch` and
//! `nwildlsearch` (keys may be `*suffix` wildcards or `^regex`), `iplsearch`
//! (keys are IP addresses or CIDR networks), with the `partial[N]-` prefix
//! and the `*` / `*@` default-key suffixes, and the `ret=full` option
//! (`lsearch,ret=full`: the whole entry, key included). Other options are
//! refused as unsupported.

use std::net::IpAddr;

use crate::options::dequote;

/// Which file format / key matching a lookup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLookup {
    /// Plain keys, compared caselessly.
    Lsearch,
    /// Wildcard or regex keys (`wildlsearch`, `nwildlsearch`).
    Wild,
    /// IP address / network keys.
    Ip,
}

/// A parsed lookup type such as `partial2-lsearch*@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupSpec {
    /// Key matching.
    pub kind: FileLookup,
    /// `partialN-`: the minimum number of components kept (default 2).
    pub partial: Option<usize>,
    /// `*` suffix: fall back to the key `*`.
    pub star: bool,
    /// `*@` suffix: fall back to `*@domain`, then `*`.
    pub star_at: bool,
    /// `,ret=full`: the result is the whole entry (key and data).
    pub ret_full: bool,
}

/// Lookup types Exim has (some only in builds with them), for telling a
/// type oxim does not implement from one that does not exist.
pub const EXIM_LOOKUP_TYPES: &[&str] = &[
    "cdb",
    "dbm",
    "dbmjz",
    "dbmnz",
    "dnsdb",
    "dsearch",
    "ibase",
    "iplsearch",
    "json",
    "ldap",
    "ldapdn",
    "ldapm",
    "lmdb",
    "lsearch",
    "mysql",
    "nis",
    "nis0",
    "nisplus",
    "nwildlsearch",
    "oracle",
    "passwd",
    "pgsql",
    "psl",
    "redis",
    "spf",
    "sqlite",
    "testdb",
    "whoson",
    "wildlsearch",
];

impl LookupSpec {
    /// Parses a lookup type; `None` if it is not a supported file lookup.
    pub fn parse(s: &str) -> Option<Self> {
        let mut opts = s.split(',');
        let s = opts.next().unwrap_or(s).trim();
        let mut ret_full = false;
        for o in opts {
            match o.trim() {
                "ret=full" => ret_full = true,
                _ => return None,
            }
        }
        let (partial, rest) = match s.strip_prefix("partial") {
            Some(r) => {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                let n = if digits == 0 {
                    2
                } else {
                    r[..digits].parse().ok()?
                };
                let r = &r[digits..];
                // An optional "(affix)" is accepted; only "*." is supported.
                let r = match r.strip_prefix('(') {
                    Some(a) => {
                        let (affix, after) = a.split_once(')')?;
                        if affix != "*." {
                            return None;
                        }
                        after
                    }
                    None => r,
                };
                (Some(n), r.strip_prefix('-')?)
            }
            None => (None, s),
        };
        let (base, star, star_at) = if let Some(b) = rest.strip_suffix("*@") {
            (b, true, true)
        } else if let Some(b) = rest.strip_suffix('*') {
            (b, true, false)
        } else {
            (rest, false, false)
        };
        let kind = match base {
            "lsearch" => FileLookup::Lsearch,
            "wildlsearch" | "nwildlsearch" => FileLookup::Wild,
            "iplsearch" => FileLookup::Ip,
            _ => return None,
        };
        Some(LookupSpec {
            kind,
            partial,
            star,
            star_at,
            ret_full,
        })
    }

    /// Why `s` is not a supported lookup: the option or the type oxim
    /// does not implement (for a "not supported by oxim" message), or None
    /// if Exim does not know the type either.
    pub fn unsupported(s: &str) -> Option<(&'static str, String)> {
        let mut parts = s.split(',');
        let ltype = parts.next().unwrap_or(s).trim();
        if Self::parse(ltype).is_some() {
            let opt = parts.map(str::trim).find(|o| *o != "ret=full")?;
            return Some(("lookup option", opt.to_string()));
        }
        // Strip partial-, (affix), * and *@ to find the base type.
        let base = ltype.rsplit('-').next().unwrap_or(ltype);
        let base = base.trim_end_matches('@').trim_end_matches('*');
        EXIM_LOOKUP_TYPES
            .contains(&base)
            .then(|| ("lookup type", ltype.to_string()))
    }
}

/// Parses `key: value` entries: `#` comments, optionally quoted keys,
/// continuation lines starting with white space (joined with a space).
fn entries(text: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with(char::is_whitespace)
        {
            continue;
        }
        let (k, rest) = if let Some(q) = line.strip_prefix('"') {
            let (v, used, _) = dequote(q);
            (v, &q[used..])
        } else {
            let end = line
                .find(|c: char| c == ':' || c.is_whitespace())
                .unwrap_or(line.len());
            (line[..end].to_string(), &line[end..])
        };
        let mut full = format!("{k}{}", rest.trim_end());
        let rest = rest.trim_start();
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim();
        let mut value = rest.to_string();
        while i < lines.len() && lines[i].starts_with(char::is_whitespace) {
            let cont = lines[i].trim();
            i += 1;
            if cont.is_empty() || cont.starts_with('#') {
                continue;
            }
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(cont);
            full.push(' ');
            full.push_str(cont);
        }
        out.push((k, value, full));
    }
    out
}

fn key_matches(kind: FileLookup, pattern: &str, key: &str) -> bool {
    match kind {
        FileLookup::Lsearch => pattern.eq_ignore_ascii_case(key),
        FileLookup::Wild => {
            let p = pattern
                .strip_prefix("\\N")
                .and_then(|r| r.strip_suffix("\\N"))
                .unwrap_or(pattern);
            if p.starts_with('^') {
                regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .is_ok_and(|re| re.is_match(key))
            } else if let Some(suffix) = p.strip_prefix('*') {
                key.len() >= suffix.len()
                    && key.as_bytes()[key.len() - suffix.len()..]
                        .eq_ignore_ascii_case(suffix.as_bytes())
            } else {
                p.eq_ignore_ascii_case(key)
            }
        }
        FileLookup::Ip => match key.parse::<IpAddr>() {
            Ok(ip) => crate::lists::cidr_match(pattern, ip).unwrap_or(false),
            Err(_) => pattern.eq_ignore_ascii_case(key),
        },
    }
}

/// Looks `key` up in file `text` with the plain key-matching of `kind`.
pub fn find(kind: FileLookup, text: &str, key: &str) -> Option<String> {
    entries(text)
        .into_iter()
        .find(|(k, _, _)| key_matches(kind, k, key))
        .map(|(_, v, _)| v)
}

/// Linear search of `key: value` lines with caseless plain keys.
pub fn lsearch(text: &str, key: &str) -> Option<String> {
    find(FileLookup::Lsearch, text, key)
}

/// Full lookup: the key, then `partial` wildcard forms, then the `*@` and
/// `*` defaults, as the spec describes.
pub fn search(spec: &LookupSpec, text: &str, key: &str) -> Option<String> {
    let entries = entries(text);
    let get = |k: &str| {
        entries
            .iter()
            .find(|(p, _, _)| key_matches(spec.kind, p, k))
            .map(|(_, v, full)| {
                if spec.ret_full {
                    full.clone()
                } else {
                    v.clone()
                }
            })
    };
    if let Some(v) = get(key) {
        return Some(v);
    }
    if let Some(min) = spec.partial {
        let parts: Vec<&str> = key.split('.').collect();
        // "*.a.b.c", then "*.b.c", ... while at least `min` components stay.
        let mut start = 0;
        while parts.len() - start >= min.max(1) {
            if let Some(v) = get(&format!("*.{}", parts[start..].join("."))) {
                return Some(v);
            }
            start += 1;
        }
    }
    if spec.star_at {
        if let Some((_, dom)) = key.rsplit_once('@') {
            if let Some(v) = get(&format!("*@{dom}")) {
                return Some(v);
            }
        }
    }
    if spec.star {
        return get("*");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\nfoo: bar\n\"quoted key\": q\n*.wild.ex: w\n^re[0-9]+$: regex\n\
                        *: default\n*@dom.ex: at\nlong: a\n  b\n";

    #[test]
    fn parse_types() {
        let s = LookupSpec::parse("partial2-lsearch*@").expect("parses");
        assert_eq!(s.partial, Some(2));
        assert!(s.star && s.star_at);
        assert_eq!(
            LookupSpec::parse("lsearch,ret=full").map(|s| s.kind),
            Some(FileLookup::Lsearch)
        );
        assert_eq!(
            LookupSpec::parse("nwildlsearch").map(|s| s.kind),
            Some(FileLookup::Wild)
        );
        assert!(LookupSpec::parse("dbm").is_none());
        assert!(LookupSpec::parse("lsearch,cache=no_rd").is_none());
        assert_eq!(
            LookupSpec::unsupported("lsearch,cache=no_rd"),
            Some(("lookup option", "cache=no_rd".to_string()))
        );
        assert_eq!(
            LookupSpec::unsupported("partial-dbm*"),
            Some(("lookup type", "partial-dbm*".to_string()))
        );
        assert_eq!(LookupSpec::unsupported("nosuch"), None);
        assert!(LookupSpec::parse("partial-").is_none());
    }

    #[test]
    fn searches() {
        let l = |t: &str, k: &str| LookupSpec::parse(t).and_then(|s| search(&s, FILE, k));
        assert_eq!(l("lsearch", "FOO").as_deref(), Some("bar"));
        assert_eq!(l("lsearch", "quoted key").as_deref(), Some("q"));
        assert_eq!(l("lsearch", "long").as_deref(), Some("a b"));
        assert_eq!(l("lsearch,ret=full", "long").as_deref(), Some("long: a b"));
        assert_eq!(l("lsearch", "a.wild.ex"), None);
        assert_eq!(l("wildlsearch", "a.wild.ex").as_deref(), Some("w"));
        assert_eq!(l("wildlsearch", "re42").as_deref(), Some("regex"));
        assert_eq!(l("partial-lsearch", "x.y.wild.ex").as_deref(), Some("w"));
        assert_eq!(l("lsearch*", "nothing").as_deref(), Some("default"));
        assert_eq!(l("lsearch*@", "u@dom.ex").as_deref(), Some("at"));
        let ips = "192.168.0.0/16: lan\n\"::1\": v6\n";
        let s = LookupSpec::parse("iplsearch").expect("iplsearch");
        assert_eq!(search(&s, ips, "192.168.3.4").as_deref(), Some("lan"));
        assert_eq!(search(&s, ips, "::1").as_deref(), Some("v6"));
        assert_eq!(search(&s, ips, "10.0.0.1"), None);
    }
}
