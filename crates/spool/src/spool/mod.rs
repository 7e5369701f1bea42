//! The spool directory and durable message files.

use crate::header::{format_header, header_size, parse_header, Envelope, Header};
use crate::id::MessageId;
use crate::{Result, SpoolError};
use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

mod write;

/// Mode of spool directories (owner rwx, group rx).
const DIR_MODE: u32 = 0o750;
/// Mode of spool files (owner rw, group r).
const FILE_MODE: u32 = 0o640;
/// Prefix of temporary files in `input/`; never a valid message file name.
const TMP_PREFIX: &str = "tmp-";

/// A message read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolMessage {
    /// The envelope, with `done` recipients from both the `-H` file and the
    /// `-J` journal.
    pub envelope: Envelope,
    /// The header lines.
    pub headers: Vec<Header>,
    /// Path of the `-D` file.
    pub data_path: PathBuf,
    /// Length of the body: the `-D` file minus its id line.
    pub body_len: u64,
}

impl SpoolMessage {
    /// The message size as Exim reports it (`exim -bp`, `$message_size`):
    /// live header lines + a notional blank line + body.
    pub fn size(&self) -> u64 {
        header_size(&self.headers) + 1 + self.body_len
    }
}

/// A held lock on a message (exclusive `flock` on its `-D` file), so that
/// two delivery processes never work on the same message. Released on drop.
#[derive(Debug)]
pub struct MessageLock {
    _lock: nix::fcntl::Flock<File>,
    id: MessageId,
}

impl MessageLock {
    /// The locked message.
    pub fn id(&self) -> MessageId {
        self.id
    }
}

/// Files of one message written to temporary names but not yet synced or
/// published. Dropping it without [`Prepared::publish`] removes the files.
#[derive(Debug)]
pub(crate) struct Prepared {
    id: MessageId,
    data_tmp: PathBuf,
    header_tmp: PathBuf,
    data: File,
    header: File,
    data_final: PathBuf,
    header_final: PathBuf,
    published: bool,
}

impl Prepared {
    /// The message.
    pub(crate) fn id(&self) -> MessageId {
        self.id
    }

    /// Starts writeback of both files without waiting, so that a later
    /// [`Prepared::sync`] of many files finds their blocks already allocated
    /// in the same journal transaction (ext4 delayed allocation would
    /// otherwise cost one journal commit per file). Advisory: errors are
    /// ignored (the following fdatasync reports real ones).
    pub(crate) fn start_writeback(&self) {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        // POSIX_FADV_DONTNEED on Linux initiates writeback of dirty pages.
        let _ = posix_fadvise(&self.data, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
        let _ = posix_fadvise(&self.header, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }

    /// Bytes in both files (0 for a file that cannot be examined).
    pub(crate) fn bytes(&self) -> u64 {
        [&self.data, &self.header]
            .iter()
            .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// fdatasync both files.
    pub(crate) fn sync(&self) -> Result<()> {
        self.data
            .sync_data()
            .map_err(SpoolError::io("fsync", &self.data_tmp))?;
        self.header
            .sync_data()
            .map_err(SpoolError::io("fsync", &self.header_tmp))
    }

    /// Renames `-D` then `-H` into place. The message exists once `-H` is
    /// there; the directory still needs an fsync for the names to be durable.
    pub(crate) fn publish(mut self) -> Result<MessageId> {
        fs::rename(&self.data_tmp, &self.data_final)
            .map_err(SpoolError::io("rename", &self.data_final))?;
        if let Err(e) = fs::rename(&self.header_tmp, &self.header_final) {
            let _ = fs::remove_file(&self.data_final);
            return Err(SpoolError::io("rename", &self.header_final)(e));
        }
        self.published = true;
        Ok(self.id)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.data_tmp);
            let _ = fs::remove_file(&self.header_tmp);
        }
    }
}

/// The `-D` file of a message being received, under its temporary name.
/// See [`Spool::create_data`].
#[derive(Debug)]
pub struct DataFile {
    id: MessageId,
    /// `None` once finished (handed over) or after a failed flush.
    out: Option<io::BufWriter<File>>,
    /// Temporary path; emptied when ownership passes to a `Prepared`.
    path: PathBuf,
    body_len: u64,
}

impl DataFile {
    /// The message the file belongs to.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Body bytes written so far (the id line not counted).
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    fn writer(&mut self) -> Result<&mut io::BufWriter<File>> {
        let path = &self.path;
        self.out.as_mut().ok_or_else(|| SpoolError::Io {
            op: "write",
            path: path.clone(),
            source: io::Error::other("data file already finished"),
        })
    }

    /// Flushes and returns the file (the temp path stays in `self.path`).
    fn finish(&mut self) -> Result<File> {
        let w = self.out.take().ok_or_else(|| SpoolError::Io {
            op: "write",
            path: self.path.clone(),
            source: io::Error::other("data file already finished"),
        })?;
        w.into_inner()
            .map_err(|e| SpoolError::io("write", &self.path)(e.into_error()))
    }
}

impl Write for DataFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("data file already finished"))?;
        let n = out.write(buf)?;
        self.body_len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            drop(self.out.take());
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An Exim-layout spool directory.
///
/// Files: `input/<id>-H` (envelope and headers), `input/<id>-D` (body),
/// `input/<id>-J` (delivery journal, transient), `msglog/<id>` (per-message
/// log), `db/` (hints databases, not managed here), `quarantine/` (unreadable
/// messages moved aside, each with a `<id>.reason` file).
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    input: PathBuf,
    msglog: PathBuf,
    db: PathBuf,
    quarantine: PathBuf,
}

fn mkdir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(SpoolError::io("create directory", path))
}

fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(SpoolError::io("create", path))
}

fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(SpoolError::io("fsync directory", path))
}

fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SpoolError::io("remove", path)(e)),
    }
}

/// Reads and parses a `-H` file. Malformed content gives
/// [`SpoolError::Format`], never a panic.
pub fn read_header(path: impl AsRef<Path>) -> Result<(Envelope, Vec<Header>)> {
    let path = path.as_ref();
    let data = fs::read(path).map_err(SpoolError::io("read", path))?;
    parse_header(&data).map_err(|source| SpoolError::Format {
        path: path.to_path_buf(),
        source,
    })
}

impl Spool {
    /// Opens (creating as needed, mode 0750) the spool directory `dir` and its
    /// `input/`, `msglog/` and `db/` subdirectories.
    pub fn open(dir: impl AsRef<Path>) -> Result<Spool> {
        let spool = Spool::at(dir);
        for d in [&spool.root, &spool.input, &spool.msglog, &spool.db] {
            mkdir(d)?;
        }
        Ok(spool)
    }

    /// The spool at `dir` without creating anything (for commands that only
    /// inspect, such as `-bV` and `-bP`). Operations fail if it is absent.
    pub fn at(dir: impl AsRef<Path>) -> Spool {
        let root = dir.as_ref().to_path_buf();
        Spool {
            input: root.join("input"),
            msglog: root.join("msglog"),
            db: root.join("db"),
            quarantine: root.join("quarantine"),
            root,
        }
    }

    /// The spool directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `input/`.
    pub fn input_dir(&self) -> &Path {
        &self.input
    }

    /// `msglog/`.
    pub fn msglog_dir(&self) -> &Path {
        &self.msglog
    }

    /// `db/`.
    pub fn db_dir(&self) -> &Path {
        &self.db
    }

    /// `quarantine/` (created on first use).
    pub fn quarantine_dir(&self) -> &Path {
        &self.quarantine
    }

    /// `input/<id>-H`.
    pub fn header_path(&self, id: &MessageId) -> PathBuf {
        self.input.join(format!("{id}-H"))
    }

    /// `input/<id>-D`.
    pub fn data_path(&self, id: &MessageId) -> PathBuf {
        self.input.join(format!("{id}-D"))
    }

    /// `input/<id>-J`.
    pub fn journal_path(&self, id: &MessageId) -> PathBuf {
        self.input.join(format!("{id}-J"))
    }

    /// `msglog/<id>`.
    pub fn msglog_path(&self, id: &MessageId) -> PathBuf {
        self.msglog.join(id.as_str())
    }

    /// True when the message exists (its `-H` file is present).
    pub fn exists(&self, id: &MessageId) -> bool {
        self.header_path(id).exists()
    }

    /// Reads a message: its `-H` file, with deliveries recorded in the `-J`
    /// journal applied, and the size of its `-D` file.
    pub fn read(&self, id: &MessageId) -> Result<SpoolMessage> {
        let hpath = self.header_path(id);
        let (mut envelope, headers) = match read_header(&hpath) {
            Err(e) if e.is_not_found() => return Err(SpoolError::NotFound(*id)),
            r => r?,
        };
        if envelope.id != *id {
            return Err(SpoolError::IdMismatch {
                path: hpath,
                expected: *id,
                found: envelope.id,
            });
        }
        for addr in self.read_journal(id)? {
            apply_delivered(&mut envelope, &addr);
        }
        let data_path = self.data_path(id);
        let len = fs::metadata(&data_path)
            .map_err(SpoolError::io("stat", &data_path))?
            .len();
        let body_len = len.saturating_sub(id.as_str().len() as u64 + 3);
        Ok(SpoolMessage {
            envelope,
            headers,
            data_path,
            body_len,
        })
    }

    /// Opens the body: the `-D` file positioned after its id line, and the
    /// body length.
    pub fn open_body(&self, id: &MessageId) -> Result<(File, u64)> {
        let path = self.data_path(id);
        let mut f = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SpoolError::NotFound(*id)
            } else {
                SpoolError::io("open", &path)(e)
            }
        })?;
        let expect = format!("{id}-D\n");
        let mut first = vec![0u8; expect.len()];
        f.read_exact(&mut first)
            .map_err(SpoolError::io("read", &path))?;
        if first != expect.as_bytes() {
            return Err(SpoolError::Io {
                op: "read",
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "-D file lacks its id line"),
            });
        }
        let len = f.metadata().map_err(SpoolError::io("stat", &path))?.len();
        f.seek(SeekFrom::Start(expect.len() as u64))
            .map_err(SpoolError::io("seek", &path))?;
        Ok((f, len - expect.len() as u64))
    }

    /// Records, durably, that `addresses` of message `id` have been
    /// delivered, by appending them to the `-J` journal (one write, then
    /// fdatasync). Crash-safe: a torn last line is ignored on reading, and
    /// [`Spool::read`] applies the journal. Call [`Spool::rewrite_header`] at
    /// the end of a delivery attempt to fold the journal into `-H`.
    pub fn mark_delivered(&self, id: &MessageId, addresses: &[&str]) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let path = self.journal_path(id);
        let mut buf = String::new();
        for a in addresses {
            // An address cannot contain a newline; refuse to corrupt the file.
            if a.contains('\n') {
                return Err(SpoolError::Io {
                    op: "journal",
                    path,
                    source: io::Error::new(io::ErrorKind::InvalidInput, "address contains newline"),
                });
            }
            buf.push_str(a);
            buf.push('\n');
        }
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(SpoolError::io("open", &path))?;
        f.write_all(buf.as_bytes())
            .map_err(SpoolError::io("write", &path))?;
        f.sync_data().map_err(SpoolError::io("fsync", &path))
    }

    /// Complete lines of the `-J` journal (empty when there is none).
    fn read_journal(&self, id: &MessageId) -> Result<Vec<String>> {
        let path = self.journal_path(id);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SpoolError::io("read", &path)(e)),
        };
        let complete = match data.iter().rposition(|&b| b == b'\n') {
            Some(i) => &data[..=i],
            None => &[][..],
        };
        Ok(complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }

    /// Atomically replaces the `-H` file of an existing message (e.g. after
    /// a delivery attempt, with `done` recipients and a new warning count),
    /// then removes the `-J` journal, whose entries `env` must include.
    pub fn rewrite_header(&self, env: &Envelope, headers: &[Header]) -> Result<()> {
        let id = env.id;
        let final_path = self.header_path(&id);
        if !final_path.exists() {
            return Err(SpoolError::NotFound(id));
        }
        let tmp = self.input.join(format!("{TMP_PREFIX}{id}-H"));
        let mut f = create_file(&tmp)?;
        let res = f
            .write_all(&format_header(env, headers))
            .and_then(|()| f.sync_data())
            .map_err(SpoolError::io("write", &tmp))
            .and_then(|()| {
                fs::rename(&tmp, &final_path).map_err(SpoolError::io("rename", &final_path))
            });
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.sync_input_dir()?;
        remove_if_exists(&self.journal_path(&id))?;
        Ok(())
    }

    /// Removes a message: `-H` first (the message ceases to exist), then
    /// `-D`, `-J` and the msglog. Returns [`SpoolError::NotFound`] when there
    /// was no `-H` file (other files are still cleaned up).
    pub fn remove(&self, id: &MessageId) -> Result<()> {
        crate::commitlog::note_removed(self, id);
        let had_header = remove_if_exists(&self.header_path(id))?;
        remove_if_exists(&self.data_path(id))?;
        remove_if_exists(&self.journal_path(id))?;
        remove_if_exists(&self.msglog_path(id))?;
        if had_header {
            Ok(())
        } else {
            Err(SpoolError::NotFound(*id))
        }
    }

    /// Ids of the messages on the spool (those with a `-H` file), in Exim's
    /// queue order (arrival time, then the rest of the id). Temporary files
    /// and unrelated names are ignored.
    pub fn list(&self) -> Result<Vec<MessageId>> {
        let mut ids = Vec::new();
        let rd =
            fs::read_dir(&self.input).map_err(SpoolError::io("read directory", &self.input))?;
        for entry in rd {
            let entry = entry.map_err(SpoolError::io("read directory", &self.input))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_suffix("-H")
                .and_then(|s| s.parse::<MessageId>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Moves the message's files out of `input/` into `quarantine/`, with a
    /// `<id>.reason` file holding `reason`, so an unreadable message stops
    /// being retried but is kept for inspection. Returns the quarantine
    /// directory.
    pub fn quarantine(&self, id: &MessageId, reason: &str) -> Result<PathBuf> {
        mkdir(&self.quarantine)?;
        crate::commitlog::note_removed(self, id);
        let reason_path = self.quarantine.join(format!("{id}.reason"));
        fs::write(&reason_path, format!("{reason}\n"))
            .map_err(SpoolError::io("write", &reason_path))?;
        let mut moved = false;
        for suffix in ["-D", "-J", "-H"] {
            let from = self.input.join(format!("{id}{suffix}"));
            let to = self.quarantine.join(format!("{id}{suffix}"));
            match fs::rename(&from, &to) {
                Ok(()) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io("rename", &from)(e)),
            }
        }
        let _ = fs::rename(
            self.msglog_path(id),
            self.quarantine.join(format!("{id}.msglog")),
        );
        if !moved {
            let _ = fs::remove_file(&reason_path);
            return Err(SpoolError::NotFound(*id));
        }
        self.sync_input_dir()?;
        Ok(self.quarantine.clone())
    }

    /// Appends one line to the message's msglog (`msglog/<id>`), adding the
    /// newline if `line` lacks one. The caller supplies the full text,
    /// timestamp included (see `oxim-log`).
    pub fn append_msglog(&self, id: &MessageId, line: &str) -> Result<()> {
        let path = self.msglog_path(id);
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        if !buf.ends_with('\n') {
            buf.push('\n');
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(&path)
            .and_then(|mut f| f.write_all(buf.as_bytes()))
            .map_err(SpoolError::io("append", &path))
    }

    /// Takes the exclusive delivery lock of a message without waiting.
    /// `Ok(None)` when another process or thread holds it.
    pub fn lock(&self, id: &MessageId) -> Result<Option<MessageLock>> {
        use nix::fcntl::{Flock, FlockArg};
        let path = self.data_path(id);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    SpoolError::NotFound(*id)
                } else {
                    SpoolError::io("open", &path)(e)
                }
            })?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(MessageLock {
                _lock: lock,
                id: *id,
            })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(SpoolError::io("lock", &path)(io::Error::from(errno))),
        }
    }

    /// Removes crash debris in `input/` older than `age`: temporary files
    /// (they never became messages) and `-D`/`-J` files whose `-H` file is
    /// missing (a crash between the two renames of a write, or during a
    /// removal). Returns how many files were removed. Run it at startup, or
    /// with an age well above the longest write, as a queue runner does.
    pub fn remove_stale_temps(&self, age: Duration) -> Result<usize> {
        self.remove_stale_debris(age).map(|v| v.len())
    }

    /// [`Spool::remove_stale_temps`], returning the paths removed (for the
    /// log).
    pub fn remove_stale_debris(&self, age: Duration) -> Result<Vec<PathBuf>> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        let rd =
            fs::read_dir(&self.input).map_err(SpoolError::io("read directory", &self.input))?;
        let mut seen = HashSet::new();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let debris = name.starts_with(TMP_PREFIX)
                || name
                    .strip_suffix("-D")
                    .or_else(|| name.strip_suffix("-J"))
                    .and_then(|id| id.parse::<MessageId>().ok())
                    .is_some_and(|id| !self.header_path(&id).exists());
            if !debris || !seen.insert(name.to_string()) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= age)
                .unwrap_or(false);
            if old && remove_if_exists(&entry.path())? {
                removed.push(entry.path());
            }
        }
        Ok(removed)
    }
}

/// Marks `addr` delivered in `env`: the matching recipients' `done` flag, or
/// `non_recipients` when it is not a recipient.
fn apply_delivered(env: &mut Envelope, addr: &str) {
    let mut found = false;
    for r in env.recipients.iter_mut().filter(|r| r.address == addr) {
        r.done = true;
        found = true;
    }
    if !found && !env.non_recipients.iter().any(|a| a == addr) {
        env.non_recipients.push(addr.to_string());
    }
}
