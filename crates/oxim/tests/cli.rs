//! The Exim command line on the real binary: -bV, -bP on Exim's own 1990
//! configuration, --help, configuration errors with file and line.

mod common;

use common::*;
use std::path::PathBuf;

/// `$OXIM_EXIM_TESTS`, else `<repo>/../shared/exim-tests`; None (with a loud
/// message) when absent, a failure under `CI=true`.
fn exim_tests() -> Option<PathBuf> {
    let dir = std::env::var_os("OXIM_EXIM_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/exim-tests")
        });
    if dir.join("2d58d8154/test/confs/1990").is_file() {
        return Some(dir);
    }
    let msg = format!("Exim's test files not found at {}", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; they are required in CI");
    }
    eprintln!("\n*** SKIPPED: {msg} (set OXIM_EXIM_TESTS) ***\n");
    None
}

#[test]
fn print_option_from_exim_1990_config() {
    let Some(tests) = exim_tests() else { return };
    let tree = tests.join("2d58d8154/test");
    let dir = TestDir::new();
    // The harness's substitutions: DIR/ and the aux-var files.
    std::fs::create_dir_all(dir.path().join("aux-var")).unwrap();
    for f in ["std_conf_prefix", "tls_conf_prefix"] {
        let text = std::fs::read_to_string(tree.join("aux-var-src").join(f)).unwrap();
        dir.write(
            &format!("aux-var/{f}"),
            &text.replace("DIR/", &format!("{}/", dir.path().display())),
        );
    }
    let conf = std::fs::read_to_string(tree.join("confs/1990")).unwrap();
    let conf = dir.write(
        "test-config",
        &conf
            .replace("DIR/", &format!("{}/", dir.path().display()))
            .replace("PORT_D", "1225"),
    );
    let conf = conf.to_str().unwrap();
    let out = dir.run_ok(
        &["-C", conf, "-DSERVER=server", "-bP", "primary_hostname"],
        "",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "primary_hostname = myhost.test.ex\n"
    );
    let out = dir.run_ok(&["-C", conf, "-bV"], "");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let support = text
        .lines()
        .find(|l| l.starts_with("Support for:"))
        .expect("Support for: line");
    assert_eq!(
        support.contains("TCP_Fast_Open"),
        cfg!(target_os = "linux"),
        "{text}"
    );
    assert!(
        text.contains("Routers: accept dnslookup manualroute redirect"),
        "{text}"
    );
    assert!(
        text.contains("Lookups (built-in): lsearch wildlsearch nwildlsearch iplsearch"),
        "{text}"
    );
    // Exim's runtest asks `-bP macro NAME` for `feature` lines of REQUIRES.
    let out = dir.run_ok(&["-C", conf, "-bP", "macro", "_HAVE_TLS"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "_HAVE_TLS=y\n");
    let out = dir.run(&["-C", conf, "-bP", "macro", "_HAVE_NOTHING"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "macro _HAVE_NOTHING not found\n"
    );
    assert!(
        text.contains(&format!("Configuration file is {conf}")),
        "{text}"
    );
}

/// Strip the `YYYY-MM-DD HH:MM:SS ` a log line starts with.
fn unstamped(line: &str) -> &str {
    let b = line.as_bytes();
    assert!(
        b.len() > 20 && b[4] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b' ',
        "no timestamp: {line}"
    );
    &line[20..]
}

/// As Exim: `Exim configuration error in line N of FILE:` and the message
/// indented on the next line, on stderr (timestamped) and in the panic log
/// that `log_file_path` named above the bad line; exit status 1. `-bV` (a
/// testing mode) writes stderr only; `-bP` (which forces `-v`) shows the
/// debug form `LOG: PANIC DIE`.
#[test]
fn config_errors_name_file_and_line_and_exit_1() {
    let dir = TestDir::new();
    let inc = dir.write("inc.conf", "# included\ncolour = blue\n");
    let main = dir.write(
        "main.conf",
        &format!(
            "log_file_path = {}/%slog\nprimary_hostname = x.example\n.include {}\n",
            dir.path().display(),
            inc.display()
        ),
    );
    let expected = format!(
        "Exim configuration error in line 2 of {}:\n  main option \"colour\" unknown\n",
        inc.display()
    );
    let panic_log = dir.path().join("paniclog");
    let out = dir.run(&["-C", main.to_str().unwrap(), "-bV"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(unstamped(&err), expected);
    assert!(out.stdout.is_empty());
    assert!(!panic_log.exists(), "-bV wrote the panic log");

    let out = dir.run(&["-C", main.to_str().unwrap(), "-bP", "qualify_domain"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, format!("LOG: PANIC DIE\n  {expected}"));
    let logged = std::fs::read_to_string(&panic_log).expect("panic log written");
    assert_eq!(unstamped(&logged), expected);

    // Above the setting of log_file_path there is no panic log to write.
    std::fs::remove_file(&panic_log).unwrap();
    let early = dir.write(
        "early.conf",
        &format!(
            "colour = blue\nlog_file_path = {}/%slog\n",
            dir.path().display()
        ),
    );
    let out = dir.run(&["-C", early.to_str().unwrap(), "-bp"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        unstamped(&err),
        format!(
            "Exim configuration error in line 1 of {}:\n  main option \"colour\" unknown\n",
            early.display()
        )
    );
    assert!(!panic_log.exists());
}

/// `-brt`: the first rule whose error, senders and pattern match, in
/// Exim's words (test 0099/0447 style); an error name that is not one
/// exits 1.
#[test]
fn retry_rule_testing() {
    let dir = TestDir::new();
    let conf = dir.write(
        "retry.conf",
        &format!(
            "spool_directory = {d}/spool\nlog_file_path = {d}/%slog\n\
             primary_hostname = x.example\n\
             begin retry\n\
             *  *  senders = a@b.c  G,2d,2m,1.5\n\
             *  timeout_connect  F,1d,1m\n\
             *  timeout  F,1d,2m\n\
             *.star.ex  *  F,3d,10m\n\
             *  *  F,12d,150m\n",
            d = dir.path().display()
        ),
    );
    let brt = |args: &[&str]| {
        let mut v = vec!["-C", conf.to_str().unwrap()];
        v.extend_from_slice(args);
        let out = dir.run(&v, "");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        brt(&["-brt", "x@dark.star.ex"]),
        (Some(0), "Retry rule: *.star.ex  *  F,3d,10m; \n".into())
    );
    assert_eq!(
        brt(&["-brt", "a.c", "timeout"]),
        (Some(0), "Retry rule: *  timeout  F,1d,2m; \n".into())
    );
    assert_eq!(
        brt(&["-brt", "a.c", "timeout_connect"]),
        (
            Some(0),
            "Retry rule: *  timeout_connect  F,1d,1m; \n".into()
        )
    );
    assert_eq!(
        brt(&["-f", "a@b.c", "-brt", "x@y.z"]),
        (Some(0), "Retry rule: *  *  G,2d,2m,1.5; \n".into())
    );
    assert_eq!(
        brt(&["-brt", "x@y.z"]),
        (Some(0), "Retry rule: *  *  F,1w5d,2h30m; \n".into())
    );
    assert_eq!(
        brt(&["-brt", "x@y.z", "refused_B"]),
        (Some(1), "A or MX expected after \"refused\"\n".into())
    );
}

#[test]
fn help_and_unknown_flags() {
    let dir = TestDir::new();
    let out = dir.run(&["--help"], "");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("-bd, -bdf") && help.contains("-oX"), "{help}");
    let out = dir.run(&["-Qnonsense"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown or unsupported option -Qnonsense")
    );
}

/// `-Mf`/`-Mt` freeze and thaw with Exim's wording and log lines; `-Mvc`
/// shows the message as a transport writes it; `-Mvb` the data file as
/// stored; `-Mvh` of a message that is not there says so and exits 1.
#[test]
fn spool_admin_options_view_freeze_and_thaw() {
    let dir = TestDir::new();
    dir.write(
        "conf",
        &format!(
            "{TEST_MAIN}begin routers\nr:\n  driver = accept\n  transport = t\n\
             begin transports\nt:\n  driver = appendfile\n  file = DIR/mbox\n"
        ),
    );
    let conf = dir.path().join("conf");
    let c = conf.to_str().unwrap();
    dir.run_ok(&["-C", c, "-odq", "u@test.ex"], "Subject: hi\n\nbody\n");
    let bp = String::from_utf8_lossy(&dir.run_ok(&["-C", c, "-bp"], "").stdout).into_owned();
    let id = bp
        .split_whitespace()
        .nth(2)
        .expect("an id in -bp")
        .to_string();
    let say = |args: &[&str]| {
        let mut a = vec!["-C", c];
        a.extend_from_slice(args);
        let out = dir.run(&a, "");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        say(&["-Mf", &id]),
        (Some(0), format!("Message {id} is now frozen\n"))
    );
    assert_eq!(
        say(&["-Mf", &id]),
        (Some(1), format!("Message {id} is already frozen\n"))
    );
    assert_eq!(
        say(&["-Mt", &id]),
        (Some(0), format!("Message {id} is no longer frozen\n"))
    );
    let log = dir.read("log/mainlog");
    assert!(log.contains(&format!("{id} frozen by ")), "{log}");
    assert!(log.contains(&format!("{id} unfrozen by ")), "{log}");
    let (code, copy) = say(&["-Mvc", &id]);
    assert_eq!(code, Some(0));
    assert!(
        copy.starts_with("Received: ")
            && copy.contains("Subject: hi\n")
            && copy.ends_with("\n\nbody\n"),
        "{copy}"
    );
    assert_eq!(say(&["-Mvb", &id]), (Some(0), format!("{id}-D\nbody\n")));
    let (code, text) = say(&["-Mvh", "1xaaaa-000000-00"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        text,
        "Failed to open input file for 1xaaaa-000000-00-H: No such file or directory\n"
    );
}
