//! What a client connection's TCP handshake did, kept with the stream for
//! as long as the connection lives, and the one judgement of a server's
//! first byte's timing.

use std::time::{Duration, Instant};

use crate::{ClientTfo, Connected};

/// Shortest path round trip on which the timing of the server's first byte
/// is used to tell a server that used our TFO cookie from one that ignored
/// it. On a path of a few milliseconds the difference drowns in scheduling
/// delays (a busy server writes its banner a few ms late), so no judgement
/// is made below it.
pub const TIMING_MIN_RTT: Duration = Duration::from_millis(10);

/// What the timing of the server's first byte says about TFO (see
/// [`ConnectFacts::first_byte`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirstByte {
    /// The byte came within half a round trip of the handshake: the server
    /// sent it before our handshake ACK could have reached it, so it used
    /// our cookie.
    Early,
    /// The byte came later: the server waited for our ACK (no TFO), *or* it
    /// was slower than a round trip to write.
    Late,
    /// The round trip is under [`TIMING_MIN_RTT`]: timing tells nothing.
    Unmeasurable,
}

/// The per-connection TFO facts of a client connection: the kernel's
/// judgement, the path's round trip and when the handshake completed. Copied
/// out of [`Connected`] so that it outlives the split into stream and
/// outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectFacts {
    /// TFO outcome as judged from kernel state at the handshake.
    pub tfo: ClientTfo,
    /// Path round-trip time ([`Connected::path_rtt`]).
    pub rtt: Duration,
    /// When the handshake completed.
    pub connected_at: Instant,
}

impl ConnectFacts {
    /// The facts of a connection just made.
    pub fn of(c: &Connected) -> ConnectFacts {
        ConnectFacts {
            tfo: c.client_tfo(),
            rtt: c.path_rtt(),
            connected_at: c.connected_at(),
        }
    }

    /// Judge a server-speaks-first connection by when the server's first
    /// byte arrived (`at`).
    ///
    /// Without TFO the server can only send after our ACK reached it, so its
    /// first byte arrives at least one round trip after the handshake
    /// completed here; with an accepted cookie it can send right after its
    /// SYN-ACK.
    pub fn first_byte(&self, at: Instant) -> FirstByte {
        if self.rtt < TIMING_MIN_RTT {
            return FirstByte::Unmeasurable;
        }
        if at.saturating_duration_since(self.connected_at) < self.rtt / 2 {
            FirstByte::Early
        } else {
            FirstByte::Late
        }
    }

    /// The kernel said the cookie was accepted (data-less SYN) but the
    /// server's first byte came too late for a server that used it: the
    /// kernel cannot tell a server that ignored the cookie from one that
    /// accepted it, the timing can.
    pub fn cookie_unconfirmed(&self, first_byte_at: Option<Instant>) -> bool {
        self.tfo == ClientTfo::CookieAccepted
            && first_byte_at.is_some_and(|t| self.first_byte(t) == FirstByte::Late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(rtt_ms: u64) -> ConnectFacts {
        ConnectFacts {
            tfo: ClientTfo::CookieAccepted,
            rtt: Duration::from_millis(rtt_ms),
            connected_at: Instant::now(),
        }
    }

    #[test]
    fn one_threshold() {
        let f = facts(9);
        assert_eq!(f.first_byte(f.connected_at), FirstByte::Unmeasurable);
        let f = facts(100);
        assert_eq!(f.first_byte(f.connected_at), FirstByte::Early);
        let late = f.connected_at + Duration::from_millis(60);
        assert_eq!(f.first_byte(late), FirstByte::Late);
        assert!(f.cookie_unconfirmed(Some(late)));
        assert!(!f.cookie_unconfirmed(None));
        let data = ConnectFacts {
            tfo: ClientTfo::DataAcked,
            ..f
        };
        assert!(!data.cookie_unconfirmed(Some(late)));
    }
}
