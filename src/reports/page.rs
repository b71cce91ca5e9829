//! One OData collection page, parsed and folded row by row.
//!
//! A page is `{"@odata.nextLink": "...", "value": [ row, ... ], ...}` (graph-api.md §1.3).
//! Rows are deserialized one at a time, borrowing from the page bytes where the JSON
//! has no escapes, and handed to a [`Fold`] at once: no page is ever held as a `Vec`
//! of rows. A page without `value`, or with a row of the wrong shape, is an error,
//! and the caller throws the whole refresh away (nothing partial is published).

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
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "@odata.nextLink" => next_link = map.next_value::<Option<String>>()?,
                "value" => {
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
