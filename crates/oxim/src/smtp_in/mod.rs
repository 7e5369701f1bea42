//! Driving an SMTP server session: the protocol state machine lives in
//! `oxim-smtp`; this module moves bytes, applies policy (ACLs, limits, host
//! lookups), stores messages and logs.

mod auth;
mod conn;
mod events;
mod io;
pub mod replay;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use oxim_log::{LogRecord, RejectWhat, SmtpEnd};
use oxim_net::ServerTfo;
use oxim_smtp::{Event, LineRules, Reply, ServerConfig, ServerSession};
use oxim_tls::MaybeTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::acl::{AclEnv, Verdict};
use crate::cli::DeliveryMode;
use crate::ctx::Ctx;
use crate::message::HeaderLimits;

use conn::{
    host_option, log_end, lookup_host_name, over_connection_limit, sender_host, sync_client_name,
    IncomingConn, State, StderrTrace,
};
use conn::{log_reject, replied};
pub use conn::{ConnSlot, SlotHandle, CONNECTIONS};
use events::{check_acl, deny_reply, handle_event};
use io::{earliest, write_by, write_out, ServerIo};
use tls::{start_tls, tls_on_connect};

/// SMTP connections open now (each until its QUIT is answered or it
/// ends).
pub fn live_connections() -> usize {
    CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Serve one TCP connection to completion. Never panics on client input.
pub async fn serve_tcp(
    ctx: Arc<Ctx>,
    stream: TcpStream,
    peer: SocketAddr,
    tfo: ServerTfo,
    slot: SlotHandle,
) {
    let local = stream.local_addr().ok();
    let _ = stream.set_nodelay(true);
    let conn = IncomingConn {
        peer: Some(peer),
        local,
        tfo,
        base_protocol: "smtp",
        batch: false,
        tls_on_connect: tls::on_connect(&ctx, local.map(|l| l.port())),
        checking: false,
        stdin: false,
        ident: None,
        given_name: None,
        given_auth: false,
        slot,
        id: tls::next_connection_id(),
    };
    let _ = session(ctx, ServerIo::Tcp(MaybeTls::Plain(stream)), conn).await;
}

/// `-bs` / `-bS`: an SMTP session on stdin/stdout.
pub fn run_stdin(ctx: Arc<Ctx>, batch: bool) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // A trusted caller may say where the session comes from (-oMa, -oMi,
    // -oMt); an untrusted one's -oM options are disregarded, as in Exim.
    let trusted = crate::ctx::caller_is_trusted(&ctx);
    let origin = &ctx.inv.origin;
    let peer = origin.host_socket().filter(|_| trusted);
    let ident = match origin.ident.as_deref().filter(|_| trusted) {
        Some(i) => Some(i.to_string()).filter(|i| !i.is_empty()),
        None => Some(ctx.caller.login.clone()),
    };
    let conn = IncomingConn {
        peer,
        local: origin.interface_socket().filter(|_| trusted),
        tfo: ServerTfo::None,
        base_protocol: match (batch, peer.is_some()) {
            (_, true) => "smtp",
            (true, false) => "local-bsmtp",
            (false, false) => "local-smtp",
        },
        batch,
        tls_on_connect: false,
        checking: false,
        stdin: true,
        ident,
        given_name: origin
            .host_name
            .clone()
            .filter(|_| trusted && peer.is_some()),
        given_auth: trusted,
        slot: SlotHandle::default(),
        // As Exim: a session on stdin is numbered by its process.
        id: u64::from(std::process::id()),
    };
    let ended = rt.block_on(session(
        ctx.clone(),
        ServerIo::Std(tokio::io::stdin(), tokio::io::stdout()),
        conn,
    ))?;
    // As Exim: a session that ends without QUIT exits with 1.
    let code = i32::from(ended.lost);
    let ids = ended.ids;
    for id in ids {
        match ctx.inv.delivery {
            DeliveryMode::Queue => {}
            _ if ctx
                .inv
                .queue_only(ctx.settings.queue_only, ctx.settings.queue_only_override) => {}
            DeliveryMode::Background => crate::ctx::spawn_background_delivery(&ctx, &id)?,
            DeliveryMode::Interactive => {
                if let Ok(mid) = id.parse() {
                    rt.block_on(crate::deliver::deliver_id(&ctx, &mid, false))?;
                }
            }
        }
    }
    Ok(code)
}

/// `-bh <ip>`: an SMTP session on stdin/stdout as if from `ip`, traced.
/// Nothing is stored or delivered. (`-bhc` would make callouts for real;
/// oxim has none and refuses a `callout` option in `verify`.)
pub fn run_host_check(ctx: Arc<Ctx>, ip: std::net::IpAddr, _callout: bool) -> Result<i32> {
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
    let origin = &ctx.inv.origin;
    let port = origin.host_socket().map_or(0, |s| s.port());
    let conn = IncomingConn {
        peer: Some(SocketAddr::new(ip, port)),
        local: origin.interface_socket(),
        tfo: ServerTfo::None,
        base_protocol: "smtp",
        batch: false,
        tls_on_connect: false,
        checking: true,
        stdin: true,
        // Only -oMt gives a host-checking session an ident.
        ident: origin.ident.clone().filter(|i| !i.is_empty()),
        given_name: origin.host_name.clone(),
        given_auth: true,
        slot: SlotHandle::default(),
        id: u64::from(std::process::id()),
    };
    // Exim's -bh exits 0 however the session ended.
    rt.block_on(session(
        ctx.clone(),
        ServerIo::Std(tokio::io::stdin(), tokio::io::stdout()),
        conn,
    ))?;
    Ok(0)
}

fn server_config(ctx: &Ctx, conn: &IncomingConn) -> ServerConfig {
    let s = &ctx.settings;
    ServerConfig {
        enforce_sync: !conn.stdin && s.smtp_enforce_sync,
        max_synprot_errors: s.smtp_max_synprot_errors,
        max_unknown_commands: s.smtp_max_unknown_commands,
        recipients_max: usize::try_from(ctx.expand_int("recipients_max", &ctx.base_vars(), 50_000))
            .unwrap_or(0),
        allow_unqualified_sender: conn.peer.is_none(),
        allow_unqualified_recipient: conn.peer.is_none(),
        // Exim's early pipelining: from these hosts EHLO, MAIL, RCPT and
        // BDAT may come before the banner and the EHLO reply.
        pipe_connect: conn.peer.is_some_and(|p| {
            conn::list_match_host(
                ctx,
                "pipelining_connect_advertise_hosts",
                Some(p.ip()),
                None,
                &ctx.base_vars(),
            )
        }),
        allow_domain_literals: s.allow_domain_literals,
        // SMTP smuggling: remote messages end only at CRLF . CRLF; local
        // -bs/-bS/-bh input keeps Exim 4.97.1's LF-only mode.
        line_rules: if conn.stdin {
            LineRules::FirstLine
        } else {
            LineRules::FirstLineCrlfEnd
        },
        ..ServerConfig::default()
    }
}

/// How a session ended: the messages it accepted, and whether it ended
/// without QUIT.
#[derive(Debug, Default)]
struct Ended {
    ids: Vec<String>,
    lost: bool,
}

async fn session(ctx: Arc<Ctx>, mut io: ServerIo, conn: IncomingConn) -> Result<Ended> {
    let mut sess = ServerSession::new(server_config(&ctx, &conn));
    let mut vars = ctx.base_vars();
    if let Some(p) = conn.peer {
        vars.set("sender_host_address", p.ip().to_string())
            .set("sender_host_port", p.port().to_string());
    }
    if let Some(i) = &conn.ident {
        vars.set("sender_ident", i.clone());
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
        nolog: false,
        started: std::time::Instant::now(),
        bdat: false,
        submission: false,
        body_8bitmime: false,
        tx_token: None,
        header_max: (
            ctx.settings.header_maxsize,
            ctx.settings.header_line_maxsize,
        ),
        header: HeaderLimits::new(0, 0),
        header_excess: None,
        tls: None,
        acl: crate::acl::AclTrace {
            no_smtp_acls: conn.batch,
            ..Default::default()
        },
        helo_counted: false,
        rset_counted: false,
        auth_counted: false,
        count_nonmail: None,
        nonmail_count: 0,
        lost: false,
        auth: Default::default(),
    };
    if conn.checking {
        st.acl.trace = oxim_conf::Trace::to(Box::new(StderrTrace));
    }
    if conn.given_auth {
        let o = &ctx.inv.origin;
        if let Some(name) = &o.authenticated {
            st.auth.done = Some((name.clone(), o.authenticated_id.clone()));
            st.vars.set("sender_host_authenticated", name.clone());
        }
        if let Some(id) = &o.authenticated_id {
            st.vars.set("authenticated_id", id.clone());
        }
        if let Some(sender) = &o.authenticated_sender {
            st.vars.set("authenticated_sender", sender.clone());
        }
    }
    if let Some(n) = &conn.given_name {
        st.host_name = Some(n.clone());
        st.lookup_done = true;
        st.vars.set("sender_host_name", n.clone());
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
            return Ok(Ended::default());
        }
        st.acl.host_ident = conn::acl_ident(&conn, &st);
        st.nolog = host_option(&ctx, &mut st, "hosts_connection_nolog", ip).await;
        if !st.lookup_done && host_option(&ctx, &mut st, "host_lookup", ip).await {
            st.host_name = lookup_host_name(&ctx, ip).await;
            st.lookup_done = true;
            if let Some(n) = &st.host_name {
                st.vars.set("sender_host_name", n.clone());
            }
        }
        if ctx.selector.has(oxim_log::Selector::SmtpConnection)
            && !st.nolog
            && !conn::local_session(&conn)
        {
            if let Some(host) = sender_host(&conn, &st) {
                let count = CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed);
                ctx.log(&LogRecord::SmtpConnection {
                    host,
                    interface: conn.local.map(|l| (l.ip(), l.port())),
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
            return Ok(Ended::default());
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
    }
    // A session on stdin is named by its caller (`-oMa` or not).
    if conn::local_session(&conn) && !st.nolog {
        ctx.log(&LogRecord::LocalSmtp {
            ident: conn.ident.as_deref(),
            conn_id: conn.id,
            end: None,
        });
    }
    // The connect ACL runs for local (-bs) sessions too.
    {
        st.acl.host_ident = conn::acl_ident(&conn, &st);
        let env = AclEnv {
            host_ip: peer_ip,
            host_name: st.host_name.as_deref(),
            sender: None,
            recipient: None,
        };
        let checked = check_acl(
            &ctx,
            "acl_smtp_connect",
            &mut st.vars,
            None,
            &env,
            &mut st.acl,
        )
        .await;
        sync_client_name(&mut st);
        apply_session_controls(&conn, &mut sess, &st);
        if let Some(o) = checked {
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
                return Ok(Ended::default());
            }
        }
    }

    let banner_src = if let Some(b) = &ctx.settings.smtp_banner {
        b.clone()
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
    let line_timeout = Some(ctx.settings.smtp_receive_timeout).filter(|d| !d.is_zero());
    let session_deadline = Some(ctx.settings.smtp_session_max_time)
        .filter(|d| !d.is_zero() && conn.peer.is_some())
        .map(|d| Instant::from_std(st.started) + d);
    let timeout = line_timeout.unwrap_or(Duration::from_secs(300));
    let mut hold_banner = false;
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
            return Ok(Ended::default());
        }
    } else {
        // A client that talks before the banner is out of sync (or a
        // spammer): the session answers 554 and closes when smtp_enforce_sync
        // is on.
        let early = io.take_pending();
        if !early.is_empty() {
            sess.handle_input(&early);
        }
        replied(&ctx, sess.greet(Reply::from_lines(220, banner_lines)));
        // A client allowed to pipeline before the banner that did so (its
        // EHLO, perhaps a whole transaction, came in the TFO SYN) gets the
        // banner together with the replies to that input, in one write: a
        // server socket whose handshake is not complete yet may send one
        // flight before the client's ACK, not two.
        hold_banner = !early.is_empty() && sess.pipe_connect_acceptable() && !sess.is_closed();
    }
    if !hold_banner {
        write_out(&mut io, &mut sess, conn.batch).await?;
    }

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
            apply_session_controls(&conn, &mut sess, &st);
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
                st.lost = true;
                sess.shutdown(Reply::new(421, text));
                let by = Some(Instant::now() + Duration::from_secs(5));
                let _ = write_by(&mut io, &mut sess, conn.batch, by).await;
                break;
            }
            Ok(Err(_)) | Ok(Ok(0)) => {
                // As Exim: logged only in the middle of a transaction (many
                // clients just drop the call instead of sending QUIT), and a
                // 421 is written for whoever may still read it (-bs, -bh).
                if conn.batch {
                    break;
                }
                st.lost = true;
                if sess.in_transaction() {
                    log_end(&ctx, &conn, &st, SmtpEnd::Lost);
                }
                let host = st
                    .vars
                    .get("smtp_active_hostname")
                    .unwrap_or(&ctx.primary_hostname)
                    .to_string();
                sess.shutdown(Reply::new(421, format!("{host} lost input connection")));
                let by = Some(Instant::now() + Duration::from_secs(5));
                let _ = write_by(&mut io, &mut sess, conn.batch, by).await;
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
    log_no_mail(&ctx, &conn, &st, &sess);
    Ok(Ended {
        ids: st.accepted_ids,
        lost: st.lost,
    })
}

/// Connection-level `control =` settings the ACLs reached so far take
/// effect in the session (AUTH without advertising, synchronization
/// checking; a local `-bs` session never checks synchronization).
fn apply_session_controls(conn: &IncomingConn, sess: &mut ServerSession, st: &State) {
    let c = &st.acl.session_controls;
    if c.allow_auth_unadvertised {
        sess.set_allow_auth_unadvertised(true);
    }
    if let (Some(on), false) = (c.enforce_sync, conn.stdin) {
        sess.set_enforce_sync(on);
    }
}

/// `no MAIL in SMTP connection from ...` (`+smtp_no_mail`) for a session
/// that ended without a MAIL command, once it is over.
fn log_no_mail(ctx: &Ctx, conn: &IncomingConn, st: &State, sess: &ServerSession) {
    if sess.mail_commands() > 0 || !ctx.selector.has(oxim_log::Selector::SmtpNoMail) {
        return;
    }
    let commands = sess.command_history();
    let tls = st.tls.as_ref().map(crate::ctx::tls_log);
    ctx.log(&LogRecord::NoMail {
        host: conn::sender_host(conn, st),
        ident: conn.ident.as_deref(),
        tfo: match conn.peer {
            Some(_) => oxim_log::Tfo::Server(conn.tfo),
            None => oxim_log::Tfo::NotTcp,
        },
        duration: st.started.elapsed(),
        auth: st
            .auth
            .done
            .as_ref()
            .map(|(name, id)| (name.as_str(), id.as_deref())),
        tls,
        commands: &commands,
    });
}
