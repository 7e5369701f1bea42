//! TFO outcomes on both sides, end to end, in private network namespaces.
//! Root only: without root these tests fail with a clear message.
#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::time::Duration;

use oxim_net::testns::{self, NetnsError};
use oxim_net::{ClientTfo, ConnectOptions, Connected, ServerTfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BANNER: &[u8] = b"220 oxim ESMTP\r\n";

fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match testns::run_in_new_netns(f) {
        Ok(t) => t,
        Err(NetnsError::NotRoot) => {
            panic!("this test creates network namespaces and must run as root")
        }
        Err(e) => panic!("{e}"),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct Outcome {
    client: ClientTfo,
    server: ServerTfo,
    conn: Connected,
    /// What the server read from the client (the syn_data, however it came).
    server_got: Vec<u8>,
}

/// One connection: the server accepts, judges, sends a banner and reads
/// `expect_len` bytes; the client connects and reads the banner.
async fn exchange(listener: &tokio::net::TcpListener, opts: &ConnectOptions) -> Outcome {
    let addr = listener.local_addr().expect("local addr");
    let expect_len = opts.syn_data.len();
    let server = async {
        let (mut s, _) = listener.accept().await.expect("accept");
        let tfo = oxim_net::server_tfo(&s);
        s.write_all(BANNER).await.expect("banner");
        let mut got = vec![0u8; expect_len];
        s.read_exact(&mut got).await.expect("read syn data");
        (tfo, got)
    };
    let client = async {
        let mut conn = oxim_net::connect(addr, opts).await.expect("connect");
        let mut banner = vec![0u8; BANNER.len()];
        conn.stream
            .read_exact(&mut banner)
            .await
            .expect("read banner");
        assert_eq!(banner, BANNER);
        conn
    };
    let ((server, server_got), conn) = tokio::join!(server, client);
    eprintln!(
        "client={} server={:?} evidence={:?}",
        conn.client_tfo(),
        server,
        conn.evidence()
    );
    Outcome {
        client: conn.client_tfo(),
        server,
        conn,
        server_got,
    }
}

fn tfo_listener(addr: &str) -> tokio::net::TcpListener {
    let addr: SocketAddr = addr.parse().expect("addr");
    let l = oxim_net::listen_detailed(addr, 16, 16).expect("listen");
    assert!(l.tfo_error.is_none(), "TCP_FASTOPEN: {:?}", l.tfo_error);
    tokio::net::TcpListener::from_std(l.listener).expect("tokio listener")
}

fn counters() -> std::collections::BTreeMap<String, u64> {
    testns::tcp_ext_counters().expect("netstat")
}

fn delta(
    after: &std::collections::BTreeMap<String, u64>,
    before: &std::collections::BTreeMap<String, u64>,
    k: &str,
) -> u64 {
    after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)
}

fn tfo(data: &[u8]) -> ConnectOptions {
    ConnectOptions {
        try_tfo: true,
        timeout: Duration::from_secs(10),
        bind: None,
        syn_data: data.to_vec(),
    }
}

fn lifecycle(listen_on: &'static str) {
    in_netns(move || {
        rt().block_on(async {
            let listener = tfo_listener(listen_on);

            let plain = ConnectOptions {
                try_tfo: false,
                ..tfo(b"")
            };
            let o = exchange(&listener, &plain).await;
            assert_eq!((o.client, o.server), (ClientTfo::NotTried, ServerTfo::None));

            let c0 = counters();
            let o = exchange(&listener, &tfo(b"")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieRequested, ServerTfo::None)
            );
            let c1 = counters();
            assert_eq!(delta(&c1, &c0, "TCPFastOpenCookieReqd"), 1);

            let o = exchange(&listener, &tfo(b"")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieAccepted, ServerTfo::Cookie)
            );
            let c2 = counters();
            assert_eq!(delta(&c2, &c1, "TCPFastOpenPassive"), 1);

            let o = exchange(&listener, &tfo(b"EHLO x\r\n")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::DataAcked, ServerTfo::CookieWithData)
            );
            assert_eq!(o.server_got, b"EHLO x\r\n");
            assert_eq!(o.conn.syn_data_in_syn(), 8);
            let c3 = counters();
            assert_eq!(delta(&c3, &c2, "TCPFastOpenActive"), 1);

            // The server changes its key: our cached cookie is now invalid.
            oxim_net::set_fastopen_key(&listener, &[7u8; 16]).expect("set key");
            let o = exchange(&listener, &tfo(b"")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieRejected, ServerTfo::None)
            );
            let c4 = counters();
            assert_eq!(delta(&c4, &c3, "TCPFastOpenPassiveFail"), 1);

            // The rejection brought a fresh cookie: it is accepted next time.
            let o = exchange(&listener, &tfo(b"")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieAccepted, ServerTfo::Cookie)
            );

            // Rejected with data: the kernel resends the data, we see it once.
            oxim_net::set_fastopen_key(&listener, &[9u8; 16]).expect("set key");
            let o = exchange(&listener, &tfo(b"DATA")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieRejected, ServerTfo::None)
            );
            assert_eq!(o.server_got, b"DATA");
        })
    });
}

#[test]
fn tfo_lifecycle_ipv4() {
    lifecycle("127.0.0.1:0");
}

#[test]
fn tfo_lifecycle_ipv6() {
    lifecycle("[::1]:0");
}
