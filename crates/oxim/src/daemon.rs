//! The SMTP daemon: listening sockets with TCP Fast Open, one task per
//! connection, signals (SIGHUP reload, SIGTERM/SIGINT stop), the pid file,
//! and periodic queue runs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use oxim_log::{DaemonStarted, Listen, LogRecord};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::ctx::Ctx;
use crate::settings::service_port;
use crate::smtp_in::{ConnSlot, SlotHandle, CONNECTIONS};

/// One address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    pub addr: SocketAddr,
}

fn parse_port(s: &str) -> Result<u16> {
    service_port(s).ok_or_else(|| anyhow!("invalid port \"{}\" in listening list", s.trim()))
}

/// Parse `a.b.c.d.port`, `[::1]:port`, `::1.port`, or an address alone.
fn parse_interface(item: &str) -> Result<(IpAddr, Option<u16>)> {
    if let Some(rest) = item.strip_prefix('[') {
        if let Some((a, p)) = rest.split_once(']') {
            let ip: IpAddr = a.parse().map_err(|_| anyhow!("bad address {a}"))?;
            let port = p.trim_start_matches([':', '.']);
            return Ok((
                ip,
                if port.is_empty() {
                    None
                } else {
                    Some(parse_port(port)?)
                },
            ));
        }
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    if let Some((a, p)) = item.rsplit_once('.') {
        if let Ok(ip) = a.parse::<IpAddr>() {
            return Ok((ip, Some(parse_port(p)?)));
        }
    }
    Err(anyhow!("malformed interface \"{item}\""))
}

/// Work out the listening addresses from `-oX`, `local_interfaces` and
/// `daemon_smtp_ports`.
pub fn listen_specs(ctx: &Ctx) -> Result<Vec<ListenSpec>> {
    let mut ports_text = ctx.settings.daemon_smtp_ports.clone();
    let mut interfaces_text = ctx.settings.local_interfaces.clone();
    if let Some(o) = &ctx.inv.listen_override {
        let only_ports = o
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !c.is_ascii_uppercase() || c == ',' || c == ':');
        if only_ports && !o.contains('.') {
            ports_text = o.replace(',', ":");
        } else {
            interfaces_text = o.clone();
        }
    }
    let ports: Vec<u16> = oxim_conf::lists::list_items(&ports_text)
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<_>>()?;
    let interfaces: Vec<(IpAddr, Option<u16>)> = if interfaces_text.trim().is_empty() {
        vec![
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), None),
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), None),
        ]
    } else {
        oxim_conf::lists::list_items(&interfaces_text)
            .iter()
            .map(|i| parse_interface(i))
            .collect::<Result<_>>()?
    };
    let mut out = Vec::new();
    for (ip, port) in interfaces {
        match port {
            Some(p) => out.push(ListenSpec {
                addr: SocketAddr::new(ip, p),
            }),
            None => {
                for p in &ports {
                    out.push(ListenSpec {
                        addr: SocketAddr::new(ip, *p),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Re-launch ourselves detached with `-bdf` (for plain `-bd`), so the caller
/// returns at once as Exim's does.
pub fn detach(ctx: &Ctx, args: &[String]) -> Result<()> {
    check_daemon_caller(ctx)?;
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut cmd = Command::new(exe);
    std::os::unix::process::CommandExt::arg0(&mut cmd, &ctx.inv.prog);
    for a in args {
        cmd.arg(if a == "-bd" { "-bdf" } else { a.as_str() });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().context("cannot start the daemon process")?;
    Ok(())
}

/// The daemon's pid file (`-oP`): removed at exit only if it is still the
/// regular file holding this daemon's pid.
struct PidFile(Option<PathBuf>);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let ours = format!("{}\n", std::process::id());
            let regular = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
            if regular && std::fs::read_to_string(p).is_ok_and(|t| t == ours) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Write the pid file without following a symlink or truncating anything
/// but an earlier pid file (21Nails CVE-2020-28007/28014: a setuid MTA
/// writing its pid file through a path the caller chose). An existing
/// entry is replaced only when it is a regular, single-link file holding
/// just a number; the new file is created exclusively (`O_EXCL` never
/// follows a symlink) with mode 0644.
fn write_pid_file(path: &std::path::Path, pid: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    if let Ok(m) = std::fs::symlink_metadata(path) {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let is_pid = old.ends_with('\n')
            && old.len() > 1
            && old[..old.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if !m.file_type().is_file() || m.nlink() != 1 || !is_pid {
            return Err(anyhow!(
                "pid file {} exists and is not a pid file: not replaced",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot replace pid file {}", path.display()))?;
    }
    // Written under a private name first and then hard-linked into place,
    // so that whoever watches for the pid file never reads it empty;
    // link(2), like O_EXCL, fails rather than replace an entry that
    // appeared meanwhile, and never follows a symlink.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{}.{pid}.new", name.unwrap_or_default()));
    let _ = std::fs::remove_file(&tmp); // a stale one left by a crash
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{pid}\n").as_bytes()))
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp); // best effort: only our private name
    written.with_context(|| format!("cannot write pid file {}", path.display()))
}

/// An oxim installed setuid (running with more privilege than its caller)
/// starts a daemon only for root, the exim user or a member of the exim
/// group (Exim: "permission denied; not admin"), and writes an `-oP` pid
/// file only for root or the exim user (Exim's rule since 4.94.2).
fn check_daemon_caller(ctx: &Ctx) -> Result<()> {
    let r = nix::unistd::getresuid().context("getresuid")?;
    let g = nix::unistd::getresgid().context("getresgid")?;
    let elevated = r.effective != r.real || g.effective != g.real;
    if !elevated || r.real.is_root() {
        return Ok(());
    }
    let exim = crate::privilege::exim_ids(&ctx.settings, &ctx.harness)?;
    let in_group = g.real.as_raw() == exim.gid
        || nix::unistd::getgroups()
            .unwrap_or_default()
            .iter()
            .any(|gid| gid.as_raw() == exim.gid);
    if r.real.as_raw() != exim.uid && !in_group {
        return Err(anyhow!("permission denied; not admin"));
    }
    // -oP: root or the exim user, or the runner's patched copy (Exim's
    // test binary is allowed it too).
    if ctx.inv.pid_file.is_some()
        && r.real.as_raw() != exim.uid
        && !crate::harness::patched_binary()
    {
        return Err(anyhow!(
            "only uid=0 or uid={} can use -oP and -oPX (uid={} euid={} | {})",
            exim.uid,
            r.real,
            r.effective,
            r.real
        ));
    }
    Ok(())
}

/// Listening sockets bound (as root if started so) before anything else.
struct Bound {
    listeners: Vec<std::net::TcpListener>,
    specs: Vec<ListenSpec>,
    ports: Vec<u16>,
    /// The Prometheus endpoint (`metrics_listen`).
    metrics: Option<std::net::TcpListener>,
}

fn bind(ctx: &Ctx) -> Result<Bound> {
    let mut specs = listen_specs(ctx)?;
    if ctx.settings.disable_ipv6 {
        // disable_ipv6: IPv6 interfaces are not listened on.
        specs.retain(|s| !s.addr.is_ipv6());
    }
    let qlen = ctx.settings.tfo_queue_length;
    // The kernel caps the value at net.core.somaxconn.
    let backlog = ctx.settings.smtp_connect_backlog;
    let mut listeners = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    for s in &specs {
        let std_listener = match oxim_net::listen(s.addr, qlen, backlog) {
            Ok(l) => l,
            // An IPv6 wildcard may be unavailable (no IPv6 in a sandbox);
            // the IPv4 wildcard then still serves.
            Err(e) if s.addr.is_ipv6() && specs.len() > 1 => {
                ctx.log_text(
                    None,
                    &format!(
                        "IPv6 socket for port {} not opened ({e}); IPv4 still served",
                        s.addr.port()
                    ),
                );
                continue;
            }
            Err(e) => {
                return Err(anyhow!(
                    "socket bind() to port {} for address {} failed: {e}: daemon abandoned",
                    s.addr.port(),
                    s.addr.ip()
                ));
            }
        };
        if !ports.contains(&s.addr.port()) {
            ports.push(s.addr.port());
        }
        listeners.push(std_listener);
    }
    if listeners.is_empty() {
        return Err(anyhow!(
            "no listening sockets could be opened: daemon abandoned"
        ));
    }
    // Checked when the configuration was read.
    let metrics = match ctx
        .settings
        .metrics_listen
        .as_deref()
        .and_then(|m| m.parse::<std::net::SocketAddr>().ok())
    {
        Some(addr) => {
            let l = oxim_net::listen(addr, 0, 64).map_err(|e| {
                anyhow!("metrics_listen: bind() to {addr} failed: {e}: daemon abandoned")
            })?;
            Some(l)
        }
        None => None,
    };
    Ok(Bound {
        metrics,
        listeners,
        specs,
        ports,
    })
}

/// Run the daemon in the foreground until SIGTERM/SIGINT. Started as root,
/// it binds its sockets and writes its pid file, then runs as the exim user
/// (before any other thread exists).
pub fn run(ctx: Arc<Ctx>) -> Result<i32> {
    check_daemon_caller(&ctx)?;
    let bound = bind(&ctx)?;
    // Only when a delivery may have to run as another user: otherwise
    // the daemon delivers in its own tasks, as the exim user.
    if ctx.run_as.is_some() && ctx.drivers.may_switch_users() {
        let helper = start_delivery_helper(&ctx)?;
        let _ = ctx.delivery_helper.set(helper);
    }
    let pid = std::process::id();
    let pidfile = match &ctx.inv.pid_file {
        Some(p) => {
            write_pid_file(p, pid)?;
            PidFile(Some(p.clone()))
        }
        None => PidFile(None),
    };
    ctx.drop_privilege(false)
        .map_err(|e| anyhow!("{e:#}: daemon abandoned"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(ctx, bound, pidfile))
}

/// Local deliveries run as their users, which takes root; the daemon gives
/// root up for good once its sockets are bound. Before that, when its
/// configuration has routers or transports that set users, it starts this
/// helper: a small process that keeps root, reads requests on a pipe from
/// the daemon (a message id, or `Q` for a queue run) and starts a delivery
/// process for each (`-Mc id`, `-q`), which keeps root only as its saved
/// user id (see `privilege::drop_keeping_root`). It accepts nothing else,
/// and ends when the daemon does.
fn start_delivery_helper(ctx: &Ctx) -> Result<crate::ctx::DeliveryHelper> {
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut cmd = std::process::Command::new(exe);
    std::os::unix::process::CommandExt::arg0(&mut cmd, ctx.inv.prog.clone());
    if let Some(c) = &ctx.inv.config {
        cmd.arg("-C").arg(c);
    }
    for (k, v) in &ctx.inv.defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    cmd.arg("-oxim-delivery-helper");
    // Root in full: a daemon started by an admin user through a setuid
    // oxim has that user as its real id, and the helper serves only the
    // daemon.
    std::os::unix::process::CommandExt::uid(&mut cmd, 0);
    std::os::unix::process::CommandExt::gid(&mut cmd, 0);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().context("cannot start the delivery helper")?;
    let stdin = child.stdin.take().context("delivery helper has no stdin")?;
    // Reaped when it ends (after the daemon's pipe closes).
    std::thread::spawn(move || child.wait());
    Ok(Arc::new(std::sync::Mutex::new(stdin)))
}

/// The delivery helper's loop (`-oxim-delivery-helper`, started by the
/// daemon): each line of standard input is a message id to deliver or `Q`
/// for a queue run; anything else is ignored. `args` are the options to
/// pass on (`-C`, `-D`).
pub fn delivery_helper(prog: &str, args: &[String]) -> Result<i32> {
    use std::io::BufRead as _;
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let valid_id = |s: &str| {
        (s.len() == 16 || s.len() == 23)
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && s.as_bytes()[6] == b'-'
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        let mut cmd = std::process::Command::new(&exe);
        std::os::unix::process::CommandExt::arg0(&mut cmd, prog);
        cmd.args(args);
        if line == "Q" {
            cmd.arg("-q");
        } else if valid_id(line) {
            cmd.arg("-Mc").arg(line);
        } else {
            continue;
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Ok(mut child) = cmd.spawn() {
            std::thread::spawn(move || child.wait());
        }
    }
    Ok(0)
}

/// The one line saying whom the daemon runs as.
fn log_identity(ctx: &Ctx) {
    let text = if let Some(ids) = &ctx.run_as {
        format!("daemon running as exim user {ids}")
    } else if ctx.keeps_root {
        "warning: daemon running as root (exim_user is root): deliveries \
         are still refused for never_users"
            .to_string()
    } else {
        let uid = nix::unistd::Uid::current();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        format!(
            "daemon running as {name} (uid={uid} gid={}): not started as root",
            nix::unistd::Gid::current()
        )
    };
    ctx.log_text(None, &text);
}

async fn serve(ctx: Arc<Ctx>, bound: Bound, _pidfile: PidFile) -> Result<i32> {
    let Bound {
        listeners: std_listeners,
        specs,
        ports,
        metrics,
    } = bound;
    let mut listeners = Vec::new();
    for l in std_listeners {
        listeners.push(TcpListener::from_std(l)?);
    }
    let pid = std::process::id();
    let qtext = ctx
        .inv
        .queue_interval
        .map(|d| format!("-q{}", oxim_log::format_duration(d, false)));
    let version = format!(
        "{} {}",
        ctx.harness.product().to_ascii_lowercase(),
        ctx.version
    );
    // Ports in tls_on_connect_ports (all with -tls-on-connect) are SMTPS.
    let (tls_ports, plain_ports): (Vec<u16>, Vec<u16>) = ports
        .iter()
        .partition(|p| crate::smtp_in::tls::on_connect(&ctx, Some(**p)));
    fn listen(ports: &[u16]) -> Option<Listen<'_>> {
        (!ports.is_empty()).then_some(Listen::Ports {
            ports,
            families: None,
        })
    }
    let (smtp, smtps) = (listen(&plain_ports), listen(&tls_ports));
    if let Some(w) = crate::smtp_in::tls::self_signed_warning(&ctx) {
        ctx.log_text(None, w);
    }
    ctx.log(&LogRecord::DaemonStarted(DaemonStarted {
        version: &version,
        pid,
        queue_interval: qtext.as_deref(),
        smtp,
        smtps,
    }));
    if !ctx.harness.active {
        log_identity(&ctx);
    }
    crate::queue::recover_commit_log(&ctx);

    let shared = Arc::new(RwLock::new(ctx.clone()));
    if let Some(m) = metrics {
        let listener = TcpListener::from_std(m)?;
        if let Ok(a) = listener.local_addr() {
            ctx.log_text(None, &format!("metrics endpoint on http://{a}/metrics"));
        }
        let shared = shared.clone();
        let scrape = move || {
            let ctx = shared.read().map(|g| g.clone()).ok();
            crate::metrics::Scrape {
                queue: ctx
                    .as_ref()
                    .and_then(|c| c.spool.list().ok())
                    .map(|l| l.len() as u64),
                open_connections: CONNECTIONS.load(Ordering::Relaxed) as u64,
                spool: ctx
                    .as_ref()
                    .and_then(|c| c.writer_stats())
                    .unwrap_or_default(),
                kernel_tfo: crate::info::kernel_tfo_stats(),
            }
        };
        tokio::spawn(crate::metrics::serve(listener, Arc::new(scrape)));
    }
    let mut accepting = Vec::new();
    for l in listeners {
        let shared = shared.clone();
        accepting.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((stream, peer)) => {
                        let ctx = shared.read().map(|g| g.clone());
                        let Ok(ctx) = ctx else { continue };
                        let tfo = oxim_net::server_tfo(&stream);
                        let slot = SlotHandle::new(ConnSlot::take(peer.ip()));
                        tokio::spawn(async move {
                            crate::smtp_in::serve_tcp(ctx, stream, peer, tfo, slot.clone()).await;
                            slot.release();
                        });
                    }
                    Err(_) => {
                        // EMFILE and friends: back off briefly, keep serving.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    if let Some(interval) = ctx.inv.queue_interval {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let ctx = match shared.read() {
                    Ok(g) => g.clone(),
                    Err(_) => continue,
                };
                if !ctx.helper_request("Q") {
                    let _running = crate::deliver::in_flight::InFlight::start();
                    crate::queue::run_queue(&ctx, false).await;
                }
            }
        });
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                let ctx = shared.read().map(|g| g.clone());
                if let Ok(ctx) = ctx {
                    let tfo = oxim_net::TfoCounters::global().snapshot().to_string();
                    let spool = ctx.writer_stats().unwrap_or_default();
                    ctx.log_text(None, &format!(
                        "daemon stats: connections={}; {}; spool commits: {spool}",
                        CONNECTIONS.load(Ordering::Relaxed),
                        tfo.lines().collect::<Vec<_>>().join("; "),
                    ));
                }
            }
            _ = hup.recv() => {
                let inv = match shared.read() { Ok(g) => g.inv.clone(), Err(_) => continue };
                match Ctx::new(inv) {
                    Ok(new_ctx) => {
                        new_ctx.log_text(None, &format!(
                            "pid {pid}: SIGHUP received: re-read configuration"
                        ));
                        if let Ok(new_specs) = listen_specs(&new_ctx) {
                            if new_specs != specs {
                                new_ctx.log_text(None, &format!(
                                    "SIGHUP: listening addresses changed in the configuration; \
                                     still listening on {}: restart the daemon to use the new ones",
                                    specs.iter().map(|s| s.addr.to_string()).collect::<Vec<_>>().join(", ")
                                ));
                            }
                        }
                        if let Some(h) = ctx.delivery_helper.get() {
                            let _ = new_ctx.delivery_helper.set(h.clone());
                        }
                        if let Ok(mut g) = shared.write() { *g = new_ctx; }
                    }
                    Err(e) => {
                        ctx.log_text(None, &format!(
                            "SIGHUP: configuration not reloaded: {e:#}"
                        ));
                    }
                }
            }
        }
    }
    // Stop taking connections; let the deliveries already started finish
    // (their `=>` lines and the spool removal), as Exim's delivery
    // processes outlive its daemon.
    for a in &accepting {
        a.abort();
    }
    // Open SMTP sessions get a moment to finish what their clients have
    // already sent (a QUIT and its log line): Exim's session processes
    // outlive its daemon. One that stays open longer is cut.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_SESSION_WAIT;
    while crate::smtp_in::live_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if crate::deliver::in_flight::running() > 0 {
        let left = crate::deliver::in_flight::wait_idle(SHUTDOWN_DELIVERY_WAIT).await;
        if left > 0 {
            ctx.log_text(
                None,
                &format!(
                    "daemon stopped with {left} deliveries unfinished after {} s: their messages stay on the queue",
                    SHUTDOWN_DELIVERY_WAIT.as_secs()
                ),
            );
        }
    }
    // The commit log's messages synced in their own files and its segment
    // deleted: a clean stop leaves no log to replay.
    if let Ok(c) = shared.read().map(|g| g.clone()) {
        if let Some(w) = c.writer_started() {
            w.close_journal();
        }
    }
    if let Some(w) = ctx.writer_started() {
        w.close_journal();
    }
    Ok(0)
}

/// How long a stopping daemon waits for open SMTP sessions to end.
const SHUTDOWN_SESSION_WAIT: Duration = Duration::from_secs(3);

/// How long a stopping daemon waits for the deliveries it started.
const SHUTDOWN_DELIVERY_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces() {
        assert_eq!(
            parse_interface("127.0.0.1.1225").unwrap(),
            ("127.0.0.1".parse().unwrap(), Some(1225))
        );
        assert_eq!(
            parse_interface("[::1]:25").unwrap(),
            ("::1".parse().unwrap(), Some(25))
        );
        assert_eq!(
            parse_interface("::1").unwrap(),
            ("::1".parse().unwrap(), None)
        );
        assert!(parse_interface("nonsense").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(service_port("smtp"), Some(25));
        assert_eq!(service_port(" 1225 "), Some(1225));
        assert!(parse_port("nope").is_err());
    }
}
