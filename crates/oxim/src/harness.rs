//! Test-harness mode.
//!
//! Exim's test suite patches the Exim binary (version `x.yz`, no privilege
//! drop for `-C`/`-D`, fake DNS). oxim offers the same through an explicit
//! mode that only the scenario runner turns on, by setting
//! `OXIM_TEST_HARNESS=1` in the environment of every command it runs.
//!
//! Privileges: Exim's test builds name their exim user at build time; under
//! the harness an unset `exim_user` means `$OXIM_TEST_EXIM_USER` (the
//! account the runner made for it), else the user running oxim; an unset
//! `never_users` is empty. The environment alone never weakens an oxim
//! installed setuid: a process started with more privilege than its caller
//! honours `OXIM_TEST_HARNESS` only in a copy whose binary marker the
//! runner patched ([`patched_binary`]), as Exim's runtest patches its copy
//! of Exim; only root can make such a copy setuid, and such a copy keeps
//! root for `-C` and `-D` as Exim's test binary does.

use oxim_spool::IdFormat;

/// The marker `oxim-runtest` patches (`no;` becomes `yes`) in its setuid
/// copies of this binary.
static BINARY_MARKER: [u8; 32] = *b"oxim-harness-binary:no;\0\0\0\0\0\0\0\0\0";

/// Whether this binary is the runner's patched copy. The marker is read
/// through `black_box` so that the compiler cannot fold it into a constant.
pub fn patched_binary() -> bool {
    let m: &[u8; 32] = std::hint::black_box(&BINARY_MARKER);
    &m[20..23] == b"yes"
}

/// Whether this process was started with more privilege than its caller
/// (a setuid or setgid binary).
fn elevated() -> bool {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    geteuid() != getuid() || getegid() != getgid()
}

/// Read once, before any privilege is given up (see [`Harness::from_env`]).
static STARTED_ELEVATED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether the process started with more privilege than its caller (an
/// oxim installed setuid), as recorded by [`note_start`].
pub fn started_elevated() -> bool {
    *STARTED_ELEVATED.get_or_init(elevated)
}

/// Record whether the process started elevated; call first thing.
pub fn note_start() {
    STARTED_ELEVATED.get_or_init(elevated);
}

/// Harness-mode switches, read once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Harness {
    /// `OXIM_TEST_HARNESS=1` is set.
    pub active: bool,
    /// Message-id layout selected by `OXIM_TEST_MSGID` (`short`/`long`).
    pub id_format: Option<IdFormat>,
}

/// The exim user the runner made (`OXIM_TEST_EXIM_USER`), under the harness.
pub fn test_exim_user(h: &Harness) -> Option<String> {
    if !h.active {
        return None;
    }
    std::env::var("OXIM_TEST_EXIM_USER")
        .ok()
        .filter(|s| !s.is_empty())
}

impl Harness {
    /// Read the switches from the environment.
    pub fn from_env() -> Self {
        // A setuid or setgid start ignores the variable unless this is
        // the runner's patched copy.
        let elevated = *STARTED_ELEVATED.get_or_init(elevated);
        let active = std::env::var("OXIM_TEST_HARNESS").is_ok_and(|v| v == "1")
            && (!elevated || patched_binary());
        let id_format = if active {
            match std::env::var("OXIM_TEST_MSGID").as_deref() {
                Ok("long") => Some(IdFormat::Long),
                Ok("short") => Some(IdFormat::Classic),
                _ => None,
            }
        } else {
            None
        };
        Harness { active, id_format }
    }

    /// The product name in banners, `Received:` headers and the daemon line:
    /// `Exim` under the harness (whose expected files name Exim), else `oxim`.
    pub fn product(&self) -> &'static str {
        if self.active {
            "Exim"
        } else {
            "oxim"
        }
    }

    /// The version string oxim reports (`x.yz` under the harness, as the
    /// patched Exim binary does).
    pub fn version(&self) -> &'static str {
        if self.active {
            "x.yz"
        } else {
            env!("CARGO_PKG_VERSION")
        }
    }
}
