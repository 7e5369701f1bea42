//! DKIM between oxim and real Exim 4.96 (Debian's exim4 unpacked by
//! `bench/get-exim.sh`, see `common/exim.rs`): oxim's smtp transport signs
//! (an RSA and an Ed25519 signature) and Exim's daemon verifies both;
//! Exim's transport signs and oxim's daemon verifies.
//!
//! Everything runs in private network and mount namespaces (util-linux
//! `unshare`): dnsmasq answers the `_domainkey` TXT records on
//! 127.0.0.1:53, a private `/etc/resolv.conf` points both programs at it,
//! the keys are made by `openssl` for each run, and the daemons listen on
//! the namespace's own loopback. Needs root; without Exim the test prints
//! SKIP (a failure under `CI=true`).

mod common;
#[path = "common/exim.rs"]
mod exim;

use std::process::Command;

use common::*;
use exim::{chown_to_exim, exim, exim_dir, write_conf, EXIM_USER};

/// oxim: signs what goes to exim.example, verifies what comes in.
const OXIM_CONF: &str = r#"
exim_user = root
never_users =
primary_hostname = oxim.example
qualify_domain = oxim.example
spool_directory = DIR/spool
log_file_path = DIR/log/%slog
host_lookup =
helo_lookup_domains =
domainlist local_domains = oxim.example
log_selector = +dkim +dkim_verbose
acl_smtp_rcpt = accept

begin routers

to_exim:
  driver = manualroute
  domains = exim.example
  route_list = * 127.0.0.1 byname
  self = send
  transport = to_exim

local:
  driver = accept
  domains = +local_domains
  transport = mbox

begin transports

to_exim:
  driver = smtp
  port = 2526
  allow_localhost
  hosts_try_fastopen = :
  dkim_domain = oxim.example
  dkim_selector = rsa : ed
  dkim_private_key = ${if eq{$dkim_selector}{rsa}{DIR/oxim-rsa.key}{DIR/oxim-ed.key}}
  dkim_strict = true

mbox:
  driver = appendfile
  file = DIR/mail/mbox
"#;

/// Exim: verifies what comes in for exim.example, signs what goes to
/// oxim.example.
const EXIM_CONF: &str = r#"
log_selector = +dkim +dkim_verbose
acl_smtp_rcpt = accept

begin routers

to_oxim:
  driver = manualroute
  domains = oxim.example
  route_list = * 127.0.0.1 byname
  self = send
  transport = to_oxim

local:
  driver = accept
  domains = exim.example
  transport = mbox

begin transports

to_oxim:
  driver = smtp
  port = 2525
  allow_localhost
  hosts_try_fastopen = :
  dkim_domain = exim.example
  dkim_selector = exim
  dkim_private_key = DIR/exim.key
  dkim_strict = true

mbox:
  driver = appendfile
  file = DIR/mail/mbox
"#;

const MESSAGE: &str = "From: Sender <sender@DOMAIN>\nTo: user@OTHER\n\
Subject: DKIM interop\nMessage-ID: <interop@DOMAIN>\n\n\
A body line with  two spaces and a tab\tinside.\n\n\n";

#[test]
fn oxim_signs_exim_verifies_and_exim_signs_oxim_verifies() {
    let Some(bin) = exim() else { return };
    let odir = TestDir::new();
    let edir = exim_dir();
    let oconf = odir.write("oxim.conf", OXIM_CONF);
    let econf = write_conf(&edir, &bin, EXIM_CONF);
    chown_to_exim(&edir.path().join("mail"));
    let _ = Command::new("chmod").arg("755").arg(odir.path()).status();
    odir.write("resolv.conf", "nameserver 127.0.0.1\n");
    odir.write(
        "msg-oxim",
        &MESSAGE
            .replace("DOMAIN", "oxim.example")
            .replace("OTHER", "exim.example"),
    );
    odir.write(
        "msg-exim",
        &MESSAGE
            .replace("DOMAIN", "exim.example")
            .replace("OTHER", "oxim.example"),
    );
    let script = format!(
        r#"set -e
ip link set lo up
mount --bind {o}/resolv.conf /etc/resolv.conf
openssl genrsa -out {o}/oxim-rsa.key 1024 2>/dev/null
openssl genpkey -algorithm ed25519 -out {o}/oxim-ed.key
openssl genrsa -out {e}/exim.key 1024 2>/dev/null
chown {user} {e}/exim.key
rsapub() {{ openssl pkey -in "$1" -pubout -outform DER | base64 -w0; }}
edpub() {{ openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | base64 -w0; }}
cat > {o}/dnsmasq.conf <<EOF
no-resolv
no-hosts
no-poll
listen-address=127.0.0.1
bind-interfaces
port=53
user=root
group=
local=/example/
txt-record=rsa._domainkey.oxim.example,"v=DKIM1; k=rsa; p=$(rsapub {o}/oxim-rsa.key)"
txt-record=ed._domainkey.oxim.example,"v=DKIM1; k=ed25519; p=$(edpub {o}/oxim-ed.key)"
txt-record=exim._domainkey.exim.example,"v=DKIM1; k=rsa; p=$(rsapub {e}/exim.key)"
EOF
dnsmasq --keep-in-foreground --conf-file={o}/dnsmasq.conf --pid-file= &
pids=$!
trap 'kill $pids 2>/dev/null || true' EXIT
{exim} -C {econf} -bdf -oX 2526 -oP {e}/exim.pid &
pids="$pids $!"
{oxim} -C {oconf} -bdf -oX 2525 -oP {o}/oxim.pid &
pids="$pids $!"
for i in $(seq 200); do
  n=$(ss -ltun 2>/dev/null | grep -cE '127.0.0.1:53 |:2525 |:2526 ' || true)
  if [ "$n" -ge 4 ]; then break; fi
  sleep 0.05
done
{oxim} -C {oconf} -odi -f sender@oxim.example user@exim.example < {o}/msg-oxim
{exim} -C {econf} -odi -f sender@exim.example user@oxim.example < {o}/msg-exim
"#,
        o = odir.path().display(),
        e = edir.path().display(),
        user = EXIM_USER,
        exim = bin.display(),
        oxim = oxim_bin().display(),
        oconf = oconf.display(),
        econf = econf.display(),
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
    let olog = odir.read("log/mainlog");
    let elog = std::fs::read_to_string(edir.path().join("log/mainlog")).unwrap_or_default();
    let shown = format!(
        "script: {out:?}\n--- oxim mainlog\n{olog}\n--- Exim mainlog\n{elog}\n--- Exim's mailbox\n{}",
        std::fs::read_to_string(edir.path().join("mail/mbox")).unwrap_or_default()
    );
    assert!(out.status.success(), "{shown}");

    // oxim signed with both keys and says so on its => line ...
    assert!(
        olog.lines()
            .any(|l| l.contains("=> user@exim.example R=to_exim T=to_exim")
                && l.contains(" DKIM=oxim.example:rsa:oxim.example:ed ")),
        "oxim's => line: {shown}"
    );
    // ... and Exim 4.96 verified both signatures.
    for (sel, algo) in [("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")] {
        assert!(
            elog.lines().any(|l| l.contains(&format!(
                "DKIM: d=oxim.example s={sel} c=relaxed/relaxed a={algo} "
            )) && l.ends_with("[verification succeeded]")),
            "Exim's verification of s={sel}: {shown}"
        );
    }
    assert!(
        elog.lines()
            .any(|l| l.contains("<= sender@oxim.example") && l.contains(" DKIM=oxim.example ")),
        "Exim's <= line: {shown}"
    );

    // Exim 4.96 signed, and oxim verified.
    assert!(
        olog.lines().any(|l| l
            .contains("DKIM: d=exim.example s=exim c=relaxed/relaxed a=rsa-sha256 b=1024 ")
            && l.ends_with("[verification succeeded]")),
        "oxim's verification of Exim's signature: {shown}"
    );
    assert!(
        olog.lines()
            .any(|l| l.contains("<= sender@exim.example") && l.contains(" DKIM=exim.example ")),
        "oxim's <= line: {shown}"
    );
}
