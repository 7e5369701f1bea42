//! Unit tests of the munging rules.

use super::*;

fn ident() -> Identity {
    Identity {
        hostname: "testhost.oxim.example".into(),
        testdir: "/tmp/oxim-runtest-1990-abc".into(),
        caller: "root".into(),
        caller_group: "root".into(),
        caller_home: "/root".into(),
        caller_uid: 0,
        caller_gid: 0,
        exim_user: "root".into(),
        exim_uid: 0,
        exim_gid: 0,
        ipv4: "198.18.0.1".into(),
        ipv6: Some("2001:2::1".into()),
    }
}

#[test]
fn increments_like_perl() {
    assert_eq!(magic_increment("aX"), "aY");
    assert_eq!(magic_increment("aZ"), "bA");
    assert_eq!(magic_increment("zZ"), "aaA");
    assert_eq!(magic_increment("a9"), "b0");
}

#[test]
fn old_style_log_lines() {
    let mut m = Munger::new(Style::Old, ident());
    let lines = [
        "2026-11-26 06:01:15.123 1tFz3K-000Abc-Q1 <= root@myhost.test.ex U=root P=local S=312 for a@test.ex",
        "2026-11-26 06:01:15.456 1tFz3K-000Abc-Q1 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] TFO C=\"250 OK id=1tFz3L-000Abd-Z2\"",
        "2026-11-26 06:01:15.999 exim x.yz daemon started: pid=4711, no queue runs, listening for SMTP on port 1225 (IPv6 and IPv4)",
        "2026-11-26 06:01:16.000 1tFz3L-000Abd-Z2 <= root@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] P=esmtp S=401 id=E1tFz3K-000Abc-Q1@myhost.test.ex for a@test.ex",
    ];
    let out: Vec<String> = lines
        .iter()
        .map(|l| m.munge_line(l, FileKind::Log).unwrap())
        .collect();
    assert_eq!(out[0], "2017-07-30 18:51:05.712 10HmaX-0005vi-00 <= CALLER@myhost.test.ex U=CALLER P=local S=sss for a@test.ex");
    assert_eq!(out[1], "2017-07-30 18:51:05.712 10HmaX-0005vi-00 => a@test.ex R=client T=send_to_server H=127.0.0.1 [127.0.0.1] TFO C=\"250 OK id=10HmaY-0005vi-00\"");
    assert_eq!(out[2], "2017-07-30 18:51:05.712 exim x.yz daemon started: pid=pppp, no queue runs, listening for SMTP on port PORT_D");
    assert_eq!(out[3], "2017-07-30 18:51:05.712 10HmaY-0005vi-00 <= CALLER@myhost.test.ex H=localhost (myhost.test.ex) [127.0.0.1] P=esmtp S=sss id=E10HmaX-0005vi-00@myhost.test.ex for a@test.ex");
}

#[test]
fn head_style_ids_pids_hosts_and_ports() {
    let mut m = Munger::new(Style::Head, ident());
    let a = m
        .munge_line(
            "2026-11-26 06:01:15.999 exim x.yz daemon started: pid=4711, no queue runs, listening for SMTP on port 1225 (IPv4)",
            FileKind::Log,
        )
        .unwrap();
    assert_eq!(a, "2017-07-30 18:51:05.712 exim x.yz daemon started: pid=p1234, no queue runs, listening for SMTP on port PORT_D");
    let b = m
        .munge_line(
            "2026-11-26 06:01:16.000 1tFz3L-00000000Abd-Z2xy <= root@myhost.test.ex H=testhost.oxim.example (myhost.test.ex) [198.18.0.1] P=esmtp S=401 id=E1tFz3K-00000000Abc-Q1ab@myhost.test.ex",
            FileKind::Log,
        )
        .unwrap();
    assert_eq!(b, "2017-07-30 18:51:05.712 10HmaX-000000005vi-0000 <= CALLER@myhost.test.ex H=the.local.host.name (myhost.test.ex) [ip4.ip4.ip4.ip4] P=esmtp S=sss id=E10HmaY-000000005vi-0000@myhost.test.ex");
    // Same pid again keeps its name; a new pid gets the next one.
    assert_eq!(
        m.munge_line("child 4711 and pid 99", FileKind::Log)
            .unwrap(),
        "child p1234 and pid p1235"
    );
    assert_eq!(
        m.munge_line(
            "Connecting to 198.18.0.1 port 1225 ... connected",
            FileKind::Stdout
        )
        .unwrap(),
        "Connecting to ip4.ip4.ip4.ip4 port PORT_D ... connected"
    );
    assert_eq!(
        m.munge_line("Listening on port 1224 ... ", FileKind::Stdout)
            .unwrap(),
        "Listening on port PORT_S ... "
    );
    assert_eq!(
        m.munge_line("x D=2s y D=0.123s QT=0s", FileKind::Log)
            .unwrap(),
        "x D=qqs y D=q.qqqs QT=qqs"
    );
}

#[test]
fn old_style_keeps_stdout_ports() {
    let mut m = Munger::new(Style::Old, ident());
    assert_eq!(
        m.munge_line(
            "Connecting to 127.0.0.1 port 1225 ... connected",
            FileKind::Stdout
        )
        .unwrap(),
        "Connecting to 127.0.0.1 port 1225 ... connected"
    );
}

#[test]
fn dates_errors_and_sizes() {
    let mut m = Munger::new(Style::Head, ident());
    assert_eq!(
        m.munge_line(
            "<<< 220 myhost ESMTP Exim x.yz Thu, 26 Nov 2026 06:01:15 +0000",
            FileKind::Stdout
        )
        .unwrap(),
        "<<< 220 myhost ESMTP Exim x.yz Tue, 2 Mar 1999 09:44:33 +0000"
    );
    assert_eq!(
        m.munge_line(
            "2026-11-26 06:01:15 U R=all T=smtp defer (110): Connection timed out",
            FileKind::Log
        )
        .unwrap(),
        "1999-03-02 09:44:33 U R=all T=smtp defer (dd): Connection timed out"
    );
    assert_eq!(
        m.munge_line(
            "R=r T=t defer (-53): retry time not reached errno=4",
            FileKind::Log
        )
        .unwrap(),
        "R=r T=t defer (-53): retry time not reached errno=dd"
    );
    assert_eq!(
        m.munge_line("R=r T=t defer (13): Permission denied", FileKind::Log)
            .unwrap(),
        "R=r T=t defer (EEE): Permission denied"
    );
    assert_eq!(
        m.munge_line("a S=1 b S=2 SIZE=345", FileKind::Log).unwrap(),
        "a S=sss b S=2 SIZE=ssss"
    );
    assert_eq!(
        m.munge_line("home /root/x uid=0 gid=0 uid=01", FileKind::Log)
            .unwrap(),
        "home CALLER_HOME/x uid=CALLER_UID gid=CALLER_GID uid=uuuu"
    );
    // -Mvh's caller line; the exim user's login, uid and gid; other ids.
    let mut e = Munger::new(
        Style::Head,
        Identity {
            exim_user: "exim".into(),
            exim_uid: 93,
            exim_gid: 94,
            ..ident()
        },
    );
    for (raw, munged) in [
        ("root 0 0", "CALLER UID GID"),
        ("1796678737 0", "ddddddddd 0"),
        ("045P Received: from CALLER by x", "dddP Received: from CALLER by x"),
        ("-host_address 127.0.0.1.38512", "-host_address 127.0.0.1.9999"),
        ("x D=3s RT=1.234s QT=12s", "x D=qqs RT=q.qqqs QT=qqs"),
        ("exim 93 94", "EXIMUSER EXIM_UID EXIM_GID"),
        (
            "2026-11-26 06:01:15 10HmaX-000000005vi-0000 <= <> U=exim P=local S=1",
            "1999-03-02 09:44:33 10HmaX-000000005vi-0000 <= <> U=EXIMUSER P=local S=sss",
        ),
        (
            "creating TESTSUITE/x/exim.lock.h.5d.7f (euid=93 egid=94) exim@test.ex",
            "creating TESTSUITE/x/EXIMUSER.lock.test.ex.dddddddd.pppppppp (euid=EXIM_UID egid=EXIM_GID) EXIMUSER@test.ex",
        ),
        ("uid=1001 gid=1002 euid=5 egid=6", "uid=uuuu gid=gggg euid=uuuu egid=gggg"),
        ("Thu,  1 Feb 2018 20:34:08 -0500", "Thu,  1 Feb 2018 20:34:08 -0500"),
    ] {
        assert_eq!(e.munge_line(raw, FileKind::Log).unwrap(), munged, "{raw}");
    }
    for (raw, munged) in [
        (
            "-received_time_complete 1796678737.801449",
            "-received_time_complete tttt.uuuuuu",
        ),
        ("-received_time_usec .801449", "-received_time_usec .uuuuuu"),
        (
            " 0m   307 1xagD1-00000000008-2CJo <CALLER@x>",
            "TTT   sss 10HmaY-000000005vi-0000 <CALLER@x>",
        ),
        (
            "new/1796678737.M801449P4242.h tmp/x",
            "new/dddddddddd.HddddddPddddd.h tmp/x",
        ),
    ] {
        assert_eq!(
            e.munge_line(raw, FileKind::Stdout).unwrap(),
            munged,
            "{raw}"
        );
    }
    assert_eq!(
        m.munge_line("198.18.0.12 198.18.0.1. 1.0.18.198", FileKind::Log)
            .unwrap(),
        "198.18.0.12 ip4.ip4.ip4.ip4. ip4-reverse"
    );
}

#[test]
fn tls_versions_and_ciphers() {
    let mut m = Munger::new(Style::Head, ident());
    for (raw, want) in [
        (
            "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes",
            "X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx CV=yes",
        ),
        (
            "X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256",
            "X=TLS1.x:ke-RSA-AES256-SHAnnn:xxx",
        ),
        (
            "X=TLS1.2:DHE_ECDSA_AES_128_CBC_SHA256:128",
            "X=TLS1.x:ke-ECDSA-AES256-SHAnnn:xxx",
        ),
        (
            "SSL connection using TLS_AES_256_GCM_SHA384",
            "SSL connection using ke-RSA-AES256-SHAnnn",
        ),
    ] {
        assert_eq!(m.munge_line(raw, FileKind::Log).unwrap(), want);
    }
}

#[test]
fn stderr_noise_and_text() {
    let mut m = Munger::new(Style::Old, ident());
    assert_eq!(
        m.munge_text(
            "sudo: tc: command not found\nreal problem\n",
            FileKind::Stderr
        ),
        "real problem\n"
    );
    assert_eq!(m.munge_text("no newline", FileKind::Stdout), "no newline");
}

#[test]
fn dumpdb_and_exinext_output() {
    let mut m = Munger::new(Style::Head, ident());
    let cases = [
        (
            "07-Dec-2026 21:00:00  07-Dec-2026 21:00:00  07-Dec-2026 21:20:00 ",
            "first failed = time last try = time2 next try = time2 + 1200",
        ),
        (
            "07-Dec-2026 21:00:00  07-Dec-2026 21:00:05  07-Dec-2026 21:00:05 *",
            "first failed = time last try = time2 next try = time2 + 0 *",
        ),
        (
            "  T:[127.0.0.1]:127.0.0.1:1223 111 65 Connection refused",
            "  T:[127.0.0.1]:127.0.0.1:PORT_N dd 65 Connection refused",
        ),
        (
            "  T:[127.0.0.1]:127.0.0.1:1224:10HmaX-000000005vi-0000 -45 13377 x",
            "  T:[127.0.0.1]:127.0.0.1:PORT_S:10HmaX-000000005vi-0000 -45 13377 x",
        ),
        (
            "  T:userx@test.ex -22 1234567 mailbox is full",
            "  T:userx@test.ex -22 xxxx mailbox is full",
        ),
        (
            "Transport: 127.0.0.1 127.0.0.1:1224 error -44: x",
            "Transport: 127.0.0.1 127.0.0.1:PORT_S error -44: x",
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(m.munge_line(raw, FileKind::Stdout).unwrap(), want, "{raw}");
    }
}

#[test]
fn ports_of_the_other_end_and_the_daemons() {
    let mut m = Munger::new(Style::Head, ident());
    for (raw, kind, want) in [
        (
            "2026-12-07 21:00:00 SMTP connection from [127.0.0.1]:54321 I=[127.0.0.1]:1225 Ci=77 (TCP/IP connection count = 1)",
            FileKind::Log,
            "1999-03-02 09:44:33 SMTP connection from [127.0.0.1]:10001 I=[127.0.0.1]:PORT_D Ci=p1234 (TCP/IP connection count = 1)",
        ),
        (
            "2026-12-07 21:00:00 1xagTx-0000000000B-3PUN <= a@b H=(x) [198.18.0.1]:54321 I=[198.18.0.1]:1226 P=smtp S=1",
            FileKind::Log,
            "1999-03-02 09:44:33 10HmaX-000000005vi-0000 <= a@b H=(x) [ip4.ip4.ip4.ip4]:10001 I=[ip4.ip4.ip4.ip4]:PORT_D2 P=smtp S=sss",
        ),
        (
            "2026-12-07 21:00:00 1xagTx-0000000000B-3PUN => a@b R=r T=t H=127.0.0.1 [127.0.0.1]:1225 C=\"250 OK\"",
            FileKind::Log,
            "1999-03-02 09:44:33 10HmaX-000000005vi-0000 => a@b R=r T=t H=127.0.0.1 [127.0.0.1]:PORT_D C=\"250 OK\"",
        ),
        (
            "2026-12-07 21:00:00 H=[127.0.0.1]:40000 I=[127.0.0.1]:2525 x",
            FileKind::Log,
            "1999-03-02 09:44:33 H=[127.0.0.1]:10002 I=[127.0.0.1]:10003 x",
        ),
        (
            "Received: from [127.0.0.1] (port=54321 helo=x)",
            FileKind::Mail,
            "Received: from [127.0.0.1] (port=10001 helo=x)",
        ),
        (
            "-host_address [127.0.0.1]:33333",
            FileKind::Stdout,
            "-host_address [127.0.0.1]:9999",
        ),
    ] {
        assert_eq!(m.munge_line(raw, kind).unwrap(), want, "{raw}");
    }
}

#[test]
fn dkim_timestamps_and_received_tls() {
    let mut m = Munger::new(Style::Head, ident());
    let log = m
        .munge_line(
            "DKIM: d=test.ex s=sel c=relaxed/relaxed a=rsa-sha256 b=1024 t=1796700283 x=1796700293 [verification succeeded]",
            FileKind::Log,
        )
        .unwrap();
    assert_eq!(
        log,
        "DKIM: d=test.ex s=sel c=relaxed/relaxed a=rsa-sha256 b=1024 t=T x=T+10 [verification succeeded]"
    );
    let log = m
        .munge_line(
            "DKIM: d=test.ex s=sel b=1024 t=1796700283 [verification succeeded]",
            FileKind::Log,
        )
        .unwrap();
    assert_eq!(
        log,
        "DKIM: d=test.ex s=sel b=1024 t=T [verification succeeded]"
    );
    let mail = "DKIM-Signature: v=1; a=rsa-sha256; q=dns/txt; c=relaxed/relaxed; d=test.ex;\n\
                \ts=sel; h=From:From; bh=/Ab0giHZitYQbDhFszoqQRUkgqueaX9zatJttIU/plc=;\n\
                \tt=1796700312; x=1796700322; b=OHArgbQU8YwBtuL4p5kGcqQ7x28QyuIRjc9MPASAnlb25Yg\n\
                \tAAAA\n\
                \tBBBB=;\n\
                From: x\n";
    assert_eq!(
        m.munge_text(mail, FileKind::Mail),
        "DKIM-Signature: v=1; a=rsa-sha256; q=dns/txt; c=relaxed/relaxed; d=test.ex;\n\
         \ts=sel; h=From:From; bh=/Ab0giHZitYQbDhFszoqQRUkgqueaX9zatJttIU/plc=;\n\
         \tt=T; x=T+10; b=bbbb;\n\
         From: x\n"
    );
    assert_eq!(
        m.munge_line(
            "\tby myhost.test.ex with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384",
            FileKind::Mail
        )
        .unwrap(),
        "\tby myhost.test.ex with esmtps (TLS1.x:ke-RSA-AES256-SHAnnn:xxx)"
    );
}
