//! Percent-decoding of query strings and `application/x-www-form-urlencoded` bodies,
//! and percent-encoding for the `@odata.nextLink` we build.
//!
//! Clients send `%24top=999` as often as `$top=999` (graph-api.md §2.6), so keys and
//! values are both decoded; `+` means space as in HTML forms.

/// Decodes `%XX` escapes and `+`. Invalid escapes are kept literally; invalid UTF-8 is
/// replaced, which real servers also tolerate.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
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

/// Encodes a query value for a URL we emit; `$`, `,`, `'`, `(`, `)`, `:` and `/` stay
/// readable as Graph leaves them in its own next links.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'\''
            | b'('
            | b')'
            | b':'
            | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
    }
}
