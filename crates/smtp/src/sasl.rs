//! SASL helpers for SMTP AUTH (RFC 4954), no I/O: base64 as Exim reads and
//! writes it, the `plaintext` splitting of a response at NULs, the CRAM-MD5
//! digest (RFC 2195), the `^` escapes of `client_send` and the xtext of
//! `MAIL ... AUTH=`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use hmac::{Hmac, Mac};
use md5::Md5;

/// Padded standard base64 that, like Exim, ignores stray bits in the last
/// quantum.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decode base64 as Exim's `b64decode` does: white space anywhere is
/// skipped, padding is required, nothing may follow it. `None` for invalid
/// input (Exim's `501 Invalid base64 data`).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != 0x0b)
        .collect();
    LENIENT.decode(compact).ok()
}

/// Standard padded base64.
pub fn b64_encode(bytes: &[u8]) -> String {
    LENIENT.encode(bytes)
}

/// Split decoded SASL data at NUL bytes into items, as Exim's plaintext
/// authenticator fills `$auth1`, `$auth2`, ...: `a\0b` gives `a`, `b`;
/// a trailing NUL adds no empty item; empty data gives one empty item.
pub fn split_at_nul(data: &[u8]) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = data;
    loop {
        let end = memchr::memchr(0, rest).unwrap_or(rest.len());
        items.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        if end + 1 >= rest.len() {
            break;
        }
        rest = &rest[end + 1..];
    }
    items
}

/// HMAC-MD5 of `challenge` keyed with `secret` (RFC 2195).
pub fn cram_md5_digest(secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length (longer ones are hashed first).
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(challenge);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CRAM-MD5 response checked as Exim does: `name SP 32-hex-digits`.
/// Returns the user name when the shape is right (the digest is compared
/// by [`cram_md5_matches`]).
pub fn cram_md5_split(response: &[u8]) -> Option<(String, &[u8])> {
    let sp = response.iter().position(|c| c.is_ascii_whitespace())?;
    let digest = &response[sp + 1..];
    (digest.len() == 32).then(|| {
        (
            String::from_utf8_lossy(&response[..sp]).into_owned(),
            digest,
        )
    })
}

/// Compare a received hex digest (as the client sent it, lower case) with
/// the expected one.
pub fn cram_md5_matches(received_hex: &[u8], expected: &[u8; 16]) -> bool {
    received_hex == hex(expected).as_bytes()
}

/// `client_send` items use `^` for a NUL byte; `^^` is a literal `^`.
pub fn unescape_caret(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'^' {
            if b.get(i + 1) == Some(&b'^') {
                out.push(b'^');
                i += 2;
                continue;
            }
            out.push(0);
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// Decode RFC 3461 xtext (`+XX` hex escapes), as in `MAIL FROM:<..>
/// AUTH=<xtext>`. `None` when an escape is malformed.
pub fn xtext_decode(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let h = b.get(i + 1..i + 3)?;
            let v = std::str::from_utf8(h).ok()?;
            if !v.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(v, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Encode as xtext: `+`, `=`, controls and non-ASCII become `+XX`.
pub fn xtext_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.bytes() {
        if (33..=126).contains(&c) && c != b'+' && c != b'=' {
            out.push(c as char);
        } else {
            out.push_str(&format!("+{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_exim_reads_it() {
        assert_eq!(
            b64_decode("AHVzZXJ4AHNlY3JldA==").unwrap(),
            b"\0userx\0secret"
        );
        assert_eq!(b64_decode("dXNl cng=").unwrap(), b"userx");
        assert_eq!(b64_decode("").unwrap(), b"");
        assert!(b64_decode("dXNlcng").is_none(), "padding required");
        assert!(b64_decode("dXNlcng=x").is_none(), "nothing after padding");
        assert!(b64_decode("!!!!").is_none());
        assert!(b64_decode("=").is_none());
        assert_eq!(b64_encode(b"User Name"), "VXNlciBOYW1l");
    }

    #[test]
    fn plain_items() {
        assert_eq!(split_at_nul(b"\0userx\0secret"), ["", "userx", "secret"]);
        assert_eq!(split_at_nul(b"userx secret"), ["userx secret"]);
        assert_eq!(split_at_nul(b""), [""]);
        assert_eq!(split_at_nul(b"a\0"), ["a"]);
    }

    #[test]
    fn cram_md5_rfc2195_example() {
        let d = cram_md5_digest(
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(hex(&d), "b913a602c7eda7a495b4e6e7334d3890");
        let (name, dig) = cram_md5_split(b"tim b913a602c7eda7a495b4e6e7334d3890").unwrap();
        assert_eq!(name, "tim");
        assert!(cram_md5_matches(dig, &d));
        assert!(cram_md5_split(b"tim b913").is_none());
    }

    #[test]
    fn caret_and_xtext() {
        assert_eq!(unescape_caret("^userx^secret"), b"\0userx\0secret");
        assert_eq!(unescape_caret("a^^b"), b"a^b");
        assert_eq!(xtext_decode("au+2Bth@x").unwrap(), "au+th@x");
        assert!(xtext_decode("au+zzth@x").is_none());
        assert_eq!(xtext_encode("a+b=c"), "a+2Bb+3Dc");
    }
}
