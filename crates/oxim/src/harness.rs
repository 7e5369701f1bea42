//! Test-harness mode.
//!
//! Exim's test suite patches the Exim binary (version `x.yz`, no privilege
//! drop for `-C`/`-D`, fake DNS). oxim offers the same through an explicit
//! mode that only the scenario runner turns on, by setting
//! `OXIM_TEST_HARNESS=1` in the environment of every command it runs.
//!
//! Privileges: as Exim's test builds take the tester as the exim user, an
//! unset `exim_user` means the user running oxim, and an unset
//! `never_users` is empty. An oxim installed setuid still gives up root for
//! `-C`/`-D` from other callers (the environment cannot weaken that).

use oxim_spool::IdFormat;

/// Harness-mode switches, read once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Harness {
    /// `OXIM_TEST_HARNESS=1` is set.
    pub active: bool,
    /// Message-id layout selected by `OXIM_TEST_MSGID` (`short`/`long`).
    pub id_format: Option<IdFormat>,
}

impl Harness {
    /// Read the switches from the environment.
    pub fn from_env() -> Self {
        let active = std::env::var("OXIM_TEST_HARNESS").is_ok_and(|v| v == "1");
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
