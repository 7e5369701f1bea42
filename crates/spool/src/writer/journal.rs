//! The writer's commit log path ([`SyncMode::Journal`]): a batch is one
//! append and one fdatasync of the segment; checkpoints and closing.

use super::*;

/// Syncs the segment's messages in their files and deletes it.
pub(super) fn close_segment(seg: commitlog::Segment, counters: &Counters) {
    let started = Instant::now();
    if let Ok(st) = seg.close() {
        counters
            .fdatasyncs
            .fetch_add(st.fdatasyncs, Ordering::Relaxed);
        counters
            .dir_fsyncs
            .fetch_add(st.dir_fsyncs, Ordering::Relaxed);
    }
    counters
        .sync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// A checkpoint of the writer's segment. A failure leaves the old segment
/// in place (a later replay makes its messages durable) and is retried at
/// the next one.
pub(super) fn checkpoint(segment: Option<&mut commitlog::Segment>, counters: &Counters) {
    let Some(seg) = segment else { return };
    let started = Instant::now();
    if let Ok(st) = seg.checkpoint() {
        counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        counters
            .fdatasyncs
            .fetch_add(st.fdatasyncs, Ordering::Relaxed);
        counters
            .dir_fsyncs
            .fetch_add(st.dir_fsyncs, Ordering::Relaxed);
    }
    counters
        .sync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// Commits one batch through the commit log: every record in one append,
/// one fdatasync; messages without a record (bodies not in memory, or too
/// large) synced in their own files; then the renames and the answers. The
/// renames need no directory fsync: a crash before they reach the disk
/// leaves the records, which a replay turns back into files.
pub(super) fn commit_journal(
    spool: &Spool,
    seg: &mut commitlog::Segment,
    batch: &mut Vec<Job>,
    counters: &Counters,
) {
    let started = Instant::now();
    let mut records = Vec::new();
    let mut ids = Vec::new();
    let mut logged = Vec::new();
    let mut own_sync = Vec::new();
    for j in batch.drain(..) {
        match j.record {
            Some(r) => {
                records.extend_from_slice(&r);
                ids.push(j.prepared.id());
                logged.push((j.prepared, j.reply));
            }
            None => own_sync.push((j.prepared, j.reply)),
        }
    }
    if let Err(e) = seg.append(&ids, &records) {
        for (_, reply) in logged {
            reply.send(Err(clone_err(&e)));
        }
        logged = Vec::new();
    } else if !ids.is_empty() {
        counters.journal_batches.fetch_add(1, Ordering::Relaxed);
    }
    let dir_sync = !own_sync.is_empty();
    if dir_sync {
        counters
            .fdatasyncs
            .fetch_add(2 * own_sync.len() as u64, Ordering::Relaxed);
        logged.extend(sync_parallel(own_sync));
    }
    let mut published = Vec::with_capacity(logged.len());
    for (p, reply) in logged {
        match p.publish() {
            Ok(_) => published.push(reply),
            Err(e) => reply.send(Err(e)),
        }
    }
    let r = match dir_sync {
        true => {
            counters.dir_fsyncs.fetch_add(1, Ordering::Relaxed);
            spool.sync_input_dir()
        }
        false => Ok(()),
    };
    counters
        .sync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    match r {
        Ok(()) => published.into_iter().for_each(|r| r.send(Ok(()))),
        Err(e) => published
            .into_iter()
            .for_each(|r| r.send(Err(clone_err(&e)))),
    }
}
