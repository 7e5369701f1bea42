//! DKIM signing in the smtp transport: Exim's `dkim_*` options expanded
//! (one signature per domain and selector), the signatures put on top of
//! the header section, and what the `=>` line says about them.

use crate::ctx::Ctx;
use crate::deliver::record::local_error;
use crate::dkim::sign::{self, PrivateKey, SignSpec};
use crate::dkim::sig::Hash;
use crate::errno::Errno;
use crate::settings::DkimSignSpec;
use crate::vars::Vars;
use crate::deliver::smtp::SmtpError;

fn expand(name: &str, value: &Option<String>, vars: &Vars) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) => match oxim_conf::expand(v, vars) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_forced_fail() => Ok(None),
            Err(e) => Err(format!("failed to expand {name}: {e}")),
        },
    }
}

fn truthy(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// The header section with the DKIM-Signature fields on top (LF line
/// ends), and `domain:selector` of each signature made (`DKIM=`).
pub fn sign_message(
    ctx: &Ctx,
    spec: &DkimSignSpec,
    vars: &Vars,
    headers: &[u8],
    body: &[u8],
    id: &str,
) -> Result<(Vec<u8>, Option<String>), SmtpError> {
    if spec.private_key.is_none() || spec.domain.is_none() {
        return Ok((headers.to_vec(), None));
    }
    let mut v = vars.clone();
    let strict = expand("dkim_strict", &spec.strict, &v)
        .ok()
        .flatten()
        .is_some_and(|s| truthy(&s));
    match sign_all(spec, &mut v, headers, body) {
        Ok((sigs, used)) => {
            let mut out = sigs.replace("\r\n", "\n").into_bytes();
            out.extend_from_slice(headers);
            Ok((out, (!used.is_empty()).then(|| used.join(":"))))
        }
        Err(why) => {
            ctx.log_text(Some(id), &why);
            if strict {
                ctx.log_text(
                    Some(id),
                    "DKIM: message could not be signed, and dkim_strict is set. Deferring message delivery.",
                );
                return Err(local_error(Errno::Unknown, why));
            }
            Ok((headers.to_vec(), None))
        }
    }
}

fn sign_all(
    spec: &DkimSignSpec,
    v: &mut Vars,
    headers: &[u8],
    body: &[u8],
) -> Result<(String, Vec<String>), String> {
    let mut message = headers.to_vec();
    message.push(b'\n');
    message.extend_from_slice(body);
    let domains = expand("dkim_domain", &spec.domain, v)?.unwrap_or_default();
    let mut out = String::new();
    let mut used = Vec::new();
    for domain in oxim_conf::lists::list_items(&domains) {
        let domain = domain.trim().to_ascii_lowercase();
        if domain.is_empty() {
            continue;
        }
        v.set("dkim_domain", domain.clone());
        let selectors = expand("dkim_selector", &spec.selector, v)?.unwrap_or_default();
        for selector in oxim_conf::lists::list_items(&selectors) {
            let selector = selector.trim().to_string();
            if selector.is_empty() {
                continue;
            }
            v.set("dkim_selector", selector.clone());
            let key_text = expand("dkim_private_key", &spec.private_key, v)?.unwrap_or_default();
            let key_text = key_text.trim();
            if key_text.is_empty() || key_text == "0" || key_text.eq_ignore_ascii_case("false") {
                continue;
            }
            let pem = if key_text.starts_with('/') {
                std::fs::read_to_string(key_text)
                    .map_err(|e| format!("DKIM: cannot read private key {key_text}: {e}"))?
            } else {
                key_text.to_string()
            };
            let key = PrivateKey::from_pem(&pem).map_err(|e| format!("DKIM: {e}"))?;
            let canon = expand("dkim_canon", &spec.canon, v)?.unwrap_or_else(|| "relaxed".into());
            let relaxed = canon.trim() != "simple";
            let hash_name = expand("dkim_hash", &spec.hash, v)?.unwrap_or_else(|| "sha256".into());
            let hash = Hash::parse(&hash_name)
                .ok_or_else(|| format!("DKIM: unrecognised hash \"{hash_name}\""))?;
            let sign_headers = expand("dkim_sign_headers", &spec.sign_headers, v)?
                .unwrap_or_else(|| sign::DEFAULT_SIGN_HEADERS.to_string());
            let identity = expand("dkim_identity", &spec.identity, v)?.filter(|s| !s.is_empty());
            let timestamps = match expand("dkim_timestamps", &spec.timestamps, v)? {
                Some(t) if !t.trim().is_empty() => Some(t.trim().parse::<u64>().map_err(|_| {
                    format!("dkim_timestamps: \"{t}\" is not a number")
                })?),
                _ => None,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let s = SignSpec {
                domain: &domain,
                selector: &selector,
                key: &key,
                relaxed_headers: relaxed,
                relaxed_body: relaxed,
                hash,
                sign_headers: &sign_headers,
                identity: identity.as_deref(),
                timestamps,
                now,
            };
            out.push_str(&sign::sign(&message, &s)?);
            used.push(format!("{domain}:{selector}"));
        }
    }
    Ok((out, used))
}
