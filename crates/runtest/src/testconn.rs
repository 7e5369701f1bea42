//! A fake connection for the scripted client's and server's unit tests.

use std::io::{self, Cursor, Read, Write};

/// Reads from a fixed buffer, records what is written.
pub(crate) struct Fake {
    pub(crate) input: Cursor<Vec<u8>>,
    pub(crate) sent: Vec<u8>,
}

impl Read for Fake {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
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
