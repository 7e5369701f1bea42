//! The binary crate's modules import downward only.
//!
//! `LAYERS` below is the one place the order is written: top (the entry
//! point) first. A module may use what is in a lower layer; it may not use
//! anything in its own layer (other than itself) or above. A module not
//! named in `LAYERS` belongs to its nearest named ancestor (so `deliver::route`
//! and its files `route/mod.rs`, `route/hosts.rs` are one unit, free to use
//! each other). Because every allowed import goes strictly down, no circle
//! between units can form.
//!
//! The test reads every file under `src/`, and collects each path that
//! names a module of the crate: `crate::...`, `super::...`, `self::...`, and
//! paths that start with a child module the file declares (`mod route;` ...
//! `route::Routed`), `use` groups (`use crate::{a, b::c}`) included.
//! Comments and string literals are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top to bottom.
const LAYERS: &[&[&str]] = &[
    // Command-line dispatch.
    &["main"],
    // Entry points.
    &["daemon"],
    &[
        "queue",
        "info",
        "address_test",
        "expand_test",
        "filter_test",
        "spool_admin",
        "retry_test",
    ],
    // Exim's hints utilities (the binary called by their names).
    &["exinext"],
    &["dbutil"],
    &["submit"],
    // SMTP session driver: the loop, then per-event policy, TLS, the byte
    // stream and the connection's facts.
    &["smtp_in"],
    &["smtp_in::events"],
    &["smtp_in::tls", "smtp_in::auth"],
    &["smtp_in::io", "smtp_in::conn", "smtp_in::replay"],
    // The ACLs of a message that does not come over SMTP.
    &["not_smtp"],
    // Policy, and host lists matched with the lookups they need.
    &["acl"],
    &["host_lists"],
    // Delivery: orchestration, transport running, outcome recording, the
    // transports, routing.
    &["deliver"],
    &["deliver::transport"],
    &["deliver::record", "deliver::pipe", "deliver::autoreply"],
    &["deliver::appendfile", "deliver::smtp"],
    &["deliver::route"],
    &["bounce"],
    // The one way into the spool.
    &["receive"],
    // Exim filters: running a parsed filter.
    &["filter"],
    // Address rewriting where oxim applies it (the engine is oxim-conf's).
    &["rewrite"],
    // Configuration, names, log and spool handles.
    &["ctx"],
    // Plain data and helpers.
    &[
        "loaded",
        "retry",
        "message",
        "dns",
        "privilege",
        "config_error",
    ],
    &["harness"],
    &["vars", "cli", "settings"],
    &[
        "time",
        "random",
        "errno",
        "condition",
        "metrics",
        "dkim",
        "hints_file",
    ],
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

/// Tokens with their line numbers; comments, strings and char literals
/// dropped.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let count_lines =
        |from: usize, to: usize, b: &[char]| b[from..to].iter().filter(|&&c| c == '\n').count();
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let start = i;
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i, &b);
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            line += count_lines(start, i.min(b.len()), &b);
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            // Raw strings: r"..", r#".."#, br"..".
            if (word == "r" || word == "br") && matches!(b.get(i), Some('"') | Some('#')) {
                let mut hashes = 0;
                while b.get(i) == Some(&'#') {
                    hashes += 1;
                    i += 1;
                }
                if b.get(i) == Some(&'"') {
                    let s = i;
                    i += 1;
                    loop {
                        if i >= b.len() {
                            break;
                        }
                        if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                            i += 1 + hashes;
                            break;
                        }
                        i += 1;
                    }
                    line += count_lines(s, i.min(b.len()), &b);
                    continue;
                }
            }
            out.push((Tok::Ident(word), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match c {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    '*' => Tok::Star,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Parse a path from `toks[i]` (an identifier) on, with `use` groups
/// expanded: every path it names, and the index after it.
fn parse_path(toks: &[(Tok, usize)], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut segs = Vec::new();
    loop {
        match toks.get(i) {
            Some((Tok::Ident(s), _)) => segs.push(s.clone()),
            Some((Tok::Star, _)) => {
                segs.push("*".into());
                return (vec![segs], i + 1);
            }
            _ => return (vec![segs], i),
        }
        i += 1;
        if toks.get(i).map(|t| &t.0) != Some(&Tok::PathSep) {
            return (vec![segs], i);
        }
        i += 1;
        if toks.get(i).map(|t| &t.0) == Some(&Tok::Open) {
            i += 1;
            let mut all = Vec::new();
            loop {
                match toks.get(i).map(|t| &t.0) {
                    Some(Tok::Close) => {
                        i += 1;
                        break;
                    }
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::Ident(_)) | Some(Tok::Star) => {
                        let (subs, next) = parse_path(toks, i);
                        for s in subs {
                            let mut p = segs.clone();
                            // `self` in a group names the prefix itself.
                            p.extend(s.into_iter().filter(|x| x != "self"));
                            all.push(p);
                        }
                        i = next;
                        // `x as y`
                        if ident(toks.get(i)) == Some("as") {
                            i += 2;
                        }
                    }
                    None => break,
                    _ => i += 1,
                }
            }
            return (all, i);
        }
    }
}

/// The module path a file defines: `src/deliver/route/mod.rs` is
/// `deliver::route`, `src/main.rs` the crate root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "main") {
        segs.pop();
    }
    segs
}

struct Import {
    from: Vec<String>,
    to: Vec<String>,
    file: PathBuf,
    line: usize,
}

fn imports(src: &Path, file: &Path) -> Vec<Import> {
    let text = std::fs::read_to_string(file).unwrap();
    let toks = tokenize(&text);
    let module = module_of(src, file);
    // Children declared in the file (`mod x;`): paths may start with them.
    let children: Vec<String> = toks
        .windows(3)
        .filter(|w| ident(Some(&w[0])) == Some("mod") && w[2].0 != Tok::Open)
        .filter_map(|w| ident(Some(&w[1])).map(str::to_string))
        .collect();
    let mut out = Vec::new();
    // Inline modules (`mod tests { ... }`): (module path, brace depth).
    let mut scopes: Vec<(Vec<String>, usize)> = vec![(module.clone(), 0)];
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if scopes.len() > 1 && scopes.last().unwrap().1 == depth {
                    scopes.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), Some((Tok::Open, _))) =
                    (ident(toks.get(i + 1)), toks.get(i + 2))
                {
                    let mut m = scopes.last().unwrap().0.clone();
                    m.push(name.to_string());
                    scopes.push((m, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(w) => {
                let after_sep = i > 0 && toks[i - 1].0 == Tok::PathSep;
                let before_sep = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep);
                let current = scopes.last().unwrap().0.clone();
                let at_file_level = scopes.len() == 1;
                if !after_sep && before_sep {
                    let base: Option<Vec<String>> = match w.as_str() {
                        "crate" | "super" | "self" => Some(Vec::new()),
                        c if at_file_level && children.iter().any(|x| x == c) => Some(Vec::new()),
                        _ => None,
                    };
                    if base.is_some() {
                        let (paths, next) = parse_path(&toks, i);
                        for p in paths {
                            if let Some(to) = resolve(&current, &p) {
                                out.push(Import {
                                    from: module.clone(),
                                    to,
                                    file: file.to_path_buf(),
                                    line: *line,
                                });
                            }
                        }
                        i = next;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// An absolute module path for `path` as written in module `current`.
fn resolve(current: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut segs = path.iter().peekable();
    let mut base: Vec<String> = match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.next();
            Vec::new()
        }
        Some("self") => {
            segs.next();
            current.to_vec()
        }
        Some("super") => current.to_vec(),
        _ => current.to_vec(),
    };
    while segs.peek().map(|s| s.as_str()) == Some("super") {
        segs.next();
        base.pop()?;
    }
    base.extend(segs.cloned());
    Some(base)
}

/// The unit (an entry of `LAYERS`) a module path belongs to, and its layer.
fn unit_of(path: &[String]) -> Option<(&'static str, usize)> {
    let mut best: Option<(&'static str, usize, usize)> = None;
    for (layer, units) in LAYERS.iter().enumerate() {
        for &u in units.iter() {
            let useg: Vec<&str> = if u == "main" {
                Vec::new()
            } else {
                u.split("::").collect()
            };
            let matches = useg.len() <= path.len() && useg.iter().zip(path).all(|(a, b)| a == b);
            if matches && best.is_none_or(|(_, _, n)| useg.len() > n) {
                best = Some((u, layer, useg.len()));
            }
        }
    }
    best.map(|(u, l, _)| (u, l))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every violation found in the crate whose sources are in `src`.
fn violations(src: &Path) -> Vec<String> {
    scan(src).0
}

/// The violations, and every import between two units.
fn scan(src: &Path) -> (Vec<String>, BTreeMap<(&'static str, &'static str), usize>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for f in &files {
        let module = module_of(src, f);
        let Some((from_unit, from_layer)) =
            unit_of(&module).filter(|(u, _)| *u != "main" || module.is_empty())
        else {
            problems.push(format!(
                "{}: module `{}` is in no layer: add it to LAYERS in tests/layers.rs",
                f.display(),
                module.join("::")
            ));
            continue;
        };
        for imp in imports(src, f) {
            // A path that names no module below the root (an item of
            // main.rs) belongs to the root.
            let (to_unit, to_layer) = unit_of(&imp.to).unwrap();
            if to_unit == from_unit {
                continue;
            }
            *edges.entry((from_unit, to_unit)).or_default() += 1;
            if to_layer <= from_layer {
                problems.push(format!(
                    "{}:{}: `{}` ({}) uses `{}` ({}, layer {}): {} import",
                    imp.file.display(),
                    imp.line,
                    imp.from.join("::"),
                    from_unit,
                    imp.to.join("::"),
                    to_unit,
                    to_layer,
                    if to_layer == from_layer {
                        "same-layer"
                    } else {
                        "upward"
                    }
                ));
            }
        }
    }
    (problems, edges)
}

#[test]
fn modules_import_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (problems, edges) = scan(&src);
    // The scanner sees each kind of path: `crate::`, a child module
    // (`route::` in deliver/mod.rs), `super::`, `use` groups.
    for e in [
        ("smtp_in", "acl"),
        ("deliver", "deliver::route"),
        ("smtp_in::tls", "smtp_in::conn"),
        ("daemon", "smtp_in"),
    ] {
        assert!(edges.contains_key(&e), "import {e:?} not seen: {edges:?}");
    }
    assert!(
        problems.is_empty(),
        "layering broken (order in tests/layers.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_layer_unit_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for units in LAYERS {
        for u in units.iter().filter(|u| **u != "main") {
            let rel = u.replace("::", "/");
            let file = src.join(format!("{rel}.rs"));
            let dir = src.join(&rel).join("mod.rs");
            assert!(
                file.exists() || dir.exists(),
                "LAYERS names `{u}`, which has no file"
            );
        }
    }
}

/// The scanner itself: an upward import in a scratch tree is found, in
/// each form a path can take.
#[test]
fn scanner_finds_upward_imports() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, s: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    let lines = [
        "use crate::daemon::run;",
        "use crate::{cli, smtp_in::tls};",
        "fn f() { crate::queue::list(); }",
    ];
    for l in lines {
        write("ctx.rs", &format!("{l}\n"));
        write("main.rs", "mod ctx;\nmod daemon;\n");
        let v = violations(src);
        assert!(
            v.iter().any(|p| p.contains("upward import")),
            "not found in {l:?}: {v:?}"
        );
    }
    // Comments and strings are not paths.
    write(
        "ctx.rs",
        "// use crate::daemon;\n/* crate::queue */\nconst S: &str = \"crate::daemon\";\nuse crate::vars::Vars;\n",
    );
    let v = violations(src);
    assert!(v.iter().all(|p| !p.contains("ctx.rs")), "{v:?}");
    // super:: from a child of deliver into deliver itself.
    write("deliver/route.rs", "use super::Item;\n");
    let v = violations(src);
    assert!(v.iter().any(|p| p.contains("deliver/route.rs:1")), "{v:?}");
    // super:: inside an inline test module is the file's own module.
    write(
        "deliver/route.rs",
        "#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    let v = violations(src);
    assert!(v.iter().all(|p| !p.contains("route.rs")), "{v:?}");
}

/// Every crate of the workspace but `net` forbids unsafe code at its roots
/// (`src/lib.rs`, `src/main.rs`): the unsafe code lives in one place.
#[test]
fn only_net_may_hold_unsafe_code() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if name == "net" {
            continue;
        }
        for root in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(root);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            checked += 1;
            assert!(
                text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
                "{} lacks #![forbid(unsafe_code)]",
                path.display()
            );
        }
    }
    assert!(checked >= 10, "only {checked} crate roots found");
}

/// No source file of the binary crate grows past what one reader can hold
/// (the project's rule: split a file when it passes ~700 lines).
#[test]
fn no_source_file_is_too_long() {
    const MOST: usize = 750;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MOST).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split by what they do:\n{}",
        long.join("\n")
    );
}
