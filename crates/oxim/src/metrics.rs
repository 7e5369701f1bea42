//! The daemon's Prometheus endpoint (`metrics_listen`, an oxim extension,
//! off by default): counters kept as relaxed atomics where things happen,
//! and one scrape that reads them together with oxim-net's TFO outcome
//! counters, the kernel's TFO counters, the queue and the spool writer.
//!
//! What is counted is what the daemon process does: with a delivery helper
//! (configurations whose transports run as other users), or for queue runs
//! started outside the daemon, deliveries happen in other processes and are
//! not counted here (receptions, connections and TFO still are).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Events counted where they happen.
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    bounces: AtomicU64,
    pipe_hit: AtomicU64,
    pipe_miss: AtomicU64,
    pipe_fallback: AtomicU64,
    early_in: AtomicU64,
}

static COUNTERS: Counters = Counters {
    received: AtomicU64::new(0),
    delivered: AtomicU64::new(0),
    deferred: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    bounces: AtomicU64::new(0),
    pipe_hit: AtomicU64::new(0),
    pipe_miss: AtomicU64::new(0),
    pipe_fallback: AtomicU64::new(0),
    early_in: AtomicU64::new(0),
};

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A message is on the spool (its `<=` line).
pub fn received() {
    bump(&COUNTERS.received);
}

/// One address delivered (`=>`, `->`).
pub fn delivered() {
    bump(&COUNTERS.delivered);
}

/// One address deferred (`==`).
pub fn deferred() {
    bump(&COUNTERS.deferred);
}

/// One address failed (`**`).
pub fn failed() {
    bump(&COUNTERS.failed);
}

/// A bounce message was put on the spool.
pub fn bounce() {
    bump(&COUNTERS.bounces);
}

/// A connection to a host where early pipelining is allowed: with a cached
/// EHLO answer (`hit`: EHLO and the first transaction go without waiting for
/// the banner) or without one (`miss`).
pub fn pipe_connect(hit: bool) {
    bump(if hit {
        &COUNTERS.pipe_hit
    } else {
        &COUNTERS.pipe_miss
    });
}

/// The server's banner or EHLO answer did not match the cached one (refused,
/// or a different offer): the cache entry was dropped or replaced.
pub fn pipe_connect_fallback() {
    bump(&COUNTERS.pipe_fallback);
}

/// A message came from a client that pipelined before our banner (` L*`).
pub fn early_pipelined_in() {
    bump(&COUNTERS.early_in);
}

/// What only the daemon knows at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Messages on the spool (`None`: the input directory could not be read).
    pub queue: Option<u64>,
    /// SMTP connections open now.
    pub open_connections: u64,
    /// Spool group-commit writer totals (zero until the writer starts,
    /// with the first message).
    pub spool: oxim_spool::WriterStats,
    /// Kernel TCP Fast Open counters of the namespace (`TcpExt`).
    pub kernel_tfo: Vec<(String, u64)>,
}

#[derive(Debug)]
struct Snapshot {
    scrape: Scrape,
    tfo: oxim_net::TfoCountersSnapshot,
    counts: [u64; 9],
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn labelled(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (l, v) in values {
        let labels = [(label, *l)];
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let t = &self.tfo;
        let [received, delivered, deferred, failed, bounces, hit, miss, fallback, early_in] =
            self.counts;
        labelled(
            &mut e,
            "oxim_tfo_server_connections",
            "Accepted connections by TCP Fast Open outcome (as logged: TFO, TFO*).",
            "outcome",
            &[
                ("none", t.server_none),
                ("cookie", t.server_cookie),
                ("cookie-data", t.server_cookie_data),
            ],
        )?;
        labelled(
            &mut e,
            "oxim_tfo_client_connections",
            "Outgoing connections by TCP Fast Open outcome.",
            "outcome",
            &[
                ("not-tried", t.client_not_tried),
                ("cookie-requested", t.client_requested),
                ("cookie-accepted", t.client_accepted),
                ("cookie-rejected", t.client_rejected),
                ("data-acked", t.client_data_acked),
            ],
        )?;
        let kernel: Vec<(&str, u64)> = self
            .scrape
            .kernel_tfo
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        labelled(
            &mut e,
            "oxim_kernel_tfo_events",
            "The kernel's TCP Fast Open counters for this network namespace \
             (TCPFastOpenBlackhole: active TFO disabled after suspected middlebox drops).",
            "counter",
            &kernel,
        )?;
        labelled(
            &mut e,
            "oxim_pipe_connect_client",
            "Connections to hosts in hosts_pipe_connect: with a cached EHLO answer (hit), \
             without (miss), and answers that differed from the cache (fallback).",
            "result",
            &[("hit", hit), ("miss", miss), ("fallback", fallback)],
        )?;
        counter(
            &mut e,
            "oxim_pipe_connect_server_messages",
            "Messages received from clients that pipelined before the banner (L*).",
            early_in,
        )?;
        counter(
            &mut e,
            "oxim_round_trips_saved",
            "Round trips saved on outgoing connections, as estimated: one per accepted TFO \
             cookie and one per PIPECONNECT hit.",
            t.client_accepted + t.client_data_acked + hit,
        )?;
        let inbound = t.server_none + t.server_cookie + t.server_cookie_data;
        let outbound = t.client_not_tried
            + t.client_requested
            + t.client_accepted
            + t.client_rejected
            + t.client_data_acked;
        labelled(
            &mut e,
            "oxim_smtp_connections",
            "TCP connections accepted (in) and opened (out).",
            "direction",
            &[("in", inbound), ("out", outbound)],
        )?;
        gauge(
            &mut e,
            "oxim_smtp_connections_open",
            "Incoming SMTP connections open now.",
            self.scrape.open_connections,
        )?;
        counter(
            &mut e,
            "oxim_messages_received",
            "Messages accepted onto the spool.",
            received,
        )?;
        labelled(
            &mut e,
            "oxim_deliveries",
            "Delivery attempts per address by result (=>, ==, **).",
            "result",
            &[
                ("delivered", delivered),
                ("deferred", deferred),
                ("failed", failed),
            ],
        )?;
        counter(
            &mut e,
            "oxim_bounces",
            "Bounce messages generated.",
            bounces,
        )?;
        if let Some(q) = self.scrape.queue {
            gauge(&mut e, "oxim_queue_messages", "Messages on the spool.", q)?;
        }
        let oxim_spool::WriterStats {
            messages,
            batches,
            syncfs_batches: syncfs,
            journal_batches,
            checkpoints,
            fdatasyncs,
            dir_fsyncs,
            sync_micros,
            ..
        } = self.scrape.spool;
        counter(
            &mut e,
            "oxim_spool_commit_batches",
            "Group commits of the spool writer.",
            batches,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_messages",
            "Messages made durable by the spool writer.",
            messages,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_syncfs_batches",
            "Group commits made durable with one syncfs(2).",
            syncfs,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_journal_batches",
            "Group commits made durable with one append and fdatasync of the commit log.",
            journal_batches,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_checkpoints",
            "Commit log checkpoints.",
            checkpoints,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_fdatasyncs",
            "fdatasync(2) calls made by the spool writer.",
            fdatasyncs,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_dir_fsyncs",
            "Directory fsync(2) calls made by the spool writer.",
            dir_fsyncs,
        )?;
        counter(
            &mut e,
            "oxim_spool_commit_sync_microseconds",
            "Time the spool writer spent waiting for durability.",
            sync_micros,
        )?;
        Ok(())
    }
}

/// The OpenMetrics text of everything counted, with `scrape`'s values.
pub fn render(scrape: Scrape) -> String {
    let c = &COUNTERS;
    let counts = [
        &c.received,
        &c.delivered,
        &c.deferred,
        &c.failed,
        &c.bounces,
        &c.pipe_hit,
        &c.pipe_miss,
        &c.pipe_fallback,
        &c.early_in,
    ]
    .map(|a| a.load(Ordering::Relaxed));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot {
        scrape,
        tfo: oxim_net::TfoCounters::global().snapshot(),
        counts,
    }));
    let mut out = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Serve `GET /metrics` on `listener` until the process ends, one short
/// HTTP/1.1 exchange per connection. `scrape` runs on a blocking thread
/// (it reads the spool directory).
pub async fn serve<F>(listener: TcpListener, scrape: Arc<F>)
where
    F: Fn() -> Scrape + Send + Sync + 'static,
{
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let scrape = scrape.clone();
        tokio::spawn(async move {
            let answer = async {
                let head = read_head(&mut stream).await?;
                let response = match request_target(&head) {
                    Ok(("GET" | "HEAD", "/metrics")) => {
                        let body = tokio::task::spawn_blocking(move || render(scrape()))
                            .await
                            .unwrap_or_default();
                        let head_only = head.starts_with(b"HEAD");
                        response(
                            "200 OK",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            &body,
                            head_only,
                        )
                    }
                    Ok(("GET" | "HEAD", _)) => {
                        response("404 Not Found", "text/plain", "not found\n", false)
                    }
                    Ok(_) => response(
                        "405 Method Not Allowed",
                        "text/plain",
                        "GET /metrics only\n",
                        false,
                    ),
                    Err(()) => response("400 Bad Request", "text/plain", "bad request\n", false),
                };
                stream.write_all(&response).await?;
                stream.shutdown().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), answer).await;
        });
    }
}

/// The request head, up to its blank line (at most 8 KiB).
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// Method and target of an HTTP/1.x request line.
fn request_target(head: &[u8]) -> Result<(&str, &str), ()> {
    let line = head.split(|&b| b == b'\n').next().ok_or(())?;
    let line = std::str::from_utf8(line).map_err(|_| ())?.trim_end();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if v.starts_with("HTTP/1.") => {
            Ok((m, t.split('?').next().unwrap_or(t)))
        }
        _ => Err(()),
    }
}

fn response(status: &str, ctype: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        r.extend_from_slice(body.as_bytes());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(("GET", "/metrics"))
        );
        assert_eq!(
            request_target(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Ok(("GET", "/metrics"))
        );
        assert_eq!(request_target(b"GET /metrics\r\n\r\n"), Err(()));
        assert_eq!(request_target(b"\xff\r\n\r\n"), Err(()));
    }

    #[test]
    fn render_has_the_families_and_counts() {
        received();
        let text = render(Scrape {
            queue: Some(3),
            open_connections: 1,
            spool: oxim_spool::WriterStats {
                messages: 5,
                batches: 2,
                ..Default::default()
            },
            kernel_tfo: vec![("TCPFastOpenBlackhole".into(), 0)],
        });
        for want in [
            "# TYPE oxim_messages_received counter",
            "oxim_queue_messages 3",
            "oxim_spool_commit_batches_total 2",
            "oxim_tfo_client_connections_total{outcome=\"cookie-accepted\"}",
            "oxim_kernel_tfo_events_total{counter=\"TCPFastOpenBlackhole\"} 0",
            "oxim_pipe_connect_client_total{result=\"hit\"}",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let line = text
            .lines()
            .find(|l| l.starts_with("oxim_messages_received_total "))
            .expect("received line");
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1, "{line}");
    }
}
