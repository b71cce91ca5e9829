//! Encoding `/metrics`: OpenMetrics 1.0 (the registry's metrics from prometheus-client,
//! then the store's families), and the classic Prometheus text format 0.0.4 derived
//! from it for scrapers that ask only for that.

use prometheus_client::registry::Registry;

use crate::body::Body;
use crate::snapshot::Store;

/// What `/metrics` shows: the registry's metrics (the exporter's own), then the
/// families of the stored snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Exposition<'a> {
    /// The self-metrics (and any collectors).
    pub registry: &'a Registry,
    /// The snapshots; `None` shows the registry alone.
    pub store: Option<&'a Store>,
}

impl<'a> Exposition<'a> {
    /// The registry and the store.
    pub fn new(registry: &'a Registry, store: &'a Store) -> Self {
        Self {
            registry,
            store: Some(store),
        }
    }

    /// The registry alone.
    pub fn registry(registry: &'a Registry) -> Self {
        Self {
            registry,
            store: None,
        }
    }

    /// Writes the whole OpenMetrics text, `# EOF` included, into `body`.
    pub fn write(self, body: &mut Body) {
        // Writing to memory cannot fail; an error here is a bug in a collector.
        prometheus_client::encoding::text::encode_registry(body, self.registry)
            .expect("encoding into memory");
        if let Some(store) = self.store {
            store.write(body);
        }
        prometheus_client::encoding::text::encode_eof(body).expect("encoding into memory");
    }
}

/// OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Classic text content type.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0 (the default).
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Classic,
}

impl Format {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS,
            Self::Classic => CLASSIC,
        }
    }
}

/// Picks the format for an `Accept` header: classic only when the scraper accepts
/// `text/plain` and not OpenMetrics; OpenMetrics otherwise (including no header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::OpenMetrics;
    };
    let mut plain = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        match media.as_str() {
            "application/openmetrics-text" | "*/*" | "application/*" => return Format::OpenMetrics,
            "text/plain" | "text/*" => plain = true,
            _ => {}
        }
    }
    if plain {
        Format::Classic
    } else {
        Format::OpenMetrics
    }
}

/// Encodes `e` in `format`.
pub fn encode(e: Exposition<'_>, format: Format) -> String {
    let om = encode_openmetrics(e, 16 << 10);
    match format {
        Format::OpenMetrics => om,
        Format::Classic => to_classic(&om),
    }
}

/// The OpenMetrics text of `e`, written into a String of `capacity` bytes to start with
/// (a big body's last size: no regrowing).
pub fn encode_openmetrics(e: Exposition<'_>, capacity: usize) -> String {
    let mut body = Body::text(capacity);
    e.write(&mut body);
    body.into_text()
}

/// Rewrites prometheus-client's OpenMetrics text as Prometheus text 0.0.4:
/// counter families take their `_total` sample name, info families become gauges
/// named `<name>_info`, `# UNIT`, `_created` samples and `# EOF` go.
pub fn to_classic(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    // prometheus-client writes HELP before TYPE; the HELP text waits for the TYPE
    // line, which decides the classic family name.
    let mut help: Option<&str> = None;
    // `_created` samples of the current counter family, to drop.
    let mut created: Option<String> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').map_or("", |(_, text)| text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (classic_name, classic_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            created = (kind == "counter").then(|| format!("{name}_created"));
            if let Some(text) = help.take() {
                out.push_str(&format!("# HELP {classic_name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {classic_name} {classic_kind}\n"));
            continue;
        }
        if created.as_deref().is_some_and(|c| line.starts_with(c)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        use Format::*;
        assert_eq!(negotiate(None), OpenMetrics);
        assert_eq!(negotiate(Some("*/*")), OpenMetrics);
        assert_eq!(negotiate(Some("text/plain")), Classic);
        assert_eq!(negotiate(Some("text/plain; version=0.0.4")), Classic);
        assert_eq!(
            negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OpenMetrics
        );
        assert_eq!(
            negotiate(Some("text/plain;version=0.0.4;q=1,*/*;q=0")),
            Classic
        );
        assert_eq!(negotiate(Some("application/json")), OpenMetrics);
    }

    #[test]
    fn classic_rewrite() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3\na_requests_created{x=\"1\"} 1.5\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_up Up.\n# TYPE a_up gauge\n# UNIT a_up seconds\na_up 1\n# EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_up Up.\n# TYPE a_up gauge\na_up 1\n"
        );
    }
}
