//! Option tables, typed values and the `name = value` line parser.

use std::collections::HashMap;
use std::time::Duration;

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
            (_, None) => format!("{name} ="),
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

/// Splits `[hide] name rest`, where rest starts at the first non-space
/// character after the name.
pub(crate) fn split_option_line(line: &str) -> Result<(bool, &str, &str), LineError> {
    let mut s = line.trim_start();
    let mut hidden = false;
    for _ in 0..2 {
        if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!("option setting expected: {s}"));
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let name = &s[..end];
        let rest = s[end..].trim_start();
        if name == "hide" && !hidden && !rest.starts_with('=') {
            hidden = true;
            s = rest;
            continue;
        }
        return Ok((hidden, name, rest));
    }
    Err(format!("option setting expected: {s}"))
}

fn extra_chars(s: &str, t1: &str, t2: &str, t3: &str) -> String {
    let comment = if s.starts_with('#') {
        " (# is comment only at line start)"
    } else {
        ""
    };
    format!("extra characters follow {t1}{t2}{t3}{comment}")
}

fn parse_value(spec: &OptionSpec, name: &str, s: &str, negated: bool) -> Result<Value, LineError> {
    match spec.kind {
        Kind::Bool | Kind::ExpandBool => {
            if s.is_empty() {
                return Ok(Value::Bool(!negated));
            }
            if spec.kind == Kind::ExpandBool && s.contains('$') {
                return Ok(Value::Str(read_string(s, name)?));
            }
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            let word = &s[..end];
            let b = match word.to_ascii_lowercase().as_str() {
                "true" | "yes" => true,
                "false" | "no" => false,
                _ => {
                    return Err(format!(
                        "\"{word}\" is not a valid value for the \"{name}\" option"
                    ))
                }
            };
            let rest = s[end..].trim_start();
            if !rest.is_empty() {
                return Err(extra_chars(
                    rest,
                    &format!("\"{word}\" "),
                    "for boolean option ",
                    name,
                ));
            }
            Ok(Value::Bool(b))
        }
        Kind::Str | Kind::User | Kind::Group => Ok(Value::Str(read_string(s, name)?)),
        Kind::List | Kind::UserList | Kind::GroupList => Ok(Value::List(read_string(s, name)?)),
        Kind::Int | Kind::Size => parse_int(s, name, 0).map(Value::Int),
        Kind::Octal => parse_int(s, name, 8).map(Value::Int),
        Kind::Time if name == "smtp_receive_timeout" && s.starts_with('$') => {
            Ok(Value::Str(s.to_string()))
        }
        Kind::Time => match parse_time(s) {
            Some(t) => Ok(Value::Time(t)),
            None => Err(format!("invalid time value for {name}")),
        },
        Kind::TimeList => {
            let mut out = Vec::new();
            if !s.is_empty() {
                for part in s.split(':') {
                    let t = parse_time(part.trim())
                        .ok_or_else(|| format!("invalid time value for {name}"))?;
                    if out.last().is_some_and(|&l| t <= l) {
                        return Err(format!("time value out of order for {name}"));
                    }
                    out.push(t);
                }
            }
            Ok(Value::TimeList(out))
        }
        Kind::Fixed => parse_fixed(s)
            .map(Value::Fixed)
            .ok_or_else(|| format!("fixed-point number expected for {name}")),
    }
}

/// Reads a string option value: verbatim, or a double-quoted string with
/// backslash escapes (nothing may follow the closing quote).
pub(crate) fn read_string(s: &str, name: &str) -> Result<String, LineError> {
    let Some(body) = s.strip_prefix('"') else {
        return Ok(s.to_string());
    };
    let (out, consumed, closed) = dequote(body);
    if !closed {
        return Err(format!("missing quote at end of string value for {name}"));
    }
    let rest = body[consumed..].trim_start();
    if !rest.is_empty() {
        return Err(extra_chars(rest, "string value for ", name, ""));
    }
    Ok(out)
}

/// Processes a quoted string body (after the opening quote). Returns the
/// text, the number of bytes consumed including the closing quote, and
/// whether a closing quote was found.
pub(crate) fn dequote(body: &str) -> (String, usize, bool) {
    let b = body.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return (bytes_to_string(out), i + 1, true),
            b'\\' => {
                let (c, n) = interpret_escape(&b[i + 1..]);
                out.extend_from_slice(&c);
                i += 1 + n;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (bytes_to_string(out), b.len(), false)
}

pub(crate) fn bytes_to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Interprets the escape after a backslash. Returns the produced bytes and
/// the number of input bytes consumed (after the backslash).
pub(crate) fn interpret_escape(s: &[u8]) -> (Vec<u8>, usize) {
    let Some(&c) = s.first() else {
        return (b"\\".to_vec(), 0);
    };
    match c {
        b'0'..=b'7' => {
            let mut v: u32 = 0;
            let mut n = 0;
            while n < 3 && n < s.len() && (b'0'..=b'7').contains(&s[n]) {
                v = v * 8 + u32::from(s[n] - b'0');
                n += 1;
            }
            (vec![(v & 0xff) as u8], n)
        }
        b'x' => {
            let mut v: u32 = 0;
            let mut n = 1;
            while n < 3 && n < s.len() && s[n].is_ascii_hexdigit() {
                v = v * 16 + char::from(s[n]).to_digit(16).unwrap_or(0);
                n += 1;
            }
            if n == 1 {
                (b"x".to_vec(), 1)
            } else {
                (vec![(v & 0xff) as u8], n)
            }
        }
        b'b' => (vec![8], 1),
        b'f' => (vec![12], 1),
        b'n' => (vec![b'\n'], 1),
        b'r' => (vec![b'\r'], 1),
        b't' => (vec![b'\t'], 1),
        b'v' => (vec![11], 1),
        _ => {
            // Any other character stands for itself (whole UTF-8 sequence).
            let len = utf8_len(c).min(s.len());
            (s[..len].to_vec(), len)
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// Parses an Exim integer: optional sign, decimal / `0x` hex / leading-0
/// octal (or the given base), optional `K`/`M`/`G` suffix, trailing space.
pub(crate) fn parse_int(s: &str, name: &str, base: u32) -> Result<i64, LineError> {
    let inttype = if base == 8 { "octal " } else { "" };
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if base == 8 {
        (8, t)
    } else if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 && !(radix == 8 && base != 8 && t.starts_with('0')) {
        return Err(format!("{inttype}integer expected for {name}"));
    }
    let overflow = || format!("absolute value of integer \"{s}\" is too large (overflow)");
    let mut v = if end == 0 {
        0
    } else {
        i64::from_str_radix(&digits[..end], radix).map_err(|_| overflow())?
    };
    let mut rest = &digits[end..];
    let mult: i64 = match rest.as_bytes().first() {
        Some(b'K' | b'k') => 1 << 10,
        Some(b'M' | b'm') => 1 << 20,
        Some(b'G' | b'g') => 1 << 30,
        Some(b'T' | b't') => 1 << 40,
        _ => 1,
    };
    if mult != 1 {
        rest = &rest[1..];
        v = v.checked_mul(mult).ok_or_else(overflow)?;
    }
    if neg {
        v = -v;
    }
    if v > i64::from(i32::MAX) * (1 << 20) || v < -(i64::from(i32::MAX) * (1 << 20)) {
        return Err(overflow());
    }
    let rest = rest.trim_start();
    if !rest.is_empty() {
        return Err(extra_chars(rest, inttype, "integer value for ", name));
    }
    Ok(v)
}

/// Parses an Exim time value such as `1w2d3h4m5s` or `30` (seconds when no
/// unit letter follows the last number). Returns seconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return None;
        }
        let mut v: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
            i += 1;
        }
        let mult = match b.get(i) {
            Some(b'w') => 7 * 86400,
            Some(b'd') => 86400,
            Some(b'h') => 3600,
            Some(b'm') => 60,
            Some(b's') => 1,
            None => 1,
            _ => return None,
        };
        if i < b.len() {
            i += 1;
        }
        total = total.checked_add(v.checked_mul(mult)?)?;
    }
    if total > i32::MAX as u64 {
        return None;
    }
    Some(total)
}

/// Parses a fixed-point number with up to three decimals into thousandths.
pub(crate) fn parse_fixed(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = int.parse::<i64>().ok()?.checked_mul(1000)?;
    let mut m = 100;
    for c in frac.bytes().take(3) {
        v += i64::from(c - b'0') * m;
        m /= 10;
    }
    Some(v)
}

/// Formats seconds the way Exim prints times (`1w2d3h4m5s`, `0s`).
pub fn render_time(t: u64) -> String {
    let (s, t) = (t % 60, t / 60);
    let (m, t) = (t % 60, t / 60);
    let (h, t) = (t % 24, t / 24);
    let (d, w) = (t % 7, t / 7);
    let mut out = String::new();
    for (v, u) in [(w, 'w'), (d, 'd'), (h, 'h'), (m, 'm')] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn render_size(x: i64) -> String {
    if x != 0 && x & 1023 == 0 {
        let y = x >> 10;
        if y & 1023 == 0 {
            format!("{}M", y >> 10)
        } else {
            format!("{y}K")
        }
    } else {
        x.to_string()
    }
}

fn render_fixed(x: i64) -> String {
    let mut out = format!("{}.", x / 1000);
    let mut f = x % 1000;
    let mut d = 100;
    loop {
        out.push_str(&(f / d).to_string());
        f %= d;
        d /= 10;
        if f == 0 || d == 0 {
            break;
        }
    }
    out
}

/// Exim's `string_printing`: non-printing characters are shown as escapes.
pub(crate) fn printing(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push('\\'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03o}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
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
