//! Cost of logging: render-only and render+write throughput for typical
//! `<=` and `=>` lines.
//!
//! `cargo run --release -p oxim-log --example log_bench -- [LINES] [DIR]`

use oxim_log::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let base = args.get(2).cloned().unwrap_or_else(|| ".".into());
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let template = format!("{}/%slog", dir.path().display());
    let logger = Logger::new(
        &template,
        LoggerOptions {
            selector: LogSelector::parse("+received_recipients +millisec").expect("selector"),
            ..LoggerOptions::default()
        },
    )
    .expect("logger");
    let rcpts = ["someone@example.net"];
    let mut r = Received::new("1tY0aB-000000005vi-0000", "sender@example.com", 2417);
    r.host = Some(SenderHost {
        name: Some("mail.example.com"),
        helo: Some("mail.example.com"),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        port: 50123,
        conn_id: None,
    });
    r.tfo = Tfo::Server(oxim_net::ServerTfo::Cookie);
    r.protocol = Some("esmtp");
    r.message_id = Some("20250101.abcdef@example.com");
    r.recipients = &rcpts;
    let rec = LogRecord::Received(r);
    let mut d = Delivered::new(
        "1tY0aB-000000005vi-0000",
        LogAddress::new("someone@example.net"),
        "sender@example.com",
    );
    d.router = Some("dnslookup");
    d.transport = Some("remote_smtp");
    d.host = Some(RemoteHost {
        name: "mx.example.net",
        ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)),
        port: 25,
    });
    d.confirmation = Some("250 2.0.0 Ok: queued as 4F1A2B3C");
    let del = LogRecord::Delivered(d);

    let sel = *logger.selector();
    let mut buf = String::with_capacity(256);
    let t = Instant::now();
    for i in 0..n {
        buf.clear();
        if i % 2 == 0 {
            rec.render_into(&sel, &mut buf)
        } else {
            del.render_into(&sel, &mut buf)
        }
        std::hint::black_box(&buf);
    }
    let e = t.elapsed();
    println!(
        "render only:        {:6.0} ns/line",
        e.as_nanos() as f64 / n as f64
    );

    let t = Instant::now();
    for i in 0..n {
        logger
            .write(if i % 2 == 0 { &rec } else { &del })
            .expect("write");
    }
    let e = t.elapsed();
    println!(
        "render+write:       {:6.0} ns/line ({:.0} lines/s)",
        e.as_nanos() as f64 / n as f64,
        n as f64 / e.as_secs_f64()
    );
    let size = std::fs::metadata(logger.path(LogKind::Main))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("mainlog: {} lines, {} bytes", n, size);
}
