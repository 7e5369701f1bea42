//! Platforms without TCP Fast Open support in this crate: plain sockets,
//! every outcome "not tried" / "none".

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use crate::{ClientTfo, ConnectOptions, Connected, ServerTfo};

pub(crate) const TFO_SUPPORTED: bool = false;

pub(crate) fn tfo_sysctl() -> Option<u32> {
    None
}

pub(crate) fn set_server_fastopen(_fd: BorrowedFd<'_>, _qlen: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP Fast Open is not supported on this platform",
    ))
}

pub(crate) fn set_fastopen_key(_fd: BorrowedFd<'_>, _key: &[u8; 16]) -> io::Result<()> {
    set_server_fastopen(_fd, 0)
}

pub(crate) fn get_tcp_info(_fd: BorrowedFd<'_>) -> io::Result<crate::TcpInfoProbe> {
    set_server_fastopen(_fd, 0).map(|()| crate::TcpInfoProbe::default())
}

pub(crate) fn server_tfo(_fd: BorrowedFd<'_>) -> ServerTfo {
    ServerTfo::None
}

pub(crate) async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> io::Result<Connected> {
    use tokio::io::AsyncWriteExt;
    let sock = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(ip) = opts.bind {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let start = Instant::now();
    let mut stream = sock.connect(addr).await?;
    let connected_at = Instant::now();
    let handshake = connected_at.duration_since(start);
    if !opts.syn_data.is_empty() {
        stream.write_all(&opts.syn_data).await?;
    }
    Ok(Connected {
        stream,
        client_tfo: ClientTfo::NotTried,
        handshake,
        connected_at,
        syn_data_in_syn: 0,
        evidence: Default::default(),
    })
}
