//! The no-regression gate: every test listed in `passing-HEAD.txt` (one
//! test number per line, sorted; `#` comments allowed) must PASS on Exim's
//! HEAD tree. Runs them with `--jobs 2` and fails naming each listed test
//! that did not pass. Add a number when a test starts passing; never remove
//! one to make this green. Needs root and a built `oxim` binary.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{crate_dir, require_root, run, runner};

fn head_tree() -> Option<PathBuf> {
    let dir = std::env::var_os("OXIM_EXIM_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../../../shared/exim-tests"))
        .join("HEAD/test");
    if dir.join("scripts").is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "Exim's HEAD test tree not found at {} (set OXIM_EXIM_TESTS)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; it is required in CI");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

/// The pinned list: numbers, sorted, no duplicates.
fn pinned() -> Vec<String> {
    let path = crate_dir().join("passing-HEAD.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let list: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for t in &list {
        assert!(
            t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()),
            "{}: {t:?} is not a test number",
            path.display()
        );
    }
    let mut sorted = list.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        list,
        sorted,
        "{} must be sorted without duplicates",
        path.display()
    );
    list
}

#[test]
fn pinned_head_tests_still_pass() {
    let list = pinned();
    require_root("pinned HEAD tests");
    let Some(tree) = head_tree() else { return };
    let oxim = std::env::var_os("OXIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| runner().with_file_name("oxim"));
    assert!(
        oxim.is_file(),
        "oxim binary {} not found: build it first (cargo build -p oxim) or set OXIM_BIN",
        oxim.display()
    );
    let started = Instant::now();
    let mut args = vec![
        "--tests".to_string(),
        tree.display().to_string(),
        "--exim".to_string(),
        oxim.display().to_string(),
        "--jobs".to_string(),
        "2".to_string(),
        "--timeout".to_string(),
        "120".to_string(),
    ];
    args.extend(list.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_code, out, o) = run(&argv);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "pinned HEAD tests: {} test(s) in {secs:.0} s with --jobs 2",
        list.len()
    );
    let mut bad = Vec::new();
    for t in &list {
        let prefix = format!("{t} ");
        match out.lines().find(|l| l.starts_with(&prefix)) {
            Some(l) if l.starts_with(&format!("{t} PASS")) => {}
            Some(l) => bad.push(l.to_string()),
            None => bad.push(format!("{t}: no verdict")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} pinned HEAD test(s) no longer pass:\n{}\n\nfull output:\n{out}\n{}",
        bad.len(),
        bad.join("\n"),
        String::from_utf8_lossy(&o.stderr)
    );
}
