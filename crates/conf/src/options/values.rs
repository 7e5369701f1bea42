//! Option values as text: the `name = value` line, quoting and escapes,
//! numbers, times and sizes, and their `-bP` rendering.

use super::*;

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

pub(super) fn extra_chars(s: &str, t1: &str, t2: &str, t3: &str) -> String {
    let comment = if s.starts_with('#') {
        " (# is comment only at line start)"
    } else {
        ""
    };
    format!("extra characters follow {t1}{t2}{t3}{comment}")
}

pub(super) fn parse_value(
    spec: &OptionSpec,
    name: &str,
    s: &str,
    negated: bool,
) -> Result<Value, LineError> {
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
        Kind::Fixed => option_fixed(s, name).map(Value::Fixed),
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

pub(super) fn utf8_len(first: u8) -> usize {
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

/// A fixed-point option value as Exim reads it: a C `int` integer part
/// (optionally signed; a negative one or one that overflows once scaled is
/// "too large"), then `.` and decimals of which three count, then nothing
/// but spaces.
fn option_fixed(s: &str, name: &str) -> Result<i64, String> {
    let t = s.trim_start();
    let sign_len = usize::from(t.starts_with(['+', '-']));
    let digits = t[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("fixed-point number expected for {name}"));
    }
    let end = sign_len + digits;
    let too_large = || format!("integer \"{s}\" is too large (overflow)");
    let int: i64 = t[..end].parse().map_err(|_| too_large())?;
    if !(0..=i64::from(i32::MAX)).contains(&int) {
        return Err(too_large());
    }
    let mut v = int * 1000;
    if v > i64::from(i32::MAX) {
        return Err(too_large());
    }
    let mut rest = &t[end..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        let mut m = 100;
        for c in r[..n].bytes() {
            v += i64::from(c - b'0') * m;
            m /= 10;
        }
        rest = &r[n..];
    }
    let rest = rest.trim_start();
    if !rest.is_empty() {
        return Err(extra_chars(rest, "fixed-point value for ", name, ""));
    }
    Ok(v)
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

pub(super) fn render_size(x: i64) -> String {
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

pub(super) fn render_fixed(x: i64) -> String {
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
