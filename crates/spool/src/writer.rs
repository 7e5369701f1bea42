//! Group commit: many concurrent message writes sharing their fsyncs.
//!
//! A [`SpoolWriter`] owns one thread. Writers hand it complete messages
//! (envelope, headers, body) and wait — asynchronously with
//! [`SpoolWriter::write`] or blocking with [`SpoolWriter::write_blocking`].
//! The thread takes every message queued at that moment (up to
//! [`WriterOptions::max_batch`], optionally lingering
//! [`WriterOptions::max_wait`] for more), and for the whole batch:
//!
//! 1. writes each message's `-D` and `-H` files under temporary names;
//! 2. makes their contents durable: fdatasync of every file
//!    ([`SyncMode::PerFile`]), or one `syncfs(2)` of the spool file system
//!    ([`SyncMode::Syncfs`]);
//! 3. renames each `-D` then `-H` into place;
//! 4. fsyncs `input/` once;
//! 5. completes every waiter.
//!
//! While the thread is busy with one batch the next one accumulates, so the
//! batch size follows the load: one message alone costs what [`Spool::write`]
//! costs, and under load the directory fsync (and, with `Syncfs`, the data
//! sync) is shared by the whole batch.
//!
//! A failure in steps 1–2 fails only the messages concerned and leaves no
//! message behind. A failure of the directory fsync (step 4) is reported to
//! every waiter of the batch although their files are in place: the message
//! may then survive and be delivered although its sender got an error, which
//! errs on the side of duplication rather than loss.

use crate::header::{Envelope, Header};
use crate::spool::{DataFile, Prepared, Spool};
use crate::{Result, SpoolError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the writer thread makes a batch's file contents durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fdatasync each `-D` and `-H` file. Touches only our files.
    #[default]
    PerFile,
    /// One `syncfs(2)` on the spool's file system for the whole batch.
    /// Fewest system calls, but it also flushes whatever else is dirty on
    /// that file system, so it suits a dedicated spool partition.
    Syncfs,
}

/// Tuning for a [`SpoolWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Largest number of messages in one batch.
    pub max_batch: usize,
    /// How long to wait for more messages when fewer than `max_batch` are
    /// queued. Zero (the default) commits what is there at once: batches
    /// still form naturally while a previous batch is being synced.
    pub max_wait: Duration,
    /// How file contents are made durable.
    pub sync: SyncMode,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch: 512,
            max_wait: Duration::ZERO,
            sync: SyncMode::PerFile,
        }
    }
}

/// Counters of a [`SpoolWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Messages committed (successfully or not).
    pub messages: u64,
    /// Batches committed.
    pub batches: u64,
}

enum Reply {
    Async(oneshot::Sender<Result<()>>),
    Blocking(mpsc::SyncSender<Result<()>>),
}

impl Reply {
    fn send(self, r: Result<()>) {
        // The waiter may have gone away (cancelled future); nothing to do.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

enum Body {
    Bytes(Vec<u8>),
    File(DataFile),
}

struct Job {
    env: Envelope,
    headers: Vec<Header>,
    body: Body,
    reply: Reply,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    batches: AtomicU64,
}

/// Group-commit writer for a [`Spool`]. Dropping it finishes queued writes
/// and joins the thread.
pub struct SpoolWriter {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SpoolWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SpoolWriter {
    /// Starts the writer thread for `spool`.
    pub fn new(spool: Spool, options: WriterOptions) -> Result<SpoolWriter> {
        let (tx, rx) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("oxim-spool-writer".into())
            .spawn(move || run(spool, options, rx, c))
            .map_err(SpoolError::io("spawn writer thread", ""))?;
        Ok(SpoolWriter {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    fn submit(&self, env: Envelope, headers: Vec<Header>, body: Body, reply: Reply) -> Result<()> {
        let tx = self.tx.as_ref().ok_or(SpoolError::WriterClosed)?;
        tx.send(Job {
            env,
            headers,
            body,
            reply,
        })
        .map_err(|_| SpoolError::WriterClosed)
    }

    /// Writes a message durably (same guarantees as [`Spool::write`]) and
    /// resolves once it is on stable storage. Cancelling the future does not
    /// cancel the write.
    pub async fn write(&self, env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(env, headers, Body::Bytes(body), Reply::Async(tx))?;
        rx.await.map_err(|_| SpoolError::WriterClosed)?
    }

    /// [`SpoolWriter::write`] with a body already streamed to disk with
    /// [`Spool::create_data`].
    pub async fn write_data(
        &self,
        env: Envelope,
        headers: Vec<Header>,
        data: DataFile,
    ) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(env, headers, Body::File(data), Reply::Async(tx))?;
        rx.await.map_err(|_| SpoolError::WriterClosed)?
    }

    /// Blocking form of [`SpoolWriter::write_data`].
    pub fn write_data_blocking(
        &self,
        env: Envelope,
        headers: Vec<Header>,
        data: DataFile,
    ) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(env, headers, Body::File(data), Reply::Blocking(tx))?;
        rx.recv().map_err(|_| SpoolError::WriterClosed)?
    }

    /// Blocking form of [`SpoolWriter::write`], for threads outside an async
    /// runtime (safe to call anywhere; it blocks the calling thread).
    pub fn write_blocking(&self, env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(env, headers, Body::Bytes(body), Reply::Blocking(tx))?;
        rx.recv().map_err(|_| SpoolError::WriterClosed)?
    }

    /// Messages and batches committed so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            messages: self.counters.messages.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(spool: Spool, options: WriterOptions, rx: mpsc::Receiver<Job>, counters: Arc<Counters>) {
    let max_batch = options.max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        let deadline = Instant::now() + options.max_wait;
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
            }
        }
        counters
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        commit(&spool, options.sync, &mut batch);
    }
}

/// Commits one batch, answering every job in it.
fn commit(spool: &Spool, mode: SyncMode, batch: &mut Vec<Job>) {
    // 1. Write temp files.
    let mut prepared = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        let prepared_job = match job.body {
            Body::Bytes(bytes) => spool.prepare(&job.env, &job.headers, &mut bytes.as_slice()),
            Body::File(data) => spool.prepare_data(&job.env, &job.headers, data),
        };
        match prepared_job {
            Ok(p) => prepared.push((p, job.reply)),
            Err(e) => job.reply.send(Err(e)),
        }
    }
    if prepared.is_empty() {
        return;
    }
    // 2. Make contents durable.
    match mode {
        SyncMode::PerFile => {
            prepared = sync_parallel(prepared);
        }
        SyncMode::Syncfs => {
            let dir = std::fs::File::open(spool.input_dir());
            let r = dir
                .and_then(|d| nix::unistd::syncfs(&d).map_err(std::io::Error::from))
                .map_err(SpoolError::io("syncfs", spool.input_dir()));
            if let Err(e) = r {
                for (_, reply) in prepared {
                    reply.send(Err(clone_err(&e)));
                }
                return;
            }
        }
    }
    // 3. Publish.
    let mut published = Vec::with_capacity(prepared.len());
    for (p, reply) in prepared {
        match p.publish() {
            Ok(_) => published.push(reply),
            Err(e) => reply.send(Err(e)),
        }
    }
    // 4. One directory fsync; 5. answer.
    match spool.sync_input_dir() {
        Ok(()) => published.into_iter().for_each(|r| r.send(Ok(()))),
        Err(e) => published
            .into_iter()
            .for_each(|r| r.send(Err(clone_err(&e)))),
    }
}

/// Most threads used to fdatasync one batch.
const MAX_SYNC_THREADS: usize = 32;

/// fdatasyncs every prepared message, spreading the calls over several
/// threads so that the kernel can merge them into few journal commits
/// (sequential fdatasyncs of newly written files cost one commit each).
/// Messages whose sync failed are answered here and dropped (their
/// temporary files are removed).
fn sync_parallel(prepared: Vec<(Prepared, Reply)>) -> Vec<(Prepared, Reply)> {
    if prepared.len() == 1 {
        return prepared
            .into_iter()
            .filter_map(|(p, reply)| match p.sync() {
                Ok(()) => Some((p, reply)),
                Err(e) => {
                    reply.send(Err(e));
                    None
                }
            })
            .collect();
    }
    for (p, _) in &prepared {
        p.start_writeback();
    }
    let threads = prepared.len().min(MAX_SYNC_THREADS);
    let chunk = prepared.len().div_ceil(threads);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|(p, _)| p.sync()).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(prepared.chunks(chunk))
            .flat_map(|(h, part)| {
                h.join().unwrap_or_else(|_| {
                    part.iter().map(|_| Err(SpoolError::WriterClosed)).collect()
                })
            })
            .collect()
    });
    prepared
        .into_iter()
        .zip(results)
        .filter_map(|((p, reply), r)| match r {
            Ok(()) => Some((p, reply)),
            Err(e) => {
                reply.send(Err(e));
                None
            }
        })
        .collect()
}

/// `SpoolError` holds an `io::Error`, which is not `Clone`; rebuild one
/// with the same kind and message for each waiter.
fn clone_err(e: &SpoolError) -> SpoolError {
    match e {
        SpoolError::Io { op, path, source } => SpoolError::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => SpoolError::Io {
            op: "commit",
            path: Default::default(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}
