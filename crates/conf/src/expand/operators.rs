//! Expansion operators: `${name:arg}` and the helpers they use.

use std::net::IpAddr;

use super::*;

impl Expander<'_> {
    pub(super) fn operator(&mut self, name: &str, arg: Vec<u8>) -> Result<Vec<u8>, ExpandError> {
        let num = |s: &str| parse_number(s);
        if let Some(n) = name
            .strip_prefix("length_")
            .or_else(|| name.strip_prefix("l_"))
        {
            return Ok(length(&arg, num(n)?));
        }
        if let Some(rest) = name
            .strip_prefix("substr_")
            .or_else(|| name.strip_prefix("s_"))
        {
            let (m, n) = match rest.split_once('_') {
                Some((m, n)) => (num(m)?, Some(num(n)?)),
                None => (num(rest)?, None),
            };
            return Ok(substr(&arg, m, n));
        }
        if let Some(r) = digest::hash_operator(name, &arg) {
            return r.map(String::into_bytes);
        }
        let two = |rest: &str| -> Result<(u64, Option<u64>), ExpandError> {
            let bad = || syntax(format!("non-digit after underscore in \"{name}\""));
            let (a, b) = match rest.split_once('_') {
                Some((a, b)) => (a, Some(b)),
                None => (rest, None),
            };
            let a = a.parse::<u64>().map_err(|_| bad())?;
            let b = b.map(|b| b.parse::<u64>().map_err(|_| bad())).transpose()?;
            Ok((a, b))
        };
        if let Some(rest) = name
            .strip_prefix("hash_")
            .or_else(|| name.strip_prefix("h_"))
        {
            let (n, m) = two(rest)?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            return textops::hash(&arg, n, m.map(|m| usize::try_from(m).unwrap_or(usize::MAX)));
        }
        if let Some(rest) = name
            .strip_prefix("nhash_")
            .or_else(|| name.strip_prefix("nh_"))
        {
            let (n, m) = two(rest)?;
            return Ok(textops::nhash(&arg, n, m)?.into_bytes());
        }
        if matches!(
            name,
            "hash" | "h" | "nhash" | "nh" | "length" | "l" | "substr" | "s"
        ) {
            return Err(syntax(format!("missing values after {name}")));
        }
        match name {
            "hexquote" => return Ok(textops::hexquote(&arg)),
            "xtextd" => return Ok(textops::xtextd(&arg)),
            "utf8clean" => return Ok(textops::utf8clean(&arg)),
            "escape" => return Ok(escape(&arg)),
            "escape8bit" => {
                let mut o = Vec::with_capacity(arg.len());
                for &b in &arg {
                    if b < 127 && b != b'\\' {
                        o.push(b);
                    } else {
                        o.extend_from_slice(format!("\\{b:03o}").as_bytes());
                    }
                }
                return Ok(o);
            }
            _ => {}
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
            "addresses" => addresses(&s)?.into_bytes(),
            "eval" | "eval10" => eval(&s, name == "eval10")?.to_string().into_bytes(),
            "base62" => {
                let n: u64 = s.parse().map_err(|_| {
                    syntax(format!(
                        "argument for base62 operator is \"{s}\", which is not a decimal number"
                    ))
                })?;
                base62(n).into_bytes()
            }
            "base62d" => textops::base62d(&s)?.into_bytes(),
            // Quoting for a lookup type: file lookups need none.
            n if n.starts_with("quote_") && crate::lookup::LookupSpec::parse(&n[6..]).is_some() => {
                s.into_bytes()
            }
            n if n.starts_with("quote_")
                && n != "quote_local_part"
                && crate::lookup::LookupSpec::unsupported(&n[6..]).is_none() =>
            {
                return Err(ExpandError::UnknownLookup(n[6..].to_string()))
            }
            "base32" => textops::base32(&s)?.into_bytes(),
            "base32d" => textops::base32d(&s)?.into_bytes(),
            "expand" => {
                let mut p = 0;
                self.string(s.as_bytes(), &mut p, false, false)
                    .map_err(|e| {
                        syntax(format!(
                            "internal expansion of {} failed: {e}",
                            super::items::quoted(&s)
                        ))
                    })?
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
            "base64" | "str2b64" => base64_encode(s.as_bytes()).into_bytes(),
            "base64d" | "b64decode" => {
                base64_decode(&s).ok_or_else(|| syntax(format!("bad base64 string \"{s}\"")))?
            }
            "hex2b64" => {
                if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(syntax(format!("\"{s}\" is not a hex string")));
                }
                if s.len() % 2 == 1 {
                    return Err(syntax(format!(
                        "\"{s}\" contains an odd number of characters"
                    )));
                }
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
            "mask" | "mask_n" => mask(&s, name == "mask_n")?.into_bytes(),
            "time_interval" => {
                let n: u64 = s.parse().map_err(|_| {
                    syntax(format!(
                        "string \"{s}\" is not a positive number in \"{name}\" operator"
                    ))
                })?;
                crate::options::render_time(n).into_bytes()
            }
            "time_eval" => {
                // A bare number is not a time interval here (it is for
                // options): Exim insists on a unit.
                let ok = s.bytes().last().is_some_and(|c| c.is_ascii_alphabetic());
                crate::options::parse_time(&s)
                    .filter(|_| ok)
                    .ok_or_else(|| {
                        syntax(format!(
                            "string \"{s}\" is not an Exim time interval in \"{name}\" operator"
                        ))
                    })?
                    .to_string()
                    .into_bytes()
            }
            "listnamed" | "listnamed_d" | "listnamed_h" | "listnamed_a" | "listnamed_l" => {
                let Some(cfg) = self.cfg else {
                    return Err(syntax(format!(
                        "\"{name}\" needs the configuration (use expand_with_config)"
                    )));
                };
                let kind = name.strip_prefix("listnamed_");
                let mut out = String::new();
                listnamed(cfg, &s, kind, &mut out, 0)?;
                out.into_bytes()
            }
            n if n.starts_with("listnamed_") => {
                return Err(syntax("bad suffix on \"list\" operator"));
            }
            "quote_local_part" => quote_local_part(&s).into_bytes(),
            "listcount" => crate::lists::ListIter::new(&s)
                .count()
                .to_string()
                .into_bytes(),
            _ => return Err(unknown_operator(name)),
        })
    }
}

/// The error for an operator oxim does not implement: Exim's texts for
/// names Exim does not know either, "not supported by oxim" for the others.
fn unknown_operator(name: &str) -> ExpandError {
    if known::OPERATORS.contains(&name) || name.starts_with("quote_") {
        return ExpandError::NotSupported("expansion operator", name.to_string());
    }
    if let Some((base, _)) = name.split_once('_') {
        if known::OPERATORS_WITH_ARG.contains(&base) {
            return ExpandError::NotSupported("expansion operator", name.to_string());
        }
        if known::OPERATORS.contains(&base) {
            return syntax(format!(
                "unknown expansion operator \"{name}\" (\"{base}\" does not take an _arg)"
            ));
        }
    }
    ExpandError::UnknownOperator(name.to_string())
}

/// Exim's `${escape:}`: non-printing bytes (controls, and all bytes with
/// the top bit set) as `\n`-style escapes or three octal digits.
fn escape(data: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(data.len());
    for &b in data {
        let esc: &[u8] = match b {
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x08 => b"\\b",
            0x0b => b"\\v",
            0x0c => b"\\f",
            b'\t' => b"\\t",
            0x20..=0x7e => {
                o.push(b);
                continue;
            }
            _ => {
                o.extend_from_slice(format!("\\{b:03o}").as_bytes());
                continue;
            }
        };
        o.extend_from_slice(esc);
    }
    o
}

/// Exim's `${listnamed:name}`: the named list's items joined with ` : `,
/// lists named in it (`+name`) inlined, items of a list with another
/// separator re-quoted for `:`. `kind` is the `_d`/`_h`/`_a`/`_l` suffix.
fn listnamed(
    cfg: &Config,
    name: &str,
    kind: Option<&str>,
    out: &mut String,
    depth: usize,
) -> Result<(), ExpandError> {
    use crate::ListKind as K;
    if depth > 32 {
        return Err(ExpandError::TooComplex("named lists nested too deeply"));
    }
    let name = name.strip_prefix('+').unwrap_or(name);
    let (kinds, what): (&[K], &str) = match kind {
        None => (&[K::Address, K::Domain, K::Host, K::LocalPart], ""),
        Some("a") => (&[K::Address], "address "),
        Some("d") => (&[K::Domain], "domain "),
        Some("h") => (&[K::Host], "host "),
        Some("l") => (&[K::LocalPart], "localpart "),
        Some(_) => return Err(syntax("bad suffix on \"list\" operator")),
    };
    let Some(text) = kinds.iter().find_map(|k| cfg.named_lists.get(*k, name)) else {
        return Err(syntax(format!("\"{name}\" is not a {what}named list")));
    };
    let mut iter = crate::lists::ListIter::new(text);
    let sep = iter.separator();
    let mut first = true;
    for item in iter.by_ref() {
        if !first {
            out.push_str(" : ");
        }
        first = false;
        if item.starts_with('+') {
            listnamed(cfg, &item, kind, out, depth + 1)?;
        } else if sep != ':' {
            for c in item.chars() {
                if c == ':' {
                    out.push_str("::");
                } else {
                    out.push(c);
                }
            }
        } else {
            out.push_str(&item);
        }
    }
    Ok(())
}

/// Joins list items with `sep` as Exim's `map` and `filter` do: separators
/// inside items are doubled, and an item after the first that is empty or
/// starts with the separator gets a space in front (so it is not read as a
/// doubled separator).
pub(super) fn join_list(items: &[String], sep: char) -> String {
    let doubled = format!("{sep}{sep}");
    let mut out = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
            if it.is_empty() || it.starts_with(sep) {
                out.push(' ');
            }
        }
        out.push_str(&it.replace(sep, &doubled));
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(super) fn base64_encode(data: &[u8]) -> String {
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

pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
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

pub(super) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(super) fn reverse_ip(s: &str) -> Option<String> {
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
/// `${mask:ip/bits}` (`normalised`: `${mask_n:}`): the address with host
/// bits cleared, plus the mask. IPv6 results use Exim's dotted form
/// (`2001.0db8.0000...`) unless normalised.
pub(super) fn mask(s: &str, normalised: bool) -> Result<String, ExpandError> {
    let t = s.trim();
    let (addr, bits) = match t.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Err(syntax(format!("\"{s}\" is not an IP address")));
    };
    let Some(bits) = bits else {
        return Err(syntax(format!("missing mask value in \"{s}\"")));
    };
    let too_big = || syntax(format!("mask value too big in \"{s}\""));
    let bits: u32 = bits.parse().map_err(|_| too_big())?;
    match ip {
        IpAddr::V4(a) if bits <= 32 => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Ok(format!(
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
            if normalised {
                return Ok(format!("{v}/{bits}"));
            }
            let groups: Vec<String> = v.segments().iter().map(|g| format!("{g:04x}")).collect();
            Ok(format!("{}/{bits}", groups.join(".")))
        }
        _ => Err(too_big()),
    }
}

pub(super) fn base62(mut n: u64) -> String {
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
pub(super) fn quote(s: &str) -> String {
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
pub(super) fn quote_local_part(s: &str) -> String {
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

pub(super) fn tr(subject: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    subject
        .iter()
        .map(|&c| match from.iter().rposition(|&f| f == c) {
            Some(i) if !to.is_empty() => to[i.min(to.len() - 1)],
            _ => c,
        })
        .collect()
}

pub(super) fn length(s: &[u8], n: i64) -> Vec<u8> {
    let n = usize::try_from(n.max(0)).unwrap_or(0);
    s[..n.min(s.len())].to_vec()
}

/// Exim's substr: negative start counts from the end; length may be
/// negative to take characters to the left of the start.
pub(super) fn substr(s: &[u8], start: i64, len: Option<i64>) -> Vec<u8> {
    let l = i64::try_from(s.len()).unwrap_or(i64::MAX);
    // A negative length is treated as unset (the item form refuses it).
    let mut len = len.filter(|n| *n >= 0);
    let mut start = start;
    if start < 0 {
        start += l;
        if start < 0 {
            // Before the start: skip to it and shorten the length; unset
            // means "everything to the left", which is nothing.
            len = Some(len.map_or(0, |n| (n + start).max(0)));
            start = 0;
        } else if len.is_none() {
            len = Some(start);
            start = 0;
        }
    } else if start > l {
        start = l;
        len = Some(0);
    }
    let mut n = len.unwrap_or(l);
    if start.saturating_add(n) > l {
        n = l - start;
    }
    let f = usize::try_from(start).unwrap_or(0);
    let t = usize::try_from(start + n).unwrap_or(0);
    s.get(f..t).map(<[u8]>::to_vec).unwrap_or_default()
}

pub(super) fn address_of(s: &str) -> String {
    super::address::extract_address(s, false).unwrap_or_default()
}

/// Exim's `${addresses:[>sep]list}`: the addresses of a header-style list,
/// joined with `sep` (default `:`), separators inside them doubled.
fn addresses(s: &str) -> Result<String, ExpandError> {
    let t = s.trim_start();
    let (sep, list) = match t.strip_prefix('>') {
        Some(rest) => match rest.chars().next() {
            Some(c) => (c, &rest[c.len_utf8()..]),
            None => {
                return Err(syntax(format!(
                    "output separator missing in expanding ${{addresses:{t}}}"
                )))
            }
        },
        None => (':', t),
    };
    let mut out = String::new();
    for piece in super::address::split_addresses(list) {
        let Some(a) = super::address::extract_address(piece, true) else {
            continue;
        };
        if !out.is_empty() {
            out.push(sep);
            if a.starts_with(sep) {
                out.push(' ');
            }
        }
        for c in a.chars() {
            out.push(c);
            if c == sep {
                out.push(sep);
            }
        }
    }
    Ok(out)
}

/// `key=value` extraction as in `${extract{key}{string}}`.
pub(super) fn extract_key(s: &str, key: &str) -> Option<String> {
    // Entries are `key=value`, `key = value` or `key value`; a value may be
    // quoted. Keys compare caselessly.
    let b = s.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(&mut i);
    while i < b.len() {
        let ks = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let k = &s[ks..i];
        ws(&mut i);
        if b.get(i) == Some(&b'=') {
            i += 1;
            ws(&mut i);
        }
        let value = if b.get(i) == Some(&b'"') {
            let (v, used, _) = crate::options::dequote(&s[i + 1..]);
            i += 1 + used;
            v
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            s[vs..i].to_string()
        };
        if k.eq_ignore_ascii_case(key) {
            return Some(value);
        }
        ws(&mut i);
        if i == ks {
            i += 1;
        }
    }
    None
}
