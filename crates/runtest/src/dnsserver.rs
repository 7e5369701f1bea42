//! The test name server: answers queries on 127.0.0.1:53 (UDP and TCP)
//! inside the sandbox from [`crate::fakens`] lookups, with the AD and AA
//! bits, TTLs, delays and failure codes that Exim's fakens gives. Messages
//! are parsed and built with `hickory-proto`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record};

use crate::fakens::{Answer, Rr, Status, Zones};
use crate::latin1;

/// Largest UDP answer when the query has no EDNS.
const PLAIN_UDP_MAX: usize = 512;
/// The UDP payload size this server offers with EDNS.
const EDNS_PAYLOAD: u16 = 4096;

struct Shared {
    zones: Zones,
    log: Option<Mutex<File>>,
}

impl Shared {
    fn note(&self, msg: &str) {
        if let Some(l) = &self.log {
            if let Ok(mut f) = l.lock() {
                let _ = writeln!(f, "{msg}");
            }
        }
    }
}

/// Start serving `zones` on `addr` (UDP and TCP), logging queries to
/// `log`. The threads run until the process ends.
pub fn start(zones: Zones, addr: SocketAddr, log: Option<File>) -> io::Result<()> {
    let udp = UdpSocket::bind(addr)?;
    let tcp = TcpListener::bind(addr)?;
    let shared = Arc::new(Shared {
        zones,
        log: log.map(Mutex::new),
    });
    let s = Arc::clone(&shared);
    std::thread::spawn(move || serve_udp(&udp, &s));
    std::thread::spawn(move || serve_tcp(&tcp, &shared));
    Ok(())
}

fn serve_udp(sock: &UdpSocket, shared: &Arc<Shared>) {
    let mut buf = [0u8; 65535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let query = buf[..n].to_vec();
        let (Ok(sock), shared) = (sock.try_clone(), Arc::clone(shared)) else {
            continue;
        };
        std::thread::spawn(move || {
            if let Some((reply, delay)) = respond(shared.as_ref(), &query, true) {
                std::thread::sleep(delay);
                let _ = sock.send_to(&reply, peer);
            }
        });
    }
}

fn serve_tcp(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = Arc::clone(shared);
        std::thread::spawn(move || tcp_conn(conn, &shared));
    }
}

fn tcp_conn(mut conn: TcpStream, shared: &Shared) {
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut query).is_err() {
            return;
        }
        let Some((reply, delay)) = respond(shared, &query, false) else {
            return;
        };
        std::thread::sleep(delay);
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        if conn.write_all(&n.to_be_bytes()).is_err() || conn.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Build the reply to one query message (`None`: not a query, dropped).
pub fn respond(
    shared_or_zones: &impl Lookup,
    query: &[u8],
    udp: bool,
) -> Option<(Vec<u8>, Duration)> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::response(q.metadata.id, q.metadata.op_code);
    reply.metadata.recursion_desired = q.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = q.queries.clone();
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(e);
    }
    let Some(question) = q.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok().map(|r| (r, Duration::ZERO));
    };
    if q.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        return reply.to_vec().ok().map(|r| (r, Duration::ZERO));
    }
    let qname: Vec<String> = question.name().iter().map(latin1::decode).collect();
    let qname = qname.join(".");
    let qtype = question.query_type().to_string();
    let answer = shared_or_zones.lookup(&qname, &qtype);
    reply.metadata.authoritative = answer.aa;
    reply.metadata.authentic_data = answer.ad;
    reply.metadata.response_code = match answer.status {
        Status::Found | Status::NoData => ResponseCode::NoError,
        // Not in the fake zones: there is no real DNS behind the sandbox.
        Status::HostNotFound | Status::PassOn => ResponseCode::NXDomain,
        Status::TryAgain => ResponseCode::ServFail,
        Status::NoRecovery => ResponseCode::Refused,
    };
    let mut bad = Vec::new();
    for rr in &answer.answers {
        match to_record(rr) {
            Some(r) => {
                reply.add_answer(r);
            }
            None => bad.push(format!("{} {} {}", rr.name, rr.rtype, rr.data)),
        }
    }
    for rr in &answer.authority {
        match to_record(rr) {
            Some(r) => {
                reply.add_authority(r);
            }
            None => bad.push(format!("{} {} {}", rr.name, rr.rtype, rr.data)),
        }
    }
    shared_or_zones.note(&format!(
        "{}{qtype} {qname} -> {:?} {} answer(s){}{}{}{}",
        if udp { "" } else { "tcp " },
        answer.status,
        answer.answers.len(),
        if answer.ad { " AD" } else { "" },
        if answer.aa { " AA" } else { "" },
        if answer.delay.is_zero() {
            String::new()
        } else {
            format!(" after {} ms", answer.delay.as_millis())
        },
        if bad.is_empty() {
            String::new()
        } else {
            format!("; records that could not be encoded: {}", bad.join("; "))
        }
    ));
    let mut bytes = reply.to_vec().ok()?;
    let limit = if q.edns.is_some() {
        usize::from(q.max_payload().max(512))
    } else {
        PLAIN_UDP_MAX
    };
    if udp && bytes.len() > limit {
        let mut t = reply.truncate();
        t.metadata.truncation = true;
        bytes = t.to_vec().ok()?;
    }
    Some((bytes, answer.delay))
}

/// Where answers come from (the zones, plus logging).
pub trait Lookup {
    /// Answer a query.
    fn lookup(&self, qname: &str, qtype: &str) -> Answer;
    /// Record what was asked and answered.
    fn note(&self, _msg: &str) {}
}

impl Lookup for Shared {
    fn lookup(&self, qname: &str, qtype: &str) -> Answer {
        chase(
            &self.zones,
            localhost(self.zones.lookup(qname, qtype), qname, qtype),
            qtype,
        )
    }
    fn note(&self, msg: &str) {
        Shared::note(self, msg);
    }
}

impl Lookup for Zones {
    fn lookup(&self, qname: &str, qtype: &str) -> Answer {
        chase(
            self,
            localhost(Zones::lookup(self, qname, qtype), qname, qtype),
            qtype,
        )
    }
}

/// When the answer is only a CNAME, add the target's records as a
/// recursive server would (fakens leaves that to Exim's own resolver code;
/// resolvers such as glibc's expect the server to do it). AD stays set only
/// if the whole chain is secure.
fn chase(zones: &Zones, mut a: Answer, qtype: &str) -> Answer {
    if qtype == "CNAME" {
        return a;
    }
    for _ in 0..10 {
        let Some(last) = a.answers.last() else {
            break;
        };
        if last.rtype != "CNAME" || a.answers.iter().any(|r| r.rtype == qtype) {
            break;
        }
        let target = last.data.clone();
        let next = Zones::lookup(zones, &target, qtype);
        if next.answers.is_empty() {
            break;
        }
        a.ad &= next.ad;
        a.delay += next.delay;
        a.answers.extend(next.answers);
    }
    a
}

/// Names the real DNS would have when fakens passes a query on:
/// `localhost` and the reverse of 127.0.0.1.
fn localhost(mut a: Answer, qname: &str, qtype: &str) -> Answer {
    if a.status != Status::PassOn {
        return a;
    }
    let local = qname.eq_ignore_ascii_case("localhost");
    let reverse = qname.eq_ignore_ascii_case("1.0.0.127.in-addr.arpa");
    if local || reverse {
        let data = match qtype {
            "A" if local => "127.0.0.1",
            "AAAA" if local => "::1",
            "PTR" if reverse => "localhost.",
            _ => return a,
        };
        a.status = Status::Found;
        a.answers.push(Rr {
            name: qname.to_ascii_lowercase(),
            rtype: qtype.into(),
            ttl: crate::fakens::DEFAULT_TTL,
            data: data.into(),
        });
    }
    a
}

/// A name from zone text (labels are bytes; a trailing dot is optional).
pub fn name(text: &str) -> Option<Name> {
    let t = text.strip_suffix('.').unwrap_or(text);
    if t.is_empty() {
        return Some(Name::root());
    }
    let labels: Vec<Vec<u8>> = t.split('.').map(latin1::encode).collect();
    let mut n = Name::from_labels(labels).ok()?;
    n.set_fqdn(true);
    Some(n)
}

fn num<T: std::str::FromStr>(w: Option<&str>) -> Option<T> {
    w?.parse().ok()
}

/// TXT data: one or more `"..."` strings (bytes between the quotes).
fn txt_strings(data: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut p = data.trim();
    while !p.is_empty() {
        let body = p.strip_prefix('"').unwrap_or(p);
        let end = body.find('"').unwrap_or(body.len());
        out.push(latin1::encode(&body[..end]));
        p = body.get(end + 1..).unwrap_or("").trim_start();
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn hex_bytes(s: &str) -> Vec<u8> {
    let digits: Vec<u32> = s.chars().map_while(|c| c.to_digit(16)).collect();
    digits
        .chunks(2)
        .map(|c| {
            let hi = c[0] << 4;
            let lo = c.get(1).copied().unwrap_or(0);
            u8::try_from(hi | lo).unwrap_or(0)
        })
        .collect()
}

/// Encode one record; `None` when its text does not make a valid record.
pub fn to_record(rr: &Rr) -> Option<Record> {
    let owner = name(&rr.name)?;
    let mut w = rr.data.split_whitespace();
    let rdata = match rr.rtype.as_str() {
        "A" => RData::A(A(rr.data.trim().parse::<Ipv4Addr>().ok()?)),
        "AAAA" => RData::AAAA(AAAA(rr.data.trim().parse::<Ipv6Addr>().ok()?)),
        "CNAME" => RData::CNAME(CNAME(name(rr.data.trim())?)),
        "NS" => RData::NS(NS(name(rr.data.trim())?)),
        "PTR" => RData::PTR(PTR(name(rr.data.trim())?)),
        "MX" => {
            let pref = num(w.next())?;
            RData::MX(MX::new(pref, name(w.next()?)?))
        }
        "SRV" => {
            let (p, wt, port) = (num(w.next())?, num(w.next())?, num(w.next())?);
            RData::SRV(SRV::new(p, wt, port, name(w.next()?)?))
        }
        "SOA" => {
            let primary = name(w.next()?)?;
            let mailbox = name(w.next()?)?;
            RData::SOA(SOA::new(
                primary,
                mailbox,
                num(w.next())?,
                num(w.next())?,
                num(w.next())?,
                num(w.next())?,
                num(w.next())?,
            ))
        }
        "TXT" => {
            let parts = txt_strings(&rr.data);
            RData::TXT(TXT::from_bytes(parts.iter().map(Vec::as_slice).collect()))
        }
        "TLSA" => {
            let usage: u8 = num(w.next())?;
            let selector: u8 = num(w.next())?;
            let matching: u8 = num(w.next())?;
            let data: String = w.collect();
            RData::TLSA(TLSA::new(
                CertUsage::from(usage),
                Selector::from(selector),
                Matching::from(matching),
                hex_bytes(&data),
            ))
        }
        _ => return None,
    };
    Some(Record::from_rdata(owner, rr.ttl, rdata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordType;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new(77, MessageType::Query, OpCode::Query);
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii(name).unwrap(),
            t,
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn wire_answers_carry_fakens_bits() {
        let mut z = Zones::default();
        z.add(
            ".test.ex",
            "test.ex. NS exim.test.ex.\nDNSSEC AA TTL=60 mx MX 5 ten-1\nDNSSEC AA  TXT \"a b\" \"c\"\nten-1 A 10.0.0.1\nalias CNAME ten-1\n",
        );
        let (r, _) = respond(&z, &query("mx.test.ex.", RecordType::MX), true).unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.id, 77);
        assert!(m.metadata.authentic_data && m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].ttl, 60);
        assert_eq!(m.authorities.len(), 1);
        let (r, _) = respond(&z, &query("mx.test.ex.", RecordType::TXT), true).unwrap();
        assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 1);
        let (r, _) = respond(&z, &query("none.test.ex.", RecordType::A), true).unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let (r, _) = respond(&z, &query("x.test.again.dns.", RecordType::A), true).unwrap();
        assert_eq!(
            Message::from_vec(&r).unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
        let (r, _) = respond(&z, &query("manyhome.test.ex.", RecordType::A), true).unwrap();
        assert!(Message::from_vec(&r).unwrap().metadata.truncation);
        let (r, _) = respond(&z, &query("manyhome.test.ex.", RecordType::A), false).unwrap();
        assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 2048);
        let (r, _) = respond(&z, &query("alias.test.ex.", RecordType::A), true).unwrap();
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.answers.len(), 2, "CNAME and the target's A");
        let (r, _) = respond(&z, &query("localhost.", RecordType::A), true).unwrap();
        assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 1);
    }
}
