//! The filter parser: a hand-written reader that follows Exim's way of
//! splitting words, quoted strings and conditions, so that its errors and
//! line numbers are Exim's.

use super::*;

mod cond;

const COMMANDS: &[&str] = &[
    "add",
    "defer",
    "deliver",
    "elif",
    "else",
    "endif",
    "finish",
    "fail",
    "freeze",
    "headers",
    "if",
    "logfile",
    "logwrite",
    "mail",
    "noerror",
    "pipe",
    "save",
    "seen",
    "testprint",
    "unseen",
    "vacation",
];

const COND_WORDS: &[(&str, Compare)] = &[
    ("BEGIN", Compare::BeginsCase),
    ("BEGINS", Compare::BeginsCase),
    ("CONTAIN", Compare::ContainsCase),
    ("CONTAINS", Compare::ContainsCase),
    ("END", Compare::EndsCase),
    ("ENDS", Compare::EndsCase),
    ("IS", Compare::IsCase),
    ("MATCH", Compare::MatchesCase),
    ("MATCHES", Compare::MatchesCase),
    ("above", Compare::Above),
    ("begin", Compare::Begins),
    ("begins", Compare::Begins),
    ("below", Compare::Below),
    ("contain", Compare::Contains),
    ("contains", Compare::Contains),
    ("end", Compare::Ends),
    ("ends", Compare::Ends),
    ("is", Compare::Is),
    ("match", Compare::Matches),
    ("matches", Compare::Matches),
];

/// How a list of commands ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Elif,
    Else,
    Endif,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    opts: ParseOptions,
    /// Nesting of `if` (an `elif`/`else`/`endif` outside one is an error).
    expect_endif: usize,
    /// A pending `seen`/`unseen` (its value) and `noerror`.
    seen_force: Option<bool>,
    noerror_force: bool,
}

type PResult<T> = Result<T, String>;

/// Parse a filter (the whole file, its `# Exim filter` line included, which
/// is a comment).
pub fn parse(text: &str, opts: ParseOptions) -> Result<Vec<Command>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
        opts,
        expect_endif: 0,
        seen_force: None,
        noerror_force: false,
    };
    p.skip_space();
    let (cmds, _) = p.command_list(false)?;
    Ok(cmds)
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Skip white space and comments (`#` to the end of the line).
    fn skip_space(&mut self) {
        loop {
            while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
                if self.s[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.peek() == b'#' {
                while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// A word ended by white space (and by brackets when `bracket`).
    fn word(&mut self, bracket: bool) -> String {
        let start = self.pos;
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if c.is_ascii_whitespace() || (bracket && (c == b'(' || c == b')')) {
                break;
            }
            self.pos += 1;
        }
        let w = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        self.skip_space();
        w
    }

    /// A word, or a string in double quotes with backslash escapes.
    fn item(&mut self, bracket: bool) -> PResult<String> {
        if self.peek() != b'"' {
            return Ok(self.word(bracket));
        }
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        while self.pos < self.s.len() && self.s[self.pos] != b'"' && self.s[self.pos] != b'\n' {
            let c = self.s[self.pos];
            if c != b'\\' {
                out.push(c);
                self.pos += 1;
                continue;
            }
            // Backslash, white space to the end of the line, and the white
            // space that starts the next: all ignored.
            let next = self.s.get(self.pos + 1).copied().unwrap_or(0);
            if next.is_ascii_whitespace() {
                let mut p = self.pos + 1;
                while p < self.s.len() && self.s[p] != b'\n' && self.s[p].is_ascii_whitespace() {
                    p += 1;
                }
                if p < self.s.len() && self.s[p] == b'\n' {
                    self.line += 1;
                    p += 1;
                    while p < self.s.len() && self.s[p] != b'\n' && self.s[p].is_ascii_whitespace()
                    {
                        p += 1;
                    }
                    self.pos = p;
                    continue;
                }
            }
            self.pos += 1;
            self.escape(&mut out);
        }
        if self.peek() == b'"' {
            self.pos += 1;
        } else {
            return Err(format!(
                "quote missing at end of string in line {}",
                self.line
            ));
        }
        self.skip_space();
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The character after a backslash (at `pos`): `\n`, `\t`, `\r`, octal
    /// and `\x` hex codes; any other character stands for itself.
    fn escape(&mut self, out: &mut Vec<u8>) {
        let c = self.peek();
        if self.at_end() {
            out.push(b'\\');
            return;
        }
        self.pos += 1;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'v' => out.push(11),
            b'f' => out.push(12),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        d @ b'0'..=b'7' => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    let d = self.peek();
                    match (d as char).to_digit(16) {
                        Some(h) => {
                            v = v * 16 + h;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }

    fn command_list(&mut self, conditional: bool) -> PResult<(Vec<Command>, End)> {
        if conditional {
            self.expect_endif += 1;
        }
        let mut cmds = Vec::new();
        let mut end = End::Eof;
        while !self.at_end() {
            if let Some(e) = self.command(&mut cmds)? {
                end = e;
                break;
            }
            self.skip_space();
        }
        if conditional {
            self.expect_endif -= 1;
            if end == End::Eof {
                return Err("\"endif\" missing at end of filter file".into());
            }
        }
        Ok((cmds, end))
    }

    fn push(&mut self, cmds: &mut Vec<Command>, default_seen: bool, kind: CmdKind) {
        cmds.push(Command {
            seen: self.seen_force.unwrap_or(default_seen),
            noerror: self.noerror_force,
            kind,
        });
    }

    /// Read one command onto `cmds`; `Some` when it was `elif`, `else` or
    /// `endif`.
    fn command(&mut self, cmds: &mut Vec<Command>) -> PResult<Option<End>> {
        let rest = &self.s[self.pos..];
        let name = if rest.starts_with(b"if(") {
            self.pos += 2;
            "if".to_string()
        } else if rest.starts_with(b"elif(") {
            self.pos += 4;
            "elif".to_string()
        } else {
            self.word(false)
        };
        let r = self.command_named(&name, cmds);
        if !matches!(name.as_str(), "seen" | "unseen" | "noerror") {
            self.seen_force = None;
            self.noerror_force = false;
        }
        r
    }

    fn no_prefix(&self, what: &str) -> PResult<()> {
        if self.seen_force.is_some() || self.noerror_force {
            return Err(format!(
                "\"seen\", \"unseen\", or \"noerror\" found before an {what} command near line {}",
                self.line
            ));
        }
        Ok(())
    }

    fn command_named(&mut self, name: &str, cmds: &mut Vec<Command>) -> PResult<Option<End>> {
        let line = self.line;
        if !COMMANDS.contains(&name) {
            return Err(format!(
                "unknown filtering command \"{name}\" near line {line} of filter file"
            ));
        }
        match name {
            "add" | "headers" | "deliver" | "logfile" | "logwrite" | "pipe" | "save"
            | "testprint" => {
                if name == "add" || name == "headers" {
                    self.no_prefix(&format!("\"{name}\""))?;
                }
                let arg = self.item(false)?;
                if arg.is_empty() {
                    return Err(format!(
                        "\"{name}\" requires an argument near line {} of filter file",
                        self.line
                    ));
                }
                self.simple(name, arg, cmds)?;
            }
            "elif" | "else" | "endif" => {
                if self.seen_force.is_some() || self.noerror_force {
                    return Err(format!(
                        "\"seen\", \"unseen\", or \"noerror\" near line {} is not followed by a command",
                        self.line
                    ));
                }
                if self.expect_endif == 0 {
                    return Err(format!(
                        "unexpected \"{name}\" command near line {} of filter file",
                        self.line
                    ));
                }
                return Ok(Some(match name {
                    "elif" => End::Elif,
                    "else" => End::Else,
                    _ => End::Endif,
                }));
            }
            "defer" | "fail" | "freeze" => {
                let (kind, allowed) = match name {
                    "defer" => (Stop::Defer, self.opts.allow_defer),
                    "fail" => (Stop::Fail, self.opts.allow_fail),
                    _ => (Stop::Freeze, self.opts.allow_freeze),
                };
                if !allowed {
                    return Err(format!(
                        "filtering command \"{name}\" is disabled: near line {} of filter file",
                        self.line
                    ));
                }
                let save = (self.pos, self.line);
                let quoted = self.peek() == b'"';
                let first = self.item(false)?;
                let text = if quoted {
                    first
                } else if first == "text" {
                    self.item(false)?
                } else {
                    (self.pos, self.line) = save;
                    String::new()
                };
                // Never "seen" unless said so.
                let seen = self.seen_force == Some(true);
                cmds.push(Command {
                    seen,
                    noerror: self.noerror_force,
                    kind: CmdKind::Stop { kind, text },
                });
            }
            "finish" => self.push(cmds, false, CmdKind::Finish),
            "if" => {
                self.no_prefix("\"if\"")?;
                let mut branches = Vec::new();
                let mut otherwise = Vec::new();
                loop {
                    let cond = self.condition(true)?;
                    let (list, end) = self.command_list(true)?;
                    branches.push((cond, list));
                    match end {
                        End::Elif => continue,
                        End::Else => {
                            let (list, end) = self.command_list(true)?;
                            if end != End::Endif {
                                return Err(format!(
                                    "\"endif\" missing near line {} of filter file",
                                    self.line
                                ));
                            }
                            otherwise = list;
                            break;
                        }
                        _ => break,
                    }
                }
                cmds.push(Command {
                    seen: false,
                    noerror: false,
                    kind: CmdKind::If {
                        branches,
                        otherwise,
                    },
                });
            }
            "mail" | "vacation" => {
                let args = self.mail_args(name == "vacation")?;
                self.push(
                    cmds,
                    false,
                    CmdKind::Mail {
                        vacation: name == "vacation",
                        args: Box::new(args),
                    },
                );
            }
            "seen" | "unseen" => {
                if self.at_end() {
                    return Err(format!(
                        "\"seen\" or \"unseen\" near line {} is not followed by a command",
                        self.line
                    ));
                }
                if self.seen_force.is_some() {
                    return Err(format!(
                        "\"seen\" or \"unseen\" repeated near line {}",
                        self.line
                    ));
                }
                self.seen_force = Some(name == "seen");
            }
            _ => {
                // noerror
                if self.at_end() {
                    return Err(format!(
                        "\"noerror\" near line {} is not followed by a command",
                        self.line
                    ));
                }
                self.noerror_force = true;
            }
        }
        Ok(None)
    }

    /// The commands with one main argument (already read as `arg`).
    fn simple(&mut self, name: &str, arg: String, cmds: &mut Vec<Command>) -> PResult<()> {
        let kind = match name {
            "add" => {
                let to = self.item(false)?;
                if to != "to" {
                    return Err(format!(
                        "\"to\" expected in \"add\" command near line {} of filter file",
                        self.line
                    ));
                }
                let var = self.item(false)?;
                if var.is_empty() {
                    return Err(format!(
                        "value missing after \"to\" near line {} of filter file",
                        self.line
                    ));
                }
                CmdKind::Add { value: arg, var }
            }
            "headers" => {
                let op = match arg.as_str() {
                    "add" => HeadersOp::Add,
                    "remove" => HeadersOp::Remove,
                    "charset" => HeadersOp::Charset,
                    _ => {
                        return Err(format!(
                            "\"add\", \"remove\", or \"charset\" expected after \"headers\" near line {} of filter file",
                            self.line
                        ))
                    }
                };
                if !self.opts.system && op != HeadersOp::Charset {
                    return Err(format!(
                        "header addition and removal is available only in system filters: near line {} of filter file",
                        self.line
                    ));
                }
                let value = self.item(false)?;
                if value.is_empty() {
                    return Err(format!(
                        "value missing after \"add\", \"remove\", or \"charset\" near line {} of filter file",
                        self.line
                    ));
                }
                CmdKind::Headers { op, value }
            }
            "logwrite" => {
                let mut text = arg;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                CmdKind::Logwrite { text }
            }
            "save" | "logfile" => {
                let mode = if self.peek().is_ascii_digit() {
                    let w = self.word(false);
                    let digits: String =
                        w.chars().take_while(|c| ('0'..='7').contains(c)).collect();
                    Some(u32::from_str_radix(&digits, 8).unwrap_or(0))
                } else {
                    None
                };
                if name == "save" {
                    CmdKind::Save { path: arg, mode }
                } else {
                    CmdKind::Logfile { path: arg, mode }
                }
            }
            "deliver" => {
                let save = (self.pos, self.line);
                let w = self.word(false);
                let errors_to = if w == "errors_to" {
                    Some(self.word(false))
                } else {
                    (self.pos, self.line) = save;
                    None
                };
                CmdKind::Deliver {
                    address: arg,
                    errors_to,
                }
            }
            "pipe" => CmdKind::Pipe { command: arg },
            _ => CmdKind::Testprint { text: arg },
        };
        let default_seen = matches!(name, "deliver" | "save" | "pipe");
        self.push(cmds, default_seen, kind);
        Ok(())
    }

    fn mail_args(&mut self, vacation: bool) -> PResult<MailArgs> {
        let mut a = MailArgs::default();
        loop {
            let save = (self.pos, self.line);
            let mut w = self.word(false);
            if w == "return" {
                a.return_message = true;
                if self.word(false) != "message" {
                    return Err(format!(
                        "\"return\" not followed by \"message\"  near line {} of filter file",
                        self.line
                    ));
                }
                continue;
            }
            if w == "expand" {
                a.expand_file = true;
                w = self.word(false);
                if w != "file" {
                    return Err(format!(
                        "\"expand\" not followed by \"file\"  near line {} of filter file",
                        self.line
                    ));
                }
            }
            let Some(i) = MAIL_ARGS.iter().position(|k| *k == w) else {
                (self.pos, self.line) = save;
                break;
            };
            a.values[i] = Some(self.item(false)?);
        }
        if vacation {
            let v = &mut a.values;
            if v[MAIL_FILE].is_none() {
                v[MAIL_FILE] = Some(".vacation.msg".into());
                a.expand_file = true;
            }
            v[9].get_or_insert_with(|| ".vacation.log".into());
            v[10].get_or_insert_with(|| ".vacation".into());
            v[11].get_or_insert_with(|| "7d".into());
            v[5].get_or_insert_with(|| "On vacation".into());
        }
        Ok(a)
    }
}
