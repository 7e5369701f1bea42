//! Exim message ids and a generator that never repeats itself.
//!
//! # Formats
//!
//! Exim identifies a message by three base-62 fields separated by hyphens
//! (digits `0-9A-Za-z`, which sort in ASCII order exactly as their values do):
//!
//! | format | layout | time | middle | fraction |
//! |---|---|---|---|---|
//! | [`IdFormat::Classic`] (Exim ≤ 4.96) | `tttttt-pppppp-ff` (16 chars) | seconds since the epoch | process id | sub-second part in 1/2000 s |
//! | [`IdFormat::Long`] (Exim ≥ 4.97) | `tttttt-ppppppppppp-ssss` (23 chars) | seconds since the epoch | process id | sub-second part in µs |
//!
//! # Generation scheme (what makes ids unique)
//!
//! Exim makes ids unique by having one process receive one message at a time
//! and waiting for the clock to tick past the fraction it used. oxim receives
//! many messages concurrently in one process, so [`IdGenerator`] works in
//! *ticks* (1/2000 s for Classic, 1 µs for Long) and keeps, under a mutex, the
//! last tick it used and a per-tick sequence number:
//!
//! * When the clock has moved past the last tick, the new tick is used and the
//!   sequence restarts at 0.
//! * Otherwise (same tick, or the clock stepped backwards) the last tick is
//!   kept and the sequence is incremented. When the sequence space of a tick is
//!   exhausted, the generator moves on to the next tick (it may run slightly
//!   ahead of the wall clock; it never goes back).
//! * The middle field is `sequence * 2^22 + pid` for Classic (Linux pids are
//!   below 2^22 = `pid_max` limit, and 13 542 · 2^22 < 62^6, so sequences
//!   0..13 541 fit in six base-62 digits) and `sequence * 2^32 + pid` for
//!   Long (pids below 2^32, sequences below 2^32 fit in eleven digits).
//!   Sequence 0 yields exactly Exim's own layout (the middle field is the pid).
//!
//! So within one process `(tick, sequence)` is strictly increasing and thus
//! never repeats; across processes running at the same time the pid differs.
//! A later process that reuses a pid would have to be created within the same
//! tick as the last id issued by its predecessor, after the kernel cycled
//! through the whole pid space, for a clash to be possible; on drop the
//! generator does not wait, so like Exim we rely on pid reuse being slower
//! than a tick (500 µs).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The base-62 digit alphabet used by Exim, in value order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Which of Exim's two message id layouts to produce or recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdFormat {
    /// `tttttt-pppppp-ff`, 16 characters (Exim 4.96 and earlier).
    Classic,
    /// `tttttt-ppppppppppp-ssss`, 23 characters (Exim 4.97 and later).
    Long,
}

impl IdFormat {
    /// Length of an id in this format, in bytes.
    pub const fn id_len(self) -> usize {
        match self {
            IdFormat::Classic => 16,
            IdFormat::Long => 23,
        }
    }

    /// Width of the middle (process) field.
    const fn middle_width(self) -> usize {
        match self {
            IdFormat::Classic => 6,
            IdFormat::Long => 11,
        }
    }

    /// Width of the fraction field.
    const fn fraction_width(self) -> usize {
        match self {
            IdFormat::Classic => 2,
            IdFormat::Long => 4,
        }
    }

    /// Ticks per second of the fraction field.
    const fn ticks_per_second(self) -> u64 {
        match self {
            IdFormat::Classic => 2_000,
            IdFormat::Long => 1_000_000,
        }
    }

    /// Number of low bits of the middle field that hold the pid.
    const fn pid_bits(self) -> u32 {
        match self {
            IdFormat::Classic => 22,
            IdFormat::Long => 32,
        }
    }

    /// Number of sequence values that fit above the pid in the middle field.
    const fn sequences_per_tick(self) -> u64 {
        match self {
            // floor(62^6 / 2^22) = 13_542
            IdFormat::Classic => 13_542,
            IdFormat::Long => 1 << 32,
        }
    }
}

/// Why a string is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The length matches neither format.
    #[error("message id has length {0}, expected 16 or 23")]
    BadLength(usize),
    /// A hyphen is missing or misplaced.
    #[error("message id lacks a hyphen at offset {0}")]
    MissingHyphen(usize),
    /// A character outside `0-9A-Za-z` appears where a digit belongs.
    #[error("message id has a non-base-62 character at offset {0}")]
    BadDigit(usize),
}

/// An Exim message id, in either format. Cheap to copy.
///
/// Ordering is Exim's queue order: by arrival time (seconds, then the
/// sub-second fraction), then by the middle field; this is the order in
/// which `exim -bp` lists messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId {
    bytes: [u8; 23],
    format: IdFormat,
}

impl MessageId {
    /// Builds an id from its numeric fields.
    ///
    /// Values too large for their field are reduced modulo the field's range
    /// (only `time` can realistically overflow, in the year 3769).
    pub fn from_parts(format: IdFormat, time: u64, middle: u64, fraction: u64) -> MessageId {
        let mut bytes = [0u8; 23];
        let mw = format.middle_width();
        let fw = format.fraction_width();
        encode(time, &mut bytes[0..6]);
        bytes[6] = b'-';
        encode(middle, &mut bytes[7..7 + mw]);
        bytes[7 + mw] = b'-';
        encode(fraction, &mut bytes[8 + mw..8 + mw + fw]);
        MessageId { bytes, format }
    }

    /// The id's format.
    pub fn format(&self) -> IdFormat {
        self.format
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and hyphens are ever stored.
        std::str::from_utf8(&self.bytes[..self.format.id_len()]).unwrap_or_default()
    }

    /// Seconds since the epoch at which the id was made.
    pub fn time(&self) -> u64 {
        decode(&self.bytes[0..6]) as u64
    }

    /// The middle field (pid, with oxim's per-process sequence folded in).
    pub fn middle(&self) -> u128 {
        let mw = self.format.middle_width();
        decode(&self.bytes[7..7 + mw])
    }

    /// The raw fraction field (units depend on the format).
    pub fn fraction(&self) -> u64 {
        let mw = self.format.middle_width();
        let fw = self.format.fraction_width();
        decode(&self.bytes[8 + mw..8 + mw + fw]) as u64
    }

    /// The sub-second part in microseconds (1/2000 s resolution for Classic).
    pub fn micros(&self) -> u64 {
        match self.format {
            IdFormat::Classic => self.fraction() * 500,
            IdFormat::Long => self.fraction(),
        }
    }

    /// The process id encoded in the middle field.
    pub fn pid(&self) -> u32 {
        let mask = (1u128 << self.format.pid_bits()) - 1;
        (self.middle() & mask) as u32
    }
}

fn encode(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
}

fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        _ => None,
    }
}

/// Decodes already-validated base-62 digits. At most 11 digits: fits a u128.
fn decode(digits: &[u8]) -> u128 {
    digits.iter().fold(0u128, |acc, &c| {
        acc * 62 + u128::from(digit_value(c).unwrap_or(0))
    })
}

impl FromStr for MessageId {
    type Err = IdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let format = match b.len() {
            16 => IdFormat::Classic,
            23 => IdFormat::Long,
            n => return Err(IdParseError::BadLength(n)),
        };
        let mw = format.middle_width();
        for (i, &c) in b.iter().enumerate() {
            if i == 6 || i == 7 + mw {
                if c != b'-' {
                    return Err(IdParseError::MissingHyphen(i));
                }
            } else if digit_value(c).is_none() {
                return Err(IdParseError::BadDigit(i));
            }
        }
        let mut bytes = [0u8; 23];
        bytes[..b.len()].copy_from_slice(b);
        Ok(MessageId { bytes, format })
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.as_str())
    }
}

impl Ord for MessageId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.time()
            .cmp(&other.time())
            .then_with(|| self.micros().cmp(&other.micros()))
            .then_with(|| self.middle().cmp(&other.middle()))
            .then_with(|| self.format.cmp(&other.format))
            .then_with(|| self.bytes.cmp(&other.bytes))
    }
}

impl PartialOrd for MessageId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug)]
struct GenState {
    /// Last tick used (ticks since the epoch).
    tick: u64,
    /// Sequence number already used within `tick`.
    seq: u64,
}

/// Makes message ids that are unique within the process and across
/// concurrently running processes. Thread-safe: share it (`Arc`, `static`).
///
/// See the [module documentation](self) for the scheme.
#[derive(Debug)]
pub struct IdGenerator {
    format: IdFormat,
    pid: u64,
    state: Mutex<GenState>,
}

impl IdGenerator {
    /// A generator for `format` using the current process id.
    pub fn new(format: IdFormat) -> IdGenerator {
        IdGenerator::with_pid(format, std::process::id())
    }

    /// A generator that encodes `pid` instead of the current process id
    /// (tests, or a process that generates on behalf of another). The pid is
    /// reduced to the bits the format reserves for it.
    pub fn with_pid(format: IdFormat, pid: u32) -> IdGenerator {
        let mask = (1u64 << format.pid_bits()) - 1;
        IdGenerator {
            format,
            pid: u64::from(pid) & mask,
            state: Mutex::new(GenState { tick: 0, seq: 0 }),
        }
    }

    /// The format of the ids made.
    pub fn format(&self) -> IdFormat {
        self.format
    }

    /// Returns a new id, never equal to any id this generator returned before.
    pub fn next(&self) -> MessageId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let tps = self.format.ticks_per_second();
        let now_tick = now.as_secs() * tps
            + u64::from(now.subsec_nanos()) / (1_000_000_000 / tps as u32) as u64;
        let (tick, seq) = {
            // A poisoned lock only means another thread panicked while holding
            // it; the state (two integers) is always consistent.
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if now_tick > st.tick {
                st.tick = now_tick;
                st.seq = 0;
            } else {
                st.seq += 1;
                if st.seq >= self.format.sequences_per_tick() {
                    st.tick += 1;
                    st.seq = 0;
                }
            }
            (st.tick, st.seq)
        };
        let middle = (seq << self.format.pid_bits()) | self.pid;
        MessageId::from_parts(self.format, tick / tps, middle, tick % tps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn classic_re(s: &str) -> bool {
        // \d[A-Za-z0-9]{5}-[A-Za-z0-9]{6}-[A-Za-z0-9]{2}
        let b = s.as_bytes();
        b.len() == 16
            && b[0].is_ascii_digit()
            && b[1..6].iter().all(u8::is_ascii_alphanumeric)
            && b[6] == b'-'
            && b[7..13].iter().all(u8::is_ascii_alphanumeric)
            && b[13] == b'-'
            && b[14..16].iter().all(u8::is_ascii_alphanumeric)
    }

    fn long_re(s: &str) -> bool {
        // \d[A-Za-z0-9]{5}-[A-Za-z0-9]{11}-[A-Za-z0-9]{4}
        let b = s.as_bytes();
        b.len() == 23
            && b[0].is_ascii_digit()
            && b[1..6].iter().all(u8::is_ascii_alphanumeric)
            && b[6] == b'-'
            && b[7..18].iter().all(u8::is_ascii_alphanumeric)
            && b[18] == b'-'
            && b[19..23].iter().all(u8::is_ascii_alphanumeric)
    }

    #[test]
    fn parses_test_suite_ids() {
        let id: MessageId = "10HmaX-0005vi-00".parse().unwrap();
        assert_eq!(id.format(), IdFormat::Classic);
        assert_eq!(id.to_string(), "10HmaX-0005vi-00");
        // 0005vi = 5*62^2 + 57*62 + 44 = 22798
        assert_eq!(id.pid(), 22798);
        let id: MessageId = "10HmaX-000000005vi-0000".parse().unwrap();
        assert_eq!(id.format(), IdFormat::Long);
        assert_eq!(id.pid(), 22798);
        assert_eq!(id.as_str(), "10HmaX-000000005vi-0000");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            "10HmaX-0005vi-0".parse::<MessageId>(),
            Err(IdParseError::BadLength(15))
        );
        assert_eq!(
            "10HmaX_0005vi-00".parse::<MessageId>(),
            Err(IdParseError::MissingHyphen(6))
        );
        assert_eq!(
            "10HmaX-0005v!-00".parse::<MessageId>(),
            Err(IdParseError::BadDigit(12))
        );
        assert!("10HmaX-000000005vi-000é".parse::<MessageId>().is_err());
    }

    #[test]
    fn generated_ids_match_harness_patterns() {
        for format in [IdFormat::Classic, IdFormat::Long] {
            let g = IdGenerator::new(format);
            for _ in 0..1000 {
                let id = g.next();
                let s = id.to_string();
                match format {
                    IdFormat::Classic => assert!(classic_re(&s), "{s}"),
                    IdFormat::Long => assert!(long_re(&s), "{s}"),
                }
                assert_eq!(
                    id.pid() as u64,
                    u64::from(std::process::id()) & ((1 << format.pid_bits()) - 1)
                );
                assert_eq!(s.parse::<MessageId>().unwrap(), id);
            }
        }
    }

    #[test]
    fn time_field_is_now() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let id = IdGenerator::new(IdFormat::Classic).next();
        assert!(id.time().abs_diff(now) <= 2, "{} vs {now}", id.time());
    }

    #[test]
    fn first_id_of_a_tick_has_plain_pid_middle() {
        let g = IdGenerator::with_pid(IdFormat::Classic, 22798);
        let id = g.next();
        assert_eq!(&id.as_str()[7..13], "0005vi");
    }

    #[test]
    fn unique_and_increasing_under_threads() {
        for format in [IdFormat::Classic, IdFormat::Long] {
            let g = Arc::new(IdGenerator::new(format));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let g = Arc::clone(&g);
                    std::thread::spawn(move || {
                        let v: Vec<MessageId> = (0..50_000).map(|_| g.next()).collect();
                        // Each thread sees strictly increasing ids.
                        assert!(v.windows(2).all(|w| w[0] < w[1]));
                        v
                    })
                })
                .collect();
            let mut all = HashSet::new();
            for h in handles {
                for id in h.join().unwrap() {
                    assert!(all.insert(id), "duplicate {id}");
                }
            }
            assert_eq!(all.len(), 400_000);
        }
    }

    #[test]
    fn different_pids_never_collide() {
        let a = IdGenerator::with_pid(IdFormat::Classic, 100);
        let b = IdGenerator::with_pid(IdFormat::Classic, 101);
        let ia: HashSet<_> = (0..20_000).map(|_| a.next()).collect();
        assert!((0..20_000).map(|_| b.next()).all(|id| !ia.contains(&id)));
    }

    proptest! {
        #[test]
        fn parts_roundtrip(time in 0u64..62u64.pow(6), pid in 0u32..(1 << 22), seq in 0u64..13_542, frac in 0u64..2000) {
            let middle = (seq << 22) | u64::from(pid);
            let id = MessageId::from_parts(IdFormat::Classic, time, middle, frac);
            prop_assert_eq!(id.time(), time);
            prop_assert_eq!(id.middle(), u128::from(middle));
            prop_assert_eq!(id.fraction(), frac);
            prop_assert_eq!(id.pid(), pid);
            let back: MessageId = id.to_string().parse().unwrap();
            prop_assert_eq!(back, id);
        }

        #[test]
        fn order_follows_time_then_fraction(t1 in 0u64..1_000_000, t2 in 0u64..1_000_000, f1 in 0u64..2000, f2 in 0u64..2000, p1 in 0u64..1000, p2 in 0u64..1000) {
            let a = MessageId::from_parts(IdFormat::Classic, t1, p1, f1);
            let b = MessageId::from_parts(IdFormat::Classic, t2, p2, f2);
            prop_assert_eq!(a.cmp(&b), (t1, f1, p1).cmp(&(t2, f2, p2)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = s.parse::<MessageId>();
        }
    }
}
