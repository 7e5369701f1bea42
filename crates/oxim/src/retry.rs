//! Retry rules and retry hints.
//!
//! A temporarily failed address gets a hint in `<spool>/db/retry` saying when
//! it first failed and when it may next be tried; the matching rule of
//! `begin retry` (`F,2h,15m; G,16h,1h,1.5`) decides the schedule, and once the
//! rule's last time limit has passed since the first failure the address
//! fails for good (the hint stays, marked expired, as Exim keeps it). The
//! hints file is small text, rewritten atomically under a lock, so
//! concurrent deliveries never corrupt it. Each record holds Exim's
//! fields (first failed, last try, next try, error number, extra error
//! number, error text, expired), so `exim_dumpdb`, `exim_tidydb`,
//! `exim_fixdb` and `exinext` show it as Exim's utilities do.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use oxim_conf::{Config, RetryKind, RetryRule};

use crate::vars::Vars;

/// One retry hint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hint {
    pub first_failed: u64,
    pub last_try: u64,
    pub next_try: u64,
    /// Interval used for the last schedule (for geometric rules).
    pub interval: u64,
    /// The error of the last failure: Exim's `basic_errno` (a system
    /// errno, or one of its negative codes), `more_errno` and text.
    pub basic_errno: i32,
    pub more_errno: i32,
    pub text: String,
    /// The rule's last time limit has passed.
    pub expired: bool,
}

/// The error a failure is recorded with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryError {
    pub basic_errno: i32,
    pub more_errno: i32,
    pub text: String,
}

impl Hint {
    /// One line of the hints file: key and fields separated by tabs (the
    /// text last, with tabs and line ends made spaces).
    pub fn to_line(&self, key: &str) -> String {
        format!(
            "{key}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.first_failed,
            self.last_try,
            self.next_try,
            self.interval,
            self.basic_errno,
            self.more_errno,
            u8::from(self.expired),
            self.text.replace(['\t', '\r', '\n'], " ")
        )
    }

    /// Parse a line written by [`Hint::to_line`] (or the shorter lines of
    /// earlier oxim versions, which had no error fields).
    pub fn from_line(line: &str) -> Option<(String, Hint)> {
        let mut f = line.splitn(9, '\t');
        let key = f.next().filter(|k| !k.is_empty())?.to_string();
        let mut n = || f.next()?.parse::<u64>().ok();
        let mut h = Hint {
            first_failed: n()?,
            last_try: n()?,
            next_try: n()?,
            interval: n()?,
            ..Hint::default()
        };
        if let Some(v) = f.next() {
            h.basic_errno = v.parse().ok()?;
            h.more_errno = f.next()?.parse().ok()?;
            h.expired = f.next()? == "1";
            h.text = f.next().unwrap_or("").to_string();
        }
        Some((key, h))
    }
}

/// What to do after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Try again at this time (epoch seconds).
    RetryAt(u64),
    /// The rule's time limit has passed: fail the address.
    TimedOut,
}

/// Exim's limit on the error text kept in a retry record.
const TEXT_LIMIT: usize = 150;

/// Exim's key for a remote host: `T:name:ip`, then `:port` unless the
/// port is 25. A name that is an IP address is bracketed, as is an IPv6
/// address.
pub fn host_key(name: &str, ip: std::net::IpAddr, port: u16) -> String {
    let name = if name.parse::<std::net::IpAddr>().is_ok() {
        format!("[{name}]")
    } else {
        name.to_ascii_lowercase()
    };
    let ip = match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    };
    if port == 25 {
        format!("T:{name}:{ip}")
    } else {
        format!("T:{name}:{ip}:{port}")
    }
}

/// Exim's error numbers that retry rules name.
pub const ERRNO_EXIMQUOTA: i32 = -22;
pub const ERRNO_UNKNOWNHOST: i32 = -32;
pub const ERRNO_TLSFAILURE: i32 = -37;
pub const ERRNO_TLSREQUIRED: i32 = -38;
pub const ERRNO_AUTHFAIL: i32 = -42;
pub const ERRNO_RCPT4XX: i32 = -44;
pub const ERRNO_MAIL4XX: i32 = -45;
pub const ERRNO_DATA4XX: i32 = -46;
pub const ERRNO_SMTPCLOSED: i32 = -18;
const ECONNREFUSED: i32 = 111;
const ETIMEDOUT: i32 = 110;
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;
/// In a timeout's `more_errno`: the connection (not a command) timed out.
pub const RTEF_CTOUT: i32 = 0x0100;

/// The error field of a retry rule (or of `-brt`) as Exim reads it: its
/// `basic_errno` and `more_errno`, or the reason it is not one.
pub fn parse_error_name(name: &str) -> Result<(i32, i32), String> {
    let lower = name.to_ascii_lowercase();
    let (head, tail) = match lower.split_once('_') {
        Some((h, t)) => (h, Some(t)),
        None => (lower.as_str(), None),
    };
    // Exim compares the text given as a prefix of each word it knows.
    let prefix_of = |x: &str, word: &str| word.starts_with(x);
    match head {
        "quota" => {
            let more = match tail {
                None => 0,
                Some(t) => oxim_conf::options::parse_time(t)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or("bad time value")?,
            };
            Ok((ERRNO_EXIMQUOTA, more))
        }
        "refused" => match tail {
            None => Ok((ECONNREFUSED, 0)),
            Some(t) if prefix_of(t, "mx") => Ok((ECONNREFUSED, i32::from(b'M'))),
            Some(t) if prefix_of(t, "a") => Ok((ECONNREFUSED, i32::from(b'A'))),
            Some(_) => Err("A or MX expected after \"refused\"".into()),
        },
        "timeout" => {
            let Some(t) = tail else {
                return Ok((ETIMEDOUT, 0));
            };
            let (a, m) = (i32::from(b'A'), i32::from(b'M'));
            let extras = [
                ("a", a),
                ("mx", m),
                ("connect", RTEF_CTOUT),
                ("connect_a", RTEF_CTOUT | a),
                ("connect_mx", RTEF_CTOUT | m),
            ];
            match extras.iter().find(|(w, _)| prefix_of(t, w)) {
                Some((_, v)) => Ok((ETIMEDOUT, *v)),
                // Exim says "timeout_dns" never worked and takes it as
                // "timeout".
                None if prefix_of(t, "dns") => Ok((ETIMEDOUT, 0)),
                None => Err("\"A\", \"MX\", or \"connect\" expected after \"timeout\"".into()),
            }
        }
        _ if ["mail_4", "rcpt_4", "data_4"]
            .iter()
            .any(|p| lower.starts_with(p)) =>
        {
            let b = lower.as_bytes();
            let bad = || {
                format!(
                    "{}_4 must be followed by xx, dx, or dd, where x is literal and d is any digit",
                    &name[..4]
                )
            };
            if b.len() != 8 {
                return Err(bad());
            }
            let (x, y) = (b[6], b[7]);
            let code: i32 = if x.is_ascii_digit() {
                let tens = i32::from(x - b'0') * 10;
                if y.is_ascii_digit() {
                    tens + i32::from(y - b'0')
                } else if y == b'x' {
                    tens + 100
                } else {
                    return Err(bad());
                }
            } else if x == b'x' && y == b'x' {
                255
            } else {
                return Err(bad());
            };
            let basic = match b[0] {
                b'm' => ERRNO_MAIL4XX,
                b'r' => ERRNO_RCPT4XX,
                _ => ERRNO_DATA4XX,
            };
            Ok((basic, code << 8))
        }
        "auth" if tail.is_some_and(|t| prefix_of(t, "failed")) => Ok((ERRNO_AUTHFAIL, 0)),
        _ if prefix_of(&lower, "lost_connection") => Ok((ERRNO_SMTPCLOSED, 0)),
        _ if prefix_of(&lower, "tls_required") => Ok((ERRNO_TLSREQUIRED, 0)),
        _ if prefix_of(&lower, "lookup") => Ok((ERRNO_UNKNOWNHOST, 0)),
        "*" if tail.is_none() => Ok((0, 0)),
        _ => Err(format!("unknown or malformed retry error \"{name}\"")),
    }
}

/// Whether a rule for the error `(rule_basic, rule_more)` covers a failure
/// with `(basic, more)`, as Exim decides it.
pub fn error_matches(rule_basic: i32, rule_more: i32, basic: i32, more: i32) -> bool {
    match rule_basic {
        0 => true,
        ERRNO_EXIMQUOTA => {
            matches!(basic, ERRNO_EXIMQUOTA | EDQUOT | ENOSPC)
                && (rule_more == 0 || rule_more <= more)
        }
        ERRNO_TLSREQUIRED => matches!(basic, ERRNO_TLSREQUIRED | ERRNO_TLSFAILURE),
        ERRNO_MAIL4XX | ERRNO_RCPT4XX | ERRNO_DATA4XX => {
            if basic != rule_basic {
                return false;
            }
            let wanted = (rule_more >> 8) & 255;
            let got = (more >> 8) & 255;
            match wanted {
                255 => true,
                w if w >= 100 => (got / 10) * 10 == w - 100,
                w => got == w,
            }
        }
        ETIMEDOUT => {
            if basic != ETIMEDOUT {
                return false;
            }
            if rule_more == RTEF_CTOUT {
                more & RTEF_CTOUT != 0
            } else if rule_more != 0 {
                let cf = if rule_more & RTEF_CTOUT == 0 {
                    more & !RTEF_CTOUT
                } else {
                    more
                };
                rule_more == cf
            } else {
                true
            }
        }
        _ => rule_basic == basic && (rule_more == 0 || rule_more == more),
    }
}

/// The rule Exim would use: the first whose error covers `(basic, more)`,
/// whose `senders` (if any) match the sender (a rule with `senders` never
/// matches without a sender, as in `-brt` without `-f`), and whose pattern
/// matches `key` or `alternate` (a domain is taken as `*@domain`).
pub fn find_rule_for<'a>(
    cfg: &'a Config,
    key: &str,
    alternate: Option<&str>,
    (basic, more): (i32, i32),
    sender: Option<&str>,
    vars: &Vars,
) -> Option<&'a RetryRule> {
    let as_address = |k: &str| {
        if k.contains('@') {
            k.to_string()
        } else {
            format!("*@{k}")
        }
    };
    let key = as_address(key);
    let alternate = alternate.map(as_address);
    cfg.retry.iter().find(|r| {
        let Ok((rb, rm)) = parse_error_name(&r.error) else {
            return false;
        };
        if !error_matches(rb, rm, basic, more) {
            return false;
        }
        if let Some(list) = &r.senders {
            match sender {
                Some(s) => {
                    if !oxim_conf::match_address(list, s, cfg, vars).unwrap_or(false) {
                        return false;
                    }
                }
                None => return false,
            }
        }
        let hit = |k: &str| oxim_conf::match_address(&r.pattern, k, cfg, vars).unwrap_or(false);
        hit(&key) || alternate.as_deref().is_some_and(hit)
    })
}

/// Default when no rule matches: every 15 minutes for 4 days.
const DEFAULT_INTERVAL: u64 = 15 * 60;
const DEFAULT_TIMEOUT: u64 = 4 * 86_400;

/// Compute the schedule after a failure at `now`, given the previous hint.
pub fn schedule(
    rule: Option<&RetryRule>,
    prev: Option<&Hint>,
    now: u64,
    interval_max: u64,
) -> (Schedule, Hint) {
    let first_failed = prev.map_or(now, |h| h.first_failed);
    let elapsed = now.saturating_sub(first_failed);
    let (interval, timed_out) = match rule {
        None => (DEFAULT_INTERVAL, elapsed > DEFAULT_TIMEOUT),
        Some(r) => match r.params.iter().find(|p| elapsed <= p.timeout_secs) {
            None => (0, true),
            Some(p) => {
                let base = p.interval_secs.max(1);
                let i = match (p.kind, prev) {
                    (RetryKind::F, _) | (_, None) => base,
                    (RetryKind::G | RetryKind::H, Some(h)) => {
                        let f = p.factor.unwrap_or(2.0).max(1.0);
                        // Grow from the previous interval, never below the base.
                        ((h.interval.max(base) as f64) * f) as u64
                    }
                };
                (i, false)
            }
        },
    };
    let cap = if interval_max == 0 {
        86_400
    } else {
        interval_max
    };
    let interval = interval.min(cap);
    let mut hint = Hint {
        first_failed,
        last_try: now,
        next_try: now + interval,
        interval,
        ..Hint::default()
    };
    if timed_out {
        // Exim keeps the record, marked expired, with the next try now.
        hint.next_try = now;
        hint.expired = true;
        (Schedule::TimedOut, hint)
    } else {
        (Schedule::RetryAt(hint.next_try), hint)
    }
}

/// The hints file.
pub struct RetryDb {
    path: PathBuf,
    lock: PathBuf,
}

impl RetryDb {
    pub fn new(db_dir: &Path) -> Self {
        RetryDb {
            path: db_dir.join("retry"),
            lock: db_dir.join("retry.lockfile"),
        }
    }

    fn load(&self) -> BTreeMap<String, Hint> {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return BTreeMap::new();
        };
        text.lines().filter_map(Hint::from_line).collect()
    }

    fn store(&self, map: &BTreeMap<String, Hint>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        for (k, h) in map {
            writeln!(f, "{}", h.to_line(k))?;
        }
        f.sync_data()?;
        fs::rename(&tmp, &self.path)
    }

    /// The file's path (`<spool>/db/retry`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, for the utilities; `Err` when the file cannot be read.
    pub fn all(&self) -> std::io::Result<BTreeMap<String, Hint>> {
        let text = fs::read_to_string(&self.path)?;
        Ok(text.lines().filter_map(Hint::from_line).collect())
    }

    /// Change the records under the lock (`exim_tidydb`, `exim_fixdb`).
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Hint>) -> T,
    ) -> std::io::Result<T> {
        self.locked(|db| {
            let mut map = db.load();
            let before = map.clone();
            let out = f(&mut map);
            if map != before {
                db.store(&map)?;
            }
            Ok(out)
        })?
    }

    fn locked<T>(&self, f: impl FnOnce(&Self) -> T) -> std::io::Result<T> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)?;
        let _guard = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| std::io::Error::from(e))?;
        Ok(f(self))
    }

    /// The hint for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Hint> {
        self.load().get(key).cloned()
    }

    /// Record a failure and return the schedule.
    pub fn failed(
        &self,
        key: &str,
        rule: Option<&RetryRule>,
        now: u64,
        interval_max: u64,
        err: &RetryError,
    ) -> Schedule {
        self.locked(|db| {
            let mut map = db.load();
            let (sched, mut hint) = schedule(rule, map.get(key), now, interval_max);
            hint.basic_errno = err.basic_errno;
            hint.more_errno = err.more_errno;
            hint.text = err.text.clone();
            if hint.text.len() > TEXT_LIMIT {
                let mut end = TEXT_LIMIT;
                while !hint.text.is_char_boundary(end) {
                    end -= 1;
                }
                hint.text.truncate(end);
            }
            map.insert(key.to_string(), hint);
            let _ = db.store(&map);
            sched
        })
        .unwrap_or(Schedule::RetryAt(now + DEFAULT_INTERVAL))
    }

    /// Forget `key` after a success or a permanent failure.
    pub fn clear(&self, key: &str) {
        let _ = self.locked(|db| {
            let mut map = db.load();
            if map.remove(key).is_some() {
                let _ = db.store(&map);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxim_conf::RetryParam;

    fn rule(params: Vec<RetryParam>) -> RetryRule {
        RetryRule {
            pattern: "*".into(),
            error: "*".into(),
            senders: None,
            params,
        }
    }

    #[test]
    fn fixed_then_timeout() {
        let r = rule(vec![RetryParam {
            kind: RetryKind::F,
            timeout_secs: 3600,
            interval_secs: 60,
            factor: None,
        }]);
        let (s, h) = schedule(Some(&r), None, 1000, 0);
        assert_eq!(s, Schedule::RetryAt(1060));
        let (s, _) = schedule(Some(&r), Some(&h), 1000 + 3600, 0);
        assert_eq!(s, Schedule::RetryAt(1000 + 3660));
        let (s, _) = schedule(Some(&r), Some(&h), 1000 + 3601, 0);
        assert_eq!(s, Schedule::TimedOut);
    }

    #[test]
    fn geometric_grows_and_is_capped() {
        let r = rule(vec![RetryParam {
            kind: RetryKind::G,
            timeout_secs: 100 * 86_400,
            interval_secs: 3600,
            factor: Some(1.5),
        }]);
        let (_, h1) = schedule(Some(&r), None, 0, 0);
        assert_eq!(h1.interval, 3600);
        let (_, h2) = schedule(Some(&r), Some(&h1), 3600, 0);
        assert_eq!(h2.interval, 5400);
        let mut h = h2;
        for i in 0..40 {
            h = schedule(Some(&r), Some(&h), 10_000 + i, 7200).1;
        }
        assert_eq!(h.interval, 7200);
    }

    #[test]
    fn host_keys_as_exim_writes_them() {
        let v4: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        assert_eq!(
            host_key("127.0.0.1", v4, 1224),
            "T:[127.0.0.1]:127.0.0.1:1224"
        );
        assert_eq!(host_key("MX.Example", v4, 25), "T:mx.example:127.0.0.1");
        assert_eq!(host_key("h.example", v6, 2525), "T:h.example:[::1]:2525");
    }

    #[test]
    fn line_format_and_old_lines() {
        let h = Hint {
            first_failed: 1,
            last_try: 2,
            next_try: 3,
            interval: 1,
            basic_errno: 111,
            more_errno: 65,
            text: "Connection refused".into(),
            expired: true,
        };
        let line = h.to_line("T:h:1.2.3.4:25");
        assert_eq!(
            line,
            "T:h:1.2.3.4:25\t1\t2\t3\t1\t111\t65\t1\tConnection refused"
        );
        assert_eq!(Hint::from_line(&line), Some(("T:h:1.2.3.4:25".into(), h)));
        let (k, old) = Hint::from_line("R:a@b\t10\t20\t30\t10").unwrap();
        assert_eq!(k, "R:a@b");
        assert_eq!(
            (old.next_try, old.expired, old.text.as_str()),
            (30, false, "")
        );
        assert_eq!(Hint::from_line("garbage"), None);
    }

    #[test]
    fn timeout_keeps_an_expired_record() {
        let r = rule(vec![RetryParam {
            kind: RetryKind::F,
            timeout_secs: 10,
            interval_secs: 5,
            factor: None,
        }]);
        let dir = tempfile::tempdir().unwrap();
        let db = RetryDb::new(dir.path());
        let e = RetryError::default();
        db.failed("T:x", Some(&r), 100, 0, &e);
        assert_eq!(db.failed("T:x", Some(&r), 200, 0, &e), Schedule::TimedOut);
        let h = db.get("T:x").unwrap();
        assert!(h.expired);
        assert_eq!((h.first_failed, h.next_try), (100, 200));
    }

    #[test]
    fn db_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let db = RetryDb::new(dir.path());
        assert!(db.get("R:a@b").is_none());
        let e = RetryError {
            basic_errno: -44,
            more_errno: 13121,
            text: "451 later\tplease".into(),
        };
        let s = db.failed("R:a@b", None, 100, 0, &e);
        assert_eq!(s, Schedule::RetryAt(100 + DEFAULT_INTERVAL));
        let h = db.get("R:a@b").unwrap();
        assert_eq!(h.first_failed, 100);
        assert_eq!((h.basic_errno, h.more_errno), (-44, 13121));
        assert_eq!(h.text, "451 later please");
        db.failed("R:a@b", None, 200, 0, &e);
        assert_eq!(db.get("R:a@b").unwrap().first_failed, 100);
        db.clear("R:a@b");
        assert!(db.get("R:a@b").is_none());
    }
}
