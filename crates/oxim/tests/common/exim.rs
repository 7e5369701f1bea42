//! Finding the real Exim that tests compare oxim with (Debian's exim4,
//! unpacked by `bench/get-exim.sh`).

use std::path::PathBuf;

pub const DEFAULT_EXIM: &str = "/var/tmp/oxim-peers-exim/usr/sbin/exim4";
pub const EXIM_USER: &str = "Debian-exim";

/// The Exim binary (path from `OXIM_EXIM_BIN`, default [`DEFAULT_EXIM`]),
/// or None (after saying so loudly) when the test must be
/// skipped.
pub fn exim() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var("OXIM_EXIM_BIN").unwrap_or_else(|_| DEFAULT_EXIM.into()));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !bin.is_file() {
        assert!(
            !ci,
            "CI=true but no Exim at {} (bench/get-exim.sh installs it)",
            bin.display()
        );
        // Straight to the file descriptor: the test harness captures
        // eprintln!, and this must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP: no Exim at {} (set OXIM_EXIM_BIN or run bench/get-exim.sh): \
             output NOT compared with Exim ***\n",
            bin.display()
        );
        return None;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "comparing with Exim needs root (Exim runs -C configurations as {EXIM_USER})"
    );
    Some(bin)
}
