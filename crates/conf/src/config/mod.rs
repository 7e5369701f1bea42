//! The parsed configuration and the section parser.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::acl::{self, Acl, AclBuilder, AclStatement, AclVerb};
use crate::error::ConfigError;
use crate::options::{self, OptionSpec, Options};
use crate::preproc::{LogicalLine, Preprocessor};
use crate::source::FileSource;
use crate::tables;

mod parser;
mod print;
mod rules;

pub use parser::{parse_config, parse_config_partial};
pub use print::PrintOutput;
pub use rules::{
    parse_retry_line, parse_rewrite_line, parse_route_item, parse_route_list, RouteItem,
};

use parser::*;

/// What to load and with which macros.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The main configuration file.
    pub path: PathBuf,
    /// `-DNAME=value` definitions, in command-line order; they beat
    /// definitions in the file.
    pub defines: Vec<(String, String)>,
    /// Built-in macros such as `_HAVE_TLS` (only visible to `.ifdef` and
    /// to substitution of names starting with `_`).
    pub builtin: Vec<(String, String)>,
}

/// The four kinds of named list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListKind {
    /// `domainlist`
    Domain,
    /// `hostlist`
    Host,
    /// `addresslist`
    Address,
    /// `localpartlist`
    LocalPart,
}

impl ListKind {
    fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "domainlist" => ListKind::Domain,
            "hostlist" => ListKind::Host,
            "addresslist" => ListKind::Address,
            "localpartlist" => ListKind::LocalPart,
            _ => return None,
        })
    }

    /// Exim's description (`domain list`, ...), used in messages.
    pub fn description(self) -> &'static str {
        match self {
            ListKind::Domain => "domain list",
            ListKind::Host => "host list",
            ListKind::Address => "address list",
            ListKind::LocalPart => "local part list",
        }
    }

    /// The configuration keyword (`domainlist`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            ListKind::Domain => "domainlist",
            ListKind::Host => "hostlist",
            ListKind::Address => "addresslist",
            ListKind::LocalPart => "localpartlist",
        }
    }
}

/// Named lists (`domainlist local_domains = @` and friends).
#[derive(Debug, Clone, Default)]
pub struct NamedLists {
    lists: BTreeMap<(ListKind, String), String>,
}

impl NamedLists {
    /// The raw text of a named list.
    pub fn get(&self, kind: ListKind, name: &str) -> Option<&str> {
        self.lists
            .get(&(kind, name.to_string()))
            .map(String::as_str)
    }

    /// Domain list by name.
    pub fn domain(&self, name: &str) -> Option<&str> {
        self.get(ListKind::Domain, name)
    }

    /// Host list by name.
    pub fn host(&self, name: &str) -> Option<&str> {
        self.get(ListKind::Host, name)
    }

    /// Address list by name.
    pub fn address(&self, name: &str) -> Option<&str> {
        self.get(ListKind::Address, name)
    }

    /// Local part list by name.
    pub fn local_part(&self, name: &str) -> Option<&str> {
        self.get(ListKind::LocalPart, name)
    }

    /// All lists: (kind, name, text).
    pub fn iter(&self) -> impl Iterator<Item = (ListKind, &str, &str)> {
        self.lists
            .iter()
            .map(|((k, n), v)| (*k, n.as_str(), v.as_str()))
    }

    /// Adds or replaces a list (for programmatic use).
    pub fn insert(&mut self, kind: ListKind, name: &str, text: &str) {
        self.lists
            .insert((kind, name.to_string()), text.to_string());
    }
}

/// A router, transport or authenticator instance.
#[derive(Debug, Clone)]
pub struct Driver {
    /// Instance name (the `name:` line).
    pub name: String,
    /// Driver type (`accept`, `smtp`, ...).
    pub driver: String,
    /// Generic and private options of this instance.
    pub options: Options,
    /// File where the instance was defined.
    pub file: String,
    /// Line of the `name:` header.
    pub line: usize,
}

/// Kind of a retry rule parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// Fixed interval.
    F,
    /// Geometrically increasing interval.
    G,
    /// Randomized increasing interval.
    H,
}

/// One `F,5d,10s`-style parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryParam {
    /// Which algorithm.
    pub kind: RetryKind,
    /// Cutoff time (since first failure) in seconds.
    pub timeout_secs: u64,
    /// (Initial) interval in seconds.
    pub interval_secs: u64,
    /// Multiplier for `G`/`H` rules.
    pub factor: Option<f64>,
}

/// One line of the retry section.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryRule {
    /// Host/domain/address pattern.
    pub pattern: String,
    /// Error name (`*`, `timeout`, `refused_MX`, `quota_7d`, `rcpt_4xx`, ...).
    pub error: String,
    /// Optional sender list (`senders=...`).
    pub senders: Option<String>,
    /// Parameter sets in order.
    pub params: Vec<RetryParam>,
}

/// One rewriting rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    /// The pattern (address pattern or regex).
    pub pattern: String,
    /// The replacement (expanded at use time).
    pub replacement: String,
    /// Flag letters as written (`EhFfqR...`).
    pub flags: String,
}

/// A whole parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Main section options.
    pub main: Options,
    /// Named lists.
    pub named_lists: NamedLists,
    /// ACLs from `begin acl`, in order.
    pub acls: Vec<Acl>,
    /// Routers, in order.
    pub routers: Vec<Driver>,
    /// Transports, in order.
    pub transports: Vec<Driver>,
    /// Authenticators, in order.
    pub authenticators: Vec<Driver>,
    /// Retry rules, in order.
    pub retry: Vec<RetryRule>,
    /// Global rewrite rules, in order.
    pub rewrite: Vec<RewriteRule>,
    /// Final macro table (command-line and file macros, not built-ins), in
    /// definition order, for `-bP macros`.
    pub macros: Vec<(String, String)>,
    /// The main configuration file name.
    pub config_file: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            main: Options::new(&[tables::MAIN]),
            named_lists: NamedLists::default(),
            acls: Vec::new(),
            routers: Vec::new(),
            transports: Vec::new(),
            authenticators: Vec::new(),
            retry: Vec::new(),
            rewrite: Vec::new(),
            macros: Vec::new(),
            config_file: String::new(),
        }
    }
}

impl Config {
    /// Finds a named ACL.
    pub fn acl(&self, name: &str) -> Option<&Acl> {
        self.acls.iter().find(|a| a.name == name)
    }

    /// Finds a router by instance name.
    pub fn router(&self, name: &str) -> Option<&Driver> {
        self.routers.iter().find(|d| d.name == name)
    }

    /// Finds a transport by instance name.
    pub fn transport(&self, name: &str) -> Option<&Driver> {
        self.transports.iter().find(|d| d.name == name)
    }

    /// Finds an authenticator by instance name.
    pub fn authenticator(&self, name: &str) -> Option<&Driver> {
        self.authenticators.iter().find(|d| d.name == name)
    }

    /// Resolves the (already expanded) value of an `acl_smtp_*` option the
    /// way Exim does: a value without white space names an ACL; failing
    /// that, the words `accept`, `deny`, `defer`, `discard`, `drop`,
    /// `require`, `warn` and `reject` (= deny) are one-statement ACLs;
    /// anything else is inline ACL text. Returns `None` for an empty value,
    /// an unknown ACL name, or inline text that does not parse.
    pub fn resolve_acl(&self, value: &str) -> Option<Acl> {
        self.try_resolve_acl(value).ok().flatten()
    }

    /// Like [`Config::resolve_acl`] but reports why resolution failed
    /// (Exim's wording).
    pub fn try_resolve_acl(&self, value: &str) -> Result<Option<Acl>, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(None);
        }
        if !v.contains(char::is_whitespace) {
            if let Some(a) = self.acl(v) {
                return Ok(Some(a.clone()));
            }
            let verb = if v == "reject" {
                Some(AclVerb::Deny)
            } else {
                AclVerb::from_name(v)
            };
            if let Some(verb) = verb {
                return Ok(Some(Acl {
                    name: v.to_string(),
                    statements: vec![AclStatement {
                        verb,
                        conditions: Vec::new(),
                        source: None,
                    }],
                }));
            }
            if v.starts_with('/') {
                return Err(format!("ACL files are not supported: \"{v}\""));
            }
            return Err(format!("ACL \"{v}\" not found"));
        }
        acl::parse_inline(v, v).map(Some)
    }

    /// `-bP`-style rendering of a main option.
    pub fn render_main(&self, name: &str) -> Option<String> {
        self.main.render(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        let r = parse_retry_line("* * F,5d,10s").unwrap();
        assert_eq!(r.pattern, "*");
        assert_eq!(r.error, "*");
        assert_eq!(
            r.params,
            vec![RetryParam {
                kind: RetryKind::F,
                timeout_secs: 5 * 86400,
                interval_secs: 10,
                factor: None
            }]
        );
        let r = parse_retry_line("*.x rcpt_4xx F,2h,15m; G,16h,1h,1.5; F,4d,6h").unwrap();
        assert_eq!(r.params.len(), 3);
        assert_eq!(r.params[1].factor, Some(1.5));
        assert!(parse_retry_line("* * X,1h,1m").is_err());
        assert!(parse_retry_line("* bogus F,1h,1m").is_err());
        assert!(parse_retry_line("* * F,1h").is_err());
    }

    #[test]
    fn route_lists() {
        let items = parse_route_list("* 127.0.0.1 byname ; a.b \"x.y : z.w\" randomize bydns");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].domain, "*");
        assert_eq!(items[0].hosts, "127.0.0.1");
        assert_eq!(items[0].options, vec!["byname"]);
        assert_eq!(items[1].hosts, "x.y : z.w");
        assert_eq!(items[1].options, vec!["randomize", "bydns"]);
        let d = parse_route_item("  h1:h2  ", false);
        assert_eq!((d.domain.as_str(), d.hosts.as_str()), ("", "h1:h2"));
        assert!(d.options.is_empty());
    }

    #[test]
    fn rewrite_rules() {
        let r = parse_rewrite_line("*@a.b \"$1@c.d\" Ffr").unwrap();
        assert_eq!(r.replacement, "$1@c.d");
        assert_eq!(r.flags, "Ffr");
        assert!(parse_rewrite_line("*@a.b").is_err());
        assert!(parse_rewrite_line("*@a.b x@y Z").is_err());
    }
}
