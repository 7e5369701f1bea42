//! Typed errors of this crate.
//!
//! Protocol rejections (a `501` for a bad address, a `503` for a command out
//! of sequence) are not errors: they are [`crate::Reply`] values carried by
//! [`crate::Event::Error`]. The types here describe malformed input on the
//! client side and misuse of the session API.

use thiserror::Error;

/// A server reply that could not be parsed (client side).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// The line does not start with a three-digit code in 200..=599 followed by
    /// a space, a hyphen or the end of the line.
    #[error("malformed SMTP reply line: {line:?}")]
    Malformed {
        /// The start of the offending line (lossy UTF-8, at most 80 bytes).
        line: String,
    },
    /// A continuation line carried a different code from the first line.
    #[error("SMTP reply code changed from {expected} to {found} inside a multi-line reply")]
    CodeMismatch {
        /// Code of the first line.
        expected: u16,
        /// Code of the offending line.
        found: u16,
    },
    /// A reply line exceeded the configured limit.
    #[error("SMTP reply line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A multi-line reply had more lines than the configured limit.
    #[error("SMTP reply with more than {limit} lines")]
    TooManyLines {
        /// The limit in lines.
        limit: usize,
    },
}

/// Why an RFC 5321 path (the argument of `MAIL FROM:` / `RCPT TO:`) was
/// rejected. The `Display` text follows Exim's wording, so a server reply is
/// `501 <path>: <this text>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Nothing usable was given (e.g. `RCPT TO:<>`).
    #[error("empty address")]
    Empty,
    /// The local part is missing or contains a character that is not allowed.
    #[error("missing or malformed local part (expected word or \"<\")")]
    MalformedLocalPart,
    /// A quoted local part has no closing quote.
    #[error("unmatched doublequote in local part")]
    UnterminatedQuote,
    /// The domain is missing, has an empty label or a character that is not
    /// allowed.
    #[error("domain missing or malformed")]
    MalformedDomain,
    /// A domain literal (`[...]`) is not a valid IPv4 / IPv6 literal.
    #[error("malformed domain literal")]
    MalformedLiteral,
    /// A source route (`<@a,@b:x@y>`) is malformed.
    #[error("domain missing in source-routed address")]
    MalformedRoute,
    /// The closing `>` is missing.
    #[error("'>' missing at end of address")]
    MissingCloseBracket,
    /// Unexpected text follows the path.
    #[error("malformed address: {trailing} may not follow {path}")]
    TrailingJunk {
        /// The unexpected text (at most 32 characters, as Exim shows it).
        trailing: String,
        /// The path text that was accepted before it.
        path: String,
    },
    /// The local part is longer than [`crate::address::MAX_LOCAL_PART`].
    #[error("local part too long")]
    LocalPartTooLong,
    /// The domain is longer than 255 octets or a label longer than 63.
    #[error("domain too long")]
    DomainTooLong,
}

/// Misuse of the [`crate::ServerSession`] API by the caller (a bug in the
/// integrating code, never caused by the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    /// `respond` was called while no event was waiting for a reply.
    #[error("no SMTP command is waiting for a reply")]
    NothingPending,
    /// The greeting was already sent.
    #[error("the SMTP greeting was already sent")]
    AlreadyGreeted,
    /// The session is closed; nothing more can be sent.
    #[error("the SMTP session is closed")]
    Closed,
}
