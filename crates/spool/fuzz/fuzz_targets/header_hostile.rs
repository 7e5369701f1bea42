//! The `-H` writer and reader against hostile values and hostile files
//! (Exim's 21Nails spool issues, CVE-2020-28025/28026, CVE-2019-10149's
//! recipients; issue 18):
//!
//! 1. Envelope values straight from the fuzzer (newlines, NULs, `-flag`
//!    look-alikes, addresses shaped like extended recipient lines) are
//!    written; the file never holds a NUL, reads back with the same number
//!    of recipients and the same flags, and no recipient gains an errors
//!    address or DSN flags it did not have.
//! 2. That file is then damaged with fuzzer-chosen hostile lines (negative,
//!    huge or missing counts, NULs, truncation): the reader never panics,
//!    and whatever it still accepts survives a write/read round trip.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oxim_spool::{format_header, parse_header, Envelope, Header, IdFormat, MessageId, Recipient};

#[derive(Arbitrary, Debug)]
struct Input {
    login: String,
    sender: String,
    helo: Option<String>,
    host_name: Option<String>,
    ident: Option<String>,
    auth_id: Option<String>,
    acl: Vec<(String, String)>,
    extra: Vec<(String, String)>,
    recipients: Vec<(String, bool, Option<String>)>,
    headers: Vec<(char, String)>,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Replace line `n` (modulo the line count) by a hostile one.
    Replace(u16, Hostile),
    /// Insert a hostile line before line `n`.
    Insert(u16, Hostile),
    /// Delete line `n`.
    Delete(u16),
    /// Cut the file at byte `n`.
    Truncate(u16),
}

#[derive(Arbitrary, Debug)]
enum Hostile {
    Negative(u32),
    Huge,
    Number(u64),
    Nul(String),
    HeaderPrefix(u32, char),
    Flag(String),
    Text(String),
    Empty,
}

impl Hostile {
    fn line(&self) -> String {
        match self {
            Hostile::Negative(n) => format!("-{n}"),
            Hostile::Huge => "99999999999999999999999999".into(),
            Hostile::Number(n) => n.to_string(),
            Hostile::Nul(s) => format!("{s}\0{s}"),
            Hostile::HeaderPrefix(n, c) => format!("{n:03}{c} X: y"),
            Hostile::Flag(s) => format!("-{s}"),
            Hostile::Text(s) => s.clone(),
            Hostile::Empty => String::new(),
        }
    }
}

fuzz_target!(|input: Input| {
    let id = MessageId::from_parts(IdFormat::Classic, 1_700_000_000, 1234, 5);
    let mut env = Envelope::new(id, input.sender);
    env.login = input.login;
    env.helo_name = input.helo;
    env.host_name = input.host_name;
    env.ident = input.ident;
    env.auth_id = input.auth_id;
    env.acl_vars = input.acl.into_iter().take(4).collect();
    // Unknown flag lines kept from a file read earlier: oxim never makes
    // their names from input, so only their values are hostile here.
    env.extra = input
        .extra
        .into_iter()
        .take(4)
        .map(|(n, v)| (format!("x{n}"), v))
        .collect();
    env.recipients = input
        .recipients
        .into_iter()
        .take(16)
        .map(|(a, done, errors_to)| Recipient {
            done,
            errors_to,
            ..Recipient::new(a)
        })
        .collect();
    let headers: Vec<Header> = input
        .headers
        .into_iter()
        .take(8)
        .map(|(kind, text)| Header { kind, text })
        .collect();

    // 1. Hostile values.
    let bytes = format_header(&env, &headers);
    assert!(!bytes.contains(&0), "NUL written");
    let (env2, h2) = parse_header(&bytes).expect("own file refused");
    assert_eq!(env2.recipients.len(), env.recipients.len());
    assert_eq!(h2.len(), headers.len());
    assert!(!env2.local && !env2.localerror && !env2.dont_deliver && !env2.manual_thaw);
    assert!(env2.frozen.is_none() && env2.body_linecount.is_none());
    for (a, b) in env.recipients.iter().zip(&env2.recipients) {
        assert_eq!(b.dsn_flags, 0);
        assert_eq!(b.orcpt, None);
        // (An empty errors address is no errors address.)
        let had = a.errors_to.as_deref().is_some_and(|e| !e.is_empty());
        assert_eq!(had, b.errors_to.is_some(), "errors_to forged or lost");
    }

    // 2. Hostile files.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut cut: Option<usize> = None;
    for e in input.edits.iter().take(8) {
        let n = lines.len().max(1);
        match e {
            Edit::Replace(i, h) => lines[usize::from(*i) % n] = h.line(),
            Edit::Insert(i, h) => lines.insert(usize::from(*i) % n, h.line()),
            Edit::Delete(i) => {
                if lines.len() > 1 {
                    lines.remove(usize::from(*i) % n);
                }
            }
            Edit::Truncate(i) => cut = Some(usize::from(*i)),
        }
    }
    let mut damaged = lines.join("\n").into_bytes();
    if let Some(c) = cut {
        damaged.truncate(c);
    }
    if let Ok((e, h)) = parse_header(&damaged) {
        assert!(!damaged.contains(&0), "a file with a NUL was accepted");
        let again = format_header(&e, &h);
        let (e2, h2) = parse_header(&again).expect("re-read of a written file");
        assert_eq!(e, e2);
        assert_eq!(h, h2);
    }
});
