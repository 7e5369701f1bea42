//! File access used by the preprocessor (`.include`) and by lookups.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Read access to configuration files. Parsing never touches the file
/// system directly; it goes through this trait so that it can be tested and
/// fuzzed with an in-memory implementation.
pub trait FileSource {
    /// Returns the whole content of `path` as text (invalid UTF-8 is
    /// replaced, as configuration files are expected to be text).
    fn read_to_string(&self, path: &Path) -> io::Result<String>;

    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// [`FileSource`] backed by `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl FileSource for StdFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// In-memory [`FileSource`], for tests and embedded configurations.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<PathBuf, String>,
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.files.insert(path.into(), text.into());
    }

    /// Builder form of [`MemFs::insert`].
    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.insert(path, text);
        self
    }
}

impl FileSource for MemFs {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
}
