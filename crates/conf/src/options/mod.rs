//! Option tables, typed values and the `name = value` line parser.

use std::collections::HashMap;
use std::time::Duration;

mod values;

pub(crate) use values::{
    bytes_to_string, dequote, interpret_escape, parse_fixed, printing, read_string,
    split_option_line,
};
pub use values::{parse_time, render_time};

use values::*;

/// The type of an option, which decides how its value is read and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (expanded at use time unless documented otherwise).
    Str,
    /// A boolean: bare name, `no_`/`not_` prefix, or `= true|false|yes|no`.
    Bool,
    /// A boolean that may instead be an expandable string (contains `$`).
    ExpandBool,
    /// An integer (decimal, `0x` hex, `0` octal; `K`/`M`/`G` suffix).
    Int,
    /// An integer printed with a `K`/`M` suffix when it divides evenly.
    Size,
    /// An integer read and printed in octal (file modes).
    Octal,
    /// A time interval such as `1d2h`, stored in seconds.
    Time,
    /// A colon-separated list of time intervals.
    TimeList,
    /// A host, domain, address or local-part list (kept raw, unexpanded).
    List,
    /// A user name or uid (kept as text).
    User,
    /// A group name or gid (kept as text).
    Group,
    /// A colon-separated list of user names or uids (kept raw; the binary
    /// resolves the names).
    UserList,
    /// A colon-separated list of group names or gids (kept raw).
    GroupList,
    /// A fixed-point number with three decimals (stored in thousandths).
    Fixed,
}

/// How a repeated setting of the same option is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A second setting is an error.
    No,
    /// Repeated `condition` settings are all required (Exim's `and` chain).
    Condition,
    /// Repeated settings are appended, joined with the given separator.
    Append(char),
}

/// Default value of an option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    /// No value (an unset string, uid, ...).
    Unset,
    /// A string.
    Str(&'static str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A time in seconds.
    Time(u64),
}

/// One entry of an option table.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Option name as written in the configuration.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default value.
    pub default: DefaultValue,
    /// Behaviour when set more than once.
    pub repeat: Repeat,
}

/// Builds an [`OptionSpec`] without repetition.
pub(crate) const fn spec(name: &'static str, kind: Kind, default: DefaultValue) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        default,
        repeat: Repeat::No,
    }
}

/// A typed option value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string (raw text, to be expanded by the user if the option is
    /// expanded).
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer (also used for sizes and octal modes).
    Int(i64),
    /// A time interval in seconds.
    Time(u64),
    /// A list, raw and unexpanded.
    List(String),
    /// A list of time intervals in seconds.
    TimeList(Vec<u64>),
    /// A fixed-point number in thousandths.
    Fixed(i64),
}

impl Value {
    fn from_default(kind: Kind, d: DefaultValue) -> Option<Value> {
        Some(match d {
            DefaultValue::Unset => return None,
            DefaultValue::Str(s) => match kind {
                Kind::List | Kind::UserList | Kind::GroupList => Value::List(s.to_string()),
                _ => Value::Str(s.to_string()),
            },
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Int(i) => match kind {
                Kind::Fixed => Value::Fixed(i),
                _ => Value::Int(i),
            },
            DefaultValue::Time(t) => Value::Time(t),
        })
    }
}

/// The option values of one block (main section or one driver instance).
#[derive(Debug, Clone)]
pub struct Options {
    specs: Vec<&'static OptionSpec>,
    /// Which table (0 = first) each spec came from, for `-bP` ordering.
    groups: Vec<usize>,
    tables: usize,
    index: HashMap<&'static str, usize>,
    values: Vec<Option<Value>>,
    set: Vec<bool>,
    hidden: Vec<bool>,
}

/// Alternative spellings Exim accepts for some options.
const ALIASES: &[(&str, &str)] = &[("daemon_smtp_port", "daemon_smtp_ports")];

/// The canonical name of an option (resolving aliases).
pub fn canonical_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, c)| *c)
        .unwrap_or(name)
}

/// Error from [`Options::apply_line`]: the message text (Exim wording).
pub(crate) type LineError = String;

impl Options {
    /// Creates the defaults for the given tables (earlier tables win on
    /// duplicate names).
    pub fn new(tables: &[&'static [OptionSpec]]) -> Self {
        let mut o = Options {
            specs: Vec::new(),
            groups: Vec::new(),
            tables: 0,
            index: HashMap::new(),
            values: Vec::new(),
            set: Vec::new(),
            hidden: Vec::new(),
        };
        for t in tables {
            o.extend(t);
        }
        o
    }

    /// Adds the options of another table (used when a driver's private
    /// table becomes known).
    pub fn extend(&mut self, table: &'static [OptionSpec]) {
        let group = self.tables;
        self.tables += 1;
        for s in table {
            if self.index.contains_key(s.name) {
                continue;
            }
            self.index.insert(s.name, self.specs.len());
            self.specs.push(s);
            self.groups.push(group);
            self.values.push(Value::from_default(s.kind, s.default));
            self.set.push(false);
            self.hidden.push(false);
        }
    }

    /// The spec of a known option.
    pub fn spec(&self, name: &str) -> Option<&'static OptionSpec> {
        self.idx(name).map(|i| self.specs[i])
    }

    /// Whether `name` is an option of this block.
    pub fn knows(&self, name: &str) -> bool {
        self.idx(name).is_some()
    }

    /// Whether the option holds its table default (an empty string counts
    /// as unset); true for an unknown name.
    pub fn is_default(&self, name: &str) -> bool {
        let Some(i) = self.idx(name) else {
            return true;
        };
        let spec = self.specs[i];
        let default = Value::from_default(spec.kind, spec.default);
        let current = self.values[i].as_ref();
        let empty = |v: Option<&Value>| match v {
            None => true,
            Some(Value::Str(s) | Value::List(s)) => s.is_empty(),
            _ => false,
        };
        current == default.as_ref() || (empty(current) && empty(default.as_ref()))
    }

    /// The current value (explicit or default); `None` for unknown or unset
    /// options.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.idx(name).and_then(|i| self.values[i].as_ref())
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.index
            .get(name)
            .or_else(|| self.index.get(canonical_name(name)))
            .copied()
    }

    /// String value; `""` when unset, unknown or not a string.
    pub fn str(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Str(s)) | Some(Value::List(s)) => s,
            _ => "",
        }
    }

    /// String value, distinguishing unset (`None`) from empty.
    pub fn opt_str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) | Some(Value::List(s)) => Some(s),
            _ => None,
        }
    }

    /// Boolean value; `false` when unknown, unset or not a fixed boolean.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// Value of a boolean that may be an expandable string (`more`,
    /// `unseen`, `queue_only`, ...): a fixed boolean is returned as is, a
    /// string is expanded and interpreted like a router `condition`.
    pub fn bool_expanded(
        &self,
        name: &str,
        ctx: &dyn crate::expand::ExpandContext,
    ) -> Result<bool, crate::expand::ExpandError> {
        match self.get(name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Str(s)) => crate::expand::expand_condition(s, ctx),
            _ => Ok(false),
        }
    }

    /// Integer value; 0 when unknown or unset.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(i)) | Some(Value::Fixed(i)) => *i,
            Some(Value::Time(t)) => i64::try_from(*t).unwrap_or(i64::MAX),
            _ => 0,
        }
    }

    /// Time value; zero when unknown or unset.
    pub fn time(&self, name: &str) -> Duration {
        match self.get(name) {
            Some(Value::Time(t)) => Duration::from_secs(*t),
            _ => Duration::ZERO,
        }
    }

    /// Whether the option was set explicitly in the configuration.
    pub fn is_set(&self, name: &str) -> bool {
        self.idx(name).is_some_and(|i| self.set[i])
    }

    /// Whether the option was marked `hide`.
    pub fn is_hidden(&self, name: &str) -> bool {
        self.idx(name).is_some_and(|i| self.hidden[i])
    }

    /// Names of all options in table order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.specs.iter().map(|s| s.name)
    }

    /// Sets a value directly (for programmatic overrides such as `-oX`).
    /// Returns false for an unknown option.
    pub fn set_value(&mut self, name: &str, value: Value) -> bool {
        match self.idx(name) {
            Some(i) => {
                self.values[i] = Some(value);
                self.set[i] = true;
                true
            }
            None => false,
        }
    }

    /// Renders an option for `-bP` in Exim's format: `name = value`,
    /// `name` / `no_name` for booleans, `<value not displayable>` for hidden
    /// options. `None` for unknown options.
    pub fn render(&self, name: &str) -> Option<String> {
        let i = self.idx(name)?;
        let spec = self.specs[i];
        if self.hidden[i] {
            return Some(format!("{name} = <value not displayable>"));
        }
        let v = self.values[i].as_ref();
        Some(match (spec.kind, v) {
            (_, Some(Value::Bool(b))) => {
                format!("{}{name}", if *b { "" } else { "no_" })
            }
            (Kind::Bool, None) => format!("no_{name}"),
            (_, None) => format!("{name} = "),
            (_, Some(Value::Str(s))) | (_, Some(Value::List(s))) => {
                format!("{name} = {}", printing(s))
            }
            (Kind::Size, Some(Value::Int(x))) => format!("{name} = {}", render_size(*x)),
            (Kind::Octal, Some(Value::Int(x))) => format!("{name} = 0{x:o}"),
            (_, Some(Value::Int(x))) => format!("{name} = {x}"),
            (_, Some(Value::Time(t))) => format!("{name} = {}", render_time(*t)),
            (_, Some(Value::TimeList(l))) => format!(
                "{name} = {}",
                l.iter()
                    .map(|t| render_time(*t))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
            (_, Some(Value::Fixed(x))) => format!("{name} = {}", render_fixed(*x)),
        })
    }

    /// Like [`Options::render`] without the `name = ` label (Exim's
    /// `-n` flag); booleans still print as `name` / `no_name`.
    pub fn render_value(&self, name: &str) -> Option<String> {
        let full = self.render(name)?;
        let canonical = self.spec(name).map(|s| s.name).unwrap_or(name);
        Some(match full.strip_prefix(canonical) {
            Some(rest) if rest.starts_with(" =") => rest
                .trim_start_matches(" =")
                .trim_start_matches(' ')
                .to_string(),
            _ => full,
        })
    }

    /// Renders every option (for `-bP all` and driver listings): generic
    /// options first, then private ones, each alphabetically, as Exim does.
    pub fn render_all(&self) -> Vec<String> {
        let mut order: Vec<usize> = (0..self.specs.len()).collect();
        order.sort_by_key(|&i| (self.groups[i], self.specs[i].name));
        order
            .into_iter()
            .filter_map(|i| self.render(self.specs[i].name))
            .collect()
    }

    /// Applies one option line (`[hide] name [= value]`) to this block.
    ///
    /// Returns `Ok(None)` when the name is not in this block (so that the
    /// caller can try another table or report it), `Ok(Some(name))` with the
    /// option name on success.
    pub(crate) fn apply_line(&mut self, line: &str) -> Result<Option<String>, LineError> {
        let (hidden, name, rest) = split_option_line(line)?;
        let (negated, base) = if let Some(b) = name.strip_prefix("no_") {
            (true, b)
        } else if let Some(b) = name.strip_prefix("not_") {
            (true, b)
        } else {
            (false, name)
        };
        // An option whose real name starts with "no_" (none exist today)
        // would be shadowed; prefer the literal name if it exists.
        let (negated, base) = if self.knows(name) {
            (false, name)
        } else {
            (negated, base)
        };
        let Some(i) = self.idx(base) else {
            return Ok(None);
        };
        let spec = self.specs[i];
        if self.set[i] && spec.repeat == Repeat::No {
            return Err(format!("\"{name}\" option set for the second time"));
        }
        let is_bool = matches!(spec.kind, Kind::Bool | Kind::ExpandBool);
        let mut value_text = rest;
        if !is_bool {
            if negated {
                return Err("negation prefix applied to a non-boolean option".to_string());
            }
            if rest.is_empty() {
                return Err(format!(
                    "unexpected end of line (data missing) after {name}"
                ));
            }
            let Some(v) = rest.strip_prefix('=') else {
                return Err(format!("missing \"=\" after {name}"));
            };
            value_text = v.trim_start();
        } else if !rest.is_empty() {
            if negated || !rest.starts_with('=') {
                return Err(extra_chars(rest, "boolean option ", name, ""));
            }
            value_text = rest[1..].trim_start();
        }
        let value = parse_value(spec, name, value_text, negated)?;
        let value = match (spec.repeat, &self.values[i], value) {
            (Repeat::Condition, Some(Value::Str(old)), Value::Str(new)) if self.set[i] => {
                Value::Str(format!(
                    "${{if and{{{{bool_lax{{{old}}}}}{{bool_lax{{{new}}}}}}}}}"
                ))
            }
            (Repeat::Append(sep), Some(Value::Str(old)), Value::Str(new))
                if self.set[i] && !old.is_empty() =>
            {
                Value::Str(format!("{old}{sep}{new}"))
            }
            (_, _, v) => v,
        };
        self.values[i] = Some(value);
        self.set[i] = true;
        if hidden {
            self.hidden[i] = true;
        }
        Ok(Some(spec.name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1d2h3m4s"), Some(93784));
        assert_eq!(parse_time("5d"), Some(432000));
        assert_eq!(parse_time("1w"), Some(604800));
        assert_eq!(parse_time("30"), Some(30));
        assert_eq!(parse_time("x"), None);
        assert_eq!(parse_time("1x"), None);
        assert_eq!(render_time(93784), "1d2h3m4s");
        assert_eq!(render_time(0), "0s");
        assert_eq!(render_time(10 * 7 * 86400), "10w");
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("50M", "x", 0), Ok(50 << 20));
        assert_eq!(parse_int("0x10", "x", 0), Ok(16));
        assert_eq!(parse_int("010", "x", 0), Ok(8));
        assert_eq!(parse_int("0", "x", 0), Ok(0));
        assert_eq!(parse_int("600", "mode", 8), Ok(0o600));
        assert_eq!(
            parse_int("abc", "x", 0),
            Err("integer expected for x".to_string())
        );
        assert_eq!(
            parse_int("12 #c", "x", 0),
            Err(
                "extra characters follow integer value for x (# is comment only at line start)"
                    .to_string()
            )
        );
        assert_eq!(render_size(50 << 20), "50M");
        assert_eq!(render_size(1536), "1536");
        assert_eq!(render_fixed(1500), "1.5");
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(
            read_string("\"a\\tb\\x41\\101\\\"\"", "o"),
            Ok("a\tbAA\"".to_string())
        );
        assert!(read_string("\"abc", "o").is_err());
        assert!(read_string("\"abc\" x", "o").is_err());
        assert_eq!(
            read_string("plain \"x\"", "o"),
            Ok("plain \"x\"".to_string())
        );
    }
}
