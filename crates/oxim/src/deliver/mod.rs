//! Delivery of one spooled message: route every pending recipient, run the
//! transports, log each outcome in Exim's format, update or remove the spool
//! files.

pub mod appendfile;
pub mod autoreply;
pub mod in_flight;
mod message_vars;
pub mod pipe;
mod record;
pub mod route;
pub mod smtp;
mod system_filter;
mod transport;

pub(crate) use message_vars::message_vars;

use std::collections::BTreeMap;

use anyhow::Result;
use oxim_log::LogRecord;
use oxim_spool::MessageId;

use crate::bounce::{self, FailedAddress};
use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::loaded::Loaded;
use crate::retry::RetryDb;
use crate::settings::TransportKind;
use crate::vars::Vars;
use record::{local_error, log_outcome, now_secs, Attempt, Item, Outcome};
pub use record::{SmtpHold, Summary};
use route::{Props, Routed, RoutedHost};
pub use transport::{callout_targets, CalloutTarget};
use transport::{run_remote_group, run_transport, Call};

/// Exim's percent hack: `user%host@here` becomes `user@host` when `here`
/// is in `percent_hack_domains`.
fn percent_hack(ctx: &Ctx, address: &str, vars: &Vars) -> Option<String> {
    let list = ctx.settings.percent_hack_domains.as_str();
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

/// Whether a header line is a `Received:` one (`$received_count`,
/// `received_headers_max`).
pub(crate) fn is_received(text: &str) -> bool {
    text.get(..9)
        .is_some_and(|n| n.eq_ignore_ascii_case("received:"))
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
    deliver_id_pooled(ctx, id, force, None, SmtpHold::immediate(ctx)).await
}

/// [`deliver_id`] with SMTP connections shared through `pool` (a queue
/// run's deliveries use one pool, so messages for one host go down one
/// connection).
pub async fn deliver_id_pooled(
    ctx: &Ctx,
    id: &MessageId,
    force: bool,
    pool: Option<smtp::PoolRef<'_>>,
    hold: SmtpHold,
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
    let s = deliver_loaded(ctx, loaded, force, pool, hold).await;
    drop(lock);
    s
}

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
            m.flush_msglog(&ctx.spool);
            return Ok(Summary::default());
        }
        Err(e) => return Err(e.into()),
    };
    let s = deliver_loaded(ctx, m, true, None, SmtpHold::immediate(ctx)).await;
    drop(lock);
    s
}

/// Deliver a message already in memory (and safely on the spool).
/// `force` ignores retry times (a first delivery attempt, `-M`, `-qf`).
pub async fn deliver_loaded(
    ctx: &Ctx,
    mut m: Loaded,
    force: bool,
    pool: Option<smtp::PoolRef<'_>>,
    hold: SmtpHold,
) -> Result<Summary> {
    let id = m.env.id;
    // Verbose mode (-v, or -N which implies it) announces each delivery.
    if ctx.inv.verbose {
        if ctx.inv.mode == crate::cli::Mode::QueueRun {
            eprintln!("delivering {id} (queue run pid {})", std::process::id());
        } else {
            eprintln!("delivering {id}");
        }
    }
    if m.env.frozen.is_some() {
        let age = now_secs().saturating_sub(m.env.received_time);
        let limit = ctx.settings.timeout_frozen_after.as_secs();
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
    // The system filter runs first, on every attempt.
    let before = message_vars(ctx, &m);
    let mut after = system_filter::run(ctx, &mut m, &before);
    // More Received: header lines than received_headers_max: every
    // recipient fails, as a routing failure (a loop is suspected).
    let received = m
        .headers
        .iter()
        .filter(|h| h.is_live() && is_received(&h.text))
        .count();
    if received > ctx.settings.received_headers_max && !matches!(after, system_filter::After::Stop)
    {
        after = system_filter::After::FailAll(
            "Too many \"Received\" headers - suspected mail loop".into(),
        );
    }
    let mut vars = message_vars(ctx, &m);
    match &after {
        system_filter::After::Stop => {
            m.flush_msglog(&ctx.spool);
            return Ok(Summary::default());
        }
        system_filter::After::Continue(sn) => {
            for (i, v) in sn.iter().enumerate() {
                vars.set(&format!("sn{i}"), v.to_string());
            }
        }
        _ => {}
    }
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
        updated: Default::default(),
    };

    // 1. Route every pending recipient, following redirections. A
    // recipient listed twice (`-t` with an address in To: and Cc:) is
    // delivered once, as Exim discards duplicates (same local part, domain
    // in any case); the copies share its fate on the spool.
    let mut seen = std::collections::HashSet::new();
    let mut work: Vec<Item> = m
        .env
        .pending_recipients()
        .filter(|r| {
            let (lp, dom) = crate::vars::split_address(&r.address);
            seen.insert(format!("{lp}@{}", dom.to_ascii_lowercase()))
        })
        .map(|r| Item {
            address: r.address.clone(),
            parent: None,
            log_as: None,
            props: Props::default(),
            data: Default::default(),
            start: 0,
            unique: None,
            shadow: None,
            ancestors: Vec::new(),
        })
        .collect();
    work.reverse();
    match after {
        // Every recipient is done without routing.
        system_filter::After::Discarded => work.clear(),
        system_filter::After::FailAll(message) => {
            for item in work.drain(..).rev() {
                let err = local_error(Errno::None, message.clone());
                run.record(
                    &item,
                    None,
                    None,
                    Outcome::Failed {
                        host: None,
                        err,
                        sequence: None,
                    },
                );
            }
        }
        _ => {}
    }
    let mut to_transport: BTreeMap<TransportKey, Vec<(Item, String)>> = BTreeMap::new();
    let mut generated = 0usize;
    // manualroute's host_find_failed = freeze.
    let mut freeze_routing = false;
    while let Some(mut item) = work.pop() {
        if item.parent.is_some() && m.env.non_recipients.iter().any(|a| a == item.unique()) {
            continue; // delivered in an earlier attempt
        }
        if !force && run.too_early(&item) {
            run.routing_retry_not_reached(&item);
            continue;
        }
        // queue_domains: not routed now, except by a queue run or a forced
        // delivery (hold.domains is off for both).
        if hold.domains && record::in_queue_domains(ctx, &item.address, &vars) {
            run.queue_domain_deferred(&item);
            continue;
        }
        if let Some(hacked) = percent_hack(ctx, &item.address, &vars) {
            item = item.child(hacked);
            item.log_as = Some(item.address.to_ascii_lowercase());
        }
        let routing = route::route_descendant(
            ctx,
            &item.address,
            &run.sender,
            &vars,
            false,
            item.start,
            &item.ancestors,
        )
        .await;
        if let Some(next) = routing.unseen_next {
            // `unseen`: the address is also offered to the following
            // routers, after everything else; both copies become children
            // of the address.
            let mut copy = item.child(item.address.clone());
            copy.start = next;
            work.insert(0, copy);
            item = item.child(item.address.clone());
            let router = match &routing.routed {
                Routed::Transport { router, .. } | Routed::Blackhole { router, .. } => Some(router),
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
                data,
            } => {
                item.data = data;
                to_transport
                    .entry((transport, hosts, item.props.clone()))
                    .or_default()
                    .push((item, router));
            }
            Routed::Blackhole { router, discarded } => {
                let shown = if discarded {
                    "discarded"
                } else {
                    ":blackhole:"
                };
                let mut shown = item.child(shown.into());
                shown.parent = Some(item.address.clone());
                log_outcome(
                    ctx,
                    &m,
                    &run.sender,
                    &shown,
                    Some(&router),
                    None,
                    &Outcome::delivered_locally(),
                );
                run.summary.delivered += 1;
                if item.parent.is_some() {
                    run.done_children.push(item.unique().to_string());
                }
            }
            Routed::Redirected {
                children,
                direct,
                router,
            } => {
                // Files and pipes go straight to the router's transport.
                for d in direct {
                    let mut f = item.child(d.target.clone());
                    // "(parent)" only when the redirected address was
                    // itself generated; else Exim logs just the file or
                    // pipe with its top-level address.
                    if item.parent.as_deref().is_some_and(|p| p != item.address) {
                        f.log_as = Some(format!("{} ({})", d.target, item.address));
                    }
                    f.data = d.data;
                    if let Some(why) = d.forbidden {
                        let err = local_error(Errno::None, why);
                        run.record(
                            &f,
                            Some(&d.router),
                            None,
                            Outcome::Failed {
                                host: None,
                                err,
                                sequence: None,
                            },
                        );
                        continue;
                    }
                    if d.target == "/dev/null" {
                        // Exim's special case: nothing to run, no user
                        // needed; logged as delivered by "**bypassed**".
                        let id_text = id.to_string();
                        let mut rec =
                            oxim_log::Delivered::new(&id_text, f.log_address(false), &run.sender);
                        rec.router = Some(&d.router);
                        rec.transport = Some("**bypassed**");
                        rec.no_return_path = true;
                        ctx.log_message(&m, &LogRecord::Delivered(rec));
                        run.summary.delivered += 1;
                        run.done_children.push(f.unique().to_string());
                        continue;
                    }
                    match d.transport {
                        Some(t) => to_transport
                            .entry((t, Vec::new(), f.props.clone()))
                            .or_default()
                            .push((f, d.router)),
                        None => {
                            let kind = if d.target.starts_with('|') {
                                "pipe"
                            } else if d.target.starts_with('>') {
                                "reply"
                            } else {
                                "file"
                            };
                            let err = local_error(
                                Errno::BadTransport,
                                format!("{kind}_transport unset in {} router", d.router),
                            );
                            run.record(
                                &f,
                                Some(&d.router),
                                None,
                                Outcome::Deferred { host: None, err },
                            );
                        }
                    }
                }
                generated += children.len();
                if generated > 1000 {
                    let err = local_error(Errno::Unknown, "too many generated addresses");
                    run.record(&item, None, None, Outcome::Deferred { host: None, err });
                    continue;
                }
                let check_ancestor = ctx.drivers.routers.iter().any(|r| {
                    r.name == router
                        && matches!(
                            r.kind,
                            crate::settings::RouterKind::Redirect {
                                check_ancestor: true,
                                ..
                            }
                        )
                });
                for c in children.into_iter().rev() {
                    let mut c = ctx.qualify_recipient(&c);
                    // check_ancestor: an ancestor generated again is
                    // replaced by the address being redirected.
                    if check_ancestor
                        && (c.eq_ignore_ascii_case(&item.address)
                            || item
                                .ancestors
                                .iter()
                                .any(|(a, _)| c.eq_ignore_ascii_case(a)))
                    {
                        c = item.address.clone();
                    }
                    let mut child = item.child(c);
                    child.ancestors.push((item.address.clone(), router.clone()));
                    work.push(child);
                }
            }
            Routed::Fail { router, message } => {
                let err = local_error(Errno::None, message);
                run.record(
                    &item,
                    router.as_deref(),
                    None,
                    Outcome::Failed {
                        host: None,
                        err,
                        sequence: None,
                    },
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
                let mut sent = Vec::new();
                for (item, router) in items {
                    let domain = crate::vars::split_address(&item.address).1;
                    match hold.holds(ctx, domain, &vars) {
                        Some((errno, text)) => {
                            run.hold(&item, &router, &tname, local_error(errno, text), hold)
                        }
                        None => sent.push((item, router)),
                    }
                }
                let items = sent;
                if !items.is_empty() {
                    remote.push((tname, t, hosts, props, items));
                }
                continue;
            }
            Some(t) => {
                let call = Call {
                    ctx,
                    m: &m,
                    headers: &headers,
                    vars: &vars,
                    items: &items,
                    router_hosts: &hosts,
                    return_path: items[0].0.return_path(&m.env.sender),
                };
                let results = run_transport(call, t, &props, None).await;
                transport::run_shadow(call, t, &props, results).await
            }
            None => items
                .iter()
                .map(|(i, r)| {
                    let err =
                        local_error(Errno::Unknown, format!("transport \"{tname}\" not found"));
                    (i.clone(), r.clone(), Outcome::Deferred { host: None, err })
                })
                .collect(),
        };
        for (item, router, outcome) in results {
            run.record(&item, Some(&router), Some(&tname), outcome);
        }
    }
    if let Some(list) = ctx.config.main.opt_str("remote_sort_domains") {
        sort_remote(ctx, list, &vars, &mut remote);
    }
    if !remote.is_empty() {
        use futures_util::stream::StreamExt;
        let parallel = ctx.settings.remote_max_parallel;
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
        if age <= ctx.settings.ignore_bounce_errors_after.as_secs() {
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
        match bounce::generate(ctx, &m, &dest, &failed).await {
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
        // Time on the queue, shown under +queue_time_overall.
        let on_queue = now_secs().saturating_sub(m.env.received_time);
        ctx.log(&LogRecord::Completed {
            id: &id_text,
            queue_time: Some(std::time::Duration::from_secs(on_queue)),
        });
        // Unlinking blocks; keep it off the async workers.
        let spool = ctx.spool.clone();
        tokio::task::spawn_blocking(move || crate::privilege::with_own_ids(|| spool.remove(&id)))
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
        m.flush_msglog(&ctx.spool);
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

/// `remote_sort_domains`: remote addresses whose domains match the list
/// are delivered first, in the order of the list's items (within each
/// host group, and the groups by their first address); the others keep
/// their order after them.
fn sort_remote(ctx: &Ctx, list: &str, vars: &Vars, remote: &mut [transport::RemoteGroup<'_>]) {
    let items = oxim_conf::lists::list_items(list);
    let rank = |item: &Item| -> usize {
        let domain = crate::vars::split_address(&item.address)
            .1
            .to_ascii_lowercase();
        items
            .iter()
            .position(|pattern| {
                oxim_conf::match_domain(pattern, &domain, &ctx.config, vars).unwrap_or(false)
            })
            .unwrap_or(items.len())
    };
    for group in remote.iter_mut() {
        group.4.sort_by_key(|(i, _)| rank(i));
    }
    remote.sort_by_key(|g| g.4.first().map_or(usize::MAX, |(i, _)| rank(i)));
}
