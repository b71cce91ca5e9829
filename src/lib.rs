//! entra-mfa-exporter: Microsoft Entra ID authentication-methods reports as Prometheus metrics.
//!
//! Data flows one way (design.md): [`config`] ▸ [`graph`] client (auth, retry, paging)
//! ▸ [`reports`] rows parsed page by page ▸ [`aggregate`] counts ▸ [`snapshot`] store
//! ▸ [`server`] `/metrics`. [`poller`] drives refreshes; [`simulate`] is the fake Graph.

pub mod aggregate;
pub mod app;
pub mod atomic_file;
pub mod body;
pub mod certificate;
pub mod cloud;
pub mod collect;
pub mod config;
pub mod exposition;
pub mod families;
pub mod graph;
pub mod landing;
pub mod logging;
pub mod membership;
pub mod metrics;
pub mod odata;
pub mod poller;
pub mod privileged;
pub mod reports;
pub mod scrape_cache;
pub mod secret;
pub mod server;
pub mod shard;
pub mod simulate;
pub mod snapshot;
pub mod snapshot_file;
pub mod util;
pub mod web_config;
