//! The dnslookup router against a real resolver (issue "Delivery"): MX and
//! address records, `qualify_single` (the resolver's search domain appended
//! to a one-component domain) and `widen_domains`.
//!
//! Each test runs oxim in private network and mount namespaces (util-linux
//! `unshare`) where dnsmasq serves a small zone on 127.0.0.1:53 and a
//! private `/etc/resolv.conf` points at it; nothing touches the host's
//! network or files. Root only: without root the test fails saying so.
//! When real Exim is available (see `common/exim.rs`) it runs the same
//! `-bt` in the same namespaces and the outputs must be identical.

mod common;
#[path = "common/exim.rs"]
mod exim;

use std::path::Path;
use std::process::Command;

use common::*;

const ZONE: &str = "\
no-resolv
no-hosts
no-poll
no-negcache
listen-address=127.0.0.1
bind-interfaces
port=53
user=root
group=
local=/example/
local=/beta/
local=/gamma/
mx-host=beta.corp.example,mx.corp.example,10
host-record=mx.corp.example,127.0.0.11
mx-host=gamma.widened.example,mx.widened.example,5
host-record=mx.widened.example,127.0.0.12
host-record=direct.example,127.0.0.13
mx-host=selfmx.example,me.example,10
host-record=me.example,127.0.0.1
host-record=selfa.example,127.0.0.1
mx-host=backup.example,mx.corp.example,10
mx-host=backup.example,me.example,20
";

const CONF: &str = r#"
keep_environment =
primary_hostname = myhost.test.ex
qualify_domain = test.ex
spool_directory = DIR/spool
log_file_path = DIR/log/%slog

begin routers

dns:
  driver = dnslookup
  widen_domains = widened.example
  self = send
  transport = smtp

begin transports

smtp:
  driver = smtp
"#;

/// `BIN -C conf -bt ADDRESSES` inside the namespaces with the zone served.
fn bt_with_dns(bin: &Path, dir: &TestDir, conf: &str, addrs: &[&str]) -> String {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (private network and mount namespaces, dnsmasq on port 53)"
    );
    dir.write("dnsmasq.conf", ZONE);
    dir.write("resolv.conf", "nameserver 127.0.0.1\nsearch corp.example\n");
    let conf = dir.write("c.conf", conf);
    // Exim (when compared) reads the directory as its own user.
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    let script = format!(
        r#"set -e
ip link set lo up
mount --bind {d}/resolv.conf /etc/resolv.conf
dnsmasq --keep-in-foreground --conf-file={d}/dnsmasq.conf --pid-file= &
trap 'kill $!' EXIT
for i in $(seq 100); do
  if ss -lun 2>/dev/null | grep -q '127.0.0.1:53 '; then break; fi
  sleep 0.05
done
{bin} -C {conf} -bt {addrs} || true
"#,
        d = dir.path().display(),
        bin = bin.display(),
        conf = conf.display(),
        addrs = addrs.join(" "),
    );
    let out = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .output()
        .expect("run unshare (util-linux)");
    assert!(out.status.success(), "namespace script failed: {out:?}");
    // Exim also writes some log lines to stderr while testing; stdout is
    // the routing result.
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// oxim's `-bt` output, after checking that Exim's is the same.
fn bt(conf: &str, addrs: &[&str]) -> String {
    let dir = TestDir::new();
    let conf = format!("exim_path = {}\n{conf}", exim::DEFAULT_EXIM);
    let ours = bt_with_dns(&oxim_bin(), &dir, &conf, addrs);
    if let Some(e) = exim::exim() {
        let theirs = bt_with_dns(&e, &dir, &conf, addrs);
        assert_eq!(ours, theirs, "oxim (left) differs from Exim");
    }
    ours
}

#[test]
fn mx_a_qualify_single_and_widen_domains() {
    let out = bt(
        CONF,
        &[
            "u@direct.example",
            "u@beta",
            "u@gamma",
            "u@nowhere.example",
            "u@beta.corp.example",
        ],
    );
    let expected = "\
u@direct.example
  router = dns, transport = smtp
  host direct.example [127.0.0.13]
u@beta.corp.example
    <-- u@beta
  router = dns, transport = smtp
  host mx.corp.example [127.0.0.11] MX=10
u@gamma.widened.example
    <-- u@gamma
  router = dns, transport = smtp
  host mx.widened.example [127.0.0.12] MX=5
u@nowhere.example is undeliverable: Unrouteable address
u@beta.corp.example   [duplicate, would not be delivered]
  router = dns, transport = smtp
  host mx.corp.example [127.0.0.11] MX=10
";
    assert_eq!(out, expected);
}

#[test]
fn qualify_single_can_be_turned_off() {
    let conf = CONF.replace("  widen_domains", "  no_qualify_single\n  widen_domains");
    let out = bt(&conf, &["u@beta"]);
    assert!(out.starts_with("u@beta "), "{out}");
    assert!(!out.contains("corp.example"), "{out}");
}

#[test]
fn self_option_when_the_lowest_mx_is_this_host() {
    let addrs = ["u@selfmx.example", "u@selfa.example", "u@backup.example"];
    // A backup MX that is this host is dropped with the worse ones.
    let backup = "\
u@backup.example
  router = dns, transport = smtp
  host mx.corp.example [127.0.0.11] MX=10
";
    for (action, verdict) in [
        ("freeze", "cannot be resolved at this time:"),
        ("defer", "cannot be resolved at this time:"),
        ("fail", "is undeliverable:"),
        ("pass", "is undeliverable:"),
    ] {
        let conf = CONF.replace("self = send", &format!("self = {action}"));
        let out = bt(&conf, &addrs);
        let expected = format!(
            "u@selfmx.example {verdict} lowest numbered MX record points to local host\n\
             u@selfa.example {verdict} remote host address is the local host\n{backup}"
        );
        assert_eq!(out, expected, "self = {action}");
    }
}
