//! Rough throughput figures for the hot paths (run with `--release`):
//! `cargo run --release -p oxim-smtp --example throughput`.

use std::time::Instant;

use oxim_smtp::{DotStuffer, Event, Extensions, Reply, ServerConfig, ServerSession};

fn body(len: usize) -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog; .leading dots sometimes\n";
    let mut b = Vec::with_capacity(len + line.len());
    while b.len() < len {
        b.extend_from_slice(line);
    }
    b
}

fn serve(s: &mut ServerSession, ext: &Extensions) -> (usize, u64) {
    let mut events = 0;
    let mut bytes = 0u64;
    while let Some(ev) = s.poll_event() {
        events += 1;
        let r = match ev {
            Event::Helo { .. } => s.accept_ehlo("mx", "Hello", ext),
            Event::Mail(_) => s.accept_mail(),
            Event::Rcpt(_) => s.accept_rcpt(),
            Event::Data => s.start_data(),
            Event::DataChunk(c) => {
                bytes += c.len() as u64;
                Ok(())
            }
            Event::DataEnd(_) => s.accept_message("id"),
            Event::Quit => s.accept_quit("mx"),
            _ => Ok(()),
        };
        r.expect("respond");
    }
    (events, bytes)
}

fn main() {
    let ext = Extensions {
        pipelining: true,
        size: Some(0),
        ..Extensions::default()
    };
    // 1. Large body through DATA.
    let raw = body(256 << 20);
    let mut wire = Vec::new();
    let t = Instant::now();
    let mut st = DotStuffer::new();
    for c in raw.chunks(65536) {
        st.encode(c, &mut wire);
    }
    st.finish(&mut wire);
    let dt = t.elapsed().as_secs_f64();
    println!("DotStuffer encode: {:.0} MB/s", raw.len() as f64 / dt / 1e6);

    let mut s = ServerSession::new(ServerConfig::default());
    s.greet(Reply::new(220, "mx")).unwrap();
    for cmd in ["EHLO c\r\n", "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"] {
        s.handle_input(cmd.as_bytes());
        serve(&mut s, &ext);
    }
    let t = Instant::now();
    let mut got = 0;
    for c in wire.chunks(65536) {
        s.handle_input(c);
        got += serve(&mut s, &ext).1;
    }
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(got as usize, raw.len());
    println!(
        "ServerSession DATA decode: {:.0} MB/s",
        wire.len() as f64 / dt / 1e6
    );

    // 2. Many small pipelined transactions.
    let msg = b"MAIL FROM:<sender@example.org> SIZE=2048\r\nRCPT TO:<rcpt@example.net>\r\nDATA\r\n";
    let small = DotStuffer::stuff_all(&body(2048));
    let n = 200_000;
    let mut s = ServerSession::new(ServerConfig::default());
    s.greet(Reply::new(220, "mx")).unwrap();
    s.handle_input(b"EHLO c\r\n");
    serve(&mut s, &ext);
    s.take_output();
    let t = Instant::now();
    for _ in 0..n {
        s.handle_input(msg);
        serve(&mut s, &ext);
        s.handle_input(&small);
        serve(&mut s, &ext);
        s.take_output();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "ServerSession: {:.0} transactions/s (2 KiB body, {:.2} us each)",
        n as f64 / dt,
        dt / n as f64 * 1e6
    );
}
