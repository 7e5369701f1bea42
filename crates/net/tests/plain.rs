//! Plain (non-TFO) behaviour on the host's loopback: no root needed.

use std::time::Duration;

use oxim_net::{ClientTfo, ConnectOptions, ServerTfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn plain_connect_and_listen() {
    let l = oxim_net::listen("127.0.0.1:0".parse().unwrap(), 0, 8).expect("listen");
    let l = tokio::net::TcpListener::from_std(l).expect("tokio");
    let addr = l.local_addr().expect("addr");
    let opts = ConnectOptions {
        try_tfo: false,
        timeout: Duration::from_secs(5),
        bind: None,
        syn_data: b"hello".to_vec(),
    };
    let server = async {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut b = [0u8; 5];
        s.read_exact(&mut b).await.expect("read");
        s.write_all(b"ok").await.expect("write");
        (oxim_net::server_tfo(&s), b)
    };
    let client = async {
        let mut c = oxim_net::connect(addr, &opts).await.expect("connect");
        let mut b = [0u8; 2];
        c.stream.read_exact(&mut b).await.expect("read");
        (c.client_tfo(), b, c.syn_data_in_syn())
    };
    let ((stfo, got), (ctfo, reply, in_syn)) = tokio::join!(server, client);
    assert_eq!((ctfo, stfo), (ClientTfo::NotTried, ServerTfo::None));
    assert_eq!((&got, &reply, in_syn), (b"hello", b"ok", 0));
}

#[test]
fn ipv6_listener_is_v6_only_and_tfo_option_is_accepted() {
    let l = match oxim_net::listen_detailed("[::1]:0".parse().unwrap(), 8, 8) {
        Ok(l) => l,
        // A machine without IPv6 loopback cannot run this check.
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => return,
        Err(e) => panic!("listen on ::1: {e}"),
    };
    // TFO failing to enable is reported, not fatal.
    assert_eq!(
        l.tfo_error.is_none(),
        oxim_net::tfo_supported(),
        "{:?}",
        l.tfo_error
    );
    let sock = socket2::SockRef::from(&l.listener);
    assert!(sock.only_v6().expect("v6only"));
    assert!(sock.reuse_address().expect("reuseaddr"));
    assert!(l.listener.set_nonblocking(true).is_ok());
}

#[test]
fn listen_on_a_used_port_fails() {
    let a = oxim_net::listen("127.0.0.1:0".parse().unwrap(), 0, 8).expect("listen");
    let addr = a.local_addr().expect("addr");
    let e = oxim_net::listen(addr, 0, 8).expect_err("address in use");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
}
