//! Small text operators: Exim's textual and numeric hashes (`hash`,
//! `nhash`), base 32 and base 62 number forms, `hexquote`, `xtextd`,
//! `utf8clean`.

use super::{syntax, ExpandError};

/// Exim's hash alphabet (with its historical `t`/`s` order).
const HASH_CODES: &[u8] = b"abcdefghijklmnopqrtsuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PRIMES: [u64; 30] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113,
];

/// `${hash_<n>_<m>:s}`: `n` characters from the first `m` (default 26) of
/// the alphabet; a string of at most `n` characters is returned unchanged.
pub(super) fn hash(s: &[u8], n: usize, m: Option<usize>) -> Result<Vec<u8>, ExpandError> {
    let m = match m {
        None | Some(0) => 26,
        Some(m) if m > HASH_CODES.len() => {
            return Err(syntax(format!("hash count \"{m}\" too big")))
        }
        Some(m) => m,
    };
    if s.len() <= n || n == 0 {
        return Ok(s.to_vec());
    }
    let mut out = s[..n].to_vec();
    let mut i = 0;
    for (j, &c) in s.iter().enumerate().skip(n) {
        let shift = (u32::from(c) + j as u32) & 7;
        let c = u32::from(c);
        out[i] ^= ((c << shift) | (c >> (8 - shift))) as u8;
        i = (i + 1) % n;
    }
    Ok(out
        .iter()
        .map(|&b| HASH_CODES[usize::from(b) % m])
        .collect())
}

/// `${nhash_<n>:s}` (a number below `n`) or `${nhash_<n>_<m>:s}` (`a/b`).
pub(super) fn nhash(s: &[u8], n: u64, m: Option<u64>) -> Result<String, ExpandError> {
    let mut total: u64 = 0;
    let mut i = 0usize;
    for &c in s {
        if i == 0 {
            i = PRIMES.len() - 1;
        }
        total = total.wrapping_add(PRIMES[i] * u64::from(c));
        i -= 1;
    }
    match m {
        None if n == 0 => Err(syntax("nhash divisor is zero")),
        None => Ok((total % n).to_string()),
        Some(m) if n == 0 || m == 0 => Err(syntax("nhash divisor is zero")),
        Some(m) => {
            let t = total % (n * m);
            Ok(format!("{}/{}", t / m, t % m))
        }
    }
}

pub(super) fn base32(s: &str) -> Result<String, ExpandError> {
    let mut n: u64 = s.parse().map_err(|_| {
        syntax(format!(
            "argument for base32 operator is \"{s}\", which is not a decimal number"
        ))
    })?;
    let mut out = Vec::new();
    while n > 0 {
        out.push(BASE32[(n & 0x1f) as usize]);
        n >>= 5;
    }
    out.reverse();
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn decode_digits(s: &str, alphabet: &[u8], what: &str) -> Result<String, ExpandError> {
    let base = alphabet.len() as u64;
    let mut n: u64 = 0;
    for b in s.bytes() {
        let Some(d) = alphabet.iter().position(|&c| c == b) else {
            return Err(syntax(format!(
                "argument for {what}d operator is \"{s}\", which is not a base {base} number"
            )));
        };
        n = n.wrapping_mul(base).wrapping_add(d as u64);
    }
    Ok(n.to_string())
}

pub(super) fn base32d(s: &str) -> Result<String, ExpandError> {
    decode_digits(s, BASE32, "base32")
}

pub(super) fn base62d(s: &str) -> Result<String, ExpandError> {
    decode_digits(s, BASE62, "base62")
}

/// `${hexquote:}`: bytes outside 0x21..0x7e as `\xHH`.
pub(super) fn hexquote(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(s.len());
    for &b in s {
        if (0x21..=0x7e).contains(&b) {
            o.push(b);
        } else {
            o.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    o
}

/// `${xtextd:}`: RFC 3461 xtext decoding (`+HH`).
pub(super) fn xtextd(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'+' && i + 2 < s.len() {
            let h = std::str::from_utf8(&s[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = h {
                o.push(b);
                i += 3;
                continue;
            }
        }
        o.push(s[i]);
        i += 1;
    }
    o
}

/// `${utf8clean:}`: invalid UTF-8 sequences replaced by `?`.
pub(super) fn utf8clean(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(s.len());
    let mut rest = s;
    loop {
        match std::str::from_utf8(rest) {
            Ok(v) => {
                o.extend_from_slice(v.as_bytes());
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                o.extend_from_slice(&rest[..good]);
                o.push(b'?');
                let bad = e.error_len().unwrap_or(rest.len() - good);
                rest = &rest[good + bad..];
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_exim() {
        assert_eq!(hash(b"monty", 3, None).unwrap(), b"jmg");
        assert_eq!(hash(b"monty", 5, None).unwrap(), b"monty");
        assert_eq!(hash(b"monty python", 4, Some(62)).unwrap(), b"fbWx");
        assert_eq!(nhash(b"monty", 24, None).unwrap(), "19");
        assert_eq!(nhash(b"monty python", 8, Some(63)).unwrap(), "0/61");
    }

    #[test]
    fn number_forms() {
        assert_eq!(base32("0").unwrap(), "");
        assert_eq!(base32("42").unwrap(), "bk");
        assert_eq!(base32d("bk").unwrap(), "42");
        assert!(base32d("ABC").is_err());
        assert_eq!(base62d("3D7").unwrap(), "12345");
        assert_eq!(hexquote(b"a b\x7f"), b"a\\x20b\\x7f");
        assert_eq!(xtextd(b"a+2Bb"), b"a+b");
        assert_eq!(utf8clean(b"a\xffb"), b"a?b");
    }
}
