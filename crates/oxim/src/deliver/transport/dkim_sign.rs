//! DKIM signing in the smtp transport: Exim's `dkim_*` options expanded
//! (one signature per domain and selector), the signatures put on top of
//! the header section, and what the `=>` line says about them.

use crate::ctx::Ctx;
use crate::deliver::smtp::SmtpError;
use crate::dkim::sig::Hash;
use crate::dkim::sign::{self, PrivateKey, SignSpec};
use crate::errno::Errno;
use crate::settings::DkimSignSpec;
use crate::vars::Vars;

/// Why no signature could be made: the text, and whether Exim also puts
/// it on the panic log (expansion failures).
struct Failure {
    text: String,
    panic: bool,
}

fn failure(text: impl Into<String>) -> Failure {
    Failure {
        text: text.into(),
        panic: false,
    }
}

/// Expand an option; a failure (forced or not) is an error, as in Exim.
fn expand(name: &str, value: &str, vars: &Vars) -> Result<String, Failure> {
    oxim_conf::expand(value, vars).map_err(|e| Failure {
        text: format!("failed to expand {name}: {e}"),
        panic: true,
    })
}

/// The header section with the DKIM-Signature fields on top (LF line
/// ends), and `domain:selector[:domain:selector...]` of the signatures
/// made (` DKIM=` on the `=>` line). With no `dkim_private_key` or
/// `dkim_domain`, the headers as they are.
pub fn sign_message(
    ctx: &Ctx,
    tname: &str,
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
    match sign_all(ctx, tname, id, spec, &mut v, headers, body) {
        Ok((sigs, used)) => {
            let mut out = sigs.replace("\r\n", "\n").into_bytes();
            out.extend_from_slice(headers);
            Ok((out, (!used.is_empty()).then(|| used.join(":"))))
        }
        Err(why) => {
            ctx.log(&oxim_log::LogRecord::Text {
                id: Some(id),
                text: &why.text,
                dest: oxim_log::Dest {
                    main: true,
                    reject: false,
                    panic: why.panic,
                },
            });
            // dkim_strict: "1" or "true" defers; anything else (and a
            // failed expansion of it) sends the message unsigned.
            let strict = spec
                .strict
                .as_deref()
                .and_then(|s| oxim_conf::expand(s, vars).ok())
                .is_some_and(|s| s == "1" || s.eq_ignore_ascii_case("true"));
            if strict {
                ctx.log_text(
                    Some(id),
                    "DKIM: message could not be signed, and dkim_strict is set. Deferring message delivery.",
                );
                return Err(SmtpError {
                    errno: Errno::Os(libc::EACCES),
                    errno_text: Some("Permission denied".into()),
                    message: Some(why.text),
                    with_host: false,
                });
            }
            Ok((headers.to_vec(), None))
        }
    }
}

fn sign_all(
    ctx: &Ctx,
    tname: &str,
    id: &str,
    spec: &DkimSignSpec,
    v: &mut Vars,
    headers: &[u8],
    body: &[u8],
) -> Result<(String, Vec<String>), Failure> {
    let mut message = headers.to_vec();
    message.push(b'\n');
    message.extend_from_slice(body);
    let domains = expand("dkim_domain", spec.domain.as_deref().unwrap_or(""), v)?;
    let mut out = String::new();
    let mut used = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for domain in oxim_conf::lists::list_items(&domains) {
        let domain = domain.to_ascii_lowercase();
        // Each domain signs once, however often the list names it.
        if domain.is_empty() || seen.contains(&domain) {
            continue;
        }
        seen.push(domain.clone());
        v.set("dkim_domain", domain.clone());
        let selectors = expand("dkim_selector", spec.selector.as_deref().unwrap_or(""), v)?;
        for selector in oxim_conf::lists::list_items(&selectors) {
            v.set("dkim_selector", selector.clone());
            let relaxed = match &spec.canon {
                None => true,
                Some(c) => match expand("dkim_canon", c, v)?.as_str() {
                    "relaxed" => true,
                    "simple" => false,
                    other => {
                        ctx.log_text(
                            Some(id),
                            &format!(
                                "DKIM: unknown canonicalization method '{other}', defaulting to 'relaxed'.\n"
                            ),
                        );
                        true
                    }
                },
            };
            let sign_headers = match &spec.sign_headers {
                Some(h) => expand("dkim_sign_header", h, v)?,
                None => sign::DEFAULT_SIGN_HEADERS.to_string(),
            };
            let key_text = expand(
                "dkim_private_key",
                spec.private_key.as_deref().unwrap_or(""),
                v,
            )?;
            if key_text.is_empty() || key_text == "0" || key_text == "false" {
                // Not signing with this selector is no error.
                continue;
            }
            let pem = if key_text.starts_with('/') {
                std::fs::read_to_string(&key_text).map_err(|e| {
                    failure(format!(
                        "DKIM: {tname} transport: cannot read dkim_private_key file {key_text}: {}",
                        crate::errno::io_text(&e)
                    ))
                })?
            } else {
                key_text
            };
            let hash_name = expand("dkim_hash", spec.hash.as_deref().unwrap_or("sha256"), v)?;
            let identity = match &spec.identity {
                Some(i) => Some(expand("dkim_identity", i, v)?).filter(|s| !s.is_empty()),
                None => None,
            };
            let timestamps = match &spec.timestamps {
                Some(t) => Some(leading_number(&expand("dkim_timestamps", t, v)?)),
                None => None,
            };
            let key = PrivateKey::from_pem(&pem).map_err(|e| {
                failure(format!(
                    "DKIM: {tname} transport: dkim_private_key for {domain}:{selector} unusable: {e}"
                ))
            })?;
            let hash = Hash::parse(&hash_name).ok_or_else(|| {
                failure(format!(
                    "DKIM: {tname} transport: unknown dkim_hash \"{hash_name}\""
                ))
            })?;
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
            out.push_str(
                &sign::sign(&message, &s)
                    .map_err(|e| failure(format!("DKIM: signing failed: {e}")))?,
            );
            used.push(format!("{domain}:{selector}"));
        }
    }
    Ok((out, used))
}

/// `strtoul`'s reading of `dkim_timestamps`: the leading digits, 0 if none.
fn leading_number(s: &str) -> u64 {
    let s = s.trim_start();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().unwrap_or(0)
}
