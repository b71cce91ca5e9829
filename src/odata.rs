//! The OData collection page envelope, parsed and folded row by row: the leaf both the
//! Graph client (paging) and the report modules (rows) use.
//!
//! A page is `{"@odata.nextLink": "...", "value": [ row, ... ], ...}` (graph-api.md §1.3).
//! Rows are deserialized one at a time, borrowing from the page bytes where the JSON
//! has no escapes, and handed to a [`Fold`] at once: no page is ever held as a `Vec`
//! of rows. A page without `value`, or with a row of the wrong shape, is an error,
//! and the caller throws the whole refresh away (nothing partial is published).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Something that folds rows of one type into counts.
pub trait Fold {
    /// The row as deserialized, borrowing from the page.
    type Row<'de>: Deserialize<'de>;
    /// Adds one row.
    fn add(&mut self, row: Self::Row<'_>);
}

/// Anything that can take a whole page (a report's refresh, one request at a time).
/// Object-safe, so the paging walk is not generic over reports; rows are still folded
/// by monomorphic code behind it ([`fold_page`]).
pub trait PageFold {
    /// Parses one page into `self`.
    fn fold_page(&mut self, bytes: &[u8]) -> Result<PageInfo, PageError>;
}

/// What a page said besides its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    /// `@odata.nextLink`, when more pages exist.
    pub next_link: Option<String>,
    /// Rows on this page.
    pub rows: u64,
}

/// A page that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not JSON, truncated, or a row of the wrong shape.
    #[error("malformed page: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON without a `value` array.
    #[error("malformed page: no \"value\" array")]
    MissingValue,
}

/// Parses `bytes` as one page, feeding every row to `fold`.
pub fn fold_page<F: Fold>(bytes: &[u8], fold: &mut F) -> Result<PageInfo, PageError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (next_link, rows) = PageSeed { fold }.deserialize(&mut de)?;
    de.end()?;
    match rows {
        Some(rows) => Ok(PageInfo { next_link, rows }),
        None => Err(PageError::MissingValue),
    }
}

/// The page's `@odata.nextLink` if it comes before `value` (as Graph sends it), read
/// without touching the rows; `None` otherwise. A hint for fetching ahead only: the
/// link that counts is the one [`fold_page`] returns.
pub fn peek_next_link(bytes: &[u8]) -> Option<String> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The visitor stops with an error as soon as it knows the answer.
    let _ = serde::Deserializer::deserialize_map(&mut de, PeekVisitor(&mut found));
    found
}

struct PeekVisitor<'a>(&'a mut Option<String>);

impl<'de> Visitor<'de> for PeekVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OData collection page")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = next_key(&mut map)? {
            match key.as_ref() {
                b"@odata.nextLink" => {
                    *self.0 = map.next_value()?;
                    break;
                }
                b"value" => break,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Err(serde::de::Error::custom("stopped at the link or the rows"))
    }
}

struct PageSeed<'f, F> {
    fold: &'f mut F,
}

impl<'de, F: Fold> DeserializeSeed<'de> for PageSeed<'_, F> {
    type Value = (Option<String>, Option<u64>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: Fold> Visitor<'de> for PageSeed<'_, F> {
    type Value = (Option<String>, Option<u64>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OData collection page (a JSON object with a \"value\" array)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut next_link = None;
        let mut rows = None;
        while let Some(key) = next_key(&mut map)? {
            match key.as_ref() {
                b"@odata.nextLink" => next_link = map.next_value::<Option<String>>()?,
                b"value" => {
                    if rows.is_some() {
                        return Err(serde::de::Error::duplicate_field("value"));
                    }
                    rows = Some(map.next_value_seed(RowsSeed {
                        fold: &mut *self.fold,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((next_link, rows))
    }
}

struct RowsSeed<'f, F> {
    fold: &'f mut F,
}

impl<'de, F: Fold> DeserializeSeed<'de> for RowsSeed<'_, F> {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: Fold> Visitor<'de> for RowsSeed<'_, F> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of report rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(row) = seq.next_element::<F::Row<'de>>()? {
            self.fold.add(row);
            n += 1;
        }
        Ok(n)
    }
}

/// Reads the next object key as raw bytes.
///
/// Row types match their keys with this instead of serde's derived field visitor: the
/// derive asks for a `str`, which makes serde_json validate UTF-8 for every key of every
/// row, the largest cost of a page after the scanning itself (BENCHMARKS.md). A key only
/// selects a field, so its bytes are enough; values used as labels are still read as
/// validated strings. Escaped keys (never seen from Graph) are unescaped into an owned copy.
pub fn next_key<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, [u8]>>, A::Error> {
    map.next_key_seed(KeySeed)
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, [u8]>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, [u8]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_vec()))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v.as_bytes()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.as_bytes().to_vec()))
    }
}

/// Reads a JSON string as its raw (unescaped) bytes, borrowed where it has no escapes.
pub fn deserialize_raw_bytes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Cow<'de, [u8]>, D::Error> {
    d.deserialize_bytes(KeySeed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts rows whose `x` is true.
    #[derive(Default)]
    struct CountX(u64, u64);

    #[derive(Deserialize)]
    struct RowX {
        #[serde(default)]
        x: Option<bool>,
    }

    impl Fold for CountX {
        type Row<'de> = RowX;
        fn add(&mut self, row: RowX) {
            self.0 += 1;
            self.1 += u64::from(row.x == Some(true));
        }
    }

    #[test]
    fn folds_rows_and_reads_next_link() {
        let mut f = CountX::default();
        let info = fold_page(
            br#"{"@odata.context":"c","value":[{"x":true},{"x":false,"y":[1,{"z":2}]},{}],"@odata.nextLink":"https://g/next"}"#,
            &mut f,
        )
        .unwrap();
        assert_eq!(info.rows, 3);
        assert_eq!(info.next_link.as_deref(), Some("https://g/next"));
        assert_eq!((f.0, f.1), (3, 1));
    }

    #[test]
    fn peeks_the_link_only_before_the_rows() {
        assert_eq!(
            peek_next_link(
                br#"{"@odata.context":"c","@odata.nextLink":"https://g/n","value":[{"x":1}]}"#
            )
            .as_deref(),
            Some("https://g/n")
        );
        assert_eq!(
            peek_next_link(br#"{"value":[],"@odata.nextLink":"https://g/n"}"#),
            None
        );
        assert_eq!(peek_next_link(br#"{"value":[]}"#), None);
        assert_eq!(peek_next_link(b"not json"), None);
        assert_eq!(
            peek_next_link(br#"{"@odata.nextLink":null,"value":[]}"#),
            None
        );
    }

    #[test]
    fn last_page_has_no_link() {
        let mut f = CountX::default();
        let info = fold_page(br#"{"value":[]}"#, &mut f).unwrap();
        assert_eq!(
            info,
            PageInfo {
                next_link: None,
                rows: 0
            }
        );
    }

    #[test]
    fn rejects_bad_pages() {
        for bad in [
            &br#"{"@odata.nextLink":"x"}"#[..],
            br#"{"value":[{"x":true}"#,
            br#"{"value":[{"x":"yes"}]}"#,
            br#"{"value":null}"#,
            br#"{"value":[]} trailing"#,
            br#"[]"#,
            b"",
            br#"{"value":[],"value":[]}"#,
        ] {
            let mut f = CountX::default();
            assert!(
                fold_page(bad, &mut f).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
