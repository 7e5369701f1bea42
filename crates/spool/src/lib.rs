//! oxim-spool: message ids and Exim-format spool files.
//!
//! * [`MessageId`], [`IdFormat`], [`IdGenerator`]: Exim's 16- and 23-character
//!   message ids, unique under concurrency ([`id`] documents the scheme).
//! * [`Envelope`], [`Recipient`], [`Header`]: the contents of a `-H` file;
//!   [`format_header`] / [`parse_header`] convert to and from Exim's format.
//! * [`Spool`]: the spool directory (`input/`, `msglog/`, `db/`): durable
//!   writes (temp file, fsync, rename, directory fsync), reading, delivery
//!   journal, removal, queue listing, quarantine.
//! * [`SpoolWriter`]: group commit, many concurrent writers sharing fsyncs.
//! * [`commitlog`]: the group-commit log (`spool_sync = journal`): one
//!   append and one fdatasync per group, replayed by [`commitlog::recover`].
//! * [`bp_format`]: one message as `exim -bp` prints it.
//!
//! Fuzzing (stable toolchain), from `crates/spool`:
//! `cargo fuzz run -s none parse_header fuzz/corpus/parse_header
//! fuzz/seeds/parse_header -- -max_total_time=60` (new inputs go to the
//! first, ignored, directory; `seeds/` holds the hand-written seeds), and
//! likewise `message_id`. The `parse_header` target checks that whatever
//! parses survives a format/parse round trip.

#![forbid(unsafe_code)]

pub mod bp;
pub mod commitlog;
pub mod header;
pub mod id;
mod spool;
pub mod writer;

pub use bp::{bp_format, format_size, BpMode};
pub use header::{
    format_header, header_kind, header_size, parse_header, Envelope, FormatError, FormatErrorKind,
    Header, Recipient, TlsInfo,
};
pub use id::{IdFormat, IdGenerator, IdParseError, MessageId};
pub use spool::{read_header, DataFile, MessageLock, Spool, SpoolMessage};
pub use writer::{SpoolWriter, SyncMode, WriterOptions, WriterStats};

use std::path::PathBuf;

/// Errors from spool operations.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An I/O operation on `path` failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `-H` file is malformed.
    #[error("spool format error in {}: {source}", path.display())]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, and where.
        #[source]
        source: FormatError,
    },
    /// The `-H` file's id line does not match its name.
    #[error("{}: id line says {found}, file name says {expected}", path.display())]
    IdMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Id from the file name.
        expected: MessageId,
        /// Id from the first line.
        found: MessageId,
    },
    /// There is no such message on the spool.
    #[error("message {0} is not on the spool")]
    NotFound(MessageId),
    /// A message with this id already exists.
    #[error("message {0} already exists on the spool")]
    Exists(MessageId),
    /// The group-commit writer thread is gone.
    #[error("spool writer has shut down")]
    WriterClosed,
}

impl SpoolError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SpoolError {
        let path = path.into();
        move |source| SpoolError::Io { op, path, source }
    }

    /// True when the error means the message does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            SpoolError::NotFound(_) => true,
            SpoolError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = SpoolError> = std::result::Result<T, E>;
