//! A minimal NFQUEUE (nfnetlink_queue) client on a plain netlink socket.
//!
//! Written against the kernel's uapi (`linux/netfilter/nfnetlink_queue.h`)
//! rather than with the `nfq` crate, because the delayer's event loop must wait
//! for "a packet arrived" *or* "the oldest held packet is due" in one `ppoll`,
//! which needs the socket's descriptor; `nfq::Queue` does not expose it.
//! Everything here is safe Rust over `nix`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;

const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_PACKET: u8 = 2;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_HDRLEN: usize = 16;
const NFGEN_HDRLEN: usize = 4;

/// The verdicts the delayer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `NF_DROP`.
    Drop = 0,
    /// `NF_ACCEPT`.
    Accept = 1,
}

/// One queued packet: its id and the first `copy_range` bytes of the IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The kernel's packet id, used for the verdict.
    pub id: u32,
    /// The (possibly truncated) IP packet.
    pub payload: Vec<u8>,
}

/// A netlink socket bound to one NFQUEUE queue number.
pub struct Queue {
    fd: OwnedFd,
    queue_num: u16,
    seq: u32,
    buf: Vec<u8>,
    overruns: u64,
}

impl Queue {
    /// Open the socket, bind `queue_num`, copy `copy_range` bytes of each
    /// packet and allow `max_len` packets to wait in the kernel.
    pub fn bind(queue_num: u16, copy_range: u32, max_len: u32) -> io::Result<Queue> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        // Room for many held-packet notifications; a lost notification would
        // leave its packet queued in the kernel forever. Ignore failure (not
        // root): the default buffer still works for light traffic.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20));
        let mut q = Queue {
            fd,
            queue_num,
            seq: 0,
            buf: vec![0u8; 256 * 1024],
            overruns: 0,
        };
        // pf is ignored by kernels >= 3.8 but must be present.
        q.config(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])?;
        let mut params = copy_range.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        q.config(NFQA_CFG_PARAMS, &params)?;
        q.config(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes())?;
        Ok(q)
    }

    /// Unbind the queue (the kernel also does it when the socket closes).
    pub fn unbind(&mut self) -> io::Result<()> {
        self.config(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_UNBIND, 0, 0, 0])
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send one config attribute with `NLM_F_ACK` and wait for the ack.
    fn config(&mut self, attr: u16, payload: &[u8]) -> io::Result<()> {
        let seq = self.next_seq();
        let msg = build(
            NFQNL_MSG_CONFIG,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            self.queue_num,
            &[(attr, payload)],
        );
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        let mut pfd = [nix::poll::PollFd::new(
            self.fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => {
                    if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(2000u16))? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no answer from nfnetlink_queue",
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for m in Messages::new(&self.buf[..n]) {
                if m.kind == NLMSG_ERROR && m.seq == seq {
                    let code = m
                        .body
                        .get(..4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(i32::from_ne_bytes)
                        .ok_or_else(|| bad("short netlink error"))?;
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(code.saturating_neg()))
                    };
                }
            }
        }
    }

    /// Read every packet notification available now (non-blocking). Returns an
    /// empty vector when there is none.
    pub fn recv_packets(&mut self) -> io::Result<Vec<Packet>> {
        let mut out = Vec::new();
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Ok(out),
                // The socket buffer overflowed and some notifications were
                // lost. Their packets still wait in the kernel; ids grow with
                // arrival, so the next batch verdict covering a later id
                // releases them too. Count it and carry on.
                Err(Errno::ENOBUFS) => {
                    self.overruns += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for m in Messages::new(&self.buf[..n]) {
                if m.kind == (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) {
                    if let Some(p) = parse_packet(m.body) {
                        out.push(p);
                    }
                }
            }
        }
    }

    /// How often notifications were lost to a full socket buffer.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Give the verdict for one packet.
    pub fn verdict(&mut self, id: u32, verdict: Verdict) -> io::Result<()> {
        self.send_verdict(NFQNL_MSG_VERDICT, id, verdict)
    }

    /// Give the same verdict to every packet still waiting whose id is up to
    /// `max_id` (ids grow with arrival), in one message.
    pub fn verdict_up_to(&mut self, max_id: u32, verdict: Verdict) -> io::Result<()> {
        self.send_verdict(NFQNL_MSG_VERDICT_BATCH, max_id, verdict)
    }

    fn send_verdict(&mut self, kind: u16, id: u32, verdict: Verdict) -> io::Result<()> {
        let seq = self.next_seq();
        let mut hdr = (verdict as u32).to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        let msg = build(
            kind,
            NLM_F_REQUEST,
            seq,
            self.queue_num,
            &[(NFQA_VERDICT_HDR, &hdr)],
        );
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        Ok(())
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// nlmsghdr + nfgenmsg + attributes.
fn build(msg: u16, flags: u16, seq: u32, queue_num: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&(NFNL_SUBSYS_QUEUE << 8 | msg).to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id (big endian)
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&queue_num.to_be_bytes());
    for (kind, payload) in attrs {
        // Attribute payloads here are a few bytes; the cast cannot truncate.
        let len = (4 + payload.len()) as u16;
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize(b.len().next_multiple_of(4), 0);
    }
    let total = b.len() as u32;
    b[..4].copy_from_slice(&total.to_ne_bytes());
    b
}

struct Message<'a> {
    kind: u16,
    seq: u32,
    body: &'a [u8],
}

/// Iterator over the netlink messages in one datagram; stops at anything
/// malformed.
struct Messages<'a> {
    data: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(data: &'a [u8]) -> Self {
        Messages { data }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        let d = self.data;
        let len = usize::try_from(u32::from_ne_bytes(d.get(0..4)?.try_into().ok()?)).ok()?;
        if len < NLMSG_HDRLEN || len > d.len() {
            self.data = &[];
            return None;
        }
        let kind = u16::from_ne_bytes(d.get(4..6)?.try_into().ok()?);
        let seq = u32::from_ne_bytes(d.get(8..12)?.try_into().ok()?);
        let body = d.get(NLMSG_HDRLEN..len)?;
        self.data = d.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Message { kind, seq, body })
    }
}

/// Parse an NFQNL_MSG_PACKET body (nfgenmsg + attributes).
fn parse_packet(body: &[u8]) -> Option<Packet> {
    let mut attrs = body.get(NFGEN_HDRLEN..)?;
    let mut id = None;
    let mut payload = Vec::new();
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match kind {
            NFQA_PACKET_HDR => {
                id = value
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes);
            }
            NFQA_PAYLOAD => payload = value.to_vec(),
            _ => {}
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Some(Packet { id: id?, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_message_layout() {
        let m = build(
            NFQNL_MSG_VERDICT,
            NLM_F_REQUEST,
            7,
            3,
            &[(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 42])],
        );
        assert_eq!(m.len(), 16 + 4 + 4 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 3 << 8 | 1);
        assert_eq!(&m[18..20], &[0, 3]);
    }

    #[test]
    fn parses_packet_notification() {
        // A packet message as the kernel sends it: header attr + payload attr.
        let hdr = [0, 0, 1, 2, 0x08, 0x00, 3, 0];
        let msg = build(
            NFQNL_MSG_PACKET,
            0,
            0,
            0,
            &[(NFQA_PACKET_HDR, &hdr), (NFQA_PAYLOAD, b"\x45abc")],
        );
        let mut it = Messages::new(&msg);
        let m = it.next().expect("one message");
        assert!(it.next().is_none());
        let p = parse_packet(m.body).expect("packet");
        assert_eq!(p.id, 0x0102);
        assert_eq!(p.payload, b"\x45abc");
    }

    proptest::proptest! {
        #[test]
        fn garbage_does_not_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            for m in Messages::new(&data) {
                let _ = parse_packet(m.body);
            }
            let _ = parse_packet(&data);
        }
    }
}
