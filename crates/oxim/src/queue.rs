//! Queue operations: queue runs, `-M`, `-Mrm`, `-bp`.

use std::sync::Arc;

use anyhow::Result;
use oxim_log::LogRecord;
use oxim_spool::MessageId;

use crate::ctx::Ctx;
use crate::deliver;

/// Deliver everything on the queue, a few messages at a time.
pub async fn run_queue(ctx: &Arc<Ctx>, force: bool) {
    let ids = match ctx.spool.list() {
        Ok(ids) => ids,
        Err(e) => {
            ctx.log_text(None, &format!("queue run: cannot list spool: {e}"));
            return;
        }
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(
        usize::try_from(ctx.config.main.int("queue_run_max"))
            .unwrap_or(5)
            .max(1),
    ));
    let mut tasks = Vec::new();
    for id in ids {
        let ctx = ctx.clone();
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            if let Err(e) = deliver::deliver_id(&ctx, &id, force).await {
                ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
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
    for id in ids {
        if !ctx.spool.exists(&id) {
            eprintln!("{}: message {id} is not on the queue", ctx.inv.prog);
            status = 1;
            continue;
        }
        if let Err(e) = rt.block_on(deliver::deliver_id(&ctx, &id, force)) {
            ctx.log_text(Some(&id.to_string()), &format!("delivery failed: {e:#}"));
            status = 1;
        }
    }
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
            Err(e) => eprintln!("{}: {id}: {e}", ctx.inv.prog),
        }
    }
    Ok(0)
}
