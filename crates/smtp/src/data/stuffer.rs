//! [`DotStuffer`]: the sending side of a DATA body.

/// Encodes a message body for `DATA`: only CRLF line endings go out (a
/// bare LF becomes CRLF, an existing CRLF is kept, and a bare CR becomes
/// CRLF too, as Exim stores it), so nothing a downstream server could take
/// for a different line end (SMTP smuggling) is ever sent; a leading `.` is
/// doubled on every line, and [`DotStuffer::finish`] terminates the last
/// line if needed and appends `.\r\n`.
///
/// Input chunks may split lines (and CRLF pairs) anywhere.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The last byte was a CR, already sent as CRLF: an LF right after it
    /// belongs to it.
    last_cr: bool,
    dots: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// A stuffer positioned at the start of the body.
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            last_cr: false,
            dots: true,
        }
    }

    /// An encoder for BDAT chunks: CRLF canonicalisation only, no dot
    /// stuffing; [`DotStuffer::finish`] then only completes the last line.
    pub fn crlf_only() -> Self {
        Self {
            dots: false,
            ..Self::new()
        }
    }

    /// Encode a chunk of body, appending wire bytes to `out`.
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 8);
        while !input.is_empty() {
            if self.last_cr {
                self.last_cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            if self.dots && self.at_line_start && input[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr2(b'\r', b'\n', input) {
                None => {
                    out.extend_from_slice(input);
                    self.at_line_start = false;
                    return;
                }
                Some(k) => {
                    out.extend_from_slice(&input[..k]);
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    self.last_cr = input[k] == b'\r';
                    input = &input[k + 1..];
                }
            }
        }
    }

    /// Terminate the body: a final CRLF if the last line was incomplete, then
    /// `.\r\n` (not in [`DotStuffer::crlf_only`] mode). The encoder is reset
    /// for another message.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        if self.dots {
            out.extend_from_slice(b".\r\n");
        }
        *self = Self {
            dots: self.dots,
            ..Self::new()
        };
    }

    /// Convenience: encode a whole body including the terminator.
    pub fn stuff_all(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 16);
        let mut s = Self::new();
        s.encode(body, &mut out);
        s.finish(&mut out);
        out
    }
}
