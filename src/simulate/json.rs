//! Hand-written JSON output: the page bodies are built straight into one buffer, so a
//! 999-row page costs one allocation, not a serde tree.

/// Appends `s` as a JSON string literal. With `ascii_only`, every non-ASCII character is
/// written as a `\uXXXX` escape (surrogate pairs beyond the BMP), as some Graph services
/// do; otherwise UTF-8 is written as is. Quotes, backslashes and control characters are
/// always escaped.
pub(crate) fn push_str(out: &mut String, s: &str, ascii_only: bool) {
    out.push('"');
    // Nearly every string needs no escape; copying it whole keeps page generation (the
    // floor of the end-to-end benchmark) from being a per-character loop.
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && (b < 0x80 || !ascii_only))
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => push_u(out, c as u32),
            c if ascii_only && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    push_u(out, u32::from(*unit));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `s` as a JSON string with the character at `at` (an ASCII letter) written as
/// a `\u00XX` escape: `"em\u0061il"` is the same value as `"email"`, and a client must
/// decode it rather than compare raw bytes.
pub(crate) fn push_str_escaping_one(out: &mut String, s: &str, at: usize) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        if i == at && c.is_ascii_alphanumeric() {
            push_u(out, c as u32);
        } else {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => push_u(out, c as u32),
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

fn push_u(out: &mut String, unit: u32) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// Appends `"key":` (keys are plain ASCII identifiers we choose).
pub(crate) fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Serialises one string as a JSON literal.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> String {
        serde_json::from_str::<String>(s).unwrap()
    }

    #[test]
    fn escapes_round_trip_through_serde() {
        for s in [
            "plain",
            "Zoë \"Q\" \\ O'Brien",
            "tab\there\u{1}",
            "😀 Łukasz",
            "",
        ] {
            let mut a = String::new();
            push_str(&mut a, s, true);
            assert!(a.is_ascii());
            assert_eq!(parse(&a), s);
            let mut b = String::new();
            push_str(&mut b, s, false);
            assert_eq!(parse(&b), s);
        }
        let mut e = String::new();
        push_str_escaping_one(&mut e, "email", 2);
        assert_eq!(e, "\"em\\u0061il\"");
        assert_eq!(parse(&e), "email");
    }
}
