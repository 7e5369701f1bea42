//! `exinext [-C config] [-Dmacro...] <address>|<domain>|<local-part>`:
//! what the retry database says about the hosts of an address, as Exim's
//! `exinext` script prints it. As the script does, it asks the MTA itself
//! (`-bP spool_directory`, `-bP qualify_domain`, `-v -bt <address>`) and
//! then reads the retry records.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::dbutil::print_time;
use crate::retry::RetryDb;

/// Run `exim_path` with the macros and configuration, returning stdout.
fn ask(exim: &Path, macros: &[String], config: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(exim);
    cmd.args(macros);
    if let Some(c) = config {
        cmd.arg("-C").arg(c);
    }
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::null());
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The value of a `-bP name` line (`name = value`).
fn option_value(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((_, v)) => v.trim_start().to_string(),
        None => line.to_string(),
    }
}

/// The host lines of `-v -bt` output: `host NAME [IP]` as `NAME:IP`.
fn hosts_of(bt: &str, out: &mut dyn Write) -> Vec<String> {
    let mut list = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("host ") {
            let mut w = rest.split_whitespace();
            if let (Some(name), Some(ip)) = (w.next(), w.next()) {
                if let Some(ip) = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
                    list.push(format!("{name}:{ip}"));
                    continue;
                }
            }
        }
        if line.contains("cannot be resolved") {
            let _ = writeln!(out, "{line}");
        }
    }
    list
}

/// Split a retry key `T:host:ip[:port][:msgid]` into its parts.
fn split_transport_key(key: &str) -> (String, String, Option<String>, Option<String>) {
    // host and ip are plain or bracketed (an IPv6 address).
    fn part(s: &str) -> (&str, &str) {
        if s.starts_with('[') {
            match s.find(']') {
                Some(e) => (&s[..=e], &s[e + 1..]),
                None => (s, ""),
            }
        } else {
            match s.find(':') {
                Some(e) => (&s[..e], &s[e..]),
                None => (s, ""),
            }
        }
    }
    let (host, rest) = part(key);
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (ip, rest) = part(rest);
    let mut port = None;
    let mut msgid = None;
    for p in rest.split(':').filter(|p| !p.is_empty()) {
        if port.is_none()
            && msgid.is_none()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
        {
            port = Some(p.to_string());
        } else {
            msgid = Some(p.to_string());
        }
    }
    (host.to_string(), ip.to_string(), port, msgid)
}

fn looks_like_message_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts[0].len() == 6
        && ((parts[1].len() == 6 && parts[2].len() == 2)
            || (parts[1].len() == 11 && parts[2].len() == 4))
}

pub fn run(args: &[String], exim_default: &Path, out: &mut dyn Write) -> i32 {
    if matches!(args.first().map(String::as_str), Some("--version" | "-v")) {
        let _ = writeln!(out, "exinext: {}", exim_default.display());
        let _ = writeln!(out, "build: oxim {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let mut config = None;
    let mut macros = Vec::new();
    let mut exim = exim_default.to_path_buf();
    let mut i = 0;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        if a == "-C" {
            config = args.get(i + 1).cloned();
            i += 2;
        } else if a.starts_with("-D") {
            if let Some(p) = a.strip_prefix("-DEXIM_PATH=") {
                exim = p.into();
            }
            macros.push(a.clone());
            i += 1;
        } else {
            break;
        }
    }
    let Some(subject) = args.get(i) else {
        let _ = writeln!(out, "Usage: exinext <address>|<domain>|<local-part>");
        return 1;
    };
    let config = config.as_deref();
    let spool = option_value(&ask(&exim, &macros, config, &["-bP", "spool_directory"]));
    let qualify = option_value(&ask(&exim, &macros, config, &["-bP", "qualify_domain"]));
    let address = match subject.split_once('@') {
        Some((l, d)) if !d.contains('@') => format!("{l}@{}", d.to_lowercase()),
        _ => format!("User@{}", subject.to_lowercase()),
    };
    let bt = ask(&exim, &[], config, &["-v", "-bt", &address]);
    let mut list = hosts_of(&bt, out);
    if list.is_empty() {
        if looks_like_message_id(subject) {
            list.push(subject.clone());
        }
        if !subject.contains('@') && !subject.contains('.') {
            list.push(format!("{subject}@{qualify}"));
        } else {
            let _ = writeln!(out, "No remote hosts found for {subject}");
        }
    }
    list.push(subject.clone());
    let records = RetryDb::new(&Path::new(&spool).join("db"))
        .all()
        .unwrap_or_default();
    let mut printed = false;
    for (key, h) in &records {
        let line = format!("  {key} {} {} {}", h.basic_errno, h.more_errno, h.text);
        if !list.iter().any(|item| line.contains(item.as_str())) {
            continue;
        }
        printed = true;
        if let Some(k) = key.strip_prefix("T:").filter(|k| k.contains(':')) {
            let (host, ip, port, msgid) = split_transport_key(k);
            let mut s = format!("Transport: {host} {ip}");
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            if let Some(m) = msgid {
                s.push_str(&format!(" {m}"));
            }
            let _ = writeln!(out, "{s} error {}: {}", h.basic_errno, h.text);
        } else {
            let (kind, rest) = key.split_at(2.min(key.len()));
            let kind = match kind {
                "R:" => "Route: ",
                "T:" => "Transport: ",
                _ => "",
            };
            let _ = writeln!(out, "{kind}{rest} error {}: {}", h.basic_errno, h.text);
        }
        let _ = writeln!(out, "  first failed: {}", print_time(h.first_failed, false));
        let _ = writeln!(out, "  last tried:   {}", print_time(h.last_try, false));
        let _ = writeln!(out, "  next try at:  {}", print_time(h.next_try, false));
        if h.expired {
            let _ = writeln!(out, "  past final cutoff time");
        }
    }
    if !printed {
        let _ = writeln!(out, "No retry data found for {subject}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_keys() {
        assert_eq!(
            split_transport_key("h.example:192.0.2.1:2525"),
            (
                "h.example".into(),
                "192.0.2.1".into(),
                Some("2525".into()),
                None
            )
        );
        assert_eq!(
            split_transport_key("[::1]:[::1]:25:10HmaX-0005vi-00"),
            (
                "[::1]".into(),
                "[::1]".into(),
                Some("25".into()),
                Some("10HmaX-0005vi-00".into())
            )
        );
    }

    #[test]
    fn bt_host_lines() {
        let mut out = Vec::new();
        let l = hosts_of(
            "a@b.example\n  router = r, transport = t\n  host mx.b.example [192.0.2.7] MX=5\n",
            &mut out,
        );
        assert_eq!(l, vec!["mx.b.example:192.0.2.7".to_string()]);
        assert_eq!(
            option_value("spool_directory = /var/spool/exim4\n"),
            "/var/spool/exim4"
        );
    }
}
