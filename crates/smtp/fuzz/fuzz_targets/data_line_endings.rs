//! The DATA/BDAT reader on line-ending mixtures (SMTP smuggling,
//! CVE-2023-51766 class). The input is mapped onto an alphabet rich in CR,
//! LF, `.` and NUL so that mixtures like `<LF>.<CR><LF>` are common, then
//! decoded under Exim 4.97.1's rules (or the remote-client variant that
//! also requires CRLF . CRLF of LF-only messages; bit 0 of the first byte)
//! in one piece and split at a fuzzer-chosen point (the other bits).
//! Checks:
//!
//! * the split does not change the result;
//! * a message whose first line ended in CRLF (any message, for the remote
//!   variant) ends only at `CRLF . CRLF`;
//! * no CR is left in the decoded body (bare CRs are line ends);
//! * the smtp transport's encoding of the decoded body holds no bare CR or
//!   LF and no early terminator, and decodes back to the same body;
//! * BDAT: the same, without dots.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::{DataDecoder, DotStuffer, LineEnding, LineRules};

const ALPHABET: &[u8] = b"\r\n.\r\n.\0a: \r\n";

fn decode(input: &[u8], cut: usize, bdat: bool, rules: LineRules) -> (Vec<u8>, usize, DataDecoder) {
    let mut d = if bdat {
        DataDecoder::bdat(LineEnding::Lf, rules)
    } else {
        DataDecoder::data(LineEnding::Lf, rules)
    };
    let mut out = Vec::new();
    let (a, b) = input.split_at(cut.min(input.len()));
    let mut n = d.decode(a, &mut out);
    if n == a.len() {
        n += d.decode(b, &mut out);
    }
    (out, n, d)
}

fn check_wire(wire: &[u8], dots: bool) {
    for (i, &c) in wire.iter().enumerate() {
        if c == b'\r' {
            assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR sent");
        }
        if c == b'\n' {
            assert!(i > 0 && wire[i - 1] == b'\r', "bare LF sent");
        }
    }
    if dots {
        let end = wire.len() - 3;
        assert!(
            !wire[..end].windows(5).any(|w| w == b"\r\n.\r\n") && !wire.starts_with(b".\r\n")
                || end == 0,
            "early terminator"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let input: Vec<u8> = rest
        .iter()
        .map(|&b| if b & 0x80 != 0 { ALPHABET[(b & 0x0f) as usize % ALPHABET.len()] } else { b })
        .collect();
    let rules = if ctl & 1 == 0 {
        LineRules::FirstLine
    } else {
        LineRules::FirstLineCrlfEnd
    };
    let cut = usize::from(ctl >> 1) * input.len() / 127;

    // DATA
    let (whole, n_whole, d) = decode(&input, input.len(), false, rules);
    let (split, n_split, _) = decode(&input, cut, false, rules);
    assert_eq!((&whole, n_whole), (&split, n_split), "split changed the result");
    assert!(!whole.contains(&b'\r'), "CR left in the body");
    if d.is_ended() {
        let consumed = &input[..n_whole];
        if d.summary().first_line_crlf == Some(true) || rules == LineRules::FirstLineCrlfEnd {
            assert!(
                consumed.ends_with(b"\r\n.\r\n") || consumed == b".\r\n",
                "ended without CRLF . CRLF"
            );
        } else {
            assert!(consumed.ends_with(b".\r\n") || consumed.ends_with(b".\n"));
        }
        // What the smtp transport would send on.
        let wire = DotStuffer::stuff_all(&whole);
        check_wire(&wire, true);
        let mut again = DataDecoder::data(LineEnding::Lf, rules);
        let mut out = Vec::new();
        assert_eq!(again.decode(&wire, &mut out), wire.len());
        assert!(again.is_ended());
        assert_eq!(out, whole, "relayed body differs");
    }

    // BDAT
    let (mut body, n, mut d) = decode(&input, cut, true, rules);
    assert_eq!(n, input.len());
    d.finish(&mut body);
    assert!(!body.contains(&b'\r'), "CR left in a BDAT body");
    let mut wire = Vec::new();
    let mut enc = DotStuffer::crlf_only();
    enc.encode(&body, &mut wire);
    enc.finish(&mut wire);
    check_wire(&wire, false);
});
