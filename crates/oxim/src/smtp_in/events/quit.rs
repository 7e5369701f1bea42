//! QUIT: the `acl_smtp_quit` ACL.

use super::*;

/// `acl_smtp_quit`: run for its side effects (`logwrite`, ACL variables);
/// it cannot refuse QUIT. Its `message`, if any, is the text of the 221.
/// A statement that refuses is an error, logged as Exim does (main and
/// panic logs).
pub(super) async fn quit_acl(ctx: &Ctx, conn: &IncomingConn, st: &mut State) -> Option<String> {
    let env = AclEnv {
        host_ip: conn.peer.map(|p| p.ip()),
        host_name: st.host_name.as_deref(),
        sender: None,
        recipient: None,
    };
    let o = check_acl(ctx, "acl_smtp_quit", &mut st.vars, None, &env, &mut st.acl).await?;
    let error = match (o.verdict, o.decided_by) {
        (Verdict::Accept, _) => None,
        // A statement that refused.
        (_, Some(verb)) => Some(format!(
            "QUIT or not-QUIT toplevel ACL may not fail ('{}' verb used incorrectly)",
            verb.name()
        )),
        // A condition that could not be tested.
        (Verdict::Defer, None) => o.log_message.clone(),
        _ => None,
    };
    if let Some(e) = error {
        ctx.log(&LogRecord::Text {
            id: None,
            text: &format!("ACL for QUIT returned ERROR: {e}"),
            dest: oxim_log::Dest {
                main: true,
                reject: false,
                panic: true,
            },
        });
    }
    o.message
}
