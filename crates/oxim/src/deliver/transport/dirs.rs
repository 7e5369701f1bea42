//! The home and current directories of a local delivery (Exim's chapter
//! "Environment for running local transports").
//!
//! The home directory is the first of: the transport's `home_directory`,
//! the router's `transport_home_directory`, the password data when the
//! router had `check_local_user`, the router's `router_home_directory`.
//! The current directory is the transport's `current_directory`, else the
//! router's `transport_current_directory`, else the home directory, else
//! `/`. Both are expanded per address at transport time; a failure, or a
//! path that is not absolute, defers the address.

use crate::errno::Errno;
use crate::settings::TransportSpec;
use crate::vars::Vars;

use super::super::record::{local_error, Item};
use super::super::smtp::SmtpError;

/// Set `$home` in `v` for a delivery of `item` by `t`, and return the
/// directory the delivery runs in.
pub fn local_dirs(t: &TransportSpec, item: &Item, v: &mut Vars) -> Result<String, SmtpError> {
    let defer = local_error;
    let raw_home = t
        .home_directory
        .as_ref()
        .or(item.data.transport_home.as_ref());
    if let Some(raw) = raw_home {
        // Expanded with $home unset, in case it refers to it.
        let mut hv = v.clone();
        hv.unset("home");
        let home = oxim_conf::expand(raw, &hv).map_err(|e| {
            defer(
                Errno::ExpandFail,
                format!(
                    "home directory \"{raw}\" failed to expand for {} transport: {e}",
                    t.name
                ),
            )
        })?;
        if !home.starts_with('/') {
            return Err(defer(
                Errno::NotAbsolute,
                format!(
                    "home directory path \"{home}\" is not absolute for {} transport",
                    t.name
                ),
            ));
        }
        v.set("home", home);
    }
    let raw_cwd = t
        .current_directory
        .as_ref()
        .or(item.data.transport_current.as_ref());
    match raw_cwd {
        Some(raw) => {
            let cwd = oxim_conf::expand(raw, v).map_err(|e| {
                defer(
                    Errno::ExpandFail,
                    format!(
                        "current directory \"{raw}\" failed to expand for {} transport: {e}",
                        t.name
                    ),
                )
            })?;
            if !cwd.starts_with('/') {
                return Err(defer(
                    Errno::NotAbsolute,
                    format!(
                        "current directory path \"{cwd}\" is not absolute for {} transport",
                        t.name
                    ),
                ));
            }
            Ok(cwd)
        }
        None => Ok(v
            .get("home")
            .filter(|h| !h.is_empty())
            .unwrap_or("/")
            .to_string()),
    }
}

/// Whether this process (as the delivery's user) could make `dir` its
/// current directory, as Exim's delivery process does before running the
/// transport; its failure defers with Exim's words.
pub fn check_chdir(dir: &str) -> Result<(), SmtpError> {
    use nix::unistd::{faccessat, AccessFlags};
    let r = match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(nix::errno::Errno::ENOTDIR),
        Ok(_) => faccessat(
            nix::fcntl::AT_FDCWD,
            dir,
            AccessFlags::X_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        ),
        Err(e) => Err(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    r.map_err(|e| {
        let code = e as i32;
        let mut err = local_error(Errno::Os(code), format!("failed to chdir to {dir}"));
        err.errno_text = Some(crate::errno::io_text(&std::io::Error::from_raw_os_error(
            code,
        )));
        err
    })
}
