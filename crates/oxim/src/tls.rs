//! TLS glue between the configuration and oxim-tls: which connections get
//! TLS, with what certificate, and the protocol names and log text that
//! depend on it. The TLS work itself is in the oxim-tls crate.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oxim_tls::ServerTls;

use crate::ctx::Ctx;
use crate::vars::Vars;

/// The server certificate and key (`tls_certificate`, `tls_privatekey`),
/// expanded. `None` when no certificate is configured: oxim then offers no
/// TLS (Exim 4.93+ would make up a self-signed certificate). Loaded once per
/// configuration when the options contain no `$`, else for each use.
pub fn server_tls(ctx: &Ctx, vars: &Vars) -> Option<Result<Arc<ServerTls>, String>> {
    let main = &ctx.config.main;
    let cert = main.str("tls_certificate");
    if cert.trim().is_empty() {
        return None;
    }
    let key = main.str("tls_privatekey");
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
        return Some(load());
    }
    Some(ctx.tls_server.get_or_init(load).clone())
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

/// Offer STARTTLS to this client: a certificate is configured and the host
/// matches `tls_advertise_hosts` (Exim's default `*`).
pub fn advertise(ctx: &Ctx, ip: IpAddr, name: Option<&str>, vars: &Vars) -> bool {
    !ctx.config.main.str("tls_certificate").trim().is_empty()
        && host_matches(ctx, "tls_advertise_hosts", ip, name, vars)
}

/// Connections to this local port start with a TLS handshake
/// (`-tls-on-connect`, or the port is in `tls_on_connect_ports`).
pub fn on_connect(ctx: &Ctx, local_port: Option<u16>) -> bool {
    if ctx.inv.tls_on_connect {
        return true;
    }
    let Some(port) = local_port else { return false };
    oxim_conf::lists::list_items(ctx.config.main.str("tls_on_connect_ports"))
        .iter()
        .any(|p| crate::daemon::service_port(p) == Some(port))
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
