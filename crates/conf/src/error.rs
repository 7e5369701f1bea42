//! Error types for configuration loading.

/// An error found while reading or parsing a configuration.
///
/// `Display` renders the body of Exim's message; the binary prefixes it with
/// `exim: ` or `oxim: `. Located errors always name the innermost file being
/// read and the line number of the last physical line of the offending
/// logical line (as Exim does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An error tied to a position in a configuration file.
    #[error("error in configuration file: {file} line {line}: {message}")]
    At {
        /// Innermost file being read.
        file: String,
        /// 1-based line number in `file`.
        line: usize,
        /// Exim-style message text, e.g. `main option "colour" unknown`.
        message: String,
    },
    /// The main configuration file could not be read.
    #[error("non-existent configuration file(s): {path}")]
    Missing {
        /// The path that was tried.
        path: String,
    },
    /// The main configuration file exists but could not be read (for
    /// example by an oxim that gave up its privilege for `-C`).
    #[error("configuration file {path} could not be read: {reason}")]
    Unreadable {
        /// The path that was tried.
        path: String,
        /// Why (the system's error text).
        reason: String,
    },
}

impl ConfigError {
    /// Builds a located error.
    pub fn at(file: &str, line: usize, message: impl Into<String>) -> Self {
        ConfigError::At {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// The message text without location.
    pub fn message(&self) -> String {
        match self {
            ConfigError::At { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The file and line of a located error.
    pub fn location(&self) -> Option<(&str, usize)> {
        match self {
            ConfigError::At { file, line, .. } => Some((file.as_str(), *line)),
            ConfigError::Missing { .. } | ConfigError::Unreadable { .. } => None,
        }
    }

    /// Whether Exim stops at once with `PANIC DIE` for this error. Its
    /// macro-definition errors are logged as a plain `PANIC` and the
    /// reading of the configuration then fails (the exit is the same).
    pub fn dies(&self) -> bool {
        let m = match self {
            ConfigError::At { message, .. } => message.as_str(),
            _ => return true,
        };
        !(m.starts_with("macro name too long") || m.starts_with("malformed macro definition"))
    }

    /// The text Exim itself writes to its panic log for this error:
    /// `Exim configuration error in line N of FILE:\n  MESSAGE`.
    pub fn exim_panic_text(&self) -> String {
        match self {
            ConfigError::At {
                file,
                line,
                message,
            } => format!("Exim configuration error in line {line} of {file}:\n  {message}"),
            other => other.to_string(),
        }
    }
}

/// An I/O error's text without Rust's ` (os error N)` suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let t = e.to_string();
    match t.find(" (os error ") {
        Some(i) => t[..i].to_string(),
        None => t,
    }
}
