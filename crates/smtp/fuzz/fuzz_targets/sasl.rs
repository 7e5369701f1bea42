//! Arbitrary SASL data (AUTH initial responses and prompt answers, MAIL
//! AUTH= values): no panics; what decodes re-encodes to an equivalent
//! string; PLAIN items never contain a NUL; xtext round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxim_smtp::sasl;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(bytes) = sasl::b64_decode(&text) {
        assert_eq!(
            sasl::b64_decode(&sasl::b64_encode(&bytes)).as_deref(),
            Some(&bytes[..])
        );
        for item in sasl::split_at_nul(&bytes) {
            assert!(!item.contains('\0'));
        }
        let _ = sasl::cram_md5_split(&bytes);
    }
    if let Some(plain) = sasl::xtext_decode(&text) {
        assert_eq!(
            sasl::xtext_decode(&sasl::xtext_encode(&plain)).as_deref(),
            Some(&plain[..])
        );
    }
    let _ = sasl::unescape_caret(&text);
    let _ = sasl::cram_md5_digest(data, data);
});
