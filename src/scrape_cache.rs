//! The `/metrics` body, encoded once and served from bytes: re-encoded when a snapshot
//! changes (the store's generation moves), but not more often than every [`MIN_AGE`]
//! (many tenants publish many times a second), and otherwise once it is [`MAX_AGE`]
//! old, so the exporter's own counters, which move with every Graph request, are never
//! staler than that. Each format and its gzip form are made on first use and
//! shared by every scrape until the next encoding.
//!
//! A scrape that finds the body stale while another is already re-encoding serves the
//! previous body instead of waiting: no request thread blocks behind an encoding.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::registry::Registry;

use crate::exposition::{self, Format};

/// Longest time a body is reused while no snapshot changes.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Shortest time a body is reused when snapshots change: bounds the encoding work to a
/// few times a second however many refreshes finish (a new snapshot shows within this).
pub const MIN_AGE: Duration = Duration::from_millis(250);

struct Encoded {
    generation: u64,
    at: Instant,
    openmetrics: Bytes,
    openmetrics_gzip: OnceLock<Bytes>,
    classic: OnceLock<Bytes>,
    classic_gzip: OnceLock<Bytes>,
}

impl Encoded {
    fn body(&self, format: Format, gzip: bool) -> Bytes {
        match (format, gzip) {
            (Format::OpenMetrics, false) => self.openmetrics.clone(),
            (Format::OpenMetrics, true) => self
                .openmetrics_gzip
                .get_or_init(|| compress(&self.openmetrics))
                .clone(),
            (Format::Classic, false) => self.classic().clone(),
            (Format::Classic, true) => self
                .classic_gzip
                .get_or_init(|| compress(self.classic()))
                .clone(),
        }
    }

    fn classic(&self) -> &Bytes {
        self.classic.get_or_init(|| {
            // prometheus-client writes valid UTF-8; the lossy path is never taken.
            let om = String::from_utf8_lossy(&self.openmetrics);
            Bytes::from(exposition::to_classic(&om))
        })
    }
}

fn compress(data: &[u8]) -> Bytes {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        // The fastest level: a few times the speed of the default for ~25% more bytes;
        // the body is compressed once per encoding, but that can be several times a second.
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    gz.write_all(data).expect("gzip into memory");
    Bytes::from(gz.finish().expect("gzip into memory"))
}

/// The forms other than plain OpenMetrics (always made), each with its bit in
/// [`ScrapeCache::wanted`].
const FORMS: [(u8, Format, bool); 3] = [
    (1, Format::OpenMetrics, true),
    (2, Format::Classic, false),
    (4, Format::Classic, true),
];

/// The cached exposition.
#[derive(Default)]
pub struct ScrapeCache {
    current: RwLock<Option<Arc<Encoded>>>,
    encoding: Mutex<()>,
    /// The forms scrapers have asked for (bits of [`FORMS`]), made eagerly at each encoding.
    wanted: AtomicU8,
}

impl std::fmt::Debug for ScrapeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeCache").finish_non_exhaustive()
    }
}

impl ScrapeCache {
    /// The body of `registry` in `format` (gzip-compressed when `gzip`), for a store at
    /// `generation`.
    pub fn get(&self, registry: &Registry, generation: u64, format: Format, gzip: bool) -> Bytes {
        let cached = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fresh = |e: &Encoded| {
            let age = e.at.elapsed();
            age < MIN_AGE || (e.generation == generation && age < MAX_AGE)
        };
        if let Some(e) = &cached
            && fresh(e)
        {
            self.mark_wanted(format, gzip);
            return e.body(format, gzip);
        }
        let _turn = match (self.encoding.try_lock(), &cached) {
            (Ok(turn), _) => turn,
            // Someone is re-encoding: the previous body is at most moments older.
            (Err(_), Some(e)) => return e.body(format, gzip),
            // The very first scrape waits for the first encoding.
            (Err(_), None) => self.encoding.lock().unwrap_or_else(|e| e.into_inner()),
        };
        if let Some(e) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|e| fresh(e))
        {
            return e.body(format, gzip);
        }
        let encoded = Encoded {
            generation,
            at: Instant::now(),
            openmetrics: Bytes::from(exposition::encode(registry, Format::OpenMetrics)),
            openmetrics_gzip: OnceLock::new(),
            classic: OnceLock::new(),
            classic_gzip: OnceLock::new(),
        };
        // Make every form scrapers have asked for before publishing: otherwise the first
        // scrape of a form after each encoding builds it inside OnceLock::get_or_init, and
        // every concurrent scrape of that form blocks its thread behind it (the p99 of
        // bench-metrics, BENCHMARKS.md).
        self.mark_wanted(format, gzip);
        let wanted = self.wanted.load(Ordering::Relaxed);
        for (bit, format, gzip) in FORMS {
            if wanted & bit != 0 {
                encoded.body(format, gzip);
            }
        }
        let encoded = Arc::new(encoded);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(encoded.clone());
        encoded.body(format, gzip)
    }

    fn mark_wanted(&self, format: Format, gzip: bool) {
        if let Some((bit, ..)) = FORMS.iter().find(|f| (f.1, f.2) == (format, gzip)) {
            self.wanted.fetch_or(*bit, Ordering::Relaxed);
        }
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (`gzip` or `x-gzip` with q > 0).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            q > 0.0 && (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use std::io::Read;

    #[test]
    fn encodes_once_per_generation_and_age() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("c", "A counter.", counter.clone());
        let cache = ScrapeCache::default();
        let first = cache.get(&registry, 1, Format::OpenMetrics, false);
        counter.inc();
        let same = cache.get(&registry, 1, Format::OpenMetrics, false);
        assert_eq!(
            first, same,
            "within MAX_AGE and the same generation: cached bytes"
        );
        assert_eq!(first.as_ptr(), same.as_ptr());
        let soon = cache.get(&registry, 2, Format::OpenMetrics, false);
        assert_eq!(
            first.as_ptr(),
            soon.as_ptr(),
            "a change within MIN_AGE waits"
        );
        std::thread::sleep(MIN_AGE);
        let changed = cache.get(&registry, 2, Format::OpenMetrics, false);
        assert!(String::from_utf8_lossy(&changed).contains("c_total 1"));
        let classic = cache.get(&registry, 2, Format::Classic, false);
        assert!(!String::from_utf8_lossy(&classic).contains("# EOF"));

        let gz = cache.get(&registry, 2, Format::Classic, true);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &classic[..]);
    }

    #[test]
    fn forms_asked_for_are_made_before_publishing() {
        let registry = Registry::default();
        let cache = ScrapeCache::default();
        let built = |cache: &ScrapeCache| {
            let current = cache.current.read().unwrap();
            let e = current.as_ref().unwrap();
            (
                e.openmetrics_gzip.get().is_some(),
                e.classic.get().is_some(),
            )
        };
        cache.get(&registry, 1, Format::OpenMetrics, false);
        assert_eq!(built(&cache), (false, false), "nothing asked for yet");
        cache.get(&registry, 1, Format::OpenMetrics, true);
        // A new generation re-encodes on a plain scrape: the gzip form, asked for
        // before, is already there when the new body is published.
        std::thread::sleep(MIN_AGE);
        cache.get(&registry, 2, Format::OpenMetrics, false);
        assert_eq!(built(&cache), (true, false));
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, GZIP;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
