//! Message splitting and DKIM canonicalisation (RFC 6376 section 3.4).

/// One header field as it arrived: its name and the whole field (name,
/// colon, value, continuation lines) with CRLF line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub raw: Vec<u8>,
}

/// A message split into header fields and body lines (each without its line
/// end; a bare LF or a CRLF both end a line).
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub fields: Vec<Field>,
    pub body: Vec<Vec<u8>>,
}

/// Split a message as received (LF or CRLF line ends).
pub fn split(msg: &[u8]) -> Split {
    let mut lines: Vec<&[u8]> = msg.split(|&b| b == b'\n').collect();
    if msg.ends_with(b"\n") {
        lines.pop();
    }
    let mut out = Split::default();
    let mut i = 0;
    while i < lines.len() {
        let line = strip_cr(lines[i]);
        if line.is_empty() {
            i += 1;
            break;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !out.fields.is_empty() {
            let f = out.fields.last_mut().expect("checked");
            f.raw.extend_from_slice(line);
            f.raw.extend_from_slice(b"\r\n");
        } else {
            let name = line
                .iter()
                .position(|&b| b == b':')
                .map(|p| &line[..p])
                .unwrap_or(line);
            let name = String::from_utf8_lossy(name).trim_end().to_string();
            let mut raw = line.to_vec();
            raw.extend_from_slice(b"\r\n");
            out.fields.push(Field { name, raw });
        }
        i += 1;
    }
    out.body = lines[i.min(lines.len())..]
        .iter()
        .map(|l| strip_cr(l).to_vec())
        .collect();
    out
}

fn strip_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A header field canonicalised for hashing (with its CRLF).
pub fn header(raw: &[u8], relaxed: bool) -> Vec<u8> {
    if !relaxed {
        return raw.to_vec();
    }
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    let mut out: Vec<u8> = raw[..colon]
        .iter()
        .filter(|b| !is_wsp(**b))
        .map(u8::to_ascii_lowercase)
        .collect();
    out.push(b':');
    let value = raw.get(colon + 1..).unwrap_or(&[]);
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b'\r' || b == b'\n' {
            continue;
        }
        if is_wsp(b) {
            pending_space = true;
            continue;
        }
        if pending_space && started {
            out.push(b' ');
        }
        pending_space = false;
        started = true;
        out.push(b);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The canonical body (trailing empty lines removed), cut to `limit` bytes
/// when the signature has `l=`.
pub fn body(lines: &[Vec<u8>], relaxed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut empties = 0usize;
    for l in lines {
        let line: Vec<u8> = if relaxed {
            let mut v = Vec::with_capacity(l.len());
            let mut space = false;
            for &b in l {
                if is_wsp(b) {
                    space = true;
                } else {
                    if space {
                        v.push(b' ');
                    }
                    space = false;
                    v.push(b);
                }
            }
            v
        } else {
            l.clone()
        };
        if line.is_empty() {
            empties += 1;
            continue;
        }
        for _ in 0..empties {
            out.extend_from_slice(b"\r\n");
        }
        empties = 0;
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    if out.is_empty() && !relaxed {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header() {
        assert_eq!(
            header(b"SubJect :  a  b\r\n\t c \r\n", true),
            b"subject:a b c\r\n".to_vec()
        );
    }

    #[test]
    fn bodies() {
        let lines = vec![b"a  b ".to_vec(), Vec::new(), b" ".to_vec(), Vec::new()];
        assert_eq!(body(&lines, true), b"a b\r\n".to_vec());
        assert_eq!(body(&lines, false), b"a  b \r\n\r\n \r\n".to_vec());
        assert_eq!(body(&[], false), b"\r\n".to_vec());
        assert_eq!(body(&[], true), b"".to_vec());
    }

    #[test]
    fn splits() {
        let s = split(b"A: 1\n b\nC:2\r\n\r\nbody\n");
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields[0].raw, b"A: 1\r\n b\r\n".to_vec());
        assert_eq!(s.body, vec![b"body".to_vec()]);
    }
}
