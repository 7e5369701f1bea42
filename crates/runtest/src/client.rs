//! Scripted SMTP client (`oxim-runtest client IP PORT`), compatible with the
//! output format of Exim's test `client` program (RUNTEST-NOTES section 1).
//!
//! Script lines (read from the given reader):
//! - `??? X`: read a line from the server, which must start with `X`;
//! - `????X`: like `???` but optional: a non-matching line is kept for later;
//! - `???*`: expect the server to close the connection;
//! - `+++ N`: sleep N seconds;
//! - anything else: send it followed by CRLF.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use thiserror::Error;

/// Exit status when a response does not match (`??? X`).
pub const EXIT_MISMATCH: i32 = 79;
/// Exit status when connecting fails.
pub const EXIT_CONNECT: i32 = 85;
/// Exit status on a read timeout.
pub const EXIT_TIMEOUT: i32 = 99;

/// Bad command-line arguments for the client.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClientArgsError {
    /// Missing IP or port.
    #[error("usage: client [-t SECS] IP PORT")]
    Usage,
    /// Not an IP address.
    #[error("client: bad IP address {0:?}")]
    BadIp(String),
    /// Not a port number.
    #[error("client: bad port {0:?}")]
    BadPort(String),
    /// Not a number of seconds.
    #[error("client: bad timeout {0:?}")]
    BadTimeout(String),
}

/// Parsed client arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Read timeout.
    pub timeout: Duration,
}

impl ClientArgs {
    /// Parse `[-t SECS] [-other-options...] IP PORT [...]`.
    pub fn parse(args: &[String]) -> Result<ClientArgs, ClientArgsError> {
        let mut timeout = Duration::from_secs(5);
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "-t" {
                let v = it.next().ok_or(ClientArgsError::Usage)?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| ClientArgsError::BadTimeout(v.clone()))?;
                timeout = Duration::from_secs(secs.max(1));
            } else if a.starts_with('-') && positional.is_empty() {
                // Other options of Exim's client (TLS etc.) are not supported; ignore.
            } else {
                positional.push(a.clone());
            }
        }
        let (ip, port) = match positional.as_slice() {
            [ip, port, ..] => (ip, port),
            _ => return Err(ClientArgsError::Usage),
        };
        let ip: IpAddr = ip.parse().map_err(|_| ClientArgsError::BadIp(ip.clone()))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ClientArgsError::BadPort(port.clone()))?;
        Ok(ClientArgs {
            addr: SocketAddr::new(ip, port),
            timeout,
        })
    }
}

enum Read {
    Line(String),
    Eof,
    TimedOut,
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Read> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) => Ok(Read::Eof),
        Ok(_) => {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            Ok(Read::Line(String::from_utf8_lossy(&buf).into_owned()))
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Read::TimedOut)
        }
        Err(e) => Err(e),
    }
}

/// Run a client script against an already connected stream. Returns the exit status.
pub fn run_session<S: io::Read + Write>(
    stream: S,
    script: impl BufRead,
    out: &mut impl Write,
) -> io::Result<i32> {
    let mut reader = BufReader::new(stream);
    let mut pending: Option<String> = None;
    for line in script.lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("???") {
            writeln!(out, "{line}")?;
            if rest == "*" {
                let got = match pending.take() {
                    Some(l) => Read::Line(l),
                    None => read_line(&mut reader)?,
                };
                match got {
                    Read::Eof => writeln!(out, "Expected EOF read")?,
                    Read::Line(l) => {
                        writeln!(out, "<<< {l}")?;
                        writeln!(out, "Expected EOF not read")?;
                        return Ok(EXIT_MISMATCH);
                    }
                    Read::TimedOut => {
                        writeln!(out, "Timed out")?;
                        return Ok(EXIT_TIMEOUT);
                    }
                }
                continue;
            }
            let (optional, want) = match rest.strip_prefix('?') {
                Some(w) => (true, w.trim_start()),
                None => (false, rest.trim_start()),
            };
            let got = match pending.take() {
                Some(l) => Read::Line(l),
                None => read_line(&mut reader)?,
            };
            match got {
                Read::Line(l) if l.starts_with(want) => writeln!(out, "<<< {l}")?,
                Read::Line(l) if optional => pending = Some(l),
                Read::Line(l) => {
                    writeln!(out, "<<< {l}")?;
                    writeln!(out, "Failed: expected {want:?}")?;
                    return Ok(EXIT_MISMATCH);
                }
                Read::Eof if optional => {}
                Read::Eof => {
                    writeln!(out, "Unexpected EOF read")?;
                    return Ok(EXIT_MISMATCH);
                }
                Read::TimedOut => {
                    writeln!(out, "Timed out")?;
                    return Ok(EXIT_TIMEOUT);
                }
            }
        } else if let Some(secs) = line.strip_prefix("+++ ") {
            let secs: f64 = secs.trim().parse().unwrap_or(0.0);
            std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
        } else {
            let (text, eol) = match line.strip_suffix("\\NONL\\") {
                Some(t) => (t, ""),
                None => (line.as_str(), "\r\n"),
            };
            writeln!(out, ">>> {text}")?;
            let stream = reader.get_mut();
            if let Err(e) = stream
                .write_all(&unescape(format!("{text}{eol}").as_bytes()))
                .and_then(|()| stream.flush())
            {
                writeln!(out, "Write error: {e}")?;
                return Ok(EXIT_MISMATCH);
            }
        }
    }
    writeln!(out, "End of script")?;
    Ok(0)
}

/// As Exim's test client does with what it sends: `\\n` and `\\r` become
/// LF and CR, `\\xHH` that byte, a backslash before any other byte just
/// that byte (so one script line can carry several pipelined commands).
fn unescape(line: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' || i + 1 >= line.len() {
            out.push(line[i]);
            i += 1;
            continue;
        }
        match line[i + 1] {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' if i + 3 < line.len() => {
                out.push(hex(line[i + 2]) << 4 | hex(line[i + 3]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 2;
    }
    out
}

/// Connect and run the script; prints Exim-style progress to `out`.
pub fn run(args: &ClientArgs, script: impl BufRead, out: &mut impl Write) -> io::Result<i32> {
    write!(
        out,
        "Connecting to {} port {} ... ",
        args.addr.ip(),
        args.addr.port()
    )?;
    out.flush()?;
    let stream = match TcpStream::connect_timeout(&args.addr, args.timeout) {
        Ok(s) => s,
        Err(e) => {
            writeln!(out, "failed: {e}")?;
            return Ok(EXIT_CONNECT);
        }
    };
    writeln!(out, "connected")?;
    stream.set_read_timeout(Some(args.timeout))?;
    let shutdown = stream.try_clone()?;
    let status = run_session(stream, script, out)?;
    // Half-close; the peer may already be gone, which is fine.
    let _ = shutdown.shutdown(std::net::Shutdown::Write);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::testconn::Fake;

    fn session(server: &str, script: &str) -> (i32, String) {
        let fake = Fake {
            input: Cursor::new(server.as_bytes().to_vec()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let status = run_session(fake, Cursor::new(script), &mut out).unwrap();
        (status, String::from_utf8(out).unwrap())
    }

    #[test]
    fn transcript_format() {
        let (status, out) = session(
            "220 hi there\r\n250-a\r\n250 b\r\n221 bye\r\n",
            "??? 220\nehlo x\n??? 250-\n??? 250\n\nquit\n??? 221\n???*\n",
        );
        assert_eq!(status, 0);
        assert_eq!(
            out,
            "??? 220\n<<< 220 hi there\n>>> ehlo x\n??? 250-\n<<< 250-a\n??? 250\n<<< 250 b\n>>> \n>>> quit\n??? 221\n<<< 221 bye\n???*\nExpected EOF read\nEnd of script\n"
        );
    }

    #[test]
    fn mismatch_fails_with_79() {
        let (status, out) = session("554 go away\r\n", "??? 220\n");
        assert_eq!(status, EXIT_MISMATCH);
        assert!(out.contains("<<< 554 go away"), "{out}");
    }

    #[test]
    fn optional_line_is_kept() {
        let (status, out) = session("220 x\r\n", "???? 250\n??? 220\n");
        assert_eq!(status, 0, "{out}");
        assert_eq!(out, "???? 250\n??? 220\n<<< 220 x\nEnd of script\n");
    }

    #[test]
    fn escapes_are_sent_as_exim_sends_them() {
        assert_eq!(unescape(b"EHLO a\\r\\nMAIL\r\n"), b"EHLO a\r\nMAIL\r\n");
        assert_eq!(unescape(b"\\x41\\\\b\\"), b"A\\b\\");
    }

    #[test]
    fn parses_args() {
        let a = ClientArgs::parse(&["127.0.0.1".into(), "1225".into()]).unwrap();
        assert_eq!(a.addr, "127.0.0.1:1225".parse().unwrap());
        assert_eq!(
            ClientArgs::parse(&["x".into(), "1".into()]),
            Err(ClientArgsError::BadIp("x".into()))
        );
        assert_eq!(
            ClientArgs::parse(&["1.2.3.4".into()]),
            Err(ClientArgsError::Usage)
        );
    }
}
