//! Comparison of munged actual output with Exim's expected files
//! (RUNTEST-NOTES section 4).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::munge::{FileKind, Munger};

/// Separator between client-side and server-side output.
pub const SERVER_SEPARATOR: &str = "\n******** SERVER ********\n";

/// One failed comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was compared (e.g. `log/1990`).
    pub what: String,
    /// Explanation and unified diff (expected vs actual).
    pub detail: String,
}

/// Options taken from script flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// Skip msglog comparison.
    pub no_msglog_check: bool,
    /// Skip stdout comparison.
    pub no_stdout_check: bool,
    /// Skip stderr comparison.
    pub no_stderr_check: bool,
    /// Compare raw output (no munging).
    pub no_munge: bool,
    /// Sort the client part of the main log before comparing.
    pub sortlog: bool,
    /// `rmfiltertest`: drop the preamble of filter testing (`Sender =`,
    /// `Recipient =`, `Return-path copied ...`, `Testing ... filter`
    /// and the blank line after it), as Exim's runtest does.
    pub rmfiltertest: bool,
}

/// Exim's runtest `rmfiltertest` rule over a whole text.
fn strip_filter_preamble(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let body = line.trim_end_matches('\n');
        if body.starts_with("Sender taken from")
            || body.starts_with("Return-path copied from")
            || body.starts_with("Sender ") && body["Sender ".len()..].trim_start().starts_with('=')
            || body.starts_with("Recipient ")
                && body["Recipient ".len()..].trim_start().starts_with('=')
        {
            continue;
        }
        if let Some(rest) = body.strip_prefix("Testing ") {
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if word_end > 0 && rest[word_end..].trim_start().starts_with("filter") {
                // The blank line after it goes too.
                lines.next();
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// A unified diff of `expected` against `actual`, with file labels.
pub fn unified_diff(expected: &str, actual: &str, exp_label: &str, act_label: &str) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(exp_label, act_label)
        .to_string()
}

fn read_opt(path: &Path) -> io::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(crate::latin1::decode(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn io_mismatch(what: &str, path: &Path, e: &io::Error) -> Mismatch {
    Mismatch {
        what: what.to_string(),
        detail: format!("cannot read {}: {e}", path.display()),
    }
}

/// Compares all output of one test.
pub struct Comparer<'a> {
    /// Root of the test tree (contains `log/`, `stdout/`, ...).
    pub tree: &'a Path,
    /// The test's work directory.
    pub work: &'a Path,
    /// Test number.
    pub testnum: &'a str,
    /// Flags.
    pub options: CompareOptions,
    /// The canned extra munge selected by `munge NAME` (see [`crate::custom`]).
    pub custom: Option<&'a str>,
}

impl Comparer<'_> {
    fn munge(&self, munger: &mut Munger, text: &str, kind: FileKind, stream: &str) -> String {
        if self.options.no_munge {
            return text.to_string();
        }
        let stripped;
        let text = if self.options.rmfiltertest {
            stripped = strip_filter_preamble(text);
            &stripped
        } else {
            text
        };
        let text = munger.munge_text(text, kind);
        match self.custom {
            Some(name) => crate::custom::apply(name, stream, &text),
            None => text,
        }
    }

    /// Compare everything, in Exim's order; returns all mismatches.
    pub fn compare_all(&self, munger: &mut Munger) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let streams: [(&str, &str, &str, FileKind, bool); 5] = [
            (
                "paniclog",
                "spool/log/paniclog",
                "spool/log/serverpaniclog",
                FileKind::Log,
                false,
            ),
            (
                "rejectlog",
                "spool/log/rejectlog",
                "spool/log/serverrejectlog",
                FileKind::Log,
                false,
            ),
            (
                "log",
                "spool/log/mainlog",
                "spool/log/servermainlog",
                FileKind::Log,
                false,
            ),
            (
                "stdout",
                "test-stdout",
                "test-stdout-server",
                FileKind::Stdout,
                self.options.no_stdout_check,
            ),
            (
                "stderr",
                "test-stderr",
                "test-stderr-server",
                FileKind::Stderr,
                self.options.no_stderr_check,
            ),
        ];
        for (dir, client, server, kind, skip) in streams {
            if skip {
                continue;
            }
            if let Some(m) = self.compare_stream(munger, dir, client, server, kind) {
                out.push(m);
            }
        }
        out.extend(self.compare_files(munger, "test-mail", "mail", FileKind::Mail));
        if !self.options.no_msglog_check {
            out.extend(self.compare_files(munger, "spool/msglog", "msglog", FileKind::Msglog));
        }
        out
    }

    fn compare_stream(
        &self,
        munger: &mut Munger,
        dir: &str,
        client: &str,
        server: &str,
        kind: FileKind,
    ) -> Option<Mismatch> {
        let what = format!("{dir}/{}", self.testnum);
        let stream = if dir == "log" { "mainlog" } else { dir };
        let exp_path = self.tree.join(dir).join(self.testnum);
        let client_path = self.work.join(client);
        let server_path = self.work.join(server);
        let expected = match read_opt(&exp_path) {
            Ok(e) => e,
            Err(e) => return Some(io_mismatch(&what, &exp_path, &e)),
        };
        let raw_client = match read_opt(&client_path) {
            Ok(c) => c,
            Err(e) => return Some(io_mismatch(&what, &client_path, &e)),
        };
        let raw_server = match read_opt(&server_path) {
            Ok(s) => s,
            Err(e) => return Some(io_mismatch(&what, &server_path, &e)),
        };
        let Some(expected) = expected else {
            let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.is_empty());
            if nonempty(&raw_client) || nonempty(&raw_server) {
                let mut actual =
                    self.munge(munger, raw_client.as_deref().unwrap_or(""), kind, stream);
                if let Some(s) = &raw_server {
                    actual.push_str(SERVER_SEPARATOR);
                    actual.push_str(&self.munge(munger, s, kind, stream));
                }
                return Some(Mismatch {
                    what: what.clone(),
                    detail: format!(
                        "no expected file {what}, but output was produced:\n{}",
                        unified_diff("", &actual, "/dev/null", &format!("actual {what}"))
                    ),
                });
            }
            return None;
        };
        let mut actual = self.munge(munger, raw_client.as_deref().unwrap_or(""), kind, stream);
        if self.options.sortlog && dir == "log" {
            actual = sort_lines(&actual);
        }
        if let Some(s) = &raw_server {
            actual.push_str(SERVER_SEPARATOR);
            actual.push_str(&self.munge(munger, s, kind, stream));
        }
        if actual == expected {
            None
        } else {
            Some(Mismatch {
                what: what.clone(),
                detail: unified_diff(
                    &expected,
                    &actual,
                    &format!("expected {what}"),
                    &format!("actual {what}"),
                ),
            })
        }
    }

    /// Compare a directory of actual files (`test-mail/NAME`, `spool/msglog/ID`)
    /// with expected `<expdir>/NNNN.<munged name>`.
    fn compare_files(
        &self,
        munger: &mut Munger,
        actual_dir: &str,
        exp_dir: &str,
        kind: FileKind,
    ) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let prefix = format!("{}.", self.testnum);
        let mut expected: Vec<String> = list_dir(&self.tree.join(exp_dir))
            .into_iter()
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let actual_names = list_dir(&self.work.join(actual_dir));
        for name in actual_names {
            let munged_name = if kind == FileKind::Msglog && !self.options.no_munge {
                munger.munge_text(&name, kind)
            } else if kind == FileKind::Mail {
                munger.mail_name(&name)
            } else {
                name.clone()
            };
            let what = format!("{exp_dir}/{}.{munged_name}", self.testnum);
            let act_path: PathBuf = self.work.join(actual_dir).join(&name);
            let raw = match read_opt(&act_path) {
                Ok(r) => r.unwrap_or_default(),
                Err(e) => {
                    out.push(io_mismatch(&what, &act_path, &e));
                    continue;
                }
            };
            let actual = self.munge(munger, &raw, kind, exp_dir);
            let exp_path = self
                .tree
                .join(exp_dir)
                .join(format!("{prefix}{munged_name}"));
            expected.retain(|e| e != &munged_name);
            match read_opt(&exp_path) {
                Ok(Some(exp)) if exp == actual => {}
                Ok(Some(exp)) => out.push(Mismatch {
                    what: what.clone(),
                    detail: unified_diff(
                        &exp,
                        &actual,
                        &format!("expected {what}"),
                        &format!("actual {actual_dir}/{name}"),
                    ),
                }),
                Ok(None) => out.push(Mismatch {
                    what: what.clone(),
                    detail: format!(
                        "unexpected file {actual_dir}/{name} (no {what}):\n{}",
                        unified_diff(
                            "",
                            &actual,
                            "/dev/null",
                            &format!("actual {actual_dir}/{name}")
                        )
                    ),
                }),
                Err(e) => out.push(io_mismatch(&what, &exp_path, &e)),
            }
        }
        for missing in expected {
            out.push(Mismatch {
                what: format!("{exp_dir}/{prefix}{missing}"),
                detail: format!(
                    "expected {exp_dir}/{prefix}{missing} but no matching file was produced in {actual_dir}/"
                ),
            });
        }
        out
    }
}

fn sort_lines(text: &str) -> String {
    // Exim's runtest: each run of consecutive delivery lines (`=>`, `->`,
    // `*>` after the timestamp and message id) is sorted in place, and the
    // file gets a note saying so.
    static DELIVERY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let delivery = DELIVERY.get_or_init(|| {
        regex::Regex::new(r"^[-\d]{10}\s[:\d]{8}(\.\d{3})?\s[-A-Za-z\d]{23}\s[-=*]>")
            .expect("delivery line pattern")
    });
    let mut lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if delivery.is_match(lines[i]) {
            let mut j = i + 1;
            while j < lines.len() && delivery.is_match(lines[j]) {
                j += 1;
            }
            lines[i..j].sort_unstable();
            i = j;
        } else {
            i += 1;
        }
    }
    let mut s = String::from("**NOTE: The delivery lines in this file have been sorted.\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Sorted file names of a directory (empty when it does not exist).
fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::munge::{Identity, Style};

    fn munger() -> Munger {
        Munger::new(
            Style::Old,
            Identity {
                hostname: "h.example".into(),
                testdir: "/w".into(),
                caller: "joe".into(),
                caller_group: "users".into(),
                caller_home: "/home/joe".into(),
                caller_uid: 1000,
                caller_gid: 100,
                exim_user: "joe".into(),
                exim_uid: 1000,
                exim_gid: 100,
                ipv4: "198.18.0.1".into(),
                ipv6: None,
            },
        )
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn diff_shows_changed_line() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "exp", "act");
        assert!(d.contains("-b\n"), "{d}");
        assert!(d.contains("+B\n"), "{d}");
        assert!(d.starts_with("--- exp\n+++ act\n"), "{d}");
    }

    #[test]
    fn client_and_server_logs_are_joined() {
        let tree = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        write(
            &tree.path().join("log/0001"),
            "1999-03-02 09:44:33 10HmaX-0005vi-00 <= CALLER@x U=CALLER\n\n******** SERVER ********\n1999-03-02 09:44:33 10HmaY-0005vi-00 <= id=E10HmaX-0005vi-00@x\n",
        );
        write(
            &work.path().join("spool/log/mainlog"),
            "2026-01-02 03:04:05 1aaaaa-bbbbbb-cc <= joe@x U=joe\n",
        );
        write(
            &work.path().join("spool/log/servermainlog"),
            "2026-01-02 03:04:06 2aaaaa-bbbbbb-cc <= id=E1aaaaa-bbbbbb-cc@x\n",
        );
        let c = Comparer {
            tree: tree.path(),
            work: work.path(),
            testnum: "0001",
            options: CompareOptions::default(),
            custom: None,
        };
        let mut m = munger();
        assert_eq!(c.compare_all(&mut m), vec![]);

        // One character changed in the expected file must fail and show the line.
        write(
            &tree.path().join("log/0001"),
            "1999-03-02 09:44:33 10HmaX-0005vi-00 <= CALLER@x U=CALLEX\n\n******** SERVER ********\n1999-03-02 09:44:33 10HmaY-0005vi-00 <= id=E10HmaX-0005vi-00@x\n",
        );
        let mut m = munger();
        let fails = c.compare_all(&mut m);
        assert_eq!(fails.len(), 1);
        assert_eq!(fails[0].what, "log/0001");
        assert!(fails[0]
            .detail
            .contains("-1999-03-02 09:44:33 10HmaX-0005vi-00 <= CALLER@x U=CALLEX"));
        assert!(fails[0]
            .detail
            .contains("+1999-03-02 09:44:33 10HmaX-0005vi-00 <= CALLER@x U=CALLER"));
    }

    #[test]
    fn server_only_output_starts_with_blank_line() {
        let tree = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        write(
            &tree.path().join("stdout/0002"),
            "\n******** SERVER ********\nListening on port 1224 ... \n",
        );
        write(&work.path().join("test-stdout"), "");
        write(
            &work.path().join("test-stdout-server"),
            "Listening on port 1224 ... \n",
        );
        let c = Comparer {
            tree: tree.path(),
            work: work.path(),
            testnum: "0002",
            options: CompareOptions::default(),
            custom: None,
        };
        assert_eq!(c.compare_all(&mut munger()), vec![]);
    }

    #[test]
    fn unexpected_output_and_missing_files_fail() {
        let tree = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        write(&work.path().join("test-stderr"), "oops\n");
        write(&tree.path().join("mail/0003.userx"), "From x\n");
        write(&tree.path().join("msglog/0003.10HmaX-0005vi-00"), "log\n");
        let c = Comparer {
            tree: tree.path(),
            work: work.path(),
            testnum: "0003",
            options: CompareOptions::default(),
            custom: None,
        };
        let fails = c.compare_all(&mut munger());
        let whats: Vec<&str> = fails.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            whats,
            vec![
                "stderr/0003",
                "mail/0003.userx",
                "msglog/0003.10HmaX-0005vi-00"
            ]
        );
        let c = Comparer {
            options: CompareOptions {
                no_msglog_check: true,
                no_stderr_check: true,
                ..CompareOptions::default()
            },
            ..c
        };
        assert_eq!(c.compare_all(&mut munger()).len(), 1);
    }

    #[test]
    fn msglog_names_are_munged() {
        let tree = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        write(
            &tree.path().join("msglog/0004.10HmaX-0005vi-00"),
            "1999-03-02 09:44:33 delivered\n",
        );
        write(
            &work.path().join("spool/msglog/1abcde-fghijk-lm"),
            "2026-01-01 00:00:00 delivered\n",
        );
        let c = Comparer {
            tree: tree.path(),
            work: work.path(),
            testnum: "0004",
            options: CompareOptions::default(),
            custom: None,
        };
        assert_eq!(c.compare_all(&mut munger()), vec![]);
    }
}
