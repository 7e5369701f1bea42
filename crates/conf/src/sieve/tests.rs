use super::*;

fn p(text: &str) -> Script {
    parse(text, ParseOptions { vacation: true })
}

fn err(text: &str) -> String {
    p(text).error.map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn simple_commands() {
    let s = p("# Sieve filter\nif address :is \"To\" \"a@b\" { discard; }\n");
    assert_eq!(s.error, None);
    let Command::If {
        branches,
        otherwise,
    } = &s.commands[0]
    else {
        panic!("{:?}", s.commands)
    };
    assert_eq!(branches.len(), 1);
    assert!(otherwise.is_none());
    assert_eq!(branches[0].1, vec![Command::Discard]);
}

#[test]
fn exim_error_texts_and_lines() {
    assert_eq!(
        err("# Sieve filter\nif test keep; }"),
        "missing test in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif test { keep;"),
        "missing test in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif true { unknownaction; }"),
        "expecting command or closing brace in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif true { fileinto abcdefgh; }"),
        "missing previous require \"fileinto\"; in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif header \"to\" [ \"egal\", \"achnee\" { keep; }"),
        "missing string list in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif header \"to\",\"from\"] \"egal\" { keep; }"),
        "key string list expected in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nif header :unknown \"to\" \"egal\" { keep; }"),
        "header string list expected in line 2"
    );
    assert_eq!(
        err("# Sieve filter\nkeep;\nbogus;\n"),
        "syntax error in line 3"
    );
}

#[test]
fn partial_script_before_an_error_is_kept() {
    // Exim obeys a script as it reads it: the stop is there to be obeyed.
    let s = p("# Sieve filter\nif true { stop; fileinto \"inbox.never\"; }");
    assert!(s.error.is_some());
    let Command::If { branches, .. } = &s.commands[0] else {
        panic!()
    };
    assert_eq!(branches[0].1, vec![Command::Stop]);
}

#[test]
fn strings_numbers_and_encoded_characters() {
    let s = p(
        "require \"encoded-character\";\nif header :matches \"x\" \"*${hex:00 41}*\" { keep; }\n\
               if size :over 4K { discard; }",
    );
    assert_eq!(s.error, None);
    let Command::If { branches, .. } = &s.commands[0] else {
        panic!()
    };
    let Test::Header { m, .. } = &branches[0].0 else {
        panic!()
    };
    assert_eq!(m.keys, vec!["*\0A*".to_string()]);
    let Command::If { branches, .. } = &s.commands[1] else {
        panic!()
    };
    assert_eq!(
        branches[0].0,
        Test::Size {
            over: true,
            limit: 4096
        }
    );
    let s =
        p("require \"vacation\";\nvacation :days 100 :subject \"s\" text:\nline 1\n..dot\n.\n;");
    assert_eq!(s.error, None);
    let Command::Vacation(v) = &s.commands[0] else {
        panic!()
    };
    assert_eq!(v.days, 31);
    assert_eq!(v.reason, "line 1\r\n.dot\r\n");
    assert_eq!(
        parse("require \"vacation\";", ParseOptions { vacation: false })
            .error
            .unwrap()
            .msg,
        "vacation disabled"
    );
}
