//! `-be` / `-bem`: Exim's expansion-testing mode, as an administrator uses it.

mod common;

use common::{TestDir, TEST_MAIN};

fn setup() -> (TestDir, String) {
    let dir = TestDir::new();
    let conf = dir.write(
        "configure",
        &format!("GREETING = hello\n{TEST_MAIN}domainlist dl = a.b : c.d\n"),
    );
    (dir, conf.display().to_string())
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn lines_from_stdin_with_prompts_failures_and_macros() {
    let (dir, conf) = setup();
    let input = "\
${uc:$primary_hostname}
${if eq{a}{a}{yes}{no}}
x\\
    y
${nosuchop:x}
GREETING world
NEW = ${lc:ABC}
[NEW]
$nosuchvar
";
    let out = dir.run_ok(&["-C", &conf, "-be"], input);
    assert_eq!(
        stdout(&out),
        "> MYHOST.TEST.EX\n\
         > yes\n\
         > xy\n\
         > Failed: unknown expansion operator \"nosuchop\"\n\
         > hello world\n\
         > Defined macro 'NEW'\n\
         > [abc]\n\
         > Failed: unknown variable name \"nosuchvar\"\n\
         > \n"
    );
}

#[test]
fn arguments_are_expanded_without_prompts() {
    let (dir, conf) = setup();
    let out = dir.run_ok(
        &[
            "-C",
            &conf,
            "-be",
            "${listcount:${listnamed:dl}}",
            "$qualify_domain",
        ],
        "",
    );
    assert_eq!(stdout(&out), "2\ntest.ex\n");
}

#[test]
fn origin_options_set_host_variables() {
    let (dir, conf) = setup();
    let out = dir.run_ok(
        &[
            "-C",
            &conf,
            "-be",
            "-oMa",
            "10.0.0.1.1234",
            "-oMs",
            "host.example",
            "-oMi",
            "10.0.0.2.25",
            "$sender_host_address $sender_host_port $sender_host_name $interface_address $interface_port",
        ],
        "",
    );
    assert_eq!(stdout(&out), "10.0.0.1 1234 host.example 10.0.0.2 25\n");
}

#[test]
fn bem_loads_a_message_for_header_and_message_variables() {
    let (dir, conf) = setup();
    let msg = dir.write(
        "msg",
        "From: A <a@x.y>\nTo: b@test.ex, c@test.ex\nSubject: moot\n\nline one\nline two\n",
    );
    let msg = msg.display().to_string();
    let input = "$h_subject:|$message_body_size|$body_linecount|$message_linecount\n\
                 $message_body\n\
                 $recipients\n";
    let out = dir.run_ok(&["-C", &conf, "-bem", &msg, "-t"], input);
    assert_eq!(
        stdout(&out),
        "> moot|18|2|6\n> line one line two \n> b@test.ex, c@test.ex\n> \n"
    );
    // Without -t there are no recipients; Message-Id: was added.
    let out = dir.run_ok(
        &[
            "-C",
            &conf,
            "-bem",
            &msg,
            "-be",
            "[$recipients]",
            "${if def:h_message-id:{id}}",
        ],
        "",
    );
    assert_eq!(stdout(&out), "[]\nid\n");
}

#[test]
fn trusted_bs_session_with_origin_options_is_from_that_host() {
    let who = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let login = String::from_utf8_lossy(&who.stdout).trim().to_string();
    let dir = TestDir::new();
    let conf = dir.write(
        "configure",
        &format!(
            "{TEST_MAIN}trusted_users = {login}\nacl_smtp_rcpt = ok\nbegin acl\nok:\n  accept\n"
        ),
    );
    let conf = conf.display().to_string();
    let input = "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n\
                 RCPT TO:<x@test.ex>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    let out = dir.run_ok(
        &[
            "-C",
            &conf,
            "-odq",
            "-oMa",
            "10.0.0.1.1234",
            "-oMt",
            "someone",
            "-bs",
        ],
        input,
    );
    let text = stdout(&out);
    assert!(
        text.contains("250-myhost.test.ex Hello someone at client.example [10.0.0.1]"),
        "{text}"
    );
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("<= a@b.example H=(client.example) [10.0.0.1] U=someone P=esmtp S="),
        "{log}"
    );
    // A bad address is refused before anything is read.
    let out = dir.run(&["-C", &conf, "-oMa", "10.0.0", "-bs"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad -oMa address"));
}
