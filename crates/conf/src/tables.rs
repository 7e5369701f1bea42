//! Option tables: main section, generic and private driver options.
//!
//! Declared once here; the parser, `-bP` rendering and error messages all
//! read these tables. Defaults follow the Exim specification.

use crate::options::{spec, DefaultValue as D, Kind as K, OptionSpec, Repeat};

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
    b("bounce_sender_authentication", false),
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
    s("dkim_verify_hashes"),
    s("dkim_verify_keytypes"),
    s("dkim_verify_min_keysizes"),
    b("dkim_verify_minimal", false),
    s("dkim_verify_signers"),
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
    // oxim: how spool files are made durable: "fdatasync" (each file) or
    // "syncfs" (one syncfs(2) per group commit; for a dedicated spool file system).
    sd("spool_sync", "auto"),
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

/// Generic options shared by all routers.
pub static ROUTER_GENERIC: &[OptionSpec] = &[
    s("address_data"),
    eb("address_test", true),
    s("bounce_transport"),
    rep("condition", K::Str, D::Unset, Repeat::Condition),
    s("cannot_route_message"),
    b("caseful_local_part", false),
    b("check_local_user", false),
    s("data"),
    s("debug_print"),
    s("disable_logging"),
    s("dnssec_request_domains"),
    s("dnssec_require_domains"),
    l("domains"),
    s("driver"),
    b("dsn_lasthop", false),
    s("errors_to"),
    b("expn", true),
    b("fail_verify", false),
    b("fail_verify_recipient", false),
    b("fail_verify_sender", false),
    s("fallback_hosts"),
    g("group"),
    rep("headers_add", K::Str, D::Unset, Repeat::Append('\n')),
    rep("headers_remove", K::Str, D::Unset, Repeat::Append(':')),
    l("ignore_target_hosts"),
    b("initgroups", false),
    s("local_part_prefix"),
    b("local_part_prefix_optional", false),
    s("local_part_suffix"),
    b("local_part_suffix_optional", false),
    l("local_parts"),
    b("log_as_local", false),
    eb("more", true),
    b("pass_on_timeout", false),
    s("pass_router"),
    s("redirect_router"),
    b("repeat_use", true),
    s("require_files"),
    b("retry_use_local_part", false),
    s("router_home_directory"),
    s("self"),
    l("senders"),
    rep("set", K::Str, D::Unset, Repeat::Append(';')),
    s("transport"),
    s("transport_current_directory"),
    s("transport_home_directory"),
    s("translate_ip_address"),
    eb("unseen", false),
    u("user"),
    b("verify", true),
    b("verify_only", false),
    b("verify_recipient", true),
    b("verify_sender", true),
];

/// `accept` router private options (none).
pub static ROUTER_ACCEPT: &[OptionSpec] = &[];

/// `redirect` router private options.
pub static ROUTER_REDIRECT: &[OptionSpec] = &[
    b("allow_defer", false),
    b("allow_fail", false),
    b("allow_filter", false),
    b("allow_freeze", false),
    b("check_ancestor", false),
    b("check_group", false),
    b("check_owner", false),
    s("directory_transport"),
    s("file"),
    s("file_transport"),
    b("filter_prepend_home", true),
    b("forbid_blackhole", false),
    b("forbid_exim_filter", false),
    b("forbid_file", false),
    b("forbid_filter_dlfunc", false),
    b("forbid_filter_existstest", false),
    b("forbid_filter_logwrite", false),
    b("forbid_filter_lookup", false),
    b("forbid_filter_perl", false),
    b("forbid_filter_readfile", false),
    b("forbid_filter_readsocket", false),
    b("forbid_filter_reply", false),
    b("forbid_filter_run", false),
    b("forbid_include", false),
    b("forbid_pipe", false),
    b("forbid_sieve_filter", false),
    b("forbid_smtp_code", false),
    b("hide_child_in_errmsg", false),
    b("ignore_eacces", false),
    b("ignore_enotdir", false),
    s("include_directory"),
    oc("modemask", 0o22),
    b("one_time", false),
    s("owners"),
    s("owngroups"),
    s("pipe_transport"),
    s("qualify_domain"),
    b("qualify_preserve_domain", false),
    s("reply_transport"),
    b("rewrite", true),
    s("sieve_enotify_mailto_owner"),
    s("sieve_subaddress"),
    s("sieve_useraddress"),
    s("sieve_vacation_directory"),
    s("sieve_inbox"),
    b("skip_syntax_errors", false),
    s("syntax_errors_text"),
    s("syntax_errors_to"),
];

/// `manualroute` router private options.
pub static ROUTER_MANUALROUTE: &[OptionSpec] = &[
    sd("host_all_ignored", "defer"),
    sd("host_find_failed", "freeze"),
    b("hosts_randomize", false),
    s("route_data"),
    s("route_list"),
    b("same_domain_copy_routing", false),
];

/// `dnslookup` router private options.
pub static ROUTER_DNSLOOKUP: &[OptionSpec] = &[
    b("check_secondary_mx", false),
    ld("check_srv", ""),
    s("fail_defer_domains"),
    ld("ipv4_only", ""),
    ld("ipv4_prefer", ""),
    l("mx_domains"),
    l("mx_fail_domains"),
    b("qualify_single", true),
    b("rewrite_headers", true),
    b("same_domain_copy_routing", false),
    b("search_parents", false),
    l("srv_fail_domains"),
    s("widen_domains"),
];

/// `queryprogram` router private options (parse only).
pub static ROUTER_QUERYPROGRAM: &[OptionSpec] = &[
    s("command"),
    g("command_group"),
    u("command_user"),
    s("current_directory"),
    t("timeout", HOUR),
    b("timeout_defer", false),
];

/// Generic options shared by all transports.
pub static TRANSPORT_GENERIC: &[OptionSpec] = &[
    b("body_only", false),
    s("current_directory"),
    s("debug_print"),
    b("delivery_date_add", false),
    b("disable_logging", false),
    s("driver"),
    b("envelope_to_add", false),
    s("event_action"),
    g("group"),
    rep("headers_add", K::Str, D::Unset, Repeat::Append('\n')),
    b("headers_only", false),
    rep("headers_remove", K::Str, D::Unset, Repeat::Append(':')),
    s("headers_rewrite"),
    s("home_directory"),
    b("initgroups", false),
    s("max_parallel"),
    sd("message_size_limit", "0"),
    b("rcpt_include_affixes", false),
    b("retry_use_local_part", false),
    s("return_path"),
    b("return_path_add", false),
    s("shadow_condition"),
    s("shadow_transport"),
    s("transport_filter"),
    t("transport_filter_timeout", 5 * MIN),
    u("user"),
];

/// `smtp` transport private options.
pub static TRANSPORT_SMTP: &[OptionSpec] = &[
    b("address_retry_include_sender", true),
    b("allow_localhost", false),
    s("authenticated_sender"),
    b("authenticated_sender_force", false),
    t("command_timeout", 5 * MIN),
    t("connect_timeout", 5 * MIN),
    i("connection_max_messages", 500),
    t("data_timeout", 5 * MIN),
    b("delay_after_cutoff", true),
    s("dkim_canon"),
    s("dkim_domain"),
    s("dkim_hash"),
    s("dkim_identity"),
    s("dkim_private_key"),
    s("dkim_selector"),
    s("dkim_sign_headers"),
    s("dkim_strict"),
    s("dkim_timestamps"),
    s("dnssec_request_domains"),
    s("dnssec_require_domains"),
    s("dscp"),
    s("fallback_hosts"),
    t("final_timeout", 10 * MIN),
    b("gethostbyname", false),
    s("helo_data"),
    s("host_name_extract"),
    s("hosts"),
    l("hosts_avoid_esmtp"),
    l("hosts_avoid_pipelining"),
    l("hosts_avoid_tls"),
    i("hosts_max_try", 5),
    i("hosts_max_try_hardlimit", 50),
    l("hosts_noproxy_tls"),
    b("hosts_override", false),
    // oxim default `*` (Exim: unset): early pipelining wherever the server
    // offered PIPECONNECT last time; see README.
    ld("hosts_pipe_connect", "*"),
    b("hosts_randomize", false),
    l("hosts_request_ocsp"),
    l("hosts_require_alpn"),
    l("hosts_require_auth"),
    l("hosts_require_dane"),
    l("hosts_require_helo"),
    l("hosts_require_ocsp"),
    l("hosts_require_tls"),
    l("hosts_try_auth"),
    ld("hosts_try_chunking", "*"),
    l("hosts_try_dane"),
    // Exim 4.9x defaults this to "*" (its 2019 releases to unset); TCP Fast
    // Open is oxim's headline feature, so it is on unless a config says not.
    ld("hosts_try_fastopen", "*"),
    l("hosts_try_prdr"),
    l("hosts_verify_avoid_tls"),
    s("interface"),
    b("keepalive", true),
    b("lmtp_ignore_quota", false),
    s("max_rcpt"),
    i("message_linelength_limit", 998),
    b("multi_domain", true),
    sd("port", "smtp"),
    sd("protocol", "smtp"),
    eb("retry_include_ip_address", true),
    l("serialize_hosts"),
    i("size_addition", 1024),
    s("socks_proxy"),
    s("tls_alpn"),
    s("tls_certificate"),
    s("tls_crl"),
    i("tls_dh_min_bits", 1024),
    b("tls_tempfail_tryclear", true),
    s("tls_privatekey"),
    s("tls_require_ciphers"),
    s("tls_resumption_hosts"),
    s("tls_sni"),
    s("tls_try_verify_hosts"),
    s("tls_verify_cert_hostnames"),
    s("tls_verify_certificates"),
    s("tls_verify_hosts"),
    s("utf8_downconvert"),
];

/// `appendfile` transport private options.
pub static TRANSPORT_APPENDFILE: &[OptionSpec] = &[
    b("allow_fifo", false),
    b("allow_symlink", false),
    s("batch_id"),
    i("batch_max", 1),
    b("check_group", false),
    b("check_owner", true),
    s("check_string"),
    b("create_directory", true),
    sd("create_file", "anywhere"),
    s("directory"),
    s("directory_file"),
    oc("directory_mode", 0o700),
    s("escape_string"),
    s("file"),
    s("file_format"),
    b("file_must_exist", false),
    t("lock_fcntl_timeout", 0),
    t("lock_flock_timeout", 0),
    i("lock_interval", 3),
    i("lock_retries", 10),
    oc("lockfile_mode", 0o600),
    t("lockfile_timeout", 30 * MIN),
    s("mailbox_filecount"),
    s("mailbox_size"),
    b("maildir_format", false),
    s("maildir_quota_directory_regex"),
    s("maildir_tag"),
    b("maildir_use_size_file", false),
    s("maildirfolder_create_regex"),
    b("mailstore_format", false),
    s("mailstore_prefix"),
    s("mailstore_suffix"),
    b("mbx_format", false),
    s("message_prefix"),
    s("message_suffix"),
    oc("mode", 0o600),
    b("mode_fail_narrower", true),
    b("notify_comsat", false),
    s("quota"),
    s("quota_directory"),
    s("quota_filecount"),
    b("quota_is_inclusive", true),
    s("quota_size_regex"),
    s("quota_warn_message"),
    s("quota_warn_threshold"),
    b("use_bsmtp", false),
    b("use_crlf", false),
    b("use_fcntl_lock", false),
    b("use_flock_lock", false),
    b("use_lockfile", false),
    b("use_mbx_lock", false),
];

/// `pipe` transport private options.
pub static TRANSPORT_PIPE: &[OptionSpec] = &[
    s("allow_commands"),
    s("batch_id"),
    i("batch_max", 1),
    s("check_string"),
    s("command"),
    s("environment"),
    s("escape_string"),
    b("force_command", false),
    b("freeze_exec_fail", false),
    b("freeze_signal", false),
    b("ignore_status", false),
    sz("max_output", 20 << 10),
    b("log_defer_output", false),
    b("log_fail_output", false),
    b("log_output", false),
    s("message_prefix"),
    s("message_suffix"),
    sd("path", "/bin:/usr/bin"),
    b("permit_coredump", false),
    b("pipe_as_creator", false),
    b("restrict_to_path", false),
    b("return_fail_output", false),
    b("return_output", false),
    sd("temp_errors", "75:73"),
    t("timeout", HOUR),
    b("timeout_defer", false),
    oc("umask", 0o22),
    b("use_bsmtp", false),
    b("use_classresources", false),
    b("use_crlf", false),
    b("use_shell", false),
];

/// `autoreply` transport private options (parse only).
pub static TRANSPORT_AUTOREPLY: &[OptionSpec] = &[
    s("bcc"),
    s("cc"),
    s("file"),
    b("file_expand", false),
    b("file_optional", false),
    s("from"),
    s("headers"),
    s("log"),
    oc("mode", 0o600),
    b("never_mail", false),
    s("once"),
    i("once_file_size", 0),
    t("once_repeat", 0),
    s("reply_to"),
    b("return_message", false),
    s("subject"),
    s("text"),
    s("to"),
];

/// `lmtp` transport private options (parse only).
pub static TRANSPORT_LMTP: &[OptionSpec] = &[
    s("batch_id"),
    i("batch_max", 1),
    s("command"),
    b("ignore_quota", false),
    s("socket"),
    t("timeout", 5 * MIN),
];

/// Generic options shared by all authenticators.
pub static AUTH_GENERIC: &[OptionSpec] = &[
    s("advertise_condition"),
    s("client_condition"),
    s("client_set_id"),
    s("driver"),
    s("public_name"),
    s("server_advertise_condition"),
    s("server_condition"),
    s("server_debug_print"),
    s("server_mail_auth_condition"),
    s("server_set_id"),
];

/// `plaintext` authenticator private options.
pub static AUTH_PLAINTEXT: &[OptionSpec] = &[
    b("client_ignore_invalid_base64", false),
    s("client_send"),
    s("server_prompts"),
];

/// `cram_md5` authenticator private options.
pub static AUTH_CRAM_MD5: &[OptionSpec] =
    &[s("client_name"), s("client_secret"), s("server_secret")];

/// `dovecot` authenticator private options (parse only).
pub static AUTH_DOVECOT: &[OptionSpec] = &[s("server_socket"), b("server_tls", false)];

/// `external` authenticator private options (parse only).
pub static AUTH_EXTERNAL: &[OptionSpec] =
    &[s("client_send"), s("server_param2"), s("server_param3")];

/// `tls` authenticator private options (parse only).
pub static AUTH_TLS: &[OptionSpec] = &[
    s("server_param"),
    s("server_param1"),
    s("server_param2"),
    s("server_param3"),
];

/// `spa` authenticator private options (parse only).
pub static AUTH_SPA: &[OptionSpec] = &[
    s("client_domain"),
    s("client_password"),
    s("client_username"),
    s("server_password"),
    s("server_realm"),
];

/// `cyrus_sasl` authenticator private options (parse only).
pub static AUTH_CYRUS_SASL: &[OptionSpec] = &[
    s("server_hostname"),
    s("server_mech"),
    s("server_realm"),
    s("server_service"),
];

/// `gsasl` authenticator private options (parse only).
pub static AUTH_GSASL: &[OptionSpec] = &[
    s("client_authz"),
    b("client_channelbinding", false),
    s("client_password"),
    s("client_spassword"),
    s("client_username"),
    b("server_channelbinding", false),
    s("server_hostname"),
    s("server_key"),
    s("server_mech"),
    s("server_password"),
    s("server_realm"),
    s("server_scram_iter"),
    s("server_scram_salt"),
    s("server_service"),
    s("server_skey"),
];

/// `heimdal_gssapi` authenticator private options (parse only).
pub static AUTH_HEIMDAL_GSSAPI: &[OptionSpec] = &[
    s("server_hostname"),
    s("server_keytab"),
    s("server_service"),
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
