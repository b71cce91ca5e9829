//! Many tenants in one instance, and tenants split across replicas: 200 simulated
//! tenants collected by one exporter while one tenant hangs and another is broken
//! (every other tenant stays up), and two `--shard.count 2` instances covering every
//! tenant exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use entra_mfa_exporter::simulate::{SimConfig, SimServer, SimTenant};

fn tenant_id(i: usize) -> String {
    format!("tenant-{i:03}.onmicrosoft.com")
}

/// A simulator with `n` tenants of `users` users, tenant `i` accepting client
/// `client-{i}` with secret `secret-{i}`.
async fn many(n: usize, users: u64) -> SimServer {
    let config = SimConfig {
        tenants: (0..n)
            .map(|i| {
                SimTenant::new(
                    tenant_id(i),
                    format!("client-{i}"),
                    format!("secret-{i}"),
                    users,
                    i as u64,
                )
            })
            .collect(),
        ..SimConfig::default()
    };
    SimServer::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap()
}

/// `[[tenants]]` for simulated tenant `i`, named `t{i}`.
fn tenant_toml(i: usize, graph: &str, login: &str) -> String {
    format!(
        "[[tenants]]\nname = \"t{i:03}\"\ntenant_id = \"{}\"\nclient_id = \"client-{i}\"\n\
         client_secret = \"secret-{i}\"\ngraph_url = \"{graph}\"\nlogin_url = \"{login}\"\n",
        tenant_id(i)
    )
}

/// `entra_exporter_report_up` by tenant.
fn report_up(text: &str) -> BTreeMap<String, f64> {
    parse_exposition(text)
        .into_iter()
        .filter(|((name, _), _)| name == "entra_exporter_report_up")
        .map(|((_, labels), v)| (labels["tenant"].clone(), v))
        .collect()
}

/// Successful refreshes by tenant.
fn successes(text: &str) -> BTreeMap<String, f64> {
    parse_exposition(text)
        .into_iter()
        .filter(|((name, labels), _)| {
            name == "entra_exporter_report_refreshes_total" && labels["result"] == "success"
        })
        .map(|((_, labels), v)| (labels["tenant"].clone(), v))
        .collect()
}

/// Peak resident set of a process, from /proc (Linux), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tenants_collect_and_one_failing_tenant_blocks_none() {
    const N: usize = 200;
    tokio::time::timeout(Duration::from_secs(240), async {
        let sim = many(N, 40).await;
        let url = sim.base_url();
        // A token endpoint that accepts connections and never answers: tenant "hung"
        // waits on it for the whole test and must delay nobody.
        let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hung = format!("http://{}", blackhole.local_addr().unwrap());
        let mut text = String::from("refresh_interval = \"6s\"\n");
        for i in 0..N {
            text.push_str(&tenant_toml(i, &url, &url));
        }
        text.push_str(&tenant_toml(0, &url, &hung).replace("name = \"t000\"", "name = \"hung\""));
        let (_dir, path) = config_file(&text);
        let started = Instant::now();
        let exporter = common::Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let metrics = exporter.url("/metrics");

        // Every simulated tenant's first snapshot, while "hung" is still pending.
        let (_, body) = poll_until_within(
            &metrics,
            "text/plain",
            Duration::from_secs(180),
            |_, body| {
                let up = report_up(body);
                (0..N).all(|i| up.get(&format!("t{i:03}")) == Some(&1.0))
            },
        )
        .await;
        let first_complete = started.elapsed();
        assert!(
            !report_up(&body).contains_key("hung"),
            "hung tenant is still pending"
        );
        let pid = exporter.child.id();
        println!(
            "200 tenants: first complete snapshot of all after {:.2} s; exporter peak RSS {} KiB",
            first_complete.as_secs_f64(),
            peak_rss_kib(pid).map_or("unknown".into(), |k| k.to_string())
        );

        // Break one tenant (its licence is withdrawn: every report route answers 403).
        let victim = 17;
        let successes_before = successes(&body);
        assert!(sim.set_licensed(&tenant_id(victim), false));
        let broken_at = Instant::now();
        let (_, body) = poll_until_within(
            &metrics,
            "text/plain",
            Duration::from_secs(60),
            |_, body| report_up(body).get(&format!("t{victim:03}")) == Some(&0.0),
        )
        .await;
        let up = report_up(&body);
        for i in (0..N).filter(|i| *i != victim) {
            assert_eq!(up.get(&format!("t{i:03}")), Some(&1.0), "t{i:03}");
        }
        // Everyone else refreshes again after the breakage, successfully.
        let series_after = poll_until_within(
            &metrics,
            "text/plain",
            Duration::from_secs(60),
            |_, body| {
                let now = successes(body);
                (0..N)
                    .filter(|i| *i != victim)
                    .map(|i| format!("t{i:03}"))
                    .all(|t| now.get(&t) > successes_before.get(&t))
            },
        )
        .await
        .1;
        let up = report_up(&series_after);
        assert_eq!(up[&format!("t{victim:03}")], 0.0);
        assert_eq!(
            up.values().filter(|v| **v == 1.0).count(),
            N - 1,
            "every other tenant stayed up ({} s after the breakage)",
            broken_at.elapsed().as_secs()
        );
        println!(
            "after {:.1} s more: exporter peak RSS {} KiB",
            broken_at.elapsed().as_secs_f64(),
            peak_rss_kib(pid).map_or("unknown".into(), |k| k.to_string())
        );
        let (_, page) = poll_until(&exporter.url("/"), "text/html", |s, _| s == 200).await;
        // Unsharded: no shard line (issue 12).
        assert!(!page.contains("Shard") && page.contains("t199") && page.contains("hung"));
        drop(blackhole);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_cover_every_tenant_exactly_once() {
    const N: usize = 24;
    tokio::time::timeout(WAIT, async {
        let sim = many(N, 20).await;
        let url = sim.base_url();
        let text: String = (0..N).map(|i| tenant_toml(i, &url, &url)).collect();
        let (_dir, path) = config_file(&text);
        let mut seen: Vec<BTreeSet<String>> = Vec::new();
        for index in 0..2 {
            let mut args = once_args(&path);
            args.extend([
                "--shard.count".into(),
                "2".into(),
                "--shard.index".into(),
                index.to_string(),
            ]);
            let out = run_binary(args).await;
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let info =
                format!("entra_exporter_shard_info{{shard_index=\"{index}\",shard_count=\"2\"}} 1");
            assert!(stdout.contains(&info), "{stdout}");
            let up = report_up(&stdout);
            assert!(up.values().all(|v| *v == 1.0), "{up:?}");
            assert!(
                !up.is_empty() && up.len() < N,
                "shard {index} got {} tenants",
                up.len()
            );
            seen.push(up.into_keys().collect());
        }
        assert!(seen[0].is_disjoint(&seen[1]), "a tenant collected twice");
        let all: BTreeSet<String> = seen[0].union(&seen[1]).cloned().collect();
        let expected: BTreeSet<String> = (0..N).map(|i| format!("t{i:03}")).collect();
        assert_eq!(all, expected, "every tenant collected by one shard");
        assert_eq!(sim.counters().token_requests, N as u64);

        let mut args = once_args(&path);
        args.extend([
            "--shard.count".into(),
            "2".into(),
            "--shard.index".into(),
            "2".into(),
        ]);
        let out = run_binary(args).await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--shard.index 2 is out of range"));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
