//! Parser for Exim's test-script language (`scripts/NNNN-*/NNNN`).
//!
//! A script is a sequence of commands. Some commands (`exim`, `perl`,
//! `client`, `server`, `write`) take *data*: the following lines up to a line
//! `****` or the end of the file. A line consisting of a number (optionally
//! `~`-prefixed) before a command sets the expected exit status of that
//! command. Flag words (`no_msglog_check`, ...) may appear anywhere.

use std::collections::BTreeSet;

use thiserror::Error;

/// Error found while parsing a script; carries the 1-based line number.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScriptError {
    /// The first line of a script must be a `#` comment.
    #[error("line 1: a script must start with a '#' comment line")]
    NoLeadingComment,
    /// A line that is not a known command.
    #[error("line {line}: unknown script command: {text:?}")]
    UnknownCommand {
        /// Line number.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// A command whose arguments are malformed.
    #[error("line {line}: {message}")]
    BadArguments {
        /// Line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An exit-status line that is not followed by a command.
    #[error("line {line}: expected exit status given but no command follows")]
    DanglingStatus {
        /// Line number.
        line: usize,
    },
}

/// Expected exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitExpect {
    /// Must exit with exactly this status.
    Is(i32),
    /// Must exit with anything but this status.
    Not(i32),
}

impl Default for ExitExpect {
    fn default() -> Self {
        ExitExpect::Is(0)
    }
}

impl ExitExpect {
    /// Whether an actual exit status satisfies the expectation.
    pub fn accepts(self, status: i32) -> bool {
        match self {
            ExitExpect::Is(n) => status == n,
            ExitExpect::Not(n) => status != n,
        }
    }
}

impl std::fmt::Display for ExitExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitExpect::Is(n) => write!(f, "{n}"),
            ExitExpect::Not(n) => write!(f, "not {n}"),
        }
    }
}

/// Which flavour of scripted client to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Plain TCP (`client`).
    Plain,
    /// TLS variants (`client-ssl`, `client-gnutls`, `client-anytls`).
    Tls,
}

/// The helper programs of Exim's harness that `runtest` runs from its
/// `eximdir` (other than `exim` itself), with their script command word.
pub const UTILITIES: &[&str] = &[
    "dbmbuild",
    "exim_lock",
    "exinext",
    "exigrep",
    "exiqgrep",
    "eximstats",
    "exim_id_update",
];

/// One command of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `[VAR=val ...] [N] [sudo [-u USER]] exim[_NAME] ARGS` with data for stdin.
    Exim {
        /// `sudo exim`: run as root even with `--caller`.
        sudo: bool,
        /// `sudo -u USER exim`: run as that user.
        sudo_user: Option<String>,
        /// Extra environment variables (`VAR=val` prefixes).
        env: Vec<(String, String)>,
        /// `N exim ...`: wait N seconds before closing stdin.
        wait: u64,
        /// `exim_NAME`: the suffix (`_exim`, `_msgdate`), empty for `exim`.
        special: String,
        /// Everything after the command word (not yet substituted).
        args: String,
        /// Lines for stdin.
        data: Vec<String>,
    },
    /// `killdaemon`: stop the daemon (or background process) started earlier.
    KillDaemon,
    /// `sleep N` (seconds).
    Sleep(u64),
    /// `millisleep N`.
    MilliSleep(u64),
    /// `[sudo] perl [ARGS]` with a program (or input) as data.
    Perl {
        /// Whether the script asked for root (`sudo perl`).
        sudo: bool,
        /// Arguments after `perl` (usually none).
        args: String,
        /// The program text lines.
        data: Vec<String>,
    },
    /// `client IP PORT ...` with an SMTP script as data.
    Client {
        /// Plain or TLS.
        kind: ClientKind,
        /// The command word (`client`, `client-ssl`, ...).
        word: String,
        /// The arguments (`IP PORT [...]`, not yet substituted).
        args: String,
        /// Script lines.
        data: Vec<String>,
    },
    /// `server PORT [...]` with a server script as data (never substituted).
    Server {
        /// Arguments (port, optional connection count).
        args: String,
        /// Script lines.
        data: Vec<String>,
    },
    /// `write FILE [NxM[=lead] ...]` / `catwrite ...`: create a file.
    Write {
        /// Target file (relative to the test directory).
        file: String,
        /// Also copy the data to test-stdout between `==========` lines.
        cat: bool,
        /// Sized-data specifications (`3x50`, `1x80=From_`).
        sizes: Vec<String>,
        /// Lines before the sized data (all lines when there are no sizes).
        pre: Vec<String>,
        /// Lines after `++++` (after the sized data).
        post: Vec<String>,
    },
    /// `echo TEXT`: show a message on the runner's terminal (verbose only).
    Echo(String),
    /// `### TEXT`: a comment copied to test-stdout, test-stderr and the
    /// server's stdout/stderr.
    Comment(String),
    /// `gnutls`: copy GnuTLS parameters into the spool.
    Gnutls,
    /// `munge NAME`: a canned extra munge for the comparison.
    Munge(String),
    /// A Unix command Exim's runtest hands to the shell (`ls`, `mkdir`,
    /// `sudo rm`, ...), output appended to test-stdout/test-stderr;
    /// `cat2` (`cat` with stdout to test-stderr, replacing it).
    Shell {
        /// The command line (`cat2` already turned into `cat`).
        line: String,
        /// `cat2`: stdout replaces test-stderr.
        cat2: bool,
    },
    /// `dump DB`: list a hints database like `exim_dumpdb`.
    Dump(String),
    /// One of [`UTILITIES`] with its arguments.
    Utility {
        /// The command word.
        name: String,
        /// Its arguments (not yet substituted).
        args: String,
    },
    /// `background` + one command line: started, not waited for.
    Background(String),
}

/// A command with its expected exit status and source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the command word.
    pub line: usize,
    /// Expected exit status.
    pub expect: ExitExpect,
    /// `N VAR=value` on the status line: an environment variable for the command.
    pub env: Vec<(String, String)>,
    /// The command.
    pub command: Command,
}

/// Flags that change how a test is checked (Exim matches them at the
/// start of a line).
pub const FLAG_WORDS: &[&str] = &[
    "no_msglog_check",
    "no_message_check",
    "no_stdout_check",
    "no_stderr_check",
    "no_munge",
    "rmfiltertest",
    "sortlog",
    "need_ipv4",
    "need_ipv6",
    "need_largefiles",
    "need_move_frozen_messages",
];

/// A parsed script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Commands in order.
    pub steps: Vec<Step>,
    /// Flag words present anywhere in the script.
    pub flags: BTreeSet<String>,
}

impl Script {
    /// Whether a flag word appeared in the script.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }

    /// Whether any step runs the MTA.
    pub fn uses_exim(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.command, Command::Exim { .. }))
    }
}

/// Split text into lines the way Perl's `<SCRIPT>` + `chomp` does (a final
/// line without newline counts; `\r` stays part of the line).
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

fn is_terminator(line: &str) -> bool {
    line.strip_prefix("****")
        .is_some_and(|r| r.trim_end().is_empty())
}

fn is_plusplus(line: &str) -> bool {
    line.strip_prefix("++++")
        .is_some_and(|r| r.trim_end().is_empty())
}

/// Parse the text of a script (Latin-1 decoded, see [`crate::latin1`]).
pub fn parse(text: &str) -> Result<Script, ScriptError> {
    let lines = split_lines(text);
    match lines.first() {
        Some(first) if first.starts_with('#') => {}
        _ => return Err(ScriptError::NoLeadingComment),
    }
    let mut script = Script::default();
    let mut i = 1;
    while i < lines.len() {
        let lineno = i + 1;
        let raw = lines[i];
        i += 1;
        if let Some(flag) = FLAG_WORDS.iter().find(|f| raw.starts_with(**f)) {
            script.flags.insert((*flag).to_string());
            continue;
        }
        let is_comment = raw.starts_with('#') && !raw.starts_with("### ") && raw != "###";
        if is_comment || raw.trim().is_empty() {
            continue;
        }
        let mut line = raw.trim_end().to_string();
        let mut cmd_line = lineno;
        let mut expect = ExitExpect::default();
        let mut env = Vec::new();
        if let Some((e, var)) = parse_status(&line) {
            expect = e;
            env.extend(var);
            if i >= lines.len() {
                return Err(ScriptError::DanglingStatus { line: lineno });
            }
            line = lines[i].trim_end().to_string();
            cmd_line = i + 1;
            i += 1;
        }
        // Continuation lines: a trailing backslash joins the next line.
        while line.ends_with('\\') && i < lines.len() {
            line.pop();
            line.push_str(lines[i].trim());
            i += 1;
        }
        let (command, consumed) = parse_command(&line, cmd_line, &lines[i..])?;
        i += consumed;
        script.steps.push(Step {
            line: cmd_line,
            expect,
            env,
            command,
        });
    }
    Ok(script)
}

/// `N`, `~N` or `N VAR=value` on a line of its own.
fn parse_status(line: &str) -> Option<(ExitExpect, Option<(String, String)>)> {
    let (not, rest) = match line.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits_end == 0 {
        return None;
    }
    let n: i32 = rest[..digits_end].parse().ok()?;
    let tail = rest[digits_end..].trim_start();
    let var = if tail.is_empty() {
        None
    } else {
        let (name, value) = tail.split_once('=')?;
        let ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_uppercase())
            && !value.is_empty()
            && !value.contains(char::is_whitespace);
        if !ok {
            return None;
        }
        Some((name.to_string(), value.to_string()))
    };
    let expect = if not {
        ExitExpect::Not(n)
    } else {
        ExitExpect::Is(n)
    };
    Some((expect, var))
}

/// Read data lines up to `****` (consumed) or end of input.
fn take_data(rest: &[&str]) -> (Vec<String>, usize) {
    let mut data = Vec::new();
    for (n, l) in rest.iter().enumerate() {
        if is_terminator(l) {
            return (data, n + 1);
        }
        data.push((*l).to_string());
    }
    (data, rest.len())
}

/// Whether `word` looks like an environment assignment `VAR=value`.
fn env_assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !value.is_empty();
    ok.then(|| (name.to_string(), value.to_string()))
}

fn bad(line: usize, message: impl Into<String>) -> ScriptError {
    ScriptError::BadArguments {
        line,
        message: message.into(),
    }
}

fn parse_number(line: usize, cmd: &str, arg: &str) -> Result<u64, ScriptError> {
    arg.trim()
        .parse()
        .map_err(|_| bad(line, format!("{cmd}: expected a number, got {arg:?}")))
}

/// `[VAR=val ...] [N] [sudo [-u USER]] exim[_NAME] ARGS` (Exim's pattern).
struct EximLine {
    env: Vec<(String, String)>,
    wait: u64,
    sudo: bool,
    sudo_user: Option<String>,
    special: String,
    args: String,
}

fn parse_exim_line(line: &str) -> Option<EximLine> {
    let mut rest = line;
    let mut env = Vec::new();
    loop {
        let (w, tail) = split_word(rest);
        match env_assignment(w) {
            Some(a) if !tail.is_empty() => {
                env.push(a);
                rest = tail;
            }
            _ => break,
        }
    }
    let mut wait = 0;
    let (w, tail) = split_word(rest);
    if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
        wait = w.parse().ok()?;
        rest = tail;
    }
    let mut sudo = false;
    let mut sudo_user = None;
    let (w, tail) = split_word(rest);
    if w == "sudo" {
        sudo = true;
        rest = tail;
        let (w2, tail2) = split_word(rest);
        if w2 == "-u" {
            let (user, tail3) = split_word(tail2);
            if user.is_empty() {
                return None;
            }
            sudo_user = Some(user.to_string());
            rest = tail3;
        }
    }
    let (word, args) = split_word(rest);
    let special = word.strip_prefix("exim")?;
    if !(special.is_empty() || special.starts_with('_')) || special == "_" {
        return None;
    }
    // Exim's pattern needs white space after the command word.
    if !rest[word.len()..].starts_with(char::is_whitespace) {
        return None;
    }
    Some(EximLine {
        env,
        wait,
        sudo,
        sudo_user,
        special: special.to_string(),
        args: args.to_string(),
    })
}

/// Whether a line is one of the Unix commands runtest hands to the shell.
fn shell_command(line: &str) -> bool {
    let (w, tail) = split_word(line);
    let has_space = line.len() > w.len();
    match w {
        "ln" | "ls" | "du" | "mkdir" | "mkfifo" | "touch" | "cp" | "cat" => has_space,
        "sudo" => {
            let (w2, _) = split_word(tail);
            matches!(
                w2,
                "mkdir" | "rmdir" | "rm" | "mv" | "cp" | "chown" | "chmod"
            ) && tail.len() > w2.len()
        }
        _ => false,
    }
}

fn parse_command(
    line: &str,
    lineno: usize,
    rest: &[&str],
) -> Result<(Command, usize), ScriptError> {
    let (word, args) = split_word(line);
    // Same order as Exim's runtest.
    if word == "dbmbuild" || UTILITIES.contains(&word) {
        if word != "exiqgrep" && word != "exim_id_update" && args.is_empty() {
            return Err(bad(lineno, format!("{word}: missing arguments")));
        }
        return Ok((
            Command::Utility {
                name: word.to_string(),
                args: args.to_string(),
            },
            0,
        ));
    }
    if word == "dump" {
        let (db, _) = split_word(args);
        if db.is_empty() {
            return Err(bad(lineno, "dump: missing database name"));
        }
        return Ok((Command::Dump(db.to_string()), 0));
    }
    if let Some(text) = line.strip_prefix("###") {
        if text.is_empty() || text.starts_with(char::is_whitespace) {
            return Ok((Command::Comment(line.to_string()), 0));
        }
    }
    match word {
        "echo" if !args.is_empty() => return Ok((Command::Echo(args.to_string()), 0)),
        "gnutls" => return Ok((Command::Gnutls, 0)),
        "killdaemon" => return Ok((Command::KillDaemon, 0)),
        "millisleep" => return Ok((Command::MilliSleep(parse_number(lineno, word, args)?), 0)),
        "munge" if !args.is_empty() => return Ok((Command::Munge(args.to_string()), 0)),
        "sleep" => return Ok((Command::Sleep(parse_number(lineno, word, args)?), 0)),
        _ => {}
    }
    if shell_command(line) {
        return Ok((
            Command::Shell {
                line: line.to_string(),
                cat2: false,
            },
            0,
        ));
    }
    if word == "cat2" && !args.is_empty() {
        return Ok((
            Command::Shell {
                line: format!("cat {args}"),
                cat2: true,
            },
            0,
        ));
    }
    if word == "server" {
        if args.is_empty() {
            return Err(bad(lineno, "server: missing port"));
        }
        let (data, used) = take_data(rest);
        return Ok((
            Command::Server {
                args: args.to_string(),
                data,
            },
            used,
        ));
    }
    if word == "write" || word == "catwrite" {
        let (file, sizes) = split_word(args);
        if file.is_empty() {
            return Err(bad(lineno, format!("{word}: missing file name")));
        }
        let sizes: Vec<String> = sizes.split_whitespace().map(str::to_string).collect();
        let mut used = 0;
        let mut pre = Vec::new();
        let mut post = Vec::new();
        let mut ended = false;
        if !sizes.is_empty() {
            for l in rest {
                used += 1;
                if is_terminator(l) {
                    ended = true;
                    break;
                }
                if is_plusplus(l) {
                    break;
                }
                pre.push((*l).to_string());
            }
        }
        if !ended {
            let (data, n) = take_data(&rest[used..]);
            used += n;
            if sizes.is_empty() {
                pre = data;
            } else {
                post = data;
            }
        }
        for s in &sizes {
            if parse_size(s).is_none() {
                return Err(bad(
                    lineno,
                    format!("{word}: bad size {s:?} (want NxM[=lead])"),
                ));
            }
        }
        return Ok((
            Command::Write {
                file: file.to_string(),
                cat: word == "catwrite",
                sizes,
                pre,
                post,
            },
            used,
        ));
    }
    if line.starts_with("client") {
        let kind = if word == "client" {
            ClientKind::Plain
        } else {
            ClientKind::Tls
        };
        let (data, used) = take_data(rest);
        return Ok((
            Command::Client {
                kind,
                word: word.to_string(),
                args: args.to_string(),
                data,
            },
            used,
        ));
    }
    let perl_args = if word == "perl" {
        Some((false, args))
    } else if word == "sudo" {
        let (w2, a2) = split_word(args);
        (w2 == "perl").then_some((true, a2))
    } else {
        None
    };
    if let Some((sudo, pargs)) = perl_args {
        let (data, used) = take_data(rest);
        return Ok((
            Command::Perl {
                sudo,
                args: pargs.to_string(),
                data,
            },
            used,
        ));
    }
    if let Some(e) = parse_exim_line(line) {
        let (data, used) = take_data(rest);
        return Ok((
            Command::Exim {
                sudo: e.sudo,
                sudo_user: e.sudo_user,
                env: e.env,
                wait: e.wait,
                special: e.special,
                args: e.args,
                data,
            },
            used,
        ));
    }
    if line == "background" {
        let Some(cmd) = rest.first() else {
            return Err(bad(lineno, "background: no command follows"));
        };
        let (_, used) = take_data(&rest[1..]);
        return Ok((Command::Background(cmd.trim_end().to_string()), used + 1));
    }
    Err(ScriptError::UnknownCommand {
        line: lineno,
        text: line.to_string(),
    })
}

/// `NxM[=lead]`: N lines of M characters (newline included), each
/// starting with `lead` (`_` = space).
pub fn parse_size(spec: &str) -> Option<(usize, usize, String)> {
    let (count, rest) = spec.split_once('x')?;
    let (len, lead) = match rest.split_once('=') {
        Some((l, lead)) => (l, lead.replace('_', " ")),
        None => (rest, String::new()),
    };
    Some((count.parse().ok()?, len.parse().ok()?, lead))
}

/// Split off the first whitespace-separated word.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(pos) => (&s[..pos], s[pos..].trim_start()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_data_and_flags() {
        let text = "# title\n#\nexim -DSERVER=server -bd -oX PORT_D\n****\n\
                    exim a@test.ex\nTesting\n****\nsleep 3\n\nsudo perl\nsystem(\"x\");\n****\n\
                    killdaemon\nno_msglog_check\n";
        let s = parse(text).unwrap();
        assert!(s.has_flag("no_msglog_check"));
        assert_eq!(s.steps.len(), 5);
        assert_eq!(
            s.steps[0].command,
            Command::Exim {
                sudo: false,
                sudo_user: None,
                env: vec![],
                wait: 0,
                special: String::new(),
                args: "-DSERVER=server -bd -oX PORT_D".into(),
                data: vec![]
            }
        );
        assert_eq!(s.steps[0].line, 3);
        match &s.steps[1].command {
            Command::Exim { data, .. } => assert_eq!(data, &vec!["Testing".to_string()]),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(s.steps[2].command, Command::Sleep(3));
        assert_eq!(
            s.steps[3].command,
            Command::Perl {
                sudo: true,
                args: String::new(),
                data: vec!["system(\"x\");".into()]
            }
        );
        assert_eq!(s.steps[4].command, Command::KillDaemon);
        assert!(s.uses_exim());
    }

    #[test]
    fn data_runs_to_eof_without_terminator() {
        let s = parse("# t\nexim -bS -odi\nHELO x\n.\n").unwrap();
        match &s.steps[0].command {
            Command::Exim { data, .. } => assert_eq!(data.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn exit_status_prefix_and_env() {
        let s = parse("# t\n1\nexim -bs\n****\n~0\nFOO=bar sudo exim -z x\n****\n").unwrap();
        assert_eq!(s.steps[0].expect, ExitExpect::Is(1));
        assert_eq!(s.steps[1].expect, ExitExpect::Not(0));
        assert!(!s.steps[1].expect.accepts(0));
        assert!(s.steps[1].expect.accepts(3));
        match &s.steps[1].command {
            Command::Exim {
                sudo, env, args, ..
            } => {
                assert!(*sudo);
                assert_eq!(env, &vec![("FOO".to_string(), "bar".to_string())]);
                assert_eq!(args, "-z x");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse("exim\n"), Err(ScriptError::NoLeadingComment));
        assert_eq!(parse(""), Err(ScriptError::NoLeadingComment));
        assert!(matches!(
            parse("# t\nfrobnicate now\n"),
            Err(ScriptError::UnknownCommand { line: 2, .. })
        ));
        assert!(matches!(
            parse("# t\nsleep soon\n"),
            Err(ScriptError::BadArguments { line: 2, .. })
        ));
        assert!(matches!(
            parse("# t\n0\n"),
            Err(ScriptError::DanglingStatus { line: 2 })
        ));
        assert!(matches!(
            parse("# t\nserver\n"),
            Err(ScriptError::BadArguments { .. })
        ));
    }

    #[test]
    fn client_and_server_keep_raw_data() {
        let s = parse("# t\nserver PORT_S\n220 ok\n*sleep 1\n****\nclient 127.0.0.1 PORT_S\n??? 220\nQUIT\n****\n")
            .unwrap();
        assert_eq!(
            s.steps[0].command,
            Command::Server {
                args: "PORT_S".into(),
                data: vec!["220 ok".into(), "*sleep 1".into()]
            }
        );
        assert!(matches!(
            &s.steps[1].command,
            Command::Client { kind: ClientKind::Plain, args, data, .. } if args == "127.0.0.1 PORT_S" && data.len() == 2
        ));
    }

    #[test]
    fn hash_triple_comment_is_a_command() {
        let s = parse("# t\n### say something\n# quiet\nsleep 0\n").unwrap();
        assert_eq!(s.steps.len(), 2);
        assert_eq!(
            s.steps[0].command,
            Command::Comment("### say something".into())
        );
    }

    #[test]
    fn exim_harness_commands() {
        let text = "# t\n0 TZ=GB\nexim -bh 1.2.3.4\n****\nsudo rm DIR/spool/db/retry*\n\
                    dump retry\n3 sudo -u root exim_exim -qf \\\n  -d\n****\n\
                    background\nDIR/bin/x -y\n****\ncat2 DIR/f\nexinext a@b\n\
                    write f 2x5=A_ 1x3\npre\n++++\npost\n****\n";
        let s = parse(text).unwrap();
        assert_eq!(s.steps[0].env, vec![("TZ".to_string(), "GB".to_string())]);
        assert_eq!(s.steps[0].line, 3);
        assert!(
            matches!(&s.steps[1].command, Command::Shell { line, cat2: false } if line == "sudo rm DIR/spool/db/retry*")
        );
        assert_eq!(s.steps[2].command, Command::Dump("retry".into()));
        match &s.steps[3].command {
            Command::Exim {
                sudo,
                sudo_user,
                wait,
                special,
                args,
                ..
            } => {
                assert!(*sudo);
                assert_eq!(sudo_user.as_deref(), Some("root"));
                assert_eq!(*wait, 3);
                assert_eq!(special, "_exim");
                assert_eq!(args, "-qf -d");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            s.steps[4].command,
            Command::Background("DIR/bin/x -y".into())
        );
        assert!(
            matches!(&s.steps[5].command, Command::Shell { line, cat2: true } if line == "cat DIR/f")
        );
        assert!(matches!(&s.steps[6].command, Command::Utility { name, .. } if name == "exinext"));
        match &s.steps[7].command {
            Command::Write {
                sizes, pre, post, ..
            } => {
                assert_eq!(sizes.len(), 2);
                assert_eq!(pre, &vec!["pre".to_string()]);
                assert_eq!(post, &vec!["post".to_string()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(parse_size("2x5=A_"), Some((2, 5, "A ".into())));
    }
}
