//! Platform layer: one module per OS behind the same crate-internal functions,
//! after quinn-udp's `unix.rs` / `fallback.rs` split.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod fallback;
#[cfg(not(target_os = "linux"))]
pub(crate) use fallback::*;

pub mod tcp_info;
pub use tcp_info::TcpInfoProbe;
