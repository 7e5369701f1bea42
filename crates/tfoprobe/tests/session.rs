//! `measure_session` against a scripted SMTP server on loopback (no root,
//! no TFO needed): the transaction, its timings and error reporting.

use std::time::Duration;

use oxim_tfoprobe::{
    format_samples, measure_session, summarize, Labelled, ProbeError, SessionOpts,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Serve one session. `pipelining` decides the EHLO keywords; `banner_delay`
/// holds the banner back. Returns the commands received.
async fn serve(l: TcpListener, pipelining: bool, banner_delay: Duration) -> Vec<String> {
    let (s, _) = l.accept().await.unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    tokio::time::sleep(banner_delay).await;
    w.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
    let mut cmds = Vec::new();
    let mut in_data = false;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            return cmds;
        }
        let l = line.trim_end().to_string();
        if in_data {
            if l == "." {
                in_data = false;
                w.write_all(b"250 OK id=1abc-000001-00\r\n").await.unwrap();
            }
            continue;
        }
        cmds.push(l.clone());
        let reply: &[u8] = match l.split_whitespace().next().unwrap_or("") {
            "EHLO" if pipelining => b"250-scripted\r\n250-SIZE 1000000\r\n250 PIPELINING\r\n",
            "EHLO" => b"250-scripted\r\n250 SIZE 1000000\r\n",
            "MAIL" | "RCPT" => b"250 OK\r\n",
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await.unwrap();
                return cmds;
            }
            _ => b"500 what\r\n",
        };
        w.write_all(reply).await.unwrap();
    }
}

async fn run(
    pipelining: bool,
    delay: Duration,
) -> (Result<oxim_tfoprobe::Sample, ProbeError>, Vec<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(serve(l, pipelining, delay));
    let o = SessionOpts {
        try_tfo: false,
        ..SessionOpts::default()
    };
    let r = measure_session(addr, &o).await;
    (r, server.await.unwrap())
}

#[tokio::test]
async fn pipelined_transaction_is_timed() {
    let (r, cmds) = run(true, Duration::from_millis(60)).await;
    let s = r.expect("session");
    assert!(s.pipelined);
    assert_eq!(
        cmds,
        [
            "EHLO probe.test",
            "MAIL FROM:<probe@probe.test>",
            "RCPT TO:<sink@probe.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert!(
        s.to_banner >= Duration::from_millis(60),
        "{:?}",
        s.to_banner
    );
    assert!(s.to_final >= s.to_banner);
    assert_eq!(s.final_reply, "250 OK id=1abc-000001-00");
    assert_eq!(s.outcome, oxim_net::ClientTfo::NotTried);

    let rows = [Labelled {
        phase: "no-tfo".into(),
        sample: s,
        server: None,
    }];
    let table = format_samples(&rows, Duration::from_millis(30));
    assert!(
        table.lines().nth(1).unwrap().contains(" no-tfo "),
        "{table}"
    );
    let sum = summarize(&rows, Duration::from_millis(30));
    assert!(sum.contains("RTT 30.0 ms"), "{sum}");
    assert!(
        sum.lines()
            .any(|l| l.starts_with("no-tfo ") && l.contains("not-tried")),
        "{sum}"
    );
}

#[tokio::test]
async fn lockstep_without_pipelining() {
    let (r, cmds) = run(false, Duration::ZERO).await;
    let s = r.expect("session");
    assert!(!s.pipelined);
    assert_eq!(cmds.len(), 5, "{cmds:?}");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let o = SessionOpts {
        try_tfo: false,
        ..SessionOpts::default()
    };
    let e = measure_session(addr, &o).await.unwrap_err();
    assert!(matches!(e, ProbeError::Connect { .. }), "{e}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let o = SessionOpts {
        try_tfo: false,
        timeout: Duration::from_millis(200),
        ..SessionOpts::default()
    };
    let e = measure_session(addr, &o).await.unwrap_err();
    assert!(matches!(e, ProbeError::Timeout(_)), "{e}");
    drop(l);
}
