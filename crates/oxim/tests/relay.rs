//! Two oxim instances on loopback: a client that relays everything to a
//! server, and a server that accepts and discards. The log lines must have
//! the shape of Exim's test 1990 (see issue "Delivery", acceptance 1).

mod common;

use common::*;
use std::time::Duration;

const CONF: &str = r#"
# Client and server in one file, selected by the SERVER macro (as in Exim's
# test configurations).
SERVER =
primary_hostname = myhost.test.ex
spool_directory = DIR/spool
# The tests run as whoever runs them (root in CI): keep that user.
exim_user = root
.ifdef SERVER
log_file_path = DIR/log/SERVER%slog
.else
log_file_path = DIR/log/%slog
.endif
helo_lookup_domains =
chunking_advertise_hosts = CHUNKING
# No STARTTLS (as in Exim's test 1990; else a self-signed certificate is used).
tls_advertise_hosts =
acl_smtp_rcpt = accept
log_selector = +received_recipients

begin routers

server:
  driver = redirect
  condition = ${if eq {SERVER}{server}{yes}{no}}
  data = :blackhole:

client:
  driver = accept
  condition = ${if eq {SERVER}{server}{no}{yes}}
  transport = to_server

begin transports

to_server:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = PORT
  hosts_try_fastopen = *

begin retry

* * F,5d,10s
"#;

/// The relay configuration for a server on `port`, with
/// `chunking_advertise_hosts = chunking`.
fn write_conf(dir: &TestDir, port: u16, chunking: &str) -> std::path::PathBuf {
    dir.write(
        "test.conf",
        &CONF
            .replace("PORT", &port.to_string())
            .replace("CHUNKING", chunking),
    )
}

fn find<'a>(lines: &'a [String], pat: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(pat))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no log line with {pat:?} in {lines:#?}"))
}

#[test]
fn relay_to_blackhole_server_logs_like_exim_1990() {
    let dir = TestDir::new();
    let port = free_port();
    // As in Exim's harness configs: no CHUNKING advertised.
    let conf = write_conf(&dir, port, "");
    let conf = conf.to_str().unwrap();
    let _daemon = Daemon::start(
        &dir,
        &["-C", conf, "-DSERVER=server", "-oX", &port.to_string()],
    );

    let out = dir.run_ok(
        &["-C", conf, "-odi", "a@test.ex"],
        "Subject: one\n\nTesting\n",
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "unexpected output"
    );

    let client = log_lines(&dir.read("log/mainlog"));
    assert!(wait_for(Duration::from_secs(10), || dir
        .read("log/servermainlog")
        .contains("Completed")));
    let server = log_lines(&dir.read("log/servermainlog"));

    // Client side: <=, =>, Completed.
    let recv = find(&client, " <= ");
    let mut f = recv.split_whitespace();
    let id = f.next().unwrap().to_string();
    assert_eq!(f.next(), Some("<="));
    let sender = f.next().unwrap();
    let (login, domain) = sender.split_once('@').unwrap();
    assert_eq!(domain, "myhost.test.ex");
    let size = recv.split(" S=").nth(1).unwrap().split(' ').next().unwrap();
    assert!(size.parse::<u64>().unwrap() > 0);
    assert_eq!(
        recv,
        format!("{id} <= {sender} U={login} P=local S={size} for a@test.ex")
    );
    let dlv = find(&client, " => ");
    let server_recv = find(&server, " <= ");
    let server_id = server_recv.split_whitespace().next().unwrap();
    // On the host namespace the server side of TFO is normally off; where it
    // is on, a TFO element may appear right after the host.
    assert_eq!(
        dlv.replace(" TFO ", " "),
        format!("{id} => a@test.ex R=client T=to_server H=127.0.0.1 [127.0.0.1] C=\"250 OK id={server_id}\"")
    );
    assert_eq!(find(&client, "Completed"), format!("{id} Completed"));

    // Server side: daemon started, <=, => :blackhole:, Completed.
    assert!(find(&server, "daemon started").contains(&format!("listening for SMTP on port {port}")));
    assert!(
        server_recv
            .replace(" TFO ", " ")
            .contains(" H=(myhost.test.ex) [127.0.0.1] P=esmtp S="),
        "{server_recv}"
    );
    assert!(
        server_recv.ends_with(&format!(" id=E{id}@myhost.test.ex for a@test.ex")),
        "{server_recv}"
    );
    assert_eq!(
        find(&server, " => "),
        format!("{server_id} => :blackhole: <a@test.ex> R=server")
    );
    assert_eq!(find(&server, "Completed"), format!("{server_id} Completed"));

    // Both spools are empty afterwards.
    let input = std::fs::read_dir(dir.path().join("spool/input"))
        .unwrap()
        .count();
    assert_eq!(input, 0, "spool input not empty");
}

#[test]
fn closed_port_defers_with_connection_refused() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = write_conf(&dir, port, "");
    dir.run_ok(
        &["-C", conf.to_str().unwrap(), "-odi", "b@test.ex"],
        "Testing\n",
    );
    let client = log_lines(&dir.read("log/mainlog"));
    let d = find(&client, " == ");
    assert!(
        d.contains("b@test.ex R=client T=to_server defer (111): Connection refused"),
        "{d}"
    );
    // Still on the queue.
    let listed = dir.run(&["-C", conf.to_str().unwrap(), "-bp"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("b@test.ex"));
}

#[test]
fn chunking_sends_bdat_and_logs_k_on_both_sides() {
    let dir = TestDir::new();
    let port = free_port();
    let conf = write_conf(&dir, port, "*");
    let conf = conf.to_str().unwrap();
    let _daemon = Daemon::start(
        &dir,
        &["-C", conf, "-DSERVER=server", "-oX", &port.to_string()],
    );
    let body: String = (0..50).map(|i| format!(".line {i}\n")).collect();
    dir.run_ok(
        &["-C", conf, "-odi", "c@test.ex"],
        &format!("Subject: bdat\n\n{body}"),
    );
    assert!(wait_for(Duration::from_secs(10), || dir
        .read("log/servermainlog")
        .contains("Completed")));
    let client = log_lines(&dir.read("log/mainlog"));
    let server = log_lines(&dir.read("log/servermainlog"));
    let dlv = find(&client, " => ");
    // Exim's final reply to BDAT acknowledges the last chunk first.
    assert!(
        dlv.contains(" H=127.0.0.1 [127.0.0.1] K C=\"250- ") && dlv.contains(" byte chunk, total "),
        "{dlv}"
    );
    let recv = find(&server, " <= ");
    assert!(recv.contains(" P=esmtp K S="), "{recv}");
}
