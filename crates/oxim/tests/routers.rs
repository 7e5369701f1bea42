//! Generic router options (issue "Delivery"): unseen, errors_to,
//! headers_add / headers_remove, manualroute hosts_randomize; each checked
//! where a user would see it (mailboxes, the log, a scripted SMTP server,
//! `-bt`).

mod common;

use common::*;

fn conf(routers: &str, port: u16) -> String {
    format!(
        r#"
{TEST_MAIN}
begin routers

{routers}

begin transports

mbox:
  driver = appendfile
  file = DIR/mail/$local_part
  create_directory
  return_path_add

copybox:
  driver = appendfile
  file = DIR/mail/copy-$local_part
  create_directory

smtp:
  driver = smtp
  port = {port}
  command_timeout = 5s

begin retry

* * F,1h,1s
"#
    )
}

const LOCAL: &str = "local:\n  driver = accept\n  domains = +local_domains\n  transport = mbox\n";

fn submit(dir: &TestDir, conf: &str, sender: &str, rcpts: &[&str]) {
    let c = dir.write("c.conf", conf);
    let mut args = vec!["-C", c.to_str().unwrap(), "-odi", "-f", sender];
    args.extend_from_slice(rcpts);
    dir.run_ok(&args, "Subject: hello\n\nbody text\n");
}

#[test]
fn unseen_router_delivers_and_passes_the_address_on() {
    let routers = format!(
        "copy:\n  driver = accept\n  local_parts = alice\n  unseen\n  transport = copybox\n\n{LOCAL}"
    );
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, 1), "me@test.ex", &["alice"]);
    // One copy through the unseen router, one through the next router.
    assert!(dir.read("mail/copy-alice").contains("body text"));
    assert!(dir.read("mail/alice").contains("body text"));
    let log = log_lines(&dir.read("log/mainlog"));
    for r in ["R=copy T=copybox", "R=local T=mbox"] {
        assert!(
            log.iter()
                .any(|l| l.ends_with(&format!("alice <alice@test.ex> {r}"))),
            "{r}: {log:#?}"
        );
    }
    // Without unseen the first router takes it alone.
    let routers = routers.replace("  unseen\n", "");
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, 1), "me@test.ex", &["alice"]);
    assert!(dir.read("mail/copy-alice").contains("body text"));
    assert_eq!(dir.read("mail/alice"), "");
}

#[test]
fn router_headers_are_added_and_removed_for_that_address_only() {
    let routers = format!(
        "alias:\n  driver = redirect\n  local_parts = list\n  headers_add = X-Alias: $local_part\n  headers_remove = Subject\n  data = carol\n\n\
         {LOCAL}  headers_add = X-Local: $local_part\\nX-Second: ${{uc:$local_part}}\n"
    );
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, 1), "me@test.ex", &["list", "bob"]);
    let carol = dir.read("mail/carol");
    // The redirecting router's changes are inherited, its additions first.
    assert!(
        carol.contains("X-Alias: list\nX-Local: carol\nX-Second: CAROL\n"),
        "{carol}"
    );
    assert!(!carol.contains("Subject:"), "{carol}");
    // bob did not pass through the alias router.
    let bob = dir.read("mail/bob");
    assert!(bob.contains("Subject: hello\n"), "{bob}");
    assert!(bob.contains("X-Local: bob\nX-Second: BOB\n"), "{bob}");
    assert!(!bob.contains("X-Alias"), "{bob}");
}

#[test]
fn errors_to_takes_bounces_and_is_the_return_path() {
    let fake = FakeSmtp::start(vec![], &["PIPELINING"]);
    let routers = format!(
        "alias:\n  driver = redirect\n  local_parts = list\n  errors_to = owner\n  allow_fail\n  data = carol, bad, far@remote.example\n\n\
         failer:\n  driver = redirect\n  local_parts = bad\n  allow_fail\n  data = :fail: no such person\n\n\
         {LOCAL}\n\
         remote:\n  driver = manualroute\n  route_list = * 127.0.0.1\n  self = send\n  transport = smtp\n"
    );
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, fake.port), "me@test.ex", &["list"]);
    // The failure of a generated address bounces to the list owner
    // (qualified like a recipient).
    let owner = dir.read("mail/owner");
    assert!(owner.starts_with("From MAILER-DAEMON "), "{owner}");
    assert!(owner.contains("To: owner@test.ex\n"), "{owner}");
    // Exim's wording for a bounce that does not go to the sender.
    assert!(owner.contains("Subject: Mail delivery failed\n"), "{owner}");
    assert!(
        owner.contains("A message sent by\n\n  <me@test.ex>\n\ncould not be delivered"),
        "{owner}"
    );
    assert!(
        owner.contains("  bad@test.ex\n    (generated from list@test.ex)\n    no such person\n"),
        "{owner}"
    );
    assert_eq!(dir.read("mail/me"), "", "the sender got a bounce");
    // The deliveries that worked used the owner as return path.
    assert!(dir.read("mail/carol").starts_with("From owner@test.ex "));
    assert!(dir
        .read("mail/carol")
        .contains("Return-path: <owner@test.ex>\n"));
    let wire = fake.received();
    assert!(
        wire.iter().any(|l| l == "MAIL FROM:<owner@test.ex>"),
        "{wire:#?}"
    );

    // An empty errors_to: the failure is logged but nobody gets a bounce.
    let routers = routers.replace("errors_to = owner", "errors_to =");
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, fake.port), "me@test.ex", &["list"]);
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.contains("** bad@test.ex <list@test.ex>")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("<= <>")), "{log:#?}");
    assert_eq!(dir.read("mail/me"), "");
}

fn bt_hosts(dir: &TestDir, c: &str) -> Vec<String> {
    let out = dir.run_ok(&["-C", c, "-bt", "x@remote.example"], "");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("  host "))
        .map(str::to_string)
        .collect()
}

#[test]
fn hosts_randomize_shuffles_the_route_list_hosts() {
    // None of them this host (127.0.0.1 would cut the list where it falls).
    let list = "127.0.0.2:127.0.0.3:127.0.0.4:127.0.0.5:127.0.0.6";
    let plain: Vec<String> = list.split(':').map(|ip| format!("{ip} [{ip}]")).collect();
    let routers = format!(
        "remote:\n  driver = manualroute\n  route_list = * {list}\n  self = send\n  transport = smtp\n"
    );
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(&routers, 1));
    for _ in 0..3 {
        assert_eq!(bt_hosts(&dir, c.to_str().unwrap()), plain);
    }
    let c = dir.write(
        "r.conf",
        &conf(&routers.replace("  self", "  hosts_randomize\n  self"), 1),
    );
    let mut orders = std::collections::HashSet::new();
    for _ in 0..12 {
        let mut h = bt_hosts(&dir, c.to_str().unwrap());
        orders.insert(h.clone());
        h.sort();
        assert_eq!(h, plain, "randomizing lost or added hosts");
    }
    // 12 runs of a random order of 5 hosts all equal: (1/120)^11.
    assert!(orders.len() > 1, "hosts_randomize never changed the order");
}

#[test]
fn host_find_failed_freezes_by_default_and_ignore_skips_the_host() {
    let fake = FakeSmtp::start(vec![], &[]);
    let routers = "remote:\n  driver = manualroute\n  route_list = * \"nonexistent.invalid : 127.0.0.1\"\n  self = send\n  transport = smtp\n";
    let dir = TestDir::new();
    submit(
        &dir,
        &conf(routers, fake.port),
        "me@test.ex",
        &["x@remote.example"],
    );
    let log = log_lines(&dir.read("log/mainlog"));
    let id = log[0].split_whitespace().next().unwrap().to_string();
    let tail: Vec<&str> = log[1..].iter().map(String::as_str).collect();
    // Exim 4.96's lines, in this order.
    assert_eq!(
        tail,
        [
            format!("{id} no IP address found for host nonexistent.invalid"),
            format!("{id} == x@remote.example R=remote defer (-32): lookup of host \"nonexistent.invalid\" failed in remote router"),
            format!("{id} Frozen"),
        ],
        "{log:#?}"
    );
    let c = dir.path().join("c.conf");
    let out = dir.run_ok(&["-C", c.to_str().unwrap(), "-bp"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<me@test.ex> *** frozen ***"),
        "{out:?}"
    );

    // host_find_failed = ignore: the other host gets the message.
    let routers = routers.replace("  self", "  host_find_failed = ignore\n  self");
    let dir = TestDir::new();
    submit(
        &dir,
        &conf(&routers, fake.port),
        "me@test.ex",
        &["x@remote.example"],
    );
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.contains("=> x@remote.example R=remote T=smtp H=127.0.0.1 [127.0.0.1]")),
        "{log:#?}"
    );
}

#[test]
fn unseen_copy_delivered_once_when_the_other_copy_is_retried() {
    let routers = format!(
        "copy:\n  driver = accept\n  local_parts = alice\n  unseen\n  transport = copybox\n\n{LOCAL}"
    );
    let good = conf(&routers, 1);
    // First attempt: the mailbox path runs through a file, so the second
    // copy defers.
    let broken = good.replace(
        "file = DIR/mail/$local_part",
        "file = DIR/c.conf/$local_part",
    );
    let dir = TestDir::new();
    submit(&dir, &broken, "me@test.ex", &["alice"]);
    let log = log_lines(&dir.read("log/mainlog"));
    assert!(
        log.iter()
            .any(|l| l.ends_with("=> alice <alice@test.ex> R=copy T=copybox")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("== alice@test.ex R=local T=mbox defer")),
        "{log:#?}"
    );
    // The spool (-H, or the -J journal of this attempt) remembers the
    // unseen router's copy under Exim's name for it.
    let id = log[0].split_whitespace().next().unwrap();
    let spool =
        dir.read(&format!("spool/input/{id}-H")) + &dir.read(&format!("spool/input/{id}-J"));
    assert!(spool.lines().any(|l| l == "alice@test.ex/copy"), "{spool}");

    // The retry delivers the deferred copy only.
    let c = dir.write("fixed.conf", &good);
    dir.run_ok(&["-C", c.to_str().unwrap(), "-qf"], "");
    assert_eq!(
        dir.read("mail/copy-alice").matches("\nbody text\n").count(),
        1
    );
    assert_eq!(dir.read("mail/alice").matches("\nbody text\n").count(), 1);
    let log = dir.read("log/mainlog");
    assert!(log.contains(" Completed"), "{log}");
}

#[test]
fn headers_remove_takes_a_prefix_ending_in_star() {
    let routers = LOCAL.to_string() + "  headers_remove = X-Rem-* : subject\n";
    let dir = TestDir::new();
    let c = dir.write("c.conf", &conf(&routers, 1));
    dir.run_ok(
        &["-C", c.to_str().unwrap(), "-odi", "-f", "me@test.ex", "bob"],
        "Subject: s\nX-Rem-A: 1\nx-rem-b: 2\nX-Remain: 3\n\nbody\n",
    );
    let bob = dir.read("mail/bob");
    assert!(bob.contains("X-Remain: 3\n"), "{bob}");
    for gone in ["X-Rem-A", "x-rem-b", "Subject"] {
        assert!(!bob.contains(gone), "{gone} still there: {bob}");
    }
}

#[test]
fn errors_to_that_does_not_verify_is_ignored() {
    let routers = format!(
        "alias:\n  driver = redirect\n  local_parts = list\n  errors_to = nobody@nowhere.example\n  data = bad\n\n\
         failer:\n  driver = redirect\n  local_parts = bad\n  allow_fail\n  data = :fail: no such person\n\n{LOCAL}"
    );
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, 1), "me@test.ex", &["list"]);
    // nowhere.example is not routable here, so the sender gets the bounce.
    let me = dir.read("mail/me");
    assert!(me.contains("To: me@test.ex\n"), "{me}");
    assert!(
        me.contains("Subject: Mail delivery failed: returning message to sender\n"),
        "{me}"
    );
}

#[test]
fn router_transport_option_is_expanded_per_address() {
    let routers = "pick:\n  driver = accept\n  \
                   transport = ${if eq{$local_part}{alice}{copybox}{mbox}}\n";
    let dir = TestDir::new();
    submit(&dir, &conf(routers, 1), "me@test.ex", &["alice", "bob"]);
    assert!(dir.read("mail/copy-alice").contains("body text"));
    assert!(dir.read("mail/bob").contains("body text"));
    let log = log_lines(&dir.read("log/mainlog"));
    for r in [
        "<alice@test.ex> R=pick T=copybox",
        "<bob@test.ex> R=pick T=mbox",
    ] {
        assert!(log.iter().any(|l| l.ends_with(r)), "{r}: {log:#?}");
    }
    // A name that names no transport defers the address, saying so.
    let routers = "pick:\n  driver = accept\n  transport = ${local_part}_box\n";
    let dir = TestDir::new();
    submit(&dir, &conf(routers, 1), "me@test.ex", &["carol"]);
    let log = log_lines(&dir.read("log/mainlog"));
    let want =
        "== carol@test.ex R=pick defer (-1): transport \"carol_box\" not found in pick router";
    assert!(log.iter().any(|l| l.ends_with(want)), "{log:#?}");
}
