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
    /// TLS variants (`client-ssl`, `client-gnutls`, `client-anytls`); not supported yet.
    Tls,
}

/// One command of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `[sudo] [VAR=val ...] exim ARGS` with data for stdin.
    Exim {
        /// `sudo exim`: run as root even with `--caller`.
        sudo: bool,
        /// Extra environment variables (`VAR=val` prefixes).
        env: Vec<(String, String)>,
        /// Everything after the word `exim` (not yet substituted).
        args: String,
        /// Lines for stdin.
        data: Vec<String>,
    },
    /// `killdaemon`: stop the daemon started earlier.
    KillDaemon,
    /// `sleep N` (seconds).
    Sleep(u64),
    /// `millisleep N`.
    MilliSleep(u64),
    /// `[sudo] perl` with a program as data.
    Perl {
        /// Whether the script asked for root (`sudo perl`).
        sudo: bool,
        /// The program text lines.
        data: Vec<String>,
    },
    /// `client IP PORT ...` with an SMTP script as data.
    Client {
        /// Plain or TLS.
        kind: ClientKind,
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
    /// `write FILE` / `catwrite FILE`: create a file from the data.
    Write {
        /// Target file (relative to the test directory).
        file: String,
        /// Also append the data to test-stdout (`catwrite`).
        cat: bool,
        /// File contents.
        data: Vec<String>,
    },
    /// `echo TEXT`: show a message on the runner's terminal (verbose only).
    Echo(String),
    /// `gnutls`: copy GnuTLS parameters (no-op for oxim).
    Gnutls,
    /// `munge NAME`: extra canned munging (accepted, no effect yet).
    Munge(String),
}

/// A command with its expected exit status and source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the command word.
    pub line: usize,
    /// Expected exit status.
    pub expect: ExitExpect,
    /// The command.
    pub command: Command,
}

/// Flags that change how a test is checked.
pub const FLAG_WORDS: &[&str] = &[
    "no_msglog_check",
    "no_message_check",
    "no_stdout_check",
    "no_stderr_check",
    "no_munge",
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

/// Parse the text of a script.
pub fn parse(text: &str) -> Result<Script, ScriptError> {
    let lines: Vec<&str> = text.lines().collect();
    match lines.first() {
        Some(first) if first.starts_with('#') => {}
        _ => return Err(ScriptError::NoLeadingComment),
    }
    let mut script = Script::default();
    let mut pending: Option<(usize, ExitExpect)> = None;
    let mut i = 1;
    while i < lines.len() {
        let lineno = i + 1;
        let raw = lines[i];
        let line = raw.trim_end();
        i += 1;
        if line.is_empty() || (line.starts_with('#') && !line.starts_with("### ")) {
            continue;
        }
        if line.starts_with("### ") {
            // A comment Exim's runtest prints while running; nothing to do.
            continue;
        }
        let trimmed = line.trim_start();
        if FLAG_WORDS.contains(&trimmed) {
            script.flags.insert(trimmed.to_string());
            continue;
        }
        if let Some(expect) = parse_status(trimmed) {
            if pending.is_some() {
                return Err(ScriptError::DanglingStatus { line: lineno });
            }
            pending = Some((lineno, expect));
            continue;
        }
        let expect = pending.take().map(|(_, e)| e).unwrap_or_default();
        let (command, consumed) = parse_command(trimmed, lineno, &lines[i..])?;
        i += consumed;
        script.steps.push(Step {
            line: lineno,
            expect,
            command,
        });
    }
    if let Some((line, _)) = pending {
        return Err(ScriptError::DanglingStatus { line });
    }
    Ok(script)
}

/// `N` or `~N` on a line of its own.
fn parse_status(line: &str) -> Option<ExitExpect> {
    let (not, digits) = match line.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = digits.parse().ok()?;
    Some(if not {
        ExitExpect::Not(n)
    } else {
        ExitExpect::Is(n)
    })
}

/// Read data lines up to `****` (consumed) or end of input.
fn take_data(rest: &[&str]) -> (Vec<String>, usize) {
    let mut data = Vec::new();
    for (n, l) in rest.iter().enumerate() {
        if *l == "****" {
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
        && !name.as_bytes()[0].is_ascii_digit();
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

fn parse_command(
    line: &str,
    lineno: usize,
    rest: &[&str],
) -> Result<(Command, usize), ScriptError> {
    // Strip `sudo` and `VAR=value` prefixes.
    let mut words = line;
    let mut sudo = false;
    let mut env = Vec::new();
    loop {
        let (first, tail) = split_word(words);
        if first == "sudo" {
            sudo = true;
            words = tail;
        } else if let Some(assign) = env_assignment(first).filter(|_| !tail.is_empty()) {
            env.push(assign);
            words = tail;
        } else {
            break;
        }
    }
    let (word, args) = split_word(words);
    let no_prefix = |cmd: Command| -> Result<(Command, usize), ScriptError> {
        if sudo || !env.is_empty() {
            Err(bad(lineno, format!("{word}: unexpected sudo/VAR= prefix")))
        } else {
            Ok((cmd, 0))
        }
    };
    match word {
        "exim" => {
            let (data, used) = take_data(rest);
            Ok((
                Command::Exim {
                    sudo,
                    env,
                    args: args.to_string(),
                    data,
                },
                used,
            ))
        }
        "perl" if args.is_empty() && env.is_empty() => {
            let (data, used) = take_data(rest);
            Ok((Command::Perl { sudo, data }, used))
        }
        "client" | "client-ssl" | "client-gnutls" | "client-anytls" => {
            if args.is_empty() {
                return Err(bad(lineno, format!("{word}: missing IP and port")));
            }
            let kind = if word == "client" {
                ClientKind::Plain
            } else {
                ClientKind::Tls
            };
            let (data, used) = take_data(rest);
            Ok((
                Command::Client {
                    kind,
                    args: args.to_string(),
                    data,
                },
                used,
            ))
        }
        "server" => {
            if args.is_empty() {
                return Err(bad(lineno, "server: missing port"));
            }
            let (data, used) = take_data(rest);
            Ok((
                Command::Server {
                    args: args.to_string(),
                    data,
                },
                used,
            ))
        }
        "write" | "catwrite" => {
            let (file, _) = split_word(args);
            if file.is_empty() {
                return Err(bad(lineno, format!("{word}: missing file name")));
            }
            let (data, used) = take_data(rest);
            Ok((
                Command::Write {
                    file: file.to_string(),
                    cat: word == "catwrite",
                    data,
                },
                used,
            ))
        }
        "killdaemon" if args.is_empty() => no_prefix(Command::KillDaemon),
        "sleep" => no_prefix(Command::Sleep(parse_number(lineno, word, args)?)),
        "millisleep" => no_prefix(Command::MilliSleep(parse_number(lineno, word, args)?)),
        "echo" => no_prefix(Command::Echo(args.to_string())),
        "gnutls" if args.is_empty() => no_prefix(Command::Gnutls),
        "munge" if !args.is_empty() => no_prefix(Command::Munge(args.to_string())),
        _ => Err(ScriptError::UnknownCommand {
            line: lineno,
            text: line.to_string(),
        }),
    }
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
                env: vec![],
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
            Command::Client { kind: ClientKind::Plain, args, data } if args == "127.0.0.1 PORT_S" && data.len() == 2
        ));
    }

    #[test]
    fn hash_triple_comment_is_skipped() {
        let s = parse("# t\n### say something\nsleep 0\n").unwrap();
        assert_eq!(s.steps.len(), 1);
    }
}
