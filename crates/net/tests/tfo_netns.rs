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
    assert_eq!(
        conn.tfo_proven_by_first_byte(std::time::Instant::now()),
        None,
        "timing tells nothing on undelayed loopback"
    );
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

#[test]
fn netns_helper_sets_up_tfo_and_isolates() {
    let (sysctl, counters_ok) = in_netns(|| {
        (
            oxim_net::tfo_sysctl(),
            testns::tcp_ext_counters().map(|c| c.contains_key("TCPFastOpenActive")),
        )
    });
    assert_eq!(sysctl, Some(3));
    assert!(counters_ok.expect("netstat readable"));
}

#[test]
fn large_syn_data_is_sent_completely_once() {
    in_netns(|| {
        rt().block_on(async {
            let listener = tfo_listener("127.0.0.1:0");
            let o = exchange(&listener, &tfo(b"")).await;
            assert_eq!(o.client, ClientTfo::CookieRequested);
            let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            // More than a loopback SYN can carry (MSS ~65 KB).
            let o = exchange(&listener, &tfo(&big)).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::DataAcked, ServerTfo::CookieWithData)
            );
            let in_syn = o.conn.syn_data_in_syn();
            assert!(in_syn > 0 && in_syn < big.len(), "SYN held {in_syn} bytes");
            assert_eq!(o.server_got, big);
        })
    });
}

#[test]
fn cookies_are_per_source_address() {
    in_netns(|| {
        rt().block_on(async {
            let listener = tfo_listener("127.0.0.1:0");
            let from = |ip: &str| ConnectOptions {
                bind: Some(ip.parse().expect("ip")),
                ..tfo(b"")
            };
            let o = exchange(&listener, &from("127.0.0.2")).await;
            assert_eq!(o.client, ClientTfo::CookieRequested);
            assert_eq!(
                o.conn.stream.local_addr().expect("local").ip().to_string(),
                "127.0.0.2"
            );
            let o = exchange(&listener, &from("127.0.0.2")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieAccepted, ServerTfo::Cookie)
            );
            // Another source has no cookie yet: the judgement must look at the
            // right cache entry.
            let o = exchange(&listener, &from("127.0.0.3")).await;
            assert_eq!(
                (o.client, o.server),
                (ClientTfo::CookieRequested, ServerTfo::None)
            );
            let o = exchange(&listener, &from("127.0.0.2")).await;
            assert_eq!(o.client, ClientTfo::CookieAccepted);
        })
    });
}

#[test]
fn refused_and_timed_out_connects_are_errors() {
    in_netns(|| {
        rt().block_on(async {
            let closed = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr")
            };
            for try_tfo in [false, true] {
                let opts = ConnectOptions {
                    try_tfo,
                    ..tfo(b"")
                };
                let e = oxim_net::connect(closed, &opts).await.expect_err("refused");
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused,
                    "tfo={try_tfo}"
                );
            }

            // A port whose SYNs are silently dropped.
            let st = std::process::Command::new("iptables")
                .args(["-A", "INPUT", "-p", "tcp", "--dport"])
                .arg(closed.port().to_string())
                .args(["-j", "DROP"])
                .status()
                .expect("iptables (apt-get install iptables)");
            assert!(st.success(), "iptables DROP rule");
            for try_tfo in [false, true] {
                let opts = ConnectOptions {
                    try_tfo,
                    timeout: Duration::from_millis(300),
                    ..tfo(b"")
                };
                let t0 = std::time::Instant::now();
                let e = oxim_net::connect(closed, &opts).await.expect_err("timeout");
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "tfo={try_tfo}");
                assert!(t0.elapsed() < Duration::from_secs(2));
            }
        })
    });
}

#[test]
fn counters_follow_outcomes() {
    in_netns(|| {
        rt().block_on(async {
            let listener = tfo_listener("127.0.0.1:0");
            let before = oxim_net::TfoCounters::global().snapshot();
            exchange(&listener, &tfo(b"")).await;
            exchange(&listener, &tfo(b"")).await;
            exchange(&listener, &tfo(b"x")).await;
            let after = oxim_net::TfoCounters::global().snapshot();
            // Other tests in this binary run concurrently: at least ours.
            assert!(after.client_requested > before.client_requested);
            assert!(after.client_accepted > before.client_accepted);
            assert!(after.client_data_acked > before.client_data_acked);
            assert!(after.server_cookie > before.server_cookie);
            assert!(after.server_cookie_data > before.server_cookie_data);
            assert!(after.to_string().contains("TFO client: accepted="));
        })
    });
}

#[test]
fn sysctl_disabling_either_side_is_reported_honestly() {
    in_netns(|| {
        rt().block_on(async {
            let listener = tfo_listener("127.0.0.1:0");
            // Client side off: the kernel refuses MSG_FASTOPEN, we connect plainly.
            testns::set_sysctl("net/ipv4/tcp_fastopen", "2").expect("sysctl");
            let o = exchange(&listener, &tfo(b"abc")).await;
            assert_eq!((o.client, o.server), (ClientTfo::NotTried, ServerTfo::None));
            assert_eq!(o.server_got, b"abc");
            // Server side off: cookies are requested and never granted.
            testns::set_sysctl("net/ipv4/tcp_fastopen", "1").expect("sysctl");
            for _ in 0..3 {
                let o = exchange(&listener, &tfo(b"")).await;
                assert_eq!(
                    (o.client, o.server),
                    (ClientTfo::CookieRequested, ServerTfo::None)
                );
            }
        })
    });
}

#[test]
fn ipv4_mapped_peer_on_a_dual_stack_client() {
    in_netns(|| {
        rt().block_on(async {
            let listener = tfo_listener("127.0.0.1:0");
            let port = listener.local_addr().expect("addr").port();
            let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().expect("addr");
            let server = async {
                for _ in 0..2 {
                    let (mut s, _) = listener.accept().await.expect("accept");
                    let tfo = oxim_net::server_tfo(&s);
                    s.write_all(BANNER).await.expect("banner");
                    eprintln!("server {tfo:?}");
                }
            };
            let client = async {
                let mut out = Vec::new();
                for _ in 0..2 {
                    let mut c = oxim_net::connect(mapped, &tfo(b"")).await.expect("connect");
                    let mut b = vec![0u8; BANNER.len()];
                    c.stream.read_exact(&mut b).await.expect("banner");
                    out.push(c.client_tfo());
                }
                out
            };
            let ((), outcomes) = tokio::join!(server, client);
            assert_eq!(
                outcomes,
                [ClientTfo::CookieRequested, ClientTfo::CookieAccepted]
            );
        })
    });
}
