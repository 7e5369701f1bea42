//! Queue operations: queue runs, `-M`, `-Mrm`, `-bp`.

use std::sync::Arc;

use anyhow::Result;
use oxim_log::LogRecord;
use oxim_spool::MessageId;

use crate::ctx::Ctx;
use crate::deliver;

/// Deliver everything on the queue, `queue_run_max` messages at a time.
/// The deliveries share SMTP connections: messages for one host go down one
/// connection, one after the other, while other hosts are served in
/// parallel.
pub async fn run_queue(ctx: &Arc<Ctx>, force: bool) {
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
            if let Err(e) = deliver::deliver_id_pooled(&ctx, &id, force, Some(shared)).await {
                ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
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
        if let Err(e) = rt.block_on(deliver::deliver_id_pooled(&ctx, &id, force, Some(shared))) {
            ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            status = 1;
        }
    }
    rt.block_on(pool.close_all());
    Ok(status)
}

/// One queue run from the command line (`-q`, `-qf`).
pub fn queue_run(ctx: Arc<Ctx>) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let force = ctx.inv.force;
    rt.block_on(run_queue(&ctx, force));
    Ok(0)
}

/// `-Mrm id...`.
pub fn remove_ids(ctx: Arc<Ctx>, ids: &[String]) -> Result<i32> {
    let mut status = 0;
    for id in parse_ids(&ctx, ids) {
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

/// `-bp`.
pub fn list(ctx: Arc<Ctx>) -> Result<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for id in ctx.spool.list()? {
        match ctx.spool.read(&id) {
            Ok(m) => print!(
                "{}",
                oxim_spool::bp_format(&m, now, oxim_spool::bp::BpMode::All)
            ),
            Err(e) => eprintln!("{}: {id}: {e}", ctx.inv.prog),
        }
    }
    Ok(0)
}
