//! The configuration preprocessor: physical lines to logical lines.
//!
//! Implements the rules of the Exim spec chapter "The Exim run time
//! configuration file": comments, continuation lines, macro definition and
//! substitution, `.ifdef`-style conditionals and `.include`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ConfigError;
use crate::source::FileSource;

/// Longest macro name Exim accepts.
const MAX_MACRO_NAME: usize = 63;
/// Guard against runaway macro growth (each macro may expand the line).
const MAX_LINE_LEN: usize = 1 << 20;
/// Guard against `.include` loops.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Exim's conditional nesting limit.
const MAX_COND_DEPTH: usize = 10;

/// One macro definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    /// Macro name (starts with an upper-case letter, or `_` for built-ins).
    pub name: String,
    /// Replacement text.
    pub value: String,
    /// Defined with `-D` on the command line (beats file definitions).
    pub command_line: bool,
    /// Built-in (`_HAVE_*` and friends), not shown by `-bP macros`.
    pub builtin: bool,
}

/// The macro table, in definition order: built-ins, then `-D`, then file.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    list: Vec<Macro>,
}

impl Macros {
    /// All macros in definition order.
    pub fn iter(&self) -> impl Iterator<Item = &Macro> {
        self.list.iter()
    }

    /// Looks a macro up by exact name.
    pub fn get(&self, name: &str) -> Option<&Macro> {
        self.list.iter().find(|m| m.name == name)
    }

    fn push(&mut self, name: &str, value: &str, command_line: bool, builtin: bool) {
        self.list.push(Macro {
            name: name.to_string(),
            value: value.to_string(),
            command_line,
            builtin,
        });
    }

    /// Substitutes macros in `line` from byte offset `from`, Exim style:
    /// each macro in definition order replaces every occurrence of its name
    /// (substring match); a replacement is not rescanned for the same macro
    /// but is for later ones. Built-in macros are only considered when the
    /// first candidate name starts with `_`. Returns whether any
    /// substitution happened.
    fn substitute(&self, line: &mut String, from: usize) -> Result<bool, String> {
        let start_ok = |b: &[u8], i: usize| {
            b[i].is_ascii_uppercase()
                || (b[i] == b'_' && b.get(i + 1).is_some_and(u8::is_ascii_uppercase))
        };
        let next_candidate = |s: &str, mut i: usize| {
            let b = s.as_bytes();
            while i < b.len() && !start_ok(b, i) {
                i += 1;
            }
            i
        };
        let mut s = next_candidate(line, from);
        if s >= line.len() {
            return Ok(false);
        }
        let include_builtin = line.as_bytes()[s] == b'_';
        let mut found = false;
        for m in self.list.iter().filter(|m| include_builtin || !m.builtin) {
            s = next_candidate(line, s);
            if s >= line.len() {
                break;
            }
            let mut t = s;
            while let Some(rel) = line[t..].find(m.name.as_str()) {
                let p = t + rel;
                line.replace_range(p..p + m.name.len(), &m.value);
                if line.len() > MAX_LINE_LEN {
                    return Err("line too long after macro expansion".to_string());
                }
                t = next_candidate(line, p + m.value.len());
                found = true;
                if t >= line.len() {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// Substitutes the macros `defs` (name and value, in definition order) in
/// `line` as the configuration reader does for a line of the file. Returns
/// whether any substitution happened (`-be` uses this on each line).
pub fn substitute_macros(defs: &[(String, String)], line: &mut String) -> Result<bool, String> {
    let mut m = Macros::default();
    for (n, v) in defs {
        m.push(n, v, false, false);
    }
    m.substitute(line, 0)
}

/// A logical configuration line with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// The text, with leading and trailing white space removed.
    pub text: String,
    /// Innermost file being read when the line ended.
    pub file: Arc<str>,
    /// Line number of the last physical line of this logical line.
    pub line: usize,
}

struct Frame {
    file: Arc<str>,
    dir: PathBuf,
    lines: Vec<String>,
    pos: usize,
}

/// Conditional state, as in Exim: 0 = reading, 1 = condition false (waiting
/// for `.else`/`.elifdef`), 2 = skipping to `.endif`.
const NEXT_CSTATE: [[u8; 4]; 3] = [[0, 1, 2, 2], [2, 2, 0, 1], [2, 2, 2, 2]];

/// (name, action if a macro was found, action if not, stack op)
const COND_LIST: [(&str, usize, usize, i8); 6] = [
    ("ifdef", 0, 1, 1),
    ("ifndef", 1, 0, 1),
    ("elifdef", 2, 3, 0),
    ("elifndef", 3, 2, 0),
    ("else", 2, 2, 0),
    ("endif", 0, 0, -1),
];

/// Streams logical lines out of a configuration file and its includes,
/// processing macro definitions as it goes.
pub struct Preprocessor<'a> {
    fs: &'a dyn FileSource,
    stack: Vec<Frame>,
    /// The macro table (grows while reading).
    pub macros: Macros,
    cstate: u8,
    cstack: Vec<u8>,
    last_file: Arc<str>,
    last_line: usize,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether a logical line is a macro definition (`NAME =` or `NAME ==`).
pub(crate) fn is_macro_definition(text: &str) -> bool {
    let b = text.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let mut i = 0;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    b.get(i) == Some(&b'=')
}

impl<'a> Preprocessor<'a> {
    /// Starts reading `text` as if it were the file `name`.
    pub fn new(
        fs: &'a dyn FileSource,
        name: &str,
        text: &str,
        defines: &[(String, String)],
        builtin: &[(String, String)],
    ) -> Self {
        let mut macros = Macros::default();
        for (n, v) in builtin {
            macros.push(n, v, false, true);
        }
        for (n, v) in defines {
            if let Some(m) = macros.list.iter_mut().find(|m| &m.name == n) {
                m.value = v.clone();
                m.command_line = true;
                m.builtin = false;
            } else {
                macros.push(n, v, true, false);
            }
        }
        let file: Arc<str> = Arc::from(name);
        let dir = Path::new(name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Preprocessor {
            fs,
            stack: vec![Frame {
                file: file.clone(),
                dir,
                lines: split_lines(text),
                pos: 0,
            }],
            macros,
            cstate: 0,
            cstack: Vec::new(),
            last_file: file,
            last_line: 0,
        }
    }

    /// Location of the most recently read physical line.
    pub fn location(&self) -> (Arc<str>, usize) {
        (self.last_file.clone(), self.last_line)
    }

    fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.last_file, self.last_line, message)
    }

    /// Reads the next physical line, popping finished include files.
    /// Returns `None` at the end of the top-level file.
    fn physical(&mut self) -> Option<String> {
        loop {
            let frame = self.stack.last_mut()?;
            if frame.pos < frame.lines.len() {
                let line = std::mem::take(&mut frame.lines[frame.pos]);
                frame.pos += 1;
                self.last_file = frame.file.clone();
                self.last_line = frame.pos;
                return Some(line);
            }
            if self.stack.len() == 1 {
                return None;
            }
            self.stack.pop();
            if let Some(f) = self.stack.last() {
                self.last_file = f.file.clone();
                self.last_line = f.pos;
            }
        }
    }

    /// Returns the next logical line that is not a macro definition, or
    /// `None` at end of input.
    pub fn next_line(&mut self) -> Result<Option<LogicalLine>, ConfigError> {
        loop {
            let Some(line) = self.next_raw()? else {
                return Ok(None);
            };
            if is_macro_definition(&line.text) {
                self.define(&line.text)?;
                continue;
            }
            return Ok(Some(line));
        }
    }

    /// Handles a macro definition line (`NAME = value` / `NAME == value`).
    fn define(&mut self, text: &str) -> Result<(), ConfigError> {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let name = &text[..i];
        if name.len() > MAX_MACRO_NAME {
            return Err(self.err(format!(
                "macro name too long (maximum is {MAX_MACRO_NAME} characters)"
            )));
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err(self.err("malformed macro definition"));
        }
        i += 1;
        let redef = b.get(i) == Some(&b'=');
        if redef {
            i += 1;
        }
        let value = text[i..].trim_start();
        let mut existing = None;
        for (idx, m) in self.macros.list.iter().enumerate() {
            if m.name == name {
                if !m.command_line && !redef {
                    return Err(self.err(format!(
                        "macro \"{name}\" is already defined (use \"==\" if you want to redefine it)"
                    )));
                }
                existing = Some(idx);
                break;
            }
            if m.name.len() < name.len() && name.contains(m.name.as_str()) {
                return Err(self.err(format!(
                    "\"{name}\" cannot be defined as a macro because previously defined macro \"{}\" is a substring",
                    m.name
                )));
            }
        }
        match existing {
            Some(idx) if self.macros.list[idx].command_line => {}
            Some(idx) => self.macros.list[idx].value = value.to_string(),
            None if redef => {
                return Err(self.err(format!("can't redefine an undefined macro \"{name}\"")));
            }
            None => self.macros.push(name, value, false, false),
        }
        Ok(())
    }

    /// Reads one logical line (macro definitions included).
    fn next_raw(&mut self) -> Result<Option<LogicalLine>, ConfigError> {
        let mut buf = String::new();
        loop {
            let Some(mut phys) = self.physical() else {
                if !self.cstack.is_empty() {
                    return Err(self.err("Unexpected end of configuration file: .endif missing"));
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                break;
            };
            // Leading white space of every physical line is ignored.
            let lead = phys.len() - phys.trim_start().len();
            let mut from = lead;
            if buf.is_empty() && is_macro_definition(&phys[lead..]) {
                let b = phys.as_bytes();
                let mut i = lead;
                while i < b.len() && is_name_byte(b[i]) {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                from = i;
            }
            let macro_found = if self.cstate == 0 || phys[lead..].starts_with('.') {
                self.macros
                    .substitute(&mut phys, from)
                    .map_err(|e| self.err(e))?
            } else {
                false
            };
            let ss = phys.trim_start();
            if ss.starts_with('#') {
                continue;
            }
            if let Some(rest) = ss.strip_prefix('.') {
                if self.conditional(rest, macro_found)? {
                    continue;
                }
            }
            if self.cstate != 0 {
                continue;
            }
            if let Some((if_exists, path)) = include_directive(ss) {
                self.include(if_exists, path)?;
                continue;
            }
            buf.push_str(ss);
            let trimmed = buf.trim_end().len();
            buf.truncate(trimmed);
            if buf.len() > MAX_LINE_LEN {
                return Err(self.err("logical line too long"));
            }
            if !buf.is_empty() {
                if buf.ends_with('\\') {
                    buf.pop();
                    continue;
                }
                break;
            }
        }
        Ok(Some(LogicalLine {
            text: buf,
            file: self.last_file.clone(),
            line: self.last_line,
        }))
    }

    /// Handles `.ifdef` and friends. Returns true if `rest` (the text after
    /// the dot) was a conditional directive.
    fn conditional(&mut self, rest: &str, macro_found: bool) -> Result<bool, ConfigError> {
        for (name, a1, a2, pushpop) in COND_LIST {
            let Some(after) = rest.strip_prefix(name) else {
                continue;
            };
            if !(after.is_empty() || after.starts_with([' ', '\t'])) {
                return Ok(false);
            }
            let action = if macro_found { a1 } else { a2 };
            if pushpop > 0 {
                if self.cstack.len() >= MAX_COND_DEPTH {
                    return Err(self.err(format!(".{name} nested too deeply")));
                }
                self.cstack.push(self.cstate);
                self.cstate = NEXT_CSTATE[usize::from(self.cstate)][action];
            } else {
                let Some(&top) = self.cstack.last() else {
                    return Err(self.err(format!(".{name} without matching .ifdef")));
                };
                if pushpop < 0 {
                    self.cstate = top;
                    self.cstack.pop();
                } else {
                    self.cstate = NEXT_CSTATE[usize::from(self.cstate)][action];
                }
            }
            return Ok(true);
        }
        Ok(false)
    }

    fn include(&mut self, if_exists: bool, path: &str) -> Result<(), ConfigError> {
        let full: PathBuf = if path.starts_with('/') {
            PathBuf::from(path)
        } else if if_exists {
            return Err(self.err(format!(".include specifies a non-absolute path \"{path}\"")));
        } else {
            let dir = self.stack.last().map(|f| f.dir.clone()).unwrap_or_default();
            dir.join(path)
        };
        if if_exists && !self.fs.exists(&full) {
            return Ok(());
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(self.err(format!(
                ".include nested too deeply (maximum is {MAX_INCLUDE_DEPTH}) at {}",
                full.display()
            )));
        }
        let text = self.fs.read_to_string(&full).map_err(|_| {
            self.err(format!(
                "failed to open included configuration file {}",
                full.display()
            ))
        })?;
        let name = full.to_string_lossy().into_owned();
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        self.stack.push(Frame {
            file: Arc::from(name.as_str()),
            dir,
            lines: split_lines(&text),
            pos: 0,
        });
        Ok(())
    }
}

/// Recognises `.include PATH` / `.include_if_exists PATH` (path optionally in
/// double quotes).
fn include_directive(ss: &str) -> Option<(bool, &str)> {
    let rest = ss.strip_prefix(".include")?;
    let (if_exists, rest) = match rest.strip_prefix("_if_exists") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let mut p = rest.trim();
    if p.len() >= 2 && p.starts_with('"') && p.ends_with('"') {
        p = &p[1..p.len() - 1];
    }
    Some((if_exists, p))
}

fn split_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemFs;

    fn lines(text: &str, defs: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
        let fs = MemFs::new();
        let defs: Vec<(String, String)> = defs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let mut pp = Preprocessor::new(&fs, "/c", text, &defs, &[]);
        let mut out = Vec::new();
        while let Some(l) = pp.next_line()? {
            out.push(l.text);
        }
        Ok(out)
    }

    #[test]
    fn continuation_and_comments() {
        let got = lines("a = 1 \\\n   2\n  # c\n\nb = x\\\n# mid\n  y", &[]).unwrap();
        assert_eq!(got, vec!["a = 1 2", "b = xy"]);
    }

    #[test]
    fn macros_substitute_in_order_and_cmdline_wins() {
        let got = lines(
            "SERVER=\nA = SERVER-x\nv = A/SERVER",
            &[("SERVER", "server")],
        )
        .unwrap();
        assert_eq!(got, vec!["v = server-x/server"]);
    }

    #[test]
    fn ifdef_is_true_when_a_macro_was_substituted() {
        let text = "X=\n.ifdef X\na\n.else\nb\n.endif\n.ifndef Y\nc\n.elifdef X\nd\n.endif";
        assert_eq!(lines(text, &[]).unwrap(), vec!["a", "c"]);
    }

    #[test]
    fn redefinition_rules() {
        assert!(lines("A=1\nA=2", &[]).is_err());
        assert_eq!(lines("A=1\nA==2\nx=A", &[]).unwrap(), vec!["x=2"]);
        assert!(lines("A==2", &[]).is_err());
        assert!(lines("AB=1\nABC=2", &[]).is_err());
    }
}
