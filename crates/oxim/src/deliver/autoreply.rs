//! The autoreply transport: instead of delivering the message, generate a new
//! one (a vacation reply, a notice) and put it on the queue.
//!
//! The generated message has a null envelope sender, so a reply to a reply
//! can never loop. `once` keeps a plain-text file of addresses already
//! answered (one `address epoch` per line), honouring `once_repeat`.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{anyhow, Context as _, Result};

use crate::ctx::Ctx;
use crate::loaded::Loaded;
use crate::message::{HeaderField, Message};
use crate::receive::{self, Source};
use crate::settings::AutoreplySpec;
use crate::vars::Vars;

fn expand_opt(o: &Option<String>, vars: &Vars) -> Result<Option<String>> {
    match o {
        None => Ok(None),
        Some(s) => {
            let v =
                oxim_conf::expand(s, vars).with_context(|| format!("failed to expand \"{s}\""))?;
            Ok((!v.trim().is_empty()).then_some(v))
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Text that expands to itself (a filter's arguments are expanded
/// already).
fn literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('$', "\\$")
}

/// The transport's settings for a reply a filter's `mail` or `vacation`
/// set up: its arguments replace the transport's own (which keeps its
/// `mode` and `never_mail`). Relative file names are in `$home`.
pub fn filter_spec(
    base: &AutoreplySpec,
    r: &crate::deliver::route::FilterReply,
    vars: &Vars,
) -> AutoreplySpec {
    let home = vars.get("home").unwrap_or("").to_string();
    let v = |i: usize| r.values[i].as_deref().map(literal);
    let path = |i: usize| {
        r.values[i].as_deref().map(|p| {
            if p.starts_with('/') || home.is_empty() {
                literal(p)
            } else {
                literal(&format!("{home}/{p}"))
            }
        })
    };
    AutoreplySpec {
        to: v(0),
        cc: v(1),
        bcc: v(2),
        from: v(3),
        reply_to: v(4),
        subject: v(5),
        headers: v(6),
        text: v(7),
        file: path(8),
        log: path(9),
        once: path(10),
        once_repeat: v(11),
        file_expand: r.expand_file,
        file_optional: false,
        return_message: r.return_message,
        mode: base.mode,
        never_mail: base.never_mail,
    }
}

/// Addresses answered before, from a `once` file.
fn read_once(path: &str) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (a, t) = l.rsplit_once(' ')?;
            Some((a.to_string(), t.parse().ok()?))
        })
        .collect()
}

/// Generate and queue the reply. Returns the new message's id, or None when
/// nothing was sent (no recipient, `once` suppressed it, `never_mail`).
/// The header section's fields, continuation lines joined on.
fn header_fields(headers: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(headers);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        } else if !line.is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

/// The value of the first field called `name` (caseless), trimmed.
fn find_header(fields: &[String], name: &str) -> Option<String> {
    fields.iter().find_map(|f| {
        let (n, v) = f.split_once(':')?;
        n.trim_end()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Exim's `References:` for a reply: the ids of the original's
/// `References:` (else its `In-Reply-To:`), the first and the last ones up
/// to twelve in all, then its `Message-ID:`.
fn references(fields: &[String], message_id: Option<&str>) -> Option<String> {
    let from = find_header(fields, "references").or_else(|| find_header(fields, "in-reply-to"));
    if from.is_none() && message_id.is_none() {
        return None;
    }
    let mut ids: Vec<String> = Vec::new();
    if let Some(text) = from {
        let mut rest = text.as_str();
        while let Some(start) = rest.find('<') {
            let Some(len) = rest[start..].find('>') else {
                break;
            };
            let id = rest[start..start + len + 1].to_string();
            rest = &rest[start + len + 1..];
            if ids.len() == 12 {
                ids.remove(1);
            }
            ids.push(id);
        }
    }
    let mut out = String::from("References:");
    for id in ids.iter().map(String::as_str).chain(message_id) {
        out.push(' ');
        out.push_str(id);
    }
    Some(out)
}

pub async fn deliver(
    ctx: &Ctx,
    spec: &AutoreplySpec,
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    user: crate::ctx::Caller,
) -> Result<Option<String>> {
    let to = expand_opt(&spec.to, vars)?;
    let cc = expand_opt(&spec.cc, vars)?;
    let bcc = expand_opt(&spec.bcc, vars)?;
    if to.is_none() && cc.is_none() && bcc.is_none() {
        return Ok(None);
    }
    if spec.never_mail {
        return Ok(None);
    }
    let mut recipients: Vec<String> = Vec::new();
    for list in [&to, &cc, &bcc].into_iter().flatten() {
        recipients.extend(crate::message::extract_addresses(list));
    }
    let recipients: Vec<String> = recipients
        .iter()
        .map(|r| ctx.qualify_recipient(r))
        .collect();
    if recipients.is_empty() {
        return Ok(None);
    }
    let once = expand_opt(&spec.once, vars)?;
    if let Some(path) = &once {
        let seen = read_once(path);
        let key = recipients.join(",");
        if let Some(t) = seen.get(&key) {
            let repeat = match expand_opt(&spec.once_repeat, vars)? {
                None => 0,
                Some(r) => oxim_conf::options::parse_time(r.trim())
                    .ok_or_else(|| anyhow::anyhow!("Invalid time value \"{r}\" for once_repeat"))?,
            };
            if repeat == 0 || now_secs() < t + repeat {
                return Ok(None);
            }
        }
    }

    let mut msg = Message::default();
    if let Some(f) = expand_opt(&spec.from, vars)? {
        msg.headers.push(HeaderField::new(format!("From: {f}")));
    }
    if let Some(r) = expand_opt(&spec.reply_to, vars)? {
        msg.headers.push(HeaderField::new(format!("Reply-To: {r}")));
    }
    if let Some(t) = &to {
        msg.headers.push(HeaderField::new(format!("To: {t}")));
    }
    if let Some(c) = &cc {
        msg.headers.push(HeaderField::new(format!("Cc: {c}")));
    }
    if let Some(s) = expand_opt(&spec.subject, vars)? {
        msg.headers.push(HeaderField::new(format!("Subject: {s}")));
    }
    // As Exim: In-Reply-To: and References: from the message answered,
    // Auto-Submitted:, then the transport's own headers.
    let original = header_fields(headers);
    let message_id = find_header(&original, "message-id");
    if let Some(id) = &message_id {
        msg.headers
            .push(HeaderField::new(format!("In-Reply-To: {id}")));
    }
    if let Some(refs) = references(&original, message_id.as_deref()) {
        msg.headers.push(HeaderField::new(refs));
    }
    msg.headers
        .push(HeaderField::new("Auto-Submitted: auto-replied"));
    if let Some(h) = expand_opt(&spec.headers, vars)? {
        for line in h.split('\n').filter(|l| !l.trim().is_empty()) {
            msg.headers.push(HeaderField::new(line));
        }
    }
    let mut body = String::new();
    if let Some(t) = expand_opt(&spec.text, vars)? {
        body.push_str(&t);
        if !body.ends_with('\n') {
            body.push('\n');
        }
    }
    if let Some(f) = expand_opt(&spec.file, vars)? {
        match std::fs::read_to_string(&f) {
            Ok(text) => {
                let text = if spec.file_expand {
                    oxim_conf::expand(&text, vars)
                        .with_context(|| format!("failed to expand {f}"))?
                } else {
                    text
                };
                body.push_str(&text);
            }
            Err(_) if spec.file_optional => {}
            Err(e) => {
                return Err(anyhow!(
                    "failed to open file {f} when sending message from autoreply transport: {e}"
                ))
            }
        }
    }
    if spec.return_message {
        body.push_str("------ This is a copy of the message, including all the headers. ------\n");
        body.push_str(&String::from_utf8_lossy(headers));
        body.push('\n');
        body.push_str(&String::from_utf8_lossy(&m.body));
    }
    msg.body = body.into_bytes();

    let id = ctx.ids.next();
    let id_text = id.to_string();
    let mut source = Source::local(ctx, "local");
    source.ident = Some(user.login.clone());
    source.user = Some(user);
    // The reply refers to the message it answers (`R=` on its `<=` line).
    source.reference = Some(m.env.id.to_string());
    receive::accept(ctx, id, &source, "", &recipients, msg).await?;
    if let Some(path) = &once {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(spec.mode)
            .open(path)?;
        writeln!(f, "{} {}", recipients.join(","), now_secs())?;
    }
    if let Some(log) = expand_opt(&spec.log, vars)? {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(spec.mode)
            .open(&log)?;
        writeln!(
            f,
            "{}\n  To: {}\n  Subject: {}",
            crate::time::LocalTime::now().log_format(),
            recipients.join(", "),
            expand_opt(&spec.subject, vars)?.unwrap_or_default()
        )?;
    }
    Ok(Some(id_text))
}
