//! A command's input: the script's data lines with Exim's prefixes
//! (`:eval:`, `:noeol:`, `:sleep:N`, `:file:F`), and feeding them to a
//! running command within the test's time limit.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{exit_code, fail, Runner, StepFail};
use crate::latin1;
use crate::munge::Style;

/// Server script lines as bytes (each with its newline; not substituted).
pub fn stdin_bytes(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&latin1::encode(l));
        out.push(b'\n');
    }
    out
}

/// A piece of a command's input.
pub(crate) enum Chunk {
    /// Bytes to write.
    Bytes(Vec<u8>),
    /// A pause (`:sleep:N`, or `N exim` before closing stdin).
    Sleep(Duration),
}

/// `:name:rest` at the start of a data line (Exim: `^(:\S+?:)(.*)`).
pub fn split_data_prefix(line: &str) -> (Option<&str>, &str) {
    if let Some(body) = line.strip_prefix(':') {
        if let Some(end) = body.find(':') {
            let name = &body[..end];
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                return (Some(&line[..end + 2]), &line[end + 2..]);
            }
        }
    }
    (None, line)
}

/// What Perl's `eval "\"$_\""` makes of the escapes in a line: `\n`,
/// `\r`, `\t`, `\e`, `\a`, `\f`, `\0`, `\NNN` (octal), `\xHH`,
/// `\x{H..}`; other backslashed characters stand for themselves.
pub fn perl_unescape(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' || i >= chars.len() {
            out.push(c);
            continue;
        }
        let e = chars[i];
        i += 1;
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'e' => out.push('\u{1b}'),
            'a' => out.push('\u{7}'),
            'f' => out.push('\u{c}'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                let mut n = 1;
                while n < 3 && i < chars.len() && chars[i].is_digit(8) {
                    v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(char::from_u32(v).unwrap_or('?'));
            }
            'x' => {
                let mut v = 0;
                if i < chars.len() && chars[i] == '{' {
                    i += 1;
                    while i < chars.len() && chars[i] != '}' {
                        v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                        i += 1;
                    }
                    i += 1;
                } else {
                    let mut n = 0;
                    while n < 2 && i < chars.len() && chars[i].is_ascii_hexdigit() {
                        v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                        i += 1;
                        n += 1;
                    }
                }
                out.push(char::from_u32(v).unwrap_or('?'));
            }
            other => out.push(other),
        }
    }
    out
}

impl Runner<'_> {
    pub(super) fn run_with_input(
        &mut self,
        mut cmd: Command,
        input: Vec<Chunk>,
        what: &str,
    ) -> Result<i32, StepFail> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| StepFail::Error(format!("starting {what}: {e}")))?;
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                for chunk in input {
                    match chunk {
                        // The command may legitimately not read all of its input.
                        Chunk::Bytes(b) => {
                            if stdin.write_all(&b).is_err() {
                                break;
                            }
                        }
                        Chunk::Sleep(d) => std::thread::sleep(d),
                    }
                }
            })
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= self.deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return fail(format!(
                        "{what} still running at the test's time limit ({} s); killed",
                        self.cfg.timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return fail(format!("waiting for {what}: {e}")),
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(exit_code(status))
    }

    /// A script's data lines as the command's input, with Exim's data
    /// prefixes (`:eval:`, `:noeol:`, `:sleep:N`, `:file:F`); substituted.
    pub(crate) fn data_chunks(&self, data: &[String]) -> Result<Vec<Chunk>, StepFail> {
        let mut out = Vec::new();
        for raw in data {
            let line = self.subst.apply(raw);
            let (prefix, rest) = split_data_prefix(&line);
            match prefix {
                Some(":eval:") => {
                    let mut b = latin1::encode(&perl_unescape(rest));
                    b.push(b'\n');
                    out.push(Chunk::Bytes(b));
                }
                Some(":noeol:") => {
                    out.push(Chunk::Bytes(latin1::encode(
                        rest.trim_end_matches(['\r', '\n']),
                    )));
                }
                Some(":sleep:") => {
                    let secs: u64 = rest.trim().parse().map_err(|_| {
                        StepFail::Error(format!(":sleep: needs a number of seconds, not {rest:?}"))
                    })?;
                    out.push(Chunk::Sleep(Duration::from_secs(secs)));
                }
                Some(":file:") => {
                    // runtest opens the name with Perl's two-argument
                    // open, which drops the blanks around it.
                    let path = self.cfg.work.join(rest.trim());
                    let bytes = fs::read(&path)
                        .map_err(|e| StepFail::Error(format!(":file: {}: {e}", path.display())))?;
                    out.push(Chunk::Bytes(bytes));
                }
                // The 2019 tree's runtest: a trailing `\NONL\` drops the newline.
                _ if self.cfg.style == Style::Old && line.trim_end().ends_with("\\NONL\\") => {
                    let t = line.trim_end();
                    out.push(Chunk::Bytes(latin1::encode(&t[..t.len() - 6])));
                }
                _ => {
                    let mut b = latin1::encode(&line);
                    b.push(b'\n');
                    out.push(Chunk::Bytes(b));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_markers() {
        assert_eq!(split_data_prefix(":noeol:b"), (Some(":noeol:"), "b"));
        assert_eq!(split_data_prefix(":sleep:2"), (Some(":sleep:"), "2"));
        assert_eq!(split_data_prefix("a:b:"), (None, "a:b:"));
        assert_eq!(perl_unescape(r"a\r\nb\x41\101\\"), "a\r\nbAA\\");
        assert_eq!(stdin_bytes(&["a".to_string()]), b"a\n".to_vec());
    }
}
