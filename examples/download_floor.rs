//! The floor for the end-to-end benchmark (BENCHMARKS.md): walk every page of a report
//! the way the exporter does (one client-credentials token, then `@odata.nextLink` page
//! after page over the same HTTP client), but do nothing with the bytes except find the
//! next link. Nothing is parsed as JSON, nothing counted.
//!
//! `cargo run --release --example download_floor -- BASE_URL TENANT CLIENT_ID PAGE_SIZE`
//! with the client secret in `FLOOR_CLIENT_SECRET`. Prints pages and bytes read.

use std::time::Duration;

#[path = "../benches/support/graph.rs"]
mod graph;

const PATH: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const KEY: &[u8] = b"\"@odata.nextLink\":\"";

/// The next link, found by a byte search of the page's head (Graph and the simulator put
/// it before `value`) and, failing that, its tail.
fn next_link(body: &[u8]) -> Option<String> {
    let find = |hay: &[u8]| hay.windows(KEY.len()).position(|w| w == KEY);
    let head = &body[..body.len().min(4096)];
    let tail_start = body.len().saturating_sub(4096);
    let start =
        find(head).or_else(|| find(&body[tail_start..]).map(|i| i + tail_start))? + KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&body[start..start + len]).replace("\\/", "/"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, tenant, client_id, page_size] = args.as_slice() else {
        eprintln!(
            "usage: download_floor BASE_URL TENANT CLIENT_ID PAGE_SIZE (secret in FLOOR_CLIENT_SECRET)"
        );
        std::process::exit(2);
    };
    let secret = std::env::var("FLOOR_CLIENT_SECRET").expect("FLOOR_CLIENT_SECRET");
    let http = entra_mfa_exporter::graph::http_client(Duration::from_secs(120));
    let bearer = graph::bearer(&http, base, tenant, client_id, &secret).await;
    let (mut pages, mut bytes) = (0u64, 0u64);
    let mut url = Some(format!("{base}{PATH}?$top={page_size}"));
    while let Some(u) = url.take() {
        let body = graph::page(&http, &u, &bearer).await;
        pages += 1;
        bytes += body.len() as u64;
        url = next_link(&body);
    }
    println!("pages={pages} bytes={bytes}");
}
