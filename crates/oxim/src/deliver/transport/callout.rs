//! Where a callout goes: the hosts an address routed to through an smtp
//! transport, each with the transport's connection settings, as a delivery
//! to that address would use them (the callout's timeouts replace the
//! transport's).

use std::time::Duration;

use crate::ctx::Ctx;
use crate::settings::SmtpSpec;
use crate::vars::Vars;

use super::super::route::RoutedHost;
use super::super::smtp;
use super::remote::{
    auth_params, expand_smtp_options, host_list_matches, resolve_hosts, tls_params,
};

/// One host to call, with the settings to talk to it.
pub struct CalloutTarget {
    pub host: smtp::Host,
    pub params: smtp::SmtpParams,
    /// `tls_tempfail_tryclear`: after a failed TLS handshake, try again
    /// in clear (not when TLS is required).
    pub tryclear: bool,
    /// `AUTH=` for MAIL once authenticated: the transport's
    /// `authenticated_sender`, else the one the client gave.
    pub auth_sender: Option<String>,
}

/// The hosts to call for an address routed to the smtp transport `spec`
/// (named `tname`) with the router's `router_hosts`; `vars` hold the
/// address's `$local_part` and `$domain`. `Err`: an option of the
/// transport failed to expand (the text says which).
pub async fn callout_targets(
    ctx: &Ctx,
    tname: &str,
    spec: &SmtpSpec,
    router_hosts: &[RoutedHost],
    vars: &Vars,
    command_timeout: Duration,
    connect_timeout: Duration,
) -> Result<Vec<CalloutTarget>, String> {
    let use_hosts = router_hosts.is_empty() || spec.hosts_override;
    let (transport_hosts, port, helo, interface) =
        expand_smtp_options(tname, spec, use_hosts, vars)
            .map_err(|e| e.message.unwrap_or_default())?;
    let specs: Vec<RoutedHost> = if use_hosts && spec.hosts.is_some() {
        transport_hosts
    } else {
        router_hosts.to_vec()
    };
    let given = vars
        .get("authenticated_sender")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let auth_sender = match &spec.authenticated_sender {
        Some(a) => match oxim_conf::expand(a, vars) {
            Ok(v) if !v.is_empty() => Some(v),
            Err(e) if !e.is_forced_fail() => {
                return Err(format!("failed to expand authenticated_sender: {e}"))
            }
            _ => given,
        },
        None => given,
    };
    let mut out = Vec::new();
    for (name, ip, _allow_local, own_port) in resolve_hosts(ctx, &specs).await {
        let host = smtp::Host {
            name: name.clone(),
            ip,
            port: own_port.unwrap_or(port),
            try_tfo: host_list_matches(ctx, &spec.hosts_try_fastopen, &name, ip, vars),
        };
        let params = smtp::SmtpParams {
            helo_data: helo.clone(),
            connect_timeout,
            command_timeout,
            data_timeout: command_timeout,
            final_timeout: command_timeout,
            max_rcpt: 1,
            avoid_pipelining: true,
            try_chunking: false,
            interface,
            connection_max_messages: 1,
            tls: tls_params(ctx, &spec.tls, &name, ip, vars),
            pipe_connect: None,
            auth: auth_params(ctx, spec, &name, ip, vars),
        };
        out.push(CalloutTarget {
            host,
            params,
            tryclear: spec.tls.tempfail_tryclear,
            auth_sender: auth_sender.clone(),
        });
    }
    Ok(out)
}
