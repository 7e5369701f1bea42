//! A configuration that cannot be used, reported as Exim reports it.
//!
//! Exim writes `Exim configuration error in line N of FILE:` and the
//! message on the next line, indented, to its panic log (the one
//! `log_file_path` named above the offending line, if any) and to stderr
//! with a timestamp, then exits with status 1. Two variations, as Exim's:
//! - when its debug output is on (`-d`, or `-bP`, which forces `-v`), the
//!   stderr copy is the debug form, `LOG: PANIC DIE` and the text indented
//!   on the next lines;
//! - the testing modes (`-bV`, `-bt`, `-bv`, `-bh`) write to stderr only.

use std::path::Path;

use crate::cli::{Invocation, Mode};

/// A configuration error with what is needed to report it.
#[derive(Debug)]
pub struct ConfigFailure {
    /// Exim's text: `Exim configuration error in line N of FILE:\n  MESSAGE`.
    pub text: String,
    /// Whether Exim logs it as `PANIC DIE` (else plain `PANIC`).
    pub dies: bool,
    /// `log_file_path` as far as the configuration was read (`%s` in it),
    /// or the default under the spool directory.
    pub log_path: Option<String>,
}

impl std::fmt::Display for ConfigFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ConfigFailure {}

impl ConfigFailure {
    /// From an error of the configuration reader and the main options it
    /// had read before it.
    pub fn from_load(e: &oxim_conf::ConfigError, main: Option<&oxim_conf::Options>) -> Self {
        let log_path = main.and_then(|m| {
            let lfp = m.str("log_file_path");
            let spool = m.str("spool_directory");
            if !lfp.is_empty() {
                // Exim's list: the first item that is not `syslog`.
                lfp.split(':')
                    .map(str::trim)
                    .find(|i| !i.is_empty() && *i != "syslog")
                    .map(str::to_string)
            } else if !spool.is_empty() {
                Some(format!("{spool}/log/%slog"))
            } else {
                None
            }
        });
        ConfigFailure {
            text: e.exim_panic_text(),
            dies: e.dies(),
            log_path,
        }
    }

    /// An error found after reading (a value the reader accepted but the
    /// option does not), with no line to name: Exim's `LOG_CONFIG` form.
    pub fn unlocated(message: &str, log_path: Option<String>) -> Self {
        ConfigFailure {
            text: format!("Exim configuration error:\n  {message}"),
            dies: true,
            log_path,
        }
    }

    /// Write the report for this invocation; the caller exits with 1.
    pub fn report(&self, inv: &Invocation) {
        let now = std::time::SystemTime::now();
        let stamped = format!(
            "{} {}\n",
            oxim_log::format_timestamp(now, false, false),
            self.text
        );
        let listing = matches!(&inv.mode, Mode::PrintConfig(n)
            if n.first().map(String::as_str) != Some("config"));
        if listing || inv.debug.is_some() {
            let kind = if self.dies { "PANIC DIE" } else { "PANIC" };
            eprintln!("LOG: {kind}\n  {}", self.text);
        } else {
            eprint!("{stamped}");
        }
        let testing = matches!(
            inv.mode,
            Mode::Version
                | Mode::AddressTest(_)
                | Mode::VerifyAddresses(_)
                | Mode::HostCheck { .. }
        );
        if testing {
            return;
        }
        if let Some(template) = &self.log_path {
            if template.contains("%s") {
                append_panic(&template.replacen("%s", "panic", 1), &stamped);
            }
        }
    }
}

/// Append to the panic log, creating it (and a missing last directory)
/// as the logger would; a failure here has nowhere better to go.
fn append_panic(path: &str, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = Path::new(path);
    if let Some(dir) = p.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            let _ = std::fs::create_dir(dir);
        }
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(p)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
