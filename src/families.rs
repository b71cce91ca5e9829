//! Gauge families built from stored report data at scrape time: the sink that report
//! modules push samples into, which writes them as exposition text the way
//! prometheus-client writes a gauge family (test
//! `the_lines_are_what_prometheus_client_writes`). Uses only [`crate::body`].
//!
//! Every sample of a family must be written together, but several reports feed the same
//! family (both registration sources feed `entra_users*`, two event reports feed
//! `entra_credential_usage_events`) and every tenant adds its own samples. So a scrape
//! writes each family into a part of its own, in a fixed family order (the reports'
//! declaration order, see [`crate::reports::family_order`]), and joins the parts.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::body::{Body, Part, Writer};

/// A gauge family's name and help text, declared once by the module that feeds it.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
}

impl Family {
    /// A gauge family.
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self { name, help }
    }
}

/// Label pairs of one sample, values borrowed from the stored data.
pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A sample value: counts print as integers, times and durations as floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// A time or a duration.
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

/// Seconds since the Unix epoch, as exported timestamps are.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A family in a [`Families`] sink, for pushing without a lookup per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyId(usize);

/// The samples of one scrape, per family, in a fixed family order: each sample is
/// written as its exposition line when pushed, into its family's part of the body
/// (compressed as it goes when the body is gzip, [`crate::body`]). A scrape walks every
/// tenant once; the samples are never held as data (395,268 of them for 1,001 tenants,
/// BENCHMARKS.md, were most of a scrape's memory when they were).
#[derive(Debug)]
pub struct Families {
    families: Vec<(&'static Family, Part)>,
    writer: Writer,
}

impl Default for Families {
    fn default() -> Self {
        Self::new([])
    }
}

impl Families {
    /// A plain-text sink that writes families in `order` (a repeated family keeps its
    /// first place).
    pub fn new(order: impl IntoIterator<Item = &'static Family>) -> Self {
        Self::with_writer(Writer::text(), order)
    }

    /// A sink for `body` (compressing when it does), families in `order`.
    pub fn for_body(body: &Body, order: impl IntoIterator<Item = &'static Family>) -> Self {
        Self::with_writer(body.writer(), order)
    }

    fn with_writer(writer: Writer, order: impl IntoIterator<Item = &'static Family>) -> Self {
        let mut sink = Self {
            families: Vec::new(),
            writer,
        };
        for family in order {
            sink.id(family);
        }
        sink
    }

    /// The id of `family`; a family not in the order is added at the end.
    pub fn id(&mut self, family: &'static Family) -> FamilyId {
        match self
            .families
            .iter()
            .position(|(f, _)| f.name == family.name)
        {
            Some(i) => {
                debug_assert_eq!(
                    self.families[i].0.help, family.help,
                    "family {} declared twice with different help",
                    family.name
                );
                FamilyId(i)
            }
            None => {
                self.families.push((family, Part::default()));
                FamilyId(self.families.len() - 1)
            }
        }
    }

    /// Adds a sample to the family `id`.
    pub fn push(&mut self, id: FamilyId, labels: Labels<'_>, value: impl Into<Value>) {
        let (family, part) = &mut self.families[id.0];
        let family: &'static Family = family;
        let first = part.is_empty();
        let value = value.into();
        self.writer.write(part, |text| {
            if first {
                write_descriptor(text, family);
            }
            write_sample(text, family.name, &labels, value);
        });
    }

    /// Adds a sample to `family` (one lookup; for families with few samples).
    pub fn add(&mut self, family: &'static Family, labels: Labels<'_>, value: impl Into<Value>) {
        let id = self.id(family);
        self.push(id, labels, value);
    }

    /// Appends every family that has samples to `body` (which this sink was made
    /// [`for_body`](Self::for_body)), in order. A family nothing fed is left out rather
    /// than sent bare.
    pub fn append_to(self, body: &mut Body) {
        let Self {
            families,
            mut writer,
        } = self;
        for (_, part) in families {
            if !part.is_empty() {
                body.append(&mut writer, part);
            }
        }
    }
}

/// A gauge family's `# HELP` and `# TYPE` lines, as prometheus-client writes them.
fn write_descriptor(out: &mut String, family: &Family) {
    for line in [
        "# HELP ",
        family.name,
        " ",
        family.help,
        "\n# TYPE ",
        family.name,
        " gauge\n",
    ] {
        out.push_str(line);
    }
}

/// One sample's line, as prometheus-client writes a gauge family's sample: the labels
/// in braces (empty braces for none), values escaped, counts as integers and times as
/// `dtoa` floats.
fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: Value) {
    out.push_str(name);
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        let mut rest = *value;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            out.push_str(&rest[..at]);
            out.push_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            });
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
        out.push('"');
    }
    out.push_str("} ");
    match value {
        // Gauges encode i64; no count here comes near 2^63.
        Value::Int(v) => {
            out.push_str(itoa::Buffer::new().format(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        Value::Float(v) => out.push_str(dtoa::Buffer::new().format(v)),
    }
    out.push('\n');
}

#[cfg(test)]
impl Families {
    /// Every sample's line without its newline, in order: for report tests (a plain-text
    /// sink only).
    pub(crate) fn sample_lines(&self) -> Vec<String> {
        assert!(!self.writer.is_gzip(), "sample_lines of a plain-text sink");
        self.families
            .iter()
            .flat_map(|(_, part)| part.pending().lines())
            .filter(|line| !line.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::metrics::gauge::ConstGauge;

    static A: Family = Family::gauge("a", "A.");
    static B: Family = Family::gauge("b", "B.");

    #[test]
    fn keeps_the_declared_order_and_dedups() {
        let mut f = Families::new([&A, &B, &A]);
        let b = f.id(&B);
        f.push(b, vec![("k", "v")], 2u64);
        f.add(&A, vec![], 1.5);
        let names: Vec<_> = f.families.iter().map(|(f, _)| f.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(f.sample_lines(), ["a{} 1.5", "b{k=\"v\"} 2"]);
    }

    #[test]
    fn each_sample_keeps_its_own_labels() {
        let mut f = Families::new([&A, &B]);
        let (a, b) = (f.id(&A), f.id(&B));
        f.push(a, vec![("t", "x"), ("k", "1")], 1u64);
        f.push(b, vec![("t", "x")], 2u64);
        f.push(a, vec![], 3u64);
        f.push(a, vec![("k", "4"), ("t", "y")], 4.5);
        assert_eq!(
            f.sample_lines(),
            [
                "a{t=\"x\",k=\"1\"} 1",
                "a{} 3",
                "a{k=\"4\",t=\"y\"} 4.5",
                "b{t=\"x\"} 2"
            ]
        );
    }

    type Sample = (Vec<(&'static str, &'static str)>, Value);

    /// Awkward samples: escapes, no labels, the integer and float edges.
    fn samples() -> Vec<(&'static Family, Sample)> {
        let floats = [
            0.0,
            -0.0,
            1.0,
            0.1,
            1.5e-7,
            1e21,
            1_764_612_345.123_456,
            -3.25,
        ];
        let mut out: Vec<(&'static Family, Sample)> = floats
            .into_iter()
            .map(|v| (&B, (vec![("t", "x")], Value::Float(v))))
            .collect();
        for v in [0, 7, 1 << 40, u64::MAX] {
            out.push((
                &A,
                (vec![("tenant", "t\"1\\\n2"), ("k", "")], Value::Int(v)),
            ));
        }
        out.push((&A, (vec![], Value::Int(3))));
        out
    }

    /// The same samples through prometheus-client's own gauge encoding.
    #[derive(Debug)]
    struct Reference;

    impl prometheus_client::collector::Collector for Reference {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for family in [&A, &B] {
                let mut metric =
                    encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
                for (_, (labels, value)) in samples().iter().filter(|(f, _)| *f == family) {
                    let sample = metric.encode_family(labels)?;
                    match *value {
                        Value::Int(v) => {
                            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(sample)?
                        }
                        Value::Float(v) => ConstGauge::new(v).encode(sample)?,
                    }
                }
            }
            Ok(())
        }
    }

    fn ours(body: &mut Body) {
        let mut f = Families::for_body(body, [&A, &B]);
        for (family, (labels, value)) in samples() {
            f.add(family, labels, value);
        }
        f.append_to(body);
    }

    #[test]
    fn the_lines_are_what_prometheus_client_writes() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Reference));
        let mut expected = String::new();
        prometheus_client::encoding::text::encode_registry(&mut expected, &registry).unwrap();
        assert!(expected.contains(r#"a{tenant="t\"1\\\n2",k=""} 9223372036854775807"#));

        let mut text = Body::text(0);
        ours(&mut text);
        assert_eq!(text.into_text(), expected);

        let mut gz = Body::gzip(0);
        ours(&mut gz);
        let (bytes, len) = gz.finish();
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .unwrap();
        assert_eq!((plain.as_str(), len), (expected.as_str(), expected.len()));
    }
}
