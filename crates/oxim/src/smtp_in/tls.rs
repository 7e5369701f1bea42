//! TLS for SMTP sessions: STARTTLS and TLS on connect, and the glue
//! between the configuration and oxim-tls: which connections get
//! TLS, with what certificate, and the protocol names and log text that
//! depend on it. The TLS work itself is in the oxim-tls crate.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oxim_tls::ServerTls;

use std::time::Duration;

use oxim_smtp::{Reply, ServerSession};
use oxim_tls::{MaybeTls, TlsSession};
use tokio::io::AsyncReadExt;

use crate::ctx::Ctx;
use crate::vars::Vars;

use super::conn::{replied, sender_host, IncomingConn, State};
use super::io::{write_out, ServerIo};

/// The server certificate and key (`tls_certificate`, `tls_privatekey`),
/// expanded. With no certificate configured, as Exim: a self-signed one
/// made up for the primary host name (once per process). Loaded once per
/// configuration when the options contain no `$`, else for each use.
pub fn server_tls(ctx: &Ctx, vars: &Vars) -> Result<Arc<ServerTls>, String> {
    let cert = ctx.settings.tls_certificate.as_str();
    if cert.trim().is_empty() {
        return ctx
            .tls_server
            .get_or_init(|| {
                ServerTls::self_signed(&ctx.primary_hostname)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone();
    }
    let key = ctx.settings.tls_privatekey.as_str();
    let load = || -> Result<Arc<ServerTls>, String> {
        let cert = oxim_conf::expand(cert, vars).map_err(|e| format!("tls_certificate: {e}"))?;
        let key = oxim_conf::expand(key, vars).map_err(|e| format!("tls_privatekey: {e}"))?;
        let key = key.trim();
        ServerTls::from_files(
            Path::new(cert.trim()),
            (!key.is_empty()).then(|| Path::new(key)),
        )
        .map(Arc::new)
        .map_err(|e| e.to_string())
    };
    if cert.contains('$') || key.contains('$') {
        return load();
    }
    ctx.tls_server.get_or_init(load).clone()
}

fn host_matches(ctx: &Ctx, option: &str, ip: IpAddr, name: Option<&str>, vars: &Vars) -> bool {
    let list = ctx.config.main.str(option);
    if list.is_empty() {
        return false;
    }
    let Ok(list) = oxim_conf::expand(list, vars) else {
        return false;
    };
    oxim_conf::match_host(&list, ip, name, &ctx.config, vars).unwrap_or(false)
}

/// Offer STARTTLS to this client: the host matches `tls_advertise_hosts`
/// (Exim's default `*`); with no `tls_certificate`, a self-signed one is used.
pub fn advertise(ctx: &Ctx, ip: IpAddr, name: Option<&str>, vars: &Vars) -> bool {
    host_matches(ctx, "tls_advertise_hosts", ip, name, vars)
}

/// Exim's warning when the daemon starts: STARTTLS may be offered
/// (`tls_advertise_hosts` is neither empty nor `:`), but no certificate is set.
pub fn self_signed_warning(ctx: &Ctx) -> Option<&'static str> {
    let adv = ctx.config.main.str("tls_advertise_hosts").trim();
    (!adv.is_empty() && adv != ":" && ctx.settings.tls_certificate.trim().is_empty()).then_some(
        "Warning: No server certificate defined; will use a selfsigned one.\n \
         Suggested action: either install a certificate or change tls_advertise_hosts option",
    )
}

/// Connections to this local port start with a TLS handshake
/// (`-tls-on-connect`, or the port is in `tls_on_connect_ports`).
pub fn on_connect(ctx: &Ctx, local_port: Option<u16>) -> bool {
    if ctx.inv.tls_on_connect {
        return true;
    }
    let Some(port) = local_port else { return false };
    ctx.settings.tls_on_connect_ports.contains(&port)
}

/// `tls_early_banner_hosts` matched: on a TLS-on-connect connection the
/// banner goes out with the server's handshake flight.
pub fn early_banner(ctx: &Ctx, ip: IpAddr, name: Option<&str>, vars: &Vars) -> bool {
    host_matches(ctx, "tls_early_banner_hosts", ip, name, vars)
}

/// Exim's received protocol: `smtp`/`esmtp`, `s` for TLS, `a` for an
/// authenticated session (`esmtpsa`).
pub fn protocol_name(esmtp: bool, tls: bool, authenticated: bool) -> String {
    let mut p = String::from(if esmtp { "esmtp" } else { "smtp" });
    if tls {
        p.push('s');
    }
    if authenticated && esmtp {
        p.push('a');
    }
    p
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(0);

/// A number for this connection (`Ci=`). Exim uses the pid of the process
/// that handles the connection; oxim serves connections in one process, so
/// the id is the pid followed by a four-digit connection count: unique per
/// process, and never equal to the daemon's pid in the same log.
pub fn next_connection_id() -> u64 {
    let n = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed) % 9_999 + 1;
    u64::from(std::process::id()) * 10_000 + n
}

/// `TLS error on connection from ...`, as Exim logs a failed handshake.
pub fn log_tls_error(ctx: &Ctx, conn: &IncomingConn, st: &State, what: &str, e: &str) {
    let host = match sender_host(conn, st) {
        Some(h) => {
            let mut s = String::new();
            if let Some(n) = h.name {
                s.push_str(n);
                s.push(' ');
            }
            if let Some(helo) = h.helo {
                s.push_str(&format!("({helo}) "));
            }
            s.push_str(&format!("[{}]", h.ip));
            s
        }
        None => "local process".into(),
    };
    ctx.log_text(
        None,
        &format!("TLS error on connection from {host} ({what}): {e}"),
    );
}

/// `$tls_in_cipher`, `$tls_in_cipher_std`, `$tls_in_ver`, `$tls_in_bits`,
/// and the legacy names `$tls_cipher` and `$tls_bits`, which mean the
/// incoming connection's values outside a transport (as in Exim).
pub fn set_tls_vars(vars: &mut Vars, t: &TlsSession) {
    let bits = t.cipher.rsplit(':').next().unwrap_or("").to_string();
    vars.set("tls_in_cipher", t.cipher.clone())
        .set("tls_in_cipher_std", t.cipher_std.clone())
        .set("tls_in_ver", t.version.clone())
        .set("tls_cipher", t.cipher.clone())
        .set("tls_in_bits", bits.clone())
        .set("tls_bits", bits);
}

/// Answer STARTTLS and run the handshake. False when the connection is
/// lost (a failed handshake cannot go back to plain text).
pub async fn start_tls(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    io: &mut ServerIo,
    timeout: Duration,
) -> std::io::Result<bool> {
    let cfg = match (&*io, server_tls(ctx, &st.vars)) {
        (ServerIo::Tcp(MaybeTls::Plain(_)), Ok(c)) => c,
        (_, Err(e)) => {
            log_tls_error(ctx, conn, st, "cert/key setup", &e);
            replied(
                ctx,
                sess.respond(Reply::new(454, "TLS currently unavailable")),
            );
            return Ok(true);
        }
        _ => {
            replied(
                ctx,
                sess.respond(Reply::new(454, "TLS currently unavailable")),
            );
            return Ok(true);
        }
    };
    // The session drops anything pipelined after STARTTLS (it came in clear).
    replied(ctx, sess.respond(Reply::new(220, "TLS go ahead")));
    write_out(io, sess, conn.batch).await?;
    let ServerIo::Tcp(stream) = io else {
        return Ok(false);
    };
    match stream.start_server(cfg.config(false), None, timeout).await {
        Ok(t) => {
            // A new session: the client must say EHLO again.
            st.helo = None;
            st.esmtp = false;
            set_tls_vars(&mut st.vars, &t);
            st.tls = Some(t);
            Ok(true)
        }
        Err(e) => {
            log_tls_error(ctx, conn, st, "handshake", &e.to_string());
            Ok(false)
        }
    }
}

/// SMTPS: the TLS handshake before the banner. With
/// `tls_early_banner_hosts` the banner goes out with the server's handshake
/// flight; otherwise it is queued in the session for the caller to write.
/// False when the handshake failed (the connection is dropped).
pub async fn tls_on_connect(
    ctx: &Ctx,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    io: &mut ServerIo,
    banner_lines: Vec<&str>,
    timeout: Duration,
) -> bool {
    let Some(ip) = conn.peer.map(|p| p.ip()) else {
        return false;
    };
    let cfg = match server_tls(ctx, &st.vars) {
        Ok(c) => c,
        Err(e) => {
            log_tls_error(ctx, conn, st, "cert/key setup", &e);
            return false;
        }
    };
    let early = early_banner(ctx, ip, st.host_name.as_deref(), &st.vars);
    let ServerIo::Tcp(stream) = io else {
        return false;
    };
    let banner = if early {
        replied(
            ctx,
            sess.greet(Reply::from_lines(220, banner_lines.clone())),
        );
        Some(sess.take_output())
    } else {
        None
    };
    let t = match stream
        .start_server(cfg.config(early), banner.as_deref(), timeout)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            log_tls_error(ctx, conn, st, "handshake", &e.to_string());
            return false;
        }
    };
    set_tls_vars(&mut st.vars, &t);
    st.tls = Some(t);
    if !early {
        replied(ctx, sess.greet(Reply::from_lines(220, banner_lines)));
        return true;
    }
    if ctx.harness.active {
        // Exim's test harness records whether the client answered the early
        // banner promptly (its EHLO is already on its way). What arrives is
        // kept for the session.
        let mut buf = [0u8; 4096];
        let seen =
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                Ok(Ok(n)) => {
                    sess.handle_input(&buf[..n]);
                    true
                }
                Ok(Err(_)) => true,
                Err(_) => false,
            };
        ctx.log_text(
            None,
            &format!(
                "Ci={} SMTP peer appears to have {} our banner",
                conn.id,
                if seen { "seen" } else { "NOT SEEN" }
            ),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(protocol_name(true, false, false), "esmtp");
        assert_eq!(protocol_name(true, true, false), "esmtps");
        assert_eq!(protocol_name(true, true, true), "esmtpsa");
        assert_eq!(protocol_name(true, false, true), "esmtpa");
        assert_eq!(protocol_name(false, true, false), "smtps");
    }
}
