//! Local-time formatting for headers and mailbox separators.

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A point in time with the system's time zone.
#[derive(Debug, Clone)]
pub struct LocalTime {
    at: SystemTime,
    ts: Timestamp,
    tz: TimeZone,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl LocalTime {
    pub fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub fn at(at: SystemTime) -> Self {
        LocalTime {
            at,
            ts: Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH),
            tz: TimeZone::system(),
        }
    }

    pub fn system_time(&self) -> SystemTime {
        self.at
    }

    pub fn epoch_secs(&self) -> u64 {
        u64::try_from(self.ts.as_second()).unwrap_or(0)
    }

    pub fn subsec_micros(&self) -> u32 {
        u32::try_from(self.ts.subsec_microsecond()).unwrap_or(0)
    }

    fn parts(&self) -> (jiff::civil::DateTime, i32) {
        let dt = self.tz.to_datetime(self.ts);
        let off = self.tz.to_offset(self.ts).seconds();
        (dt, off)
    }

    fn zone(off: i32) -> String {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
    }

    /// `Tue, 02 Mar 1999 09:44:33 +0000` (RFC 5322, as Exim's `$tod_full`: a two-digit day).
    pub fn rfc2822(&self) -> String {
        let (dt, off) = self.parts();
        let wd = DAYS[usize::from(dt.weekday().to_monday_zero_offset() as u8)];
        format!(
            "{wd}, {:02} {} {:04} {:02}:{:02}:{:02} {}",
            dt.day(),
            MONTHS[usize::try_from(dt.month() - 1).unwrap_or(0)],
            dt.year(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            Self::zone(off)
        )
    }

    /// `Tue Mar 02 09:44:33 1999` (`$tod_bsdinbox`, the mbox separator date).
    pub fn bsd_inbox(&self) -> String {
        let (dt, _) = self.parts();
        let wd = DAYS[usize::from(dt.weekday().to_monday_zero_offset() as u8)];
        format!(
            "{wd} {} {:02} {:02}:{:02}:{:02} {:04}",
            MONTHS[usize::try_from(dt.month() - 1).unwrap_or(0)],
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.year()
        )
    }

    /// `1999-03-02 09:44:33` (`$tod_log`).
    pub fn log_format(&self) -> String {
        oxim_log::format_timestamp(self.at, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_have_exim_shapes() {
        let t = LocalTime::now();
        let r = t.rfc2822();
        // "Www, d Mmm yyyy hh:mm:ss +zzzz"
        let parts: Vec<&str> = r.split(' ').collect();
        assert_eq!(parts.len(), 6, "{r}");
        assert!(parts[0].ends_with(','));
        assert!(parts[5].starts_with('+') || parts[5].starts_with('-'));
        let b = t.bsd_inbox();
        assert_eq!(b.split(' ').count(), 5, "{b}");
        assert_eq!(t.log_format().len(), 19);
    }
}
