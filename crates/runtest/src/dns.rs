//! Test DNS data: a reader for Exim's fake-DNS zone files (`dnszones-src`,
//! no SOA, origin taken from the file name) and a translation into a
//! configuration for `dnsmasq`, which serves them inside the sandbox.

use std::fmt::Write as _;

use thiserror::Error;

/// Problems with a zone file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DnsError {
    /// The file name does not follow `db.<zone>` / `db.ip4.<net>` / `db.ip6.<net>`.
    #[error("zone file name {0:?} is not db.<domain>, db.ip4.<net> or db.ip6.<net>")]
    BadFileName(String),
    /// A record line that cannot be understood.
    #[error("{file}:{line}: cannot parse record {text:?}")]
    BadRecord {
        /// Zone file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The line.
        text: String,
    },
}

/// One resource record with an absolute owner name (lower case, no final dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name.
    pub name: String,
    /// Record type (upper case).
    pub rtype: String,
    /// Record data as written (names made absolute for PTR/CNAME/MX/NS/SRV).
    pub data: String,
}

/// A parsed zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    /// Zone origin (no final dot).
    pub origin: String,
    /// Records.
    pub records: Vec<Record>,
    /// `PASS ON NOT FOUND`: names not found here are not authoritatively absent.
    pub pass_on_not_found: bool,
    /// Record types the dnsmasq translation had to leave out.
    pub unsupported: Vec<String>,
}

/// The zone origin for an Exim zone file name.
pub fn origin_from_filename(name: &str) -> Result<String, DnsError> {
    let bad = || DnsError::BadFileName(name.to_string());
    let rest = name.strip_prefix("db.").ok_or_else(bad)?;
    if let Some(net) = rest.strip_prefix("ip4.") {
        let mut parts: Vec<&str> = net.split('.').collect();
        if parts.iter().any(|p| p.parse::<u8>().is_err()) {
            return Err(bad());
        }
        parts.reverse();
        return Ok(format!("{}.in-addr.arpa", parts.join(".")));
    }
    if let Some(net) = rest.strip_prefix("ip6.") {
        let nibbles: Vec<char> = net.chars().filter(|c| *c != ':').collect();
        if nibbles.is_empty() || !nibbles.iter().all(char::is_ascii_hexdigit) {
            return Err(bad());
        }
        let rev: Vec<String> = nibbles
            .iter()
            .rev()
            .map(|c| c.to_ascii_lowercase().to_string())
            .collect();
        return Ok(format!("{}.ip6.arpa", rev.join(".")));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    Ok(rest.to_ascii_lowercase())
}

const TYPES: &[&str] = &[
    "A", "AAAA", "PTR", "MX", "CNAME", "TXT", "SRV", "NS", "SOA", "SPF", "TLSA", "CAA", "DS",
    "DNSKEY", "RRSIG", "NSEC", "NSEC3", "HINFO",
];

fn absolute(name: &str, origin: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n == "@" {
        origin.to_string()
    } else if let Some(abs) = n.strip_suffix('.') {
        abs.to_string()
    } else if origin.is_empty() {
        n
    } else {
        format!("{n}.{origin}")
    }
}

/// Parse an Exim fake-DNS zone file.
pub fn parse_zone(file_name: &str, text: &str) -> Result<Zone, DnsError> {
    let origin = origin_from_filename(file_name)?;
    let mut zone = Zone {
        origin: origin.clone(),
        ..Zone::default()
    };
    let mut last_name: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        // fakens also takes a line starting with `#` as a comment.
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.trim() == "PASS ON NOT FOUND" {
            zone.pass_on_not_found = true;
            continue;
        }
        let bad = || DnsError::BadRecord {
            file: file_name.to_string(),
            line: i + 1,
            text: raw.to_string(),
        };
        // fakens per-record flags (DNSSEC, AA, NXDOMAIN, DELAY=n, TTL=n) come
        // first, each followed by one space; what follows them is a record
        // line of its own, so more white space means "same owner as before".
        let mut line = line;
        loop {
            let word_end = line.find(char::is_whitespace).unwrap_or(line.len());
            let w = &line[..word_end];
            let is_flag = matches!(w, "DNSSEC" | "AA" | "NXDOMAIN")
                || w.starts_with("DELAY=")
                || w.starts_with("TTL=");
            if !is_flag || word_end == line.len() {
                break;
            }
            line = &line[word_end + 1..];
        }
        let continuation = line.starts_with(char::is_whitespace);
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let name = if continuation {
            last_name.clone().ok_or_else(bad)?
        } else {
            let n = words.first().ok_or_else(bad)?;
            let n = absolute(n, &origin);
            words.remove(0);
            n
        };
        // Optional TTL and class.
        while let Some(w) = words.first() {
            if w.bytes().all(|b| b.is_ascii_digit()) || w.eq_ignore_ascii_case("IN") {
                words.remove(0);
            } else {
                break;
            }
        }
        let rtype = words.first().ok_or_else(bad)?.to_ascii_uppercase();
        if !TYPES.contains(&rtype.as_str()) {
            return Err(bad());
        }
        let rest = &words[1..];
        if rest.is_empty() {
            return Err(bad());
        }
        let data = match rtype.as_str() {
            "PTR" | "CNAME" | "NS" => absolute(rest[0], &origin),
            "MX" if rest.len() >= 2 => format!("{} {}", rest[0], absolute(rest[1], &origin)),
            "SRV" if rest.len() >= 4 => format!(
                "{} {} {} {}",
                rest[0],
                rest[1],
                rest[2],
                absolute(rest[3], &origin)
            ),
            "MX" | "SRV" => return Err(bad()),
            _ => rest.join(" "),
        };
        last_name = Some(name.clone());
        zone.records.push(Record { name, rtype, data });
    }
    Ok(zone)
}

/// Remove a `;` comment that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The zones Exim's runtest generates: `db.<domain of hostname>` with
/// `<short name> A <ipv4>` and `db.ip4.<first octet>` with the PTR back.
pub fn generated_zone_files(hostname: &str, ipv4: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some((short, domain)) = hostname.split_once('.') {
        out.push((
            format!("db.{domain}"),
            format!("; generated by oxim-runtest\nPASS ON NOT FOUND\n{short}    A    {ipv4}\n"),
        ));
    }
    let octets: Vec<&str> = ipv4.split('.').collect();
    if octets.len() == 4 {
        out.push((
            format!("db.ip4.{}", octets[0]),
            format!(
                "; generated by oxim-runtest\n{}.{}.{}.{}.in-addr.arpa.    PTR    {hostname}.\n",
                octets[3], octets[2], octets[1], octets[0]
            ),
        ));
    }
    out
}

fn quote_txt(data: &str) -> String {
    if data.starts_with('"') {
        data.to_string()
    } else {
        format!("\"{}\"", data.replace('"', "\\\""))
    }
}

/// Options for a dnsmasq configuration file serving `zones` on 127.0.0.1:53.
/// Names in zones without `PASS ON NOT FOUND` are answered authoritatively
/// (unknown names get NXDOMAIN). Unsupported record types are recorded in
/// each zone's `unsupported` list.
pub fn dnsmasq_config(zones: &mut [Zone], log_file: &str) -> String {
    let mut c = String::new();
    c.push_str("# generated by oxim-runtest\n");
    c.push_str("no-resolv\nno-hosts\nno-poll\nno-negcache\nbogus-priv\n");
    c.push_str("listen-address=127.0.0.1\nbind-interfaces\nport=53\n");
    c.push_str("user=root\ngroup=\npid-file=\nlog-queries\n");
    let _ = writeln!(c, "log-facility={log_file}");
    for zone in zones.iter_mut() {
        if !zone.pass_on_not_found && !zone.origin.is_empty() {
            let _ = writeln!(c, "local=/{}/", zone.origin);
        }
        for r in &zone.records {
            let line = match r.rtype.as_str() {
                "A" | "AAAA" => format!("host-record={},{}", r.name, r.data),
                "PTR" => format!("ptr-record={},{}", r.name, r.data),
                "CNAME" => format!("cname={},{}", r.name, r.data),
                "TXT" | "SPF" => format!("txt-record={},{}", r.name, quote_txt(&r.data)),
                "MX" => {
                    let (pref, target) = r.data.split_once(' ').unwrap_or(("10", &r.data));
                    format!("mx-host={},{},{}", r.name, target, pref)
                }
                "SRV" => {
                    let f: Vec<&str> = r.data.split(' ').collect();
                    match f.as_slice() {
                        [prio, weight, port, target] => {
                            format!(
                                "srv-host={},{},{},{},{}",
                                r.name, target, port, prio, weight
                            )
                        }
                        _ => {
                            zone.unsupported.push(format!("{} SRV {}", r.name, r.data));
                            continue;
                        }
                    }
                }
                other => {
                    zone.unsupported
                        .push(format!("{} {other} {}", r.name, r.data));
                    continue;
                }
            };
            c.push_str(&line);
            c.push('\n');
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(origin_from_filename("db.test.ex").unwrap(), "test.ex");
        assert_eq!(
            origin_from_filename("db.ip4.127").unwrap(),
            "127.in-addr.arpa"
        );
        assert_eq!(
            origin_from_filename("db.ip4.10.250").unwrap(),
            "250.10.in-addr.arpa"
        );
        assert_eq!(
            origin_from_filename("db.ip6.ff00").unwrap(),
            "0.0.f.f.ip6.arpa"
        );
        assert!(origin_from_filename("zone.x").is_err());
        assert!(origin_from_filename("db.ip4.300").is_err());
    }

    #[test]
    fn parses_fakens_zone() {
        let text = concat!(
            "; comment\n\nPASS ON NOT FOUND\n",
            "host1     A     224.0.0.1\n",
            "          AAAA  ff00::1\n",
            "DNSSEC mx  MX 5 host1\n",
            "txt    TXT \"a;b\" ; trailing\n",
            "abs.other.  CNAME  host1.test.ex.\n",
            "# a hash comment\n",
            "DNSSEC                MX 6 host2\n",
            "AA TTL=2 DELAY=500 t2  A 224.0.0.2\n",
        );
        let z = parse_zone("db.test.ex", text).unwrap();
        assert!(z.pass_on_not_found);
        let r: Vec<(&str, &str, &str)> = z
            .records
            .iter()
            .map(|r| (r.name.as_str(), r.rtype.as_str(), r.data.as_str()))
            .collect();
        assert_eq!(
            r,
            vec![
                ("host1.test.ex", "A", "224.0.0.1"),
                ("host1.test.ex", "AAAA", "ff00::1"),
                ("mx.test.ex", "MX", "5 host1.test.ex"),
                ("txt.test.ex", "TXT", "\"a;b\""),
                ("abs.other", "CNAME", "host1.test.ex"),
                ("abs.other", "MX", "6 host2.test.ex"),
                ("t2.test.ex", "A", "224.0.0.2"),
            ]
        );
        assert!(matches!(
            parse_zone("db.test.ex", "x BOGUS y\n"),
            Err(DnsError::BadRecord { line: 1, .. })
        ));
    }

    #[test]
    fn generated_and_dnsmasq() {
        let files = generated_zone_files("testhost.oxim.example", "198.18.0.1");
        assert_eq!(files[0].0, "db.oxim.example");
        assert_eq!(files[1].0, "db.ip4.198");
        let mut zones: Vec<Zone> = files
            .iter()
            .map(|(n, t)| parse_zone(n, t).unwrap())
            .collect();
        zones.push(
            parse_zone(
                "db.ip4.127",
                "1.0.0.127.in-addr.arpa.   PTR    localhost.\n",
            )
            .unwrap(),
        );
        let conf = dnsmasq_config(&mut zones, "/w/dns.log");
        assert!(conf.contains("host-record=testhost.oxim.example,198.18.0.1\n"));
        assert!(conf.contains("ptr-record=1.0.18.198.in-addr.arpa,testhost.oxim.example\n"));
        assert!(conf.contains("ptr-record=1.0.0.127.in-addr.arpa,localhost\n"));
        assert!(conf.contains("local=/127.in-addr.arpa/\n"));
        assert!(!conf.contains("local=/oxim.example/"));
    }
}
