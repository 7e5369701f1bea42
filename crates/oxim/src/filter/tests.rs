use super::*;
use oxim_conf::filter::{parse, ParseOptions};

fn config() -> oxim_conf::Config {
    oxim_conf::parse_str("", "test", &[], &oxim_conf::MemFs::default()).unwrap()
}

fn env<'a>(cfg: &'a oxim_conf::Config, headers: &[&str], testing: bool) -> Env<'a> {
    let mut vars = Vars::new();
    vars.set("local_part", "user")
        .set("domain", "example.org")
        .set("qualify_recipient", "example.org")
        .set("home", "/home/user")
        .set("sender_address", "someone@else.example");
    let headers: Vec<String> = headers.iter().map(|h| format!("{h}\n")).collect();
    vars.set_headers(headers.clone());
    Env {
        cfg,
        vars,
        headers,
        testing,
        system: false,
        message: true,
        first_delivery: true,
        manually_thawed: false,
        sender: "someone@else.example".into(),
        return_path: "someone@else.example".into(),
        sn: [0; 10],
        log: LogMode::Skip,
        prepend_home: true,
        forbid: Default::default(),
    }
}

fn run_text(text: &str, headers: &[&str], testing: bool) -> Outcome {
    let cfg = config();
    let cmds = parse(text, ParseOptions::default()).unwrap();
    run(&cmds, env(&cfg, headers, testing))
}

#[test]
fn test_mode_describes_actions() {
    let o = run_text(
        "# Exim filter\nadd 2 to n1\nadd $n1 to n2\ntestprint \"n=$n1,$n2\"\ndeliver other\nunseen save folder 0640\npipe \"/bin/x $h_subject:\"\n",
        &["Subject: hi"],
        true,
    );
    assert_eq!(
        o.out,
        "Add 2 to n1\nAdd 2 to n2\nTestprint: n=2,2\nDeliver message to: other@example.org\n\
         Unseen save message to: folder 0640\nPipe message to: /bin/x $h_subject:\n\
         Filtering set up at least one significant delivery or other action.\nNo other deliveries will occur.\n"
    );
    assert!(o.actions.is_empty());
}

#[test]
fn real_mode_generates_actions() {
    let o = run_text(
        "# Exim filter\nif $h_subject: contains urgent then\n deliver boss@example.org\n save inbox\n pipe /bin/cat\nendif\n",
        &["Subject: Something URGENT"],
        false,
    );
    assert_eq!(o.verdict, Verdict::Delivered);
    assert_eq!(
        o.actions,
        vec![
            Action::Deliver {
                address: "boss@example.org".into(),
                errors_to: None,
                noerror: false
            },
            Action::Save {
                path: "/home/user/inbox".into(),
                mode: None,
                noerror: false
            },
            Action::Pipe {
                command: "|/bin/cat".into(),
                noerror: false,
                thisaddress: None,
                numeric: vec![]
            },
        ]
    );
    let o = run_text(
        "if $h_subject: contains urgent then deliver x endif",
        &["Subject: calm"],
        false,
    );
    assert_eq!(o.verdict, Verdict::NotDelivered);
    assert!(o.actions.is_empty());
}

#[test]
fn regex_captures_and_numbers() {
    let o = run_text(
        "if $h_subject: matches \"^re: ([a-z]+)\" then testprint \"got $1\" endif\nif 2k above 2000 and 1M below 0x200000 then testprint big endif\n",
        &["Subject: RE: Lunch"],
        true,
    );
    assert!(o.out.contains("Testprint: got Lunch\n"), "{}", o.out);
    assert!(o.out.contains("Testprint: big\n"), "{}", o.out);
    let o = run_text("if abc above 1 then finish endif", &[], true);
    assert_eq!(
        o.verdict,
        Verdict::Error("malformed numerical string \"abc\"".into())
    );
}

#[test]
fn personal_rules() {
    let personal = |headers: &[&str]| {
        run_text(
            "if personal then testprint yes else testprint no endif",
            headers,
            true,
        )
        .out
        .starts_with("Testprint: yes")
    };
    assert!(personal(&["To: User <user@example.org>"]));
    assert!(!personal(&["To: other@example.org"]));
    assert!(!personal(&["To: user@example.org", "Precedence: bulk"]));
    assert!(!personal(&["To: user@example.org", "List-Id: <x>"]));
    assert!(!personal(&["To: user@example.org", "From: owner-list@x.y"]));
    assert!(!personal(&[
        "To: user@example.org",
        "Auto-Submitted: auto-replied"
    ]));
    assert!(personal(&["To: user@example.org", "Auto-Submitted: no"]));
}

#[test]
fn foranyaddress_sets_thisaddress() {
    let o = run_text(
        "if foranyaddress \"G: a@b, c@d;, e@f\" ($thisaddress matches ^c) then testprint \"hit $thisaddress\" endif\ntestprint \"after:$thisaddress\"",
        &[],
        true,
    );
    assert!(
        o.out.starts_with("Testprint: hit c@d\nTestprint: after:\n"),
        "{}",
        o.out
    );
}

#[test]
fn errors_at_run_time() {
    let o = run_text("deliver user@example.org errors_to x@y", &[], true);
    assert_eq!(
        o.verdict,
        Verdict::Error("errors_to must point to the caller's address".into())
    );
    let o = run_text("testprint \"${if bogus}\"", &[], true);
    assert!(
        matches!(&o.verdict, Verdict::Error(e) if e.starts_with("failed to expand \"${if bogus}\" in testprint command: ")),
        "{:?}",
        o.verdict
    );
    let o = run_text("add 1 to x1", &[], true);
    assert_eq!(
        o.verdict,
        Verdict::Error("unknown variable \"x1\" in \"add\" command".into())
    );
    assert!(o
        .out
        .ends_with("Filter error: unknown variable \"x1\" in \"add\" command\n"));
}

#[test]
fn mail_in_test_mode() {
    let o = run_text(
        "mail to a@b subject \"Re: $h_subject:\" text \"hello\" return message",
        &["Subject: x"],
        true,
    );
    assert_eq!(
        o.out,
        "Mail to: a@b\nsubject: Re: x\n   text: hello\nReturn original message\n\
         Filtering did not set up a significant delivery.\nNormal delivery will occur.\n"
    );
    let o = run_text("mail text \"a\\nb\" subject \"x\\ny\"", &[], true);
    assert_eq!(
        o.verdict,
        Verdict::Error("\\n not followed by space in \"x\\ny\" in mail command".into())
    );
}

#[test]
fn stop_commands_in_system_filters() {
    let cfg = config();
    let opts = ParseOptions {
        system: true,
        allow_defer: true,
        allow_fail: true,
        allow_freeze: true,
    };
    let cmds = parse(
        "headers add \"X-New: 1\"\nheaders remove subject\nfreeze text \"held: $h_x-new:\\n\"",
        opts,
    )
    .unwrap();
    let mut e = env(&cfg, &["Subject: s"], true);
    e.system = true;
    let o = run(&cmds, e);
    assert_eq!(o.verdict, Verdict::Freeze("held: 1".into()));
    assert_eq!(o.headers, vec!["X-New: 1\n".to_string()]);
    assert!(
        o.out
            .contains("Freeze text \"held: 1\"\nFiltering ended by \"freeze\".\n"),
        "{}",
        o.out
    );
}

#[test]
fn printing_is_exims() {
    assert_eq!(printing("a\\b\n\t\u{1}\"", false), "a\\b\\n\\t\\001\"");
    assert_eq!(printing("say \"hi\"", true), "say \\\"hi\\\"");
}

#[test]
fn mail_in_real_mode_defaults_to_reply_address() {
    let o = run_text(
        "if not error_message then mail subject \"Re: $h_subject:\" text \"away\" endif",
        &[
            "From: Sender <s@example.net>",
            "Reply-To: ",
            "Subject: hello",
        ],
        false,
    );
    assert_eq!(o.verdict, Verdict::NotDelivered);
    let [Action::Reply {
        vacation, values, ..
    }] = o.actions.as_slice()
    else {
        panic!("{:?}", o.actions)
    };
    assert!(!vacation);
    assert_eq!(values[0].as_deref(), Some("Sender <s@example.net>"));
    assert_eq!(values[5].as_deref(), Some("Re: hello"));
    assert_eq!(values[7].as_deref(), Some("away"));
}
