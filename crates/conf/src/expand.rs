//! String expansion (Exim spec chapter "String expansions").
//!
//! Supported:
//! * variables `$name`, `${name}`, header variables `$h_name:` (absent
//!   headers expand to nothing), `$0`..`$9` after `match`, `$value` after
//!   `lookup`/`extract`/`listextract`, `$item` in `map`/`filter`/`reduce`/
//!   `forany`/`forall`; backslash escapes and `\N...\N` literals;
//! * items `if`, `lookup` (`lsearch`, `lsearch*`, `lsearch*@`), `sg`, `tr`,
//!   `length`, `substr`, `extract`, `listextract`, `readfile`, `map`,
//!   `filter`, `reduce`;
//! * operators `lc`, `uc`, `length_N`, `substr_M_N`, `strlen`, `domain`,
//!   `local_part`, `address`, `quote`, `quote_local_part`, `rxquote`,
//!   `escape`, `escape8bit`, `base62`, `base64`/`str2b64`, `base64d`,
//!   `hex2b64`, `reverse_ip`, `mask`, `ipv6norm`, `ipv6denorm`, `eval`,
//!   `time_interval`, `time_eval`, `listcount`, `listnamed[_d|_h|_a|_l]`;
//! * conditions `eq`, `eqi`, `ne`, `!`, `def:`, `match`, `and`, `or`,
//!   `exists`, `==`, `<`, `>`, `<=`, `>=`, `isip`, `isip4`, `isip6`, `bool`,
//!   `bool_lax`, `true`, `false`, `inlist`, `inlisti`, `forany`, `forall`,
//!   and with [`expand_with_config`] `match_domain`, `match_address`,
//!   `match_local_part`, `match_ip`.
//!
//! Values of variables are inserted verbatim and never expanded again.
//! Anything else fails with a typed [`ExpandError`] naming the item.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::Config;
use crate::options::{bytes_to_string, interpret_escape};

/// Maximum nesting of `${...}` items.
const MAX_DEPTH: usize = 64;
/// Maximum size of an expansion result.
const MAX_OUTPUT: usize = 16 << 20;

/// Data available to an expansion.
pub trait ExpandContext {
    /// The value of variable `name` (without `$`), or `None` if it has no
    /// value. For header variables the name includes the trailing colon
    /// (`h_subject:`). When this returns `None`, a name that is one of
    /// Exim's variables (see [`crate::vars::is_known_variable`]) or a
    /// header expands to nothing; any other name is an
    /// [`ExpandError::UnknownVariable`].
    fn var(&self, name: &str) -> Option<String>;

    /// The content of a file, for lookups (`lsearch`). Default: none.
    fn read_file(&self, _path: &str) -> Option<String> {
        None
    }

    /// Whether a file exists (the `exists` condition). Default: false.
    fn file_exists(&self, _path: &str) -> bool {
        false
    }

    /// Forward lookup of a host name, for host lists that contain plain
    /// names. `None` means "cannot resolve here"; the list matcher then
    /// compares the name with the host's verified name instead.
    fn host_addresses(&self, _name: &str) -> Option<Vec<IpAddr>> {
        None
    }

    /// Forward lookup of a plain host name in a host list, writing Exim's
    /// trace of it. `None`: not available here (see
    /// [`ExpandContext::host_addresses`]).
    fn find_host(&self, _name: &str, _trace: &mut crate::trace::Trace) -> Option<HostFind> {
        None
    }

    /// The client's host name and verified aliases, looked up when a host
    /// list first needs them (with Exim's trace); `Err` is the reason there
    /// is none. `None`: not available here.
    fn sender_host_names(
        &self,
        _trace: &mut crate::trace::Trace,
    ) -> Option<Result<Vec<String>, String>> {
        None
    }
}

/// The result of [`ExpandContext::find_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFind {
    /// The name's addresses.
    Found(Vec<IpAddr>),
    /// No such host (the text says so, for the list trace).
    NotFound(String),
    /// The lookup could not complete (the text says so).
    Again(String),
}

/// A simple [`ExpandContext`] backed by maps (for tests and simple uses).
#[derive(Debug, Default, Clone)]
pub struct MapContext {
    /// Variables by name.
    pub vars: HashMap<String, String>,
    /// Files by path.
    pub files: HashMap<String, String>,
}

impl MapContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder: adds a variable.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Builder: adds a file.
    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

impl ExpandContext for MapContext {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn file_exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

/// Why an expansion failed. Messages follow Exim's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `$name` where no such variable exists.
    #[error("unknown variable name \"{0}\"")]
    UnknownVariable(String),
    /// `${op:...}` with an unknown operator.
    #[error("unknown expansion operator \"{0}\"")]
    UnknownOperator(String),
    /// `${if cond...}` with an unknown condition.
    #[error("unknown condition \"{0}\"")]
    UnknownCondition(String),
    /// An unsupported lookup type.
    #[error("unknown lookup type \"{0}\"")]
    UnknownLookup(String),
    /// A number was expected.
    #[error("\"{0}\" is not a number")]
    NotANumber(String),
    /// A regular expression did not compile.
    #[error("regular expression error in \"{pattern}\": {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// Syntax error, with Exim's text (e.g. `missing } at end of string`).
    #[error("{0}")]
    Syntax(String),
    /// A lookup file could not be read.
    #[error("failed to open {0} for linear search")]
    LookupFile(String),
    /// `fail` was used in an `if` or `lookup`: Exim's "forced failure".
    #[error("forced failure")]
    ForcedFail,
    /// A boolean was expected (from [`expand_bool`] and `bool{}`).
    #[error("unrecognised boolean value \"{0}\"")]
    NotABool(String),
    /// Nesting or output size limit exceeded.
    #[error("expansion too complex: {0}")]
    TooComplex(&'static str),
}

impl ExpandError {
    /// Whether this is Exim's "forced failure" (`fail` keyword), which
    /// callers often treat differently from a real error.
    pub fn is_forced_fail(&self) -> bool {
        matches!(self, ExpandError::ForcedFail)
    }
}

/// Expands `s` against `ctx`.
pub fn expand(s: &str, ctx: &dyn ExpandContext) -> Result<String, ExpandError> {
    let mut e = Expander::new(ctx, None);
    let mut pos = 0;
    let out = e.string(s.as_bytes(), &mut pos, false, false)?;
    Ok(bytes_to_string(out))
}

/// Like [`expand`], with access to the configuration's named lists, which
/// enables the `match_domain`, `match_address`, `match_local_part` and
/// `match_ip` conditions.
pub fn expand_with_config(
    s: &str,
    ctx: &dyn ExpandContext,
    cfg: &Config,
) -> Result<String, ExpandError> {
    let mut e = Expander::new(ctx, Some(cfg));
    let mut pos = 0;
    let out = e.string(s.as_bytes(), &mut pos, false, false)?;
    Ok(bytes_to_string(out))
}

/// Expands raw bytes (which need not be UTF-8), with the configuration's
/// named lists when `cfg` is given; the result is raw bytes too. Used by
/// `-be`, which prints whatever the expansion produced.
pub fn expand_bytes(
    s: &[u8],
    ctx: &dyn ExpandContext,
    cfg: Option<&Config>,
) -> Result<Vec<u8>, ExpandError> {
    let mut e = Expander::new(ctx, cfg);
    let mut pos = 0;
    e.string(s, &mut pos, false, false)
}

/// Expands `s` and interprets the result as Exim's ACL `condition` does:
/// empty, `0`, `no`, `false` are false; a non-zero integer, `yes`, `true`
/// are true (case-insensitive, surrounding white space ignored); anything
/// else is an error.
pub fn expand_bool(s: &str, ctx: &dyn ExpandContext) -> Result<bool, ExpandError> {
    let v = expand(s, ctx)?;
    strict_bool(&v)
}

/// Expands `s` and interprets it as a router `condition`: empty, `0`, `no`
/// and `false` (case-insensitive) are false, anything else is true.
pub fn expand_condition(s: &str, ctx: &dyn ExpandContext) -> Result<bool, ExpandError> {
    let v = expand(s, ctx)?;
    Ok(lax_bool(&v))
}

fn strict_bool(v: &str) -> Result<bool, ExpandError> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(false);
    }
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n != 0);
    }
    match t.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(ExpandError::NotABool(t.to_string())),
    }
}

fn lax_bool(v: &str) -> bool {
    let t = v.trim();
    !(t.is_empty() || t == "0" || t.eq_ignore_ascii_case("no") || t.eq_ignore_ascii_case("false"))
}

/// Result of the test before a `{yes}{no}` pair.
struct Outcome {
    /// Whether the condition held / the lookup succeeded.
    ok: bool,
    /// What to insert when no strings follow and `ok` is true.
    bare: Vec<u8>,
    /// `$value` to restore before expanding the second string.
    restore: Option<Option<String>>,
}

impl Outcome {
    fn new(ok: bool, bare: Vec<u8>, restore: Option<Option<String>>) -> Self {
        Outcome { ok, bare, restore }
    }
}

struct Expander<'c> {
    ctx: &'c dyn ExpandContext,
    cfg: Option<&'c Config>,
    depth: usize,
    numeric: Vec<String>,
    lookup_value: Option<String>,
    /// `$item` inside `map`, `filter`, `reduce`, `forany`, `forall`.
    item: Option<String>,
}

fn syntax(m: impl Into<String>) -> ExpandError {
    ExpandError::Syntax(m.into())
}

fn skip_ws(s: &[u8], pos: &mut usize) {
    while *pos < s.len() && s[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

fn read_name(s: &[u8], pos: &mut usize) -> String {
    read_name_with(s, pos, b"_")
}

/// Reads a name of alphanumerics plus the `extra` characters.
fn read_name_with(s: &[u8], pos: &mut usize, extra: &[u8]) -> String {
    let start = *pos;
    while *pos < s.len() && (s[*pos].is_ascii_alphanumeric() || extra.contains(&s[*pos])) {
        *pos += 1;
    }
    String::from_utf8_lossy(&s[start..*pos]).into_owned()
}

fn is_header_var(name: &str) -> bool {
    [
        "h_", "header_", "rh_", "rheader_", "bh_", "bheader_", "lh_", "lheader_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Parses an Exim number for numeric comparisons: optional sign, decimal,
/// `0x` hex, K/M/G suffix.
fn parse_number(s: &str) -> Result<i64, ExpandError> {
    let t = s.trim();
    let nan = || ExpandError::NotANumber(s.to_string());
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mult, t) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (1i64 << 10, &t[..t.len() - 1]),
        Some(b'm' | b'M') => (1 << 20, &t[..t.len() - 1]),
        Some(b'g' | b'G') => (1 << 30, &t[..t.len() - 1]),
        _ => (1, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).map_err(|_| nan())?
    } else {
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(nan());
        }
        t.parse::<i64>().map_err(|_| nan())?
    };
    let v = v.checked_mul(mult).ok_or_else(nan)?;
    Ok(if neg { -v } else { v })
}

fn compile_regex(p: &str) -> Result<regex::bytes::Regex, ExpandError> {
    regex::bytes::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ExpandError::Regex {
            pattern: p.to_string(),
            message: e.to_string(),
        })
}

impl<'c> Expander<'c> {
    fn new(ctx: &'c dyn ExpandContext, cfg: Option<&'c Config>) -> Self {
        Expander {
            ctx,
            cfg,
            depth: 0,
            numeric: Vec::new(),
            lookup_value: None,
            item: None,
        }
    }

    fn enter(&mut self) -> Result<(), ExpandError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExpandError::TooComplex("nesting too deep"));
        }
        Ok(())
    }

    /// Expands from `*pos`. With `ket_ends`, stops after an unbalanced `}`
    /// (which is consumed) and it is an error to reach the end first. With
    /// `skip`, the text is only parsed (nothing is looked up).
    fn string(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        ket_ends: bool,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        self.enter()?;
        let mut out = Vec::new();
        loop {
            if out.len() > MAX_OUTPUT {
                return Err(ExpandError::TooComplex("result too long"));
            }
            let Some(&c) = s.get(*pos) else {
                if ket_ends {
                    return Err(syntax("missing } at end of string"));
                }
                break;
            };
            match c {
                b'}' if ket_ends => {
                    *pos += 1;
                    break;
                }
                b'\\' => {
                    *pos += 1;
                    if s.get(*pos) == Some(&b'N') {
                        *pos += 1;
                        let start = *pos;
                        while *pos < s.len()
                            && !(s[*pos] == b'\\' && s.get(*pos + 1) == Some(&b'N'))
                        {
                            *pos += 1;
                        }
                        out.extend_from_slice(&s[start..*pos]);
                        if *pos < s.len() {
                            *pos += 2;
                        }
                    } else {
                        let (bytes, n) = interpret_escape(&s[*pos..]);
                        out.extend_from_slice(&bytes);
                        *pos += n;
                    }
                }
                b'$' => {
                    *pos += 1;
                    self.dollar(s, pos, skip, &mut out)?;
                }
                _ => {
                    out.push(c);
                    *pos += 1;
                }
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    fn variable(&self, name: &str, skip: bool) -> Result<Vec<u8>, ExpandError> {
        if skip {
            return Ok(Vec::new());
        }
        if name.bytes().all(|c| c.is_ascii_digit()) {
            let n: usize = name.parse().unwrap_or(usize::MAX);
            return Ok(self
                .numeric
                .get(n)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default());
        }
        if name == "value" {
            if let Some(v) = &self.lookup_value {
                return Ok(v.as_bytes().to_vec());
            }
        }
        if name == "item" {
            if let Some(v) = &self.item {
                return Ok(v.as_bytes().to_vec());
            }
        }
        match self.ctx.var(name) {
            Some(v) => Ok(v.into_bytes()),
            // A header that is not present expands to nothing.
            None if name.ends_with(':') && is_header_var(name) => Ok(Vec::new()),
            // An Exim variable that has no value here expands to nothing.
            None if crate::vars::is_known_variable(name) => Ok(Vec::new()),
            None => Err(ExpandError::UnknownVariable(name.to_string())),
        }
    }

    fn dollar(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ExpandError> {
        match s.get(*pos) {
            Some(b'{') => {
                *pos += 1;
                match s.get(*pos) {
                    Some(c) if c.is_ascii_digit() => {
                        let start = *pos;
                        while *pos < s.len() && s[*pos].is_ascii_digit() {
                            *pos += 1;
                        }
                        if s.get(*pos) != Some(&b'}') {
                            return Err(syntax("} expected after number"));
                        }
                        let name = String::from_utf8_lossy(&s[start..*pos]).into_owned();
                        *pos += 1;
                        out.extend(self.variable(&name, skip)?);
                        return Ok(());
                    }
                    Some(c) if c.is_ascii_alphabetic() => {}
                    _ => return Err(syntax("letter or digit expected after ${")),
                }
                let name = read_name_with(s, pos, b"_-");
                if is_header_var(&name) && s.get(*pos) != Some(&b'}') {
                    let hdr = self.header_name(&name, s, pos);
                    if s.get(*pos) != Some(&b'}') {
                        return Err(syntax(format!("missing }} after \"{hdr}\"")));
                    }
                    *pos += 1;
                    out.extend(self.variable(&hdr, skip)?);
                    return Ok(());
                }
                match s.get(*pos) {
                    Some(b'}') => {
                        *pos += 1;
                        out.extend(self.variable(&name, skip)?);
                        Ok(())
                    }
                    Some(b':') => {
                        *pos += 1;
                        let arg = self.string(s, pos, true, skip)?;
                        if !skip {
                            out.extend(self.operator(&name, arg)?);
                        }
                        Ok(())
                    }
                    _ => {
                        let r = self.item(&name, s, pos, skip)?;
                        out.extend(r);
                        Ok(())
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = *pos;
                while *pos < s.len() && s[*pos].is_ascii_digit() {
                    *pos += 1;
                }
                let name = String::from_utf8_lossy(&s[start..*pos]).into_owned();
                out.extend(self.variable(&name, skip)?);
                Ok(())
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name = read_name(s, pos);
                if is_header_var(&name) {
                    let hdr = self.header_name(&name, s, pos);
                    out.extend(self.variable(&hdr, skip)?);
                } else {
                    out.extend(self.variable(&name, skip)?);
                }
                Ok(())
            }
            _ => Err(syntax("$ not followed by letter, digit, or {")),
        }
    }

    /// Reads the rest of a header variable name up to and including the
    /// colon (`$h_x-y:`); the colon is optional, as in Exim.
    fn header_name(&self, prefix: &str, s: &[u8], pos: &mut usize) -> String {
        let start = *pos;
        while *pos < s.len() && s[*pos] != b':' && s[*pos].is_ascii_graphic() && s[*pos] != b'}' {
            *pos += 1;
        }
        let name = format!("{prefix}{}:", String::from_utf8_lossy(&s[start..*pos]));
        if s.get(*pos) == Some(&b':') {
            *pos += 1;
        }
        name
    }

    /// Reads `n` brace-enclosed, expanded arguments (white space allowed
    /// between them).
    fn args(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        n: usize,
        skip: bool,
        what: &str,
    ) -> Result<Vec<Vec<u8>>, ExpandError> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            skip_ws(s, pos);
            if s.get(*pos) != Some(&b'{') {
                return Err(syntax(format!(
                    "missing or misplaced {{ or }} in \"{what}\""
                )));
            }
            *pos += 1;
            v.push(self.string(s, pos, true, skip)?);
        }
        Ok(v)
    }

    /// Optional further `{...}` arguments (up to `max`).
    fn opt_args(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        max: usize,
        skips: &[bool],
    ) -> Result<Vec<Vec<u8>>, ExpandError> {
        let mut v = Vec::new();
        while v.len() < max {
            let save = *pos;
            skip_ws(s, pos);
            if s.get(*pos) != Some(&b'{') {
                *pos = save;
                break;
            }
            *pos += 1;
            let sk = skips.get(v.len()).copied().unwrap_or(false);
            v.push(self.string(s, pos, true, sk)?);
        }
        Ok(v)
    }

    fn close(&self, s: &[u8], pos: &mut usize, what: &str) -> Result<(), ExpandError> {
        skip_ws(s, pos);
        if s.get(*pos) != Some(&b'}') {
            return Err(syntax(format!("missing }} at end of \"{what}\"")));
        }
        *pos += 1;
        Ok(())
    }

    /// The yes/no part shared by `if` and `lookup`: `{yes}{no}`, `{yes}fail`,
    /// `{yes}` or nothing, then the closing brace.
    fn yes_no(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
        what: &str,
        outcome: Outcome,
    ) -> Result<Vec<u8>, ExpandError> {
        let Outcome {
            ok,
            bare: default_yes,
            restore,
        } = outcome;
        skip_ws(s, pos);
        let mut result = Vec::new();
        let mut forced_fail = false;
        if s.get(*pos) == Some(&b'{') {
            *pos += 1;
            let yes = self.string(s, pos, true, skip || !ok)?;
            if ok {
                result = yes;
            }
            // $value in the second string is the value from before this
            // lookup/extract.
            if let Some(r) = restore {
                self.lookup_value = r;
            }
            skip_ws(s, pos);
            if s.get(*pos) == Some(&b'{') {
                *pos += 1;
                let no = self.string(s, pos, true, skip || ok)?;
                if !ok {
                    result = no;
                }
            } else if s[*pos..].starts_with(b"fail") {
                *pos += 4;
                forced_fail = !ok;
            }
        } else if ok {
            result = default_yes;
        }
        self.close(s, pos, what)?;
        if forced_fail && !skip {
            return Err(ExpandError::ForcedFail);
        }
        Ok(if skip { Vec::new() } else { result })
    }

    fn item(
        &mut self,
        name: &str,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        match name {
            "if" => {
                let saved = self.numeric.clone();
                let ok = self.condition(s, pos, skip)?;
                let r = self.yes_no(s, pos, skip, "if", Outcome::new(ok, b"true".to_vec(), None));
                self.numeric = saved;
                r
            }
            "lookup" => self.lookup(s, pos, skip),
            "sg" => {
                let a = self.args(s, pos, 3, skip, "sg")?;
                self.close(s, pos, "sg")?;
                if skip {
                    return Ok(Vec::new());
                }
                self.sg(&a[0], &a[1], &a[2])
            }
            "tr" => {
                let a = self.args(s, pos, 3, skip, "tr")?;
                self.close(s, pos, "tr")?;
                if skip {
                    return Ok(Vec::new());
                }
                Ok(tr(&a[0], &a[1], &a[2]))
            }
            "length" => {
                let a = self.args(s, pos, 2, skip, "length")?;
                self.close(s, pos, "length")?;
                if skip {
                    return Ok(Vec::new());
                }
                let n = parse_number(&bytes_to_string(a[0].clone()))?;
                Ok(length(&a[1], n))
            }
            "substr" => {
                let mut a = self.args(s, pos, 2, skip, "substr")?;
                a.extend(self.opt_args(s, pos, 1, &[skip])?);
                self.close(s, pos, "substr")?;
                if skip {
                    return Ok(Vec::new());
                }
                let m = parse_number(&bytes_to_string(a[0].clone()))?;
                if a.len() == 3 {
                    let n = parse_number(&bytes_to_string(a[1].clone()))?;
                    Ok(substr(&a[2], m, Some(n)))
                } else {
                    Ok(substr(&a[1], m, None))
                }
            }
            "extract" => self.extract(s, pos, skip),
            "map" | "filter" | "reduce" => self.list_item(name, s, pos, skip),
            "listextract" => {
                let a = self.args(s, pos, 2, skip, "listextract")?;
                if skip {
                    return self.yes_no(s, pos, true, name, Outcome::new(false, Vec::new(), None));
                }
                let n = parse_number(&bytes_to_string(a[0].clone()))?;
                let list = bytes_to_string(a[1].clone());
                let items: Vec<String> = crate::lists::ListIter::new(&list).collect();
                let idx = if n > 0 {
                    usize::try_from(n - 1).ok()
                } else if n < 0 {
                    usize::try_from(-n)
                        .ok()
                        .and_then(|k| items.len().checked_sub(k))
                } else {
                    None
                };
                let found = idx.and_then(|i| items.get(i)).cloned();
                let ok = found.is_some();
                let value = found.unwrap_or_default();
                let saved = self.lookup_value.replace(value.clone());
                let r = self.yes_no(
                    s,
                    pos,
                    false,
                    name,
                    Outcome::new(ok, value.into_bytes(), Some(saved.clone())),
                );
                self.lookup_value = saved;
                r
            }
            "readfile" => {
                let mut a = self.args(s, pos, 1, skip, "readfile")?;
                a.extend(self.opt_args(s, pos, 1, &[skip])?);
                self.close(s, pos, "readfile")?;
                if skip {
                    return Ok(Vec::new());
                }
                let path = bytes_to_string(a[0].clone());
                let text = self
                    .ctx
                    .read_file(&path)
                    .ok_or_else(|| syntax(format!("failed to open {path}")))?;
                Ok(match a.get(1) {
                    Some(eol) => text
                        .replace('\n', &bytes_to_string(eol.clone()))
                        .into_bytes(),
                    None => text.into_bytes(),
                })
            }
            _ => Err(syntax(format!("unknown expansion item \"{name}\""))),
        }
    }

    /// `${map{list}{expr}}`, `${filter{list}{condition}}` and
    /// `${reduce{list}{initial}{expr}}`: the last argument is evaluated once
    /// per item with `$item` (and `$value` for reduce) set.
    fn list_item(
        &mut self,
        name: &str,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        let list = self.args(s, pos, 1, skip, name)?.remove(0);
        let initial = if name == "reduce" {
            Some(self.args(s, pos, 1, skip, name)?.remove(0))
        } else {
            None
        };
        skip_ws(s, pos);
        if s.get(*pos) != Some(&b'{') {
            return Err(syntax(format!(
                "missing or misplaced {{ or }} in \"{name}\""
            )));
        }
        *pos += 1;
        let body = *pos;
        // Parse once in skip mode to find the end (and check the syntax).
        let mut end = body;
        if name == "filter" {
            self.condition(s, &mut end, true)?;
            skip_ws(s, &mut end);
            if s.get(end) != Some(&b'}') {
                return Err(syntax("missing } at end of condition inside \"filter\""));
            }
            end += 1;
        } else {
            self.string(s, &mut end, true, true)?;
        }
        *pos = end;
        self.close(s, pos, name)?;
        if skip {
            return Ok(Vec::new());
        }
        let list = bytes_to_string(list);
        let mut iter = crate::lists::ListIter::new(&list);
        let sep = iter.separator();
        let saved_item = self.item.take();
        let saved_value = self.lookup_value.clone();
        let mut out: Vec<String> = Vec::new();
        let mut acc = initial.map(bytes_to_string);
        let result = (|| -> Result<(), ExpandError> {
            for item in iter.by_ref() {
                self.item = Some(item.clone());
                let mut p = body;
                match name {
                    "filter" => {
                        if self.condition(s, &mut p, false)? {
                            out.push(item);
                        }
                    }
                    "map" => {
                        let v = self.string(s, &mut p, true, false)?;
                        out.push(bytes_to_string(v));
                    }
                    _ => {
                        self.lookup_value = acc.clone();
                        let v = self.string(s, &mut p, true, false)?;
                        acc = Some(bytes_to_string(v));
                    }
                }
            }
            Ok(())
        })();
        self.item = saved_item;
        self.lookup_value = saved_value;
        result?;
        if name == "reduce" {
            return Ok(acc.unwrap_or_default().into_bytes());
        }
        Ok(join_list(&out, sep).into_bytes())
    }

    fn extract(&mut self, s: &[u8], pos: &mut usize, skip: bool) -> Result<Vec<u8>, ExpandError> {
        let a = self.args(s, pos, 2, skip, "extract")?;
        let key = bytes_to_string(a[0].clone());
        let numeric = !key.trim().is_empty() && key.trim().bytes().all(|c| c.is_ascii_digit());
        let (found, value) = if numeric {
            // ${extract{n}{separators}{string}{yes}{no}}
            let b = self.args(s, pos, 1, skip, "extract")?;
            if skip {
                (false, Vec::new())
            } else {
                let n: usize = key.trim().parse().unwrap_or(0);
                let seps = &a[1];
                let fields: Vec<&[u8]> = b[0].split(|c| seps.contains(c)).collect();
                match n.checked_sub(1).and_then(|i| fields.get(i)) {
                    Some(f) if n > 0 => (true, f.to_vec()),
                    _ => (n == 0, if n == 0 { b[0].clone() } else { Vec::new() }),
                }
            }
        } else if skip {
            (false, Vec::new())
        } else {
            match extract_key(&bytes_to_string(a[1].clone()), key.trim()) {
                Some(v) => (true, v.into_bytes()),
                None => (false, Vec::new()),
            }
        };
        let saved = self.lookup_value.replace(bytes_to_string(value.clone()));
        let r = self.yes_no(
            s,
            pos,
            skip,
            "extract",
            Outcome::new(found, value, Some(saved.clone())),
        );
        self.lookup_value = saved;
        r
    }

    fn lookup(&mut self, s: &[u8], pos: &mut usize, skip: bool) -> Result<Vec<u8>, ExpandError> {
        skip_ws(s, pos);
        let key = if s.get(*pos) == Some(&b'{') {
            Some(self.args(s, pos, 1, skip, "lookup")?.remove(0))
        } else {
            None
        };
        skip_ws(s, pos);
        let start = *pos;
        while *pos < s.len() && s[*pos] != b'{' && !s[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
        let ltype = String::from_utf8_lossy(&s[start..*pos]).into_owned();
        if !ltype.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(syntax("missing lookup type"));
        }
        let file = self.args(s, pos, 1, skip, "lookup")?.remove(0);
        if skip {
            return self.yes_no(
                s,
                pos,
                true,
                "lookup",
                Outcome::new(false, Vec::new(), None),
            );
        }
        let Some(key) = key else {
            return Err(ExpandError::UnknownLookup(ltype));
        };
        let found = self.do_lookup(&ltype, &bytes_to_string(key), &bytes_to_string(file))?;
        let ok = found.is_some();
        let value = found.unwrap_or_default();
        let saved = self.lookup_value.replace(value.clone());
        let r = self.yes_no(
            s,
            pos,
            false,
            "lookup",
            Outcome::new(ok, value.into_bytes(), Some(saved.clone())),
        );
        self.lookup_value = saved;
        r
    }

    fn do_lookup(&self, ltype: &str, key: &str, file: &str) -> Result<Option<String>, ExpandError> {
        let Some(spec) = crate::lookup::LookupSpec::parse(ltype) else {
            return Err(ExpandError::UnknownLookup(ltype.to_string()));
        };
        let text = self
            .ctx
            .read_file(file)
            .ok_or_else(|| ExpandError::LookupFile(file.to_string()))?;
        Ok(crate::lookup::search(&spec, &text, key))
    }

    fn sg(&mut self, subject: &[u8], re: &[u8], repl: &[u8]) -> Result<Vec<u8>, ExpandError> {
        let re = compile_regex(&bytes_to_string(re.to_vec()))?;
        let mut out = Vec::new();
        let mut last = 0;
        let mut at = 0;
        while at <= subject.len() {
            let Some(caps) = re.captures_at(subject, at) else {
                break;
            };
            let Some(m) = caps.get(0) else { break };
            out.extend_from_slice(&subject[last..m.start()]);
            // Only $N / ${N} and backslash escapes are interpreted in the
            // replacement: it has already been expanded once.
            let mut i = 0;
            while i < repl.len() {
                let c = repl[i];
                if c == b'$' {
                    let mut j = i + 1;
                    let braced = repl.get(j) == Some(&b'{');
                    if braced {
                        j += 1;
                    }
                    let ds = j;
                    while j < repl.len() && repl[j].is_ascii_digit() {
                        j += 1;
                    }
                    if j > ds && (!braced || repl.get(j) == Some(&b'}')) {
                        let n: usize = std::str::from_utf8(&repl[ds..j])
                            .ok()
                            .and_then(|d| d.parse().ok())
                            .unwrap_or(usize::MAX);
                        if let Some(g) = caps.get(n) {
                            out.extend_from_slice(g.as_bytes());
                        }
                        i = if braced { j + 1 } else { j };
                        continue;
                    }
                }
                out.push(c);
                i += 1;
            }
            last = m.end();
            at = if m.end() == m.start() {
                m.end() + 1
            } else {
                m.end()
            };
            if out.len() > MAX_OUTPUT {
                return Err(ExpandError::TooComplex("result too long"));
            }
        }
        if last <= subject.len() {
            out.extend_from_slice(&subject[last..]);
        }
        Ok(out)
    }

    fn operator(&mut self, name: &str, arg: Vec<u8>) -> Result<Vec<u8>, ExpandError> {
        let num = |s: &str| parse_number(s);
        if let Some(n) = name.strip_prefix("length_") {
            return Ok(length(&arg, num(n)?));
        }
        if let Some(rest) = name.strip_prefix("substr_") {
            let (m, n) = match rest.split_once('_') {
                Some((m, n)) => (num(m)?, Some(num(n)?)),
                None => (num(rest)?, None),
            };
            return Ok(substr(&arg, m, n));
        }
        let s = bytes_to_string(arg);
        Ok(match name {
            "lc" => s.to_ascii_lowercase().into_bytes(),
            "uc" => s.to_ascii_uppercase().into_bytes(),
            "strlen" => s.len().to_string().into_bytes(),
            "domain" => {
                let a = address_of(&s);
                a.rsplit_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default()
                    .into_bytes()
            }
            "local_part" => {
                let a = address_of(&s);
                match a.rsplit_once('@') {
                    Some((l, _)) => l.to_string(),
                    None => a,
                }
                .into_bytes()
            }
            "address" => address_of(&s).into_bytes(),
            "md5" | "sha1" | "sha2" | "sha256" | "sha3" => {
                return Err(ExpandError::UnknownOperator(name.to_string()))
            }
            "eval" | "eval10" => eval(&s)?.to_string().into_bytes(),
            "base62" => {
                let n = u64::try_from(parse_number(&s)?)
                    .map_err(|_| ExpandError::NotANumber(s.clone()))?;
                base62(n).into_bytes()
            }
            "quote" => quote(&s).into_bytes(),
            "rxquote" => {
                let mut o = String::with_capacity(s.len());
                for c in s.chars() {
                    if !c.is_ascii_alphanumeric() && c.is_ascii() {
                        o.push('\\');
                    }
                    o.push(c);
                }
                o.into_bytes()
            }
            "escape8bit" => {
                let mut o = Vec::with_capacity(s.len());
                for &b in s.as_bytes() {
                    if b >= 0x80 {
                        o.extend_from_slice(format!("\\{b:03o}").as_bytes());
                    } else {
                        o.push(b);
                    }
                }
                o
            }
            "base64" | "str2b64" => base64_encode(s.as_bytes()).into_bytes(),
            "base64d" | "b64decode" => {
                base64_decode(&s).ok_or_else(|| syntax(format!("bad base64 string \"{s}\"")))?
            }
            "hex2b64" => {
                let bytes =
                    hex_decode(&s).ok_or_else(|| syntax(format!("\"{s}\" is not a hex string")))?;
                base64_encode(&bytes).into_bytes()
            }
            "reverse_ip" => reverse_ip(&s)
                .ok_or_else(|| syntax(format!("\"{s}\" is not an IP address")))?
                .into_bytes(),
            "ipv6norm" | "ipv6denorm" => match s.trim().parse::<IpAddr>() {
                Ok(IpAddr::V6(a)) if name == "ipv6norm" => a.to_string().into_bytes(),
                Ok(IpAddr::V6(a)) => a
                    .segments()
                    .iter()
                    .map(|g| format!("{g:04x}"))
                    .collect::<Vec<_>>()
                    .join(":")
                    .into_bytes(),
                Ok(IpAddr::V4(a)) if name == "ipv6norm" => {
                    a.to_ipv6_mapped().to_string().into_bytes()
                }
                Ok(IpAddr::V4(a)) => a
                    .to_ipv6_mapped()
                    .segments()
                    .iter()
                    .map(|g| format!("{g:04x}"))
                    .collect::<Vec<_>>()
                    .join(":")
                    .into_bytes(),
                Err(_) => return Err(syntax(format!("\"{s}\" is not an IP address"))),
            },
            "mask" => mask(&s)
                .ok_or_else(|| syntax(format!("\"{s}\" is not an IP address with a mask")))?
                .into_bytes(),
            "time_interval" => {
                let n = u64::try_from(parse_number(&s)?)
                    .map_err(|_| ExpandError::NotANumber(s.clone()))?;
                crate::options::render_time(n).into_bytes()
            }
            "time_eval" => crate::options::parse_time(s.trim())
                .ok_or_else(|| syntax(format!("string \"{s}\" is not an Exim time interval")))?
                .to_string()
                .into_bytes(),
            "listnamed" | "listnamed_d" | "listnamed_h" | "listnamed_a" | "listnamed_l" => {
                let Some(cfg) = self.cfg else {
                    return Err(syntax(format!(
                        "\"{name}\" needs the configuration (use expand_with_config)"
                    )));
                };
                let key = s.trim().trim_start_matches('+');
                let kinds: &[crate::ListKind] = match name {
                    "listnamed_d" => &[crate::ListKind::Domain],
                    "listnamed_h" => &[crate::ListKind::Host],
                    "listnamed_a" => &[crate::ListKind::Address],
                    "listnamed_l" => &[crate::ListKind::LocalPart],
                    _ => &[
                        crate::ListKind::Domain,
                        crate::ListKind::Host,
                        crate::ListKind::Address,
                        crate::ListKind::LocalPart,
                    ],
                };
                let Some(text) = kinds.iter().find_map(|k| cfg.named_lists.get(*k, key)) else {
                    return Err(syntax(format!("\"{key}\" is not a named list")));
                };
                // The list text comes from the configuration; expand it.
                let text = text.to_string();
                let mut p = 0;
                self.string(text.as_bytes(), &mut p, false, false)?
            }
            "quote_local_part" => quote_local_part(&s).into_bytes(),
            "escape" => crate::options::printing(&s).into_bytes(),
            "listcount" => crate::lists::ListIter::new(&s)
                .count()
                .to_string()
                .into_bytes(),
            _ => return Err(ExpandError::UnknownOperator(name.to_string())),
        })
    }

    /// Parses and evaluates a condition. In `skip` mode only parses.
    fn condition(&mut self, s: &[u8], pos: &mut usize, skip: bool) -> Result<bool, ExpandError> {
        self.enter()?;
        skip_ws(s, pos);
        let mut negate = false;
        while s.get(*pos) == Some(&b'!') {
            negate = !negate;
            *pos += 1;
            skip_ws(s, pos);
        }
        let name = if s.get(*pos).is_some_and(|c| c.is_ascii_alphabetic()) {
            read_name(s, pos)
        } else {
            let start = *pos;
            while *pos < s.len() && b"=<>".contains(&s[*pos]) {
                *pos += 1;
            }
            String::from_utf8_lossy(&s[start..*pos]).into_owned()
        };
        let r = match name.as_str() {
            "def" => {
                if s.get(*pos) != Some(&b':') {
                    return Err(syntax("\":\" expected after \"def\""));
                }
                *pos += 1;
                let var = read_name(s, pos);
                let var = if is_header_var(&var) {
                    self.header_name(&var, s, pos)
                } else {
                    var
                };
                if var.is_empty() {
                    return Err(syntax("variable name missing after \"def:\""));
                }
                if skip {
                    false
                } else if var.bytes().all(|c| c.is_ascii_digit()) || var == "value" {
                    !self.variable(&var, false)?.is_empty()
                } else {
                    self.ctx.var(&var).is_some_and(|v| !v.is_empty())
                }
            }
            "true" => true,
            "false" => false,
            "exists" | "isip" | "isip4" | "isip6" | "bool" | "bool_lax" => {
                let a = self.args(s, pos, 1, skip, &name)?;
                if skip {
                    false
                } else {
                    let v = bytes_to_string(a[0].clone());
                    match name.as_str() {
                        "exists" => self.ctx.file_exists(&v),
                        "isip" => v.parse::<IpAddr>().is_ok(),
                        "isip4" => matches!(v.parse::<IpAddr>(), Ok(IpAddr::V4(_))),
                        "isip6" => matches!(v.parse::<IpAddr>(), Ok(IpAddr::V6(_))),
                        "bool" => strict_bool(&v)?,
                        _ => lax_bool(&v),
                    }
                }
            }
            "match_domain" | "match_address" | "match_local_part" | "match_ip" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let Some(cfg) = self.cfg else {
                        return Err(syntax(format!(
                            "\"{name}\" needs the configuration (use expand_with_config)"
                        )));
                    };
                    let subject = bytes_to_string(a[0].clone());
                    let list = bytes_to_string(a[1].clone());
                    let r = match name.as_str() {
                        "match_domain" => {
                            crate::lists::match_domain(&list, &subject, cfg, self.ctx)
                        }
                        "match_address" => {
                            crate::lists::match_address(&list, &subject, cfg, self.ctx)
                        }
                        "match_local_part" => {
                            crate::lists::match_local_part(&list, &subject, cfg, self.ctx)
                        }
                        // An empty address is "no host" (local
                        // submission), which only an empty item matches.
                        _ if subject.trim().is_empty() => {
                            crate::lists::match_no_host(&list, cfg, self.ctx)
                        }
                        _ => match subject.trim().parse::<IpAddr>() {
                            Ok(ip) => crate::lists::match_host(&list, ip, None, cfg, self.ctx),
                            Err(_) => {
                                return Err(syntax(format!("\"{subject}\" is not an IP address")))
                            }
                        },
                    };
                    r.map_err(|e| syntax(e.to_string()))?
                }
            }
            "forany" | "forall" => {
                let list = self.args(s, pos, 1, skip, &name)?.remove(0);
                skip_ws(s, pos);
                if s.get(*pos) != Some(&b'{') {
                    return Err(syntax(format!("missing {{ after \"{name}\"")));
                }
                *pos += 1;
                let body = *pos;
                let mut end = body;
                self.condition(s, &mut end, true)?;
                skip_ws(s, &mut end);
                if s.get(end) != Some(&b'}') {
                    return Err(syntax(format!(
                        "missing }} at end of condition inside \"{name}\""
                    )));
                }
                *pos = end + 1;
                if skip {
                    false
                } else {
                    let any = name == "forany";
                    let list = bytes_to_string(list);
                    let saved = self.item.take();
                    let mut result = !any;
                    let mut failure = None;
                    for item in crate::lists::ListIter::new(&list) {
                        self.item = Some(item);
                        let mut p = body;
                        match self.condition(s, &mut p, false) {
                            Ok(v) if v == any => {
                                result = any;
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                    self.item = saved;
                    if let Some(e) = failure {
                        return Err(e);
                    }
                    result
                }
            }
            "inlist" | "inlisti" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let subject = bytes_to_string(a[0].clone());
                    let list = bytes_to_string(a[1].clone());
                    let ci = name == "inlisti";
                    crate::lists::ListIter::new(&list).any(|item| {
                        if ci {
                            item.eq_ignore_ascii_case(&subject)
                        } else {
                            item == subject
                        }
                    })
                }
            }
            "eq" | "eqi" | "ne" | "==" | "=" | "<" | ">" | "<=" | ">=" | "match" => {
                let a = self.args(s, pos, 2, skip, &name)?;
                if skip {
                    false
                } else {
                    let (x, y) = (&a[0], &a[1]);
                    match name.as_str() {
                        "eq" => x == y,
                        "ne" => x != y,
                        "eqi" => x.eq_ignore_ascii_case(y),
                        "match" => {
                            let re = compile_regex(&bytes_to_string(y.clone()))?;
                            match re.captures(x) {
                                Some(caps) => {
                                    self.numeric = caps
                                        .iter()
                                        .map(|m| {
                                            m.map(|m| bytes_to_string(m.as_bytes().to_vec()))
                                                .unwrap_or_default()
                                        })
                                        .collect();
                                    true
                                }
                                None => false,
                            }
                        }
                        op => {
                            let x = parse_number(&bytes_to_string(x.clone()))?;
                            let y = parse_number(&bytes_to_string(y.clone()))?;
                            match op {
                                "==" | "=" => x == y,
                                "<" => x < y,
                                ">" => x > y,
                                "<=" => x <= y,
                                _ => x >= y,
                            }
                        }
                    }
                }
            }
            "and" | "or" => {
                skip_ws(s, pos);
                if s.get(*pos) != Some(&b'{') {
                    return Err(syntax(format!("missing {{ after \"{name}\"")));
                }
                *pos += 1;
                let is_and = name == "and";
                let mut acc = is_and;
                loop {
                    skip_ws(s, pos);
                    match s.get(*pos) {
                        Some(b'}') => {
                            *pos += 1;
                            break;
                        }
                        Some(b'{') => {
                            *pos += 1;
                            let decided = if is_and { !acc } else { acc };
                            let v = self.condition(s, pos, skip || decided)?;
                            if !(skip || decided) {
                                acc = v;
                            }
                            skip_ws(s, pos);
                            if s.get(*pos) != Some(&b'}') {
                                return Err(syntax(format!(
                                    "missing }} at end of condition inside \"{name}\""
                                )));
                            }
                            *pos += 1;
                        }
                        _ => {
                            return Err(syntax(format!(
                                "each subcondition inside an \"{name}{{...}}\" condition must be in its own {{}}"
                            )))
                        }
                    }
                }
                !skip && acc
            }
            "" => return Err(syntax("condition name expected")),
            other => return Err(ExpandError::UnknownCondition(other.to_string())),
        };
        self.depth -= 1;
        Ok(if skip { false } else { r != negate })
    }
}

/// Joins list items with `sep`, doubling separators inside items.
fn join_list(items: &[String], sep: char) -> String {
    let doubled = format!("{sep}{sep}");
    let mut out = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(&it.replace(sep, &doubled));
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn reverse_ip(s: &str) -> Option<String> {
    match s.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some(format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0]))
        }
        IpAddr::V6(a) => {
            let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
            Some(
                hex.chars()
                    .rev()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("."),
            )
        }
    }
}

/// `${mask:ip/bits}`: the address with host bits cleared, plus the mask.
/// IPv6 results use Exim's dotted form (`2001.0db8.0000...`).
fn mask(s: &str) -> Option<String> {
    let (addr, bits) = s.trim().split_once('/')?;
    let bits: u32 = bits.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if bits <= 32 => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(format!(
                "{}/{bits}",
                std::net::Ipv4Addr::from(u32::from(a) & m)
            ))
        }
        IpAddr::V6(a) if bits <= 128 => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let v = std::net::Ipv6Addr::from(u128::from(a) & m);
            let groups: Vec<String> = v.segments().iter().map(|g| format!("{g:04x}")).collect();
            Some(format!("{}/{bits}", groups.join(".")))
        }
        _ => None,
    }
}

fn base62(mut n: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Exim's `${quote:}`: unchanged if only letters, digits, `_`, `.` and `-`,
/// else double-quoted with backslash and double quote escaped.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Exim's `${quote_local_part:}`: RFC 2822 quoting of a local part that is
/// not a dot-atom.
fn quote_local_part(s: &str) -> String {
    let atext = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c);
    let dot_atom = !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(atext));
    if dot_atom {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn tr(subject: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    subject
        .iter()
        .map(|&c| match from.iter().rposition(|&f| f == c) {
            Some(i) if !to.is_empty() => to[i.min(to.len() - 1)],
            _ => c,
        })
        .collect()
}

fn length(s: &[u8], n: i64) -> Vec<u8> {
    let n = usize::try_from(n.max(0)).unwrap_or(0);
    s[..n.min(s.len())].to_vec()
}

/// Exim's substr: negative start counts from the end; length may be
/// negative to take characters to the left of the start.
fn substr(s: &[u8], start: i64, len: Option<i64>) -> Vec<u8> {
    let l = i64::try_from(s.len()).unwrap_or(i64::MAX);
    let (from, to) = if start >= 0 {
        let from = start.min(l);
        let to = match len {
            Some(n) if n >= 0 => from.saturating_add(n).min(l),
            Some(n) => {
                // Negative length: characters to the left of `start`.
                let to = from;
                return s[usize::try_from((to + n).max(0)).unwrap_or(0)
                    ..usize::try_from(to).unwrap_or(0)]
                    .to_vec();
            }
            None => l,
        };
        (from, to)
    } else {
        let from = (l + start).max(0);
        let to = match len {
            Some(n) if n >= 0 => from.saturating_add(n).min(l),
            _ => l,
        };
        let from = if l + start < 0 {
            // Start before the beginning: length counts from the virtual start.
            0
        } else {
            from
        };
        (from, to)
    };
    let (f, t) = (
        usize::try_from(from).unwrap_or(0),
        usize::try_from(to).unwrap_or(0),
    );
    if f >= t {
        return Vec::new();
    }
    s[f..t].to_vec()
}

fn address_of(s: &str) -> String {
    let t = s.trim();
    if let (Some(a), Some(b)) = (t.rfind('<'), t.rfind('>')) {
        if a < b {
            return t[a + 1..b].trim().to_string();
        }
    }
    t.to_string()
}

/// `key=value` extraction as in `${extract{key}{string}}`.
fn extract_key(s: &str, key: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        let k = &s[ks..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b.get(i) == Some(&b'"') {
                let (v, used, _) = crate::options::dequote(&s[i + 1..]);
                value = v;
                i += 1 + used;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_string();
            }
        }
        if k.eq_ignore_ascii_case(key) && !k.is_empty() {
            return Some(value);
        }
        if i == ks {
            i += 1;
        }
    }
    None
}

pub use crate::lookup::lsearch;

/// Integer arithmetic for `${eval:}`: + - * / % ( ) and unary minus.
fn eval(s: &str) -> Result<i64, ExpandError> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }
    fn err(s: &str) -> ExpandError {
        syntax(format!("expected number or opening parenthesis in \"{s}\""))
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn expr(&mut self) -> Result<i64, ExpandError> {
            let mut v = self.term()?;
            loop {
                self.ws();
                match self.b.get(self.i) {
                    Some(b'+') => {
                        self.i += 1;
                        v = v.wrapping_add(self.term()?);
                    }
                    Some(b'-') => {
                        self.i += 1;
                        v = v.wrapping_sub(self.term()?);
                    }
                    _ => return Ok(v),
                }
            }
        }
        fn term(&mut self) -> Result<i64, ExpandError> {
            let mut v = self.unary()?;
            loop {
                self.ws();
                let op = match self.b.get(self.i) {
                    Some(c @ (b'*' | b'/' | b'%')) => *c,
                    _ => return Ok(v),
                };
                self.i += 1;
                let r = self.unary()?;
                v = match op {
                    b'*' => v.wrapping_mul(r),
                    _ if r == 0 => return Err(syntax("divide by zero")),
                    b'/' => v.wrapping_div(r),
                    _ => v.wrapping_rem(r),
                };
            }
        }
        fn unary(&mut self) -> Result<i64, ExpandError> {
            self.depth += 1;
            if self.depth > 200 {
                return Err(ExpandError::TooComplex("nesting too deep"));
            }
            self.ws();
            let r = match self.b.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    self.unary().map(i64::wrapping_neg)
                }
                Some(b'+') => {
                    self.i += 1;
                    self.unary()
                }
                Some(b'(') => {
                    self.i += 1;
                    let v = self.expr()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b')') {
                        return Err(syntax("expecting closing parenthesis"));
                    }
                    self.i += 1;
                    Ok(v)
                }
                Some(c) if c.is_ascii_digit() => {
                    let st = self.i;
                    while self.i < self.b.len() && self.b[self.i].is_ascii_alphanumeric() {
                        self.i += 1;
                    }
                    parse_number(&String::from_utf8_lossy(&self.b[st..self.i]))
                }
                _ => Err(err(&String::from_utf8_lossy(self.b))),
            };
            self.depth -= 1;
            r
        }
    }
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.expr()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(syntax(format!(
            "extra characters at end of expression in \"{s}\""
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MapContext {
        MapContext::new()
            .var("local_part", "Blackhole")
            .var("domain", "example.com")
            .var("evil", "${if eq{a}{a}{PWNED}}")
            .var("empty", "")
            .var("h_subject:", "hi")
            .file(
                "/aliases",
                "# c\npostmaster: root\nfoo: \"quoted\" x\n  continued\n*: catchall\n",
            )
    }

    fn x(s: &str) -> Result<String, ExpandError> {
        expand(s, &ctx())
    }

    #[test]
    fn variables_and_escapes() {
        assert_eq!(
            x("a $domain ${domain}b").unwrap(),
            "a example.com example.comb"
        );
        assert_eq!(x("\\$x\\t\\N$no${}\\N").unwrap(), "$x\t$no${}");
        assert_eq!(x("$evil").unwrap(), "${if eq{a}{a}{PWNED}}");
        assert_eq!(
            x("$nosuch"),
            Err(ExpandError::UnknownVariable("nosuch".into()))
        );
        assert!(x("${domain").is_err());
        assert_eq!(
            x("$ x"),
            Err(ExpandError::Syntax(
                "$ not followed by letter, digit, or {".into()
            ))
        );
        assert!(x("${ domain}").is_err());
        assert_eq!(
            x("$h_subject: [$h_x-missing:] ${h_subject:}").unwrap(),
            "hi [] hi"
        );
        assert_eq!(x("${if match{ab}{(b)}{$1${1}}}").unwrap(), "bb");
    }

    #[test]
    fn if_conditions() {
        assert_eq!(x("${if eq {server}{server} {yes}{no}}").unwrap(), "yes");
        assert_eq!(x("${if eq {}{server}{no}{yes}}").unwrap(), "yes");
        assert_eq!(x("${if !eq{a}{b}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if eqi{ABC}{abc}{y}{n}}").unwrap(), "y");
        assert_eq!(
            x("${if eq {$local_part}{blackhole}{:blackhole:}}").unwrap(),
            ""
        );
        assert_eq!(
            x("${if eqi {$local_part}{blackhole}{:blackhole:}}").unwrap(),
            ":blackhole:"
        );
        assert_eq!(x("${if == {10}{0xa}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if < {1K}{1000}{y}{n}}").unwrap(), "n");
        assert_eq!(x("${if and{{eq{a}{a}}{def:domain}}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if or{{eq{a}{b}}{def:empty}}{y}{n}}").unwrap(), "n");
        assert_eq!(x("${if isip{127.0.0.1}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if isip6{127.0.0.1}{y}{n}}").unwrap(), "n");
        assert_eq!(x("${if exists{/aliases}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if bool{ yes }{y}{n}}").unwrap(), "y");
        assert!(x("${if bool{maybe}{y}{n}}").is_err());
        assert_eq!(x("${if eq{a}{a}}").unwrap(), "true");
        assert_eq!(x("${if eq{a}{b}{y}fail}"), Err(ExpandError::ForcedFail));
        assert_eq!(
            x("${if match{abc123}{^([a-z]+)([0-9]+)\\$}{$2-$1}{n}}").unwrap(),
            "123-abc"
        );
        // The branch not taken is not evaluated (no unknown-variable error).
        assert_eq!(x("${if eq{a}{a}{y}{$nosuch}}").unwrap(), "y");
        assert!(matches!(
            x("${if frob{a}{b}}"),
            Err(ExpandError::UnknownCondition(_))
        ));
    }

    #[test]
    fn operators_and_items() {
        assert_eq!(x("${lc:ABC}${uc:def}").unwrap(), "abcDEF");
        assert_eq!(x("${length_3:abcdef}${length{2}{xyz}}").unwrap(), "abcxy");
        assert_eq!(
            x("${substr_1_2:abcdef}|${substr{-2}{abcdef}}").unwrap(),
            "bc|ef"
        );
        assert_eq!(x("${sg{abcabc}{b}{X}}").unwrap(), "aXcaXc");
        assert_eq!(x("${sg{abc}{(b)}{<\\$1>}}").unwrap(), "a<b>c");
        assert_eq!(x("${tr{abcabc}{ab}{xy}}").unwrap(), "xycxyc");
        assert_eq!(
            x("${domain:A <u@x.y>}/${local_part:u@x.y}").unwrap(),
            "x.y/u"
        );
        assert_eq!(x("${eval:2+3*(4-1)}").unwrap(), "11");
        assert_eq!(x("${strlen:abcd}").unwrap(), "4");
        assert_eq!(x("${extract{b}{a=1 b=\"x y\"}}").unwrap(), "x y");
        assert_eq!(x("${extract{2}{:}{a:b:c}}").unwrap(), "b");
        assert!(matches!(
            x("${frob:x}"),
            Err(ExpandError::UnknownOperator(_))
        ));
    }

    #[test]
    fn more_operators() {
        assert_eq!(x("${base62:62}|${quote:a.b}").unwrap(), "000010|a.b");
        assert_eq!(x("${quote:a b\\\"c}").unwrap(), "\"a b\\\"c\"");
        assert_eq!(x("${listcount:a:b::c:d}").unwrap(), "3");
        assert_eq!(
            x("${quote_local_part:a.b}|${quote_local_part:a b}|${quote_local_part:a..b}").unwrap(),
            "a.b|\"a b\"|\"a..b\""
        );
        assert_eq!(
            x("${if inlist{b}{a:b:c}{y}{n}}${if inlisti{B}{a:b}{y}{n}}").unwrap(),
            "yy"
        );
        assert_eq!(
            x("${readfile{/aliases}{,}}").unwrap().matches(',').count(),
            5
        );
    }

    #[test]
    fn list_conditions_need_config() {
        let mut cfg = Config::default();
        cfg.named_lists.insert(
            crate::ListKind::Domain,
            "local_domains",
            "test.ex : *.test.ex",
        );
        let c = ctx();
        let e = |s: &str| expand_with_config(s, &c, &cfg);
        assert_eq!(
            e("${if match_domain{a.test.ex}{+local_domains}{y}{n}}").unwrap(),
            "y"
        );
        assert_eq!(
            e("${if match_address{u@test.ex}{*@+local_domains}{y}{n}}").unwrap(),
            "y"
        );
        assert_eq!(
            e("${if match_ip{10.1.2.3}{127.0.0.1 : 10.0.0.0/8}{y}{n}}").unwrap(),
            "y"
        );
        // Debian's COND_LOCAL_SUBMITTER: no host matches the empty item.
        assert_eq!(e("${if match_ip{}{:@[]}{1}{0}}").unwrap(), "1");
        assert_eq!(e("${if match_ip{}{127.0.0.1}{1}{0}}").unwrap(), "0");
        assert_eq!(
            e("${if match_ip{10.1.2.3}{127.0.0.1 : 10.0.0.0/8}{y}{n}}").unwrap(),
            "y"
        );
        assert_eq!(e("${if match_local_part{abc}{^a}{y}{n}}").unwrap(), "y");
        assert!(x("${if match_domain{a}{b}{y}{n}}").is_err());
    }

    #[test]
    fn list_items_and_more_operators() {
        assert_eq!(x("${map{a:b:c}{<$item>}}").unwrap(), "<a>:<b>:<c>");
        assert_eq!(x("${map{<, a,b}{${uc:$item}}}").unwrap(), "A,B");
        assert_eq!(
            x("${filter{a:bb:c}{eq{${strlen:$item}}{1}}}").unwrap(),
            "a:c"
        );
        assert_eq!(x("${reduce{1:2:3}{0}{${eval:$value+$item}}}").unwrap(), "6");
        assert_eq!(x("${if forany{a:b}{eq{$item}{b}}{y}{n}}").unwrap(), "y");
        assert_eq!(x("${if forall{a:b}{eq{$item}{b}}{y}{n}}").unwrap(), "n");
        assert_eq!(
            x("${listextract{2}{a:b:c}}|${listextract{-1}{a:b:c}}").unwrap(),
            "b|c"
        );
        assert_eq!(x("${listextract{9}{a:b}{y}{n}}").unwrap(), "n");
        assert_eq!(
            x("${base64:hello}|${base64d:aGVsbG8=}").unwrap(),
            "aGVsbG8=|hello"
        );
        assert_eq!(x("${hex2b64:0001ff}").unwrap(), "AAH/");
        assert_eq!(x("${rxquote:a.b}").unwrap(), "a\\.b");
        assert_eq!(x("${reverse_ip:192.0.2.1}").unwrap(), "1.2.0.192");
        assert_eq!(x("${mask:192.168.10.206/24}").unwrap(), "192.168.10.0/24");
        assert_eq!(
            x("${ipv6norm:2001:0db8:0:0:0:0:0:1}").unwrap(),
            "2001:db8::1"
        );
        assert_eq!(
            x("${time_interval:93784}|${time_eval:1h1s}").unwrap(),
            "1d2h3m4s|3601"
        );
        // $item outside map has no value.
        assert_eq!(x("[$item]").unwrap(), "[]");
        assert_eq!(x("[$sender_helo_name][$acl_m_x]").unwrap(), "[][]");
        let mut cfg = Config::default();
        cfg.named_lists
            .insert(crate::ListKind::Domain, "d", "a : b");
        assert_eq!(
            expand_with_config("${listnamed:d}", &ctx(), &cfg).unwrap(),
            "a : b"
        );
    }

    #[test]
    fn lookups() {
        assert_eq!(x("${lookup{postmaster}lsearch{/aliases}}").unwrap(), "root");
        assert_eq!(
            x("${lookup{FOO}lsearch{/aliases}{<$value>}{no}}").unwrap(),
            "<\"quoted\" x continued>"
        );
        assert_eq!(x("${lookup{zz}lsearch{/aliases}{y}{n}}").unwrap(), "n");
        assert_eq!(x("${lookup{zz}lsearch*{/aliases}}").unwrap(), "catchall");
        assert_eq!(x("${lookup{zz}lsearch{/aliases}}").unwrap(), "");
        // $value in the "no" string is the outer lookup's value.
        assert_eq!(
            x("${lookup{postmaster}lsearch{/aliases}{${lookup{zz}lsearch{/aliases}{}{<$value>}}}}")
                .unwrap(),
            "<root>"
        );
        assert_eq!(
            x("${lookup {foo} lsearch {/aliases} {y} {n}}").unwrap(),
            "y"
        );
        assert!(matches!(
            x("${lookup{zz}lsearch{/missing}}"),
            Err(ExpandError::LookupFile(_))
        ));
        assert!(matches!(
            x("${lookup{zz}dbm{/aliases}}"),
            Err(ExpandError::UnknownLookup(_))
        ));
    }

    #[test]
    fn expand_bool_semantics() {
        let c = ctx();
        for (s, v) in [
            ("", false),
            ("0", false),
            ("no", false),
            ("FALSE", false),
            ("1", true),
            ("yes", true),
            ("true", true),
        ] {
            assert_eq!(expand_bool(s, &c), Ok(v), "{s:?}");
        }
        assert!(expand_bool("maybe", &c).is_err());
        assert!(expand_condition("maybe", &c).unwrap());
    }
}
