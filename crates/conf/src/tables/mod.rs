//! Option tables: main section, generic and private driver options.
//!
//! Declared once here; the parser, `-bP` rendering and error messages all
//! read these tables. Defaults follow the Exim specification.

use crate::options::{spec, DefaultValue as D, Kind as K, OptionSpec, Repeat};

mod drivers;

pub use drivers::*;

const fn rep(name: &'static str, kind: K, default: D, repeat: Repeat) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        default,
        repeat,
    }
}

const fn s(name: &'static str) -> OptionSpec {
    spec(name, K::Str, D::Unset)
}
const fn sd(name: &'static str, d: &'static str) -> OptionSpec {
    spec(name, K::Str, D::Str(d))
}
const fn l(name: &'static str) -> OptionSpec {
    spec(name, K::List, D::Unset)
}
const fn ld(name: &'static str, d: &'static str) -> OptionSpec {
    spec(name, K::List, D::Str(d))
}
const fn b(name: &'static str, d: bool) -> OptionSpec {
    spec(name, K::Bool, D::Bool(d))
}
const fn eb(name: &'static str, d: bool) -> OptionSpec {
    spec(name, K::ExpandBool, D::Bool(d))
}
const fn i(name: &'static str, d: i64) -> OptionSpec {
    spec(name, K::Int, D::Int(d))
}
const fn sz(name: &'static str, d: i64) -> OptionSpec {
    spec(name, K::Size, D::Int(d))
}
const fn oc(name: &'static str, d: i64) -> OptionSpec {
    spec(name, K::Octal, D::Int(d))
}
const fn t(name: &'static str, d: u64) -> OptionSpec {
    spec(name, K::Time, D::Time(d))
}
const fn u(name: &'static str) -> OptionSpec {
    spec(name, K::User, D::Unset)
}
const fn g(name: &'static str) -> OptionSpec {
    spec(name, K::Group, D::Unset)
}
const fn ul(name: &'static str, d: D) -> OptionSpec {
    spec(name, K::UserList, d)
}
const fn gl(name: &'static str) -> OptionSpec {
    spec(name, K::GroupList, D::Unset)
}

const MIN: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86400;
const WEEK: u64 = 7 * DAY;

/// Main section options.
pub static MAIN: &[OptionSpec] = &[
    b("accept_8bitmime", true),
    s("acl_not_smtp"),
    s("acl_not_smtp_mime"),
    s("acl_not_smtp_start"),
    s("acl_smtp_auth"),
    s("acl_smtp_atrn"),
    s("acl_smtp_connect"),
    s("acl_smtp_data"),
    s("acl_smtp_data_prdr"),
    s("acl_smtp_dkim"),
    s("acl_smtp_etrn"),
    s("acl_smtp_expn"),
    s("acl_smtp_helo"),
    s("acl_smtp_mail"),
    s("acl_smtp_mailauth"),
    s("acl_smtp_mime"),
    s("acl_smtp_notquit"),
    s("acl_smtp_predata"),
    s("acl_smtp_quit"),
    s("acl_smtp_rcpt"),
    s("acl_smtp_starttls"),
    s("acl_smtp_vrfy"),
    s("acl_smtp_wellknown"),
    s("add_environment"),
    gl("admin_groups"),
    b("allow_domain_literals", false),
    b("disable_ipv6", false),
    b("allow_insecure_tainted_data", false),
    b("allow_mx_to_ip", false),
    b("allow_mx_to_local_host", false),
    b("allow_utf8_domains", false),
    ld("auth_advertise_hosts", "*"),
    t("auto_thaw", 0),
    s("av_scanner"),
    s("bi_command"),
    s("bounce_message_file"),
    s("bounce_message_text"),
    b("bounce_return_body", true),
    sz("bounce_return_linesize_limit", 998),
    sz("bounce_return_size_limit", 100 << 10),
    b("bounce_return_message", true),
    s("bounce_sender_authentication"),
    t("callout_domain_negative_expire", 3 * HOUR),
    t("callout_domain_positive_expire", WEEK),
    t("callout_negative_expire", 2 * HOUR),
    t("callout_positive_expire", DAY),
    s("callout_random_local_part"),
    b("check_log_inodes", true),
    b("check_log_space", true),
    b("check_rfc2047_length", true),
    i("check_spool_inodes", 100),
    sz("check_spool_space", 10 << 20),
    ld("chunking_advertise_hosts", "*"),
    b("commandline_checks_require_admin", false),
    sd("daemon_smtp_ports", "smtp"),
    i("daemon_startup_retries", 9),
    t("daemon_startup_sleep", 30),
    spec("delay_warning", K::TimeList, D::Unset),
    s("delay_warning_condition"),
    b("deliver_drop_privilege", false),
    spec("deliver_queue_load_max", K::Fixed, D::Unset),
    b("delivery_date_remove", true),
    sd("dkim_verify_hashes", "sha256 : sha512"),
    sd("dkim_verify_keytypes", "ed25519 : rsa"),
    sd("dkim_verify_min_keysizes", "rsa=1024 ed25519=250"),
    b("dkim_verify_minimal", false),
    sd("dkim_verify_signers", "$dkim_signers"),
    s("dmarc_forensic_sender"),
    s("dmarc_history_file"),
    s("dmarc_tld_file"),
    l("dns_again_means_nonexist"),
    s("dns_check_names_pattern"),
    i("dns_cname_loops", 1),
    i("dns_csa_search_limit", 5),
    b("dns_csa_use_reverse", true),
    i("dns_dnssec_ok", -1),
    l("dns_ipv4_lookup"),
    t("dns_retrans", 0),
    i("dns_retry", 0),
    l("dns_trust_aa"),
    i("dns_use_edns0", -1),
    b("drop_cr", false),
    l("dsn_advertise_hosts"),
    s("dsn_from"),
    b("envelope_to_remove", true),
    s("errors_copy"),
    s("errors_reply_to"),
    l("event_action"),
    g("exim_group"),
    s("exim_path"),
    // oxim's default exim user is `mail` (see README "Privileges").
    spec("exim_user", K::User, D::Str("mail")),
    s("exim_version"),
    l("extra_local_interfaces"),
    b("extract_addresses_remove_arguments", true),
    i("finduser_retries", 0),
    s("freeze_tell"),
    s("gecos_name"),
    s("gecos_pattern"),
    b("gnutls_allow_auto_pkcs11", false),
    b("gnutls_compat_mode", false),
    i("header_line_maxsize", 0),
    i("header_maxsize", 1 << 20),
    s("headers_charset"),
    ld("helo_accept_junk_hosts", ""),
    s("helo_allow_chars"),
    ld("helo_lookup_domains", "@ : @[]"),
    l("helo_try_verify_hosts"),
    l("helo_verify_hosts"),
    sd("hold_domains", ""),
    l("host_lookup"),
    ld("host_lookup_order", "bydns:byaddr"),
    l("host_reject_connection"),
    ld("hosts_connection_nolog", ""),
    l("hosts_require_alpn"),
    l("hosts_require_helo"),
    l("hosts_treat_as_local"),
    l("hosts_proxy"),
    t("ignore_bounce_errors_after", 10 * WEEK),
    l("ignore_fromline_hosts"),
    b("ignore_fromline_local", false),
    s("keep_environment"),
    t("keep_malformed", 4 * DAY),
    l("ldap_ca_cert_dir"),
    l("ldap_default_servers"),
    ld("limits_advertise_hosts", "*"),
    b("local_from_check", true),
    s("local_from_prefix"),
    s("local_from_suffix"),
    l("local_interfaces"),
    t("local_scan_timeout", 5 * MIN),
    b("local_sender_retain", false),
    s("localhost_number"),
    s("message_id_format"),
    s("log_file_path"),
    s("log_selector"),
    b("log_timezone", false),
    i("lookup_open_max", 25),
    i("max_username_length", 0),
    b("message_body_newlines", false),
    i("message_body_visible", 500),
    s("message_id_header_domain"),
    s("message_id_header_text"),
    b("message_logs", true),
    sd("message_size_limit", "50M"),
    b("mua_wrapper", false),
    // Exim builds default to FIXED_NEVER_USERS=root; oxim has it as the default.
    ul("never_users", D::Str("root")),
    s("notifier_socket"),
    s("openssl_options"),
    ld("percent_hack_domains", ""),
    s("pid_file_path"),
    ld("pipelining_advertise_hosts", "*"),
    ld("pipelining_connect_advertise_hosts", "*"),
    b("prdr_enable", false),
    b("preserve_message_logs", false),
    s("primary_hostname"),
    b("panic_coredump", false),
    b("print_topbitchars", false),
    s("process_log_path"),
    b("prod_requires_admin", true),
    t("proxy_protocol_timeout", 3),
    s("qualify_domain"),
    s("qualify_recipient"),
    l("queue_domains"),
    b("queue_fast_ramp", false),
    b("queue_list_requires_admin", true),
    eb("queue_only", false),
    s("queue_only_file"),
    spec("queue_only_load", K::Fixed, D::Unset),
    b("queue_only_load_latch", true),
    b("queue_only_override", true),
    b("queue_run_in_order", false),
    sd("queue_run_max", "5"),
    l("queue_smtp_domains"),
    t("receive_timeout", 0),
    s("received_header_text"),
    i("received_headers_max", 30),
    ld("recipient_unqualified_hosts", ""),
    sd("recipients_max", "50000"),
    b("recipients_max_reject", false),
    i("remote_max_parallel", 4),
    l("remote_sort_domains"),
    t("retry_data_expire", 7 * DAY),
    t("retry_interval_max", DAY),
    b("return_path_remove", true),
    sz("return_size_limit", 100 << 10),
    ld("rfc1413_hosts", "@[]"),
    t("rfc1413_query_timeout", 0),
    ld("sender_unqualified_hosts", ""),
    i("slow_lookup_log", 0),
    b("smtp_accept_keepalive", true),
    i("smtp_accept_max", 20),
    i("smtp_accept_max_nonmail", 10),
    ld("smtp_accept_max_nonmail_hosts", "*"),
    sd("smtp_accept_max_per_connection", "1000"),
    s("smtp_accept_max_per_host"),
    i("smtp_accept_queue", 0),
    i("smtp_accept_queue_per_connection", 10),
    i("smtp_accept_reserve", 0),
    s("smtp_active_hostname"),
    sd(
        "smtp_banner",
        "$smtp_active_hostname ESMTP Exim $version_number $tod_full",
    ),
    b("smtp_check_spool_space", true),
    i("smtp_backlog_monitor", 0),
    i("smtp_connect_backlog", 1024),
    b("smtp_enforce_sync", true),
    s("smtp_etrn_command"),
    b("smtp_etrn_serialize", true),
    spec("smtp_load_reserve", K::Fixed, D::Unset),
    i("smtp_max_synprot_errors", 3),
    i("smtp_max_unknown_commands", 3),
    l("smtp_ratelimit_hosts"),
    s("smtp_ratelimit_mail"),
    s("smtp_ratelimit_rcpt"),
    t("smtp_receive_timeout", 5 * MIN),
    l("smtp_reserve_hosts"),
    b("smtp_return_error_details", false),
    // oxim: the longest an incoming SMTP session may last (0 = no limit);
    // with smtp_receive_timeout per line it stops clients that trickle.
    t("smtp_session_max_time", HOUR),
    l("smtputf8_advertise_hosts"),
    s("spamd_address"),
    s("spf_guess"),
    s("spf_smtp_comment_template"),
    b("split_spool_directory", false),
    s("spool_directory"),
    // oxim: how new messages are made durable: "journal" (the daemon appends
    // each group to a commit log with one fdatasync), "auto", "fdatasync"
    // (each file) or "syncfs" (one syncfs(2) per group commit; for a
    // dedicated spool file system).
    sd("spool_sync", "journal"),
    // oxim: address:port of the daemon's Prometheus endpoint (unset: none).
    s("metrics_listen"),
    b("spool_wireformat", false),
    t("sqlite_lock_timeout", 5),
    b("strict_acl_vars", false),
    b("strip_excess_angle_brackets", false),
    b("strip_trailing_dot", false),
    b("syslog_duplication", true),
    s("syslog_facility"),
    b("syslog_pid", true),
    sd("syslog_processname", "exim"),
    b("syslog_timestamp", true),
    s("system_filter"),
    s("system_filter_directory_transport"),
    s("system_filter_file_transport"),
    g("system_filter_group"),
    s("system_filter_pipe_transport"),
    s("system_filter_reply_transport"),
    u("system_filter_user"),
    b("tcp_nodelay", true),
    i("tfo_queue_length", 64),
    t("timeout_frozen_after", 0),
    s("timezone"),
    ld("tls_advertise_hosts", "*"),
    s("tls_advertise_requiretls"),
    s("tls_alpn"),
    s("tls_certificate"),
    s("tls_crl"),
    i("tls_dh_max_bits", 2236),
    s("tls_dhparam"),
    l("tls_early_banner_hosts"),
    s("tls_eccurve"),
    s("tls_ocsp_file"),
    l("tls_on_connect_ports"),
    s("tls_privatekey"),
    b("tls_remember_esmtp", false),
    s("tls_require_ciphers"),
    l("tls_resumption_hosts"),
    l("tls_try_verify_hosts"),
    s("tls_verify_certificates"),
    l("tls_verify_hosts"),
    gl("trusted_groups"),
    ul("trusted_users", D::Unset),
    s("unknown_login"),
    s("unknown_username"),
    l("untrusted_set_sender"),
    s("uucp_from_pattern"),
    s("uucp_from_sender"),
    s("warn_message_file"),
    l("wellknown_advertise_hosts"),
    b("write_rejectlog", true),
];

/// Router drivers known to oxim and their private tables.
pub static ROUTER_DRIVERS: &[(&str, &[OptionSpec])] = &[
    ("accept", ROUTER_ACCEPT),
    ("dnslookup", ROUTER_DNSLOOKUP),
    ("manualroute", ROUTER_MANUALROUTE),
    ("queryprogram", ROUTER_QUERYPROGRAM),
    ("redirect", ROUTER_REDIRECT),
];

/// Transport drivers known to oxim and their private tables.
pub static TRANSPORT_DRIVERS: &[(&str, &[OptionSpec])] = &[
    ("appendfile", TRANSPORT_APPENDFILE),
    ("autoreply", TRANSPORT_AUTOREPLY),
    ("lmtp", TRANSPORT_LMTP),
    ("pipe", TRANSPORT_PIPE),
    ("smtp", TRANSPORT_SMTP),
];

/// Authenticator drivers known to oxim and their private tables.
pub static AUTH_DRIVERS: &[(&str, &[OptionSpec])] = &[
    ("cram_md5", AUTH_CRAM_MD5),
    ("cyrus_sasl", AUTH_CYRUS_SASL),
    ("dovecot", AUTH_DOVECOT),
    ("external", AUTH_EXTERNAL),
    ("gsasl", AUTH_GSASL),
    ("heimdal_gssapi", AUTH_HEIMDAL_GSSAPI),
    ("plaintext", AUTH_PLAINTEXT),
    ("spa", AUTH_SPA),
    ("tls", AUTH_TLS),
];

/// Options of Exim's that these tables know but oxim does not act on yet,
/// by where they apply: `main`, `router` or `transport` (the generic
/// options of every router or transport), or a driver's name. Setting one
/// to anything but its default is refused when the configuration is read
/// ("... is not supported by oxim", with file and line), so that nobody
/// runs a configuration believing it does what it says. An option leaves
/// this list when it is implemented.
pub static UNSUPPORTED: &[(&str, &str)] = &[
    (
        "main",
        "acl_not_smtp_mime acl_not_smtp_start acl_smtp_atrn \
         acl_smtp_mime acl_smtp_notquit \
         acl_smtp_starttls acl_smtp_wellknown auto_thaw bounce_message_file \
         bounce_message_text bounce_return_message check_log_inodes \
         check_log_space check_spool_inodes check_spool_space \
         deliver_queue_load_max errors_reply_to \
         delay_warning_condition headers_charset \
         keep_malformed local_from_prefix local_from_suffix mua_wrapper \
         preserve_message_logs queue_only_file queue_only_load \
         smtp_accept_max_per_connection smtp_accept_queue \
         smtp_accept_queue_per_connection smtp_accept_reserve \
         smtp_load_reserve smtp_ratelimit_hosts smtp_ratelimit_mail \
         smtp_ratelimit_rcpt smtp_reserve_hosts \
         split_spool_directory strip_excess_angle_brackets strip_trailing_dot \
         uucp_from_pattern uucp_from_sender warn_message_file dsn_from \
         message_id_header_text tls_crl tls_dhparam tls_ocsp_file",
    ),
    (
        "router",
        "disable_logging initgroups log_as_local pass_on_timeout pass_router \
         translate_ip_address",
    ),
    (
        "redirect",
        "check_group check_owner hide_child_in_errmsg ignore_eacces \
         ignore_enotdir include_directory modemask owners owngroups",
    ),
    (
        "dnslookup",
        "check_srv fail_defer_domains mx_domains mx_fail_domains \
         srv_fail_domains",
    ),
    (
        "transport",
        "body_only disable_logging headers_only initgroups max_parallel \
         rcpt_include_affixes transport_filter_timeout",
    ),
    (
        "smtp",
        "address_retry_include_sender delay_after_cutoff gethostbyname \
         host_name_extract hosts_avoid_esmtp hosts_max_try_hardlimit \
         hosts_require_helo hosts_try_prdr lmtp_ignore_quota \
         retry_include_ip_address serialize_hosts size_addition socks_proxy \
         utf8_downconvert",
    ),
    (
        "appendfile",
        "allow_fifo allow_symlink batch_id batch_max check_group check_owner \
         directory_file file_format file_must_exist lock_fcntl_timeout \
         lock_interval lock_retries lockfile_mode lockfile_timeout \
         mailbox_filecount mailbox_size maildir_quota_directory_regex \
         maildir_tag maildirfolder_create_regex mbx_format notify_comsat \
         quota_directory quota_filecount quota_is_inclusive quota_size_regex \
         quota_warn_message quota_warn_threshold use_bsmtp use_crlf \
         use_fcntl_lock use_lockfile",
    ),
    (
        "pipe",
        "allow_commands batch_id batch_max environment force_command \
         freeze_exec_fail freeze_signal ignore_status log_defer_output \
         log_fail_output log_output max_output permit_coredump pipe_as_creator \
         restrict_to_path temp_errors umask use_bsmtp use_classresources \
         use_crlf use_shell",
    ),
    ("autoreply", "once_file_size"),
    ("lmtp", "batch_id batch_max ignore_quota socket"),
];

/// Whether `name` in `section` (see [`UNSUPPORTED`]) is one oxim refuses.
pub fn unsupported(section: &str, name: &str) -> bool {
    UNSUPPORTED
        .iter()
        .any(|(s, names)| *s == section && names.split_whitespace().any(|n| n == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_tables() -> Vec<(&'static str, &'static [OptionSpec])> {
        let mut v: Vec<(&str, &[OptionSpec])> = vec![
            ("main", MAIN),
            ("router generic", ROUTER_GENERIC),
            ("transport generic", TRANSPORT_GENERIC),
            ("auth generic", AUTH_GENERIC),
        ];
        for (n, t) in ROUTER_DRIVERS
            .iter()
            .chain(TRANSPORT_DRIVERS)
            .chain(AUTH_DRIVERS)
        {
            v.push((n, t));
        }
        v
    }

    #[test]
    fn option_names_are_unique_and_well_formed() {
        for (table, specs) in all_tables() {
            let mut seen = HashSet::new();
            for s in specs {
                assert!(seen.insert(s.name), "{table}: duplicate option {}", s.name);
                assert!(
                    s.name
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                    "{table}: bad option name {}",
                    s.name
                );
                assert!(!s.name.starts_with("no_") && !s.name.starts_with("not_"));
            }
        }
    }

    #[test]
    fn defaults_match_their_kinds() {
        for (table, specs) in all_tables() {
            for s in specs {
                let ok = matches!(
                    (s.kind, s.default),
                    (_, D::Unset)
                        | (K::Bool | K::ExpandBool, D::Bool(_))
                        | (K::Str | K::List | K::User | K::UserList, D::Str(_))
                        | (K::Int | K::Size | K::Octal | K::Fixed, D::Int(_))
                        | (K::Time, D::Time(_))
                );
                assert!(
                    ok,
                    "{table}: option {} has a default of the wrong kind",
                    s.name
                );
            }
        }
    }
}
