//! VRFY and EXPN: the `acl_smtp_vrfy` / `acl_smtp_expn` ACLs (without
//! one the command is refused, as in Exim), then the address is verified
//! (VRFY) or expanded one level (EXPN) by routing it.

use super::*;
use crate::deliver::route::{route_traced, Routed};

/// The address of a VRFY/EXPN argument, without angle brackets.
fn bare(arg: &str) -> &str {
    let a = arg.trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
        .trim()
}

/// The client as Exim's `host_and_ident(TRUE)` names it.
fn client(conn: &IncomingConn, st: &State) -> String {
    match (host_ident(conn, st), &conn.ident) {
        (Some(h), Some(u)) => format!("{h} U={u}"),
        (Some(h), None) => h,
        (None, Some(u)) => format!("U={u}"),
        (None, None) => "U=unknown".into(),
    }
}

/// The command's ACL; without one the command is refused.
async fn command_acl(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    option: &str,
    address: Option<&str>,
) -> acl::AclOutcome {
    let sender = st.sender.clone();
    let env = AclEnv {
        host_ip: conn.peer.map(|p| p.ip()),
        host_name: st.host_name.as_deref(),
        sender: sender.as_deref(),
        recipient: address,
    };
    let with_address = |v: &mut Vars| {
        if let Some(a) = address {
            v.set_address(a);
        }
    };
    let o = check_acl(
        ctx,
        option,
        &mut st.vars,
        Some(&with_address),
        &env,
        &mut st.acl,
    )
    .await;
    sync_client_name(st);
    o.unwrap_or_else(|| acl::AclOutcome::with_verdict(Verdict::Deny))
}

/// VRFY: `250 <a> is deliverable`, `550 <a> <why>` (logged as `VRFY failed
/// for`), or `451 Cannot resolve <a> at this time`.
pub(super) async fn vrfy(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    arg: &str,
) {
    let raw = arg.trim();
    let a = bare(raw);
    if a.is_empty() {
        replied(ctx, sess.respond(Reply::new(501, "empty address")));
        return;
    }
    let address = if a.contains('@') {
        a.to_string()
    } else if conn.peer.is_none()
        || super::super::conn::list_match_host(
            ctx,
            "recipient_unqualified_hosts",
            conn.peer.map(|p| p.ip()),
            st.host_name.as_deref(),
            &st.vars,
        )
    {
        ctx.qualify_recipient(a)
    } else {
        replied(
            ctx,
            sess.respond(Reply::new(
                501,
                format!("{a}: recipient address must contain a domain"),
            )),
        );
        return;
    };
    let o = command_acl(ctx, conn, st, "acl_smtp_vrfy", Some(&address)).await;
    if o.verdict != Verdict::Accept {
        let what = format!("VRFY {raw}");
        refuse(ctx, conn, st, sess, &o, None, RejectWhat::Other(&what), 252);
        return;
    }
    let sender = st.sender.clone().unwrap_or_default();
    let vars = st.vars.clone();
    st.acl
        .trace
        .line(|| ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>".into());
    let (failure, defer, detailed) =
        acl::route_for_verify(ctx, &address, &sender, &vars, &mut st.acl, false).await;
    let reply = match (failure, defer) {
        (None, _) => Reply::new(250, format!("<{address}> is deliverable")),
        (Some(_), true) => Reply::new(451, format!("Cannot resolve <{address}> at this time")),
        (Some(why), false) => {
            ctx.log_text(None, &format!("VRFY failed for {raw} {}", client(conn, st)));
            let why = if detailed {
                why
            } else {
                "is not deliverable".to_string()
            };
            Reply::new(550, format!("<{address}> {why}"))
        }
    };
    replied(ctx, sess.respond(reply));
}

/// EXPN: the addresses the first router that takes the address makes of
/// it (`250-<a>` lines), `250 <a>` for an address delivered as it is, or
/// `553 <a> is undeliverable`.
pub(super) async fn expn(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    arg: &str,
) {
    let raw = arg.trim();
    let o = command_acl(ctx, conn, st, "acl_smtp_expn", None).await;
    if o.verdict != Verdict::Accept {
        let what = format!("EXPN {raw}");
        refuse(ctx, conn, st, sess, &o, None, RejectWhat::Other(&what), 550);
        return;
    }
    let sender = st.sender.clone().unwrap_or_default();
    let vars = st.vars.clone();
    let address = crate::rewrite::for_verify(ctx, bare(raw), true, &vars, true);
    let routed = route_traced(ctx, &address, &sender, &vars, true, 0, &mut st.acl.trace)
        .await
        .routed;
    let reply = match routed {
        Routed::Redirected { children, .. } if !children.is_empty() => Reply::from_lines(
            250,
            children
                .iter()
                .map(|c| format!("<{}>", ctx.qualify_recipient(c)))
                .collect::<Vec<_>>(),
        ),
        Routed::Redirected { direct, .. } if !direct.is_empty() => {
            Reply::new(250, format!("<{address}>"))
        }
        Routed::Redirected { .. } | Routed::Blackhole { .. } => {
            Reply::new(250, format!("mail to <{address}> is discarded"))
        }
        Routed::Transport { .. } => Reply::new(250, format!("<{address}>")),
        Routed::Fail { .. } => Reply::new(553, format!("{address} is undeliverable")),
        Routed::Defer { .. } => {
            Reply::new(553, format!("{address} cannot be resolved at this time"))
        }
    };
    replied(ctx, sess.respond(reply));
}
