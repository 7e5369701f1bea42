//! The appendfile transport: mbox files (with locking) and maildir directories.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::loaded::Loaded;
use crate::settings::AppendSpec;
use crate::vars::Vars;

/// The envelope sender of this delivery (a router's errors_to, else the
/// message's sender).
pub(super) fn return_path<'a>(m: &'a Loaded, vars: &'a Vars) -> &'a str {
    vars.get("return_path").unwrap_or(&m.env.sender)
}

fn envelope_headers(spec: &AppendSpec, address: &str, m: &Loaded, vars: &Vars) -> String {
    let mut s = String::new();
    if spec.return_path_add {
        s.push_str(&format!("Return-path: <{}>\n", return_path(m, vars)));
    }
    if spec.envelope_to_add {
        s.push_str(&format!("Envelope-to: {address}\n"));
    }
    if spec.delivery_date_add {
        s.push_str(&format!(
            "Delivery-date: {}\n",
            crate::time::LocalTime::now().rfc2822()
        ));
    }
    s
}

/// Escape body lines that would look like an mbox separator.
fn mbox_escape(body: &[u8], out: &mut Vec<u8>) {
    let mut at_line_start = true;
    let mut i = 0;
    while i < body.len() {
        if at_line_start && body[i..].starts_with(b"From ") {
            out.push(b'>');
        }
        let b = body[i];
        out.push(b);
        at_line_start = b == b'\n';
        i += 1;
    }
}

/// Deliver one copy for `address`.
pub fn deliver(
    spec: &AppendSpec,
    address: &str,
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
) -> Result<()> {
    let env_headers = envelope_headers(spec, address, m, vars);
    let from = return_path(m, vars);
    if let Some(file) = &spec.file {
        let path = oxim_conf::expand(file, vars).context("failed to expand file")?;
        return append_mbox(spec, Path::new(&path), &env_headers, headers, m, from);
    }
    // A file a redirection named (file_transport without `file`).
    if let (None, Some(path)) = (&spec.directory, vars.get("address_file")) {
        return append_mbox(spec, Path::new(path), &env_headers, headers, m, from);
    }
    if let Some(dir) = &spec.directory {
        let path = oxim_conf::expand(dir, vars).context("failed to expand directory")?;
        return write_maildir(spec, Path::new(&path), &env_headers, headers, m);
    }
    Err(anyhow!("neither file nor directory is set"))
}

fn append_mbox(
    spec: &AppendSpec,
    path: &Path,
    env_headers: &str,
    headers: &[u8],
    m: &Loaded,
    from: &str,
) -> Result<()> {
    // Delivery to /dev/null succeeds without writing (as in Exim).
    if path == Path::new("/dev/null") {
        return Ok(());
    }
    // An existing mailbox must be a regular file: never append to, chmod
    // or lock a device, socket or FIFO that a configuration names.
    if let Ok(meta) = fs::metadata(path) {
        if !meta.file_type().is_file() {
            return Err(anyhow!("mailbox {} is not a regular file", path.display()));
        }
    }
    if let Some(parent) = path.parent() {
        if spec.create_directory && !parent.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("failed to create directory {}", parent.display()))?;
        }
    }
    let mut text = Vec::with_capacity(headers.len() + m.body.len() + 256);
    let sender = if from.is_empty() {
        "MAILER-DAEMON"
    } else {
        from
    };
    text.extend_from_slice(
        format!(
            "From {sender} {}\n",
            crate::time::LocalTime::now().bsd_inbox()
        )
        .as_bytes(),
    );
    text.extend_from_slice(env_headers.as_bytes());
    text.extend_from_slice(headers);
    text.push(b'\n');
    mbox_escape(&m.body, &mut text);
    text.push(b'\n');

    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(spec.mode)
        .open(path)
        .with_context(|| format!("failed to open mailbox {}", path.display()))?;
    // The transport's mode, whatever the umask: on a new file, and on an
    // existing one whose permissions are wider (Exim reduces them).
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(anyhow!("mailbox {} is not a regular file", path.display()));
        }
        let now = meta.permissions().mode() & 0o7777;
        if now != spec.mode && (now & !spec.mode != 0 || file.metadata()?.len() == 0) {
            file.set_permissions(fs::Permissions::from_mode(spec.mode))
                .with_context(|| format!("failed to set mode of {}", path.display()))?;
        }
    }
    // An exclusive advisory lock keeps concurrent deliveries from interleaving.
    let mut locked = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("failed to lock mailbox {}", path.display()))?;
    let before = locked.metadata()?.len();
    if let Err(e) = locked.write_all(&text).and_then(|_| locked.sync_data()) {
        // Leave the mailbox as it was: cut off whatever part was written.
        let _ = locked.set_len(before);
        return Err(
            anyhow::Error::new(e).context(format!("error writing mailbox {}", path.display()))
        );
    }
    Ok(())
}

fn write_maildir(
    spec: &AppendSpec,
    dir: &Path,
    env_headers: &str,
    headers: &[u8],
    m: &Loaded,
) -> Result<()> {
    for sub in ["tmp", "new", "cur"] {
        let d = dir.join(sub);
        if !d.exists() {
            if !spec.create_directory {
                return Err(anyhow!("directory {} does not exist", d.display()));
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)?;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!(
        "{}.H{}P{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        m.env.id
    );
    let tmp = dir.join("tmp").join(&name);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(spec.mode)
        .open(&tmp)?;
    f.write_all(env_headers.as_bytes())?;
    f.write_all(headers)?;
    f.write_all(b"\n")?;
    f.write_all(&m.body)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join("new").join(&name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_are_escaped() {
        let mut out = Vec::new();
        mbox_escape(b"From me\nhello\nFrom you\nnot From here\n", &mut out);
        assert_eq!(out, b">From me\nhello\n>From you\nnot From here\n");
    }
}
