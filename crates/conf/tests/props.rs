//! Property tests: parsing and expanding arbitrary input never panics, and
//! a few invariants hold.

use std::net::IpAddr;

use oxim_conf::{
    expand, lists::list_items, match_address, match_domain, match_host, parse_str, Config,
    MapContext, MemFs,
};
use proptest::prelude::*;

/// Text biased towards configuration syntax.
fn config_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "\n",
        " ",
        "\t",
        "\\",
        "\\\n",
        "#",
        ".ifdef ",
        ".ifndef ",
        ".elifdef ",
        ".else",
        ".endif",
        ".include ",
        ".include_if_exists ",
        "begin ",
        "routers",
        "transports",
        "acl",
        "retry",
        "rewrite",
        "authenticators",
        ":",
        "=",
        "==",
        "!",
        "\"",
        "A",
        "AB",
        "X_Y",
        "SERVER",
        "_HAVE_X",
        "driver",
        "accept",
        "smtp",
        "redirect",
        "manualroute",
        "appendfile",
        "no_",
        "hide ",
        "primary_hostname",
        "queue_only",
        "smtp_accept_max",
        "condition",
        "hosts",
        "port",
        "F,",
        "G,",
        "5d",
        "10s",
        "1.5",
        ";",
        "*",
        "deny",
        "message",
        "set acl_m0",
        "endpass",
        "0x1",
        "1K",
        "$",
        "${",
        "}",
        "{",
        "x",
        "é",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

/// Text biased towards expansion syntax.
fn expansion_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "$",
        "${",
        "}",
        "{",
        "\\",
        "\\N",
        "if ",
        "eq",
        "eqi",
        "ne",
        "!",
        "def:",
        "match",
        "and",
        "or",
        "exists",
        "==",
        "<",
        ">=",
        "isip",
        "bool",
        "bool_lax",
        "lookup",
        "lsearch",
        "lsearch*",
        "sg",
        "tr",
        "length",
        "substr",
        "extract",
        "lc:",
        "uc:",
        "length_2:",
        "substr_1_2:",
        "domain:",
        "local_part:",
        "eval:",
        "fail",
        "value",
        "1",
        "0",
        "-",
        "(",
        ")",
        "a",
        "x@y",
        " ",
        "yes",
        "no",
        "^",
        "(.*)",
        "/f",
        ":",
        "h_subject:",
        "local_part",
        "é",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

fn ctx() -> MapContext {
    MapContext::new()
        .var("local_part", "user")
        .var("domain", "example.com")
        .var("h_subject:", "hello")
        .file("/f", "a: b\n*: star\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parsing_never_panics(text in config_text()) {
        let fs = MemFs::new().with("/inc", "queue_only\n");
        let _ = parse_str(&text, "/c", &[("SERVER".into(), "server".into())], &fs);
    }

    #[test]
    fn parsing_arbitrary_unicode_never_panics(text in "\\PC{0,200}") {
        let _ = parse_str(&text, "/c", &[], &MemFs::new());
    }

    #[test]
    fn expansion_never_panics(s in expansion_text()) {
        let _ = expand(&s, &ctx());
    }

    #[test]
    fn expansion_of_arbitrary_text_never_panics(s in "\\PC{0,100}") {
        let _ = expand(&s, &ctx());
    }

    #[test]
    fn text_without_specials_expands_to_itself(s in "[a-zA-Z0-9 .,;:@<>=!()*+-]{0,80}") {
        prop_assert_eq!(expand(&s, &ctx()).unwrap(), s);
    }

    #[test]
    fn variable_values_are_never_reexpanded(v in "\\PC{0,60}") {
        let c = MapContext::new().var("x", &v);
        prop_assert_eq!(expand("$x", &c).unwrap(), v.clone());
        prop_assert_eq!(expand("${if eq{$x}{$x}{$x}{no}}", &c).unwrap(), v);
    }

    #[test]
    fn list_matching_never_panics(list in "\\PC{0,80}", subject in "\\PC{0,30}") {
        let cfg = Config::default();
        let c = MapContext::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _ = match_domain(&list, &subject, &cfg, &c);
        let _ = match_address(&list, &subject, &cfg, &c);
        let _ = match_host(&list, ip, Some(&subject), &cfg, &c);
        let _ = list_items(&list);
    }

    #[test]
    fn doubled_separator_round_trips(items in prop::collection::vec("[a-z]([a-z:]{0,6}[a-z])?", 1..6)) {
        let list = items.iter().map(|i| i.replace(':', "::")).collect::<Vec<_>>().join(" : ");
        prop_assert_eq!(list_items(&list), items);
    }
}
