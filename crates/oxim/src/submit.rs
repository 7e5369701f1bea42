//! Command-line submission: `exim [options] rcpt...` with the message on stdin.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};

use crate::cli::DeliveryMode;
use crate::ctx::Ctx;
use crate::deliver;
use crate::message::Message;
use crate::receive::{self, Source};

/// Read a non-SMTP message from `input`: up to EOF, or up to a line holding
/// a single dot when `dot_ends` (Exim's default without `-i`).
pub fn read_message(input: &mut dyn Read, dot_ends: bool) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    input.read_to_end(&mut raw)?;
    if dot_ends {
        let mut pos = 0;
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |p| pos + p + 1);
            let line = &raw[pos..end];
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line == b"." {
                raw.truncate(pos);
                break;
            }
            pos = end;
        }
    }
    Ok(raw)
}

/// Whether the caller may set the envelope sender (`-f`, MAIL FROM in
/// `-bs`/`-bS`). Root is trusted, except under the test harness, which runs
/// as root but stands for the ordinary user Exim's test suite runs as.
pub fn caller_is_trusted(ctx: &Ctx) -> bool {
    if ctx.caller.uid == 0 && !ctx.harness.active {
        return true;
    }
    let trusted = ctx.config.main.str("trusted_users");
    trusted
        .split(':')
        .map(str::trim)
        .any(|u| !u.is_empty() && u == ctx.caller.login)
}

/// The envelope sender of a command-line message (or of `-bt`): the `-f`
/// address when a trusted caller gave one, else the caller's own.
pub fn envelope_sender(ctx: &Ctx) -> String {
    match &ctx.inv.sender {
        Some(s) if caller_is_trusted(ctx) => {
            let s = s.trim_start_matches('<').trim_end_matches('>');
            if s.is_empty() {
                String::new()
            } else {
                ctx.qualify_recipient(s)
            }
        }
        _ => format!("{}@{}", ctx.caller.login, ctx.qualify_domain),
    }
}

/// Spawn a detached process that delivers `id` (Exim's background delivery).
pub fn spawn_background_delivery(ctx: &Ctx, id: &str) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg0(ctx.inv.prog.clone());
    if let Some(c) = &ctx.inv.config {
        cmd.arg("-C").arg(c);
    }
    for (k, v) in &ctx.inv.defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    cmd.arg("-Mc").arg(id);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A new session: the delivery outlives the submitting command.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().context("cannot start delivery process")?;
    Ok(())
}

use std::os::unix::process::CommandExt as _;

/// Run a command-line submission; returns the exit status.
pub fn run(ctx: Arc<Ctx>) -> Result<i32> {
    let inv = &ctx.inv;
    let raw = read_message(&mut std::io::stdin().lock(), inv.dot_ends_message)
        .context("error reading message from standard input")?;
    let mut msg = Message::parse(&raw);
    let mut recipients: Vec<String> = inv
        .recipients
        .iter()
        .flat_map(|r| crate::message::extract_addresses(r))
        .map(|r| ctx.qualify_recipient(&r))
        .collect();
    if inv.extract_recipients {
        recipients.extend(
            msg.take_recipients_from_headers()
                .into_iter()
                .map(|r| ctx.qualify_recipient(&r)),
        );
    }
    if recipients.is_empty() {
        bail!("no recipients given");
    }
    let sender = envelope_sender(&ctx);
    let mut source = Source::local(&ctx, inv.received_protocol.as_deref().unwrap_or("local"));
    source.sender_set = inv.sender.is_some() && caller_is_trusted(&ctx);
    // -oMt: an untrusted caller's is ignored, as Exim does.
    if let Some(ident) = inv
        .origin
        .ident
        .as_ref()
        .filter(|_| caller_is_trusted(&ctx))
    {
        source.ident = (!ident.is_empty()).then(|| ident.clone());
    }
    let id = ctx.ids.next();
    let id_text = id.to_string();
    let loaded = receive::accept(
        &ctx,
        id,
        &source,
        &sender,
        &recipients,
        std::mem::take(&mut msg),
    )?;
    if inv.dont_deliver {
        return Ok(0);
    }
    let queue_only = inv.queue_only(ctx.config.main.bool("queue_only"));
    if inv.delivery != DeliveryMode::Interactive || queue_only {
        // Another process (or a later queue run) delivers it.
        loaded.flush_msglog(&ctx);
    }
    match inv.delivery {
        DeliveryMode::Queue => {}
        _ if queue_only => {}
        DeliveryMode::Background => spawn_background_delivery(&ctx, &id_text)?,
        DeliveryMode::Interactive => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(deliver::deliver_new(&ctx, loaded))?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_ends_message_only_when_asked() {
        let input = b"Subject: x\n\nline\n.\nafter\n";
        assert_eq!(
            read_message(&mut &input[..], true).unwrap(),
            b"Subject: x\n\nline\n"
        );
        assert_eq!(read_message(&mut &input[..], false).unwrap(), input);
        assert_eq!(
            read_message(&mut &b"a\r\n.\r\n"[..], true).unwrap(),
            b"a\r\n"
        );
    }
}
