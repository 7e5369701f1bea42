//! Durable spool write throughput: one fsync'd write at a time versus
//! group commit with many concurrent writers.
//!
//! `cargo run --release -p oxim-spool --example spool_bench -- [MESSAGES] [WRITERS] [DIR]`
//!
//! Prints messages per second for: serial `Spool::write`, `SpoolWriter`
//! with `SyncMode::PerFile`, and `SpoolWriter` with `SyncMode::Syncfs`.

use oxim_spool::*;
use std::sync::Arc;
use std::time::Instant;

fn envelope(gen: &IdGenerator) -> Envelope {
    let mut env = Envelope::new(gen.next(), "sender@example.com");
    env.login = "oxim".into();
    env.received_time = 1_700_000_000;
    env.protocol = Some("esmtp".into());
    env.host_address = Some("127.0.0.1".into());
    env.host_port = Some(40000);
    env.recipients = vec![Recipient::new("rcpt@example.net")];
    env
}

fn headers() -> Vec<Header> {
    vec![
        Header::new("Received: from localhost ([127.0.0.1])\n\tby bench with esmtp (oxim)\n"),
        Header::new("Subject: bench\n"),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4000);
    let writers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let base = args.get(3).cloned().unwrap_or_else(|| ".".into());
    let body = vec![b'x'; 2048];
    let gen = Arc::new(IdGenerator::new(IdFormat::Classic));

    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let spool = Spool::open(dir.path().join("serial")).expect("spool");
    let serial_n = n.min(2000);
    let t = Instant::now();
    for _ in 0..serial_n {
        spool
            .write_bytes(&envelope(&gen), &headers(), &body)
            .expect("write");
    }
    let serial = serial_n as f64 / t.elapsed().as_secs_f64();
    println!("serial Spool::write:              {serial:8.0} msg/s ({serial_n} messages)");

    for mode in [SyncMode::PerFile, SyncMode::Syncfs] {
        let spool = Spool::open(dir.path().join(format!("{mode:?}"))).expect("spool");
        let writer = Arc::new(
            SpoolWriter::new(
                spool,
                WriterOptions {
                    sync: mode,
                    ..WriterOptions::default()
                },
            )
            .expect("writer"),
        );
        let per = n / writers;
        let t = Instant::now();
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let (w, g, b) = (Arc::clone(&writer), Arc::clone(&gen), body.clone());
                std::thread::spawn(move || {
                    for _ in 0..per {
                        w.write_blocking(envelope(&g), headers(), b.clone())
                            .expect("write");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let secs = t.elapsed().as_secs_f64();
        let stats = writer.stats();
        let rate = (per * writers) as f64 / secs;
        println!(
            "SpoolWriter {:<8} {writers:3} writers: {rate:8.0} msg/s ({} messages, {} batches, {:.1} per batch, {:.1}x serial)",
            format!("{mode:?}"),
            stats.messages,
            stats.batches,
            stats.messages as f64 / stats.batches.max(1) as f64,
            rate / serial
        );
    }
}
