//! Side by side with real Exim (issue "Delivery"): the same configuration
//! and inputs through both, outputs compared byte for byte.
//!
//! - `-bt` for accepted, redirected, manualroute'd, unseen, failing,
//!   deferred, unrouteable and duplicate addresses;
//! - `-bp`, `-bpa`, `-bpu` and `-bpc` on one spool written by oxim,
//!   holding a frozen message, partially delivered ones (an unseen router's
//!   copy among them), sizes from bytes to megabytes and ages from minutes
//!   to days (Exim reads oxim's spool: same format);
//! - the bounce for a redirect `:fail:` and a 550 from a remote server,
//!   delivered to an mbox.
//!
//! Exim is Debian's exim4 unpacked by `bench/get-exim.sh` (path from
//! `OXIM_EXIM_BIN`, default `/var/tmp/oxim-peers-exim/usr/sbin/exim4`).
//! Without it each test prints a SKIP line and returns, except under
//! `CI=true`, where that is a failure. Exim drops privileges to its user
//! `Debian-exim` for `-C` configurations, so the tests need root.

mod common;
#[path = "common/exim.rs"]
mod exim;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use exim::{chown_to_exim, exim, exim_dir, run, write_conf};

/// stdout and exit status, for comparing.
fn shown(o: &Output) -> String {
    format!(
        "{}[exit {}]",
        String::from_utf8_lossy(&o.stdout),
        o.status.code().unwrap_or(-1)
    )
}

const BT_ROUTERS: &str = r#"
begin routers

failer:
  driver = redirect
  local_parts = bad
  allow_fail
  data = :fail: this address is bad

deferrer:
  driver = redirect
  local_parts = later
  allow_defer
  data = :defer: try again later

alias:
  driver = redirect
  local_parts = list
  data = alice, bad, later, bob@other.example, carol, x@nowhere.example

void:
  driver = redirect
  local_parts = void
  data = :blackhole:

copy:
  driver = accept
  local_parts = carol
  unseen
  transport = copybox

local:
  driver = accept
  domains = +local_domains
  transport = mbox

remote:
  driver = manualroute
  domains = other.example : third.example : fourth.example
  route_list = third.example 127.0.0.9 ; \
               fourth.example "127.0.0.2 : 127.0.0.1 : 127.0.0.3" ; \
               * "127.0.0.1 : 127.0.0.3 : 127.0.0.2"
  self = send
  transport = smtp

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/mbox
  user = Debian-exim

copybox:
  driver = appendfile
  file = DIR/mail/copies
  user = Debian-exim

smtp:
  driver = smtp
  port = 1
"#;

#[test]
fn address_test_output_matches_exim() {
    let Some(exim) = exim() else { return };
    let dir = exim_dir();
    let conf = write_conf(&dir, &exim, BT_ROUTERS);
    let conf = conf.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["alice"],
        &["void"],
        &["list"],
        &["bob@other.example"],
        &["y@third.example"],
        // This host in the middle of the list cuts it there.
        &["z@fourth.example"],
        &["carol"],
        &["bad"],
        &["later"],
        &["x@nowhere.example"],
        &["alice", "bad", "alice", "Bob@Other.Example", "later"],
    ];
    for addrs in cases {
        let mut args = vec!["-C", conf, "-bt"];
        args.extend_from_slice(addrs);
        let theirs = shown(&run(&exim, dir.path(), &args, ""));
        let ours = shown(&run(&oxim_bin(), dir.path(), &args, ""));
        assert_eq!(ours, theirs, "-bt {addrs:?}: oxim (left) differs from Exim");
    }
}

const GENERIC_ROUTERS: &str = r#"
domainlist sub_domains = *.test.ex

begin routers

vonly:
  driver = accept
  verify_only
  transport = t1

cond:
  driver = accept
  condition = ${if eq{$local_part}{cc}}
  transport = t2

senders:
  driver = accept
  senders = nobody@nowhere.example
  transport = t3

data:
  driver = redirect
  local_parts = ^data
  address_data = ${sg{$local_part}{data}{xx}}
  data = $address_data@test.ex

stopper:
  driver = manualroute
  local_parts = stop
  route_data =
  no_more
  transport = t4

late:
  driver = accept
  local_parts = stop : xx1
  transport = t5

sub:
  driver = accept
  domains = +sub_domains
  transport = t6

begin transports

t1:
  driver = appendfile
  file = /dev/null
t2:
  driver = appendfile
  file = /dev/null
t3:
  driver = appendfile
  file = /dev/null
t4:
  driver = appendfile
  file = /dev/null
t5:
  driver = appendfile
  file = /dev/null
t6:
  driver = appendfile
  file = /dev/null
"#;

#[test]
fn generic_router_options_in_address_test_match_exim() {
    let Some(exim) = exim() else { return };
    let dir = exim_dir();
    let conf = write_conf(&dir, &exim, GENERIC_ROUTERS);
    let conf = conf.to_str().unwrap();
    // verify_only, condition, senders (with and without -f), address_data,
    // no_more, domain lists, case.
    let cases: &[&[&str]] = &[
        &["-bt", "cc"],
        &["-bt", "dd"],
        &["-f", "nobody@nowhere.example", "-bt", "dd"],
        &["-bt", "data1"],
        &["-bt", "stop"],
        &["-bt", "x@a.test.ex", "x@A.Test.Ex", "x@test.ex"],
    ];
    for args in cases {
        let mut a = vec!["-C", conf];
        a.extend_from_slice(args);
        let theirs = shown(&run(&exim, dir.path(), &a, ""));
        let ours = shown(&run(&oxim_bin(), dir.path(), &a, ""));
        assert_eq!(ours, theirs, "{args:?}: oxim (left) differs from Exim");
    }
}

const SPOOL_ROUTERS: &str = r#"
begin routers

copy:
  driver = accept
  local_parts = erin
  unseen
  transport = mbox

erin_later:
  driver = redirect
  local_parts = erin
  allow_defer
  data = :defer: not now

freezer:
  driver = redirect
  local_parts = bad
  allow_fail
  data = :fail: no such user

deferrer:
  driver = redirect
  local_parts = later
  allow_defer
  data = :defer: not now

alias:
  driver = redirect
  local_parts = list
  data = alice, later

local:
  driver = accept
  domains = +local_domains
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/mbox
  user = Debian-exim

begin retry

* * F,1h,1h
"#;

/// Set the reception time in a message's -H file (its fourth line) to
/// `age` seconds ago.
fn set_age(spool: &Path, id: &str, age: u64) {
    let path = spool.join("input").join(format!("{id}-H"));
    let text = std::fs::read_to_string(&path).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let rest = lines[3].split_once(' ').map(|(_, r)| r.to_string());
    lines[3] = match rest {
        Some(r) => format!("{} {r}", now - age),
        None => (now - age).to_string(),
    };
    std::fs::write(&path, lines.join("\n")).unwrap();
}

#[test]
fn queue_listing_of_an_oxim_spool_matches_exim() {
    let Some(exim) = exim() else { return };
    let dir = exim_dir();
    let conf = write_conf(&dir, &exim, SPOOL_ROUTERS);
    let conf = conf.to_str().unwrap();
    let submit = |args: &[&str], body: &str| {
        let mut a = vec!["-C", conf];
        a.extend_from_slice(args);
        let out = run(&oxim_bin(), dir.path(), &a, body);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let line = "x".repeat(70) + "\n";
    submit(
        &["-odq", "-f", "me@test.ex", "alice", "bob@other.example"],
        "Subject: small\n\nshort\n",
    );
    submit(
        &["-odq", "-f", "", "alice"],
        &format!("Subject: 3K\n\n{}", line.repeat(42)),
    );
    submit(
        &["-odq", "-f", "someone@else.example", "alice", "carol"],
        &format!("Subject: 30K\n\n{}", line.repeat(430)),
    );
    submit(
        &["-odq", "-f", "big@test.ex", "dave"],
        &format!("Subject: 1.5M\n\n{}", line.repeat(22_000)),
    );
    // Partly delivered: alice and list's child alice delivered, later and
    // list's child later deferred.
    submit(
        &["-odi", "-f", "me@test.ex", "alice", "later", "list"],
        "Subject: partial\n\nbody\n",
    );
    // An unseen router's copy delivered, the copy passed on deferred.
    submit(
        &["-odi", "-f", "me@test.ex", "erin", "frank"],
        "Subject: unseen\n\nbody\n",
    );
    // A bounce that cannot be delivered is frozen.
    submit(&["-odi", "-f", "", "bad"], "Subject: frozen\n\nbody\n");

    let spool = dir.path().join("spool");
    let mut ids: Vec<String> = std::fs::read_dir(spool.join("input"))
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix("-H").map(str::to_string)
        })
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 7, "{ids:?}");
    let log = dir.read("log/mainlog");
    assert!(log.contains(" Frozen"), "{log}");
    assert!(log.contains("=> alice <alice@test.ex>"), "{log}");

    // Ages from minutes to days, each at least 20 s away from a change of
    // the shown value, for two rounds.
    let rounds: [[u64; 7]; 2] = [
        [
            20,
            25 * 60 + 20,
            89 * 60 + 20,
            91 * 60 + 20,
            150 * 60 + 20,
            71 * 3600 + 20,
            9 * 60 + 30,
        ],
        [
            73 * 3600 + 20,
            4 * 86400,
            100 * 86400,
            40,
            59 * 60 + 40,
            30 * 3600,
            1000 * 86400,
        ],
    ];
    for ages in rounds {
        for (id, age) in ids.iter().zip(ages) {
            set_age(&spool, id, age);
        }
        chown_to_exim(&spool);
        for option in ["-bp", "-bpa", "-bpu", "-bpc"] {
            let theirs = shown(&run(&exim, dir.path(), &["-C", conf, option], ""));
            let ours = shown(&run(&oxim_bin(), dir.path(), &["-C", conf, option], ""));
            if option == "-bp" {
                assert!(theirs.contains("*** frozen ***"), "{theirs}");
                assert!(theirs.contains("        D alice@test.ex"), "{theirs}");
            }
            if option == "-bpa" {
                assert!(theirs.contains("       +D erin@test.ex/copy"), "{theirs}");
            }
            assert_eq!(ours, theirs, "{option}: oxim (left) differs from Exim");
        }
    }
}

const BOUNCE_ROUTERS: &str = r#"
begin routers

failer:
  driver = redirect
  local_parts = bad
  allow_fail
  data = :fail: this address is bad

alias:
  driver = redirect
  local_parts = list
  data = bad

owned:
  driver = redirect
  local_parts = owned
  errors_to = owner@test.ex
  data = bad

local:
  driver = accept
  domains = +local_domains
  transport = mbox

remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = smtp

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/mbox
  user = Debian-exim

smtp:
  driver = smtp
  port = PORT
  allow_localhost
"#;

/// The bounce as one program wrote it, with what must differ replaced:
/// message ids (from the log), the MIME boundary, dates, and the Received:
/// headers (they name the program and its version; reception is compared
/// elsewhere).
fn normalised_bounce(dir: &TestDir) -> String {
    let mbox_path = dir.path().join("mail/mbox");
    assert!(
        wait_for(Duration::from_secs(20), || std::fs::read_to_string(
            &mbox_path
        )
        .is_ok_and(|t| t.contains("eximdsn") && t.trim_end().ends_with("--"))),
        "no bounce in {}: log:\n{}",
        mbox_path.display(),
        dir.read("log/mainlog")
    );
    let mut text = dir.read("mail/mbox");
    let log = dir.read("log/mainlog");
    let id_of = |marker: &str| -> String {
        log.lines()
            .find(|l| l.contains(marker))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_else(|| panic!("no {marker:?} in {log}"))
            .to_string()
    };
    text = text
        .replace(&id_of(" <= me@test.ex "), "ORIGINAL-ID")
        .replace(&id_of(" <= <> "), "BOUNCE-ID");
    let boundary = text
        .split("boundary=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .expect("a boundary")
        .to_string();
    text = text.replace(&boundary, "BOUNDARY");
    let mut out = String::new();
    let mut in_received = false;
    for l in text.lines() {
        if l.starts_with("Received: ") {
            in_received = true;
            out.push_str("Received: (dropped)\n");
            continue;
        }
        if in_received && l.starts_with('\t') {
            continue;
        }
        in_received = false;
        let l = if l.starts_with("Date: ") {
            "Date: (date)"
        } else if l.starts_with("From MAILER-DAEMON ") {
            "From MAILER-DAEMON (date)"
        } else {
            l
        };
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[test]
fn bounce_layout_matches_exim() {
    let Some(exim) = exim() else { return };
    let fake = FakeSmtp::start(vec![("RCPT", "550 5.1.1 no such user here")], &[]);
    let routers = BOUNCE_ROUTERS.replace("PORT", &fake.port.to_string());
    let head = "Subject: orig\nMessage-Id: <orig@test.ex>\n\n";
    let small = format!("{head}body line\n");
    let line = "x".repeat(49) + "\n";
    let headers_only =
        "X-Exim-DSN-Information: Due to administrative limits only headers are returned\n";
    // (main options, recipients, message, what the bounce must show):
    // to the sender, a generated address failed by a router and a remote
    // 550; to a router's errors_to, the other wording; only the headers
    // with bounce_return_body = false, with a body over the size limit
    // (8150 bytes pass a limit of 100, 8200 do not: Exim rounds it up) and
    // with a line longer than 998 characters.
    let scenarios: Vec<(&str, &[&str], String, &str)> = vec![
        (
            "",
            &["list", "u@other.example"],
            small.clone(),
            "To: me@test.ex\n",
        ),
        ("", &["owned"], small.clone(), "To: owner@test.ex\n"),
        (
            "bounce_return_body = false\n",
            &["bad"],
            small.clone(),
            "Content-type: text/rfc822-headers\n",
        ),
        (
            "bounce_return_size_limit = 100\n",
            &["bad"],
            format!("{head}{}", line.repeat(163)),
            "Content-type: message/rfc822\n",
        ),
        (
            "bounce_return_size_limit = 100\n",
            &["bad"],
            format!("{head}{}", line.repeat(164)),
            headers_only,
        ),
        (
            "",
            &["bad"],
            format!(
                "{head}short\n{}\n{}\nend\n",
                "y".repeat(998),
                "z".repeat(999)
            ),
            headers_only,
        ),
    ];
    for (main, rcpts, input, to) in scenarios {
        let mut bounces = Vec::new();
        for bin in [&exim, &oxim_bin()] {
            let dir = exim_dir();
            let conf = write_conf(&dir, &exim, &format!("{main}{routers}"));
            let mut a = vec!["-C", conf.to_str().unwrap(), "-odi", "-f", "me@test.ex"];
            a.extend_from_slice(rcpts);
            let out = run(bin, dir.path(), &a, &input);
            assert!(
                out.status.success(),
                "{}: {}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            bounces.push(normalised_bounce(&dir));
        }
        let theirs = &bounces[0];
        assert!(
            theirs.contains("Content-type: message/delivery-status") && theirs.contains(to),
            "{theirs}"
        );
        assert_eq!(
            &bounces[1], theirs,
            "bounce for {rcpts:?}: oxim (left) differs from Exim"
        );
    }
}

const EFFECTS_ROUTERS: &str = r#"
begin routers

copy:
  driver = accept
  local_parts = alice
  unseen
  headers_add = X-Copy: from copy router
  transport = box2

alias:
  driver = redirect
  local_parts = list
  headers_add = X-Alias: $local_part
  headers_remove = Subject
  errors_to = owner@test.ex
  data = carol, dave

local:
  driver = accept
  domains = +local_domains
  headers_add = X-Local: $local_part\nX-Upper: ${uc:$local_part}
  transport = mbox

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/mbox
  return_path_add
  user = Debian-exim

box2:
  driver = appendfile
  file = DIR/mail/box2
  return_path_add
  user = Debian-exim
"#;

/// A mailbox with dates, message ids and Received: headers (which name the
/// program) replaced.
fn normalised_mbox(dir: &TestDir, name: &str, id: &str) -> String {
    let mut out = String::new();
    let mut in_received = false;
    for l in dir.read(&format!("mail/{name}")).lines() {
        if l.starts_with("Received: ") {
            in_received = true;
            out.push_str("Received: (dropped)\n");
            continue;
        }
        if in_received && l.starts_with('\t') {
            continue;
        }
        in_received = false;
        let l = if l.starts_with("Date: ") {
            "Date: (date)".to_string()
        } else if let Some(r) = l.strip_prefix("From ") {
            format!("From {} (date)", r.split(' ').next().unwrap_or(""))
        } else {
            l.replace(id, "ID")
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn router_effects_on_delivered_mail_match_exim() {
    let Some(exim) = exim() else { return };
    let mut results = Vec::new();
    for bin in [&exim, &oxim_bin()] {
        let dir = exim_dir();
        let conf = write_conf(&dir, &exim, EFFECTS_ROUTERS);
        let args = [
            "-C",
            conf.to_str().unwrap(),
            "-odi",
            "-f",
            "me@test.ex",
            "alice",
            "list",
        ];
        let out = run(bin, dir.path(), &args, "Subject: s\n\nbody\n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(wait_for(Duration::from_secs(20), || dir
            .read("log/mainlog")
            .contains(" Completed")));
        let log = dir.read("log/mainlog");
        let id = log
            .lines()
            .find(|l| l.contains(" <= "))
            .and_then(|l| l.split_whitespace().nth(2))
            .expect("a reception line")
            .to_string();
        // Delivery lines (their order differs: Exim runs the unseen
        // router's transport last), without time and id.
        let mut deliveries: Vec<String> = log
            .lines()
            .filter(|l| l.contains(" => "))
            .map(|l| strip_time(l).replace(&id, "ID"))
            .collect();
        deliveries.sort();
        results.push((
            deliveries,
            normalised_mbox(&dir, "mbox", &id),
            normalised_mbox(&dir, "box2", &id),
        ));
    }
    let theirs = &results[0];
    assert!(
        theirs.1.contains("X-Alias: list\nX-Local: carol\n"),
        "{}",
        theirs.1
    );
    assert_eq!(
        results[1].0, theirs.0,
        "=> lines: oxim (left) differs from Exim"
    );
    assert_eq!(
        results[1].1, theirs.1,
        "mbox: oxim (left) differs from Exim"
    );
    assert_eq!(
        results[1].2, theirs.2,
        "box2: oxim (left) differs from Exim"
    );
}
