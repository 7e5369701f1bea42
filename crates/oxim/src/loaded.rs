//! A message in memory on its way through delivery, with the msglog lines
//! it has produced and not yet written.

use oxim_spool::{Envelope, Header, Spool};

/// A message loaded for delivery.
pub struct Loaded {
    pub env: Envelope,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// msglog lines not yet written to `msglog/<id>`.
    pub msglog: std::sync::Mutex<Vec<String>>,
}

impl Loaded {
    pub fn new(env: Envelope, headers: Vec<Header>, body: Vec<u8>) -> Self {
        Loaded {
            env,
            headers,
            body,
            msglog: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Keep a msglog line until the end of this delivery attempt.
    pub fn note_msglog(&self, line: String) {
        if let Ok(mut v) = self.msglog.lock() {
            v.push(line);
        }
    }

    /// Write the pending msglog lines (one append).
    pub fn flush_msglog(&self, spool: &Spool) {
        let lines = match self.msglog.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return,
        };
        if !lines.is_empty() {
            let _ = spool.append_msglog(&self.env.id, lines.concat().trim_end_matches('\n'));
        }
    }

    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| h.is_live()) {
            out.extend_from_slice(h.text.as_bytes());
        }
        out
    }
}
