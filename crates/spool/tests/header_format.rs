//! `-H` format: round trips, known layouts, and robustness on bad input.

use oxim_spool::*;
use proptest::prelude::*;

fn id() -> MessageId {
    "10HmaX-0005vi-00".parse().unwrap()
}

fn sample() -> (Envelope, Vec<Header>) {
    let mut env = Envelope::new(id(), "CALLER@myhost.test.ex");
    env.login = "CALLER".into();
    env.uid = 1000;
    env.gid = 1000;
    env.received_time = 1_700_000_000;
    env.received_time_usec = 123_456;
    env.protocol = Some("esmtp".into());
    env.host_address = Some("127.0.0.1".into());
    env.host_port = Some(40000);
    env.host_name = Some("localhost".into());
    env.helo_name = Some("myhost.test.ex".into());
    env.interface_address = Some("127.0.0.1".into());
    env.interface_port = Some(1225);
    env.body_linecount = Some(1);
    env.tfo = oxim_net::ServerTfo::CookieWithData;
    env.recipients = vec![
        Recipient::new("a@test.ex"),
        Recipient::new("\"name with spaces\"@test.ex"),
    ];
    let headers = vec![
        Header::new("Received: from localhost ([127.0.0.1])\n\tby myhost.test.ex\n"),
        Header::new("Subject: test\n"),
    ];
    (env, headers)
}

#[test]
fn layout_matches_exim() {
    let (env, headers) = sample();
    let text = String::from_utf8(format_header(&env, &headers)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "10HmaX-0005vi-00-H");
    assert_eq!(lines[1], "CALLER 1000 1000");
    assert_eq!(lines[2], "<CALLER@myhost.test.ex>");
    assert_eq!(lines[3], "1700000000 0");
    assert!(lines.contains(&"-host_address 127.0.0.1.40000"));
    assert!(lines.contains(&"-received_protocol esmtp"));
    assert!(lines.contains(&"-helo_name myhost.test.ex"));
    let xx = lines.iter().position(|l| *l == "XX").unwrap();
    assert_eq!(lines[xx + 1], "2");
    assert_eq!(lines[xx + 2], "a@test.ex");
    assert_eq!(lines[xx + 3], "\"name with spaces\"@test.ex");
    assert_eq!(lines[xx + 4], "");
    // 58 = length of the two-line Received header including newlines.
    assert_eq!(lines[xx + 5], "058P Received: from localhost ([127.0.0.1])");
    assert_eq!(lines[xx + 6], "\tby myhost.test.ex");
    assert_eq!(lines[xx + 7], "014  Subject: test");
}

#[test]
fn roundtrip_sample() {
    let (env, headers) = sample();
    let (env2, headers2) = parse_header(&format_header(&env, &headers)).unwrap();
    assert_eq!(env2, env);
    assert_eq!(headers2, headers);
}

#[test]
fn body_8bitmime_is_an_oxim_flag_line_and_roundtrips() {
    let (mut env, headers) = sample();
    let text = String::from_utf8(format_header(&env, &headers)).unwrap();
    assert!(!text.contains("-oxim_8bitmime"));
    env.body_8bitmime = true;
    let bytes = format_header(&env, &headers);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.lines().any(|l| l == "-oxim_8bitmime"), "{text}");
    let (env2, _) = parse_header(&bytes).unwrap();
    assert!(env2.body_8bitmime);
    assert_eq!(env2, env);
}

#[test]
fn done_recipients_go_through_the_tree() {
    let (mut env, headers) = sample();
    for a in ["c@x", "b@x", "d@x", "e@x", "f@x"] {
        env.recipients.push(Recipient::new(a));
    }
    env.recipients[0].done = true;
    env.recipients[3].done = true;
    env.recipients[5].done = true;
    env.non_recipients = vec!["child@x".into()];
    let bytes = format_header(&env, &headers);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("\nXX\n"));
    let (env2, _) = parse_header(&bytes).unwrap();
    assert_eq!(env2, env);
}

#[test]
fn parses_exim_written_file() {
    // Shape of a file written by Exim 4.9x for a locally submitted message.
    let text = "10HmaX-0005vi-00-H\nCALLER 1169 1169\n<CALLER@test.ex>\n1699999999 0\n\
-received_time_usec .000123\n-ident CALLER\n-received_protocol local\n-aclc _x 3\nabc\n\
-body_linecount 1\n-max_received_linelength 12\n-local\n-frozen 1700000001\nNY done@x\nNN alsodone@x\n2\n\
done@x\nabc@x.y.z orcpt@x 7,4 errs@x 6,-1#3\n\n\
015* X-Old: deleted\n056P Received: from CALLER by test.ex with local (Exim x.yz)\n";
    let (env, headers) = parse_header(text.as_bytes()).unwrap();
    assert_eq!(env.ident.as_deref(), Some("CALLER"));
    assert_eq!(env.received_time_usec, 123);
    assert_eq!(env.acl_vars, vec![("c_x".to_string(), "abc".to_string())]);
    assert_eq!(env.frozen, Some(1_700_000_001));
    assert!(env.local);
    assert_eq!(env.recipients.len(), 2);
    assert!(env.recipients[0].done);
    assert_eq!(env.recipients[1].address, "abc@x.y.z");
    assert_eq!(env.recipients[1].orcpt.as_deref(), Some("orcpt@x"));
    assert_eq!(env.recipients[1].errors_to.as_deref(), Some("errs@x"));
    assert_eq!(env.recipients[1].dsn_flags, 4);
    assert!(!env.recipients[1].done);
    assert_eq!(env.non_recipients, vec!["alsodone@x".to_string()]);
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[0].kind, '*');
    assert!(!headers[0].is_live());
    assert_eq!(headers[1].kind, 'P');
    assert_eq!(header_size(&headers), 56);
}

/// Found by fuzzing: an address with a malformed port used to gain a
/// ".0" port when written back.
#[test]
fn odd_host_addresses_roundtrip() {
    for value in [
        "127.0.0.1.4000\u{7}x",
        "127.0.0.1",
        "::1.25",
        "1.2.3.4.x",
        "host.example.25",
    ] {
        let text = format!("10HmaX-0005vi-00-H\nx 0 0\n<>\n1 0\n-host_address {value}\nXX\n0\n\n");
        let (env, h) = parse_header(text.as_bytes()).unwrap();
        let (env2, _) = parse_header(&format_header(&env, &h)).unwrap();
        assert_eq!(env2, env, "{value}");
    }
    let (env, _) =
        parse_header(b"10HmaX-0005vi-00-H\nx 0 0\n<>\n1 0\n-host_address ::1.25\nXX\n0\n\n")
            .unwrap();
    assert_eq!(
        (env.host_address.as_deref(), env.host_port),
        (Some("::1"), Some(25))
    );
}

/// Found by fuzzing: ACL variable names with spaces, and the order of
/// non-recipients, must survive a format/parse round trip.
#[test]
fn acl_names_and_tree_order_roundtrip() {
    let text = b"10HmaX-0005vi-00-H\nx 0 0\n<>\n1 0\n-aclc a b 3\nabc\n-aclm 4 2\n24\nYY m@x\nNN \x12@x\nNN z@x\n0\n\n";
    let (env, h) = parse_header(text).unwrap();
    assert_eq!(
        env.acl_vars,
        vec![
            ("ca b".to_string(), "abc".to_string()),
            ("m4".to_string(), "24".to_string())
        ]
    );
    assert_eq!(env.non_recipients, ["\u{12}@x", "m@x", "z@x"]);
    let (env2, _) = parse_header(&format_header(&env, &h)).unwrap();
    assert_eq!(env2, env);
}

#[test]
fn errors_name_the_line() {
    let bad = b"10HmaX-0005vi-00-H\nCALLER x 1\n";
    let e = parse_header(bad).unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, FormatErrorKind::BadOwnerLine);
    let e = parse_header(b"garbage\n").unwrap_err();
    assert_eq!(e.kind, FormatErrorKind::BadIdLine);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let (env, headers) = sample();
    let full = format_header(&env, &headers);
    for cut in 0..full.len() {
        // A cut exactly between two header lines is a valid, shorter file.
        let r = parse_header(&full[..cut]);
        if let Ok((e, h)) = r {
            assert_eq!(e, env);
            assert!(h.len() < headers.len());
        }
    }
}

fn addr() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.\" _+-]{1,20}@[a-z0-9.-]{1,15}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[!-~][ -~]{0,30}")
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (0u64..1 << 40, 0u64..1 << 30, 0u64..2000),
        "[a-z]{0,10}",
        any::<(u32, u32)>(),
        prop_oneof![Just(String::new()), addr()],
        (any::<u32>(), 0u32..1_000_000, any::<u32>()),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        proptest::option::of(any::<u16>()),
        (
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            any::<bool>(),
        ),
        proptest::collection::vec(
            (
                addr(),
                any::<bool>(),
                opt_text(),
                proptest::option::of(addr()),
                0u32..16,
                -1i32..5,
            ),
            0..8,
        ),
        proptest::collection::vec(("[cm][a-z0-9_]{1,5}", "(?s)[^\\x00]{0,40}"), 0..3),
        proptest::collection::vec(("[a-z_]{1,12}x", "[ -~]{0,20}"), 0..3),
        proptest::option::of(any::<std::net::IpAddr>()),
    )
        .prop_map(
            |(
                t,
                login,
                (uid, gid),
                sender,
                (rt, usec, warn),
                (proto, ident, host, helo),
                port,
                (lines, local, frozen),
                rcpts,
                acl,
                extra,
                ip,
            )| {
                let id = MessageId::from_parts(IdFormat::Classic, t.0, t.1, t.2);
                let mut e = Envelope::new(id, sender);
                e.login = login;
                e.uid = uid;
                e.gid = gid;
                e.received_time = u64::from(rt);
                e.received_time_usec = usec;
                e.warning_count = warn;
                e.protocol = proto;
                e.ident = ident;
                e.host_name = host;
                e.host_address = ip.map(|ip| ip.to_string());
                e.host_port = e.host_address.as_ref().and(port);
                e.helo_name = helo;
                e.body_linecount = lines;
                e.local = local;
                e.frozen = frozen.then_some(12345);
                let mut seen = std::collections::HashSet::new();
                e.recipients = rcpts
                    .into_iter()
                    .filter(|r| seen.insert(r.0.clone()))
                    .map(|(a, done, orcpt, errors_to, dsn, pno)| Recipient {
                        address: a,
                        done,
                        orcpt,
                        errors_to,
                        dsn_flags: dsn,
                        pno,
                    })
                    .collect();
                e.acl_vars = acl;
                e.extra = extra;
                e
            },
        )
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    proptest::collection::vec(
        (
            prop_oneof![Just('*'), Just('P'), Just(' '), Just('F')],
            "[A-Za-z-]{1,10}: [ -~]{0,50}(\n\t[ -~]{1,20}){0,2}\n",
        )
            .prop_map(|(kind, text)| Header { kind, text }),
        0..6,
    )
}

#[test]
fn careless_values_still_give_a_readable_file() {
    let (mut env, _) = sample();
    env.sender = "evil\n-local".into();
    env.recipients[0].address = "a\r\nb@x".into();
    env.recipients[0].done = true;
    env.extra.push(("x\ny".into(), "1\n2".into()));
    env.received_time_usec = 5_000_000;
    let headers = vec![
        Header {
            kind: 'é',
            text: "X-No-Newline: 1".into(),
        },
        Header::new("Subject: ok\n"),
    ];
    let (env2, h2) = parse_header(&format_header(&env, &headers)).unwrap();
    assert_eq!(env2.sender, "evil -local");
    assert!(!env2.local);
    assert_eq!(env2.recipients[0].address, "a\r b@x");
    assert!(env2.recipients[0].done);
    assert_eq!(env2.received_time_usec, 999_999);
    assert_eq!(
        h2[0],
        Header {
            kind: ' ',
            text: "X-No-Newline: 1\n".into()
        }
    );
    assert_eq!(h2[1], headers[1]);
}

/// Hand-made `-H` files with hostile fields (the class of Exim's 21Nails
/// spool_read_header issues, CVE-2020-28025/28026 and relatives): each is
/// refused with the line it is on, nothing is trusted or allocated from it.
#[test]
fn hostile_header_files_are_refused() {
    let (env, headers) = sample();
    let good = String::from_utf8(format_header(&env, &headers)).unwrap();
    parse_header(good.as_bytes()).unwrap();
    let count_line = "\n2\na@test.ex\n";
    assert!(good.contains(count_line));
    let cases: Vec<(&str, String, FormatErrorKind)> = vec![
        (
            "negative recipient count",
            good.replace(count_line, "\n-1\na@test.ex\n"),
            FormatErrorKind::BadRecipientCount,
        ),
        (
            "recipient count past usize",
            good.replace(count_line, "\n99999999999999999999999\na@test.ex\n"),
            FormatErrorKind::BadRecipientCount,
        ),
        (
            "huge recipient count, few lines",
            good.replace(count_line, "\n4000000000\na@test.ex\n"),
            FormatErrorKind::Truncated("recipient"),
        ),
        (
            "negative header length",
            good.replace("014  Subject: test", "-14  Subject: test"),
            FormatErrorKind::BadHeaderPrefix,
        ),
        (
            "header length past the file",
            good.replace("014  Subject: test", "999999999  Subject: test"),
            FormatErrorKind::ShortHeader,
        ),
        (
            "negative numeric flag",
            good.replace("-body_linecount 1", "-body_linecount -1"),
            FormatErrorKind::BadFlagValue("body_linecount".into()),
        ),
        (
            "ACL variable longer than the file",
            good.replace("-body_linecount 1\n", "-aclm 0 99999999999\nx\n"),
            FormatErrorKind::Truncated("ACL variable value"),
        ),
        (
            "missing sender line",
            good.replacen("<CALLER@myhost.test.ex>\n", "", 1),
            FormatErrorKind::BadSenderLine,
        ),
        (
            "missing uid",
            good.replacen("CALLER 1000 1000\n", "CALLER 1000\n", 1),
            FormatErrorKind::BadOwnerLine,
        ),
        (
            "negative uid",
            good.replacen("CALLER 1000 1000\n", "CALLER -1 1000\n", 1),
            FormatErrorKind::BadOwnerLine,
        ),
        (
            "NUL in the sender",
            good.replacen("<CALLER@myhost.test.ex>", "<CALLER\0@myhost.test.ex>", 1),
            FormatErrorKind::Nul,
        ),
        (
            "NUL in a recipient",
            good.replacen("a@test.ex\n", "a@test.ex\0|/bin/sh\n", 1),
            FormatErrorKind::Nul,
        ),
        (
            "NUL in a header",
            good.replacen("Subject: test", "Subject: te\0t", 1),
            FormatErrorKind::Nul,
        ),
        (
            "tree with more nodes announced than present",
            good.replacen("XX\n", "YY a@test.ex\n", 1),
            FormatErrorKind::BadTreeLine,
        ),
    ];
    for (what, text, kind) in cases {
        assert_ne!(text, good, "{what}: case did not change the file");
        match parse_header(text.as_bytes()) {
            Err(e) => assert_eq!(e.kind, kind, "{what}: {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}

/// No value the envelope holds can add a line to the file: newlines become
/// spaces, NULs `?`, and an address shaped like an extended recipient line
/// cannot give itself an errors address or DSN flags.
#[test]
fn values_cannot_forge_lines_or_fields() {
    let (mut env, _) = sample();
    env.helo_name = Some("x\n-local\n-frozen 1".into());
    env.host_name = Some("h\0ost".into());
    env.acl_vars = vec![("m0".into(), "a\0b\n-local".into())];
    env.recipients = vec![Recipient::new(
        "victim@test.ex attacker@evil.example 20,0#1",
    )];
    let headers = vec![Header::new("Subject: a\0b\n")];
    let bytes = format_header(&env, &headers);
    assert!(!bytes.contains(&0));
    let (env2, h2) = parse_header(&bytes).unwrap();
    assert!(!env2.local && env2.frozen.is_none());
    assert_eq!(env2.helo_name.as_deref(), Some("x -local -frozen 1"));
    assert_eq!(env2.host_name.as_deref(), Some("h?ost"));
    assert_eq!(env2.acl_vars[0].1, "a?b\n-local");
    assert_eq!(env2.recipients, env.recipients);
    assert_eq!(env2.recipients[0].errors_to, None);
    assert_eq!(h2[0].text, "Subject: a?b\n");
}

proptest! {
    #[test]
    fn any_envelope_text_gives_a_parseable_file(
        sender in "\\PC{0,20}", login in "\\PC{0,10}", rcpt in "\\PC{0,20}",
        helo in "\\PC{0,20}", extra in ("\\PC{0,10}", "\\PC{0,10}"), text in "\\PC{0,30}",
        kind in any::<char>(), done in any::<bool>(),
    ) {
        let (mut env, _) = sample();
        env.sender = sender;
        env.login = login;
        env.helo_name = Some(helo);
        env.extra.push(extra);
        env.recipients.push(Recipient { done, ..Recipient::new(rcpt) });
        let hs = vec![Header { kind, text }];
        let (env2, h2) = parse_header(&format_header(&env, &hs)).unwrap();
        prop_assert_eq!(env2.recipients.len(), env.recipients.len());
        prop_assert_eq!(h2.len(), 1);
    }

    #[test]
    fn roundtrip(env in envelope(), hs in headers()) {
        let bytes = format_header(&env, &hs);
        let (env2, hs2) = parse_header(&bytes).unwrap();
        prop_assert_eq!(env2, env);
        prop_assert_eq!(hs2, hs);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_header(&data);
    }

    #[test]
    fn mutated_files_never_panic(env in envelope(), hs in headers(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = format_header(&env, &hs);
        if !bytes.is_empty() {
            let i = pos.index(bytes.len());
            bytes[i] = byte;
        }
        // Whatever parses must survive a format/parse round trip.
        if let Ok((e, h)) = parse_header(&bytes) {
            let (e2, h2) = parse_header(&format_header(&e, &h)).unwrap();
            prop_assert_eq!(e2, e);
            prop_assert_eq!(h2, h);
        }
    }
}

#[test]
fn tfo_outcome_is_typed_on_the_spool() {
    use oxim_net::ServerTfo;
    let (mut env, headers) = sample();
    for tfo in [ServerTfo::Cookie, ServerTfo::CookieWithData] {
        env.tfo = tfo;
        let bytes = format_header(&env, &headers);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let want = format!("-oxim_tfo {}", tfo.name());
        assert!(text.lines().any(|l| l == want), "{text}");
        assert_eq!(parse_header(&bytes).unwrap().0.tfo, tfo);
        // As written before the outcome was typed (the log suffix).
        let old = if tfo == ServerTfo::Cookie {
            "TFO"
        } else {
            "TFO*"
        };
        let old = text.replace(&want, &format!("-oxim_tfo {old}"));
        assert_eq!(parse_header(old.as_bytes()).unwrap().0.tfo, tfo);
        let bad = text.replace(&want, "-oxim_tfo maybe");
        assert!(parse_header(bad.as_bytes()).is_err());
    }
    env.tfo = ServerTfo::None;
    let text = String::from_utf8(format_header(&env, &headers)).unwrap();
    assert!(!text.contains("oxim_tfo"), "{text}");
}
