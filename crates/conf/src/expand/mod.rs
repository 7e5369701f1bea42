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

mod address;
mod arith;
mod conditions;
mod context;
mod digest;
mod headers;
mod items;
mod known;
mod operators;
mod rfc2047;
mod sort;
#[cfg(test)]
mod tests;

/// The address in one item of a header-style list (`Name <a@b>`, with
/// `group:` syntax when `allow_group`), as the expander extracts it.
pub fn extract_address(s: &str, allow_group: bool) -> Option<String> {
    address::extract_address(s, allow_group)
}

/// Split a header-style address list at its top-level commas.
pub fn split_addresses(s: &str) -> Vec<&str> {
    address::split_addresses(s)
}
mod textops;

use arith::eval;
pub use context::{EntryKind, ExpandContext, HostFind, MapContext};
pub use digest::md5_upper_hex;
pub use headers::{header_variable, message_headers, HEADER_INSERT_MAXLEN};
use operators::*;
pub use rfc2047::rfc2047_decode;

/// Longest name Exim keeps (longer ones are truncated).
const MAX_NAME: usize = 255;
/// Maximum nesting of `${...}` items.
const MAX_DEPTH: usize = 64;
/// Maximum size of an expansion result.
const MAX_OUTPUT: usize = 16 << 20;

/// Why an expansion failed. Messages follow Exim's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `$name` where no such variable exists.
    #[error("unknown variable name \"{0}\"")]
    UnknownVariable(String),
    /// `${name}` where no such variable exists.
    #[error("unknown variable in \"${{{0}}}\"")]
    UnknownVariableBraced(String),
    /// `${op:...}` with an unknown operator.
    #[error("unknown expansion operator \"{0}\"")]
    UnknownOperator(String),
    /// `${if cond...}` with an unknown condition.
    #[error("unknown condition \"{0}\"")]
    UnknownCondition(String),
    /// Something Exim's expander has that oxim does not implement
    /// (what it is, and its name).
    #[error("{0} \"{1}\" is not supported by oxim")]
    NotSupported(&'static str, String),
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
    #[error("\"{0}\" failed and \"fail\" requested")]
    ForcedFail(String),
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
        matches!(self, ExpandError::ForcedFail(_))
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

/// Exim's "list, each item separately expanded" options (`headers_add`,
/// `headers_remove`): `list` is split first (separator `default_sep`,
/// `<X` changes it, a doubled separator stands for itself), then each item
/// is expanded. An item whose expansion is forced to fail, or that expands
/// to nothing, is left out; other failures are errors.
pub fn expand_list_items(
    list: &str,
    default_sep: char,
    ctx: &dyn ExpandContext,
) -> Result<Vec<String>, ExpandError> {
    let mut out = Vec::new();
    for item in crate::lists::ListIter::with_default(list, default_sep) {
        match expand(&item, ctx) {
            Ok(v) if v.trim().is_empty() => {}
            Ok(v) => out.push(v),
            Err(e) if e.is_forced_fail() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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
    // Exim keeps at most 255 characters of a name.
    let end = (*pos).min(start + MAX_NAME);
    String::from_utf8_lossy(&s[start..end]).into_owned()
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

/// Reads an integer as Exim's numeric conditions do: blank is 0, decimal
/// with an optional sign and K/M/G suffix, trailing white space allowed;
/// errors with Exim's texts.
fn exim_integer(s: &str) -> Result<i64, ExpandError> {
    let t = s.trim_start();
    if t.is_empty() {
        return Ok(0);
    }
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b[0], b'+' | b'-'));
    let digits = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits {
        return Err(syntax(format!("integer expected but \"{t}\" found")));
    }
    let overflow = || {
        syntax(format!(
            "absolute value of integer \"{t}\" is too large (overflow)"
        ))
    };
    let mut v: i64 = t[..i].parse().map_err(|_| overflow())?;
    let mult = match b.get(i).map(u8::to_ascii_lowercase) {
        Some(b'k') => 1 << 10,
        Some(b'm') => 1 << 20,
        Some(b'g') => 1 << 30,
        _ => 1,
    };
    if mult != 1 {
        v = v.checked_mul(mult).ok_or_else(overflow)?;
        i += 1;
    }
    if !t[i..].trim().is_empty() {
        return Err(syntax(format!("invalid integer \"{t}\"")));
    }
    Ok(v)
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
            numeric: ctx.numeric_vars(),
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
                match s.get(*pos) {
                    Some(b'}') => {
                        *pos += 1;
                        let v = self.variable(&name, skip).map_err(|e| match e {
                            ExpandError::UnknownVariable(n) => {
                                ExpandError::UnknownVariableBraced(n)
                            }
                            e => e,
                        })?;
                        out.extend(v);
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

    /// Exim's `read_subs`: between `min` and `max` brace-enclosed
    /// arguments, then the closing brace of the item, with Exim's texts
    /// for too few or too many.
    fn read_subs(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        (min, max): (usize, usize),
        skip: bool,
        name: &str,
    ) -> Result<Vec<Vec<u8>>, ExpandError> {
        let mut v = Vec::new();
        skip_ws(s, pos);
        while v.len() < max {
            if s.get(*pos) != Some(&b'{') {
                if v.len() < min {
                    return Err(syntax(format!(
                        "Not enough arguments for '{name}' (min is {min})"
                    )));
                }
                break;
            }
            *pos += 1;
            v.push(self.string(s, pos, true, skip)?);
            skip_ws(s, pos);
        }
        match s.get(*pos) {
            Some(b'}') => {
                *pos += 1;
                Ok(v)
            }
            Some(b'{') => Err(syntax(format!(
                "Too many arguments for '{name}' (max is {max})"
            ))),
            _ => Err(syntax(format!("missing '}}' after '{name}'"))),
        }
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
            return Err(ExpandError::ForcedFail(what.to_string()));
        }
        Ok(if skip { Vec::new() } else { result })
    }
}

pub use crate::lookup::lsearch;
