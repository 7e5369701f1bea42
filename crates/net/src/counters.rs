//! Process-wide TFO outcome counters, for operators (`-bV`-style reports,
//! metrics endpoints).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{ClientTfo, ServerTfo};

/// Counts of TFO outcomes, updated with relaxed atomics.
///
/// [`crate::connect`] and [`crate::server_tfo`] record into
/// [`TfoCounters::global`]; other instances can be made for tests.
#[derive(Debug, Default)]
pub struct TfoCounters {
    server_none: AtomicU64,
    server_cookie: AtomicU64,
    server_cookie_data: AtomicU64,
    client_not_tried: AtomicU64,
    client_requested: AtomicU64,
    client_accepted: AtomicU64,
    client_rejected: AtomicU64,
    client_data_acked: AtomicU64,
}

/// A point-in-time copy of [`TfoCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TfoCountersSnapshot {
    /// Accepted connections without TFO.
    pub server_none: u64,
    /// Accepted connections with a valid cookie and no SYN data.
    pub server_cookie: u64,
    /// Accepted connections with a valid cookie and SYN data.
    pub server_cookie_data: u64,
    /// Outgoing connections where TFO was not tried.
    pub client_not_tried: u64,
    /// Outgoing connections that requested a cookie.
    pub client_requested: u64,
    /// Outgoing connections whose cookie the server accepted.
    pub client_accepted: u64,
    /// Outgoing connections whose cookie the server rejected.
    pub client_rejected: u64,
    /// Outgoing connections whose SYN data the server acknowledged.
    pub client_data_acked: u64,
}

static GLOBAL: TfoCounters = TfoCounters::new();

impl TfoCounters {
    /// All counters at zero.
    pub const fn new() -> Self {
        TfoCounters {
            server_none: AtomicU64::new(0),
            server_cookie: AtomicU64::new(0),
            server_cookie_data: AtomicU64::new(0),
            client_not_tried: AtomicU64::new(0),
            client_requested: AtomicU64::new(0),
            client_accepted: AtomicU64::new(0),
            client_rejected: AtomicU64::new(0),
            client_data_acked: AtomicU64::new(0),
        }
    }

    /// The process-wide counters.
    pub fn global() -> &'static TfoCounters {
        &GLOBAL
    }

    /// Count one accepted connection.
    pub fn record_server(&self, outcome: ServerTfo) {
        let c = match outcome {
            ServerTfo::None => &self.server_none,
            ServerTfo::Cookie => &self.server_cookie,
            ServerTfo::CookieWithData => &self.server_cookie_data,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one outgoing connection.
    pub fn record_client(&self, outcome: ClientTfo) {
        let c = match outcome {
            ClientTfo::NotTried => &self.client_not_tried,
            ClientTfo::CookieRequested => &self.client_requested,
            ClientTfo::CookieAccepted => &self.client_accepted,
            ClientTfo::CookieRejected => &self.client_rejected,
            ClientTfo::DataAcked => &self.client_data_acked,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Read all counters (each individually atomic).
    pub fn snapshot(&self) -> TfoCountersSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TfoCountersSnapshot {
            server_none: r(&self.server_none),
            server_cookie: r(&self.server_cookie),
            server_cookie_data: r(&self.server_cookie_data),
            client_not_tried: r(&self.client_not_tried),
            client_requested: r(&self.client_requested),
            client_accepted: r(&self.client_accepted),
            client_rejected: r(&self.client_rejected),
            client_data_acked: r(&self.client_data_acked),
        }
    }
}

/// Two lines, e.g.
/// `TFO server: cookie=3 cookie+data=1 none=7` and
/// `TFO client: accepted=2 data-acked=0 requested=1 rejected=0 not-tried=5`.
impl fmt::Display for TfoCountersSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "TFO server: cookie={} cookie+data={} none={}",
            self.server_cookie, self.server_cookie_data, self.server_none
        )?;
        write!(
            f,
            "TFO client: accepted={} data-acked={} requested={} rejected={} not-tried={}",
            self.client_accepted,
            self.client_data_acked,
            self.client_requested,
            self.client_rejected,
            self.client_not_tried
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_outcome_in_its_own_counter() {
        let c = TfoCounters::new();
        c.record_server(ServerTfo::Cookie);
        c.record_server(ServerTfo::Cookie);
        c.record_server(ServerTfo::CookieWithData);
        c.record_client(ClientTfo::CookieRejected);
        c.record_client(ClientTfo::DataAcked);
        let s = c.snapshot();
        assert_eq!(
            s,
            TfoCountersSnapshot {
                server_cookie: 2,
                server_cookie_data: 1,
                client_rejected: 1,
                client_data_acked: 1,
                ..Default::default()
            }
        );
        let text = s.to_string();
        assert!(text.contains("cookie=2 cookie+data=1 none=0"), "{text}");
        assert!(text.contains("rejected=1"), "{text}");
    }
}
