//! The exporter's own counters and histograms (`entra_exporter_*`), shared by the Graph
//! client and the pollers. Gauges about report state come from the snapshot store.
//!
//! Help texts given to [`Registry::register`] end without a full stop: prometheus-client
//! appends one.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Labels `{tenant, endpoint, code}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestLabels {
    /// Tenant name.
    pub tenant: String,
    /// Graph endpoint name, e.g. `userRegistrationDetails`.
    pub endpoint: String,
    /// HTTP status, or `error` when no response arrived.
    pub code: String,
}

/// Labels `{tenant, endpoint}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Tenant name.
    pub tenant: String,
    /// Graph endpoint name.
    pub endpoint: String,
}

/// Labels `{tenant, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RetryLabels {
    /// Tenant name.
    pub tenant: String,
    /// `throttled`, `server_error`, `timeout`, `network`, `token_expired`.
    pub reason: String,
}

/// Labels `{tenant}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct TenantLabels {
    /// Tenant name.
    pub tenant: String,
}

/// Labels `{tenant, result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ResultLabels {
    /// Tenant name.
    pub tenant: String,
    /// `success` or `error`.
    pub result: String,
}

/// Labels `{tenant, report, result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RefreshLabels {
    /// Tenant name.
    pub tenant: String,
    /// Report config name.
    pub report: String,
    /// `success` or `error`.
    pub result: String,
}

/// Labels `{tenant, report}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReportLabels {
    /// Tenant name.
    pub tenant: String,
    /// Report config name.
    pub report: String,
}

/// Labels `{tenant, limiter}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct LimiterLabels {
    /// Tenant name.
    pub tenant: String,
    /// Which limiter: `tenant`, `app` (or `directory`).
    pub limiter: String,
}

/// A counter of seconds.
pub type SecondsCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// A family of labelled metrics, like prometheus-client's `Family`, whose series are
/// encoded in the order of their label values.
///
/// `Family` keeps its series in a `HashMap`, so each run lists them in another order
/// and two `--once` textfiles differ in more than their values. Here a `BTreeMap` keeps
/// them sorted as they are created: a lookup compares label strings instead of hashing
/// them, and encoding (every scrape) costs nothing extra. The label structs order by
/// their fields, in label order.
#[derive(Debug)]
pub struct SortedFamily<L, M> {
    series: Arc<RwLock<BTreeMap<L, M>>>,
    new_metric: fn() -> M,
}

impl<L, M> Clone for SortedFamily<L, M> {
    /// Another handle on the same series.
    fn clone(&self) -> Self {
        Self {
            series: self.series.clone(),
            new_metric: self.new_metric,
        }
    }
}

impl<L, M: Default> Default for SortedFamily<L, M> {
    fn default() -> Self {
        Self::new_with_constructor(M::default)
    }
}

impl<L: Ord + Clone, M: Clone> SortedFamily<L, M> {
    /// The metric of `labels`, created on first use. Metrics are handles (an `Arc`
    /// inside), so the one returned updates the family's.
    pub fn get_or_create(&self, labels: &L) -> M {
        if let Some(metric) = self.read().get(labels) {
            return metric.clone();
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        series
            .entry(labels.clone())
            .or_insert_with(self.new_metric)
            .clone()
    }
}

impl<L, M> SortedFamily<L, M> {
    /// An empty family whose series `new_metric` makes.
    pub fn new_with_constructor(new_metric: fn() -> M) -> Self {
        Self {
            series: Arc::default(),
            new_metric,
        }
    }

    /// A metric update cannot leave the map half-changed, so a poisoned lock is usable.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<L, M>> {
        self.series.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<L, M> EncodeMetric for SortedFamily<L, M>
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in self.read().iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
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
    pub graph_requests: SortedFamily<RequestLabels, Counter>,
    /// `entra_exporter_graph_retries_total`
    pub graph_retries: SortedFamily<RetryLabels, Counter>,
    /// `entra_exporter_graph_request_duration_seconds`
    pub graph_request_duration: SortedFamily<EndpointLabels, Histogram>,
    /// `entra_exporter_token_requests_total`
    pub token_requests: SortedFamily<ResultLabels, Counter>,
    /// `entra_exporter_report_refreshes_total`
    pub refreshes: SortedFamily<RefreshLabels, Counter>,
    /// `entra_exporter_poller_restarts_total`
    pub poller_restarts: SortedFamily<ReportLabels, Counter>,
    /// `entra_exporter_limiter_wait_seconds_total`
    pub limiter_wait: SortedFamily<LimiterLabels, SecondsCounter>,

    /// `entra_exporter_delegated_login_valid` (issue 15): per tenant with a
    /// `refresh_token_file`, 1 when its refresh token was last redeemed, 0 when it is
    /// missing, expired or revoked (`EntraDelegatedLoginExpired`).
    pub delegated_login_valid: SortedFamily<TenantLabels, Gauge>,
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
            graph_requests: SortedFamily::default(),
            graph_retries: SortedFamily::default(),
            graph_request_duration: SortedFamily::new_with_constructor(request_histogram),
            token_requests: SortedFamily::default(),
            refreshes: SortedFamily::default(),
            poller_restarts: SortedFamily::default(),
            limiter_wait: SortedFamily::default(),

            delegated_login_valid: SortedFamily::default(),
        }
    }

    /// Registers every family (and `entra_exporter_build_info`) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "entra_exporter_build",
            "Build information: version and git revision of the running exporter",
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
            "Requests sent to Microsoft Graph, by endpoint and HTTP status code (`error`: no response)",
            self.graph_requests.clone(),
        );
        registry.register(
            "entra_exporter_graph_retries",
            "Graph requests retried, by reason",
            self.graph_retries.clone(),
        );
        registry.register(
            "entra_exporter_graph_request_duration_seconds",
            "Duration of Graph requests, from send to the whole body read",
            self.graph_request_duration.clone(),
        );
        registry.register(
            "entra_exporter_token_requests",
            "Access-token requests to the identity platform, by result",
            self.token_requests.clone(),
        );
        registry.register(
            "entra_exporter_report_refreshes",
            "Report refreshes, by result",
            self.refreshes.clone(),
        );
        registry.register(
            "entra_exporter_poller_restarts",
            "Times the background task of the report panicked and was restarted (a bug: please report it)",
            self.poller_restarts.clone(),
        );
        registry.register(
            "entra_exporter_limiter_wait_seconds",
            "Time Graph requests waited for a client-side rate limiter (`tenant`: the tenant's own budget, `app`: the budget shared by every tenant of the app)",
            self.limiter_wait.clone(),
        );
        registry.register(
            "entra_exporter_delegated_login_valid",
            "Whether the delegated sign-in of the tenant (refresh_token_file) was last redeemed: 0 when it is missing, expired or revoked and `entra-mfa-exporter login` must be run again",
            self.delegated_login_valid.clone(),
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

    /// Adds `waited` to the wait at `limiter` of `tenant`.
    pub fn limiter_waited(&self, tenant: &str, limiter: &str, waited: std::time::Duration) {
        self.limiter_wait
            .get_or_create(&LimiterLabels {
                tenant: tenant.to_owned(),
                limiter: limiter.to_owned(),
            })
            .inc_by(waited.as_secs_f64());
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

    fn encoded(metrics: &ExporterMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn series_are_encoded_in_label_order_whatever_the_order_they_came_in() {
        let metrics = ExporterMetrics::new();
        for (tenant, endpoint, code) in [
            ("b", "userRegistrationDetails", "200"),
            ("a", "userRegistrationDetails", "429"),
            ("b", "getCredentialUsageSummary", "200"),
            ("a", "userRegistrationDetails", "200"),
            ("a", "userRegistrationDetails", "error"),
        ] {
            let labels = RequestLabels {
                tenant: tenant.into(),
                endpoint: endpoint.into(),
                code: code.into(),
            };
            metrics.graph_requests.get_or_create(&labels).inc();
            metrics
                .graph_request_duration
                .get_or_create(&EndpointLabels {
                    tenant: tenant.into(),
                    endpoint: endpoint.into(),
                })
                .observe(0.2);
        }
        // The handle returned is the family's: a second lookup sees the first's count.
        let again = RequestLabels {
            tenant: "b".into(),
            endpoint: "userRegistrationDetails".into(),
            code: "200".into(),
        };
        metrics.graph_requests.get_or_create(&again).inc();
        let text = encoded(&metrics);
        let requests: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("entra_exporter_graph_requests_total{"))
            .collect();
        assert_eq!(
            requests,
            [
                "entra_exporter_graph_requests_total{tenant=\"a\",endpoint=\"userRegistrationDetails\",code=\"200\"} 1",
                "entra_exporter_graph_requests_total{tenant=\"a\",endpoint=\"userRegistrationDetails\",code=\"429\"} 1",
                "entra_exporter_graph_requests_total{tenant=\"a\",endpoint=\"userRegistrationDetails\",code=\"error\"} 1",
                "entra_exporter_graph_requests_total{tenant=\"b\",endpoint=\"getCredentialUsageSummary\",code=\"200\"} 1",
                "entra_exporter_graph_requests_total{tenant=\"b\",endpoint=\"userRegistrationDetails\",code=\"200\"} 2",
            ]
        );
        // A histogram's lines stay together per series, the series in label order.
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("entra_exporter_graph_request_duration_seconds_count"))
            .map(|l| l.split_once(' ').unwrap().0)
            .collect();
        assert_eq!(
            series,
            [
                "entra_exporter_graph_request_duration_seconds_count{tenant=\"a\",endpoint=\"userRegistrationDetails\"}",
                "entra_exporter_graph_request_duration_seconds_count{tenant=\"b\",endpoint=\"getCredentialUsageSummary\"}",
                "entra_exporter_graph_request_duration_seconds_count{tenant=\"b\",endpoint=\"userRegistrationDetails\"}",
            ]
        );
        let first = text.find("_sum{tenant=\"a\"").unwrap();
        let last_bucket = text.rfind("le=\"+Inf\",tenant=\"a\"").unwrap();
        let next = text.find("_sum{tenant=\"b\"").unwrap();
        assert!(first < last_bucket && last_bucket < next, "{text}");
        // A family nothing was created in is left out, as prometheus-client's are.
        assert!(
            !text.contains("entra_exporter_graph_retries_total"),
            "{text}"
        );
    }

    #[test]
    fn help_texts_end_with_one_full_stop() {
        let metrics = ExporterMetrics::new();
        metrics.init_tenant("t", ["user_registration_details"]);
        let endpoint = EndpointLabels {
            tenant: "t".into(),
            endpoint: "userRegistrationDetails".into(),
        };
        let _ = metrics.graph_request_duration.get_or_create(&endpoint);
        let _ = metrics.graph_requests.get_or_create(&RequestLabels {
            tenant: endpoint.tenant,
            endpoint: endpoint.endpoint,
            code: "200".into(),
        });
        let text = encoded(&metrics);
        let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
        assert_eq!(helps.len(), 7, "{text}");
        for help in helps {
            assert!(help.ends_with('.') && !help.ends_with(".."), "{help}");
        }
    }

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
