//! The `/metrics` body, encoded once and served from bytes: re-encoded when a snapshot
//! changes (the store's generation moves), but not more often than every [`MIN_AGE`]
//! (many tenants publish many times a second), and otherwise once it is [`MAX_AGE`]
//! old, so the exporter's own counters, which move with every Graph request, are never
//! staler than that. Each format and its gzip form are made on first use and
//! shared by every scrape until the next encoding.
//!
//! A scrape never waits for an encoding while a complete body exists: one that finds the
//! body stale serves the previous one and takes the turn to re-encode, which the server
//! runs on a thread of its own ([`ScrapeCache::lookup`]); the others serve the previous
//! body until the new one is published. Only the very first scrape waits.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::body::Body;
use crate::exposition::{self, Exposition, Format};

/// Longest time a body is reused while no snapshot changes.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Shortest time a body is reused when snapshots change: bounds the encoding work to a
/// few times a second however many refreshes finish (a new snapshot shows within this).
pub const MIN_AGE: Duration = Duration::from_millis(250);

/// One encoding of the registry, each form made once. Only the forms scrapers ask for
/// are kept: a Prometheus server asks for gzip, and the identity text (15 times the
/// size) is then dropped once compressed, and made again from the gzip form if asked.
pub struct Encoded {
    generation: u64,
    at: Instant,
    /// Bytes of the OpenMetrics text: the next encoding's capacity.
    len: usize,
    /// Kept while wanted, and always until its gzip form exists (one of the two is).
    openmetrics: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Bytes>,
    /// Likewise kept while wanted or until its gzip form exists.
    classic: OnceLock<Bytes>,
    classic_gzip: OnceLock<Bytes>,
}

impl Encoded {
    /// The body in `format`, gzip-compressed when `gzip`.
    pub fn body(&self, format: Format, gzip: bool) -> Bytes {
        match (format, gzip) {
            (Format::OpenMetrics, false) => self.openmetrics().clone(),
            (Format::OpenMetrics, true) => self
                .openmetrics_gzip
                .get_or_init(|| compress(self.openmetrics()))
                .clone(),
            (Format::Classic, false) => self.classic().clone(),
            (Format::Classic, true) => self
                .classic_gzip
                .get_or_init(|| compress(self.classic()))
                .clone(),
        }
    }

    fn openmetrics(&self) -> &Bytes {
        self.openmetrics.get_or_init(|| {
            decompress(
                self.openmetrics_gzip
                    .get()
                    .expect("the text is dropped only once compressed"),
            )
        })
    }

    fn classic(&self) -> &Bytes {
        self.classic.get_or_init(|| {
            if let Some(gz) = self.classic_gzip.get() {
                return decompress(gz);
            }
            // prometheus-client writes valid UTF-8; the lossy path is never taken.
            let om = String::from_utf8_lossy(self.openmetrics());
            Bytes::from(exposition::to_classic(&om))
        })
    }

    /// Drops the identity forms not in `wanted` (bits of [`FORMS`]) whose gzip form
    /// exists.
    fn drop_unwanted(&mut self, wanted: u8) {
        if wanted & OPENMETRICS == 0 && self.openmetrics_gzip.get().is_some() {
            self.openmetrics.take();
        }
        if wanted & CLASSIC == 0 && self.classic_gzip.get().is_some() {
            self.classic.take();
        }
    }
}

fn decompress(gz: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(gz.len() * 16);
    // Our own gzip, in memory: it cannot fail.
    std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut out).expect("gunzip our own body");
    Bytes::from(out)
}

fn compress(data: &[u8]) -> Bytes {
    let mut gz =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), crate::body::LEVEL);
    // Writing to a Vec cannot fail.
    gz.write_all(data).expect("gzip into memory");
    Bytes::from(gz.finish().expect("gzip into memory"))
}

/// [`FORMS`] bits of the identity forms.
const CLASSIC: u8 = 2;
const CLASSIC_GZIP: u8 = 4;
const OPENMETRICS: u8 = 8;

/// Every form, each with its bit in [`ScrapeCache::wanted`].
const FORMS: [(u8, Format, bool); 4] = [
    (1, Format::OpenMetrics, true),
    (CLASSIC, Format::Classic, false),
    (CLASSIC_GZIP, Format::Classic, true),
    (OPENMETRICS, Format::OpenMetrics, false),
];

/// The cached exposition.
#[derive(Default)]
pub struct ScrapeCache {
    current: RwLock<Option<Arc<Encoded>>>,
    /// Set while a re-encoding runs (see [`Turn`]): one at a time.
    encoding: Arc<AtomicBool>,
    /// Held by the very first encoding, which every scrape before it waits for.
    first: Mutex<()>,
    /// The forms scrapers have asked for (bits of [`FORMS`]), made eagerly at each encoding.
    wanted: AtomicU8,
    /// The re-encoding thread's queue ([`ScrapeCache::in_background`]), once started.
    background: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

/// A re-encoding, run on the cache's thread.
type Job = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for ScrapeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeCache").finish_non_exhaustive()
    }
}

/// The right to re-encode, taken by one stale scrape at a time; dropping it (after
/// [`ScrapeCache::encode`], or without encoding) gives it back. `Send`, so the
/// encoding can run off the request's thread.
#[derive(Debug)]
#[must_use = "a stale body is only re-encoded by passing the turn to ScrapeCache::encode"]
pub struct Turn(Arc<AtomicBool>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What a scrape finds without encoding ([`ScrapeCache::lookup`]).
#[derive(Debug)]
pub enum Lookup {
    /// The body to serve: fresh, or stale while another scrape's re-encoding runs.
    Ready(Bytes),
    /// The last complete body, stale: serve it, and re-encode with the turn (in the
    /// background: the scrape must not wait for it).
    Stale(Bytes, Turn),
    /// Nothing encoded yet: the scrape waits for the first encoding
    /// ([`ScrapeCache::get`]).
    Empty,
}

impl ScrapeCache {
    /// The body of `e` in `format` (gzip-compressed when `gzip`), for a store at
    /// `generation`, encoding here when it is stale (see [`lookup`](Self::lookup) for a
    /// scrape that must not wait).
    pub fn get(&self, e: Exposition<'_>, generation: u64, format: Format, gzip: bool) -> Bytes {
        match self.lookup(generation, format, gzip) {
            Lookup::Ready(body) => body,
            Lookup::Stale(_, turn) => self.encode(e, generation, turn).body(format, gzip),
            Lookup::Empty => {
                self.mark_wanted(format, gzip);
                let _first = self.first.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(e) = self.current() {
                    return e.body(format, gzip);
                }
                let turn = self.take_turn().unwrap_or_else(|| Turn(Arc::default()));
                self.encode(e, generation, turn).body(format, gzip)
            }
        }
    }

    /// The body to serve now without encoding, for a store at `generation`: the cached
    /// one while fresh, else the last complete one, with the [`Turn`] to re-encode if no
    /// other scrape has it. A scrape never waits for an encoding while a complete body
    /// exists.
    pub fn lookup(&self, generation: u64, format: Format, gzip: bool) -> Lookup {
        let Some(e) = self.current() else {
            return Lookup::Empty;
        };
        self.mark_wanted(format, gzip);
        let body = e.body(format, gzip);
        if fresh(&e, generation) {
            return Lookup::Ready(body);
        }
        match self.take_turn() {
            Some(turn) => Lookup::Stale(body, turn),
            // Someone is re-encoding: the previous body is at most moments older.
            None => Lookup::Ready(body),
        }
    }

    /// Encodes `e` for a store at `generation`, makes every form scrapers have asked
    /// for, and publishes the result (which it returns). `turn` is given back when done.
    pub fn encode(&self, e: Exposition<'_>, generation: u64, turn: Turn) -> Arc<Encoded> {
        let wanted = self.wanted.load(Ordering::Relaxed);
        let last = self.current();
        let mut encoded = Encoded {
            generation,
            at: Instant::now(),
            len: 0,
            openmetrics: OnceLock::new(),
            openmetrics_gzip: OnceLock::new(),
            classic: OnceLock::new(),
            classic_gzip: OnceLock::new(),
        };
        if wanted & (OPENMETRICS | CLASSIC | CLASSIC_GZIP) == 0 {
            // Only the gzip form is wanted (a Prometheus server's scrapes): the text is
            // compressed as it is encoded and never whole in memory (it is 15 times the
            // gzip form: ~40 MB for 1,001 tenants, BENCHMARKS.md), nor are the samples
            // (each family's are compressed as the tenants are walked, crate::body).
            let capacity = last.map_or(0, |e| e.openmetrics_gzip.get().map_or(0, Bytes::len));
            let mut body = Body::gzip(capacity + capacity / 16);
            e.write(&mut body);
            let (gz, len) = body.finish();
            encoded.len = len;
            encoded.openmetrics_gzip = OnceLock::from(gz);
        } else {
            // The last body's size (and a little): no regrowing, no doubled capacity kept.
            let capacity = last.map_or(0, |e| e.len + e.len / 16);
            let mut text = exposition::encode_openmetrics(e, capacity);
            if text.capacity() > text.len() + text.len() / 8 {
                text.shrink_to_fit();
            }
            encoded.len = text.len();
            encoded.openmetrics = OnceLock::from(Bytes::from(text));
        }
        // Make every form scrapers have asked for before publishing: otherwise the first
        // scrape of a form after each encoding builds it inside OnceLock::get_or_init, and
        // every concurrent scrape of that form blocks its thread behind it (the p99 of
        // bench-metrics, BENCHMARKS.md).
        for (bit, format, gzip) in FORMS {
            if wanted & bit != 0 {
                encoded.body(format, gzip);
            }
        }
        encoded.drop_unwanted(wanted);
        let encoded = Arc::new(encoded);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(encoded.clone());
        drop(turn);
        encoded
    }

    /// Runs `job` (a re-encoding with a [`Turn`]) on the cache's own thread, started on
    /// first use and kept while the cache is. One thread for every re-encoding rather
    /// than a thread each: glibc gives each new thread a malloc arena of its own, and
    /// every arena keeps the memory its encodings freed (BENCHMARKS.md, issue 16).
    pub fn in_background(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let mut background = self.background.lock().unwrap_or_else(|e| e.into_inner());
        let mut job: Job = Box::new(job);
        if let Some(queue) = background.as_ref() {
            match queue.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone (a job panicked): start another.
                Err(std::sync::mpsc::SendError(back)) => job = back,
            }
        }
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("encode".into())
            .spawn(move || {
                for job in jobs {
                    job();
                }
            })?;
        // The receiver lives until the thread ends, which is not before this send.
        queue
            .send(job)
            .expect("the encoding thread was just started");
        *background = Some(queue);
        Ok(())
    }

    fn current(&self) -> Option<Arc<Encoded>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn take_turn(&self) -> Option<Turn> {
        self.encoding
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then(|| Turn(self.encoding.clone()))
    }

    fn mark_wanted(&self, format: Format, gzip: bool) {
        if let Some((bit, ..)) = FORMS.iter().find(|f| (f.1, f.2) == (format, gzip)) {
            self.wanted.fetch_or(*bit, Ordering::Relaxed);
        }
    }
}

/// Whether `e` may be served as it is to a store at `generation`.
fn fresh(e: &Encoded, generation: u64) -> bool {
    let age = e.at.elapsed();
    age < MIN_AGE || (e.generation == generation && age < MAX_AGE)
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
    use prometheus_client::registry::Registry;
    use std::io::Read;

    #[test]
    fn encodes_once_per_generation_and_age() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("c", "A counter.", counter.clone());
        let cache = ScrapeCache::default();
        let first = cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            false,
        );
        counter.inc();
        let same = cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            false,
        );
        assert_eq!(
            first, same,
            "within MAX_AGE and the same generation: cached bytes"
        );
        assert_eq!(first.as_ptr(), same.as_ptr());
        let soon = cache.get(
            Exposition::registry(&registry),
            2,
            Format::OpenMetrics,
            false,
        );
        assert_eq!(
            first.as_ptr(),
            soon.as_ptr(),
            "a change within MIN_AGE waits"
        );
        std::thread::sleep(MIN_AGE);
        let changed = cache.get(
            Exposition::registry(&registry),
            2,
            Format::OpenMetrics,
            false,
        );
        assert!(String::from_utf8_lossy(&changed).contains("c_total 1"));
        let classic = cache.get(Exposition::registry(&registry), 2, Format::Classic, false);
        assert!(!String::from_utf8_lossy(&classic).contains("# EOF"));

        let gz = cache.get(Exposition::registry(&registry), 2, Format::Classic, true);
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
        cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            false,
        );
        assert_eq!(built(&cache), (false, false), "nothing asked for yet");
        cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            true,
        );
        // A new generation re-encodes on a plain scrape: the gzip form, asked for
        // before, is already there when the new body is published.
        std::thread::sleep(MIN_AGE);
        cache.get(
            Exposition::registry(&registry),
            2,
            Format::OpenMetrics,
            false,
        );
        assert_eq!(built(&cache), (true, false));
    }

    #[test]
    fn identity_text_is_kept_only_when_asked_for() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("c", "A counter.", counter.clone());
        let cache = ScrapeCache::default();
        let kept = |cache: &ScrapeCache| {
            let current = cache.current.read().unwrap();
            let e = current.as_ref().unwrap();
            (e.openmetrics.get().is_some(), e.classic.get().is_some())
        };
        let gz = cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            true,
        );
        cache.get(Exposition::registry(&registry), 1, Format::Classic, true);
        counter.inc();
        std::thread::sleep(MIN_AGE);
        let gz2 = cache.get(
            Exposition::registry(&registry),
            2,
            Format::OpenMetrics,
            true,
        );
        assert_ne!(gz, gz2);
        assert_eq!(kept(&cache), (false, false), "only the gzip forms kept");
        // Asked for after all: made from the gzip form, the same text.
        let text = cache.get(
            Exposition::registry(&registry),
            2,
            Format::OpenMetrics,
            false,
        );
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz2[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &text[..]);
        assert!(plain.contains("c_total 1"));
        let classic = cache.get(Exposition::registry(&registry), 2, Format::Classic, false);
        assert!(!String::from_utf8_lossy(&classic).contains("# EOF"));
        // Wanted from now on: the next encoding keeps them.
        std::thread::sleep(MIN_AGE);
        cache.get(
            Exposition::registry(&registry),
            3,
            Format::OpenMetrics,
            true,
        );
        assert_eq!(kept(&cache), (true, true));
    }

    /// A collector that, once armed, holds the encoding until the test releases it.
    #[derive(Debug, Default)]
    struct Gate {
        armed: std::sync::atomic::AtomicBool,
        started: Mutex<Option<std::sync::mpsc::Sender<()>>>,
        release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    }

    impl prometheus_client::collector::Collector for Gate {
        fn encode(
            &self,
            _: prometheus_client::encoding::DescriptorEncoder,
        ) -> Result<(), std::fmt::Error> {
            if self.armed.load(Ordering::SeqCst) {
                if let Some(started) = self.started.lock().unwrap().as_ref() {
                    started.send(()).unwrap();
                }
                let release = self.release.lock().unwrap();
                // Bounded: a test that never releases fails instead of hanging.
                release
                    .as_ref()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the test releases the encoding");
            }
            Ok(())
        }
    }

    #[test]
    fn a_scrape_during_a_re_encode_is_served_the_previous_body() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let gate = Arc::new(Gate::default());
        *gate.started.lock().unwrap() = Some(started_tx);
        *gate.release.lock().unwrap() = Some(release_rx);
        #[derive(Debug)]
        struct Shared(Arc<Gate>);
        impl prometheus_client::collector::Collector for Shared {
            fn encode(
                &self,
                encoder: prometheus_client::encoding::DescriptorEncoder,
            ) -> Result<(), std::fmt::Error> {
                self.0.encode(encoder)
            }
        }
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("c", "A counter.", counter.clone());
        registry.register_collector(Box::new(Shared(gate.clone())));
        let registry = Arc::new(registry);
        let cache = Arc::new(ScrapeCache::default());

        let first = cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            true,
        );
        counter.inc();
        gate.armed.store(true, Ordering::SeqCst);
        std::thread::sleep(MIN_AGE);
        // Stale (a new generation, past MIN_AGE): served the previous body, with the turn.
        let Lookup::Stale(body, turn) = cache.lookup(2, Format::OpenMetrics, true) else {
            panic!("a stale body comes with the turn to re-encode");
        };
        assert_eq!(body.as_ptr(), first.as_ptr());
        let encoder = {
            let (cache, registry) = (cache.clone(), registry.clone());
            std::thread::spawn(move || {
                cache.encode(Exposition::registry(&registry), 2, turn);
            })
        };
        started_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the re-encode started");
        // While it runs, every scrape gets the previous body at once, even through
        // `get` (which would otherwise encode itself), and nobody else gets the turn.
        for _ in 0..3 {
            match cache.lookup(2, Format::OpenMetrics, true) {
                Lookup::Ready(b) => assert_eq!(b.as_ptr(), first.as_ptr()),
                other => panic!("expected the previous body, got {other:?}"),
            }
            let b = cache.get(
                Exposition::registry(&registry),
                2,
                Format::OpenMetrics,
                true,
            );
            assert_eq!(b.as_ptr(), first.as_ptr());
        }
        release_tx.send(()).unwrap();
        encoder.join().unwrap();
        gate.armed.store(false, Ordering::SeqCst);
        let Lookup::Ready(new) = cache.lookup(2, Format::OpenMetrics, true) else {
            panic!("the new body is fresh");
        };
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&new[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert!(plain.contains("c_total 1"), "{plain}");
        assert!(
            cache.take_turn().is_some(),
            "the turn is given back after the encoding"
        );
    }

    #[test]
    fn a_gzip_only_scraper_gets_the_text_compressed_as_it_is_encoded() {
        let mut registry = Registry::default();
        // Well over one chunk of text, so the stream is written in several pieces.
        for i in 0..4_000 {
            let counter = Counter::<u64>::default();
            counter.inc_by(i);
            registry.register(format!("c{i}"), "A counter.", counter);
        }
        let text = exposition::encode_openmetrics(Exposition::registry(&registry), 0);
        assert!(text.len() > 128 << 10, "{}", text.len());
        let cache = ScrapeCache::default();
        let gz = cache.get(
            Exposition::registry(&registry),
            1,
            Format::OpenMetrics,
            true,
        );
        let current = cache.current().unwrap();
        assert!(
            current.openmetrics.get().is_none(),
            "no identity text made for a gzip-only scraper"
        );
        assert_eq!(
            current.len,
            text.len(),
            "the text's length is known all the same"
        );
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, text);
    }

    #[test]
    fn every_background_encoding_runs_on_one_thread() {
        let cache = ScrapeCache::default();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            cache
                .in_background(move || tx.send(std::thread::current().id()).unwrap())
                .unwrap();
        }
        let ids: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        assert_ne!(ids[0], std::thread::current().id());
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        // A job that panics ends the thread; a job after it gets a new one (one sent
        // while the old thread is still going down is dropped with it: try again).
        cache.in_background(|| panic!("a job fails")).unwrap();
        let mut after = None;
        for _ in 0..300 {
            let tx = tx.clone();
            cache
                .in_background(move || tx.send(std::thread::current().id()).unwrap())
                .unwrap();
            if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
                after = Some(id);
                break;
            }
        }
        assert!(after.is_some_and(|id| id != ids[0]), "{after:?}");
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
