//! The trace of list matching and ACL evaluation that Exim writes in
//! host-checking mode (`-bh`): lines such as `host in "+relay_hosts"?`,
//! `list element: *`, `check hosts = ...`. A [`Trace`] is passed down to the
//! code being traced; when it is off (the normal case) every call returns
//! at once and no text is formatted. The trace only produces lines; where
//! they go is the caller's business (a [`TraceSink`]), so this crate stays
//! free of I/O.

use std::collections::HashMap;

/// Receives finished trace lines (indented, without a newline).
pub trait TraceSink: Send {
    /// One line of trace.
    fn line(&mut self, text: &str);
}

/// Collects lines in memory (for tests and callers that print later).
impl TraceSink for std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    fn line(&mut self, text: &str) {
        if let Ok(mut v) = self.lock() {
            v.push(text.to_string());
        }
    }
}

/// An optional trace with its current nesting level (Exim's ACL and list
/// nesting, shown as indentation).
#[derive(Default)]
pub struct Trace {
    sink: Option<Box<dyn TraceSink>>,
    /// Indentation level of the next line.
    pub level: usize,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("on", &self.sink.is_some())
            .field("level", &self.level)
            .finish()
    }
}

impl Trace {
    /// A trace that records nothing.
    pub fn off() -> Trace {
        Trace::default()
    }

    /// A trace writing to `sink`.
    pub fn to(sink: Box<dyn TraceSink>) -> Trace {
        Trace {
            sink: Some(sink),
            level: 0,
        }
    }

    /// Whether lines are being recorded.
    pub fn on(&self) -> bool {
        self.sink.is_some()
    }

    /// A line at the current level; `text` is only called when tracing.
    pub fn line(&mut self, text: impl FnOnce() -> String) {
        if let Some(s) = self.sink.as_mut() {
            let mut l = indent(self.level);
            l.push_str(&text());
            s.line(&l);
        }
    }

    /// A line without indentation.
    pub fn plain(&mut self, text: impl FnOnce() -> String) {
        if let Some(s) = self.sink.as_mut() {
            s.line(&text());
        }
    }
}

/// Exim's indentation: a dashed bar for every four levels, then spaces.
fn indent(level: usize) -> String {
    let mut s = String::new();
    for _ in 0..level / 4 {
        s.push_str("   \u{254e}");
    }
    for _ in 0..level % 4 {
        s.push(' ');
    }
    s
}

/// Results of named lists already matched for one subject (Exim caches
/// them per connection for hosts, per address for domains and local
/// parts), with the data the match produced.
#[derive(Debug, Clone, Default)]
pub struct ListCache {
    entries: HashMap<String, (bool, Option<String>)>,
}

impl ListCache {
    /// An empty cache.
    pub fn new() -> ListCache {
        ListCache::default()
    }

    /// The cached result for the named list `name`.
    pub fn get(&self, name: &str) -> Option<&(bool, Option<String>)> {
        self.entries.get(name)
    }

    /// Remembers the result for `name`.
    pub fn put(&mut self, name: &str, matched: bool, data: Option<String>) {
        self.entries.insert(name.to_string(), (matched, data));
    }

    /// Forgets everything (a new subject).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indentation_is_exims() {
        assert_eq!(indent(0), "");
        assert_eq!(indent(1), " ");
        assert_eq!(indent(4), "   \u{254e}");
        assert_eq!(indent(5), "   \u{254e} ");
        let mut t = Trace::off();
        t.line(|| unreachable!("not formatted when off"));
    }
}
