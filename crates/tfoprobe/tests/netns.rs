//! The probe end to end in its private namespace, with 50 ms each way:
//! the banner takes about two round trips without a cookie and one with.
//! Root only (fails with a message otherwise); needs `oxim` and
//! `oxim-delayer` built next to the probe (`cargo test --workspace` builds
//! every binary).

use std::process::Command;

/// The summary row for `phase` and `outcome`: (n, banner RTTs, final RTTs).
fn row(out: &str, phase: &str, outcome: &str) -> (usize, f64, f64) {
    let line = out
        .lines()
        .skip_while(|l| !l.starts_with("RTT "))
        .find(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(phase) && f.next() == Some(outcome)
        })
        .unwrap_or_else(|| panic!("no summary row {phase} {outcome} in:\n{out}"));
    let n = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    // "... 202.1 [201.9-206.0] (1.98)   531.2 [...] (5.10)"
    let rtts: Vec<f64> = line
        .split('(')
        .skip(1)
        .map(|p| p.split(')').next().unwrap().parse().unwrap())
        .collect();
    (n, rtts[0], rtts[1])
}

#[test]
fn banner_takes_one_round_trip_less_with_a_cookie() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates a private network namespace)"
    );
    let probe = env!("CARGO_BIN_EXE_oxim-tfo-probe");
    let dir = std::path::Path::new(probe).parent().unwrap();
    for bin in ["oxim", "oxim-delayer"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} is missing next to the probe: cargo build -p oxim -p oxim-delayer"
        );
    }
    let out = Command::new(probe)
        .args(["--count", "3", "--delay", "50ms", "--emulator", "delayer"])
        .output()
        .expect("run oxim-tfo-probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (n, cold_banner, cold_final) = row(&text, "no-cookie", "cookie-requested");
    assert_eq!(n, 3);
    let (n, warm_banner, warm_final) = row(&text, "cookie", "cookie-accepted");
    assert_eq!(n, 3);
    assert!((1.7..2.6).contains(&cold_banner), "{text}");
    assert!((0.8..1.5).contains(&warm_banner), "{text}");
    assert!(cold_final > warm_final + 0.7, "{text}");
    // The server saw the same: its log says cookie for every warm session.
    let per_conn: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("cookie"))
        .collect();
    assert_eq!(per_conn.len(), 3, "{text}");
    for l in per_conn {
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(cols[2..4], ["cookie-accepted", "cookie"], "{text}");
    }
}
