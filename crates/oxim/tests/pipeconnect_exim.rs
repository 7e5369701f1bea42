//! oxim's smtp transport against a real Exim 4.96 server (Debian's exim4,
//! unpacked by `bench/get-exim.sh`, path from `OXIM_EXIM_BIN`), in a
//! private network namespace with TCP Fast Open on: Exim offers
//! PIPECONNECT and CHUNKING but not oxim's `XOXIM-TXID`, so a client with a
//! TFO cookie and a cached EHLO answer must fall back to ordinary early
//! pipelining: no transaction in the SYN, no `XOXIM-TXID` on MAIL, EHLO and
//! the transaction right after the handshake (` L*` on both sides' lines).
//!
//! Root only (namespaces; Exim runs `-C` configurations as its own user).
//! Without Exim the test prints a SKIP line (a failure under `CI=true`).

mod common;
#[path = "common/exim.rs"]
mod exim;
#[path = "common/netns.rs"]
mod netns;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestDir;
use exim::{exim, exim_dir, write_conf};
use netns::*;

/// Exim's port inside the namespace.
const PORT: u16 = 2225;

/// Exim as a server that takes everything and discards it; no STARTTLS (a
/// transaction in the SYN needs none, and this keeps the early pipelining
/// plain). PIPECONNECT and CHUNKING are Exim 4.96's defaults.
const EXIM_SERVER: &str = "\
tls_advertise_hosts =
acl_smtp_rcpt = accept
log_selector = +pipelining +received_recipients

begin routers

discard:
  driver = redirect
  data = :blackhole:
";

const OXIM_CLIENT: &str = "\
primary_hostname = client.test.ex
spool_directory = DIR/spool
exim_user = root
log_file_path = DIR/log/%slog
log_selector = +pipelining +tfo_detail

begin routers

client:
  driver = accept
  transport = to_exim

begin transports

to_exim:
  driver = smtp
  allow_localhost
  hosts = 127.0.0.1
  port = PORT
  hosts_try_fastopen = *

begin retry

* * F,5d,10s
";

struct EximDaemon(Child);

impl Drop for EximDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exim_daemon(bin: &Path, dir: &Path, conf: &Path) -> EximDaemon {
    let child = Command::new(bin)
        .arg("-C")
        .arg(conf)
        .args(["-bdf", "-oX", &PORT.to_string(), "-oP"])
        .arg(dir.join("exim.pid"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exim");
    let d = EximDaemon(child);
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            PORT
        ))
        .is_ok()),
        "Exim daemon did not listen on {PORT}"
    );
    d
}

/// `oxim -odi rcpt`; the client's `=>` line for it.
fn deliver(odir: &TestDir, conf: &Path, rcpt: &str) -> String {
    let msg = odir.path().join("msg.txt");
    std::fs::write(&msg, format!("Subject: {rcpt}\n\nto Exim\n")).expect("message");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxim"));
    cmd.arg("-C")
        .arg(conf)
        .args(["-odi", rcpt])
        .current_dir(odir.path());
    let (st, out) = run_bounded_with_input(cmd, odir.path(), "client", LIMIT, Some(&msg));
    assert!(st.success(), "oxim -odi {rcpt} failed ({st}): {out}");
    let log = std::fs::read_to_string(odir.path().join("log/mainlog")).unwrap_or_default();
    find_line(&log, " => ", rcpt)
        .unwrap_or_else(|| panic!("no delivery (=>) of {rcpt} in oxim's log:\n{log}"))
}

fn exim_received(edir: &Path, rcpt: &str) -> String {
    let log = edir.join("log/mainlog");
    let mut line = None;
    wait_until(LIMIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        line = find_line(&text, " <= ", &format!("for {rcpt}"));
        line.is_some()
    });
    line.unwrap_or_else(|| {
        panic!(
            "Exim logged no <= for {rcpt}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
}

/// First contact caches Exim's EHLO answer (PIPECONNECT, no XOXIM-TXID);
/// the second delivery pipelines early with the TFO cookie but keeps the
/// transaction out of the SYN: ` TFO` (not ` TFO*`) and ` L*` on oxim's
/// `=>` line; Exim takes the early-pipelined EHLO, MAIL, RCPT and BDAT
/// without a synchronization error and refuses nothing.
///
/// Exim's `<=` line says ` L*` or ` L.` (PIPECONNECT offered, not used):
/// Exim counts early pipelining only when the EHLO is already waiting when
/// it sends its banner, which its own client ensures by putting the EHLO
/// into the TFO SYN. oxim's client sends the EHLO with the transaction
/// right after the handshake (the same round trips), which on loopback
/// races with Exim's banner.
#[test]
fn early_pipelining_to_exim_without_tx_token_keeps_the_message_out_of_the_syn() {
    let Some(bin) = exim() else { return };
    in_netns(move || {
        let edir = exim_dir();
        let econf = write_conf(&edir, &bin, EXIM_SERVER);
        let _exim = exim_daemon(&bin, edir.path(), &econf);
        let odir = TestDir::new();
        let conf = odir.write(
            "client.conf",
            &OXIM_CLIENT.replace("PORT", &PORT.to_string()),
        );
        flush_cookie("127.0.0.1");

        let a = deliver(&odir, &conf, "first@test.ex");
        assert!(a.contains(" TFO=cookie-requested"), "{a}");
        assert!(!a.contains(" L*"), "no cached answer yet: {a}");
        let cache = std::fs::read_to_string(odir.path().join("spool/db/misc")).unwrap_or_default();
        assert!(
            cache.contains(&format!("127.0.0.1:{PORT}.EHLO")) && cache.contains("PIPECONNECT"),
            "Exim's EHLO answer is cached: {cache:?}"
        );
        assert!(!cache.contains("XOXIM-TXID"), "{cache:?}");
        let ea = exim_received(edir.path(), "first@test.ex");
        assert!(!ea.contains(" L*"), "{ea}");

        let b = deliver(&odir, &conf, "second@test.ex");
        assert!(
            b.contains(" L* ") && b.contains(" TFO ") && b.contains(" TFO=cookie-accepted"),
            "early pipelining with the cookie, nothing in the SYN: {b}"
        );
        let eb = exim_received(edir.path(), "second@test.ex");
        assert!(eb.contains(" L. ") || eb.contains(" L* "), "{eb}");
        assert!(
            b.contains(&format!(
                "250 OK id={}\"",
                eb.split_whitespace().next().unwrap_or("?")
            )),
            "{b}\n{eb}"
        );
        let elog = std::fs::read_to_string(edir.path().join("log/mainlog")).unwrap_or_default();
        assert!(!elog.contains("XOXIM"), "{elog}");
        assert!(!elog.contains("synchronization error"), "{elog}");
        let rejects =
            std::fs::read_to_string(edir.path().join("log/rejectlog")).unwrap_or_default();
        assert!(rejects.is_empty(), "Exim refused something: {rejects}");
    });
}
