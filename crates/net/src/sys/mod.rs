//! Platform layer: one module per OS behind the same crate-internal functions,
//! after quinn-udp's `unix.rs` / `fallback.rs` split.
//!
//! Build with `RUSTFLAGS="--cfg oxim_net_force_fallback"` to compile and test
//! the portable fallback on Linux.

#[cfg(all(target_os = "linux", not(oxim_net_force_fallback)))]
mod linux;
#[cfg(all(target_os = "linux", not(oxim_net_force_fallback)))]
pub(crate) use linux::*;

#[cfg(any(not(target_os = "linux"), oxim_net_force_fallback))]
mod fallback;
#[cfg(any(not(target_os = "linux"), oxim_net_force_fallback))]
pub(crate) use fallback::*;

pub mod tcp_info;
pub use tcp_info::TcpInfoProbe;
