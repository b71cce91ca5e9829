//! The Microsoft Graph client: tokens ([`auth`]), pacing ([`ratelimit`]), requests with
//! retries ([`client`]), `@odata.nextLink` paging ([`paging`]) and typed errors ([`error`]).

pub mod assertion;
pub mod auth;
pub mod client;
pub mod device_code;
pub mod error;
pub mod paging;
pub mod ratelimit;

pub use client::{GraphClient, RetryPolicy};
pub use error::GraphError;

/// A reqwest client configured the one way this exporter talks HTTP: rustls (ring),
/// no redirects (a redirect must never carry the Authorization header elsewhere),
/// bounded timeouts.
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    builder(timeout)
        .build()
        .expect("the TLS provider is installed and the builder options are static")
}

/// [`http_client`] without proxies, for host-local endpoints (managed identity): a
/// proxy would see the request, or answer for the wrong host (graph-api.md §10.1).
pub fn local_http_client(timeout: std::time::Duration) -> reqwest::Client {
    builder(timeout)
        .no_proxy()
        .build()
        .expect("the TLS provider is installed and the builder options are static")
}

fn builder(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    // Idempotent: fails only when a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(timeout)
        // Idle connections kept per host: as many as Graph requests can be in flight
        // (`client::MAX_PAGES_IN_MEMORY`). Unbounded, the first token requests of 1,000
        // tenants left ~850 idle connections with their read buffers (~25 MB, heaptrack
        // of the 1,001-tenant bench); more at once are still opened, then closed.
        .pool_max_idle_per_host(client::MAX_PAGES_IN_MEMORY)
        .user_agent(concat!("entra-mfa-exporter/", env!("CARGO_PKG_VERSION")))
}
