//! The smtp transport: its options expanded, its hosts resolved, one
//! conversation per host until the addresses are done.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;
use oxim_log::LogRecord;
use oxim_net::ClientTfo;

use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::loaded::Loaded;
use crate::settings::SmtpSpec;
use crate::vars::Vars;

use super::super::record::{local_error, now_secs, retry_error, Item, Outcome};
use super::super::route::{is_local_named, RoutedHost};
use super::super::smtp::{self, SmtpError};
use super::Call;

/// Each host's addresses, with whether it may be local and its own port
/// (from the router's host list), if any.
pub async fn resolve_hosts(
    ctx: &Ctx,
    hosts: &[RoutedHost],
) -> Vec<(String, IpAddr, bool, Option<u16>)> {
    let mut out = Vec::new();
    for h in hosts {
        match h.ip {
            Some(ip) => out.push((h.name.clone(), ip, h.allow_local, h.port)),
            None => {
                if let Ok(ips) = super::super::route::host_addresses(ctx, &h.name).await {
                    for ip in ips {
                        out.push((h.name.clone(), ip, h.allow_local, h.port));
                    }
                }
            }
        }
    }
    out
}

pub fn host_list_matches(
    ctx: &Ctx,
    list: &Option<String>,
    host: &str,
    ip: IpAddr,
    vars: &Vars,
) -> bool {
    let Some(l) = list else { return false };
    let Ok(expanded) = oxim_conf::expand(l, vars) else {
        return false;
    };
    oxim_conf::match_host(&expanded, ip, Some(host), &ctx.config, vars).unwrap_or(false)
}

/// A host named in a transport's `hosts` or `fallback_hosts` list: a name,
/// or an IP address (bare or in brackets), to be resolved later.
fn listed_host(item: &str) -> RoutedHost {
    let bare = item.trim_start_matches('[').trim_end_matches(']');
    RoutedHost {
        name: bare.to_string(),
        ip: bare.parse().ok(),
        allow_local: false,
        mx: None,
        port: None,
    }
}

/// The smtp transport's expanded `hosts` (when `use_hosts`), port,
/// `helo_data` and `interface`. An option that fails to expand, or a bad
/// port, is an error that defers the addresses (Exim's wording).
pub fn expand_smtp_options(
    tname: &str,
    spec: &SmtpSpec,
    use_hosts: bool,
    vars: &Vars,
) -> Result<(Vec<RoutedHost>, u16, String, Option<IpAddr>), SmtpError> {
    let hosts = match spec.hosts.as_ref().filter(|_| use_hosts) {
        Some(h) => match oxim_conf::expand(h, vars) {
            Ok(list) => oxim_conf::lists::list_items(&list)
                .iter()
                .map(|s| listed_host(s))
                .collect(),
            Err(e) => {
                return Err(local_error(
                    Errno::None,
                    format!("failed to expand list of hosts \"{h}\" in {tname} transport: {e}"),
                ))
            }
        },
        None => Vec::new(),
    };
    let port_text = oxim_conf::expand(&spec.port, vars).map_err(|e| {
        local_error(
            Errno::None,
            format!(
                "failed to expand \"{}\" (\"port\" option) for {tname} transport: {e}",
                spec.port
            ),
        )
    })?;
    let port = match crate::settings::service_port(&port_text) {
        Some(p) => p,
        None if port_text.trim().starts_with(|c: char| c.is_ascii_digit()) => {
            return Err(local_error(
                Errno::None,
                format!("invalid port number for {tname} transport: {port_text}"),
            ))
        }
        None => {
            return Err(local_error(
                Errno::None,
                format!("TCP port \"{port_text}\" is not defined for {tname} transport"),
            ))
        }
    };
    let helo = oxim_conf::expand(&spec.helo_data, vars).map_err(|e| {
        local_error(
            Errno::ExpandFail,
            format!("failed to expand helo_data: {e}"),
        )
    })?;
    let interface = match &spec.interface {
        None => None,
        Some(i) => {
            let text = oxim_conf::expand(i, vars).map_err(|e| {
                local_error(
                    Errno::None,
                    format!(
                        "failed to expand \"{i}\" (\"interface\" option) for {tname} transport: {e}"
                    ),
                )
            })?;
            match text.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    local_error(
                        Errno::None,
                        format!("\"{t}\" is not a valid IP address for the \"interface\" option for {tname} transport"),
                    )
                })?),
            }
        }
    };
    Ok((hosts, port, helo, interface))
}

pub async fn run_smtp(
    call: Call<'_>,
    spec: &SmtpSpec,
    tname: &str,
    pool: Option<smtp::PoolRef<'_>>,
) -> Vec<(Item, String, Outcome)> {
    let Call {
        ctx,
        m,
        headers,
        vars,
        items,
        router_hosts,
        return_path,
    } = call;
    let defer_all = |err: SmtpError| -> Vec<(Item, String, Outcome)> {
        items
            .iter()
            .map(|(i, r)| {
                let err = err.clone();
                (i.clone(), r.clone(), Outcome::Deferred { host: None, err })
            })
            .collect()
    };
    // Options are expanded with the first address's $local_part/$domain.
    let mut tv = vars.clone();
    if let Some((first, _)) = items.first() {
        tv.set_address(&first.address);
    }
    // Host list: the router's, unless the transport's overrides it.
    let use_hosts = router_hosts.is_empty() || spec.hosts_override;
    let (transport_hosts, port, helo, interface) =
        match expand_smtp_options(tname, spec, use_hosts, &tv) {
            Ok(v) => v,
            Err(e) => return defer_all(e),
        };
    let host_specs: Vec<RoutedHost> = if use_hosts && spec.hosts.is_some() {
        transport_hosts
    } else if router_hosts.is_empty() {
        return defer_all(local_error(
            Errno::Unknown,
            "smtp transport called with no hosts set",
        ));
    } else {
        router_hosts.to_vec()
    };
    let params = smtp::SmtpParams {
        helo_data: helo,
        connect_timeout: nonzero(spec.connect_timeout, Duration::from_secs(300)),
        command_timeout: nonzero(spec.command_timeout, Duration::from_secs(300)),
        data_timeout: nonzero(spec.data_timeout, Duration::from_secs(300)),
        final_timeout: nonzero(spec.final_timeout, Duration::from_secs(600)),
        max_rcpt: spec.max_rcpt,
        avoid_pipelining: false,
        try_chunking: false,
        interface,
        connection_max_messages: spec.connection_max_messages,
        tls: None,
        pipe_connect: None,
        auth: None,
    };
    // AUTH= on MAIL once authenticated: the transport's
    // authenticated_sender (a forced failure or empty result: the one the
    // message came with).
    let auth_sender = match &spec.authenticated_sender {
        Some(a) => match oxim_conf::expand(a, &tv) {
            Ok(v) if !v.is_empty() => Some(v),
            Ok(_) => m.env.auth_sender.clone(),
            Err(e) if e.is_forced_fail() => m.env.auth_sender.clone(),
            Err(e) => {
                return defer_all(local_error(
                    Errno::ExpandFail,
                    format!("failed to expand authenticated_sender: {e}"),
                ))
            }
        },
        None => m.env.auth_sender.clone(),
    };
    // DKIM signatures go on top of the header section.
    let (signed_headers, dkim_used) = match super::dkim_sign::sign_message(
        ctx,
        tname,
        &spec.dkim,
        &tv,
        headers,
        &m.body,
        &m.env.id.to_string(),
    ) {
        Ok(v) => v,
        Err(e) => return defer_all(e),
    };
    let headers: &[u8] = &signed_headers;
    // As Exim: the local address is not known before the connection, so a
    // helo_data that needs it rules early pipelining out unless the
    // connection is bound to an interface.
    let helo_allows_early = interface.is_some()
        || !spec.helo_data.contains("$sending_ip_address")
        || spec.helo_data.contains("def:sending_ip_address");
    let ehlo_cache = smtp::EhloCache::new(ctx.spool.db_dir(), ctx.settings.retry_data_expire);
    let mut hosts = resolve_hosts(ctx, &host_specs).await;
    // fallback_hosts come after the others: the loop below reaches them
    // only when every host before failed temporarily.
    if let Some(list) = &spec.fallback_hosts {
        let fallback: Vec<RoutedHost> = oxim_conf::lists::list_items(list)
            .iter()
            .map(|s| listed_host(s))
            .collect();
        hosts.extend(resolve_hosts(ctx, &fallback).await);
    }
    // Retry hints per host (`T:name:ip:port`) and per host and message
    // (`...:<id>`), as Exim keeps them; a host whose retry time has not
    // come is not tried unless delivery is forced (-M, -qf).
    let retry_db = crate::retry::RetryDb::new(ctx.spool.db_dir());
    let retry_expire = ctx.settings.retry_data_expire.as_secs();
    let domain = items
        .first()
        .and_then(|(i, _)| i.address.rsplit_once('@'))
        .map_or(String::new(), |(_, d)| d.to_string());
    let retry_rule_address = items
        .first()
        .map_or(String::new(), |(i, _)| i.address.clone());
    let from_mx = |name: &str| host_specs.iter().any(|h| h.name == name && h.mx.is_some());
    // Exim updates the hints at the end of a delivery: a host listed twice
    // is tried again in this one even after its first failure.
    let mut written: std::collections::HashSet<String> = Default::default();
    if hosts.is_empty() {
        return defer_all(local_error(
            Errno::Unknown,
            "all host address lookups failed temporarily",
        ));
    }
    // -N: nothing is sent; the first host is named as the one that would
    // have been tried.
    if super::super::record::bypassed(ctx, m) {
        let (name, ip, _, own_port) = &hosts[0];
        let host = smtp::Host {
            name: name.clone(),
            ip: *ip,
            port: own_port.unwrap_or(port),
            try_tfo: false,
        };
        return items
            .iter()
            .map(|(i, r)| {
                let outcome = Outcome::Delivered {
                    host: Some(host.clone()),
                    tfo: oxim_log::Tfo::NotTcp,
                    tls: None,
                    chunking: false,
                    pipelining: None,
                    continued: false,
                    confirmation: Some("delivery bypassed by -N option".into()),
                    first: true,
                    auth: None,
                    sequence: None,
                    dkim: None,
                };
                (i.clone(), r.clone(), outcome)
            })
            .collect();
    }
    // More addresses than max_rcpt: the transactions share one connection,
    // as in Exim, also outside a queue run.
    let batch_size = params.max_rcpt.max(1);
    let local_pool = (pool.is_none() && items.len() > batch_size).then(smtp::Pool::new);
    let pool = pool
        .or(local_pool.as_ref().map(|p| smtp::PoolRef {
            pool: p,
            ticket: None,
        }))
        .map(|p| (p, tname));
    // Whether this message went down a connection an earlier message used
    // (decided by its first transaction; the others follow on).
    let mut continued = None;
    let mut out: Vec<(Item, String, Outcome)> = Vec::with_capacity(items.len());
    for batch in items.chunks(batch_size) {
        let recipients: Vec<String> = batch.iter().map(|(i, _)| i.address.clone()).collect();
        let outgoing = smtp::Outgoing {
            sender: return_path,
            recipients: &recipients,
            headers,
            body: &m.body,
            size: headers.len() + 1 + m.body.len(),
            body_8bitmime: m.env.body_8bitmime,
            auth_sender: auth_sender.clone(),
        };
        let mut last: Option<smtp::HostResult> = None;
        let mut tried = 0usize;
        for (name, ip, allow_local, own_port) in &hosts {
            if tried >= spec.hosts_max_try {
                break;
            }
            let host = smtp::Host {
                name: name.clone(),
                ip: *ip,
                port: own_port.unwrap_or(port),
                try_tfo: host_list_matches(ctx, &spec.hosts_try_fastopen, name, *ip, vars),
            };
            if !spec.allow_localhost && !allow_local && is_local_named(ctx, name, Some(*ip), vars) {
                let err = local_error(
                    Errno::HostIsLocal,
                    format!("{tname} transport found host {name} to be local"),
                );
                last = Some(smtp::HostResult {
                    host,
                    tfo: oxim_log::Tfo::client(ClientTfo::NotTried),
                    chunking: false,
                    pipelined: false,
                    early_pipe: false,
                    continued: false,
                    skipped: false,
                    outcomes: vec![smtp::RcptOutcome::Deferred(err); batch.len()],
                    try_next_host: true,
                    tls: None,
                    tls_failed: false,
                    auth: None,
                    auth_notes: Vec::new(),
                    sequence: None,
                });
                continue;
            }
            let host_key = crate::retry::host_key(name, *ip, host.port);
            let message_key = format!("{host_key}:{}", m.env.id);
            if !ctx.inv.force {
                let now = now_secs();
                let waiting = |k: &str| {
                    !written.contains(k)
                        && retry_db.get(k).is_some_and(|h| {
                            now < h.next_try && now.saturating_sub(h.last_try) <= retry_expire
                        })
                };
                if waiting(&host_key) || waiting(&message_key) {
                    let err = SmtpError {
                        errno: Errno::HostRetry,
                        errno_text: None,
                        message: Some("retry time not reached for any host".into()),
                        with_host: false,
                    };
                    if last.as_ref().is_none_or(|l| l.skipped) {
                        last = Some(smtp::HostResult {
                            host,
                            tfo: oxim_log::Tfo::client(ClientTfo::NotTried),
                            chunking: false,
                            pipelined: false,
                            early_pipe: false,
                            continued: false,
                            skipped: true,
                            outcomes: vec![smtp::RcptOutcome::Deferred(err); batch.len()],
                            try_next_host: true,
                            tls: None,
                            tls_failed: false,
                            auth: None,
                            auth_notes: Vec::new(),
                            sequence: None,
                        });
                    }
                    continue;
                }
            }
            let mut p = params.clone();
            // $sending_ip_address in helo_data: the local address this
            // connection will have (the bound interface, else the one the
            // kernel's routing picks for the host).
            if spec.helo_data.contains("sending_ip_address") {
                if let Some(local) = interface.or_else(|| local_address_for(*ip)) {
                    let mut hv = tv.clone();
                    hv.set("sending_ip_address", local.to_string());
                    match oxim_conf::expand(&spec.helo_data, &hv) {
                        Ok(h) => p.helo_data = h,
                        Err(e) => {
                            return defer_all(local_error(
                                Errno::ExpandFail,
                                format!("failed to expand helo_data: {e}"),
                            ))
                        }
                    }
                }
            }
            p.avoid_pipelining =
                host_list_matches(ctx, &spec.hosts_avoid_pipelining, name, *ip, vars);
            p.try_chunking = host_list_matches(ctx, &spec.hosts_try_chunking, name, *ip, vars);
            p.tls = tls_params(ctx, &spec.tls, name, *ip, vars);
            p.pipe_connect = (helo_allows_early
                && host_list_matches(ctx, &spec.hosts_pipe_connect, name, *ip, vars))
            .then(|| ehlo_cache.clone());
            p.auth = auth_params(ctx, spec, name, *ip, &tv);
            let tryclear = spec.tls.tempfail_tryclear;
            let r = deliver_tryclear(ctx, m, &host, p, &outgoing, tryclear, pool).await;
            let id_text = m.env.id.to_string();
            for note in &r.auth_notes {
                ctx.log_message(
                    m,
                    &LogRecord::Text {
                        id: Some(&id_text),
                        text: note,
                        dest: oxim_log::Dest {
                            main: true,
                            reject: false,
                            panic: false,
                        },
                    },
                );
            }
            // A host-level problem gets its own log line, as in Exim (not
            // for a host skipped because it failed earlier in this run).
            if r.try_next_host && !r.skipped {
                if let Some(smtp::RcptOutcome::Deferred(e)) = r.outcomes.first() {
                    let id_text = m.env.id.to_string();
                    let text = e.message.clone().unwrap_or_default();
                    let rh = host.log();
                    if !e.with_host && e.message.is_none() {
                        // A connection that failed: the host and the
                        // system's words, as Exim logs it.
                        let mut text = format!("H={} [{}]", rh.name, rh.ip);
                        if ctx.selector.has(oxim_log::Selector::OutgoingPort) {
                            text.push_str(&format!(":{}", rh.port));
                        }
                        if let Some(t) = &e.errno_text {
                            text.push(' ');
                            text.push_str(t);
                        }
                        ctx.log_message(
                            m,
                            &LogRecord::Text {
                                id: Some(&id_text),
                                text: &text,
                                dest: oxim_log::Dest {
                                    main: true,
                                    reject: false,
                                    panic: false,
                                },
                            },
                        );
                    } else if e.with_host {
                        ctx.log_message(
                            m,
                            &LogRecord::HostError {
                                id: &id_text,
                                host: rh,
                                text: &text,
                                errno_text: e.errno_text.as_deref(),
                            },
                        );
                    }
                }
            }
            if !r.skipped {
                tried += 1;
                // The host's retry hint: a host-level failure is recorded
                // against the host, a 4xx to MAIL or DATA against the host
                // and this message; a host that answered is cleared.
                let rule = |re: &crate::retry::RetryError| {
                    crate::retry::find_rule_for(
                        &ctx.config,
                        &retry_rule_address,
                        None,
                        (re.basic_errno, re.more_errno),
                        Some(&m.env.sender),
                        vars,
                    )
                };
                let max = ctx.settings.retry_interval_max.as_secs();
                match r.outcomes.first() {
                    Some(smtp::RcptOutcome::Deferred(e))
                        if matches!(e.errno, Errno::Mail4xx | Errno::Data4xx) =>
                    {
                        let re = retry_error(e, Some(&host), from_mx(name));
                        retry_db.failed(&message_key, rule(&re), now_secs(), max, &re);
                        written.insert(message_key.clone());
                    }
                    Some(smtp::RcptOutcome::Deferred(e)) if r.try_next_host => {
                        let re = retry_error(e, Some(&host), from_mx(name));
                        retry_db.failed(&host_key, rule(&re), now_secs(), max, &re);
                        written.insert(host_key.clone());
                    }
                    _ => {
                        retry_db.clear(&host_key);
                        retry_db.clear(&message_key);
                    }
                }
            }
            let again = r.try_next_host;
            // A host skipped for an earlier failure does not hide the
            // result of one that was tried.
            if !r.skipped || last.as_ref().is_none_or(|l| l.skipped) {
                last = Some(r);
            }
            if !again {
                break;
            }
        }
        let Some(r) = last else {
            return defer_all(local_error(Errno::Unknown, "no host to try"));
        };
        let info = r.host.clone();
        let continued = *continued.get_or_insert(r.continued);
        let mut first = true;
        for ((item, router), o) in batch.iter().zip(r.outcomes) {
            let outcome = match o {
                smtp::RcptOutcome::Delivered { confirmation } => {
                    let o = Outcome::Delivered {
                        host: Some(info.clone()),
                        tfo: r.tfo,
                        tls: r.tls.clone(),
                        chunking: r.chunking,
                        pipelining: r.pipelined.then_some(oxim_log::PipeliningLog {
                            used: true,
                            early: if r.early_pipe {
                                oxim_log::EarlyPipe::Used
                            } else {
                                oxim_log::EarlyPipe::No
                            },
                        }),
                        continued,
                        confirmation: Some(confirmation),
                        first,
                        sequence: r.sequence.clone(),
                        dkim: dkim_used.clone(),
                        auth: r.auth.as_ref().map(|a| {
                            // +smtp_mailauth adds the AUTH= sender sent,
                            // after an id only (`name:id`; an
                            // authenticator's name has no colon).
                            match &auth_sender {
                                Some(s)
                                    if a.contains(':')
                                        && ctx.selector.has(oxim_log::Selector::SmtpMailauth) =>
                                {
                                    format!("{a}:{s}")
                                }
                                _ => a.clone(),
                            }
                        }),
                    };
                    first = false;
                    o
                }
                smtp::RcptOutcome::Deferred(mut err) => {
                    if err.errno == Errno::HostRetry {
                        err.message = Some(format!(
                            "retry time not reached for any host for '{domain}'"
                        ));
                    }
                    Outcome::Deferred {
                        host: Some(info.clone()),
                        err,
                    }
                }
                smtp::RcptOutcome::Failed(err) => Outcome::Failed {
                    host: Some(info.clone()),
                    err,
                    sequence: r.sequence.clone(),
                },
            };
            out.push((item.clone(), router.clone(), outcome));
        }
    }
    if let Some(p) = local_pool {
        p.close_all().await;
    }
    out
}

/// One host, and again in clear when the TLS handshake after STARTTLS
/// failed and `tls_tempfail_tryclear` allows it (as Exim does; not when TLS
/// or a verified certificate is required).
pub async fn deliver_tryclear(
    ctx: &Ctx,
    m: &Loaded,
    host: &smtp::Host,
    mut p: smtp::SmtpParams,
    outgoing: &smtp::Outgoing<'_>,
    tryclear: bool,
    pool: Option<(smtp::PoolRef<'_>, &str)>,
) -> smtp::HostResult {
    let r = smtp::deliver_to_host(host, &p, outgoing, pool).await;
    let allowed = p
        .tls
        .as_ref()
        .is_some_and(|t| !t.require && !t.client.require_verify);
    if !(r.tls_failed && tryclear && allowed) {
        return r;
    }
    if let Some(smtp::RcptOutcome::Deferred(e)) = r.outcomes.first() {
        let id = m.env.id.to_string();
        ctx.log_message(
            m,
            &LogRecord::Text {
                id: Some(&id),
                text: &format!(
                    "{}: delivering unencrypted to H={} [{}] (not in hosts_require_tls)",
                    e.message.as_deref().unwrap_or("TLS session failure"),
                    host.name,
                    host.ip
                ),
                dest: oxim_log::Dest {
                    main: true,
                    reject: false,
                    panic: false,
                },
            },
        );
    }
    p.tls = None;
    smtp::deliver_to_host(host, &p, outgoing, pool).await
}

/// SMTP AUTH for one host: `hosts_require_auth`, `hosts_try_auth` and the
/// client authenticators. `None` when neither list matches.
pub(super) fn auth_params(
    ctx: &Ctx,
    spec: &SmtpSpec,
    host: &str,
    ip: IpAddr,
    vars: &Vars,
) -> Option<smtp::ClientAuthParams> {
    let require = host_list_matches(ctx, &spec.hosts_require_auth, host, ip, vars);
    let try_auth = host_list_matches(ctx, &spec.hosts_try_auth, host, ip, vars);
    (require || try_auth).then(|| smtp::ClientAuthParams {
        require,
        try_auth,
        authenticators: ctx
            .drivers
            .authenticators
            .iter()
            .filter(|a| a.is_client())
            .cloned()
            .collect(),
        vars: vars.clone(),
    })
}

/// The transport's TLS options matched against one host. `None`: no TLS
/// (`hosts_avoid_tls` matched, unless `hosts_require_tls` does too).
pub fn tls_params(
    ctx: &Ctx,
    spec: &crate::settings::SmtpTlsSpec,
    host: &str,
    ip: IpAddr,
    vars: &Vars,
) -> Option<smtp::TlsParams> {
    let m = |l: &Option<String>| host_list_matches(ctx, l, host, ip, vars);
    let require = m(&spec.hosts_require_tls);
    if !require && !spec.on_connect && m(&spec.hosts_avoid_tls) {
        return None;
    }
    let roots = match oxim_conf::expand(&spec.verify_certificates, vars) {
        Ok(v) if v.trim() == "system" || v.trim().is_empty() => oxim_tls::RootSource::System,
        Ok(v) => oxim_tls::RootSource::Path(v.trim().into()),
        Err(_) => oxim_tls::RootSource::System,
    };
    let require_verify = m(&spec.verify_hosts);
    Some(smtp::TlsParams {
        on_connect: spec.on_connect,
        require,
        client: oxim_tls::ClientTlsOptions {
            roots,
            check_name: m(&Some(spec.verify_cert_hostnames.clone())),
            require_verify,
            try_verify: require_verify || m(&Some(spec.try_verify_hosts.clone())),
        },
    })
}

pub fn nonzero(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

/// The source address the kernel would choose to reach `ip` (a UDP socket
/// "connected" to it sends nothing).
fn local_address_for(ip: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = if ip.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([0u16; 8])
    };
    let s = std::net::UdpSocket::bind((any, 0)).ok()?;
    s.connect((ip, 9)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}
