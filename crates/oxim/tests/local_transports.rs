//! Local delivery environment and local transport options (issue 14):
//! home and current directories (`router_home_directory`,
//! `transport_home_directory`, `transport_current_directory`, the
//! transports' `home_directory` and `current_directory`), checked in the
//! mailboxes, the files a pipe command writes, and the log.

mod common;

use common::*;

fn conf(routers: &str, transports: &str) -> String {
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
  headers_add = X-Home: $home
  current_directory = /

{transports}

begin retry

* * F,1h,1s
"#
    )
}

fn submit(dir: &TestDir, conf: &str, rcpts: &[&str]) {
    let c = dir.write("c.conf", conf);
    let mut args = vec!["-C", c.to_str().unwrap(), "-odi", "-f", "me@test.ex"];
    args.extend_from_slice(rcpts);
    dir.run_ok(&args, "Subject: hello\n\nbody text\n");
}

#[test]
fn home_directory_comes_from_transport_then_router_options() {
    let routers = "\
r1:
  driver = accept
  local_parts = a
  router_home_directory = /rh/$local_part
  transport = mbox

r2:
  driver = accept
  local_parts = b
  router_home_directory = /rh/$local_part
  transport_home_directory = /th/$local_part
  transport = mbox

r3:
  driver = accept
  local_parts = c
  transport_home_directory = /th/$local_part
  transport = mbox_home

r4:
  driver = accept
  local_parts = d
  transport = mbox
";
    let transports = "\
mbox_home:
  driver = appendfile
  file = DIR/mail/$local_part
  home_directory = /own/$local_part
  headers_add = X-Home: $home
  current_directory = /
";
    let dir = TestDir::new();
    std::fs::create_dir(dir.path().join("mail")).unwrap();
    submit(&dir, &conf(routers, transports), &["a", "b", "c", "d"]);
    // router_home_directory reaches the transport when nothing else sets
    // one; transport_home_directory wins over it; the transport's own
    // home_directory over both; no option, no $home.
    assert!(
        dir.read("mail/a").contains("X-Home: /rh/a\n"),
        "{}",
        dir.read("mail/a")
    );
    assert!(
        dir.read("mail/b").contains("X-Home: /th/b\n"),
        "{}",
        dir.read("mail/b")
    );
    assert!(
        dir.read("mail/c").contains("X-Home: /own/c\n"),
        "{}",
        dir.read("mail/c")
    );
    assert!(
        dir.read("mail/d").contains("X-Home: \n"),
        "{}",
        dir.read("mail/d")
    );
}

#[test]
fn router_home_directory_is_home_while_the_router_runs() {
    // The redirect data uses $home, set by router_home_directory before
    // the router's other options are expanded.
    let routers = "\
alias:
  driver = redirect
  local_parts = list
  router_home_directory = DIR
  data = ${readfile{$home/members}}

local:
  driver = accept
  transport = mbox
";
    let dir = TestDir::new();
    dir.write("members", "x, y\n");
    submit(&dir, &conf(routers, ""), &["list"]);
    assert!(dir.read("mail/x").contains("body text"));
    assert!(dir.read("mail/y").contains("body text"));
    // A failed expansion defers, naming the option.
    let routers = routers.replace(
        "router_home_directory = DIR",
        "router_home_directory = ${nosuch}",
    );
    let dir = TestDir::new();
    submit(&dir, &conf(&routers, ""), &["list"]);
    let log = dir.read("log/mainlog");
    assert!(
        log.contains("== list@test.ex R=alias defer (-1): failed to expand \"${nosuch}\" for router_home_directory:"),
        "{log}"
    );
}

#[test]
fn pipe_runs_in_its_current_directory_and_a_bad_one_defers() {
    let routers = "\
r1:
  driver = accept
  local_parts = a
  transport_home_directory = DIR/home
  transport = cmd

r2:
  driver = accept
  local_parts = b
  transport_home_directory = DIR/home
  transport_current_directory = DIR/cur
  transport = cmd

r3:
  driver = accept
  local_parts = c
  transport_current_directory = DIR/missing
  transport = cmd

r4:
  driver = accept
  local_parts = d
  transport_current_directory = relative
  transport = cmd
";
    let transports = "\
cmd:
  driver = pipe
  command = /bin/sh -c 'pwd > DIR/out-$local_part; echo \\$HOME >> DIR/out-$local_part'
";
    let dir = TestDir::new();
    for d in ["home", "cur"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    submit(&dir, &conf(routers, transports), &["a", "b", "c", "d"]);
    let p = dir.path().display().to_string();
    // The home directory is the current one when none is set.
    assert_eq!(dir.read("out-a"), format!("{p}/home\n{p}/home\n"));
    assert_eq!(dir.read("out-b"), format!("{p}/cur\n{p}/home\n"));
    let log = dir.read("log/mainlog");
    assert!(
        log.contains(&format!(
            "== c@test.ex R=r3 T=cmd defer (2): No such file or directory: failed to chdir to {p}/missing"
        )),
        "{log}"
    );
    assert!(
        log.contains("== d@test.ex R=r4 T=cmd defer (-21): current directory path \"relative\" is not absolute for cmd transport"),
        "{log}"
    );
}
