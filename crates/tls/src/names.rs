//! Exim's names for what was negotiated: `X=TLS1.3:TLS_AES_256_GCM_SHA384:256`
//! as Exim built with OpenSSL logs it (protocol, OpenSSL's cipher name, key
//! bits).

use rustls::{CipherSuite, CommonState, ProtocolVersion};

/// `TLS1.2`, `TLS1.3` (Exim turns OpenSSL's `TLSv1.3` into this form).
pub fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLS1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLS1.2".into(),
        ProtocolVersion::TLSv1_1 => "TLS1.1".into(),
        ProtocolVersion::TLSv1_0 => "TLS1.0".into(),
        other => format!("{other:?}"),
    }
}

/// OpenSSL's name for a suite: `TLS_AES_256_GCM_SHA384` for TLS 1.3,
/// `ECDHE-RSA-AES256-GCM-SHA384` style for TLS 1.2.
pub fn openssl_suite_name(s: CipherSuite) -> String {
    let iana = s
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{s:?}"));
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 -> ECDHE-RSA-AES256-GCM-SHA384
    let Some(body) = iana.strip_prefix("TLS_") else {
        return iana;
    };
    let Some((kx, cipher)) = body.split_once("_WITH_") else {
        return iana;
    };
    let cipher = cipher
        .replace("AES_256_", "AES256-")
        .replace("AES_128_", "AES128-")
        .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305");
    format!("{}-{}", kx, cipher).replace('_', "-")
}

/// The IANA name of a suite (`TLS_AES_256_GCM_SHA384`,
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`).
pub fn standard_suite_name(s: CipherSuite) -> String {
    let name = s
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{s:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Secret key bits of a suite's bulk cipher.
pub fn suite_bits(s: CipherSuite) -> u32 {
    let name = s.as_str().unwrap_or("");
    if name.contains("AES_128") {
        128
    } else {
        256
    }
}

/// The `X=` value for an established connection, `None` while handshaking.
pub fn exim_cipher(c: &CommonState) -> Option<String> {
    let v = c.protocol_version()?;
    let s = c.negotiated_cipher_suite()?.suite();
    Some(format!(
        "{}:{}:{}",
        version_name(v),
        openssl_suite_name(s),
        suite_bits(s)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names() {
        let cases = [
            (
                CipherSuite::TLS13_AES_256_GCM_SHA384,
                "TLS_AES_256_GCM_SHA384",
                256,
            ),
            (
                CipherSuite::TLS13_AES_128_GCM_SHA256,
                "TLS_AES_128_GCM_SHA256",
                128,
            ),
            (
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                "TLS_CHACHA20_POLY1305_SHA256",
                256,
            ),
            (
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                "ECDHE-RSA-AES256-GCM-SHA384",
                256,
            ),
            (
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                128,
            ),
            (
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                "ECDHE-RSA-CHACHA20-POLY1305",
                256,
            ),
        ];
        for (s, name, bits) in cases {
            assert_eq!(openssl_suite_name(s), name);
            assert!(standard_suite_name(s).starts_with("TLS_"), "{s:?}");
            assert_eq!(suite_bits(s), bits, "{name}");
        }
        assert_eq!(
            standard_suite_name(CipherSuite::TLS13_AES_256_GCM_SHA384),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            standard_suite_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        );
        assert_eq!(version_name(ProtocolVersion::TLSv1_3), "TLS1.3");
        assert_eq!(version_name(ProtocolVersion::TLSv1_2), "TLS1.2");
    }
}
