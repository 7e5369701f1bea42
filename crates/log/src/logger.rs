//! Log files: mainlog, rejectlog, paniclog under `log_file_path`.

use crate::record::{Dest, LogRecord};
use crate::selector::{LogSelector, Selector};
use crate::LogError;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Mode of log files.
const FILE_MODE: u32 = 0o640;
/// Mode of created log directories.
const DIR_MODE: u32 = 0o750;

/// Which of the three logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// `mainlog`
    Main,
    /// `rejectlog`
    Reject,
    /// `paniclog`
    Panic,
}

impl LogKind {
    /// The name substituted for `%s` in `log_file_path`.
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Main => "main",
            LogKind::Reject => "reject",
            LogKind::Panic => "panic",
        }
    }
}

/// Formats a timestamp as Exim does at the start of log lines, in local
/// time: `YYYY-MM-DD HH:MM:SS`, then `.mmm` with `millisec`, then ` +zzzz`
/// with `zone` (`log_timezone`). No trailing space.
pub fn format_timestamp(t: SystemTime, millisec: bool, zone: bool) -> String {
    let mut s = String::with_capacity(32);
    push_timestamp(&mut s, t, millisec, zone, &jiff::tz::TimeZone::system());
    s
}

fn push_timestamp(
    out: &mut String,
    t: SystemTime,
    millisec: bool,
    zone: bool,
    tz: &jiff::tz::TimeZone,
) {
    use std::fmt::Write as _;
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dt = tz.to_datetime(ts);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if millisec {
        let _ = write!(out, ".{:03}", dt.millisecond());
    }
    if zone {
        let off = tz.to_offset(ts).seconds();
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.unsigned_abs();
        let _ = write!(out, " {sign}{:02}{:02}", off / 3600, (off % 3600) / 60);
    }
}

/// Resolves Exim's `log_file_path` into a template containing `%s`.
///
/// The value is a colon-separated list; `syslog` entries are skipped (not
/// supported), the first path is used. An empty value means
/// `<spool_directory>/log/%slog`, Exim's default.
pub fn resolve_log_file_path(value: &str, spool_directory: &Path) -> Result<String, LogError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(format!("{}/log/%slog", spool_directory.display()));
    }
    let path = value
        .split(':')
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != "syslog")
        .ok_or_else(|| {
            LogError::BadPath(format!("{value}: only syslog, which oxim does not support"))
        })?;
    if !path.contains("%s") {
        return Err(LogError::BadPath(format!(
            "{path}: log_file_path must contain %s"
        )));
    }
    Ok(path.to_string())
}

/// An open log file and the path it was opened under.
#[derive(Debug)]
struct Open {
    file: Arc<File>,
    ino: u64,
    path: PathBuf,
}

/// One log file, reopened when renamed away (log rotation) or, with `%D` /
/// `%M` in its path, when the date changes.
#[derive(Debug)]
struct LogFile {
    /// Path with `%s` already replaced; may still hold `%D` / `%M`.
    template: PathBuf,
    dated: bool,
    state: Mutex<Option<Open>>,
    /// Second (since epoch) at which the path was last checked.
    last_check: AtomicI64,
}

/// Replaces `%D` (`YYYYMMDD`) and `%M` (`YYYYMM`) in a log path.
fn dated_path(template: &str, date: jiff::civil::Date) -> PathBuf {
    let ym = format!("{:04}{:02}", date.year(), date.month());
    let ymd = format!("{ym}{:02}", date.day());
    PathBuf::from(template.replace("%D", &ymd).replace("%M", &ym))
}

impl LogFile {
    fn new(template: String) -> LogFile {
        LogFile {
            dated: template.contains("%D") || template.contains("%M"),
            template: PathBuf::from(template),
            state: Mutex::new(None),
            last_check: AtomicI64::new(0),
        }
    }

    fn path_for(&self, date: jiff::civil::Date) -> PathBuf {
        if self.dated {
            dated_path(&self.template.to_string_lossy(), date)
        } else {
            self.template.clone()
        }
    }

    fn open(path: PathBuf) -> Result<Open, LogError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)
                    .map_err(LogError::io(dir))?;
            }
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(LogError::io(&path))?;
        let ino = f.metadata().map_err(LogError::io(&path))?.ino();
        Ok(Open {
            file: Arc::new(f),
            ino,
            path,
        })
    }

    /// The open file and its path; at most once a second, checks that the
    /// (dated) path still names it and reopens when it does not.
    fn get(&self, now_sec: i64, date: jiff::civil::Date) -> Result<(Arc<File>, PathBuf), LogError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = guard.as_ref() {
            if self.last_check.load(Ordering::Relaxed) == now_sec {
                return Ok((Arc::clone(&open.file), open.path.clone()));
            }
            self.last_check.store(now_sec, Ordering::Relaxed);
            let path = self.path_for(date);
            let same =
                path == open.path && std::fs::metadata(&path).is_ok_and(|m| m.ino() == open.ino);
            if same {
                return Ok((Arc::clone(&open.file), open.path.clone()));
            }
        }
        let open = LogFile::open(self.path_for(date))?;
        self.last_check.store(now_sec, Ordering::Relaxed);
        let result = (Arc::clone(&open.file), open.path.clone());
        *guard = Some(open);
        Ok(result)
    }

    fn close(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn append(&self, line: &[u8], now_sec: i64, date: jiff::civil::Date) -> Result<(), LogError> {
        let (f, path) = self.get(now_sec, date)?;
        // O_APPEND and one write per line: lines from concurrent processes
        // never interleave.
        (&*f).write_all(line).map_err(LogError::io(&path))
    }
}

/// Options of a [`Logger`].
#[derive(Debug, Clone)]
pub struct LoggerOptions {
    /// What to log.
    pub selector: LogSelector,
    /// `log_timezone`: add ` +zzzz` to timestamps.
    pub timezone: bool,
    /// `write_rejectlog`: write the reject log (default true).
    pub write_rejectlog: bool,
    /// Exim's host-checking mode (`-bh`): nothing is written to the log
    /// files; each record goes to standard error once, as `LOG: <text>`,
    /// without timestamp.
    pub testing_stderr: bool,
    /// Exim's `-v` (and `-N`, which implies it): each record is also
    /// shown on standard error as `LOG: MAIN` (with ` PANIC`, ` REJECT`
    /// for the other logs it goes to) and the text on the next line,
    /// indented, without timestamp.
    pub echo_stderr: bool,
}

impl Default for LoggerOptions {
    fn default() -> Self {
        LoggerOptions {
            selector: LogSelector::default(),
            timezone: false,
            write_rejectlog: true,
            testing_stderr: false,
            echo_stderr: false,
        }
    }
}

/// Writes records to the main, reject and panic logs. Share it between
/// threads (`Arc<Logger>`); files open lazily on first use.
#[derive(Debug)]
pub struct Logger {
    options: LoggerOptions,
    tz: jiff::tz::TimeZone,
    pid: u32,
    main: LogFile,
    reject: LogFile,
    panic: LogFile,
}

impl Logger {
    /// A logger writing to `template` with `%s` replaced by `main`,
    /// `reject`, `panic` (see [`resolve_log_file_path`]).
    pub fn new(template: &str, options: LoggerOptions) -> Result<Logger, LogError> {
        if !template.contains("%s") {
            return Err(LogError::BadPath(format!("{template}: must contain %s")));
        }
        let path = |k: LogKind| template.replacen("%s", k.name(), 1);
        Ok(Logger {
            tz: jiff::tz::TimeZone::system(),
            pid: std::process::id(),
            main: LogFile::new(path(LogKind::Main)),
            reject: LogFile::new(path(LogKind::Reject)),
            panic: LogFile::new(path(LogKind::Panic)),
            options,
        })
    }

    /// The selector in force.
    pub fn selector(&self) -> &LogSelector {
        &self.options.selector
    }

    /// Path of one of the logs (still holding `%D` / `%M` for a dated
    /// `log_file_path`; see [`Logger::current_path`]).
    pub fn path(&self, kind: LogKind) -> &Path {
        &self.file(kind).template
    }

    /// Path one of the logs is written to at time `t` (`%D` / `%M`
    /// replaced by the local date).
    pub fn current_path(&self, kind: LogKind, t: SystemTime) -> PathBuf {
        self.file(kind).path_for(self.local_date(t))
    }

    fn local_date(&self, t: SystemTime) -> jiff::civil::Date {
        let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.tz.to_datetime(ts).date()
    }

    fn file(&self, kind: LogKind) -> &LogFile {
        match kind {
            LogKind::Main => &self.main,
            LogKind::Reject => &self.reject,
            LogKind::Panic => &self.panic,
        }
    }

    /// Closes the files; the next write reopens them (after rotation).
    pub fn reopen(&self) {
        self.main.close();
        self.reject.close();
        self.panic.close();
    }

    /// The timestamp prefix for `t` under this logger's settings.
    pub fn timestamp(&self, t: SystemTime) -> String {
        let mut s = String::with_capacity(32);
        push_timestamp(
            &mut s,
            t,
            self.options.selector.has(Selector::Millisec),
            self.options.timezone,
            &self.tz,
        );
        s
    }

    /// The full line (timestamp, `[pid]` with `+pid`, text, newline) as it
    /// would be written for `rec` at time `t`.
    pub fn format_line(&self, rec: &LogRecord<'_>, t: SystemTime) -> String {
        let sel = &self.options.selector;
        let mut line = String::with_capacity(200);
        push_timestamp(
            &mut line,
            t,
            sel.has(Selector::Millisec),
            self.options.timezone,
            &self.tz,
        );
        line.push(' ');
        if sel.has(Selector::Pid) {
            use std::fmt::Write as _;
            let _ = write!(line, "[{}] ", self.pid);
        }
        rec.render_into(sel, &mut line);
        line.push('\n');
        line
    }

    /// The line for the message's msglog (timestamp, text, newline), or
    /// `None` when the record has no msglog form.
    pub fn msglog_line(&self, rec: &LogRecord<'_>, t: SystemTime) -> Option<String> {
        let sel = &self.options.selector;
        let text = rec.render_msglog(sel)?;
        let mut line = String::with_capacity(text.len() + 32);
        push_timestamp(
            &mut line,
            t,
            sel.has(Selector::Millisec),
            self.options.timezone,
            &self.tz,
        );
        line.push(' ');
        line.push_str(&text);
        line.push('\n');
        Some(line)
    }

    /// Writes `rec` now to the logs it belongs in.
    pub fn write(&self, rec: &LogRecord<'_>) -> Result<(), LogError> {
        self.write_at(rec, SystemTime::now())
    }

    /// Writes `rec` with timestamp `t`. Every destination is attempted; the
    /// first error is returned.
    pub fn write_at(&self, rec: &LogRecord<'_>, t: SystemTime) -> Result<(), LogError> {
        let mut dest = rec.destinations(&self.options.selector);
        dest.reject &= self.options.write_rejectlog;
        if dest == Dest::NONE {
            return Ok(());
        }
        if self.options.testing_stderr {
            let mut line = String::from("LOG: ");
            if self.options.selector.has(Selector::Pid) {
                use std::fmt::Write as _;
                let _ = write!(line, "[{}] ", self.pid);
            }
            rec.render_into(&self.options.selector, &mut line);
            line.push('\n');
            let _ = std::io::stderr().write_all(line.as_bytes());
            return Ok(());
        }
        if self.options.echo_stderr {
            let mut shown = String::from("LOG:");
            for (on, name) in [
                (dest.main, " MAIN"),
                (dest.panic, " PANIC"),
                (dest.reject, " REJECT"),
            ] {
                if on {
                    shown.push_str(name);
                }
            }
            shown.push_str("\n  ");
            // Exim's debug copy is the text as the caller gave it: without
            // the message id the log file line starts with.
            let mut text = String::new();
            rec.render_into(&self.options.selector, &mut text);
            let text = match rec.id() {
                Some(id) => text
                    .strip_prefix(id)
                    .and_then(|t| t.strip_prefix(' '))
                    .unwrap_or(&text),
                None => &text,
            };
            shown.push_str(text);
            shown.push('\n');
            let _ = std::io::stderr().write_all(shown.as_bytes());
        }
        let line = self.format_line(rec, t);
        let now_sec = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let date = self.local_date(t);
        let mut result = Ok(());
        let mut keep = |r: Result<(), LogError>| {
            if let (Err(e), true) = (r, result.is_ok()) {
                result = Err(e);
            }
        };
        if dest.panic {
            keep(self.panic.append(line.as_bytes(), now_sec, date));
        }
        if dest.reject {
            match rec.reject_extra(&self.options.selector) {
                // Line and extra lines in one write, so they stay together.
                Some(extra) => keep(self.reject.append(
                    format!("{line}{extra}").as_bytes(),
                    now_sec,
                    date,
                )),
                None => keep(self.reject.append(line.as_bytes(), now_sec, date)),
            }
        }
        if dest.main {
            keep(self.main.append(line.as_bytes(), now_sec, date));
        }
        result
    }
}
