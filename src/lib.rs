//! entra-mfa-exporter: Microsoft Entra ID authentication-methods reports as Prometheus metrics.
