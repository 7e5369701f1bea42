//! DKIM verification in two steps without I/O: [`prepare`] parses the
//! signatures and checks what needs no key (tags, body hash); the caller
//! looks up each key record and hands it to [`finish`].

use super::canon::{self, Split};
use super::sig::{Hash, KeyError, KeyRecord, PublicKey, Signature};

/// What the verifier lets through: `dkim_verify_hashes`,
/// `dkim_verify_keytypes`, `dkim_verify_min_keysizes`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub hashes: Vec<String>,
    pub keytypes: Vec<String>,
    pub min_keysizes: Vec<(String, usize)>,
}

impl Policy {
    /// From the option values (colon lists; keysizes as `type=bits` words).
    pub fn new(hashes: &str, keytypes: &str, min_keysizes: &str) -> Policy {
        let list = |s: &str| {
            s.split(':')
                .map(|x| x.trim().to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        };
        Policy {
            hashes: list(hashes),
            keytypes: list(keytypes),
            min_keysizes: min_keysizes
                .split_whitespace()
                .filter_map(|w| {
                    let (k, v) = w.split_once('=')?;
                    Some((k.to_ascii_lowercase(), v.parse().ok()?))
                })
                .collect(),
        }
    }
}

/// Why a signature is invalid or failed (Exim's `verify_ext_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    PubkeyUnavailable,
    PubkeyDnsRecord,
    PubkeyImport,
    SignatureError,
    DkimVersion,
    Body,
    Message,
    KeySize,
    HashNotAllowed,
}

/// The verdict on one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not checked yet (waiting for its key).
    None,
    Invalid(Why),
    Fail(Why),
    Pass,
}

impl Status {
    /// `$dkim_verify_status`.
    pub fn name(self) -> &'static str {
        match self {
            Status::None => "none",
            Status::Invalid(_) => "invalid",
            Status::Fail(_) => "fail",
            Status::Pass => "pass",
        }
    }

    /// `$dkim_verify_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Invalid(Why::PubkeyUnavailable) => "pubkey_unavailable",
            Status::Invalid(Why::PubkeyDnsRecord) => "pubkey_dns_syntax",
            Status::Invalid(Why::PubkeyImport) => "pubkey_der_syntax",
            Status::Fail(Why::KeySize) => "pubkey_too_short",
            Status::Fail(Why::Body) => "bodyhash_mismatch",
            Status::Fail(Why::Message) => "signature_incorrect",
            _ => "",
        }
    }
}

/// One signature with its verdict.
#[derive(Debug, Clone)]
pub struct SigResult {
    pub sig: Signature,
    pub status: Status,
    pub key: Option<KeyRecord>,
    /// Status and reason an ACL set (`set dkim_verify_status = ...`),
    /// which replace the verifier's in logs and results.
    pub policy: Option<(String, String)>,
    /// The key record could not be imported (logged as such).
    pub key_import_failed: bool,
}

impl SigResult {
    /// The `_domainkey` name to look up, when the signature needs its key.
    pub fn key_name(&self) -> Option<String> {
        if self.status != Status::None {
            return None;
        }
        Some(format!(
            "{}._domainkey.{}",
            self.sig.selector.as_deref().unwrap_or(""),
            self.sig.domain.as_deref().unwrap_or("")
        ))
    }

    /// Status as the ACLs and logs see it.
    pub fn status_name(&self) -> String {
        match &self.policy {
            Some((s, _)) => s.clone(),
            None => self.status.name().to_string(),
        }
    }

    pub fn reason(&self) -> String {
        match &self.policy {
            Some((_, r)) => r.clone(),
            None => self.status.reason().to_string(),
        }
    }

    /// The key's size in bits (0 when no key was fetched).
    pub fn key_bits(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.bits)
    }

    /// `b=` in the log: the size of the signature in bits.
    pub fn sig_bits(&self) -> usize {
        self.sig.sighash.as_ref().map_or(0, |b| b.len() * 8)
    }
}

/// The message and its signatures, in the order Exim handles them: by
/// key type in `dkim_verify_keytypes` order, then by hash in
/// `dkim_verify_hashes` order, then as they stand in the header section.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub split: Split,
    pub sigs: Vec<SigResult>,
}

/// Parse and pre-check the signatures of a message.
pub fn prepare(msg: &[u8], policy: &Policy) -> Verification {
    let split = canon::split(msg);
    let mut sigs = Vec::new();
    for f in split
        .fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("DKIM-Signature"))
    {
        let sig = Signature::parse(&f.raw);
        if let Some(h) = sig.hash {
            if !policy.hashes.iter().any(|x| x == h.name()) {
                continue;
            }
        }
        if let Some(k) = sig.keytype {
            if !policy.keytypes.is_empty() && !policy.keytypes.iter().any(|x| x == k.name()) {
                continue;
            }
        }
        let status = precheck(&sig, &split);
        sigs.push(SigResult {
            sig,
            status,
            key: None,
            policy: None,
            key_import_failed: false,
        });
    }
    let rank = |list: &[String], name: Option<&str>| {
        name.and_then(|n| list.iter().position(|x| x == n))
            .unwrap_or(usize::MAX)
    };
    sigs.sort_by_key(|r| {
        (
            rank(&policy.keytypes, r.sig.keytype.map(|k| k.name())),
            rank(&policy.hashes, r.sig.hash.map(|h| h.name())),
        )
    });
    Verification { split, sigs }
}

fn precheck(sig: &Signature, split: &Split) -> Status {
    let nonempty = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    if !(nonempty(&sig.domain)
        && nonempty(&sig.selector)
        && nonempty(&sig.headernames)
        && sig.sighash.is_some()
        && sig.keytype.is_some()
        && sig.hash.is_some()
        && sig.canon_ok
        && sig.version.is_some())
    {
        return Status::Invalid(Why::SignatureError);
    }
    if sig.version != Some(1) {
        return Status::Invalid(Why::DkimVersion);
    }
    let mut body = canon::body(&split.body, sig.relaxed_body);
    if let Some(l) = sig.bodylength {
        body.truncate(usize::try_from(l).unwrap_or(usize::MAX));
    }
    let hash = sig.hash.expect("checked");
    if hash.digest(&body) != sig.bodyhash {
        return Status::Fail(Why::Body);
    }
    Status::None
}

/// The key lookup's outcome for [`finish`].
pub enum KeyLookup {
    /// The TXT records found.
    Found(Vec<String>),
    /// No such record, or the lookup failed.
    Unavailable,
}

/// Verify one pre-checked signature with its key record.
pub fn finish(v: &mut Verification, i: usize, lookup: KeyLookup, policy: &Policy) {
    let split = &v.split;
    let r = &mut v.sigs[i];
    if r.status != Status::None {
        return;
    }
    let records = match lookup {
        KeyLookup::Found(r) => r,
        KeyLookup::Unavailable => {
            r.status = Status::Invalid(Why::PubkeyUnavailable);
            return;
        }
    };
    // Of several TXT records, the DKIM one.
    let text = records
        .iter()
        .find(|t| t.trim_start().starts_with("v=DKIM1"))
        .or_else(|| records.first())
        .cloned()
        .unwrap_or_default();
    let key = match KeyRecord::parse(&text) {
        Ok(k) => k,
        Err(e) => {
            r.key_import_failed = true;
            r.status = Status::Invalid(match e {
                KeyError::DnsRecord => Why::PubkeyDnsRecord,
                KeyError::Import(_) => Why::PubkeyImport,
            });
            return;
        }
    };
    let sig = &r.sig;
    let hash = sig.hash.expect("prechecked");
    if !key.hashes.is_empty() && !key.hashes.iter().any(|h| h == hash.name()) {
        r.key = Some(key);
        r.status = Status::Fail(Why::HashNotAllowed);
        return;
    }
    let data = signed_data(split, sig);
    let ok = sig.keytype == Some(key.keytype)
        && verify_bytes(&key.key, hash, &data, sig.sighash.as_deref().unwrap_or(&[]));
    let min = policy
        .min_keysizes
        .iter()
        .find(|(k, _)| k == key.keytype.name())
        .map_or(0, |(_, b)| *b);
    let bits = key.bits;
    r.key = Some(key);
    r.status = if !ok {
        Status::Fail(Why::Message)
    } else if bits < min {
        Status::Fail(Why::KeySize)
    } else {
        Status::Pass
    };
}

/// The canonicalised header fields a signature covers, then the signature
/// field itself with its `b=` value removed and no final CRLF.
pub fn signed_data(split: &Split, sig: &Signature) -> Vec<u8> {
    let relaxed = sig.relaxed_headers;
    let mut used = vec![false; split.fields.len()];
    let mut data = Vec::new();
    for name in sig.headernames.as_deref().unwrap_or("").split(':') {
        let name = name.trim();
        if let Some(i) = (0..split.fields.len())
            .rev()
            .find(|&i| !used[i] && split.fields[i].name.eq_ignore_ascii_case(name))
        {
            used[i] = true;
            data.extend(canon::header(&split.fields[i].raw, relaxed));
        }
    }
    let mut own = canon::header(&sig.raw_without_b(), relaxed);
    if own.ends_with(b"\r\n") {
        own.truncate(own.len() - 2);
    }
    data.extend(own);
    data
}

fn verify_bytes(key: &PublicKey, hash: Hash, data: &[u8], sig: &[u8]) -> bool {
    let digest = hash.digest(data);
    match key {
        PublicKey::Rsa(k) => {
            let scheme = match hash {
                Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            k.verify(scheme, &digest, sig).is_ok()
        }
        PublicKey::Ed25519(k) => {
            let Ok(s) = ed25519_dalek::Signature::from_slice(sig) else {
                return false;
            };
            k.verify_strict(&digest, &s).is_ok()
        }
    }
}
