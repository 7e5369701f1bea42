use super::*;

fn user(text: &str) -> Result<Vec<Command>, String> {
    parse(text, ParseOptions::default())
}

fn system(text: &str) -> Result<Vec<Command>, String> {
    parse(
        text,
        ParseOptions {
            system: true,
            allow_defer: true,
            allow_fail: true,
            allow_freeze: true,
        },
    )
}

#[test]
fn filter_types() {
    assert_eq!(filter_type("# Exim filter\n"), FilterType::Exim);
    assert_eq!(filter_type("\n\n  #exim   FILTER\nx"), FilterType::Exim);
    assert_eq!(filter_type("# Sieve filter\n"), FilterType::Sieve);
    assert_eq!(filter_type("user@domain\n"), FilterType::Forward);
    assert_eq!(filter_type("# Exim"), FilterType::Forward);
}

#[test]
fn simple_commands_and_defaults() {
    let c = user("# Exim filter\ndeliver a@b\nunseen save /tmp/x 444\npipe \"/bin/cat $x\"\nlogwrite hello\n")
        .unwrap();
    assert_eq!(c.len(), 4);
    assert!(c[0].seen);
    assert_eq!(
        c[0].kind,
        CmdKind::Deliver {
            address: "a@b".into(),
            errors_to: None
        }
    );
    assert!(!c[1].seen);
    assert_eq!(
        c[1].kind,
        CmdKind::Save {
            path: "/tmp/x".into(),
            mode: Some(0o444)
        }
    );
    assert_eq!(
        c[2].kind,
        CmdKind::Pipe {
            command: "/bin/cat $x".into()
        }
    );
    assert!(!c[3].seen);
    assert_eq!(
        c[3].kind,
        CmdKind::Logwrite {
            text: "hello\n".into()
        }
    );
}

#[test]
fn quoted_strings_and_escapes() {
    let c = user("testprint \"a\\tb\\n\\$x \\\n     continued\"\n").unwrap();
    assert_eq!(
        c[0].kind,
        CmdKind::Testprint {
            text: "a\tb\n$x continued".into()
        }
    );
    assert_eq!(
        user("testprint \"unterminated\ntestprint x").unwrap_err(),
        "quote missing at end of string in line 1"
    );
}

#[test]
fn conditions_precedence_and_negation() {
    let c = user("if $a is x or $b contains y and not $c matches ^z then finish endif").unwrap();
    let CmdKind::If { branches, .. } = &c[0].kind else {
        panic!()
    };
    let cond = &branches[0].0;
    let CondKind::Or(l, r) = &cond.kind else {
        panic!("{cond:?}")
    };
    assert!(matches!(
        l.kind,
        CondKind::Compare {
            op: Compare::Is,
            ..
        }
    ));
    let CondKind::And(_, rr) = &r.kind else {
        panic!()
    };
    assert!(rr.negated);
    let c = user("if $a does not BEGIN x then finish endif").unwrap();
    let CmdKind::If { branches, .. } = &c[0].kind else {
        panic!()
    };
    assert!(branches[0].0.negated);
    assert!(matches!(
        branches[0].0.kind,
        CondKind::Compare {
            op: Compare::BeginsCase,
            ..
        }
    ));
    // "is not <string>": the word after "is not" is the operand.
    let c = user("if $a is not \"\" then finish endif").unwrap();
    let CmdKind::If { branches, .. } = &c[0].kind else {
        panic!()
    };
    assert_eq!(
        branches[0].0,
        Condition {
            negated: true,
            kind: CondKind::Compare {
                op: Compare::Is,
                left: "$a".into(),
                right: "".into()
            }
        }
    );
}

#[test]
fn if_elif_else() {
    let c = user("if a is b then testprint 1 elif(c is d) then testprint 2 else testprint 3 endif")
        .unwrap();
    let CmdKind::If {
        branches,
        otherwise,
    } = &c[0].kind
    else {
        panic!()
    };
    assert_eq!(branches.len(), 2);
    assert_eq!(otherwise.len(), 1);
}

#[test]
fn personal_and_foranyaddress() {
    let c = user("if personal alias a@b alias c@d then finish endif\nif foranyaddress $h_to: ($thisaddress is x) then finish endif").unwrap();
    let CmdKind::If { branches, .. } = &c[0].kind else {
        panic!()
    };
    assert_eq!(
        branches[0].0.kind,
        CondKind::Personal {
            aliases: vec!["a@b".into(), "c@d".into()]
        }
    );
    assert!(matches!(
        &c[1].kind,
        CmdKind::If { branches, .. } if matches!(branches[0].0.kind, CondKind::ForAnyAddress { .. })
    ));
}

#[test]
fn mail_and_vacation_arguments() {
    let c =
        user("mail to a@b subject \"hi there\" expand file /x return message\nvacation").unwrap();
    let CmdKind::Mail { vacation, args } = &c[0].kind else {
        panic!()
    };
    assert!(!vacation);
    assert_eq!(args.values[0].as_deref(), Some("a@b"));
    assert_eq!(args.values[5].as_deref(), Some("hi there"));
    assert_eq!(args.values[MAIL_FILE].as_deref(), Some("/x"));
    assert!(args.expand_file && args.return_message);
    let CmdKind::Mail { vacation, args } = &c[1].kind else {
        panic!()
    };
    assert!(vacation);
    assert_eq!(args.values[MAIL_FILE].as_deref(), Some(".vacation.msg"));
    assert_eq!(args.values[11].as_deref(), Some("7d"));
    assert_eq!(args.values[5].as_deref(), Some("On vacation"));
}

#[test]
fn malformed_filters_report_exim_errors() {
    let e = |t: &str| user(t).unwrap_err();
    assert_eq!(
        e("# Exim filter\n\nfrobnicate x\n"),
        "unknown filtering command \"frobnicate\" near line 3 of filter file"
    );
    assert_eq!(
        e("#exim filter\n\nif one is one then seen endif\n\nif two is two then save /dev/null endif\n"),
        "\"seen\", \"unseen\", or \"noerror\" near line 5 is not followed by a command"
    );
    assert_eq!(
        e("#exim filter\n\nunseen\n"),
        "\"seen\" or \"unseen\" near line 4 is not followed by a command"
    );
    assert_eq!(
        e("if a is b then\n finish\n"),
        "\"endif\" missing at end of filter file"
    );
    assert_eq!(
        e("if a is b and\n"),
        "\"then\" missing at end of filter file"
    );
    assert_eq!(
        e("if a is b\n"),
        "\"and\" or \"or\" or \"then\" expected near line 2 of filter file, but found \"\""
    );
    assert_eq!(
        e("if a frob b then endif"),
        "unrecognized condition word \"frob\" near line 1 of filter file"
    );
    assert_eq!(
        e("endif\n"),
        "unexpected \"endif\" command near line 2 of filter file"
    );
    assert_eq!(
        e("add 1 n1"),
        "\"to\" expected in \"add\" command near line 1 of filter file"
    );
    assert_eq!(
        e("deliver\n"),
        "\"deliver\" requires an argument near line 2 of filter file"
    );
    assert_eq!(
        e("headers add \"X: y\""),
        "header addition and removal is available only in system filters: near line 1 of filter file"
    );
    assert_eq!(
        e("fail text \"no\""),
        "filtering command \"fail\" is disabled: near line 1 of filter file"
    );
    assert_eq!(
        e("if (a is b then finish endif"),
        "missing \")\" at end of condition near line 1 of filter file"
    );
    assert_eq!(
        e("if (a is b xor c is d) then finish endif"),
        "\"and\" or \"or\" or \")\" expected near line 1 of filter file, but found \"xor\""
    );
    assert_eq!(
        e("if a is b) then finish endif"),
        "unexpected \")\" in line 1 of filter file"
    );
    assert_eq!(
        e("unseen unseen deliver x"),
        "\"seen\" or \"unseen\" repeated near line 1"
    );
    assert_eq!(
        e("seen if a is b then endif"),
        "\"seen\", \"unseen\", or \"noerror\" found before an \"if\" command near line 1"
    );
}

#[test]
fn system_filter_commands() {
    let c =
        system("headers add \"X-A: b\"\nheaders remove X-B\nfreeze text \"held\"\nfail\n").unwrap();
    assert_eq!(
        c[0].kind,
        CmdKind::Headers {
            op: HeadersOp::Add,
            value: "X-A: b".into()
        }
    );
    assert_eq!(
        c[2].kind,
        CmdKind::Stop {
            kind: Stop::Freeze,
            text: "held".into()
        }
    );
    assert_eq!(
        c[3].kind,
        CmdKind::Stop {
            kind: Stop::Fail,
            text: String::new()
        }
    );
}
