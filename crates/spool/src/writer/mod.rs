//! Group commit: many concurrent message writes sharing their fsyncs.
//!
//! Each writer — [`SpoolWriter::write`] (async; the file writing runs on
//! tokio's blocking pool) or [`SpoolWriter::write_blocking`] — writes its
//! message's `-D` and `-H` files under temporary names itself, starts their
//! writeback, and queues them for the commit thread. That thread takes
//! every message queued at that moment (up to [`WriterOptions::max_batch`],
//! optionally lingering [`WriterOptions::max_wait`] for more), and for the
//! whole batch:
//!
//! 1. makes the files' contents durable: fdatasync of every file, spread
//!    over up to 32 threads so the kernel merges them into few journal
//!    commits ([`SyncMode::PerFile`]), or one `syncfs(2)` of the spool file
//!    system ([`SyncMode::Syncfs`]), or — the default,
//!    [`SyncMode::Auto`] — `syncfs(2)` whenever little else is waiting to
//!    be written back, per-file fdatasync otherwise;
//! 2. renames each `-D` then `-H` into place;
//! 3. fsyncs `input/` once;
//! 4. completes every waiter.
//!
//! While the thread is busy with one batch the next one accumulates (and
//! its files are being written by their callers), so the batch size follows
//! the load: one message alone costs what [`Spool::write`] costs, and under
//! load the syncs are shared by the whole batch.
//!
//! A failure while writing or syncing fails only the messages concerned and
//! leaves no message behind. A failure of the directory fsync (step 3) is
//! reported to every waiter of the batch although their files are in
//! place: the message may then survive and be delivered although its sender
//! got an error, which errs on the side of duplication rather than loss.

use crate::commitlog;
use crate::header::{format_header, Envelope, Header};
use crate::spool::{DataFile, Prepared, Spool};
use crate::{Result, SpoolError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod journal;
use journal::{checkpoint, close_segment, commit_journal};

/// How the writer thread makes a batch's file contents durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fdatasync each `-D` and `-H` file. Touches only our files.
    PerFile,
    /// One `syncfs(2)` on the spool's file system for the whole batch.
    /// Fewest system calls, but it also flushes whatever else is dirty on
    /// that file system, so it suits a dedicated spool partition.
    Syncfs,
    /// `syncfs(2)` for a batch when it is cheap — the kernel reports
    /// writeback errors from it (Linux 5.8 and later) and the whole system
    /// has at most [`AUTO_SYNCFS_MAX_DIRTY`] bytes dirty or under writeback
    /// besides the batch's own files, so the call cannot be held up by
    /// someone else's large write — and per-file fdatasync otherwise.
    #[default]
    Auto,
    /// One append to the commit log and one fdatasync of it per batch; the
    /// `-D`/`-H` files are written without syncs and made durable later by
    /// a checkpoint (see [`crate::commitlog`]). For the process that
    /// receives continuously (the daemon).
    Journal,
}

/// Dirty data (system-wide, not counting the batch's own files) above
/// which [`SyncMode::Auto`] falls back to per-file fdatasync. syncfs(2)
/// writes back everything dirty on the file system: measured on the
/// reference VM disk at about 3.5 ms per MiB (154 ms with 42 MiB dirty,
/// 2-3 ms with under 1 MiB), so this bounds the extra latency a batch can
/// pay for sharing its sync to roughly 15 ms there.
pub const AUTO_SYNCFS_MAX_DIRTY: u64 = 4 << 20;

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
            sync: SyncMode::Auto,
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
    /// Batches made durable with one `syncfs(2)`.
    pub syncfs_batches: u64,
    /// `fdatasync` calls made (per-file mode: two per message).
    pub fdatasyncs: u64,
    /// `fsync` calls on directories.
    pub dir_fsyncs: u64,
    /// Time spent making batches durable (data syncs and directory
    /// fsyncs), in microseconds.
    pub sync_micros: u64,
    /// Messages in the largest batch.
    pub largest_batch: u64,
    /// Batches made durable with one append + fdatasync of the commit log.
    pub journal_batches: u64,
    /// Commit log checkpoints (a new segment; the old one's messages still
    /// on the spool synced in their own files).
    pub checkpoints: u64,
}

impl std::fmt::Display for WriterStats {
    /// The form the daemon's SIGUSR1 line and the benchmark use:
    /// `messages=N batches=N syncfs=N fdatasync=N dirsync=N sync_ms=N largest=N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "messages={} batches={} syncfs={} journal={} checkpoints={} fdatasync={} dirsync={} sync_ms={} largest={}",
            self.messages,
            self.batches,
            self.syncfs_batches,
            self.journal_batches,
            self.checkpoints,
            self.fdatasyncs,
            self.dir_fsyncs,
            self.sync_micros / 1000,
            self.largest_batch
        )
    }
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

impl Body {
    /// Writes the message's files under temporary names and starts their
    /// writeback, so the commit thread finds them (nearly) on disk already.
    /// With `journal`, a body small enough also gets its commit log
    /// record, and the files are left to ordinary writeback.
    fn prepare(
        self,
        spool: &Spool,
        env: &Envelope,
        headers: &[Header],
        journal: bool,
    ) -> Result<(Prepared, Option<Vec<u8>>)> {
        let (p, record) = match self {
            Body::Bytes(bytes) => {
                let p = spool.prepare(env, headers, &mut bytes.as_slice())?;
                let record = (journal && bytes.len() <= commitlog::MAX_JOURNALLED).then(|| {
                    let mut data = format!("{}-D\n", env.id).into_bytes();
                    data.extend_from_slice(&bytes);
                    commitlog::message_record(&env.id, &format_header(env, headers), &data)
                });
                (p, record)
            }
            Body::File(data) => (spool.prepare_data(env, headers, data)?, None),
        };
        if record.is_none() {
            p.start_writeback();
        }
        Ok((p, record))
    }
}

/// What the writer thread is sent.
enum Msg {
    Write(Job),
    /// Close the commit log segment (later writes sync their own files);
    /// acknowledged when done.
    Close(mpsc::SyncSender<()>),
}

struct Job {
    prepared: Prepared,
    /// Its commit log record (journal mode, bodies held in memory).
    record: Option<Vec<u8>>,
    reply: Reply,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    batches: AtomicU64,
    syncfs_batches: AtomicU64,
    fdatasyncs: AtomicU64,
    dir_fsyncs: AtomicU64,
    sync_micros: AtomicU64,
    largest_batch: AtomicU64,
    journal_batches: AtomicU64,
    checkpoints: AtomicU64,
}

/// Group-commit writer for a [`Spool`]. Dropping it finishes queued writes
/// and joins the thread.
pub struct SpoolWriter {
    spool: Spool,
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    journal: bool,
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
        let (tx, rx) = mpsc::channel::<Msg>();
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let commit_spool = spool.clone();
        let journal = options.sync == SyncMode::Journal;
        let segment = match journal {
            true => Some(commitlog::Segment::create(&spool)?),
            false => None,
        };
        let thread = std::thread::Builder::new()
            .name("oxim-spool-writer".into())
            .spawn(move || run(commit_spool, options, rx, c, segment))
            .map_err(SpoolError::io("spawn writer thread", ""))?;
        Ok(SpoolWriter {
            spool,
            tx: Some(tx),
            thread: Some(thread),
            counters,
            journal,
        })
    }

    fn submit(&self, (prepared, record): (Prepared, Option<Vec<u8>>), reply: Reply) -> Result<()> {
        let tx = self.tx.as_ref().ok_or(SpoolError::WriterClosed)?;
        tx.send(Msg::Write(Job {
            prepared,
            record,
            reply,
        }))
        .map_err(|_| SpoolError::WriterClosed)
    }

    /// Ends the use of the commit log: its messages are synced in their
    /// own files and its segment is deleted; later writes (if any) sync
    /// their own files. For a daemon that is stopping. Waits until done.
    pub fn close_journal(&self) {
        let Some(tx) = self.tx.as_ref() else { return };
        let (ack, done) = mpsc::sync_channel(1);
        if tx.send(Msg::Close(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Prepares the files off the async threads (on tokio's blocking pool
    /// when running in a runtime), then queues them for commit.
    async fn write_async(&self, env: Envelope, headers: Vec<Header>, body: Body) -> Result<()> {
        let prepared = match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let spool = self.spool.clone();
                let journal = self.journal;
                handle
                    .spawn_blocking(move || body.prepare(&spool, &env, &headers, journal))
                    .await
                    .map_err(|_| SpoolError::WriterClosed)??
            }
            Err(_) => body.prepare(&self.spool, &env, &headers, self.journal)?,
        };
        let (tx, rx) = oneshot::channel();
        self.submit(prepared, Reply::Async(tx))?;
        rx.await.map_err(|_| SpoolError::WriterClosed)?
    }

    fn write_sync(&self, env: Envelope, headers: Vec<Header>, body: Body) -> Result<()> {
        let prepared = body.prepare(&self.spool, &env, &headers, self.journal)?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(prepared, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| SpoolError::WriterClosed)?
    }

    /// Writes a message durably (same guarantees as [`Spool::write`]) and
    /// resolves once it is on stable storage. Cancelling the future does not
    /// cancel the write.
    pub async fn write(&self, env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Result<()> {
        self.write_async(env, headers, Body::Bytes(body)).await
    }

    /// [`SpoolWriter::write`] with a body already streamed to disk with
    /// [`Spool::create_data`].
    pub async fn write_data(
        &self,
        env: Envelope,
        headers: Vec<Header>,
        data: DataFile,
    ) -> Result<()> {
        self.write_async(env, headers, Body::File(data)).await
    }

    /// Blocking form of [`SpoolWriter::write_data`].
    pub fn write_data_blocking(
        &self,
        env: Envelope,
        headers: Vec<Header>,
        data: DataFile,
    ) -> Result<()> {
        self.write_sync(env, headers, Body::File(data))
    }

    /// Blocking form of [`SpoolWriter::write`], for threads outside an async
    /// runtime (safe to call anywhere; it blocks the calling thread).
    pub fn write_blocking(&self, env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Result<()> {
        self.write_sync(env, headers, Body::Bytes(body))
    }

    /// Messages and batches committed so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            messages: self.counters.messages.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
            syncfs_batches: self.counters.syncfs_batches.load(Ordering::Relaxed),
            fdatasyncs: self.counters.fdatasyncs.load(Ordering::Relaxed),
            dir_fsyncs: self.counters.dir_fsyncs.load(Ordering::Relaxed),
            sync_micros: self.counters.sync_micros.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
            journal_batches: self.counters.journal_batches.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
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

fn run(
    spool: Spool,
    options: WriterOptions,
    rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    mut segment: Option<commitlog::Segment>,
) {
    let max_batch = options.max_batch.max(1);
    let syncfs_reports_errors = kernel_at_least(5, 8);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut close: Option<mpsc::SyncSender<()>> = None;
    loop {
        if let Some(ack) = close.take() {
            if let Some(seg) = segment.take() {
                close_segment(seg, &counters);
            }
            let _ = ack.send(());
        }
        let first = match segment.as_ref() {
            // With a commit log, an idle writer checkpoints its segment.
            Some(seg) => match rx.recv_timeout(commitlog::SEGMENT_MAX_AGE) {
                Ok(j) => j,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if seg.due_when_idle() {
                        checkpoint(segment.as_mut(), &counters);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
        };
        match first {
            Msg::Write(j) => batch.push(j),
            Msg::Close(ack) => {
                close = Some(ack);
                continue;
            }
        }
        let deadline = Instant::now() + options.max_wait;
        while batch.len() < max_batch && close.is_none() {
            match rx.try_recv() {
                Ok(Msg::Write(j)) => batch.push(j),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(Msg::Write(j)) => batch.push(j),
                        Ok(Msg::Close(ack)) => close = Some(ack),
                        Err(_) => break,
                    }
                }
            }
        }
        counters
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        let use_syncfs = segment.is_none()
            && choose_syncfs(options.sync, syncfs_reports_errors, || {
                other_dirty_bytes(batch.iter().map(|j| j.prepared.bytes()).sum())
            });
        counters
            .largest_batch
            .fetch_max(batch.len() as u64, Ordering::Relaxed);
        if let Some(seg) = segment.as_mut() {
            commit_journal(&spool, seg, &mut batch, &counters);
            if seg.due() {
                checkpoint(Some(seg), &counters);
            }
            continue;
        }
        if use_syncfs {
            counters.syncfs_batches.fetch_add(1, Ordering::Relaxed);
        } else {
            counters
                .fdatasyncs
                .fetch_add(2 * batch.len() as u64, Ordering::Relaxed);
        }
        commit(&spool, use_syncfs, &mut batch, &counters);
    }
    // Closing: the last segment's messages synced in their files, the
    // segment deleted.
    if let Some(seg) = segment {
        close_segment(seg, &counters);
    }
    if let Some(ack) = close {
        let _ = ack.send(());
    }
}

/// Commits one batch, answering every job in it.
fn commit(spool: &Spool, use_syncfs: bool, batch: &mut Vec<Job>, counters: &Counters) {
    // 1. The files were written (and their writeback started) by the
    //    callers.
    let mut prepared: Vec<(Prepared, Reply)> =
        batch.drain(..).map(|j| (j.prepared, j.reply)).collect();
    if prepared.is_empty() {
        return;
    }
    // 2. Make contents durable.
    let started = Instant::now();
    let add_time = |since: Instant| {
        counters
            .sync_micros
            .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    };
    match use_syncfs {
        false => {
            prepared = sync_parallel(prepared);
        }
        true => {
            let dir = std::fs::File::open(spool.input_dir());
            let r = dir
                .and_then(|d| nix::unistd::syncfs(&d).map_err(std::io::Error::from))
                .map_err(SpoolError::io("syncfs", spool.input_dir()));
            if let Err(e) = r {
                add_time(started);
                for (_, reply) in prepared {
                    reply.send(Err(clone_err(&e)));
                }
                return;
            }
        }
    }
    add_time(started);
    // 3. Publish.
    let mut published = Vec::with_capacity(prepared.len());
    for (p, reply) in prepared {
        match p.publish() {
            Ok(_) => published.push(reply),
            Err(e) => reply.send(Err(e)),
        }
    }
    // 4. One directory fsync; 5. answer.
    let started = Instant::now();
    let r = spool.sync_input_dir();
    counters.dir_fsyncs.fetch_add(1, Ordering::Relaxed);
    add_time(started);
    match r {
        Ok(()) => published.into_iter().for_each(|r| r.send(Ok(()))),
        Err(e) => published
            .into_iter()
            .for_each(|r| r.send(Err(clone_err(&e)))),
    }
}

/// Whether a batch is made durable with `syncfs(2)`. `other_dirty` is
/// only asked in [`SyncMode::Auto`] when syncfs reports errors.
fn choose_syncfs(
    mode: SyncMode,
    syncfs_reports_errors: bool,
    other_dirty: impl FnOnce() -> Option<u64>,
) -> bool {
    match mode {
        SyncMode::PerFile | SyncMode::Journal => false,
        SyncMode::Syncfs => true,
        SyncMode::Auto => {
            syncfs_reports_errors && other_dirty().is_some_and(|d| d <= AUTO_SYNCFS_MAX_DIRTY)
        }
    }
}

/// Bytes dirty or under writeback system-wide (`/proc/meminfo`), minus
/// `own` (the batch's files, which are among them). None when unknown.
fn other_dirty_bytes(own: u64) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(dirty_from_meminfo(&text)?.saturating_sub(own))
}

/// Sum of the `Dirty:` and `Writeback:` lines of a `/proc/meminfo` text, in
/// bytes.
fn dirty_from_meminfo(text: &str) -> Option<u64> {
    let mut sum = 0u64;
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if key == "Dirty" || key == "Writeback" {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            sum += kib * 1024;
            seen += 1;
        }
    }
    (seen == 2).then_some(sum)
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|r| release_at_least(&r, major, minor))
}

/// Whether a kernel release string (`6.1.0-18-amd64`) is at least
/// `major.minor`.
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_dirty_and_writeback_are_summed() {
        let text = "MemTotal:       24576000 kB\nDirty:              1200 kB\nWriteback:            24 kB\nWritebackTmp:        999 kB\n";
        assert_eq!(dirty_from_meminfo(text), Some((1200 + 24) * 1024));
        assert_eq!(dirty_from_meminfo("Dirty: 5 kB\n"), None);
        assert_eq!(dirty_from_meminfo("Dirty: x kB\nWriteback: 0 kB\n"), None);
    }

    #[test]
    fn auto_uses_syncfs_only_when_cheap_and_error_reporting() {
        let small = || Some(AUTO_SYNCFS_MAX_DIRTY);
        let large = || Some(AUTO_SYNCFS_MAX_DIRTY + 1);
        assert!(choose_syncfs(SyncMode::Auto, true, small));
        assert!(!choose_syncfs(SyncMode::Auto, true, large));
        assert!(!choose_syncfs(SyncMode::Auto, true, || None));
        assert!(!choose_syncfs(SyncMode::Auto, false, small));
        assert!(choose_syncfs(SyncMode::Syncfs, false, large));
        assert!(!choose_syncfs(SyncMode::PerFile, true, small));
    }

    #[test]
    fn kernel_release_comparison() {
        assert!(release_at_least("6.18.0-rc1", 5, 8));
        assert!(release_at_least("5.8.0", 5, 8));
        assert!(!release_at_least("5.4.0-150-generic", 5, 8));
        assert!(!release_at_least("4.19.0", 5, 8));
        assert!(!release_at_least("", 5, 8));
    }

    #[test]
    fn this_machine_reports_meminfo() {
        assert!(other_dirty_bytes(0).is_some());
    }
}
