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
/// Exit status when input from the server is left unread before sending.
pub const EXIT_UNCONSUMED: i32 = 78;

/// Exim's client escapes in script lines: `\n`, `\r`, `\xHH`; any other
/// backslashed character stands for itself.
pub fn unescape(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b'x' if i + 3 < b.len() => {
                    out.push((hex(b[i + 2]) << 4) | hex(b[i + 3]));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

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
    /// An option Exim's client does not have.
    #[error("Unrecognized option {0}")]
    BadOption(String),
}

/// Parsed client arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Read timeout.
    pub timeout: Duration,
    /// TLS client (`--tls`, given by the runner for `client-ssl` etc.).
    pub tls: bool,
    /// `-tls-on-connect`: handshake before the script starts.
    pub tls_on_connect: bool,
    /// `-tls-quiet`: no "Failed to start TLS" line.
    pub tls_quiet: bool,
    /// Client certificate and key files (after IP, port and interface).
    pub cert: Option<std::path::PathBuf>,
    /// Key file (defaults to the certificate file).
    pub key: Option<std::path::PathBuf>,
}

impl ClientArgs {
    /// Parse `[--tls] [-tls-on-connect] [-tls-quiet] [-ocsp] [-t SECS | -tSECS]
    /// IP PORT [INTERFACE] [CERT [KEY]]`.
    pub fn parse(args: &[String]) -> Result<ClientArgs, ClientArgsError> {
        let mut timeout = Duration::from_secs(5);
        let mut positional = Vec::new();
        let (mut tls, mut tls_on_connect, mut tls_quiet) = (false, false, false);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if !positional.is_empty() || !a.starts_with('-') {
                positional.push(a.clone());
                continue;
            }
            match a.as_str() {
                "-t" => {
                    let v = it.next().ok_or(ClientArgsError::Usage)?;
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| ClientArgsError::BadTimeout(v.clone()))?;
                    timeout = Duration::from_secs(secs.max(1));
                }
                "--tls" => tls = true,
                "-tls-on-connect" => tls_on_connect = true,
                "-tls-quiet" => tls_quiet = true,
                // OCSP stapling is not checked by this client.
                "-ocsp" => {}
                t if t.starts_with("-t") && t[2..].bytes().all(|b| b.is_ascii_digit()) => {
                    let secs: u64 = t[2..]
                        .parse()
                        .map_err(|_| ClientArgsError::BadTimeout(t.to_string()))?;
                    timeout = Duration::from_secs(secs.max(1));
                }
                other => return Err(ClientArgsError::BadOption(other.to_string())),
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
        let mut rest = positional[2..].iter().peekable();
        // An outgoing interface (ignored: the sandbox has one address per family).
        if rest
            .peek()
            .is_some_and(|a| a.starts_with(|c: char| c.is_ascii_digit() || c == ':'))
        {
            rest.next();
        }
        let cert = rest.next().map(std::path::PathBuf::from);
        let key = rest.next().map(std::path::PathBuf::from);
        Ok(ClientArgs {
            addr: SocketAddr::new(ip, port),
            timeout,
            tls,
            tls_on_connect,
            tls_quiet,
            cert,
            key,
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

/// Starts TLS on the session's stream after a 2xx answer to `STARTTLS`.
pub type Upgrade<'a, S> = &'a mut dyn FnMut(S) -> io::Result<S>;

/// Run a client script against an already connected stream. Returns the exit status.
pub fn run_session<S: io::Read + Write>(
    stream: S,
    script: impl BufRead,
    out: &mut impl Write,
) -> io::Result<i32> {
    run_session_tls(stream, script, out, None, false)
}

/// [`run_session`] with a TLS upgrade for `STARTTLS` (`quiet`: no
/// "Failed to start TLS" line).
pub fn run_session_tls<S: io::Read + Write>(
    stream: S,
    script: impl BufRead,
    out: &mut impl Write,
    mut upgrade: Option<Upgrade<'_, S>>,
    quiet: bool,
) -> io::Result<i32> {
    let mut reader = BufReader::new(stream);
    let mut pending: Option<String> = None;
    let mut sent_starttls = false;
    for line in script.lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("???") {
            writeln!(out, "{line}")?;
            if rest.starts_with('*') {
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
            let mut got = match pending.take() {
                Some(l) => Read::Line(l),
                None => read_line(&mut reader)?,
            };
            // `????X` keeps matching while more input is already at hand
            // (Exim's client consumes the rest of its buffer that way).
            if optional {
                while let Read::Line(l) = &got {
                    if !l.starts_with(want) || reader.buffer().is_empty() {
                        break;
                    }
                    writeln!(out, "<<< {l}")?;
                    got = read_line(&mut reader)?;
                }
            }
            match got {
                Read::Line(l) if l.starts_with(want) => {
                    writeln!(out, "<<< {l}")?;
                    if std::mem::take(&mut sent_starttls) && l.starts_with('2') {
                        if let Some(up) = upgrade.as_mut() {
                            writeln!(out, "Attempting to start TLS")?;
                            out.flush()?;
                            match up(reader.into_inner()) {
                                Ok(s) => {
                                    writeln!(out, "Succeeded in starting TLS")?;
                                    reader = BufReader::new(s);
                                }
                                Err(e) => {
                                    if !quiet {
                                        writeln!(out, "Failed to start TLS")?;
                                    }
                                    eprintln!("client: TLS handshake: {e}");
                                    return Ok(EXIT_MISMATCH);
                                }
                            }
                        }
                    }
                }
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
            writeln!(out, "{line}")?;
            let secs: f64 = secs.trim().parse().unwrap_or(0.0);
            std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
        } else {
            // `>>> text`: sent without CRLF; the 2019 client's `\NONL\` likewise.
            let (text, eol) = if let Some(t) = line.strip_prefix(">>> ") {
                (t, "")
            } else if let Some(t) = line.strip_suffix("\\NONL\\") {
                (t, "")
            } else {
                (line.as_str(), "\r\n")
            };
            if let Some(unread) = pending.take().or_else(|| {
                let b = reader.buffer();
                (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
            }) {
                writeln!(out, "Unconsumed input: {unread}")?;
                writeln!(out, "   About to send: {text}")?;
                return Ok(EXIT_UNCONSUMED);
            }
            // `starttls_wait` sends STARTTLS without starting TLS afterwards.
            let text = if text == "starttls_wait" {
                "starttls"
            } else {
                text
            };
            sent_starttls = (text == "starttls" || text == "STARTTLS") && line != "starttls_wait";
            writeln!(out, ">>> {text}")?;
            let bytes = unescape(format!("{text}{eol}").as_bytes());
            let stream = reader.get_mut();
            if let Err(e) = stream.write_all(&bytes).and_then(|()| stream.flush()) {
                writeln!(out, "Write error: {e}")?;
                return Ok(EXIT_MISMATCH);
            }
        }
    }
    writeln!(out, "End of script")?;
    Ok(0)
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
    let status = if args.tls {
        let cfg = crate::clienttls::config(args.cert.as_deref(), args.key.as_deref())?;
        let peer = args.addr.ip();
        let mut conn = crate::clienttls::Conn::Plain(stream);
        if args.tls_on_connect {
            writeln!(out, "Attempting to start TLS")?;
            out.flush()?;
            match crate::clienttls::start(conn, &cfg, peer) {
                Ok(c) => {
                    writeln!(out, "Succeeded in starting TLS")?;
                    conn = c;
                }
                Err(e) => {
                    if !args.tls_quiet {
                        writeln!(out, "Failed to start TLS")?;
                    }
                    eprintln!("client: TLS handshake: {e}");
                    return Ok(EXIT_MISMATCH);
                }
            }
        }
        let mut up = |c| crate::clienttls::start(c, &cfg, peer);
        run_session_tls(conn, script, out, Some(&mut up), args.tls_quiet)?
    } else {
        run_session(stream, script, out)?
    };
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

    /// A peer whose whole answer arrives in one read.
    struct Burst(Cursor<Vec<u8>>);

    impl io::Read for Burst {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Burst {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn optional_line_consumes_buffered_matches() {
        let burst = Burst(Cursor::new(
            b"250-a\r\n250-b\r\n250 c\r\n220 go\r\n".to_vec(),
        ));
        let mut o = Vec::new();
        let status = run_session(burst, Cursor::new("????250\n??? 220\n"), &mut o).unwrap();
        let out = String::from_utf8(o).unwrap();
        assert_eq!(status, 0, "{out}");
        assert_eq!(
            out,
            "????250\n<<< 250-a\n<<< 250-b\n<<< 250 c\n??? 220\n<<< 220 go\nEnd of script\n"
        );
    }

    #[test]
    fn escapes_and_raw_lines() {
        assert_eq!(unescape(b"a\\r\\nb\\x41\\\\"), b"a\r\nbA\\".to_vec());
        let (status, out) = session("", ">>> MAIL\\r\\n\n");
        assert_eq!(status, 0, "{out}");
        assert_eq!(out, ">>> MAIL\\r\\n\nEnd of script\n");
        let (status, out) = session("220 a\r\n250 b\r\n", "???? 220\n???? 220\nQUIT\n");
        assert_eq!(status, EXIT_UNCONSUMED, "{out}");
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
