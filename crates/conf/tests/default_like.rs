//! A realistic configuration in the style of Exim's default `configure`
//! (written for this test) loads, and its pieces come out as expected.

use oxim_conf::{
    expand, match_domain, match_host, parse_route_list, parse_str, AclVerb, MapContext, MemFs,
};

const CONF: &str = r#"
# Main
SYSTEM_ALIASES_FILE = /etc/aliases
domainlist local_domains = @ : localhost
domainlist relay_to_domains =
hostlist   relay_from_hosts = <; 127.0.0.1 ; ::1

acl_smtp_mail = acl_check_mail
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

never_users = root
host_lookup = *
prdr_enable = true
log_selector = +smtp_protocol_error +smtp_syntax_error \
               +tls_certificate_verified
ignore_bounce_errors_after = 2d
timeout_frozen_after = 7d
keep_environment = ^LDAP
add_environment = PATH=/usr/bin::/bin
daemon_smtp_ports = 25 : 465 : 587
tls_on_connect_ports = 465

begin acl

acl_check_mail:
  accept

acl_check_rcpt:
  accept  hosts = :
          control = dkim_disable_verify

  deny    message       = Restricted characters in address
          domains       = +local_domains
          local_parts   = ^[.] : ^.*[@%!/|]

  accept  local_parts   = postmaster
          domains       = +local_domains

  require verify        = sender

  accept  hosts         = +relay_from_hosts
          control       = submission

  require message = relay not permitted
          domains = +local_domains : +relay_to_domains

  require verify = recipient
  accept

acl_check_data:
  deny    !verify = header_syntax
          message = header syntax
  accept

begin routers

dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  ignore_target_hosts = 0.0.0.0 : 127.0.0.0/8
  no_more

smarthost:
  driver = manualroute
  domains = ! +local_domains
  route_list = * mail.example.net::587 byname ; *.b.ex "h1 : h2" randomize
  transport = remote_smtp
  no_verify

system_aliases:
  driver = redirect
  allow_fail
  allow_defer
  data = ${lookup{$local_part}lsearch{SYSTEM_ALIASES_FILE}}
  file_transport = address_file
  pipe_transport = address_pipe

localuser:
  driver = accept
  check_local_user
  transport = local_delivery
  cannot_route_message = Unknown user

begin transports

remote_smtp:
  driver = smtp
  message_size_limit = ${if > {$max_received_linelength}{998} {1}{0}}

local_delivery:
  driver = appendfile
  file = /var/mail/$local_part
  delivery_date_add
  envelope_to_add
  return_path_add
  group = mail
  mode = 0660

address_pipe:
  driver = pipe
  return_output

address_file:
  driver = appendfile
  delivery_date_add

address_reply:
  driver = autoreply

begin retry

*                      *           F,2h,15m; G,16h,1h,1.5; F,4d,6h

begin rewrite

begin authenticators
"#;

#[test]
fn default_like_configuration() {
    let cfg = parse_str(CONF, "/etc/oxim/configure", &[], &MemFs::new()).expect("loads");
    assert_eq!(
        cfg.main.str("log_selector"),
        "+smtp_protocol_error +smtp_syntax_error +tls_certificate_verified"
    );
    assert_eq!(
        cfg.main.time("ignore_bounce_errors_after").as_secs(),
        2 * 86400
    );
    assert!(cfg.main.bool("prdr_enable"));
    assert_eq!(cfg.main.str("daemon_smtp_ports"), "25 : 465 : 587");

    let rcpt = cfg
        .resolve_acl(cfg.main.str("acl_smtp_rcpt"))
        .expect("rcpt acl");
    let verbs: Vec<AclVerb> = rcpt.statements.iter().map(|s| s.verb).collect();
    use AclVerb::*;
    assert_eq!(
        verbs,
        vec![Accept, Deny, Accept, Require, Accept, Require, Require, Accept]
    );
    let deny = &rcpt.statements[1];
    assert_eq!(deny.conditions.len(), 3);
    assert_eq!(deny.conditions[2].value, "^[.] : ^.*[@%!/|]");
    assert_eq!(rcpt.statements[0].conditions[0].value, ":");
    let data = cfg.acl("acl_check_data").expect("data acl");
    assert!(data.statements[0].conditions[0].negated);

    let aliases = cfg.router("system_aliases").expect("router");
    assert_eq!(
        aliases.options.str("data"),
        "${lookup{$local_part}lsearch{/etc/aliases}}"
    );
    let ctx = MapContext::new()
        .var("local_part", "postmaster")
        .file("/etc/aliases", "postmaster: root\n");
    assert_eq!(expand(aliases.options.str("data"), &ctx).unwrap(), "root");

    let smart = cfg.router("smarthost").expect("smarthost");
    let routes = parse_route_list(smart.options.str("route_list"));
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].hosts, "mail.example.net::587");
    assert_eq!(routes[1].hosts, "h1 : h2");
    assert!(!smart.options.bool("verify_recipient"));

    let dns = cfg.router("dnslookup").expect("dnslookup");
    assert!(!dns.options.bool("more"));
    let ctx = MapContext::new().var("primary_hostname", "mx.example.org");
    let domains = dns.options.str("domains");
    assert!(match_domain(domains, "example.com", &cfg, &ctx).unwrap());
    assert!(!match_domain(domains, "mx.example.org", &cfg, &ctx).unwrap());
    assert!(!match_domain(domains, "LOCALHOST", &cfg, &ctx).unwrap());

    let relay = cfg.named_lists.host("relay_from_hosts").expect("list");
    assert!(match_host(
        "+relay_from_hosts",
        "::1".parse().unwrap(),
        None,
        &cfg,
        &ctx
    )
    .unwrap());
    assert!(!match_host(relay, "192.0.2.1".parse().unwrap(), None, &cfg, &ctx).unwrap());

    let local = cfg.transport("local_delivery").expect("transport");
    assert_eq!(local.options.int("mode"), 0o660);
    assert_eq!(local.options.str("group"), "mail");
    assert_eq!(
        cfg.transport("remote_smtp")
            .expect("smtp")
            .options
            .str("message_size_limit"),
        "${if > {$max_received_linelength}{998} {1}{0}}"
    );
    assert_eq!(cfg.retry[0].params.len(), 3);
    assert!(cfg.rewrite.is_empty());
    assert!(cfg.authenticators.is_empty());
    assert_eq!(
        cfg.macros,
        vec![(
            "SYSTEM_ALIASES_FILE".to_string(),
            "/etc/aliases".to_string()
        )]
    );
}
