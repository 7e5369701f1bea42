//! Scripted SMTP server (`oxim-runtest server [-d] [-tls CERT KEY]
//! [-oP PIDFILE] PORT|/SOCKET [COUNT]`), compatible with the output format
//! of Exim's test `server` program.
//!
//! The script (stdin, up to `++++`) is one list of lines shared by the
//! connections in turn: a connection ends at `>*eof`, at the client's
//! EOF, or at the end of the script, and the next one carries on from
//! there. Script lines (`\xNN` in a line stands for that byte):
//! - a line starting with a digit: send it (plus CRLF) and echo it;
//! - `>TEXT` sends TEXT plus CRLF, `>>TEXT` without a line end, `>CR>TEXT`
//!   and `>LF>TEXT` with CR or LF only; `>*eof` closes the connection;
//! - `*sleep N`: echo, then sleep N seconds;
//! - `*starttls`: start TLS (server side) with the `-tls` certificate;
//! - `*eof`: expect the client to close the connection;
//! - `*data N`: read and discard N bytes (a BDAT chunk);
//! - `.`: read and echo client lines up to and including a lone `.`;
//! - anything else: read a client line, echo it (trailing white space
//!   removed) and check that it starts with the script text, byte for
//!   byte (`<` or `<<` before the text is echoed and compared too).
//!
//! As in Exim's server, the client's unexpected EOF ends the connection
//! and the script goes on with the next line for the next connection; a
//! line that does not match ends the connection too ("Comparison failed -
//! bailing out") and leaves the script at that line: the test then fails
//! on its output. Only a timeout stops the server with an error status.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::servertls::{self, ServerConn, StartTls};

/// Exit status on timeout (no connection, or no client line in time).
pub const EXIT_TIMEOUT: i32 = 99;
/// Exit status when a client line does not match the script.
pub const EXIT_MISMATCH: i32 = 1;

/// Bad command-line arguments for the server.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ServerArgsError {
    /// Missing port.
    #[error("usage: server [-d] [-tls CERT KEY] [-t SECS] [-oP PIDFILE] PORT|/SOCKET [COUNT]")]
    Usage,
    /// Not a number.
    #[error("server: bad number {0:?}")]
    BadNumber(String),
    /// An option or mode of Exim's `server` this one does not have.
    #[error("server: {0} is not implemented in oxim-runtest")]
    Unsupported(String),
}

/// Parsed server arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerArgs {
    /// Port to listen on (all IPv4 addresses); 0 with `socket`.
    pub port: u16,
    /// Unix-domain socket to listen on instead of a port.
    pub socket: Option<PathBuf>,
    /// Number of connections to serve.
    pub count: usize,
    /// Write our pid here once listening.
    pub pidfile: Option<PathBuf>,
    /// Timeout for accept and reads.
    pub timeout: Duration,
    /// `-d`: say what is being set up.
    pub debug: bool,
    /// `-tls CERT KEY`: certificate and key for `*starttls`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `-noipv4` given.
    pub no_ipv4: bool,
    /// `-noipv6` given.
    pub no_ipv6: bool,
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, ServerArgsError> {
    s.parse()
        .map_err(|_| ServerArgsError::BadNumber(s.to_string()))
}

impl ServerArgs {
    /// Parse `[-d] [-tls CERT KEY] [-t SECS] [-oP PIDFILE] [-noipv4|-noipv6]
    /// PORT|/SOCKET [COUNT]`.
    pub fn parse(args: &[String]) -> Result<ServerArgs, ServerArgsError> {
        let mut a = ServerArgs {
            timeout: Duration::from_secs(5),
            count: 1,
            ..ServerArgs::default()
        };
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-t" => {
                    let v = it.next().ok_or(ServerArgsError::Usage)?;
                    // Exim's server takes atoi() of it; zero or less means
                    // no timeout to speak of (the test's limit still applies).
                    let secs = number::<i64>(v)?;
                    a.timeout = Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(1));
                    if secs <= 0 {
                        a.timeout = Duration::from_secs(3600);
                    }
                }
                "-oP" => a.pidfile = Some(PathBuf::from(it.next().ok_or(ServerArgsError::Usage)?)),
                "-d" => a.debug = true,
                "-tls" => {
                    let cert = it.next().ok_or(ServerArgsError::Usage)?;
                    let key = it.next().ok_or(ServerArgsError::Usage)?;
                    a.tls = Some((PathBuf::from(cert), PathBuf::from(key)));
                }
                // Which address families to listen on: both are there anyway.
                "-noipv4" => a.no_ipv4 = true,
                "-noipv6" => a.no_ipv6 = true,
                s if s.starts_with('-') => {
                    return Err(ServerArgsError::Unsupported(format!("option {s}")))
                }
                _ => positional.push(arg.as_str()),
            }
        }
        let first = positional.first().ok_or(ServerArgsError::Usage)?;
        if first.starts_with('/') {
            a.socket = Some(PathBuf::from(first));
        } else {
            a.port = number(first)?;
        }
        if let Some(c) = positional.get(1) {
            a.count = number(c)?;
        }
        Ok(a)
    }
}

enum Got {
    Line(String),
    Eof,
    TimedOut,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Got> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) => Ok(Got::Eof),
        // A TLS peer that closes without close_notify has still closed.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Got::Eof),
        Ok(_) => {
            let s = String::from_utf8_lossy(&buf);
            Ok(Got::Line(s.trim_end().to_string()))
        }
        Err(e) if timed_out(&e) => Ok(Got::TimedOut),
        Err(e) => Err(e),
    }
}

/// A script line as Exim's server reads it: `\\xNN` is the byte NN and a
/// backslash before any other character stands for that character.
fn unescape(line: &str) -> Vec<u8> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'x')) => {
                let hex = b
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 4;
                    }
                    None => {
                        out.push(b'x');
                        i += 2;
                    }
                }
            }
            (b'\\', Some(&c)) => {
                out.push(c);
                i += 2;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Echo bytes as Exim's server does: printable ASCII as is, a backslash
/// doubled, anything else as `\xNN`.
fn printable(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &c in bytes {
        match c {
            b'\\' => s.push_str("\\\\"),
            b' '..=b'~' => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// How one connection's part of the script ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The connection is over; the script goes on with the next one.
    Connection,
    /// Stop the server with this exit status.
    Exit(i32),
}

/// Run the script from `*pos` on one connection, advancing `*pos`.
pub fn run_session<S: StartTls>(
    stream: S,
    script: &[String],
    pos: &mut usize,
    tls: Option<&Arc<rustls::ServerConfig>>,
    debug: bool,
    out: &mut impl Write,
) -> io::Result<Ended> {
    let mut reader = BufReader::new(stream);
    while let Some(line) = script.get(*pos) {
        *pos += 1;
        let first = line.bytes().next();
        if let Some(rest) = line.strip_prefix('>') {
            let raw = unescape(line);
            writeln!(out, "{}", printable(&raw))?;
            if rest.starts_with("*eof") {
                return Ok(Ended::Connection);
            }
            let (text, end): (&str, &[u8]) = if let Some(t) = rest.strip_prefix('>') {
                (t, b"")
            } else if let Some(t) = rest.strip_prefix("CR>") {
                (t, b"\r")
            } else if let Some(t) = rest.strip_prefix("LF>") {
                (t, b"\n")
            } else {
                (rest, b"\r\n")
            };
            let mut data = unescape(text);
            data.extend_from_slice(end);
            let s = reader.get_mut();
            let _ = s.write_all(&data).and_then(|()| s.flush());
        } else if first.is_some_and(|b| b.is_ascii_digit()) {
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
        } else if line.starts_with("*starttls") {
            let early = reader.buffer().to_vec();
            reader.consume(early.len());
            match reader.get_mut().start_tls(tls, &early) {
                Ok(cipher) => {
                    if debug {
                        writeln!(out, "SSL connection using {cipher}")?;
                    }
                }
                Err(e) => {
                    writeln!(out, "TLS start failed: {e}")?;
                    return Ok(Ended::Exit(EXIT_MISMATCH));
                }
            }
        } else if let Some(n) = line.strip_prefix("*data ") {
            // Read (and discard) that many bytes: a BDAT chunk.
            let mut left: usize = n.trim().parse().unwrap_or(0);
            while left > 0 {
                let got = match reader.fill_buf() {
                    Ok(b) => b.len().min(left),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                    Err(e) if timed_out(&e) => {
                        writeln!(out, "Server timed out")?;
                        return Ok(Ended::Exit(EXIT_TIMEOUT));
                    }
                    Err(e) => return Err(e),
                };
                if got == 0 {
                    writeln!(out, "Unexpected EOF read from client")?;
                    return Ok(Ended::Connection);
                }
                reader.consume(got);
                left -= got;
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
                        return Ok(Ended::Connection);
                    }
                    Got::TimedOut => {
                        writeln!(out, "Server timed out")?;
                        return Ok(Ended::Exit(EXIT_TIMEOUT));
                    }
                }
            }
        } else {
            // An expected client line (`*eof`: the client's close). A
            // leading `<` or `<<` is echoed and compared with the line.
            let prefix = if line.starts_with("<<") {
                "<<"
            } else if line.starts_with('<') {
                "<"
            } else {
                ""
            };
            match read_line(&mut reader)? {
                Got::Line(l) => {
                    let l = format!("{prefix}{l}");
                    writeln!(out, "{l}")?;
                    // Compared byte for byte, as Exim's server does.
                    if !l.as_bytes().starts_with(&unescape(line)) {
                        // Exim's server leaves the rest of the script to
                        // the next connection, from this line.
                        writeln!(out, "Comparison failed - bailing out")?;
                        writeln!(out, "Expected: {line}")?;
                        *pos -= 1;
                        return Ok(Ended::Connection);
                    }
                }
                Got::Eof => {
                    let un = if line.starts_with("*eof") { "E" } else { "Une" };
                    writeln!(out, "{un}xpected EOF read from client")?;
                    return Ok(Ended::Connection);
                }
                Got::TimedOut => {
                    writeln!(out, "Server timed out")?;
                    return Ok(Ended::Exit(EXIT_TIMEOUT));
                }
            }
        }
    }
    Ok(Ended::Connection)
}

/// Read the script: lines up to `++++` (consumed) or end of input.
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

/// Something that accepts connections, polled until a deadline.
trait Accept {
    fn nonblocking(&self) -> io::Result<()>;
    fn try_accept(&self) -> io::Result<(ServerConn, Option<SocketAddr>)>;
}

impl Accept for TcpListener {
    fn nonblocking(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
    fn try_accept(&self) -> io::Result<(ServerConn, Option<SocketAddr>)> {
        let (s, a): (TcpStream, SocketAddr) = self.accept()?;
        s.set_nonblocking(false)?;
        Ok((ServerConn::Tcp(s), Some(a)))
    }
}

impl Accept for UnixListener {
    fn nonblocking(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
    fn try_accept(&self) -> io::Result<(ServerConn, Option<SocketAddr>)> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(false)?;
        Ok((ServerConn::Unix(s), None))
    }
}

fn accept_with_timeout(
    listener: &impl Accept,
    timeout: Duration,
) -> io::Result<Option<(ServerConn, Option<SocketAddr>)>> {
    listener.nonblocking()?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.try_accept() {
            Ok(got) => return Ok(Some(got)),
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
    if let Some(path) = &args.socket {
        // Like Exim's server: replace a leftover socket, let anyone connect.
        let _ = std::fs::remove_file(path);
        if args.debug {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            writeln!(out, "{now}: Creating Unix domain socket")?;
            writeln!(out, "Binding Unix domain socket")?;
        }
        let listener = UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() | 0o777;
        if args.debug {
            writeln!(out, "Setting Unix domain socket mode: {mode:x}")?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let status = serve_on(&listener, args, script, out);
        let _ = std::fs::remove_file(path);
        return status;
    }
    if args.debug {
        if !args.no_ipv6 {
            writeln!(out, "Creating IPv6 socket")?;
        }
        if !args.no_ipv4 {
            writeln!(out, "Creating IPv4 socket")?;
        }
    }
    let listener = TcpListener::bind(("0.0.0.0", args.port))?;
    serve(&listener, args, script, out)
}

/// Serve on an already bound listener (`args.port` is only printed).
pub fn serve(
    listener: &TcpListener,
    args: &ServerArgs,
    script: impl BufRead,
    out: &mut impl Write,
) -> io::Result<i32> {
    serve_on(listener, args, script, out)
}

fn serve_on(
    listener: &impl Accept,
    args: &ServerArgs,
    mut script: impl BufRead,
    out: &mut impl Write,
) -> io::Result<i32> {
    let tls = match &args.tls {
        Some((cert, key)) => Some(servertls::config(cert, key)?),
        None => None,
    };
    if let Some(p) = &args.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))?;
    }
    let lines = read_script(&mut script)?.unwrap_or_default();
    let mut pos = 0;
    for _ in 0..args.count.max(1) {
        match &args.socket {
            Some(path) => write!(out, "Listening on {} ... ", path.display())?,
            None => write!(out, "Listening on port {} ... ", args.port)?,
        }
        out.flush()?;
        let Some((stream, peer)) = accept_with_timeout(listener, args.timeout)? else {
            writeln!(out, "\nServer timed out")?;
            return Ok(EXIT_TIMEOUT);
        };
        match peer {
            Some(p) => writeln!(out, "\nConnection request from [{}]", p.ip())?,
            None => writeln!(out, "\nConnection request")?,
        }
        out.flush()?;
        match &stream {
            ServerConn::Tcp(s) => s.set_read_timeout(Some(args.timeout))?,
            ServerConn::Unix(s) => s.set_read_timeout(Some(args.timeout))?,
            _ => {}
        }
        let ended = run_session(stream, &lines, &mut pos, tls.as_ref(), args.debug, out)?;
        out.flush()?;
        if let Ended::Exit(status) = ended {
            return Ok(status);
        }
    }
    if pos >= lines.len() {
        writeln!(out, "End of script")?;
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
            &lines("220 ESMTP\nEHLO\n250 OK\nMAIL FROM\n250 OK\nDATA\n354 go\n.\n250 OK"),
            &mut 0,
            None,
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(r, Ended::Connection);
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
        // A mismatch ends the connection and leaves the script at the line
        // that failed (Exim's server "bails out" to the next connection).
        let mut fake = Fake {
            input: Cursor::new(b"HELO x\r\n".to_vec()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let mut pos = 0;
        let r = run_session(&mut fake, &lines("EHLO"), &mut pos, None, false, &mut out).unwrap();
        assert_eq!((r, pos), (Ended::Connection, 0));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HELO x\nComparison failed - bailing out\nExpected: EHLO\n"
        );
        // The comparison is case-sensitive, as Exim's.
        let mut fake = Fake {
            input: Cursor::new(b"ehlo x\r\n".to_vec()),
            sent: Vec::new(),
        };
        let mut pos = 0;
        let r = run_session(
            &mut fake,
            &lines("EHLO"),
            &mut pos,
            None,
            false,
            &mut Vec::new(),
        );
        assert_eq!((r.unwrap(), pos), (Ended::Connection, 0));
        // An unexpected EOF goes on with the next line for the next
        // connection.
        let mut fake = Fake {
            input: Cursor::new(Vec::new()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let mut pos = 0;
        let r = run_session(
            &mut fake,
            &lines("QUIT\n250 OK"),
            &mut pos,
            None,
            false,
            &mut out,
        );
        assert_eq!((r.unwrap(), pos), (Ended::Connection, 1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Unexpected EOF read from client\n"
        );
    }

    #[test]
    fn data_lines_read_a_counted_chunk() {
        let mut fake = Fake {
            input: Cursor::new(b"BDAT 8 LAST\r\nab\r\ncd\r\nQUIT\r\n".to_vec()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let script = lines("BDAT 8 LAST\n*data 8\n250 OK\nQUIT\n*data 3\n221 bye");
        let mut pos = 0;
        let r = run_session(&mut fake, &script, &mut pos, None, false, &mut out).unwrap();
        assert_eq!((r, pos), (Ended::Connection, 5));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "BDAT 8 LAST\n250 OK\nQUIT\nUnexpected EOF read from client\n"
        );
        assert_eq!(fake.sent, b"250 OK\r\n");
    }

    #[test]
    fn send_lines_and_escapes() {
        let mut fake = Fake {
            input: Cursor::new(Vec::new()),
            sent: Vec::new(),
        };
        let mut out = Vec::new();
        let script = lines(">LF>A\\x0d\n>>B\\\\\n>CR>C\n>D\n>*eof\n220 next");
        let mut pos = 0;
        let r = run_session(&mut fake, &script, &mut pos, None, false, &mut out).unwrap();
        assert_eq!(r, Ended::Connection);
        assert_eq!(pos, 5, "the next connection starts after >*eof");
        assert_eq!(fake.sent, b"A\r\nB\\C\rD\r\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ">LF>A\\x0d\n>>B\\\\\n>CR>C\n>D\n>*eof\n"
        );
    }

    #[test]
    fn parses_socket_debug_and_tls() {
        let a = ServerArgs::parse(&[
            "-d".into(),
            "-tls".into(),
            "/c".into(),
            "/k".into(),
            "/dir/sock".into(),
            "9".into(),
        ])
        .unwrap();
        assert!(a.debug);
        assert_eq!(a.tls, Some((PathBuf::from("/c"), PathBuf::from("/k"))));
        assert_eq!(a.socket, Some(PathBuf::from("/dir/sock")));
        assert_eq!(a.count, 9);
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
            timeout: Duration::from_secs(5),
            ..ServerArgs::default()
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
            timeout: Duration::from_secs(1),
            ..ServerArgs::default()
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
