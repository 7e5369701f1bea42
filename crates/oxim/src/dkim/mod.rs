//! DKIM (RFC 6376, RFC 8463): verification of received messages and
//! signing in the smtp transport, with Exim's options, variables and log
//! texts.
//!
//! Built on the RustCrypto primitives (`rsa`, `sha1`, `sha2`,
//! `ed25519-dalek`) rather than a whole-protocol crate: Exim's behaviour
//! needs rsa-sha512, 512-bit keys, the key size of each signature, its own
//! reasons and its own DKIM-Signature layout, which `mail-auth` does not
//! offer. No I/O here: key records are looked up by the caller.

pub mod canon;
pub mod sig;
pub mod sign;
pub mod verify;

use verify::{SigResult, Status, Why};

/// The per-signature log line (`+dkim_verbose`).
pub fn log_line(r: &SigResult) -> String {
    let s = &r.sig;
    let mut l = format!(
        "DKIM: d={} s={} c={}/{} a={} b={}",
        s.domain.as_deref().unwrap_or("<UNSET>"),
        s.selector.as_deref().unwrap_or("<UNSET>"),
        if s.relaxed_headers {
            "relaxed"
        } else {
            "simple"
        },
        if s.relaxed_body { "relaxed" } else { "simple" },
        s.algo(),
        r.sig_bits()
    );
    if let Some(i) = &s.identity {
        l.push_str(&format!(" i={i}"));
    }
    if let Some(t) = s.created.filter(|t| *t > 0) {
        l.push_str(&format!(" t={t}"));
    }
    if let Some(x) = s.expires.filter(|x| *x > 0) {
        l.push_str(&format!(" x={x}"));
    }
    if let Some(b) = s.bodylength {
        l.push_str(&format!(" l={b}"));
    }
    if let Some((st, why)) = &r.policy {
        l.push_str(&format!(" [{st} - {why}]"));
        return l;
    }
    l.push_str(match r.status {
        Status::None => " [not verified]",
        Status::Invalid(w) => match w {
            Why::PubkeyUnavailable => " [invalid - public key record (currently?) unavailable]",
            Why::PubkeyDnsRecord | Why::PubkeyImport => {
                " [invalid - syntax error in public key record]"
            }
            Why::SignatureError => " [invalid - signature tag missing or invalid]",
            Why::DkimVersion => " [invalid - unsupported DKIM version]",
            _ => " [invalid - unspecified problem]",
        },
        Status::Fail(w) => match w {
            Why::Body => {
                " [verification failed - body hash mismatch (body probably modified in transit)]"
            }
            Why::Message => {
                " [verification failed - signature did not verify (headers probably modified in transit)]"
            }
            Why::KeySize => " [verification failed - signature invalid (key too short)]",
            _ => " [verification failed - unspecified reason]",
        },
        Status::Pass => " [verification succeeded]",
    });
    l
}

/// The `dkim=` parts of `${authresults}` for all signatures.
pub fn authres(sigs: &[SigResult]) -> String {
    let mut g = String::new();
    for r in sigs {
        g.push_str(";\n\tdkim=");
        if let Some((st, why)) = &r.policy {
            g.push_str(&format!("policy ({st} - {why})"));
        } else {
            match r.status {
                Status::None => g.push_str("none"),
                Status::Invalid(w) => g.push_str(match w {
                    Why::PubkeyUnavailable => "tmperror (pubkey unavailable)\n\t\t",
                    Why::PubkeyDnsRecord | Why::PubkeyImport => {
                        "neutral (public key record import problem)\n\t\t"
                    }
                    Why::SignatureError => "neutral (signature tag missing or invalid)\n\t\t",
                    Why::DkimVersion => "neutral (unsupported DKIM version)\n\t\t",
                    _ => "permerror (unspecified problem)\n\t\t",
                }),
                Status::Fail(w) => match w {
                    Why::Body => g.push_str(
                        "fail (body hash mismatch; body probably modified in transit)\n\t\t",
                    ),
                    Why::Message => g.push_str(
                        "fail (signature did not verify; headers probably modified in transit)\n\t\t",
                    ),
                    Why::KeySize => g.push_str(&format!(
                        "fail (public key too short: {} bits)\n\t\t",
                        r.key_bits()
                    )),
                    _ => g.push_str("fail (unspecified reason)\n\t\t"),
                },
                Status::Pass => g.push_str("pass"),
            }
        }
        let s = &r.sig;
        if let Some(d) = &s.domain {
            g.push_str(&format!(" header.d={d}"));
        }
        if let Some(i) = &s.identity {
            g.push_str(&format!(" header.i={i}"));
        }
        if let Some(sel) = &s.selector {
            g.push_str(&format!(" header.s={sel}"));
        }
        g.push_str(&format!(" header.a={}", s.algo()));
    }
    g
}

/// `$dkim_signers`: the domains and identities of all signatures, each once.
pub fn signers(sigs: &[SigResult]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for r in sigs {
        for x in [r.sig.domain.as_deref(), r.sig.identity.as_deref()]
            .into_iter()
            .flatten()
        {
            if !x.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(x)) {
                out.push(x);
            }
        }
    }
    out.join(":")
}

/// The `$dkim_*` variables for one signature (None: no signature matched,
/// Exim's defaults).
pub fn sig_vars(r: Option<&SigResult>) -> Vec<(&'static str, String)> {
    let Some(r) = r else {
        return [
            "dkim_algo",
            "dkim_bodylength",
            "dkim_canon_body",
            "dkim_canon_headers",
            "dkim_copiedheaders",
            "dkim_created",
            "dkim_expires",
            "dkim_headernames",
            "dkim_identity",
            "dkim_key_granularity",
            "dkim_key_srvtype",
            "dkim_key_notes",
            "dkim_key_testing",
            "dkim_key_nosubdomains",
            "dkim_verify_reason",
        ]
        .into_iter()
        .map(|n| (n, String::new()))
        .chain([("dkim_verify_status", "none".to_string())])
        .collect();
    };
    let s = &r.sig;
    let canon = |relaxed: bool| if relaxed { "relaxed" } else { "simple" }.to_string();
    let k = r.key.as_ref();
    let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    vec![
        ("dkim_domain", s.domain.clone().unwrap_or_default()),
        ("dkim_selector", s.selector.clone().unwrap_or_default()),
        ("dkim_algo", s.algo()),
        ("dkim_bodylength", num(s.bodylength)),
        ("dkim_canon_body", canon(s.relaxed_body)),
        ("dkim_canon_headers", canon(s.relaxed_headers)),
        (
            "dkim_copiedheaders",
            s.copied_headers.clone().unwrap_or_default(),
        ),
        ("dkim_created", num(s.created)),
        ("dkim_expires", num(s.expires)),
        (
            "dkim_headernames",
            s.headernames.clone().unwrap_or_default(),
        ),
        ("dkim_identity", s.identity.clone().unwrap_or_default()),
        (
            "dkim_key_granularity",
            k.map(|k| k.granularity.clone()).unwrap_or_default(),
        ),
        (
            "dkim_key_srvtype",
            k.map(|k| k.srvtype.clone()).unwrap_or_default(),
        ),
        (
            "dkim_key_notes",
            k.map(|k| k.notes.clone()).unwrap_or_default(),
        ),
        (
            "dkim_key_testing",
            k.map(|k| u8::from(k.testing).to_string())
                .unwrap_or_default(),
        ),
        (
            "dkim_key_nosubdomains",
            k.map(|k| u8::from(k.nosubdomains).to_string())
                .unwrap_or_default(),
        ),
        ("dkim_key_length", r.key_bits().to_string()),
        ("dkim_verify_status", r.status_name()),
        ("dkim_verify_reason", r.reason()),
    ]
}
