//! Delivery of one spooled message: route every pending recipient, run the
//! transports, log each outcome in Exim's format, update or remove the spool
//! files.

pub mod appendfile;
pub mod autoreply;
pub mod pipe;
pub mod route;
pub mod smtp;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;
use oxim_log::{
    Deferred, Delivered, DeliveryError, DeliveryFlag, Failed, LogAddress, LogRecord, RemoteHost,
    Tfo, TfoMark,
};
use oxim_net::ClientTfo;
use oxim_spool::{Envelope, Header, MessageId};

use crate::bounce::{self, FailedAddress};
use crate::ctx::Ctx;
use crate::retry::{self, RetryDb, Schedule};
use crate::settings::{SmtpSpec, TransportKind, TransportSpec};
use crate::vars::Vars;
use route::{Props, Routed, RoutedHost};
use smtp::SmtpError;

/// An address on its way through delivery.
#[derive(Debug, Clone)]
struct Item {
    address: String,
    /// The top-level recipient it came from (None for a top-level one).
    parent: Option<String>,
    /// How the address appears in the log when that differs from the
    /// address used on the wire (Exim logs percent-hacked addresses in
    /// lower case).
    log_as: Option<String>,
    /// errors_to and header changes from the routers that handled it or
    /// its parents.
    props: Props,
    /// The first router to offer it to (past 0 for an `unseen` copy).
    start: usize,
    /// How its delivery is remembered on the spool when that is not the
    /// address: `address/router` for the copy an `unseen` router took
    /// (Exim's name for it), so the copy passed on is remembered apart.
    unique: Option<String>,
}

impl Item {
    fn top(&self) -> &str {
        self.parent.as_deref().unwrap_or(&self.address)
    }

    /// The name its delivery is recorded under (non-recipients).
    fn unique(&self) -> &str {
        self.unique.as_deref().unwrap_or(&self.address)
    }

    /// How the address appears in a log line. A successful local delivery
    /// shows the local part and then the original address in `<>`, as
    /// Exim does (`=> alice <alice@test.ex>`).
    fn log_address(&self, local_delivery: bool) -> LogAddress<'_> {
        let mut shown = self.log_as.as_deref().unwrap_or(&self.address);
        if local_delivery {
            shown = crate::vars::split_address(shown).0;
            return LogAddress::from_original(shown, self.top());
        }
        match &self.parent {
            Some(p) if p != shown => LogAddress::from_original(shown, p),
            _ => LogAddress::new(shown),
        }
    }

    /// An address generated from `self` (it inherits its properties).
    fn child(&self, address: String) -> Item {
        Item {
            address,
            parent: Some(self.top().to_string()),
            log_as: None,
            props: self.props.clone(),
            start: 0,
            unique: None,
        }
    }

    /// The envelope sender for this address's delivery: errors_to when a
    /// router set one.
    fn return_path<'a>(&'a self, sender: &'a str) -> &'a str {
        match self.props.errors_to.as_deref() {
            Some(e) if !e.is_empty() => e,
            _ => sender,
        }
    }
}

/// Exim's percent hack: `user%host@here` becomes `user@host` when `here`
/// is in `percent_hack_domains`.
fn percent_hack(ctx: &Ctx, address: &str, vars: &Vars) -> Option<String> {
    let list = ctx.config.main.str("percent_hack_domains");
    if list.is_empty() {
        return None;
    }
    let (lp, domain) = crate::vars::split_address(address);
    let p = lp.rfind('%')?;
    let list = oxim_conf::expand(list, vars).ok()?;
    if !oxim_conf::match_domain(&list, domain, &ctx.config, vars).unwrap_or(false) {
        return None;
    }
    Some(format!("{}@{}", &lp[..p], &lp[p + 1..]))
}

/// What one delivery attempt achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    pub completed: bool,
}

/// A message loaded for delivery.
pub struct Loaded {
    pub env: Envelope,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// msglog lines not yet written to `msglog/<id>`.
    pub msglog: std::sync::Mutex<Vec<String>>,
}

impl Loaded {
    pub fn new(env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Self {
        Loaded {
            env,
            headers,
            body,
            msglog: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Keep a msglog line until the end of this delivery attempt.
    pub fn note_msglog(&self, line: String) {
        if let Ok(mut v) = self.msglog.lock() {
            v.push(line);
        }
    }

    /// Write the pending msglog lines (one append).
    pub fn flush_msglog(&self, ctx: &Ctx) {
        let lines = match self.msglog.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return,
        };
        if !lines.is_empty() {
            let _ = ctx
                .spool
                .append_msglog(&self.env.id, lines.concat().trim_end_matches('\n'));
        }
    }

    fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| h.is_live()) {
            out.extend_from_slice(h.text.as_bytes());
        }
        out
    }
}

/// The host a transport talked to, for `H=name [ip]`.
#[derive(Debug, Clone)]
struct HostInfo {
    name: String,
    ip: IpAddr,
    port: u16,
}

impl HostInfo {
    fn log(&self) -> RemoteHost<'_> {
        RemoteHost {
            name: &self.name,
            ip: self.ip,
            port: self.port,
        }
    }
}

/// The result for one address, owned until it is logged.
#[derive(Debug, Clone)]
enum Outcome {
    Delivered {
        host: Option<HostInfo>,
        tfo: Option<(ClientTfo, Option<&'static str>)>,
        /// TLS of the session (` X=`, ` CV=`).
        tls: Option<oxim_tls::TlsSession>,
        /// Sent with BDAT (` K` in the log).
        chunking: bool,
        /// Down a connection an earlier message used (`*` in the log).
        continued: bool,
        confirmation: Option<String>,
        first: bool,
    },
    Deferred {
        host: Option<HostInfo>,
        err: SmtpError,
    },
    Failed {
        host: Option<HostInfo>,
        err: SmtpError,
    },
}

fn local_error(errno: i32, message: impl Into<String>) -> SmtpError {
    SmtpError {
        errno,
        errno_text: None,
        message: Some(message.into()),
        with_host: false,
    }
}

fn message_vars(ctx: &Ctx, m: &Loaded) -> Vars {
    let mut v = ctx.base_vars();
    let id = m.env.id.to_string();
    v.set("message_id", id.clone())
        .set("message_exim_id", id)
        .set("sender_address", m.env.sender.clone())
        .set(
            "received_protocol",
            m.env.protocol.clone().unwrap_or_default(),
        )
        .set(
            "sender_host_address",
            m.env.host_address.clone().unwrap_or_default(),
        )
        .set(
            "sender_host_name",
            m.env.host_name.clone().unwrap_or_default(),
        )
        .set(
            "sender_helo_name",
            m.env.helo_name.clone().unwrap_or_default(),
        )
        .set(
            "message_size",
            (m.body.len() + m.header_bytes().len() + 1).to_string(),
        );
    v
}

fn read_body(ctx: &Ctx, id: &MessageId) -> Result<Vec<u8>> {
    use std::io::Read;
    let (mut f, len) = ctx.spool.open_body(id)?;
    let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.read_to_end(&mut body)?;
    Ok(body)
}

/// Deliver the message `id` from the spool. Holds the message lock while
/// working so concurrent queue runners never deliver it twice.
pub async fn deliver_id(ctx: &Ctx, id: &MessageId, force: bool) -> Result<Summary> {
    deliver_id_pooled(ctx, id, force, None).await
}

/// [`deliver_id`] with SMTP connections shared through `pool` (a queue
/// run's deliveries use one pool, so messages for one host go down one
/// connection).
pub async fn deliver_id_pooled(
    ctx: &Ctx,
    id: &MessageId,
    force: bool,
    pool: Option<smtp::PoolRef<'_>>,
) -> Result<Summary> {
    let lock = match ctx.spool.lock(id) {
        Ok(Some(lock)) => lock,
        // Another delivery has it, or it finished since the queue was listed.
        Ok(None) => return Ok(Summary::default()),
        Err(e) if e.is_not_found() => return Ok(Summary::default()),
        Err(e) => return Err(e.into()),
    };
    let msg = match ctx.spool.read(id) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(Summary::default()),
        Err(e) => return Err(e.into()),
    };
    let loaded = Loaded::new(msg.envelope, msg.headers, read_body(ctx, id)?);
    let s = deliver_loaded(ctx, loaded, force, pool).await;
    drop(lock);
    s
}

fn log_outcome(
    ctx: &Ctx,
    m: &Loaded,
    sender: &str,
    item: &Item,
    router: Option<&str>,
    transport: Option<&str>,
    outcome: &Outcome,
) {
    let id_text = m.env.id.to_string();
    let local = matches!(outcome, Outcome::Delivered { .. })
        && transport
            .and_then(|t| ctx.drivers.transport(t))
            .is_some_and(|t| !matches!(t.kind, TransportKind::Smtp(_)));
    let addr = item.log_address(local);
    let rec = match outcome {
        Outcome::Delivered {
            host,
            tfo,
            tls,
            chunking,
            continued,
            confirmation,
            first,
        } => {
            let mut d = Delivered::new(&id_text, addr, sender);
            d.flag = if *first {
                DeliveryFlag::First
            } else {
                DeliveryFlag::Further
            };
            d.router = router;
            d.transport = transport;
            d.host = host.as_ref().map(HostInfo::log);
            d.continued = *continued;
            if let Some((t, detail)) = tfo {
                d.tfo = Tfo {
                    mark: match t {
                        ClientTfo::CookieAccepted => Some(TfoMark::Cookie),
                        ClientTfo::DataAcked => Some(TfoMark::Data),
                        _ => None,
                    },
                    detail: Some(detail.unwrap_or(t.name())),
                };
            }
            d.confirmation = confirmation.as_deref();
            d.chunking = *chunking;
            d.tls = tls.as_ref().map(|t| oxim_log::TlsLog {
                cipher: &t.cipher,
                certificate_verified: t.certificate_verified,
                ..oxim_log::TlsLog::default()
            });
            LogRecord::Delivered(d)
        }
        Outcome::Deferred { host, err } | Outcome::Failed { host, err } => {
            let error = DeliveryError {
                errno: err.errno,
                errno_text: err.errno_text.as_deref(),
                host: if err.with_host {
                    host.as_ref().map(HostInfo::log)
                } else {
                    None
                },
                message: err.message.as_deref(),
            };
            if matches!(outcome, Outcome::Deferred { .. }) {
                let mut d = Deferred::new(&id_text, addr, sender, error);
                d.router = router;
                d.transport = transport;
                LogRecord::Deferred(d)
            } else {
                let mut f = Failed::new(&id_text, addr, sender, error);
                f.router = router;
                f.transport = transport;
                LogRecord::Failed(f)
            }
        }
    };
    ctx.log_message(m, &rec);
}

/// Addresses that share a transport, host list and router properties
/// (return path, header changes) go in one transport call.
type TransportKey = (String, Vec<RoutedHost>, Props);

/// First delivery of a message just received (already durable on the spool).
/// Takes the message lock like a queue run does, so a queue runner that
/// lists the new message meanwhile leaves it alone.
pub async fn deliver_new(ctx: &Ctx, m: Loaded) -> Result<Summary> {
    let lock = match ctx.spool.lock(&m.env.id) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            // A queue runner got there first; it has the spool copy.
            m.flush_msglog(ctx);
            return Ok(Summary::default());
        }
        Err(e) => return Err(e.into()),
    };
    let s = deliver_loaded(ctx, m, true, None).await;
    drop(lock);
    s
}

/// Per-attempt bookkeeping: logs each outcome, keeps retry hints, collects
/// permanent failures for the bounce.
struct Attempt<'a> {
    ctx: &'a Ctx,
    m: &'a Loaded,
    sender: String,
    vars: &'a Vars,
    retry: RetryDb,
    now: u64,
    summary: Summary,
    failed: Vec<FailedAddress>,
    pending_tops: Vec<String>,
    done_children: Vec<String>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn reason_text(err: &SmtpError) -> String {
    match (&err.message, &err.errno_text) {
        (Some(m), _) => m.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "delivery failed".into(),
    }
}

impl Attempt<'_> {
    fn retry_key(item: &Item) -> String {
        format!("R:{}", item.address)
    }

    fn record(
        &mut self,
        item: &Item,
        router: Option<&str>,
        transport: Option<&str>,
        outcome: Outcome,
    ) {
        let ctx = self.ctx;
        let outcome = match outcome {
            Outcome::Deferred { host, err } => {
                let rule = retry::find_rule(&ctx.config, &item.address, self.vars);
                let max = ctx.config.main.time("retry_interval_max").as_secs();
                match self
                    .retry
                    .failed(&Self::retry_key(item), rule, self.now, max)
                {
                    Schedule::RetryAt(_) => {
                        log_outcome(
                            ctx,
                            self.m,
                            &self.sender,
                            item,
                            router,
                            transport,
                            &Outcome::Deferred { host, err },
                        );
                        self.summary.deferred += 1;
                        self.pending_tops.push(item.top().to_string());
                        return;
                    }
                    Schedule::TimedOut => {
                        let mut err = err;
                        let text = reason_text(&err);
                        err.message = Some(format!("retry timeout exceeded: {text}"));
                        Outcome::Failed { host, err }
                    }
                }
            }
            other => other,
        };
        log_outcome(ctx, self.m, &self.sender, item, router, transport, &outcome);
        self.retry.clear(&Self::retry_key(item));
        match &outcome {
            Outcome::Delivered { .. } => self.summary.delivered += 1,
            Outcome::Failed { err, host } => {
                self.summary.failed += 1;
                let host = if err.with_host { host.as_ref() } else { None };
                self.note_failed(item, host, err);
            }
            Outcome::Deferred { .. } => {}
        }
        if item.parent.is_some() {
            self.done_children.push(item.unique().to_string());
        }
    }

    /// A permanent failure: remembered for the bounce (unless errors_to
    /// is empty, which means no bounce).
    fn note_failed(&mut self, item: &Item, host: Option<&HostInfo>, err: &SmtpError) {
        if item.props.errors_to.as_deref() == Some("") {
            return;
        }
        self.failed.push(FailedAddress {
            address: item.address.clone(),
            parent: item.parent.clone().filter(|p| *p != item.address),
            reason: reason_text(err),
            host: host.map(|h| (h.name.clone(), h.ip)),
            errors_to: item.props.errors_to.clone(),
        });
    }

    /// An address whose retry time has not come is left alone this time.
    fn too_early(&self, item: &Item) -> bool {
        self.retry
            .get(&Self::retry_key(item))
            .is_some_and(|h| h.next_try > self.now)
    }
}

/// Deliver a message already in memory (and safely on the spool).
/// `force` ignores retry times (a first delivery attempt, `-M`, `-qf`).
pub async fn deliver_loaded(
    ctx: &Ctx,
    mut m: Loaded,
    force: bool,
    pool: Option<smtp::PoolRef<'_>>,
) -> Result<Summary> {
    let id = m.env.id;
    if m.env.frozen.is_some() {
        let age = now_secs().saturating_sub(m.env.received_time);
        let limit = ctx.config.main.time("timeout_frozen_after").as_secs();
        if limit > 0 && age > limit {
            let id_text = id.to_string();
            ctx.log_text(Some(&id_text), "cancelled by timeout_frozen_after");
            ctx.log(&LogRecord::Completed {
                id: &id_text,
                queue_time: None,
            });
            ctx.spool.remove(&id)?;
            return Ok(Summary {
                completed: true,
                ..Summary::default()
            });
        }
        if !ctx.inv.thaw_frozen {
            return Ok(Summary::default());
        }
        // -M and -qff deliver frozen messages: thaw it.
        m.env.frozen = None;
        m.env.manual_thaw = true;
    }
    let vars = message_vars(ctx, &m);
    let mut run = Attempt {
        ctx,
        m: &m,
        sender: m.env.sender.clone(),
        vars: &vars,
        retry: RetryDb::new(ctx.spool.db_dir()),
        now: now_secs(),
        summary: Summary::default(),
        failed: Vec::new(),
        pending_tops: Vec::new(),
        done_children: Vec::new(),
    };

    // 1. Route every pending recipient, following redirections.
    let mut work: Vec<Item> = m
        .env
        .pending_recipients()
        .map(|r| Item {
            address: r.address.clone(),
            parent: None,
            log_as: None,
            props: Props::default(),
            start: 0,
            unique: None,
        })
        .collect();
    work.reverse();
    let mut to_transport: BTreeMap<TransportKey, Vec<(Item, String)>> = BTreeMap::new();
    let mut generated = 0usize;
    // manualroute's host_find_failed = freeze.
    let mut freeze_routing = false;
    while let Some(mut item) = work.pop() {
        if item.parent.is_some() && m.env.non_recipients.iter().any(|a| a == item.unique()) {
            continue; // delivered in an earlier attempt
        }
        if !force && run.too_early(&item) {
            run.pending_tops.push(item.top().to_string());
            continue;
        }
        if let Some(hacked) = percent_hack(ctx, &item.address, &vars) {
            item = item.child(hacked);
            item.log_as = Some(item.address.to_ascii_lowercase());
        }
        let routing =
            route::route_from(ctx, &item.address, &run.sender, &vars, false, item.start).await;
        if let Some(next) = routing.unseen_next {
            // `unseen`: the address is also offered to the following
            // routers, after everything else; both copies become children
            // of the address.
            let mut copy = item.child(item.address.clone());
            copy.start = next;
            work.insert(0, copy);
            item = item.child(item.address.clone());
            let router = match &routing.routed {
                Routed::Transport { router, .. } | Routed::Blackhole { router } => Some(router),
                _ => None,
            };
            if let Some(r) = router {
                item.unique = Some(format!("{}/{r}", item.address));
                if m.env.non_recipients.iter().any(|a| a == item.unique()) {
                    continue; // delivered in an earlier attempt
                }
            }
        }
        item.props = item.props.with(&routing.props);
        for note in &routing.notes {
            ctx.log_text(Some(&id.to_string()), note);
        }
        match routing.routed {
            Routed::Transport {
                router,
                transport,
                hosts,
                ..
            } => {
                to_transport
                    .entry((transport, hosts, item.props.clone()))
                    .or_default()
                    .push((item, router));
            }
            Routed::Blackhole { router } => {
                let mut shown = item.child(":blackhole:".into());
                shown.parent = Some(item.address.clone());
                log_outcome(
                    ctx,
                    &m,
                    &run.sender,
                    &shown,
                    Some(&router),
                    None,
                    &Outcome::Delivered {
                        host: None,
                        tfo: None,
                        tls: None,
                        chunking: false,
                        continued: false,
                        confirmation: None,
                        first: true,
                    },
                );
                run.summary.delivered += 1;
                if item.parent.is_some() {
                    run.done_children.push(item.unique().to_string());
                }
            }
            Routed::Redirected { children, .. } => {
                generated += children.len();
                if generated > 1000 {
                    let err = local_error(-1, "too many generated addresses");
                    run.record(&item, None, None, Outcome::Deferred { host: None, err });
                    continue;
                }
                for c in children.into_iter().rev() {
                    work.push(item.child(ctx.qualify_recipient(&c)));
                }
            }
            Routed::Fail { router, message } => {
                let err = local_error(0, message);
                run.record(
                    &item,
                    router.as_deref(),
                    None,
                    Outcome::Failed { host: None, err },
                );
            }
            Routed::Defer { router, message } => {
                freeze_routing |= routing.freeze;
                let err = local_error(routing.errno, message);
                run.record(
                    &item,
                    router.as_deref(),
                    None,
                    Outcome::Deferred { host: None, err },
                );
            }
        }
    }

    // 2. Run the transports: local ones first, one at a time, then the
    // remote ones, up to remote_max_parallel at once so that a slow host
    // does not hold up the others. Outcomes are logged as they come.
    let headers = m.header_bytes();
    let mut remote = Vec::new();
    for ((tname, hosts, props), items) in to_transport {
        let results = match ctx.drivers.transport(&tname) {
            Some(t) if matches!(t.kind, TransportKind::Smtp(_)) => {
                remote.push((tname, t, hosts, props, items));
                continue;
            }
            Some(t) => {
                let ctl = Delivery {
                    return_path: items[0].0.return_path(&m.env.sender),
                    props: &props,
                };
                run_transport(ctx, t, &hosts, &items, &m, &headers, &vars, &ctl, None).await
            }
            None => items
                .iter()
                .map(|(i, r)| {
                    let err = local_error(-1, format!("transport \"{tname}\" not found"));
                    (i.clone(), r.clone(), Outcome::Deferred { host: None, err })
                })
                .collect(),
        };
        for (item, router, outcome) in results {
            run.record(&item, Some(&router), Some(&tname), outcome);
        }
    }
    if !remote.is_empty() {
        use futures_util::stream::StreamExt;
        let parallel = usize::try_from(ctx.config.main.int("remote_max_parallel"))
            .unwrap_or(1)
            .max(1);
        // Parallel calls cannot each give back the delivery's one share
        // of queue_run_max while they wait.
        let pool = match remote.len() {
            1 => pool,
            _ => pool.map(|p| smtp::PoolRef { ticket: None, ..p }),
        };
        // The futures are made up front (not by a closure inside the
        // stream), which keeps the whole delivery future Send.
        let groups: Vec<_> = remote
            .into_iter()
            .map(|g| run_remote_group(ctx, g, &m, &headers, &vars, pool))
            .collect();
        let mut running = futures_util::stream::iter(groups).buffer_unordered(parallel);
        while let Some((tname, results)) = running.next().await {
            for (item, router, outcome) in results {
                run.record(&item, Some(&router), Some(&tname), outcome);
            }
        }
    }

    // 3. A bounce for permanent failures (never for a bounce).
    let Attempt {
        mut summary,
        failed,
        mut pending_tops,
        done_children,
        ..
    } = run;
    // A bounce that cannot be delivered is frozen for the postmaster (Exim's
    // rule), unless it is older than ignore_bounce_errors_after.
    let mut freeze = false;
    if failed.iter().any(|f| f.errors_to.is_none()) && m.env.sender.is_empty() {
        let age = now_secs().saturating_sub(m.env.received_time);
        if age <= ctx.config.main.time("ignore_bounce_errors_after").as_secs() {
            freeze = true;
            pending_tops.extend(
                failed
                    .iter()
                    .filter(|f| f.errors_to.is_none())
                    .map(|f| f.address.clone()),
            );
        }
    }
    // One bounce per destination: the sender, or a router's errors_to; the
    // destination of the latest failure first (Exim keeps its failures
    // newest first). Each bounce lists its failures in order.
    let dest_of = |f: &FailedAddress| f.errors_to.clone().unwrap_or_else(|| m.env.sender.clone());
    let bouncing: Vec<&FailedAddress> = failed
        .iter()
        .filter(|f| f.errors_to.is_some() || !m.env.sender.is_empty())
        .collect();
    let mut by_dest: Vec<(String, Vec<FailedAddress>)> = Vec::new();
    for f in bouncing.iter().rev() {
        let dest = dest_of(f);
        if !by_dest.iter().any(|(d, _)| *d == dest) {
            let list = bouncing
                .iter()
                .filter(|g| dest_of(g) == dest)
                .map(|g| (*g).clone())
                .collect();
            by_dest.push((dest, list));
        }
    }
    for (dest, failed) in by_dest {
        match bounce::generate(ctx, &m, &dest, &failed) {
            Ok(b) => {
                if let Err(e) = Box::pin(deliver_new(ctx, b)).await {
                    ctx.log_text(None, &format!("bounce delivery failed: {e:#}"));
                }
            }
            Err(e) => ctx.log_text(
                Some(&id.to_string()),
                &format!("cannot create bounce: {e:#}"),
            ),
        }
    }

    // 4. Record progress on the spool.
    let tops_done: Vec<String> = m
        .env
        .pending_recipients()
        .map(|r| r.address.clone())
        .filter(|a| !pending_tops.contains(a))
        .collect();
    for r in m.env.recipients.iter_mut() {
        if tops_done.contains(&r.address) {
            r.done = true;
        }
    }
    if m.env.pending_recipients().next().is_none() {
        let id_text = id.to_string();
        ctx.log(&LogRecord::Completed {
            id: &id_text,
            queue_time: None,
        });
        // Unlinking blocks; keep it off the async workers.
        let spool = ctx.spool.clone();
        tokio::task::spawn_blocking(move || spool.remove(&id))
            .await
            .map_err(|e| anyhow::anyhow!("spool removal task failed: {e}"))??;
        summary.completed = true;
    } else {
        let why = if freeze {
            Some("Frozen (delivery error message)")
        } else if freeze_routing {
            Some("Frozen")
        } else {
            None
        };
        if let Some(why) = why {
            m.env.frozen = Some(now_secs());
            let id_text = id.to_string();
            ctx.log_text(Some(&id_text), why);
            m.note_msglog(format!(
                "{} {why}\n",
                ctx.logger.timestamp(std::time::SystemTime::now())
            ));
            ctx.spool.rewrite_header(&m.env, &m.headers)?;
        }
        m.flush_msglog(ctx);
        // Delivered children of still-pending parents are remembered so a
        // retry does not deliver them twice.
        let mut refs: Vec<&str> = tops_done.iter().map(String::as_str).collect();
        refs.extend(done_children.iter().map(String::as_str));
        if !refs.is_empty() {
            ctx.spool.mark_delivered(&id, &refs)?;
        }
    }
    Ok(summary)
}

/// One remote transport call: its addresses share a transport, a host
/// list and the routers' properties.
type RemoteGroup<'t> = (
    String,
    &'t TransportSpec,
    Vec<RoutedHost>,
    Props,
    Vec<(Item, String)>,
);

async fn run_remote_group(
    ctx: &Ctx,
    (tname, t, hosts, props, items): RemoteGroup<'_>,
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    pool: Option<smtp::PoolRef<'_>>,
) -> (String, Vec<(Item, String, Outcome)>) {
    let ctl = Delivery {
        return_path: items[0].0.return_path(&m.env.sender),
        props: &props,
    };
    let r = run_transport(ctx, t, &hosts, &items, m, headers, vars, &ctl, pool).await;
    (tname, r)
}

/// What the routers decided for one transport call beyond the hosts.
struct Delivery<'a> {
    /// The envelope sender to use (errors_to, else the message's sender).
    return_path: &'a str,
    /// Header changes from the routers.
    props: &'a Props,
}

#[allow(clippy::too_many_arguments)]
async fn run_transport(
    ctx: &Ctx,
    t: &TransportSpec,
    router_hosts: &[RoutedHost],
    items: &[(Item, String)],
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    ctl: &Delivery<'_>,
    pool: Option<smtp::PoolRef<'_>>,
) -> Vec<(Item, String, Outcome)> {
    let delivered = Outcome::Delivered {
        host: None,
        tfo: None,
        tls: None,
        chunking: false,
        continued: false,
        confirmation: None,
        first: true,
    };
    // The routers' and the transport's header changes apply to what it
    // sends.
    let edited;
    let headers = if t.headers_add.is_some()
        || t.headers_remove.is_some()
        || !ctl.props.headers_add.is_empty()
        || !ctl.props.headers_remove.is_empty()
    {
        edited = edit_headers(m, t, ctl.props, vars);
        &edited[..]
    } else {
        headers
    };
    if matches!(
        t.kind,
        TransportKind::Appendfile(_) | TransportKind::Pipe(_)
    ) {
        if let Some(refusal) = never_user_refusal(ctx, t, m) {
            return items
                .iter()
                .map(|(item, router)| (item.clone(), router.clone(), refusal.clone()))
                .collect();
        }
    }
    let mut vars = vars.clone();
    vars.set("return_path", ctl.return_path.to_string());
    let vars = &vars;
    match &t.kind {
        TransportKind::Smtp(spec) => {
            run_smtp(
                ctx,
                spec,
                router_hosts,
                items,
                m,
                headers,
                vars,
                &t.name,
                ctl.return_path,
                pool,
            )
            .await
        }
        TransportKind::Appendfile(spec) => per_address(items, vars, |addr, v| {
            match appendfile::deliver(spec, addr, m, headers, v) {
                Ok(()) => delivered.clone(),
                Err(e) => local_deferral(format!("{e:#}")),
            }
        }),
        TransportKind::Pipe(spec) => per_address(items, vars, |_, v| {
            match pipe::deliver(spec, m, headers, v) {
                Ok(pipe::PipeResult::Ok) => delivered.clone(),
                Ok(pipe::PipeResult::Fail(msg)) => Outcome::Failed {
                    host: None,
                    err: local_error(0, msg),
                },
                Ok(pipe::PipeResult::Defer(msg)) => local_deferral(msg),
                Err(e) => local_deferral(format!("{e:#}")),
            }
        }),
        TransportKind::Autoreply(spec) => {
            per_address(items, vars, |_, v| {
                match autoreply::deliver(ctx, spec, m, headers, v) {
                    Ok(new_id) => {
                        if let Some(id) = new_id {
                            if let Err(e) = crate::submit::spawn_background_delivery(ctx, &id) {
                                ctx.log_text(Some(&id), &format!("cannot start delivery: {e:#}"));
                            }
                        }
                        delivered.clone()
                    }
                    Err(e) => local_deferral(format!("{e:#}")),
                }
            })
        }
    }
}

/// Exim's `ERRNO_UIDFAIL`.
const ERRNO_UIDFAIL: i32 = -29;

/// File and pipe deliveries run as this process's user: never one on
/// `never_users` (default root). A refused delivery is deferred and logged
/// on the main and panic logs, in Exim's words.
fn never_user_refusal(ctx: &Ctx, t: &TransportSpec, m: &Loaded) -> Option<Outcome> {
    let uid = nix::unistd::Uid::effective().as_raw();
    if !ctx.never_users.contains(&uid) {
        return None;
    }
    let text = format!(
        "User {uid} set for {} transport is on the never_users list",
        t.name
    );
    let id = m.env.id.to_string();
    ctx.log(&LogRecord::Text {
        id: Some(&id),
        text: &text,
        dest: oxim_log::Dest {
            main: true,
            reject: false,
            panic: true,
        },
    });
    Some(Outcome::Deferred {
        host: None,
        err: local_error(ERRNO_UIDFAIL, text),
    })
}

/// Run a local transport once per address, with `$local_part`/`$domain` set.
fn per_address(
    items: &[(Item, String)],
    vars: &Vars,
    mut deliver: impl FnMut(&str, &Vars) -> Outcome,
) -> Vec<(Item, String, Outcome)> {
    items
        .iter()
        .map(|(item, router)| {
            let mut v = vars.clone();
            v.set_address(&item.address);
            (item.clone(), router.clone(), deliver(&item.address, &v))
        })
        .collect()
}

fn local_deferral(message: String) -> Outcome {
    Outcome::Deferred {
        host: None,
        err: local_error(-1, message),
    }
}

/// Apply the routers' and the transport's `headers_remove` (colon lists of
/// names), then add the routers' `headers_add` lines and the transport's
/// (expanded, newline-separated), in that order.
fn edit_headers(m: &Loaded, t: &TransportSpec, props: &Props, vars: &Vars) -> Vec<u8> {
    let mut remove: Vec<String> = t
        .headers_remove
        .as_deref()
        .and_then(|r| oxim_conf::expand(r, vars).ok())
        .map(|r| oxim_conf::lists::list_items(&r))
        .unwrap_or_default();
    remove.extend(props.headers_remove.iter().cloned());
    let mut out = Vec::new();
    for h in m.headers.iter().filter(|h| h.is_live()) {
        let name = h.name().unwrap_or("");
        if remove.iter().any(|r| header_name_matches(r, name)) {
            continue;
        }
        out.extend_from_slice(h.text.as_bytes());
    }
    for line in &props.headers_add {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if let Some(add) = t
        .headers_add
        .as_deref()
        .and_then(|a| oxim_conf::expand(a, vars).ok())
    {
        for line in add.split('\n').filter(|l| !l.trim().is_empty()) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// A `headers_remove` item: a header name, or a prefix ending in `*`
/// (`X-*`); case does not matter.
fn header_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix)),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

async fn resolve_hosts(ctx: &Ctx, hosts: &[RoutedHost]) -> Vec<(String, IpAddr, bool)> {
    let mut out = Vec::new();
    for h in hosts {
        match h.ip {
            Some(ip) => out.push((h.name.clone(), ip, h.allow_local)),
            None => {
                if let Ok(ips) = route::host_addresses(ctx, &h.name).await {
                    for ip in ips {
                        out.push((h.name.clone(), ip, h.allow_local));
                    }
                }
            }
        }
    }
    out
}

fn host_list_matches(
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

/// The smtp transport's expanded `hosts` (when `use_hosts`), port,
/// `helo_data` and `interface`. An option that fails to expand, or a bad
/// port, is an error that defers the addresses (Exim's wording).
fn expand_smtp_options(
    tname: &str,
    spec: &SmtpSpec,
    use_hosts: bool,
    vars: &Vars,
) -> Result<(Vec<RoutedHost>, u16, String, Option<IpAddr>), SmtpError> {
    let hosts = match spec.hosts.as_ref().filter(|_| use_hosts) {
        Some(h) => match oxim_conf::expand(h, vars) {
            Ok(list) => oxim_conf::lists::list_items(&list)
                .iter()
                .map(|s| {
                    let bare = s.trim_start_matches('[').trim_end_matches(']');
                    RoutedHost {
                        name: bare.to_string(),
                        ip: bare.parse().ok(),
                        allow_local: false,
                        mx: None,
                    }
                })
                .collect(),
            Err(e) => {
                return Err(local_error(
                    0,
                    format!("failed to expand list of hosts \"{h}\" in {tname} transport: {e}"),
                ))
            }
        },
        None => Vec::new(),
    };
    let port_text = oxim_conf::expand(&spec.port, vars).map_err(|e| {
        local_error(
            0,
            format!(
                "failed to expand \"{}\" (\"port\" option) for {tname} transport: {e}",
                spec.port
            ),
        )
    })?;
    let port = match crate::daemon::service_port(&port_text) {
        Some(p) => p,
        None if port_text.trim().starts_with(|c: char| c.is_ascii_digit()) => {
            return Err(local_error(
                0,
                format!("invalid port number for {tname} transport: {port_text}"),
            ))
        }
        None => {
            return Err(local_error(
                0,
                format!("TCP port \"{port_text}\" is not defined for {tname} transport"),
            ))
        }
    };
    let helo = oxim_conf::expand(&spec.helo_data, vars)
        .map_err(|e| local_error(-27, format!("failed to expand helo_data: {e}")))?;
    let interface = match &spec.interface {
        None => None,
        Some(i) => {
            let text = oxim_conf::expand(i, vars).map_err(|e| {
                local_error(
                    0,
                    format!(
                        "failed to expand \"{i}\" (\"interface\" option) for {tname} transport: {e}"
                    ),
                )
            })?;
            match text.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    local_error(
                        0,
                        format!("\"{t}\" is not a valid IP address for the \"interface\" option for {tname} transport"),
                    )
                })?),
            }
        }
    };
    Ok((hosts, port, helo, interface))
}

#[allow(clippy::too_many_arguments)]
async fn run_smtp(
    ctx: &Ctx,
    spec: &SmtpSpec,
    router_hosts: &[RoutedHost],
    items: &[(Item, String)],
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    tname: &str,
    return_path: &str,
    pool: Option<smtp::PoolRef<'_>>,
) -> Vec<(Item, String, Outcome)> {
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
        return defer_all(local_error(-1, "smtp transport called with no hosts set"));
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
    };
    let hosts = resolve_hosts(ctx, &host_specs).await;
    if hosts.is_empty() {
        return defer_all(local_error(
            -1,
            "all host address lookups failed temporarily",
        ));
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
        };
        let mut last: Option<smtp::HostResult> = None;
        for (name, ip, allow_local) in &hosts {
            let host = smtp::Host {
                name: name.clone(),
                ip: *ip,
                port,
                try_tfo: host_list_matches(ctx, &spec.hosts_try_fastopen, name, *ip, vars),
            };
            if !spec.allow_localhost && !allow_local && is_local_address(*ip) {
                let err = local_error(
                    0,
                    format!("{tname} transport found host {name} to be local"),
                );
                last = Some(smtp::HostResult {
                    host,
                    tfo: ClientTfo::NotTried,
                    tfo_detail: None,
                    chunking: false,
                    continued: false,
                    skipped: false,
                    outcomes: vec![smtp::RcptOutcome::Deferred(err); batch.len()],
                    try_next_host: true,
                    tls: None,
                    tls_failed: false,
                });
                continue;
            }
            let mut p = params.clone();
            p.avoid_pipelining =
                host_list_matches(ctx, &spec.hosts_avoid_pipelining, name, *ip, vars);
            p.try_chunking = host_list_matches(ctx, &spec.hosts_try_chunking, name, *ip, vars);
            p.tls = tls_params(ctx, &spec.tls, name, *ip, vars);
            let tryclear = spec.tls.tempfail_tryclear;
            let r = deliver_tryclear(ctx, m, &host, p, &outgoing, tryclear, pool).await;
            // A host-level problem gets its own log line, as in Exim (not
            // for a host skipped because it failed earlier in this run).
            if r.try_next_host && !r.skipped {
                if let Some(smtp::RcptOutcome::Deferred(e)) = r.outcomes.first() {
                    let id_text = m.env.id.to_string();
                    let text = e.message.clone().unwrap_or_default();
                    let rh = RemoteHost {
                        name: &host.name,
                        ip: host.ip,
                        port: host.port,
                    };
                    if e.with_host {
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
            return defer_all(local_error(-1, "no host to try"));
        };
        let info = HostInfo {
            name: r.host.name.clone(),
            ip: r.host.ip,
            port: r.host.port,
        };
        let continued = *continued.get_or_insert(r.continued);
        let mut first = true;
        for ((item, router), o) in batch.iter().zip(r.outcomes) {
            let outcome = match o {
                smtp::RcptOutcome::Delivered { confirmation } => {
                    let o = Outcome::Delivered {
                        host: Some(info.clone()),
                        tfo: Some((r.tfo, r.tfo_detail)),
                        tls: r.tls.clone(),
                        chunking: r.chunking,
                        continued,
                        confirmation: Some(confirmation),
                        first,
                    };
                    first = false;
                    o
                }
                smtp::RcptOutcome::Deferred(err) => Outcome::Deferred {
                    host: Some(info.clone()),
                    err,
                },
                smtp::RcptOutcome::Failed(err) => Outcome::Failed {
                    host: Some(info.clone()),
                    err,
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
async fn deliver_tryclear(
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

/// The transport's TLS options matched against one host. `None`: no TLS
/// (`hosts_avoid_tls` matched, unless `hosts_require_tls` does too).
fn tls_params(
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

fn nonzero(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

/// Is `ip` one of this host's own addresses? As in Exim, that means an
/// address of one of its interfaces (127.0.0.1 and ::1 for loopback, not all
/// of 127.0.0.0/8), or the unspecified address.
pub(crate) fn is_local_address(ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return true;
    }
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs.into_iter().any(|a| {
            a.address.is_some_and(|s| {
                s.as_sockaddr_in().map(|v4| IpAddr::V4(v4.ip())) == Some(ip)
                    || s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())) == Some(ip)
            })
        }),
        // Without the interface list, at least the loopback addresses.
        Err(_) => {
            ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        }
    }
}

/// One address `-bt` routed to a transport.
struct TestedRoute {
    shown: String,
    key: (String, String),
    router: String,
    transport: String,
    hosts: Vec<RoutedHost>,
    local: bool,
}

/// An address and the lines naming its ancestors (`    <-- parent`).
fn with_parents(address: &str, parents: &[String]) -> String {
    let mut s = address.to_string();
    for p in parents {
        s.push_str("\n    <-- ");
        s.push_str(p);
    }
    s
}

/// `-bt`: show how each address routes, in Exim's layout: failures and
/// deferrals as they happen, then, once an argument's whole tree is
/// routed, the addresses for local transports and then those for remote
/// ones, each group newest first.
pub fn address_test(ctx: std::sync::Arc<Ctx>, addrs: &[String]) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sender = crate::submit::envelope_sender(&ctx);
    let vars = ctx.base_vars();
    let mut status = 0;
    let mut seen: std::collections::HashSet<(String, String)> = Default::default();
    for a in addrs {
        let mut routed: Vec<TestedRoute> = Vec::new();
        // (address, ancestors nearest first, first router)
        let mut queue: Vec<(String, Vec<String>, usize)> =
            vec![(ctx.qualify_recipient(a), Vec::new(), 0)];
        let mut later: Vec<(String, Vec<String>, usize)> = Vec::new();
        while let Some((addr, mut parents, start)) = queue.pop().or_else(|| later.pop()) {
            let r = rt.block_on(route::route_from(&ctx, &addr, &sender, &vars, false, start));
            if r.notes_in_bt {
                // Exim writes its log lines to stderr while testing.
                for n in &r.notes {
                    eprintln!("LOG: MAIN\n  {n} (while routing <{addr}>)");
                }
            }
            if let Some(next) = r.unseen_next {
                let mut p = parents.clone();
                p.insert(0, addr.clone());
                later.insert(0, (addr.clone(), p.clone(), next));
                parents = p;
            }
            match r.routed {
                Routed::Transport {
                    router,
                    transport,
                    hosts,
                } => {
                    let local = ctx
                        .drivers
                        .transport(&transport)
                        .is_some_and(|t| !matches!(t.kind, TransportKind::Smtp(_)));
                    routed.push(TestedRoute {
                        shown: with_parents(&addr, &parents),
                        key: (addr.clone(), router.clone()),
                        router,
                        transport,
                        hosts,
                        local,
                    });
                }
                Routed::Blackhole { .. } => {
                    println!("mail to {} is discarded", with_parents(&addr, &parents))
                }
                Routed::Redirected { children, .. } => {
                    let mut p = parents.clone();
                    p.insert(0, addr.clone());
                    for c in children.into_iter().rev() {
                        queue.push((ctx.qualify_recipient(&c), p.clone(), 0));
                    }
                }
                Routed::Fail { message, .. } => {
                    println!(
                        "{addr} is undeliverable: {message}{}",
                        with_parents("", &parents)
                    );
                    status = 2;
                }
                Routed::Defer { message, .. } => {
                    println!(
                        "{addr} cannot be resolved at this time: {message}{}",
                        with_parents("", &parents)
                    );
                    status = status.max(1);
                }
            }
        }
        let (local, remote): (Vec<_>, Vec<_>) = routed.into_iter().partition(|t| t.local);
        for t in local.into_iter().rev().chain(remote.into_iter().rev()) {
            let (first, rest) = t
                .shown
                .split_once('\n')
                .map_or((&t.shown[..], None), |(f, r)| (f, Some(r)));
            let dup = if seen.insert(t.key.clone()) {
                ""
            } else {
                "   [duplicate, would not be delivered]"
            };
            println!("{first}{dup}");
            if let Some(r) = rest {
                println!("{r}");
            }
            println!("  router = {}, transport = {}", t.router, t.transport);
            for h in t.hosts {
                let mx = h.mx.map(|m| format!(" MX={m}")).unwrap_or_default();
                match h.ip {
                    Some(ip) => println!("  host {} [{ip}]{mx}", h.name),
                    None => println!("  host {}{mx}", h.name),
                }
            }
        }
    }
    Ok(status)
}
