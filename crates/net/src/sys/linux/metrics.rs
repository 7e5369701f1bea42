//! Read the kernel's cached TFO cookie for a path from the TCP metrics cache,
//! over generic netlink (`tcp_metrics` family, as `ip tcp_metrics show` does).
//!
//! The client judgement compares the cookie before and after a handshake: a
//! server that rejects our cookie replaces it with a fresh one.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub(crate) use crate::evidence::CookieLookup;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const TCP_METRICS_GENL_NAME: &[u8] = b"tcp_metrics\0";
const TCP_METRICS_GENL_VERSION: u8 = 1;
const TCP_METRICS_CMD_GET: u8 = 1;
const TCP_METRICS_ATTR_ADDR_IPV4: u16 = 1;
const TCP_METRICS_ATTR_ADDR_IPV6: u16 = 2;
const TCP_METRICS_ATTR_FOPEN_COOKIE: u16 = 10;
const TCP_METRICS_ATTR_SADDR_IPV4: u16 = 11;
const TCP_METRICS_ATTR_SADDR_IPV6: u16 = 12;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// The cached Fast Open cookie for `dst` as seen from source `src` (when
/// known; otherwise the first entry for `dst`), in the calling thread's
/// network namespace.
pub(crate) fn fastopen_cookie(src: Option<IpAddr>, dst: IpAddr) -> CookieLookup {
    // An IPv4-mapped IPv6 peer is an IPv4 path to the kernel, and so is its
    // metrics entry.
    let dst = dst.to_canonical();
    let src = src.map(|s| s.to_canonical());
    match query_cookie(src, dst) {
        Ok(Some(c)) => CookieLookup::Present(c),
        Ok(None) => CookieLookup::Absent,
        Err(e) => {
            tracing::debug!(error = %e, %dst, "tcp_metrics lookup failed");
            CookieLookup::Unknown
        }
    }
}

fn query_cookie(src: Option<IpAddr>, dst: IpAddr) -> io::Result<Option<Vec<u8>>> {
    let sock = NlSocket::open()?;
    let family = family_id(&sock)?;
    let mut msg = Message::new(family, TCP_METRICS_CMD_GET, TCP_METRICS_GENL_VERSION);
    match dst {
        IpAddr::V4(a) => msg.attr(TCP_METRICS_ATTR_ADDR_IPV4, &a.octets()),
        IpAddr::V6(a) => msg.attr(TCP_METRICS_ATTR_ADDR_IPV6, &a.octets()),
    }
    match src {
        Some(IpAddr::V4(a)) if dst.is_ipv4() => msg.attr(TCP_METRICS_ATTR_SADDR_IPV4, &a.octets()),
        Some(IpAddr::V6(a)) if dst.is_ipv6() => msg.attr(TCP_METRICS_ATTR_SADDR_IPV6, &a.octets()),
        _ => {}
    }
    match sock.request(&msg.finish())? {
        Reply::Attrs(attrs) => Ok(find_attr(&attrs, TCP_METRICS_ATTR_FOPEN_COOKIE)
            .filter(|c| !c.is_empty())
            .map(<[u8]>::to_vec)),
        // The kernel answers ESRCH when it has no entry for the address.
        Reply::Error(e) if e == libc::ESRCH || e == libc::ENOENT => Ok(None),
        Reply::Error(e) => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The `tcp_metrics` generic netlink family id (resolved once per process;
/// family ids are global, not per namespace).
fn family_id(sock: &NlSocket) -> io::Result<u16> {
    static ID: OnceLock<u16> = OnceLock::new();
    if let Some(id) = ID.get() {
        return Ok(*id);
    }
    let mut msg = Message::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
    msg.attr(CTRL_ATTR_FAMILY_NAME, TCP_METRICS_GENL_NAME);
    let id = match sock.request(&msg.finish())? {
        Reply::Attrs(attrs) => find_attr(&attrs, CTRL_ATTR_FAMILY_ID)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_ne_bytes)
            .ok_or_else(|| bad("no family id in reply"))?,
        Reply::Error(e) => return Err(io::Error::from_raw_os_error(e)),
    };
    Ok(*ID.get_or_init(|| id))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"))
}

/// A request being built: nlmsghdr + genlmsghdr + attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(msg_type: u16, cmd: u8, version: u8) -> Message {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish()
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        buf.extend_from_slice(&SEQ.fetch_add(1, Ordering::Relaxed).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        buf.extend_from_slice(&[cmd, version, 0, 0]);
        Message { buf }
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        // Payloads here are at most 16 bytes; the cast cannot truncate.
        let len = (NLA_HDRLEN + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

enum Reply {
    /// The attributes of the first data message.
    Attrs(Vec<u8>),
    /// A positive errno from an NLMSG_ERROR message.
    Error(i32),
}

struct NlSocket {
    fd: OwnedFd,
}

impl NlSocket {
    fn open() -> io::Result<NlSocket> {
        use nix::sys::socket::{
            setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol, SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )?;
        // Bound the wait: the kernel answers synchronously, but never hang a
        // delivery on it.
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(1, 0),
        )?;
        Ok(NlSocket { fd })
    }

    /// Send one request and return its answer (replies to other sequence
    /// numbers are skipped).
    fn request(&self, msg: &[u8]) -> io::Result<Reply> {
        use nix::sys::socket::{recv, send, MsgFlags};
        let seq = msg
            .get(8..12)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(|| bad("short request"))?;
        // Unbound netlink socket: the destination is the kernel (port 0).
        send(self.fd.as_raw_fd(), msg, MsgFlags::empty())?;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            if let Some(reply) = parse_reply(&buf[..n], seq)? {
                return Ok(reply);
            }
        }
    }
}

/// Find the reply to `seq` among the messages in one datagram.
fn parse_reply(mut data: &[u8], seq: u32) -> io::Result<Option<Reply>> {
    while data.len() >= NLMSG_HDRLEN {
        let u32_at = |at: usize| {
            data.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_ne_bytes)
                .unwrap_or(0)
        };
        let len = usize::try_from(u32_at(0)).map_err(|_| bad("length"))?;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(bad("truncated message"));
        }
        let msg_type = u16::from_ne_bytes([data[4], data[5]]);
        let msg_seq = u32_at(8);
        let body = &data[NLMSG_HDRLEN..len];
        if msg_seq == seq {
            if msg_type == NLMSG_ERROR {
                let code = body
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(i32::from_ne_bytes)
                    .ok_or_else(|| bad("short error message"))?;
                return Ok(Some(Reply::Error(code.saturating_neg())));
            }
            let attrs = body.get(GENL_HDRLEN..).ok_or_else(|| bad("short genl"))?;
            return Ok(Some(Reply::Attrs(attrs.to_vec())));
        }
        let aligned = len.checked_add(3).map(|l| l & !3).unwrap_or(len);
        data = data.get(aligned..).unwrap_or(&[]);
    }
    Ok(None)
}

/// The payload of the first attribute of type `kind` (nested flag ignored).
fn find_attr(mut attrs: &[u8], kind: u16) -> Option<&[u8]> {
    while attrs.len() >= NLA_HDRLEN {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < NLA_HDRLEN || len > attrs.len() {
            return None;
        }
        if ty == kind {
            return attrs.get(NLA_HDRLEN..len);
        }
        let aligned = (len + 3) & !3;
        attrs = attrs.get(aligned..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builds_aligned_attributes() {
        let mut m = Message::new(0x20, TCP_METRICS_CMD_GET, 1);
        m.attr(TCP_METRICS_ATTR_ADDR_IPV4, &[127, 0, 0, 1]);
        m.attr(7, &[1, 2, 3]);
        let buf = m.finish();
        assert_eq!(buf.len(), NLMSG_HDRLEN + GENL_HDRLEN + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize,
            buf.len()
        );
        let attrs = &buf[NLMSG_HDRLEN + GENL_HDRLEN..];
        assert_eq!(
            find_attr(attrs, TCP_METRICS_ATTR_ADDR_IPV4),
            Some(&[127, 0, 0, 1][..])
        );
        assert_eq!(find_attr(attrs, 7), Some(&[1, 2, 3][..]));
        assert_eq!(find_attr(attrs, 9), None);
    }

    #[test]
    fn error_reply_is_decoded() {
        let mut d = Vec::new();
        d.extend_from_slice(&20u32.to_ne_bytes());
        d.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        d.extend_from_slice(&0u16.to_ne_bytes());
        d.extend_from_slice(&42u32.to_ne_bytes());
        d.extend_from_slice(&0u32.to_ne_bytes());
        d.extend_from_slice(&(-libc::ESRCH).to_ne_bytes());
        match parse_reply(&d, 42) {
            Ok(Some(Reply::Error(e))) => assert_eq!(e, libc::ESRCH),
            _ => panic!("expected an error reply"),
        }
        assert!(matches!(parse_reply(&d, 41), Ok(None)));
    }

    #[test]
    fn reads_real_kernel_or_reports_unknown() {
        // Whatever the namespace holds, the lookup must not fail outright on
        // Linux: a missing entry is Absent, not Unknown.
        let r = fastopen_cookie(None, IpAddr::from([192, 0, 2, 1]));
        assert_eq!(r, CookieLookup::Absent);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), seq in any::<u32>(), kind in any::<u16>()) {
            let _ = parse_reply(&data, seq);
            let _ = find_attr(&data, kind);
        }
    }
}
