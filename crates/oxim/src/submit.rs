//! Command-line submission: `exim [options] rcpt...` with the message on stdin.

use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};

use crate::ctx::{caller_is_trusted, envelope_sender, Ctx};
use crate::message::Message;
use crate::not_smtp;
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
    source.sender_set = crate::ctx::command_line_sender_allowed(&ctx);
    // A message from a local user (no -f from a trusted caller): as in
    // Exim, $authenticated_sender is login@qualify_domain and
    // $authenticated_id the login (an smtp transport then sends AUTH= for
    // it once authenticated to a smarthost).
    if !source.sender_set {
        source.auth_sender = Some(format!("{}@{}", ctx.caller.login, ctx.qualify_domain));
        source.local_auth_id = Some(ctx.caller.login.clone());
    }
    // -oMt: an untrusted caller's is ignored, as Exim does.
    if let Some(ident) = inv
        .origin
        .ident
        .as_ref()
        .filter(|_| caller_is_trusted(&ctx))
    {
        source.ident = (!ident.is_empty()).then(|| ident.clone());
    }
    if caller_is_trusted(&ctx) {
        apply_origin(&mut source, &inv.origin);
    }
    if let Some(r) = &inv.message_reference {
        if !caller_is_trusted(&ctx) {
            bail!("-oMm must be called by a trusted user/config");
        }
        source.reference = Some(r.clone());
    }
    let id = ctx.ids.next();
    let id_text = id.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut prepared = receive::prepare(
        &ctx,
        id,
        &source,
        &sender,
        &recipients,
        std::mem::take(&mut msg),
    );
    let queue = match rt.block_on(not_smtp::check(&ctx, &mut prepared))? {
        not_smtp::Outcome::Accept { queue } => queue,
        not_smtp::Outcome::Discarded { log } => {
            // As Exim, a command whose message was not kept fails.
            not_smtp::log_discarded(&ctx, &source, prepared, log.as_deref());
            return Ok(1);
        }
        not_smtp::Outcome::Refused { status } => return Ok(status),
    };
    let loaded = rt
        .block_on(receive::store(&ctx, &source, prepared))
        .with_context(|| format!("spool write failed for {id_text}"))?;
    rt.block_on(not_smtp::deliver(&ctx, loaded, queue))?;
    Ok(0)
}

/// What a trusted caller asserted with `-oMa`, `-oMi`, `-oMs`, `-oMaa`,
/// `-oMai` and `-oMas` about a command-line message (`-oMt` and `-oMr` are
/// applied by the caller).
fn apply_origin(source: &mut Source, origin: &crate::cli::Origin) {
    if let Some(peer) = origin.host_socket() {
        source.peer = Some(peer);
        source.host_name = origin.host_name.clone();
    }
    if let Some(interface) = origin.interface_socket() {
        source.interface = Some(interface);
    }
    if let Some(id) = &origin.authenticated_id {
        source.local_auth_id = Some(id.clone());
    }
    if let Some(sender) = &origin.authenticated_sender {
        source.auth_sender = Some(sender.clone());
    }
    if let Some(name) = &origin.authenticated {
        source.auth = Some((name.clone(), origin.authenticated_id.clone()));
    }
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
