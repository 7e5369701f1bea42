//! DKIM signing: which header fields a signature covers (Exim's
//! `dkim_sign_headers` rules), the DKIM-Signature field in Exim's layout,
//! and the signature itself.

use base64::Engine;

use super::canon::{self, Split};
use super::sig::{algo_name, strip_b_value, Hash, KeyType};

/// Exim's default `dkim_sign_headers`.
pub const DEFAULT_SIGN_HEADERS: &str = "From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:\
MIME-Version:Content-Type:Content-Transfer-Encoding:Content-ID:Content-Description:\
Resent-Date:Resent-From:Resent-Sender:Resent-To:Resent-Cc:Resent-Message-ID:\
In-Reply-To:References:List-Id:List-Help:List-Unsubscribe:List-Subscribe:List-Post:\
List-Owner:List-Archive";

/// The built-in macros of DKIM signing: `_HAVE_DKIM`, and the default
/// header list as it is (`_DKIM_SIGN_HEADERS`) and with every name
/// oversigned (`_DKIM_OVERSIGN_HEADERS`).
pub fn builtin_macros() -> Vec<(String, String)> {
    let oversign: Vec<String> = DEFAULT_SIGN_HEADERS
        .split(':')
        .map(|h| format!("+{h}"))
        .collect();
    vec![
        ("_HAVE_DKIM".into(), "y".into()),
        ("_DKIM_SIGN_HEADERS".into(), DEFAULT_SIGN_HEADERS.into()),
        ("_DKIM_OVERSIGN_HEADERS".into(), oversign.join(":")),
    ]
}

/// A private key (`dkim_private_key`).
pub enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl PrivateKey {
    /// From PEM text: PKCS#1 or PKCS#8 RSA, PKCS#8 Ed25519.
    pub fn from_pem(text: &str) -> Result<PrivateKey, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs1_pem(text) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map(|k| PrivateKey::Ed25519(Box::new(k)))
            .map_err(|_| "private key not recognised (PEM RSA or Ed25519 expected)".to_string())
    }

    fn keytype(&self) -> KeyType {
        match self {
            PrivateKey::Rsa(_) => KeyType::Rsa,
            PrivateKey::Ed25519(_) => KeyType::Ed25519,
        }
    }

    fn sig_len(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        match self {
            PrivateKey::Rsa(k) => k.size(),
            PrivateKey::Ed25519(_) => 64,
        }
    }

    fn sign(&self, hash: Hash, data: &[u8]) -> Result<Vec<u8>, String> {
        let digest = hash.digest(data);
        match self {
            PrivateKey::Rsa(k) => {
                let scheme = match hash {
                    Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                };
                k.sign(scheme, &digest).map_err(|e| e.to_string())
            }
            PrivateKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(&digest).to_bytes().to_vec())
            }
        }
    }
}

/// One signature to make.
pub struct SignSpec<'a> {
    pub domain: &'a str,
    pub selector: &'a str,
    pub key: &'a PrivateKey,
    pub relaxed_headers: bool,
    pub relaxed_body: bool,
    pub hash: Hash,
    /// `dkim_sign_headers` (colon list; `=name` every instance, `+name`
    /// every instance and one more).
    pub sign_headers: &'a str,
    pub identity: Option<&'a str>,
    /// `dkim_timestamps`: `t=` (now) and, when nonzero, `x=` now + this.
    pub timestamps: Option<u64>,
    pub now: u64,
}

/// The `h=` list for a message: fields matched bottom-up against the list
/// (a plain name once, `=`/`+` names every time), then the plain names not
/// found and the `+` names, as written.
pub fn header_names(split: &Split, list: &str) -> Vec<String> {
    let items: Vec<(char, String)> = list
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.chars().next() {
            Some(c @ ('=' | '+')) => (c, s[1..].to_string()),
            _ => (' ', s.to_string()),
        })
        .collect();
    let mut used = vec![false; items.len()];
    let mut out = Vec::new();
    for f in split.fields.iter().rev() {
        let hit = items.iter().enumerate().position(|(i, (kind, name))| {
            name.eq_ignore_ascii_case(&f.name) && (*kind != ' ' || !used[i])
        });
        if let Some(i) = hit {
            if items[i].0 == ' ' {
                used[i] = true;
            }
            out.push(f.name.clone());
        }
    }
    for (i, (kind, name)) in items.iter().enumerate() {
        if (*kind == ' ' && !used[i]) || *kind == '+' {
            out.push(name.clone());
        }
    }
    out
}

/// Appends tags to a header field with Exim's folding: lines up to 78
/// columns, a tag moved whole to a new line when it fits there.
struct Folder {
    text: String,
    col: usize,
}

impl Folder {
    fn wrap(&mut self) {
        self.text.push_str("\r\n\t");
        self.col = 1;
    }

    /// Add `pad` (";" or nothing), then `intro` and `payload`.
    fn add(&mut self, pad: Option<char>, intro: &str, payload: &str) {
        let mut pad = pad;
        let mut padded = false;
        if let Some(p) = pad {
            if self.col < 78 {
                self.text.push(p);
                self.col += 1;
                pad = None;
                padded = true;
            } else {
                self.wrap();
            }
        }
        let len = if pad.is_some() {
            2
        } else {
            usize::from(padded)
        } + intro.len()
            + payload.len();
        if len <= 77 && self.col + len > 78 {
            self.wrap();
            padded = false;
        }
        if let Some(p) = pad {
            self.text.push(p);
            self.text.push(' ');
            self.col += 2;
        } else if padded && self.col < 78 {
            self.text.push(' ');
            self.col += 1;
        }
        if !intro.is_empty() {
            self.add(None, "", intro);
        }
        let mut rest = payload;
        while !rest.is_empty() {
            if self.col >= 78 {
                self.wrap();
            }
            let n = rest.len().min(78 - self.col);
            let (a, b) = rest.split_at(n);
            self.text.push_str(a);
            self.col += n;
            rest = b;
        }
    }
}

fn layout(spec: &SignSpec<'_>, h: &[String], bh: &str, b: &str) -> String {
    let mut f = Folder {
        text: "DKIM-Signature: v=1".to_string(),
        col: 19,
    };
    let canon = |r: bool| if r { "relaxed" } else { "simple" };
    f.add(
        Some(';'),
        "a=",
        &algo_name(Some(spec.key.keytype()), Some(spec.hash)),
    );
    f.add(Some(';'), "q=", "dns/txt");
    f.add(
        Some(';'),
        "c=",
        &format!(
            "{}/{}",
            canon(spec.relaxed_headers),
            canon(spec.relaxed_body)
        ),
    );
    f.add(Some(';'), "d=", spec.domain);
    f.add(Some(';'), "s=", spec.selector);
    for (i, name) in h.iter().enumerate() {
        if i == 0 {
            f.add(Some(';'), "h=", name);
        } else {
            f.add(None, "", ":");
            f.add(None, "", name);
        }
    }
    f.add(Some(';'), "bh=", bh);
    if let Some(i) = spec.identity {
        f.add(Some(';'), "i=", i);
    }
    if let Some(x) = spec.timestamps {
        f.add(Some(';'), "t=", &spec.now.to_string());
        if x > 0 {
            f.add(Some(';'), "x=", &(spec.now + x).to_string());
        }
    }
    f.add(Some(';'), "b=", b);
    f.add(None, ";", "");
    f.text.push_str("\r\n");
    f.text
}

/// Sign a message (header section and body, LF or CRLF line ends): the
/// DKIM-Signature field with CRLF line ends.
pub fn sign(message: &[u8], spec: &SignSpec<'_>) -> Result<String, String> {
    let split = canon::split(message);
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = canon::body(&split.body, spec.relaxed_body);
    let bh = b64.encode(spec.hash.digest(&body));
    let h = header_names(&split, spec.sign_headers);
    // The field as a verifier rebuilds it: laid out with a signature of
    // the right size, then its b= value removed.
    let dummy = b64.encode(vec![0u8; spec.key.sig_len()]);
    let unsigned = strip_b_value(layout(spec, &h, &bh, &dummy).as_bytes());
    let sig = super::sig::Signature {
        headernames: Some(h.join(":")),
        relaxed_headers: spec.relaxed_headers,
        raw: unsigned.clone(),
        ..Default::default()
    };
    let data = super::verify::signed_data(&split, &sig);
    let b = b64.encode(spec.key.sign(spec.hash, &data)?);
    Ok(layout(spec, &h, &bh, &b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::verify::{finish, prepare, KeyLookup, Policy, Status};

    fn names(msg: &str, list: &str) -> String {
        header_names(&canon::split(msg.as_bytes()), list).join(":")
    }

    #[test]
    fn h_list_follows_exims_rules() {
        let msg = "From: a\nX-Mine: 1\nX-mine: 2\nSubject: s\n\nbody\n";
        // A plain name covers one instance (the last), then is used up;
        // names not in the message are listed anyway.
        assert_eq!(names(msg, "From:To"), "From:To");
        assert_eq!(names(msg, "X-Mine"), "X-mine");
        // `=` every instance, nothing more; `+` every instance and one more.
        assert_eq!(names(msg, "=X-Mine"), "X-mine:X-Mine");
        assert_eq!(names(msg, "+X-Mine:From"), "X-mine:X-Mine:From:X-Mine");
        // Bottom-up, in the message's own spelling.
        assert_eq!(names(msg, "subject:from"), "Subject:From");
    }

    fn ed_key() -> PrivateKey {
        PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])))
    }

    fn verify(msg: &[u8], key: &PrivateKey) -> Vec<Status> {
        let PrivateKey::Ed25519(k) = key else {
            unreachable!()
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let record = format!(
            "v=DKIM1; k=ed25519; p={}",
            b64.encode(k.verifying_key().as_bytes())
        );
        let policy = Policy::new("sha256", "ed25519:rsa", "rsa=1024 ed25519=250");
        let mut v = prepare(msg, &policy);
        for i in 0..v.sigs.len() {
            finish(&mut v, i, KeyLookup::Found(vec![record.clone()]), &policy);
        }
        v.sigs.iter().map(|s| s.status).collect()
    }

    #[test]
    fn signatures_verify_in_both_canonicalisations() {
        let key = ed_key();
        let msg = b"From: Someone <someone@example.com>\nSubject:  spaced\tsubject \n\
To: x@example.org\n\nline  one \n\n\n"
            .to_vec();
        for relaxed in [true, false] {
            let spec = SignSpec {
                domain: "example.com",
                selector: "a-rather-long-selector-name-to-push-the-folding-about",
                key: &key,
                relaxed_headers: relaxed,
                relaxed_body: relaxed,
                hash: Hash::Sha256,
                sign_headers: DEFAULT_SIGN_HEADERS,
                identity: Some("@example.com"),
                timestamps: Some(3600),
                now: 1_700_000_000,
            };
            let field = sign(&msg, &spec).unwrap();
            assert!(field.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; q=dns/txt;"));
            assert!(field.contains("t=1700000000; x=1700003600;"), "{field}");
            assert!(field
                .split("\r\n")
                .all(|l| l.len() <= 78 || !l.contains(' ')));
            let mut signed = field.replace("\r\n", "\n").into_bytes();
            signed.extend_from_slice(&msg);
            assert_eq!(verify(&signed, &key), vec![Status::Pass], "{field}");
            // A changed body breaks it.
            let mut bad = signed.clone();
            bad.extend_from_slice(b"more\n");
            assert_ne!(verify(&bad, &key), vec![Status::Pass]);
        }
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert!(PrivateKey::from_pem("not a key").is_err());
        assert!(PrivateKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
    }
}
