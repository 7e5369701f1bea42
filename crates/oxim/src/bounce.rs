//! Bounce messages (delivery status notifications) for permanent failures.
//!
//! Laid out as Exim's: a `multipart/report` (RFC 3464) with a plain-text
//! explanation listing each failed address and why, a
//! `message/delivery-status` part, and the original message (or only its
//! headers: `bounce_return_body`, `bounce_return_size_limit`,
//! `bounce_return_linesize_limit`). The bounce
//! has a null envelope sender, so it can never itself be bounced back and
//! forth.

use std::net::IpAddr;

use anyhow::Result;
use oxim_spool::MessageId;

use crate::ctx::Ctx;
use crate::loaded::Loaded;
use crate::message::{HeaderField, Message};
use crate::receive::{self, Source};

/// One failed address and why.
#[derive(Debug, Clone)]
pub struct FailedAddress {
    pub address: String,
    /// The top-level recipient it was generated from, if any.
    pub parent: Option<String>,
    pub reason: String,
    /// The remote host that gave the error (name, address).
    pub host: Option<(String, IpAddr)>,
    /// A router's errors_to (the bounce goes there instead of the sender).
    pub errors_to: Option<String>,
}

/// Split an SMTP error text ("SMTP error from remote mail server after
/// RCPT TO:<a@b>: 550 no") into the context and the server's response.
fn smtp_response(reason: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(i) = reason[from..].find(": ") {
        let at = from + i;
        let rest = &reason[at + 2..];
        let b = rest.as_bytes();
        if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
            return Some((&reason[..at + 1], rest));
        }
        from = at + 2;
    }
    None
}

/// The explanation for one address in the text part.
fn describe(f: &FailedAddress, out: &mut String) {
    out.push_str("  ");
    out.push_str(&f.address);
    out.push('\n');
    if let Some(p) = &f.parent {
        out.push_str(&format!("    (generated from {p})\n"));
    }
    let mut lines: Vec<&str> = Vec::new();
    let host_line;
    if let Some((name, ip)) = &f.host {
        host_line = format!("host {name} [{ip}]");
        lines.push(&host_line);
    }
    match (f.host.is_some(), smtp_response(&f.reason)) {
        (true, Some((context, response))) => {
            lines.push(context);
            lines.push(response);
        }
        _ => lines.extend(f.reason.lines()),
    }
    for l in lines {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
}

/// The per-recipient block of the delivery-status part.
fn dsn_fields(f: &FailedAddress, out: &mut String) {
    out.push_str("Action: failed\n");
    out.push_str(&format!(
        "Final-Recipient: rfc822;{}\n",
        f.parent.as_deref().unwrap_or(&f.address)
    ));
    out.push_str("Status: 5.0.0\n");
    if let Some((name, _)) = &f.host {
        out.push_str(&format!("Remote-MTA: dns; {name}\n"));
        if let Some((_, response)) = smtp_response(&f.reason) {
            out.push_str(&format!("Diagnostic-Code: smtp; {response}\n"));
        }
    }
    out.push('\n');
}

/// Build the bounce to `dest` for the addresses of `original` in `failed`
/// (in the order they failed) and put it on the spool. Returns the new
/// message, ready for delivery.
pub async fn generate(
    ctx: &Ctx,
    original: &Loaded,
    dest: &str,
    failed: &[FailedAddress],
) -> Result<Loaded> {
    let orig_id = original.env.id.to_string();
    let boundary = format!(
        "{}-eximdsn-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        crate::random::random_u64() % 2_147_483_647
    );
    // The text lists the most recent failure first, the report part in
    // the order they happened (as Exim does).
    let newest_first: Vec<&FailedAddress> = failed.iter().rev().collect();

    let mut msg = Message::default();
    let rcpts: Vec<&str> = newest_first.iter().map(|f| f.address.as_str()).collect();
    msg.headers.push(HeaderField::new(format!(
        "X-Failed-Recipients: {}",
        rcpts.join(",\n  ")
    )));
    msg.headers
        .push(HeaderField::new("Auto-Submitted: auto-replied"));
    msg.headers.push(HeaderField::new(format!(
        "From: Mail Delivery System <Mailer-Daemon@{}>",
        ctx.qualify_domain
    )));
    msg.headers.push(HeaderField::new(format!("To: {dest}")));
    if let Some(mid) = original.headers.iter().find(|h| {
        h.is_live()
            && h.name()
                .is_some_and(|n| n.eq_ignore_ascii_case("message-id"))
    }) {
        let v = mid.text.split_once(':').map_or("", |(_, v)| v).trim();
        msg.headers
            .push(HeaderField::new(format!("References: {v}")));
    }
    msg.headers.push(HeaderField::new(format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary={boundary}"
    )));
    msg.headers.push(HeaderField::new("MIME-Version: 1.0"));
    // A bounce to a router's errors_to rather than to the sender says so.
    let to_sender = dest.eq_ignore_ascii_case(&original.env.sender);
    msg.headers.push(HeaderField::new(if to_sender {
        "Subject: Mail delivery failed: returning message to sender"
    } else {
        "Subject: Mail delivery failed"
    }));

    let mut body = String::new();
    body.push_str(&format!(
        "--{boundary}\nContent-type: text/plain; charset=us-ascii\n\n"
    ));
    body.push_str("This message was created automatically by mail delivery software.\n\n");
    if to_sender {
        body.push_str("A message that you sent could not be delivered to one or more of its\n");
        body.push_str(
            "recipients. This is a permanent error. The following address(es) failed:\n\n",
        );
    } else {
        body.push_str(&format!(
            "A message sent by\n\n  <{}>\n\n",
            original.env.sender
        ));
        body.push_str("could not be delivered to one or more of its recipients. The following\n");
        body.push_str("address(es) failed:\n\n");
    }
    for f in &newest_first {
        describe(f, &mut body);
    }
    body.push_str(&format!(
        "\n--{boundary}\nContent-type: message/delivery-status\n\n"
    ));
    body.push_str(&format!("Reporting-MTA: dns; {}\n\n", ctx.primary_hostname));
    for f in failed {
        dsn_fields(f, &mut body);
    }

    let mut returned = format!("Return-path: <{}>\n", original.env.sender).into_bytes();
    for h in original.headers.iter().filter(|h| h.is_live()) {
        returned.extend_from_slice(h.text.as_bytes());
    }
    // Only the headers go back when the body is too large or has a line
    // longer than bounce_return_linesize_limit. Exim 4.96 rounds the size
    // limit up past the next multiple of 8192 and compares the body alone.
    let body_len = u64::try_from(original.body.len()).unwrap_or(u64::MAX);
    let limit = ctx.settings.bounce_return_size_limit;
    let too_big = limit > 0 && body_len > (limit / 8192 + 1) * 8192;
    let line_limit = ctx.settings.bounce_return_linesize_limit;
    let long_line = line_limit > 0
        && original
            .body
            .split(|&b| b == b'\n')
            .any(|l| l.len() > line_limit);
    let whole = ctx.settings.bounce_return_body && !too_big && !long_line;
    if whole {
        body.push_str(&format!("--{boundary}\nContent-type: message/rfc822\n\n"));
        returned.push(b'\n');
        returned.extend_from_slice(&original.body);
    } else {
        body.push_str(&format!(
            "--{boundary}\nContent-type: text/rfc822-headers\n\n"
        ));
        if ctx.settings.bounce_return_body {
            returned.extend_from_slice(
                b"X-Exim-DSN-Information: Due to administrative limits only headers are returned\n",
            );
        }
        returned.push(b'\n');
    }
    // Exim 4.96 was seen to return the message even with
    // bounce_return_message = false; so does oxim.
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(&returned);
    bytes.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    msg.body = bytes;

    let id: MessageId = ctx.ids.next();
    let mut source = Source::local(ctx, "local");
    source.reference = Some(orig_id);
    // As Exim's bounce, made by a process of the exim user.
    let me = crate::ctx::Caller::current();
    source.ident = Some(me.login.clone());
    source.user = Some(me);
    // Exim submits its bounces with this as the AUTH= sender
    // (bounce_sender_authentication, unset by default).
    let auth = ctx.config.main.str("bounce_sender_authentication");
    if !auth.is_empty() {
        source.auth_sender = Some(auth.to_string());
    }
    let mut recipients = vec![dest.to_string()];
    recipients.extend(errors_copy(ctx, dest));
    let bounce = receive::accept(ctx, id, &source, "", &recipients, msg).await?;
    crate::metrics::bounce();
    Ok(bounce)
}

/// `errors_copy`: the addresses that get a copy of a bounce to `dest`
/// (Exim sends them as Bcc recipients). The first item whose pattern (an
/// address list item) matches `dest` gives them: its address text is
/// expanded with `$local_part` and `$domain` of `dest`.
fn errors_copy(ctx: &Ctx, dest: &str) -> Vec<String> {
    let list = ctx.config.main.str("errors_copy");
    for item in oxim_conf::ListIter::new(list) {
        let item = item.trim();
        let (pattern, addresses) = match item.strip_prefix('"') {
            Some(rest) => match rest.split_once('"') {
                Some((p, a)) => (p.to_string(), a),
                None => continue,
            },
            None => match item.split_once(char::is_whitespace) {
                Some((p, a)) => (p.to_string(), a),
                None => continue,
            },
        };
        let addresses = addresses.trim();
        if addresses.is_empty() {
            continue;
        }
        let mut vars = ctx.base_vars();
        vars.set_address(dest);
        // One item: a colon in the pattern is not a separator.
        let one = pattern.replace(':', "::");
        if !oxim_conf::match_address(&one, dest, &ctx.config, &vars).unwrap_or(false) {
            continue;
        }
        return match oxim_conf::expand_with_config(addresses, &vars, &ctx.config) {
            Ok(v) => crate::message::extract_addresses(&v),
            Err(e) => {
                ctx.log(&oxim_log::LogRecord::Text {
                    id: None,
                    text: &format!("Failed to expand {addresses} when processing errors_copy: {e}"),
                    dest: oxim_log::Dest {
                        main: true,
                        reject: false,
                        panic: true,
                    },
                });
                Vec::new()
            }
        };
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_smtp_errors() {
        let r = "SMTP error from remote mail server after RCPT TO:<u@x.example>: 550 5.1.1 no such user";
        assert_eq!(
            smtp_response(r),
            Some((
                "SMTP error from remote mail server after RCPT TO:<u@x.example>:",
                "550 5.1.1 no such user"
            ))
        );
        assert_eq!(smtp_response("this address is bad"), None);
    }

    #[test]
    fn text_for_generated_and_remote() {
        let mut s = String::new();
        describe(
            &FailedAddress {
                address: "bad@test.ex".into(),
                parent: Some("list@test.ex".into()),
                reason: "this address is bad".into(),
                host: None,
                errors_to: None,
            },
            &mut s,
        );
        assert_eq!(
            s,
            "  bad@test.ex\n    (generated from list@test.ex)\n    this address is bad\n"
        );
        let f = FailedAddress {
            address: "u@o.example".into(),
            parent: None,
            reason: "SMTP error from remote mail server after RCPT TO:<u@o.example>: 550 no".into(),
            host: Some(("mx.o.example".into(), "127.0.0.1".parse().unwrap())),
            errors_to: None,
        };
        let mut s = String::new();
        describe(&f, &mut s);
        assert_eq!(
            s,
            "  u@o.example\n    host mx.o.example [127.0.0.1]\n    SMTP error from remote mail server after RCPT TO:<u@o.example>:\n    550 no\n"
        );
        let mut d = String::new();
        dsn_fields(&f, &mut d);
        assert_eq!(
            d,
            "Action: failed\nFinal-Recipient: rfc822;u@o.example\nStatus: 5.0.0\nRemote-MTA: dns; mx.o.example\nDiagnostic-Code: smtp; 550 no\n\n"
        );
    }
}
