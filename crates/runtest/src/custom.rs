//! Exim's canned extra munges, selected by a script's `munge NAME` line
//! (Exim's runtest keeps them in its `$munges` table; the last one named
//! applies). Each rewrites or drops lines of one output stream before the
//! comparison. Written from their descriptions; the regular expressions are
//! ours.

use regex::Regex;

/// What a rule does to a matching line.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Drop lines that match.
    Skip(&'static str),
    /// Replace the first match (`$1` etc. refer to groups).
    Subst(&'static str, &'static str),
}

/// Streams: `mainlog`, `rejectlog`, `paniclog`, `stdout`, `stderr`, `mail`, `msglog`.
const TABLE: &[(&str, &[(&str, Action)])] = &[
    (
        "dnssec",
        &[(
            "stderr",
            Action::Skip(r"^Reverse DNS security status: unverified$"),
        )],
    ),
    (
        "optional_events",
        &[("stdout", Action::Skip(r"event_action ="))],
    ),
    (
        "optional_ocsp",
        &[(
            "stderr",
            Action::Skip(r"127.0.0.1 in hosts_requ(ire|est)_ocsp"),
        )],
    ),
    (
        "optional_cert_hostnames",
        &[("stderr", Action::Skip(r"in tls_verify_cert_hostnames\? no"))],
    ),
    (
        "loopback",
        &[(
            "stdout",
            Action::Subst(r"\[(127\.0\.0\.1|::1)\]", "[IP_LOOPBACK_ADDR]"),
        )],
    ),
    (
        "scanfile_size",
        &[(
            "stdout",
            Action::Subst(r"(Content-length:) \d\d\d", "$1 ddd"),
        )],
    ),
    (
        "delay_1500",
        &[(
            "stderr",
            Action::Subst(r"(1[5-9]|23\d)\d\d msec", "ssss msec"),
        )],
    ),
    (
        "tls_anycipher",
        &[
            (
                "mainlog",
                Action::Subst(r" X=TLS\S+ ", " X=TLS_proto_and_cipher "),
            ),
            (
                "rejectlog",
                Action::Subst(r" X=TLS\S+ ", " X=TLS_proto_and_cipher "),
            ),
        ],
    ),
    (
        "optional_config",
        &[(
            "stdout",
            Action::Skip(
                r"^(dkim_(canon|domain|private_key|selector|sign_headers|strict|hash|identity|timestamps)|gnutls_require_(kx|mac|protocols)|hosts_pipe_connect|hosts_(requ(est|ire)|try)_(dane|ocsp)|dane_require_tls_ciphers|hosts_(avoid|nopass|noproxy|require|verify_avoid)_tls|pipelining_connect_advertise_hosts|socks_proxy|tls_[^ ]*|utf8_downconvert)($| =)",
            ),
        )],
    ),
    (
        "sys_bindir",
        &[(
            "mainlog",
            Action::Subst(r"/(usr/(local/)?)?bin/", "SYSBINDIR/"),
        )],
    ),
    (
        "sync_check_data",
        &[
            (
                "mainlog",
                Action::Subst(
                    r"^(.* SMTP protocol synchronization error .* next input=.{8}).*$",
                    "$1<suppressed>",
                ),
            ),
            (
                "rejectlog",
                Action::Subst(
                    r"^(.* SMTP protocol synchronization error .* next input=.{8}).*$",
                    "$1<suppressed>",
                ),
            ),
        ],
    ),
    (
        "timeout_errno",
        &[(
            "mainlog",
            Action::Subst(r"((?:host|message) deferral .* errno) <\d+> ", "$1 <EEE> "),
        )],
    ),
    (
        "peer_terminated_conn",
        &[(
            "stderr",
            Action::Subst(
                r"^(  SMTP\()Connection reset by peer(\)<<)$",
                "${1}closed$2",
            ),
        )],
    ),
    (
        "perl_variants",
        &[("stdout", Action::Subst(r"^> X/X$", "> X"))],
    ),
];

/// Munges that only relax differences specific to GnuTLS or to optional
/// build features oxim does not have; not applying them can only make a
/// comparison stricter.
const NOT_NEEDED: &[&str] = &[
    "gnutls_unexpected",
    "gnutls_handshake",
    "gnutls_bad_clientcert",
    "optional_dsn_info",
    "debuglog_stdout",
];

/// Whether `name` is one of Exim's canned munges.
pub fn known(name: &str) -> bool {
    TABLE.iter().any(|(n, _)| *n == name) || NOT_NEEDED.contains(&name)
}

/// Apply munge `name` to the text of `stream` (already normally munged).
pub fn apply(name: &str, stream: &str, text: &str) -> String {
    let Some((_, rules)) = TABLE.iter().find(|(n, _)| *n == name) else {
        return text.to_string();
    };
    let mut text = text.to_string();
    for (s, action) in rules.iter() {
        if *s != stream {
            continue;
        }
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let (body, nl) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            match action {
                Action::Skip(re) => {
                    if !Regex::new(re).expect("static regex").is_match(body) {
                        out.push_str(line);
                    }
                }
                Action::Subst(re, rep) => {
                    let re = Regex::new(re).expect("static regex");
                    out.push_str(&re.replace(body, *rep));
                    out.push_str(nl);
                }
            }
        }
        text = out;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compile_and_apply() {
        for (name, rules) in TABLE {
            for (stream, _) in rules.iter() {
                let _ = apply(name, stream, "x\n");
            }
        }
        assert_eq!(
            apply("loopback", "stdout", "a [127.0.0.1] b\n"),
            "a [IP_LOOPBACK_ADDR] b\n"
        );
        assert_eq!(
            apply(
                "dnssec",
                "stderr",
                "x\nReverse DNS security status: unverified\ny\n"
            ),
            "x\ny\n"
        );
        assert_eq!(
            apply("loopback", "stderr", "[127.0.0.1]\n"),
            "[127.0.0.1]\n"
        );
        assert!(known("gnutls_handshake") && !known("nonsense"));
    }
}
