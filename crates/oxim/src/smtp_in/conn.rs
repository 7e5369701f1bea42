//! Connection set-up: what is known about the client, the per-session
//! state, connection counts and limits, the client's host name, and the log
//! lines that name the client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use oxim_log::{LogRecord, RejectWhat, Rejected, SenderHost, SmtpEnd};
use oxim_net::ServerTfo;
use oxim_tls::TlsSession;

use crate::acl::AclTrace;
use crate::ctx::Ctx;
use crate::message::{HeaderExcess, HeaderLimits};
use crate::vars::Vars;

/// Live connection count, for `smtp_accept_max`.
pub static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Live connections per client address, for `smtp_accept_max_per_host`.
static PER_HOST: LazyLock<Mutex<HashMap<IpAddr, usize>>> = LazyLock::new(Default::default);

/// One accepted connection, counted in [`CONNECTIONS`] and per client
/// address until dropped (also when its task panics).
#[derive(Debug)]
pub struct ConnSlot {
    ip: IpAddr,
}

impl ConnSlot {
    pub fn take(ip: IpAddr) -> ConnSlot {
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = PER_HOST.lock() {
            *m.entry(ip).or_insert(0) += 1;
        }
        ConnSlot { ip }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = PER_HOST.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// A daemon connection's [`ConnSlot`], given back as soon as the session
/// has answered QUIT: a client that got its 221 and connects again must not
/// find its finished connection still counted (Exim's count is of live
/// SMTP processes, and its child exits right after the 221), however late
/// the finished task is dropped on a loaded machine.
#[derive(Debug, Clone, Default)]
pub struct SlotHandle(Arc<Mutex<Option<ConnSlot>>>);

impl SlotHandle {
    pub fn new(slot: ConnSlot) -> SlotHandle {
        SlotHandle(Arc::new(Mutex::new(Some(slot))))
    }

    /// Give the slot back now (later calls, and the drop, do nothing).
    pub fn release(&self) {
        let slot = self.0.lock().ok().and_then(|mut s| s.take());
        drop(slot);
    }
}

/// Live connections from `ip`, this one included.
pub fn host_connections(ip: IpAddr) -> usize {
    PER_HOST
        .lock()
        .map(|m| m.get(&ip).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// Facts about an SMTP session's connection from a client (TCP, or
/// stdin/stdout for `-bs`/`-bS`). The transport's connections to other
/// servers are `deliver::smtp`'s `OutgoingConn`.
#[derive(Debug, Clone)]
pub struct IncomingConn {
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
    pub tfo: ServerTfo,
    /// `smtp` for TCP, `local-smtp` for -bs, `local-bsmtp` for -bS.
    pub base_protocol: &'static str,
    pub batch: bool,
    /// SMTPS: TLS starts before the banner.
    pub tls_on_connect: bool,
    /// `-bh`: a host-checking session (trace on stderr, nothing stored).
    pub checking: bool,
    /// On stdin/stdout (`-bs`, `-bS`, `-bh`), not a socket, even when a
    /// trusted caller gave the sending host with `-oMa`.
    pub stdin: bool,
    /// `$sender_ident` (`U=` in the log): the caller's login for a local
    /// session, or what a trusted caller set with `-oMt`.
    pub ident: Option<String>,
    /// `-oMs`: the sending host's name, taken as verified (no lookup).
    pub given_name: Option<String>,
    /// `-oMaa`, `-oMai`, `-oMas` apply (a trusted caller's `-bs`, or `-bh`).
    pub given_auth: bool,
    /// The daemon's count of this connection (default: not counted).
    pub slot: SlotHandle,
    /// The connection's number (` Ci=` in the log).
    pub id: u64,
}

/// Per-session mutable state the policy code keeps.
pub struct State {
    pub host_name: Option<String>,
    pub lookup_done: bool,
    pub helo: Option<String>,
    pub esmtp: bool,
    pub sender: Option<String>,
    pub recipients: Vec<String>,
    pub body: Vec<u8>,
    pub too_big: bool,
    pub vars: Vars,
    pub accepted_ids: Vec<String>,
    pub messages: u32,
    /// Commands received so far (a client that leaves straight after the
    /// banner is not logged as a lost connection).
    pub commands: u32,
    /// `hosts_connection_nolog` matched: no connection open/close lines.
    pub nolog: bool,
    pub started: std::time::Instant,
    /// The current message's body is arriving in BDAT chunks.
    pub bdat: bool,
    /// An RCPT ACL set `control = submission` for the current message.
    pub submission: bool,
    /// The current message was announced with `BODY=8BITMIME`.
    pub body_8bitmime: bool,
    /// The current transaction's `XOXIM-TXID=` token (replay-safe
    /// transactions, see `replay`).
    pub tx_token: Option<String>,
    /// `header_maxsize` and `header_line_maxsize`.
    pub header_max: (u64, u64),
    /// The current message's header section so far.
    pub header: HeaderLimits,
    /// The current message broke a header limit (it is being swallowed).
    pub header_excess: Option<HeaderExcess>,
    /// TLS is up (STARTTLS or TLS on connect).
    pub tls: Option<TlsSession>,
    /// The `-bh` trace and the named-list results kept for it.
    pub acl: AclTrace,
    /// The HELO/EHLO and the RSET free in each message have been used.
    pub helo_counted: bool,
    pub rset_counted: bool,
    /// The first AUTH of a session is free, like a first HELO.
    pub auth_counted: bool,
    /// `smtp_accept_max_nonmail_hosts` matched (checked once, when the
    /// first non-mail command arrives).
    pub count_nonmail: Option<bool>,
    /// Non-mail commands counted against `smtp_accept_max_nonmail`.
    pub nonmail_count: u32,
    /// The session ended without QUIT (end of input, or dropped for too
    /// many non-mail commands): Exim's `-bs`/`-bh` then exit with 1.
    pub lost: bool,
    /// SMTP AUTH state of the connection.
    pub auth: AuthState,
}

/// SMTP AUTH on this connection.
#[derive(Debug, Default)]
pub struct AuthState {
    /// Indexes (in `ctx.drivers.authenticators`) of the mechanisms the last
    /// EHLO advertised.
    pub advertised: Vec<usize>,
    /// An exchange waiting for the client's next line.
    pub progress: Option<AuthProgress>,
    /// Authenticated: the authenticator's instance name and the id
    /// `server_set_id` gave.
    pub done: Option<(String, Option<String>)>,
    /// The public name of that authenticator (not known for `-oMaa`).
    pub pubname: Option<String>,
    /// `AUTH=` of the current MAIL, when accepted.
    pub mail_sender: Option<String>,
}

/// An AUTH exchange between two lines.
#[derive(Debug)]
pub struct AuthProgress {
    /// Index of the authenticator.
    pub index: usize,
    /// The data items so far (`$auth1`, ...).
    pub items: Vec<String>,
    /// plaintext: prompts not yet dealt with.
    pub prompts: std::collections::VecDeque<String>,
    /// plaintext: prompts sent, or skipped because the client's data
    /// already held that many items.
    pub prompts_done: usize,
    /// cram_md5: the challenge sent.
    pub challenge: Option<String>,
}

/// What the session said of a reply this driver gave. A closed session
/// is the client's doing (there is nothing more to send); a reply nobody
/// was waiting for, or a second greeting, is a bug in the driver: it goes
/// to the main and panic logs instead of passing unnoticed.
pub fn replied(ctx: &Ctx, r: Result<(), oxim_smtp::SessionError>) {
    match r {
        Ok(()) | Err(oxim_smtp::SessionError::Closed) => {}
        Err(e) => ctx.log(&LogRecord::Text {
            id: None,
            text: &format!("SMTP session: internal error: {e}"),
            dest: oxim_log::Dest {
                main: true,
                reject: false,
                panic: true,
            },
        }),
    }
}

/// How the client names itself in auth log lines (Exim's host_and_ident):
/// `H=host [ip] U=ident`, or `U=login` for a local session.
pub fn host_and_ident(ctx: &Ctx, conn: &IncomingConn, st: &State) -> String {
    let ident = conn.ident.as_deref();
    match sender_host(conn, st) {
        Some(h) => {
            let mut s = format!("H={}", h.describe(&ctx.selector));
            if let Some(u) = ident {
                s.push_str(&format!(" U={u}"));
            }
            s
        }
        None => format!("U={}", ident.unwrap_or("")),
    }
}

impl State {
    /// A new message body starts (DATA, or the first BDAT chunk).
    pub fn start_body(&mut self) {
        self.body.clear();
        self.too_big = false;
        self.header = HeaderLimits::new(self.header_max.0, self.header_max.1);
        self.header_excess = None;
    }
}

pub fn sender_host<'a>(conn: &IncomingConn, st: &'a State) -> Option<SenderHost<'a>> {
    conn.peer.map(|p| SenderHost {
        name: st.host_name.as_deref(),
        helo: st.helo.as_deref(),
        ip: p.ip(),
        port: p.port(),
        conn_id: Some(conn.id),
    })
}

/// Log a rejection (main and reject logs). Local `-bs` sessions have no
/// host: their lines name the caller (`U=`).
pub fn log_reject(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &State,
    sender: Option<&str>,
    what: RejectWhat<'_>,
    temporary: bool,
    reason: Option<&str>,
) {
    log_reject_id(ctx, conn, st, None, sender, what, temporary, reason);
}

/// [`log_reject`] for a message that has its id (after DATA).
#[allow(clippy::too_many_arguments)]
pub fn log_reject_id(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &State,
    id: Option<&str>,
    sender: Option<&str>,
    what: RejectWhat<'_>,
    temporary: bool,
    reason: Option<&str>,
) {
    let host = sender_host(conn, st);
    if host.is_none() && conn.ident.is_none() {
        return;
    }
    let auth = st.auth.done.as_ref().map(|(name, id)| match id {
        Some(id) => format!("{name}:{id}"),
        None => name.clone(),
    });
    ctx.log(&LogRecord::Rejected(Rejected {
        id,
        host,
        ident: conn.ident.as_deref(),
        tls: st.tls.as_ref().map(crate::ctx::tls_log),
        sender,
        auth: auth.as_deref(),
        what,
        temporary,
        reason,
    }));
}

pub fn log_end(ctx: &Ctx, conn: &IncomingConn, st: &State, how: SmtpEnd<'_>) {
    if st.nolog {
        return;
    }
    if local_session(conn) {
        let text = match how {
            SmtpEnd::Quit => Some("closed by QUIT"),
            SmtpEnd::Drop => Some("closed by DROP in ACL"),
            SmtpEnd::Other(t) => Some(t),
            _ => None,
        };
        if let Some(text) = text {
            ctx.log(&LogRecord::LocalSmtp {
                ident: conn.ident.as_deref(),
                conn_id: conn.id,
                end: Some((st.started.elapsed(), text)),
            });
            return;
        }
    }
    if let Some(host) = sender_host(conn, st) {
        ctx.log(&LogRecord::SmtpClosed {
            host,
            interface: conn.local.map(|l| (l.ip(), l.port())),
            ident: conn.ident.as_deref(),
            duration: Some(st.started.elapsed()),
            how,
        });
    }
}

/// Whether the client is in the host list of main option `option`
/// (untraced, no lookups: see [`host_option`]).
pub fn list_match_host(
    ctx: &Ctx,
    option: &str,
    ip: Option<IpAddr>,
    name: Option<&str>,
    vars: &Vars,
) -> bool {
    let list = ctx.config.main.str(option);
    if list.is_empty() {
        return false;
    }
    let Some(ip) = ip else { return false };
    let Ok(list) = oxim_conf::expand(list, vars) else {
        return false;
    };
    oxim_conf::match_host(&list, ip, name, &ctx.config, vars).unwrap_or(false)
}

/// Whether the client is in the host list of main option `option`, with
/// Exim's `-bh` trace (`host in <option>? ...`). A host name the list had
/// to look up becomes the session's.
pub async fn host_option(ctx: &Ctx, st: &mut State, option: &str, ip: IpAddr) -> bool {
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
    let connection = st.acl.connection();
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

/// Whether `subject` is in `raw`, the domain list of main option
/// `option`, with Exim's `-bh` trace (`<subject> in <option>? ...`).
pub fn domain_option(ctx: &Ctx, st: &mut State, option: &str, raw: &str, subject: &str) -> bool {
    if raw.is_empty() && !ctx.config.main.is_set(option) {
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

/// A host name a host list looked up becomes the session's.
pub fn sync_client_name(st: &mut State) {
    if st.host_name.is_none() {
        if let Some(n) = &st.acl.client.name {
            st.host_name = Some(n.clone());
            st.vars.set("sender_host_name", n.clone());
        }
    }
}

/// `H=name (helo) [ip]`, as Exim names the client in log lines.
pub fn host_ident(conn: &IncomingConn, st: &State) -> Option<String> {
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

/// The client as `warn` statements log it: `H=...` for a remote client,
/// `U=caller` for a local session (Exim's `host_and_ident`).
pub fn acl_ident(conn: &IncomingConn, st: &State) -> Option<String> {
    host_ident(conn, st).or_else(|| conn.ident.as_ref().map(|u| format!("U={u}")))
}

/// `-bh` trace lines go to standard error behind Exim's `>>> `.
pub struct StderrTrace;

impl oxim_conf::TraceSink for StderrTrace {
    fn line(&mut self, text: &str) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), ">>> {text}");
    }
}

/// `smtp_accept_max` and `smtp_accept_max_per_host` (counts include this
/// connection): `Some(per_host)` when the connection is one too many.
pub fn over_connection_limit(ctx: &Ctx, ip: IpAddr, vars: &Vars) -> Option<bool> {
    let max = ctx.settings.smtp_accept_max;
    if max > 0 && CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed) > max as usize {
        return Some(false);
    }
    let raw = ctx.settings.smtp_accept_max_per_host.as_str();
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
        Ok(n) => (n > 0 && host_connections(ip) > n).then_some(true),
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
pub async fn lookup_host_name(ctx: &Ctx, ip: IpAddr) -> Option<String> {
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

/// An SMTP session on stdin that is not a host check (`-bs`, `-bS`): Exim
/// names it by its caller in the connection lines.
pub fn local_session(conn: &IncomingConn) -> bool {
    conn.stdin && !conn.checking
}
