//! Tests of the command-line parser.

use super::*;

fn parse(args: &[&str]) -> Invocation {
    let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Invocation::parse("exim", &v).expect("parses")
}

#[test]
fn called_by_debian_names() {
    let by_name = |prog: &str, rest: &[&str]| {
        let mut v: Vec<String> = options_for_name(prog)
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        Invocation::parse(prog, &v).expect("parses")
    };
    assert_eq!(
        by_name("mailq", &[]).mode,
        Mode::ListQueue(oxim_spool::BpMode::All)
    );
    assert_eq!(by_name("runq", &[]).mode, Mode::QueueRun);
    assert_eq!(by_name("newaliases", &[]).mode, Mode::RebuildAliases);
    assert_eq!(by_name("rsmtp", &[]).mode, Mode::BatchSmtp);
    let rmail = by_name("rmail", &["a@b.example"]);
    assert_eq!(rmail.mode, Mode::Submit);
    assert!(!rmail.dot_ends_message);
    assert_eq!(rmail.recipients, vec!["a@b.example".to_string()]);
    let sendmail = by_name("sendmail", &["-t"]);
    assert_eq!(sendmail.mode, Mode::Submit);
    assert!(sendmail.extract_recipients);
}

#[test]
fn seed_1990_daemon_command_line() {
    let inv = parse(&[
        "-DEXIM_PATH=/x/exim",
        "-C",
        "/t/test-config",
        "-DSERVER=server",
        "-bdf",
        "-oP",
        "/t/spool/exim-daemon.pid",
        "-oX",
        "1225",
    ]);
    assert_eq!(inv.mode, Mode::Daemon);
    assert!(inv.foreground);
    assert_eq!(inv.listen_override.as_deref(), Some("1225"));
    assert_eq!(
        inv.defines,
        vec![
            ("EXIM_PATH".into(), "/x/exim".into()),
            ("SERVER".into(), "server".into())
        ]
    );
    assert_eq!(inv.config, Some(PathBuf::from("/t/test-config")));
}

#[test]
fn submission_with_recipients() {
    let inv = parse(&["-odi", "-f", "me@x", "a@test.ex", "b@test.ex"]);
    assert_eq!(inv.mode, Mode::Submit);
    assert_eq!(inv.delivery, DeliveryMode::Interactive);
    assert_eq!(inv.sender.as_deref(), Some("me@x"));
    assert_eq!(inv.recipients, vec!["a@test.ex", "b@test.ex"]);
}

#[test]
fn od_options_override_queue_only() {
    // As in Exim: any -od option beats queue_only from the configuration.
    assert!(!parse(&["-odi", "a@x"]).queue_only(true, true));
    assert!(!parse(&["-odb", "a@x"]).queue_only(true, true));
    assert!(parse(&["-odq", "a@x"]).queue_only(false, true));
    assert!(parse(&["a@x"]).queue_only(true, true));
    assert!(!parse(&["a@x"]).queue_only(false, true));
    // no_queue_only_override: -odi does not beat queue_only.
    assert!(parse(&["-odi", "a@x"]).queue_only(true, false));
}

#[test]
fn queue_flags() {
    let inv = parse(&["-bd", "-q30m"]);
    assert_eq!(inv.mode, Mode::Daemon);
    assert_eq!(inv.queue_interval, Some(Duration::from_secs(1800)));
    let inv = parse(&["-qf"]);
    assert_eq!(inv.mode, Mode::QueueRun);
    assert!(inv.force);
}

#[test]
fn bad_flags_are_errors() {
    let v = vec!["-Xyz".to_string()];
    assert!(Invocation::parse("exim", &v).is_err());
    let v = vec!["-C".to_string()];
    assert_eq!(
        Invocation::parse("exim", &v).unwrap_err().0,
        "string expected after -C"
    );
    let v = vec!["-Dlower=1".to_string()];
    assert!(Invocation::parse("exim", &v).is_err());
}

#[test]
fn options_after_a_testing_flag_are_options() {
    // Exim test 0434: `-bt -DELI=1.2.3.4 a@b`.
    let inv = parse(&["-bt", "-DELI=1.2.3.4", "a@b"]);
    assert_eq!(inv.mode, Mode::AddressTest(vec!["a@b".into()]));
    assert_eq!(inv.defines, vec![("ELI".into(), "1.2.3.4".into())]);
    let inv = parse(&["-brt", "-f", "d@e.f", "x@y.z", "timeout"]);
    assert_eq!(
        inv.mode,
        Mode::RetryTest(vec!["x@y.z".into(), "timeout".into()])
    );
    assert_eq!(inv.sender.as_deref(), Some("d@e.f"));
}

#[test]
fn times() {
    assert_eq!(parse_time("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_time("10"), Some(Duration::from_secs(10)));
    assert_eq!(parse_time("m"), None);
    assert_eq!(parse_time("5x"), None);
}
