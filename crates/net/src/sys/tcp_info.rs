//! The few `struct tcp_info` fields TFO judgements need, parsed from raw bytes
//! so the layout knowledge lives in one place and can be tested off-Linux.

/// `TCPI_OPT_SYN_DATA`: the SYN-ACK acknowledged data carried in the SYN
/// (client), or the SYN carried data that was accepted (server).
pub const TCPI_OPT_SYN_DATA: u8 = 32;
/// `TCPI_OPT_TFO_CHILD` (Linux ≥ 6.16): the socket was created from a SYN with
/// a valid Fast Open cookie.
pub const TCPI_OPT_TFO_CHILD: u8 = 128;

/// `tcpi_fastopen_client_fail`: no specific reason.
pub const TFO_STATUS_UNSPEC: u8 = 0;
/// `tcpi_fastopen_client_fail`: no cookie was cached, the SYN carried a request.
pub const TFO_COOKIE_UNAVAILABLE: u8 = 1;
/// `tcpi_fastopen_client_fail`: the SYN-ACK did not acknowledge the SYN data.
pub const TFO_DATA_NOT_ACKED: u8 = 2;
/// `tcpi_fastopen_client_fail`: the SYN with data timed out and was retransmitted.
pub const TFO_SYN_RETRANSMITTED: u8 = 3;

/// `TCP_SYN_SENT` in `tcpi_state`.
pub const TCP_SYN_SENT: u8 = 2;
/// `TCP_SYN_RECV` in `tcpi_state`.
pub const TCP_SYN_RECV: u8 = 3;

/// Selected `TCP_INFO` fields of one socket at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfoProbe {
    /// `tcpi_state` (1 = ESTABLISHED, 2 = SYN_SENT, 3 = SYN_RECV, ...).
    pub state: u8,
    /// `tcpi_options` bit set (`TCPI_OPT_*`).
    pub options: u8,
    /// `tcpi_fastopen_client_fail` (`TFO_*`, 0..=3).
    pub fastopen_client_fail: u8,
    /// `tcpi_unacked`: segments sent and not yet acknowledged.
    pub unacked: u32,
    /// `tcpi_rtt` in microseconds.
    pub rtt_us: u32,
    /// `tcpi_total_retrans`.
    pub total_retrans: u32,
}

impl TcpInfoProbe {
    /// Offsets in the kernel's `struct tcp_info` (stable ABI, append-only).
    const STATE: usize = 0;
    const OPTIONS: usize = 5;
    const FLAGS7: usize = 7;
    const UNACKED: usize = 24;
    const RTT: usize = 68;
    const TOTAL_RETRANS: usize = 100;

    /// Parse the bytes `getsockopt(TCP_INFO)` returned. Fields beyond `raw`'s
    /// end (older kernels return shorter structs) read as 0.
    pub fn parse(raw: &[u8]) -> TcpInfoProbe {
        let byte = |at: usize| raw.get(at).copied().unwrap_or(0);
        let word = |at: usize| {
            raw.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_ne_bytes)
                .unwrap_or(0)
        };
        TcpInfoProbe {
            state: byte(Self::STATE),
            options: byte(Self::OPTIONS),
            // Byte 7 is `tcpi_delivery_rate_app_limited:1, tcpi_fastopen_client_fail:2`;
            // on the little- and big-endian ABIs Linux supports, GCC allocates
            // bit-fields from the least significant bit on little-endian and from
            // the most significant on big-endian.
            fastopen_client_fail: if cfg!(target_endian = "little") {
                (byte(Self::FLAGS7) >> 1) & 0b11
            } else {
                (byte(Self::FLAGS7) >> 5) & 0b11
            },
            unacked: word(Self::UNACKED),
            rtt_us: word(Self::RTT),
            total_retrans: word(Self::TOTAL_RETRANS),
        }
    }

    /// `TCPI_OPT_SYN_DATA` is set.
    pub fn syn_data(&self) -> bool {
        self.options & TCPI_OPT_SYN_DATA != 0
    }

    /// `TCPI_OPT_TFO_CHILD` is set.
    pub fn tfo_child(&self) -> bool {
        self.options & TCPI_OPT_TFO_CHILD != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_known_layout() {
        let mut raw = [0u8; 104];
        raw[0] = TCP_SYN_RECV;
        raw[5] = TCPI_OPT_TFO_CHILD | TCPI_OPT_SYN_DATA | 1;
        raw[7] = if cfg!(target_endian = "little") {
            (TFO_DATA_NOT_ACKED << 1) | 1
        } else {
            (TFO_DATA_NOT_ACKED << 5) | 0x80
        };
        raw[24..28].copy_from_slice(&3u32.to_ne_bytes());
        raw[68..72].copy_from_slice(&100_500u32.to_ne_bytes());
        raw[100..104].copy_from_slice(&2u32.to_ne_bytes());
        let p = TcpInfoProbe::parse(&raw);
        assert_eq!(p.state, TCP_SYN_RECV);
        assert!(p.tfo_child() && p.syn_data());
        assert_eq!(p.fastopen_client_fail, TFO_DATA_NOT_ACKED);
        assert_eq!(p.unacked, 3);
        assert_eq!(p.rtt_us, 100_500);
        assert_eq!(p.total_retrans, 2);
    }

    #[test]
    fn short_struct_reads_missing_fields_as_zero() {
        let p = TcpInfoProbe::parse(&[1, 0, 0, 0, 0, TCPI_OPT_SYN_DATA, 0, 0, 0, 0]);
        assert_eq!(p.state, 1);
        assert!(p.syn_data());
        assert_eq!((p.unacked, p.rtt_us, p.total_retrans), (0, 0, 0));
    }

    proptest! {
        #[test]
        fn never_panics_and_client_fail_fits_two_bits(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = TcpInfoProbe::parse(&raw);
            prop_assert!(p.fastopen_client_fail <= 3);
        }
    }
}
