//! Log files on disk.

use oxim_log::*;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn is_timestamp(s: &str, millis: bool) -> bool {
    // YYYY-MM-DD HH:MM:SS[.mmm]
    let b = s.as_bytes();
    let want = if millis { 23 } else { 19 };
    b.len() == want
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

fn logger(dir: &std::path::Path, selector: &str) -> Logger {
    let template = resolve_log_file_path(&format!("{}/log/%slog", dir.display()), dir).unwrap();
    Logger::new(
        &template,
        LoggerOptions {
            selector: LogSelector::parse(selector).unwrap(),
            ..LoggerOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn resolves_paths() {
    let spool = std::path::Path::new("/var/spool/oxim");
    assert_eq!(
        resolve_log_file_path("", spool).unwrap(),
        "/var/spool/oxim/log/%slog"
    );
    assert_eq!(
        resolve_log_file_path("syslog : /var/log/exim_%s", spool).unwrap(),
        "/var/log/exim_%s"
    );
    assert!(matches!(
        resolve_log_file_path("syslog", spool),
        Err(LogError::BadPath(_))
    ));
    assert!(matches!(
        resolve_log_file_path("/var/log/x", spool),
        Err(LogError::BadPath(_))
    ));
}

#[test]
fn writes_main_and_reject_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = logger(dir.path(), "+millisec");
    let mut r = Received::new("10HmaX-0005vi-00", "a@b", 10);
    r.ident = Some("CALLER");
    r.protocol = Some("local");
    log.write(&LogRecord::Received(r)).unwrap();
    log.write(&LogRecord::ConnectionRefused {
        host: SenderHost::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5),
        reason: "host_reject_connection",
    })
    .unwrap();
    let main = std::fs::read_to_string(dir.path().join("log/mainlog")).unwrap();
    let lines: Vec<&str> = main.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(is_timestamp(&lines[0][..23], true), "{}", lines[0]);
    assert_eq!(
        &lines[0][23..],
        " 10HmaX-0005vi-00 <= a@b U=CALLER P=local S=10"
    );
    assert_eq!(
        &lines[1][23..],
        " refused connection from [127.0.0.1] (host_reject_connection)"
    );
    let reject = std::fs::read_to_string(dir.path().join("log/rejectlog")).unwrap();
    assert_eq!(reject.lines().count(), 1);
    assert!(reject.ends_with(" refused connection from [127.0.0.1] (host_reject_connection)\n"));
    assert!(!dir.path().join("log/paniclog").exists());
}

#[test]
fn suppressed_records_touch_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = logger(dir.path(), "-connection_reject");
    log.write(&LogRecord::SmtpConnection {
        interface: None,
        host: SenderHost::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5),
        count: 1,
    })
    .unwrap();
    assert!(!dir.path().join("log/mainlog").exists());
    log.write(&LogRecord::ConnectionRefused {
        host: SenderHost::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5),
        reason: "host_reject_connection",
    })
    .unwrap();
    assert!(!dir.path().join("log/mainlog").exists());
    assert!(dir.path().join("log/rejectlog").exists());
}

#[test]
fn timestamps_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let log = logger(dir.path(), "+pid");
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let line = log.format_line(
        &LogRecord::Completed {
            id: "10HmaX-0005vi-00",
            queue_time: None,
        },
        t,
    );
    assert!(is_timestamp(&line[..19], false), "{line}");
    assert_eq!(
        &line[19..],
        &format!(" [{}] 10HmaX-0005vi-00 Completed\n", std::process::id())
    );
    let z = format_timestamp(t, false, true);
    let zone = &z[19..];
    assert_eq!(zone.len(), 6, "{z}");
    assert!(zone.starts_with(" +") || zone.starts_with(" -"));
}

#[test]
fn timestamps_use_tz() {
    // Run in a child with TZ set, so the parent's environment is untouched.
    if std::env::var("OXIM_LOG_TZ_CHILD").is_ok() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        println!("STAMP[{}]", format_timestamp(t, true, true));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "timestamps_use_tz", "--nocapture"])
        .env("OXIM_LOG_TZ_CHILD", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("STAMP[2023-11-14 22:13:20.123 +0000]"),
        "{stdout}"
    );
}

#[test]
fn reopens_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = logger(dir.path(), "");
    let text = |s: &'static str| LogRecord::Text {
        id: None,
        text: s,
        dest: Dest::MAIN,
    };
    log.write(&text("one")).unwrap();
    let main = dir.path().join("log/mainlog");
    std::fs::rename(&main, dir.path().join("log/mainlog.1")).unwrap();
    log.reopen();
    log.write(&text("two")).unwrap();
    assert!(std::fs::read_to_string(&main).unwrap().ends_with(" two\n"));
    // Without an explicit reopen the rename is noticed within a second.
    std::fs::rename(&main, dir.path().join("log/mainlog.2")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    log.write(&text("three")).unwrap();
    assert!(std::fs::read_to_string(&main)
        .unwrap()
        .ends_with(" three\n"));
}

#[test]
fn concurrent_writers_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(logger(dir.path(), ""));
    let long = "x".repeat(3000);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            let long = long.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let text = format!("t{t} i{i} {long}");
                    log.write(&LogRecord::Text {
                        id: None,
                        text: &text,
                        dest: Dest::MAIN,
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let main = std::fs::read_to_string(dir.path().join("log/mainlog")).unwrap();
    let lines: Vec<&str> = main.lines().collect();
    assert_eq!(lines.len(), 1600);
    let mut seen = std::collections::HashSet::new();
    for l in lines {
        let mut parts = l[20..].splitn(3, ' ');
        let (t, i, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(t.starts_with('t') && i.starts_with('i'), "torn line");
        assert_eq!(body, long, "torn line");
        assert!(seen.insert((t.to_string(), i.to_string())));
    }
}

#[test]
fn reject_log_gets_headers_main_log_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = logger(dir.path(), "");
    let hdrs = [(' ', "Subject: hi\n")];
    log.write(&LogRecord::RejectedWithHeaders {
        rejected: Rejected {
            id: Some("10HmaX-0005vi-00"),
            host: Some(SenderHost::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1)),
            ident: None,
            tls: None,
            sender: Some(""),
            auth: None,
            what: RejectWhat::AfterData,
            temporary: true,
            reason: Some("try later"),
        },
        headers: RejectedHeaders {
            envelope_from: Some(""),
            envelope_to: &[],
            headers: &hdrs,
        },
    })
    .unwrap();
    let main = std::fs::read_to_string(dir.path().join("log/mainlog")).unwrap();
    let reject = std::fs::read_to_string(dir.path().join("log/rejectlog")).unwrap();
    let line = " 10HmaX-0005vi-00 H=[127.0.0.1] F=<> temporarily rejected after DATA: try later\n";
    assert!(main.ends_with(line) && main.lines().count() == 1, "{main}");
    assert_eq!(
        &reject[19..],
        format!("{line}Envelope-from: <>\n  Subject: hi\n")
    );
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Logger>();
    check::<LogSelector>();
    check::<LogRecord<'static>>();
    check::<LogError>();
}

#[test]
fn dated_log_paths_switch_with_the_date() {
    // Run in a child with TZ=UTC so the dates are known.
    if std::env::var("OXIM_LOG_DATED_CHILD").is_err() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "dated_log_paths_switch_with_the_date",
                "--nocapture",
            ])
            .env("OXIM_LOG_DATED_CHILD", "1")
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("DATED-OK"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{}/%slog-%D", dir.path().display());
    let log = Logger::new(&template, LoggerOptions::default()).unwrap();
    let day1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14
    let day2 = day1 + Duration::from_secs(86_400);
    let rec = |text: &'static str| LogRecord::Text {
        id: None,
        text,
        dest: Dest::MAIN,
    };
    log.write_at(&rec("one"), day1).unwrap();
    log.write_at(&rec("two"), day2).unwrap();
    assert_eq!(
        log.current_path(LogKind::Main, day1),
        dir.path().join("mainlog-20231114")
    );
    let a = std::fs::read_to_string(dir.path().join("mainlog-20231114")).unwrap();
    let b = std::fs::read_to_string(dir.path().join("mainlog-20231115")).unwrap();
    assert!(a.ends_with(" one\n") && a.lines().count() == 1, "{a}");
    assert!(b.ends_with(" two\n") && b.lines().count() == 1, "{b}");
    println!("DATED-OK");
}
