//! Driving an SMTP server session: the protocol state machine lives in
//! `oxim-smtp`; this module moves bytes, applies policy (ACLs, limits, host
//! lookups), stores messages and logs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use oxim_log::{LogRecord, RejectWhat, Rejected, SenderHost, SmtpEnd};
use oxim_net::ServerTfo;
use oxim_smtp::{hello_text, help_reply, Event, Extensions, Reply, ServerConfig, ServerSession};
use oxim_tls::{MaybeTls, TlsSession};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::acl::{self, AclEnv, AclTrace, Verdict};
use crate::cli::DeliveryMode;
use crate::ctx::Ctx;
use crate::message::{HeaderExcess, HeaderLimits, Message};
use crate::receive::{self, Source};
use crate::vars::Vars;

/// Facts about the connection.
#[derive(Debug, Clone)]
struct Conn {
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    tfo: ServerTfo,
    /// `smtp` for TCP, `local-smtp` for -bs, `local-bsmtp` for -bS.
    base_protocol: &'static str,
    batch: bool,
    /// SMTPS: TLS starts before the banner.
    tls_on_connect: bool,
    /// `-bh`: a host-checking session (trace on stderr, nothing stored).
    checking: bool,
}

/// Per-session mutable state the policy code keeps.
struct State {
    host_name: Option<String>,
    lookup_done: bool,
    helo: Option<String>,
    esmtp: bool,
    sender: Option<String>,
    recipients: Vec<String>,
    body: Vec<u8>,
    too_big: bool,
    vars: Vars,
    accepted_ids: Vec<String>,
    messages: u32,
    /// Commands received so far (a client that leaves straight after the
    /// banner is not logged as a lost connection).
    commands: u32,
    /// `control = no_pipelining` from the connect ACL.
    no_pipelining: bool,
    /// `hosts_connection_nolog` matched: no connection open/close lines.
    nolog: bool,
    started: std::time::Instant,
    /// The current message's body is arriving in BDAT chunks.
    bdat: bool,
    /// The current message was announced with `BODY=8BITMIME`.
    body_8bitmime: bool,
    /// `header_maxsize` and `header_line_maxsize`.
    header_max: (u64, u64),
    /// The current message's header section so far.
    header: HeaderLimits,
    /// The current message broke a header limit (it is being swallowed).
    header_excess: Option<HeaderExcess>,
    /// TLS is up (STARTTLS or TLS on connect).
    tls: Option<TlsSession>,
    /// The `-bh` trace and the named-list results kept for it.
    acl: AclTrace,
    /// The HELO/EHLO and the RSET free in each message have been used.
    helo_counted: bool,
    rset_counted: bool,
    /// `smtp_accept_max_nonmail_hosts` matched (checked once, when the
    /// first non-mail command arrives).
    count_nonmail: Option<bool>,
}

impl State {
    /// A new message body starts (DATA, or the first BDAT chunk).
    fn start_body(&mut self) {
        self.body.clear();
        self.too_big = false;
        self.header = HeaderLimits::new(self.header_max.0, self.header_max.1);
        self.header_excess = None;
    }
}

fn sender_host<'a>(conn: &Conn, st: &'a State) -> Option<SenderHost<'a>> {
    conn.peer.map(|p| SenderHost {
        name: st.host_name.as_deref(),
        helo: st.helo.as_deref(),
        ip: p.ip(),
        port: p.port(),
    })
}

/// Log a rejection (main and reject logs). Local `-bs` sessions have no
/// host and their rejections are reported to the caller only.
fn log_reject(
    ctx: &Ctx,
    conn: &Conn,
    st: &State,
    sender: Option<&str>,
    what: RejectWhat<'_>,
    temporary: bool,
    reason: Option<&str>,
) {
    if let Some(host) = sender_host(conn, st) {
        ctx.log(&LogRecord::Rejected(Rejected {
            id: None,
            host,
            ident: None,
            sender,
            what,
            temporary,
            reason,
        }));
    }
}

fn log_end(ctx: &Ctx, conn: &Conn, st: &State, how: SmtpEnd<'_>) {
    if st.nolog {
        return;
    }
    if let Some(host) = sender_host(conn, st) {
        ctx.log(&LogRecord::SmtpClosed {
            host,
            ident: None,
            duration: Some(st.started.elapsed()),
            how,
        });
    }
}


/// Whether the client is in the host list of main option `option`, with
/// Exim's `-bh` trace (`host in <option>? ...`).
async fn host_option(ctx: &Ctx, st: &mut State, option: &str, ip: IpAddr) -> bool {
    let main = &ctx.config.main;
    let raw = main.str(option);
    if raw.is_empty() && !main.is_set(option) {
        oxim_conf::lists::trace_unset(&mut st.acl.trace, "host", option);
        return false;
    }
    let list = match oxim_conf::expand(raw, &st.vars) {
        Ok(l) => l,
        Err(e) if e.is_forced_fail() => return false,
        Err(e) => {
            ctx.log_text(
                None,
                &format!("failed to expand \"{raw}\" while checking a list: {e}"),
            );
            return false;
        }
    };
    let connection = st
        .acl
        .host_ident
        .as_deref()
        .map(|h| format!("SMTP connection from {}", h.trim_start_matches("H=")))
        .unwrap_or_default();
    if st.acl.client.name.is_none() {
        st.acl.client.name.clone_from(&st.host_name);
    }
    let key = ip.to_string();
    let mut p = oxim_conf::Probe::new(&mut st.acl.trace, "host");
    p.option = Some(option);
    p.key = Some(&key);
    p.cache = Some(&mut st.acl.hosts);
    let r = crate::host_lists::match_client(
        ctx,
        &list,
        ip,
        &mut st.acl.client,
        &st.vars,
        &connection,
        &mut p,
    )
    .await
    .unwrap_or(false);
    sync_client_name(st);
    r
}

/// A host name a host list looked up becomes the session's.
fn sync_client_name(st: &mut State) {
    if st.host_name.is_none() {
        if let Some(n) = &st.acl.client.name {
            st.host_name = Some(n.clone());
            st.vars.set("sender_host_name", n.clone());
        }
    }
}

/// Whether `subject` is in the domain list of main option `option`, with
/// Exim's `-bh` trace (`<subject> in <option>? ...`).
fn domain_option(ctx: &Ctx, st: &mut State, option: &str, subject: &str) -> bool {
    let main = &ctx.config.main;
    let raw = main.str(option);
    if raw.is_empty() && !main.is_set(option) {
        oxim_conf::lists::trace_unset(&mut st.acl.trace, subject, option);
        return false;
    }
    let Ok(list) = oxim_conf::expand(raw, &st.vars) else {
        return false;
    };
    let mut p = oxim_conf::Probe::new(&mut st.acl.trace, subject);
    p.option = Some(option);
    oxim_conf::match_domain_probe(&list, subject, &ctx.config, &st.vars, &mut p).unwrap_or(false)
}

/// `H=name (helo) [ip]`, as Exim names the client in log lines.
fn host_ident(conn: &Conn, st: &State) -> Option<String> {
    let ip = conn.peer?.ip();
    let mut s = String::from("H=");
    if let Some(n) = &st.host_name {
        s.push_str(n);
        s.push(' ');
    }
    if let Some(h) = &st.helo {
        if st.host_name.as_deref() != Some(h.as_str()) {
            s.push_str(&format!("({h}) "));
        }
    }
    s.push_str(&format!("[{ip}]"));
    Some(s)
}

/// `-bh` trace lines go to standard error behind Exim's `>>> `.
struct StderrTrace;

impl oxim_conf::TraceSink for StderrTrace {
    fn line(&mut self, text: &str) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), ">>> {text}");
    }
}

/// `-bh <ip>`: an SMTP session on stdin/stdout as if from `ip`, traced.
/// Nothing is stored or delivered. (`-bhc` would run callouts for real;
/// oxim has no callouts yet and refuses a `callout` option in `verify`.)
pub fn run_host_check(ctx: Arc<Ctx>, ip: IpAddr, _callout: bool) -> Result<i32> {
    use std::io::Write as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    {
        let mut out = std::io::stdout().lock();
        write!(
            out,
            "\n**** SMTP testing session as if from host {ip}\n\
             **** but without any ident (RFC 1413) callback.\n\
             **** This is not for real!\n\n"
        )?;
        out.flush()?;
    }
    let conn = Conn {
        peer: Some(SocketAddr::new(ip, 0)),
        local: None,
        tfo: ServerTfo::None,
        base_protocol: "smtp",
        batch: false,
        tls_on_connect: false,
        checking: true,
    };
    rt.block_on(session(
        ctx.clone(),
        ServerIo::Std(tokio::io::stdin(), tokio::io::stdout()),
        conn,
    ))?;
    Ok(0)
}

/// `smtp_accept_max` and `smtp_accept_max_per_host` (counts include this
/// connection): `Some(per_host)` when the connection is one too many.
fn over_connection_limit(ctx: &Ctx, ip: IpAddr, vars: &Vars) -> Option<bool> {
    let main = &ctx.config.main;
    let max = main.int("smtp_accept_max");
    if max > 0
        && crate::daemon::CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed) > max as usize
    {
        return Some(false);
    }
    let raw = main.str("smtp_accept_max_per_host");
    if raw.is_empty() {
        return None;
    }
    let text = match oxim_conf::expand(raw, vars) {
        Ok(t) => t,
        Err(e) => {
            ctx.log_text(
                None,
                &format!("expansion of smtp_accept_max_per_host failed: {e}"),
            );
            return None;
        }
    };
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<usize>() {
        Ok(n) => (n > 0 && crate::daemon::host_connections(ip) > n).then_some(true),
        Err(_) => {
            ctx.log_text(
                None,
                &format!(
                    "expansion of smtp_accept_max_per_host for [{ip}] contains non-digit: {text}"
                ),
            );
            None
        }
    }
}

/// Reverse lookup with forward confirmation, as Exim does before it trusts
/// a PTR name. `localhost` is taken to be the loopback addresses.
async fn lookup_host_name(ctx: &Ctx, ip: IpAddr) -> Option<String> {
    let names = ctx.dns.reverse(ip).await.ok()?;
    for name in names {
        if name.eq_ignore_ascii_case("localhost") {
            if ip.is_loopback() {
                return Some(name);
            }
            continue;
        }
        if let Ok(addrs) = ctx.dns.addresses(&name).await {
            if addrs.contains(&ip) {
                return Some(name);
            }
        }
    }
    None
}

/// Serve one TCP connection to completion. Never panics on client input.
pub async fn serve_tcp(ctx: Arc<Ctx>, stream: TcpStream, peer: SocketAddr, tfo: ServerTfo) {
    let local = stream.local_addr().ok();
    let _ = stream.set_nodelay(true);
    let conn = Conn {
        peer: Some(peer),
        local,
        tfo,
        base_protocol: "smtp",
        batch: false,
        tls_on_connect: crate::tls::on_connect(&ctx, local.map(|l| l.port())),
        checking: false,
    };
    let _ = session(ctx, ServerIo::Tcp(MaybeTls::Plain(stream)), conn).await;
}

/// `-bs` / `-bS`: an SMTP session on stdin/stdout.
pub fn run_stdin(ctx: Arc<Ctx>, batch: bool) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let conn = Conn {
        peer: None,
        local: None,
        tfo: ServerTfo::None,
        base_protocol: if batch { "local-bsmtp" } else { "local-smtp" },
        batch,
        tls_on_connect: false,
        checking: false,
    };
    let ids = rt.block_on(session(
        ctx.clone(),
        ServerIo::Std(tokio::io::stdin(), tokio::io::stdout()),
        conn,
    ))?;
    if ctx.inv.dont_deliver {
        return Ok(0);
    }
    for id in ids {
        match ctx.inv.delivery {
            DeliveryMode::Queue => {}
            _ if ctx.inv.queue_only(ctx.config.main.bool("queue_only")) => {}
            DeliveryMode::Background => crate::submit::spawn_background_delivery(&ctx, &id)?,
            DeliveryMode::Interactive => {
                if let Ok(mid) = id.parse() {
                    rt.block_on(crate::deliver::deliver_id(&ctx, &mid, false))?;
                }
            }
        }
    }
    Ok(0)
}

fn server_config(ctx: &Ctx, conn: &Conn) -> ServerConfig {
    let main = &ctx.config.main;
    ServerConfig {
        enforce_sync: conn.peer.is_some() && !conn.checking && main.bool("smtp_enforce_sync"),
        max_synprot_errors: u32::try_from(main.int("smtp_max_synprot_errors")).unwrap_or(3),
        max_unknown_commands: u32::try_from(main.int("smtp_max_unknown_commands")).unwrap_or(3),
        recipients_max: usize::try_from(ctx.expand_int("recipients_max", &ctx.base_vars(), 50_000))
            .unwrap_or(0),
        allow_unqualified_sender: conn.peer.is_none(),
        allow_unqualified_recipient: conn.peer.is_none(),
        ..ServerConfig::default()
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// [`write_out`] that gives up at `deadline`: `Ok(false)` if it did.
async fn write_by<W: AsyncWrite + Unpin>(
    w: &mut W,
    sess: &mut ServerSession,
    batch: bool,
    deadline: Option<Instant>,
) -> std::io::Result<bool> {
    match deadline {
        Some(d) => match tokio::time::timeout_at(d, write_out(w, sess, batch)).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        },
        None => write_out(w, sess, batch).await.map(|()| true),
    }
}

async fn write_out<W: AsyncWrite + Unpin>(
    w: &mut W,
    sess: &mut ServerSession,
    batch: bool,
) -> std::io::Result<()> {
    let out = sess.take_output();
    if !out.is_empty() && !batch {
        w.write_all(&out).await?;
        w.flush().await?;
    }
    Ok(())
}

/// The session's byte stream: a TCP connection (plain until STARTTLS or
/// TLS on connect), or stdin/stdout for `-bs`/`-bS`.
enum ServerIo {
    Tcp(MaybeTls<TcpStream>),
    Std(tokio::io::Stdin, tokio::io::Stdout),
}

impl ServerIo {
    /// Input a client sent before it could have seen our banner, read
    /// without waiting (for `smtp_enforce_sync`). Plain TCP only.
    fn take_pending(&mut self) -> Vec<u8> {
        let ServerIo::Tcp(MaybeTls::Plain(s)) = self else {
            return Vec::new();
        };
        let mut buf = vec![0u8; 4096];
        match s.try_read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                buf
            }
            Err(_) => Vec::new(),
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            ServerIo::Std(r, _) => std::pin::Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            ServerIo::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            ServerIo::Std(_, w) => std::pin::Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// `TLS error on connection from ...`, as Exim logs a failed handshake.
fn log_tls_error(ctx: &Ctx, conn: &Conn, st: &State, what: &str, e: &str) {
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

/// `$tls_in_cipher`, `$tls_in_cipher_std`, `$tls_in_ver`.
fn set_tls_vars(vars: &mut Vars, t: &TlsSession) {
    vars.set("tls_in_cipher", t.cipher.clone())
        .set("tls_in_cipher_std", t.cipher_std.clone())
        .set("tls_in_ver", t.version.clone());
}

/// Answer STARTTLS and run the handshake. False when the connection is
/// lost (a failed handshake cannot go back to plain text).
async fn start_tls(
    ctx: &Ctx,
    conn: &Conn,
    sess: &mut ServerSession,
    st: &mut State,
    io: &mut ServerIo,
    timeout: Duration,
) -> std::io::Result<bool> {
    let cfg = match (&*io, crate::tls::server_tls(ctx, &st.vars)) {
        (ServerIo::Tcp(MaybeTls::Plain(_)), Some(Ok(c))) => c,
        (_, Some(Err(e))) => {
            log_tls_error(ctx, conn, st, "cert/key setup", &e);
            let _ = sess.respond(Reply::new(454, "TLS currently unavailable"));
            return Ok(true);
        }
        _ => {
            let _ = sess.respond(Reply::new(454, "TLS currently unavailable"));
            return Ok(true);
        }
    };
    // The session drops anything pipelined after STARTTLS (it came in clear).
    let _ = sess.respond(Reply::new(220, "TLS go ahead"));
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

async fn session(ctx: Arc<Ctx>, mut io: ServerIo, conn: Conn) -> Result<Vec<String>> {
    let main = &ctx.config.main;
    let mut sess = ServerSession::new(server_config(&ctx, &conn));
    let mut vars = ctx.base_vars();
    if let Some(p) = conn.peer {
        vars.set("sender_host_address", p.ip().to_string())
            .set("sender_host_port", p.port().to_string());
    }
    if let Some(l) = conn.local {
        vars.set("received_ip_address", l.ip().to_string())
            .set("received_port", l.port().to_string())
            .set("interface_address", l.ip().to_string())
            .set("interface_port", l.port().to_string());
    }
    let mut st = State {
        host_name: None,
        lookup_done: false,
        helo: None,
        esmtp: false,
        sender: None,
        recipients: Vec::new(),
        body: Vec::new(),
        too_big: false,
        vars,
        accepted_ids: Vec::new(),
        messages: 0,
        commands: 0,
        no_pipelining: false,
        nolog: false,
        started: std::time::Instant::now(),
        bdat: false,
        body_8bitmime: false,
        header_max: (
            u64::try_from(main.int("header_maxsize")).unwrap_or(0),
            u64::try_from(main.int("header_line_maxsize")).unwrap_or(0),
        ),
        header: HeaderLimits::new(0, 0),
        header_excess: None,
        tls: None,
        acl: AclTrace::default(),
        helo_counted: false,
        rset_counted: false,
        count_nonmail: None,
    };
    if conn.checking {
        st.acl.trace = oxim_conf::Trace::to(Box::new(StderrTrace));
    }
    let peer_ip = conn.peer.map(|p| p.ip());

    // Connection-level policy.
    if let Some(ip) = peer_ip {
        // Connection counts first, before any lookup: a flood costs little.
        let over = if conn.checking {
            None
        } else {
            over_connection_limit(&ctx, ip, &st.vars)
        };
        if let Some(per_host) = over {
            ctx.log(&LogRecord::TooManyConnections {
                ip,
                port: conn.peer.map_or(0, |p| p.port()),
                interface: conn.local.map(|l| (l.ip(), l.port())),
                per_host,
            });
            let text = if per_host {
                "Too many concurrent SMTP connections from this IP address; please try again later."
            } else {
                "Too many concurrent SMTP connections; please try again later."
            };
            sess.shutdown(Reply::new(421, text));
            write_out(&mut io, &mut sess, conn.batch).await?;
            return Ok(Vec::new());
        }
        st.nolog = host_option(&ctx, &mut st, "hosts_connection_nolog", ip).await;
        if host_option(&ctx, &mut st, "host_lookup", ip).await {
            st.host_name = lookup_host_name(&ctx, ip).await;
            st.lookup_done = true;
            if let Some(n) = &st.host_name {
                st.vars.set("sender_host_name", n.clone());
            }
        }
        if ctx.selector.has(oxim_log::Selector::SmtpConnection) && !st.nolog {
            if let Some(host) = sender_host(&conn, &st) {
                let count = crate::daemon::CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed);
                ctx.log(&LogRecord::SmtpConnection {
                    host,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
        }
        if host_option(&ctx, &mut st, "host_reject_connection", ip).await {
            if let Some(host) = sender_host(&conn, &st) {
                ctx.log(&LogRecord::ConnectionRefused {
                    host,
                    reason: "host_reject_connection",
                });
            }
            sess.shutdown(Reply::new(554, "SMTP service not available"));
            write_out(&mut io, &mut sess, conn.batch).await?;
            return Ok(Vec::new());
        }
        // Traced as Exim checks them (oxim does not act on them yet).
        for option in [
            "sender_unqualified_hosts",
            "recipient_unqualified_hosts",
            "helo_verify_hosts",
            "helo_try_verify_hosts",
            "helo_accept_junk_hosts",
        ] {
            host_option(&ctx, &mut st, option, ip).await;
        }
        st.acl.host_ident = host_ident(&conn, &st);
        if let Some(acl) = acl_for(&ctx, "acl_smtp_connect", &st.vars) {
            let env = AclEnv {
                host_ip: peer_ip,
                host_name: st.host_name.as_deref(),
                sender: None,
                recipient: None,
            };
            let o = acl::eval_traced(&ctx, &acl, &mut st.vars, &env, &mut st.acl).await;
            sync_client_name(&mut st);
            log_acl_writes(&ctx, &o);
            st.no_pipelining |= o.controls.iter().any(|c| c.trim() == "no_pipelining");
            if o.verdict != Verdict::Accept {
                let reason = o.log_message.clone().or(o.message.clone());
                log_reject(
                    &ctx,
                    &conn,
                    &st,
                    None,
                    RejectWhat::Connection,
                    o.verdict == Verdict::Defer,
                    reason.as_deref(),
                );
                sess.shutdown(deny_reply(&o, 550, "Administrative prohibition"));
                write_out(&mut io, &mut sess, conn.batch).await?;
                return Ok(Vec::new());
            }
        }
    }

    let banner_src = if main.is_set("smtp_banner") {
        main.str("smtp_banner").to_string()
    } else {
        format!(
            "$smtp_active_hostname ESMTP {} $version_number $tod_full",
            ctx.harness.product()
        )
    };
    let banner =
        oxim_conf::expand(&banner_src, &st.vars).unwrap_or_else(|_| ctx.primary_hostname.clone());
    let banner_lines: Vec<&str> = banner.split('\n').collect();
    // smtp_receive_timeout: each line, command or body, must arrive whole
    // within it, timed from its first byte, so a client trickling bytes
    // cannot hold the session; waiting for a line to start is limited the
    // same way. smtp_session_max_time bounds the whole session. A TLS
    // handshake gets the same time as a line.
    let line_timeout = Some(main.time("smtp_receive_timeout")).filter(|d| !d.is_zero());
    let session_deadline = Some(main.time("smtp_session_max_time"))
        .filter(|d| !d.is_zero() && conn.peer.is_some())
        .map(|d| Instant::from_std(st.started) + d);
    let timeout = line_timeout.unwrap_or(Duration::from_secs(300));
    if conn.tls_on_connect {
        if !tls_on_connect(
            &ctx,
            &conn,
            &mut sess,
            &mut st,
            &mut io,
            banner_lines,
            timeout,
        )
        .await
        {
            return Ok(Vec::new());
        }
    } else {
        // A client that talks before the banner is out of sync (or a
        // spammer): the session answers 554 and closes when smtp_enforce_sync
        // is on.
        let early = io.take_pending();
        if !early.is_empty() {
            sess.handle_input(&early);
        }
        let _ = sess.greet(Reply::from_lines(220, banner_lines));
    }
    write_out(&mut io, &mut sess, conn.batch).await?;

    let size_limit = ctx.expand_int("message_size_limit", &st.vars, 50 * 1024 * 1024);
    // Small per connection: ten thousand idle clients must not cost much.
    let mut buf = vec![0u8; 8 * 1024];
    let mut lines_seen = sess.lines_received();
    let mut line_started: Option<Instant> = None;
    let mut last_read = Instant::now();
    loop {
        let mut lost = false;
        while let Some(ev) = sess.poll_event() {
            if matches!(ev, Event::StartTls) {
                st.commands += 1;
                if !start_tls(&ctx, &conn, &mut sess, &mut st, &mut io, timeout).await? {
                    lost = true;
                    break;
                }
                continue;
            }
            handle_event(&ctx, &conn, &mut sess, &mut st, ev, size_limit).await;
            if sess.is_closed() {
                break;
            }
        }
        if lost {
            break;
        }
        // A client that does not read its replies cannot stall us either.
        let write_deadline = earliest(
            Some(Instant::now() + line_timeout.unwrap_or(Duration::from_secs(300))),
            session_deadline,
        );
        if !write_by(&mut io, &mut sess, conn.batch, write_deadline).await? {
            log_end(&ctx, &conn, &st, SmtpEnd::Timeout);
            break;
        }
        if sess.is_closed() {
            break;
        }
        let mid_line = sess.mid_line();
        if sess.lines_received() != lines_seen {
            lines_seen = sess.lines_received();
            line_started = mid_line.then_some(last_read);
        } else if !mid_line {
            line_started = None;
        } else if line_started.is_none() {
            line_started = Some(last_read);
        }
        let line_deadline = line_timeout.map(|t| line_started.unwrap_or_else(Instant::now) + t);
        let deadline = earliest(line_deadline, session_deadline);
        let read = io.read(&mut buf);
        let res = match deadline {
            Some(d) => tokio::time::timeout_at(d, read).await,
            None => Ok(read.await),
        };
        let n = match res {
            Err(_) => {
                let session_over = session_deadline.is_some() && deadline == session_deadline;
                let (how, text) = if session_over {
                    (
                        SmtpEnd::SessionTimeLimit,
                        format!(
                            "{}: SMTP session time limit exceeded - closing connection",
                            ctx.primary_hostname
                        ),
                    )
                } else if sess.state() == oxim_smtp::SessionState::Data {
                    (
                        SmtpEnd::DataTimeout {
                            sender: st.sender.as_deref().unwrap_or(""),
                        },
                        format!(
                            "{} SMTP incoming data timeout - closing connection.",
                            ctx.primary_hostname
                        ),
                    )
                } else {
                    (
                        SmtpEnd::Timeout,
                        format!(
                            "{}: SMTP command timeout - closing connection",
                            ctx.primary_hostname
                        ),
                    )
                };
                log_end(&ctx, &conn, &st, how);
                sess.shutdown(Reply::new(421, text));
                let by = Some(Instant::now() + Duration::from_secs(5));
                let _ = write_by(&mut io, &mut sess, conn.batch, by).await;
                break;
            }
            Ok(Err(_)) | Ok(Ok(0)) => {
                if st.commands > 0 {
                    log_end(&ctx, &conn, &st, SmtpEnd::Lost);
                }
                break;
            }
            Ok(Ok(n)) => n,
        };
        last_read = Instant::now();
        sess.handle_input(&buf[..n]);
    }
    // TLS: close_notify before the connection goes (plain TCP: FIN).
    if st.tls.is_some() {
        let _ = tokio::time::timeout(Duration::from_secs(5), io.shutdown()).await;
    }
    Ok(st.accepted_ids)
}

/// The ACL an `acl_smtp_*` option names. A value starting with an ACL verb
/// is the text of an inline ACL, used as written (its conditions are
/// expanded when evaluated, once). Otherwise the value is expanded (it may
/// choose an ACL by condition) and must then name an ACL: expanded text is
/// never parsed as ACL text, so data in a variable can never become policy or
/// be expanded twice.
fn acl_for(ctx: &Ctx, option: &str, vars: &Vars) -> Option<oxim_conf::Acl> {
    let raw = ctx.config.main.str(option).trim();
    if raw.is_empty() {
        return None;
    }
    let first = raw.split_whitespace().next().unwrap_or("");
    if oxim_conf::AclVerb::from_name(first).is_some() || !raw.contains('$') {
        return ctx.config.resolve_acl(raw);
    }
    let name = match oxim_conf::expand(raw, vars) {
        Ok(v) => v.trim().to_string(),
        Err(e) => {
            ctx.log_text(None, &format!("failed to expand {option}: {e}"));
            String::new()
        }
    };
    match ctx.config.acl(&name) {
        Some(acl) => Some(acl.clone()),
        None if name.is_empty() => None,
        None => {
            ctx.log_text(None, &format!("{option}: ACL \"{name}\" not found"));
            // Deny rather than accept when the policy cannot be found.
            oxim_conf::acl::parse_inline(option, "deny").ok()
        }
    }
}

fn log_acl_writes(ctx: &Ctx, o: &acl::AclOutcome) {
    for l in &o.logwrites {
        ctx.log_text(None, l);
    }
}

/// Exim's reply to a refusal: the ACL's code for a deny, 451 for a
/// defer (with the ACL's message only when a `defer` verb gave one).
fn deny_reply(o: &acl::AclOutcome, default_code: u16, default_text: &str) -> Reply {
    if o.verdict == Verdict::Defer {
        let text = match (&o.message, o.temp_details) {
            (Some(m), true) => m.clone(),
            _ => "Temporary local problem - please try later".to_string(),
        };
        return Reply::new(451, text);
    }
    Reply::new(
        default_code,
        o.message
            .clone()
            .unwrap_or_else(|| default_text.to_string()),
    )
}

fn protocol(conn: &Conn, st: &State) -> String {
    match conn.base_protocol {
        "smtp" => crate::tls::protocol_name(st.esmtp, st.tls.is_some(), false),
        "local-smtp" if st.esmtp => "local-esmtp".into(),
        p => p.into(),
    }
}

async fn handle_event(
    ctx: &Arc<Ctx>,
    conn: &Conn,
    sess: &mut ServerSession,
    st: &mut State,
    ev: Event,
    size_limit: u64,
) {
    let main = &ctx.config.main;
    let peer_ip = conn.peer.map(|p| p.ip());
    st.commands += 1;
    // Exim checks smtp_accept_max_nonmail_hosts when the first non-mail
    // command arrives (one HELO/EHLO and one RSET per message are free).
    let nonmail = match &ev {
        Event::Helo { .. } => std::mem::replace(&mut st.helo_counted, true),
        Event::Rset => std::mem::replace(&mut st.rset_counted, true),
        Event::Noop | Event::Etrn(_) | Event::Vrfy(_) | Event::Expn(_) | Event::Help(_) => true,
        _ => false,
    };
    if nonmail && st.count_nonmail.is_none() {
        if let Some(ip) = peer_ip {
            st.count_nonmail = Some(host_option(ctx, st, "smtp_accept_max_nonmail_hosts", ip).await);
        }
    }
    match &ev {
        Event::Mail(m) => {
            st.vars.set("smtp_command", format!("MAIL FROM:{}", m.raw));
        }
        Event::Rcpt(r) => {
            st.vars.set("smtp_command", format!("RCPT TO:{}", r.raw));
        }
        _ => {}
    }
    match ev {
        Event::Helo { ehlo, name } => {
            st.helo = Some(name.clone());
            st.esmtp = ehlo;
            st.vars.set("sender_helo_name", name.clone());
            if let Some(ip) = peer_ip {
                if st.host_name.is_none() {
                    let helo = name.to_ascii_lowercase();
                    let matches = domain_option(ctx, st, "helo_lookup_domains", &helo);
                    if matches {
                        st.host_name = lookup_host_name(ctx, ip).await;
                        st.lookup_done = true;
                        if let Some(n) = &st.host_name {
                            st.vars.set("sender_host_name", n.clone());
                        }
                    }
                }
            }
            st.acl.host_ident = host_ident(conn, st);
            if let Some(acl) = acl_for(ctx, "acl_smtp_helo", &st.vars) {
                let env = AclEnv {
                    host_ip: peer_ip,
                    host_name: st.host_name.as_deref(),
                    sender: None,
                    recipient: None,
                };
                let o = acl::eval_traced(ctx, &acl, &mut st.vars, &env, &mut st.acl).await;
                sync_client_name(st);
                log_acl_writes(ctx, &o);
                if o.verdict != Verdict::Accept {
                    let _ = sess.reject(deny_reply(&o, 550, "Administrative prohibition"));
                    return;
                }
            }
            let ip_text = peer_ip.map(|i| i.to_string());
            let greeting = hello_text(&name, st.host_name.as_deref(), None, ip_text.as_deref());
            // The advertising lists, in Exim's order (traced under -bh).
            let (mut pipelining, mut chunking) = (conn.peer.is_none(), false);
            if let (Some(ip), true) = (peer_ip, ehlo) {
                host_option(ctx, st, "dsn_advertise_hosts", ip).await;
                pipelining = !st.no_pipelining
                    && host_option(ctx, st, "pipelining_advertise_hosts", ip).await;
                chunking = host_option(ctx, st, "chunking_advertise_hosts", ip).await;
            }
            let ext = Extensions {
                size: Some(size_limit),
                eight_bit_mime: main.bool("accept_8bitmime"),
                pipelining,
                chunking,
                help: true,
                starttls: st.tls.is_none()
                    && peer_ip.is_some_and(|ip| {
                        crate::tls::advertise(ctx, ip, st.host_name.as_deref(), &st.vars)
                    }),
                ..Extensions::default()
            };
            let _ = sess.accept_ehlo(&ctx.primary_hostname, &greeting, &ext);
        }
        Event::Mail(m) => {
            let sender = if conn.peer.is_none() && !crate::submit::caller_is_trusted(ctx) {
                // An untrusted local caller cannot choose the sender.
                format!("{}@{}", ctx.caller.login, ctx.qualify_domain)
            } else if m.from.is_empty() || m.from.contains('@') {
                m.from.clone()
            } else {
                ctx.qualify_recipient(&m.from)
            };
            if let (Some(sz), true) = (m.size, size_limit > 0) {
                if sz > size_limit {
                    let _ = sess.reject(Reply::new(552, "Message size exceeds maximum permitted"));
                    return;
                }
            }
            if let Some(acl) = acl_for(ctx, "acl_smtp_mail", &st.vars) {
                let mut vars = st.vars.clone();
                vars.set("sender_address", sender.clone());
                let env = AclEnv {
                    host_ip: peer_ip,
                    host_name: st.host_name.as_deref(),
                    sender: Some(&sender),
                    recipient: None,
                };
                let o = acl::eval_traced(ctx, &acl, &mut vars, &env, &mut st.acl).await;
                sync_client_name(st);
                log_acl_writes(ctx, &o);
                if o.verdict != Verdict::Accept {
                    let reason = o.log_message.clone().or(o.message.clone());
                    log_reject(
                        ctx,
                        conn,
                        st,
                        None,
                        RejectWhat::Mail(&sender),
                        o.verdict == Verdict::Defer,
                        reason.as_deref(),
                    );
                    let _ = sess.reject(deny_reply(&o, 550, "Administrative prohibition"));
                    return;
                }
            }
            st.vars.set("sender_address", sender.clone());
            st.sender = Some(sender);
            st.body_8bitmime = m.body == Some(oxim_smtp::BodyType::EightBitMime);
            st.recipients.clear();
            let _ = sess.accept_mail();
        }
        Event::Rcpt(rc) => {
            let rcpt = ctx.qualify_recipient(&rc.to);
            st.acl.domains.clear();
            st.acl.local_parts.clear();
            let sender = st.sender.clone().unwrap_or_default();
            // Without an RCPT ACL Exim refuses every recipient over TCP.
            let outcome = match acl_for(ctx, "acl_smtp_rcpt", &st.vars) {
                Some(acl) => {
                    let mut vars = st.vars.clone();
                    vars.set_address(&rcpt);
                    let env = AclEnv {
                        host_ip: peer_ip,
                        host_name: st.host_name.as_deref(),
                        sender: Some(&sender),
                        recipient: Some(&rcpt),
                    };
                    let o = acl::eval_traced(ctx, &acl, &mut vars, &env, &mut st.acl).await;
                    sync_client_name(st);
                    log_acl_writes(ctx, &o);
                    Some(o)
                }
                None if conn.peer.is_none() => None,
                None => Some(acl::AclOutcome {
                    verdict: Verdict::Deny,
                    message: None,
                    log_message: None,
                    controls: Vec::new(),
                    logwrites: Vec::new(),
                    warnings: Vec::new(),
                    temp_details: false,
                }),
            };
            match outcome {
                Some(o) if o.verdict != Verdict::Accept && o.verdict != Verdict::Discard => {
                    let reason = o.log_message.clone().or(o.message.clone());
                    log_reject(
                        ctx,
                        conn,
                        st,
                        Some(&sender),
                        RejectWhat::Rcpt(&rcpt),
                        o.verdict == Verdict::Defer,
                        reason.as_deref(),
                    );
                    let _ = sess.reject(deny_reply(&o, 550, "Administrative prohibition"));
                }
                Some(o) if o.verdict == Verdict::Discard => {
                    let _ = sess.accept_rcpt();
                }
                _ => {
                    st.recipients.push(rcpt);
                    let _ = sess.accept_rcpt();
                }
            }
        }
        Event::Data => {
            if let Some(acl) = acl_for(ctx, "acl_smtp_predata", &st.vars) {
                let env = AclEnv {
                    host_ip: peer_ip,
                    host_name: st.host_name.as_deref(),
                    sender: st.sender.as_deref(),
                    recipient: None,
                };
                let o = acl::eval_traced(ctx, &acl, &mut st.vars, &env, &mut st.acl).await;
                sync_client_name(st);
                log_acl_writes(ctx, &o);
                if o.verdict != Verdict::Accept {
                    let _ = sess.reject(deny_reply(&o, 554, "Administrative prohibition"));
                    return;
                }
            }
            st.start_body();
            st.bdat = false;
            let _ = sess.start_data();
        }
        Event::DataChunk(chunk) => {
            if !st.too_big && st.header_excess.is_none() {
                if let Some(excess) = st.header.feed(&chunk) {
                    // Exim logs at once and swallows the rest of the message.
                    st.header_excess = Some(excess);
                    st.body = Vec::new();
                    let (limit, line) = match excess {
                        HeaderExcess::Section => (st.header_max.0, false),
                        HeaderExcess::Line => (st.header_max.1, true),
                    };
                    ctx.log(&LogRecord::HeaderTooLong {
                        host: sender_host(conn, st),
                        ident: conn.peer.is_none().then_some(ctx.caller.login.as_str()),
                        limit,
                        line,
                    });
                } else if size_limit > 0 && (st.body.len() + chunk.len()) as u64 > size_limit {
                    st.too_big = true;
                    st.body = Vec::new();
                } else {
                    st.body.extend_from_slice(&chunk);
                }
            }
        }
        Event::DataEnd(_) => {
            let sender = st.sender.take().unwrap_or_default();
            let recipients = std::mem::take(&mut st.recipients);
            let chunked = std::mem::replace(&mut st.bdat, false);
            let body = std::mem::take(&mut st.body);
            if let Some(excess) = st.header_excess.take() {
                let _ = sess.reject(Reply::new(
                    552,
                    match excess {
                        HeaderExcess::Section => "Message header is ridiculously long",
                        HeaderExcess::Line => "A message header line is too long",
                    },
                ));
                return;
            }
            if st.too_big {
                log_reject(
                    ctx,
                    conn,
                    st,
                    Some(&sender),
                    RejectWhat::AfterData,
                    false,
                    Some("message too big"),
                );
                let _ = sess.reject(Reply::new(552, "Message size exceeds maximum permitted"));
                return;
            }
            let msg = Message::parse(&body);
            if let Some(acl) = acl_for(ctx, "acl_smtp_data", &st.vars) {
                let env = AclEnv {
                    host_ip: peer_ip,
                    host_name: st.host_name.as_deref(),
                    sender: Some(&sender),
                    recipient: None,
                };
                let o = acl::eval_traced(ctx, &acl, &mut st.vars, &env, &mut st.acl).await;
                sync_client_name(st);
                log_acl_writes(ctx, &o);
                if o.verdict != Verdict::Accept && o.verdict != Verdict::Discard {
                    let reason = o.log_message.clone().or(o.message.clone());
                    log_reject(
                        ctx,
                        conn,
                        st,
                        Some(&sender),
                        RejectWhat::AfterData,
                        o.verdict == Verdict::Defer,
                        reason.as_deref(),
                    );
                    let _ = sess.reject(deny_reply(&o, 550, "Administrative prohibition"));
                    return;
                }
            }
            if recipients.is_empty() {
                // All recipients discarded by ACLs.
                let _ = sess.accept_message("discarded");
                return;
            }
            let source = Source {
                protocol: ctx
                    .inv
                    .received_protocol
                    .clone()
                    .unwrap_or_else(|| protocol(conn, st)),
                ident: if conn.peer.is_none() {
                    Some(ctx.caller.login.clone())
                } else {
                    None
                },
                peer: conn.peer,
                host_name: st.host_name.clone(),
                helo: st.helo.clone(),
                interface: conn.local,
                tfo: conn.tfo,
                sender_set: false,
                reference: None,
                chunking: chunked,
                tls: st.tls.clone(),
            };
            let id = ctx.ids.next();
            let id_text = id.to_string();
            let mut prepared = receive::prepare(ctx, id, &source, &sender, &recipients, msg);
            prepared.env.body_8bitmime = st.body_8bitmime;
            st.helo_counted = false;
            st.rset_counted = false;
            st.acl.senders.clear();
            if conn.checking {
                // -bh: logged as received, but nothing is stored.
                drop(receive::finish(ctx, &source, prepared));
                let _ = sess.accept_message(&id_text);
                sess.note("\n**** SMTP testing: that is not a real message id!\n\n");
                return;
            }
            // The 250 goes out only once the files are on stable storage; the
            // group-commit writer shares fsyncs between concurrent messages.
            let written = match ctx.writer() {
                Some(w) => w
                    .write(
                        prepared.env.clone(),
                        prepared.headers.clone(),
                        prepared.msg.body.clone(),
                    )
                    .await
                    .map_err(anyhow::Error::from),
                None => ctx
                    .spool
                    .write_bytes(&prepared.env, &prepared.headers, &prepared.msg.body)
                    .map_err(anyhow::Error::from),
            };
            let res = written.map(|()| receive::finish(ctx, &source, prepared));
            match res {
                Ok(loaded) => {
                    let _ = sess.accept_message(&id_text);
                    st.messages += 1;
                    if conn.peer.is_some() {
                        let queue = ctx.inv.queue_only(ctx.config.main.bool("queue_only"));
                        if queue {
                            loaded.flush_msglog(ctx);
                        } else {
                            let c3 = ctx.clone();
                            tokio::spawn(async move {
                                if let Err(e) = crate::deliver::deliver_new(&c3, loaded).await {
                                    c3.log_text(Some(&id_text), &format!("delivery failed: {e:#}"));
                                }
                            });
                        }
                    } else {
                        loaded.flush_msglog(ctx);
                        st.accepted_ids.push(id_text);
                    }
                }
                Err(e) => {
                    ctx.log_text(None, &format!("spool write failed: {e:#}"));
                    let _ = sess.reject(Reply::new(
                        451,
                        "Temporary local problem - please try later",
                    ));
                }
            }
        }
        Event::Quit => {
            log_end(ctx, conn, st, SmtpEnd::Quit);
            let _ = sess.accept_quit(&ctx.primary_hostname);
        }
        Event::Vrfy(_) => {
            let _ = sess.respond(Reply::new(252, "Administrative prohibition"));
        }
        Event::Expn(_) => {
            let _ = sess.respond(Reply::new(550, "Administrative prohibition"));
        }
        Event::Help(_) => {
            let _ = sess.respond(help_reply(false, &[]));
        }
        Event::Etrn(arg) => etrn(ctx, conn, sess, st, &arg).await,
        Event::StartTls => {
            // Handled by the session loop (it needs the stream).
            let _ = sess.respond(Reply::new(454, "TLS currently unavailable"));
        }
        Event::Auth { .. } | Event::AuthResponse(_) => {
            let _ = sess.respond(Reply::new(503, "AUTH command used when not advertised"));
        }
        Event::Bdat { .. } => {
            // The first chunk of a message starts a new body.
            if !st.bdat {
                st.bdat = true;
                st.start_body();
            }
        }
        Event::Rset | Event::Noop => {}
        Event::Error(e) => {
            if e.closing {
                log_end(ctx, conn, st, SmtpEnd::Other(&e.detail));
            }
        }
    }
}

/// ETRN: only `-bh` goes through with it (tracing what it would run);
/// otherwise oxim refuses it.
async fn etrn(ctx: &Ctx, conn: &Conn, sess: &mut ServerSession, st: &mut State, arg: &str) {
    let acl = acl_for(ctx, "acl_smtp_etrn", &st.vars);
    let (true, Some(acl)) = (conn.checking, acl) else {
        let _ = sess.respond(Reply::new(458, "Administrative prohibition"));
        return;
    };
    if st.sender.is_some() {
        let _ = sess.respond(Reply::new(503, "ETRN is not permitted inside a transaction"));
        return;
    }
    let env = AclEnv {
        host_ip: conn.peer.map(|p| p.ip()),
        host_name: st.host_name.as_deref(),
        sender: None,
        recipient: None,
    };
    st.vars.set("smtp_command", sess.last_command().to_string());
    let o = acl::eval_traced(ctx, &acl, &mut st.vars, &env, &mut st.acl).await;
    sync_client_name(st);
    log_acl_writes(ctx, &o);
    if o.verdict != Verdict::Accept {
        let reason = o.log_message.clone().or(o.message.clone());
        log_reject(
            ctx,
            conn,
            st,
            None,
            RejectWhat::Other(&format!("ETRN {arg}")),
            o.verdict == Verdict::Defer,
            reason.as_deref(),
        );
        let _ = sess.reject(deny_reply(&o, 458, "Administrative prohibition"));
        return;
    }
    if ctx.config.main.str("smtp_etrn_command").is_empty() && !arg.starts_with('#') {
        let _ = sess.respond(Reply::new(501, "argument must begin with #"));
        return;
    }
    st.acl
        .trace
        .plain(|| "ETRN command is: exim -R".to_string());
    st.acl
        .trace
        .plain(|| "ETRN command execution skipped".to_string());
    let _ = sess.respond(Reply::new(250, o.message.as_deref().unwrap_or("OK")));
}

/// SMTPS: the TLS handshake before the banner. With
/// `tls_early_banner_hosts` the banner goes out with the server's handshake
/// flight; otherwise it is queued in the session for the caller to write.
/// False when the handshake failed (the connection is dropped).
async fn tls_on_connect(
    ctx: &Ctx,
    conn: &Conn,
    sess: &mut ServerSession,
    st: &mut State,
    io: &mut ServerIo,
    banner_lines: Vec<&str>,
    timeout: Duration,
) -> bool {
    let Some(ip) = conn.peer.map(|p| p.ip()) else {
        return false;
    };
    let cfg = match crate::tls::server_tls(ctx, &st.vars) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            log_tls_error(ctx, conn, st, "cert/key setup", &e);
            return false;
        }
        None => {
            log_tls_error(ctx, conn, st, "cert/key setup", "no tls_certificate is set");
            return false;
        }
    };
    let early = crate::tls::early_banner(ctx, ip, st.host_name.as_deref(), &st.vars);
    let ServerIo::Tcp(stream) = io else {
        return false;
    };
    let banner = if early {
        let _ = sess.greet(Reply::from_lines(220, banner_lines.clone()));
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
        let _ = sess.greet(Reply::from_lines(220, banner_lines));
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
                crate::tls::next_connection_id(),
                if seen { "seen" } else { "NOT SEEN" }
            ),
        );
    }
    true
}
