//! The `authentication_methods_policy` report end to end (design.md, "Coverage as
//! security teams count it"; graph-api.md §13.5): against the simulator's policy (a mix
//! of enabled and disabled methods, an external method named by GUID, a state Microsoft
//! might add, the campaign in each state) every policy series equals the simulator's own
//! truth in `--once` and in serve mode; withdrawing Policy.Read.All or serving a
//! malformed document fails only this report, naming the permission, and keeps the
//! last snapshot.

mod common;

use std::collections::BTreeMap;

use common::*;
use entra_mfa_exporter::simulate::{PolicyTruth, SimCampaign, SimMethod, SimPolicy, SimServer};

const REPORT: &str = "authentication_methods_policy";
const FAMILIES: &[&str] = &[
    "entra_auth_method_enabled",
    "entra_auth_method_registration_campaign_enabled",
];

/// A policy with every case the report reads.
fn policy(campaign: SimCampaign) -> SimPolicy {
    SimPolicy {
        methods: vec![
            SimMethod::new("Fido2", "fido2", "enabled"),
            SimMethod::new(
                "MicrosoftAuthenticator",
                "microsoftAuthenticator",
                "enabled",
            ),
            SimMethod::new("Sms", "sms", "disabled"),
            SimMethod::new("Voice", "voice", "disabled"),
            SimMethod::new("Email", "email", "enabled"),
            SimMethod::new("TemporaryAccessPass", "temporaryAccessPass", "disabled"),
            // The live capture's casing (the docs write qrCodePin): kept as sent.
            SimMethod::new("QRCodePin", "qrCodePin", "enabled"),
            // A state Microsoft may add: not enabled.
            SimMethod::new("HardwareOath", "hardwareOath", "unknownFutureValue"),
            // An external MFA provider is named by a GUID.
            SimMethod::new(
                "3f0c9e1a-0000-4000-8000-00000000e4a1",
                "external",
                "enabled",
            ),
        ],
        campaign,
        malformed: false,
    }
}

async fn policy_sim(policy: SimPolicy, grant: bool) -> (SimServer, String) {
    let sim = start_sim(10, 7, |c| {
        if !grant {
            // The app holds Policy.Read.All by default.
            c.tenants[0].roles.retain(|r| r != "Policy.Read.All");
        }
        c.tenants[0].policy = policy;
    })
    .await;
    let text = config_toml(&sim, REPORT, "");
    (sim, text)
}

/// The series `truth` implies.
fn expected(truth: &PolicyTruth) -> BTreeMap<SeriesKey, f64> {
    let mut out: BTreeMap<SeriesKey, f64> = truth
        .methods
        .iter()
        .map(|(method, on)| {
            (
                key(
                    "entra_auth_method_enabled",
                    &[("tenant", "t1"), ("method", method)],
                ),
                f64::from(u8::from(*on)),
            )
        })
        .collect();
    out.insert(
        key(
            "entra_auth_method_registration_campaign_enabled",
            &[("tenant", "t1")],
        ),
        f64::from(u8::from(truth.campaign_enabled)),
    );
    out
}

fn up_key() -> SeriesKey {
    key(
        "entra_exporter_report_up",
        &[("tenant", "t1"), ("report", REPORT)],
    )
}

#[test]
fn the_truth_is_not_trivial() {
    // Guards the test data: both values occur, and the unknown state and the campaign
    // states read as the design says.
    let t = policy(SimCampaign::Enabled).truth();
    assert_eq!(t.methods.len(), 9);
    assert_eq!(t.methods.values().filter(|on| **on).count(), 5);
    assert!(!t.methods["HardwareOath"]);
    assert!(t.methods["3f0c9e1a-0000-4000-8000-00000000e4a1"]);
    assert!(t.campaign_enabled);
    for c in [
        SimCampaign::Default,
        SimCampaign::Disabled,
        SimCampaign::Absent,
    ] {
        assert!(!policy(c).truth().campaign_enabled, "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_matches_truth_for_every_campaign_state() {
    tokio::time::timeout(WAIT, async {
        for campaign in [
            SimCampaign::Enabled,
            SimCampaign::Default,
            SimCampaign::Disabled,
            SimCampaign::Absent,
        ] {
            let (sim, text) = policy_sim(policy(campaign), true).await;
            let (_dir, path) = config_file(&text);
            let out = run_binary(once_args(&path)).await;
            let stdout = String::from_utf8(out.stdout).unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{campaign:?}: {stderr}");
            let series = parse_exposition(&stdout);
            let truth = sim.policy_truth(TENANT_ID);
            assert_series_eq(&only(&series, FAMILIES), &expected(&truth));
            assert_eq!(series[&up_key()], 1.0);
            // design.md: `default` is not enabled, whatever the truth helper says.
            let campaign_on = series[&key(
                "entra_auth_method_registration_campaign_enabled",
                &[("tenant", "t1")],
            )];
            assert_eq!(
                campaign_on,
                if campaign == SimCampaign::Enabled {
                    1.0
                } else {
                    0.0
                },
                "{campaign:?}"
            );
            // One request, to Graph's own endpoint name, paced as a directory call.
            assert_eq!(
                series[&key(
                    "entra_exporter_graph_requests_total",
                    &[
                        ("tenant", "t1"),
                        ("endpoint", "authenticationMethodsPolicy"),
                        ("code", "200")
                    ],
                )],
                1.0
            );
            assert_eq!(
                stderr.contains("no registration campaign"),
                campaign == SimCampaign::Absent,
                "{campaign:?}: {stderr}"
            );
            sim.shutdown().await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_without_the_permission_fails_naming_it() {
    tokio::time::timeout(WAIT, async {
        let (sim, text) = policy_sim(policy(SimCampaign::Enabled), false).await;
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        let series = parse_exposition(&stdout);
        assert_eq!(series[&up_key()], 0.0);
        assert!(only(&series, FAMILIES).is_empty(), "{stdout}");
        assert!(stderr.contains("Policy.Read.All"), "{stderr}");
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_policy_and_keeps_the_last_snapshot_on_failure() {
    tokio::time::timeout(WAIT * 3, async {
        let (sim, text) = policy_sim(policy(SimCampaign::Default), true).await;
        let text = text.replace("refresh_interval = \"30s\"", "refresh_interval = \"2s\"");
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let metrics = exporter.url("/metrics");
        let wait_for = |want: BTreeMap<SeriesKey, f64>, up: f64| {
            let metrics = metrics.clone();
            async move {
                let (_, body) = poll_until(&metrics, "text/plain", |s, b| {
                    let series = parse_exposition(b);
                    s == 200
                        && series.get(&up_key()) == Some(&up)
                        && only(&series, FAMILIES) == want
                })
                .await;
                body
            }
        };

        let first = expected(&sim.policy_truth(TENANT_ID));
        wait_for(first.clone(), 1.0).await;

        // An admin turns SMS on and starts the campaign: the next refresh shows it.
        let mut changed = policy(SimCampaign::Enabled);
        changed.methods[2].state = "enabled".into();
        assert!(sim.set_policy(TENANT_ID, changed.clone()));
        let second = expected(&sim.policy_truth(TENANT_ID));
        assert_ne!(first, second);
        wait_for(second.clone(), 1.0).await;

        // The consent is withdrawn: the report fails naming the permission, and the
        // policy series stay as last read.
        assert!(sim.set_policy_permission(TENANT_ID, false));
        wait_for(second.clone(), 0.0).await;
        let (_, landing) = get(&exporter.url("/"), "text/html").await;
        assert!(landing.contains("Policy.Read.All"), "{landing}");

        // Consent back, then a document cut short that would turn Fido2 off: nothing
        // of it is published.
        assert!(sim.set_policy_permission(TENANT_ID, true));
        wait_for(second.clone(), 1.0).await;
        let mut broken = changed;
        broken.methods[0].state = "disabled".into();
        broken.malformed = true;
        assert!(sim.set_policy(TENANT_ID, broken));
        let body = wait_for(second, 0.0).await;
        assert!(body.contains("entra_auth_method_enabled{tenant=\"t1\",method=\"Fido2\"} 1"));
        assert!(
            exporter.stderr().contains("malformed page"),
            "{}",
            exporter.stderr()
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
