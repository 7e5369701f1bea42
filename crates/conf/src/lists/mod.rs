//! Exim list iteration and matching (domain, host, address and local-part
//! lists), spec chapter "Domain, host, address, and local part lists".

use std::net::IpAddr;

use crate::config::{Config, ListKind};
use crate::expand::{self, ExpandContext, ExpandError};
use crate::trace::{ListCache, Trace};

mod engine;
mod host;
mod kinds;
mod pattern;

pub use engine::{trace_unset, Probe};
pub(crate) use host::cidr_match;
pub use host::{host_list_lookups, match_host, match_host_probe, match_no_host};
pub use kinds::{
    match_address, match_address_item_setup, match_address_probe, match_domain, match_domain_probe,
    match_local_part, match_local_part_probe,
};

use engine::*;
use pattern::*;

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
        assert!(match_no_host("* : 127.0.0.1", &c, &x).unwrap());
        assert!(!match_no_host("127.0.0.1 : 10.0.0.0/8", &c, &x).unwrap());
        assert!(match_no_host("! 127.0.0.1", &c, &x).unwrap());
        assert!(!match_no_host("! * : 127.0.0.1", &c, &x).unwrap());
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
    fn split_lookups_and_caseful_domains() {
        let c = cfg();
        let x = MapContext::new().file(
            "/bydom",
            "aa.bb: AbCd : ^\\Dx : !no : >more\nmore: extra\n*: BlOcKeD\n",
        );
        let m = |list: &str, a: &str| match_address(list, a, &c, &x).unwrap();
        // The domain is looked up; its data lists local parts.
        assert!(m("@@lsearch;/bydom", "abcd@aa.bb"));
        assert!(m("@@lsearch;/bydom", "zx@aa.bb"));
        // A negated local part ends the search with "no match".
        assert!(!m("@@lsearch;/bydom", "no@aa.bb"));
        // ">key" chains on to another entry.
        assert!(m("@@lsearch;/bydom", "extra@aa.bb"));
        assert!(!m("@@lsearch;/bydom", "other@aa.bb"));
        // "*" defaults only with lsearch*.
        assert!(!m("@@lsearch;/bydom", "blocked@zz.yy"));
        assert!(m("@@lsearch*;/bydom", "blocked@zz.yy"));
        // "lp@@" is a local part at the primary host name.
        assert!(m("pqr@@", "pqr@myhost.test.ex"));
        // After +caseful the item's domain is compared casefully with the
        // (lower-cased) domain of the address.
        assert!(m("+caseful: a@b.c", "a@B.C"));
        assert!(!m("+caseful: X@Y.Z", "X@y.z"));
        assert!(m("X@Y.Z", "x@y.z"));
        // An empty item matches only the empty address.
        assert!(!m(":", "x@y"));
        assert!(m(":", ""));
    }

    #[test]
    fn net_lookups_key_on_the_masked_address() {
        let c = cfg();
        let x = MapContext::new().file("/nets", "1.2.0.0/16\n5.6.7.8\n");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let m = |list: &str, a: &str| match_host(list, ip(a), None, &c, &x).unwrap();
        assert!(m("net16-lsearch;/nets", "1.2.3.4"));
        assert!(!m("net24-lsearch;/nets", "1.2.3.4"));
        assert!(m("net-lsearch;/nets", "5.6.7.8"));
        assert_eq!(
            host::masked_ip_key(ip("2001:db8::1"), Some(32), false),
            "2001.0db8.0000.0000.0000.0000.0000.0000/32"
        );
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
