//! Shared test helpers: the simulator's truth turned into expected series, a parser for
//! the exposition text, and a child-process guard that stops the binary by PID.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use entra_mfa_exporter::simulate::{self, RegistrationTruth, SimConfig, SimServer, SimTenant};

/// A series: metric name and sorted labels.
pub type SeriesKey = (String, BTreeMap<String, String>);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_entra-mfa-exporter")
}

/// Bound on any single test wait.
pub const WAIT: Duration = Duration::from_secs(60);

pub const TENANT_ID: &str = "contoso-test.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "Sup3r-S3cret~value.for_tests";

/// A simulator with one static tenant.
pub async fn start_sim(users: u64, seed: u64, configure: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut config = SimConfig {
        tenants: vec![SimTenant::new(TENANT_ID, CLIENT_ID, SECRET, users, seed)],
        ..SimConfig::default()
    };
    configure(&mut config);
    SimServer::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("simulator starts on loopback")
}

/// A TOML config with one tenant `t1` pointed at `sim`. The rate limit is lifted (the
/// simulator has none unless a test adds it); a test sets its own per tenant in `extra`.
pub fn config_toml(sim: &SimServer, report: &str, extra: &str) -> String {
    let url = sim.base_url();
    format!(
        // A short interval keeps the start jitter (a tenth of it) small in tests.
        "refresh_interval = \"30s\"\nmax_requests_per_10s = 100000\n[[tenants]]\nname = \"t1\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{SECRET}\"\ngraph_url = \"{url}\"\nlogin_url = \"{url}\"\n\
         reports = [\"{report}\"]\n{extra}"
    )
}

/// `v` as a TOML array of strings.
pub fn toml_list(v: &[String]) -> String {
    let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Writes `text` to a config file in a fresh temp dir (kept alive by the returned guard).
pub fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Runs the binary with `args` off the async threads and returns its output.
pub async fn run_binary(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `--once --config.file PATH`.
pub fn once_args(config: &std::path::Path) -> Vec<String> {
    vec![
        "--once".into(),
        "--config.file".into(),
        config.display().to_string(),
    ]
}

/// The `entra_users*` series the truth implies, by design.md's label rules.
pub fn expected_series(
    tenant: &str,
    truth: &RegistrationTruth,
    with_preferred: bool,
) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    let methods: BTreeSet<&String> = truth
        .groups
        .values()
        .flat_map(|g| g.methods.keys())
        .collect();
    let preferred: BTreeSet<&String> = truth
        .groups
        .values()
        .flat_map(|g| g.preferred.keys())
        .collect();
    for ((user_type, role), g) in &truth.groups {
        let labels = |extra: &[(&str, &str)]| {
            let mut l: BTreeMap<String, String> = [
                ("tenant", tenant),
                ("user_type", user_type.as_str()),
                ("role", role.as_str()),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                l.insert(k.to_string(), v.to_string());
            }
            l
        };
        out.insert(("entra_users".into(), labels(&[])), g.users as f64);
        for (feature, n) in &g.features {
            out.insert(
                (
                    "entra_users_with_feature".into(),
                    labels(&[("feature", feature)]),
                ),
                *n as f64,
            );
        }
        for m in &methods {
            let n = g.methods.get(*m).copied().unwrap_or(0);
            out.insert(
                ("entra_users_with_method".into(), labels(&[("method", m)])),
                n as f64,
            );
        }
        if with_preferred {
            for p in &preferred {
                let n = g.preferred.get(*p).copied().unwrap_or(0);
                out.insert(
                    (
                        "entra_users_by_preferred_method".into(),
                        labels(&[("method", p)]),
                    ),
                    n as f64,
                );
            }
        }
        for (bucket, n) in &g.method_count_buckets {
            out.insert(
                (
                    "entra_users_by_registered_methods".into(),
                    labels(&[("methods", bucket)]),
                ),
                *n as f64,
            );
        }
        for (strength, n) in &g.strength {
            out.insert(
                (
                    "entra_users_by_strength".into(),
                    labels(&[("strength", strength)]),
                ),
                *n as f64,
            );
        }
    }
    if let Some(at) = truth.data_updated {
        out.insert(
            series_key(
                "entra_registration_data_updated_timestamp_seconds",
                &[("tenant", tenant)],
            ),
            at,
        );
    }
    for method in &truth.unclassified_methods {
        out.insert(
            series_key(
                "entra_exporter_unclassified_method_info",
                &[("tenant", tenant), ("method", method)],
            ),
            1.0,
        );
    }
    out
}

/// Parses exposition text (classic or OpenMetrics) into series; comments skipped.
pub fn parse_exposition(text: &str) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name_labels, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in: {line}"));
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, rest)) => (
                n,
                parse_labels(rest.strip_suffix('}').expect("closing brace")),
            ),
            None => (name_labels, BTreeMap::new()),
        };
        assert!(
            out.insert((name.to_owned(), labels), value).is_none(),
            "duplicate series: {line}"
        );
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

/// The key of series `name{labels}`.
pub fn series_key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Only the series of `families` (exact names).
pub fn only(series: &BTreeMap<SeriesKey, f64>, families: &[&str]) -> BTreeMap<SeriesKey, f64> {
    series
        .iter()
        .filter(|((n, _), _)| families.contains(&n.as_str()))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The registration families.
pub const USER_FAMILIES: &[&str] = &[
    "entra_users",
    "entra_users_with_feature",
    "entra_users_with_method",
    "entra_users_by_preferred_method",
    "entra_users_by_registered_methods",
    "entra_users_by_strength",
    "entra_registration_data_updated_timestamp_seconds",
    "entra_exporter_unclassified_method_info",
];

/// Asserts two series maps are equal, with a readable diff.
pub fn assert_series_eq(actual: &BTreeMap<SeriesKey, f64>, expected: &BTreeMap<SeriesKey, f64>) {
    let mut diff = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diff.push(format!("missing  {k:?} (expected {v})")),
            Some(a) if a != v => diff.push(format!("wrong    {k:?}: {a} != expected {v}")),
            _ => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        diff.push(format!("extra    {k:?}"));
    }
    assert!(
        diff.is_empty(),
        "{} series differ (of {} expected):\n{}",
        diff.len(),
        expected.len(),
        diff.join("\n")
    );
    assert!(!expected.is_empty());
}

/// A running exporter process, killed by PID when dropped.
pub struct Exporter {
    pub child: Child,
    pub addr: String,
    pub stderr_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The thread copying stderr into `stderr_lines`; joined after exit so the last
    /// lines (e.g. "shutting down") are there before anyone reads them.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    /// Starts the binary with `args` plus a loopback listen address on port 0, and waits
    /// for its "listening" log line to learn the port.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("exporter binary starts");
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = line.contains("msg=listening").then(|| {
                    line.split(' ')
                        .find_map(|kv| kv.strip_prefix("address="))
                        .map(str::to_owned)
                });
                // Stored before the address is announced, so stderr() has the line.
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(WAIT).ok().flatten().unwrap_or_else(|| {
            panic!(
                "exporter did not log its address; stderr:\n{}",
                lines.lock().unwrap().join("\n")
            )
        });
        Self {
            child,
            addr,
            stderr_lines: lines,
            reader: Some(reader),
        }
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The pipe closes with the process: the reader reaches EOF promptly.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr_lines.lock().unwrap().join("\n")
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP client for the tests.
pub fn http() -> reqwest::Client {
    entra_mfa_exporter::graph::http_client(Duration::from_secs(30))
}

/// GETs `url` once: status and body.
pub async fn get(url: &str, accept: &str) -> (u16, String) {
    let resp = http()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// GETs `url` until `ok` accepts the response or [`WAIT`] passes.
pub async fn poll_until(
    url: &str,
    accept: &str,
    ok: impl FnMut(u16, &str) -> bool,
) -> (u16, String) {
    poll_until_within(url, accept, WAIT, ok).await
}

/// GETs `url` until `ok` accepts the response or `bound` passes.
pub async fn poll_until_within(
    url: &str,
    accept: &str,
    bound: Duration,
    mut ok: impl FnMut(u16, &str) -> bool,
) -> (u16, String) {
    let client = http();
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(resp) = client.get(url).header("Accept", accept).send().await {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            if ok(status, &body) {
                return (status, body);
            }
        }
        assert!(Instant::now() < deadline, "timed out polling {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The truth of a report for the default test tenant.
pub fn truth(sim: &SimServer, report: simulate::SimReport) -> RegistrationTruth {
    sim.truth(TENANT_ID, report)
}

/// design.md's rule for feature and status labels: Graph's camelCase in snake_case.
pub fn snake(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A series key from a name and label pairs.
pub fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The families of the report family beyond `entra_users*`.
pub const FAMILY_FAMILIES: &[&str] = &[
    "entra_credential_registration_users",
    "entra_credential_registration_total_users",
    "entra_credential_usage_activities",
    "entra_credential_usage_events",
    "entra_credential_usage_last_event_timestamp_seconds",
    "entra_reported_users",
    "entra_reported_users_with_feature",
    "entra_reported_users_with_method",
    "entra_admin_without_mfa_info",
    // Issue 15: the app-only daily successors.
    "entra_daily_sign_ins",
    "entra_daily_sign_ins_day_timestamp_seconds",
    "entra_daily_password_events",
    // Issue 15: the delegated-only activity reports.
    "entra_registration_activities",
    "entra_sign_ins_by_method",
];

/// What a tenant of the family tests enables.
pub struct FamilySetup<'a> {
    pub period: &'a str,
    pub user_types: &'a [&'a str],
    pub user_roles: &'a [&'a str],
    /// `Some(cap)`: admins_without_mfa with max_listed_admins = cap.
    pub admins: Option<usize>,
}

impl FamilySetup<'_> {
    /// The config lines for these settings.
    pub fn toml(&self) -> String {
        let list = |v: &[&str]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!(
            "usage_period = {:?}\nsummary_user_types = [{}]\nsummary_user_roles = [{}]\n",
            self.period,
            list(self.user_types),
            list(self.user_roles)
        );
        if let Some(cap) = self.admins {
            s.push_str(&format!(
                "admins_without_mfa = true\nmax_listed_admins = {cap}\n"
            ));
        }
        s
    }
}

/// Every report but the legacy registration source.
pub const ALL_REPORTS: &str = "\"user_registration_details\", \"credential_user_registration_count\", \
     \"credential_usage_summary\", \"user_credential_usage_details\", \"user_events_summary\", \
     \"users_registered_by_feature\", \"users_registered_by_method\", \
     \"user_mfa_sign_in_summary\", \"user_password_resets_and_changes_summary\", \
     \"user_registration_activity\", \"user_sign_ins_by_auth_method_summary\"";

/// The series of [`FAMILY_FAMILIES`] the simulator's truth implies, by design.md's rules.
pub fn expected_family_series(
    sim: &SimServer,
    tenant: &str,
    setup: &FamilySetup<'_>,
) -> BTreeMap<SeriesKey, f64> {
    use entra_mfa_exporter::simulate::SummaryBy;
    let mut out = BTreeMap::new();
    let count = sim.registration_count_truth(TENANT_ID);
    out.insert(
        key(
            "entra_credential_registration_total_users",
            &[("tenant", tenant)],
        ),
        count.total_users as f64,
    );
    for (status, n) in &count.statuses {
        out.insert(
            key(
                "entra_credential_registration_users",
                &[("tenant", tenant), ("status", &snake(status))],
            ),
            *n as f64,
        );
    }
    for ((feature, method), (ok, failed)) in
        &sim.usage_summary_truth(TENANT_ID, setup.period).activities
    {
        for (result, n) in [("success", ok), ("failure", failed)] {
            out.insert(
                key(
                    "entra_credential_usage_activities",
                    &[
                        ("tenant", tenant),
                        ("period", setup.period),
                        ("feature", feature),
                        ("method", method),
                        ("result", result),
                    ],
                ),
                *n as f64,
            );
        }
    }
    let events = sim.usage_events_truth(TENANT_ID);
    for source in ["user_credential_usage_details", "user_events_summary"] {
        for ((feature, method, result), n) in &events.events {
            out.insert(
                key(
                    "entra_credential_usage_events",
                    &[
                        ("tenant", tenant),
                        ("source", source),
                        ("feature", feature),
                        ("method", method),
                        ("result", result),
                    ],
                ),
                *n as f64,
            );
        }
        for ((feature, result), t) in &events.last_event {
            out.insert(
                key(
                    "entra_credential_usage_last_event_timestamp_seconds",
                    &[
                        ("tenant", tenant),
                        ("source", source),
                        ("feature", feature),
                        ("result", result),
                    ],
                ),
                *t,
            );
        }
    }
    for types in setup.user_types {
        for roles in setup.user_roles {
            for (by, report, family, label) in [
                (
                    SummaryBy::Feature,
                    "users_registered_by_feature",
                    "entra_reported_users_with_feature",
                    "feature",
                ),
                (
                    SummaryBy::Method,
                    "users_registered_by_method",
                    "entra_reported_users_with_method",
                    "method",
                ),
            ] {
                let s = sim
                    .summary_truth(TENANT_ID, by, types, roles)
                    .expect("valid pair");
                out.insert(
                    key(
                        "entra_reported_users",
                        &[
                            ("tenant", tenant),
                            ("report", report),
                            ("user_types", types),
                            ("user_roles", roles),
                        ],
                    ),
                    s.total_users as f64,
                );
                for (name, n) in &s.counts {
                    let name = if by == SummaryBy::Feature {
                        snake(name)
                    } else {
                        name.clone()
                    };
                    out.insert(
                        key(
                            family,
                            &[
                                ("tenant", tenant),
                                ("user_types", types),
                                ("user_roles", roles),
                                (label, &name),
                            ],
                        ),
                        *n as f64,
                    );
                }
            }
        }
    }
    out.extend(expected_daily_series(sim, tenant));
    // userRegistrationActivity serves the same window counts as the legacy summary.
    for ((feature, method), (ok, failed)) in
        &sim.usage_summary_truth(TENANT_ID, setup.period).activities
    {
        for (result, n) in [("success", ok), ("failure", failed)] {
            out.insert(
                key(
                    "entra_registration_activities",
                    &[
                        ("tenant", tenant),
                        ("period", setup.period),
                        ("feature", feature),
                        ("method", method),
                        ("result", result),
                    ],
                ),
                *n as f64,
            );
        }
    }
    for (method, n) in sim.sign_ins_by_method_truth(TENANT_ID, setup.period) {
        out.insert(
            key(
                "entra_sign_ins_by_method",
                &[
                    ("tenant", tenant),
                    ("period", setup.period),
                    ("method", &method),
                ],
            ),
            n as f64,
        );
    }
    if let Some(cap) = setup.admins {
        for upn in sim.admins_without_mfa_truth(TENANT_ID).iter().take(cap) {
            out.insert(
                key(
                    "entra_admin_without_mfa_info",
                    &[("tenant", tenant), ("user_principal_name", upn)],
                ),
                1.0,
            );
        }
    }
    out
}

/// The series of the two daily reports the simulator's truth implies (issue 15): the
/// newest complete UTC day, and which day that is.
pub fn expected_daily_series(sim: &SimServer, tenant: &str) -> BTreeMap<SeriesKey, f64> {
    use entra_mfa_exporter::simulate::DailyReport;
    let mut out = BTreeMap::new();
    if let Some(d) = sim.daily_truth(TENANT_ID, DailyReport::MfaSignIns) {
        for (factor, n) in ["multi_factor", "single_factor", "total"]
            .iter()
            .zip(d.counts)
        {
            out.insert(
                key(
                    "entra_daily_sign_ins",
                    &[("tenant", tenant), ("factor", factor)],
                ),
                n as f64,
            );
        }
        out.insert(
            key(
                "entra_daily_sign_ins_day_timestamp_seconds",
                &[("tenant", tenant)],
            ),
            d.day_start as f64,
        );
    }
    if let Some(d) = sim.daily_truth(TENANT_ID, DailyReport::PasswordEvents) {
        for (kind, n) in ["admin_reset", "self_service_reset", "self_service_change"]
            .iter()
            .zip(d.counts)
        {
            out.insert(
                key(
                    "entra_daily_password_events",
                    &[("tenant", tenant), ("kind", kind)],
                ),
                n as f64,
            );
        }
    }
    out
}
