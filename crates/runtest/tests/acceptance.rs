//! The acceptance checks on a small copy of Exim's HEAD tree (test
//! 0012, which oxim passes): one expected line changed must FAIL showing
//! that line; a script with an unknown command must be an ERROR, never a
//! PASS or SKIP. Needs root and a built `oxim` binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_tree, crate_dir, require_root, run, runner};

fn head_tree() -> Option<PathBuf> {
    let dir = std::env::var_os("OXIM_EXIM_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../../../shared/exim-tests"))
        .join("HEAD/test");
    if dir.join("scripts").is_dir() {
        return Some(dir);
    }
    let msg = format!("Exim's HEAD test tree not found at {}", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; it is required in CI");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

/// A tree holding only test 0012 (script, configuration, expected files)
/// plus the shared zone and auxiliary files.
fn small_copy(head: &Path, to: &Path) {
    fs::create_dir_all(to.join("scripts/0000-Basic")).unwrap();
    fs::copy(
        head.join("scripts/0000-Basic/0012"),
        to.join("scripts/0000-Basic/0012"),
    )
    .unwrap();
    for d in ["dnszones-src", "aux-var-src"] {
        copy_tree(&head.join(d), &to.join(d));
    }
    std::os::unix::fs::symlink(head.join("aux-fixed"), to.join("aux-fixed")).unwrap();
    for d in [
        "confs",
        "log",
        "stdout",
        "stderr",
        "mail",
        "msglog",
        "rejectlog",
        "paniclog",
    ] {
        fs::create_dir_all(to.join(d)).unwrap();
        let Ok(rd) = fs::read_dir(head.join(d)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "0012" || name.starts_with("0012.") {
                fs::copy(e.path(), to.join(d).join(&name)).unwrap();
            }
        }
    }
}

fn oxim() -> PathBuf {
    let bin = std::env::var_os("OXIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| runner().with_file_name("oxim"));
    assert!(bin.is_file(), "build oxim first: {}", bin.display());
    bin
}

#[test]
fn changed_expected_line_fails_and_unknown_command_errors() {
    require_root("acceptance checks");
    let Some(head) = head_tree() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("test");
    small_copy(&head, &tree);
    let bin = oxim();
    let args = |t: &str| {
        vec![
            "--tests".to_string(),
            tree.display().to_string(),
            "--exim".to_string(),
            bin.display().to_string(),
            t.to_string(),
        ]
    };
    let go = |t: &str| {
        let a = args(t);
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&argv)
    };
    // The unchanged copy passes.
    let (code, out, _) = go("0012");
    assert!(out.contains("0012 PASS"), "{out}");
    assert_eq!(code, 0, "{out}");

    // One expected line changed: FAIL, and the reason shows that line.
    let log = tree.join("log/0012");
    let text = fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .next()
        .expect("log/0012 has a line")
        .to_string();
    let changed = line.replacen("<=", "<~", 1);
    assert_ne!(changed, line);
    fs::write(&log, text.replacen(&line, &changed, 1)).unwrap();
    let (code, out, _) = go("0012");
    let verdict = out.lines().find(|l| l.starts_with("0012 ")).unwrap_or("");
    assert!(verdict.starts_with("0012 FAIL: differs: log/0012"), "{out}");
    assert!(verdict.contains(&format!("-{changed}")), "{out}");
    assert!(out.contains(&format!("+{line}")), "{out}");
    assert_eq!(code, 1, "{out}");
    fs::write(&log, text).unwrap();

    // A script with an unknown command: ERROR, never PASS or SKIP.
    let script = tree.join("scripts/0000-Basic/0012");
    let s = fs::read_to_string(&script).unwrap();
    let (title, rest) = s.split_once('\n').unwrap();
    fs::write(&script, format!("{title}\nfrobnicate the widgets\n{rest}")).unwrap();
    let (code, out, _) = go("0012");
    let verdict = out.lines().find(|l| l.starts_with("0012 ")).unwrap_or("");
    assert!(
        verdict.starts_with("0012 ERROR") && verdict.contains("unknown script command"),
        "{out}"
    );
    assert!(
        out.contains("0 passed, 0 failed, 0 skipped, 1 errors"),
        "{out}"
    );
    assert_eq!(code, 1, "{out}");
}
