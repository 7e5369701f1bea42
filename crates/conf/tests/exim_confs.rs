//! Loads every configuration of Exim's test suite (read in place from
//! `../shared/exim-tests` relative to the repository root, or from
//! `$OXIM_EXIM_TESTS`) after the harness substitutions described in
//! RUNTEST-NOTES section 2, and checks the seed test 1990 in detail.

use std::path::{Path, PathBuf};

use oxim_conf::{
    expand, load, AclVerb, Config, ConfigError, LoadOptions, MapContext, RetryKind, StdFs,
};

/// The HEAD-tree configurations known to load in all four variants
/// (with and without `SERVER`, with and without the `_HAVE_*` built-ins).
/// The list only grows: one that stops loading fails the test below.
const LOADING_HEAD_CONFS: &str = include_str!("loading-head-confs.txt");

/// HEAD-tree configurations that Exim itself refuses (their tests expect
/// the error), with the message: these must fail to load, in every variant.
/// 0348: `RETRY=G,1,20m,1.5`, a retry time without a unit.
const REFUSED_BY_EXIM: &[(&str, &str)] = &[("0348", "bad parameters for retry rule")];

fn exim_tests_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OXIM_EXIM_TESTS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/exim-tests"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        let msg = format!(
            "SKIP: Exim test tree not found at {} (set OXIM_EXIM_TESTS)",
            dir.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("\n********** {msg} **********\n");
        None
    }
}

/// The harness's word-bounded substitutions.
fn substitute(text: &str, dir: &Path, testnum: &str) -> String {
    let dir_slash = format!("{}/", dir.display());
    let table: &[(&str, &str)] = &[
        ("CALLER_UID", "1000"),
        ("CALLER_GID", "1000"),
        ("CALLERGROUP", "users"),
        ("CALLER", "tester"),
        ("EXIMUSER", "exim"),
        ("EXIMGROUP", "exim"),
        ("HOSTNAME", "the.local.host.name"),
        ("HOSTIPV4", "198.18.0.1"),
        ("HOSTIPV6", "2001:db8::1"),
        ("PORT_N", "1223"),
        ("PORT_S", "1224"),
        ("PORT_D2", "1226"),
        ("PORT_D3", "1227"),
        ("PORT_D4", "1228"),
        ("PORT_D", "1225"),
        ("V4NET", "224"),
        ("V6NET", "ff00"),
        ("TESTNUM", testnum),
    ];
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < b.len() {
        let at_word_start = i == 0 || !is_word(b[i - 1]);
        if at_word_start {
            if text[i..].starts_with("DIR/") {
                out.push_str(&dir_slash);
                i += 4;
                continue;
            }
            for (tok, val) in table {
                if text[i..].starts_with(tok) && !b.get(i + tok.len()).is_some_and(|&c| is_word(c))
                {
                    out.push_str(val);
                    i += tok.len();
                    continue 'outer;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A file as text, invalid UTF-8 replaced, as `StdFs` reads configurations
/// (a few of Exim's files hold Latin-1 bytes).
fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).expect("read test file")).into_owned()
}

struct Tree {
    dir: tempfile::TempDir,
    confs: Vec<(String, PathBuf)>,
}

fn prepare(root: &Path, flavour: &str) -> Tree {
    let tmp = tempfile::tempdir().expect("tempdir");
    let test = root.join(flavour).join("test");
    std::fs::create_dir_all(tmp.path().join("aux-var")).expect("mkdir");
    if let Ok(rd) = std::fs::read_dir(test.join("aux-var-src")) {
        for e in rd.flatten() {
            let text = read_lossy(&e.path());
            let out = tmp.path().join("aux-var").join(e.file_name());
            std::fs::write(out, substitute(&text, tmp.path(), "0")).expect("write aux-var");
        }
    }
    let mut confs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(test.join("confs")) {
        for e in rd.flatten().filter(|e| e.path().is_file()) {
            confs.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
    }
    confs.sort();
    Tree { dir: tmp, confs }
}

fn load_conf(
    tree: &Tree,
    num: &str,
    src: &Path,
    defines: &[(&str, &str)],
    builtin: &[&str],
) -> Result<Config, ConfigError> {
    let text = read_lossy(src);
    let path = tree.dir.path().join(format!("test-config-{num}"));
    std::fs::write(&path, substitute(&text, tree.dir.path(), num)).expect("write conf");
    let mut defs: Vec<(String, String)> = vec![("EXIM_PATH".into(), "/usr/sbin/oxim".into())];
    defs.extend(defines.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    load(
        &LoadOptions {
            path,
            defines: defs,
            builtin: builtin
                .iter()
                .map(|b| (b.to_string(), "y".to_string()))
                .collect(),
        },
        &StdFs,
    )
}

/// Every configuration of both trees is read to a verdict: it loads, or it
/// is refused with a located error (file and line), never a panic or an
/// unlocated one. Every conf of the 2019 tree loads, and so does every HEAD
/// conf in `loading-head-confs.txt`. With `OXIM_WRITE_CONF_LIST=1` the list is
/// rewritten from this run (it must only grow; review the diff).
#[test]
fn every_exim_test_conf_loads_or_fails_located() {
    let Some(root) = exim_tests_dir() else { return };
    let builtins = [
        "_HAVE_PIPE_CONNECT",
        "_HAVE_DMARC",
        "_HAVE_ESMTP_LIMITS",
        "_HAVE_REQTLS",
        "_HAVE_TLS",
    ];
    let pinned: std::collections::BTreeSet<&str> = LOADING_HEAD_CONFS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut head_loading = Vec::new();
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    let mut regressions = Vec::new();
    for flavour in ["2d58d8154", "HEAD"] {
        let tree = prepare(&root, flavour);
        for (num, src) in &tree.confs {
            let mut all_loaded = true;
            for defines in [&[][..], &[("SERVER", "server")][..]] {
                for builtin in [&[][..], &builtins[..]] {
                    let refused = REFUSED_BY_EXIM
                        .iter()
                        .find(|(n, _)| flavour == "HEAD" && n == num);
                    let Err(e) = load_conf(&tree, num, src, defines, builtin) else {
                        if let Some((_, msg)) = refused {
                            regressions.push(format!(
                                "{flavour}/confs/{num} {defines:?}: loads, but Exim refuses it ({msg})"
                            ));
                        }
                        continue;
                    };
                    if let Some((_, msg)) = refused {
                        assert_eq!(e.message(), *msg, "{flavour}/confs/{num}");
                        all_loaded = false;
                        continue;
                    }
                    all_loaded = false;
                    assert!(
                        e.location().is_some() || matches!(e, ConfigError::Unreadable { .. }),
                        "{flavour}/confs/{num} {defines:?}: error without file and line: {e}"
                    );
                    let must_load = flavour == "2d58d8154" || pinned.contains(num.as_str());
                    if must_load {
                        regressions.push(format!("{flavour}/confs/{num} {defines:?}: {e}"));
                    }
                    // Group reasons by their text up to the first quoted name.
                    let msg = e.message();
                    let key = match msg
                        .find('"')
                        .and_then(|i| msg[i + 1..].find('"').map(|j| i + j + 2))
                    {
                        Some(end) => msg[..end].to_string(),
                        None => msg.chars().take(60).collect(),
                    };
                    *reasons.entry(key).or_default() += 1;
                }
            }
            if flavour == "HEAD" && all_loaded {
                head_loading.push(num.clone());
            }
        }
    }
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!("HEAD confs loading in all variants: {}", head_loading.len());
    for (reason, n) in top.iter().take(40) {
        println!("{n:5}  {reason}");
    }
    if std::env::var_os("OXIM_WRITE_CONF_LIST").is_some() {
        let mut text = String::from(
            "# HEAD-tree Exim test configurations that oxim loads (see exim_confs.rs).\n",
        );
        for n in &head_loading {
            text.push_str(n);
            text.push('\n');
        }
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/loading-head-confs.txt");
        std::fs::write(out, text).expect("write list");
    }
    assert!(
        regressions.is_empty(),
        "configurations that loaded before no longer load:\n{}",
        regressions.join("\n")
    );
    assert!(!head_loading.is_empty(), "no configuration loaded");
}

#[test]
fn seed_1990_with_server_macro() {
    let Some(root) = exim_tests_dir() else { return };
    let tree = prepare(&root, "2d58d8154");
    let src = root.join("2d58d8154/test/confs/1990");
    let cfg = load_conf(&tree, "1990", &src, &[("SERVER", "server")], &[]).expect("1990 loads");

    assert_eq!(cfg.main.str("primary_hostname"), "myhost.test.ex");
    assert_eq!(cfg.main.str("acl_smtp_rcpt"), "accept");
    assert_eq!(
        cfg.main.str("log_selector"),
        "+received_recipients +millisec"
    );
    let logpath = format!("{}/spool/log/server%slog", tree.dir.path().display());
    assert_eq!(cfg.main.str("log_file_path"), logpath);
    assert_eq!(cfg.main.str("exim_path"), "/usr/sbin/oxim");
    assert_eq!(cfg.main.int("dns_cname_loops"), 9);
    assert_eq!(cfg.main.str("gecos_pattern"), "");
    assert_eq!(cfg.main.str("gecos_name"), "CALLER_NAME");
    assert!(cfg.main.is_set("chunking_advertise_hosts"));
    assert_eq!(cfg.main.str("chunking_advertise_hosts"), "");
    assert_eq!(cfg.main.str("helo_lookup_domains"), "@ : @[]");
    assert_eq!(
        cfg.main.render("message_size_limit").as_deref(),
        Some("message_size_limit = 50M")
    );

    let acl = cfg.resolve_acl(cfg.main.str("acl_smtp_rcpt")).expect("acl");
    assert_eq!(acl.statements.len(), 1);
    assert_eq!(acl.statements[0].verb, AclVerb::Accept);
    assert!(acl.statements[0].conditions.is_empty());

    assert_eq!(cfg.routers.len(), 2);
    let server = &cfg.routers[0];
    assert_eq!(
        (server.name.as_str(), server.driver.as_str()),
        ("server", "redirect")
    );
    assert_eq!(
        server.options.str("condition"),
        "${if eq {server}{server} {yes}{no}}"
    );
    assert_eq!(server.options.str("data"), ":blackhole:");
    let ctx = MapContext::new();
    assert_eq!(
        expand(server.options.str("condition"), &ctx).unwrap(),
        "yes"
    );
    let client = &cfg.routers[1];
    assert_eq!(client.driver, "accept");
    assert_eq!(expand(client.options.str("condition"), &ctx).unwrap(), "no");
    assert_eq!(client.options.str("transport"), "send_to_server");

    let t = cfg.transport("send_to_server").expect("transport");
    assert_eq!(t.driver, "smtp");
    assert!(t.options.bool("allow_localhost"));
    assert_eq!(t.options.str("hosts"), "127.0.0.1");
    assert_eq!(t.options.str("port"), "1225");
    assert_eq!(t.options.str("hosts_try_fastopen"), "*");
    assert_eq!(t.options.time("command_timeout").as_secs(), 300);

    assert_eq!(cfg.retry.len(), 1);
    let r = &cfg.retry[0];
    assert_eq!((r.pattern.as_str(), r.error.as_str()), ("*", "*"));
    assert_eq!(r.params.len(), 1);
    assert_eq!(r.params[0].kind, RetryKind::F);
    assert_eq!(
        (r.params[0].timeout_secs, r.params[0].interval_secs),
        (5 * 86400, 10)
    );

    assert!(cfg
        .macros
        .contains(&("SERVER".to_string(), "server".to_string())));
}

#[test]
fn seed_1990_without_server_macro() {
    let Some(root) = exim_tests_dir() else { return };
    let tree = prepare(&root, "2d58d8154");
    let src = root.join("2d58d8154/test/confs/1990");
    let cfg = load_conf(&tree, "1990", &src, &[], &[]).expect("1990 loads");
    let ctx = MapContext::new();
    assert_eq!(
        expand(cfg.routers[0].options.str("condition"), &ctx).unwrap(),
        "no"
    );
    assert_eq!(
        expand(cfg.routers[1].options.str("condition"), &ctx).unwrap(),
        "yes"
    );
    // SERVER= is defined (empty), so ".ifdef SERVER" is true and the log
    // path uses the empty value.
    let logpath = format!("{}/spool/log/%slog", tree.dir.path().display());
    assert_eq!(cfg.main.str("log_file_path"), logpath);
}

#[test]
fn acl_0549_and_inline_0579() {
    let Some(root) = exim_tests_dir() else { return };
    let tree = prepare(&root, "HEAD");
    let cfg = load_conf(&tree, "0549", &root.join("HEAD/test/confs/0549"), &[], &[]).expect("0549");
    let acl = cfg
        .resolve_acl(cfg.main.str("acl_smtp_connect"))
        .expect("check_connect");
    assert_eq!(acl.name, "check_connect");
    assert_eq!(acl.statements.len(), 2);
    let c = &acl.statements[0].conditions;
    assert_eq!(
        (c[0].name.as_str(), c[0].value.as_str()),
        ("hosts", "127.0.0.1")
    );
    assert_eq!(
        (c[1].name.as_str(), c[1].value.as_str()),
        ("control", "no_pipelining")
    );
    assert!(acl.statements[1].conditions.is_empty());

    let cfg = load_conf(&tree, "0579", &root.join("HEAD/test/confs/0579"), &[], &[]).expect("0579");
    let acl = cfg
        .resolve_acl(cfg.main.str("acl_smtp_rcpt"))
        .expect("inline");
    assert_eq!(acl.statements[0].conditions[0].name, "logwrite");
    assert_eq!(acl.statements[0].conditions[0].value, "cmd '$smtp_command'");

    let cfg = load_conf(&tree, "0605", &root.join("HEAD/test/confs/0605"), &[], &[]).expect("0605");
    assert_eq!(cfg.named_lists.host("nolog"), Some("127.0.0.1"));
    assert!(cfg.main.bool("queue_only"));
    assert_eq!(cfg.main.str("hosts_connection_nolog"), "+nolog");
}

#[test]
fn command_line_macros_0409_and_0314() {
    let Some(root) = exim_tests_dir() else { return };
    let tree = prepare(&root, "HEAD");
    let src = root.join("HEAD/test/confs/0409");
    let cfg = load_conf(&tree, "0409", &src, &[], &[]).expect("0409");
    assert!(cfg.main.is_set("smtp_banner"));
    assert_eq!(cfg.main.str("smtp_banner"), "");
    let cfg = load_conf(
        &tree,
        "0409",
        &src,
        &[("BANNER", "$qualify_domain XYZ")],
        &[],
    )
    .expect("0409 -DBANNER");
    assert_eq!(cfg.main.str("smtp_banner"), "$qualify_domain XYZ");
    let ctx = MapContext::new().var("qualify_domain", cfg.main.str("qualify_domain"));
    assert_eq!(
        expand(cfg.main.str("smtp_banner"), &ctx).unwrap(),
        "test.ex XYZ"
    );

    let src = root.join("HEAD/test/confs/0314");
    let cfg = load_conf(
        &tree,
        "0314",
        &src,
        &[("SERVER", "server"), ("LOG_SELECTOR", "-connection_reject")],
        &[],
    )
    .expect("0314");
    assert_eq!(cfg.main.str("log_selector"), "-connection_reject");
    assert_eq!(cfg.main.str("host_reject_connection"), "127.0.0.1");
}
