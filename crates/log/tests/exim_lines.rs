//! Every kind of line checked against lines from Exim's expected test logs
//! (2d58d8154 and HEAD trees; ids, pids and ports as the harness munges
//! them), and against the formats of Exim's documentation.

use oxim_log::*;
use oxim_net::{ClientTfo, ServerTfo};
use std::net::IpAddr;
use std::time::Duration;

const ID: &str = "10HmaX-0005vi-00";
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn sel(s: &str) -> LogSelector {
    LogSelector::parse(s).unwrap()
}

fn local_received<'a>(id: &'a str, rcpts: &'a [&'a str]) -> Received<'a> {
    let mut r = Received::new(id, "CALLER@myhost.test.ex", 0);
    r.ident = Some("CALLER");
    r.protocol = Some("local");
    r.recipients = rcpts;
    r
}

/// The harness replaces sizes with `sss`; our tests render real sizes and
/// compare after the same substitution.
fn munge_size(s: String) -> String {
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find(" S=") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str("sss");
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

#[test]
fn received_local() {
    // log/0106, log/0242
    let r = local_received(ID, &[]);
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&LogSelector::default())),
        "10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=sss"
    );
    // log/1990 with +received_recipients
    let r = local_received(ID, &["a@test.ex"]);
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&sel("+received_recipients +millisec"))),
        "10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=sss for a@test.ex"
    );
    // log/0012
    let mut r = local_received(ID, &[]);
    r.sender = "CALLER@the.local.host.name";
    r.protocol = Some("local-bsmtp");
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&LogSelector::default())),
        "10HmaX-0005vi-00 <= CALLER@the.local.host.name U=CALLER P=local-bsmtp S=sss"
    );
    // log/0441: id= from the Message-ID header
    let mut r = local_received(ID, &[]);
    r.message_id = Some("something@[1.2.3.4]");
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&LogSelector::default())),
        "10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=sss id=something@[1.2.3.4]"
    );
}

#[test]
fn received_smtp_with_tfo() {
    // log/1990 server side
    let rcpts = ["b@test.ex"];
    let mut r = Received::new("10HmbA-0005vi-00", "CALLER@myhost.test.ex", 400);
    r.host = Some(SenderHost {
        name: Some("localhost"),
        helo: Some("myhost.test.ex"),
        ip: LOCAL,
        port: 40123,
        conn_id: None,
    });
    r.tfo = Tfo::Server(ServerTfo::Cookie);
    r.protocol = Some("esmtp");
    r.message_id = Some("E10HmaZ-0005vi-00@myhost.test.ex");
    r.recipients = &rcpts;
    let s = sel("+received_recipients +millisec");
    assert_eq!(
        munge_size(LogRecord::Received(r.clone()).render(&s)),
        "10HmbA-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] TFO P=esmtp S=sss id=E10HmaZ-0005vi-00@myhost.test.ex for b@test.ex"
    );
    // Without TFO (first message of 1990).
    r.tfo = Tfo::default();
    assert_eq!(
        munge_size(LogRecord::Received(r.clone()).render(&s)),
        "10HmbA-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] P=esmtp S=sss id=E10HmaZ-0005vi-00@myhost.test.ex for b@test.ex"
    );
    // +incoming_port puts the port after ]; TFO follows it.
    r.tfo = Tfo::Server(ServerTfo::Cookie);
    assert_eq!(
        munge_size(LogRecord::Received(r.clone()).render(&sel("+incoming_port"))),
        "10HmbA-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1]:40123 TFO P=esmtp S=sss id=E10HmaZ-0005vi-00@myhost.test.ex"
    );
    // oxim's tfo_detail.
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&sel("+tfo_detail"))),
        "10HmbA-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] TFO TFO=cookie P=esmtp S=sss id=E10HmaZ-0005vi-00@myhost.test.ex"
    );
}

#[test]
fn received_smtps_head_1091() {
    // HEAD log/1091 server side (cipher as munged by the harness).
    let mut r = Received::new("10HmbA-000000005vi-0000", "CALLER@myhost.test.ex", 7);
    r.host = Some(SenderHost {
        name: None,
        helo: Some("myhost.test.ex"),
        ip: LOCAL,
        port: 1,
        conn_id: None,
    });
    r.tfo = Tfo::Server(ServerTfo::CookieWithData);
    r.protocol = Some("esmtps");
    r.tls = Some(TlsLog {
        cipher: "TLS1.x:ke-RSA-AES256-SHAnnn:xxx",
        ..TlsLog::default()
    });
    r.message_id = Some("E10HmaZ-000000005vi-0000@myhost.test.ex");
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&sel("+millisec"))),
        "10HmbA-000000005vi-0000 <= CALLER@myhost.test.ex H=(myhost.test.ex) [127.0.0.1] TFO* P=esmtps X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx S=sss id=E10HmaZ-000000005vi-0000@myhost.test.ex"
    );
}

#[test]
fn received_null_sender_and_quoted_rcpt() {
    // log/0579
    let rcpts = ["\"name with spaces\"@test.ex"];
    let mut r = Received::new(ID, "", 1);
    r.host = Some(SenderHost {
        name: None,
        helo: Some("test"),
        ip: LOCAL,
        port: 1,
        conn_id: None,
    });
    r.protocol = Some("esmtp");
    r.recipients = &rcpts;
    assert_eq!(
        munge_size(LogRecord::Received(r).render(&sel("+received_recipients"))),
        "10HmaX-0005vi-00 <= <> H=(test) [127.0.0.1] P=esmtp S=sss for \"name with spaces\"@test.ex"
    );
}

#[test]
fn received_optional_items_order() {
    // Documented order: R= H= I= TFO U= P= X= CV= DN= SNI= A= K S= RT= id= T= from for
    let rcpts = ["x@y", "z@y"];
    let mut r = Received::new(ID, "s@x", 2387);
    r.reference = Some("10HmaW-0005vi-00");
    r.host = Some(SenderHost {
        name: Some("h.example"),
        helo: Some("one"),
        ip: "10.0.0.1".parse().unwrap(),
        port: 52087,
        conn_id: None,
    });
    r.interface = Some(("10.0.0.2".parse().unwrap(), 25));
    r.ident = Some("id1");
    r.protocol = Some("esmtpsa");
    r.tls = Some(TlsLog {
        cipher: "TLS1.3:TLS_AES_256_GCM_SHA384:256",
        resumed: true,
        certificate_verified: Some(false),
        peerdn: Some("CN=a \"b\""),
        sni: Some("mx.example"),
    });
    r.auth = Some(("plain", Some("user")));
    r.prdr = true;
    r.chunking = true;
    r.receive_time = Some(Duration::from_millis(1500));
    r.message_id = Some("m@x");
    r.subject = Some("Naked \"news\"\n\tfolded");
    r.recipients = &rcpts;
    let all = LogSelector::all();
    assert_eq!(
        LogRecord::Received(r.clone()).render(&all),
        "10HmaX-0005vi-00 <= s@x R=10HmaW-0005vi-00 H=h.example (one) [10.0.0.1]:52087 I=[10.0.0.2]:25 U=id1 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256* CV=no DN=\"CN=a \\\"b\\\"\" SNI=mx.example A=plain:user PRDR K S=2387 RT=1.500s id=m@x T=\"Naked \\\"news\\\"\\n\\tfolded\" from <s@x> for x@y z@y"
    );
    // Default selector drops the optional items.
    assert_eq!(
        LogRecord::Received(r).render(&LogSelector::default()),
        "10HmaX-0005vi-00 <= s@x R=10HmaW-0005vi-00 H=h.example (one) [10.0.0.1] U=id1 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=plain:user PRDR K S=2387 id=m@x"
    );
}

#[test]
fn helo_equal_to_name_or_literal_is_not_repeated() {
    let mut h = SenderHost {
        name: Some("Host.Example"),
        helo: Some("host.example"),
        ip: LOCAL,
        port: 1,
        conn_id: None,
    };
    let render = |h: SenderHost<'_>| {
        LogRecord::ConnectionRefused {
            host: h,
            reason: "x",
        }
        .render(&LogSelector::default())
    };
    assert_eq!(
        render(h),
        "refused connection from Host.Example [127.0.0.1] (x)"
    );
    h.name = None;
    h.helo = Some("[127.0.0.1]");
    assert_eq!(render(h), "refused connection from [127.0.0.1] (x)");
    h.helo = Some("[127.0.0.2]");
    assert_eq!(
        render(h),
        "refused connection from ([127.0.0.2]) [127.0.0.1] (x)"
    );
}

fn smtp_delivery<'a>(id: &'a str, addr: &'a str, confirmation: &'a str) -> Delivered<'a> {
    let mut d = Delivered::new(id, LogAddress::new(addr), "CALLER@myhost.test.ex");
    d.router = Some("client");
    d.transport = Some("send_to_server");
    d.host = Some(RemoteHost {
        name: "127.0.0.1",
        ip: LOCAL,
        port: 1225,
    });
    d.confirmation = Some(confirmation);
    d
}

#[test]
fn delivered_smtp() {
    // log/1990 client side
    let d = smtp_delivery(ID, "a@test.ex", "250 OK id=10HmaY-0005vi-00");
    let s = sel("+received_recipients +millisec");
    assert_eq!(
        LogRecord::Delivered(d).render(&s),
        "10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] C=\"250 OK id=10HmaY-0005vi-00\""
    );
    let mut d = smtp_delivery(
        "10HmaZ-0005vi-00",
        "b@test.ex",
        "250 OK id=10HmbA-0005vi-00",
    );
    d.tfo = Tfo::client(ClientTfo::CookieAccepted);
    assert_eq!(
        LogRecord::Delivered(d).render(&s),
        "10HmaZ-0005vi-00 => b@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] TFO C=\"250 OK id=10HmbA-0005vi-00\""
    );
    // log/0242
    let mut d = smtp_delivery(ID, "abc@x.y.z", "250 OK");
    d.router = Some("all");
    d.transport = Some("smtp");
    assert_eq!(
        LogRecord::Delivered(d).render(&LogSelector::default()),
        "10HmaX-0005vi-00 => abc@x.y.z R=all T=smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK\""
    );
}

#[test]
fn delivered_down_a_continued_connection_has_a_star_after_the_host() {
    // Exim marks a delivery down a connection that an earlier message used
    // with `*` at the end of the host part: after the port with
    // +outgoing_port, after I= with +outgoing_interface.
    let mut d = smtp_delivery(ID, "a@test.ex", "250 OK id=fake");
    d.continued = true;
    assert_eq!(
        LogRecord::Delivered(d.clone()).render(&LogSelector::default()),
        "10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1]* C=\"250 OK id=fake\""
    );
    d.interface = Some(("127.0.0.1".parse().unwrap(), 40000));
    assert_eq!(
        LogRecord::Delivered(d).render(&sel("+outgoing_port +outgoing_interface")),
        "10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1]:1225 I=[127.0.0.1]:40000* C=\"250 OK id=fake\""
    );
}

#[test]
fn continued_tls_connection_has_the_star_before_x_and_cv() {
    // Exim: the host part, then `*` for a continued connection, then the
    // TLS items of the session the connection carries.
    let mut d = smtp_delivery(ID, "a@test.ex", "250 OK id=fake");
    d.continued = true;
    d.tls = Some(TlsLog {
        cipher: "TLS1.3:TLS_AES_256_GCM_SHA384:256",
        certificate_verified: Some(true),
        ..TlsLog::default()
    });
    assert_eq!(
        LogRecord::Delivered(d).render(&LogSelector::default()),
        "10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1]* X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 OK id=fake\""
    );
}

#[test]
fn delivered_with_tls_head_1091() {
    let mut d = smtp_delivery(
        "10HmaZ-000000005vi-0000",
        "hazcookie@test.ex",
        "250 OK id=10HmbA-000000005vi-0000",
    );
    d.router = Some("r");
    d.transport = Some("t");
    d.tfo = Tfo::client(ClientTfo::DataAcked);
    d.tls = Some(TlsLog {
        cipher: "TLS1.x:ke-RSA-AES256-SHAnnn:xxx",
        certificate_verified: Some(true),
        ..TlsLog::default()
    });
    assert_eq!(
        LogRecord::Delivered(d).render(&sel("+millisec")),
        "10HmaZ-000000005vi-0000 => hazcookie@test.ex R=r T=t H=127.0.0.1 [127.0.0.1] TFO* X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx CV=yes C=\"250 OK id=10HmbA-000000005vi-0000\""
    );
}

#[test]
fn delivered_redirected_and_rewritten() {
    // log/1990 server: redirect to :blackhole:
    let mut d = Delivered::new(
        "10HmaY-0005vi-00",
        LogAddress::from_original(":blackhole:", "a@test.ex"),
        "x@y",
    );
    d.router = Some("server");
    assert_eq!(
        LogRecord::Delivered(d).render(&LogSelector::default()),
        "10HmaY-0005vi-00 => :blackhole: <a@test.ex> R=server"
    );
    // log/0012
    let mut d = Delivered::new(
        ID,
        LogAddress::from_original(":blackhole:", "blackhole@the.local.host.name"),
        "x@y",
    );
    d.router = Some("system_aliases");
    assert_eq!(
        LogRecord::Delivered(d).render(&LogSelector::default()),
        "10HmaX-0005vi-00 => :blackhole: <blackhole@the.local.host.name> R=system_aliases"
    );
    // log/0363: rewritten address
    let mut d = smtp_delivery(ID, "aa@bb", "250 OK");
    d.address.original = Some("Aa%Bb@Cc");
    d.router = Some("r1");
    d.transport = Some("t1");
    assert_eq!(
        LogRecord::Delivered(d).render(&LogSelector::default()),
        "10HmaX-0005vi-00 => aa@bb <Aa%Bb@Cc> R=r1 T=t1 H=127.0.0.1 [127.0.0.1] C=\"250 OK\""
    );
}

#[test]
fn delivered_optional_items_order() {
    // Order as in real Exim lines:
    // => addr (parents) <orig> F=<> P=<> R= T= S= H= [ip]:port I= TFO X= CV= A= K C= QT= DT=
    let parents = ["samvid++Sent@pochta.ru", "samvid@bk.ru"];
    let mut d = Delivered::new(
        ID,
        LogAddress {
            address: "samvid++sent@pochta.ru",
            parents: &parents,
            original: Some("samvid@bk.ru"),
        },
        "samvid@pochta.ru",
    );
    d.flag = DeliveryFlag::Further;
    d.return_path = Some("");
    d.router = Some("virtuser_lmtp");
    d.transport = Some("remote_lmtp");
    d.size = Some(8451);
    d.host = Some(RemoteHost {
        name: "be5.ml.itmm.ru",
        ip: "185.79.118.113".parse().unwrap(),
        port: 2125,
    });
    d.interface = Some(("10.1.1.1".parse().unwrap(), 40000));
    d.tfo = Tfo::client(ClientTfo::NotTried);
    d.auth = Some("plain");
    d.chunking = true;
    d.confirmation = Some("LMTP Successful delivery:250 \"ok\"");
    d.queue_time = Some(Duration::from_secs(1));
    d.deliver_time = Some(Duration::from_secs(0));
    assert_eq!(
        LogRecord::Delivered(d.clone()).render(&LogSelector::all().with(Selector::Millisec, false)),
        "10HmaX-0005vi-00 -> samvid++sent@pochta.ru (samvid++Sent@pochta.ru, samvid@bk.ru) <samvid@bk.ru> F=<samvid@pochta.ru> P=<> R=virtuser_lmtp T=remote_lmtp S=8451 H=be5.ml.itmm.ru [185.79.118.113]:2125 I=[10.1.1.1]:40000 TFO=not-tried A=plain K C=\"LMTP Successful delivery:250 \\\"ok\\\"\" QT=1s DT=0s"
    );
    d.flag = DeliveryFlag::Suppressed;
    assert_eq!(
        LogRecord::Delivered(d).render(&sel("-smtp_confirmation")),
        "10HmaX-0005vi-00 *> samvid++sent@pochta.ru <samvid@bk.ru> R=virtuser_lmtp T=remote_lmtp H=be5.ml.itmm.ru [185.79.118.113] A=plain K"
    );
}

#[test]
fn deferred_and_host_error_0106() {
    let host = RemoteHost {
        name: "127.0.0.1",
        ip: LOCAL,
        port: 1224,
    };
    let he = LogRecord::HostError {
        id: ID,
        host,
        text: "SMTP timeout after EHLO myhost.test.ex",
        errno_text: Some("Connection timed out"),
    };
    assert_eq!(
        he.render(&LogSelector::default()),
        "10HmaX-0005vi-00 H=127.0.0.1 [127.0.0.1]: SMTP timeout after EHLO myhost.test.ex: Connection timed out"
    );
    assert_eq!(
        he.render_msglog(&LogSelector::default()).unwrap(),
        "H=127.0.0.1 [127.0.0.1]: SMTP timeout after EHLO myhost.test.ex: Connection timed out"
    );
    let mut d = Deferred::new(
        ID,
        LogAddress::new("userx@domain1.com"),
        "CALLER@myhost.test.ex",
        DeliveryError {
            errno: 110,
            errno_text: Some("Connection timed out"),
            host: Some(host),
            message: Some("SMTP timeout after EHLO myhost.test.ex"),
            protocol_sequence: None,
        },
    );
    d.router = Some("all");
    d.transport = Some("smtp");
    let rec = LogRecord::Deferred(d);
    // The harness munges the errno to (dd).
    assert_eq!(
        rec.render(&LogSelector::default()).replace("(110)", "(dd)"),
        "10HmaX-0005vi-00 == userx@domain1.com R=all T=smtp defer (dd): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after EHLO myhost.test.ex"
    );
    // msglog/0106.*
    assert_eq!(
        rec.render_msglog(&LogSelector::default()).unwrap().replace("(110)", "(dd)"),
        "userx@domain1.com R=all T=smtp defer (dd): Connection timed out H=127.0.0.1 [127.0.0.1]: SMTP timeout after EHLO myhost.test.ex"
    );
}

#[test]
fn deferred_retry_not_reached_is_gated() {
    let mut d = Deferred::new(
        ID,
        LogAddress::new("project.15@papacarlo.planfix.ru"),
        "root@jetstd.ru",
        DeliveryError {
            errno: -53,
            message: Some("retry time not reached for any host"),
            protocol_sequence: None,
            ..DeliveryError::default()
        },
    );
    d.router = Some("dnslookup");
    d.transport = Some("remote_smtp");
    d.retry_not_reached = true;
    let rec = LogRecord::Deferred(d);
    assert_eq!(
        rec.render(&LogSelector::default()),
        "10HmaX-0005vi-00 == project.15@papacarlo.planfix.ru R=dnslookup T=remote_smtp defer (-53): retry time not reached for any host"
    );
    assert!(rec.destinations(&LogSelector::default()).main);
    assert!(!rec.destinations(&sel("-retry_defer")).main);
}

#[test]
fn host_error_of_a_refused_connection() {
    let he = LogRecord::HostError {
        id: ID,
        host: RemoteHost {
            name: "127.0.0.1",
            ip: LOCAL,
            port: 1224,
        },
        text: "",
        errno_text: Some("Connection refused"),
    };
    assert_eq!(
        he.render(&LogSelector::default()),
        "10HmaX-0005vi-00 H=127.0.0.1 [127.0.0.1] Connection refused"
    );
}

#[test]
fn routing_defer_for_a_retry_time() {
    let mut d = Deferred::new(
        ID,
        LogAddress::new("userx@test.ex"),
        "CALLER@test.ex",
        DeliveryError {
            errno: -52,
            message: Some("retry time not reached"),
            protocol_sequence: None,
            ..DeliveryError::default()
        },
    );
    d.retry_not_reached = true;
    d.routing = true;
    assert_eq!(
        LogRecord::Deferred(d).render(&LogSelector::default()),
        "10HmaX-0005vi-00 == userx@test.ex routing defer (-52): retry time not reached"
    );
}

#[test]
fn failed() {
    let host = RemoteHost {
        name: "mx.example",
        ip: "192.0.2.1".parse().unwrap(),
        port: 25,
    };
    let mut f = Failed::new(
        ID,
        LogAddress::new("x@example"),
        "s@x",
        DeliveryError {
            errno: -44,
            errno_text: None,
            host: Some(host),
            message: Some("SMTP error from remote mail server after RCPT TO:<x@example>: 550 5.1.1 unknown user"),
            protocol_sequence: None,
        },
    );
    f.router = Some("dnslookup");
    f.transport = Some("remote_smtp");
    assert_eq!(
        LogRecord::Failed(f).render(&LogSelector::default()),
        "10HmaX-0005vi-00 ** x@example R=dnslookup T=remote_smtp H=mx.example [192.0.2.1] : SMTP error from remote mail server after RCPT TO:<x@example>: 550 5.1.1 unknown user"
    );
    let f = Failed::new(
        ID,
        LogAddress::new("abc@nowhere"),
        "s@x",
        DeliveryError {
            message: Some("Unrouteable address"),
            protocol_sequence: None,
            ..DeliveryError::default()
        },
    );
    assert_eq!(
        LogRecord::Failed(f).render(&LogSelector::default()),
        "10HmaX-0005vi-00 ** abc@nowhere : Unrouteable address"
    );
}

#[test]
fn completed() {
    let rec = LogRecord::Completed {
        id: ID,
        queue_time: Some(Duration::from_secs(65)),
    };
    assert_eq!(
        rec.render(&LogSelector::default()),
        "10HmaX-0005vi-00 Completed"
    );
    assert_eq!(
        rec.render(&sel("+queue_time_overall")),
        "10HmaX-0005vi-00 Completed QT=1m5s"
    );
}

#[test]
fn daemon_started() {
    let ports = [1225];
    let mut d = DaemonStarted {
        version: "exim x.yz",
        pid: 1234,
        queue_interval: None,
        smtp: Some(Listen::Ports {
            ports: &ports,
            families: None,
        }),
        smtps: None,
    };
    assert_eq!(
        LogRecord::DaemonStarted(d.clone()).render(&LogSelector::default()),
        "exim x.yz daemon started: pid=1234, no queue runs, listening for SMTP on port 1225"
    );
    // HEAD 1091 (-tls-on-connect)
    let smtps = d.smtp.take();
    d.smtps = smtps;
    assert_eq!(
        LogRecord::DaemonStarted(d.clone()).render(&LogSelector::default()),
        "exim x.yz daemon started: pid=1234, no queue runs, listening for SMTPS on port 1225"
    );
    // As in a real Exim 4.86 log: one "port N (families)" per port, SMTPS
    // after "and for".
    let two = [25, 587];
    let tls = [465];
    d.smtp = Some(Listen::Ports {
        ports: &two,
        families: Some("IPv6 and IPv4"),
    });
    d.smtps = Some(Listen::Ports {
        ports: &tls,
        families: Some("IPv6 and IPv4"),
    });
    d.queue_interval = Some("-q1h");
    assert_eq!(
        LogRecord::DaemonStarted(d.clone()).render(&LogSelector::default()),
        "exim x.yz daemon started: pid=1234, -q1h, listening for SMTP on port 25 (IPv6 and IPv4) port 587 (IPv6 and IPv4) and for SMTPS on port 465 (IPv6 and IPv4)"
    );
    let addrs = [(LOCAL, 1225), ("::1".parse().unwrap(), 1225)];
    d.smtps = None;
    d.smtp = Some(Listen::Addresses(&addrs));
    assert_eq!(
        LogRecord::DaemonStarted(d.clone()).render(&LogSelector::default()),
        "exim x.yz daemon started: pid=1234, -q1h, listening for SMTP on [127.0.0.1]:1225 [::1]:1225"
    );
    d.smtp = None;
    assert_eq!(
        LogRecord::DaemonStarted(d).render(&LogSelector::default()),
        "exim x.yz daemon started: pid=1234, -q1h, not listening for SMTP"
    );
}

#[test]
fn smtp_connection_lines_head_0605() {
    let host = SenderHost::new("198.18.0.1".parse().unwrap(), 50000);
    let open = LogRecord::SmtpConnection {
        host,
        interface: None,
        count: 1,
    };
    let s = sel("+smtp_connection");
    assert_eq!(
        open.render(&s),
        "SMTP connection from [198.18.0.1] (TCP/IP connection count = 1)"
    );
    assert!(open.destinations(&s).main);
    assert!(!open.destinations(&LogSelector::default()).main);
    let closed = LogRecord::SmtpClosed {
        interface: None,
        host,
        ident: None,
        duration: Some(Duration::from_secs(3)),
        how: SmtpEnd::Quit,
    };
    assert_eq!(
        closed.render(&s).replace("D=3s", "D=qqs"),
        "SMTP connection from [198.18.0.1] D=qqs closed by QUIT"
    );
    let lost = LogRecord::SmtpClosed {
        interface: None,
        host: SenderHost {
            helo: Some("client"),
            ..host
        },
        ident: None,
        duration: Some(Duration::from_millis(2345)),
        how: SmtpEnd::Lost,
    };
    assert_eq!(
        lost.render(&sel("+millisec")),
        "unexpected disconnection while reading SMTP command from (client) [198.18.0.1] D=2.345s"
    );
    assert!(lost.destinations(&LogSelector::default()).main);
}

#[test]
fn connection_refused_0314() {
    let rec = LogRecord::ConnectionRefused {
        host: SenderHost::new(LOCAL, 1),
        reason: "host_reject_connection",
    };
    assert_eq!(
        rec.render(&LogSelector::default()),
        "refused connection from [127.0.0.1] (host_reject_connection)"
    );
    // 0314: -connection_reject drops the main log line only.
    let d = rec.destinations(&sel("-connection_reject"));
    assert!(!d.main && d.reject);
    let d = rec.destinations(&LogSelector::default());
    assert!(d.main && d.reject);
}

#[test]
fn rejections() {
    let host = SenderHost {
        name: None,
        helo: Some("remote.host"),
        ip: "192.0.2.9".parse().unwrap(),
        port: 1,
        conn_id: None,
    };
    let rec = LogRecord::Rejected(Rejected {
        id: None,
        host: Some(host),
        ident: None,
        tls: None,
        sender: Some(""),
        auth: None,
        what: RejectWhat::Rcpt("x@other.ex"),
        temporary: true,
        reason: Some("defer in percent_hack_domains check"),
    });
    assert_eq!(
        rec.render(&LogSelector::default()),
        "H=(remote.host) [192.0.2.9] F=<> temporarily rejected RCPT <x@other.ex>: defer in percent_hack_domains check"
    );
    let d = rec.destinations(&LogSelector::default());
    assert!(d.main && d.reject && !d.panic);
    let rec = LogRecord::Rejected(Rejected {
        id: Some(ID),
        host: Some(host),
        ident: None,
        tls: None,
        sender: Some("a@b"),
        auth: None,
        what: RejectWhat::AfterData,
        temporary: false,
        reason: Some("spam"),
    });
    assert_eq!(
        rec.render(&LogSelector::default()),
        "10HmaX-0005vi-00 H=(remote.host) [192.0.2.9] F=<a@b> rejected after DATA: spam"
    );
    // log/1103: an encrypted connection's cipher follows the client.
    let rec = LogRecord::Rejected(Rejected {
        id: None,
        host: Some(host),
        ident: None,
        tls: Some(TlsLog {
            cipher: "TLS1.3:TLS_AES_256_GCM_SHA384:256",
            ..TlsLog::default()
        }),
        sender: Some("userx@test.ex"),
        auth: None,
        what: RejectWhat::Rcpt("userx@test.ex"),
        temporary: false,
        reason: Some("unacceptable cipher"),
    });
    assert_eq!(
        rec.render(&LogSelector::default()),
        "H=(remote.host) [192.0.2.9] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 F=<userx@test.ex> rejected RCPT <userx@test.ex>: unacceptable cipher"
    );
}

#[test]
fn free_text_and_panic() {
    // log/0602, log/0579
    let t = LogRecord::Text {
        id: None,
        text: "This argument written, with newline, to log",
        dest: Dest::MAIN,
    };
    assert_eq!(
        t.render(&LogSelector::default()),
        "This argument written, with newline, to log"
    );
    let p = LogRecord::Panic {
        id: None,
        text: "failure",
    };
    let d = p.destinations(&LogSelector::default());
    assert!(d.main && d.panic);
}

#[test]
fn received_msglog_line_0106() {
    let r = LogRecord::Received(local_received(ID, &[]));
    assert_eq!(
        munge_size(r.render_msglog(&LogSelector::default()).unwrap()),
        "Received from CALLER@myhost.test.ex U=CALLER P=local S=sss"
    );
}

#[test]
fn msglog_forms() {
    let mut d = smtp_delivery(ID, "abc@x.y.z", "250 OK");
    d.router = Some("all");
    d.transport = Some("smtp");
    assert_eq!(
        LogRecord::Delivered(d)
            .render_msglog(&LogSelector::default())
            .unwrap(),
        "=> abc@x.y.z R=all T=smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK\""
    );
    let f = Failed::new(
        ID,
        LogAddress::new("abc@nowhere"),
        "s@x",
        DeliveryError {
            message: Some("Unrouteable address"),
            protocol_sequence: None,
            ..DeliveryError::default()
        },
    );
    assert_eq!(
        LogRecord::Failed(f)
            .render_msglog(&LogSelector::default())
            .unwrap(),
        "abc@nowhere : Unrouteable address"
    );
    let c = LogRecord::Completed {
        id: ID,
        queue_time: None,
    };
    assert_eq!(
        c.render_msglog(&LogSelector::default()).unwrap(),
        "Completed"
    );
    let daemon = LogRecord::QueueRunStart { pid: 1 };
    assert_eq!(daemon.render_msglog(&LogSelector::default()), None);
}

#[test]
fn durations() {
    assert_eq!(format_duration(Duration::ZERO, false), "0s");
    assert_eq!(format_duration(Duration::from_secs(59), false), "59s");
    assert_eq!(format_duration(Duration::from_secs(3723), false), "1h2m3s");
    assert_eq!(
        format_duration(Duration::from_secs(86400 * 8), false),
        "1w1d"
    );
    assert_eq!(
        format_duration(Duration::from_millis(4_999), true),
        "4.999s"
    );
    assert_eq!(format_duration(Duration::from_millis(12), true), "0.012s");
    // Exim keeps milliseconds for short durations only.
    assert_eq!(format_duration(Duration::from_millis(62_345), true), "1m2s");
}

#[test]
fn printing_escapes() {
    assert_eq!(printing("plain", true), "plain");
    assert_eq!(
        printing("a\"b\\c\n\u{e9}", true),
        "a\\\"b\\\\c\\n\\303\\251"
    );
    assert_eq!(printing("a\"b", false), "a\"b");
}

#[test]
fn queue_runs() {
    let s = LogRecord::QueueRunStart { pid: 4242 };
    let e = LogRecord::QueueRunEnd { pid: 4242 };
    assert_eq!(
        s.render(&LogSelector::default()),
        "Start queue run: pid=4242"
    );
    assert_eq!(e.render(&LogSelector::default()), "End queue run: pid=4242");
    assert!(s.destinations(&LogSelector::default()).main);
    assert!(!e.destinations(&sel("-queue_run")).main);
}

#[test]
fn rejected_after_data_carries_headers_to_reject_log_only() {
    let rcpts = ["x@test.ex", "y@test.ex"];
    let hdrs = [('P', "Received: from x\n\tby y\n"), (' ', "Subject: hi\n")];
    let rec = LogRecord::RejectedWithHeaders {
        rejected: Rejected {
            id: Some(ID),
            host: Some(SenderHost::new(LOCAL, 1)),
            ident: None,
            tls: None,
            sender: Some("a@b"),
            auth: None,
            what: RejectWhat::AfterData,
            temporary: false,
            reason: Some("no"),
        },
        headers: RejectedHeaders {
            envelope_from: Some("a@b"),
            envelope_to: &rcpts,
            headers: &hdrs,
        },
    };
    assert_eq!(
        rec.render(&LogSelector::default()),
        "10HmaX-0005vi-00 H=[127.0.0.1] F=<a@b> rejected after DATA: no"
    );
    assert_eq!(
        rec.reject_extra(&LogSelector::default()).unwrap(),
        "Envelope-from: <a@b>\nEnvelope-to: <x@test.ex>\n    <y@test.ex>\nP Received: from x\n\tby y\n  Subject: hi\n"
    );
    assert_eq!(rec.reject_extra(&sel("-rejected_header")), None);
    let d = rec.destinations(&LogSelector::default());
    assert!(d.main && d.reject);
}

#[test]
fn reception_limit_lines() {
    let host = SenderHost {
        helo: Some("client"),
        ..SenderHost::new(LOCAL, 1225)
    };
    let data = LogRecord::SmtpClosed {
        interface: None,
        host,
        ident: None,
        duration: Some(Duration::from_secs(7)),
        how: SmtpEnd::DataTimeout {
            sender: "a@b.example",
        },
    };
    assert_eq!(
        data.render(&LogSelector::default()),
        "SMTP data timeout (message abandoned) on connection from (client) [127.0.0.1] F=<a@b.example> D=7s"
    );
    let limit = LogRecord::SmtpClosed {
        interface: None,
        host,
        ident: None,
        duration: Some(Duration::from_secs(3600)),
        how: SmtpEnd::SessionTimeLimit,
    };
    assert_eq!(
        limit.render(&LogSelector::default()),
        "SMTP session time limit exceeded on connection from (client) [127.0.0.1] D=1h"
    );
    // Both are lost connections for the selector.
    assert!(!limit.destinations(&sel("-lost_incoming_connection")).main);
    assert!(data.destinations(&LogSelector::default()).main);

    let total = LogRecord::TooManyConnections {
        ip: LOCAL,
        port: 40000,
        interface: Some((LOCAL, 25)),
        per_host: false,
    };
    assert_eq!(
        total.render(&LogSelector::default()),
        "Connection from [127.0.0.1] refused: too many connections"
    );
    let per_host = LogRecord::TooManyConnections {
        ip: LOCAL,
        port: 40000,
        interface: Some((LOCAL, 25)),
        per_host: true,
    };
    assert_eq!(
        per_host.render(&sel("+incoming_port +incoming_interface")),
        "Connection from [127.0.0.1]:40000 I=[127.0.0.1]:25 refused: too many connections from that IP address"
    );
    assert!(!total.destinations(&sel("-connection_reject")).main);

    let hdr = LogRecord::HeaderTooLong {
        host: Some(host),
        ident: None,
        limit: 1024,
        line: false,
    };
    assert_eq!(
        hdr.render(&LogSelector::default()),
        "ridiculously long message header received from (client) [127.0.0.1] (more than 1024 characters): message abandoned"
    );
    let line = LogRecord::HeaderTooLong {
        host: None,
        ident: Some("CALLER"),
        limit: 100,
        line: true,
    };
    assert_eq!(
        line.render(&LogSelector::default()),
        "overlong message header line received from CALLER (more than 100 characters): message abandoned"
    );
}

#[test]
fn tfo_marks_and_details_from_typed_outcomes() {
    let line = |tfo: Tfo, selector: &str| {
        let mut d = smtp_delivery("10HmaZ-000000005vi-0000", "a@test.ex", "250 OK");
        d.tfo = tfo;
        // `-all` in Exim's sense (oxim refuses it in a configuration, as it
        // would turn off lines it cannot turn off).
        let s = match selector.strip_prefix("-all") {
            Some(rest) if rest.trim().is_empty() => LogSelector::none(),
            Some(rest) => LogSelector::none().with(
                Selector::from_name(rest.trim().trim_start_matches('+')).unwrap(),
                true,
            ),
            None => sel(selector),
        };
        let l = LogRecord::Delivered(d).render(&s);
        let start = l.find(']').map(|i| i + 1).unwrap_or(0);
        let end = l.find(" C=").unwrap_or(l.len());
        l[start..end].to_string()
    };
    let client = |outcome, unconfirmed| Tfo::Client {
        outcome,
        unconfirmed,
    };
    for (tfo, plain, detail) in [
        (Tfo::NotTcp, "", ""),
        (Tfo::Server(ServerTfo::None), "", " TFO=none"),
        (Tfo::Server(ServerTfo::Cookie), " TFO", " TFO TFO=cookie"),
        (
            Tfo::Server(ServerTfo::CookieWithData),
            " TFO*",
            " TFO* TFO=cookie-data",
        ),
        (client(ClientTfo::NotTried, false), "", " TFO=not-tried"),
        (
            client(ClientTfo::CookieRequested, false),
            "",
            " TFO=cookie-requested",
        ),
        (
            client(ClientTfo::CookieAccepted, false),
            " TFO",
            " TFO TFO=cookie-accepted",
        ),
        (
            client(ClientTfo::CookieAccepted, true),
            " TFO",
            " TFO TFO=cookie-unconfirmed",
        ),
        (
            client(ClientTfo::CookieRejected, false),
            "",
            " TFO=cookie-rejected",
        ),
        (
            client(ClientTfo::DataAcked, false),
            " TFO*",
            " TFO* TFO=data-acked",
        ),
    ] {
        assert_eq!(line(tfo, "-all"), plain, "{tfo:?}");
        assert_eq!(line(tfo, "-all +tfo_detail"), detail, "{tfo:?}");
    }
}

#[test]
fn replayed_transaction_is_oxims_own_line() {
    let rec = LogRecord::ReplayedTransaction {
        id: ID,
        host: SenderHost {
            name: None,
            helo: Some("client.test.ex"),
            ip: LOCAL,
            port: 40123,
            conn_id: None,
        },
        tfo: Tfo::Server(ServerTfo::CookieWithData),
        token: "AbCdEfGhIjKlMnOpQrStUv",
    };
    assert_eq!(
        rec.render(&sel("+tfo_detail")),
        "10HmaX-0005vi-00 H=(client.test.ex) [127.0.0.1] TFO* TFO=cookie-data replayed transaction \
         XOXIM-TXID=AbCdEfGhIjKlMnOpQrStUv: answered as the first copy, not received again"
    );
    assert_eq!(rec.destinations(&LogSelector::default()), Dest::MAIN);
}
