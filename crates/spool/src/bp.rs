//! Queue listing in the format of `exim -bp`.
//!
//! ```text
//! 25m  2.9K 0t5C6f-0000c8-00 <alice@wonderland.fict.example>
//!           red.king@looking-glass.fict.example
//!         D white.rabbit@wonderland.fict.example
//!
//! ```
//!
//! Time on the queue (minutes up to 90, then hours up to 72, then days, each
//! right-aligned in two columns plus a unit letter), the size in five columns
//! (see [`format_size`]), the id, the sender in `<>` and ` *** frozen ***`
//! when frozen; then one line per recipient, indented, with `D` in column 9
//! for a delivered one; then an empty line.

use crate::spool::SpoolMessage;
use std::fmt::Write as _;

/// Which recipients a listing shows (`-bp`, `-bpu`, `-bpa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BpMode {
    /// `-bp`: every recipient, delivered ones marked `D`.
    #[default]
    All,
    /// `-bpu`: undelivered recipients only.
    Undelivered,
    /// `-bpa`: like `All`, plus delivered generated addresses marked `+D`.
    WithGenerated,
}

/// A size in five columns as Exim prints it: `  123`, ` 2.9K`, `  29K`,
/// ` 2.9M`, `  29M`.
pub fn format_size(size: u64) -> String {
    const K: u64 = 1024;
    const M: u64 = 1024 * 1024;
    if size < K {
        format!("{size:5}")
    } else if size < 10 * K {
        format!("{:4.1}K", size as f64 / K as f64)
    } else if size < M {
        format!("{:4}K", (size + 512) / K)
    } else if size < 10 * M {
        format!("{:4.1}M", size as f64 / M as f64)
    } else {
        format!("{:4}M", (size + M / 2) / M)
    }
}

/// The time-on-queue column: `25m`, ` 2h`, ` 4d`.
fn format_age(seconds: u64) -> String {
    let minutes = seconds / 60;
    if minutes > 90 {
        let hours = (minutes + 30) / 60;
        if hours > 72 {
            format!("{:2}d", (hours + 12) / 24)
        } else {
            format!("{hours:2}h")
        }
    } else {
        format!("{minutes:2}m")
    }
}

/// One message as `exim -bp` lists it, `now` being seconds since the epoch.
pub fn bp_format(msg: &SpoolMessage, now: u64, mode: BpMode) -> String {
    let env = &msg.envelope;
    let mut s = String::new();
    let _ = write!(
        s,
        "{} {} {} <{}>",
        format_age(now.saturating_sub(env.received_time)),
        format_size(msg.size()),
        env.id,
        env.sender
    );
    if env.frozen.is_some() {
        s.push_str(" *** frozen ***");
    }
    s.push('\n');
    for r in &env.recipients {
        if r.done && mode == BpMode::Undelivered {
            continue;
        }
        let _ = writeln!(
            s,
            "        {} {}",
            if r.done { 'D' } else { ' ' },
            r.address
        );
    }
    if mode == BpMode::WithGenerated {
        for a in &env.non_recipients {
            let _ = writeln!(s, "       +D {a}");
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(format_size(0), "    0");
        assert_eq!(format_size(999), "  999");
        assert_eq!(format_size(1023), " 1023");
        assert_eq!(format_size(2970), " 2.9K");
        assert_eq!(format_size(10 * 1024), "  10K");
        assert_eq!(format_size(1536 * 1024), " 1.5M");
        assert_eq!(format_size(50 * 1024 * 1024), "  50M");
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(25 * 60 + 59), "25m");
        assert_eq!(format_age(90 * 60), "90m");
        assert_eq!(format_age(91 * 60), " 2h");
        assert_eq!(format_age(72 * 3600), "72h");
        assert_eq!(format_age(80 * 3600), " 3d");
    }
}
