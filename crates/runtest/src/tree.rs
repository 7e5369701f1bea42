//! Exim-layout test trees: locating scripts, `REQUIRES` files, detecting
//! the tree's style, and checking requirements against `exim -bV`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use thiserror::Error;

use crate::munge::Style;

/// Problems with a test tree or a test selection.
#[derive(Debug, Error)]
pub enum TreeError {
    /// The directory has no `scripts/` subdirectory.
    #[error("{0}: not an Exim-layout test tree (no scripts/ directory)")]
    NotATree(PathBuf),
    /// A selection word that is neither `NNNN` nor `NNNN-MMMM`.
    #[error("bad test selection {0:?} (want NNNN or NNNN-MMMM)")]
    BadSelection(String),
    /// Reading the tree failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A test tree in Exim's layout (`scripts/`, `confs/`, `log/`, ...).
#[derive(Debug, Clone)]
pub struct TestTree {
    root: PathBuf,
    style: Style,
}

impl TestTree {
    /// Open a tree; the style is detected from its expected files unless given.
    pub fn open(root: &Path, style: Option<Style>) -> Result<TestTree, TreeError> {
        if !root.join("scripts").is_dir() {
            return Err(TreeError::NotATree(root.to_path_buf()));
        }
        let root = fs::canonicalize(root).map_err(|source| TreeError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let style = style.unwrap_or_else(|| detect_style(&root));
        Ok(TestTree { root, style })
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The munging/id style of the tree.
    pub fn style(&self) -> Style {
        self.style
    }

    /// All test numbers with their script paths, sorted by number.
    pub fn all_tests(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(dirs) = fs::read_dir(self.root.join("scripts")) else {
            return out;
        };
        for dir in dirs.filter_map(Result::ok) {
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for f in files.filter_map(Result::ok) {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()) {
                    out.push((name, f.path()));
                }
            }
        }
        out.sort();
        out
    }

    /// The script of one test.
    pub fn script(&self, num: &str) -> Option<PathBuf> {
        self.all_tests()
            .into_iter()
            .find(|(n, _)| n == num)
            .map(|(_, p)| p)
    }

    /// The lines of the `REQUIRES` file next to a script (empty if none).
    pub fn requires(&self, script: &Path) -> Vec<String> {
        script
            .parent()
            .map(|d| d.join("REQUIRES"))
            .and_then(|p| fs::read_to_string(p).ok())
            .map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Resolve a selection (`1990`, `0012-0020`; empty = all) to test numbers.
    /// Explicitly named tests that do not exist are returned too (they fail later).
    pub fn select(&self, words: &[String]) -> Result<Vec<String>, TreeError> {
        let all: Vec<String> = self.all_tests().into_iter().map(|(n, _)| n).collect();
        if words.is_empty() {
            return Ok(all);
        }
        let mut out = Vec::new();
        for w in words {
            let num = |s: &str| -> Result<u32, TreeError> {
                if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TreeError::BadSelection(w.clone()));
                }
                s.parse().map_err(|_| TreeError::BadSelection(w.clone()))
            };
            match w.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    out.extend(
                        all.iter()
                            .filter(|n| n.parse::<u32>().is_ok_and(|v| v >= a && v <= b))
                            .cloned(),
                    );
                }
                None => out.push(format!("{:04}", num(w)?)),
            }
        }
        Ok(out)
    }
}

/// Follow a symbolic link that a copy of Exim's tree kept as a plain file
/// holding the link target (git's form of a link without symlink support:
/// `confs/0952` containing just `0951`): a short file without a newline whose
/// whole content names an existing file next to it. Real files are returned
/// unchanged.
pub fn resolve_link(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        if !fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() < 256) {
            break;
        }
        let Ok(bytes) = fs::read(&p) else { break };
        let plausible =
            !bytes.is_empty() && bytes.len() < 256 && bytes.iter().all(|b| b.is_ascii_graphic());
        if !plausible {
            break;
        }
        let target = String::from_utf8_lossy(&bytes).into_owned();
        let Some(next) = p.parent().map(|d| d.join(&target)) else {
            break;
        };
        if !next.is_file() {
            break;
        }
        p = next;
    }
    p
}

/// Whether a directory holds, at any depth, a link placeholder (see
/// [`resolve_link`]).
fn has_placeholder(dir: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.filter_map(Result::ok).any(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => has_placeholder(&p),
            Ok(t) if t.is_file() => resolve_link(&p) != p,
            _ => false,
        }
    })
}

/// Make `to` show the tree `from` as Exim's checkout would have it: a
/// symbolic link to `from` when it has no link placeholders, else a
/// directory where placeholders become symbolic links to their targets
/// (e.g. the hashed names of `aux-fixed/.../certdir`) and everything else
/// links back to `from`.
pub fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if !has_placeholder(from) {
        return std::os::unix::fs::symlink(from, to);
    }
    fs::create_dir(to)?;
    for e in fs::read_dir(from)?.filter_map(Result::ok) {
        let src = e.path();
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::os::unix::fs::symlink(resolve_link(&src), &dst)?;
        }
    }
    Ok(())
}

/// Guess the style from the expected files: HEAD-style ids or `p1234` pids mean
/// [`Style::Head`], anything else [`Style::Old`].
pub fn detect_style(root: &Path) -> Style {
    let long = Regex::new(r"10Hm[a-zA-Z]{2}-000000005vi-0000").expect("static regex");
    let p1234 = Regex::new(r"pid=p1234").expect("static regex");
    for dir in ["log", "stdout", "msglog", "mail", "rejectlog"] {
        let Ok(rd) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if long.is_match(&name) {
                return Style::Head;
            }
            let Ok(text) = fs::read_to_string(e.path()) else {
                continue;
            };
            if long.is_match(&text) || p1234.is_match(&text) {
                return Style::Head;
            }
        }
    }
    Style::Old
}

/// What the MTA says it supports (`exim -bV`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `Support for:` tokens.
    pub support: BTreeSet<String>,
    /// Lookup types.
    pub lookups: BTreeSet<String>,
    /// Router drivers.
    pub routers: BTreeSet<String>,
    /// Transport drivers.
    pub transports: BTreeSet<String>,
    /// Authenticator drivers.
    pub authenticators: BTreeSet<String>,
    /// Malware scanners (`Malware:` line).
    pub malware: BTreeSet<String>,
}

impl Capabilities {
    /// Parse `exim -bV` output.
    pub fn parse(bv: &str) -> Capabilities {
        let mut c = Capabilities::default();
        for line in bv.lines() {
            let Some((head, rest)) = line.split_once(':') else {
                continue;
            };
            let words = rest.split_whitespace().map(|w| w.to_string());
            let head = head.trim();
            if head == "Support for" {
                c.support.extend(words);
                continue;
            }
            let kind = head.split_whitespace().next().unwrap_or("");
            let target = match kind {
                "Lookups" => &mut c.lookups,
                "Routers" => &mut c.routers,
                "Transports" => &mut c.transports,
                "Authenticators" => &mut c.authenticators,
                "Malware" => &mut c.malware,
                _ => continue,
            };
            // Entries may look like "appendfile/maildir/mailstore": that
            // provides "appendfile", "appendfile/maildir", ... and the parts.
            for w in words {
                let mut parts = w.split('/');
                let first = parts.next().unwrap_or("").to_string();
                target.insert(first.clone());
                for part in parts {
                    target.insert(part.to_string());
                    target.insert(format!("{first}/{part}"));
                }
            }
        }
        c
    }

    /// What Exim's runtest insists on before running anything; `Err` lists what is missing.
    pub fn check_base(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        for r in ["accept", "dnslookup", "manualroute", "redirect"] {
            if !self.routers.contains(r) {
                missing.push(format!("router {r}"));
            }
        }
        for t in ["appendfile", "autoreply", "pipe", "smtp"] {
            if !self.transports.contains(t) {
                missing.push(format!("transport {t}"));
            }
        }
        if !self.lookups.contains("lsearch") {
            missing.push("lookup lsearch".to_string());
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    }

    /// Check `REQUIRES` lines as Exim's runtest does. `feature` says
    /// whether `exim -bP macro NAME` succeeds (`feature` / `not feature`);
    /// `Err` holds the first unmet line, or a line runtest does not know.
    pub fn check_requires(
        &self,
        lines: &[String],
        feature: &dyn Fn(&str) -> bool,
    ) -> Result<(), Unmet> {
        for line in lines {
            let line = line.trim_end();
            let (kind, arg) = line.split_once(' ').unwrap_or((line, ""));
            let arg = arg.trim();
            let ok = match kind {
                "support" => self.support.contains(arg),
                "lookup" => self.lookups.contains(arg),
                "router" => self.routers.contains(arg),
                "transport" => self.transports.contains(arg),
                "authenticator" | "authenticators" => self.authenticators.contains(arg),
                "malware" => self.malware.contains(arg),
                // The sandbox has IPv4 and IPv6 addresses; none of the
                // external daemons (SpamAssassin, ClamAV, redis, ...) runs.
                "running" => matches!(arg, "IPv4" | "IPv6"),
                "file" => fs::File::open(arg).is_ok(),
                "feature" => feature(arg),
                "not" => match arg.strip_prefix("feature ") {
                    Some(m) => !feature(m.trim()),
                    None => return Err(Unmet::Unknown(line.to_string())),
                },
                // The sandbox's IPv6 address is global.
                "ipv6-non-linklocal" => true,
                _ => return Err(Unmet::Unknown(line.to_string())),
            };
            if !ok {
                return Err(Unmet::Missing(line.to_string()));
            }
        }
        Ok(())
    }
}

/// Why a `REQUIRES` file is not satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// This line names something the MTA or the sandbox lacks (SKIP).
    Missing(String),
    /// A line Exim's runtest would not understand (ERROR).
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const BV: &str = "Exim version x.yz #0 built 01-Jan-2026 00:00:00\n\
Support for: crypteq iconv() IPv6 TCP_Fast_Open\n\
Lookups (built-in): lsearch wildlsearch nwildlsearch iplsearch dbm/dbmjz\n\
Authenticators: plaintext\n\
Routers: accept dnslookup manualroute redirect\n\
Transports (built-in): appendfile autoreply pipe smtp\n";

    #[test]
    fn parses_bv_and_checks_requirements() {
        let c = Capabilities::parse(BV);
        assert!(c.support.contains("TCP_Fast_Open"));
        assert!(c.lookups.contains("dbmjz"));
        assert!(c.authenticators.contains("plaintext"));
        assert_eq!(c.check_base(), Ok(()));
        let no = |_: &str| false;
        assert_eq!(
            c.check_requires(&["support TCP_Fast_Open".into()], &no),
            Ok(())
        );
        assert_eq!(c.check_requires(&["support iconv()".into()], &no), Ok(()));
        assert_eq!(
            c.check_requires(&["support GnuTLS".into()], &no),
            Err(Unmet::Missing("support GnuTLS".into()))
        );
        assert_eq!(
            c.check_requires(&["feature _HAVE_X".into()], &no),
            Err(Unmet::Missing("feature _HAVE_X".into()))
        );
        assert_eq!(
            c.check_requires(&["not feature _HAVE_X".into()], &no),
            Ok(())
        );
        assert_eq!(
            c.check_requires(&["running ClamAV".into()], &no),
            Err(Unmet::Missing("running ClamAV".into()))
        );
        assert_eq!(
            c.check_requires(&["frobnicate x".into()], &no),
            Err(Unmet::Unknown("frobnicate x".into()))
        );
        let t = Capabilities::parse("Transports: appendfile/maildir/mailstore smtp\n");
        assert_eq!(
            t.check_requires(&["transport appendfile/maildir".into()], &no),
            Ok(())
        );
        let empty = Capabilities::parse("");
        let err = empty.check_base().unwrap_err();
        assert!(
            err.contains("router accept") && err.contains("lookup lsearch"),
            "{err}"
        );
    }

    #[test]
    fn follows_link_placeholders() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("0951"), "# real\n").unwrap();
        fs::write(d.path().join("0952"), "0951").unwrap();
        fs::write(d.path().join("0953"), "0999").unwrap();
        assert_eq!(resolve_link(&d.path().join("0952")), d.path().join("0951"));
        assert_eq!(resolve_link(&d.path().join("0951")), d.path().join("0951"));
        assert_eq!(resolve_link(&d.path().join("0953")), d.path().join("0953"));
    }

    #[test]
    fn links_a_tree_resolving_placeholders() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("aux-fixed");
        fs::create_dir_all(src.join("ca/CA")).unwrap();
        fs::create_dir_all(src.join("ca/srv/certdir")).unwrap();
        fs::create_dir_all(src.join("plain")).unwrap();
        fs::write(src.join("ca/CA/CA.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        fs::write(src.join("ca/srv/certdir/9ec80de3.0"), "../../CA/CA.pem").unwrap();
        fs::write(src.join("plain/data"), "x\n").unwrap();
        let dst = d.path().join("work-aux-fixed");
        link_tree(&src, &dst).unwrap();
        let hashed = dst.join("ca/srv/certdir/9ec80de3.0");
        assert_eq!(
            fs::read_to_string(&hashed).unwrap(),
            "-----BEGIN CERTIFICATE-----\n"
        );
        assert!(fs::symlink_metadata(&hashed)
            .unwrap()
            .file_type()
            .is_symlink());
        // Subtrees without placeholders are linked whole.
        assert!(fs::symlink_metadata(dst.join("plain"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(dst.join("plain/data")).unwrap(), "x\n");
        // A tree without placeholders is one link.
        let dst2 = d.path().join("plain-link");
        link_tree(&src.join("plain"), &dst2).unwrap();
        assert_eq!(fs::read_link(&dst2).unwrap(), src.join("plain"));
    }

    #[test]
    fn selects_tests_and_detects_style() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("scripts/0000-Basic");
        fs::create_dir_all(&s).unwrap();
        for n in ["0001", "0002", "0010"] {
            fs::write(s.join(n), "# t\n").unwrap();
        }
        fs::write(s.join("REQUIRES"), "support X\n\n# c\n").unwrap();
        fs::create_dir_all(d.path().join("log")).unwrap();
        fs::write(
            d.path().join("log/0001"),
            "1999-03-02 09:44:33 10HmaX-0005vi-00 <= x\n",
        )
        .unwrap();
        let t = TestTree::open(d.path(), None).unwrap();
        assert_eq!(t.style(), Style::Old);
        assert_eq!(
            t.select(&["0001-0002".into()]).unwrap(),
            vec!["0001", "0002"]
        );
        assert_eq!(t.select(&["10".into()]).unwrap(), vec!["0010"]);
        assert_eq!(t.select(&[]).unwrap().len(), 3);
        assert!(t.select(&["x1".into()]).is_err());
        let script = t.script("0002").unwrap();
        assert_eq!(t.requires(&script), vec!["support X".to_string()]);
        assert!(t.script("0003").is_none());

        fs::write(
            d.path().join("log/0002"),
            "2017-07-30 18:51:05.712 10HmaX-000000005vi-0000 <= x\n",
        )
        .unwrap();
        assert_eq!(detect_style(d.path()), Style::Head);
        assert!(TestTree::open(&d.path().join("log"), None).is_err());
    }
}
