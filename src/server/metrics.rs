//! The server's own metrics (`entra_exporter_http_*`): connections open, accepted and
//! closed by the exporter (by reason), `/metrics` requests in flight and refused.
//! Known label values are created at zero, so `increase()` sees the first event.

use crate::metrics::SortedFamily;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why the exporter closed a connection (the `reason` label). Connections the client
/// closes are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Every slot was taken: closed, having sent nothing, to make room.
    PressureUnused,
    /// Every slot was taken: an idle keep-alive connection closed to make room.
    PressureIdle,
    /// Every slot was taken: closed with its request head incomplete, to make room.
    PressureIncomplete,
    /// Every slot or every request permit was taken: closed while its response made
    /// no progress (the client stopped reading).
    PressureStalled,
    /// Sent nothing within the first-byte timeout.
    FirstByteTimeout,
    /// Request headers not complete within the header timeout (also an idle keep-alive
    /// connection whose next request did not come in that time).
    HeaderTimeout,
    /// No progress reading or writing within the idle timeout.
    IdleTimeout,
    /// TLS handshake not done within its timeout.
    TlsHandshakeTimeout,
    /// A request that could not be parsed (hyper answered 400 or 431).
    BadRequest,
}

impl CloseReason {
    /// Every reason, for initialising the counters.
    pub const ALL: [Self; 9] = [
        Self::PressureUnused,
        Self::PressureIdle,
        Self::PressureIncomplete,
        Self::PressureStalled,
        Self::FirstByteTimeout,
        Self::HeaderTimeout,
        Self::IdleTimeout,
        Self::TlsHandshakeTimeout,
        Self::BadRequest,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::PressureUnused => "pressure_unused",
            Self::PressureIdle => "pressure_idle",
            Self::PressureIncomplete => "pressure_incomplete",
            Self::PressureStalled => "pressure_stalled",
            Self::FirstByteTimeout => "first_byte_timeout",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::TlsHandshakeTimeout => "tls_handshake_timeout",
            Self::BadRequest => "bad_request",
        }
    }
}

/// Labels `{reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReasonLabels {
    /// See [`CloseReason::label`]; for refused requests `max_requests`.
    pub reason: &'static str,
}

/// The `reason` of a request refused past `--web.max-requests`.
pub const REFUSED_MAX_REQUESTS: &str = "max_requests";

/// Every server self-metric; clones share the values.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    /// `entra_exporter_http_connections_open`
    pub connections_open: Gauge,
    /// `entra_exporter_http_connections_accepted_total`
    pub connections_accepted: Counter,
    /// `entra_exporter_http_connections_closed_total{reason}`
    pub connections_closed: SortedFamily<ReasonLabels, Counter>,
    /// `entra_exporter_http_requests_in_flight`
    pub requests_in_flight: Gauge,
    /// `entra_exporter_http_requests_refused_total{reason}`
    pub requests_refused: SortedFamily<ReasonLabels, Counter>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let metrics = Self {
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_closed: SortedFamily::default(),
            requests_in_flight: Gauge::default(),
            requests_refused: SortedFamily::default(),
        };
        for reason in CloseReason::ALL {
            let _ = metrics.connections_closed.get_or_create(&ReasonLabels {
                reason: reason.label(),
            });
        }
        let _ = metrics.requests_refused.get_or_create(&ReasonLabels {
            reason: REFUSED_MAX_REQUESTS,
        });
        metrics
    }
}

impl ServerMetrics {
    /// `registry` with these metrics added (for building [`super::ServerState`] in one
    /// expression).
    pub fn registered(&self, mut registry: Registry) -> Registry {
        self.register(&mut registry);
        registry
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "entra_exporter_http_connections_open",
            format!(
                "HTTP connections open now: at most the cap ({}) plus up to {} still closing to make room",
                super::MAX_CONNECTIONS,
                super::connections::CLOSING_HEADROOM
            ),
            self.connections_open.clone(),
        );
        registry.register(
            "entra_exporter_http_connections_accepted",
            "HTTP connections accepted",
            self.connections_accepted.clone(),
        );
        registry.register(
            "entra_exporter_http_connections_closed",
            "HTTP connections the exporter closed, by reason (pressure_*: to make room for a new connection or request)",
            self.connections_closed.clone(),
        );
        registry.register(
            "entra_exporter_http_requests_in_flight",
            "Requests to the metrics path being answered now (bounded by --web.max-requests)",
            self.requests_in_flight.clone(),
        );
        registry.register(
            "entra_exporter_http_requests_refused",
            "Requests to the metrics path refused with 429, by reason (max_requests: past --web.max-requests)",
            self.requests_refused.clone(),
        );
    }

    /// Counts one connection closed for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        self.connections_closed
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
    }

    /// Counts one request refused past `--web.max-requests`.
    pub fn refused(&self) {
        self.requests_refused
            .get_or_create(&ReasonLabels {
                reason: REFUSED_MAX_REQUESTS,
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_exported_at_zero() {
        let metrics = ServerMetrics::default();
        let registry = metrics.registered(Registry::default());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for reason in CloseReason::ALL {
            let line = format!(
                "entra_exporter_http_connections_closed_total{{reason=\"{}\"}} 0\n",
                reason.label()
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(
            text.contains(
                "entra_exporter_http_requests_refused_total{reason=\"max_requests\"} 0\n"
            )
        );
        assert!(text.contains("entra_exporter_http_connections_open 0\n"));
        assert!(text.contains("entra_exporter_http_requests_in_flight 0\n"));
        assert!(text.contains("entra_exporter_http_connections_accepted_total 0\n"));
    }
}
