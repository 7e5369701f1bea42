//! Message body transfer: the receiving [`DataDecoder`] (dot-unstuffing,
//! end-of-data detection, line-ending normalisation) and the sending
//! [`DotStuffer`].
//!
//! Both work on arbitrary chunks and carry their state across chunk
//! boundaries; neither allocates per byte (runs between special bytes are
//! found with `memchr` and copied in one go).

/// Line ending written into the decoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n`, as in Exim's spool `-D` files (default).
    #[default]
    Lf,
    /// `\r\n`, the wire form.
    Crlf,
}

impl LineEnding {
    fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::Crlf => b"\r\n",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    Mid,
    /// A `\r` was seen inside a line (or on an empty line).
    Cr,
    /// A line started with `.` (dropped, pending the next byte).
    Dot,
    /// `.` then `\r` at the start of a line.
    DotCr,
    /// The terminating `.` line was consumed.
    Ended,
}

/// Statistics of one decoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataSummary {
    /// Bytes of decoded body (after unstuffing and line-ending conversion).
    pub size: u64,
    /// Number of lines (line endings written).
    pub lines: u64,
    /// A line ended in a bare LF instead of CRLF.
    pub bare_lf: bool,
    /// A CR not followed by LF was seen (kept in the body).
    pub bare_cr: bool,
    /// The body contained NUL bytes.
    pub nul: bool,
}

/// Decodes a DATA (dot-terminated) or BDAT (counted) body.
///
/// * Lines ending in CRLF or bare LF are written with the configured
///   [`LineEnding`]; a CR not followed by LF is kept.
/// * In dot mode a leading `.` is removed from every line, and a line holding
///   only `.` ends the body. With `strict_terminator` only `CRLF . CRLF` ends
///   it (an SMTP-smuggling defence); a `.` line ended by a bare LF, or after a
///   bare-LF line, is then ordinary data.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: DState,
    dots: bool,
    strict: bool,
    ending: LineEnding,
    /// The current line started after a CRLF (or at the start of the body).
    after_crlf: bool,
    summary: DataSummary,
}

impl DataDecoder {
    /// A decoder for a dot-terminated DATA body.
    pub fn dot_terminated(ending: LineEnding, strict_terminator: bool) -> Self {
        Self {
            state: DState::LineStart,
            dots: true,
            strict: strict_terminator,
            ending,
            after_crlf: true,
            summary: DataSummary::default(),
        }
    }

    /// A decoder for BDAT chunks: no dot handling, only line endings.
    pub fn counted(ending: LineEnding) -> Self {
        Self {
            dots: false,
            ..Self::dot_terminated(ending, false)
        }
    }

    /// True once the terminating `.` line has been consumed.
    pub fn is_ended(&self) -> bool {
        self.state == DState::Ended
    }

    /// True when no byte of the current line has been seen yet.
    pub fn at_line_start(&self) -> bool {
        matches!(self.state, DState::LineStart | DState::Ended)
    }

    /// Statistics so far.
    pub fn summary(&self) -> DataSummary {
        self.summary
    }

    fn eol(&mut self, out: &mut Vec<u8>, crlf: bool) {
        out.extend_from_slice(self.ending.bytes());
        self.summary.size += self.ending.bytes().len() as u64;
        self.summary.lines += 1;
        if !crlf {
            self.summary.bare_lf = true;
        }
        self.after_crlf = crlf;
        self.state = DState::LineStart;
    }

    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.summary.size += bytes.len() as u64;
    }

    /// Decode `input`, appending body bytes to `out`. Returns the number of
    /// input bytes consumed: all of them, unless the end-of-data line was
    /// found, in which case the bytes after it are left for the caller
    /// (pipelined commands).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                DState::Ended => return i,
                DState::Mid => {
                    let rest = &input[i..];
                    match memchr::memchr2(b'\r', b'\n', rest) {
                        None => {
                            self.note_nul(rest);
                            self.push(out, rest);
                            return input.len();
                        }
                        Some(k) => {
                            self.note_nul(&rest[..k]);
                            self.push(out, &rest[..k]);
                            i += k + 1;
                            if rest[k] == b'\n' {
                                self.eol(out, false);
                            } else {
                                self.state = DState::Cr;
                            }
                        }
                    }
                }
                DState::Cr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.eol(out, true);
                    } else {
                        // Keep the bare CR; reprocess this byte mid-line.
                        self.summary.bare_cr = true;
                        self.push(out, b"\r");
                        self.state = DState::Mid;
                    }
                }
                DState::LineStart => {
                    let b = input[i];
                    if b == b'.' && self.dots && (self.after_crlf || !self.strict) {
                        i += 1;
                        self.state = DState::Dot;
                    } else {
                        self.state = DState::Mid;
                    }
                }
                DState::Dot => match input[i] {
                    b'\r' => {
                        i += 1;
                        self.state = DState::DotCr;
                    }
                    b'\n' => {
                        i += 1;
                        if self.strict {
                            // Not a terminator in strict mode: keep the line.
                            self.push(out, b".");
                            self.eol(out, false);
                        } else {
                            self.summary.bare_lf = true;
                            self.state = DState::Ended;
                            return i;
                        }
                    }
                    _ => self.state = DState::Mid,
                },
                DState::DotCr => {
                    if input[i] == b'\n' {
                        self.state = DState::Ended;
                        return i + 1;
                    }
                    self.summary.bare_cr = true;
                    self.push(out, b"\r");
                    self.state = DState::Mid;
                }
            }
        }
        i
    }

    fn note_nul(&mut self, bytes: &[u8]) {
        if !self.summary.nul && memchr::memchr(0, bytes).is_some() {
            self.summary.nul = true;
        }
    }

    /// End of a counted (BDAT) body: write out a pending CR.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if matches!(self.state, DState::Cr | DState::DotCr) {
            self.summary.bare_cr = true;
            self.push(out, b"\r");
        }
        self.state = DState::Ended;
    }
}

/// Encodes a message body for `DATA`: ensures CRLF line endings (a bare LF
/// becomes CRLF, an existing CRLF is kept, a lone CR is passed through),
/// doubles a leading `.` on every line, and [`DotStuffer::finish`] terminates
/// the last line if needed and appends `.\r\n`.
///
/// Input chunks may split lines (and CRLF pairs) anywhere.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
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
            if self.dots && self.at_line_start && input[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr(b'\n', input) {
                None => {
                    out.extend_from_slice(input);
                    self.last_cr = input.last() == Some(&b'\r');
                    self.at_line_start = false;
                    return;
                }
                Some(k) => {
                    let line = &input[..k];
                    out.extend_from_slice(line);
                    let cr_before = if k == 0 {
                        self.last_cr
                    } else {
                        line[k - 1] == b'\r'
                    };
                    out.extend_from_slice(if cr_before { b"\n" } else { b"\r\n" });
                    self.at_line_start = true;
                    self.last_cr = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut DataDecoder, input: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let n = d.decode(input, &mut out);
        (out, n)
    }

    #[test]
    fn unstuffs_and_stops_at_dot() {
        let mut d = DataDecoder::dot_terminated(LineEnding::Lf, false);
        let input = b"Subject: x\r\n\r\n..leading\r\n.\r\nQUIT\r\n";
        let (out, n) = decode_all(&mut d, input);
        assert_eq!(out, b"Subject: x\n\n.leading\n");
        assert_eq!(&input[n..], b"QUIT\r\n");
        assert!(d.is_ended());
        let s = d.summary();
        assert_eq!((s.lines, s.size, s.bare_lf), (3, 21, false));
    }

    #[test]
    fn crlf_mode_keeps_wire_endings() {
        let mut d = DataDecoder::dot_terminated(LineEnding::Crlf, false);
        let (out, _) = decode_all(&mut d, b"a\nb\r\n.\r\n");
        assert_eq!(out, b"a\r\nb\r\n");
        assert!(d.summary().bare_lf);
    }

    #[test]
    fn lenient_accepts_bare_lf_dot() {
        let mut d = DataDecoder::dot_terminated(LineEnding::Lf, false);
        let (out, n) = decode_all(&mut d, b"a\n.\nX");
        assert_eq!(out, b"a\n");
        assert_eq!(n, 4);
        assert!(d.is_ended() && d.summary().bare_lf);
    }

    #[test]
    fn strict_requires_crlf_dot_crlf() {
        let mut d = DataDecoder::dot_terminated(LineEnding::Lf, true);
        let (out, _) = decode_all(&mut d, b"a\n.\r\nb\r\n.\nc\r\n.\r\n");
        assert_eq!(out, b"a\n.\nb\n.\nc\n");
        assert!(d.is_ended());
    }

    #[test]
    fn bare_cr_is_kept() {
        let mut d = DataDecoder::dot_terminated(LineEnding::Lf, false);
        let (out, _) = decode_all(&mut d, b"a\rb\r\r\n.\rx\r\n.\r\n");
        assert_eq!(out, b"a\rb\r\n\rx\n");
        assert!(d.summary().bare_cr);
    }

    #[test]
    fn counted_mode_ignores_dots_and_flushes_cr() {
        let mut d = DataDecoder::counted(LineEnding::Lf);
        let mut out = Vec::new();
        assert_eq!(d.decode(b".\r\n.x\r", &mut out), 6);
        assert_eq!(d.decode(b"\nend\r", &mut out), 5);
        d.finish(&mut out);
        assert_eq!(out, b".\n.x\nend\r");
    }

    #[test]
    fn stuffer_basic() {
        assert_eq!(DotStuffer::stuff_all(b""), b".\r\n");
        assert_eq!(DotStuffer::stuff_all(b"a"), b"a\r\n.\r\n");
        assert_eq!(
            DotStuffer::stuff_all(b".a\n.\nb\r\n..c\r\n"),
            b"..a\r\n..\r\nb\r\n...c\r\n.\r\n"
        );
    }

    #[test]
    fn crlf_only_mode() {
        let mut s = DotStuffer::crlf_only();
        let mut out = Vec::new();
        s.encode(b".a\n.", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b".a\r\n.\r\n");
        out.clear();
        s.encode(b"x\r\n", &mut out);
        s.finish(&mut out);
        assert_eq!(out, b"x\r\n");
    }

    #[test]
    fn stuffer_handles_split_crlf_and_dots() {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        for part in [&b"x\r"[..], b"\n", b".", b"y\n", b"z"] {
            s.encode(part, &mut out);
        }
        s.finish(&mut out);
        assert_eq!(out, b"x\r\n..y\r\nz\r\n.\r\n");
    }
}
