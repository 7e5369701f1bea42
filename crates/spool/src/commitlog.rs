//! The commit log: one sequential append and one `fdatasync` make a whole
//! group of new messages durable.
//!
//! A [`crate::SpoolWriter`] in [`crate::SyncMode::Journal`] owns one
//! *segment*, `<spool>/commitlog/<pid>-<n>`, locked with an exclusive
//! `flock` for as long as it lives. For every group it appends one record
//! per message holding the exact bytes of the message's `-H` and `-D`
//! files, calls `fdatasync` on the segment once, renames the files (written
//! without syncs) into place in `input/`, and only then lets the group be
//! acknowledged. The `-H`/`-D` files are Exim's, unchanged; they just reach
//! the disk later, with ordinary writeback, or never when the message is
//! delivered and removed first.
//!
//! A *checkpoint* (segment over [`SEGMENT_MAX_BYTES`], older than
//! [`SEGMENT_MAX_AGE`], or the writer closing) starts a new segment,
//! `fdatasync`s the files of the old segment's messages that are still on
//! the spool, fsyncs `input/`, then deletes the old segment.
//!
//! Removing a message ([`crate::Spool::remove`], quarantine) first appends
//! a *removed* record to every segment present (no sync), so that a replay
//! never brings back a message that was delivered.
//!
//! [`recover`] replays segments whose owner is gone (no lock held): every
//! message recorded and not removed gets its `-D` back if it is missing or
//! differs and its `-H` back if it is missing or unreadable; all of them
//! are synced, `input/` is fsynced, and the segment is deleted. Records
//! carry a CRC-32: a torn or damaged record (a crash in the middle of an
//! append, which was therefore never acknowledged) is skipped, and reading
//! resumes at the next intact record.
//!
//! Record layout (integers little-endian):
//! `"OXCL"` · kind (`M` message, `R` removed) · payload length (u32) ·
//! CRC-32 of kind, length and payload (u32) · payload. A message payload
//! is id length (u8) · id · `-H` length (u32) · `-H` bytes · `-D` bytes;
//! a removed payload is id length (u8) · id.

use crate::id::MessageId;
use crate::spool::Spool;
use crate::{Result, SpoolError};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the commit log directory under the spool directory.
pub const DIR_NAME: &str = "commitlog";
/// A segment is checkpointed once it holds this many bytes.
pub const SEGMENT_MAX_BYTES: u64 = 8 << 20;
/// A segment is checkpointed once it is this old (and holds anything).
pub const SEGMENT_MAX_AGE: Duration = Duration::from_secs(5);

const MAGIC: &[u8; 4] = b"OXCL";
const HEAD_LEN: usize = 4 + 1 + 4 + 4;
const KIND_MESSAGE: u8 = b'M';
const KIND_REMOVED: u8 = b'R';
/// Largest payload accepted when reading (a message record holds a whole
/// message; larger messages are not journalled, see `MAX_JOURNALLED`).
const MAX_PAYLOAD: usize = 1 << 30;
/// Messages larger than this are made durable with their own fdatasyncs
/// instead of being copied into the log.
pub const MAX_JOURNALLED: usize = 16 << 20;

fn crc(kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(kind, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record of a new message: its id and the exact contents of its `-H`
/// and `-D` files.
pub(crate) fn message_record(id: &MessageId, header: &[u8], data: &[u8]) -> Vec<u8> {
    let id = id.as_str().as_bytes();
    let mut payload = Vec::with_capacity(1 + id.len() + 4 + header.len() + data.len());
    payload.push(id.len() as u8);
    payload.extend_from_slice(id);
    payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
    payload.extend_from_slice(header);
    payload.extend_from_slice(data);
    let mut out = Vec::with_capacity(HEAD_LEN + payload.len());
    encode(KIND_MESSAGE, &payload, &mut out);
    out
}

fn removed_record(id: &MessageId) -> Vec<u8> {
    let id = id.as_str().as_bytes();
    let mut payload = Vec::with_capacity(1 + id.len());
    payload.push(id.len() as u8);
    payload.extend_from_slice(id);
    let mut out = Vec::with_capacity(HEAD_LEN + payload.len());
    encode(KIND_REMOVED, &payload, &mut out);
    out
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A new message with its `-H` and `-D` contents.
    Message {
        /// The message.
        id: MessageId,
        /// Contents of the `-H` file.
        header: Vec<u8>,
        /// Contents of the `-D` file (its id line included).
        data: Vec<u8>,
    },
    /// The message was removed from the spool.
    Removed(MessageId),
}

fn split_id(payload: &[u8]) -> Option<(MessageId, &[u8])> {
    let n = *payload.first()? as usize;
    let id = std::str::from_utf8(payload.get(1..1 + n)?).ok()?;
    Some((id.parse().ok()?, &payload[1 + n..]))
}

fn decode(kind: u8, payload: &[u8]) -> Option<Record> {
    let (id, rest) = split_id(payload)?;
    match kind {
        KIND_MESSAGE => {
            let hlen = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let header = rest.get(4..4 + hlen)?.to_vec();
            let data = rest.get(4 + hlen..)?.to_vec();
            Some(Record::Message { id, header, data })
        }
        KIND_REMOVED if rest.is_empty() => Some(Record::Removed(id)),
        _ => None,
    }
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Intact records, in order.
    pub records: Vec<Record>,
    /// Bytes skipped because they did not form an intact record (a torn
    /// append, or damage).
    pub skipped_bytes: u64,
}

/// Reads every intact record of a segment's bytes. A record whose header
/// or checksum is wrong, or that runs past the end, is skipped: reading
/// resumes at the next `"OXCL"` that starts an intact record.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        match record_at(bytes, pos) {
            Some((rec, next)) => {
                out.records.push(rec);
                pos = next;
            }
            None => {
                // Resynchronise on the next magic.
                let from = pos + 1;
                let next = bytes
                    .get(from..)
                    .and_then(|rest| rest.windows(4).position(|w| w == MAGIC))
                    .map(|p| from + p)
                    .unwrap_or(bytes.len());
                out.skipped_bytes += (next - pos) as u64;
                pos = next;
            }
        }
    }
    out
}

fn record_at(bytes: &[u8], pos: usize) -> Option<(Record, usize)> {
    let head = bytes.get(pos..pos + HEAD_LEN)?;
    if &head[..4] != MAGIC {
        return None;
    }
    let kind = head[4];
    let len = u32::from_le_bytes(head[5..9].try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(head[9..13].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(pos + HEAD_LEN..pos + HEAD_LEN + len)?;
    if crc(kind, payload) != sum {
        return None;
    }
    Some((decode(kind, payload)?, pos + HEAD_LEN + len))
}

fn dir_of(spool: &Spool) -> PathBuf {
    spool.root().join(DIR_NAME)
}

/// Segment files in the commit log directory (none if it does not exist).
fn segments(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with('.') && n.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Notes in every segment present that `id` is leaving the spool (called
/// before its `-H` file is removed). Not synced: losing the note in a
/// crash can only make a replay deliver the message again, never lose it.
pub(crate) fn note_removed(spool: &Spool, id: &MessageId) {
    let dir = dir_of(spool);
    let segs = segments(&dir);
    if segs.is_empty() {
        return;
    }
    let rec = removed_record(id);
    for p in segs {
        if let Ok(mut f) = OpenOptions::new().append(true).open(&p) {
            let _ = f.write_all(&rec);
        }
    }
}

fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(SpoolError::io("fsync directory", path))
}

/// Counters of one [`Segment`] owner (kept by the writer).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CheckpointStats {
    pub fdatasyncs: u64,
    pub dir_fsyncs: u64,
}

/// The live segment of a writer.
#[derive(Debug)]
pub(crate) struct Segment {
    spool: Spool,
    dir: PathBuf,
    path: PathBuf,
    file: nix::fcntl::Flock<File>,
    seq: u64,
    bytes: u64,
    ids: Vec<MessageId>,
    opened: Instant,
}

impl Segment {
    /// Creates the commit log directory if needed and a new locked segment.
    pub(crate) fn create(spool: &Spool) -> Result<Segment> {
        let dir = dir_of(spool);
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o750)
            .create(&dir)
            .map_err(SpoolError::io("create directory", &dir))?;
        let (path, file) = new_segment(&dir, 0)?;
        fsync_dir(&dir)?;
        Ok(Segment {
            spool: spool.clone(),
            dir,
            path,
            file,
            seq: 0,
            bytes: 0,
            ids: Vec::new(),
            opened: Instant::now(),
        })
    }

    /// Appends a group's records in one write and makes them durable with
    /// one fdatasync.
    pub(crate) fn append(&mut self, ids: &[MessageId], records: &[u8]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut f: &File = &self.file;
        f.write_all(records)
            .and_then(|()| f.sync_data())
            .map_err(SpoolError::io("append", &self.path))?;
        self.bytes += records.len() as u64;
        self.ids.extend_from_slice(ids);
        Ok(())
    }

    /// Whether the segment is due for a checkpoint: it holds messages
    /// and is large or old enough, or removal notes (appended by whoever
    /// removes messages) have made it large.
    pub(crate) fn due(&self) -> bool {
        (!self.ids.is_empty()
            && (self.bytes >= SEGMENT_MAX_BYTES || self.opened.elapsed() >= SEGMENT_MAX_AGE))
            || self.file_len() >= SEGMENT_MAX_BYTES
    }

    /// Whether an idle writer should checkpoint: anything at all in the
    /// segment.
    pub(crate) fn due_when_idle(&self) -> bool {
        !self.ids.is_empty() || self.file_len() > 0
    }

    fn file_len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Starts a new segment, makes the old one's messages that are still
    /// on the spool durable in their own files, and deletes it.
    pub(crate) fn checkpoint(&mut self) -> Result<CheckpointStats> {
        let (path, file) = new_segment(&self.dir, self.seq + 1)?;
        fsync_dir(&self.dir)?;
        let old_path = std::mem::replace(&mut self.path, path);
        let old_file = std::mem::replace(&mut self.file, file);
        let ids = std::mem::take(&mut self.ids);
        self.seq += 1;
        self.bytes = 0;
        self.opened = Instant::now();
        let mut stats = sync_messages(&self.spool, &ids)?;
        fs::remove_file(&old_path).map_err(SpoolError::io("remove", &old_path))?;
        drop(old_file);
        fsync_dir(&self.dir)?;
        stats.dir_fsyncs += 2;
        Ok(stats)
    }

    /// Closing: a last checkpoint, then the (empty) segment is deleted.
    pub(crate) fn close(mut self) -> Result<CheckpointStats> {
        let mut stats = sync_messages(&self.spool, &std::mem::take(&mut self.ids))?;
        fs::remove_file(&self.path).map_err(SpoolError::io("remove", &self.path))?;
        fsync_dir(&self.dir)?;
        stats.dir_fsyncs += 1;
        Ok(stats)
    }
}

fn new_segment(dir: &Path, seq: u64) -> Result<(PathBuf, nix::fcntl::Flock<File>)> {
    use nix::fcntl::{Flock, FlockArg};
    let pid = std::process::id();
    let mut n = seq;
    loop {
        let path = dir.join(format!("{pid:010}-{n:08}"));
        match OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)
        {
            Ok(f) => {
                return match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                    Ok(l) => Ok((path, l)),
                    Err((_, e)) => Err(SpoolError::io("lock", &path)(io::Error::from(e))),
                };
            }
            // Left by an earlier process with the same pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(SpoolError::io("create", &path)(e)),
        }
    }
}

/// fdatasyncs the `-D` and `-H` files of those of `ids` still on the spool
/// (spread over a few threads), then fsyncs `input/`.
fn sync_messages(spool: &Spool, ids: &[MessageId]) -> Result<CheckpointStats> {
    let paths: Vec<PathBuf> = ids
        .iter()
        .filter(|id| spool.exists(id))
        .flat_map(|id| [spool.data_path(id), spool.header_path(id)])
        .collect();
    let threads = paths.len().clamp(1, 16);
    let chunk = paths.len().div_ceil(threads).max(1);
    let results: Vec<Result<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut n = 0u64;
                    for p in part {
                        match File::open(p) {
                            Ok(f) => {
                                f.sync_data().map_err(SpoolError::io("fsync", p))?;
                                n += 1;
                            }
                            // Delivered and removed meanwhile.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(SpoolError::io("open", p)(e)),
                        }
                    }
                    Ok(n)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or(Err(SpoolError::WriterClosed)))
            .collect()
    });
    let mut stats = CheckpointStats::default();
    for r in results {
        stats.fdatasyncs += r?;
    }
    spool.sync_input_dir()?;
    stats.dir_fsyncs += 1;
    Ok(stats)
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Segments replayed and deleted.
    pub segments: usize,
    /// Messages whose `-D` or `-H` file was written back from the log.
    pub restored: Vec<MessageId>,
    /// Messages found intact on the spool and synced.
    pub synced: usize,
    /// Bytes of torn or damaged records skipped.
    pub skipped_bytes: u64,
}

/// Replays every segment whose owner is gone (see the module
/// documentation). Safe to run at any time, by any number of processes:
/// a segment in use, or being replayed by another process, is left alone.
pub fn recover(spool: &Spool) -> Result<Recovery> {
    use nix::fcntl::{Flock, FlockArg};
    let dir = dir_of(spool);
    let mut out = Recovery::default();
    for path in segments(&dir) {
        let Ok(f) = OpenOptions::new().read(true).append(true).open(&path) else {
            continue;
        };
        let Ok(f) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        // Replayed and deleted by another process between our listing and
        // our lock: its messages are on the spool (and may be gone again).
        let same = match (fs::metadata(&path), f.metadata()) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        let mut bytes = Vec::new();
        let mut r: &File = &f;
        r.read_to_end(&mut bytes)
            .map_err(SpoolError::io("read", &path))?;
        let parsed = parse(&bytes);
        out.skipped_bytes += parsed.skipped_bytes;
        replay(spool, &dir, &path, parsed.records, &mut out)?;
        fs::remove_file(&path).map_err(SpoolError::io("remove", &path))?;
        fsync_dir(&dir)?;
        out.segments += 1;
    }
    Ok(out)
}

/// Ids with a removed record in any segment of `dir`.
fn removed_anywhere(dir: &Path) -> HashSet<MessageId> {
    let mut set = HashSet::new();
    for p in segments(dir) {
        if let Ok(bytes) = fs::read(&p) {
            for r in parse(&bytes).records {
                if let Record::Removed(id) = r {
                    set.insert(id);
                }
            }
        }
    }
    set
}

fn replay(
    spool: &Spool,
    dir: &Path,
    path: &Path,
    records: Vec<Record>,
    out: &mut Recovery,
) -> Result<()> {
    let mut removed: HashSet<MessageId> = HashSet::new();
    let mut messages: HashMap<MessageId, (Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut order = Vec::new();
    for r in records {
        match r {
            Record::Message { id, header, data } => {
                if messages.insert(id, (header, data)).is_none() {
                    order.push(id);
                }
            }
            Record::Removed(id) => {
                removed.insert(id);
            }
        }
    }
    // Decide what is missing first; then read the removal notes again
    // (all segments): a message removed by a delivery running right now
    // has its note written before its -H file goes.
    let mut todo = Vec::new();
    for id in order {
        if removed.contains(&id) {
            continue;
        }
        let (header, data) = &messages[&id];
        let data_ok = fs::read(spool.data_path(&id)).is_ok_and(|d| d == *data);
        let header_ok = crate::spool::read_header(spool.header_path(&id)).is_ok();
        todo.push((id, data_ok, header_ok, header, data));
    }
    let late = removed_anywhere(dir);
    let _ = path;
    let owner = fs::metadata(spool.input_dir()).ok();
    let mut sync_paths = Vec::new();
    for (id, data_ok, header_ok, header, data) in todo {
        if late.contains(&id) {
            continue;
        }
        if !data_ok {
            restore_file(spool, &spool.data_path(&id), data, owner.as_ref())?;
        }
        if !header_ok {
            restore_file(spool, &spool.header_path(&id), header, owner.as_ref())?;
        }
        if data_ok && header_ok {
            out.synced += 1;
        } else {
            out.restored.push(id);
        }
        for suffix in ["-D", "-H"] {
            let _ = fs::remove_file(spool.input_dir().join(format!("tmp-{id}{suffix}")));
        }
        sync_paths.push(spool.data_path(&id));
        sync_paths.push(spool.header_path(&id));
    }
    for p in &sync_paths {
        match File::open(p) {
            Ok(f) => f.sync_data().map_err(SpoolError::io("fsync", p))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpoolError::io("open", p)(e)),
        }
    }
    spool.sync_input_dir()
}

/// Writes `bytes` to `dest` through a temporary name (synced before the
/// rename), owned like `input/` when we are root.
fn restore_file(
    spool: &Spool,
    dest: &Path,
    bytes: &[u8],
    owner: Option<&fs::Metadata>,
) -> Result<()> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = spool.input_dir().join(format!("tmp-replay-{name}"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)
        .map_err(SpoolError::io("create", &tmp))?;
    if let Some(m) = owner {
        if nix::unistd::geteuid().is_root() {
            let _ = nix::unistd::fchown(
                &f,
                Some(nix::unistd::Uid::from_raw(m.uid())),
                Some(nix::unistd::Gid::from_raw(m.gid())),
            );
        }
    }
    let r = f
        .write_all(bytes)
        .and_then(|()| f.sync_data())
        .map_err(SpoolError::io("write", &tmp))
        .and_then(|()| fs::rename(&tmp, dest).map_err(SpoolError::io("rename", dest)));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MessageId {
        s.parse().unwrap()
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_skipped() {
        let a = id("1a2b3c-000001-AB");
        let b = id("1a2b3c-000002-AB");
        let mut log = message_record(&a, b"H-a\n", b"a-D\nbody\n");
        log.extend(removed_record(&a));
        let whole = log.len();
        log.extend(message_record(&b, b"H-b\n", b"b-D\n"));
        let p = parse(&log);
        assert_eq!(p.records.len(), 3);
        assert_eq!(p.skipped_bytes, 0);
        assert_eq!(
            p.records[0],
            Record::Message {
                id: a,
                header: b"H-a\n".to_vec(),
                data: b"a-D\nbody\n".to_vec()
            }
        );
        assert_eq!(p.records[1], Record::Removed(a));
        // Every truncation of the last record leaves the first two intact.
        for cut in whole..log.len() {
            let p = parse(&log[..cut]);
            assert_eq!(p.records.len(), 2, "cut at {cut}");
            assert_eq!(p.skipped_bytes as usize, cut - whole);
        }
        // A flipped byte in the middle record loses only that record.
        let mut bad = log.clone();
        bad[whole - 3] ^= 0x40;
        let p = parse(&bad);
        assert_eq!(p.records.len(), 2);
        assert!(matches!(p.records[1], Record::Message { id, .. } if id == b));
    }
}
