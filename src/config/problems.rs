//! How a config problem is said: where (the top level, or a tenant by name and index),
//! which key, and for a typo the key or value that was probably meant.

use std::fmt;

use figment::Figment;
use figment::error::Kind;
use figment::value::Value;

use super::ENV_PREFIX;

/// Where problems of one place of the file are collected: the top level or one tenant.
pub(super) struct Problems<'a> {
    place: String,
    out: &'a mut Vec<String>,
}

impl<'a> Problems<'a> {
    /// Problems of the top level.
    pub(super) fn top(out: &'a mut Vec<String>) -> Self {
        Self {
            place: "top level".into(),
            out,
        }
    }

    /// Problems of `tenants[index]`.
    pub(super) fn tenant(name: Option<&str>, index: usize, out: &'a mut Vec<String>) -> Self {
        Self {
            place: tenant_place(name, index),
            out,
        }
    }

    /// Records that `key` is wrong, and why.
    pub(super) fn add(&mut self, key: &str, why: impl fmt::Display) {
        self.out.push(format!("{}: {key}: {why}", self.place));
    }
}

/// `tenant "contoso" (tenants[0])`, or `tenants[0]` while the tenant has no name.
fn tenant_place(name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("tenant {n:?} (tenants[{index}])"),
        _ => format!("tenants[{index}]"),
    }
}

/// `unknown key page_sise; did you mean page_size?`, or with the valid keys when none
/// is close.
pub(super) fn unknown_key(key: &str, valid: &[&str]) -> String {
    match closest(key, valid) {
        Some(c) => format!("unknown key {key}; did you mean {c}?"),
        None => format!("unknown key {key}; valid keys: {}", valid.join(", ")),
    }
}

/// ``unknown value `globl`; did you mean `global`?``, or with the valid values when none
/// is close; `what` names the kind of value (`value`, `report`).
pub(super) fn unknown_value(what: &str, value: &str, valid: &[&str]) -> String {
    match closest(value, valid) {
        Some(c) => format!("unknown {what} `{value}`; did you mean `{c}`?"),
        None => format!(
            "unknown {what} `{value}`; expected one of {}",
            valid.join(", ")
        ),
    }
}

/// The candidate a typo of `input` most likely is, ignoring case: one edit away, or two
/// for an input of eight characters or more (so `colour` is not taken for `cloud`),
/// and never every character; the first of equals.
fn closest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let input = input.to_lowercase();
    let len = input.chars().count();
    let limit = (len / 4).clamp(1, 2).min(len.saturating_sub(1));
    candidates
        .iter()
        .map(|c| (edit_distance(&input, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps
/// of two neighbours each count one (`cilent_id` is one edit from `client_id`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// figment's errors (unknown key, wrong type) said like the validation problems: the
/// place, the key, the close key for a typo, and the file or variable it came from.
pub(super) fn describe_load_error(e: figment::Error, figment: &Figment) -> String {
    e.into_iter()
        .map(|e| {
            let origin = origin(&e);
            // Not about one key (a TOML syntax error): the file, then figment's text.
            if e.path.is_empty() {
                let text = e.kind.to_string();
                return match origin {
                    Some((_, source)) => format!("{source}: {}", text.trim_end()),
                    None => text.trim_end().to_owned(),
                };
            }
            let (place, key) = locate(&e.path, figment);
            let what = match &e.kind {
                // The key is the unknown one, not a place: `place: unknown key k; …`.
                Kind::UnknownField(field, valid) => unknown_key(field, valid),
                Kind::UnknownVariant(value, valid) => {
                    format!("{key}: {}", unknown_value("value", value, valid))
                }
                // figment echoes the value it found: not for a secret.
                Kind::InvalidType(_, expected) if SECRET_KEYS.contains(&last(&key)) => {
                    format!("{key}: invalid type: expected {expected}")
                }
                other if key.is_empty() => other.to_string(),
                other => format!("{key}: {other}"),
            };
            match origin {
                Some((preposition, source)) => format!("{place}: {what} ({preposition} {source})"),
                None => format!("{place}: {what}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The keys whose values are secrets ([`Secret`](crate::secret::Secret) in the file's shape).
const SECRET_KEYS: &[&str] = &["client_secret"];

/// The last segment of a dotted key.
fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// Splits an error's key path into its place and the key within it: `tenants.1.page_sise`
/// is tenant "alpha2" (tenants[1]), key `page_sise`.
fn locate(path: &[String], figment: &Figment) -> (String, String) {
    if let [tenants, index, rest @ ..] = path
        && tenants == "tenants"
        && let Ok(i) = index.parse::<usize>()
    {
        let name = figment.find_value("tenants").ok().and_then(|list| {
            let entry = match list {
                Value::Array(_, items) => items.into_iter().nth(i)?,
                Value::Dict(_, mut dict) => dict.remove(index)?,
                _ => return None,
            };
            entry.find("name")?.into_string()
        });
        return (tenant_place(name.as_deref(), i), rest.join("."));
    }
    ("top level".into(), path.join("."))
}

/// Where the value came from: `("in", FILE)` or `("from", "ENTRA_EXPORTER_…")`; `None`
/// for TOML given as a string.
fn origin(e: &figment::Error) -> Option<(&'static str, String)> {
    let md = e.metadata.as_ref()?;
    match &md.source {
        Some(figment::Source::File(path)) => Some(("in", path.display().to_string())),
        _ if md.name.contains("environment variable") => Some((
            "from",
            format!("{ENV_PREFIX}{}", e.path.join("__").to_uppercase()),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_each_edit_once() {
        for (a, b, d) in [
            ("", "", 0),
            ("page_size", "page_size", 0),
            ("page_sise", "page_size", 1),
            ("client_secrett", "client_secret", 1),
            ("cilent_id", "client_id", 1),
            ("pagesize", "page_size", 1),
            ("refresh", "reports", 4),
            ("", "abc", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} ~ {b}");
            assert_eq!(edit_distance(b, a), d, "{b} ~ {a}");
        }
    }

    #[test]
    fn only_close_candidates_are_suggested() {
        let keys = ["name", "tenant_id", "client_id", "page_size", "cloud"];
        assert_eq!(closest("page_sise", &keys), Some("page_size"));
        assert_eq!(closest("Page_Size", &keys), Some("page_size"));
        assert_eq!(closest("clients_id", &keys), Some("client_id"));
        assert_eq!(closest("nme", &keys), Some("name"));
        // Too far, or too short for two edits to mean anything.
        assert_eq!(closest("bogus_key", &keys), None);
        assert_eq!(closest("colour", &keys), None, "two edits, six letters");
        assert_eq!(closest("id", &keys), None);
        assert_eq!(
            unknown_key("clod", &keys),
            "unknown key clod; did you mean cloud?"
        );
        assert_eq!(
            unknown_value("value", "x", &["a", "b"]),
            "unknown value `x`; expected one of a, b",
            "the list when nothing is close"
        );
    }
}
