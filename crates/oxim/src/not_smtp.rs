//! The ACL of a message that does not come over SMTP (`acl_not_smtp`: the
//! command line, `-t`), run once the message is read and its headers are
//! fixed up, before it is written to the spool; and what Exim does with
//! its verdict:
//!
//! - `accept`: the message is stored (`control = queue_only` keeps it on
//!   the queue: `no immediate delivery: queued by ACL`);
//! - `discard`: nothing is stored; the `<=` line is followed by
//!   `=> blackhole (non-SMTP ACL discarded recipients)` and `Completed`;
//! - anything else: `F=<sender> rejected by non-SMTP ACL: <why>` (main and
//!   reject logs), the sender is told by a mail (`Mail failure - rejected by
//!   local scanning code`, with a copy of the message) or, with `-oep`, on
//!   the standard error stream, and the command exits with status 1.

use anyhow::Result;
use oxim_log::{LogRecord, RejectWhat, Rejected, RejectedHeaders};

use crate::acl::{self, AclEnv, AclTrace, Verdict};
use crate::cli::ErrorMode;
use crate::ctx::Ctx;
use crate::loaded::Loaded;
use crate::message::{HeaderField, Message};
use crate::receive::{Prepared, Source};
use crate::vars::AUTHENTICATION_LOCAL;

/// What became of a message after the non-SMTP ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Store it; `queue`: an ACL asked for `control = queue_only`.
    Accept { queue: bool },
    /// Every recipient discarded: nothing is stored; the ACL's
    /// `log_message`, if any, is logged with it.
    Discarded { log: Option<String> },
    /// Refused and reported: exit with this status.
    Refused { status: i32 },
}

/// The text of the user's error and the mail that reports it.
const ACL_SUBJECT: &str = "Mail failure - rejected by local scanning code";

/// Run `acl_not_smtp` (if set) on a message that is ready to be stored.
/// Header lines the ACL adds go into `p`.
pub async fn check(ctx: &Ctx, p: &mut Prepared) -> Result<Outcome> {
    let loaded = Loaded::new(p.env.clone(), p.headers.clone(), p.msg.body.clone());
    let mut vars = crate::deliver::message_vars(ctx, &loaded);
    let recipients: Vec<&str> = p
        .env
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    vars.set("recipients", recipients.join(", "))
        .set("recipients_count", recipients.len().to_string())
        .set(AUTHENTICATION_LOCAL, "1");
    let Some(acl) = acl::named_by_option(ctx, "acl_not_smtp", &vars) else {
        return Ok(Outcome::Accept { queue: false });
    };
    let sender = p.env.sender.clone();
    let env = AclEnv {
        host_ip: None,
        host_name: None,
        sender: Some(&sender),
        recipient: None,
    };
    let mut t = AclTrace {
        not_smtp: Some("non-SMTP"),
        ..AclTrace::default()
    };
    let o = acl::eval_traced(ctx, &acl, &mut vars, &env, &mut t).await;
    let id = p.env.id.to_string();
    for l in &o.logwrites {
        ctx.log_text(Some(&id), l);
    }
    for w in &o.warnings {
        ctx.log_text(Some(&id), &format!("Warning: {w}"));
    }
    match o.verdict {
        Verdict::Accept => {
            p.remove_acl_headers(&o.removed_headers);
            p.add_acl_headers(&o.added_headers);
            let mut controls = acl::control::MessageControls::default();
            controls.absorb(&o.controls);
            if controls.freeze.is_some() {
                // Frozen on arrival (see `deliver`).
                p.env.frozen = Some(crate::time::LocalTime::now().epoch_secs());
            }
            Ok(Outcome::Accept {
                queue: controls.queue,
            })
        }
        Verdict::Discard => Ok(Outcome::Discarded {
            log: o.log_message.clone(),
        }),
        Verdict::Deny | Verdict::Defer | Verdict::Drop => {
            let log = o.log_message.clone().or(o.message.clone());
            let user = o
                .message
                .clone()
                .unwrap_or_else(|| "local configuration problem".into());
            log_rejection(ctx, p, log.as_deref());
            let status = report(ctx, p, &user).await;
            Ok(Outcome::Refused { status })
        }
    }
}

/// `F=<sender> rejected by non-SMTP ACL: <why>`; the reject log also gets
/// the envelope and the header lines.
fn log_rejection(ctx: &Ctx, p: &Prepared, why: Option<&str>) {
    let id = p.env.id.to_string();
    let to: Vec<&str> = p
        .env
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    let headers: Vec<(char, &str)> = p
        .headers
        .iter()
        .map(|h| (h.kind, h.text.as_str()))
        .collect();
    ctx.log(&LogRecord::RejectedWithHeaders {
        rejected: Rejected {
            id: Some(&id),
            host: None,
            ident: None,
            tls: None,
            sender: Some(&p.env.sender),
            auth: None,
            what: RejectWhat::Other("by non-SMTP ACL"),
            temporary: false,
            reason: Some(why.unwrap_or("")),
        },
        headers: RejectedHeaders {
            envelope_from: Some(&p.env.sender),
            envelope_to: &to,
            headers: &headers,
        },
    });
}

/// Tell the sender why the message was refused, as `-oe*` says; returns
/// the exit status.
async fn report(ctx: &Ctx, p: &Prepared, text: &str) -> i32 {
    let exit_ok = match ctx.inv.errors {
        ErrorMode::Stderr => {
            eprintln!("{}: message rejected by non-SMTP ACL: {text}", ctx.inv.prog);
            return 1;
        }
        ErrorMode::Mail => 1,
        ErrorMode::MailExitZero => 0,
    };
    let id = p.env.id.to_string();
    if p.env.sender.is_empty() {
        ctx.log_text(
            Some(&id),
            &format!(
                "Error while reading message with no usable sender address: \
                 rejected by non-SMTP ACL: {text}"
            ),
        );
        return 1;
    }
    match mail_sender(ctx, p, text).await {
        Ok(()) => exit_ok,
        Err(e) => {
            ctx.log_text(
                Some(&id),
                &format!("could not send the error message: {e:#}"),
            );
            1
        }
    }
}

/// The error mail: from the exim user to the sender, with the message's
/// header lines and body (up to `bounce_return_size_limit`, or only the
/// headers without `bounce_return_body`); it is received like any other
/// local message (its own `<=` line, `R=` naming the refused message, the
/// non-SMTP ACL) and delivered as this command delivers.
async fn mail_sender(ctx: &Ctx, p: &Prepared, text: &str) -> Result<()> {
    let mut msg = Message::default();
    let reply_to = ctx.config.main.str("errors_reply_to");
    if !reply_to.is_empty() {
        msg.headers
            .push(HeaderField::new(format!("Reply-To: {reply_to}")));
    }
    msg.headers
        .push(HeaderField::new("Auto-Submitted: auto-replied"));
    msg.headers.push(HeaderField::new(format!(
        "From: Mail Delivery System <Mailer-Daemon@{}>",
        ctx.qualify_domain
    )));
    msg.headers
        .push(HeaderField::new(format!("To: {}", p.env.sender)));
    if let Some(mid) = p.msg.header("message-id") {
        let v = mid.value();
        msg.headers
            .push(HeaderField::new(format!("References: {}", v.trim())));
    }
    msg.headers
        .push(HeaderField::new(format!("Subject: {ACL_SUBJECT}")));
    let mut body = format!(
        "A message that you sent was rejected by the local scanning code that\n\
         checks incoming messages on this system. The following error was given:\n\n  {text}\n"
    )
    .into_bytes();
    let mut limit_body = 0;
    // bounce_return_message is always on (oxim refuses to turn it off).
    let original = &p.msg.body;
    if ctx.settings.bounce_return_body {
        body.extend_from_slice(
            b"\n------ This is a copy of your message, including all the headers.",
        );
        let max = ctx.expand_int("message_size_limit", &ctx.base_vars(), 50 << 20);
        let mut limit = ctx.settings.bounce_return_size_limit;
        if limit == 0 || (max > 0 && limit > max) {
            limit = max;
        }
        if limit > 0 && limit < p.msg.size() as u64 {
            let shown = if limit.is_multiple_of(1024) {
                format!("{}K", limit / 1024)
            } else {
                limit.to_string()
            };
            body.extend_from_slice(
                format!("\n------ No more than {shown} characters of the body are included.\n\n")
                    .as_bytes(),
            );
        } else {
            body.extend_from_slice(b" ------\n\n");
        }
        limit_body = usize::try_from(limit).unwrap_or(usize::MAX);
    } else {
        body.extend_from_slice(
            b"\n------ This is a copy of the headers that were received before the error\n       was detected.\n\n",
        );
    }
    for h in &p.headers {
        body.extend_from_slice(h.text.as_bytes());
        if !h.text.ends_with('\n') {
            body.push(b'\n');
        }
    }
    body.push(b'\n');
    if ctx.settings.bounce_return_body {
        let n = if limit_body == 0 {
            original.len()
        } else {
            original.len().min(limit_body)
        };
        body.extend_from_slice(&original[..n]);
    }
    msg.body = body;
    let mut source = Source::local(ctx, "local");
    source.reference = Some(p.env.id.to_string());
    // Made by a process of the exim user, as Exim's (its `-t` child).
    let me = crate::ctx::Caller::current();
    source.ident = Some(me.login.clone());
    source.user = Some(me);
    let id = ctx.ids.next();
    let mut prepared = crate::receive::prepare(
        ctx,
        id,
        &source,
        "",
        std::slice::from_ref(&p.env.sender),
        msg,
    );
    let queue = match Box::pin(check(ctx, &mut prepared)).await? {
        Outcome::Accept { queue } => queue,
        Outcome::Discarded { log } => {
            log_discarded(ctx, &source, prepared, log.as_deref());
            return Ok(());
        }
        // A message to <> is never answered again.
        Outcome::Refused { .. } => return Ok(()),
    };
    let loaded = crate::receive::store(ctx, &source, prepared).await?;
    deliver(ctx, loaded, queue).await
}

/// Deliver a message accepted here as the command asked (`-odi` now,
/// `-odb` by a background process, `-odq` not at all); `queue`: an ACL
/// kept it on the queue.
pub async fn deliver(ctx: &Ctx, loaded: Loaded, queue: bool) -> Result<()> {
    use crate::cli::DeliveryMode;
    let id = loaded.env.id.to_string();
    if loaded.env.frozen.is_some() {
        // `control = freeze` in the non-SMTP ACL.
        ctx.log_text(Some(&id), "frozen by ACL");
        loaded.flush_msglog(&ctx.spool);
        return Ok(());
    }
    if queue {
        ctx.log_queued_by_acl(&id);
    }
    let queue_only = queue
        || ctx
            .inv
            .queue_only(ctx.settings.queue_only, ctx.settings.queue_only_override);
    if ctx.inv.delivery != DeliveryMode::Interactive || queue_only {
        loaded.flush_msglog(&ctx.spool);
    }
    match ctx.inv.delivery {
        _ if queue_only => {}
        DeliveryMode::Queue => {}
        DeliveryMode::Background => crate::ctx::spawn_background_delivery(ctx, &id)?,
        DeliveryMode::Interactive => {
            crate::deliver::deliver_new(ctx, loaded).await?;
        }
    }
    Ok(())
}

/// A message whose recipients the ACL discarded: its `<=` line, then
/// Exim's `=> blackhole` and `Completed`; nothing is stored.
pub fn log_discarded(ctx: &Ctx, source: &Source, p: Prepared, why: Option<&str>) {
    let loaded = crate::receive::finish(ctx, source, p);
    let id = loaded.env.id.to_string();
    let why = why.map(|w| format!(": {w}")).unwrap_or_default();
    ctx.log_text(
        Some(&id),
        &format!("=> blackhole (non-SMTP ACL discarded recipients){why}"),
    );
    ctx.log(&LogRecord::Completed {
        id: &id,
        queue_time: None,
    });
}
