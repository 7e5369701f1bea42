//! Sieve filters (RFC 5228, `# Sieve filter` files): the parser.
//!
//! Exim reads and obeys a Sieve script in one pass, so an error is only
//! reported if the script gets that far: a `stop` obeyed before it hides
//! it, and what was obeyed before it stands. [`parse`] therefore returns
//! the commands read up to the first error (an `if` whose block was being
//! read when the error struck is kept with the commands of its block read
//! so far) together with that error; the interpreter obeys them and then
//! reports the error unless it stopped first. Messages and line numbers
//! are Exim's.
//!
//! Extensions: `fileinto`, `envelope`, `encoded-character`, `subaddress`,
//! `copy`, `vacation` (RFC 5230), `comparator-i;ascii-numeric`, and the
//! `i;octet`, `i;ascii-casemap`, `en;ascii-casemap` comparators. `enotify`
//! is refused (not supported by oxim).

mod parse;
#[cfg(test)]
mod tests;

pub use parse::parse;

/// The extensions `require` accepts, in the order Exim lists them.
pub const EXTENSIONS: &[&str] = &[
    "comparator-i;ascii-numeric",
    "copy",
    "encoded-character",
    "envelope",
    "fileinto",
    "subaddress",
    "vacation",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Is,
    Contains,
    Matches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    All,
    LocalPart,
    Domain,
    /// `:user` (subaddress).
    User,
    /// `:detail` (subaddress).
    Detail,
}

/// How a test compares: comparator and match type, the keys, and the line
/// the reader had reached after the keys (where a comparison error, found
/// only when the test runs, is reported).
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub comparator: Comparator,
    pub match_type: MatchType,
    pub keys: Vec<String>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    /// `address`: the addresses in the named header fields.
    Address {
        part: AddressPart,
        headers: Vec<String>,
        m: Match,
    },
    /// `header`: the decoded, unfolded header fields.
    Header {
        headers: Vec<String>,
        m: Match,
    },
    /// `envelope`: `from` / `to` (already checked to be one of these).
    Envelope {
        part: AddressPart,
        parts: Vec<String>,
        m: Match,
    },
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
}

/// `vacation` (RFC 5230).
#[derive(Debug, Clone, PartialEq)]
pub struct Vacation {
    /// Clamped to 1..=31; 7 unless given.
    pub days: u64,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
    /// Where an error found when it runs is reported.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `if` / `elsif` branches, then `else` (None when absent).
    If {
        branches: Vec<(Test, Vec<Command>)>,
        otherwise: Option<Vec<Command>>,
    },
    Stop,
    Keep,
    Discard,
    Redirect {
        address: String,
        copy: bool,
    },
    FileInto {
        folder: String,
        copy: bool,
    },
    Vacation(Box<Vacation>),
}

/// An error with Exim's text and line (reported as
/// `<msg> in line <line>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveError {
    pub msg: String,
    pub line: usize,
}

impl std::fmt::Display for SieveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in line {}", self.msg, self.line)
    }
}

/// A parsed script: the commands read, and the error that stopped the
/// reading, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    pub error: Option<SieveError>,
    /// `require "comparator-i;ascii-numeric"` was given (checked when a
    /// comparison runs, as Exim does).
    pub ascii_numeric: bool,
}

/// What the context permits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// `require "vacation"` is allowed (a `sieve_vacation_directory` is
    /// set, or the filter is being tested).
    pub vacation: bool,
}
