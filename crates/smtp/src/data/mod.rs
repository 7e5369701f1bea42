//! Message body transfer: the receiving [`DataDecoder`] (dot-unstuffing,
//! end-of-data detection, line-ending normalisation) and the sending
//! [`DotStuffer`].
//!
//! Both work on arbitrary chunks and carry their state across chunk
//! boundaries; neither allocates per byte (runs between special bytes are
//! found with `memchr` and copied in one go).
//!
//! # Line endings and SMTP smuggling
//!
//! SMTP smuggling (CVE-2023-51766 in Exim, CVE-2023-51764 in Postfix,
//! CVE-2023-51765 in Sendmail) hides a second message after an
//! end-of-data sequence that the receiving server accepts but the sending
//! one does not (`<LF>.<CR><LF>`, `<CR><LF>.<LF>`, `<LF>.<LF>`, ...). With
//! [`LineRules::FirstLine`], the rules of Exim 4.97.1 and later, the only
//! end of data for a client whose first line ended in CRLF is
//! `<CR><LF>.<CR><LF>`; [`LineRules::FirstLineCrlfEnd`] (for remote
//! clients) requires it of every message. The [`DotStuffer`] never sends a
//! bare CR or LF.

mod stuffer;

pub use stuffer::DotStuffer;

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

/// How bare LF and bare CR are read in a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineRules {
    /// Exim 4.97.1 and later (its fix for CVE-2023-51766, "dot, LF" no
    /// longer ends the data): the ending of the message's first line picks
    /// the mode.
    ///
    /// * First line ended by CRLF (every real SMTP client): only CRLF ends a
    ///   line. A bare LF in the body becomes a space; in the header section
    ///   it becomes a line break followed by a space (a folded continuation,
    ///   or, on an empty line, the end of the header section). So `.` next to
    ///   a bare LF never ends the data.
    /// * First line ended by a bare LF (a local client writing Unix text):
    ///   LF and CRLF both end lines, and `.` LF ends the data.
    /// * Either way a bare CR ends a line (no CR is kept in the body; in the
    ///   header section it is followed by a space), and a `.` after a bare CR
    ///   is data, so `<CR>.<CR>` never ends the data.
    ///
    /// In counted (BDAT) mode, LF, CRLF and CR all end lines in the body;
    /// [`DataSummary::first_line_crlf`] lets the caller refuse a chunked
    /// message whose first line did not end in CRLF (Exim: `552 Message
    /// header not CRLF terminated`).
    FirstLine,
    /// As [`LineRules::FirstLine`], except that a message whose first line
    /// ended in a bare LF also ends only at `<CR><LF>.<CR><LF>` (its bare
    /// LFs still end lines). For remote clients: an LF-only message may
    /// itself come through a relay that passes bare LFs on, so no bare LF
    /// may end the data (as Postfix's `smtpd_forbid_bare_newline =
    /// normalize`). The default.
    #[default]
    FirstLineCrlfEnd,
    /// Every LF ends a line and `.` LF ends the data; a bare CR is kept.
    /// The behaviour before 2023, open to SMTP smuggling: only for tests
    /// that compare with it.
    Lenient,
    /// Only `<CR><LF>.<CR><LF>` ends the data, but a bare LF still ends a
    /// line (of data) and a bare CR is kept.
    CrlfTerminator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    /// At the start of a line (dot handling applies).
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

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eol {
    Crlf,
    BareLf,
    BareCr,
}

/// Statistics of one decoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataSummary {
    /// Bytes of decoded body (after unstuffing and line-ending conversion).
    pub size: u64,
    /// Number of lines (line endings written).
    pub lines: u64,
    /// A bare LF (not after CR) was received.
    pub bare_lf: bool,
    /// A CR not followed by LF was received.
    pub bare_cr: bool,
    /// The body contained NUL bytes.
    pub nul: bool,
    /// How the first line ended: `Some(true)` CRLF, `Some(false)` a bare
    /// LF, `None` not yet (or the body had no line end).
    pub first_line_crlf: Option<bool>,
}

/// Decodes a DATA (dot-terminated) or BDAT (counted) body.
///
/// * Lines are written with the configured [`LineEnding`]; which bytes end
///   a line is set by [`LineRules`].
/// * In dot mode a leading `.` is removed from every line, and a line holding
///   only `.` ends the body (under [`LineRules::FirstLine`] with a CRLF
///   first line: only `CRLF . CRLF`).
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: DState,
    dots: bool,
    rules: LineRules,
    ending: LineEnding,
    /// The current line started after a CRLF (or at the start of the body).
    after_crlf: bool,
    /// Still in the header section (no empty line yet).
    in_header: bool,
    /// No byte has been written for the current line yet.
    line_empty: bool,
    summary: DataSummary,
}

impl DataDecoder {
    /// A decoder for a dot-terminated DATA body with the given rules.
    pub fn data(ending: LineEnding, rules: LineRules) -> Self {
        Self {
            state: DState::LineStart,
            dots: true,
            rules,
            ending,
            after_crlf: true,
            in_header: true,
            line_empty: true,
            summary: DataSummary::default(),
        }
    }

    /// A decoder for BDAT chunks with the given rules: no dot handling.
    pub fn bdat(ending: LineEnding, rules: LineRules) -> Self {
        Self {
            dots: false,
            ..Self::data(ending, rules)
        }
    }

    /// A DATA decoder with the older rules: [`LineRules::CrlfTerminator`]
    /// when `strict_terminator`, else [`LineRules::Lenient`].
    pub fn dot_terminated(ending: LineEnding, strict_terminator: bool) -> Self {
        let rules = if strict_terminator {
            LineRules::CrlfTerminator
        } else {
            LineRules::Lenient
        };
        Self::data(ending, rules)
    }

    /// A BDAT decoder with the older rules (bare CR kept).
    pub fn counted(ending: LineEnding) -> Self {
        Self::bdat(ending, LineRules::Lenient)
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

    /// Exim's "strict CRLF" mode: the first line ended in CRLF.
    fn strict_crlf(&self) -> bool {
        self.first_line_rules() && self.summary.first_line_crlf == Some(true)
    }

    fn first_line_rules(&self) -> bool {
        matches!(
            self.rules,
            LineRules::FirstLine | LineRules::FirstLineCrlfEnd
        )
    }

    fn eol(&mut self, out: &mut Vec<u8>, how: Eol) {
        out.extend_from_slice(self.ending.bytes());
        self.summary.size += self.ending.bytes().len() as u64;
        self.summary.lines += 1;
        match how {
            Eol::Crlf => {
                if self.summary.first_line_crlf.is_none() {
                    self.summary.first_line_crlf = Some(true);
                }
            }
            Eol::BareLf => {
                self.summary.bare_lf = true;
                if self.summary.first_line_crlf.is_none() {
                    self.summary.first_line_crlf = Some(false);
                }
            }
            Eol::BareCr => self.summary.bare_cr = true,
        }
        if self.line_empty && self.in_header {
            self.in_header = false;
        }
        self.line_empty = true;
        self.after_crlf = how == Eol::Crlf;
        self.state = DState::LineStart;
    }

    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.summary.size += bytes.len() as u64;
        if !bytes.is_empty() {
            self.line_empty = false;
        }
    }

    /// A line break then a space: how Exim keeps a bare LF or CR in the
    /// header section from ending the header.
    /// A bare CR does not end the header section even on an empty line
    /// (Exim writes it into the line); a bare LF does.
    fn folded_break(&mut self, out: &mut Vec<u8>, how: Eol) {
        let in_header = self.in_header;
        self.eol(out, how);
        if how == Eol::BareCr {
            self.in_header = in_header;
        }
        self.push(out, b" ");
        self.state = DState::Mid;
    }

    /// A bare LF was consumed (not a terminator).
    fn bare_lf(&mut self, out: &mut Vec<u8>) {
        if self.strict_crlf() {
            self.summary.bare_lf = true;
            if self.in_header {
                self.folded_break(out, Eol::BareLf);
            } else if self.dots {
                self.push(out, b" ");
                self.state = DState::Mid;
            } else {
                self.eol(out, Eol::BareLf);
            }
        } else {
            self.eol(out, Eol::BareLf);
        }
    }

    /// A CR followed by something other than LF (not consumed).
    fn bare_cr(&mut self, out: &mut Vec<u8>) {
        if self.first_line_rules() {
            if self.in_header {
                self.folded_break(out, Eol::BareCr);
            } else {
                // A line end, but the next byte is not at a line start: a
                // dot after a bare CR is data.
                self.eol(out, Eol::BareCr);
                self.state = DState::Mid;
            }
        } else {
            self.summary.bare_cr = true;
            self.push(out, b"\r");
            self.state = DState::Mid;
        }
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
                                self.bare_lf(out);
                            } else {
                                self.state = DState::Cr;
                            }
                        }
                    }
                }
                DState::Cr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.eol(out, Eol::Crlf);
                    } else {
                        // Reprocess this byte after the bare CR.
                        self.bare_cr(out);
                    }
                }
                DState::LineStart => {
                    let b = input[i];
                    let dot_ok = match self.rules {
                        LineRules::CrlfTerminator | LineRules::FirstLineCrlfEnd => self.after_crlf,
                        LineRules::FirstLine | LineRules::Lenient => true,
                    };
                    if b == b'.' && self.dots && dot_ok {
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
                        match self.rules {
                            LineRules::FirstLine | LineRules::FirstLineCrlfEnd
                                if self.strict_crlf() =>
                            {
                                // "dot, LF" in CRLF mode: not an end (Exim
                                // 4.97.1); the dot goes, the LF is a space.
                                self.summary.bare_lf = true;
                                self.push(out, b" ");
                                self.state = DState::Mid;
                            }
                            LineRules::CrlfTerminator | LineRules::FirstLineCrlfEnd => {
                                // Not a terminator: keep the line.
                                self.push(out, b".");
                                self.eol(out, Eol::BareLf);
                            }
                            LineRules::FirstLine | LineRules::Lenient => {
                                self.summary.bare_lf = true;
                                self.state = DState::Ended;
                                return i;
                            }
                        }
                    }
                    _ => self.state = DState::Mid,
                },
                DState::DotCr => {
                    if input[i] == b'\n' {
                        self.state = DState::Ended;
                        return i + 1;
                    }
                    // `.` CR x: the dot was a stuffing dot, the CR is bare.
                    self.bare_cr(out);
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

    /// End of a counted (BDAT) body: a pending CR ends the last line
    /// ([`LineRules::FirstLine`]) or is kept (older rules).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if matches!(self.state, DState::Cr | DState::DotCr) {
            if self.first_line_rules() {
                self.eol(out, Eol::BareCr);
            } else {
                self.summary.bare_cr = true;
                self.push(out, b"\r");
            }
        }
        self.state = DState::Ended;
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

    /// One message under Exim 4.97.1's rules, fed in one piece and byte by
    /// byte: (decoded body, bytes consumed).
    fn first_line(input: &[u8]) -> (Vec<u8>, usize, DataSummary) {
        let mut d = DataDecoder::data(LineEnding::Lf, LineRules::FirstLine);
        let (out, n) = decode_all(&mut d, input);
        let mut e = DataDecoder::data(LineEnding::Lf, LineRules::FirstLine);
        let mut out2 = Vec::new();
        let mut n2 = 0;
        for b in input.chunks(1) {
            if e.is_ended() {
                break;
            }
            n2 += e.decode(b, &mut out2);
        }
        assert_eq!((&out, n), (&out2, n2), "split input decodes differently");
        assert_eq!(d.is_ended(), n < input.len() || input.ends_with(b".\r\n"));
        (out, n, d.summary())
    }

    /// The SMTP-smuggling table: each line-ending mixture around a dot
    /// inside a CRLF message, followed by a would-be smuggled command. Only
    /// CRLF . CRLF ends the data; what Exim 4.97.1 stores for the rest.
    #[test]
    fn smuggling_mixtures_do_not_end_a_crlf_message() {
        let cases: &[(&[u8], &[u8])] = &[
            // LF.CRLF: the LF is a space.
            (b"a\n.\r\nMAIL", b"a .\nMAIL"),
            // CRLF.LF: the dot is unstuffed, the LF is a space.
            (b"a\r\n.\nMAIL", b"a\n MAIL"),
            // LF.LF
            (b"a\n.\nMAIL", b"a . MAIL"),
            // CR.CR: each bare CR ends a line, the dot is data.
            (b"a\r.\rMAIL", b"a\n.\nMAIL"),
            // CRLF.CR: the bare CR after the dot ends an empty line.
            (b"a\r\n.\rMAIL", b"a\n\nMAIL"),
            // CR.LF
            (b"a\r.\nMAIL", b"a\n. MAIL"),
            // NUL before and after the dot.
            (b"a\r\n\0.\r\nMAIL", b"a\n\0.\nMAIL"),
            (b"a\r\n.\0\r\nMAIL", b"a\n\0\nMAIL"),
            // A stuffed dot stays one dot.
            (b"a\r\n..\r\nMAIL", b"a\n.\nMAIL"),
        ];
        for (mid, want) in cases {
            let mut input = b"Subject: x\r\n\r\n".to_vec();
            input.extend_from_slice(mid);
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let (out, n, sum) = first_line(&input);
            let mut expect = b"Subject: x\n\n".to_vec();
            expect.extend_from_slice(want);
            expect.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expect),
                "{:?}",
                String::from_utf8_lossy(mid)
            );
            assert_eq!(
                &input[n..],
                b"QUIT\r\n",
                "{:?}",
                String::from_utf8_lossy(mid)
            );
            assert_eq!(sum.first_line_crlf, Some(true));
        }
    }

    #[test]
    fn lf_only_client_still_ends_with_lf_dot_lf() {
        // A local client writing Unix text (the first line ends in LF).
        let (out, n, sum) = first_line(b"Subject: x\n\nbody\n.\nQUIT\n");
        assert_eq!(out, b"Subject: x\n\nbody\n");
        assert_eq!(n, 19);
        assert_eq!(sum.first_line_crlf, Some(false));
        // ... and CRLF . CRLF too.
        let (out, _, _) = first_line(b"a: b\nc\r\n.\r\n");
        assert_eq!(out, b"a: b\nc\n");
    }

    #[test]
    fn remote_lf_only_client_ends_only_with_crlf_dot_crlf() {
        let mut d = DataDecoder::data(LineEnding::Lf, LineRules::FirstLineCrlfEnd);
        let input = b"Subject: x\n\nbody\n.\nMAIL FROM:<s@x>\n..two\n.\r\nend\r\n.\r\nQUIT\r\n";
        let (out, n) = decode_all(&mut d, input);
        assert_eq!(
            out,
            b"Subject: x\n\nbody\n.\nMAIL FROM:<s@x>\n..two\n.\nend\n"
        );
        assert_eq!(&input[n..], b"QUIT\r\n");
        assert_eq!(d.summary().first_line_crlf, Some(false));
        // A CRLF message reads exactly as under FirstLine.
        let mut d = DataDecoder::data(LineEnding::Lf, LineRules::FirstLineCrlfEnd);
        let (out, n) = decode_all(&mut d, b"S: x\r\n\r\na\n.\nb\r\n..c\r\n.\r\n");
        assert_eq!(out, b"S: x\n\na . b\n.c\n");
        assert_eq!(n, 23);
    }

    #[test]
    fn bare_lf_and_cr_in_the_header_section_fold() {
        // After a CRLF first line, a bare LF or CR inside a header is a
        // line break plus a space: a continuation, never a new header.
        let (out, _, sum) =
            first_line(b"Subject: a\r\nX-A: b\nc\r\nX-B: d\re\r\n\r\nbody\r\n.\r\n");
        assert_eq!(out, b"Subject: a\nX-A: b\n c\nX-B: d\n e\n\nbody\n");
        assert!(sum.bare_lf && sum.bare_cr);
        // A bare LF on an empty header line ends the header section, and
        // the body then starts with the space.
        let (out, _, _) = first_line(b"Subject: a\r\n\nbody\nmore\r\n.\r\n");
        assert_eq!(out, b"Subject: a\n\n body more\n");
    }

    #[test]
    fn bdat_first_line_and_bare_cr() {
        let mut d = DataDecoder::bdat(LineEnding::Lf, LineRules::FirstLine);
        let mut out = Vec::new();
        d.decode(b"To: a\r\n\r\nx\ry\nz\r", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"To: a\n\nx\ny\nz\n");
        assert_eq!(d.summary().first_line_crlf, Some(true));
        let mut d = DataDecoder::bdat(LineEnding::Lf, LineRules::FirstLine);
        d.decode(b"To: a\nFrom: b\r\n", &mut out);
        assert_eq!(d.summary().first_line_crlf, Some(false));
    }

    #[test]
    fn stuffer_never_sends_a_bare_cr_or_lf() {
        assert_eq!(
            DotStuffer::stuff_all(b"a\rb\nc\r\n.d\r.e\r\r\n"),
            b"a\r\nb\r\nc\r\n..d\r\n..e\r\n\r\n.\r\n"
        );
        // Split between a CR and its LF, and after a CR before a dot.
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        for part in [&b"x\r"[..], b"\n", b"y\r", b".z"] {
            s.encode(part, &mut out);
        }
        s.finish(&mut out);
        assert_eq!(out, b"x\r\ny\r\n..z\r\n.\r\n");
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
