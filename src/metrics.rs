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

/// Labels `{tenant, report}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    /// Tenant name.
    pub tenant: String,
    /// Report config name.
    pub report: String,
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
    /// Every reason, for initialising the counters.
    pub const ALL: [Self; 5] = [
        Self::Throttled,
        Self::ServerError,
        Self::Timeout,
        Self::Network,
        Self::TokenExpired,
    ];

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
    /// `entra_exporter_poller_restarts_total`
    pub poller_restarts: Family<ReportLabels, Counter>,
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
            poller_restarts: Family::default(),
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
        registry.register(
            "entra_exporter_poller_restarts",
            "Times the background task of the report panicked and was restarted (a bug: please report it).",
            self.poller_restarts.clone(),
        );
    }

    /// Creates the counters of `tenant` whose label values are known in advance at zero:
    /// retries by every reason, token requests, refreshes of each of `reports` by
    /// `success` and `error`, and poller restarts. A counter that first appears at 1 hides that event from
    /// `rate()` and `increase()` (so from the throttling alert), and a missing series
    /// leaves dashboard panels empty instead of showing 0.
    pub fn init_tenant<'a>(&self, tenant: &str, reports: impl IntoIterator<Item = &'a str>) {
        let results = ["success", "error"];
        for reason in RetryReason::ALL {
            let _ = self.graph_retries.get_or_create(&RetryLabels {
                tenant: tenant.to_owned(),
                reason: reason.label().to_owned(),
            });
        }
        for result in results {
            let _ = self.token_requests.get_or_create(&ResultLabels {
                tenant: tenant.to_owned(),
                result: result.to_owned(),
            });
        }
        for report in reports {
            let _ = self.poller_restarts.get_or_create(&ReportLabels {
                tenant: tenant.to_owned(),
                report: report.to_owned(),
            });
            for result in results {
                let _ = self.refreshes.get_or_create(&RefreshLabels {
                    tenant: tenant.to_owned(),
                    report: report.to_owned(),
                    result: result.to_owned(),
                });
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_tenant_exports_known_counters_at_zero() {
        let metrics = ExporterMetrics::new();
        metrics.init_tenant("t", ["user_registration_details"]);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for reason in [
            "throttled",
            "server_error",
            "timeout",
            "network",
            "token_expired",
        ] {
            let line = format!(
                "entra_exporter_graph_retries_total{{tenant=\"t\",reason=\"{reason}\"}} 0\n"
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        for result in ["success", "error"] {
            assert!(text.contains(&format!(
                "entra_exporter_token_requests_total{{tenant=\"t\",result=\"{result}\"}} 0\n"
            )));
            assert!(text.contains(&format!(
                "entra_exporter_report_refreshes_total{{tenant=\"t\",report=\"user_registration_details\",result=\"{result}\"}} 0\n"
            )));
        }
        assert!(text.contains(
            "entra_exporter_poller_restarts_total{tenant=\"t\",report=\"user_registration_details\"} 0\n"
        ));
    }
}
