//! Normalisation ("munging") of actual output before comparison
//! (RUNTEST-NOTES section 3).
//!
//! One [`Munger`] is used per test: message ids and pids are numbered by
//! first appearance, in comparison order, across all files of the test.

use std::collections::HashMap;

use regex::{Captures, Regex};

/// Which generation of Exim's test tree the expected files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// 2019-era tree (`2d58d8154`): 16-character ids, `pid=pppp`, ports kept in stdout.
    Old,
    /// Current tree: 23-character ids, `p1234` pids, `PORT_x` in stdout.
    Head,
}

impl Style {
    /// The `OXIM_TEST_MSGID` value the MTA needs for this style.
    pub fn msgid_env(self) -> &'static str {
        match self {
            Style::Old => "short",
            Style::Head => "long",
        }
    }
}

/// What kind of file a line comes from; some rules apply to one kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// mainlog, rejectlog, paniclog.
    Log,
    /// test-stdout (also the scripted server's output).
    Stdout,
    /// test-stderr.
    Stderr,
    /// Delivered mail in test-mail/.
    Mail,
    /// Per-message logs.
    Msglog,
}

/// Identity of the environment whose specifics are munged away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The sandbox host name (becomes `the.local.host.name`).
    pub hostname: String,
    /// The test directory (becomes `TESTSUITE`).
    pub testdir: String,
    /// Caller login (becomes `CALLER`).
    pub caller: String,
    /// Caller group (becomes `CALLER`).
    pub caller_group: String,
    /// Caller home (becomes `CALLER_HOME`).
    pub caller_home: String,
    /// Caller uid (`uid=N` becomes `uid=CALLER_UID`).
    pub caller_uid: u32,
    /// Caller gid (`gid=N` becomes `gid=CALLER_GID`).
    pub caller_gid: u32,
    /// The exim user's login (`U=login` becomes `U=EXIMUSER`); when it is
    /// the caller's, the caller's munges win, as in Exim's runtest.
    pub exim_user: String,
    /// The exim user's uid (`uid=N` becomes `uid=EXIM_UID`).
    pub exim_uid: u32,
    /// The exim group's gid (`gid=N` becomes `gid=EXIM_GID`).
    pub exim_gid: u32,
    /// The sandbox IPv4 address (becomes `ip4.ip4.ip4.ip4`).
    pub ipv4: String,
    /// The sandbox IPv6 address (becomes `ip6:ip6:...`).
    pub ipv6: Option<String>,
}

mod ports;
mod rules;
#[cfg(test)]
mod tests;

use rules::PATTERNS;

/// Seconds of a `dd-Mon-yyyy hh:mm:ss` time taken as UTC (only
/// differences are used, as runtest does with local times).
fn dump_date_seconds(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, time) = s.split_once(char::is_whitespace)?;
    let mut d = date.split('-');
    let day: i64 = d.next()?.parse().ok()?;
    let mon = d.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)? as i64 + 1;
    let year: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Perl-style "magic" string increment on `[a-zA-Z0-9]+` (`aZ` -> `bA`, `zZ` -> `aaA`).
pub fn magic_increment(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let mut i = chars.len();
    loop {
        if i == 0 {
            let first = chars.first().copied().unwrap_or('a');
            let lead = if first.is_ascii_digit() {
                '1'
            } else if first.is_ascii_uppercase() {
                'A'
            } else {
                'a'
            };
            chars.insert(0, lead);
            break;
        }
        i -= 1;
        let (next, carry) = match chars[i] {
            'z' => ('a', true),
            'Z' => ('A', true),
            '9' => ('0', true),
            c => (char::from_u32(c as u32 + 1).unwrap_or(c), false),
        };
        chars[i] = next;
        if !carry {
            break;
        }
    }
    chars.into_iter().collect()
}

/// Per-test normaliser.
#[derive(Debug, Clone)]
pub struct Munger {
    style: Style,
    id: Identity,
    ids: HashMap<String, String>,
    next_short: String,
    next_long: String,
    pids: HashMap<String, String>,
    next_pid: u32,
    /// Ports of the other end numbered by first appearance (from 10001).
    ports: HashMap<String, String>,
    next_port: u32,
    caller_names: Option<Regex>,
}

impl Munger {
    /// The caller's login (shown as CALLER).
    pub fn caller(&self) -> &str {
        &self.id.caller
    }

    /// A fresh munger (empty id and pid maps).
    pub fn new(style: Style, id: Identity) -> Munger {
        Munger {
            style,
            ids: HashMap::new(),
            next_short: "aX".to_string(),
            next_long: "aX".to_string(),
            pids: HashMap::new(),
            next_pid: 1234,
            ports: HashMap::new(),
            next_port: 10001,
            caller_names: caller_regex(&id),
            id,
        }
    }

    /// The munged form of a raw message id (assigning the next one if new).
    pub fn message_id(&mut self, raw: &str) -> String {
        if let Some(m) = self.ids.get(raw) {
            return m.clone();
        }
        let munged = if raw.len() == 23 {
            let s = format!("10Hm{}-000000005vi-0000", self.next_long);
            self.next_long = magic_increment(&self.next_long);
            s
        } else {
            let s = format!("10Hm{}-0005vi-00", self.next_short);
            self.next_short = magic_increment(&self.next_short);
            s
        };
        self.ids.insert(raw.to_string(), munged.clone());
        munged
    }

    /// Munge a whole file's text; lines dropped by the stderr rules vanish.
    /// A missing final newline is preserved.
    /// The name a `test-mail` file is saved under: the caller's login
    /// becomes `CALLER` (Exim's runtest, when it saves the mail files).
    pub fn mail_name(&self, name: &str) -> String {
        let c = &self.id.caller;
        if c.is_empty() || c == "root" {
            return name.to_string();
        }
        match name.strip_prefix(c.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("CALLER{rest}"),
            _ => name.to_string(),
        }
    }

    pub fn munge_text(&mut self, text: &str, kind: FileKind) -> String {
        let mut out = String::with_capacity(text.len());
        let mut skip = 0;
        for piece in text.split_inclusive('\n') {
            let (line, nl) = match piece.strip_suffix('\n') {
                Some(l) => (l, "\n"),
                None => (piece, ""),
            };
            if skip > 0 {
                skip -= 1;
                continue;
            }
            // A DKIM-Signature with timestamps in delivered mail: the
            // times and the signature (this line's b= start and the two
            // lines after it) depend on the clock.
            if kind == FileKind::Mail {
                if let Some(m) = dkim_timestamp_line(line) {
                    out.push_str(&m);
                    out.push_str(nl);
                    skip = 2;
                    continue;
                }
            }
            if let Some(m) = self.munge_line(line, kind) {
                out.push_str(&m);
                out.push_str(nl);
            }
        }
        out
    }

    /// Munge one line (without its newline). `None` means: drop the line.
    pub fn munge_line(&mut self, line: &str, kind: FileKind) -> Option<String> {
        let p = &*PATTERNS;
        if kind == FileKind::Stderr && p.stderr_noise.is_match(line) {
            return None;
        }
        // runtest leaves out localhost's ::1 (IPv4-only hosts have none)
        // and names the resolver call one way.
        if kind == FileKind::Stderr {
            if line.contains("name=localhost address=::1") {
                return None;
            }
            if line.contains("looked up these IP addresses") {
                let l = p.gethostbyname.replace(line, "get[host|ipnode]byname[2]");
                let rest = self.munge_line(&l, FileKind::Stdout)?;
                return Some(format!(
                    "MUNGED: ::1 will be omitted in what follows\n{rest}"
                ));
            }
        }
        if kind == FileKind::Stdout {
            if let Some(c) = p.dump_times.captures(line) {
                // runtest: the gap between last and next try, plus one,
                // at least 2 and rounded down to even.
                if let (Some(last), Some(next)) =
                    (dump_date_seconds(&c[2]), dump_date_seconds(&c[3]))
                {
                    let mut inc = next - last + 1;
                    if inc == 0 {
                        inc = 2;
                    }
                    inc = (inc >> 1) << 1;
                    let expired = c.get(4).map_or("", |m| m.as_str());
                    return Some(format!(
                        "first failed = time last try = time2 next try = time2 + {inc}{expired}"
                    ));
                }
            }
        }
        let mut l = line.to_string();
        // 1. host name and test directory.
        if !self.id.hostname.is_empty() {
            l = l.replace(&self.id.hostname, "the.local.host.name");
        }
        if !self.id.testdir.is_empty() {
            l = l.replace(&self.id.testdir, "TESTSUITE");
        }
        // 2. message ids (long form first so it is never split by the short one).
        if self.style == Style::Head {
            l = self.replace_ids(&l, true);
        }
        l = self.replace_ids(&l, false);
        l = p
            .lock_name
            .replace(&l, ".lock.test.ex.dddddddd.pppppppp")
            .into_owned();
        // 3. listening line details.
        l = p.listening_paren.replace_all(&l, "$1").into_owned();
        // 4./5. dates and timestamps.
        l = p
            .rfc822_date
            .replace_all(&l, "Tue, 2 Mar 1999 09:44:33 +0000")
            .into_owned();
        l = p
            .separator_date
            .replace_all(&l, "Tue${1}Mar${1}02${2}09:44:33${3}1999")
            .into_owned();
        l = p
            .log_stamp
            .replace(&l, |c: &Captures<'_>| {
                if c.get(1).is_some() {
                    "2017-07-30 18:51:05.712 ".to_string()
                } else {
                    "1999-03-02 09:44:33 ".to_string()
                }
            })
            .into_owned();
        if self.style == Style::Head {
            l = p.duration_int.replace_all(&l, "${1}qqs").into_owned();
            l = p.duration_frac.replace_all(&l, "${1}q.qqqs").into_owned();
        }
        for (pat, to, all) in &p.misc {
            if pat.is_match(&l) {
                l = if *all {
                    pat.replace_all(&l, *to).into_owned()
                } else {
                    pat.replace(&l, *to).into_owned()
                };
            }
        }
        // The TLS version and cipher of a Received: header (before the
        // cipher names are munged below), as runtest shows them.
        if l.contains(" tls TLS_") {
            l = p
                .received_tls_with
                .replace(&l, "${1}(TLS1.x:ke-${2}-AES256-SHAnnn:xxx)")
                .into_owned();
            l = p
                .received_tls
                .replace(&l, "${1}(TLS1.x:ke-RSA-AES256-SHAnnn:xxx)")
                .into_owned();
        }
        // DKIM timestamps on the verifier's log line.
        if l.contains("DKIM: d=") {
            l = dkim_log_timestamps(&l);
        }
        // 6. TLS details.
        l = p.tls_version.replace_all(&l, "TLS1.x:").into_owned();
        l = p
            .cipher_openssl
            .replace_all(&l, "ke-${1}-AES256-SHAnnn:xxx")
            .into_owned();
        l = p
            .cipher_gnutls
            .replace_all(&l, "ke-${1}-AES256-SHAnnn:xxx")
            .into_owned();
        l = p
            .cipher_tls13
            .replace_all(&l, "ke-RSA-AES256-SHAnnn:xxx")
            .into_owned();
        l = p
            .cipher_tls13_bare
            .replace_all(&l, |c: &Captures<'_>| {
                if c[1].is_empty() {
                    "ke-RSA-AES256-SHAnnn".to_string()
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
        // 7. caller identity.
        l = self.munge_caller(&l);
        // 8. pids.
        l = match self.style {
            Style::Head => {
                let mut pids = std::mem::take(&mut self.pids);
                let mut next = self.next_pid;
                let out = p
                    .pid_head
                    .replace_all(&l, |c: &Captures<'_>| {
                        let raw = &c[2];
                        let m = pids.entry(raw.to_string()).or_insert_with(|| {
                            let s = format!("p{next}");
                            next += 1;
                            s
                        });
                        format!("{}{}", &c[1], m)
                    })
                    .into_owned();
                self.pids = pids;
                self.next_pid = next;
                out
            }
            Style::Old => p.pid_old.replace_all(&l, "${1}pppp").into_owned(),
        };
        // 9. ports of the other end (not on the lines naming the harness's
        // own ports, which are named below).
        if self.style == Style::Head {
            l = self.number_ports(&l);
        }
        // 10. the sandbox's own addresses.
        l = self.munge_addresses(&l);
        // 11. timeouts and errno values.
        l = p
            .op_timed_out
            .replace_all(&l, "Connection timed out")
            .into_owned();
        l = p
            .errno_paren
            .replace_all(&l, "(dd): Connection $1")
            .into_owned();
        l = p.errno_eq.replace_all(&l, "errno=dd").into_owned();
        // 12. sizes.
        l = p.size_first.replace(&l, "${1}S=sss").into_owned();
        l = p.bdat_chunk.replace(&l, "${1}3nn ${2}3nn").into_owned();
        l = p.size_esmtp.replace(&l, " SIZE=ssss").into_owned();
        let extra: &[(Regex, &str, bool)] = match kind {
            FileKind::Stdout => &p.stdout_only,
            FileKind::Stderr => &p.stderr_only,
            _ => &[],
        };
        for (pat, to, all) in p.late.iter().chain(extra) {
            if pat.is_match(&l) {
                l = if *all {
                    pat.replace_all(&l, *to).into_owned()
                } else {
                    pat.replace(&l, *to).into_owned()
                };
            }
        }
        // 13./14. ports and defer codes.
        match kind {
            FileKind::Stdout if self.style == Style::Head => {
                l = Self::name_ports(&p.stdout_port, &l);
                // exim_dumpdb and exinext output.
                if l.contains("T:") {
                    l = Self::name_key_ports(&p.dump_port, &l);
                    l = p.dump_errno_22.replace(&l, "$1 -22 xxxx ").into_owned();
                }
                if l.contains("Transport: ") {
                    l = Self::name_key_ports(&p.exinext_port, &l);
                }
                for (code, text) in [
                    (" 65 ", "Connection refused"),
                    (" 321 ", "Connection timed out"),
                ] {
                    let tail = format!("{code}{text}");
                    if let Some(pos) = l.find(&tail) {
                        let start = l[..pos]
                            .rfind(|c: char| !c.is_ascii_digit())
                            .map_or(0, |i| i + 1);
                        if start < pos {
                            l = format!("{}dd{}", &l[..start], &l[pos..]);
                        }
                    }
                }
            }
            FileKind::Log | FileKind::Msglog => {
                l = Self::name_ports(&p.log_listen_port, &l);
                if self.style == Style::Head {
                    l = self.name_log_ports(&l);
                }
                l = p.defer_errno.replace_all(&l, "${1}EEE${2}").into_owned();
            }
            _ => {}
        }
        Some(l)
    }

    fn replace_ids(&mut self, l: &str, long: bool) -> String {
        let p = &*PATTERNS;
        let pat = if long { &p.long_id } else { &p.short_id };
        if !pat.is_match(l) {
            return l.to_string();
        }
        let mut out = String::with_capacity(l.len());
        let mut last = 0;
        for m in pat.find_iter(l) {
            out.push_str(&l[last..m.start()]);
            out.push_str(&self.message_id(m.as_str()));
            last = m.end();
        }
        out.push_str(&l[last..]);
        out
    }

    /// Exim's runtest, "Caller's login, uid, gid, home", "Exim's login" and
    /// "General uids, gids" (in that order: the caller's munges first).
    fn munge_caller(&self, l: &str) -> String {
        let id = &self.id;
        let mut l = l.to_string();
        if !id.caller_home.is_empty() && id.caller_home != "/" {
            l = replace_home(&l, &id.caller_home);
        }
        if let Some(r) = &self.caller_names {
            l = r.replace_all(&l, "CALLER").into_owned();
        }
        for (key, value, name) in [
            ("euid=", id.caller_uid, "CALLER_UID"),
            ("egid=", id.caller_gid, "CALLER_GID"),
            ("uid=", id.caller_uid, "CALLER_UID"),
            ("gid=", id.caller_gid, "CALLER_GID"),
        ] {
            l = replace_bounded(&l, &format!("{key}{value}"), &format!("{key}{name}"));
        }
        // -Mvh's line of the caller's login, uid and gid.
        let uid_gid_line = ["CALLER", "spaced user"].iter().any(|who| {
            l.strip_prefix(&format!("{who} {} ", id.caller_uid))
                .is_some_and(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        });
        if uid_gid_line {
            l = "CALLER UID GID".to_string();
        }
        let eu = &id.exim_user;
        if !eu.is_empty() {
            for (before, after) in [
                ("U=", "U=EXIMUSER"),
                ("user=", "user=EXIMUSER"),
                ("login=", "login=EXIMUSER"),
                ("Running as: ", "Running as: EXIMUSER"),
            ] {
                l = l.replacen(&format!("{before}{eu}"), after, 1);
            }
            l = l.replacen(
                &format!("Received: from {eu} "),
                "Received: from EXIMUSER ",
                1,
            );
            for (after, to) in [("@", "EXIMUSER@"), (".lock.", "EXIMUSER.lock.")] {
                l = replace_first_word_start(&l, &format!("{eu}{after}"), to);
            }
        }
        for (key, value, name) in [
            ("euid=", id.exim_uid, "EXIM_UID"),
            ("egid=", id.exim_gid, "EXIM_GID"),
            ("uid=", id.exim_uid, "EXIM_UID"),
            ("gid=", id.exim_gid, "EXIM_GID"),
        ] {
            l = replace_bounded(&l, &format!("{key}{value}"), &format!("{key}{name}"));
        }
        if !eu.is_empty() {
            let line = format!("{eu} {} {}", id.exim_uid, id.exim_gid);
            if let Some(rest) = l.strip_prefix(&line) {
                l = format!("EXIMUSER EXIM_UID EXIM_GID{rest}");
            }
        }
        // Other uids and gids (first of each on a line, as runtest).
        for (key, to) in [
            ("uid=4294967295", "uid=-1"),
            ("euid=4294967295", "euid=-1"),
            ("gid=4294967295", "gid=-1"),
            ("egid=4294967295", "egid=-1"),
        ] {
            l = replace_first_word_start(&l, key, to);
        }
        for (key, to) in [
            ("gid=", "gid=gggg"),
            ("egid=", "egid=gggg"),
            ("uid=", "uid=uuuu"),
            ("euid=", "euid=uuuu"),
        ] {
            l = replace_first_number(&l, key, to);
        }
        l
    }

    fn munge_addresses(&self, l: &str) -> String {
        let mut l = l.to_string();
        if !self.id.ipv4.is_empty() {
            l = replace_bounded(&l, &self.id.ipv4, "ip4.ip4.ip4.ip4");
            let rev: Vec<&str> = self.id.ipv4.rsplit('.').collect();
            l = replace_bounded(&l, &rev.join("."), "ip4-reverse");
        }
        if let Some(v6) = self.id.ipv6.as_deref().filter(|s| !s.is_empty()) {
            l = replace_bounded(&l, v6, "ip6:ip6:ip6:ip6:ip6:ip6:ip6:ip6");
        }
        if l.contains("224") {
            l = PATTERNS
                .test_net_v4
                .replace_all(&l, "${1}V4NET${2}")
                .into_owned();
        }
        l
    }
}

/// `\b(login|group)\b`, or `None` when both are empty.
fn caller_regex(id: &Identity) -> Option<Regex> {
    let names: Vec<String> = [&id.caller, &id.caller_group]
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|n| regex::escape(n))
        .collect();
    if names.is_empty() {
        return None;
    }
    Regex::new(&format!(r"\b(?:{})\b", names.join("|"))).ok()
}

/// Replace the first `from` that does not follow a word character
/// (Perl's `s/\bfrom/to/` for a `from` starting with a word character).
fn replace_first_word_start(l: &str, from: &str, to: &str) -> String {
    let bytes = l.as_bytes();
    for (start, _) in l.match_indices(from) {
        if start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            return format!("{}{to}{}", &l[..start], &l[start + from.len()..]);
        }
    }
    l.to_string()
}

/// Replace the first `key` + digits (`key` not following a word
/// character) by `to` (Perl's `s/\bkey\d+/to/`).
fn replace_first_number(l: &str, key: &str, to: &str) -> String {
    let bytes = l.as_bytes();
    for (start, _) in l.match_indices(key) {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let digits = l[start + key.len()..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits > 0 {
            let end = start + key.len() + digits;
            return format!("{}{to}{}", &l[..start], &l[end..]);
        }
    }
    l.to_string()
}

/// Replace `from` where it is not part of a longer number/word (alnum or `.` neighbours).
fn replace_bounded(l: &str, from: &str, to: &str) -> String {
    if from.is_empty() || !l.contains(from) {
        return l.to_string();
    }
    let bytes = l.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(l.len());
    let mut last = 0;
    for (start, _) in l.match_indices(from) {
        if start < last {
            continue;
        }
        let end = start + from.len();
        let before_ok = start == 0 || !is_word(bytes[start - 1]);
        let after_ok = end == bytes.len() || !is_word(bytes[end]);
        // Do not cut an address out of a longer dotted quad (1.2.3.45 vs 1.2.3.4).
        let dotted_cont = end < bytes.len()
            && bytes[end] == b'.'
            && bytes.get(end + 1).is_some_and(|b| b.is_ascii_digit());
        if before_ok && after_ok && !dotted_cont {
            out.push_str(&l[last..start]);
            out.push_str(to);
            last = end;
        }
    }
    out.push_str(&l[last..]);
    out
}

/// The caller's home directory as CALLER_HOME, except where it is the end
/// of a longer path (a home of `/root` inside `TESTSUITE/test-mail/root`
/// when the tests run as root; Exim's tests never run as root).
fn replace_home(l: &str, home: &str) -> String {
    let mut out = String::with_capacity(l.len());
    let mut rest = l;
    while let Some(i) = rest.find(home) {
        let inside = rest[..i]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back())
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        out.push_str(&rest[..i]);
        out.push_str(if inside { home } else { "CALLER_HOME" });
        rest = &rest[i + home.len()..];
    }
    out.push_str(rest);
    out
}

/// `\tt=N; x=M; b=...` (or `\tt=N; b=...`) in a delivered DKIM-Signature:
/// `t=T; x=T+(M-N); b=bbbb;`, as runtest shows it.
fn dkim_timestamp_line(line: &str) -> Option<String> {
    let p = &*PATTERNS;
    let c = p.dkim_mail_times.captures(line)?;
    let t: i64 = c[2].parse().ok()?;
    Some(match c.get(3) {
        Some(x) => {
            let x: i64 = x.as_str().parse().ok()?;
            format!("{}t=T; x=T+{}; b=bbbb;", &c[1], x - t)
        }
        None => format!("{}t=T; b=bbbb;", &c[1]),
    })
}

/// `DKIM: d=... t=N x=M [` becomes `t=T x=T+(M-N) [`; `t=N [` becomes `t=T [`.
fn dkim_log_timestamps(l: &str) -> String {
    let p = &*PATTERNS;
    if let Some(c) = p.dkim_log_tx.captures(l) {
        let (Ok(t), Ok(x)) = (c[2].parse::<i64>(), c[3].parse::<i64>()) else {
            return l.to_string();
        };
        let whole = c.get(0).expect("match");
        return format!(
            "{}{} t=T x=T+{} [{}",
            &l[..whole.start()],
            &c[1],
            x - t,
            &l[whole.end()..]
        );
    }
    p.dkim_log_t.replace(l, "${1}t=T [").into_owned()
}
