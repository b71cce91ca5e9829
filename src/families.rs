//! Gauge families built from stored report data at scrape time: the sink that report
//! modules push samples into, and its encoding through prometheus-client. A leaf.
//!
//! Every sample of a family must be written together, but several reports feed the same
//! family (both registration sources feed `entra_users*`, two event reports feed
//! `entra_credential_usage_events`) and every tenant adds its own samples. So a scrape
//! first collects samples per family, in a fixed family order (the reports' declaration
//! order, see [`crate::reports::family_order`]), then encodes each family once.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

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

/// The samples of one scrape, per family, in a fixed family order.
#[derive(Debug, Default)]
pub struct Families<'a> {
    families: Vec<(&'static Family, Samples<'a>)>,
}

/// One family's samples, flat: every sample's label pairs one after the other in one
/// vector, and per sample where its pairs end. A scrape holds every sample of every
/// tenant at once (394,267 for 1,001 tenants, BENCHMARKS.md), so a vector of its own
/// per sample (its header, allocation and spare capacity) was most of the scrape's
/// memory.
#[derive(Debug, Default)]
struct Samples<'a> {
    labels: Vec<(&'static str, &'a str)>,
    /// Each sample's end in `labels` (its start is the previous one's end) and value.
    samples: Vec<(usize, Value)>,
}

impl<'a> Samples<'a> {
    fn iter(&self) -> impl Iterator<Item = (&[(&'static str, &'a str)], Value)> {
        let mut start = 0;
        self.samples.iter().map(move |&(end, value)| {
            let labels = &self.labels[start..end];
            start = end;
            (labels, value)
        })
    }
}

impl<'a> Families<'a> {
    /// A sink that encodes families in `order` (a repeated family keeps its first place).
    pub fn new(order: impl IntoIterator<Item = &'static Family>) -> Self {
        let mut sink = Self::default();
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
                self.families.push((family, Samples::default()));
                FamilyId(self.families.len() - 1)
            }
        }
    }

    /// Adds a sample to the family `id`.
    pub fn push(&mut self, id: FamilyId, labels: Labels<'a>, value: impl Into<Value>) {
        let samples = &mut self.families[id.0].1;
        samples.labels.extend_from_slice(&labels);
        samples.samples.push((samples.labels.len(), value.into()));
    }

    /// Adds a sample to `family` (one lookup; for families with few samples).
    pub fn add(&mut self, family: &'static Family, labels: Labels<'a>, value: impl Into<Value>) {
        let id = self.id(family);
        self.push(id, labels, value);
    }

    /// Encodes every family that has samples, in order. A family nothing fed is left
    /// out rather than sent bare.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (family, samples) in &self.families {
            if samples.samples.is_empty() {
                continue;
            }
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
            for (labels, value) in samples.iter() {
                let sample = metric.encode_family(&labels)?;
                match value {
                    // Gauges encode i64; no count here comes near 2^63.
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

#[cfg(test)]
impl Families<'_> {
    /// Every sample as `name{k="v",…} value`, in order: for report tests.
    pub(crate) fn sample_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (family, samples) in &self.families {
            for (labels, value) in samples.iter() {
                let labels: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                let value = match value {
                    Value::Int(v) => v.to_string(),
                    Value::Float(v) => v.to_string(),
                };
                out.push(format!("{}{{{}}} {value}", family.name, labels.join(",")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        f.push(a, vec![("t", "y")], 4.5);
        assert_eq!(
            f.sample_lines(),
            [
                "a{t=\"x\",k=\"1\"} 1",
                "a{} 3",
                "a{t=\"y\"} 4.5",
                "b{t=\"x\"} 2"
            ]
        );
    }
}
