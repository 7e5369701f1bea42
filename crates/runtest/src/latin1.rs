//! Byte-exact text handling: scripts, data, configurations, expected files
//! and outputs are bytes (some are Latin-1 or hold raw 8-bit and CR
//! characters). The runner decodes them as Latin-1, which maps every byte to
//! the char of the same value, works on `String`s, and encodes back with
//! [`encode`] when writing, so nothing is lost or altered on the way.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// Bytes to text, one char per byte.
pub fn decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Text from [`decode`] back to its bytes. Chars above U+00FF (which only
/// the runner itself can have introduced) are written as UTF-8.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => out.push(b),
            Err(_) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// Text from [`decode`] as an OS string (command lines, arguments).
pub fn os(text: &str) -> OsString {
    OsString::from_vec(encode(text))
}

/// Text from [`decode`] for people: the original bytes read as UTF-8
/// where they are, with replacement characters elsewhere.
pub fn display(text: &str) -> String {
    String::from_utf8_lossy(&encode(text)).into_owned()
}

/// Read a file as Latin-1 text.
pub fn read(path: &Path) -> io::Result<String> {
    std::fs::read(path).map(|b| decode(&b))
}

/// Write Latin-1 text back as its bytes.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, encode(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(encode(&decode(&all)), all);
        let utf8 = "caf\u{e9} \u{2603}".as_bytes();
        assert_eq!(encode(&decode(utf8)), utf8);
        assert_eq!(display(&decode(utf8)), "caf\u{e9} \u{2603}");
    }
}
