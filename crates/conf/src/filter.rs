//! Exim's filter language (`# Exim filter` files): the parser.
//!
//! [`parse`] turns the text of a filter into commands; nothing is expanded
//! here (arguments are expanded when the filter runs, in the binary). The
//! parser reports the first error with Exim's wording and line numbers:
//! the line is the one the reader had reached, after the white space and
//! comments that follow the offending word, as Exim counts it.

/// What kind of file a redirection's data is, from its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterType {
    /// A plain list of addresses, files and pipes.
    Forward,
    /// `# Exim filter`.
    Exim,
    /// `# Sieve filter`.
    Sieve,
}

/// Recognize `# Exim filter` / `# Sieve filter` (case does not matter, and
/// each space in the tag matches any run of spaces and tabs, none included).
pub fn filter_type(text: &str) -> FilterType {
    let t = text.trim_start();
    if match_tag(t, "# exim filter") {
        FilterType::Exim
    } else if match_tag(t, "# sieve filter") {
        FilterType::Sieve
    } else {
        FilterType::Forward
    }
}

fn match_tag(s: &str, tag: &str) -> bool {
    let s = s.as_bytes();
    let mut i = 0;
    for &t in tag.as_bytes() {
        if t == b' ' {
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
        } else if i < s.len() && s[i].eq_ignore_ascii_case(&t) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// The comparison of two (expanded) strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Is,
    /// `IS`: case-sensitive (likewise the other upper-case words).
    IsCase,
    Contains,
    ContainsCase,
    Begins,
    BeginsCase,
    Ends,
    EndsCase,
    Matches,
    MatchesCase,
    Above,
    Below,
}

/// One condition; `negated` when written with `not`, `is not`,
/// `does not ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub negated: bool,
    pub kind: CondKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CondKind {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Personal {
        aliases: Vec<String>,
    },
    Delivered,
    ErrorMessage,
    FirstDelivery,
    ManuallyThawed,
    /// `foranyaddress <list> (<condition>)`.
    ForAnyAddress {
        list: String,
        cond: Box<Condition>,
    },
    Compare {
        op: Compare,
        left: String,
        right: String,
    },
}

/// `defer`, `fail`, `freeze`: end filtering with that outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Defer,
    Fail,
    Freeze,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Defer => "defer",
            Stop::Fail => "fail",
            Stop::Freeze => "freeze",
        }
    }
}

/// `headers add|remove|charset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersOp {
    Add,
    Remove,
    Charset,
}

/// The keyword arguments of `mail` and `vacation`, in Exim's order (which
/// is also the order filter testing prints them in).
pub const MAIL_ARGS: [&str; 12] = [
    "to",
    "cc",
    "bcc",
    "from",
    "reply_to",
    "subject",
    "extra_headers",
    "text",
    "file",
    "log",
    "once",
    "once_repeat",
];
/// Index of `extra_headers` in [`MAIL_ARGS`].
pub const MAIL_HEADERS: usize = 6;
/// Index of `text` in [`MAIL_ARGS`].
pub const MAIL_TEXT: usize = 7;
/// Index of `file` in [`MAIL_ARGS`].
pub const MAIL_FILE: usize = 8;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MailArgs {
    /// Values for [`MAIL_ARGS`], unexpanded.
    pub values: [Option<String>; 12],
    /// `expand file`.
    pub expand_file: bool,
    /// `return message`.
    pub return_message: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CmdKind {
    /// `add <value> to <variable>`.
    Add {
        value: String,
        var: String,
    },
    Deliver {
        address: String,
        errors_to: Option<String>,
    },
    Save {
        path: String,
        mode: Option<u32>,
    },
    /// The command is not expanded as a whole (its arguments are, by the
    /// pipe transport).
    Pipe {
        command: String,
    },
    Logfile {
        path: String,
        mode: Option<u32>,
    },
    /// The text always ends with a newline.
    Logwrite {
        text: String,
    },
    Testprint {
        text: String,
    },
    Headers {
        op: HeadersOp,
        value: String,
    },
    Stop {
        kind: Stop,
        text: String,
    },
    Finish,
    /// `if`/`elif` branches and the `else` commands.
    If {
        branches: Vec<(Condition, Vec<Command>)>,
        otherwise: Vec<Command>,
    },
    Mail {
        vacation: bool,
        args: Box<MailArgs>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `seen` (a significant delivery); the default depends on the command.
    pub seen: bool,
    pub noerror: bool,
    pub kind: CmdKind,
}

/// What the context permits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// A system filter: `headers add`/`remove` are allowed.
    pub system: bool,
    pub allow_defer: bool,
    pub allow_fail: bool,
    pub allow_freeze: bool,
}

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

    /// A condition up to `then` (top level) or the `)` that closes it
    /// (left for the caller). `and` binds more tightly than `or`.
    fn condition(&mut self, toplevel: bool) -> PResult<Condition> {
        // An "or" of "and" groups.
        let mut ors: Vec<Vec<Condition>> = vec![Vec::new()];
        let mut negate = false;
        loop {
            if self.at_end() {
                return Err("\"then\" missing at end of filter file".into());
            }
            let c = match self.peek() {
                b'(' => {
                    self.pos += 1;
                    self.skip_space();
                    let mut c = self.condition(false)?;
                    if self.peek() != b')' {
                        return Err(format!(
                            "expected \")\" in line {} of filter file",
                            self.line
                        ));
                    }
                    self.pos += 1;
                    self.skip_space();
                    if negate {
                        c.negated = !c.negated;
                        negate = false;
                    }
                    c
                }
                b')' => {
                    return Err(format!(
                        "unexpected \")\" in line {} of filter file",
                        self.line
                    ))
                }
                _ => {
                    let w = self.item(true)?;
                    if w == "then" {
                        return Err(format!(
                            "unexpected \"then\" near line {} of filter file",
                            self.line
                        ));
                    }
                    if w == "not" {
                        negate = !negate;
                        continue;
                    }
                    let c = self.simple_condition(w, negate)?;
                    negate = false;
                    c
                }
            };
            ors.last_mut().expect("non-empty").push(c);
            match self.peek() {
                b')' => {
                    if toplevel {
                        return Err(format!(
                            "unexpected \")\" in line {} of filter file",
                            self.line
                        ));
                    }
                    break;
                }
                b'(' => {
                    return Err(format!(
                        "unexpected \"(\" in line {} of filter file",
                        self.line
                    ))
                }
                _ => {}
            }
            let w = self.word(false);
            match w.as_str() {
                "then" => {
                    if !toplevel {
                        return Err(format!(
                            "missing \")\" at end of condition near line {} of filter file",
                            self.line
                        ));
                    }
                    break;
                }
                "and" => {}
                "or" => ors.push(Vec::new()),
                _ => {
                    return Err(format!(
                        "\"and\" or \"or\" or \"{}\" expected near line {} of filter file, but found \"{w}\"",
                        if toplevel { "then" } else { ")" },
                        self.line
                    ))
                }
            }
        }
        let fold = |items: Vec<Condition>, and: bool| -> Condition {
            let mut it = items.into_iter();
            let first = it.next().expect("non-empty");
            it.fold(first, |l, r| Condition {
                negated: false,
                kind: if and {
                    CondKind::And(Box::new(l), Box::new(r))
                } else {
                    CondKind::Or(Box::new(l), Box::new(r))
                },
            })
        };
        let groups: Vec<Condition> = ors.into_iter().map(|g| fold(g, true)).collect();
        Ok(fold(groups, false))
    }

    fn simple_condition(&mut self, w: String, negated: bool) -> PResult<Condition> {
        let kind = match w.as_str() {
            "delivered" => CondKind::Delivered,
            "error_message" => CondKind::ErrorMessage,
            "first_delivery" => CondKind::FirstDelivery,
            "manually_thawed" => CondKind::ManuallyThawed,
            "personal" => {
                let mut aliases = Vec::new();
                loop {
                    let save = (self.pos, self.line);
                    if self.word(true) != "alias" {
                        (self.pos, self.line) = save;
                        break;
                    }
                    aliases.push(self.item(true)?);
                }
                CondKind::Personal { aliases }
            }
            "foranyaddress" => {
                let list = self.item(true)?;
                if self.peek() != b'(' {
                    return Err(format!(
                        "\"(\" expected after \"foranyaddress\" near line {} of filter file",
                        self.line
                    ));
                }
                self.pos += 1;
                self.skip_space();
                let cond = self.condition(false)?;
                if self.peek() != b')' {
                    return Err(format!(
                        "expected \")\" in line {} of filter file",
                        self.line
                    ));
                }
                self.pos += 1;
                self.skip_space();
                CondKind::ForAnyAddress {
                    list,
                    cond: Box::new(cond),
                }
            }
            _ => return self.comparison(w, negated),
        };
        Ok(Condition { negated, kind })
    }

    /// `<left> [is|does] [not] <word> <right>`; after `is` or `is not`
    /// an unknown word is the right-hand side itself (`a is b`).
    fn comparison(&mut self, left: String, mut negated: bool) -> PResult<Condition> {
        let mut w = self.word(true);
        let mut is_form: Option<(Compare, usize, usize)> = None;
        if w.eq_ignore_ascii_case("does") || w.eq_ignore_ascii_case("is") {
            let op = match w.as_bytes()[0] {
                b'i' => Some(Compare::Is),
                b'I' => Some(Compare::IsCase),
                _ => None,
            };
            is_form = op.map(|op| (op, self.pos, self.line));
            w = self.word(true);
            if w.eq_ignore_ascii_case("not") {
                negated = !negated;
                if let Some(f) = is_form.as_mut() {
                    f.1 = self.pos;
                    f.2 = self.line;
                }
                w = self.word(true);
            }
        }
        let op = match COND_WORDS.iter().find(|(n, _)| *n == w) {
            Some((_, op)) => *op,
            None => match is_form {
                Some((op, pos, line)) => {
                    self.pos = pos;
                    self.line = line;
                    op
                }
                None => {
                    return Err(format!(
                        "unrecognized condition word \"{w}\" near line {} of filter file",
                        self.line
                    ))
                }
            },
        };
        let right = self.item(true)?;
        Ok(Condition {
            negated,
            kind: CondKind::Compare { op, left, right },
        })
    }
}

#[cfg(test)]
mod tests;
