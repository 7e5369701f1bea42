//! Hash operators (`md5`, `sha1`, `sha256`, `sha2_N`, `sha3_N`) and the
//! `hmac` item.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::{Digest, Sha1};

use super::{syntax, ExpandError};

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// `${md5:}` (lower-case hex), `${sha1:}`, `${sha256:}`, `${sha2[_N]:}`,
/// `${sha3[_N]:}` (upper-case hex, as Exim prints them). None: not a hash
/// operator.
pub(super) fn hash_operator(name: &str, data: &[u8]) -> Option<Result<String, ExpandError>> {
    let bits = |prefix: &str| -> Option<Option<&str>> {
        if name == prefix {
            Some(None)
        } else {
            name.strip_prefix(prefix)?.strip_prefix('_').map(Some)
        }
    };
    let r = match name {
        "md5" => Ok(hex(&Md5::digest(data), false)),
        "sha1" => Ok(hex(&Sha1::digest(data), true)),
        "sha256" => Ok(hex(&sha2::Sha256::digest(data), true)),
        _ => {
            if let Some(n) = bits("sha2") {
                match n.unwrap_or("256") {
                    "256" => Ok(hex(&sha2::Sha256::digest(data), true)),
                    "384" => Ok(hex(&sha2::Sha384::digest(data), true)),
                    "512" => Ok(hex(&sha2::Sha512::digest(data), true)),
                    _ => Err(syntax(format!("sha2 hash with bad size \"{name}\""))),
                }
            } else if let Some(n) = bits("sha3") {
                match n.unwrap_or("256") {
                    "224" => Ok(hex(&sha3::Sha3_224::digest(data), true)),
                    "256" => Ok(hex(&sha3::Sha3_256::digest(data), true)),
                    "384" => Ok(hex(&sha3::Sha3_384::digest(data), true)),
                    "512" => Ok(hex(&sha3::Sha3_512::digest(data), true)),
                    _ => Err(syntax(format!("sha3 hash with bad size \"{name}\""))),
                }
            } else {
                return None;
            }
        }
    };
    Some(r)
}

/// `${hmac{md5|sha1}{secret}{data}}`: lower-case hex.
pub(super) fn hmac(algo: &str, key: &[u8], data: &[u8]) -> Result<String, ExpandError> {
    let mac = match algo {
        "md5" => {
            let mut m = Hmac::<Md5>::new_from_slice(key).map_err(|e| syntax(e.to_string()))?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        "sha1" => {
            let mut m = Hmac::<Sha1>::new_from_slice(key).map_err(|e| syntax(e.to_string()))?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            return Err(syntax(format!(
                "hmac algorithm \"{algo}\" is not recognised"
            )))
        }
    };
    Ok(hex(&mac, false))
}

/// MD5 of `data` in upper-case hex (Sieve's vacation file names).
pub fn md5_upper_hex(data: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(data);
    hex(&h.finalize(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let h = |n: &str, d: &str| hash_operator(n, d.as_bytes()).unwrap().unwrap();
        assert_eq!(h("sha1", ""), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
        assert_eq!(
            h("md5", "the quick brown fox jumps over the lazy dog"),
            "77add1d5f41223d5582fca736a5cb335"
        );
        assert_eq!(
            h("sha2_256", "abc"),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
        assert!(hash_operator("lc", b"x").is_none());
        assert_eq!(
            hmac(
                "md5",
                b"somesecret",
                b"mail.example.com 2002-10-17 11:30:59"
            )
            .unwrap(),
            "dd97e3ba5d1a61b5006108f8c8252953"
        );
    }
}
