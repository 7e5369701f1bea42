//! Bounce messages (delivery status notifications) for permanent failures.
//!
//! Laid out as Exim's plain-text bounce: an explanation, each failed address
//! with its reason, then a copy of the original message. The bounce has a
//! null envelope sender, so it can never itself be bounced back and forth.

use anyhow::Result;
use oxim_spool::MessageId;

use crate::ctx::Ctx;
use crate::deliver::Loaded;
use crate::message::{HeaderField, Message};
use crate::receive::{self, Source};

/// Largest part of the original body returned in a bounce.
const RETURN_SIZE_LIMIT: usize = 100 * 1024;

/// One failed address and why.
#[derive(Debug, Clone)]
pub struct FailedAddress {
    pub address: String,
    pub reason: String,
}

/// Build the bounce for `original` and put it on the spool. Returns the new
/// message, ready for delivery.
pub fn generate(ctx: &Ctx, original: &Loaded, failed: &[FailedAddress]) -> Result<Loaded> {
    let sender = &original.env.sender;
    let orig_id = original.env.id.to_string();
    let mut msg = Message::default();
    let rcpts: Vec<&str> = failed.iter().map(|f| f.address.as_str()).collect();
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
    msg.headers.push(HeaderField::new(format!("To: {sender}")));
    if let Some(mid) = original.headers.iter().find(|h| {
        h.name()
            .is_some_and(|n| n.eq_ignore_ascii_case("message-id"))
    }) {
        let v = mid.text.split_once(':').map_or("", |(_, v)| v).trim();
        msg.headers
            .push(HeaderField::new(format!("References: {v}")));
    }
    msg.headers.push(HeaderField::new(
        "Subject: Mail delivery failed: returning message to sender",
    ));
    let mut body = String::new();
    body.push_str("This message was created automatically by mail delivery software.\n\n");
    body.push_str("A message that you sent could not be delivered to one or more of its\n");
    body.push_str("recipients. This is a permanent error. The following address(es) failed:\n\n");
    for f in failed {
        body.push_str("  ");
        body.push_str(&f.address);
        body.push('\n');
        for line in f.reason.lines() {
            body.push_str("    ");
            body.push_str(line);
            body.push('\n');
        }
    }
    body.push_str("\n------ This is a copy of the message, including all the headers. ------\n\n");
    let mut bytes = body.into_bytes();
    for h in original.headers.iter().filter(|h| h.is_live()) {
        bytes.extend_from_slice(h.text.as_bytes());
    }
    bytes.push(b'\n');
    if original.body.len() > RETURN_SIZE_LIMIT {
        bytes.extend_from_slice(&original.body[..RETURN_SIZE_LIMIT]);
        bytes.extend_from_slice(
            format!(
                "\n------ The body of the message is {} characters long; only the first\n\
                 ------ {RETURN_SIZE_LIMIT} or so are included here.\n",
                original.body.len()
            )
            .as_bytes(),
        );
    } else {
        bytes.extend_from_slice(&original.body);
    }
    msg.body = bytes;

    let id: MessageId = ctx.ids.next();
    let mut source = Source::local(ctx, "local");
    source.reference = Some(orig_id);
    receive::accept(ctx, id, &source, "", std::slice::from_ref(sender), msg)
}
