//! The lookup rules of Exim's fake name server (`test/src/fakens.c`),
//! reimplemented: zone files in Exim's format are scanned line by line for
//! the query, exactly as fakens does, so the prefixes `DNSSEC`, `AA`,
//! `NXDOMAIN`, `DELAY=ms`, `TTL=s`, owner-less continuation lines, `*`
//! wildcards, `PASS ON NOT FOUND`, `qualify.*` files and the special names
//! (`manyhome.test.ex`, `*test.again.dns`, `*test.fail.dns`) mean what they
//! mean to Exim. [`crate::dnsserver`] puts the result on the wire.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::latin1;

/// Record types fakens knows.
pub const TYPES: &[&str] = &[
    "A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "TLSA",
];

/// TTL when a record has no `TTL=` prefix.
pub const DEFAULT_TTL: u32 = 3600;

/// How a lookup ended (fakens' exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Records found.
    Found,
    /// The name exists, no records of that type.
    NoData,
    /// The name does not exist (also `NXDOMAIN`-prefixed records).
    HostNotFound,
    /// Temporary failure (`test.again.dns`).
    TryAgain,
    /// Permanent failure (`test.fail.dns`, unknown type).
    NoRecovery,
    /// Not in a fake zone, or `PASS ON NOT FOUND`: Exim would ask the real DNS.
    PassOn,
}

/// One record of an answer, still in zone-file text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Owner name (original case; the query name for wildcards), no trailing dot.
    pub name: String,
    /// Type (`A`, `MX`, ... or `CNAME`).
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// The record data with relative names completed (`mx.test.ex.`).
    pub data: String,
}

/// The result of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Outcome.
    pub status: Status,
    /// Answer section.
    pub answers: Vec<Rr>,
    /// Authority section (the zone's NS records, or its SOA when no answers).
    pub authority: Vec<Rr>,
    /// Every answer record was marked `DNSSEC`: set the AD bit.
    pub ad: bool,
    /// Every answer record was marked `AA`: set the AA bit.
    pub aa: bool,
    /// Wait this long before answering (sum of `DELAY=` of the records used,
    /// or the seconds of `N.test.again.dns`).
    pub delay: Duration,
}

impl Answer {
    fn status(status: Status) -> Answer {
        Answer {
            status,
            answers: Vec::new(),
            authority: Vec::new(),
            ad: false,
            aa: false,
            delay: Duration::ZERO,
        }
    }
}

/// The zone files of one test.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    /// (zone with a leading dot, e.g. `.test.ex` / `.10.in-addr.arpa`, file lines).
    zones: Vec<(String, Vec<String>)>,
    /// From a `qualify.x.y` file: `.x.y`.
    qualify: Option<String>,
}

impl Zones {
    /// Load `db.*` and `qualify.*` files of a directory (fakens' naming:
    /// `db.ip4.N` is `N.in-addr.arpa`, `db.ip6.N` is `N.ip6.arpa`).
    pub fn load(dir: &Path) -> std::io::Result<Zones> {
        let mut z = Zones::default();
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            if let Some(q) = name.strip_prefix("qualify") {
                if q.starts_with('.') {
                    z.qualify = Some(q.to_string());
                }
                continue;
            }
            let Some(rest) = name.strip_prefix("db.") else {
                continue;
            };
            let zone = if let Some(n) = rest.strip_prefix("ip4.") {
                format!(".{n}.in-addr.arpa")
            } else if let Some(n) = rest.strip_prefix("ip6.") {
                format!(".{n}.ip6.arpa")
            } else {
                format!(".{rest}")
            };
            let text = latin1::read(&dir.join(&name))?;
            z.add(&zone, &text);
        }
        Ok(z)
    }

    /// The domain of a `qualify.x.y` file (`x.y`), if there is one.
    pub fn qualify_domain(&self) -> Option<&str> {
        self.qualify.as_deref().map(|q| q.trim_start_matches('.'))
    }

    /// Add a zone (leading dot) from its text.
    pub fn add(&mut self, zone: &str, text: &str) {
        let lines = text.lines().map(str::to_string).collect();
        self.zones.push((zone.to_ascii_lowercase(), lines));
    }

    /// Answer a query as fakens would.
    pub fn lookup(&self, qname: &str, qtype: &str) -> Answer {
        let qtype = qtype.to_ascii_uppercase();
        let mut domain = qname
            .strip_suffix('.')
            .unwrap_or(qname)
            .to_ascii_lowercase();
        if domain == "manyhome.test.ex" && qtype == "A" {
            return manyhome(&domain);
        }
        if domain.ends_with("test.again.dns") {
            let secs: u64 = domain
                .bytes()
                .take_while(u8::is_ascii_digit)
                .fold(0, |a, b| a * 10 + u64::from(b - b'0'));
            let mut a = Answer::status(Status::TryAgain);
            a.delay = Duration::from_secs(secs);
            return a;
        }
        if domain.ends_with("test.fail.dns") {
            return Answer::status(Status::NoRecovery);
        }
        if !domain.contains('.') && domain != "dontqualify" {
            if let Some(q) = &self.qualify {
                domain.push_str(q);
            }
        }
        // The most specific zone that holds the name.
        let zone = self
            .zones
            .iter()
            .filter(|(z, _)| domain == z[1..] || domain.ends_with(z.as_str()))
            .max_by_key(|(z, _)| z.len());
        let Some((zone, lines)) = zone else {
            return Answer::status(Status::PassOn);
        };
        if !TYPES.contains(&qtype.as_str()) {
            return Answer::status(Status::NoRecovery);
        }
        let mut scan = Scan::default();
        let status = scan.find(lines, zone, &domain, &qtype, true);
        let mut answer = Answer {
            status,
            answers: std::mem::take(&mut scan.records),
            authority: Vec::new(),
            ad: scan.ad,
            aa: scan.aa,
            delay: Duration::ZERO,
        };
        if qtype != "SOA" && qtype != "NS" {
            let apex = &zone[1..];
            let mut extra = Scan::default();
            let kind = if answer.answers.is_empty() {
                "SOA"
            } else {
                "NS"
            };
            extra.find(lines, zone, apex, kind, false);
            answer.authority = extra.records;
            scan.delay_ms += extra.delay_ms;
        }
        answer.delay = Duration::from_millis(scan.delay_ms);
        answer
    }
}

fn manyhome(domain: &str) -> Answer {
    let mut a = Answer::status(Status::Found);
    for i in 104..=111u32 {
        for j in 0..=255u32 {
            a.answers.push(Rr {
                name: domain.to_string(),
                rtype: "A".into(),
                ttl: 0,
                data: format!("10.250.{i}.{j}"),
            });
        }
    }
    a
}

#[derive(Default)]
struct Scan {
    records: Vec<Rr>,
    ad: bool,
    aa: bool,
    delay_ms: u64,
}

fn take_number(p: &str) -> (u64, &str) {
    let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
    let n = p[..end].bytes().fold(0u64, |a, b| {
        a.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    let rest = &p[end..];
    let rest = rest
        .strip_prefix(|c: char| c.is_ascii_whitespace())
        .unwrap_or(rest);
    (n, rest)
}

/// `name` completed with the zone when it does not end in a dot.
fn complete(name: &str, zone: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}{zone}.")
    }
}

impl Scan {
    /// fakens' `find_records`: scan the zone file for `domain`/`qtype`.
    fn find(
        &mut self,
        lines: &[String],
        zone: &str,
        domain: &str,
        qtype: &str,
        flags: bool,
    ) -> Status {
        let mut status = Status::HostNotFound;
        let mut pass_on = false;
        let mut ignored = false;
        let mut rr_lower = String::new();
        let mut rr_orig = String::new();
        for raw in lines {
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with(';') {
                continue;
            }
            if t.starts_with("PASS ON NOT FOUND") {
                pass_on = true;
                continue;
            }
            let mut p = raw.trim_end();
            let (mut sec, mut aa, mut ignore) = (false, false, false);
            let mut delay = 0u64;
            let mut ttl = DEFAULT_TTL;
            loop {
                if let Some(r) = p.strip_prefix("DNSSEC ") {
                    sec = true;
                    p = r;
                }
                if let Some(r) = p.strip_prefix("NXDOMAIN ") {
                    ignore = true;
                    p = r;
                } else if let Some(r) = p.strip_prefix("AA ") {
                    aa = true;
                    p = r;
                } else if let Some(r) = p.strip_prefix("DELAY=") {
                    let (n, rest) = take_number(r);
                    delay = n;
                    p = rest;
                } else if let Some(r) = p.strip_prefix("TTL=") {
                    let (n, rest) = take_number(r);
                    ttl = u32::try_from(n).unwrap_or(u32::MAX);
                    p = rest;
                } else {
                    break;
                }
            }
            if p.is_empty() {
                continue;
            }
            if !p.starts_with(|c: char| c.is_ascii_whitespace()) {
                let end = p.find(|c: char| c.is_ascii_whitespace()).unwrap_or(p.len());
                let owner = &p[..end];
                p = &p[end..];
                rr_orig = match owner.strip_suffix('.') {
                    Some(o) => o.to_string(),
                    None => format!("{owner}{zone}"),
                };
                rr_lower = rr_orig.to_ascii_lowercase();
            }
            if let Some(rest) = rr_lower.strip_prefix('*') {
                if domain.len() > rest.len() && !domain.ends_with(rest) {
                    continue;
                }
            } else if domain != rr_lower {
                continue;
            }
            if status == Status::HostNotFound {
                status = Status::NoData;
                if flags {
                    self.ad = true;
                    self.aa = true;
                }
            }
            let p = p.trim_start();
            let (rtype, data) = if let Some(r) = p.strip_prefix("CNAME") {
                ("CNAME", r)
            } else {
                match p.strip_prefix(qtype) {
                    Some(r) if r.starts_with(|c: char| c.is_ascii_whitespace()) => (qtype, r),
                    _ => continue,
                }
            };
            self.delay_ms += delay;
            if flags && !sec {
                self.ad = false;
            }
            if flags && !aa {
                self.aa = false;
            }
            if ignore {
                ignored = true;
                continue;
            }
            status = Status::Found;
            let name = if rr_lower.starts_with('*') {
                domain.to_string()
            } else {
                rr_orig.clone()
            };
            self.records.push(Rr {
                name,
                rtype: rtype.to_string(),
                ttl,
                data: record_data(rtype, data.trim(), zone),
            });
        }
        match status {
            Status::HostNotFound if pass_on => Status::PassOn,
            Status::NoData if ignored => Status::HostNotFound,
            s => s,
        }
    }
}

/// Complete relative names in record data the way fakens does.
fn record_data(rtype: &str, data: &str, zone: &str) -> String {
    match rtype {
        "CNAME" | "NS" | "PTR" => complete(data, zone),
        "MX" => {
            let (pref, name) = data.split_once(char::is_whitespace).unwrap_or((data, ""));
            format!("{pref} {}", complete(name.trim(), zone))
        }
        "SRV" => {
            let w: Vec<&str> = data.split_whitespace().collect();
            if w.len() >= 4 {
                format!(
                    "{} {} {} {}",
                    w[0],
                    w[1],
                    w[2],
                    complete(&w[3..].join(" "), zone)
                )
            } else {
                data.to_string()
            }
        }
        "SOA" => {
            let mut w = data.split_whitespace();
            let primary = complete(w.next().unwrap_or(""), zone);
            let rest: Vec<&str> = w.collect();
            format!("{primary} {}", rest.join(" "))
        }
        _ => data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        let mut z = Zones::default();
        z.add(
            ".test.ex",
            "; comment\n\
             test.ex.     NS    exim.test.ex.\n\
             test.ex.     SOA   exim.test.ex. hostmaster.exim.test.ex 1430683638 1200 120 604800 3000\n\
             mx           MX 1  ten-1\n\
             DNSSEC mxsecure MX 1  ten-1\n\
             DNSSEC       A     10.0.0.2\n\
             AA TTL=300 aa A 10.0.0.3\n\
             DELAY=500 slow A 10.0.0.4\n\
             ten-1        A     V4NET.0.0.1\n\
             alias        CNAME ten-1\n\
             DNSSEC NXDOMAIN gone A 1.2.3.4\n",
        );
        z.add(".10.in-addr.arpa", "1.0.0 PTR ten-1.test.ex.\n");
        z.add(".pass.ex", "PASS ON NOT FOUND\nx A 1.1.1.1\n");
        z.add(".wild.ex", "*.sub A 10.0.0.9\nok A 10.0.0.8\n");
        z
    }

    #[test]
    fn fakens_semantics() {
        let z = zones();
        let a = z.lookup("mx.test.ex", "MX");
        assert_eq!(a.status, Status::Found);
        assert_eq!(a.answers[0].data, "1 ten-1.test.ex.");
        assert_eq!(a.authority[0].rtype, "NS");
        assert!(!a.ad && !a.aa);
        let s = z.lookup("MXSECURE.test.ex.", "mx");
        assert!(s.ad, "{s:?}");
        assert_eq!(s.answers[0].name, "mxsecure.test.ex");
        let s = z.lookup("mxsecure.test.ex", "A");
        assert_eq!(s.answers[0].data, "10.0.0.2");
        assert!(s.ad);
        // fakens' wildcard test lets names no longer than the wildcard's
        // suffix match it too.
        assert_eq!(z.lookup("ok.wild.ex", "A").answers.len(), 2);
        let a = z.lookup("aa.test.ex", "A");
        assert!(a.aa && !a.ad);
        assert_eq!(a.answers[0].ttl, 300);
        assert_eq!(
            z.lookup("slow.test.ex", "A").delay,
            Duration::from_millis(500)
        );
        let c = z.lookup("alias.test.ex", "A");
        assert_eq!(c.answers[0].rtype, "CNAME");
        assert_eq!(c.answers[0].data, "ten-1.test.ex.");
        let w = z.lookup("a.long.sub.wild.ex", "A");
        assert_eq!(w.answers[0].name, "a.long.sub.wild.ex");
        assert_eq!(w.answers[0].data, "10.0.0.9");
        let nd = z.lookup("mx.test.ex", "AAAA");
        assert_eq!(nd.status, Status::NoData);
        assert_eq!(nd.authority[0].rtype, "SOA");
        assert_eq!(z.lookup("nope.test.ex", "A").status, Status::HostNotFound);
        let gone = z.lookup("gone.test.ex", "A");
        assert_eq!(gone.status, Status::HostNotFound);
        assert!(gone.ad);
        assert_eq!(z.lookup("y.pass.ex", "A").status, Status::PassOn);
        assert_eq!(z.lookup("elsewhere.org", "A").status, Status::PassOn);
        assert_eq!(
            z.lookup("1.0.0.10.in-addr.arpa", "PTR").answers[0].data,
            "ten-1.test.ex."
        );
        assert_eq!(z.lookup("3.test.again.dns", "A").status, Status::TryAgain);
        assert_eq!(
            z.lookup("3.test.again.dns", "A").delay,
            Duration::from_secs(3)
        );
        assert_eq!(z.lookup("x.test.fail.dns", "MX").status, Status::NoRecovery);
        assert_eq!(z.lookup("manyhome.test.ex", "A").answers.len(), 2048);
    }
}
