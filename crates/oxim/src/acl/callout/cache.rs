//! The callout cache: the `callout` hints file, one record a line, `D:`
//! for a domain (how its servers answered MAIL FROM:<>, postmaster and a
//! random local part), `A:` for an address (with the sender when one was
//! used: `addr/<sender>`), each with its time; the main options
//! `callout_domain_*_expire` and `callout_*_expire` say how long they count.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use crate::ctx::Ctx;

/// Results kept in the cache (Exim's values).
pub(super) const UNKNOWN: u8 = 0;
pub(super) const ACCEPT: u8 = 1;
pub(super) const REJECT: u8 = 2;
pub(super) const REJECT_MFNULL: u8 = 3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct DomainRecord {
    pub(super) stamp: u64,
    pub(super) result: u8,
    pub(super) pm_result: u8,
    pub(super) pm_stamp: u64,
    pub(super) random_result: u8,
    pub(super) random_stamp: u64,
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `callout` hints file: one record a line, `D` for a domain, `A` for
/// an address (with the sender when one was used: `addr/<sender>`).
pub(super) struct Cache {
    path: PathBuf,
    lock: PathBuf,
}

type Records = BTreeMap<String, Vec<u64>>;

impl Cache {
    pub(super) fn new(ctx: &Ctx) -> Self {
        let dir = ctx.spool.db_dir();
        Cache {
            path: dir.join("callout"),
            lock: dir.join("callout.lockfile"),
        }
    }

    fn load(&self) -> Records {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return Records::new();
        };
        text.lines()
            .filter_map(|l| {
                let (key, rest) = l.split_once('\t')?;
                let v: Option<Vec<u64>> = rest.split('\t').map(|n| n.parse().ok()).collect();
                Some((key.to_string(), v?))
            })
            .collect()
    }

    fn write(&self, key: String, value: Vec<u64>) {
        crate::hints_file::locked_rewrite(&self.lock, &self.path, |out| {
            let mut map = self.load();
            map.insert(key, value);
            for (k, v) in &map {
                let v: Vec<String> = v.iter().map(u64::to_string).collect();
                let _ = writeln!(out, "{k}\t{}", v.join("\t"));
            }
        });
    }

    pub(super) fn domain(&self, ctx: &Ctx, domain: &str) -> Option<DomainRecord> {
        let v = self.load().remove(&format!("D:{domain}"))?;
        let [stamp, result, pm_result, pm_stamp, random_result, random_stamp] = v[..] else {
            return None;
        };
        let mut r = DomainRecord {
            stamp,
            result: result as u8,
            pm_result: pm_result as u8,
            pm_stamp,
            random_result: random_result as u8,
            random_stamp,
        };
        let negative = r.result != ACCEPT || r.pm_result == REJECT;
        let main = &ctx.config.main;
        let expire = if negative {
            main.time("callout_domain_negative_expire")
        } else {
            main.time("callout_domain_positive_expire")
        }
        .as_secs();
        let now = now();
        if now.saturating_sub(r.stamp) > expire {
            return None;
        }
        if r.result != REJECT {
            if now.saturating_sub(r.pm_stamp) > expire {
                r.pm_result = UNKNOWN;
            }
            if now.saturating_sub(r.random_stamp) > expire {
                r.random_result = UNKNOWN;
            }
        }
        Some(r)
    }

    pub(super) fn address(&self, ctx: &Ctx, key: &str) -> Option<u8> {
        let v = self.load().remove(&format!("A:{key}"))?;
        let [stamp, result] = v[..] else { return None };
        let main = &ctx.config.main;
        let expire = if result as u8 == ACCEPT {
            main.time("callout_positive_expire")
        } else {
            main.time("callout_negative_expire")
        };
        (now().saturating_sub(stamp) <= expire.as_secs()).then_some(result as u8)
    }

    pub(super) fn put_domain(&self, domain: &str, r: &DomainRecord) {
        let v = vec![
            now(),
            r.result.into(),
            r.pm_result.into(),
            r.pm_stamp,
            r.random_result.into(),
            r.random_stamp,
        ];
        self.write(format!("D:{domain}"), v);
    }

    pub(super) fn put_address(&self, key: &str, result: u8) {
        self.write(format!("A:{key}"), vec![now(), result.into()]);
    }
}
