//! Parse-and-fold throughput of real-shaped registration pages, next to the floor of
//! parsing the same bytes into `serde::de::IgnoredAny` (issue 7, BENCHMARKS.md).
//!
//! The pages come from the simulator over loopback (999 rows each, as Graph sends with
//! `$top=999`), fetched once before timing; only the parsing is timed.
//! Run: `cargo bench --bench parse_fold`.

use std::sync::OnceLock;

use divan::counter::{BytesCount, ItemsCount};
use entra_mfa_exporter::odata::fold_page;
use entra_mfa_exporter::reports::{
    credential_user_registration_details, user_registration_details,
};
use entra_mfa_exporter::simulate::{SimConfig, SimServer, SimTenant};
use serde::de::IgnoredAny;

#[path = "support/graph.rs"]
mod graph;

const TENANT: &str = "bench.onmicrosoft.com";
const CLIENT: &str = "00000000-0000-4000-8000-0000000be7c4";
const SECRET: &str = "bench-secret-not-a-credential";
const USERS: u64 = 10 * 999;
const PAGE: u32 = 999;

/// The pages of one report, and their row count.
struct Pages {
    bodies: Vec<Vec<u8>>,
    rows: usize,
}

impl Pages {
    fn bytes(&self) -> usize {
        self.bodies.iter().map(Vec::len).sum()
    }
}

fn fetch(path: &str) -> Pages {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let config = SimConfig {
            tenants: vec![SimTenant::new(TENANT, CLIENT, SECRET, USERS, 7)],
            ..SimConfig::default()
        };
        let sim = SimServer::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .expect("simulator on loopback");
        let base = sim.base_url();
        let http = entra_mfa_exporter::graph::http_client(std::time::Duration::from_secs(60));
        let bearer = graph::bearer(&http, &base, TENANT, CLIENT, SECRET).await;
        let mut url = Some(format!("{base}{path}?$top={PAGE}"));
        let mut pages = Pages {
            bodies: Vec::new(),
            rows: 0,
        };
        while let Some(u) = url.take() {
            let body = graph::page(&http, &u, &bearer).await;
            let v: serde_json::Value = serde_json::from_slice(&body).expect("page json");
            pages.rows += v["value"].as_array().expect("value").len();
            url = v["@odata.nextLink"].as_str().map(str::to_owned);
            pages.bodies.push(body.to_vec());
        }
        sim.shutdown().await;
        pages
    })
}

fn current() -> &'static Pages {
    static P: OnceLock<Pages> = OnceLock::new();
    P.get_or_init(|| fetch("/v1.0/reports/authenticationMethods/userRegistrationDetails"))
}

fn legacy() -> &'static Pages {
    static P: OnceLock<Pages> = OnceLock::new();
    P.get_or_init(|| fetch("/beta/reports/credentialUserRegistrationDetails"))
}

fn counters(p: &Pages) -> (BytesCount, ItemsCount) {
    (BytesCount::new(p.bytes()), ItemsCount::new(p.rows))
}

/// The floor: the same bytes parsed into `IgnoredAny` (tokenised and validated, nothing kept).
#[divan::bench]
fn user_registration_details_ignored_any(b: divan::Bencher) {
    let p = current();
    b.counter(counters(p).0).counter(counters(p).1).bench(|| {
        for body in &p.bodies {
            let v: IgnoredAny = serde_json::from_slice(divan::black_box(body)).expect("json");
            divan::black_box(v);
        }
    });
}

/// What the exporter does with each page: parse and fold into counts.
#[divan::bench]
fn user_registration_details_fold(b: divan::Bencher) {
    let p = current();
    b.counter(counters(p).0).counter(counters(p).1).bench(|| {
        let mut fold = user_registration_details::Folder::default();
        for body in &p.bodies {
            fold_page(divan::black_box(body), &mut fold).expect("page");
        }
        divan::black_box(fold);
    });
}

/// The floor for the legacy report's pages.
#[divan::bench]
fn credential_user_registration_details_ignored_any(b: divan::Bencher) {
    let p = legacy();
    b.counter(counters(p).0).counter(counters(p).1).bench(|| {
        for body in &p.bodies {
            let v: IgnoredAny = serde_json::from_slice(divan::black_box(body)).expect("json");
            divan::black_box(v);
        }
    });
}

/// Parse and fold of the legacy report.
#[divan::bench]
fn credential_user_registration_details_fold(b: divan::Bencher) {
    let p = legacy();
    b.counter(counters(p).0).counter(counters(p).1).bench(|| {
        let mut fold = credential_user_registration_details::Folder::default();
        for body in &p.bodies {
            fold_page(divan::black_box(body), &mut fold).expect("page");
        }
        divan::black_box(fold);
    });
}

fn main() {
    divan::main();
}

/// Diagnostic: rows deserialized but not folded.
#[divan::bench]
fn user_registration_details_rows_only(b: divan::Bencher) {
    struct Drop0(u64);
    impl entra_mfa_exporter::odata::Fold for Drop0 {
        type Row<'de> = user_registration_details::Row<'de>;
        fn add(&mut self, row: Self::Row<'_>) {
            self.0 += u64::from(row.is_admin == Some(true));
            divan::black_box(row);
        }
    }
    let p = current();
    b.counter(counters(p).0).counter(counters(p).1).bench(|| {
        let mut fold = Drop0(0);
        for body in &p.bodies {
            fold_page(divan::black_box(body), &mut fold).expect("page");
        }
        divan::black_box(fold.0);
    });
}
