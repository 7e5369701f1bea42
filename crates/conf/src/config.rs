//! The parsed configuration and the section parser.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::acl::{self, Acl, AclBuilder, AclStatement, AclVerb};
use crate::error::ConfigError;
use crate::options::{self, OptionSpec, Options};
use crate::preproc::{LogicalLine, Preprocessor};
use crate::source::FileSource;
use crate::tables;

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

    /// Answers one `-bP` query the way Exim's `readconf_print` does.
    ///
    /// `kind` is `None` for `-bP name` (a main option, `all`,
    /// `config_file`, `routers`, `transports`, `authenticators`, `macros`,
    /// `router_list`, `transport_list`, `authenticator_list`, `macro_list`
    /// or `+listname`), or `Some("router" | "transport" | "authenticator" |
    /// "macro")` for `-bP router NAME` style queries. `no_labels` is `-n`.
    /// `environment` and `local_scan` are left to the caller.
    pub fn print_item(&self, name: &str, kind: Option<&str>, no_labels: bool) -> PrintOutput {
        let mut out = PrintOutput {
            lines: Vec::new(),
            ok: true,
        };
        let (kind, name, names_only) = match kind {
            Some(k) => (k, Some(name), false),
            None => {
                if let Some(list) = name.strip_prefix('+') {
                    let mut found = false;
                    for kind in [
                        ListKind::Address,
                        ListKind::Domain,
                        ListKind::Host,
                        ListKind::LocalPart,
                    ] {
                        if let Some(text) = self.named_lists.get(kind, list) {
                            found = true;
                            out.lines.push(if no_labels {
                                text.to_string()
                            } else {
                                format!("{} {list} = {text}", kind.keyword())
                            });
                        }
                    }
                    if !found {
                        out.lines.push(format!(
                            "no address, domain, host, or local part list called \"{list}\" exists"
                        ));
                        out.ok = false;
                    }
                    return out;
                }
                match name {
                    "configure_file" | "config_file" => {
                        out.lines.push(self.config_file.clone());
                        return out;
                    }
                    "all" => {
                        out.lines = self
                            .main
                            .render_all()
                            .into_iter()
                            .map(|l| if no_labels { strip_label(&l) } else { l })
                            .collect();
                        return out;
                    }
                    "routers" => ("router", None, false),
                    "transports" => ("transport", None, false),
                    "authenticators" => ("authenticator", None, false),
                    "macros" => ("macro", None, false),
                    "router_list" => ("router", None, true),
                    "transport_list" => ("transport", None, true),
                    "authenticator_list" => ("authenticator", None, true),
                    "macro_list" => ("macro", None, true),
                    _ => {
                        let r = if no_labels {
                            self.main.render_value(name)
                        } else {
                            self.main.render(name)
                        };
                        match r {
                            Some(l) => out.lines.push(l),
                            None => {
                                out.lines.push(format!("{name} is not a known option"));
                                out.ok = false;
                            }
                        }
                        return out;
                    }
                }
            }
        };
        if kind == "macro" {
            for (n, v) in &self.macros {
                if name.is_some_and(|want| want != n) {
                    continue;
                }
                out.lines.push(if names_only {
                    n.clone()
                } else if no_labels {
                    v.clone()
                } else {
                    format!("{n}={v}")
                });
                if name.is_some() {
                    return out;
                }
            }
            if let Some(n) = name {
                out.lines.push(format!("macro {n} not found"));
                out.ok = false;
            }
            return out;
        }
        let drivers = match kind {
            "router" => &self.routers,
            "transport" => &self.transports,
            "authenticator" => &self.authenticators,
            other => {
                out.lines.push(format!("{other} is not a known option"));
                out.ok = false;
                return out;
            }
        };
        if names_only {
            out.lines = drivers.iter().map(|d| d.name.clone()).collect();
            return out;
        }
        for d in drivers {
            match name {
                None => {
                    out.lines.push(String::new());
                    out.lines.push(format!("{} {kind}:", d.name));
                }
                Some(n) if n != d.name => continue,
                Some(_) => {}
            }
            out.lines
                .extend(d.options.render_all().into_iter().map(|l| {
                    if no_labels {
                        strip_label(&l)
                    } else {
                        l
                    }
                }));
            if name.is_some() {
                return out;
            }
        }
        if let Some(n) = name {
            out.lines.push(format!("{kind} {n} not found"));
            out.ok = false;
        }
        out
    }
}

/// Result of [`Config::print_item`]: the lines to print and whether the
/// query succeeded (Exim exits non-zero otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintOutput {
    /// Output lines, without newlines.
    pub lines: Vec<String>,
    /// False for unknown names.
    pub ok: bool,
}

fn strip_label(line: &str) -> String {
    match line.split_once(" = ") {
        Some((_, v)) => v.to_string(),
        None => match line.strip_suffix(" =") {
            Some(_) => String::new(),
            None => line.to_string(),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Main,
    Acl,
    Authenticators,
    Routers,
    Transports,
    Retry,
    Rewrite,
    LocalScan,
}

/// Exim appends an `s` when the name does not end in one, then compares
/// case-insensitively with the plural section names.
fn section_from_name(s: &str) -> Option<Section> {
    let mut n = s.to_ascii_lowercase();
    if !n.ends_with('s') {
        n.push('s');
    }
    Some(match n.as_str() {
        "acls" => Section::Acl,
        "authenticators" => Section::Authenticators,
        "routers" => Section::Routers,
        "transports" => Section::Transports,
        "retrys" => Section::Retry,
        "rewrites" => Section::Rewrite,
        "local_scans" => Section::LocalScan,
        _ => return None,
    })
}

struct DriverClass {
    class: &'static str,
    generic: &'static [OptionSpec],
    drivers: &'static [(&'static str, &'static [OptionSpec])],
}

const ROUTERS: DriverClass = DriverClass {
    class: "router",
    generic: tables::ROUTER_GENERIC,
    drivers: tables::ROUTER_DRIVERS,
};
const TRANSPORTS: DriverClass = DriverClass {
    class: "transport",
    generic: tables::TRANSPORT_GENERIC,
    drivers: tables::TRANSPORT_DRIVERS,
};
const AUTHS: DriverClass = DriverClass {
    class: "authenticator",
    generic: tables::AUTH_GENERIC,
    drivers: tables::AUTH_DRIVERS,
};

struct Parser<'p, 'a> {
    pp: &'p mut Preprocessor<'a>,
    cfg: Config,
    acl_current: Option<(String, AclBuilder)>,
}

fn located(line: &LogicalLine, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&line.file, line.line, msg)
}

/// Reads a leading name (`[A-Za-z][A-Za-z0-9_]*`), returns it and the rest
/// after white space.
fn read_name(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return ("", s);
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Parses a configuration from its text. `name` is used in error messages
/// and as the base for relative `.include` paths.
pub fn parse_config(
    fs: &dyn FileSource,
    name: &str,
    text: &str,
    defines: &[(String, String)],
    builtin: &[(String, String)],
) -> Result<Config, ConfigError> {
    let mut pp = Preprocessor::new(fs, name, text, defines, builtin);
    let mut p = Parser {
        pp: &mut pp,
        cfg: Config {
            config_file: name.to_string(),
            ..Config::default()
        },
        acl_current: None,
    };
    p.run()?;
    let mut cfg = p.cfg;
    cfg.macros = pp
        .macros
        .iter()
        .filter(|m| !m.builtin)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    Ok(cfg)
}

impl Parser<'_, '_> {
    fn run(&mut self) -> Result<(), ConfigError> {
        let mut section = Section::Main;
        let mut seen: Vec<Section> = Vec::new();
        let mut drivers: Vec<Driver> = Vec::new();
        let mut driver_line: Option<LogicalLine> = None;
        while let Some(line) = self.pp.next_line()? {
            if let Some(rest) = strip_prefix_ci(&line.text, "begin ") {
                let name = rest.trim();
                let Some(next) = section_from_name(name) else {
                    return Err(located(
                        &line,
                        format!("\"{name}\" is not a known configuration section name"),
                    ));
                };
                self.finish_section(section, &mut drivers, driver_line.take())?;
                if seen.contains(&next) {
                    return Err(located(
                        &line,
                        format!("\"{name}\" section is repeated in the configuration file"),
                    ));
                }
                seen.push(next);
                section = next;
                continue;
            }
            match section {
                Section::Main => self.main_line(&line)?,
                Section::Acl => self.acl_line(&line)?,
                Section::Routers => {
                    self.driver_line(&ROUTERS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Transports => {
                    self.driver_line(&TRANSPORTS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Authenticators => {
                    self.driver_line(&AUTHS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Retry => {
                    let rule = parse_retry_line(&line.text).map_err(|m| located(&line, m))?;
                    self.cfg.retry.push(rule);
                }
                Section::Rewrite => {
                    let rule = parse_rewrite_line(&line.text).map_err(|m| located(&line, m))?;
                    self.cfg.rewrite.push(rule);
                }
                Section::LocalScan => {}
            }
        }
        self.finish_section(section, &mut drivers, driver_line.take())
    }

    fn finish_section(
        &mut self,
        section: Section,
        drivers: &mut Vec<Driver>,
        last_header: Option<LogicalLine>,
    ) -> Result<(), ConfigError> {
        let class = match section {
            Section::Acl => {
                if let Some((name, b)) = self.acl_current.take() {
                    self.cfg.acls.push(Acl {
                        name,
                        statements: b.statements,
                    });
                }
                return Ok(());
            }
            Section::Routers => ROUTERS.class,
            Section::Transports => TRANSPORTS.class,
            Section::Authenticators => AUTHS.class,
            _ => return Ok(()),
        };
        if let (Some(d), Some(h)) = (drivers.last(), last_header.as_ref()) {
            if d.driver.is_empty() {
                return Err(located(
                    h,
                    format!("no driver defined for {class} \"{}\"", d.name),
                ));
            }
        }
        let list = std::mem::take(drivers);
        match section {
            Section::Routers => self.cfg.routers = list,
            Section::Transports => self.cfg.transports = list,
            Section::Authenticators => self.cfg.authenticators = list,
            _ => {}
        }
        Ok(())
    }

    fn main_line(&mut self, line: &LogicalLine) -> Result<(), ConfigError> {
        // Main options start with a lower-case letter; an upper-case start
        // can only be a macro definition (which the preprocessor consumed).
        if line.text.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(located(line, "malformed macro definition"));
        }
        let (word, rest) = read_name(&line.text);
        let keyword = word.strip_suffix("_cache").unwrap_or(word);
        if let Some(kind) = ListKind::from_keyword(keyword) {
            let (name, rest) = read_name(rest);
            if name.is_empty() {
                return Err(located(line, format!("{} name missing", kind.keyword())));
            }
            let Some(value) = rest.strip_prefix('=') else {
                return Err(located(line, format!("missing '=' after \"{name}\"")));
            };
            if self.cfg.named_lists.get(kind, name).is_some() {
                return Err(located(
                    line,
                    format!(
                        "duplicate name \"{name}\" for a named {}",
                        kind.description()
                    ),
                ));
            }
            let value =
                options::read_string(value.trim_start(), name).map_err(|m| located(line, m))?;
            self.cfg.named_lists.insert(kind, name, &value);
            return Ok(());
        }
        match self.cfg.main.apply_line(&line.text) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let (_, name, _) =
                    options::split_option_line(&line.text).map_err(|m| located(line, m))?;
                Err(located(line, format!("main option \"{name}\" unknown")))
            }
            Err(m) => Err(located(line, m)),
        }
    }

    fn acl_line(&mut self, line: &LogicalLine) -> Result<(), ConfigError> {
        let (word, rest) = read_name(&line.text);
        if !word.is_empty() && rest.starts_with(':') {
            if !rest[1..].trim().is_empty() {
                return Err(located(
                    line,
                    format!("error in ACL: extra characters follow ACL name \"{word}\""),
                ));
            }
            if let Some((name, b)) = self.acl_current.take() {
                self.cfg.acls.push(Acl {
                    name,
                    statements: b.statements,
                });
            }
            if self.cfg.acl(word).is_some() {
                return Err(located(
                    line,
                    format!("there are two ACLs called \"{word}\""),
                ));
            }
            self.acl_current = Some((word.to_string(), AclBuilder::default()));
            return Ok(());
        }
        let Some((_, b)) = self.acl_current.as_mut() else {
            return Err(located(line, "ACL name missing"));
        };
        b.line_at(&line.text, Some((line.file.clone(), line.line)))
            .map_err(|m| located(line, format!("error in ACL: {m}")))
    }

    fn driver_line(
        &mut self,
        class: &DriverClass,
        line: &LogicalLine,
        drivers: &mut Vec<Driver>,
        header: &mut Option<LogicalLine>,
    ) -> Result<(), ConfigError> {
        let (name, rest) = read_name(&line.text);
        if let Some(after) = rest.strip_prefix(':').filter(|_| !name.is_empty()) {
            if let (Some(d), Some(h)) = (drivers.last(), header.as_ref()) {
                if d.driver.is_empty() {
                    return Err(located(
                        h,
                        format!("no driver defined for {} \"{}\"", class.class, d.name),
                    ));
                }
            }
            if drivers.iter().any(|d| d.name == name) {
                return Err(located(
                    line,
                    format!("there are two {}s called \"{name}\"", class.class),
                ));
            }
            let after = after.trim_start();
            if !after.is_empty() {
                let comment = if after.starts_with('#') {
                    " (# is comment only at line start)"
                } else {
                    ""
                };
                return Err(located(
                    line,
                    format!("extra characters follow driver name {name}{comment}"),
                ));
            }
            drivers.push(Driver {
                name: name.to_string(),
                driver: String::new(),
                options: Options::new(&[class.generic]),
                file: line.file.to_string(),
                line: line.line,
            });
            *header = Some(line.clone());
            return Ok(());
        }
        let Some(d) = drivers.last_mut() else {
            return Err(located(line, format!("{} name missing", class.class)));
        };
        let had_driver = !d.driver.is_empty();
        match d.options.apply_line(&line.text) {
            Ok(Some(opt)) => {
                if opt == "verify" {
                    let v = d.options.bool("verify");
                    d.options
                        .set_value("verify_sender", options::Value::Bool(v));
                    d.options
                        .set_value("verify_recipient", options::Value::Bool(v));
                }
                if opt == "driver" && !had_driver {
                    let dname = d.options.str("driver").to_string();
                    let Some((_, table)) = class.drivers.iter().find(|(n, _)| *n == dname) else {
                        return Err(located(
                            line,
                            format!(
                                "{} {}: cannot find {} driver \"{dname}\"",
                                class.class, d.name, class.class
                            ),
                        ));
                    };
                    d.driver = dname;
                    d.options.extend(table);
                }
                Ok(())
            }
            Ok(None) => {
                let (_, oname, _) =
                    options::split_option_line(&line.text).map_err(|m| located(line, m))?;
                if had_driver {
                    Err(located(line, format!("option \"{oname}\" unknown")))
                } else {
                    Err(located(
                        line,
                        format!(
                            "option \"{oname}\" unknown (\"driver\" must be specified before any private options)"
                        ),
                    ))
                }
            }
            Err(m) => Err(located(line, m)),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn is_graph(c: char) -> bool {
    !c.is_whitespace() && !c.is_control()
}

/// Parses a retry rule: `pattern error [senders=list] F,5d,10s; G,16h,1h,1.5`.
pub fn parse_retry_line(text: &str) -> Result<RetryRule, String> {
    let s = text.trim_start();
    let end = s.find(|c: char| !is_graph(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("missing domain name".to_string());
    }
    let pattern = s[..end].to_string();
    let s = s[end..].trim_start();
    let end = s.find(|c: char| !is_graph(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("missing error type".to_string());
    }
    let error = s[..end].to_string();
    check_retry_error(&error)?;
    let mut s = s[end..].trim_start();
    let mut senders = None;
    if let Some(r) = s.strip_prefix("senders") {
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('=') else {
            return Err("\"=\" expected after \"senders\" in retry rule".to_string());
        };
        if r.trim().is_empty() {
            return Err("missing sender list in retry rule".to_string());
        }
        {
            let r = r.trim_start();
            let (val, rest) = if let Some(q) = r.strip_prefix('"') {
                let (v, used, closed) = options::dequote(q);
                if !closed {
                    return Err("missing quote in retry rule".to_string());
                }
                (v, &q[used..])
            } else {
                let e = r.find(char::is_whitespace).unwrap_or(r.len());
                (r[..e].to_string(), &r[e..])
            };
            senders = Some(val);
            s = rest.trim_start();
        }
    }
    let mut params = Vec::new();
    while !s.is_empty() {
        let mut chars = s.chars();
        let letter = chars.next().map(|c| c.to_ascii_uppercase());
        s = chars.as_str();
        let kind = match letter {
            Some('F') => RetryKind::F,
            Some('G') => RetryKind::G,
            Some('H') => RetryKind::H,
            _ => return Err("unknown retry rule letter".to_string()),
        };
        let (timeout, r) = retry_arg(s, false)?;
        s = r;
        let (interval, r) = retry_arg(s, false)?;
        s = r;
        let mut factor = None;
        if kind != RetryKind::F {
            let (f, r) = retry_arg(s, true)?;
            s = r;
            if f.is_some_and(|f| f < 1000) {
                return Err("bad parameters for retry rule".to_string());
            }
            factor = f.map(|f| f as f64 / 1000.0);
            if factor.is_none() {
                return Err("bad parameters for retry rule".to_string());
            }
        }
        let (Some(timeout), Some(interval)) = (timeout, interval) else {
            return Err("bad parameters for retry rule".to_string());
        };
        if timeout == 0 || interval == 0 {
            return Err("bad parameters for retry rule".to_string());
        }
        params.push(RetryParam {
            kind,
            timeout_secs: timeout,
            interval_secs: interval,
            factor,
        });
        s = s.trim_start();
        if let Some(r) = s.strip_prefix(';') {
            s = r.trim_start();
        } else if !s.is_empty() {
            return Err("semicolon expected".to_string());
        }
    }
    Ok(RetryRule {
        pattern,
        error,
        senders,
        params,
    })
}

/// Reads `,value`; the value is `None` when it is not a valid time or
/// fixed-point number (Exim then reports "bad parameters").
fn retry_arg(s: &str, fixed: bool) -> Result<(Option<u64>, &str), String> {
    let Some(r) = s.strip_prefix(',') else {
        return Err("comma expected".to_string());
    };
    let r = r.trim_start();
    let end = r
        .find(|c: char| !(c.is_ascii_alphanumeric() || (fixed && c == '.')))
        .unwrap_or(r.len());
    let rest = &r[end..];
    if !(rest.is_empty() || rest.starts_with([',', ';']) || rest.starts_with(char::is_whitespace)) {
        return Err("comma or semicolon expected".to_string());
    }
    let v = if fixed {
        options::parse_fixed(&r[..end]).and_then(|v| u64::try_from(v).ok())
    } else {
        options::parse_time(&r[..end])
    };
    Ok((v, rest))
}

fn check_retry_error(e: &str) -> Result<(), String> {
    let lower = e.to_ascii_lowercase();
    let (base, suffix) = match lower.split_once('_') {
        Some((a, b)) => (a, Some(b)),
        None => (lower.as_str(), None),
    };
    let ok = match (base, suffix) {
        ("*", None) => true,
        ("quota", None) => true,
        ("quota", Some(t)) => options::parse_time(t).is_some(),
        ("refused", None) => true,
        ("refused", Some(x)) => matches!(x, "mx" | "a"),
        ("timeout", None) => true,
        ("timeout", Some(x)) => {
            matches!(
                x,
                "a" | "mx" | "connect" | "connect_a" | "connect_mx" | "dns"
            )
        }
        ("mail" | "rcpt" | "data", Some(x)) => {
            let b = x.as_bytes();
            b.len() == 3
                && b[0] == b'4'
                && (b[1].is_ascii_digit() || b[1] == b'x')
                && (b[2].is_ascii_digit() || b[2] == b'x')
        }
        ("auth", Some("failed")) => true,
        ("lost", Some("connection")) => true,
        ("tls", Some("required")) => true,
        ("lookup", None) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unknown or malformed retry error \"{e}\""))
    }
}

/// One item of a `manualroute` `route_list` (or a `route_data` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteItem {
    /// Domain pattern (empty for `route_data`, which has no domain).
    pub domain: String,
    /// Host list (unexpanded; may be empty).
    pub hosts: String,
    /// Remaining options such as `byname`, `randomize`, a transport name.
    pub options: Vec<String>,
}

/// Splits a `route_list` value into items (default separator `;`).
pub fn parse_route_list(list: &str) -> Vec<RouteItem> {
    crate::lists::ListIter::with_default(list, ';')
        .filter(|item| !item.trim().is_empty())
        .map(|item| parse_route_item(&item, true))
        .collect()
}

/// Parses one route item: `[domain] hosts [options...]`; the domain and
/// host list may be double-quoted. With `with_domain == false` (for
/// `route_data`) there is no domain field.
pub fn parse_route_item(item: &str, with_domain: bool) -> RouteItem {
    let mut rest = item.trim_start();
    let mut domain = String::new();
    if with_domain {
        let (d, r) = dequote_word(rest);
        domain = d;
        rest = r.trim_start();
    }
    let (hosts, r) = dequote_word(rest);
    RouteItem {
        domain,
        hosts,
        options: r.split_whitespace().map(str::to_string).collect(),
    }
}

fn dequote_word(s: &str) -> (String, &str) {
    let s = s.trim_start();
    if let Some(q) = s.strip_prefix('"') {
        let (v, used, _) = options::dequote(q);
        (v, &q[used..])
    } else {
        let e = s.find(char::is_whitespace).unwrap_or(s.len());
        (s[..e].to_string(), &s[e..])
    }
}

/// Parses a rewrite rule: `pattern replacement [flags]`.
pub fn parse_rewrite_line(text: &str) -> Result<RewriteRule, String> {
    let (pattern, rest) = dequote_word(text);
    if rest.trim().is_empty() {
        return Err("missing rewrite replacement string".to_string());
    }
    let (replacement, rest) = dequote_word(rest);
    let mut flags = String::new();
    for c in rest.chars() {
        match c {
            ' ' | '\t' => {}
            'q' | 'w' | 'h' | 's' | 'f' | 't' | 'c' | 'b' | 'r' | 'E' | 'F' | 'T' | 'Q' | 'R' => {
                flags.push(c)
            }
            'S' => {
                if !(pattern.starts_with('^') || pattern.starts_with("\\N^")) {
                    return Err(
                        "rewrite rule has the S flag but is not a regular expression".to_string()
                    );
                }
                flags.push(c);
            }
            other => {
                return Err(format!(
                    "unknown rewrite flag character '{other}' (could be missing quotes round replacement item)"
                ))
            }
        }
    }
    Ok(RewriteRule {
        pattern,
        replacement,
        flags,
    })
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
