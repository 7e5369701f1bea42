//! The EHLO answers of hosts that offered PIPECONNECT, kept in the hints
//! database (`<spool>/db/misc`, Exim's file and key `ip:port.EHLO`) so that
//! the next connection can send EHLO, MAIL and RCPT without waiting for the
//! banner (early pipelining). An entry older than `retry_data_expire` is
//! not used and is removed. The file is small text, one host a line
//! (`key TAB time TAB keyword-line TAB ...`), rewritten atomically under a
//! lock like the retry hints.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxim_smtp::{EhloCapabilities, Reply};

/// Where the cache lives and how long an entry is good for.
#[derive(Debug, Clone)]
pub struct EhloCache {
    path: PathBuf,
    lock: PathBuf,
    expire: Duration,
}

/// Exim's key: `ip:port.EHLO`, the address in brackets for IPv6.
pub fn key(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}.EHLO"),
        IpAddr::V6(a) => format!("[{a}]:{port}.EHLO"),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl EhloCache {
    pub fn new(db_dir: &std::path::Path, expire: Duration) -> Self {
        EhloCache {
            path: db_dir.join("misc"),
            lock: db_dir.join("misc.lockfile"),
            expire,
        }
    }

    fn load(&self) -> BTreeMap<String, (u64, Vec<String>)> {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return BTreeMap::new();
        };
        text.lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let key = f.next()?.to_string();
                let t = f.next()?.parse().ok()?;
                Some((key, (t, f.map(str::to_string).collect())))
            })
            .collect()
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, (u64, Vec<String>)>)) {
        crate::hints_file::locked_rewrite(&self.lock, &self.path, |out| {
            let mut map = self.load();
            f(&mut map);
            for (k, (t, lines)) in &map {
                let _ = write!(out, "{k}\t{t}");
                for l in lines {
                    let _ = write!(out, "\t{l}");
                }
                let _ = writeln!(out);
            }
        });
    }

    /// The cached answer of `key`, if there is one young enough; an expired
    /// one is removed.
    pub fn read(&self, key: &str) -> Option<EhloCapabilities> {
        let (t, lines) = self.load().remove(key)?;
        if now().saturating_sub(t) > self.expire.as_secs() {
            self.forget(key);
            return None;
        }
        let mut text = vec![String::from("cached")];
        text.extend(lines);
        Some(EhloCapabilities::from_reply(&Reply::from_lines(250, text)))
    }

    /// Remember the keyword lines of a positive EHLO reply.
    pub fn write(&self, key: &str, ehlo: &Reply) {
        let lines: Vec<String> = ehlo
            .text
            .iter()
            .skip(1)
            .map(|l| l.replace(['\t', '\r', '\n'], " "))
            .collect();
        self.update(|m| {
            m.insert(key.to_string(), (now(), lines));
        });
    }

    pub fn forget(&self, key: &str) {
        self.update(|m| {
            m.remove(key);
        });
    }

    /// Remove the entries written before `oldest` (epoch seconds), for
    /// `exim_tidydb`; the keys removed.
    pub fn remove_older_than(&self, oldest: u64) -> Vec<String> {
        let mut gone = Vec::new();
        self.update(|m| {
            m.retain(|k, (t, _)| {
                let keep = *t >= oldest;
                if !keep {
                    gone.push(k.clone());
                }
                keep
            });
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let c = EhloCache::new(dir.path(), Duration::from_secs(3600));
        let k = key("127.0.0.1".parse().unwrap(), 25);
        assert_eq!(k, "127.0.0.1:25.EHLO");
        assert!(c.read(&k).is_none());
        let r = Reply::from_lines(250, ["h Hello", "SIZE 100", "PIPELINING", "PIPECONNECT"]);
        c.write(&k, &r);
        let caps = c.read(&k).unwrap();
        assert!(caps.pipelining && caps.pipe_connect && caps.size_advertised);
        assert!(caps.same_offer(&EhloCapabilities::from_reply(&r)));
        c.forget(&k);
        assert!(c.read(&k).is_none());
        // An entry older than the expiry is dropped when read.
        let old = EhloCache::new(dir.path(), Duration::ZERO);
        old.update(|m| {
            m.insert(k.clone(), (now() - 5, vec!["PIPELINING".into()]));
        });
        assert!(old.read(&k).is_none());
        assert!(c.read(&k).is_none());
        assert_eq!(key("::1".parse().unwrap(), 25), "[::1]:25.EHLO");
    }
}
