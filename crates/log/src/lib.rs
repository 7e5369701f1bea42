//! oxim-log: typed log records rendered as Exim's log lines.
//!
//! * [`LogRecord`] and its parts ([`Received`], [`Delivered`], [`Deferred`],
//!   [`Failed`], [`DaemonStarted`], [`Rejected`], ...): one type per kind of
//!   line; [`LogRecord::render`] is the one place that knows Exim's text.
//! * [`LogSelector`]: Exim's `log_selector` (plus oxim's `tfo_detail`).
//! * [`Logger`]: the main, reject and panic log files under
//!   `log_file_path`, one `write(2)` per line with `O_APPEND`.
//!
//! ```
//! use oxim_log::*;
//! let sel = LogSelector::parse("+received_recipients").unwrap();
//! let rcpts = ["a@test.ex"];
//! let mut r = Received::new("10HmaX-0005vi-00", "CALLER@myhost.test.ex", 321);
//! r.ident = Some("CALLER");
//! r.protocol = Some("local");
//! r.recipients = &rcpts;
//! assert_eq!(
//!     LogRecord::Received(r).render(&sel),
//!     "10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=321 for a@test.ex"
//! );
//! ```

#![forbid(unsafe_code)]

mod logger;
mod record;
mod selector;

pub use logger::{format_timestamp, resolve_log_file_path, LogKind, Logger, LoggerOptions};
pub use record::{
    format_duration, printing, DaemonStarted, Deferred, Delivered, DeliveryError, DeliveryFlag,
    Dest, EarlyPipe, Failed, Listen, LogAddress, LogRecord, PipeliningLog, Received, RejectWhat,
    Rejected, RejectedHeaders, RemoteHost, SenderHost, SmtpEnd, Tfo, TlsLog,
};
pub use selector::{LogSelector, Selector, SelectorError};

use std::path::{Path, PathBuf};

/// Errors from the log files.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Opening or writing a log file failed.
    #[error("log file {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `log_file_path` cannot be used.
    #[error("unusable log_file_path {0}")]
    BadPath(String),
}

impl LogError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
        move |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
