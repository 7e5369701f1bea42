//! One-line rule syntaxes: retry rules, route lists, rewrite rules.

use super::*;

/// Parses a retry rule: `pattern error [senders=list] F,5d,10s; G,16h,1h,1.5`.
pub fn parse_retry_line(text: &str) -> Result<RetryRule, String> {
    let s = text.trim_start();
    let end = s.find(|c: char| !is_graph(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("missing domain name".to_string());
    }
    let pattern = s[..end].to_string();
    let s = s[end..].trim_start();
    let end = s.find(|c: char| !is_graph(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("missing error type".to_string());
    }
    let error = s[..end].to_string();
    check_retry_error(&error)?;
    let mut s = s[end..].trim_start();
    let mut senders = None;
    if let Some(r) = s.strip_prefix("senders") {
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('=') else {
            return Err("\"=\" expected after \"senders\" in retry rule".to_string());
        };
        if r.trim().is_empty() {
            return Err("missing sender list in retry rule".to_string());
        }
        {
            let r = r.trim_start();
            let (val, rest) = if let Some(q) = r.strip_prefix('"') {
                let (v, used, closed) = options::dequote(q);
                if !closed {
                    return Err("missing quote in retry rule".to_string());
                }
                (v, &q[used..])
            } else {
                let e = r.find(char::is_whitespace).unwrap_or(r.len());
                (r[..e].to_string(), &r[e..])
            };
            senders = Some(val);
            s = rest.trim_start();
        }
    }
    let mut params = Vec::new();
    while !s.is_empty() {
        let mut chars = s.chars();
        let letter = chars.next().map(|c| c.to_ascii_uppercase());
        s = chars.as_str();
        let kind = match letter {
            Some('F') => RetryKind::F,
            Some('G') => RetryKind::G,
            Some('H') => RetryKind::H,
            _ => return Err("unknown retry rule letter".to_string()),
        };
        let (timeout, r) = retry_arg(s, false)?;
        s = r;
        let (interval, r) = retry_arg(s, false)?;
        s = r;
        let mut factor = None;
        if kind != RetryKind::F {
            let (f, r) = retry_arg(s, true)?;
            s = r;
            if f.is_some_and(|f| f < 1000) {
                return Err("bad parameters for retry rule".to_string());
            }
            factor = f.map(|f| f as f64 / 1000.0);
            if factor.is_none() {
                return Err("bad parameters for retry rule".to_string());
            }
        }
        let (Some(timeout), Some(interval)) = (timeout, interval) else {
            return Err("bad parameters for retry rule".to_string());
        };
        if timeout == 0 || interval == 0 {
            return Err("bad parameters for retry rule".to_string());
        }
        params.push(RetryParam {
            kind,
            timeout_secs: timeout,
            interval_secs: interval,
            factor,
        });
        s = s.trim_start();
        if let Some(r) = s.strip_prefix(';') {
            s = r.trim_start();
        } else if !s.is_empty() {
            return Err("semicolon expected".to_string());
        }
    }
    Ok(RetryRule {
        pattern,
        error,
        senders,
        params,
    })
}

/// Reads `,value`; the value is `None` when it is not a valid time or
/// fixed-point number (Exim then reports "bad parameters").
pub(super) fn retry_arg(s: &str, fixed: bool) -> Result<(Option<u64>, &str), String> {
    let Some(r) = s.strip_prefix(',') else {
        return Err("comma expected".to_string());
    };
    let r = r.trim_start();
    let end = r
        .find(|c: char| !(c.is_ascii_alphanumeric() || (fixed && c == '.')))
        .unwrap_or(r.len());
    let rest = &r[end..];
    if !(rest.is_empty() || rest.starts_with([',', ';']) || rest.starts_with(char::is_whitespace)) {
        return Err("comma or semicolon expected".to_string());
    }
    let v = if fixed {
        options::parse_fixed(&r[..end]).and_then(|v| u64::try_from(v).ok())
    } else if r[..end].ends_with(|c: char| c.is_ascii_digit()) {
        // Exim's retry times need a unit on every number ("1" is bad).
        None
    } else {
        options::parse_time(&r[..end])
    };
    Ok((v, rest))
}

pub(super) fn check_retry_error(e: &str) -> Result<(), String> {
    let lower = e.to_ascii_lowercase();
    let (base, suffix) = match lower.split_once('_') {
        Some((a, b)) => (a, Some(b)),
        None => (lower.as_str(), None),
    };
    let ok = match (base, suffix) {
        ("*", None) => true,
        ("quota", None) => true,
        ("quota", Some(t)) => options::parse_time(t).is_some(),
        ("refused", None) => true,
        ("refused", Some(x)) => matches!(x, "mx" | "a"),
        ("timeout", None) => true,
        ("timeout", Some(x)) => {
            matches!(
                x,
                "a" | "mx" | "connect" | "connect_a" | "connect_mx" | "dns"
            )
        }
        ("mail" | "rcpt" | "data", Some(x)) => {
            let b = x.as_bytes();
            b.len() == 3
                && b[0] == b'4'
                && (b[1].is_ascii_digit() || b[1] == b'x')
                && (b[2].is_ascii_digit() || b[2] == b'x')
        }
        ("auth", Some("failed")) => true,
        ("lost", Some("connection")) => true,
        ("tls", Some("required")) => true,
        ("lookup", None) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unknown or malformed retry error \"{e}\""))
    }
}

/// One item of a `manualroute` `route_list` (or a `route_data` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteItem {
    /// Domain pattern (empty for `route_data`, which has no domain).
    pub domain: String,
    /// Host list (unexpanded; may be empty).
    pub hosts: String,
    /// Remaining options such as `byname`, `randomize`, a transport name.
    pub options: Vec<String>,
}

/// Splits a `route_list` value into items (default separator `;`).
pub fn parse_route_list(list: &str) -> Vec<RouteItem> {
    crate::lists::ListIter::with_default(list, ';')
        .filter(|item| !item.trim().is_empty())
        .map(|item| parse_route_item(&item, true))
        .collect()
}

/// Parses one route item: `[domain] hosts [options...]`; the domain and
/// host list may be double-quoted. With `with_domain == false` (for
/// `route_data`) there is no domain field.
pub fn parse_route_item(item: &str, with_domain: bool) -> RouteItem {
    let mut rest = item.trim_start();
    let mut domain = String::new();
    if with_domain {
        let (d, r) = dequote_word(rest);
        domain = d;
        rest = r.trim_start();
    }
    let (hosts, r) = dequote_word(rest);
    RouteItem {
        domain,
        hosts,
        options: r.split_whitespace().map(str::to_string).collect(),
    }
}

pub(super) fn dequote_word(s: &str) -> (String, &str) {
    let s = s.trim_start();
    if let Some(q) = s.strip_prefix('"') {
        let (v, used, _) = options::dequote(q);
        (v, &q[used..])
    } else {
        let e = s.find(char::is_whitespace).unwrap_or(s.len());
        (s[..e].to_string(), &s[e..])
    }
}

/// Parses a rewrite rule: `pattern replacement [flags]`.
pub fn parse_rewrite_line(text: &str) -> Result<RewriteRule, String> {
    let (pattern, rest) = dequote_word(text);
    if rest.trim().is_empty() {
        return Err("missing rewrite replacement string".to_string());
    }
    let (replacement, rest) = dequote_word(rest);
    let mut flags = String::new();
    for c in rest.chars() {
        match c {
            ' ' | '\t' => {}
            'q' | 'w' | 'h' | 's' | 'f' | 't' | 'c' | 'b' | 'r' | 'E' | 'F' | 'T' | 'Q' | 'R' => {
                flags.push(c)
            }
            'S' => {
                if !(pattern.starts_with('^') || pattern.starts_with("\\N^")) {
                    return Err(
                        "rewrite rule has the S flag but is not a regular expression".to_string()
                    );
                }
                flags.push(c);
            }
            other => {
                return Err(format!(
                    "unknown rewrite flag character '{other}' (could be missing quotes round replacement item)"
                ))
            }
        }
    }
    Ok(RewriteRule {
        pattern,
        replacement,
        flags,
    })
}
