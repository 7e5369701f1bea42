//! The daemon's Prometheus endpoint (`metrics_listen`, an oxim extension):
//! two daemons on loopback, a relay and a server that discards, each with
//! its endpoint; a scrape before and after two messages must show the
//! counters move on both sides (receptions, deliveries, connections, TFO,
//! PIPECONNECT misses then hits, spool commits, the queue back at 0).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CONF: &str = r#"
primary_hostname = myhost.test.ex
spool_directory = DIR/spool
exim_user = root
log_file_path = DIR/log/%slog
helo_lookup_domains =
acl_smtp_rcpt = accept
metrics_listen = 127.0.0.1:METRICS

begin routers

server:
  driver = redirect
  condition = ${if eq {ROLE}{server}{yes}{no}}
  data = :blackhole:

relay:
  driver = accept
  transport = to_server

begin transports

to_server:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = SERVER_PORT
  hosts_try_fastopen = *

begin retry

* * F,5d,10s
"#;

/// `GET path` on `port`: status line and body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Sample name with labels -> value.
fn scrape(port: u16) -> BTreeMap<String, u64> {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn get(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    *m.get(k)
        .unwrap_or_else(|| panic!("no sample {k} in {m:#?}"))
}

/// One message over SMTP to the relay daemon.
fn submit(port: u16, n: u32) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to relay");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut reply = || loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("reply");
        assert!(line.len() >= 4, "short reply {line:?}");
        if line.as_bytes()[3] == b' ' {
            break line;
        }
    };
    assert!(reply().starts_with("220"));
    for (cmd, code) in [
        ("EHLO test.ex", "250"),
        ("MAIL FROM:<a@test.ex>", "250"),
        ("RCPT TO:<b@test.ex>", "250"),
        ("DATA", "354"),
    ] {
        write!(w, "{cmd}\r\n").unwrap();
        let got = reply();
        assert!(got.starts_with(code), "{cmd}: {got}");
    }
    write!(w, "Subject: metrics {n}\r\n\r\nhello\r\n.\r\n").unwrap();
    assert!(reply().starts_with("250"));
    write!(w, "QUIT\r\n").unwrap();
    let _ = reply();
}

#[test]
fn metrics_endpoint_counts_both_sides() {
    let (server_dir, relay_dir) = (TestDir::new(), TestDir::new());
    let (server_port, relay_port) = (free_port(), free_port());
    let (server_metrics, relay_metrics) = (free_port(), free_port());
    let conf = |dir: &TestDir, role: &str, metrics: u16| {
        let text = CONF
            .replace("ROLE", role)
            .replace("SERVER_PORT", &server_port.to_string())
            .replace("METRICS", &metrics.to_string());
        dir.write("test.conf", &text)
    };
    let server_conf = conf(&server_dir, "server", server_metrics);
    let relay_conf = conf(&relay_dir, "relay", relay_metrics);
    let _server = Daemon::start(
        &server_dir,
        &[
            "-C",
            server_conf.to_str().unwrap(),
            "-oX",
            &server_port.to_string(),
        ],
    );
    let _relay = Daemon::start(
        &relay_dir,
        &[
            "-C",
            relay_conf.to_str().unwrap(),
            "-oX",
            &relay_port.to_string(),
        ],
    );
    assert!(server_dir.read("log/mainlog").contains(&format!(
        "metrics endpoint on http://127.0.0.1:{server_metrics}/metrics"
    )));

    let (status, _) = http_get(server_metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    let s0 = scrape(server_metrics);
    let r0 = scrape(relay_metrics);
    assert_eq!(get(&s0, "oxim_messages_received_total"), 0);
    assert_eq!(
        get(&r0, "oxim_pipe_connect_client_total{result=\"hit\"}"),
        0
    );

    for n in 1..=2 {
        submit(relay_port, n);
        assert!(
            wait_for(Duration::from_secs(20), || server_dir
                .read("log/mainlog")
                .matches("Completed")
                .count()
                == n as usize),
            "server did not complete message {n}: {}",
            server_dir.read("log/mainlog")
        );
        assert!(wait_for(Duration::from_secs(10), || relay_dir
            .read("log/mainlog")
            .matches("Completed")
            .count()
            == n as usize));
    }

    let s1 = scrape(server_metrics);
    let r1 = scrape(relay_metrics);
    let moved =
        |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>, k: &str| get(b, k) - get(a, k);
    // The server: two receptions over two connections, two deliveries to
    // :blackhole:, the second message early-pipelined (PIPECONNECT with
    // the EHLO answer the relay cached from the first).
    assert_eq!(moved(&s0, &s1, "oxim_messages_received_total"), 2);
    assert_eq!(
        moved(&s0, &s1, "oxim_deliveries_total{result=\"delivered\"}"),
        2
    );
    assert_eq!(
        moved(&s0, &s1, "oxim_smtp_connections_total{direction=\"in\"}"),
        2
    );
    assert_eq!(
        moved(&s0, &s1, "oxim_pipe_connect_server_messages_total"),
        1
    );
    assert_eq!(get(&s1, "oxim_queue_messages"), 0);
    assert!(moved(&s0, &s1, "oxim_spool_commit_batches_total") >= 1);
    // The relay: two receptions from the test's client, two deliveries,
    // two outgoing connections (TFO tried), one PIPECONNECT miss then one
    // hit.
    assert_eq!(moved(&r0, &r1, "oxim_messages_received_total"), 2);
    assert_eq!(
        moved(&r0, &r1, "oxim_deliveries_total{result=\"delivered\"}"),
        2
    );
    assert_eq!(
        moved(&r0, &r1, "oxim_smtp_connections_total{direction=\"out\"}"),
        2
    );
    assert_eq!(
        moved(&r0, &r1, "oxim_pipe_connect_client_total{result=\"miss\"}"),
        1
    );
    assert_eq!(
        moved(&r0, &r1, "oxim_pipe_connect_client_total{result=\"hit\"}"),
        1
    );
    let tfo_out: u64 = [
        "cookie-requested",
        "cookie-accepted",
        "cookie-rejected",
        "data-acked",
        "not-tried",
    ]
    .iter()
    .map(|o| {
        moved(
            &r0,
            &r1,
            &format!("oxim_tfo_client_connections_total{{outcome=\"{o}\"}}"),
        )
    })
    .sum();
    assert_eq!(tfo_out, 2);
    assert!(moved(&r0, &r1, "oxim_round_trips_saved_total") >= 1);
}

#[test]
fn metrics_listen_must_be_an_address_and_port() {
    let dir = TestDir::new();
    let conf = dir.write(
        "test.conf",
        "spool_directory = DIR/spool\nexim_user = root\nmetrics_listen = localhost\n",
    );
    let out = dir.run(&["-C", conf.to_str().unwrap(), "-bV"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics_listen must be an address and port"),
        "{err}"
    );
}
