//! What a refusal says after a failed sender verification: the log line
//! `sender verify fail|defer for <address>`, and the lines sent before the
//! refusal (with a callout's texts: Exim's wording for a refused
//! `MAIL FROM:<>` and a refused postmaster).

use super::*;

/// The first refusal after a failed sender verification reports it: a
/// `sender verify fail|defer for <address>: <why>` line in the main and
/// reject logs, and for a failure the lines `Verification failed for
/// <address>` and the reason, sent before the refusal itself.
pub(super) fn sender_verify_details(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    o: &acl::AclOutcome,
) -> Vec<String> {
    let Some(f) = st.acl.sender_verify_failed.as_mut() else {
        return Vec::new();
    };
    if f.told {
        return Vec::new();
    }
    f.told = true;
    let f = f.clone();
    let who = host_ident(conn, st).unwrap_or_else(|| format!("U={}", ctx.caller.login));
    let why = f
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let kind = if f.defer { "defer" } else { "fail" };
    ctx.log(&LogRecord::Text {
        id: None,
        text: &format!("{who} sender verify {kind} for <{}>{why}", f.address),
        dest: oxim_log::Dest {
            main: true,
            reject: true,
            panic: false,
        },
    });
    match (&f.user_message, o.verdict) {
        (Some(m), Verdict::Deny | Verdict::Drop) => {
            let a = &f.address;
            let (head, tail): (String, &[&str]) = if f.pmfail {
                (
                    format!("Postmaster verification failed while checking <{a}>"),
                    &[
                        "Several RFCs state that you are required to have a postmaster",
                        "mailbox for each mail domain. This host does not accept mail",
                        "from domains whose servers reject the postmaster address.",
                    ],
                )
            } else if f.nsfail {
                (
                    format!("Callback setup failed while verifying <{a}>"),
                    &[
                        "The initial connection, or a HELO or MAIL FROM:<> command was",
                        "rejected. Refusing MAIL FROM:<> does not help fight spam, disregards",
                        "RFC requirements, and stops you from receiving standard bounce",
                        "messages. This host does not accept mail from domains whose servers",
                        "refuse bounces.",
                    ],
                )
            } else {
                (format!("Verification failed for <{a}>"), &[])
            };
            let mut lines = vec![head];
            lines.extend(m.lines().map(str::to_string));
            lines.extend(tail.iter().map(|l| l.to_string()));
            lines
        }
        _ => Vec::new(),
    }
}
