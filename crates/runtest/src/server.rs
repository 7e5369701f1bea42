//! Scripted SMTP server (`oxim-runtest server [-oP PIDFILE] PORT [COUNT]`),
//! compatible with the output format of Exim's test `server` program.
//!
//! Script lines (from stdin, one connection's script ends at `++++`):
//! - a line starting with a digit: send it (plus CRLF) and echo it;
//! - `*sleep N`: echo, then sleep N seconds;
//! - `*eof`: expect the client to close the connection;
//! - `.`: read and echo client lines up to and including a lone `.`;
//! - anything else: read a client line, echo it (trailing white space
//!   removed) and check that it starts with the script text.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Exit status on timeout (no connection, or no client line in time).
pub const EXIT_TIMEOUT: i32 = 99;
/// Exit status when a client line does not match the script.
pub const EXIT_MISMATCH: i32 = 1;

/// Bad command-line arguments for the server.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ServerArgsError {
    /// Missing port.
    #[error("usage: server [-t SECS] [-oP PIDFILE] PORT [COUNT]")]
    Usage,
    /// Not a number.
    #[error("server: bad number {0:?}")]
    BadNumber(String),
    /// An option or mode of Exim's `server` this one does not have.
    #[error("server: {0} is not implemented in oxim-runtest")]
    Unsupported(String),
}

/// Parsed server arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Port to listen on (all IPv4 addresses).
    pub port: u16,
    /// Number of connections to serve.
    pub count: usize,
    /// Write our pid here once listening.
    pub pidfile: Option<PathBuf>,
    /// Timeout for accept and reads.
    pub timeout: Duration,
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, ServerArgsError> {
    s.parse()
        .map_err(|_| ServerArgsError::BadNumber(s.to_string()))
}

impl ServerArgs {
    /// Parse `[-t SECS] [-oP PIDFILE] [-noipv6] PORT [COUNT]`.
    pub fn parse(args: &[String]) -> Result<ServerArgs, ServerArgsError> {
        let mut timeout = Duration::from_secs(5);
        let mut pidfile = None;
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-t" => {
                    let v = it.next().ok_or(ServerArgsError::Usage)?;
                    // Exim's server takes atoi() of it; zero or less means
                    // no timeout to speak of (the test's limit still applies).
                    let secs = number::<i64>(v)?;
                    timeout = Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(1));
                    if secs <= 0 {
                        timeout = Duration::from_secs(3600);
                    }
                }
                "-oP" => pidfile = Some(PathBuf::from(it.next().ok_or(ServerArgsError::Usage)?)),
                // Which address families to listen on: both are there anyway.
                "-noipv4" | "-noipv6" => {}
                s if s.starts_with('-') => {
                    return Err(ServerArgsError::Unsupported(format!("option {s}")))
                }
                _ => positional.push(a.as_str()),
            }
        }
        let first = positional.first().ok_or(ServerArgsError::Usage)?;
        if first.contains('/') {
            return Err(ServerArgsError::Unsupported(format!(
                "a unix-domain socket ({first})"
            )));
        }
        let port = number(first)?;
        let count = match positional.get(1) {
            Some(c) => number(c)?,
            None => 1,
        };
        Ok(ServerArgs {
            port,
            count,
            pidfile,
            timeout,
        })
    }
}

enum Got {
    Line(String),
    Eof,
    TimedOut,
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Got> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) => Ok(Got::Eof),
        Ok(_) => {
            let s = String::from_utf8_lossy(&buf);
            Ok(Got::Line(s.trim_end().to_string()))
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Got::TimedOut)
        }
        Err(e) => Err(e),
    }
}

/// Run one connection's script. Returns `Some(exit status)` to stop, `None` to go on.
pub fn run_session<S: io::Read + Write>(
    stream: S,
    script: &[String],
    out: &mut impl Write,
) -> io::Result<Option<i32>> {
    let mut reader = BufReader::new(stream);
    for line in script {
        let first = line.bytes().next();
        if first.is_some_and(|b| b.is_ascii_digit()) {
            writeln!(out, "{line}")?;
            let s = reader.get_mut();
            // The client may be gone already (e.g. it timed out); Exim's server
            // carries on, so do we.
            let _ = s
                .write_all(format!("{line}\r\n").as_bytes())
                .and_then(|()| s.flush());
        } else if let Some(secs) = line.strip_prefix("*sleep ") {
            writeln!(out, "{line}")?;
            out.flush()?;
            let secs: f64 = secs.trim().parse().unwrap_or(0.0);
            std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
        } else if line == "*eof" {
            match read_line(&mut reader)? {
                Got::Eof => writeln!(out, "Expected EOF read from client")?,
                Got::Line(l) => {
                    writeln!(out, "{l}")?;
                    writeln!(out, "Expected EOF not read")?;
                    return Ok(Some(EXIT_MISMATCH));
                }
                Got::TimedOut => {
                    writeln!(out, "Server timed out")?;
                    return Ok(Some(EXIT_TIMEOUT));
                }
            }
        } else if line == "." {
            loop {
                match read_line(&mut reader)? {
                    Got::Line(l) => {
                        writeln!(out, "{l}")?;
                        if l == "." {
                            break;
                        }
                    }
                    Got::Eof => {
                        writeln!(out, "Unexpected EOF read from client")?;
                        return Ok(Some(EXIT_MISMATCH));
                    }
                    Got::TimedOut => {
                        writeln!(out, "Server timed out")?;
                        return Ok(Some(EXIT_TIMEOUT));
                    }
                }
            }
        } else {
            match read_line(&mut reader)? {
                Got::Line(l) => {
                    writeln!(out, "{l}")?;
                    let matches = l.len() >= line.len()
                        && l.as_bytes()[..line.len()].eq_ignore_ascii_case(line.as_bytes());
                    if !matches {
                        writeln!(out, "Comparison failed - expected {line:?}")?;
                        return Ok(Some(EXIT_MISMATCH));
                    }
                }
                Got::Eof => {
                    writeln!(out, "Unexpected EOF read from client")?;
                    return Ok(Some(EXIT_MISMATCH));
                }
                Got::TimedOut => {
                    writeln!(out, "Server timed out")?;
                    return Ok(Some(EXIT_TIMEOUT));
                }
            }
        }
    }
    Ok(None)
}

/// Read one connection's script: lines up to `++++` (consumed) or end of input.
/// Returns `None` at end of input with nothing read. Never reads past `++++`,
/// so the caller may keep stdin open.
pub fn read_script(script: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut part = Vec::new();
    let mut any = false;
    loop {
        let mut line = String::new();
        if script.read_line(&mut line)? == 0 {
            return Ok(any.then_some(part));
        }
        any = true;
        let line = line.trim_end_matches(['\n', '\r']);
        if line == "++++" {
            return Ok(Some(part));
        }
        part.push(line.to_string());
    }
}

fn accept_with_timeout(
    listener: &TcpListener,
    timeout: Duration,
) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false)?;
                return Ok(Some((s, a)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Listen, serve `count` connections with the script read from `script`.
pub fn run(args: &ServerArgs, script: impl BufRead, out: &mut impl Write) -> io::Result<i32> {
    let listener = TcpListener::bind(("0.0.0.0", args.port))?;
    serve(&listener, args, script, out)
}

/// Serve on an already bound listener (`args.port` is only printed).
pub fn serve(
    listener: &TcpListener,
    args: &ServerArgs,
    mut script: impl BufRead,
    out: &mut impl Write,
) -> io::Result<i32> {
    if let Some(p) = &args.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    write!(out, "Listening on port {} ... ", args.port)?;
    out.flush()?;
    for _ in 0..args.count.max(1) {
        let Some((stream, peer)) = accept_with_timeout(listener, args.timeout)? else {
            writeln!(out, "\nServer timed out")?;
            return Ok(EXIT_TIMEOUT);
        };
        writeln!(out, "\nConnection request from [{}]", peer.ip())?;
        out.flush()?;
        stream.set_read_timeout(Some(args.timeout))?;
        let part = read_script(&mut script)?.unwrap_or_default();
        if let Some(status) = run_session(&stream, &part, out)? {
            return Ok(status);
        }
        writeln!(out, "End of script")?;
        out.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::testconn::Fake;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn echoes_session_and_data() {
        let mut fake = Fake {
            input: Cursor::new(
                b"EHLO me.example \r\nMAIL FROM:<a@b>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"
                    .to_vec(),
            ),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let r = run_session(
            &mut fake,
            &lines("220 ESMTP\nEHLO\n250 OK\nmail from\n250 OK\nDATA\n354 go\n.\n250 OK"),
            &mut out,
        )
        .unwrap();
        assert_eq!(r, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "220 ESMTP\nEHLO me.example\n250 OK\nMAIL FROM:<a@b>\n250 OK\nDATA\n354 go\nSubject: x\n\nbody\n.\n250 OK\n"
        );
        assert_eq!(
            String::from_utf8(fake.sent).unwrap(),
            "220 ESMTP\r\n250 OK\r\n250 OK\r\n354 go\r\n250 OK\r\n"
        );
    }

    #[test]
    fn mismatch_and_eof() {
        let mut fake = Fake {
            input: Cursor::new(b"HELO x\r\n".to_vec()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let r = run_session(&mut fake, &lines("EHLO"), &mut out).unwrap();
        assert_eq!(r, Some(EXIT_MISMATCH));
        let mut fake = Fake {
            input: Cursor::new(Vec::new()),
            sent: Vec::new(),
        };
        let r = run_session(&mut fake, &lines("QUIT"), &mut Vec::new()).unwrap();
        assert_eq!(r, Some(EXIT_MISMATCH));
    }

    #[test]
    fn splits_connections() {
        let mut input = Cursor::new("220 a\nQUIT\n++++\n220 b\n++++\n");
        assert_eq!(read_script(&mut input).unwrap(), Some(lines("220 a\nQUIT")));
        assert_eq!(read_script(&mut input).unwrap(), Some(lines("220 b")));
        assert_eq!(read_script(&mut input).unwrap(), None);
    }

    /// The real client against the real server over loopback.
    #[test]
    fn client_and_server_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let args = ServerArgs {
            port,
            count: 1,
            pidfile: None,
            timeout: Duration::from_secs(5),
        };
        let server = std::thread::spawn(move || {
            let mut out = Vec::new();
            let script = "220 hi\nEHLO\n250 ok\nDATA\n354 go\n.\n250 done\n++++\n";
            let status = serve(&listener, &args, Cursor::new(script), &mut out).unwrap();
            (status, String::from_utf8(out).unwrap())
        });
        let cargs =
            crate::client::ClientArgs::parse(&["127.0.0.1".into(), port.to_string()]).unwrap();
        let mut cout = Vec::new();
        let cstatus = crate::client::run(
            &cargs,
            Cursor::new("??? 220\nEHLO me\n??? 250\nDATA\n??? 354\nline\n.\n??? 250 done\n"),
            &mut cout,
        )
        .unwrap();
        let (sstatus, sout) = server.join().unwrap();
        let cout = String::from_utf8(cout).unwrap();
        assert_eq!(
            (cstatus, sstatus),
            (0, 0),
            "client:\n{cout}\nserver:\n{sout}"
        );
        assert_eq!(
            sout,
            format!("Listening on port {port} ... \nConnection request from [127.0.0.1]\n220 hi\nEHLO me\n250 ok\nDATA\n354 go\nline\n.\n250 done\nEnd of script\n")
        );
        assert!(cout.starts_with(&format!(
            "Connecting to 127.0.0.1 port {port} ... connected\n"
        )));
        assert!(
            cout.ends_with("??? 250 done\n<<< 250 done\nEnd of script\n"),
            "{cout}"
        );
    }

    #[test]
    fn times_out_without_a_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let args = ServerArgs {
            port: 1,
            count: 1,
            pidfile: None,
            timeout: Duration::from_secs(1),
        };
        let mut out = Vec::new();
        let status = serve(&listener, &args, Cursor::new("220 x\n"), &mut out).unwrap();
        assert_eq!(status, EXIT_TIMEOUT);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Listening on port 1 ... \nServer timed out\n"
        );
    }

    #[test]
    fn parses_args() {
        let a = ServerArgs::parse(&["-oP".into(), "/x/pid".into(), "1224".into()]).unwrap();
        assert_eq!(a.port, 1224);
        assert_eq!(a.count, 1);
        assert_eq!(a.pidfile, Some(PathBuf::from("/x/pid")));
        assert!(ServerArgs::parse(&[]).is_err());
        let n = ServerArgs::parse(&["-t".into(), "-2".into(), "1224".into()]).unwrap();
        assert_eq!(n.timeout, Duration::from_secs(3600));
        assert!(ServerArgs::parse(&["port".into()]).is_err());
    }
}
