//! The evidence behind a client TFO judgement, and the judgement itself (a
//! pure function, so the decision table is tested on every platform).

use crate::sys::tcp_info::{TFO_COOKIE_UNAVAILABLE, TFO_DATA_NOT_ACKED, TFO_SYN_RETRANSMITTED};
use crate::{ClientTfo, TcpInfoProbe};

/// The result of looking up the kernel's cached Fast Open cookie for a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CookieLookup {
    /// Not looked up, or the lookup failed (no netlink, unexpected reply).
    #[default]
    Unknown,
    /// No cache entry for the path, or no cookie in it.
    Absent,
    /// The cookie bytes.
    Present(Vec<u8>),
}

/// Everything observed about one client TFO attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TfoEvidence {
    /// `sendto(MSG_FASTOPEN)` was used (the kernel took the TFO path).
    pub tried: bool,
    /// `TCP_INFO` right after `sendto` returned. On a slow path this is
    /// before the SYN-ACK (state `SYN_SENT`); on loopback the kernel may
    /// already have processed the SYN-ACK inside the `sendto` call.
    pub at_send: Option<TcpInfoProbe>,
    /// `TCP_INFO` once the handshake completed.
    pub after: Option<TcpInfoProbe>,
    /// The kernel's cached cookie for the path before the SYN was sent.
    pub cookie_before: CookieLookup,
    /// The cached cookie once the handshake completed.
    pub cookie_after: CookieLookup,
}

/// The client judgement; pure so the decision table is unit-tested.
// Only the Linux connector has evidence to judge.
#[cfg_attr(
    any(not(target_os = "linux"), oxim_net_force_fallback),
    allow(dead_code)
)]
pub(crate) fn judge_client(e: &TfoEvidence) -> ClientTfo {
    if !e.tried {
        return ClientTfo::NotTried;
    }
    let after = e.after.unwrap_or_default();
    if after.syn_data() {
        return ClientTfo::DataAcked;
    }
    let fail = if after.fastopen_client_fail != 0 {
        after.fastopen_client_fail
    } else {
        e.at_send.map_or(0, |p| p.fastopen_client_fail)
    };
    match fail {
        TFO_COOKIE_UNAVAILABLE => return ClientTfo::CookieRequested,
        TFO_DATA_NOT_ACKED | TFO_SYN_RETRANSMITTED => return ClientTfo::CookieRejected,
        _ => {}
    }
    // A cookie went out in a SYN without data (or the kernel decided not to use
    // TFO at all). A server that rejects a cookie answers with a fresh one,
    // which replaces ours in the cache; a server that accepts it sends none.
    match (&e.cookie_before, &e.cookie_after) {
        // No cookie, yet no "cookie unavailable": TFO was suppressed (blackhole
        // detection) and the SYN was a plain one.
        (CookieLookup::Absent, _) => ClientTfo::NotTried,
        (CookieLookup::Present(before), CookieLookup::Present(after)) if before == after => {
            ClientTfo::CookieAccepted
        }
        (CookieLookup::Present(_), CookieLookup::Present(_) | CookieLookup::Absent) => {
            ClientTfo::CookieRejected
        }
        // The cache could not be read: the kernel cannot tell us more, so fall
        // back to "a cookie was sent and no failure reported".
        (CookieLookup::Unknown, _) | (CookieLookup::Present(_), CookieLookup::Unknown) => {
            ClientTfo::CookieAccepted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tcp_info::TCPI_OPT_SYN_DATA;

    fn ev(fail: u8, after_opts: u8, before: CookieLookup, after: CookieLookup) -> TfoEvidence {
        TfoEvidence {
            tried: true,
            at_send: Some(TcpInfoProbe {
                state: 2,
                fastopen_client_fail: fail,
                ..Default::default()
            }),
            after: Some(TcpInfoProbe {
                state: 1,
                options: after_opts,
                ..Default::default()
            }),
            cookie_before: before,
            cookie_after: after,
        }
    }

    fn c(b: &[u8]) -> CookieLookup {
        CookieLookup::Present(b.to_vec())
    }

    #[test]
    fn client_decision_table() {
        use CookieLookup::{Absent, Unknown};
        let mut not_tried = ev(0, 0, Unknown, Unknown);
        not_tried.tried = false;
        let cases = [
            (not_tried, ClientTfo::NotTried),
            (ev(1, 0, Absent, c(b"12345678")), ClientTfo::CookieRequested),
            (
                ev(0, 0, c(b"abcdefgh"), c(b"abcdefgh")),
                ClientTfo::CookieAccepted,
            ),
            (
                ev(0, 0, c(b"abcdefgh"), c(b"zzzzzzzz")),
                ClientTfo::CookieRejected,
            ),
            (
                ev(0, TCPI_OPT_SYN_DATA, c(b"abcdefgh"), c(b"abcdefgh")),
                ClientTfo::DataAcked,
            ),
            (
                ev(2, 0, c(b"abcdefgh"), c(b"zzzzzzzz")),
                ClientTfo::CookieRejected,
            ),
            (
                ev(3, 0, c(b"abcdefgh"), c(b"abcdefgh")),
                ClientTfo::CookieRejected,
            ),
            (ev(0, 0, Absent, Absent), ClientTfo::NotTried),
            (ev(0, 0, c(b"abcdefgh"), Absent), ClientTfo::CookieRejected),
        ];
        for (e, want) in cases {
            assert_eq!(judge_client(&e), want, "{e:?}");
        }
    }
}
