//! `-brt`: which retry rule applies to an address or domain, with Exim's
//! output.
//!
//! `exim -brt <address-or-domain> [<second domain>] [<error>]` prints
//! `Retry rule: <pattern>  <error>  <params>` for the first rule that
//! matches (the sender from `-f` is checked against a rule's `senders`;
//! without `-f` such a rule never matches), or `No retry information
//! found`. A second argument containing a dot is an alternate domain; the
//! last argument, if any, names an error as retry rules do
//! (`timeout_connect`, `rcpt_45x`, `quota_7d`...).

use std::io::Write;

use anyhow::Result;
use oxim_conf::{RetryKind, RetryRule};

use crate::ctx::Ctx;
use crate::retry::{self, RTEF_CTOUT};

/// Run `-brt` with its arguments; the exit status.
pub fn run(ctx: &Ctx, args: &[String], out: &mut dyn Write) -> Result<i32> {
    let Some(first) = args.first() else {
        writeln!(out, "-brt needs a domain or address argument")?;
        return Ok(1);
    };
    if !first.contains('@') && !first.contains('.') {
        writeln!(
            out,
            "Warning: \"{first}\" contains no '@' and no '.' characters. It is being \n\
             treated as a one-component domain, not as a local part.\n"
        )?;
    }
    let mut rest = &args[1..];
    let mut alternate = None;
    if let Some(a) = rest.first().filter(|a| a.contains('.')) {
        alternate = Some(a.as_str());
        rest = &rest[1..];
    }
    let mut error = (0, 0);
    if let Some(name) = rest.first() {
        match retry::parse_error_name(name) {
            Ok((basic, mut more)) => {
                // A 4xx code named by its decade or as "any" is tested as a
                // real code: xx as 421, dx as d4.
                if matches!(
                    basic,
                    retry::ERRNO_MAIL4XX | retry::ERRNO_RCPT4XX | retry::ERRNO_DATA4XX
                ) {
                    let code = (more >> 8) & 255;
                    if code == 255 {
                        more = (more & !0xff00) | (21 << 8);
                    } else if code > 100 {
                        more = (more & !0xff00) | ((code - 96) << 8);
                    }
                }
                error = (basic, more);
            }
            Err(e) => {
                writeln!(out, "{e}")?;
                return Ok(1);
            }
        }
    }
    let vars = ctx.base_vars();
    let sender = ctx.inv.sender.as_deref();
    match retry::find_rule_for(&ctx.config, first, alternate, error, sender, &vars) {
        None => writeln!(out, "No retry information found")?,
        Some(rule) => writeln!(out, "{}", describe(rule))?,
    }
    Ok(0)
}

/// `Retry rule: <pattern>  <error>  F,2h,15m; G,16h,1h,1.5; ` as Exim
/// prints it: only quota, refused, timeout and auth_failed rules name their
/// error; the others show `*`.
fn describe(rule: &RetryRule) -> String {
    let (basic, more) = retry::parse_error_name(&rule.error).unwrap_or((0, 0));
    let error = match basic {
        retry::ERRNO_EXIMQUOTA if more > 0 => {
            format!("quota_{}", oxim_conf::options::render_time(more as u64))
        }
        retry::ERRNO_EXIMQUOTA => "quota".to_string(),
        111 => match u8::try_from(more) {
            Ok(b'M') => "refused_MX".to_string(),
            Ok(b'A') => "refused_A".to_string(),
            _ => "refused".to_string(),
        },
        110 => {
            let mut s = "timeout".to_string();
            if more & RTEF_CTOUT != 0 {
                s.push_str("_connect");
            }
            match more & 255 {
                0 => {}
                m if m == i32::from(b'M') => s.push_str("_MX"),
                _ => s.push_str("_A"),
            }
            s
        }
        retry::ERRNO_AUTHFAIL => "auth_failed".to_string(),
        _ => "*".to_string(),
    };
    let mut line = format!("Retry rule: {}  {error}  ", rule.pattern);
    for p in &rule.params {
        let letter = match p.kind {
            RetryKind::F => 'F',
            RetryKind::G => 'G',
            RetryKind::H => 'H',
        };
        line.push_str(&format!(
            "{letter},{},{}",
            oxim_conf::options::render_time(p.timeout_secs),
            oxim_conf::options::render_time(p.interval_secs)
        ));
        if let (RetryKind::G | RetryKind::H, Some(f)) = (p.kind, p.factor) {
            line.push_str(&format!(",{}", factor_text((f * 1000.0).round() as i64)));
        }
        line.push_str("; ");
    }
    line
}

/// A factor in thousandths as Exim prints it: `1.5`, `2.0`, `1.25`.
fn factor_text(x: i64) -> String {
    let mut s = format!("{}.", x / 1000);
    let mut f = x % 1000;
    let mut d = 100;
    loop {
        s.push_str(&(f / d).to_string());
        f %= d;
        d /= 10;
        if f == 0 || d == 0 {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_as_exim_prints_them() {
        assert_eq!(factor_text(1500), "1.5");
        assert_eq!(factor_text(2000), "2.0");
        assert_eq!(factor_text(1250), "1.25");
        assert_eq!(factor_text(1005), "1.005");
    }

    #[test]
    fn error_names() {
        use retry::parse_error_name as p;
        assert_eq!(p("*"), Ok((0, 0)));
        assert_eq!(p("timeout_connect_A"), Ok((110, RTEF_CTOUT | 65)));
        assert_eq!(p("rcpt_45x"), Ok((retry::ERRNO_RCPT4XX, 150 << 8)));
        assert_eq!(p("rcpt_4xx"), Ok((retry::ERRNO_RCPT4XX, 255 << 8)));
        assert_eq!(p("quota_7d"), Ok((retry::ERRNO_EXIMQUOTA, 7 * 86400)));
        assert!(p("refused_B").is_err());
        assert!(p("bogus").is_err());
    }

    #[test]
    fn error_matching() {
        use retry::error_matches as m;
        // "timeout_connect" wants a connection timeout; "timeout" any.
        assert!(!m(110, RTEF_CTOUT, 110, 0));
        assert!(m(110, RTEF_CTOUT, 110, RTEF_CTOUT | 65));
        assert!(m(110, 0, 110, RTEF_CTOUT));
        // "timeout_A" ignores whether it was the connection.
        assert!(m(110, 65, 110, RTEF_CTOUT | 65));
        // rcpt_45x takes any 45d code, rcpt_463 only 463.
        assert!(m(
            retry::ERRNO_RCPT4XX,
            150 << 8,
            retry::ERRNO_RCPT4XX,
            54 << 8
        ));
        assert!(!m(
            retry::ERRNO_RCPT4XX,
            63 << 8,
            retry::ERRNO_RCPT4XX,
            54 << 8
        ));
        // An error-specific rule does not match an unspecified error.
        assert!(!m(retry::ERRNO_AUTHFAIL, 0, 0, 0));
    }
}
