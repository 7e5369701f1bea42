//! A fake connection for the scripted client's and server's unit tests.

use std::io::{self, Cursor, Read, Write};

/// Reads from a fixed buffer, records what is written.
pub(crate) struct Fake {
    pub(crate) input: Cursor<Vec<u8>>,
    pub(crate) sent: Vec<u8>,
}

impl Read for Fake {
    /// One line per read, as a peer that answers command by command.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = usize::try_from(self.input.position()).unwrap_or(0);
        let rest = &self.input.get_ref()[pos.min(self.input.get_ref().len())..];
        let line = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let n = line.min(buf.len());
        self.input.read(&mut buf[..n])
    }
}

impl Write for Fake {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sent.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl crate::servertls::StartTls for Fake {
    fn start_tls(
        &mut self,
        _config: Option<&std::sync::Arc<rustls::ServerConfig>>,
        _early: &[u8],
    ) -> io::Result<String> {
        Err(io::Error::other("no TLS on a fake connection"))
    }
}
