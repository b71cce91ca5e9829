//! Base64 as the simulator writes and reads it, on the `base64` crate. It writes
//! base64url without padding (JWT segments, access tokens, skiptokens) and reads what
//! clients send leniently: either alphabet, even mixed, padding optional (HTTP Basic
//! credentials are standard base64, JWT segments base64url, and `x5t` comes in both,
//! graph-api.md §8.3).

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};

/// Reads the standard alphabet with the padding already stripped; non-zero trailing
/// bits are tolerated, as a lenient server does.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes with the URL-safe alphabet and no padding.
pub(crate) fn encode_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes either alphabet, padding optional. `None` on any invalid input.
pub(crate) fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    // The URL-safe alphabet differs only in `-` and `_`; mapping them lets one engine
    // read both, and strings that mix them.
    let standard: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(decode_lenient(&encode_url(&data)).unwrap(), data);
        }
        assert_eq!(decode_lenient("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode_lenient("YQ==").unwrap(), b"a");
        assert!(decode_lenient("a").is_none());
        assert!(decode_lenient("a*b").is_none());
    }

    #[test]
    fn reads_either_alphabet() {
        // 0xfb 0xff 0xbf: `+/+/` in the standard alphabet, `-_-_` in the URL-safe one.
        let bytes = [0xfb, 0xff, 0xbf];
        assert_eq!(encode_url(&bytes), "-_-_");
        assert_eq!(decode_lenient("+/+/").unwrap(), bytes);
        assert_eq!(decode_lenient("-_-_").unwrap(), bytes);
        assert_eq!(decode_lenient("+_-/").unwrap(), bytes);
        // Padded standard base64 of a SHA-1 (`x5t` as the Azure SDKs send it).
        let sha1 = [0xabu8; 20];
        assert_eq!(
            decode_lenient(&base64::engine::general_purpose::STANDARD.encode(sha1)).unwrap(),
            sha1
        );
    }
}
