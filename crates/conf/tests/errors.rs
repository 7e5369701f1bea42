//! Malformed configurations and the exact error line each one produces.

use oxim_conf::{load, parse_str, LoadOptions, MemFs};

const F: &str = "/etc/oxim/configure";

fn err_of(text: &str) -> String {
    let fs = MemFs::new().with("/inc/inner", "qualify_domain = x\n\nbad_inner = 2\n");
    match parse_str(text, F, &[], &fs) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

fn at(line: usize, msg: &str) -> String {
    format!("error in configuration file: {F} line {line}: {msg}")
}

#[test]
fn malformed_configurations() {
    let cases: &[(&str, usize, &str)] = &[
        ("colour = red", 1, "main option \"colour\" unknown"),
        ("\n\nhide colour = red", 3, "main option \"colour\" unknown"),
        (
            "primary_hostname = a\nprimary_hostname = b",
            2,
            "\"primary_hostname\" option set for the second time",
        ),
        ("no_primary_hostname", 1, "negation prefix applied to a non-boolean option"),
        ("primary_hostname", 1, "unexpected end of line (data missing) after primary_hostname"),
        ("primary_hostname x", 1, "missing \"=\" after primary_hostname"),
        ("queue_only = maybe", 1, "\"maybe\" is not a valid value for the \"queue_only\" option"),
        // Fixed-point values as Exim reads them (test 0415).
        (
            "queue_only_load = 4000000000000000.123",
            1,
            "integer \"4000000000000000.123\" is too large (overflow)",
        ),
        (
            "queue_only_load = 1.5x",
            1,
            "extra characters follow fixed-point value for queue_only_load",
        ),
        ("queue_only_load = x", 1, "fixed-point number expected for queue_only_load"),
        // Options oxim knows but does not act on are refused when set to
        // anything but their default; their default is accepted.
        (
            "acl_smtp_notquit = check",
            1,
            "main option \"acl_smtp_notquit\" is not supported by oxim",
        ),
        (
            "begin transports\nt:\n  driver = appendfile\n  batch_max = 10",
            4,
            "option \"batch_max\" of the appendfile transport is not supported by oxim",
        ),
        (
            "begin routers\nr:\n  driver = accept\n  initgroups",
            4,
            "option \"initgroups\" of the accept router is not supported by oxim",
        ),
        (
            "allow_domain_literals = yes please",
            1,
            "extra characters follow \"yes\" for boolean option allow_domain_literals",
        ),
        (
            "no_allow_domain_literals = true",
            1,
            "extra characters follow boolean option no_allow_domain_literals",
        ),
        ("smtp_accept_max = abc", 1, "integer expected for smtp_accept_max"),
        (
            "smtp_accept_max = 12 # twelve",
            1,
            "extra characters follow integer value for smtp_accept_max (# is comment only at line start)",
        ),
        (
            "smtp_accept_max = 99999999999999999999",
            1,
            "absolute value of integer \"99999999999999999999\" is too large (overflow)",
        ),
        ("retry_interval_max = 5x", 1, "invalid time value for retry_interval_max"),
        ("qualify_domain = \"abc", 1, "missing quote at end of string value for qualify_domain"),
        (
            "qualify_domain = \"abc\" def",
            1,
            "extra characters follow string value for qualify_domain",
        ),
        ("# c\nA = 1\nA = 2", 3, "macro \"A\" is already defined (use \"==\" if you want to redefine it)"),
        ("B == 1", 1, "can't redefine an undefined macro \"B\""),
        (
            "AB = 1\nABC = 2",
            2,
            "\"ABC\" cannot be defined as a macro because previously defined macro \"AB\" is a substring",
        ),
        ("X=\n.ifdef X\nqueue_only", 3, "Unexpected end of configuration file: .endif missing"),
        ("\n.endif", 2, ".endif without matching .ifdef"),
        (".else", 1, ".else without matching .ifdef"),
        (".include /nonexistent", 1, "failed to open included configuration file /nonexistent"),
        (".include_if_exists rel/x", 1, ".include specifies a non-absolute path \"rel/x\""),
        ("begin nonsense", 1, "\"nonsense\" is not a known configuration section name"),
        ("begin retries", 1, "\"retries\" is not a known configuration section name"),
        ("begin routers\nr:\n  transport = t", 2, "no driver defined for router \"r\""),
        ("begin routers\n  driver = accept", 2, "router name missing"),
        (
            "begin routers\nr:\n  driver = frobnicate",
            3,
            "router r: cannot find router driver \"frobnicate\"",
        ),
        (
            "begin routers\nr:\n  route_list = x",
            3,
            "option \"route_list\" unknown (\"driver\" must be specified before any private options)",
        ),
        ("begin routers\nr:\n  driver = accept\n  route_list = x", 4, "option \"route_list\" unknown"),
        (
            "begin transports\nt:\n  driver = smtp\n  port = 25\n  port = 26",
            5,
            "\"port\" option set for the second time",
        ),
        (
            "begin transports\nt:\n  driver = smtp\nt:\n  driver = pipe",
            4,
            "there are two transports called \"t\"",
        ),
        ("begin transports\nt: extra", 2, "extra characters follow driver name t"),
        (
            "begin transports\nt:\n  driver = appendfile\n  mode = 0899",
            4,
            "extra characters follow octal integer value for mode",
        ),
        ("begin retry\n* * X,1h,1m", 2, "unknown retry rule letter"),
        ("begin retry\n* nonsense F,1h,1m", 2, "unknown or malformed retry error \"nonsense\""),
        ("begin retry\n* * F,1h", 2, "comma expected"),
        ("begin retry\n* * G,1h,0s,2", 2, "bad parameters for retry rule"),
        ("begin retry\n* * G,1h,10m,0.5", 2, "bad parameters for retry rule"),
        ("begin retry\n* * F,1x,10m", 2, "bad parameters for retry rule"),
        ("begin retry\n* * F,1h,10m junk", 2, "semicolon expected"),
        ("begin retry\n* * F,1h/10m", 2, "comma or semicolon expected"),
        ("begin retry\n* * senders a@b F,1h,10m", 2, "\"=\" expected after \"senders\" in retry rule"),
        ("begin rewrite\n*@a.b", 2, "missing rewrite replacement string"),
        (
            "begin rewrite\n*@a.b x@y Z",
            2,
            "unknown rewrite flag character 'Z' (could be missing quotes round replacement item)",
        ),
        (
            "begin acl\ncheck:\n  accept colour = red",
            3,
            "error in ACL: unknown ACL condition/modifier in \"accept colour = red\"",
        ),
        ("begin acl\n  accept", 2, "ACL name missing"),
        ("begin acl\na:\n  frob hosts = *", 3, "error in ACL: unknown ACL verb \"frob\" in \"frob hosts = *\""),
        (
            "begin acl\na:\n  accept hosts 1.2.3.4",
            3,
            "error in ACL: \"=\" missing after ACL \"hosts\" condition",
        ),
        ("begin acl\na:\n  accept\na:\n  deny", 4, "there are two ACLs called \"a\""),
        ("begin acl\na:\n  !accept", 3, "error in ACL: malformed ACL line \"!accept\""),
        (
            "begin acl\na:\n  warn !logwrite = x",
            3,
            "error in ACL: ACL error: negation is not allowed with \"logwrite\"",
        ),
        (
            "begin acl\na:\n  warn set foo = 1",
            3,
            "error in ACL: invalid variable name after \"set\" in ACL modifier \"set foo = 1\" (must start \"acl_c\" or \"acl_m\")",
        ),
        (
            "begin acl\na:\n  warn set acl_mx = 1",
            3,
            "error in ACL: invalid variable name after \"set\" in ACL modifier \"set acl_mx = 1\" (digit or underscore must follow acl_c or acl_m)",
        ),
        ("domainlist = x", 1, "domainlist name missing"),
        (
            "domainlist d = x\ndomainlist d = y",
            2,
            "duplicate name \"d\" for a named domain list",
        ),
        ("hostlist h x", 1, "missing '=' after \"h\""),
        ("primary_hostname = a \\\n  b\ncolour = x", 3, "main option \"colour\" unknown"),
        ("colour = a \\\n  b", 2, "main option \"colour\" unknown"),
        (
            "begin routers\nbegin Router",
            2,
            "\"Router\" section is repeated in the configuration file",
        ),
        ("= x", 1, "option setting expected: = x"),
        ("Colour red", 1, "malformed macro definition"),
    ];
    assert!(cases.len() >= 30);
    for (text, line, msg) in cases {
        assert_eq!(err_of(text), at(*line, msg), "config: {text:?}");
    }
}

#[test]
fn errors_name_the_innermost_included_file() {
    let e = err_of("# main\n.include /inc/inner\nqueue_only");
    assert_eq!(
        e,
        "error in configuration file: /inc/inner line 3: main option \"bad_inner\" unknown"
    );
}

#[test]
fn relative_include_is_relative_to_the_including_file() {
    let fs = MemFs::new()
        .with(
            "/etc/oxim/configure",
            ".include sub/part\nqualify_domain = q.ex\n",
        )
        .with(
            "/etc/oxim/sub/part",
            "primary_hostname = p.ex\n.include more\n",
        )
        .with("/etc/oxim/sub/more", "queue_only\n");
    let cfg = load(
        &LoadOptions {
            path: "/etc/oxim/configure".into(),
            ..Default::default()
        },
        &fs,
    )
    .expect("loads");
    assert_eq!(cfg.main.str("primary_hostname"), "p.ex");
    assert_eq!(cfg.main.str("qualify_domain"), "q.ex");
    assert!(cfg.main.bool("queue_only"));
}

#[test]
fn missing_main_file() {
    let e = load(
        &LoadOptions {
            path: "/nope".into(),
            ..Default::default()
        },
        &MemFs::new(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "non-existent configuration file(s): /nope");
}

#[test]
fn unreadable_main_file_says_why() {
    // A directory exists but cannot be read as a file, even by root.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let e = load(
        &LoadOptions {
            path: path.clone(),
            ..Default::default()
        },
        &oxim_conf::StdFs,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "configuration file {} could not be read: Is a directory",
            path.display()
        )
    );
}

/// Setting an unsupported option to its default says nothing wrong.
#[test]
fn unsupported_options_at_their_default_load() {
    let fs = MemFs::new();
    for text in [
        "acl_smtp_notquit =",
        "check_spool_space = 10M",
        "begin transports\nt:\n  driver = appendfile\n  batch_max = 1\n  no_use_bsmtp",
    ] {
        assert!(parse_str(text, F, &[], &fs).is_ok(), "{text:?} refused");
    }
}
