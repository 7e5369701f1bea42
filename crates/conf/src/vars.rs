//! Names of Exim's expansion variables.
//!
//! Exim distinguishes a variable that exists but has no value (it expands
//! to nothing) from an unknown name (an expansion error). An
//! [`crate::ExpandContext`] only supplies values; this table tells the
//! expander which names are legitimate when the context has no value.

/// Exact variable names from the Exim specification ("Expansion
/// variables"), sorted for binary search.
const NAMES: &[&str] = &[
    "address_data",
    "address_file",
    "address_pipe",
    "atrn_host",
    "atrn_mode",
    "authenticated_fail_id",
    "authenticated_id",
    "authenticated_sender",
    "authentication_failed",
    "av_failed",
    "body_linecount",
    "body_zerocount",
    "bounce_recipient",
    "bounce_return_size_limit",
    "caller_gid",
    "caller_uid",
    "callout_address",
    "compile_date",
    "compile_number",
    "config_dir",
    "config_file",
    "connection_id",
    "csa_status",
    "dcc_header",
    "dcc_result",
    "dnslist_domain",
    "dnslist_matched",
    "dnslist_text",
    "dnslist_value",
    "domain",
    "domain_data",
    "event_data",
    "event_defer_errno",
    "event_name",
    "exim_gid",
    "exim_path",
    "exim_uid",
    "exim_version",
    "headers_added",
    "home",
    "host",
    "host_address",
    "host_data",
    "host_lookup_deferred",
    "host_lookup_failed",
    "host_port",
    "initial_cwd",
    "inode",
    "interface_address",
    "interface_port",
    "item",
    "ldap_dn",
    "load_average",
    "local_part",
    "local_part_data",
    "local_part_prefix",
    "local_part_prefix_v",
    "local_part_suffix",
    "local_part_suffix_v",
    "local_part_verified",
    "local_scan_data",
    "local_user_gid",
    "local_user_uid",
    "localhost_number",
    "log_inodes",
    "log_space",
    "lookup_dnssec_authenticated",
    "mailstore_basename",
    "malware_name",
    "max_received_linelength",
    "message_age",
    "message_body",
    "message_body_end",
    "message_body_size",
    "message_exim_id",
    "message_headers",
    "message_headers_raw",
    "message_id",
    "message_linecount",
    "message_size",
    "message_smtp_txn",
    "original_domain",
    "original_local_part",
    "originator_gid",
    "originator_uid",
    "parent_domain",
    "parent_local_part",
    "pid",
    "pipe_addresses",
    "prdr_requested",
    "primary_hostname",
    "prvscheck_address",
    "prvscheck_keynum",
    "prvscheck_result",
    "qualify_domain",
    "qualify_recipient",
    "queue_name",
    "queue_size",
    "rcpt_count",
    "rcpt_defer_count",
    "rcpt_fail_count",
    "received_count",
    "received_for",
    "received_ip_address",
    "received_port",
    "received_protocol",
    "received_time",
    "recipient_data",
    "recipient_verify_failure",
    "recipients",
    "recipients_count",
    "recipients_list",
    "regex_match_string",
    "reply_address",
    "return_path",
    "return_size_limit",
    "router_name",
    "runrc",
    "self_hostname",
    "sender_address",
    "sender_address_data",
    "sender_address_domain",
    "sender_address_local_part",
    "sender_data",
    "sender_fullhost",
    "sender_helo_dnssec",
    "sender_helo_name",
    "sender_helo_verified",
    "sender_host_address",
    "sender_host_authenticated",
    "sender_host_dnssec",
    "sender_host_name",
    "sender_host_port",
    "sender_ident",
    "sender_rate",
    "sender_rate_limit",
    "sender_rate_period",
    "sender_rcvhost",
    "sender_verify_failure",
    "sending_ip_address",
    "sending_port",
    "smtp_active_hostname",
    "smtp_command",
    "smtp_command_argument",
    "smtp_command_history",
    "smtp_count_at_connection_start",
    "smtp_notquit_reason",
    "spool_directory",
    "spool_inodes",
    "spool_space",
    "thisaddress",
    "tls_bits",
    "tls_certificate_verified",
    "tls_cipher",
    "tls_peerdn",
    "tls_sni",
    "transport_name",
    "value",
    "verify_mode",
    "version_number",
    "warn_message_delay",
    "warn_message_recipients",
    "warnmsg_delay",
    "warnmsg_recipients",
];

/// Prefixes of variable families (`$acl_m_x`, `$tls_in_cipher`, ...).
const PREFIXES: &[&str] = &[
    "acl_c", "acl_m", "dkim_", "dmarc_", "mime_", "spam_", "spf_", "srs_", "tls_in_", "tls_out_",
    "tod_", "arc_",
];

/// Whether `name` is one of Exim's expansion variables (including the
/// numbered families `$auth1`.., `$n0`..`$n9`, `$regex1`.. and the
/// `acl_c*`/`acl_m*` ACL variables).
pub fn is_known_variable(name: &str) -> bool {
    if NAMES.binary_search(&name).is_ok() || PREFIXES.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    for fam in ["auth", "n", "regex"] {
        if let Some(d) = name.strip_prefix(fam) {
            if !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(NAMES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn families() {
        assert!(is_known_variable("sender_helo_name"));
        assert!(is_known_variable("acl_m_foo"));
        assert!(is_known_variable("auth2"));
        assert!(is_known_variable("tls_in_cipher_std"));
        assert!(!is_known_variable("auth"));
        assert!(!is_known_variable("colour"));
    }
}
