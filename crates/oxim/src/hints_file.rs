//! Small hints files kept as text (the callout cache, the EHLO cache): read
//! and rewritten whole under an exclusive lock on a separate lock file, the
//! new content written to a temporary file and renamed over the old one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Under an exclusive lock on `lock`, let `render` produce the new content
/// of `path` (it reads the current content itself, now that no one else
/// writes) and put it in place. Errors leave the old file: a cache that is
/// not updated only costs a later lookup.
pub fn locked_rewrite(lock: &Path, path: &Path, render: impl FnOnce(&mut Vec<u8>)) {
    let Ok(file) = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
    else {
        return;
    };
    let Ok(_guard) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) else {
        return;
    };
    let mut text = Vec::new();
    render(&mut text);
    let tmp = path.with_extension("tmp");
    let store = || -> std::io::Result<()> {
        File::create(&tmp)?.write_all(&text)?;
        fs::rename(&tmp, path)
    };
    let _ = store();
}
