//! The smtp transport against scripted servers (issue "Delivery"): one
//! connection for a queue run's messages to one host, a slow host that does
//! not hold up the others, hosts that misbehave, options that fail to
//! expand, BODY=8BITMIME.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A configuration that routes `*.example` domains to 127.0.0.1 on `port`
/// (`slow.example` to `slow_port` through a second transport), with
/// `extra` added to the smtp transport.
fn conf(port: u16, slow_port: u16, extra: &str) -> String {
    let timeout = if extra.contains("command_timeout") {
        ""
    } else {
        "  command_timeout = 5s"
    };
    format!(
        r#"
{TEST_MAIN}
begin routers

local:
  driver = accept
  domains = +local_domains
  transport = mbox

slow:
  driver = manualroute
  domains = slow.example
  route_list = * 127.0.0.1
  self = send
  transport = slow_smtp

remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory

smtp:
  driver = smtp
  port = {port}
{timeout}
{extra}

slow_smtp:
  driver = smtp
  port = {slow_port}
  command_timeout = 6s

begin retry

* * F,1h,1s
"#
    )
}

fn spool_count(dir: &TestDir) -> usize {
    std::fs::read_dir(dir.path().join("spool/input"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with("-H"))
                .count()
        })
        .unwrap_or(0)
}

fn queue(dir: &TestDir, c: &str, rcpts: &[&str], body: &str) {
    let mut args = vec!["-C", c, "-odq", "-f", "me@test.ex"];
    args.extend_from_slice(rcpts);
    dir.run_ok(&args, body);
}

fn lines_with<'a>(log: &'a [String], pat: &str) -> Vec<&'a String> {
    log.iter().filter(|l| l.contains(pat)).collect()
}

#[test]
fn queue_run_sends_all_messages_for_a_host_down_one_connection() {
    let fake = FakeSmtp::start(vec![], &["SIZE 1000000", "PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, free_port(), ""));
    let c = c.to_str().unwrap();
    for i in 0..20 {
        queue(
            &dir,
            c,
            &[&format!("user{i}@remote.example")],
            &format!("Subject: m{i}\n\nbody {i}\n"),
        );
    }
    assert_eq!(spool_count(&dir), 20);
    assert_eq!(fake.connection_count(), 0);
    dir.run_ok(&["-C", c, "-qf"], "");

    assert_eq!(fake.connection_count(), 1, "{:#?}", fake.received());
    assert_eq!(fake.count("EHLO"), 1);
    assert_eq!(fake.count("MAIL FROM:<ME@TEST.EX>"), 20);
    assert_eq!(fake.count("DATA"), 20);
    // A completed transaction needs no RSET before the next MAIL.
    assert_eq!(fake.count("RSET"), 0);
    assert_eq!(fake.count("QUIT"), 1);

    let log = log_lines(&dir.read("log/mainlog"));
    let dlv = lines_with(&log, " => ");
    assert_eq!(dlv.len(), 20, "{log:#?}");
    let first: Vec<_> = dlv
        .iter()
        .filter(|l| l.contains(" H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\""))
        .collect();
    let continued: Vec<_> = dlv
        .iter()
        .filter(|l| l.contains(" H=127.0.0.1 [127.0.0.1]* C=\"250 OK id=fake\""))
        .collect();
    assert_eq!(first.len(), 1, "{dlv:#?}");
    assert_eq!(continued.len(), 19, "{dlv:#?}");
    for i in 0..20 {
        assert_eq!(
            lines_with(
                &log,
                &format!("=> user{i}@remote.example R=remote T=smtp H=")
            )
            .len(),
            1,
            "{log:#?}"
        );
    }
    assert_eq!(lines_with(&log, " Completed").len(), 20);
    assert_eq!(spool_count(&dir), 0);
}

#[test]
fn connection_max_messages_limits_messages_per_connection() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write(
        "c.conf",
        &conf(fake.port, free_port(), "  connection_max_messages = 2"),
    );
    let c = c.to_str().unwrap();
    for i in 0..5 {
        queue(&dir, c, &[&format!("u{i}@remote.example")], "body\n");
    }
    dir.run_ok(&["-C", c, "-qf"], "");
    assert_eq!(fake.connection_count(), 3);
    assert_eq!(fake.count("MAIL FROM"), 5);
    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(lines_with(&log, "[127.0.0.1]* C=").len(), 2, "{log:#?}");
    assert_eq!(spool_count(&dir), 0);
}

#[test]
fn rcpt_4xx_mid_connection_defers_only_that_message() {
    let fake = FakeSmtp::start(vec![("RCPT TO:<U3@", "451 4.3.0 not now")], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, free_port(), ""));
    let c = c.to_str().unwrap();
    for i in 0..6 {
        queue(&dir, c, &[&format!("u{i}@remote.example")], "body\n");
    }
    dir.run_ok(&["-C", c, "-qf"], "");
    assert_eq!(fake.connection_count(), 1);
    assert_eq!(fake.count("MAIL FROM"), 6);
    // u3's transaction ended without data (DATA got 503): the next
    // message on the connection, if any, starts with RSET.
    let got = fake.received();
    let at = got
        .iter()
        .position(|l| l.starts_with("RCPT TO:<u3@"))
        .unwrap();
    let rest = &got[at + 1..];
    match rest.iter().position(|l| l.starts_with("MAIL FROM")) {
        Some(next) => {
            assert!(rest[..next].iter().any(|l| l == "RSET"), "{got:#?}");
            assert_eq!(fake.count("RSET"), 1);
        }
        None => assert_eq!(fake.count("RSET"), 0),
    }
    let log = log_lines(&dir.read("log/mainlog"));
    let d = lines_with(&log, " == ");
    assert_eq!(d.len(), 1, "{log:#?}");
    assert!(d[0].contains("u3@remote.example R=remote T=smtp defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<u3@remote.example>: 451 4.3.0 not now"), "{}", d[0]);
    assert_eq!(lines_with(&log, " => ").len(), 5, "{log:#?}");
    assert_eq!(lines_with(&log, " Completed").len(), 5);
    assert_eq!(spool_count(&dir), 1);
    let listed = dir.run_ok(&["-C", c, "-bp"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("u3@remote.example"));
}

#[test]
fn slow_host_does_not_hold_up_other_deliveries() {
    // Accepts the connection, never sends a banner.
    let slow = FakeSmtp::start(vec![("<BANNER>", "<silent>")], &[]);
    let fast = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fast.port, slow.port, ""));
    let c = c.to_str().unwrap();
    // One message for both hosts, more than queue_run_max (5) for the slow
    // one, then several for the fast one only.
    queue(
        &dir,
        c,
        &["a@slow.example", "b@fast.example"],
        "Subject: both\n\nx\n",
    );
    for i in 0..6 {
        queue(&dir, c, &[&format!("s{i}@slow.example")], "z\n");
    }
    // Message ids sort by second first: the run meets the slow messages
    // before the fast ones.
    std::thread::sleep(Duration::from_millis(1100));
    for i in 0..6 {
        queue(&dir, c, &[&format!("f{i}@fast.example")], "y\n");
    }
    let start = Instant::now();
    let mut run = Command::new(oxim_bin())
        .args(["-C", c, "-qf"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn queue run");
    let all_fast = wait_for(Duration::from_secs(4), || {
        lines_with(
            &log_lines(&dir.read("log/mainlog")),
            "@fast.example R=remote",
        )
        .len()
            == 7
    });
    let elapsed = start.elapsed();
    let still_running = run.try_wait().expect("try_wait").is_none();
    assert!(
        all_fast,
        "fast deliveries held up: {}",
        dir.read("log/mainlog")
    );
    assert!(
        still_running,
        "the queue run ended before the slow host timed out ({elapsed:?})"
    );
    assert!(lines_with(&log_lines(&dir.read("log/mainlog")), "slow.example").is_empty());
    // The slow host times out (command_timeout 6s): the address whose
    // delivery tried it is deferred with the timeout, the others queued for
    // it are not tried again in this run. The run then ends.
    let status = run.wait().expect("wait queue run");
    assert!(status.success());
    let log = log_lines(&dir.read("log/mainlog"));
    let d = lines_with(&log, " == ");
    assert_eq!(d.len(), 7, "{log:#?}");
    let timed_out: Vec<_> = d
        .iter()
        .filter(|l| l.contains("@slow.example R=slow T=slow_smtp defer (110): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after initial connection"))
        .collect();
    assert_eq!(timed_out.len(), 1, "{d:#?}");
    let skipped = d
        .iter()
        .filter(|l| {
            l.contains(
                "@slow.example R=slow T=slow_smtp defer (-53): retry time not reached for any host",
            )
        })
        .count();
    assert_eq!(skipped, 6, "{d:#?}");
    assert_eq!(slow.connection_count(), 1);
    assert_eq!(fast.connection_count(), 1);
    assert_eq!(spool_count(&dir), 7);
}

/// Deliver one message to a fake with `rules` (no ESMTP extensions, so
/// commands go one by one) and return the main log.
fn deliver_against(
    rules: Vec<(&'static str, &'static str)>,
    extra: &str,
) -> (TestDir, Vec<String>) {
    let fake = FakeSmtp::start(rules, &[]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, free_port(), extra));
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "-f",
            "me@test.ex",
            "rcpt@remote.example",
        ],
        "Subject: s\n\nbody\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    (dir, log)
}

fn one<'a>(log: &'a [String], pat: &str) -> &'a str {
    let v = lines_with(log, pat);
    assert_eq!(v.len(), 1, "want one {pat:?} line in {log:#?}");
    v[0]
}

#[test]
fn connection_dropped_mid_data_defers_then_queue_run_delivers_once() {
    let (dir, log) = deliver_against(vec![("<BODY>", "<close>")], "");
    assert_eq!(
        one(&log, " == ").split_once(" == ").unwrap().1,
        "rcpt@remote.example R=remote T=smtp defer (-18) H=127.0.0.1 [127.0.0.1]: Remote host closed connection in response to end of data"
    );
    // Exim's separate host line for a connection-level problem.
    assert!(
        log.iter().any(|l| l.ends_with(
            " H=127.0.0.1 [127.0.0.1]: Remote host closed connection in response to end of data"
        ) && !l.contains(" == ")),
        "{log:#?}"
    );
    assert_eq!(spool_count(&dir), 1);
    let ok = FakeSmtp::start(vec![], &["PIPELINING"]);
    let c2 = dir.write("c2.conf", &conf(ok.port, free_port(), ""));
    let c2 = c2.to_str().unwrap();
    dir.run_ok(&["-C", c2, "-qf"], "");
    dir.run_ok(&["-C", c2, "-qf"], "");
    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(lines_with(&log, "=> rcpt@remote.example").len(), 1);
    assert_eq!(ok.count("DATA"), 1);
    assert_eq!(spool_count(&dir), 0);
}

#[test]
fn garbage_reply_defers_with_malformed_reply_error() {
    let (dir, log) = deliver_against(vec![("MAIL", "hello there, I am not SMTP")], "");
    assert_eq!(
        one(&log, " == ").split_once(" == ").unwrap().1,
        "rcpt@remote.example R=remote T=smtp defer (-19) H=127.0.0.1 [127.0.0.1]: Malformed SMTP reply in response to MAIL FROM:<me@test.ex>: hello there, I am not SMTP"
    );
    assert_eq!(spool_count(&dir), 1);
}

#[test]
fn silent_server_times_out_per_command_timeout() {
    let start = Instant::now();
    let (dir, log) = deliver_against(vec![("RCPT", "<silent>")], "  command_timeout = 1s");
    assert!(start.elapsed() < Duration::from_secs(4));
    assert_eq!(
        one(&log, " == ").split_once(" == ").unwrap().1,
        "rcpt@remote.example R=remote T=smtp defer (110): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after RCPT TO:<rcpt@remote.example>"
    );
    assert_eq!(spool_count(&dir), 1);
}

#[test]
fn final_reply_timeout_says_how_many_bytes_were_written() {
    let (_dir, log) = deliver_against(vec![(".", "<silent>")], "  final_timeout = 1s");
    let d = one(&log, " == ");
    let tail = d.split_once(" == ").unwrap().1;
    let prefix = "rcpt@remote.example R=remote T=smtp defer (110): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after end of data (";
    assert!(tail.starts_with(prefix), "{tail}");
    let n: usize = tail[prefix.len()..]
        .strip_suffix(" bytes written)")
        .expect("bytes written")
        .parse()
        .unwrap();
    assert!(n > "body\r\n.\r\n".len(), "{tail}");
}

#[test]
fn smtp_errors_at_each_stage_give_the_right_outcome() {
    // (rule, "==" or "**", expected error text after the host; current
    // Exim writes " : " before the error of a "**" line, ": " on "==")
    let cases: &[(&str, &str, &str, &str)] = &[
        ("MAIL", "451 4.3.2 busy", "== ", "defer (-45) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after MAIL FROM:<me@test.ex>: 451 4.3.2 busy"),
        ("MAIL", "550 5.7.1 go away", "** ", "H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after MAIL FROM:<me@test.ex>: 550 5.7.1 go away"),
        ("RCPT", "452 4.2.2 full", "== ", "defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<rcpt@remote.example>: 452 4.2.2 full"),
        ("DATA", "451 4.3.0 data later", "== ", "defer (-46) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after DATA: 451 4.3.0 data later"),
        ("DATA", "554 5.6.0 no data", "** ", "H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after DATA: 554 5.6.0 no data"),
        (".", "452 4.3.1 disk full", "== ", "defer (-46) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after end of data: 452 4.3.1 disk full"),
        (".", "552 5.3.4 too big", "** ", "H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after end of data: 552 5.3.4 too big"),
    ];
    for &(cmd, reply, mark, want) in cases {
        let (dir, log) = deliver_against(vec![(cmd, reply)], "");
        let line = one(&log, &format!(" {mark}rcpt@remote.example"));
        assert_eq!(
            line.split_once(mark).unwrap().1,
            format!("rcpt@remote.example R=remote T=smtp {want}"),
            "{cmd} {reply}"
        );
        if mark == "** " {
            // A bounce to the sender, and the message is done.
            let mbox = dir.read("mail/me");
            assert!(mbox.contains(reply), "{cmd} {reply}: {mbox}");
            let id = one(&log, " <= me@test.ex")
                .split_whitespace()
                .next()
                .unwrap();
            one(&log, &format!("{id} Completed"));
            assert_eq!(spool_count(&dir), 0, "{cmd} {reply}");
        } else {
            assert_eq!(spool_count(&dir), 1, "{cmd} {reply}");
            assert!(dir.read("mail/me").is_empty());
        }
    }
}

#[test]
fn transport_option_that_cannot_be_expanded_defers_with_the_error() {
    let cases: &[(&str, &str)] = &[
        (
            "  hosts = ${lookup{x}lsearch{/nonexistent/oxim-test}}\n  hosts_override",
            "defer (0): failed to expand list of hosts \"${lookup{x}lsearch{/nonexistent/oxim-test}}\" in smtp transport: ",
        ),
        (
            "  helo_data = ${if bad",
            "defer (-27): failed to expand helo_data: ",
        ),
    ];
    for &(extra, want) in cases {
        let (dir, log) = deliver_against(vec![], extra);
        let d = one(&log, " == ");
        let tail = d.split_once(" == ").unwrap().1;
        let reason = tail
            .strip_prefix(&format!("rcpt@remote.example R=remote T=smtp {want}"))
            .unwrap_or_else(|| panic!("{extra}: {tail}"));
        assert!(!reason.trim().is_empty(), "no reason given: {tail}");
        assert_eq!(spool_count(&dir), 1);
    }
    // port: the smtp transport's own port line replaced by a broken one.
    let dir = TestDir::new();
    let text =
        conf(free_port(), free_port(), "").replacen("  port = ", "  port = ${if bad\n  #", 1);
    let c = dir.write("c.conf", &text);
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "rcpt@remote.example"],
        "x\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let d = one(&log, " == ");
    assert!(
        d.contains("rcpt@remote.example R=remote T=smtp defer (0): failed to expand \"${if bad\" (\"port\" option) for smtp transport: "),
        "{d}"
    );
    assert_eq!(spool_count(&dir), 1);
}

#[test]
fn body_8bitmime_is_passed_on_where_offered() {
    let eight = FakeSmtp::start(vec![], &["8BITMIME", "PIPELINING"]);
    let seven = FakeSmtp::start(vec![], &["PIPELINING"]);
    for (fake, offered) in [(&eight, true), (&seven, false)] {
        let dir = TestDir::new();
        let c = dir.write("c.conf", &conf(fake.port, free_port(), ""));
        let c = c.to_str().unwrap();
        let smtp = |body_param: &str, rcpt: &str| {
            format!(
                "EHLO client.example\r\nMAIL FROM:<me@test.ex>{body_param}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nSubject: 8bit\r\n\r\ncaf\u{e9}\r\n.\r\nQUIT\r\n"
            )
        };
        let out = dir.run_ok(
            &["-C", c, "-bs", "-odq"],
            &smtp(" BODY=8BITMIME", "e@remote.example"),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("250-8BITMIME"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        dir.run_ok(&["-C", c, "-bs", "-odq"], &smtp("", "s@remote.example"));
        dir.run_ok(&["-C", c, "-qf"], "");
        let mails: Vec<String> = fake
            .received()
            .into_iter()
            .filter(|l| l.starts_with("MAIL FROM"))
            .collect();
        assert_eq!(mails.len(), 2, "{mails:?}");
        assert_eq!(
            mails
                .iter()
                .filter(|l| l.ends_with(" BODY=8BITMIME"))
                .count(),
            usize::from(offered),
            "{mails:?}"
        );
        let log = log_lines(&dir.read("log/mainlog"));
        assert_eq!(lines_with(&log, " => ").len(), 2, "{log:#?}");
    }
}

#[test]
fn transport_hosts_on_this_machine_need_allow_localhost() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let base = conf(fake.port, free_port(), "").replace(
        "remote:\n  driver = manualroute\n  route_list = * 127.0.0.1\n  self = send\n",
        "remote:\n  driver = accept\n",
    );
    // Without allow_localhost: deferred, nothing sent.
    let dir = TestDir::new();
    let c = dir.write(
        "c.conf",
        &base.replace(
            "  driver = smtp\n  port",
            "  driver = smtp\n  hosts = 127.0.0.1\n  port",
        ),
    );
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "x@remote.example"],
        "x\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        one(&log, " == ").ends_with("x@remote.example R=remote T=smtp defer (-50): smtp transport found host 127.0.0.1 to be local"),
        "{log:#?}"
    );
    assert_eq!(fake.connection_count(), 0);
    // With it: delivered.
    let dir = TestDir::new();
    let c = dir.write(
        "c.conf",
        &base.replace(
            "  driver = smtp\n  port",
            "  driver = smtp\n  hosts = 127.0.0.1\n  allow_localhost\n  port",
        ),
    );
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "x@remote.example"],
        "x\n",
    );
    let log = log_lines(&dir.read("log/mainlog"));
    one(
        &log,
        "=> x@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\"",
    );
    assert_eq!(fake.connection_count(), 1);
}

#[test]
fn hosts_avoid_pipelining_sends_commands_one_by_one() {
    for (extra, pipelined) in [("", true), ("  hosts_avoid_pipelining = 127.0.0.1", false)] {
        let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
        let dir = TestDir::new();
        let c = dir.write("c.conf", &conf(fake.port, free_port(), extra));
        dir.run_ok(
            &[
                "-C",
                c.to_str().unwrap(),
                "-odi",
                "a@remote.example",
                "b@remote.example",
            ],
            "x\n",
        );
        let log = log_lines(&dir.read("log/mainlog"));
        assert_eq!(
            lines_with(&log, "@remote.example R=remote T=smtp H=").len(),
            2,
            "{log:#?}"
        );
        let p = fake.pipelined.lock().unwrap().clone();
        assert_eq!(!p.is_empty(), pipelined, "{extra:?}: {p:?}");
    }
}

#[test]
fn parked_connection_closed_by_the_server_is_replaced() {
    // The server closes the connection after every message: each next
    // message finds its parked connection dead and opens a new one.
    let fake = FakeSmtp::start(vec![(".", "250 OK id=fake<close>")], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, free_port(), ""));
    let c = c.to_str().unwrap();
    for i in 0..3 {
        queue(&dir, c, &[&format!("u{i}@remote.example")], "body\n");
    }
    dir.run_ok(&["-C", c, "-qf"], "");
    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(lines_with(&log, " == ").len(), 0, "{log:#?}");
    assert_eq!(
        lines_with(&log, " H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\"").len(),
        3,
        "{log:#?}"
    );
    assert_eq!(fake.connection_count(), 3);
    assert_eq!(fake.count("DATA"), 3);
    assert_eq!(spool_count(&dir), 0);
}

#[test]
fn more_recipients_than_max_rcpt_share_one_connection() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(fake.port, free_port(), "  max_rcpt = 2"));
    let rcpts: Vec<String> = (0..5).map(|i| format!("r{i}@remote.example")).collect();
    let mut args = vec!["-C", c.to_str().unwrap(), "-odi", "-f", "me@test.ex"];
    args.extend(rcpts.iter().map(String::as_str));
    dir.run_ok(&args, "x\n");
    assert_eq!(fake.connection_count(), 1);
    assert_eq!(fake.count("MAIL FROM"), 3);
    assert_eq!(fake.count("RCPT TO"), 5);
    assert_eq!(fake.count("QUIT"), 1);
    let log = log_lines(&dir.read("log/mainlog"));
    // One message: no continued-connection mark.
    assert_eq!(
        lines_with(&log, " H=127.0.0.1 [127.0.0.1] C=\"250 OK id=fake\"").len(),
        5,
        "{log:#?}"
    );
    one(&log, " Completed");
}

#[test]
fn hosts_override_helo_data_and_size() {
    // The router says 127.0.0.1; with hosts_override the transport's own
    // 127.0.0.2 (nothing listens there) wins, without it the router's.
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    for (extra, reached) in [
        ("  hosts = 127.0.0.2\n  hosts_override", false),
        ("  hosts = 127.0.0.2", true),
    ] {
        let dir = TestDir::new();
        let c = dir.write(
            "c.conf",
            &conf(
                fake.port,
                free_port(),
                &format!("{extra}\n  allow_localhost\n  helo_data = helo.$primary_hostname"),
            ),
        );
        let before = fake.connection_count();
        dir.run_ok(
            &[
                "-C",
                c.to_str().unwrap(),
                "-odi",
                "-f",
                "me@test.ex",
                "h@remote.example",
            ],
            "x\n",
        );
        let log = log_lines(&dir.read("log/mainlog"));
        assert_eq!(
            fake.connection_count() - before,
            usize::from(reached),
            "{extra}"
        );
        if reached {
            one(
                &log,
                "=> h@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1] C=",
            );
        } else {
            assert!(
                one(&log, " == ")
                    .ends_with("h@remote.example R=remote T=smtp defer (111): Connection refused"),
                "{log:#?}"
            );
        }
    }
    let got = fake.received();
    assert_eq!(
        got.iter()
            .filter(|l| *l == "EHLO helo.myhost.test.ex")
            .count(),
        1,
        "{got:?}"
    );
    // SIZE= only where SIZE is offered.
    let mail = got.iter().find(|l| l.starts_with("MAIL FROM")).unwrap();
    assert_eq!(mail, "MAIL FROM:<me@test.ex>");
}

#[test]
fn server_that_stops_reading_data_times_out_per_data_timeout() {
    let fake = FakeSmtp::start(vec![("<BODY>", "<stall>")], &[]);
    let dir = TestDir::new();
    let c = dir.write(
        "c.conf",
        &conf(fake.port, free_port(), "  data_timeout = 1s"),
    );
    // More than the loopback socket buffers hold.
    let line = "x".repeat(999) + "\n";
    let body = format!("Subject: big\n\n{}", line.repeat(24 * 1024));
    let start = Instant::now();
    dir.run_ok(
        &[
            "-C",
            c.to_str().unwrap(),
            "-odi",
            "-f",
            "me@test.ex",
            "big@remote.example",
        ],
        &body,
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let d = one(&log, " == ");
    let prefix = "big@remote.example R=remote T=smtp defer (110): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after sending data block (";
    let tail = d.split_once(" == ").unwrap().1;
    let n: usize = tail
        .strip_prefix(prefix)
        .and_then(|t| t.strip_suffix(" bytes written)"))
        .unwrap_or_else(|| panic!("{tail}"))
        .parse()
        .unwrap();
    assert!(n > 0 && n < body.len(), "{tail}");
    assert_eq!(spool_count(&dir), 1);
}

#[test]
fn mixed_queue_run_with_one_working_delivery_finishes() {
    // queue_run_max = 1, messages for two hosts at once and for each alone:
    // many deliveries wait for hosts busy with other messages, and the run
    // must still finish with every message delivered (a smoke test for the
    // waiting rules; the interleaving that could deadlock is not forced).
    let one_host = FakeSmtp::start(vec![], &["PIPELINING"]);
    let other = FakeSmtp::start(vec![], &["PIPELINING"]);
    let dir = TestDir::new();
    let text = format!("queue_run_max = 1\n{}", conf(one_host.port, other.port, ""));
    let c = dir.write("c.conf", &text);
    let c = c.to_str().unwrap();
    for i in 0..5 {
        queue(
            &dir,
            c,
            &[&format!("x{i}@slow.example"), &format!("y{i}@fast.example")],
            "a\n",
        );
        queue(&dir, c, &[&format!("z{i}@fast.example")], "b\n");
        queue(&dir, c, &[&format!("w{i}@slow.example")], "c\n");
    }
    let mut run = Command::new(oxim_bin())
        .args(["-C", c, "-qf"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn queue run");
    let finished = wait_for(Duration::from_secs(20), || {
        run.try_wait().ok().flatten().is_some()
    });
    if !finished {
        let _ = run.kill();
        let _ = run.wait();
        panic!("queue run hung: {}", dir.read("log/mainlog"));
    }
    let log = log_lines(&dir.read("log/mainlog"));
    assert_eq!(
        lines_with(&log, " R=remote T=smtp H=").len(),
        10,
        "{log:#?}"
    );
    assert_eq!(
        lines_with(&log, " R=slow T=slow_smtp H=").len(),
        10,
        "{log:#?}"
    );
    assert_eq!(lines_with(&log, " Completed").len(), 15);
    assert_eq!(one_host.connection_count(), 1);
    assert_eq!(other.connection_count(), 1);
    assert_eq!(spool_count(&dir), 0);
}
