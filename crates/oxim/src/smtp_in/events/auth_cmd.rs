//! SMTP AUTH in the session: the AUTH command (its ACL, then the
//! authenticator), `AUTH=` on MAIL with `acl_smtp_mailauth`, and the log
//! line of a syntax or protocol error.

use super::*;

/// `AUTH=` on MAIL: decoded, then judged by `acl_smtp_mailauth` when it is
/// set (an empty one denies), else by whether the client authenticated.
/// False when the command was refused (bad xtext, an ACL that deferred).
pub(super) async fn mail_auth_param(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    value: &str,
) -> bool {
    let Some(decoded) = super::super::auth::decode_mail_param(value) else {
        let line = sess.last_command().to_string();
        log_synprot(ctx, conn, st, true, &line, "invalid data for AUTH");
        replied(ctx, sess.reject(Reply::new(501, "invalid data for AUTH")));
        return false;
    };
    let (accepted, why) = if ctx.config.main.is_set("acl_smtp_mailauth") {
        st.vars.set("authenticated_sender", decoded.clone());
        let env = AclEnv {
            host_ip: conn.peer.map(|p| p.ip()),
            host_name: st.host_name.as_deref(),
            sender: None,
            recipient: None,
        };
        let o = check_acl(
            ctx,
            "acl_smtp_mailauth",
            &mut st.vars,
            None,
            &env,
            &mut st.acl,
        )
        .await;
        sync_client_name(st);
        match o {
            // An empty ACL is an implicit deny.
            None => (false, "rejected by ACL"),
            Some(o) if o.verdict == Verdict::Accept => (true, "rejected by ACL"),
            Some(o) if matches!(o.verdict, Verdict::Deny | Verdict::Discard) => {
                (false, "rejected by ACL")
            }
            Some(o) => {
                st.vars.set("authenticated_sender", "");
                let what = format!("MAIL {}", sess.last_command());
                refuse(ctx, conn, st, sess, &o, None, RejectWhat::Other(&what), 451);
                return false;
            }
        }
    } else {
        (st.auth.done.is_some(), "client not authenticated")
    };
    super::super::auth::mail_param(ctx, conn, st, value, decoded, accepted, why);
    true
}

/// Exim's log line for a syntax or protocol error, with
/// `+smtp_syntax_error` / `+smtp_protocol_error`.
pub(super) fn log_synprot(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &State,
    syntax: bool,
    line: &str,
    errmess: &str,
) {
    let (selector, what) = if syntax {
        (oxim_log::Selector::SmtpSyntaxError, "syntax")
    } else {
        (oxim_log::Selector::SmtpProtocolError, "protocol")
    };
    if ctx.selector.has(selector) {
        ctx.log_text(
            None,
            &format!(
                "SMTP {what} error in \"{}\" {} {errmess}",
                oxim_log::printing(line, false),
                super::super::conn::host_and_ident(ctx, conn, st)
            ),
        );
    }
}

/// AUTH: the AUTH ACL, then the exchange with the authenticator the
/// client named.
pub(super) async fn auth_command(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    mechanism: &str,
    initial: Option<&str>,
) {
    let argument = match initial {
        Some(i) => format!("{mechanism} {i}"),
        None => mechanism.to_string(),
    };
    st.vars.set("smtp_command", format!("AUTH {argument}"));
    st.vars.set("smtp_command_argument", argument.clone());
    let env = AclEnv {
        host_ip: conn.peer.map(|p| p.ip()),
        host_name: st.host_name.as_deref(),
        sender: None,
        recipient: None,
    };
    let o = check_acl(ctx, "acl_smtp_auth", &mut st.vars, None, &env, &mut st.acl).await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept) {
        let what = format!("AUTH {argument}");
        refuse(ctx, conn, st, sess, &o, None, RejectWhat::Other(&what), 503);
        return;
    }
    super::super::auth::command(ctx, conn, sess, st, mechanism, initial);
}
