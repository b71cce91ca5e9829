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

/// One family's samples, flat: every sample's labels one after the other in one
/// vector, and per sample where its labels end. A scrape holds every sample of every
/// tenant at once (395,268 for 1,001 tenants, BENCHMARKS.md), so a vector of its own
/// per sample (its header, allocation and spare capacity) was most of the scrape's
/// memory. The label names are kept once while every sample has the same ones (the
/// usual case: a family's samples differ in values), so a label costs the 16 bytes of
/// its value rather than the 32 of a pair.
#[derive(Debug, Default)]
struct Samples<'a> {
    /// The label names of every sample so far, when they are the same for all.
    shared_names: Option<Vec<&'static str>>,
    /// With `shared_names`: the label values, `shared_names.len()` a sample.
    values: Vec<&'a str>,
    /// Without: every sample's label pairs.
    pairs: Vec<(&'static str, &'a str)>,
    /// Each sample's end in `values` or `pairs` (its start is the previous one's end)
    /// and value.
    samples: Vec<(usize, Value)>,
}

impl<'a> Samples<'a> {
    fn push(&mut self, labels: &[(&'static str, &'a str)], value: Value) {
        if self.samples.is_empty() && self.pairs.is_empty() {
            self.shared_names = Some(labels.iter().map(|(k, _)| *k).collect());
        }
        let same_names = self.shared_names.as_ref().is_some_and(|names| {
            names.len() == labels.len() && names.iter().zip(labels).all(|(n, (k, _))| n == k)
        });
        if !same_names && let Some(names) = self.shared_names.take() {
            // The first sample with other names: every sample so far as pairs (the ends
            // stay: a sample has as many pairs as it had values).
            self.pairs = names
                .iter()
                .copied()
                .cycle()
                .zip(std::mem::take(&mut self.values))
                .collect();
        }
        if self.shared_names.is_some() {
            self.values.extend(labels.iter().map(|(_, v)| *v));
            self.samples.push((self.values.len(), value));
        } else {
            self.pairs.extend_from_slice(labels);
            self.samples.push((self.pairs.len(), value));
        }
    }

    /// Calls `f` with every sample's label pairs and value, in order, until it fails.
    fn try_each<E>(
        &self,
        mut f: impl FnMut(&[(&'static str, &'a str)], Value) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut start = 0;
        let mut pairs = Vec::new();
        for &(end, value) in &self.samples {
            match &self.shared_names {
                Some(names) => {
                    pairs.clear();
                    pairs.extend(
                        names
                            .iter()
                            .copied()
                            .zip(self.values[start..end].iter().copied()),
                    );
                    f(&pairs, value)?;
                }
                None => f(&self.pairs[start..end], value)?,
            }
            start = end;
        }
        Ok(())
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
        self.families[id.0].1.push(&labels, value.into());
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
            samples.try_each(|labels, value| {
                let sample = metric.encode_family(&labels)?;
                match value {
                    // Gauges encode i64; no count here comes near 2^63.
                    Value::Int(v) => {
                        ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(sample)
                    }
                    Value::Float(v) => ConstGauge::new(v).encode(sample),
                }
            })?;
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
            let _ = samples.try_each(|labels, value| {
                let labels: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                let value = match value {
                    Value::Int(v) => v.to_string(),
                    Value::Float(v) => v.to_string(),
                };
                out.push(format!("{}{{{}}} {value}", family.name, labels.join(",")));
                Ok::<(), ()>(())
            });
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
    fn shared_label_names_turn_into_pairs_when_a_sample_differs() {
        let mut f = Families::new([&A]);
        let a = f.id(&A);
        for v in ["1", "2", "3"] {
            f.push(a, vec![("t", "x"), ("k", v)], 1u64);
        }
        assert!(
            f.families[0].1.shared_names.is_some(),
            "one copy of the names"
        );
        f.push(a, vec![("k", "4"), ("t", "x")], 2u64);
        f.push(a, vec![("t", "y"), ("k", "5")], 3u64);
        assert!(f.families[0].1.shared_names.is_none());
        assert_eq!(
            f.sample_lines(),
            [
                "a{t=\"x\",k=\"1\"} 1",
                "a{t=\"x\",k=\"2\"} 1",
                "a{t=\"x\",k=\"3\"} 1",
                "a{k=\"4\",t=\"x\"} 2",
                "a{t=\"y\",k=\"5\"} 3"
            ]
        );
        let mut g = Families::new([&A]);
        g.add(&A, vec![], 1u64);
        g.add(&A, vec![], 2u64);
        g.add(&A, vec![("t", "x")], 3u64);
        assert_eq!(g.sample_lines(), ["a{} 1", "a{} 2", "a{t=\"x\"} 3"]);
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
