//! The DKIM-Signature tag list and the `_domainkey` key record.

use base64::Engine;

/// Signing algorithm (`a=`): key type and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha256 => "sha256",
            Hash::Sha512 => "sha512",
        }
    }

    pub fn parse(s: &str) -> Option<Hash> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha1" => Some(Hash::Sha1),
            "sha256" => Some(Hash::Sha256),
            "sha512" => Some(Hash::Sha512),
            _ => None,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// `a=` as written (`rsa-sha256`), from its parts.
pub fn algo_name(k: Option<KeyType>, h: Option<Hash>) -> String {
    match (k, h) {
        (Some(k), Some(h)) => format!("{}-{}", k.name(), h.name()),
        _ => String::new(),
    }
}

/// A parsed DKIM-Signature header field. Missing or bad tags are `None`
/// (the verifier reports them); nothing here fails.
#[derive(Debug, Clone, Default)]
pub struct Signature {
    pub version: Option<u32>,
    pub keytype: Option<KeyType>,
    pub hash: Option<Hash>,
    /// `a=` as written.
    pub algo_text: String,
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub identity: Option<String>,
    pub headernames: Option<String>,
    pub copied_headers: Option<String>,
    pub bodyhash: Vec<u8>,
    pub sighash: Option<Vec<u8>>,
    pub relaxed_headers: bool,
    pub relaxed_body: bool,
    pub canon_ok: bool,
    pub bodylength: Option<u64>,
    pub created: Option<u64>,
    pub expires: Option<u64>,
    /// The whole header field as received, for hashing with `b=` emptied.
    pub raw: Vec<u8>,
}

fn strip_fws(v: &str) -> String {
    v.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The `tag=value` pairs of a tag list (names trimmed, values trimmed).
pub fn tag_list(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|t| {
            let (n, v) = t.split_once('=')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

impl Signature {
    /// Parse the field (`DKIM-Signature: ...` with its CRLFs).
    pub fn parse(raw: &[u8]) -> Signature {
        let text = String::from_utf8_lossy(raw);
        let value = text.split_once(':').map_or("", |(_, v)| v);
        let mut s = Signature {
            raw: raw.to_vec(),
            canon_ok: true,
            ..Signature::default()
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        for (name, v) in tag_list(value) {
            match name.as_str() {
                "v" => s.version = v.parse().ok(),
                "a" => {
                    s.algo_text = v.clone();
                    let (k, h) = v.split_once('-').unwrap_or((&v, ""));
                    s.keytype = match k {
                        "rsa" => Some(KeyType::Rsa),
                        "ed25519" => Some(KeyType::Ed25519),
                        _ => None,
                    };
                    s.hash = Hash::parse(h);
                }
                "d" => s.domain = Some(v),
                "s" => s.selector = Some(v),
                "i" => s.identity = Some(v),
                "h" => s.headernames = Some(strip_fws(&v)),
                "z" => s.copied_headers = Some(v),
                "bh" => s.bodyhash = b64.decode(strip_fws(&v)).unwrap_or_default(),
                "b" => s.sighash = b64.decode(strip_fws(&v)).ok().filter(|b| !b.is_empty()),
                "c" => {
                    let (h, b) = v.split_once('/').unwrap_or((&v, "simple"));
                    match (h, b) {
                        ("simple" | "relaxed", "simple" | "relaxed") => {
                            s.relaxed_headers = h == "relaxed";
                            s.relaxed_body = b == "relaxed";
                        }
                        _ => s.canon_ok = false,
                    }
                }
                "l" => s.bodylength = v.parse().ok(),
                "t" => s.created = v.parse().ok(),
                "x" => s.expires = v.parse().ok(),
                _ => {}
            }
        }
        s
    }

    /// `a=` for logs: the parsed algorithm, else what was written.
    pub fn algo(&self) -> String {
        match (self.keytype, self.hash) {
            (Some(k), Some(h)) => algo_name(Some(k), Some(h)),
            _ => self.algo_text.clone(),
        }
    }

    /// The field with the value of its `b=` tag removed, as hashed.
    pub fn raw_without_b(&self) -> Vec<u8> {
        strip_b_value(&self.raw)
    }
}

/// Remove the value of the `b=` tag (not `bh=`) from a header field.
pub fn strip_b_value(raw: &[u8]) -> Vec<u8> {
    let colon = raw.iter().position(|&b| b == b':').map_or(0, |p| p + 1);
    let mut out = raw[..colon].to_vec();
    let mut rest = &raw[colon..];
    loop {
        let end = rest.iter().position(|&b| b == b';');
        let (tag, tail) = match end {
            Some(e) => (&rest[..e], &rest[e..]),
            None => (rest, &rest[rest.len()..]),
        };
        let name_end = tag.iter().position(|&b| b == b'=');
        let is_b = name_end.is_some_and(|p| {
            tag[..p]
                .iter()
                .filter(|c| !c.is_ascii_whitespace())
                .eq(b"b".iter())
        });
        if is_b {
            let p = name_end.expect("checked");
            out.extend_from_slice(&tag[..=p]);
            // Keep the field's final CRLF, if the tag ran to the end.
            if tail.is_empty() && tag.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        } else {
            out.extend_from_slice(tag);
        }
        if tail.is_empty() {
            break;
        }
        out.push(b';');
        rest = &tail[1..];
    }
    out
}

/// A public key from a `_domainkey` TXT record.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Why a key record could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not a DKIM key record (`v=` other than DKIM1, unknown `k=`).
    DnsRecord,
    /// `p=` empty or not a key.
    Import(String),
}

/// A parsed key record.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key: PublicKey,
    pub bits: usize,
    /// `h=`: the hashes this key may be used with (empty: any).
    pub hashes: Vec<String>,
    pub keytype: KeyType,
    pub notes: String,
    pub testing: bool,
    pub nosubdomains: bool,
    pub srvtype: String,
    pub granularity: String,
}

impl KeyRecord {
    pub fn parse(text: &str) -> Result<KeyRecord, KeyError> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let tags = tag_list(text);
        let get = |n: &str| tags.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        if let Some(v) = get("v") {
            if v != "DKIM1" {
                return Err(KeyError::DnsRecord);
            }
        }
        let keytype = match get("k").unwrap_or("rsa") {
            "rsa" => KeyType::Rsa,
            "ed25519" => KeyType::Ed25519,
            _ => return Err(KeyError::DnsRecord),
        };
        let Some(p) = get("p") else {
            return Err(KeyError::DnsRecord);
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(strip_fws(p))
            .map_err(|e| KeyError::Import(e.to_string()))?;
        if der.is_empty() {
            return Err(KeyError::Import("empty key".into()));
        }
        let (key, bits) = match keytype {
            KeyType::Rsa => {
                let k = rsa::RsaPublicKey::from_public_key_der(&der)
                    .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
                    .map_err(|e| KeyError::Import(e.to_string()))?;
                let bits = k.n().bits();
                (PublicKey::Rsa(k), bits)
            }
            KeyType::Ed25519 => {
                use ed25519_dalek::pkcs8::DecodePublicKey as _;
                let k = match <[u8; 32]>::try_from(der.as_slice()) {
                    Ok(raw) => ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|e| KeyError::Import(e.to_string()))?,
                    Err(_) => ed25519_dalek::VerifyingKey::from_public_key_der(&der)
                        .map_err(|e| KeyError::Import(e.to_string()))?,
                };
                (PublicKey::Ed25519(k), 256)
            }
        };
        let flags = get("t").unwrap_or("");
        Ok(KeyRecord {
            key,
            bits,
            hashes: get("h")
                .map(|h| h.split(':').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default(),
            keytype,
            notes: get("n").unwrap_or("").to_string(),
            testing: flags.split(':').any(|f| f.trim() == "y"),
            nosubdomains: flags.split(':').any(|f| f.trim() == "s"),
            srvtype: get("s").unwrap_or("*").to_string(),
            granularity: get("g").unwrap_or("*").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_b_not_bh() {
        let raw = b"DKIM-Signature: v=1; bh=abc; b=\r\n\tdef+gh=\r\n";
        assert_eq!(
            strip_b_value(raw),
            b"DKIM-Signature: v=1; bh=abc; b=\r\n".to_vec()
        );
        let raw = b"DKIM-Signature: b=xyz; d=a\r\n";
        assert_eq!(strip_b_value(raw), b"DKIM-Signature: b=; d=a\r\n".to_vec());
    }

    #[test]
    fn parses_tags() {
        let s = Signature::parse(
            b"DKIM-Signature: v=1; a=rsa-sha1; c=relaxed; d=test.ex; h=from\r\n\t:to; s=sel; bh=AAAA; b=AA\r\n BB\r\n",
        );
        assert_eq!(s.version, Some(1));
        assert_eq!(s.hash, Some(Hash::Sha1));
        assert!(s.relaxed_headers && !s.relaxed_body);
        assert_eq!(s.headernames.as_deref(), Some("from:to"));
        assert_eq!(s.bodyhash, vec![0, 0, 0]);
        assert_eq!(s.sighash.as_deref(), Some(&[0, 0, 65][..]));
    }
}
