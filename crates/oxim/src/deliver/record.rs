//! The outcome of delivering one address, and its recording: the log line
//! (and msglog), the retry hint, and the list of permanent failures that
//! becomes a bounce.

use oxim_log::{
    Deferred, Delivered, DeliveryError, DeliveryFlag, Failed, LogAddress, LogRecord, Tfo,
};

use crate::bounce::FailedAddress;
use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::loaded::Loaded;
use crate::retry::{self, RetryDb, Schedule};
use crate::settings::TransportKind;
use crate::vars::Vars;

use super::route::{AddrData, Props};
use super::smtp::{Host, SmtpError};

#[derive(Debug, Clone)]
pub struct Item {
    pub address: String,
    /// The top-level recipient it came from (None for a top-level one).
    pub parent: Option<String>,
    /// How the address appears in the log when that differs from the
    /// address used on the wire (Exim logs percent-hacked addresses in
    /// lower case).
    pub log_as: Option<String>,
    /// errors_to and header changes from the routers that handled it or
    /// its parents.
    pub props: Props,
    /// The first router to offer it to (past 0 for an `unseen` copy).
    pub start: usize,
    /// How its delivery is remembered on the spool when that is not the
    /// address: `address/router` for the copy an `unseen` router took
    /// (Exim's name for it), so the copy passed on is remembered apart.
    pub unique: Option<String>,
    /// What its router found out for the transport (variables, the user
    /// and group to deliver as).
    pub data: AddrData,
    /// After a local delivery, what its shadow transport did (`ST=name`,
    /// with the error in brackets when it failed).
    pub shadow: Option<String>,
    /// The addresses it descends from, each with the router that handled
    /// it (routing's loop protection).
    pub ancestors: Vec<(String, String)>,
}

impl Item {
    pub fn top(&self) -> &str {
        self.parent.as_deref().unwrap_or(&self.address)
    }

    /// The name its delivery is recorded under (non-recipients).
    pub fn unique(&self) -> &str {
        self.unique.as_deref().unwrap_or(&self.address)
    }

    /// How the address appears in a log line. A successful local delivery
    /// shows the local part and then the original address in `<>`, as
    /// Exim does (`=> alice <alice@test.ex>`).
    pub fn log_address(&self, local_delivery: bool) -> LogAddress<'_> {
        let mut shown = self.log_as.as_deref().unwrap_or(&self.address);
        // A file or pipe shows whole, with the address that made it.
        if local_delivery && !shown.starts_with(['/', '|', '>']) {
            // $local_part: without the prefix or suffix the router took off.
            shown = self
                .data
                .vars
                .iter()
                .rev()
                .find(|(k, _)| k == "local_part")
                .map_or_else(|| crate::vars::split_address(shown).0, |(_, v)| v.as_str());
            return LogAddress::from_original(shown, self.top());
        }
        match &self.parent {
            Some(p) if p != shown => LogAddress::from_original(shown, p),
            _ => LogAddress::new(shown),
        }
    }

    /// An address generated from `self` (it inherits its properties).
    pub fn child(&self, address: String) -> Item {
        Item {
            address,
            parent: Some(self.top().to_string()),
            log_as: None,
            props: self.props.clone(),
            start: 0,
            unique: None,
            data: AddrData::default(),
            shadow: None,
            ancestors: self.ancestors.clone(),
        }
    }

    /// The envelope sender for this address's delivery: errors_to when a
    /// router set one (an empty one included).
    pub fn return_path<'a>(&'a self, sender: &'a str) -> &'a str {
        // errors_to = "" delivers with an empty return path.
        self.props.errors_to.as_deref().unwrap_or(sender)
    }
}

/// What one delivery attempt achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    pub completed: bool,
}

/// The result for one address, owned until it is logged.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        host: Option<Host>,
        /// TFO facts of the connection (`NotTcp` for local deliveries).
        tfo: Tfo,
        /// TLS of the session (` X=`, ` CV=`).
        tls: Option<oxim_tls::TlsSession>,
        /// Sent with BDAT (` K` in the log).
        chunking: bool,
        /// ` L` / ` L*` with `+pipelining`.
        pipelining: Option<oxim_log::PipeliningLog>,
        /// Down a connection an earlier message used (`*` in the log).
        continued: bool,
        confirmation: Option<String>,
        first: bool,
        /// SMTP AUTH as a client: ` A=name[:id[:sender]]`.
        auth: Option<String>,
        /// The SMTP session start (` PS=` with `+protocol_detail`).
        sequence: Option<String>,
        /// DKIM signature made: ` DKIM=domain:selector`.
        dkim: Option<String>,
    },
    Deferred {
        host: Option<Host>,
        err: SmtpError,
    },
    Failed {
        host: Option<Host>,
        err: SmtpError,
        /// The SMTP session start (` PS=` with `+protocol_detail`).
        sequence: Option<String>,
    },
}

impl Outcome {
    /// A delivery done here (no connection, host or session facts).
    pub fn delivered_locally() -> Outcome {
        Outcome::Delivered {
            host: None,
            tfo: Tfo::NotTcp,
            tls: None,
            chunking: false,
            pipelining: None,
            continued: false,
            confirmation: None,
            first: true,
            auth: None,
            sequence: None,
            dkim: None,
        }
    }
}

pub fn local_error(errno: Errno, message: impl Into<String>) -> SmtpError {
    SmtpError {
        errno,
        errno_text: None,
        message: Some(message.into()),
        with_host: false,
    }
}

pub fn log_outcome(
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
    match outcome {
        Outcome::Delivered { .. } => crate::metrics::delivered(),
        Outcome::Deferred { .. } => crate::metrics::deferred(),
        Outcome::Failed { .. } => crate::metrics::failed(),
    }
    let rec = match outcome {
        Outcome::Delivered {
            host,
            tfo,
            tls,
            chunking,
            pipelining,
            continued,
            confirmation,
            first,
            auth,
            sequence,
            dkim,
        } => {
            let mut d = Delivered::new(&id_text, addr, sender);
            d.flag = if bypassed(ctx, m) {
                DeliveryFlag::Suppressed
            } else if *first {
                DeliveryFlag::First
            } else {
                DeliveryFlag::Further
            };
            d.return_path = Some(item.return_path(sender));
            d.shadow = item.shadow.as_deref();
            d.router = router;
            d.transport = transport;
            d.host = host.as_ref().map(Host::log);
            d.continued = *continued;
            d.tfo = *tfo;
            d.confirmation = confirmation.as_deref();
            d.auth = auth.as_deref();
            d.protocol_sequence = sequence.as_deref();
            d.chunking = *chunking;
            d.dkim = dkim.as_deref();
            d.pipelining = *pipelining;
            d.tls = tls.as_ref().map(crate::ctx::tls_log);
            LogRecord::Delivered(d)
        }
        Outcome::Deferred { host, err } | Outcome::Failed { host, err, .. } => {
            let sequence = match outcome {
                Outcome::Failed { sequence, .. } => sequence.as_deref(),
                _ => None,
            };
            let error = DeliveryError {
                errno: err.errno.code(),
                errno_text: err.errno_text.as_deref(),
                host: if err.with_host {
                    host.as_ref().map(Host::log)
                } else {
                    None
                },
                message: err.message.as_deref(),
                protocol_sequence: sequence,
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

/// Per-attempt bookkeeping: logs each outcome, keeps retry hints, collects
/// permanent failures for the bounce.
pub struct Attempt<'a> {
    pub ctx: &'a Ctx,
    pub m: &'a Loaded,
    pub sender: String,
    pub vars: &'a Vars,
    pub retry: RetryDb,
    pub now: u64,
    pub summary: Summary,
    pub failed: Vec<FailedAddress>,
    pub pending_tops: Vec<String>,
    pub done_children: Vec<String>,
    /// The retry records this attempt updated, with the schedule each got.
    pub updated: std::collections::HashMap<String, Schedule>,
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn reason_text(err: &SmtpError) -> String {
    match (&err.message, &err.errno_text) {
        (Some(m), _) => m.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "delivery failed".into(),
    }
}

/// What a deferral is recorded against in the retry database.
enum RetryKey {
    /// Nothing: the retry time had not come (nothing new was learnt).
    None,
    /// A record the smtp transport keeps (`T:host...`): its expiry decides.
    Host(String),
    /// A record updated here (`R:domain`, `R:address:<sender>`,
    /// `T:address` for a local transport).
    Own(String),
}

/// Exim's retry-record error for a deferral: its error number, the extra
/// number (`A` or `M` for a host from an address or MX record, with the
/// reply code's last two digits above it for a 4xx to MAIL, RCPT or
/// DATA) and its text (the system error's, else the message, with the
/// host in front when the host answered).
pub fn retry_error(err: &SmtpError, host: Option<&Host>, from_mx: bool) -> retry::RetryError {
    let basic_errno = err.errno.code();
    let letter = if from_mx {
        i32::from(b'M')
    } else {
        i32::from(b'A')
    };
    let more_errno = match (err.errno, host) {
        (Errno::Rcpt4xx | Errno::Mail4xx | Errno::Data4xx, Some(_)) => {
            reply_code(err.message.as_deref().unwrap_or("")).map_or(0, |c| (c % 100) << 8) | letter
        }
        (_, Some(_)) => letter,
        _ => 0,
    };
    let text = if basic_errno > 0 {
        err.errno_text.clone().unwrap_or_else(|| reason_text(err))
    } else {
        match (host, err.with_host) {
            (Some(h), true) => format!("H={} [{}]: {}", h.name, h.ip, reason_text(err)),
            _ => reason_text(err),
        }
    };
    retry::RetryError {
        basic_errno,
        more_errno,
        text,
    }
}

/// The 4xx code of an SMTP error text (`...: 451 Temporary error`).
fn reply_code(text: &str) -> Option<i32> {
    text.match_indices(": 4").find_map(|(i, _)| {
        let code = text.get(i + 2..i + 5)?;
        let after = text[i + 5..].chars().next();
        (code.bytes().all(|b| b.is_ascii_digit()) && after.is_none_or(|c| c == ' ' || c == '-'))
            .then(|| code.parse().ok())
            .flatten()
    })
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

impl Attempt<'_> {
    /// Where a deferral of `item` is recorded, as Exim keeps retry data:
    /// a routing deferral against the domain, a 4xx to RCPT against the
    /// address and sender, a local transport's deferral against the
    /// address; host-level problems against the host (by the transport).
    fn retry_key(
        &self,
        item: &Item,
        transport: Option<&str>,
        host: Option<&Host>,
        err: &SmtpError,
    ) -> RetryKey {
        if matches!(err.errno, Errno::HostRetry | Errno::RouteRetry) {
            return RetryKey::None;
        }
        let Some(t) = transport else {
            return RetryKey::Own(format!("R:{}", domain_of(&item.address)));
        };
        let smtp = self
            .ctx
            .drivers
            .transport(t)
            .is_some_and(|t| matches!(t.kind, TransportKind::Smtp(_)));
        if !smtp {
            return RetryKey::Own(format!("T:{}", item.address));
        }
        match (host, err.errno) {
            (Some(_), Errno::Rcpt4xx) => {
                RetryKey::Own(format!("R:{}:<{}>", item.address, self.sender))
            }
            (Some(h), Errno::Mail4xx | Errno::Data4xx) => RetryKey::Host(format!(
                "{}:{}",
                retry::host_key(&h.name, h.ip, h.port),
                self.m.env.id
            )),
            (Some(h), _) if err.with_host || matches!(err.errno, Errno::Os(_)) => {
                RetryKey::Host(retry::host_key(&h.name, h.ip, h.port))
            }
            _ => RetryKey::Own(format!("R:{}", item.address)),
        }
    }

    pub fn record(
        &mut self,
        item: &Item,
        router: Option<&str>,
        transport: Option<&str>,
        outcome: Outcome,
    ) {
        let ctx = self.ctx;
        let outcome = match outcome {
            Outcome::Deferred { host, err } => {
                let sched = match self.retry_key(item, transport, host.as_ref(), &err) {
                    RetryKey::None => Schedule::RetryAt(self.now),
                    RetryKey::Host(key) => match self.retry.get(&key) {
                        Some(h) if h.expired => Schedule::TimedOut,
                        _ => Schedule::RetryAt(self.now),
                    },
                    RetryKey::Own(key) => {
                        // One update per key and attempt, however many
                        // addresses share it.
                        if let Some(s) = self.updated.get(&key) {
                            *s
                        } else {
                            let rerr = retry_error(&err, host.as_ref(), false);
                            let rule = retry::find_rule_for(
                                &ctx.config,
                                &item.address,
                                None,
                                (rerr.basic_errno, rerr.more_errno),
                                Some(&self.sender),
                                self.vars,
                            );
                            let max = ctx.settings.retry_interval_max.as_secs();
                            let s = self.retry.failed(&key, rule, self.now, max, &rerr);
                            self.updated.insert(key, s);
                            s
                        }
                    }
                };
                match sched {
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
                        // As Exim: the deferral is logged, then the
                        // address fails with its own line; the bounce
                        // gives the error and the timeout.
                        let failed = Outcome::Deferred { host, err };
                        log_outcome(ctx, self.m, &self.sender, item, router, transport, &failed);
                        let Outcome::Deferred { host, mut err } = failed else {
                            unreachable!("built just above")
                        };
                        let mut line = format!("** {}", item.address);
                        if let Some(p) = item.parent.as_ref().filter(|p| **p != item.address) {
                            line.push_str(&format!(" <{p}>"));
                        }
                        line.push_str(": retry timeout exceeded");
                        let id_text = self.m.env.id.to_string();
                        ctx.log_message(
                            self.m,
                            &LogRecord::Text {
                                id: Some(&id_text),
                                text: &line,
                                dest: oxim_log::Dest {
                                    main: true,
                                    reject: false,
                                    panic: false,
                                },
                            },
                        );
                        let text = reason_text(&err);
                        err.message = Some(format!("{text}: retry timeout exceeded"));
                        err.errno_text = None;
                        self.finish(
                            item,
                            transport,
                            Outcome::Failed {
                                host,
                                err,
                                sequence: None,
                            },
                        );
                        return;
                    }
                }
            }
            other => other,
        };
        log_outcome(ctx, self.m, &self.sender, item, router, transport, &outcome);
        self.finish(item, transport, outcome);
    }

    /// After an outcome is logged: clear the address's retry hints and
    /// count it (a failure is kept for the bounce).
    fn finish(&mut self, item: &Item, transport: Option<&str>, outcome: Outcome) {
        self.retry.clear(&format!("R:{}", item.address));
        self.retry
            .clear(&format!("R:{}:<{}>", item.address, self.sender));
        if transport.is_some() {
            self.retry.clear(&format!("T:{}", item.address));
        }
        match &outcome {
            Outcome::Delivered { .. } => self.summary.delivered += 1,
            Outcome::Failed { err, host, .. } => {
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
    pub fn note_failed(&mut self, item: &Item, host: Option<&Host>, err: &SmtpError) {
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

    /// An SMTP delivery left for a later queue run (`-odqs`,
    /// `queue_smtp_domains`, the first stage of `-qq`): deferred without
    /// touching the retry hints; the first stage of a two-stage run does
    /// not log it.
    pub fn hold(
        &mut self,
        item: &Item,
        router: &str,
        transport: &str,
        err: SmtpError,
        hold: SmtpHold,
    ) {
        if !hold.first_stage {
            let outcome = Outcome::Deferred { host: None, err };
            log_outcome(
                self.ctx,
                self.m,
                &self.sender,
                item,
                Some(router),
                Some(transport),
                &outcome,
            );
        }
        self.summary.deferred += 1;
        self.pending_tops.push(item.top().to_string());
    }

    /// An address left unrouted because its retry time has not come:
    /// Exim's `== addr routing defer (-52): retry time not reached`
    /// (`+retry_defer`, on by default).
    pub fn routing_retry_not_reached(&mut self, item: &Item) {
        let id_text = self.m.env.id.to_string();
        let error = DeliveryError {
            errno: Errno::RouteRetry.code(),
            errno_text: None,
            host: None,
            message: Some("retry time not reached"),
            protocol_sequence: None,
        };
        let mut d = Deferred::new(&id_text, item.log_address(false), &self.sender, error);
        d.routing = true;
        d.retry_not_reached = true;
        self.ctx.log_message(self.m, &LogRecord::Deferred(d));
        self.summary.deferred += 1;
        self.pending_tops.push(item.top().to_string());
    }

    /// Exim's `== addr routing defer (-56): domain is in queue_domains`:
    /// a delivery that is neither forced nor a queue run leaves the
    /// address on the queue without routing it.
    pub fn queue_domain_deferred(&mut self, item: &Item) {
        let id_text = self.m.env.id.to_string();
        let error = DeliveryError {
            errno: Errno::QueueDomain.code(),
            errno_text: None,
            host: None,
            message: Some("domain is in queue_domains"),
            protocol_sequence: None,
        };
        let mut d = Deferred::new(&id_text, item.log_address(false), &self.sender, error);
        d.routing = true;
        self.ctx.log_message(self.m, &LogRecord::Deferred(d));
        self.summary.deferred += 1;
        self.pending_tops.push(item.top().to_string());
    }

    /// An address whose retry time has not come is not routed this time
    /// (Exim's `routing defer (-52): retry time not reached`): a record for
    /// its domain (not expired), or for the address (alone or with this
    /// sender). Records older than `retry_data_expire` are ignored.
    pub fn too_early(&self, item: &Item) -> bool {
        let expire = self.ctx.settings.retry_data_expire.as_secs();
        let now = self.now;
        let current = |k: &str| {
            self.retry
                .get(k)
                .filter(|h| now.saturating_sub(h.last_try) <= expire)
        };
        let domain = current(&format!("R:{}", domain_of(&item.address)))
            .is_some_and(|h| now < h.next_try && !h.expired);
        let address = current(&format!("R:{}", item.address))
            .or_else(|| current(&format!("R:{}:<{}>", item.address, self.sender)))
            .is_some_and(|h| now < h.next_try);
        domain || address
    }
}

/// Whether the domain of `address` is in `queue_domains` (a list that
/// cannot be matched counts as no).
pub(super) fn in_queue_domains(ctx: &Ctx, address: &str, vars: &Vars) -> bool {
    let list = ctx.config.main.str("queue_domains");
    if list.is_empty() {
        return false;
    }
    let domain = crate::vars::split_address(address).1;
    oxim_conf::expand(list, vars)
        .ok()
        .and_then(|l| oxim_conf::match_domain(&l, domain, &ctx.config, vars).ok())
        .unwrap_or(false)
}

/// `-N`, given now or when the message was received: transports are not
/// run, their deliveries are logged as `*>` and count as done.
pub fn bypassed(ctx: &Ctx, m: &Loaded) -> bool {
    ctx.inv.dont_deliver || m.env.dont_deliver
}

/// Which SMTP deliveries a delivery attempt leaves for a later queue run
/// (Exim's `queue_smtp` and `queue_smtp_domains`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmtpHold {
    /// No SMTP delivery is attempted (`-odqs`, the first stage of `-qq`).
    pub all: bool,
    /// `queue_smtp_domains` applies (it does not in queue runs or in
    /// forced deliveries).
    pub domains: bool,
    /// The first stage of a two-stage queue run: the SMTP deliveries it
    /// leaves are not logged (the second stage makes them).
    pub first_stage: bool,
}

impl SmtpHold {
    /// A delivery started straight after reception (or by `-Mc`).
    pub fn immediate(ctx: &Ctx) -> Self {
        SmtpHold {
            all: ctx.inv.queue_smtp,
            domains: true,
            first_stage: false,
        }
    }

    /// Whether an SMTP delivery to `domain` waits; the message it is
    /// deferred with and that message's errno (Exim's texts).
    pub(super) fn holds(
        &self,
        ctx: &Ctx,
        domain: &str,
        vars: &Vars,
    ) -> Option<(Errno, &'static str)> {
        if self.all {
            return Some((Errno::None, "SMTP delivery explicitly queued"));
        }
        let list = ctx.settings.queue_smtp_domains.as_str();
        if !self.domains || list.is_empty() {
            return None;
        }
        // A lookup defer counts as no match: SMTP deliveries are not held
        // up by a broken list.
        let list = oxim_conf::expand(list, vars).ok()?;
        oxim_conf::match_domain(&list, domain, &ctx.config, vars)
            .unwrap_or(false)
            .then_some((
                Errno::Unknown,
                "first-pass only routing due to -odqs, queue_smtp_domains or control=queue",
            ))
    }
}
