//! Behaviour of the public API the integrator relies on.

use oxim_conf::{expand_bool, parse_str, AclVerb, Config, MapContext, MemFs, Value};

fn cfg(text: &str) -> Config {
    parse_str(text, "/c", &[], &MemFs::new()).expect("config parses")
}

#[test]
fn config_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Config>();
}

#[test]
fn render_uses_exim_formats() {
    let c = cfg(
        "smtp_accept_max = 0x20\nqueue_only\nhide tls_certificate = /secret\n\
         no_smtp_enforce_sync\nretry_interval_max = 1d2h\nqualify_domain = \"a\\tb\"",
    );
    let r = |n: &str| c.main.render(n).unwrap_or_default();
    assert_eq!(r("smtp_accept_max"), "smtp_accept_max = 32");
    assert_eq!(r("queue_only"), "queue_only");
    assert_eq!(r("smtp_enforce_sync"), "no_smtp_enforce_sync");
    assert_eq!(
        r("pipelining_advertise_hosts"),
        "pipelining_advertise_hosts = *"
    );
    assert_eq!(
        r("tls_certificate"),
        "tls_certificate = <value not displayable>"
    );
    assert_eq!(c.main.str("tls_certificate"), "/secret");
    assert_eq!(r("retry_interval_max"), "retry_interval_max = 1d2h");
    assert_eq!(r("smtp_receive_timeout"), "smtp_receive_timeout = 5m");
    assert_eq!(
        r("ignore_bounce_errors_after"),
        "ignore_bounce_errors_after = 10w"
    );
    assert_eq!(r("qualify_domain"), "qualify_domain = a\\tb");
    // Exim prints an unset string option with the space after `=`.
    assert_eq!(r("primary_hostname"), "primary_hostname = ");
    assert_eq!(
        r("smtp_banner"),
        "smtp_banner = $smtp_active_hostname ESMTP Exim $version_number $tod_full"
    );
    assert_eq!(c.main.render("colour"), None);
    assert!(c.main.render_all().len() > 200);
}

#[test]
fn typed_accessors_and_defaults() {
    let c = cfg("daemon_smtp_port = 1225\nsmtp_receive_timeout = 30s\nmessage_size_limit = 10M");
    assert_eq!(c.main.str("daemon_smtp_ports"), "1225");
    assert_eq!(c.main.str("daemon_smtp_port"), "1225");
    assert_eq!(c.main.time("smtp_receive_timeout").as_secs(), 30);
    assert_eq!(c.main.int("smtp_accept_max"), 20);
    assert_eq!(c.main.int("smtp_max_synprot_errors"), 3);
    assert!(c.main.bool("smtp_enforce_sync"));
    assert_eq!(c.main.int("tfo_queue_length"), 64);
    assert_eq!(c.main.str("message_size_limit"), "10M");
    assert!(!c.main.is_set("smtp_accept_max"));
    assert!(c.main.is_set("daemon_smtp_ports"));
    assert_eq!(c.main.get("nonexistent"), None);
    assert_eq!(c.main.get("primary_hostname"), None);
    assert_eq!(c.main.get("smtp_accept_max"), Some(&Value::Int(20)));
}

#[test]
fn driver_options_conditions_and_headers() {
    let c = cfg("begin routers\n\
         r:\n  driver = accept\n  condition = ${if eq{a}{a}}\n  condition = no\n  \
         unseen = ${if eq{$local_part}{x}}\n  \
         headers_add = X-A: 1\n  headers_add = X-B: 2\n  no_verify\n  transport = t\n\
         begin transports\n\
         t:\n  driver = appendfile\n  file = /var/mail/$local_part\n  mode = 0640\n");
    let r = c.router("r").expect("router r");
    assert_eq!(r.line, 2);
    assert_eq!(r.options.str("headers_add"), "X-A: 1\nX-B: 2");
    assert!(!r.options.bool("verify_sender"));
    assert!(!r.options.bool("verify_recipient"));
    // Both conditions must hold: the second one is false.
    let ctx = MapContext::new();
    assert!(!expand_bool(r.options.str("condition"), &ctx).expect("expands"));
    assert!(r.options.bool_expanded("more", &ctx).expect("fixed"));
    let lp = MapContext::new().var("local_part", "x");
    assert!(r.options.bool_expanded("unseen", &lp).expect("expands"));
    assert!(!r
        .options
        .bool_expanded("unseen", &lp.clone().var("local_part", "y"))
        .expect("expands"));
    let t = c.transport("t").expect("transport t");
    assert_eq!(t.options.render("mode").as_deref(), Some("mode = 0640"));
    assert_eq!(t.options.int("mode"), 0o640);
}

#[test]
fn resolve_acl_forms() {
    let c = cfg("begin acl\nmine:\n  deny message = no\n       hosts = 1.2.3.4\n  accept\n");
    let a = c.resolve_acl("mine").expect("named");
    assert_eq!(a.statements.len(), 2);
    assert_eq!(a.statements[0].verb, AclVerb::Deny);
    assert_eq!(a.statements[0].conditions.len(), 2);
    assert_eq!(
        c.resolve_acl("reject").expect("reject").statements[0].verb,
        AclVerb::Deny
    );
    assert_eq!(
        c.resolve_acl("accept").expect("accept").statements[0].verb,
        AclVerb::Accept
    );
    let inline = c
        .resolve_acl("deny hosts = 1.2.3.4\naccept")
        .expect("inline");
    assert_eq!(inline.statements.len(), 2);
    assert!(c.resolve_acl("nosuchacl").is_none());
    assert!(c.resolve_acl("").is_none());
}

#[test]
fn macros_cmdline_and_ifdef() {
    let text = "SERVER=\nLOG = +all\n.ifdef _HAVE_X\nqueue_only\n.endif\nlog_selector = LOG\n\
                primary_hostname = hSERVER.ex";
    let defs = vec![("SERVER".to_string(), "srv".to_string())];
    let c = parse_str(text, "/c", &defs, &MemFs::new()).expect("parses");
    assert_eq!(c.main.str("primary_hostname"), "hsrv.ex");
    assert_eq!(c.main.str("log_selector"), "+all");
    assert!(!c.main.bool("queue_only"));
    assert_eq!(
        c.macros,
        vec![
            ("SERVER".to_string(), "srv".to_string()),
            ("LOG".to_string(), "+all".to_string())
        ]
    );
    let opts = oxim_conf::LoadOptions {
        path: "/c".into(),
        defines: vec![],
        builtin: vec![("_HAVE_X".into(), "y".into())],
    };
    let fs = MemFs::new().with("/c", text);
    let c = oxim_conf::load(&opts, &fs).expect("loads");
    assert!(c.main.bool("queue_only"));
    assert!(c.macros.iter().all(|(n, _)| !n.starts_with('_')));
}

#[test]
fn named_lists_and_retry_rewrite_sections() {
    let c = cfg(
        "domainlist local_domains = @ : test.ex\nhostlist relay = 127.0.0.1 : ::::1\n\
         begin retry\n*.x.ex  *  senders=a@b  F,2h,15m; G,16h,1h,1.5\n\
         begin rewrite\n*@old.ex  $1@new.ex  Ffr\n",
    );
    assert_eq!(c.named_lists.domain("local_domains"), Some("@ : test.ex"));
    assert_eq!(c.named_lists.host("relay"), Some("127.0.0.1 : ::::1"));
    assert_eq!(c.retry[0].senders.as_deref(), Some("a@b"));
    assert_eq!(c.retry[0].params.len(), 2);
    assert_eq!(c.rewrite[0].replacement, "$1@new.ex");
    assert_eq!(c.rewrite[0].flags, "Ffr");
}

#[test]
fn authenticators_section() {
    let c = cfg("begin authenticators\n\
         PLAIN:\n  driver = plaintext\n  public_name = PLAIN\n  \
         server_condition = ${if eq{$auth3}{secret}}\n  server_set_id = $auth2\n\
         fixed_cram:\n  driver = cram_md5\n  public_name = CRAM-MD5\n  client_name = ph10\n");
    assert_eq!(c.authenticators.len(), 2);
    let a = c.authenticator("PLAIN").expect("PLAIN");
    assert_eq!(a.driver, "plaintext");
    assert_eq!(a.options.str("public_name"), "PLAIN");
    assert_eq!(c.authenticators[1].options.str("client_name"), "ph10");
}

#[test]
fn bp_queries_follow_readconf_print() {
    let c = parse_str(
        "M = 1\ndomainlist local_domains = @\nqualify_domain = q.ex\n\
         begin routers\nr1:\n  driver = accept\n  transport = t\nr2:\n  driver = redirect\n  data = x\n",
        "/etc/c",
        &[],
        &MemFs::new(),
    )
    .expect("parses");
    let p = |n: &str, k: Option<&str>, nl: bool| c.print_item(n, k, nl);
    assert_eq!(
        p("qualify_domain", None, false).lines,
        vec!["qualify_domain = q.ex"]
    );
    assert_eq!(p("qualify_domain", None, true).lines, vec!["q.ex"]);
    assert_eq!(p("primary_hostname", None, true).lines, vec![""]);
    assert_eq!(p("queue_only", None, true).lines, vec!["no_queue_only"]);
    let bad = p("colour", None, false);
    assert!(!bad.ok);
    assert_eq!(bad.lines, vec!["colour is not a known option"]);
    assert_eq!(
        p("+local_domains", None, false).lines,
        vec!["domainlist local_domains = @"]
    );
    assert!(!p("+nope", None, false).ok);
    assert_eq!(p("config_file", None, false).lines, vec!["/etc/c"]);
    assert_eq!(p("router_list", None, false).lines, vec!["r1", "r2"]);
    assert_eq!(p("macros", None, false).lines, vec!["M=1"]);
    assert_eq!(p("M", Some("macro"), true).lines, vec!["1"]);
    let r = p("routers", None, false);
    assert_eq!(&r.lines[..2], &["", "r1 router:"]);
    assert!(r.lines.contains(&"transport = t".to_string()));
    assert!(r.lines.contains(&"r2 router:".to_string()));
    let one = p("r2", Some("router"), false);
    assert!(one.ok);
    assert!(one.lines.contains(&"data = x".to_string()));
    assert!(one.lines.contains(&"driver = redirect".to_string()));
    // Generic options come first, alphabetically, then private ones.
    let idx = |s: &str| {
        one.lines
            .iter()
            .position(|l| l.starts_with(s))
            .unwrap_or(usize::MAX)
    };
    assert!(idx("address_data") < idx("driver"));
    assert!(idx("verify_sender") < idx("allow_defer"));
    assert!(!p("nope", Some("transport"), false).ok);
}
