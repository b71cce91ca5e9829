//! Walking a report's `@odata.nextLink` chain (graph-api.md §1.3), folding each page
//! as it arrives. The link is followed unchanged, but only to the configured Graph
//! root's origin, and never twice.

use std::collections::HashSet;

use super::client::GraphClient;
use super::error::GraphError;
use crate::odata::{PageFold, peek_next_link};

/// More pages than any tenant has (1M users at 999 rows is ~1,000 pages); a guard
/// against a server that keeps inventing links.
const MAX_PAGES: u64 = 100_000;

/// What a walk read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalkStats {
    /// Pages fetched.
    pub pages: u64,
    /// Rows folded.
    pub rows: u64,
}

/// Fetches `first_url` and every page after it into `fold`. On error the fold holds a
/// partial count and must be discarded.
pub async fn walk(
    client: &GraphClient,
    first_url: String,
    endpoint: &'static str,
    permission: &'static str,
    fold: &mut (dyn PageFold + Send),
) -> Result<WalkStats, GraphError> {
    let root = origin(client.graph_url()).unwrap_or_default();
    // The first URL counts as visited: a link back to it is a loop too.
    let mut seen = HashSet::from([first_url.clone()]);
    let mut stats = WalkStats::default();
    let mut page = client.get(&first_url, endpoint, permission).await?;
    loop {
        stats.pages += 1;
        // Fetch ahead: Graph puts the next link before `value`, so it can be read from
        // the head of the page and the next page requested while this one is folded.
        // Only a link the full parse confirms is used; the same origin and loop checks
        // apply before any request carries the token.
        let ahead = peek_next_link(&page)
            .filter(|next| origin(next).as_deref() == Some(root.as_str()) && !seen.contains(next));
        // The page is dropped as soon as it is folded: the next request can wait long in
        // the limiters (a tenant's turn at the per-app budget), and a page kept through
        // that wait by every tenant of an app was the exporter's peak memory
        // (BENCHMARKS.md "One app, 1,001 tenants"); it also holds one of the process's
        // few page permits (`client::MAX_PAGES_IN_MEMORY`).
        let (folded, fetched) = match ahead {
            Some(next) => {
                let fold = &mut *fold;
                // join! polls in order on the first poll: the request goes out first,
                // then the fold runs while Graph prepares the page.
                let (fetched, folded) =
                    tokio::join!(client.get(&next, endpoint, permission), async move {
                        let folded = off_the_worker(|| fold.fold_page(&page)).await;
                        drop(page);
                        folded
                    });
                (folded, Some((next, fetched)))
            }
            None => {
                let folded = fold.fold_page(&page);
                drop(page);
                (folded, None)
            }
        };
        let info = folded.map_err(|source| GraphError::Page {
            page: stats.pages,
            source,
        })?;
        stats.rows += info.rows;
        let Some(next) = info.next_link else {
            return Ok(stats);
        };
        let next_origin = origin(&next).unwrap_or_else(|| "(not an absolute URL)".into());
        if next_origin != root {
            return Err(GraphError::ForeignNextLink {
                expected: root,
                got: next_origin,
            });
        }
        if !seen.insert(next.clone()) || stats.pages >= MAX_PAGES {
            return Err(GraphError::NextLinkLoop(stats.pages));
        }
        page = match fetched {
            Some((url, result)) if url == next => result?,
            _ => client.get(&next, endpoint, permission).await?,
        };
    }
}

/// Runs the CPU-bound `f` (a page's fold) without holding up the tasks queued on this
/// worker. Sending the fetched-ahead request wakes the HTTP connection's task, which
/// tokio puts in this worker's LIFO slot, where no other worker may take it: folding in
/// place can delay the request until the fold is done and undo the fetch-ahead.
/// `block_in_place` hands the worker's queue to another thread first. It needs the
/// multi-threaded runtime, which the binary runs; elsewhere (single-threaded test
/// runtimes) the fold runs in place.
///
/// At most as many folds as there are cores run at once ([`FOLDS`]); the others wait
/// their turn without blocking a thread. More would not fold faster, and each one
/// blocking in place takes a thread of its own: with 1,000 tenants on one app up to 32
/// pages are folded at once, on as many threads, and glibc gives each its own malloc
/// arena, which keeps the memory its pages and folds freed (BENCHMARKS.md, issue 16).
async fn off_the_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => {
            // Never closed: acquiring cannot fail.
            let _turn = FOLDS
                .acquire()
                .await
                .expect("the fold semaphore is never closed");
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Folds running at once: one a core (the runtime's worker count), at least one.
static FOLDS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
});

/// `scheme://host:port` of a URL, with the default port made explicit.
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?
    ))
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://graph.microsoft.com/v1.0/x?$skiptoken=a").unwrap(),
            "https://graph.microsoft.com:443"
        );
        assert_eq!(
            origin("https://GRAPH.microsoft.com:443/").unwrap(),
            "https://graph.microsoft.com:443"
        );
        assert_ne!(
            origin("http://graph.microsoft.com/"),
            origin("https://graph.microsoft.com/")
        );
        assert_ne!(origin("http://127.0.0.1:1/"), origin("http://127.0.0.1:2/"));
        assert_eq!(origin("/relative"), None);
    }
}
