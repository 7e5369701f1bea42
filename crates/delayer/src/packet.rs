//! Just enough IPv4/IPv6 + TCP parsing to recognise a SYN that carries data.

/// True when `ip` is a TCP SYN (without ACK) carrying payload bytes. `ip` may
/// be truncated after the TCP header; `orig_len` is not needed because the IP
/// length fields describe the whole packet.
pub fn is_syn_with_data(ip: &[u8]) -> bool {
    let Some(&first) = ip.first() else {
        return false;
    };
    let (tcp_off, total_len) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            let proto = ip.get(9).copied();
            let total = ip
                .get(2..4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            match (proto, total) {
                (Some(6), Some(total)) if ihl >= 20 => (ihl, total),
                _ => return false,
            }
        }
        6 => {
            // Fixed header only: a SYN with extension headers is not ours.
            let next = ip.get(6).copied();
            let payload = ip
                .get(4..6)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            match (next, payload) {
                (Some(6), Some(p)) => (40, 40 + p),
                _ => return false,
            }
        }
        _ => return false,
    };
    let (Some(&doff), Some(&flags)) = (ip.get(tcp_off + 12), ip.get(tcp_off + 13)) else {
        return false;
    };
    let header = tcp_off + usize::from(doff >> 4) * 4;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    flags & (SYN | ACK) == SYN && total_len > header
}

/// True when `ip` is a whole IPv4 packet (its total length is what we hold).
pub fn is_whole_ipv4(ip: &[u8]) -> bool {
    ip.first().is_some_and(|b| b >> 4 == 4)
        && ip
            .get(2..4)
            .is_some_and(|b| usize::from(u16::from_be_bytes([b[0], b[1]])) == ip.len())
}

/// Send a whole IPv4 packet as it is, header included (a raw socket with
/// `IPPROTO_RAW`), to the destination its header names.
pub fn send_raw_ipv4(ip: &[u8]) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a whole IPv4 packet");
    if !is_whole_ipv4(ip) {
        return Err(bad());
    }
    let dst = ip.get(16..20).ok_or_else(bad)?;
    let dst = std::net::Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
    let addr = SockAddr::from(std::net::SocketAddrV4::new(dst, 0));
    sock.send_to(ip, &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(flags: u8, data: usize) -> Vec<u8> {
        let total = 20 + 40 + data;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[20 + 12] = 10 << 4; // 40-byte TCP header (options)
        p[20 + 13] = flags;
        p
    }

    fn v6(flags: u8, data: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40 + 20 + data];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((20 + data) as u16).to_be_bytes());
        p[6] = 6;
        p[40 + 12] = 5 << 4;
        p[40 + 13] = flags;
        p
    }

    #[test]
    fn recognises_syn_data_only() {
        assert!(is_syn_with_data(&v4(0x02, 5)));
        assert!(!is_syn_with_data(&v4(0x02, 0)));
        assert!(!is_syn_with_data(&v4(0x12, 5)), "SYN-ACK");
        assert!(!is_syn_with_data(&v4(0x18, 5)), "data segment");
        assert!(is_syn_with_data(&v6(0x02, 1)));
        assert!(!is_syn_with_data(&v6(0x02, 0)));
    }

    #[test]
    fn whole_ipv4_only() {
        let p = v4(0x02, 100);
        assert!(is_whole_ipv4(&p));
        assert!(!is_whole_ipv4(&p[..60]));
        assert!(!is_whole_ipv4(&v6(0x02, 1)));
        assert!(!is_whole_ipv4(&[]));
    }

    #[test]
    fn truncated_copy_still_works_and_garbage_is_rejected() {
        let p = v4(0x02, 100);
        assert!(is_syn_with_data(&p[..60]));
        assert!(!is_syn_with_data(&p[..30]));
        assert!(!is_syn_with_data(&[]));
        assert!(!is_syn_with_data(&[0x45, 0, 0]));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = is_syn_with_data(&data);
        }

        #[test]
        fn data_length_decides(data in 0usize..2000, flags in proptest::prelude::any::<u8>()) {
            let want = flags & 0x12 == 0x02 && data > 0;
            proptest::prop_assert_eq!(is_syn_with_data(&v4(flags, data)), want);
            proptest::prop_assert_eq!(is_syn_with_data(&v6(flags, data)), want);
        }
    }
}
