//! Exim's hints-database utilities on oxim's databases: `exim_dumpdb`,
//! `exim_tidydb`, `exim_fixdb` (the oxim binary called by those names,
//! through a symlink, or as `oxim -oxim-util NAME ARGS...`), with Exim's
//! command lines, messages and output formats. `exinext`, which reads
//! the retry records too, is in `exinext.rs`.
//!
//! oxim keeps two hints databases: `retry` (records as Exim keeps them)
//! and `misc` (the cached EHLO answers of hosts offering early
//! pipelining). The others that Exim may have (`wait-<transport>`,
//! `callout`, `ratelimit`, `tls`, `seen`) do not exist in oxim's spool:
//! the utilities say they cannot open them, as Exim's do for a database
//! that was never written.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::retry::{Hint, RetryDb};

/// The utilities, by the name they are called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utility {
    Dump,
    Tidy,
    Fix,
}

impl Utility {
    /// The utility a program name (argv\[0\]'s file name) stands for.
    pub fn from_name(name: &str) -> Option<Utility> {
        Some(match name {
            "exim_dumpdb" => Utility::Dump,
            "exim_tidydb" => Utility::Tidy,
            "exim_fixdb" => Utility::Fix,
            _ => return None,
        })
    }

    /// Run it; the value is the exit code.
    pub fn run(self, args: &[String]) -> i32 {
        let out = std::io::stdout();
        let mut out = out.lock();
        let code = match self {
            Utility::Dump => dumpdb(args, &mut out),
            Utility::Tidy => tidydb(args, &mut out, now()),
            Utility::Fix => {
                let stdin = std::io::stdin();
                fixdb(args, &mut stdin.lock(), &mut out)
            }
        };
        let _ = out.flush();
        code
    }
}

fn now() -> u64 {
    Timestamp::now().as_second().max(0) as u64
}

/// The database names Exim's utilities accept.
fn known_db(name: &str) -> bool {
    matches!(
        name,
        "retry" | "misc" | "callout" | "ratelimit" | "tls" | "seen"
    ) || name.starts_with("wait-")
}

fn usage(out: &mut dyn Write, name: &str, options: &str) -> i32 {
    let _ = writeln!(
        out,
        "Usage: exim_{name}{options}  <spool-directory> <database-name>"
    );
    let _ = writeln!(
        out,
        "  <database-name> = retry | misc | wait-<transport-name> | callout | ratelimit | tls | seen"
    );
    1
}

/// `dd-Mon-yyyy hh:mm:ss`, local time or (with `-z`) UTC.
pub fn print_time(t: u64, utc: bool) -> String {
    let ts = Timestamp::from_second(i64::try_from(t).unwrap_or(0)).unwrap_or(Timestamp::UNIX_EPOCH);
    let tz = if utc {
        TimeZone::UTC
    } else {
        TimeZone::system()
    };
    ts.to_zoned_datetime(tz)
        .strftime("%d-%b-%Y %H:%M:%S")
        .to_string()
}

/// Single-letter options (`-kz`), then the positional arguments.
fn split_flags<'a>(args: &'a [String], allowed: &str) -> Result<(String, Vec<&'a str>), ()> {
    let mut flags = String::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        let Some(f) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        if !f.chars().all(|c| allowed.contains(c)) {
            return Err(());
        }
        flags.push_str(f);
        i += 1;
    }
    Ok((flags, args[i..].iter().map(String::as_str).collect()))
}

fn db_path(spool: &str, db: &str) -> PathBuf {
    Path::new(spool).join("db").join(db)
}

/// The lines of the `misc` file: key and time stamp (the rest is the
/// cached EHLO keywords).
fn misc_records(path: &Path) -> std::io::Result<BTreeMap<String, (u64, Vec<String>)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let key = f.next().filter(|k| !k.is_empty())?.to_string();
            let t = f.next()?.parse().ok()?;
            Some((key, (t, f.map(str::to_string).collect())))
        })
        .collect())
}

fn open_failed(out: &mut dyn Write, path: &Path, e: &std::io::Error) -> i32 {
    let _ = writeln!(
        out,
        "** Failed to open hintsdb {}: {}",
        path.display(),
        crate::errno::io_text(e)
    );
    1
}

/// `exim_dumpdb [-k] [-z] <spool> <db>`.
pub fn dumpdb(args: &[String], out: &mut dyn Write) -> i32 {
    let Ok((flags, pos)) = split_flags(args, "kz") else {
        return usage(out, "dumpdb", " [-kz]");
    };
    let [spool, db] = pos[..] else {
        return usage(out, "dumpdb", " [-kz]");
    };
    if !known_db(db) {
        return usage(out, "dumpdb", " [-kz]");
    }
    let (keys_only, utc) = (flags.contains('k'), flags.contains('z'));
    let path = db_path(spool, db);
    let w = |out: &mut dyn Write, s: String| {
        let _ = out.write_all(s.as_bytes());
    };
    match db {
        "retry" => {
            let records = match RetryDb::new(&Path::new(spool).join("db")).all() {
                Ok(r) => r,
                Err(e) => return open_failed(out, &path, &e),
            };
            for (key, h) in &records {
                if keys_only {
                    w(out, format!("  {key}\n"));
                } else {
                    w(out, retry_dump(key, h, utc));
                }
            }
        }
        "misc" => {
            let records = match misc_records(&path) {
                Ok(r) => r,
                Err(e) => return open_failed(out, &path, &e),
            };
            for (key, (t, keywords)) in &records {
                if keys_only {
                    w(out, format!("  {key}\n"));
                    continue;
                }
                w(out, format!("{} {key}\n", print_time(*t, utc)));
                if let Some(host) = key.strip_suffix(".EHLO") {
                    // oxim caches the keyword lines themselves, not Exim's
                    // feature bits: they are shown as they are kept.
                    w(out, format!("helo/ehlo {host} {}\n", keywords.join(" / ")));
                }
            }
        }
        _ => {
            let e = std::io::Error::from_raw_os_error(libc::ENOENT);
            return open_failed(out, &path, &e);
        }
    }
    0
}

/// A retry record as `exim_dumpdb` shows it (two lines).
pub fn retry_dump(key: &str, h: &Hint, utc: bool) -> String {
    format!(
        "  {key} {} {} {}\n{}  {}  {} {}\n",
        h.basic_errno,
        h.more_errno,
        h.text,
        print_time(h.first_failed, utc),
        print_time(h.last_try, utc),
        print_time(h.next_try, utc),
        if h.expired { "*" } else { "" }
    )
}

/// `-t` value of `exim_tidydb`: digits each followed by w, d, h, m or s.
fn parse_keep(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = match rest.as_bytes().get(digits)? {
            b'w' => 7 * 86_400,
            b'd' => 86_400,
            b'h' => 3600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

/// Whether `s` has the shape of a message id (Exim's 16- or 23-character
/// forms).
fn is_message_id(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = |parts: [usize; 3]| {
        let mut i = 0;
        for (n, len) in parts.into_iter().enumerate() {
            if n > 0 {
                if b.get(i) != Some(&b'-') {
                    return false;
                }
                i += 1;
            }
            if b.len() < i + len || !b[i..i + len].iter().all(u8::is_ascii_alphanumeric) {
                return false;
            }
            i += len;
        }
        i == b.len()
    };
    shape([6, 6, 2]) || shape([6, 11, 4])
}

/// The message id a retry key ends with (`T:host:ip:port:<id>`), if any.
fn key_message_id(key: &str) -> Option<&str> {
    let (_, id) = key.rsplit_once(':')?;
    is_message_id(id).then_some(id)
}

/// Whether the message's data file is on the spool (flat or split input).
fn message_exists(spool: &str, id: &str) -> bool {
    let input = Path::new(spool).join("input");
    let flat = input.join(format!("{id}-D"));
    if flat.exists() {
        return true;
    }
    let sub = id.chars().nth(5).map(String::from).unwrap_or_default();
    input.join(sub).join(format!("{id}-D")).exists()
}

/// `exim_tidydb [-f] [-t time] <spool> <db>`: remove records older than
/// the time (30 days by default) and retry records of messages that are
/// gone.
pub fn tidydb(args: &[String], out: &mut dyn Write, now: u64) -> i32 {
    let mut keep = 30 * 86_400;
    let mut i = 0;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        match a.as_str() {
            "-f" => {}
            "-t" => {
                i += 1;
                match args.get(i).and_then(|v| parse_keep(v)) {
                    Some(t) => keep = t,
                    None => return usage(out, "tidydb", " [-t <time>]"),
                }
            }
            _ => return usage(out, "tidydb", " [-t <time>]"),
        }
        i += 1;
    }
    let (spool, db) = match &args[i..] {
        [s, d] if known_db(d) => (s.as_str(), d.as_str()),
        _ => return usage(out, "tidydb", " [-t <time>]"),
    };
    let oldest = now.saturating_sub(keep);
    let _ = writeln!(out, "Tidying Exim hints database {spool}/db/{db}");
    let db_dir = Path::new(spool).join("db");
    match db {
        "retry" => {
            let db = RetryDb::new(&db_dir);
            if db.path().exists() {
                let mut lines = Vec::new();
                let r = db.update(|map| {
                    map.retain(|key, h| {
                        // The record's time stamp is when it was last written.
                        if h.last_try < oldest {
                            lines.push(format!("deleted {key} (too old)"));
                            return false;
                        }
                        if let Some(id) = key_message_id(key) {
                            if !message_exists(spool, id) {
                                lines.push(format!("deleted {key} (no message)"));
                                return false;
                            }
                        }
                        true
                    })
                });
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
                if let Err(e) = r {
                    return open_failed(out, db.path(), &e);
                }
            }
        }
        "misc" => {
            let cache = crate::deliver::smtp::EhloCache::new(&db_dir, std::time::Duration::MAX);
            for key in cache.remove_older_than(oldest) {
                let _ = writeln!(out, "deleted {key} (too old)");
            }
        }
        // oxim keeps no other database: nothing to tidy.
        _ => {}
    }
    let _ = writeln!(out, "Tidying complete");
    0
}

/// `dd-hh:mm`-style times of `exim_fixdb`: the digits, read from the
/// right in pairs, are minutes, hours, day, month and year (a missing
/// field keeps today's value; seconds are zero), local time.
fn read_time(s: &str) -> Option<u64> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|&b| b != b':')
        .map(|b| b.is_ascii_digit().then(|| b - b'0'))
        .collect::<Option<_>>()?;
    let today = Timestamp::now().to_zoned_datetime(TimeZone::system());
    let (mut year, mut month, mut day) = (today.year(), today.month(), today.day());
    let (mut hour, mut minute) = (today.hour(), today.minute());
    let mut pairs = Vec::new();
    let mut end = digits.len();
    while end > 0 {
        let start = end.saturating_sub(2);
        pairs.push(
            digits[start..end]
                .iter()
                .fold(0i16, |v, d| v * 10 + i16::from(*d)),
        );
        end = start;
    }
    for (n, v) in pairs.into_iter().enumerate() {
        match n {
            0 => minute = i8::try_from(v).ok()?,
            1 => hour = i8::try_from(v).ok()?,
            2 => day = i8::try_from(v).ok()?,
            3 => month = i8::try_from(v).ok()?,
            4 => year = if v < 90 { 2000 + v } else { 1900 + v },
            _ => return None,
        }
    }
    let dt = jiff::civil::DateTime::new(year, month, day, hour, minute, 0, 0).ok()?;
    let z = dt.to_zoned_datetime(TimeZone::system()).ok()?;
    u64::try_from(z.timestamp().as_second()).ok()
}

/// `exim_fixdb [-z] <spool> <db>`: show, change or delete records, one
/// command a line on stdin (`key`, `key d`, `key N value`, `d`, `N value`
/// for the key last shown, `q`). oxim can change retry records; the
/// records of `misc` can be shown and deleted.
pub fn fixdb(args: &[String], input: &mut dyn BufRead, out: &mut dyn Write) -> i32 {
    let Ok((flags, pos)) = split_flags(args, "z") else {
        return usage(out, "fixdb", " [-z]");
    };
    let [spool, db] = pos[..] else {
        return usage(out, "fixdb", " [-z]");
    };
    if !known_db(db) {
        return usage(out, "fixdb", " [-z]");
    }
    let utc = flags.contains('z');
    let db_dir = Path::new(spool).join("db");
    let retry = RetryDb::new(&db_dir);
    let misc_path = db_path(spool, db);
    let _ = writeln!(out, "Modifying Exim hints database {spool}/db/{db}");
    let mut name = String::new();
    loop {
        let _ = write!(out, "> ");
        let _ = out.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim_end_matches('\n');
        let words: Vec<&str> = line.split_whitespace().collect();
        let reuse = line == "d"
            || (line.as_bytes().first().is_some_and(u8::is_ascii_digit)
                && matches!(line.as_bytes().get(1), None | Some(b' ')));
        let (field, value) = if reuse {
            if name.is_empty() {
                let _ = writeln!(out, "No previous record name is set");
                continue;
            }
            (words.first().copied(), words.get(1).copied())
        } else {
            name = words.first().copied().unwrap_or("").to_string();
            (words.get(1).copied(), words.get(2).copied())
        };
        if let Some(field) = field {
            let mut verify = true;
            if field == "d" {
                if value.is_some() {
                    let _ = writeln!(out, "unexpected value after \"d\"");
                } else {
                    let found = match db {
                        "retry" => retry.update(|m| m.remove(&name).is_some()).unwrap_or(false),
                        "misc" => {
                            let cache = crate::deliver::smtp::EhloCache::new(
                                &db_dir,
                                std::time::Duration::MAX,
                            );
                            let had = misc_records(&misc_path).is_ok_and(|m| m.contains_key(&name));
                            cache.forget(&name);
                            had
                        }
                        _ => false,
                    };
                    let _ = writeln!(out, "{}", if found { "deleted" } else { "not found" });
                }
                continue;
            }
            if !field.as_bytes()[0].is_ascii_digit() {
                let _ = writeln!(out, "field number or d expected");
                continue;
            }
            let Some(value) = value else {
                let _ = writeln!(out, "value missing");
                continue;
            };
            if db != "retry" {
                let _ = writeln!(out, "Can't change contents of {db} database record");
                continue;
            }
            let mut msgs = Vec::new();
            let found = retry
                .update(|m| {
                    let Some(h) = m.get_mut(&name) else {
                        return false;
                    };
                    let time = |v: &str, msgs: &mut Vec<&str>| {
                        let t = read_time(v);
                        if t.is_none() {
                            msgs.push("bad time value");
                        }
                        t
                    };
                    match field.parse::<u32>().unwrap_or(u32::MAX) {
                        0 => h.basic_errno = value.parse().unwrap_or(0),
                        1 => h.more_errno = value.parse().unwrap_or(0),
                        2 => h.first_failed = time(value, &mut msgs).unwrap_or(h.first_failed),
                        3 => h.last_try = time(value, &mut msgs).unwrap_or(h.last_try),
                        4 => h.next_try = time(value, &mut msgs).unwrap_or(h.next_try),
                        5 => match value {
                            "yes" => h.expired = true,
                            "no" => h.expired = false,
                            _ => msgs.push("\"yes\" or \"no\" expected"),
                        },
                        _ => {
                            msgs.push("unknown field number");
                            verify = false;
                        }
                    }
                    true
                })
                .unwrap_or(false);
            if !found {
                let _ = writeln!(out, "not found");
            }
            for m in msgs {
                let _ = writeln!(out, "{m}");
            }
            if !verify {
                continue;
            }
        } else if name == "q" {
            return 0;
        }
        // Show the record.
        let shown = match db {
            "retry" => retry.get(&name).map(|h| {
                format!(
                    "{}\n0 error number: {} {}\n1 extra data:   {}\n2 first failed: {}\n\
                     3 last try:     {}\n4 next try:     {}\n5 expired:      {}\n",
                    print_time(h.last_try, utc),
                    h.basic_errno,
                    h.text,
                    h.more_errno,
                    print_time(h.first_failed, utc),
                    print_time(h.last_try, utc),
                    print_time(h.next_try, utc),
                    if h.expired { "yes" } else { "no" }
                )
            }),
            "misc" => misc_records(&misc_path).ok().and_then(|m| {
                m.get(&name)
                    .map(|(t, _)| format!("{}\n", print_time(*t, utc)))
            }),
            _ => None,
        };
        match shown {
            Some(s) => {
                let _ = out.write_all(s.as_bytes());
            }
            None => {
                let _ = writeln!(out, "record {name} not found");
                name.clear();
            }
        }
    }
    let _ = writeln!(out);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryError;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn spool_with_retry(records: &[(&str, u64)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::create_dir_all(dir.path().join("input")).unwrap();
        let db = RetryDb::new(&dir.path().join("db"));
        for (key, t) in records {
            let e = RetryError {
                basic_errno: 111,
                more_errno: 65,
                text: "Connection refused".into(),
            };
            db.failed(key, None, *t, 0, &e);
        }
        dir
    }

    #[test]
    fn dump_retry_in_exims_format() {
        let dir = spool_with_retry(&[("T:h.example:192.0.2.1:2525", 86_400)]);
        let spool = dir.path().display().to_string();
        let mut out = Vec::new();
        assert_eq!(dumpdb(&args(&["-z", &spool, "retry"]), &mut out), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  T:h.example:192.0.2.1:2525 111 65 Connection refused\n\
             02-Jan-1970 00:00:00  02-Jan-1970 00:00:00  02-Jan-1970 00:15:00 \n"
        );
        let mut out = Vec::new();
        assert_eq!(dumpdb(&args(&["-k", &spool, "retry"]), &mut out), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  T:h.example:192.0.2.1:2525\n"
        );
    }

    #[test]
    fn dump_of_a_missing_or_unknown_database() {
        let dir = spool_with_retry(&[]);
        let spool = dir.path().display().to_string();
        let mut out = Vec::new();
        assert_eq!(dumpdb(&args(&[&spool, "wait-smtp"]), &mut out), 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("** Failed to open hintsdb {spool}/db/wait-smtp: No such file or directory\n")
        );
        let mut out = Vec::new();
        assert_eq!(dumpdb(&args(&[&spool, "nonsense"]), &mut out), 1);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("Usage: exim_dumpdb [-kz]"));
    }

    #[test]
    fn tidy_removes_stale_records_and_those_of_gone_messages() {
        let day = 86_400;
        let now = 100 * day;
        let live = "10HmaX-000000005vi-0000";
        let gone = "10HmaY-000000005vi-0000";
        let dir = spool_with_retry(&[
            ("T:old.example:192.0.2.1", now - 10 * day),
            ("T:new.example:192.0.2.2", now - day),
            (&format!("T:new.example:192.0.2.2:{live}"), now - day),
            (&format!("T:new.example:192.0.2.2:{gone}"), now - day),
        ]);
        std::fs::write(dir.path().join("input").join(format!("{live}-D")), "").unwrap();
        let spool = dir.path().display().to_string();
        let mut out = Vec::new();
        assert_eq!(
            tidydb(&args(&["-t", "7d", &spool, "retry"]), &mut out, now),
            0
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "Tidying Exim hints database {spool}/db/retry\n\
                 deleted T:new.example:192.0.2.2:{gone} (no message)\n\
                 deleted T:old.example:192.0.2.1 (too old)\n\
                 Tidying complete\n"
            )
        );
        let left: Vec<String> = RetryDb::new(&dir.path().join("db"))
            .all()
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(
            left,
            vec![
                "T:new.example:192.0.2.2".to_string(),
                format!("T:new.example:192.0.2.2:{live}")
            ]
        );
    }

    #[test]
    fn tidy_time_values() {
        assert_eq!(parse_keep("7d"), Some(7 * 86_400));
        assert_eq!(parse_keep("1w2d3h4m5s"), Some(9 * 86_400 + 3 * 3600 + 245));
        assert_eq!(parse_keep("7"), None);
        assert_eq!(parse_keep("x"), None);
        let mut out = Vec::new();
        assert_eq!(tidydb(&args(&["-t", "7", "/s", "retry"]), &mut out, 0), 1);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("Usage: exim_tidydb [-t <time>]"));
    }

    #[test]
    fn fixdb_shows_changes_and_deletes() {
        let dir = spool_with_retry(&[("R:a@b.example", 86_400)]);
        let spool = dir.path().display().to_string();
        let script = "R:a@b.example\n5 yes\n1 7\nd\nR:a@b.example\nq\n";
        let mut out = Vec::new();
        let code = fixdb(
            &args(&["-z", &spool, "retry"]),
            &mut script.as_bytes(),
            &mut out,
        );
        assert_eq!(code, 0);
        let text = String::from_utf8(out).unwrap();
        let expect_head = format!("Modifying Exim hints database {spool}/db/retry\n> ");
        assert!(text.starts_with(&expect_head), "{text}");
        assert!(
            text.contains("0 error number: 111 Connection refused\n"),
            "{text}"
        );
        assert!(text.contains("5 expired:      yes\n"), "{text}");
        assert!(text.contains("1 extra data:   7\n"), "{text}");
        assert!(
            text.contains("> deleted\n> record R:a@b.example not found\n> "),
            "{text}"
        );
    }

    #[test]
    fn message_id_shapes() {
        assert!(is_message_id("10HmaX-000000005vi-0000"));
        assert!(is_message_id("10HmaX-0005vi-00"));
        assert!(!is_message_id("127.0.0.1"));
        assert_eq!(key_message_id("T:h:1.2.3.4:25"), None);
        assert_eq!(
            key_message_id("T:h:1.2.3.4:25:10HmaX-0005vi-00"),
            Some("10HmaX-0005vi-00")
        );
    }
}
