//! Typed runtime settings derived once from the parsed configuration.
//!
//! The conf crate knows Exim's syntax and option tables; this module turns
//! the router and transport instances into the shapes the delivery code uses,
//! so the hot paths never look options up by name.

use std::time::Duration;

use oxim_conf::Config;

mod drivers;

pub use drivers::*;

/// The main options the binary uses, typed, read once per configuration.
/// Values as the configuration gives them, with the option table's defaults.
/// Not here: the families read by the name a caller passes (`acl_smtp_*`
/// through `smtp_in::events::acl_for`, host and domain lists through
/// `smtp_in::conn::host_option`/`domain_option`, the TLS host lists) and the
/// integer options Exim expands (`Ctx::expand_int`).
#[derive(Debug, Clone)]
pub struct MainSettings {
    /// `queue_only`: messages wait for a queue runner.
    pub queue_only: bool,
    /// `queue_only_override`: `-odb`/`-odi` beat `queue_only`.
    pub queue_only_override: bool,
    /// `smtp_return_error_details`: refusals say more about why (a
    /// deferred verification's text, not only "Temporary local problem").
    pub smtp_return_error_details: bool,
    /// `received_headers_max`: more Received: header lines than this fail
    /// every recipient (a mail loop).
    pub received_headers_max: usize,
    /// `accept_8bitmime`: offer 8BITMIME.
    pub accept_8bitmime: bool,
    /// `prdr_enable`: offer PRDR (per-recipient answers to the data).
    pub prdr_enable: bool,
    /// `smtp_enforce_sync`: refuse a client that talks out of turn.
    pub smtp_enforce_sync: bool,
    /// `allow_domain_literals`: accept `user@[192.0.2.1]` in MAIL and RCPT.
    pub allow_domain_literals: bool,
    /// `disable_ipv6`: no AAAA lookups, IPv6 addresses found are dropped
    /// and the daemon listens on IPv4 only.
    pub disable_ipv6: bool,
    /// `smtp_max_synprot_errors` (3 when out of range).
    pub smtp_max_synprot_errors: u32,
    /// `smtp_max_unknown_commands` (3 when out of range).
    pub smtp_max_unknown_commands: u32,
    /// `header_maxsize`, 0 for no limit.
    pub header_maxsize: u64,
    /// `header_line_maxsize`, 0 for no limit.
    pub header_line_maxsize: u64,
    /// `smtp_banner` when set (expanded for each connection).
    pub smtp_banner: Option<String>,
    /// `smtp_receive_timeout`, zero for none.
    pub smtp_receive_timeout: Duration,
    /// `smtp_session_max_time`, zero for none.
    pub smtp_session_max_time: Duration,
    /// `helo_lookup_domains` (a domain list).
    pub helo_lookup_domains: String,
    /// `smtp_accept_max`, 0 or less for no limit.
    pub smtp_accept_max: i64,
    /// `smtp_accept_max_per_host` (expanded for each connection), empty
    /// for no limit.
    pub smtp_accept_max_per_host: String,
    /// `trusted_users` (colon list of logins).
    pub trusted_users: String,
    /// `trusted_groups`, `admin_groups`: colon lists of groups.
    pub trusted_groups: String,
    pub admin_groups: String,
    /// `percent_hack_domains` (a domain list), empty for none.
    pub percent_hack_domains: String,
    /// `queue_smtp_domains` (a domain list), empty for none.
    pub queue_smtp_domains: String,
    /// `timeout_frozen_after`, zero for never.
    pub timeout_frozen_after: Duration,
    /// `remote_max_parallel`, at least 1.
    pub remote_max_parallel: usize,
    /// `ignore_bounce_errors_after`.
    pub ignore_bounce_errors_after: Duration,
    /// `retry_interval_max`.
    pub retry_interval_max: Duration,
    /// `bounce_return_body`.
    pub bounce_return_body: bool,
    /// `tls_certificate` (expanded when used), empty for no TLS.
    pub tls_certificate: String,
    /// `tls_privatekey` (expanded when used), empty for the certificate
    /// file.
    pub tls_privatekey: String,
    /// `tls_on_connect_ports`: the ports whose connections start with TLS.
    pub tls_on_connect_ports: Vec<u16>,
    /// `bounce_return_size_limit`, 0 for none.
    pub bounce_return_size_limit: u64,
    /// `bounce_return_linesize_limit`, 0 for none.
    pub bounce_return_linesize_limit: usize,
    /// `primary_hostname` when set and not empty (else the system's name).
    pub primary_hostname: Option<String>,
    /// `qualify_domain` when set and not empty (else the primary host name).
    pub qualify_domain: Option<String>,
    /// `qualify_recipient` when set and not empty (else `qualify_domain`).
    pub qualify_recipient: Option<String>,
    /// `log_selector`, as written.
    pub log_selector: String,
    /// `log_file_path` when set and not empty (else `<spool>/log/%slog`).
    pub log_file_path: Option<String>,
    /// `log_timezone`: log lines carry the UTC offset.
    pub log_timezone: bool,
    /// `spool_directory` (empty when unset: refused at start-up).
    pub spool_directory: String,
    /// `spool_sync`: `auto`, `fdatasync` or `syncfs` (other text is refused
    /// at start-up).
    pub spool_sync: String,
    /// `metrics_listen` (oxim): address and port of the daemon's Prometheus
    /// endpoint, when set and not empty (checked at start-up).
    pub metrics_listen: Option<String>,
    /// `never_users` (default `root`).
    pub never_users: String,
    /// `never_users` is set in the configuration (under the test harness an
    /// unset `never_users` means none).
    pub never_users_set: bool,
    /// `message_id_format` when set (`long` for the long ids).
    pub message_id_format: Option<String>,
    /// `exim_user` (default `mail`).
    pub exim_user: String,
    /// `exim_user` is set in the configuration (unset, Debian's exim user is
    /// preferred when the system has it; under the test harness, the caller).
    pub exim_user_set: bool,
    /// `exim_group` when set and not blank (else the user's primary group).
    pub exim_group: Option<String>,
    /// `exim_path` when set and not empty (`$exim_path`).
    pub exim_path: Option<String>,
    /// `daemon_smtp_ports` (`smtp` when empty).
    pub daemon_smtp_ports: String,
    /// `local_interfaces` (a list of addresses, with optional ports).
    pub local_interfaces: String,
    /// `allow_mx_to_ip`: an MX record naming an IP address is used as that
    /// address (else such a record is skipped).
    pub allow_mx_to_ip: bool,
    /// `extra_local_interfaces`: more addresses that are this host (not
    /// listened on), for the checks that a host is the local host.
    pub extra_local_interfaces: String,
    /// `tfo_queue_length`: the listening sockets' TCP Fast Open queue (64
    /// when not positive).
    pub tfo_queue_length: u32,
    /// `smtp_connect_backlog`, at least 1.
    pub smtp_connect_backlog: i32,
    /// `auth_advertise_hosts` (a host list, expanded when used).
    pub auth_advertise_hosts: String,
    /// `smtp_etrn_command` when set and not empty.
    pub smtp_etrn_command: Option<String>,
    /// `gecos_name` when set (expanded when used).
    pub gecos_name: Option<String>,
    /// `message_logs`: a per-message log in `msglog/`.
    pub message_logs: bool,
    /// `retry_data_expire`: how long hints (retry, cached EHLO) stay valid.
    pub retry_data_expire: Duration,
    /// `message_body_visible`, as read (negative values are the caller's
    /// to interpret).
    pub message_body_visible: i64,
    /// `bi_command` when set and not empty: what `-bi` runs.
    pub bi_command: Option<String>,
    /// `system_filter` when set and not empty: the filter file run at the
    /// start of every delivery attempt.
    pub system_filter: Option<String>,
    /// `untrusted_set_sender` when set and not empty: the senders an
    /// untrusted local caller may give (an address list, expanded).
    pub untrusted_set_sender: Option<String>,
}

impl MainSettings {
    pub fn from_config(config: &Config) -> MainSettings {
        let main = &config.main;
        MainSettings {
            queue_only: main.bool("queue_only"),
            queue_only_override: main.bool("queue_only_override"),
            smtp_return_error_details: main.bool("smtp_return_error_details"),
            received_headers_max: usize::try_from(main.int("received_headers_max")).unwrap_or(0),
            accept_8bitmime: main.bool("accept_8bitmime"),
            prdr_enable: main.bool("prdr_enable"),
            smtp_enforce_sync: main.bool("smtp_enforce_sync"),
            allow_domain_literals: main.bool("allow_domain_literals"),
            disable_ipv6: main.bool("disable_ipv6"),
            smtp_max_synprot_errors: u32::try_from(main.int("smtp_max_synprot_errors"))
                .unwrap_or(3),
            smtp_max_unknown_commands: u32::try_from(main.int("smtp_max_unknown_commands"))
                .unwrap_or(3),
            header_maxsize: u64::try_from(main.int("header_maxsize")).unwrap_or(0),
            header_line_maxsize: u64::try_from(main.int("header_line_maxsize")).unwrap_or(0),
            smtp_banner: main
                .is_set("smtp_banner")
                .then(|| main.str("smtp_banner").to_string()),
            smtp_receive_timeout: main.time("smtp_receive_timeout"),
            smtp_session_max_time: main.time("smtp_session_max_time"),
            helo_lookup_domains: main.str("helo_lookup_domains").to_string(),
            smtp_accept_max: main.int("smtp_accept_max"),
            smtp_accept_max_per_host: main.str("smtp_accept_max_per_host").to_string(),
            trusted_users: main.str("trusted_users").to_string(),
            trusted_groups: main.str("trusted_groups").to_string(),
            admin_groups: main.str("admin_groups").to_string(),
            percent_hack_domains: main.str("percent_hack_domains").to_string(),
            queue_smtp_domains: main.str("queue_smtp_domains").to_string(),
            timeout_frozen_after: main.time("timeout_frozen_after"),
            remote_max_parallel: usize::try_from(main.int("remote_max_parallel"))
                .unwrap_or(1)
                .max(1),
            ignore_bounce_errors_after: main.time("ignore_bounce_errors_after"),
            retry_interval_max: main.time("retry_interval_max"),
            bounce_return_body: main.bool("bounce_return_body"),
            tls_certificate: main.str("tls_certificate").to_string(),
            tls_privatekey: main.str("tls_privatekey").to_string(),
            tls_on_connect_ports: oxim_conf::lists::list_items(main.str("tls_on_connect_ports"))
                .iter()
                .filter_map(|p| service_port(p))
                .collect(),
            bounce_return_size_limit: u64::try_from(main.int("bounce_return_size_limit"))
                .unwrap_or(0),
            bounce_return_linesize_limit: usize::try_from(main.int("bounce_return_linesize_limit"))
                .unwrap_or(0),
            primary_hostname: non_empty(main.opt_str("primary_hostname")),
            qualify_domain: non_empty(main.opt_str("qualify_domain")),
            qualify_recipient: non_empty(main.opt_str("qualify_recipient")),
            log_selector: main.str("log_selector").to_string(),
            log_file_path: non_empty(main.opt_str("log_file_path")),
            log_timezone: main.bool("log_timezone"),
            spool_directory: main.str("spool_directory").to_string(),
            spool_sync: main.str("spool_sync").to_string(),
            metrics_listen: non_empty(main.opt_str("metrics_listen")),
            never_users: main.str("never_users").to_string(),
            never_users_set: main.is_set("never_users"),
            message_id_format: main.opt_str("message_id_format").map(str::to_string),
            exim_user: main.str("exim_user").to_string(),
            exim_user_set: main.is_set("exim_user"),
            exim_group: main
                .opt_str("exim_group")
                .filter(|g| !g.trim().is_empty())
                .map(str::to_string),
            exim_path: non_empty(main.opt_str("exim_path")),
            daemon_smtp_ports: match main.str("daemon_smtp_ports") {
                "" => "smtp".to_string(),
                p => p.to_string(),
            },
            local_interfaces: main.str("local_interfaces").to_string(),
            allow_mx_to_ip: main.bool("allow_mx_to_ip"),
            extra_local_interfaces: main.str("extra_local_interfaces").to_string(),
            tfo_queue_length: match main.int("tfo_queue_length") {
                n if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
                _ => 64,
            },
            smtp_connect_backlog: i32::try_from(main.int("smtp_connect_backlog").max(1))
                .unwrap_or(i32::MAX),
            auth_advertise_hosts: main.str("auth_advertise_hosts").to_string(),
            smtp_etrn_command: non_empty(main.opt_str("smtp_etrn_command")),
            gecos_name: main
                .is_set("gecos_name")
                .then(|| main.str("gecos_name").to_string()),
            message_logs: main.bool("message_logs"),
            retry_data_expire: main.time("retry_data_expire"),
            message_body_visible: main.int("message_body_visible"),
            bi_command: non_empty(main.opt_str("bi_command")),
            system_filter: non_empty(main.opt_str("system_filter")),
            untrusted_set_sender: non_empty(main.opt_str("untrusted_set_sender")),
        }
    }
}

/// A string option's value when it is set and not empty.
fn non_empty(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.is_empty()).map(str::to_string)
}

/// A port number or service name (`smtp`, `submission`, `smtps`).
pub fn service_port(s: &str) -> Option<u16> {
    match s.trim() {
        "smtp" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        p => p.parse().ok(),
    }
}

/// Read `50M`, `10K`, `1G`, `0x10` or a plain number.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    let n = if let Some(h) = num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else {
        num.parse::<u64>().ok()?
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50M"), Some(52_428_800));
        assert_eq!(parse_size("10k"), Some(10_240));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("0x10"), Some(16));
        assert_eq!(parse_size("abc"), None);
        assert_eq!(parse_size(""), None);
    }
}
