//! Property tests: split invariance, no panics on arbitrary input, DATA
//! encode/decode roundtrip, reply parsing on arbitrary splits.

mod common;

use common::{exim_extensions, Driver};
use oxim_smtp::{
    parse_path_arg, DataDecoder, DotStuffer, Extensions, LineEnding, LineRules, Reply, ReplyParser,
    ServerConfig,
};
use proptest::prelude::*;

fn ext() -> Extensions {
    Extensions {
        chunking: true,
        starttls: true,
        auth: vec!["PLAIN".into()],
        dsn: true,
        smtputf8: true,
        ..exim_extensions()
    }
}

fn lenient(max_line_len: usize) -> ServerConfig {
    ServerConfig {
        enforce_sync: false,
        max_line_len,
        ..ServerConfig::default()
    }
}

/// Feed `input` in the given pieces; return (output, events, body).
fn run_split(cfg: &ServerConfig, input: &[u8], cuts: &[usize]) -> (String, Vec<String>, Vec<u8>) {
    let mut d = Driver::new(cfg.clone(), ext());
    let mut last = 0;
    for &c in cuts {
        let c = c.clamp(last, input.len());
        d.feed(&input[last..c]);
        last = c;
    }
    d.feed(&input[last..]);
    (d.output(), d.seen.events, d.seen.body)
}

const CORPUS: &str = "EHLO client.example\r\n\
    MAIL FROM:<a@b.example> SIZE=20 BODY=8BITMIME\r\n\
    RCPT TO:<c@d.example>\r\n\
    RCPT TO:<bad@d.example>\r\n\
    DATA\r\n\
    ..stuffed\r\nbare\nlf\r\n\r\n.\r\n\
    NOOP\r\n\
    FOO\r\n\
    MAIL FROM:<>\r\n\
    RCPT TO:<\"q u\"@[127.0.0.1]>\r\n\
    BDAT 5\r\nab\r\nc\
    BDAT 3 LAST\r\nxyz\
    VRFY someone\r\n\
    RSET\r\n\
    AUTH PLAIN\r\n\
    dGVzdA==\r\n\
    QUIT\r\n";

/// The same input split at every byte boundary produces the same events,
/// body and output as when it arrives in one piece.
#[test]
fn split_at_every_boundary_is_invariant() {
    let cfg = lenient(16384);
    let input = CORPUS.as_bytes();
    let whole = run_split(&cfg, input, &[]);
    assert!(whole.0.contains("250 OK id="), "{}", whole.0);
    assert!(whole
        .0
        .ends_with("221 myhost.test.ex closing connection\r\n"));
    for k in 0..=input.len() {
        assert_eq!(run_split(&cfg, input, &[k]), whole, "split at {k}");
    }
}

/// Over-long lines are detected the same way however the input is split.
#[test]
fn long_line_split_invariance() {
    let cfg = lenient(16);
    let input =
        b"NOOP 0123456789abcdef\r\nNOOP\r\nNOOP 0123456789\r\nNOOP 0123456789abcdefghij\nQUIT\r\n";
    let whole = run_split(&cfg, input, &[]);
    assert_eq!(
        whole.0.split_once("\r\n").unwrap().1,
        "500 Command line too long\r\n250 OK\r\n250 OK\r\n500 Command line too long\r\n\
         221 myhost.test.ex closing connection\r\n"
    );
    for k in 0..=input.len() {
        for j in k..=input.len().min(k + 7) {
            assert_eq!(run_split(&cfg, input, &[k, j]), whole, "split at {k},{j}");
        }
    }
}

fn lf_normalize(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 1);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            out.push(b'\n');
            i += 2;
        } else if b[i] == b'\r' {
            // The stuffer sends a bare CR as a line end.
            out.push(b'\n');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

fn chunks(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cs: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cs.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cs {
        out.push(data[last..c].to_vec());
        last = c;
    }
    out.push(data[last..].to_vec());
    out
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Bias towards the interesting bytes.
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            3 => Just(b'.'),
            3 => Just(b'\n'),
            2 => Just(b'\r'),
            2 => Just(b'a'),
        ],
        0..300,
    )
}

fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO x\r\n".to_vec()),
        Just(b"HELO y\r\n".to_vec()),
        Just(b"MAIL FROM:<a@b>\r\n".to_vec()),
        Just(b"MAIL FROM:<> SIZE=10\r\n".to_vec()),
        Just(b"RCPT TO:<c@d>\r\n".to_vec()),
        Just(b"RCPT TO:<bad@d>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 4\r\n".to_vec()),
        Just(b"BDAT 2 LAST\r\n".to_vec()),
        Just(b".\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\n".to_vec()),
        Just(b"AUTH PLAIN\r\n".to_vec()),
        // No STARTTLS: plaintext pipelined after it is discarded on purpose,
        // which depends on how the input was split.
        Just(b"QUIT\r\n".to_vec()),
        body_strategy(),
    ]
}

/// Parse everything the server wrote as replies; it must be well formed.
fn assert_wellformed(out: &str) {
    let mut p = ReplyParser::new();
    p.feed(out.as_bytes());
    loop {
        match p.next_reply() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("server wrote a malformed reply: {e}: {out:?}"),
        }
    }
    assert_eq!(p.buffered(), 0, "trailing partial reply in {out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn session_split_invariance(lines in prop::collection::vec(line_strategy(), 0..25),
                                cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let input: Vec<u8> = lines.concat();
        let cfg = lenient(64);
        let whole = run_split(&cfg, &input, &[]);
        let mut cs: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cs.sort_unstable();
        let split = run_split(&cfg, &input, &cs);
        prop_assert_eq!(&split, &whole);
        assert_wellformed(&whole.0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(prefix in 0usize..4,
                                   junk in prop::collection::vec(any::<u8>(), 0..600),
                                   cuts in prop::collection::vec(any::<usize>(), 0..6),
                                   sync in any::<bool>()) {
        let prefixes: [&[u8]; 4] = [
            b"",
            b"EHLO x\r\n",
            b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
            b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 100\r\n",
        ];
        let mut input = prefixes[prefix].to_vec();
        input.extend_from_slice(&junk);
        let cfg = ServerConfig { enforce_sync: sync, max_line_len: 40, ..ServerConfig::default() };
        let mut cs: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cs.sort_unstable();
        let (out, _, _) = run_split(&cfg, &input, &cs);
        assert_wellformed(&out);
    }

    #[test]
    fn dot_stuffing_roundtrip(body in body_strategy(),
                              enc_cuts in prop::collection::vec(any::<usize>(), 0..5),
                              dec_cuts in prop::collection::vec(any::<usize>(), 0..5),
                              rules in 0u8..4) {
        let mut stuffer = DotStuffer::new();
        let mut wire = Vec::new();
        for c in chunks(&body, &enc_cuts) {
            stuffer.encode(&c, &mut wire);
        }
        stuffer.finish(&mut wire);
        prop_assert!(wire.ends_with(b".\r\n"));
        // Every line on the wire ends in CRLF, and no line is a lone dot
        // before the terminator.
        prop_assert!(!wire[..wire.len() - 3].windows(5).any(|w| w == b"\r\n.\r\n"));
        let rules = [
            LineRules::FirstLine,
            LineRules::FirstLineCrlfEnd,
            LineRules::Lenient,
            LineRules::CrlfTerminator,
        ][rules as usize];
        let mut dec = DataDecoder::data(LineEnding::Lf, rules);
        let mut out = Vec::new();
        let mut consumed = 0;
        for c in chunks(&wire, &dec_cuts) {
            consumed += dec.decode(&c, &mut out);
        }
        prop_assert!(dec.is_ended());
        prop_assert_eq!(consumed, wire.len());
        prop_assert_eq!(out, lf_normalize(&body));
        prop_assert_eq!(dec.summary().bare_lf, false);
    }

    #[test]
    fn reply_parser_arbitrary_splits(replies in prop::collection::vec(
            (200u16..600, prop::collection::vec("[ -~]{0,40}", 1..5)), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let replies: Vec<Reply> = replies.into_iter().map(|(c, l)| Reply::from_lines(c, l)).collect();
        let wire: Vec<u8> = replies.iter().flat_map(Reply::to_bytes).collect();
        let mut p = ReplyParser::new();
        let mut got = Vec::new();
        for c in chunks(&wire, &cuts) {
            p.feed(&c);
            while let Some(r) = p.next_reply().unwrap() {
                got.push(r);
            }
        }
        prop_assert_eq!(got, replies);
        prop_assert!(!p.in_reply());
    }

    #[test]
    fn reply_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut p = ReplyParser::new();
        p.feed(&data);
        for _ in 0..200 {
            match p.next_reply() {
                Ok(None) => break,
                Ok(Some(r)) => prop_assert!((200..600).contains(&r.code)),
                Err(_) => {}
            }
        }
    }

    #[test]
    fn address_parser_never_panics(s in "\\PC{0,80}", null in any::<bool>()) {
        let _ = parse_path_arg(&s, null);
    }

    #[test]
    fn valid_addresses_roundtrip(local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[a-z0-9]{1,5}){0,2}",
                                 labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..4),
                                 params in "( [A-Z]{1,5}=[a-z0-9]{1,5}){0,3}") {
        let domain = labels.join(".");
        let arg = format!("<{local}@{domain}>{params}");
        let p = parse_path_arg(&arg, false).unwrap();
        let address = format!("{local}@{domain}");
        prop_assert_eq!(p.path.address(), address.as_str());
        prop_assert_eq!(p.path.domain(), Some(domain.as_str()));
        prop_assert_eq!(p.rest, params.trim_start());
    }
}

fn extensions_strategy() -> impl Strategy<Value = Extensions> {
    (
        prop::option::of(0u64..1_000_000_000),
        prop::collection::vec(any::<bool>(), 13),
        prop::collection::btree_set("[A-Z][A-Z0-9-]{0,10}", 0..3),
    )
        .prop_map(|(size, f, auth)| Extensions {
            size,
            eight_bit_mime: f[0],
            dsn: f[1],
            etrn: f[2],
            vrfy: f[3],
            expn: f[4],
            pipelining: f[5],
            pipe_connect: f[11],
            auth: auth.into_iter().collect(),
            chunking: f[6],
            starttls: f[7],
            prdr: f[8],
            smtputf8: f[9],
            tx_token: f[12],
            help: f[10],
        })
}

proptest! {
    /// What the server advertises is exactly what a client parses back.
    #[test]
    fn ehlo_reply_roundtrips_through_capabilities(ext in extensions_strategy()) {
        let r = oxim_smtp::ehlo_reply("mx.example", "Hello x [1.2.3.4]", &ext);
        let mut p = ReplyParser::new();
        p.feed(&r.to_bytes());
        let parsed = p.next_reply().unwrap().unwrap();
        prop_assert_eq!(&parsed, &r);
        let c = oxim_smtp::EhloCapabilities::from_reply(&parsed);
        prop_assert_eq!(c.size_advertised, ext.size.is_some());
        prop_assert_eq!(c.size, ext.size.filter(|&n| n > 0));
        prop_assert_eq!(
            (c.eight_bit_mime, c.dsn, c.etrn, c.vrfy, c.expn, c.pipelining),
            (ext.eight_bit_mime, ext.dsn, ext.etrn, ext.vrfy, ext.expn, ext.pipelining)
        );
        prop_assert_eq!(
            (c.chunking, c.starttls, c.prdr, c.smtputf8, c.help),
            (ext.chunking, ext.starttls, ext.prdr, ext.smtputf8, ext.help)
        );
        prop_assert_eq!(c.pipe_connect, ext.pipelining && ext.pipe_connect);
        prop_assert_eq!(c.tx_token, ext.tx_token);
        prop_assert_eq!(c.auth, ext.auth);
        prop_assert!(c.other.is_empty());
    }
}
