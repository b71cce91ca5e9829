//! The process-wide bound on Graph pages in memory (`MAX_PAGES_IN_MEMORY`): many
//! clients' requests at once against a loopback server that counts them, none over the
//! cap; and a walk waiting for its next page holds none. Its own test binary (own
//! process), so no other test's requests hold permits meanwhile; the tests here take
//! turns ([`SERIAL`]) for the same reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use entra_mfa_exporter::config::Config;
use entra_mfa_exporter::graph::client::{MAX_PAGES_IN_MEMORY, pages_in_memory};
use entra_mfa_exporter::graph::paging::walk;
use entra_mfa_exporter::graph::ratelimit::RateLimiter;
use entra_mfa_exporter::graph::{GraphClient, RetryPolicy};
use entra_mfa_exporter::metrics::ExporterMetrics;
use entra_mfa_exporter::odata::{PageError, PageFold, PageInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One test at a time: the permits are the process's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Default)]
struct Counts {
    now: AtomicUsize,
    max: AtomicUsize,
    answered: AtomicUsize,
}

/// Reads one request (head and `Content-Length` body); returns its request line.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    head.lines().next().map(str::to_owned)
}

/// Answers token POSTs at once; holds each GET until `all` GETs are in flight (never,
/// under a cap below it) or 1 s has passed, counting how many are in flight at most.
async fn serve(stream: TcpStream, counts: Arc<Counts>, all: usize) {
    let mut stream = stream;
    let Some(line) = read_request(&mut stream).await else {
        return;
    };
    let body = if line.starts_with("post") {
        r#"{"token_type":"Bearer","expires_in":3600,"access_token":"t"}"#
    } else {
        let now = counts.now.fetch_add(1, Ordering::SeqCst) + 1;
        counts.max.fetch_max(now, Ordering::SeqCst);
        for _ in 0..200 {
            if counts.now.load(Ordering::SeqCst) >= all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        counts.now.fetch_sub(1, Ordering::SeqCst);
        counts.answered.fetch_add(1, Ordering::SeqCst);
        r#"{"value":[]}"#
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_cap_of_graph_requests_are_in_flight_at_once() {
    let _serial = SERIAL.lock().await;
    let cap = MAX_PAGES_IN_MEMORY;
    let requests = 3 * cap;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let server = tokio::spawn({
        let counts = counts.clone();
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, counts.clone(), requests));
            }
        }
    });
    // Three tenants (own limiters, own tokens), limits far above what is sent.
    let mut toml = String::from("max_requests_per_10s = 100000\n");
    for i in 0..3 {
        toml.push_str(&format!(
            "[[tenants]]\nname = \"t{i}\"\ntenant_id = \"0000000{i}-0000-0000-0000-000000000000\"\n\
             client_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"s\"\n\
             graph_url = \"{url}\"\nlogin_url = \"{url}\"\nreports = [\"user_registration_details\"]\n"
        ));
    }
    let clients: Vec<Arc<GraphClient>> = clients(&toml).into_iter().map(Arc::new).collect();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let mut tasks = Vec::new();
        for i in 0..requests {
            let client = clients[i % clients.len()].clone();
            let url = format!("{url}/v1.0/reports/page{i}");
            tasks.push(tokio::spawn(async move {
                // The page is dropped here: kept in the task's output until awaited (in
                // spawn order, not the permits' order) it would hold its permit meanwhile.
                client
                    .get(&url, "userRegistrationDetails", "AuditLog.Read.All")
                    .await
                    .map(drop)
            }));
        }
        let mut ok = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        ok
    })
    .await;
    server.abort();
    let ok = outcome.expect("the requests end within the bound");
    assert_eq!(ok, requests, "every request answered");
    assert_eq!(counts.answered.load(Ordering::SeqCst), requests);
    let max = counts.max.load(Ordering::SeqCst);
    assert!(max <= cap, "{max} requests in flight at once, cap {cap}");
    assert_eq!(
        max, cap,
        "the cap is reached: it is the bound, not something lower"
    );
    assert_eq!(
        pages_in_memory(),
        0,
        "every page dropped, every permit back"
    );
}

fn clients(toml: &str) -> Vec<GraphClient> {
    let config = Config::from_toml(toml).unwrap();
    let http = entra_mfa_exporter::graph::http_client(Duration::from_secs(30));
    config
        .tenants
        .iter()
        .map(|t| {
            GraphClient::new(
                http.clone(),
                t,
                ExporterMetrics::new(),
                RetryPolicy::default(),
            )
        })
        .collect()
}

/// Answers token POSTs, `/p1` with a page linking to `/p2` and `/p2` with a last page,
/// counting the GETs of `/p2`.
async fn serve_pages(mut stream: TcpStream, url: String, second: Arc<AtomicUsize>) {
    let Some(line) = read_request(&mut stream).await else {
        return;
    };
    let rows = format!("[{}]", vec![r#"{"id":"u"}"#; 500].join(","));
    let body = if line.starts_with("post") {
        r#"{"token_type":"Bearer","expires_in":3600,"access_token":"t"}"#.to_owned()
    } else if line.contains("/p1") {
        format!(r#"{{"@odata.nextLink":"{url}/v1.0/p2","value":{rows}}}"#)
    } else {
        second.fetch_add(1, Ordering::SeqCst);
        format!(r#"{{"value":{rows}}}"#)
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Counts the pages folded; the link is the page's own.
struct Pages(Arc<AtomicUsize>);

impl PageFold for Pages {
    fn fold_page(&mut self, bytes: &[u8]) -> Result<PageInfo, PageError> {
        let page: serde_json::Value = serde_json::from_slice(bytes)?;
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(PageInfo {
            next_link: page["@odata.nextLink"].as_str().map(str::to_owned),
            rows: page["value"].as_array().map_or(0, |v| v.len() as u64),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_waiting_for_its_next_page_holds_no_page() {
    let _serial = SERIAL.lock().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let second = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn({
        let (url, second) = (url.clone(), second.clone());
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_pages(stream, url.clone(), second.clone()));
            }
        }
    });
    let toml = format!(
        "[[tenants]]\nname = \"t\"\ntenant_id = \"00000000-0000-0000-0000-000000000000\"\n\
         client_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"s\"\n\
         graph_url = \"{url}\"\nlogin_url = \"{url}\"\nreports = [\"user_registration_details\"]\n"
    );
    // One request per 10 minutes: the first page goes, the second waits its turn in the
    // limiter as a tenant waits for the per-app budget (the 1,001-tenant bench).
    let client = clients(&toml)
        .remove(0)
        .with_rate_limiter(Arc::new(RateLimiter::with_window(
            1,
            Duration::from_secs(600),
        )));
    let folded = Arc::new(AtomicUsize::new(0));
    let walking = tokio::spawn({
        let folded = folded.clone();
        let first = format!("{url}/v1.0/p1");
        async move {
            let mut fold = Pages(folded);
            walk(
                &client,
                first,
                "userRegistrationDetails",
                "AuditLog.Read.All",
                &mut fold,
            )
            .await
        }
    });
    // Bounded: 1,000 looks 5 ms apart.
    let mut held = usize::MAX;
    for _ in 0..1_000 {
        held = pages_in_memory();
        if folded.load(Ordering::SeqCst) == 1 && held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let state = (folded.load(Ordering::SeqCst), second.load(Ordering::SeqCst));
    walking.abort();
    server.abort();
    assert_eq!(
        state,
        (1, 0),
        "(pages folded, requests for page 2): page 2 waits in the limiter"
    );
    assert_eq!(
        held, 0,
        "the folded page is dropped while the next one waits"
    );
}
