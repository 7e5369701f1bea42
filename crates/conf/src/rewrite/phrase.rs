//! RFC 822 phrases in rewritten header addresses (the `w` flag): quoting
//! and RFC 2047 encoding as Exim's `parse_fix_phrase` does them.

use super::mailbox::is_space;

/// RFC 2047 `Q` encoding of `s` in `charset` (Exim's `parse_quote_2047`,
/// without folding); `s` itself when nothing needed encoding.
pub fn quote_2047(s: &[u8], charset: &str) -> Vec<u8> {
    let hdr = format!("=?{charset}?Q?");
    let mut g: Vec<u8> = hdr.clone().into_bytes();
    let (mut line_off, mut coded, mut first_byte) = (0usize, false, false);
    for &ch in s {
        if g.len() - line_off > 67 && !first_byte {
            g.extend_from_slice(b"?= ");
            line_off = g.len();
            g.extend_from_slice(hdr.as_bytes());
        }
        if !(33..=126).contains(&ch) || b"?=()<>@,;:\\\".[]_".contains(&ch) {
            if ch == b' ' {
                g.push(b'_');
                first_byte = false;
            } else {
                g.extend_from_slice(format!("={ch:02X}").as_bytes());
                coded = true;
                first_byte = !first_byte;
            }
        } else {
            g.push(ch);
            first_byte = false;
        }
    }
    if coded {
        g.extend_from_slice(b"?=");
        g
    } else {
        s.to_vec()
    }
}

/// Exim's `parse_fix_phrase`: makes an RFC 822 phrase syntactically valid,
/// quoting what needs quotes, or RFC 2047-encoding it (in `charset`) when it
/// has characters that are not printable ASCII.
pub fn fix_phrase(phrase: &[u8], charset: &str) -> Vec<u8> {
    let mut p = phrase;
    while let Some((&c, rest)) = p.split_first() {
        if !is_space(c) {
            break;
        }
        p = rest;
    }
    if p.iter().any(|&c| (c < 32 && c != b'\t') || c > 126) {
        return quote_2047(p, charset);
    }
    let end = p.len();
    let mut t: Vec<u8> = Vec::with_capacity(end * 2 + 2);
    let mut lead_quote = false;
    let mut quoted = false;
    let mut s = 0usize;
    while s < end {
        let mut ch = p[s];
        s += 1;
        if ch == b'"' {
            t.push(b'"');
            while s < end {
                ch = p[s];
                s += 1;
                if ch == b'"' {
                    break;
                }
                t.push(ch);
                if ch == b'\\' && s < end {
                    t.push(p[s]);
                    s += 1;
                }
            }
            t.push(b'"');
            if s >= end {
                break;
            }
            quoted = true;
        } else if ch == b'(' {
            let mut level = 1;
            t.push(b'(');
            while s < end {
                ch = p[s];
                s += 1;
                t.push(ch);
                if ch == b'(' {
                    level += 1;
                } else if ch == b')' {
                    level -= 1;
                    if level <= 0 {
                        break;
                    }
                } else if ch == b'\\' && s < end {
                    t.push(p[s] & 127);
                    s += 1;
                } else if ch == b'"' {
                    quoted = true;
                }
            }
        } else if b")<>@,;:\\.[]".contains(&ch) {
            if quoted {
                let at = t
                    .iter()
                    .rposition(|&c| matches!(c, b' ' | b'"' | b')'))
                    .map_or(0, |i| i + 1);
                t.insert(at, b'"');
                t.push(ch);
                while s < end {
                    ch = p[s];
                    s += 1;
                    if ch == b' ' || ch == b'"' {
                        s -= 1;
                        break;
                    }
                    t.push(ch);
                }
                t.push(b'"');
            } else {
                let mut escaped = ch == b'\\';
                lead_quote = true;
                t.push(ch);
                let close = |t: &mut Vec<u8>| {
                    let mut count = 0;
                    while t.last() == Some(&b' ') {
                        t.pop();
                        count += 1;
                    }
                    t.push(b'"');
                    t.extend(std::iter::repeat_n(b' ', count));
                };
                while s < end {
                    ch = p[s];
                    s += 1;
                    if escaped {
                        t.push(ch);
                        escaped = false;
                    } else if ch == b'\\' {
                        t.push(ch);
                        escaped = true;
                    } else if ch == b'"' {
                        close(&mut t);
                        s -= 1;
                        break;
                    } else if ch == b'(' {
                        let mut ss = s;
                        let mut level = 1;
                        while ss < end {
                            let c = p[ss];
                            ss += 1;
                            if c == b'(' {
                                level += 1;
                            } else if c == b')' {
                                level -= 1;
                                if level <= 0 {
                                    break;
                                }
                            } else if c == b'\\' && ss + 1 < end {
                                ss += 1;
                            } else if c == b'"' {
                                quoted = true;
                                break;
                            }
                        }
                        if quoted {
                            close(&mut t);
                            break;
                        }
                        if ss >= end {
                            ss -= 1;
                        }
                        t.push(b'(');
                        if ss > s {
                            t.extend_from_slice(&p[s..ss]);
                            s = ss;
                        }
                    } else {
                        t.push(ch);
                    }
                }
            }
            if s >= end {
                t.push(b'"');
            }
        } else {
            t.push(ch);
        }
    }
    if lead_quote {
        t.insert(0, b'"');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        let f = |s: &str| String::from_utf8(fix_phrase(s.as_bytes(), "ISO-8859-1")).unwrap();
        assert_eq!(f("John Q. Smith"), "\"John Q. Smith\"");
        assert_eq!(f("John \"Jack\" Smith"), "John \"Jack\" Smith");
        assert_eq!(f("John \"Jack\" Q. Smith"), "John \"Jack\" \"Q.\" Smith");
        assert_eq!(f("John (Jack) Q. Smith"), "\"John (Jack) Q. Smith\"");
        assert_eq!(f("a phrase"), "a phrase");
        assert_eq!(
            String::from_utf8(fix_phrase(b"(a comment A\xc4Z)", "ISO-8859-1")).unwrap(),
            "=?ISO-8859-1?Q?=28a_comment_A=C4Z=29?="
        );
    }
}
