//! PRDR (per-recipient data responses): when the client asked for it in
//! MAIL, the message has more than one recipient and `acl_smtp_data_prdr`
//! is set, the end of the data is answered with `353`, then one reply per
//! recipient (in RCPT order) from that ACL run for the recipient, then the
//! final reply. Recipients the ACL does not accept are dropped from the
//! message; the DATA ACL then runs for those left.

use super::*;

/// What the per-recipient round decided.
pub(super) struct PrdrRound {
    /// The recipients that stay on the message.
    pub accepted: Vec<String>,
    /// The final answer to the data, given if the DATA ACL accepts too
    /// (or at once when no recipient is left).
    pub final_reply: Reply,
}

/// Exim's result codes, whose bitwise sums decide the final text (so that,
/// as in Exim, two temporary refusals still end in "accepted for some").
fn code(v: Verdict) -> u32 {
    match v {
        Verdict::Accept => 0,
        Verdict::Defer => 1,
        Verdict::Deny => 2,
        Verdict::Discard => 7,
        Verdict::Drop => 15,
    }
}

/// Run the PRDR round if it applies (else `None`: the data is answered
/// as usual). `with_message` sets the message's variables for the ACL.
#[allow(clippy::too_many_arguments)]
pub(super) async fn round(
    ctx: &Ctx,
    sess: &mut ServerSession,
    st: &mut State,
    host_ip: Option<std::net::IpAddr>,
    sender: &str,
    with_message: &(dyn Fn(&mut Vars) + Sync),
    recipients: &[String],
    id: &str,
) -> Option<PrdrRound> {
    if !sess.prdr_requested() || recipients.len() < 2 {
        return None;
    }
    acl_for(ctx, "acl_smtp_data_prdr", &st.vars)?;
    replied(
        ctx,
        sess.prdr_reply(Reply::new(353, "PRDR content analysis beginning")),
    );
    let (mut all_pass, mut all_fail) = (0u32, code(Verdict::Deny));
    let mut accepted = Vec::new();
    for rcpt in recipients {
        let host_name = st.host_name.clone();
        let env = AclEnv {
            host_ip,
            host_name: host_name.as_deref(),
            sender: Some(sender),
            recipient: Some(rcpt),
        };
        let with_recipient = |v: &mut Vars| {
            with_message(v);
            v.set_address(rcpt);
        };
        let o = check_acl(
            ctx,
            "acl_smtp_data_prdr",
            &mut st.vars,
            Some(&with_recipient),
            &env,
            &mut st.acl,
        )
        .await
        .unwrap_or_else(|| acl::AclOutcome::with_verdict(Verdict::Accept));
        sync_client_name(st);
        all_pass |= code(o.verdict);
        all_fail &= code(o.verdict);
        let (status, what) = match o.verdict {
            Verdict::Accept | Verdict::Discard => (250, "acceptance"),
            Verdict::Defer => (450, "temporary refusal"),
            Verdict::Deny | Verdict::Drop => (550, "refusal"),
        };
        let default_text = format!("PRDR R=<{rcpt}> {what}");
        let text = o.message.clone().unwrap_or_else(|| default_text.clone());
        replied(ctx, sess.prdr_reply(Reply::new(status, text)));
        let logged = match o.log_message.as_ref().or(o.message.as_ref()) {
            Some(m) => format!("PRDR {rcpt} {m}"),
            None => default_text,
        };
        ctx.log_text(Some(id), &logged);
        if o.verdict == Verdict::Accept {
            accepted.push(rcpt.clone());
        }
    }
    let final_reply = if all_fail == code(Verdict::Deny) {
        Reply::new(550, format!("id={id} message rejected for all recipients"))
    } else if all_pass == 0 {
        Reply::new(250, format!("id={id} message accepted"))
    } else {
        Reply::new(250, format!("id={id} message accepted for some recipients"))
    };
    Some(PrdrRound {
        accepted,
        final_reply,
    })
}
