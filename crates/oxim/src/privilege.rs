//! Who oxim runs as.
//!
//! - Started as root, oxim creates its spool and log directories owned by
//!   the exim user (`exim_user`/`exim_group`, default `Debian-exim` where it
//!   exists, else `mail`), then runs as that user: the daemon gives root up
//!   for good after binding its sockets (having started its delivery helper
//!   when deliveries may run as other users); the commands that deliver keep
//!   root only as their saved user id, to switch to the user a local
//!   delivery runs as ([`as_user`]); the others give it up for good.
//!   `exim_user = root` keeps root (with a warning).
//! - Deliveries to files and pipes never run as a uid in `never_users`
//!   (default `root`).
//! - An oxim installed setuid (euid differs from the real uid) gives up its
//!   privilege before reading the configuration when a caller other than
//!   root passes `-D`, or `-C` with a file that is not listed in
//!   [`TRUSTED_CONFIG_LIST`], as Exim does.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use nix::unistd::{Gid, Group, Uid, User};

use crate::cli::Invocation;
use crate::settings::MainSettings;

/// The file listing configuration files that keep privilege when named
/// with `-C` (one absolute path per line; `#` comments). It must be owned
/// by root and writable by nobody else, as must each file it names. Like
/// Exim's `TRUSTED_CONFIG_LIST` it is fixed when oxim is built (set
/// `OXIM_TRUSTED_CONFIG_LIST` at build time to change it): a setting in a
/// configuration file could not vouch for that file.
pub const TRUSTED_CONFIG_LIST: &str = match option_env!("OXIM_TRUSTED_CONFIG_LIST") {
    Some(p) => p,
    None => "/etc/oxim/trusted_configs",
};

/// Mode of directories oxim creates as root: the exim user's group may
/// read, other users are kept out.
const DIR_MODE: u32 = 0o750;

/// The exim user of Debian's build, the default when the system has it.
pub const DEBIAN_EXIM_USER: &str = "Debian-exim";

/// A user to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (uid={} gid={})", self.name, self.uid, self.gid)
    }
}

/// A user name or numeric uid: the uid and, for a name, its primary group.
pub fn find_user(text: &str) -> Result<(u32, Option<u32>, String)> {
    let text = text.trim();
    if let Ok(uid) = text.parse::<u32>() {
        let name = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        return Ok((uid, None, name));
    }
    match User::from_name(text) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), Some(u.gid.as_raw()), u.name)),
        Ok(None) => Err(anyhow!("user {text} was not found")),
        Err(e) => Err(anyhow!("cannot look up user {text}: {e}")),
    }
}

/// A group name or numeric gid.
pub fn find_group(text: &str) -> Result<u32> {
    let text = text.trim();
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(text) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(anyhow!("group {text} was not found")),
        Err(e) => Err(anyhow!("cannot look up group {text}: {e}")),
    }
}

/// A colon-separated list of users (`never_users`, `trusted_users`) as uids.
pub fn uid_list(text: &str) -> Result<Vec<u32>> {
    oxim_conf::lists::list_items(text)
        .iter()
        .filter(|i| !i.trim().is_empty())
        .map(|i| find_user(i).map(|(uid, _, _)| uid))
        .collect()
}

/// Whether the process has root's privileges (it may be setuid root).
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

/// The exim user and group from the configuration. Under the test harness
/// an unset `exim_user` means `$OXIM_TEST_EXIM_USER` (the runner's exim
/// user), else the caller.
pub fn exim_ids(settings: &MainSettings, harness: &crate::harness::Harness) -> Result<Ids> {
    let test_user = crate::harness::test_exim_user(harness).filter(|_| !settings.exim_user_set);
    let (uid, primary, name) = if let Some(u) = test_user {
        find_user(&u).map_err(|e| anyhow!("OXIM_TEST_EXIM_USER: {e}"))?
    } else if harness.active && !settings.exim_user_set {
        let uid = Uid::current().as_raw();
        let name = User::from_uid(Uid::current())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        (uid, Some(Gid::current().as_raw()), name)
    } else {
        // Unset: Debian's user when the system has it (as Debian's build
        // of Exim), else `mail`.
        let text = if settings.exim_user_set {
            settings.exim_user.as_str()
        } else if User::from_name(DEBIAN_EXIM_USER).ok().flatten().is_some() {
            DEBIAN_EXIM_USER
        } else {
            settings.exim_user.as_str()
        };
        find_user(text).map_err(|e| {
            anyhow!(
                "exim_user: {e}: oxim will not run as root without an unprivileged \
                 user to switch to; set exim_user (and exim_group) in the configuration \
                 (exim_user = root keeps root)"
            )
        })?
    };
    let gid = match settings.exim_group.as_deref() {
        Some(g) => find_group(g).map_err(|e| anyhow!("exim_group: {e}"))?,
        None => primary.ok_or_else(|| {
            anyhow!("exim_user is the numeric uid {uid}: exim_group must be set too")
        })?,
    };
    Ok(Ids { name, uid, gid })
}

/// Create `dir` and any missing parents, each owned by `ids` with mode 0750.
/// Existing directories are left as they are.
pub fn create_dir_owned(dir: &Path, ids: &Ids) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow!("cannot create directory {}: {e}", d.display())),
        }
        nix::unistd::chown(
            d.as_path(),
            Some(Uid::from_raw(ids.uid)),
            Some(Gid::from_raw(ids.gid)),
        )
        .with_context(|| format!("cannot give directory {} to {}", d.display(), ids.name))?;
    }
    Ok(())
}

/// Give up root for good: supplementary groups, then real, effective and
/// saved group and user ids. Checked afterwards; root cannot come back.
pub fn drop_to(ids: &Ids) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(ids.uid), Gid::from_raw(ids.gid));
    nix::unistd::setgroups(&[gid]).context("setgroups")?;
    nix::unistd::setresgid(gid, gid, gid).context("setresgid")?;
    nix::unistd::setresuid(uid, uid, uid).context("setresuid")?;
    let r = nix::unistd::getresuid().context("getresuid")?;
    let g = nix::unistd::getresgid().context("getresgid")?;
    if [r.real, r.effective, r.saved] != [uid; 3] || [g.real, g.effective, g.saved] != [gid; 3] {
        return Err(anyhow!("privileges were not dropped to {ids}"));
    }
    if ids.uid != 0 && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(anyhow!("root could be regained after dropping to {ids}"));
    }
    Ok(())
}

/// Give up root for the exim user but keep it as the saved user id, for a
/// process that delivers: real and effective ids become the exim user's
/// (spool, logs and remote deliveries run as it), and root comes back only
/// to switch to the user a local delivery runs as ([`as_user`]) or to
/// start a delivery process ([`with_root`]).
pub fn drop_keeping_root(ids: &Ids) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(ids.uid), Gid::from_raw(ids.gid));
    nix::unistd::setgroups(&[gid]).context("setgroups")?;
    nix::unistd::setresgid(gid, gid, gid).context("setresgid")?;
    nix::unistd::setresuid(uid, uid, Uid::from_raw(0)).context("setresuid")?;
    Ok(())
}

/// Whether root can be taken back (saved user id 0, or running as root).
pub fn can_regain_root() -> bool {
    nix::unistd::getresuid().is_ok_and(|r| r.effective.is_root() || r.saved.is_root())
}

/// Run `f` with root as effective user (when it was kept as the saved
/// id, in a process that may switch ids), then go back: a delivery process
/// started from here runs as root until it gives root up itself, and a
/// router's `require_files` sees what root sees, as in Exim.
pub fn with_root<T>(f: impl FnOnce() -> T) -> T {
    let euid = Uid::effective();
    if euid.is_root()
        || !USER_SWITCH.load(std::sync::atomic::Ordering::SeqCst)
        || !can_regain_root()
    {
        return f();
    }
    let _g = CREDS.lock();
    let (Ok(u), Ok(g)) = (nix::unistd::getresuid(), nix::unistd::getresgid()) else {
        return f();
    };
    // Real ids too: a process started meanwhile must not look like a
    // setuid program run by the exim user (which gives root up).
    let root = Uid::from_raw(0);
    let raised = nix::unistd::setresuid(root, root, root).is_ok();
    if raised {
        let r0 = Gid::from_raw(0);
        let _ = nix::unistd::setresgid(r0, r0, r0);
    }
    let r = f();
    if raised {
        let back = nix::unistd::setresgid(g.real, g.effective, g.saved)
            .and_then(|_| nix::unistd::setresuid(u.real, u.effective, u.saved));
        if let Err(e) = back {
            // Going on would leave this process root where it meant not to
            // be: stop here.
            eprintln!("oxim: cannot give root back: {e}");
            std::process::abort();
        }
    }
    r
}

/// Whether this process may switch its effective ids for a local delivery
/// (set for the commands that deliver on one thread: `-bs`, `-odi`, `-M`,
/// `-q`; not the daemon, whose deliveries run in processes of their own).
static USER_SWITCH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held while the effective ids are switched, and by spool work that may
/// run on another thread meanwhile (the ids are the whole process's).
static CREDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn allow_user_switch() {
    USER_SWITCH.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Run `f` with this process's own ids (not while a local delivery has
/// them switched).
pub fn with_own_ids<T>(f: impl FnOnce() -> T) -> T {
    let _g = CREDS.lock();
    f()
}

/// Run `f` (a local delivery's file operations) as `uid`/`gid` with no
/// supplementary groups, then switch back. A process that cannot take root
/// back gets Exim's words for it; the daemon (exim_user = root), which
/// does not switch, runs `f` as itself.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> Result<T> {
    let (euid, egid) = (Uid::effective(), Gid::effective());
    if euid.as_raw() == uid && egid.as_raw() == gid {
        return Ok(f());
    }
    let allowed = USER_SWITCH.load(std::sync::atomic::Ordering::SeqCst);
    if !allowed && euid.is_root() {
        return Ok(f());
    }
    if !allowed || !can_regain_root() {
        return Err(anyhow!(
            "unable to set gid={gid} or uid={uid} (euid={})",
            euid.as_raw()
        ));
    }
    let _g = CREDS.lock();
    let groups = nix::unistd::getgroups().unwrap_or_default();
    let switch = || -> nix::Result<()> {
        nix::unistd::seteuid(Uid::from_raw(0))?;
        nix::unistd::setgroups(&[])?;
        nix::unistd::setegid(Gid::from_raw(gid))?;
        nix::unistd::seteuid(Uid::from_raw(uid))
    };
    let switched = switch();
    let r = switched.is_ok().then(f);
    // Back to who we were, whatever happened.
    let back = nix::unistd::seteuid(Uid::from_raw(0))
        .and_then(|_| nix::unistd::setgroups(&groups))
        .and_then(|_| nix::unistd::setegid(egid))
        .and_then(|_| nix::unistd::seteuid(euid));
    if let Err(e) = back {
        return Err(anyhow!(
            "cannot switch back to uid={} after a delivery: {e}",
            euid.as_raw()
        ));
    }
    match (switched, r) {
        (Ok(()), Some(r)) => Ok(r),
        (Err(e), _) => Err(anyhow!(
            "unable to set gid={gid} or uid={uid} (euid={}): {e}",
            euid.as_raw()
        )),
        (Ok(()), None) => Err(anyhow!("unable to set gid={gid} or uid={uid}")),
    }
}

/// A directory the exim user must be able to write in.
pub fn check_writable(dir: &Path, what: &str, ids: &Ids) -> Result<()> {
    use nix::unistd::AccessFlags;
    nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        anyhow!(
            "{what} {} is not writable by the exim user {ids}: {e} \
             (give it to that user, or remove it so that oxim creates it)",
            dir.display()
        )
    })
}

/// `-d`: a line on stderr when the ids change, in Exim's debug wording.
pub fn debug_ids(inv: &Invocation, reason: &str) {
    if inv.debug.is_none() {
        return;
    }
    let groups = nix::unistd::getgroups()
        .map(|g| {
            if g.is_empty() {
                "<none>".to_string()
            } else {
                g.iter()
                    .map(|g| g.as_raw().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "changed uid/gid: {reason}\n  uid={} gid={} euid={} egid={} pid={}\n  auxiliary group list: {groups}",
        Uid::current(),
        Gid::current(),
        Uid::effective(),
        Gid::effective(),
        std::process::id()
    );
}

/// Whether `path` may be used with `-C` without losing privilege: it is
/// listed in [`TRUSTED_CONFIG_LIST`], and both files are owned by root and
/// writable by no one else.
fn trusted_config(path: &Path) -> bool {
    let safe = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0)
    };
    let list = Path::new(TRUSTED_CONFIG_LIST);
    if !path.is_absolute() || !safe(list) || !safe(path) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(list) else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| Path::new(l) == path)
}

/// An oxim that runs with more privilege than its caller (installed setuid)
/// gives it up, before the configuration is read, when a caller other than
/// root chooses the configuration: `-C` with an untrusted file, any `-D`,
/// or no system configuration file (the embedded one follows `$OXIM_HOME`
/// and the current directory). The process then runs as the caller.
pub fn setuid_guard(inv: &Invocation, system_config: &Path) -> Result<()> {
    let r = nix::unistd::getresuid().context("getresuid")?;
    let g = nix::unistd::getresgid().context("getresgid")?;
    let elevated = r.effective != r.real || g.effective != g.real;
    if !elevated {
        return Ok(());
    }
    // Expansion and filter testing always run as the caller, as Exim's
    // (whoever the caller is; the runner's copy too).
    let testing = matches!(
        inv.mode,
        crate::cli::Mode::ExpandTest | crate::cli::Mode::FilterTest
    );
    // The runner's patched copy keeps root for -C and -D, as Exim's test
    // binary does (see harness.rs).
    if !testing && (r.real.is_root() || crate::harness::patched_binary()) {
        return Ok(());
    }
    let reason = match &inv.config {
        _ if testing => Some("-C, -D, -be or -bf forces real uid"),
        Some(p) if !trusted_config(p) => Some("-C, -D, -be or -bf forces real uid"),
        _ if !inv.defines.is_empty() => Some("-C, -D, -be or -bf forces real uid"),
        None if !system_config.exists() => Some("no system configuration forces real uid"),
        _ => None,
    };
    let Some(reason) = reason else {
        return Ok(());
    };
    nix::unistd::setresgid(g.real, g.real, g.real).context("setresgid")?;
    nix::unistd::setresuid(r.real, r.real, r.real).context("setresuid")?;
    debug_ids(inv, reason);
    Ok(())
}

/// The directories a command started as root creates for the exim user.
pub fn owned_dirs(spool: &oxim_spool::Spool, main_log: &Path) -> Vec<PathBuf> {
    let mut v = vec![
        spool.root().to_path_buf(),
        spool.input_dir().to_path_buf(),
        spool.msglog_dir().to_path_buf(),
        spool.db_dir().to_path_buf(),
    ];
    if let Some(d) = main_log.parent() {
        v.push(d.to_path_buf());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_by_name_and_number() {
        let (uid, gid, name) = find_user("root").unwrap();
        assert_eq!((uid, gid, name.as_str()), (0, Some(0), "root"));
        assert_eq!(find_user("0").unwrap().0, 0);
        assert_eq!(find_user("4242").unwrap().0, 4242);
        assert!(find_user("no-such-user-oxim").is_err());
        assert_eq!(find_group("0").unwrap(), 0);
        assert!(find_group("no-such-group-oxim").is_err());
        assert_eq!(uid_list("root : 17").unwrap(), vec![0, 17]);
        assert_eq!(uid_list("").unwrap(), Vec::<u32>::new());
    }
}
