//! Replies built from the session policy: EHLO, the HELO greeting, HELP.

use super::*;

/// Build an EHLO reply in Exim's layout and order: greeting line
/// `hostname greeting`, then SIZE, 8BITMIME, DSN, ETRN, VRFY, EXPN,
/// PIPELINING, PIPECONNECT, AUTH, CHUNKING, STARTTLS, PRDR, SMTPUTF8, HELP.
///
/// `greeting` is usually [`hello_text`]`(..)`, e.g. `Hello abcd [127.0.0.1]`.
pub fn ehlo_reply(hostname: &str, greeting: &str, ext: &Extensions) -> Reply {
    let mut lines = vec![format!("{hostname} {greeting}")];
    match ext.size {
        Some(0) => lines.push("SIZE".into()),
        Some(n) => lines.push(format!("SIZE {n}")),
        None => {}
    }
    let flags = [
        (ext.eight_bit_mime, "8BITMIME"),
        (ext.dsn, "DSN"),
        (ext.etrn, "ETRN"),
        (ext.vrfy, "VRFY"),
        (ext.expn, "EXPN"),
        (ext.pipelining, "PIPELINING"),
        (ext.pipelining && ext.pipe_connect, "PIPECONNECT"),
    ];
    lines.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_owned()));
    if !ext.auth.is_empty() {
        let mut l = String::from("AUTH");
        for m in &ext.auth {
            l.push(' ');
            l.push_str(&m.to_ascii_uppercase());
        }
        lines.push(l);
    }
    let flags = [
        (ext.chunking, "CHUNKING"),
        (ext.starttls, "STARTTLS"),
        (ext.prdr, "PRDR"),
        (ext.smtputf8, "SMTPUTF8"),
        (ext.tx_token, crate::TX_TOKEN_KEYWORD),
        (ext.help, "HELP"),
    ];
    lines.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_owned()));
    Reply::from_lines(250, lines)
}

/// Exim's greeting text for HELO/EHLO replies:
/// `Hello [ident at ]name[ [ip]]`, where `name` is the looked-up host name if
/// known, else the HELO argument.
pub fn hello_text(
    helo_name: &str,
    host_name: Option<&str>,
    ident: Option<&str>,
    ip: Option<&str>,
) -> String {
    let mut s = String::from("Hello ");
    if let Some(i) = ident {
        s.push_str(i);
        s.push_str(" at ");
    }
    s.push_str(host_name.unwrap_or(helo_name));
    if let Some(ip) = ip {
        s.push_str(" [");
        s.push_str(ip);
        s.push(']');
    }
    s
}

/// Exim's HELP reply. `starttls` adds STARTTLS; `acl_commands` lists any of
/// `ETRN`, `EXPN`, `VRFY` that have ACLs.
pub fn help_reply(starttls: bool, acl_commands: &[&str]) -> Reply {
    let mut l = String::from(" AUTH");
    if starttls {
        l.push_str(" STARTTLS");
    }
    l.push_str(" HELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP");
    for c in acl_commands {
        l.push(' ');
        l.push_str(c);
    }
    // Exim writes "214" immediately followed by the list (which starts with a
    // space), so the line is "214 AUTH ...".
    Reply::from_lines(214, ["Commands supported:".to_owned(), l[1..].to_owned()])
}
