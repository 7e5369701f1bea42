//! One-line reasons for verdicts and the classes the summary counts them
//! under (so that the per-reason table says, e.g., how many tests stop at
//! the same unknown option).

use std::sync::OnceLock;

use regex::Regex;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// A line of stderr that explains a failing command: a configuration
/// error or a refusal, if the explanation holds one.
pub fn stderr_hint(detail: &str) -> Option<String> {
    static CONF: OnceLock<Regex> = OnceLock::new();
    let conf = re(
        &CONF,
        r"(?i)(error in configuration file|configuration error|unknown option|not supported|not implemented|unsupported|unknown (expansion|condition|variable|lookup|driver|acl)|failed to expand|not recognized|invalid option)",
    );
    let lines: Vec<&str> = detail.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| conf.is_match(l))?;
    let hint = lines[at];
    // Exim's form puts the message on the line after "...test-config:".
    match lines.get(at + 1) {
        Some(next) if hint.ends_with(':') && !next.is_empty() => Some(format!("{hint} {next}")),
        _ => Some(hint.to_string()),
    }
}

fn first_diff_lines(detail: &str) -> (Option<&str>, Option<&str>) {
    let mut minus = None;
    let mut plus = None;
    for l in detail.lines() {
        if l.starts_with("---") || l.starts_with("+++") {
            continue;
        }
        if minus.is_none() && l.starts_with('-') {
            minus = Some(l);
        }
        if plus.is_none() && l.starts_with('+') {
            plus = Some(l);
        }
        if minus.is_some() && plus.is_some() {
            break;
        }
    }
    (minus, plus)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}...")
    }
}

/// The names of the outputs that differ (`log/0001`, `mail/0001.userx`).
pub fn mismatches(detail: &str) -> Vec<&str> {
    detail
        .lines()
        .filter_map(|l| l.strip_prefix("mismatch in "))
        .filter_map(|l| l.strip_suffix(':'))
        .collect()
}

/// One line saying why: the first line of the explanation, plus for output
/// differences which files and their first differing lines, and for a
/// failing command the configuration error (or refusal) on its stderr.
pub fn one_line(detail: &str) -> String {
    let first = detail.lines().next().unwrap_or("").trim();
    let names = mismatches(detail);
    if !names.is_empty() {
        let (m, p) = first_diff_lines(detail);
        let mut s = format!("differs: {}", names.join(", "));
        if let Some(m) = m {
            s.push_str(&format!(" | first expected {}", clip(m, 140)));
        }
        if let Some(p) = p {
            s.push_str(&format!(" | got {}", clip(p, 140)));
        }
        return s;
    }
    let mut s = clip(first, 240);
    if let Some(h) = stderr_hint(detail) {
        if !first.contains(&h) {
            s.push_str(&format!(" [{}]", clip(&h, 200)));
        }
    }
    s
}

fn normalise(s: &str) -> String {
    static LINE: OnceLock<Regex> = OnceLock::new();
    static PATH: OnceLock<Regex> = OnceLock::new();
    static NUM: OnceLock<Regex> = OnceLock::new();
    let s = re(&LINE, r"^script line \d+: ").replace(s, "");
    let s = re(&PATH, r"/\S*/oxim-runtest-[^/\s]*").replace_all(&s, "DIR");
    let s = re(&NUM, r"\b\d{3,}\b").replace_all(&s, "N");
    clip(&s, 160)
}

/// The class a verdict is counted under in the per-reason table.
pub fn category(verdict: &str, detail: &str) -> String {
    static CONFMSG: OnceLock<Regex> = OnceLock::new();
    static STATUS: OnceLock<Regex> = OnceLock::new();
    let first = detail.lines().next().unwrap_or("").trim();
    match verdict {
        "SKIP" => return clip(first, 160),
        "ERROR" => {
            static CMD: OnceLock<Regex> = OnceLock::new();
            let cmd = re(&CMD, r#"unknown script command: "(\S+)"#);
            if let Some(c) = cmd.captures(first) {
                return format!("unknown script command {}", &c[1]);
            }
            // "<path of the script>: line N: what" -> "script: what".
            static SCRIPT: OnceLock<Regex> = OnceLock::new();
            let script = re(&SCRIPT, r"^/\S*/scripts/\S+: (?:line \d+: )?");
            if script.is_match(first) {
                return format!("script: {}", normalise(&script.replace(first, "")));
            }
            return normalise(first);
        }
        _ => {}
    }
    let names = mismatches(detail);
    if !names.is_empty() {
        let mut kinds: Vec<&str> = names
            .iter()
            .map(|n| n.split('/').next().unwrap_or(n))
            .collect();
        kinds.dedup();
        return format!("output differs: {}", kinds.join(", "));
    }
    if let Some(h) = stderr_hint(detail) {
        let conf = re(&CONFMSG, r"line \d+(?: of \S+)?: (.*)$");
        let msg = conf
            .captures(&h)
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| h.clone());
        return format!("stderr: {}", normalise(&msg));
    }
    if first.contains("oxim has no ") {
        if let Some(pos) = first.find("oxim has no ") {
            let rest = &first[pos..];
            let end = rest.find(" (").unwrap_or(rest.len());
            return rest[..end].to_string();
        }
    }
    if first.contains("timed out") || first.contains("time limit") {
        return "timed out".to_string();
    }
    let status = re(
        &STATUS,
        r"^(?:script line \d+: )?`?(\S+).* exited with status (\d+), expected (.*)$",
    );
    if let Some(c) = status.captures(first) {
        return format!("{} exit status {} (expected {})", &c[1], &c[2], &c[3]);
    }
    normalise(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_classes() {
        let d = "mismatch in log/0001:\n--- expected\n+++ actual\n@@\n a\n-b\n+c\nmismatch in stdout/0001:\n-x\n";
        assert_eq!(
            one_line(d),
            "differs: log/0001, stdout/0001 | first expected -b | got +c"
        );
        assert_eq!(category("FAIL", d), "output differs: log, stdout");
        let e = "script line 4: exim -bs exited with status 1, expected 0\nlast lines of test-stderr:\n  oxim: error in configuration file: /tmp/x/test-config line 12: main option \"foo\" unknown";
        assert!(
            one_line(e).ends_with("main option \"foo\" unknown]"),
            "{}",
            one_line(e)
        );
        assert_eq!(category("FAIL", e), "stderr: main option \"foo\" unknown");
        let x = "script line 2: exim -odi pipe exited with status 1, expected 0\nlast lines of test-stderr:\n  2026-12-08 02:31:34 Exim configuration error in line 25 of /tmp/oxim-runtest-0048-Q/test-config:\n  option \"frob\" unknown";
        assert_eq!(category("FAIL", x), "stderr: option \"frob\" unknown");
        assert_eq!(
            category(
                "FAIL",
                "script line 9: exim -qf exited with status 1, expected 0"
            ),
            "exim exit status 1 (expected 0)"
        );
        assert_eq!(
            category(
                "ERROR",
                "/t/scripts/0000-Basic/0001: line 5: unknown script command: \"frob x\""
            ),
            "unknown script command frob"
        );
        assert_eq!(
            category(
                "FAIL",
                "script line 3: oxim has no exinext utility (exinext a@b)"
            ),
            "oxim has no exinext utility"
        );
    }
}
