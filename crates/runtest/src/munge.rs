//! Normalisation ("munging") of actual output before comparison
//! (RUNTEST-NOTES section 3).
//!
//! One [`Munger`] is used per test: message ids and pids are numbered by
//! first appearance, in comparison order, across all files of the test.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::subst::PORTS;

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
    /// The sandbox IPv4 address (becomes `ip4.ip4.ip4.ip4`).
    pub ipv4: String,
    /// The sandbox IPv6 address (becomes `ip6:ip6:...`).
    pub ipv6: Option<String>,
}

struct Patterns {
    short_id: Regex,
    long_id: Regex,
    listening_paren: Regex,
    rfc822_date: Regex,
    log_stamp: Regex,
    duration_int: Regex,
    duration_frac: Regex,
    tls_version: Regex,
    cipher_openssl: Regex,
    cipher_tls13: Regex,
    cipher_tls13_bare: Regex,
    cipher_gnutls: Regex,
    pid_head: Regex,
    pid_old: Regex,
    op_timed_out: Regex,
    errno_paren: Regex,
    errno_eq: Regex,
    size_first: Regex,
    bdat_chunk: Regex,
    size_esmtp: Regex,
    stdout_port: Regex,
    log_listen_port: Regex,
    defer_errno: Regex,
    stderr_noise: Regex,
    test_net_v4: Regex,
    gethostbyname: Regex,
    separator_date: Regex,
    dump_times: Regex,
    dump_port: Regex,
    exinext_port: Regex,
    dump_errno_22: Regex,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static munging regex")
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    short_id: re(r"\d[0-9A-Za-z]{5}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"),
    long_id: re(r"\d[0-9A-Za-z]{5}-[0-9A-Za-z]{11}-[0-9A-Za-z]{4}"),
    listening_paren: re(r"(listening for SMTPS? on port \d+) \([^)]*\)"),
    rfc822_date: re(
        r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), +\d{1,2} +(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{4} +\d\d:\d\d:\d\d +[-+]\d{4}",
    ),
    log_stamp: re(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?(?: [-+]\d{4})? "),
    // D=, and QT=, RT=, DT= (as Exim's runtest: `((D|[RQD]T)=)\d+s`).
    duration_int: re(r"\b(D|[RQD]T)=\d+s\b"),
    duration_frac: re(r"\b(D|[RQD]T)=\d+\.\d+s\b"),
    tls_version: re(r"\bTLS1\.\d:"),
    cipher_openssl: re(
        r"\b(?:EC)?DHE[-_](RSA|ECDSA)[-_]AES[-_]?(?:128|256)[-_](?:GCM[-_])?SHA\d+:\d+",
    ),
    cipher_tls13: re(r"\bTLS_AES_256_GCM_SHA384:\d+"),
    // OpenSSL's bare name (e.g. the test server's "SSL connection using").
    cipher_tls13_bare: re(r"\bTLS_AES(?:_256)?_GCM_SHA384(:?)"),
    cipher_gnutls: re(r"\b(?:EC)?DHE_(RSA|ECDSA)_AES_(?:128|256)_(?:GCM|CBC)_SHA\d+:\d+"),
    pid_head: re(r"(pid=|pid |PID: |Process |child | Ci=)(\d+)"),
    pid_old: re(r"(pid=|PID: )\d+"),
    op_timed_out: re(r"Operation timed out"),
    errno_paren: re(r"\(\d+\): Connection (timed out|refused)"),
    errno_eq: re(r"\berrno=\d+"),
    size_first: re(r"([ ,])S=\d+"),
    // CHUNKING: the sizes depend on host names in the headers.
    bdat_chunk: re(r#"(=>.* K (?:DKIM=\S+ )?C="250- )\d+ (byte chunk, total )\d+"#),
    size_esmtp: re(r" SIZE=\d+"),
    stdout_port: re(
        r"(Listening on port |Connecting to (?:127\.0\.0\.1|ip4\.ip4\.ip4\.ip4|ip6:ip6:ip6:ip6:ip6:ip6:ip6:ip6|::1) port )(\d+)",
    ),
    log_listen_port: re(r"(listening for [^\n]*?port )(\d+)"),
    defer_errno: re(r"(R=\S+ T=\S+ defer \()-?\d+(\): )"),
    stderr_noise: re(r"^sudo: tc: command not found"),
    // runtest's "test network" rule: 224.x.y.z (and its rbl / in-addr /
    // test.again.dns forms) back to V4NET.
    test_net_v4: re(
        r"(^|[^0-9A-Za-z]|_)224(\.\d+\.\d+\.\d+\b|_|\.rbl|\.in-addr|\.test\.again\.dns)",
    ),
    gethostbyname: re(r"\b(?:gethostbyname2?|getipnodebyname)(?:\(af=inet\))?"),
    // Date/time in message separators ("From x Mon Dec 07 18:26:12 2026");
    // the separator may also be U+2591 in UTF-8 (bytes seen as Latin-1).
    separator_date: re(
        r"(?:[A-Z][a-z]{2}(\s|\x{E2}\x{96}\x{91})){2}\d\d(\s|\x{E2}\x{96}\x{91})\d\d:\d\d:\d\d(\s|\x{E2}\x{96}\x{91})\d\d\d\d",
    ),
    // exim_dumpdb's retry times: "25-Aug-2000 12:11:37  25-Aug-2000 12:11:37  26-Aug-2000 12:11:37 *"
    dump_times: re(
        r"^(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)\s+(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)\s+(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)(\s+\*)?\s*$",
    ),
    // The port of a retry key (`T:host[:ip]:port`, maybe `:msgid` after it).
    dump_port: re(r"(T:\S*?:)(\d+)([ :])"),
    exinext_port: re(r"(Transport: (?:[a-z0-9.]+|\[[^\]]+\]) (?:[0-9.]+|\[[^\]]+\]):)(\d+)( )"),
    dump_errno_22: re(r"(T:\S+) -22 \S+ "),
});

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
    caller_names: Option<Regex>,
}

impl Munger {
    /// A fresh munger (empty id and pid maps).
    pub fn new(style: Style, id: Identity) -> Munger {
        Munger {
            style,
            ids: HashMap::new(),
            next_short: "aX".to_string(),
            next_long: "aX".to_string(),
            pids: HashMap::new(),
            next_pid: 1234,
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

    fn port_name(port: &str) -> Option<&'static str> {
        let n: u16 = port.parse().ok()?;
        if n == crate::subst::PORT_DYNAMIC {
            return Some("<dynamic port>");
        }
        PORTS.iter().find(|(_, p)| *p == n).map(|(name, _)| *name)
    }

    /// Munge a whole file's text; lines dropped by the stderr rules vanish.
    /// A missing final newline is preserved.
    pub fn munge_text(&mut self, text: &str, kind: FileKind) -> String {
        let mut out = String::with_capacity(text.len());
        for piece in text.split_inclusive('\n') {
            let (line, nl) = match piece.strip_suffix('\n') {
                Some(l) => (l, "\n"),
                None => (piece, ""),
            };
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
            l = p.duration_frac.replace_all(&l, "${1}=q.qqqs").into_owned();
            l = p.duration_int.replace_all(&l, "${1}=qqs").into_owned();
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
        l = p.size_esmtp.replace_all(&l, " SIZE=ssss").into_owned();
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

    fn munge_caller(&self, l: &str) -> String {
        let mut l = l.to_string();
        if !self.id.caller_home.is_empty() && self.id.caller_home != "/" {
            l = l.replace(&self.id.caller_home, "CALLER_HOME");
        }
        if let Some(r) = &self.caller_names {
            l = r.replace_all(&l, "CALLER").into_owned();
        }
        let uid = format!("uid={}", self.id.caller_uid);
        let gid = format!("gid={}", self.id.caller_gid);
        l = replace_bounded(&l, &uid, "uid=CALLER_UID");
        replace_bounded(&l, &gid, "gid=CALLER_GID")
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

    /// Like [`Self::name_ports`] for a pattern with a third group kept
    /// after the port; only the harness's own ports are named.
    fn name_key_ports(pat: &Regex, l: &str) -> String {
        pat.replace_all(l, |c: &Captures<'_>| {
            match Self::port_name(&c[2]).filter(|n| n.starts_with("PORT")) {
                Some(name) => format!("{}{name}{}", &c[1], &c[3]),
                None => c[0].to_string(),
            }
        })
        .into_owned()
    }

    fn name_ports(pat: &Regex, l: &str) -> String {
        pat.replace_all(l, |c: &Captures<'_>| match Self::port_name(&c[2]) {
            Some(name) => format!("{}{}", &c[1], name),
            None => c[0].to_string(),
        })
        .into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Identity {
        Identity {
            hostname: "testhost.oxim.example".into(),
            testdir: "/tmp/oxim-runtest-1990-abc".into(),
            caller: "root".into(),
            caller_group: "root".into(),
            caller_home: "/root".into(),
            caller_uid: 0,
            caller_gid: 0,
            ipv4: "198.18.0.1".into(),
            ipv6: Some("2001:2::1".into()),
        }
    }

    #[test]
    fn increments_like_perl() {
        assert_eq!(magic_increment("aX"), "aY");
        assert_eq!(magic_increment("aZ"), "bA");
        assert_eq!(magic_increment("zZ"), "aaA");
        assert_eq!(magic_increment("a9"), "b0");
    }

    #[test]
    fn old_style_log_lines() {
        let mut m = Munger::new(Style::Old, ident());
        let lines = [
            "2026-11-26 06:01:15.123 1tFz3K-000Abc-Q1 <= root@myhost.test.ex U=root P=local S=312 for a@test.ex",
            "2026-11-26 06:01:15.456 1tFz3K-000Abc-Q1 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] TFO C=\"250 OK id=1tFz3L-000Abd-Z2\"",
            "2026-11-26 06:01:15.999 exim x.yz daemon started: pid=4711, no queue runs, listening for SMTP on port 1225 (IPv6 and IPv4)",
            "2026-11-26 06:01:16.000 1tFz3L-000Abd-Z2 <= root@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] P=esmtp S=401 id=E1tFz3K-000Abc-Q1@myhost.test.ex for a@test.ex",
        ];
        let out: Vec<String> = lines
            .iter()
            .map(|l| m.munge_line(l, FileKind::Log).unwrap())
            .collect();
        assert_eq!(out[0], "2017-07-30 18:51:05.712 10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=sss for a@test.ex");
        assert_eq!(out[1], "2017-07-30 18:51:05.712 10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] TFO C=\"250 OK id=10HmaY-0005vi-00\"");
        assert_eq!(out[2], "2017-07-30 18:51:05.712 exim x.yz daemon started: pid=pppp, no queue runs, listening for SMTP on port PORT_D");
        assert_eq!(out[3], "2017-07-30 18:51:05.712 10HmaY-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] P=esmtp S=sss id=E10HmaX-0005vi-00@myhost.test.ex for a@test.ex");
    }

    #[test]
    fn head_style_ids_pids_hosts_and_ports() {
        let mut m = Munger::new(Style::Head, ident());
        let a = m
            .munge_line(
                "2026-11-26 06:01:15.999 exim x.yz daemon started: pid=4711, no queue runs, listening for SMTP on port 1225 (IPv4)",
                FileKind::Log,
            )
            .unwrap();
        assert_eq!(a, "2017-07-30 18:51:05.712 exim x.yz daemon started: pid=p1234, no queue runs, listening for SMTP on port PORT_D");
        let b = m
            .munge_line(
                "2026-11-26 06:01:16.000 1tFz3L-00000000Abd-Z2xy <= root@myhost.test.ex H=testhost.oxim.example (myhost.test.ex) [198.18.0.1] P=esmtp S=401 id=E1tFz3K-00000000Abc-Q1ab@myhost.test.ex",
                FileKind::Log,
            )
            .unwrap();
        assert_eq!(b, "2017-07-30 18:51:05.712 10HmaX-000000005vi-0000 <= CALLER@myhost.test.ex H=the.local.host.name (myhost.test.ex) [ip4.ip4.ip4.ip4] P=esmtp S=sss id=E10HmaY-000000005vi-0000@myhost.test.ex");
        // Same pid again keeps its name; a new pid gets the next one.
        assert_eq!(
            m.munge_line("child 4711 and pid 99", FileKind::Log)
                .unwrap(),
            "child p1234 and pid p1235"
        );
        assert_eq!(
            m.munge_line(
                "Connecting to 198.18.0.1 port 1225 ... connected",
                FileKind::Stdout
            )
            .unwrap(),
            "Connecting to ip4.ip4.ip4.ip4 port PORT_D ... connected"
        );
        assert_eq!(
            m.munge_line("Listening on port 1224 ... ", FileKind::Stdout)
                .unwrap(),
            "Listening on port PORT_S ... "
        );
        assert_eq!(
            m.munge_line("x D=2s y D=0.123s QT=0s", FileKind::Log)
                .unwrap(),
            "x D=qqs y D=q.qqqs QT=qqs"
        );
    }

    #[test]
    fn old_style_keeps_stdout_ports() {
        let mut m = Munger::new(Style::Old, ident());
        assert_eq!(
            m.munge_line(
                "Connecting to 127.0.0.1 port 1225 ... connected",
                FileKind::Stdout
            )
            .unwrap(),
            "Connecting to 127.0.0.1 port 1225 ... connected"
        );
    }

    #[test]
    fn dates_errors_and_sizes() {
        let mut m = Munger::new(Style::Head, ident());
        assert_eq!(
            m.munge_line(
                "<<< 220 myhost ESMTP Exim x.yz Thu, 26 Nov 2026 06:01:15 +0000",
                FileKind::Stdout
            )
            .unwrap(),
            "<<< 220 myhost ESMTP Exim x.yz Tue, 2 Mar 1999 09:44:33 +0000"
        );
        assert_eq!(
            m.munge_line(
                "2026-11-26 06:01:15 U R=all T=smtp defer (110): Connection timed out",
                FileKind::Log
            )
            .unwrap(),
            "1999-03-02 09:44:33 U R=all T=smtp defer (dd): Connection timed out"
        );
        assert_eq!(
            m.munge_line(
                "R=r T=t defer (-53): retry time not reached errno=4",
                FileKind::Log
            )
            .unwrap(),
            "R=r T=t defer (EEE): retry time not reached errno=dd"
        );
        assert_eq!(
            m.munge_line("a S=1 b S=2 SIZE=345", FileKind::Log).unwrap(),
            "a S=sss b S=2 SIZE=ssss"
        );
        assert_eq!(
            m.munge_line("home /root/x uid=0 gid=0 uid=01", FileKind::Log)
                .unwrap(),
            "home CALLER_HOME/x uid=CALLER_UID gid=CALLER_GID uid=01"
        );
        assert_eq!(
            m.munge_line("198.18.0.12 198.18.0.1. 1.0.18.198", FileKind::Log)
                .unwrap(),
            "198.18.0.12 ip4.ip4.ip4.ip4. ip4-reverse"
        );
    }

    #[test]
    fn tls_versions_and_ciphers() {
        let mut m = Munger::new(Style::Head, ident());
        for (raw, want) in [
            (
                "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes",
                "X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx CV=yes",
            ),
            (
                "X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256",
                "X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx",
            ),
            (
                "X=TLS1.2:DHE_ECDSA_AES_128_CBC_SHA256:128",
                "X=TLS1.x:ke-ECDSA-AES256-SHAnnn:xxx",
            ),
            (
                "SSL connection using TLS_AES_256_GCM_SHA384",
                "SSL connection using ke-RSA-AES256-SHAnnn",
            ),
        ] {
            assert_eq!(m.munge_line(raw, FileKind::Log).unwrap(), want);
        }
    }

    #[test]
    fn stderr_noise_and_text() {
        let mut m = Munger::new(Style::Old, ident());
        assert_eq!(
            m.munge_text(
                "sudo: tc: command not found\nreal problem\n",
                FileKind::Stderr
            ),
            "real problem\n"
        );
        assert_eq!(m.munge_text("no newline", FileKind::Stdout), "no newline");
    }

    #[test]
    fn dumpdb_and_exinext_output() {
        let mut m = Munger::new(Style::Head, ident());
        let cases = [
            (
                "07-Dec-2026 21:00:00  07-Dec-2026 21:00:00  07-Dec-2026 21:20:00 ",
                "first failed = time last try = time2 next try = time2 + 1200",
            ),
            (
                "07-Dec-2026 21:00:00  07-Dec-2026 21:00:05  07-Dec-2026 21:00:05 *",
                "first failed = time last try = time2 next try = time2 + 0 *",
            ),
            (
                "  T:[127.0.0.1]:127.0.0.1:1223 111 65 Connection refused",
                "  T:[127.0.0.1]:127.0.0.1:PORT_N dd 65 Connection refused",
            ),
            (
                "  T:[127.0.0.1]:127.0.0.1:1224:10HmaX-000000005vi-0000 -45 13377 x",
                "  T:[127.0.0.1]:127.0.0.1:PORT_S:10HmaX-000000005vi-0000 -45 13377 x",
            ),
            (
                "  T:userx@test.ex -22 1234567 mailbox is full",
                "  T:userx@test.ex -22 xxxx mailbox is full",
            ),
            (
                "Transport: 127.0.0.1 127.0.0.1:1224 error -44: x",
                "Transport: 127.0.0.1 127.0.0.1:PORT_S error -44: x",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(m.munge_line(raw, FileKind::Stdout).unwrap(), want, "{raw}");
        }
    }
}
