//! Measure what TCP Fast Open saves on an SMTP transaction.
//!
//! [`measure_session`] opens one connection with [`oxim_net::connect`] (TFO
//! when asked), and times, from the first SYN, the arrival of the `220`
//! banner and of the `250` that accepts the message after `DATA`. The TFO
//! outcome the client judged ([`ClientTfo`]) is kept with the sample, so the
//! figures can be grouped per outcome ([`summarize`]) and expressed in round
//! trips of a separately measured RTT ([`measure_rtt`]).
//!
//! The `oxim-tfo-probe` binary drives this inside a private network
//! namespace with an oxim daemon and an emulated delay; see `README.md`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use oxim_net::{ClientTfo, ConnectOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a measurement failed. The underlying I/O error, where there is one,
/// is the [`std::error::Error::source`] (print the chain, e.g. with
/// anyhow's `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection could not be opened.
    #[error("connect to {addr}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed after the connection was up.
    #[error("{stage}: I/O error")]
    Io {
        /// What was being done.
        stage: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The server closed the connection.
    #[error("{stage}: connection closed by the server")]
    Closed {
        /// What was being waited for.
        stage: &'static str,
    },
    /// The server's reply was malformed or had an unexpected code.
    #[error("{stage}: unexpected reply {reply:?}")]
    Reply {
        /// What was being waited for.
        stage: &'static str,
        /// The reply text (all lines).
        reply: String,
    },
    /// The whole session took longer than allowed.
    #[error("session did not finish within {0:?}")]
    Timeout(Duration),
}

/// One complete SMTP reply: its code and its lines (without CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Every line of the reply as received.
    pub lines: Vec<String>,
}

impl Reply {
    /// True when one of the EHLO keyword lines is `kw` (case-insensitive).
    pub fn has_keyword(&self, kw: &str) -> bool {
        self.lines.iter().any(|l| {
            l.get(4..)
                .and_then(|t| t.split_whitespace().next())
                .is_some_and(|w| w.eq_ignore_ascii_case(kw))
        })
    }
}

/// Take one complete reply off the front of `buf`, if there is one.
/// `Ok(None)`: more bytes are needed. An error for a line that is not
/// `ddd` followed by `-`, space or end of line.
pub fn parse_reply(buf: &mut Vec<u8>) -> Result<Option<Reply>, String> {
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let raw = &buf[pos..pos + nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw).into_owned();
        pos += nl + 1;
        let code = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| line.clone())?;
        let sep = line.as_bytes().get(3).copied();
        if !matches!(sep, None | Some(b' ') | Some(b'-')) {
            return Err(line);
        }
        if let Some(first) = lines.first().map(|l: &String| l[..3].to_string()) {
            if first != line[..3] {
                return Err(line);
            }
        }
        lines.push(line);
        if sep != Some(b'-') {
            buf.drain(..pos);
            return Ok(Some(Reply { code, lines }));
        }
    }
}

/// What one session sends.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    /// Try TCP Fast Open.
    pub try_tfo: bool,
    /// `EHLO` argument.
    pub helo: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient.
    pub rcpt: String,
    /// Message body size in bytes (headers included), about.
    pub body_size: usize,
    /// Bound for the whole session.
    pub timeout: Duration,
}

impl Default for SessionOpts {
    fn default() -> Self {
        SessionOpts {
            try_tfo: true,
            helo: "probe.test".into(),
            from: "probe@probe.test".into(),
            rcpt: "sink@probe.test".into(),
            body_size: 1200,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One measured SMTP session.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What TFO did, as the client judged it.
    pub outcome: ClientTfo,
    /// First SYN to completed handshake.
    pub handshake: Duration,
    /// First SYN to the end of the `220` banner.
    pub to_banner: Duration,
    /// First SYN to the `250` that accepted the message.
    pub to_final: Duration,
    /// Whether `MAIL`, `RCPT` and `DATA` were pipelined.
    pub pipelined: bool,
    /// The final `250` line (it usually names the server's message id).
    pub final_reply: String,
    /// Segments the client retransmitted (`tcpi_total_retrans` after the
    /// final 250), when readable: explains an outlier.
    pub retransmits: Option<u32>,
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn reply(&mut self, stage: &'static str) -> Result<Reply, ProbeError> {
        loop {
            match parse_reply(&mut self.buf) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(line) => return Err(ProbeError::Reply { stage, reply: line }),
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|source| ProbeError::Io { stage, source })?;
            if n == 0 {
                return Err(ProbeError::Closed { stage });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn expect(&mut self, stage: &'static str, code: u16) -> Result<Reply, ProbeError> {
        let r = self.reply(stage).await?;
        if r.code != code {
            return Err(ProbeError::Reply {
                stage,
                reply: r.lines.join("\n"),
            });
        }
        Ok(r)
    }

    async fn send(&mut self, stage: &'static str, data: &[u8]) -> Result<(), ProbeError> {
        self.stream
            .write_all(data)
            .await
            .map_err(|source| ProbeError::Io { stage, source })
    }
}

/// A message of about `size` bytes with dot-stuffing-free lines, ending in
/// the `CRLF.CRLF` terminator.
pub fn message_body(size: usize) -> Vec<u8> {
    let mut m = String::from("Subject: oxim-tfo-probe\r\nFrom: probe@probe.test\r\n\r\n");
    let line = "The quick brown fox jumps over the lazy dog 0123456789.\r\n";
    while m.len() + line.len() <= size {
        m.push_str(line);
    }
    m.push_str(".\r\n");
    m.into_bytes()
}

/// Run one SMTP transaction against `addr` and time it.
pub async fn measure_session(addr: SocketAddr, o: &SessionOpts) -> Result<Sample, ProbeError> {
    match tokio::time::timeout(o.timeout, session(addr, o)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(o.timeout)),
    }
}

async fn session(addr: SocketAddr, o: &SessionOpts) -> Result<Sample, ProbeError> {
    let opts = ConnectOptions {
        try_tfo: o.try_tfo,
        timeout: o.timeout,
        bind: None,
        syn_data: Vec::new(),
    };
    let t0 = Instant::now();
    let connected = oxim_net::connect(addr, &opts)
        .await
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let handshake = connected.handshake_time();
    let (stream, outcome) = connected.into_parts();
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        stream,
        buf: Vec::new(),
    };
    c.expect("banner", 220).await?;
    let to_banner = t0.elapsed();
    c.send("EHLO", format!("EHLO {}\r\n", o.helo).as_bytes())
        .await?;
    let ehlo = c.expect("EHLO", 250).await?;
    let pipelined = ehlo.has_keyword("PIPELINING");
    let mail = format!("MAIL FROM:<{}>\r\n", o.from);
    let rcpt = format!("RCPT TO:<{}>\r\n", o.rcpt);
    if pipelined {
        c.send("MAIL/RCPT/DATA", format!("{mail}{rcpt}DATA\r\n").as_bytes())
            .await?;
        c.expect("MAIL", 250).await?;
        c.expect("RCPT", 250).await?;
    } else {
        c.send("MAIL", mail.as_bytes()).await?;
        c.expect("MAIL", 250).await?;
        c.send("RCPT", rcpt.as_bytes()).await?;
        c.expect("RCPT", 250).await?;
        c.send("DATA", b"DATA\r\n").await?;
    }
    c.expect("DATA", 354).await?;
    c.send("message", &message_body(o.body_size)).await?;
    let fin = c.expect("end of data", 250).await?;
    let to_final = t0.elapsed();
    let retransmits = oxim_net::tcp_info(&c.stream).ok().map(|i| i.total_retrans);
    // QUIT politely, but its answer is not part of the measurement.
    if c.send("QUIT", b"QUIT\r\n").await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.reply("QUIT")).await;
    }
    Ok(Sample {
        outcome,
        handshake,
        to_banner,
        to_final,
        pipelined,
        final_reply: fin.lines.join(" "),
        retransmits,
    })
}

/// The round-trip time to `addr`: the median time of `count` plain TCP
/// handshakes (no TFO), each connection closed at once.
pub async fn measure_rtt(addr: SocketAddr, count: usize) -> Result<Duration, ProbeError> {
    let mut v = Vec::new();
    for _ in 0..count.max(1) {
        let t0 = Instant::now();
        let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| ProbeError::Timeout(Duration::from_secs(10)))?
            .map_err(|source| ProbeError::Connect { addr, source })?;
        v.push(t0.elapsed());
        drop(s);
    }
    v.sort();
    Ok(v[v.len() / 2])
}

/// Median, minimum and maximum of a set of figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many.
    pub n: usize,
    /// Median (the upper middle one for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// `None` for an empty set (NaN values are ignored).
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Stats {
            n: v.len(),
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

/// A labelled sample: which phase of the run produced it.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// E.g. `no-cookie`, `cookie`.
    pub phase: String,
    /// The measurement.
    pub sample: Sample,
    /// What the server logged for it, when known (e.g. `cookie`, `none`).
    pub server: Option<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One line per connection: phase, client outcome, server outcome, banner
/// and final-250 times in ms and in round trips of `rtt`.
pub fn format_samples(samples: &[Labelled], rtt: Duration) -> String {
    let r = ms(rtt);
    let mut out = format!(
        "{:>3}  {:<10} {:<17} {:<12} {:>10} {:>6} {:>10} {:>6} {:>5}\n",
        "#", "phase", "client TFO", "server TFO", "banner ms", "RTTs", "250 ms", "RTTs", "retr"
    );
    for (i, l) in samples.iter().enumerate() {
        let s = &l.sample;
        let _ = writeln!(
            out,
            "{:>3}  {:<10} {:<17} {:<12} {:>10.1} {:>6.2} {:>10.1} {:>6.2} {:>5}",
            i + 1,
            l.phase,
            s.outcome.name(),
            l.server.as_deref().unwrap_or("?"),
            ms(s.to_banner),
            ms(s.to_banner) / r,
            ms(s.to_final),
            ms(s.to_final) / r,
            s.retransmits
                .map_or_else(|| "?".to_string(), |n| n.to_string()),
        );
    }
    out
}

/// Per (phase, client outcome): count and median/min/max of the time to
/// banner and to the final 250, in ms and round trips of `rtt`.
pub fn summarize(samples: &[Labelled], rtt: Duration) -> String {
    let r = ms(rtt);
    // Groups in order of first appearance (the order the phases ran in).
    let mut groups: Vec<((String, &'static str), Vec<&Sample>)> = Vec::new();
    for l in samples {
        let key = (l.phase.clone(), l.sample.outcome.name());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(&l.sample),
            None => groups.push((key, vec![&l.sample])),
        }
    }
    let mut out = format!("RTT {:.1} ms (median of plain TCP handshakes)\n", r);
    let _ = writeln!(
        out,
        "{:<10} {:<17} {:>3}  {:<34} final 250 ms median [min-max] (RTTs)",
        "phase", "client TFO", "n", "banner ms median [min-max] (RTTs)",
    );
    for ((phase, outcome), v) in &groups {
        let cell = |f: &dyn Fn(&Sample) -> Duration| {
            let xs: Vec<f64> = v.iter().map(|s| ms(f(s))).collect();
            match Stats::of(&xs) {
                Some(s) => format!(
                    "{:.1} [{:.1}-{:.1}] ({:.2})",
                    s.median,
                    s.min,
                    s.max,
                    s.median / r
                ),
                None => "-".into(),
            }
        };
        let line = format!(
            "{:<10} {:<17} {:>3}  {:<34} {}",
            phase,
            outcome,
            v.len(),
            cell(&|s| s.to_banner),
            cell(&|s| s.to_final),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The server's message id in a final `250 OK id=XXX` reply, if any.
pub fn server_message_id(final_reply: &str) -> Option<&str> {
    final_reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_multiline_replies() {
        let mut b = b"220 hi\r\n250-x\r\n250-PIPELINING\r\n250 SIZE 5\r\n25".to_vec();
        let r = parse_reply(&mut b).unwrap().unwrap();
        assert_eq!(r.code, 220);
        let r = parse_reply(&mut b).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines.len(), 3);
        assert!(r.has_keyword("pipelining"));
        assert!(!r.has_keyword("CHUNKING"));
        assert_eq!(parse_reply(&mut b).unwrap(), None);
        assert_eq!(b, b"25");
    }

    #[test]
    fn rejects_garbage_and_mixed_codes() {
        assert!(parse_reply(&mut b"hello\r\n".to_vec()).is_err());
        assert!(parse_reply(&mut b"250-a\r\n251 b\r\n".to_vec()).is_err());
        assert!(parse_reply(&mut b"2500\r\n".to_vec()).is_err());
    }

    #[test]
    fn stats_median_min_max() {
        let s = Stats::of(&[3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (3, 2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn body_is_terminated_and_about_the_size() {
        let b = message_body(1200);
        assert!(b.ends_with(b"\r\n.\r\n"));
        assert!((1100..1300).contains(&b.len()), "{}", b.len());
        assert!(!b.windows(5).take(b.len() - 5).any(|w| w == b"\r\n.\r\n"));
    }

    #[test]
    fn finds_message_id() {
        assert_eq!(server_message_id("250 OK id=1abc-00"), Some("1abc-00"));
        assert_eq!(server_message_id("250 OK"), None);
    }
}
