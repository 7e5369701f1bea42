//! Connections shared by the deliveries of one queue run.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::conn::Session;
use super::SmtpError;

/// What identifies interchangeable connections: same transport settings,
/// same host and port, same local interface and HELO name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub transport: String,
    pub ip: IpAddr,
    pub port: u16,
    pub interface: Option<IpAddr>,
    pub helo: String,
}

#[derive(Default)]
pub(super) struct HostSlot {
    /// A connection that finished a transaction and can take another.
    pub(super) idle: Option<Session>,
    /// Opening a connection failed earlier (this error); later messages do
    /// not try again (Exim's host retry record, for one run).
    pub(super) down: Option<SmtpError>,
}

/// Connections shared by the deliveries of one queue run. One connection
/// per host at a time: a delivery for a host whose connection is in use
/// waits for it and then sends its message down the same connection.
#[derive(Default)]
pub struct Pool {
    pub(super) slots: std::sync::Mutex<HashMap<ConnKey, Arc<tokio::sync::Mutex<HostSlot>>>>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool::default()
    }

    pub(super) fn slot(&self, key: &ConnKey) -> Arc<tokio::sync::Mutex<HostSlot>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }

    /// QUIT and close every parked connection (end of the queue run).
    pub async fn close_all(&self) {
        let slots: Vec<_> = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.drain().map(|(_, v)| v).collect()
        };
        for s in slots {
            let idle = s.lock().await.idle.take();
            if let Some(mut sess) = idle {
                let t = sess.quit_timeout;
                sess.conn.quit(t).await;
            }
        }
    }
}

/// A queue-run delivery's share of `queue_run_max`. A delivery that has to
/// wait for a host busy with another message gives its share back, so that
/// messages queued for a slow host do not stop the others. It does not take
/// it again: once the host is free it goes on down that host's connection,
/// at most one per host beyond `queue_run_max`, and never waits for a share
/// while it holds a host (which could deadlock).
pub struct Ticket {
    pub(super) permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl Ticket {
    /// Wait for a share of `sem`.
    pub async fn new(sem: Arc<tokio::sync::Semaphore>) -> Option<Ticket> {
        let p = sem.acquire_owned().await.ok()?;
        Some(Ticket {
            permit: std::sync::Mutex::new(Some(p)),
        })
    }

    pub(super) fn release(&self) {
        self.permit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

/// The pool a delivery uses, and its queue-run share when it may give it
/// back while waiting (a delivery with one remote transport call).
#[derive(Clone, Copy)]
pub struct PoolRef<'a> {
    pub pool: &'a Pool,
    pub ticket: Option<&'a Ticket>,
}
