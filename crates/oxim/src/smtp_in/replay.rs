//! Replay-safe transactions: the server side of oxim's `XOXIM-TXID`.
//!
//! A client that puts a whole transaction (EHLO, MAIL, RCPT, `BDAT n LAST`
//! and the body) into a TCP Fast Open SYN gives it a random token as a MAIL
//! parameter. The network may deliver that SYN twice; a second copy that
//! arrives when the server no longer holds the first connection's state
//! opens a connection of its own, with the whole transaction in it. The
//! server keeps, for [`REPLAY_WINDOW`], which message each token (with the
//! client's address) became, and answers a copy with that message's reply
//! instead of taking the message a second time.
//!
//! The book is one file per spool, `<spool>/db/txid`, one record a line
//! (`ip TAB token TAB unix-time TAB message-id`), appended and made durable
//! after the message's spool files and before its 250: a daemon restarted
//! within the window still recognises a copy. It is rewritten without the
//! expired records when most of it has expired. A copy that arrives while
//! the first is still being received waits for it (up to [`WAIT_LIMIT`]).
//! One daemon process keeps the book in memory; it reads the file once.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// How long a token is remembered. A duplicated SYN lives no longer in the
/// network than a segment's maximum lifetime (two minutes by RFC 9293's
/// convention, Linux assumes one); ten minutes leaves a wide margin.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);

/// How long a copy waits for the first to finish before it is told to try
/// later (451).
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// What a token's first transaction became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The message id in the first copy's 250.
    pub id: String,
    at: u64,
}

#[derive(Default)]
struct Inner {
    loaded: bool,
    done: HashMap<String, Done>,
    pending: HashMap<String, watch::Sender<()>>,
    /// Records in the file (live or expired).
    in_file: usize,
}

/// The tokens of one spool.
pub struct Book {
    path: PathBuf,
    inner: Mutex<Inner>,
}

/// The outcome of [`Book::claim`].
pub enum Claimed {
    /// The first copy: receive the message, then [`Claim::commit`].
    Fresh(Claim),
    /// A copy of a transaction already accepted.
    Replay(Done),
    /// The first copy is still being received after [`WAIT_LIMIT`].
    Busy,
}

/// The right to receive a token's transaction; dropping it without
/// [`Claim::commit`] (the message was refused) lets a later copy be
/// received as new.
pub struct Claim {
    book: Arc<Book>,
    key: String,
}

static BOOKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Book>>>> = LazyLock::new(Default::default);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key(ip: IpAddr, token: &str) -> String {
    format!("{ip}\t{token}")
}

fn live(d: &Done, now: u64) -> bool {
    now.saturating_sub(d.at) <= REPLAY_WINDOW.as_secs()
}

impl Book {
    /// The book kept in `db_dir` (one per directory in this process).
    pub fn of(db_dir: &Path) -> Arc<Book> {
        let path = db_dir.join("txid");
        let mut books = BOOKS.lock().unwrap_or_else(|e| e.into_inner());
        books
            .entry(path.clone())
            .or_insert_with(|| {
                Arc::new(Book {
                    path,
                    inner: Mutex::new(Inner::default()),
                })
            })
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !g.loaded {
            g.loaded = true;
            let text = fs::read_to_string(&self.path).unwrap_or_default();
            let t = now();
            for l in text.lines() {
                let mut f = l.split('\t');
                let (Some(ip), Some(token), Some(at), Some(id)) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    continue;
                };
                g.in_file += 1;
                let Ok(at) = at.parse() else { continue };
                let d = Done {
                    id: id.to_string(),
                    at,
                };
                if live(&d, t) {
                    g.done.insert(format!("{ip}\t{token}"), d);
                }
            }
        }
        g
    }

    /// Look `token` from `ip` up: a copy of a transaction already accepted,
    /// or the first (then this caller receives it), waiting while another
    /// connection is receiving it.
    pub async fn claim(self: &Arc<Self>, ip: IpAddr, token: &str) -> Claimed {
        let key = key(ip, token);
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let mut rx = {
                let mut g = self.lock();
                let t = now();
                if let Some(d) = g.done.get(&key).filter(|d| live(d, t)) {
                    return Claimed::Replay(d.clone());
                }
                match g.pending.get(&key) {
                    Some(tx) => tx.subscribe(),
                    None => {
                        let (tx, _) = watch::channel(());
                        g.pending.insert(key.clone(), tx);
                        return Claimed::Fresh(Claim {
                            book: self.clone(),
                            key,
                        });
                    }
                }
            };
            // Wakes when the first copy's claim goes (committed or not).
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Claimed::Busy;
            }
        }
    }

    /// Append a record and make it durable.
    fn append(&self, key: &str, d: &Done) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let new = !self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(format!("{key}\t{}\t{}\n", d.at, d.id).as_bytes())?;
        f.sync_data()?;
        if new {
            sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Rewrite the file with the live records only.
    fn compact(&self, g: &mut Inner) -> std::io::Result<()> {
        let t = now();
        g.done.retain(|_, d| live(d, t));
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        for (k, d) in &g.done {
            writeln!(f, "{k}\t{}\t{}", d.at, d.id)?;
        }
        f.sync_data()?;
        fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        g.in_file = g.done.len();
        Ok(())
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl Claim {
    /// The transaction became message `id` (its spool files are durable):
    /// remember it, durably, before the 250 goes out.
    pub fn commit(self, id: &str) -> std::io::Result<()> {
        let d = Done {
            id: id.to_string(),
            at: now(),
        };
        let book = self.book.clone();
        let mut g = book.lock();
        let r = book.append(&self.key, &d);
        g.done.insert(self.key.clone(), d);
        if r.is_ok() {
            g.in_file += 1;
            if g.in_file > 1024 && g.in_file > 2 * g.done.len() {
                let _ = book.compact(&mut g);
            }
        }
        r
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut g = self.book.lock();
        // Dropping the sender wakes every copy waiting for this one.
        g.pending.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUv";

    fn ip() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[tokio::test]
    async fn a_copy_gets_the_first_answer_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::of(dir.path());
        let Claimed::Fresh(c) = book.claim(ip(), TOKEN).await else {
            panic!("first copy not fresh");
        };
        c.commit("1abcde-000000-0000").unwrap();
        match book.claim(ip(), TOKEN).await {
            Claimed::Replay(d) => assert_eq!(d.id, "1abcde-000000-0000"),
            _ => panic!("copy not recognised"),
        }
        // Another client's token is not this one.
        assert!(matches!(
            book.claim(IpAddr::from([10, 0, 0, 1]), TOKEN).await,
            Claimed::Fresh(_)
        ));
        // A new process reads the file.
        let fresh = Arc::new(Book {
            path: dir.path().join("txid"),
            inner: Mutex::new(Inner::default()),
        });
        match fresh.claim(ip(), TOKEN).await {
            Claimed::Replay(d) => assert_eq!(d.id, "1abcde-000000-0000"),
            _ => panic!("copy not recognised after a restart"),
        }
    }

    #[tokio::test]
    async fn a_copy_waits_for_the_first_and_a_refusal_frees_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::of(dir.path());
        let Claimed::Fresh(first) = book.claim(ip(), TOKEN).await else {
            panic!("first copy not fresh");
        };
        let b2 = book.clone();
        let second = tokio::spawn(async move {
            match b2.claim(ip(), TOKEN).await {
                Claimed::Replay(d) => Some(d.id),
                _ => None,
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the copy did not wait");
        first.commit("1abcde-000000-0001").unwrap();
        assert_eq!(second.await.unwrap().as_deref(), Some("1abcde-000000-0001"));
        // Refused (claim dropped): the next copy is received as new.
        let other = "ZyXwVuTsRqPoNmLkJiHgFe";
        let Claimed::Fresh(c) = book.claim(ip(), other).await else {
            panic!("not fresh");
        };
        drop(c);
        assert!(matches!(book.claim(ip(), other).await, Claimed::Fresh(_)));
    }
}
