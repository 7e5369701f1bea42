//! Exim's expected files are already munged, so munging them again must
//! change nothing: message ids come back in the same `aX aY aZ bA ...` order,
//! dates, sizes, pids and ports stay as they are. Checked per test, in Exim's
//! comparison order, for both trees. Needs Exim's test files (skipped loudly
//! without them, except with `CI=true`); no root needed.

use std::fs;
use std::path::{Path, PathBuf};

use oxim_runtest::compare::SERVER_SEPARATOR;
use oxim_runtest::munge::{FileKind, Identity, Munger};
use oxim_runtest::tree::TestTree;

fn exim_tests() -> Option<PathBuf> {
    let dir = std::env::var_os("OXIM_EXIM_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/exim-tests")
        });
    if dir.join("2d58d8154/test/scripts").is_dir() {
        return Some(dir);
    }
    let msg = format!("Exim's test files not found at {}", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}; they are required in CI");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

fn identity() -> Identity {
    Identity {
        hostname: "testhost.oxim.example".into(),
        testdir: "/tmp/oxim-runtest-0000-xyz".into(),
        caller: "oximcaller".into(),
        caller_group: "oximgroup".into(),
        caller_home: "/home/oximcaller".into(),
        caller_uid: 4242,
        caller_gid: 4243,
        ipv4: "198.18.0.1".into(),
        ipv6: Some("2001:2::1".into()),
    }
}

/// Munge one expected stream file the way the runner munges actual output.
fn remunge(m: &mut Munger, text: &str, kind: FileKind) -> String {
    match text.split_once(SERVER_SEPARATOR) {
        Some((client, server)) => format!(
            "{}{SERVER_SEPARATOR}{}",
            m.munge_text(client, kind),
            m.munge_text(server, kind)
        ),
        None => m.munge_text(text, kind),
    }
}

/// A file as text; the few non-UTF-8 expected files are read with their
/// invalid bytes replaced (the runner compares those byte for byte).
fn read_lossy(path: &Path) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Checks every expected file of `root`; returns how many were checked and
/// the tests with a file that munging changed (with the first such file).
fn check_tree(root: &Path) -> (usize, Vec<(String, String)>) {
    let tree = TestTree::open(root, None).expect("tree");
    let mut checked = 0;
    let mut changed: Vec<(String, String)> = Vec::new();
    for (num, _) in tree.all_tests() {
        let mut m = Munger::new(tree.style(), identity());
        let streams = [
            ("paniclog", FileKind::Log),
            ("rejectlog", FileKind::Log),
            ("log", FileKind::Log),
            ("stdout", FileKind::Stdout),
            ("stderr", FileKind::Stderr),
        ];
        for (dir, kind) in streams {
            let path = root.join(dir).join(&num);
            let Some(text) = read_lossy(&path) else {
                continue;
            };
            if remunge(&mut m, &text, kind) != text {
                changed.push((num.clone(), format!("{dir}/{num}")));
            }
            checked += 1;
        }
        for (dir, kind) in [("mail", FileKind::Mail), ("msglog", FileKind::Msglog)] {
            let Ok(rd) = fs::read_dir(root.join(dir)) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{num}.")))
                .collect();
            names.sort();
            for name in names {
                let suffix = &name[num.len() + 1..];
                if kind == FileKind::Msglog && m.munge_text(suffix, kind) != suffix {
                    changed.push((num.clone(), format!("msglog name {name}")));
                }
                let Some(text) = read_lossy(&root.join(dir).join(&name)) else {
                    continue;
                };
                if m.munge_text(&text, kind) != text {
                    changed.push((num.clone(), format!("{dir}/{name}")));
                }
                checked += 1;
            }
        }
    }
    (checked, changed)
}

/// HEAD tests whose expected files must be fixpoints: the ones oxim is
/// known to pass (a file that munging changes could never match).
const HEAD_MUST_BE_FIXPOINTS: &[&str] = &[
    "0012", "0106", "0242", "0314", "0363", "0409", "0441", "0549", "0579", "0602", "0605", "1090",
    "1091",
];

#[test]
fn expected_files_are_munging_fixpoints() {
    let Some(dir) = exim_tests() else { return };
    let (old, old_changed) = check_tree(&dir.join("2d58d8154/test"));
    assert!(
        old_changed.is_empty(),
        "2019 tree: munging changed {old_changed:?}"
    );
    let (head, head_changed) = check_tree(&dir.join("HEAD/test"));
    println!(
        "HEAD: {head} files checked, {} not fixpoints: {:?}",
        head_changed.len(),
        head_changed
    );
    let bad: Vec<_> = head_changed
        .iter()
        .filter(|(n, _)| HEAD_MUST_BE_FIXPOINTS.contains(&n.as_str()))
        .collect();
    assert!(bad.is_empty(), "HEAD: munging changed {bad:?}");
    assert!(
        old >= 10 && head >= 10,
        "too few files checked: {old} old, {head} HEAD"
    );
}
