//! The exporter's own counters and histograms (`entra_exporter_*`), shared by the Graph
//! client and the pollers. Gauges about report state come from the snapshot store.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels `{tenant, endpoint, code}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Tenant name.
    pub tenant: String,
    /// Graph endpoint name, e.g. `userRegistrationDetails`.
    pub endpoint: String,
    /// HTTP status, or `error` when no response arrived.
    pub code: String,
}

/// Labels `{tenant, endpoint}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Tenant name.
    pub tenant: String,
    /// Graph endpoint name.
    pub endpoint: String,
}

/// Labels `{tenant, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// Tenant name.
    pub tenant: String,
    /// `throttled`, `server_error`, `timeout`, `network`, `token_expired`.
    pub reason: String,
}

/// Labels `{tenant, result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Tenant name.
    pub tenant: String,
    /// `success` or `error`.
    pub result: String,
}

/// Labels `{tenant, report, result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    /// Tenant name.
    pub tenant: String,
    /// Report config name.
    pub report: String,
    /// `success` or `error`.
    pub result: String,
}

/// Why a request was retried (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 429.
    Throttled,
    /// 503 or 504 (and other 5xx Graph asks to retry).
    ServerError,
    /// No response in time.
    Timeout,
    /// Connection failed or broke.
    Network,
    /// 401 with an expired token: renewed and retried.
    TokenExpired,
}

impl RetryReason {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::TokenExpired => "token_expired",
        }
    }
}

/// Every self-metric the exporter updates as it works.
#[derive(Debug, Clone)]
pub struct ExporterMetrics {
    /// `entra_exporter_graph_requests_total`
    pub graph_requests: Family<RequestLabels, Counter>,
    /// `entra_exporter_graph_retries_total`
    pub graph_retries: Family<RetryLabels, Counter>,
    /// `entra_exporter_graph_request_duration_seconds`
    pub graph_request_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// `entra_exporter_token_requests_total`
    pub token_requests: Family<ResultLabels, Counter>,
    /// `entra_exporter_report_refreshes_total`
    pub refreshes: Family<RefreshLabels, Counter>,
}

fn request_histogram() -> Histogram {
    // Graph report pages take from ~100 ms to tens of seconds for 999 rows.
    Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ExporterMetrics {
    /// New, empty metrics.
    pub fn new() -> Self {
        Self {
            graph_requests: Family::default(),
            graph_retries: Family::default(),
            graph_request_duration: Family::new_with_constructor(request_histogram),
            token_requests: Family::default(),
            refreshes: Family::default(),
        }
    }

    /// Registers every family (and `entra_exporter_build_info`) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "entra_exporter_build",
            "Build information: version and git revision of the running exporter.",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "revision",
                    option_env!("ENTRA_MFA_EXPORTER_GIT_REVISION").unwrap_or("unknown"),
                ),
            ]),
        );
        registry.register(
            "entra_exporter_graph_requests",
            "Requests sent to Microsoft Graph, by endpoint and HTTP status code (`error`: no response).",
            self.graph_requests.clone(),
        );
        registry.register(
            "entra_exporter_graph_retries",
            "Graph requests retried, by reason.",
            self.graph_retries.clone(),
        );
        registry.register(
            "entra_exporter_graph_request_duration_seconds",
            "Duration of Graph requests, from send to the whole body read.",
            self.graph_request_duration.clone(),
        );
        registry.register(
            "entra_exporter_token_requests",
            "Access-token requests to the identity platform, by result.",
            self.token_requests.clone(),
        );
        registry.register(
            "entra_exporter_report_refreshes",
            "Report refreshes, by result.",
            self.refreshes.clone(),
        );
    }

    /// Counts one retry.
    pub fn retry(&self, tenant: &str, reason: RetryReason) {
        self.graph_retries
            .get_or_create(&RetryLabels {
                tenant: tenant.to_owned(),
                reason: reason.label().to_owned(),
            })
            .inc();
    }
}
