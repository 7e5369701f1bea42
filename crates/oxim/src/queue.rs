//! Queue operations: queue runs, `-M`, `-Mrm`, `-bp`.

use std::sync::Arc;

use anyhow::Result;
use oxim_log::LogRecord;
use oxim_spool::{MessageId, SpoolError};

use crate::ctx::Ctx;
use crate::deliver;

/// Crash debris in `input/` (temporary files, a `-D` without its `-H`)
/// older than this is removed by queue runs; nothing being written lives
/// that long.
const STALE_DEBRIS_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove old crash debris from `input/`, logging each file.
fn tidy_spool(ctx: &Ctx) {
    match ctx.spool.remove_stale_debris(STALE_DEBRIS_AGE) {
        Ok(paths) => {
            for p in paths {
                ctx.log_text(
                    None,
                    &format!("removed stale spool file {} (left by a crash)", p.display()),
                );
            }
        }
        Err(e) => ctx.log_text(None, &format!("spool tidy failed: {e}")),
    }
}

/// A message whose `-H` file cannot be parsed is logged as Exim logs it
/// and moved to `quarantine/`, so it stops failing on every run. True when
/// `e` was such an error.
fn quarantine_if_malformed(ctx: &Ctx, id: &MessageId, e: &anyhow::Error) -> bool {
    let Some(se) = e.downcast_ref::<SpoolError>() else {
        return false;
    };
    if !matches!(
        se,
        SpoolError::Format { .. } | SpoolError::IdMismatch { .. }
    ) {
        return false;
    }
    let id_text = id.to_string();
    let what = match std::fs::metadata(ctx.spool.header_path(id)) {
        Ok(m) => format!("Format error in spool file {id}-H: size={}", m.len()),
        Err(_) => format!("Format error in spool file {id}-H"),
    };
    ctx.log_text(Some(&id_text), &what);
    match ctx.spool.quarantine(id, &se.to_string()) {
        Ok(dir) => ctx.log_text(
            Some(&id_text),
            &format!("spool files moved to {}: {se}", dir.display()),
        ),
        Err(qe) => ctx.log_text(Some(&id_text), &format!("cannot quarantine: {qe}")),
    }
    true
}

/// Deliver one message from the spool, quarantining it if malformed.
async fn deliver_one(
    ctx: &Ctx,
    id: &MessageId,
    force: bool,
    pool: Option<deliver::smtp::PoolRef<'_>>,
    hold: deliver::SmtpHold,
) -> Result<()> {
    match deliver::deliver_id_pooled(ctx, id, force, pool, hold).await {
        Ok(_) => Ok(()),
        Err(e) if quarantine_if_malformed(ctx, id, &e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deliver everything on the queue, `queue_run_max` messages at a time.
/// The deliveries share SMTP connections: messages for one host go down one
/// connection, one after the other, while other hosts are served in
/// parallel.
pub async fn run_queue(ctx: &Arc<Ctx>, force: bool) {
    run_queue_stage(ctx, force, deliver::SmtpHold::default()).await
}

/// One pass over the queue; `hold` is set for the first stage of a
/// two-stage run (routing and local deliveries only).
async fn run_queue_stage(ctx: &Arc<Ctx>, force: bool, hold: deliver::SmtpHold) {
    tidy_spool(ctx);
    let ids = match ctx.spool.list() {
        Ok(ids) => ids,
        Err(e) => {
            ctx.log_text(None, &format!("queue run: cannot list spool: {e}"));
            return;
        }
    };
    // queue_run_max (an expanded string, 5 by default; 0 is no limit)
    // bounds the deliveries working at once. One that has to wait for a
    // host busy with another message gives its share back (see
    // smtp::Ticket) but stays loaded in memory: the loaded ones are bounded
    // by a larger number.
    let max = ctx.expand_int("queue_run_max", &ctx.base_vars(), 5);
    let max = usize::try_from(if max == 0 { 1000 } else { max }).unwrap_or(1000);
    let working = Arc::new(tokio::sync::Semaphore::new(max));
    let loaded = Arc::new(tokio::sync::Semaphore::new(max.saturating_mul(10).max(100)));
    let pool = Arc::new(deliver::smtp::Pool::new());
    let mut tasks = Vec::new();
    for id in ids {
        let ctx = ctx.clone();
        let (working, loaded) = (working.clone(), loaded.clone());
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(_loaded) = loaded.acquire().await else {
                return;
            };
            let Some(ticket) = deliver::smtp::Ticket::new(working).await else {
                return;
            };
            let shared = deliver::smtp::PoolRef {
                pool: &pool,
                ticket: Some(&ticket),
            };
            if let Some(wanted) = &ctx.inv.select_recipient {
                if !has_recipient_like(&ctx, &id, wanted) {
                    return;
                }
            }
            if let Err(e) = deliver_one(&ctx, &id, force, Some(shared), hold).await {
                ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            }
        }));
    }
    for t in tasks {
        // A delivery task that panicked is a bug: say so rather than lose it.
        if let Err(e) = t.await {
            ctx.log_text(None, &format!("queue run: delivery task failed: {e}"));
        }
    }
    pool.close_all().await;
}

fn parse_ids(ctx: &Ctx, ids: &[String]) -> Vec<MessageId> {
    ids.iter()
        .filter_map(|s| match s.parse::<MessageId>() {
            Ok(id) => Some(id),
            Err(_) => {
                eprintln!("{}: malformed message id: {s}", ctx.inv.prog);
                None
            }
        })
        .collect()
}

/// `-M`/`-Mc id...`.
pub fn deliver_ids(ctx: Arc<Ctx>, ids: &[String], force: bool) -> Result<i32> {
    let ids = parse_ids(&ctx, ids);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut status = 0;
    let pool = deliver::smtp::Pool::new();
    for id in ids {
        if !ctx.spool.exists(&id) {
            eprintln!("{}: message {id} is not on the queue", ctx.inv.prog);
            status = 1;
            continue;
        }
        let shared = deliver::smtp::PoolRef {
            pool: &pool,
            ticket: None,
        };
        // -M forces; -Mc is a delivery as straight after reception.
        let hold = if force {
            deliver::SmtpHold::default()
        } else {
            deliver::SmtpHold::immediate(&ctx)
        };
        if let Err(e) = rt.block_on(deliver::deliver_id_pooled(
            &ctx,
            &id,
            force,
            Some(shared),
            hold,
        )) {
            if quarantine_if_malformed(&ctx, &id, &e) {
                eprintln!("{}: {id}: {e}: moved to quarantine", ctx.inv.prog);
            } else {
                ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            }
            status = 1;
        }
    }
    rt.block_on(pool.close_all());
    Ok(status)
}

/// One queue run from the command line (`-q`, `-qf`). On one thread: a
/// local delivery switches the process's ids to its user for a moment
/// (deliveries still overlap while they wait for the network).
pub fn queue_run(ctx: Arc<Ctx>) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let force = ctx.inv.force || ctx.inv.select_recipient.is_some();
    // Exim's bracket around a queue run started from the command line
    // (`+queue_run`, on by default), with the run's flags (`-qqff`) and
    // its -R selection.
    let pid = std::process::id();
    let mut flags = String::new();
    if ctx.inv.queue_2stage {
        flags.push('q');
    }
    if ctx.inv.force {
        flags.push('f');
    }
    if ctx.inv.thaw_frozen {
        flags.push('f');
    }
    let mut detail = format!("pid={pid}");
    if !flags.is_empty() {
        detail.push_str(&format!(" -q{flags}"));
    }
    if let Some(r) = &ctx.inv.select_recipient {
        detail.push_str(&format!(" -R {r}"));
    }
    let bracket = |what: &str| {
        if ctx.logger.selector().has(oxim_log::Selector::QueueRun) {
            ctx.log_text(None, &format!("{what} queue run: {detail}"));
        }
    };
    bracket("Start");
    if ctx.inv.queue_2stage {
        let first = deliver::SmtpHold {
            all: true,
            domains: false,
            first_stage: true,
        };
        rt.block_on(run_queue_stage(&ctx, force, first));
    }
    rt.block_on(run_queue(&ctx, force));
    bracket("End");
    Ok(0)
}

/// `-R string`: whether a recipient of the message still to be delivered
/// contains `wanted` (caselessly, as Exim's plain -R).
fn has_recipient_like(ctx: &Ctx, id: &MessageId, wanted: &str) -> bool {
    let wanted = wanted.to_ascii_lowercase();
    ctx.spool.read(id).is_ok_and(|m| {
        m.envelope
            .pending_recipients()
            .any(|r| r.address.to_ascii_lowercase().contains(&wanted))
    })
}

/// `-Mrm id...`.
pub fn remove_ids(ctx: Arc<Ctx>, ids: &[String]) -> Result<i32> {
    let mut status = 0;
    for id in parse_ids(&ctx, ids) {
        // A caller who is not an admin user of an oxim installed setuid
        // may remove only the messages they sent (Exim's rule).
        if !ctx.caller.admin && crate::harness::started_elevated() {
            let own = ctx
                .spool
                .read(&id)
                .is_ok_and(|m| m.envelope.uid == ctx.caller.uid);
            if !own {
                println!("Permission denied");
                status = 1;
                continue;
            }
        }
        match ctx.spool.remove(&id) {
            Ok(()) => {
                println!("Message {id} has been removed");
                let id_text = id.to_string();
                ctx.log_text(Some(&id_text), &format!("removed by {}", ctx.caller.login));
                ctx.log(&LogRecord::Completed {
                    id: &id_text,
                    queue_time: None,
                });
            }
            Err(e) => {
                eprintln!("{}: cannot remove {id}: {e}", ctx.inv.prog);
                status = 1;
            }
        }
    }
    Ok(status)
}

/// `-bpc`: the number of messages on the queue.
pub fn count(ctx: Arc<Ctx>) -> Result<i32> {
    println!("{}", ctx.spool.list()?.len());
    Ok(0)
}

/// `-bp`, `-bpa`, `-bpu`.
pub fn list(ctx: Arc<Ctx>, mode: oxim_spool::BpMode) -> Result<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for id in ctx.spool.list()? {
        match ctx.spool.read(&id) {
            Ok(m) => print!("{}", oxim_spool::bp_format(&m, now, mode)),
            Err(e) => {
                eprintln!("{}: {id}: {e}", ctx.inv.prog);
                quarantine_if_malformed(&ctx, &id, &e.into());
            }
        }
    }
    Ok(0)
}
