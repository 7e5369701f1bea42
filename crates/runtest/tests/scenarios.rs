//! The runner against its own scenarios (no MTA needed) and against a fake
//! MTA that shows what the runner hands to `exim`. Needs root.

mod common;

use common::{copy_tree, crate_dir, require_root, run};

#[test]
fn own_scenarios_pass() {
    require_root("own_scenarios_pass");
    let tree = crate_dir().join("scenarios");
    let (code, out, o) = run(&["--tests", tree.to_str().unwrap()]);
    assert_eq!(
        code,
        0,
        "stdout:\n{out}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for t in ["9001 PASS", "9002 PASS", "9003 PASS", "9004 PASS"] {
        assert!(out.contains(t), "{t} missing in:\n{out}");
    }
    assert!(out.ends_with("4 passed, 0 failed, 0 skipped\n"), "{out}");
}

#[test]
fn one_changed_character_fails_with_diff() {
    require_root("one_changed_character_fails_with_diff");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&crate_dir().join("scenarios"), tmp.path());
    let expected = tmp.path().join("stdout/9001");
    let text = std::fs::read_to_string(&expected).unwrap();
    assert!(text.contains("<<< 250 OK queued\n"));
    std::fs::write(
        &expected,
        text.replace("<<< 250 OK queued\n", "<<< 250 OK queueD\n"),
    )
    .unwrap();
    let (code, out, _) = run(&["--tests", tmp.path().to_str().unwrap(), "9001"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("9001 FAIL"), "{out}");
    assert!(out.contains("-<<< 250 OK queueD"), "{out}");
    assert!(out.contains("+<<< 250 OK queued"), "{out}");
    assert!(out.ends_with("0 passed, 1 failed, 0 skipped\n"), "{out}");
}

#[test]
fn fake_mta_runs_bad_input_fails_cleanly() {
    require_root("fake_mta_runs_bad_input_fails_cleanly");
    let fixtures = crate_dir().join("tests/fixtures");
    let tree = fixtures.join("fake-tree");
    let exim = fixtures.join("fake-exim.sh");
    let (code, out, o) = run(&[
        "--tests",
        tree.to_str().unwrap(),
        "--exim",
        exim.to_str().unwrap(),
        "--timeout",
        "12",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let line = |num: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(num))
            .unwrap_or_else(|| panic!("no verdict for {num} in:\n{out}"))
            .to_string()
    };
    assert!(line("9101").starts_with("9101 PASS"), "{out}");
    assert!(line("9102").contains("unknown script command"), "{out}");
    assert!(line("9103").contains("never wrote its pid file"), "{out}");
    assert!(line("9104").contains("missing configuration"), "{out}");
    assert!(
        line("9105").contains("exited with status 3, expected 0"),
        "{out}"
    );
    assert!(line("9106").contains("timed out after 12 s"), "{out}");
    assert_eq!(
        line("9111"),
        "9111 SKIP: unmet REQUIRES: support Teleportation"
    );
    assert!(out.ends_with("1 passed, 5 failed, 1 skipped\n"), "{out}");
}
