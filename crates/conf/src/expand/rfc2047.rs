//! RFC 2047 encoded words (`=?charset?Q|B?text?=`): decoding to UTF-8.

/// Decode the encoded words in `s` into UTF-8, as Exim does for
/// `$h_` and Sieve: white space between two adjacent encoded words is
/// dropped; a word longer than 75 characters (when `check_length`), with
/// an unknown encoding or bad base64 is left as it is. ISO-8859-1,
/// US-ASCII and UTF-8 are converted; other character sets are taken as
/// ISO-8859-1, byte for byte.
pub fn rfc2047_decode(s: &str, check_length: bool) -> String {
    let mut out = String::new();
    let mut rest = s;
    // White space seen since the last encoded word, kept back in case
    // another word follows at once.
    let mut pending_space: Option<&str> = None;
    loop {
        let Some(start) = rest.find("=?") else {
            if let Some(sp) = pending_space {
                out.push_str(sp);
            }
            out.push_str(rest);
            return out;
        };
        let before = &rest[..start];
        match encoded_word(&rest[start..], check_length) {
            Some((text, used)) => {
                // White space between two encoded words is dropped.
                let space = pending_space.take();
                if !before.is_empty() {
                    out.push_str(space.unwrap_or(""));
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[start + used..];
                let ws = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                pending_space = Some(&rest[..ws]);
                rest = &rest[ws..];
            }
            None => {
                if let Some(sp) = pending_space.take() {
                    out.push_str(sp);
                }
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
}

/// One encoded word at the start of `s`: its decoded text and length.
fn encoded_word(s: &str, check_length: bool) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    let after = &body[q1 + 1..];
    let q2 = after.find('?')?;
    let encoding = &after[..q2];
    let text_start = &after[q2 + 1..];
    let end = text_start.find("?=")?;
    let text = &text_start[..end];
    let used = 2 + q1 + 1 + q2 + 1 + end + 2;
    if check_length && used > 75 {
        return None;
    }
    if charset.is_empty() || text.contains([' ', '\t', '\n']) {
        return None;
    }
    let bytes = match encoding {
        "q" | "Q" => q_decode(text)?,
        // Base64 must come in whole quanta; broken text stays as it is.
        "b" | "B" if text.len() % 4 == 0 => super::operators::base64_decode(text)?,
        _ => return None,
    };
    // RFC 2231 language suffix: charset*lang.
    let charset = charset.split('*').next().unwrap_or(charset);
    let decoded =
        if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii") {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            bytes.iter().map(|&b| b as char).collect()
        };
    Some((decoded, used))
}

fn q_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::rfc2047_decode;

    #[test]
    fn decodes_words() {
        assert_eq!(rfc2047_decode("=?ISO-8859-1?Q?=31?=", true), "1");
        assert_eq!(
            rfc2047_decode("=?iso-8859-1?q?abc?= =?iso-8859-1?q?def?=", true),
            "abcdef"
        );
        assert_eq!(rfc2047_decode("a =?utf-8?B?w6k=?= b", true), "a é b");
        assert_eq!(
            rfc2047_decode("=?ISO-8859-1?Q?=31=", true),
            "=?ISO-8859-1?Q?=31="
        );
        assert_eq!(rfc2047_decode("(=?ISO-8859-1?Q?a?=)", true), "(a)");
        assert_eq!(
            rfc2047_decode("=?iso-8859-1?b?QQ?=", true),
            "=?iso-8859-1?b?QQ?="
        );
    }
}
