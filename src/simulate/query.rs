//! Percent-decoding of query strings and `application/x-www-form-urlencoded` bodies,
//! and percent-encoding for the `@odata.nextLink` we build.
//!
//! Clients send `%24top=999` as often as `$top=999` (graph-api.md §2.6), so keys and
//! values are both decoded; `+` means space as in HTML forms.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Escaped in the values we emit: everything but RFC 3986's unreserved characters and
/// `$`, `,`, `'`, `(`, `)`, `:` and `/`, which Graph leaves readable in its own next links.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b',')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b':')
    .remove(b'/');

/// Decodes `%XX` escapes and `+`. Invalid escapes are kept literally; invalid UTF-8 is
/// replaced, which real servers also tolerate.
pub(crate) fn percent_decode(text: &str) -> String {
    // `+` first: an escaped `%2B` is a literal plus.
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits `a=1&b=2` into decoded pairs, in order. Empty segments are skipped.
pub(crate) fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// Encodes a query value for a URL we emit (see [`QUERY_VALUE`]).
pub(crate) fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(percent_decode("%24top"), "$top");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("s%7Ecret"), "s~cret");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("a%2Bb%4"), "a+b%4");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn pairs_and_round_trip() {
        let p = parse_pairs("%24top=999&$skiptoken=abc&flag&&x=a%3Db");
        assert_eq!(p[0], ("$top".into(), "999".into()));
        assert_eq!(p[1], ("$skiptoken".into(), "abc".into()));
        assert_eq!(p[2], ("flag".into(), String::new()));
        assert_eq!(p[3], ("x".into(), "a=b".into()));
        let v = "isMfaCapable eq false and startswith(userPrincipalName,'a&b')";
        assert_eq!(percent_decode(&percent_encode(v)), v);
        assert_eq!(
            percent_encode(v),
            "isMfaCapable%20eq%20false%20and%20startswith(userPrincipalName,'a%26b')"
        );
        assert_eq!(percent_encode("$top=9 é~"), "$top%3D9%20%C3%A9~");
    }
}
