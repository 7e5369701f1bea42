//! Routers, transports and authenticators as the delivery and session
//! code use them, built once from their option tables.

use std::time::Duration;

use oxim_conf::{Config, Driver};

/// What a router does once its preconditions pass.
#[derive(Debug, Clone)]
pub enum RouterKind {
    Accept,
    Redirect {
        data: Option<String>,
        file: Option<String>,
        allow_defer: bool,
        allow_fail: bool,
        /// Filters (`# Exim filter`) and what they may do.
        filter: FilterOptions,
        /// Transports for generated file and pipe deliveries.
        file_transport: Option<String>,
        pipe_transport: Option<String>,
        /// Domain for unqualified generated addresses (expanded), instead
        /// of qualify_recipient.
        qualify_domain: Option<String>,
        /// Unqualified generated addresses take the parent's domain.
        qualify_preserve_domain: bool,
        /// `check_ancestor`: a generated address equal to an ancestor is
        /// replaced by the address being redirected.
        check_ancestor: bool,
        /// `rewrite` (default true): generated addresses go through the
        /// global rewrite rules.
        rewrite: bool,
    },
    ManualRoute {
        route_list: Option<String>,
        route_data: Option<String>,
        hosts_randomize: bool,
        /// What to do when a host name does not resolve: `ignore`,
        /// `decline`, `defer`, `fail` or `freeze` (Exim's default).
        host_find_failed: String,
        /// What to do when every host was ignored.
        host_all_ignored: String,
    },
    DnsLookup {
        /// Colon list of domains appended in turn to a domain not found.
        widen_domains: Option<String>,
        /// Try the resolver's search domains for a single-component domain.
        qualify_single: bool,
    },
}

/// A redirect router's filter options.
#[derive(Debug, Clone, Default)]
pub struct FilterOptions {
    pub allow_filter: bool,
    pub allow_freeze: bool,
    pub forbid_exim_filter: bool,
    pub forbid_sieve_filter: bool,
    pub forbid_logwrite: bool,
    pub forbid_file: bool,
    pub forbid_pipe: bool,
    pub forbid_reply: bool,
    pub prepend_home: bool,
    /// The transport for `mail` and `vacation`.
    pub reply_transport: Option<String>,
    /// `forbid_filter_*`: expansion items filters may not use.
    pub forbid_lookup: bool,
    pub forbid_readfile: bool,
    pub forbid_readsocket: bool,
    pub forbid_run: bool,
    pub forbid_existstest: bool,
    pub forbid_dlfunc: bool,
    pub forbid_perl: bool,
    /// Sieve: the folder `keep` files into (unexpanded; `inbox` unset).
    pub sieve_inbox: Option<String>,
    /// Sieve: where vacation's "once" files go (unexpanded); vacation is
    /// refused without it.
    pub sieve_vacation_directory: Option<String>,
    /// Sieve: `envelope :user` and `:detail` (unexpanded).
    pub sieve_useraddress: Option<String>,
    pub sieve_subaddress: Option<String>,
}

/// One router instance.
#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub kind: RouterKind,
    pub domains: Option<String>,
    pub local_parts: Option<String>,
    pub senders: Option<String>,
    pub condition: Option<String>,
    pub transport: Option<String>,
    pub verify: bool,
    pub verify_only: bool,
    /// `fail_verify_sender` (or `fail_verify`): an address this router
    /// accepts fails sender verification.
    pub fail_verify_sender: bool,
    /// `fail_verify_recipient` (or `fail_verify`): the same for recipients.
    pub fail_verify_recipient: bool,
    /// `address_test` (default true): false skips the router under `-bt`.
    pub address_test: bool,
    pub more: bool,
    /// `repeat_use` (default true): false skips the router for an address
    /// any of whose ancestors it routed, whatever that ancestor's address.
    pub repeat_use: bool,
    pub check_local_user: bool,
    pub address_data: Option<String>,
    pub self_action: String,
    /// `ignore_target_hosts`: hosts (matched by address, and by name) a
    /// router drops from the ones it found, as if they did not exist.
    pub ignore_target_hosts: Option<String>,
    /// `unseen`: `Some` holds the (possibly expandable) value when set.
    pub unseen: Option<String>,
    pub errors_to: Option<String>,
    pub headers_add: Option<String>,
    pub headers_remove: Option<String>,
    /// `local_part_prefix`/`_suffix` lists and whether they are optional.
    pub local_part_prefix: Option<String>,
    pub local_part_prefix_optional: bool,
    pub local_part_suffix: Option<String>,
    pub local_part_suffix_optional: bool,
    pub require_files: Option<String>,
    /// The user and group deliveries of its addresses run as (unexpanded).
    pub user: Option<String>,
    pub group: Option<String>,
    pub debug_print: Option<String>,
    /// `router_home_directory`: `$home` while the router runs (expanded
    /// right after `check_local_user`), and for its transport when nothing
    /// else sets one.
    pub router_home_directory: Option<String>,
    /// `transport_home_directory` and `transport_current_directory`: the
    /// home and current directories of the local transports its addresses
    /// go to (unexpanded; expanded at transport time).
    pub transport_home_directory: Option<String>,
    pub transport_current_directory: Option<String>,
}

/// smtp transport settings (unexpanded where Exim expands at delivery time).
#[derive(Debug, Clone)]
pub struct SmtpSpec {
    pub hosts: Option<String>,
    pub hosts_override: bool,
    /// `fallback_hosts`: tried (not expanded) when every host failed
    /// temporarily.
    pub fallback_hosts: Option<String>,
    pub port: String,
    pub allow_localhost: bool,
    pub helo_data: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub final_timeout: Duration,
    pub max_rcpt: usize,
    /// Messages down one connection in a queue run (0: no limit).
    pub connection_max_messages: usize,
    /// `hosts_max_try`: how many hosts one delivery tries at most.
    pub hosts_max_try: usize,
    pub hosts_avoid_pipelining: Option<String>,
    pub hosts_try_chunking: Option<String>,
    pub hosts_try_fastopen: Option<String>,
    /// Early pipelining (PIPECONNECT) with these hosts; oxim's default `*`.
    pub hosts_pipe_connect: Option<String>,
    pub hosts_require_auth: Option<String>,
    pub hosts_try_auth: Option<String>,
    /// `authenticated_sender`: `AUTH=` on MAIL once authenticated.
    pub authenticated_sender: Option<String>,
    pub interface: Option<String>,
    pub tls: SmtpTlsSpec,
    pub dkim: DkimSignSpec,
}

/// The smtp transport's DKIM signing options, unexpanded.
#[derive(Debug, Clone, Default)]
pub struct DkimSignSpec {
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub private_key: Option<String>,
    pub canon: Option<String>,
    pub sign_headers: Option<String>,
    pub strict: Option<String>,
    pub hash: Option<String>,
    pub identity: Option<String>,
    pub timestamps: Option<String>,
}

/// The smtp transport's TLS options (unexpanded), with Exim's defaults.
#[derive(Debug, Clone)]
pub struct SmtpTlsSpec {
    /// `protocol = smtps`: TLS from the first byte.
    pub on_connect: bool,
    pub hosts_avoid_tls: Option<String>,
    pub hosts_require_tls: Option<String>,
    /// `tls_verify_certificates`; Exim's default is `system`.
    pub verify_certificates: String,
    /// Default `*`.
    pub verify_cert_hostnames: String,
    pub verify_hosts: Option<String>,
    /// Default `*`.
    pub try_verify_hosts: String,
    pub tempfail_tryclear: bool,
}

/// appendfile transport settings.
#[derive(Debug, Clone)]
pub struct AppendSpec {
    pub file: Option<String>,
    pub directory: Option<String>,
    pub create_directory: bool,
    pub mode: u32,
    pub delivery_date_add: bool,
    pub envelope_to_add: bool,
    pub return_path_add: bool,
}

/// pipe transport settings.
#[derive(Debug, Clone)]
pub struct PipeSpec {
    pub command: Option<String>,
    pub return_path_add: bool,
    pub delivery_date_add: bool,
    pub envelope_to_add: bool,
    pub timeout: Duration,
}

/// autoreply transport settings (unexpanded).
#[derive(Debug, Clone)]
pub struct AutoreplySpec {
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub subject: Option<String>,
    pub headers: Option<String>,
    pub text: Option<String>,
    pub file: Option<String>,
    pub file_expand: bool,
    pub file_optional: bool,
    pub return_message: bool,
    pub once: Option<String>,
    /// Expanded at delivery, then read as a time.
    pub once_repeat: Option<String>,
    pub log: Option<String>,
    pub mode: u32,
    pub never_mail: bool,
}

/// What a transport does.
#[derive(Debug, Clone)]
// One per configured transport, built once: the size of the smtp variant
// costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum TransportKind {
    Smtp(SmtpSpec),
    Appendfile(AppendSpec),
    Pipe(PipeSpec),
    Autoreply(AutoreplySpec),
}

/// One transport instance.
#[derive(Debug, Clone)]
pub struct TransportSpec {
    pub name: String,
    pub kind: TransportKind,
    pub headers_add: Option<String>,
    pub headers_remove: Option<String>,
    /// The user and group a local delivery runs as (unexpanded); they
    /// override the router's.
    pub user: Option<String>,
    pub group: Option<String>,
    /// `shadow_transport` (local transports): also given each address
    /// this transport delivered, when `shadow_condition` is true.
    pub shadow_transport: Option<String>,
    pub shadow_condition: Option<String>,
    /// `home_directory` and `current_directory` of a local transport
    /// (unexpanded): they override the router's.
    pub home_directory: Option<String>,
    pub current_directory: Option<String>,
    /// `headers_rewrite`: rules applied to the message's header lines as
    /// they are sent (checked when the configuration is read).
    pub headers_rewrite: Option<oxim_conf::rewrite::Rules>,
    /// `return_path`: the envelope sender this transport uses (expanded).
    pub return_path: Option<String>,
}

fn opt(d: &Driver, name: &str) -> Option<String> {
    d.options.opt_str(name).map(str::to_string)
}

fn secs(d: &Driver, name: &str) -> Duration {
    d.options.time(name)
}

impl RouterSpec {
    fn from_driver(d: &Driver) -> Self {
        let o = &d.options;
        let kind = match d.driver.as_str() {
            "redirect" => RouterKind::Redirect {
                data: opt(d, "data"),
                file: opt(d, "file"),
                allow_defer: o.bool("allow_defer"),
                allow_fail: o.bool("allow_fail"),
                filter: FilterOptions {
                    allow_filter: o.bool("allow_filter"),
                    allow_freeze: o.bool("allow_freeze"),
                    forbid_exim_filter: o.bool("forbid_exim_filter"),
                    forbid_sieve_filter: o.bool("forbid_sieve_filter"),
                    forbid_logwrite: o.bool("forbid_filter_logwrite"),
                    forbid_file: o.bool("forbid_file"),
                    forbid_pipe: o.bool("forbid_pipe"),
                    forbid_reply: o.bool("forbid_filter_reply"),
                    prepend_home: o.bool("filter_prepend_home"),
                    reply_transport: opt(d, "reply_transport"),
                    forbid_lookup: o.bool("forbid_filter_lookup"),
                    forbid_readfile: o.bool("forbid_filter_readfile"),
                    forbid_readsocket: o.bool("forbid_filter_readsocket"),
                    forbid_run: o.bool("forbid_filter_run"),
                    forbid_existstest: o.bool("forbid_filter_existstest"),
                    forbid_dlfunc: o.bool("forbid_filter_dlfunc"),
                    forbid_perl: o.bool("forbid_filter_perl"),
                    sieve_inbox: opt(d, "sieve_inbox"),
                    sieve_vacation_directory: opt(d, "sieve_vacation_directory"),
                    sieve_useraddress: opt(d, "sieve_useraddress"),
                    sieve_subaddress: opt(d, "sieve_subaddress"),
                },
                file_transport: opt(d, "file_transport"),
                pipe_transport: opt(d, "pipe_transport"),
                qualify_domain: opt(d, "qualify_domain"),
                qualify_preserve_domain: o.bool("qualify_preserve_domain"),
                check_ancestor: o.bool("check_ancestor"),
                rewrite: o.bool("rewrite"),
            },
            "manualroute" => RouterKind::ManualRoute {
                route_list: opt(d, "route_list"),
                route_data: opt(d, "route_data"),
                hosts_randomize: o.bool("hosts_randomize"),
                host_find_failed: opt(d, "host_find_failed").unwrap_or_else(|| "freeze".into()),
                host_all_ignored: opt(d, "host_all_ignored").unwrap_or_else(|| "defer".into()),
            },
            "dnslookup" => RouterKind::DnsLookup {
                widen_domains: opt(d, "widen_domains"),
                qualify_single: o.bool("qualify_single"),
            },
            _ => RouterKind::Accept,
        };
        RouterSpec {
            name: d.name.clone(),
            kind,
            domains: opt(d, "domains"),
            local_parts: opt(d, "local_parts"),
            senders: opt(d, "senders"),
            condition: opt(d, "condition"),
            transport: opt(d, "transport"),
            verify: o.bool("verify"),
            verify_only: o.bool("verify_only"),
            fail_verify_sender: o.bool("fail_verify_sender") || o.bool("fail_verify"),
            fail_verify_recipient: o.bool("fail_verify_recipient") || o.bool("fail_verify"),
            address_test: o.bool("address_test"),
            more: o.bool("more"),
            repeat_use: o.bool("repeat_use"),
            check_local_user: o.bool("check_local_user"),
            address_data: opt(d, "address_data"),
            self_action: opt(d, "self").unwrap_or_else(|| "freeze".into()),
            ignore_target_hosts: opt(d, "ignore_target_hosts"),
            unseen: match o.get("unseen") {
                Some(oxim_conf::Value::Bool(true)) => Some("yes".into()),
                Some(oxim_conf::Value::Str(s)) => Some(s.clone()),
                _ => None,
            },
            errors_to: opt(d, "errors_to"),
            headers_add: opt(d, "headers_add"),
            headers_remove: opt(d, "headers_remove"),
            local_part_prefix: opt(d, "local_part_prefix"),
            local_part_prefix_optional: o.bool("local_part_prefix_optional"),
            local_part_suffix: opt(d, "local_part_suffix"),
            local_part_suffix_optional: o.bool("local_part_suffix_optional"),
            require_files: opt(d, "require_files"),
            user: opt(d, "user"),
            group: opt(d, "group"),
            debug_print: opt(d, "debug_print"),
            router_home_directory: opt(d, "router_home_directory"),
            transport_home_directory: opt(d, "transport_home_directory"),
            transport_current_directory: opt(d, "transport_current_directory"),
        }
    }
}

impl TransportSpec {
    fn from_driver(d: &Driver) -> Self {
        let o = &d.options;
        let kind = match d.driver.as_str() {
            "smtp" => TransportKind::Smtp(SmtpSpec {
                hosts: opt(d, "hosts"),
                hosts_override: o.bool("hosts_override"),
                fallback_hosts: opt(d, "fallback_hosts"),
                // protocol = smtps changes the default port to smtps (465).
                port: match opt(d, "port") {
                    Some(_)
                        if !o.is_set("port") && opt(d, "protocol").as_deref() == Some("smtps") =>
                    {
                        "smtps".into()
                    }
                    p => p.unwrap_or_else(|| "smtp".into()),
                },
                allow_localhost: o.bool("allow_localhost"),
                helo_data: opt(d, "helo_data").unwrap_or_else(|| "$primary_hostname".into()),
                connect_timeout: secs(d, "connect_timeout"),
                command_timeout: secs(d, "command_timeout"),
                data_timeout: secs(d, "data_timeout"),
                final_timeout: secs(d, "final_timeout"),
                // An expanded string in Exim 4.9x; a plain number here.
                max_rcpt: o
                    .opt_str("max_rcpt")
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(100),
                hosts_max_try: usize::try_from(o.int("hosts_max_try")).unwrap_or(5).max(1),
                connection_max_messages: usize::try_from(o.int("connection_max_messages"))
                    .unwrap_or(0),
                hosts_avoid_pipelining: opt(d, "hosts_avoid_pipelining"),
                hosts_try_chunking: opt(d, "hosts_try_chunking"),
                hosts_try_fastopen: opt(d, "hosts_try_fastopen"),
                hosts_pipe_connect: opt(d, "hosts_pipe_connect"),
                hosts_require_auth: opt(d, "hosts_require_auth"),
                hosts_try_auth: opt(d, "hosts_try_auth"),
                authenticated_sender: opt(d, "authenticated_sender"),
                interface: opt(d, "interface"),
                tls: SmtpTlsSpec {
                    on_connect: opt(d, "protocol").is_some_and(|p| p.trim() == "smtps"),
                    hosts_avoid_tls: opt(d, "hosts_avoid_tls"),
                    hosts_require_tls: opt(d, "hosts_require_tls"),
                    verify_certificates: opt(d, "tls_verify_certificates")
                        .unwrap_or_else(|| "system".into()),
                    verify_cert_hostnames: opt(d, "tls_verify_cert_hostnames")
                        .unwrap_or_else(|| "*".into()),
                    verify_hosts: opt(d, "tls_verify_hosts"),
                    try_verify_hosts: opt(d, "tls_try_verify_hosts").unwrap_or_else(|| "*".into()),
                    tempfail_tryclear: o.bool("tls_tempfail_tryclear"),
                },
                dkim: DkimSignSpec {
                    domain: opt(d, "dkim_domain"),
                    selector: opt(d, "dkim_selector"),
                    private_key: opt(d, "dkim_private_key"),
                    canon: opt(d, "dkim_canon"),
                    sign_headers: opt(d, "dkim_sign_headers"),
                    strict: opt(d, "dkim_strict"),
                    hash: opt(d, "dkim_hash"),
                    identity: opt(d, "dkim_identity"),
                    timestamps: opt(d, "dkim_timestamps"),
                },
            }),
            "appendfile" => TransportKind::Appendfile(AppendSpec {
                file: opt(d, "file"),
                directory: opt(d, "directory"),
                create_directory: o.bool("create_directory"),
                mode: u32::try_from(o.int("mode")).unwrap_or(0o600),
                delivery_date_add: o.bool("delivery_date_add"),
                envelope_to_add: o.bool("envelope_to_add"),
                return_path_add: o.bool("return_path_add"),
            }),
            "pipe" => TransportKind::Pipe(PipeSpec {
                command: opt(d, "command"),
                return_path_add: o.bool("return_path_add"),
                delivery_date_add: o.bool("delivery_date_add"),
                envelope_to_add: o.bool("envelope_to_add"),
                timeout: secs(d, "timeout"),
            }),
            _ => TransportKind::Autoreply(AutoreplySpec {
                from: opt(d, "from"),
                reply_to: opt(d, "reply_to"),
                to: opt(d, "to"),
                cc: opt(d, "cc"),
                bcc: opt(d, "bcc"),
                subject: opt(d, "subject"),
                headers: opt(d, "headers"),
                text: opt(d, "text"),
                file: opt(d, "file"),
                file_expand: o.bool("file_expand"),
                file_optional: o.bool("file_optional"),
                return_message: o.bool("return_message"),
                once: opt(d, "once"),
                once_repeat: opt(d, "once_repeat"),
                log: opt(d, "log"),
                mode: u32::try_from(o.int("mode")).unwrap_or(0o600),
                never_mail: o.bool("never_mail"),
            }),
        };
        TransportSpec {
            name: d.name.clone(),
            kind,
            headers_add: opt(d, "headers_add"),
            headers_remove: opt(d, "headers_remove"),
            user: opt(d, "user"),
            group: opt(d, "group"),
            shadow_transport: opt(d, "shadow_transport"),
            shadow_condition: opt(d, "shadow_condition"),
            home_directory: opt(d, "home_directory"),
            current_directory: opt(d, "current_directory"),
            headers_rewrite: opt(d, "headers_rewrite")
                .and_then(|r| oxim_conf::rewrite::Rules::transport(&r).ok())
                .filter(|r| !r.is_empty()),
            return_path: opt(d, "return_path"),
        }
    }
}

/// The SASL mechanism an authenticator implements, with its private
/// options (unexpanded).
#[derive(Debug, Clone)]
pub enum AuthMech {
    /// `plaintext`: PLAIN, LOGIN and any other fixed sequence of prompts.
    Plaintext {
        server_prompts: Option<String>,
        client_send: Option<String>,
        client_ignore_invalid_base64: bool,
    },
    /// `cram_md5` (RFC 2195).
    CramMd5 {
        server_secret: Option<String>,
        client_name: Option<String>,
        client_secret: Option<String>,
    },
}

/// Authenticator drivers this build has.
pub const AUTH_DRIVERS: &[&str] = &["cram_md5", "plaintext"];

/// One authenticator instance (`begin authenticators`).
#[derive(Debug, Clone)]
pub struct AuthSpec {
    pub name: String,
    /// `public_name` (default: the instance name), as configured; the EHLO
    /// line upper-cases it and AUTH matches it without regard to case.
    pub public_name: String,
    pub mech: AuthMech,
    pub server_condition: Option<String>,
    pub server_set_id: Option<String>,
    pub advertise_condition: Option<String>,
    pub mail_auth_condition: Option<String>,
    pub client_condition: Option<String>,
    pub client_set_id: Option<String>,
}

impl AuthSpec {
    /// `None` for a driver this build does not have.
    fn from_driver(d: &Driver) -> Option<Self> {
        let o = &d.options;
        let mech = match d.driver.as_str() {
            "plaintext" => AuthMech::Plaintext {
                server_prompts: opt(d, "server_prompts"),
                client_send: opt(d, "client_send"),
                client_ignore_invalid_base64: o.bool("client_ignore_invalid_base64"),
            },
            "cram_md5" => AuthMech::CramMd5 {
                server_secret: opt(d, "server_secret"),
                client_name: opt(d, "client_name"),
                client_secret: opt(d, "client_secret"),
            },
            _ => return None,
        };
        Some(AuthSpec {
            name: d.name.clone(),
            public_name: opt(d, "public_name").unwrap_or_else(|| d.name.clone()),
            mech,
            server_condition: opt(d, "server_condition"),
            server_set_id: opt(d, "server_set_id"),
            advertise_condition: opt(d, "server_advertise_condition"),
            mail_auth_condition: opt(d, "server_mail_auth_condition"),
            client_condition: opt(d, "client_condition"),
            client_set_id: opt(d, "client_set_id"),
        })
    }

    /// Usable as a server: plaintext needs `server_condition`, cram_md5
    /// `server_secret` (as in Exim).
    pub fn is_server(&self) -> bool {
        match &self.mech {
            AuthMech::Plaintext { .. } => self.server_condition.is_some(),
            AuthMech::CramMd5 { server_secret, .. } => server_secret.is_some(),
        }
    }

    /// Usable as a client: plaintext needs `client_send`, cram_md5
    /// `client_secret`.
    pub fn is_client(&self) -> bool {
        match &self.mech {
            AuthMech::Plaintext { client_send, .. } => client_send.is_some(),
            AuthMech::CramMd5 { client_secret, .. } => client_secret.is_some(),
        }
    }
}

/// Routers, transports and authenticators in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Drivers {
    pub routers: Vec<RouterSpec>,
    pub transports: Vec<TransportSpec>,
    pub authenticators: Vec<AuthSpec>,
}

impl Drivers {
    pub fn from_config(cfg: &Config) -> Self {
        Drivers {
            routers: cfg.routers.iter().map(RouterSpec::from_driver).collect(),
            transports: cfg
                .transports
                .iter()
                .map(TransportSpec::from_driver)
                .collect(),
            authenticators: cfg
                .authenticators
                .iter()
                .filter_map(AuthSpec::from_driver)
                .collect(),
        }
    }

    /// Whether a delivery may have to run as another user than the exim
    /// user: a router that sets a user (`user`, `check_local_user`) or a
    /// local transport that does.
    pub fn may_switch_users(&self) -> bool {
        self.routers
            .iter()
            .any(|r| r.check_local_user || r.user.is_some() || r.group.is_some())
            || self.transports.iter().any(|t| {
                !matches!(t.kind, TransportKind::Smtp(_)) && (t.user.is_some() || t.group.is_some())
            })
    }

    /// The first authenticator whose driver this build lacks (instance
    /// name, driver name): the configuration is refused for it.
    pub fn unsupported_authenticator(cfg: &Config) -> Option<String> {
        cfg.authenticators
            .iter()
            .find(|d| !AUTH_DRIVERS.contains(&d.driver.as_str()))
            .map(|d| {
                format!(
                    "error in configuration file: {} line {}: authenticator {}: \
                     the {} authenticator driver is not supported by oxim (it has: {})",
                    d.file,
                    d.line,
                    d.name,
                    d.driver,
                    AUTH_DRIVERS.join(", ")
                )
            })
    }

    /// Two server (or two client) authenticators with one public name:
    /// Exim refuses the configuration, naming the first pair.
    pub fn duplicate_public_name(&self) -> Option<String> {
        let a = &self.authenticators;
        for (i, x) in a.iter().enumerate() {
            for y in &a[i + 1..] {
                if !x.public_name.eq_ignore_ascii_case(&y.public_name) {
                    continue;
                }
                let side = if x.is_client() && y.is_client() {
                    "client"
                } else if x.is_server() && y.is_server() {
                    "server"
                } else {
                    continue;
                };
                return Some(format!(
                    "two {side} authenticators ({} and {}) have the same public name ({})",
                    x.name, y.name, x.public_name
                ));
            }
        }
        None
    }

    pub fn transport(&self, name: &str) -> Option<&TransportSpec> {
        self.transports.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp_spec(transport: &str) -> SmtpSpec {
        let text = format!("begin transports\nt:\n  driver = smtp\n{transport}\n");
        let opts = oxim_conf::LoadOptions {
            path: std::path::PathBuf::from("c"),
            defines: Vec::new(),
            builtin: Vec::new(),
        };
        let cfg = oxim_conf::load(&opts, &oxim_conf::MemFs::new().with("c", &text)).unwrap();
        match Drivers::from_config(&cfg).transports.remove(0).kind {
            TransportKind::Smtp(s) => s,
            _ => panic!("not smtp"),
        }
    }

    #[test]
    fn smtp_tls_defaults() {
        let s = smtp_spec("");
        assert_eq!(s.port, "smtp");
        assert!(!s.tls.on_connect);
        assert_eq!(s.tls.verify_certificates, "system");
        assert_eq!(s.tls.verify_cert_hostnames, "*");
        assert_eq!(s.tls.try_verify_hosts, "*");
        assert!(s.tls.tempfail_tryclear);
        // protocol = smtps: TLS on connect, default port smtps.
        let s = smtp_spec("  protocol = smtps");
        assert!(s.tls.on_connect);
        assert_eq!(s.port, "smtps");
        let s = smtp_spec("  protocol = smtps\n  port = 1225");
        assert_eq!(s.port, "1225");
        let s = smtp_spec("  tls_verify_cert_hostnames = :\n  hosts_require_tls = *");
        assert_eq!(s.tls.verify_cert_hostnames, ":");
        assert_eq!(s.tls.hosts_require_tls.as_deref(), Some("*"));
    }
}
