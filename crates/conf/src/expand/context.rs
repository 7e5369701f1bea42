//! What an expansion may ask of its caller: variables, files, host
//! lookups; and a map-backed context for tests and tools.

use super::*;

/// Data available to an expansion.
pub trait ExpandContext {
    /// The value of variable `name` (without `$`), or `None` if it has no
    /// value. For header variables the name includes the trailing colon
    /// (`h_subject:`). When this returns `None`, a name that is one of
    /// Exim's variables (see [`crate::vars::is_known_variable`]) or a
    /// header expands to nothing; any other name is an
    /// [`ExpandError::UnknownVariable`].
    fn var(&self, name: &str) -> Option<String>;

    /// The elements `${authresults {sysname}}` puts after
    /// `Authentication-Results: sysname` (each `;\n\tmethod=result ...`:
    /// local submission, iprev, SMTP AUTH), from what the caller knows of
    /// the message or session. `None`: not available here (the item is
    /// refused as not supported).
    fn auth_results(&self, _sysname: &str) -> Option<String> {
        None
    }

    /// The content of a file, for lookups (`lsearch`). Default: none.
    fn read_file(&self, _path: &str) -> Option<String> {
        None
    }

    /// Whether a file exists (the `exists` condition). Default: false.
    fn file_exists(&self, _path: &str) -> bool {
        false
    }

    /// What kind of directory entry `path` is, without following a final
    /// symbolic link (the `dsearch` lookup). Default: none (not found).
    fn entry_kind(&self, _path: &str) -> Option<EntryKind> {
        None
    }

    /// The state behind the `first_delivery` and `queue_running`
    /// conditions, where the caller knows it. Default: unknown (the
    /// condition then fails as not supported in this context).
    fn state_flag(&self, _name: &str) -> Option<bool> {
        None
    }

    /// The numeric variables (`$0`, `$1`, ...) in force outside any
    /// `match` (an authenticator sets them from the client's data). A
    /// `match` in the string replaces them for its own branches. Default:
    /// none.
    fn numeric_vars(&self) -> Vec<String> {
        Vec::new()
    }

    /// Forward lookup of a host name, for host lists that contain plain
    /// names. `None` means "cannot resolve here"; the list matcher then
    /// compares the name with the host's verified name instead.
    fn host_addresses(&self, _name: &str) -> Option<Vec<IpAddr>> {
        None
    }

    /// Forward lookup of a plain host name in a host list, writing Exim's
    /// trace of it. `None`: not available here (see
    /// [`ExpandContext::host_addresses`]).
    fn find_host(&self, _name: &str, _trace: &mut crate::trace::Trace) -> Option<HostFind> {
        None
    }

    /// The client's host name and verified aliases, looked up when a host
    /// list first needs them (with Exim's trace); `Err` is the reason there
    /// is none. `None`: not available here.
    fn sender_host_names(
        &self,
        _trace: &mut crate::trace::Trace,
    ) -> Option<Result<Vec<String>, String>> {
        None
    }
}

/// The result of [`ExpandContext::find_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFind {
    /// The name's addresses.
    Found(Vec<IpAddr>),
    /// No such host (the text says so, for the list trace).
    NotFound(String),
    /// The lookup could not complete (the text says so).
    Again(String),
}

/// A directory entry's type, for `dsearch` and its `filter=` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symbolic link, device, socket...).
    Other,
}

/// A simple [`ExpandContext`] backed by maps (for tests and simple uses).
#[derive(Debug, Default, Clone)]
pub struct MapContext {
    /// Variables by name.
    pub vars: HashMap<String, String>,
    /// Files by path.
    pub files: HashMap<String, String>,
}

impl MapContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder: adds a variable.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Builder: adds a file.
    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

impl ExpandContext for MapContext {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn file_exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
    fn entry_kind(&self, path: &str) -> Option<EntryKind> {
        if self.files.contains_key(path) {
            return Some(EntryKind::File);
        }
        let dir = format!("{}/", path.trim_end_matches('/'));
        self.files
            .keys()
            .any(|k| k.starts_with(&dir))
            .then_some(EntryKind::Dir)
    }
}
