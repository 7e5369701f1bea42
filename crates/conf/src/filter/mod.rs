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

mod parse;
pub use parse::parse;

#[cfg(test)]
mod tests;
