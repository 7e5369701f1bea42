//! Print the table of observed TFO evidence per case (the data behind
//! `TFO-FINDINGS.md`), in a private network namespace. Root only.
//!
//! ```text
//! cargo run -p oxim-net --example tfo_table
//! cargo build -p oxim-delayer && cargo run -p oxim-net --example tfo_table -- target/debug/oxim-delayer
//! ```
//! With a delayer path the cases run over 50 ms each way (via NFQUEUE).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use oxim_net::{testns, ConnectOptions, TcpInfoProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fmt_probe(p: Option<&TcpInfoProbe>) -> String {
    match p {
        Some(p) => format!(
            "st={} opt={} fail={} unacked={} retr={}",
            p.state, p.options, p.fastopen_client_fail, p.unacked, p.total_retrans
        ),
        None => "-".into(),
    }
}

fn fmt_cookie(c: &oxim_net::CookieLookup) -> String {
    match c {
        oxim_net::CookieLookup::Unknown => "?".into(),
        oxim_net::CookieLookup::Absent => "none".into(),
        oxim_net::CookieLookup::Present(b) => {
            b.iter().take(3).map(|x| format!("{x:02x}")).collect()
        }
    }
}

fn diff(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> String {
    b.iter()
        .filter(|(k, _)| k.starts_with("TCPFastOpen"))
        .filter_map(|(k, v)| {
            let d = v - a.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{}+{d}", k.trim_start_matches("TCPFastOpen")))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let delayer = std::env::args().nth(1);
    let r = testns::run_in_new_netns(move || {
        if let Some(bin) = &delayer {
            let st = std::process::Command::new(bin)
                .args([
                    "start",
                    "--dev",
                    "lo",
                    "--delay",
                    "50ms",
                    "--pidfile",
                    "/tmp/tfo_table.pid",
                ])
                .status()
                .expect("delayer");
            assert!(st.success());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(table());
        if let Some(bin) = &delayer {
            let _ = std::process::Command::new(bin)
                .args(["stop", "--pidfile", "/tmp/tfo_table.pid"])
                .status();
        }
    });
    if let Err(e) = r {
        eprintln!("tfo_table: {e}");
        std::process::exit(1);
    }
}

async fn table() {
    let listen = |qlen| {
        let l = oxim_net::listen("127.0.0.1:0".parse().unwrap(), qlen, 16).expect("listen");
        tokio::net::TcpListener::from_std(l).expect("listener")
    };
    let tfo_listener = listen(16);
    let plain_listener = listen(0);
    println!("| case | client | client TCP_INFO after sendto | client TCP_INFO after handshake | cookie before → after | server | server TCP_INFO at accept | banner after | timing proves TFO | TcpExt |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // (name, try TFO, SYN data, new server key, listener with TFO, server sysctl)
    type Case = (
        &'static str,
        bool,
        &'static [u8],
        Option<u8>,
        bool,
        Option<&'static str>,
    );
    let cases: [Case; 9] = [
        ("(e) TFO not tried", false, b"", None, true, None),
        ("(a) no cookie cached", true, b"", None, true, None),
        ("(b) valid cookie, no data", true, b"", None, true, None),
        (
            "(d) valid cookie + data",
            true,
            b"EHLO x\r\n",
            None,
            true,
            None,
        ),
        ("(c) stale cookie, no data", true, b"", Some(1), true, None),
        ("(b') fresh cookie after (c)", true, b"", None, true, None),
        (
            "(c') stale cookie + data",
            true,
            b"EHLO x\r\n",
            Some(2),
            true,
            None,
        ),
        (
            "(g) cookie sent to a listener without TFO",
            true,
            b"",
            None,
            false,
            None,
        ),
        (
            "(h) cookie sent, server TFO sysctl off",
            true,
            b"",
            None,
            true,
            Some("1"),
        ),
    ];
    for (name, try_tfo, data, rekey, use_tfo_listener, sysctl) in cases {
        let l = if use_tfo_listener {
            &tfo_listener
        } else {
            &plain_listener
        };
        let addr = l.local_addr().expect("addr");
        if let Some(k) = rekey {
            oxim_net::set_fastopen_key(l, &[k; 16]).expect("key");
        }
        if let Some(v) = sysctl {
            testns::set_sysctl("net/ipv4/tcp_fastopen", v).expect("sysctl");
        }
        let before = testns::tcp_ext_counters().expect("netstat");
        let opts = ConnectOptions {
            try_tfo,
            timeout: Duration::from_secs(10),
            bind: None,
            syn_data: data.to_vec(),
        };
        let server = async {
            let (mut s, _) = l.accept().await.expect("accept");
            let probe = oxim_net::tcp_info(&s).ok();
            let tfo = oxim_net::ServerTfo::probe(&s);
            s.write_all(b"220 hi\r\n").await.expect("banner");
            let mut got = vec![0u8; data.len()];
            s.read_exact(&mut got).await.expect("data");
            (tfo, probe)
        };
        let client = async {
            let t0 = Instant::now();
            let mut c = oxim_net::connect(addr, &opts).await.expect("connect");
            let mut b = [0u8; 8];
            c.stream.read_exact(&mut b).await.expect("banner");
            let proven = c.tfo_proven_by_first_byte(Instant::now());
            (c, t0.elapsed(), proven)
        };
        let ((stfo, sprobe), (c, ttfb, proven)) = tokio::join!(server, client);
        let after = testns::tcp_ext_counters().expect("netstat");
        let e = c.evidence();
        println!(
            "| {name} | {} | {} | {} | {} → {} | {:?} | {} | {:.1} ms | {} | {} |",
            c.client_tfo(),
            fmt_probe(e.at_send.as_ref()),
            fmt_probe(e.after.as_ref()),
            fmt_cookie(&e.cookie_before),
            fmt_cookie(&e.cookie_after),
            stfo,
            sprobe
                .map(|p| format!("st={} opt={}", p.state, p.options))
                .unwrap_or_default(),
            ttfb.as_secs_f64() * 1e3,
            match proven {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            diff(&before, &after),
        );
    }
}
