//! SMTP AUTH as a client (Exim's `hosts_require_auth`, `hosts_try_auth`):
//! after EHLO, each client authenticator whose public name the server
//! offers is tried in configuration order until one succeeds; `plaintext`
//! sends its `client_send` items, `cram_md5` answers the challenge with
//! `client_name` and an HMAC-MD5 keyed with `client_secret`.

use oxim_smtp::sasl;
use oxim_smtp::{EhloCapabilities, Reply};

use crate::settings::{AuthMech, AuthSpec};
use crate::vars::Vars;

use super::conn::{classify, reply_text, OutgoingConn};
use super::{ConvError, Host, SmtpError};
use crate::errno::Errno;

/// What the transport asks of one host.
#[derive(Debug, Clone)]
pub struct ClientAuthParams {
    /// `hosts_require_auth` matched: no delivery without authenticating.
    pub require: bool,
    /// `hosts_try_auth` (or `hosts_require_auth`) matched.
    pub try_auth: bool,
    /// The client authenticators, in configuration order.
    pub authenticators: Vec<AuthSpec>,
    /// Variables for `client_send`, `client_name`, `client_secret`,
    /// `client_condition`, `client_set_id`.
    pub vars: Vars,
}

/// After the exchange: `name[:id]` for ` A=` on `=>` lines (None when not
/// authenticated) or the error that ends the conversation, and the log
/// lines the attempts produced either way.
#[derive(Debug)]
pub(super) struct AuthDone {
    pub(super) result: Result<Option<String>, ConvError>,
    pub(super) notes: Vec<String>,
}

/// How one authenticator's attempt ended (Exim's client return codes).
enum Attempt {
    Ok,
    /// The server answered; `Some` for a 5xx (try the next authenticator),
    /// `None` when the connection cannot go on.
    Failed(Reply),
    Cancelled(String),
    Error(String),
}

/// Authenticate on an open connection when the host wants it. An error
/// ends the conversation (all recipients deferred).
pub(super) async fn authenticate(
    conn: &mut OutgoingConn,
    caps: &EhloCapabilities,
    host: &Host,
    p: &ClientAuthParams,
) -> AuthDone {
    let mut notes = Vec::new();
    // What the authenticators' expansions may look at: the host (Debian's
    // passwd.client lookup keys on $host) and whether TLS is up.
    let mut p = p.clone();
    p.vars
        .set("host", host.name.clone())
        .set("host_address", host.ip.to_string())
        .set("host_port", host.port.to_string());
    if let Some(tls) = &conn.tls {
        p.vars
            .set("tls_out_cipher", tls.cipher.clone())
            .set("tls_out_ver", tls.version.clone())
            .set("tls_out_cipher_std", tls.cipher_std.clone());
    }
    let result = run(conn, caps, host, &p, &mut notes).await;
    AuthDone { result, notes }
}

async fn run(
    conn: &mut OutgoingConn,
    caps: &EhloCapabilities,
    host: &Host,
    p: &ClientAuthParams,
    notes: &mut Vec<String>,
) -> Result<Option<String>, ConvError> {
    let mut fail_reason = "server did not advertise AUTH support";
    if !caps.auth.is_empty() && (p.require || p.try_auth) {
        fail_reason = "no common mechanisms were found";
        for a in &p.authenticators {
            if !a.is_client() || !caps.has_auth(&a.public_name) {
                continue;
            }
            if let Some(c) = &a.client_condition {
                let pass = oxim_conf::expand(c, &p.vars).is_ok_and(|v| {
                    let v = v.trim();
                    !(v.is_empty()
                        || v == "0"
                        || v.eq_ignore_ascii_case("no")
                        || v.eq_ignore_ascii_case("false"))
                });
                if !pass {
                    continue;
                }
            }
            fail_reason = "authentication attempt(s) failed";
            let mut vars = p.vars.clone();
            match attempt(conn, a, &mut vars).await? {
                Attempt::Ok => {
                    let id = a
                        .client_set_id
                        .as_ref()
                        .and_then(|s| oxim_conf::expand(s, &vars).ok());
                    return Ok(Some(match id {
                        Some(id) => format!("{}:{id}", a.name),
                        None => a.name.clone(),
                    }));
                }
                Attempt::Failed(r) if r.code / 100 == 5 => notes.push(format!(
                    "{} authenticator failed H={} [{}] {}",
                    a.name,
                    host.name,
                    host.ip,
                    reply_text(&r)
                )),
                Attempt::Failed(r) => {
                    return Err(classify(
                        &r,
                        Errno::SmtpFormat,
                        &format!("AUTH {}", a.public_name),
                    ))
                }
                Attempt::Cancelled(msg) => {
                    if !msg.is_empty() {
                        notes.push(format!(
                            "{} authenticator cancelled authentication H={} [{}] {msg}",
                            a.name, host.name, host.ip
                        ));
                    }
                }
                Attempt::Error(msg) => {
                    return Err(ConvError::Temp(SmtpError {
                        errno: Errno::AuthProb,
                        errno_text: None,
                        message: Some(msg),
                        with_host: false,
                    }))
                }
            }
        }
    }
    if p.require {
        return Err(ConvError::Temp(SmtpError {
            errno: Errno::AuthFail,
            errno_text: None,
            message: Some(format!("authentication required but {fail_reason}")),
            with_host: false,
        }));
    }
    Ok(None)
}

/// One authenticator's exchange.
async fn attempt(
    conn: &mut OutgoingConn,
    a: &AuthSpec,
    vars: &mut Vars,
) -> Result<Attempt, ConvError> {
    let after = format!("AUTH {}", a.public_name);
    conn.smtp.note_auth_attempt();
    match &a.mech {
        AuthMech::Plaintext {
            client_send,
            client_ignore_invalid_base64,
            ..
        } => {
            let items = oxim_conf::lists::list_items(client_send.as_deref().unwrap_or(""));
            for (k, item) in items.iter().enumerate() {
                let first = k == 0;
                let last = k + 1 == items.len();
                let text = match oxim_conf::expand(item, &*vars) {
                    Ok(v) => v,
                    Err(e) => {
                        if !first {
                            cancel(conn, &after).await?;
                        }
                        if e.is_forced_fail() {
                            return Ok(Attempt::Cancelled(String::new()));
                        }
                        return Ok(Attempt::Error(format!(
                            "expansion of \"{item}\" failed in {} authenticator: {e}",
                            a.name
                        )));
                    }
                };
                let data = sasl::unescape_caret(&text);
                let line = if first {
                    if data.is_empty() {
                        after.clone()
                    } else {
                        format!("{after} {}", sasl::b64_encode(&data))
                    }
                } else {
                    sasl::b64_encode(&data)
                };
                let r = conn.exchange(&line, &after).await?;
                if r.code / 100 == 2 {
                    return Ok(Attempt::Ok);
                }
                if r.code / 100 != 3 {
                    return Ok(Attempt::Failed(r));
                }
                if last {
                    cancel(conn, &after).await?;
                    return Ok(Attempt::Error(format!(
                        "Too few items in client_send in {} authenticator",
                        a.name
                    )));
                }
                let challenge = r.text.first().map(String::as_str).unwrap_or("");
                let decoded = match sasl::b64_decode(challenge) {
                    Some(d) => String::from_utf8_lossy(&d).into_owned(),
                    None if *client_ignore_invalid_base64 => String::new(),
                    None => {
                        cancel(conn, &after).await?;
                        return Ok(Attempt::Cancelled(format!(
                            "Invalid base64 string in server response \"{}\"",
                            reply_text(&r)
                        )));
                    }
                };
                vars.set(&format!("auth{}", k + 1), decoded);
            }
            // An empty client_send: nothing was sent.
            Ok(Attempt::Cancelled(String::new()))
        }
        AuthMech::CramMd5 {
            client_name,
            client_secret,
            ..
        } => {
            let expand =
                |opt: &Option<String>| oxim_conf::expand(opt.as_deref().unwrap_or(""), &*vars);
            let (secret, name) = match (expand(client_secret), expand(client_name)) {
                (Ok(s), Ok(n)) => (s, n),
                (Err(e), _) | (_, Err(e)) if e.is_forced_fail() => {
                    return Ok(Attempt::Cancelled(String::new()))
                }
                (s, n) => {
                    let (opt, e) = match (s, n) {
                        (Err(e), _) => (client_secret, e),
                        (_, Err(e)) => (client_name, e),
                        _ => unreachable!("one of them failed"),
                    };
                    return Ok(Attempt::Error(format!(
                        "expansion of \"{}\" failed in {} authenticator: {e}",
                        opt.as_deref().unwrap_or(""),
                        a.name
                    )));
                }
            };
            let r = conn.exchange(&after, &after).await?;
            if r.code / 100 != 3 {
                return Ok(Attempt::Failed(r));
            }
            let text = r.text.first().map(String::as_str).unwrap_or("");
            let Some(challenge) = sasl::b64_decode(text) else {
                return Ok(Attempt::Error(format!(
                    "bad base 64 string in challenge: {text}"
                )));
            };
            let digest = sasl::cram_md5_digest(secret.as_bytes(), &challenge);
            let answer = format!("{name} {}", sasl::hex(&digest));
            let r = conn
                .exchange(&sasl::b64_encode(answer.as_bytes()), &after)
                .await?;
            if r.code / 100 == 2 {
                Ok(Attempt::Ok)
            } else {
                Ok(Attempt::Failed(r))
            }
        }
    }
}

/// `*`: abandon the exchange (the server's reply is read and dropped).
async fn cancel(conn: &mut OutgoingConn, after: &str) -> Result<(), ConvError> {
    conn.exchange("*", after).await.map(|_| ())
}
