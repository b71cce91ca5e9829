//! `entra-mfa-exporter`: wiring only. Config ▸ logging ▸ clients ▸ store ▸ pollers ▸
//! server ▸ shutdown; `--once`, `--check-config`, `--demo` and `simulate` branch here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::atomic_file::write_atomically;
use entra_mfa_exporter::config::{Config, Sources};
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::logging::{self, LogFormat};
use entra_mfa_exporter::server::{ServerMetrics, ServerState, serve};
use entra_mfa_exporter::shard::Shard;
use entra_mfa_exporter::simulate::{self, Faults, RateLimit, SimConfig, SimServer, SimTenant};
use entra_mfa_exporter::web_config::WebConfigHandle;
use entra_mfa_exporter::{poller, reports::ReportKind, snapshot_file};

/// Users in the `--demo` tenant: several pages at the default page size.
const DEMO_USERS: u64 = 2_500;
/// Graph's 5 requests per 10 s would make the demo's every-report refresh take longer
/// than its interval; the in-process simulator has no such limit.
const DEMO_MAX_REQUESTS_PER_10S: u32 = 100;
/// Refresh interval in `--demo`, so the drifting data shows up quickly.
const DEMO_REFRESH: &str = "20s";

#[derive(Debug, Parser)]
#[command(
    name = "entra-mfa-exporter",
    version,
    about = "Prometheus exporter for Microsoft Entra ID MFA / SSPR / passwordless registration reports"
)]
struct Cli {
    /// TOML config file.
    #[arg(
        long = "config.file",
        env = "ENTRA_EXPORTER_CONFIG_FILE",
        value_name = "PATH"
    )]
    config_file: Option<PathBuf>,
    /// Address to listen on.
    #[arg(
        long = "web.listen-address",
        env = "ENTRA_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = "0.0.0.0:10077",
        value_name = "ADDR"
    )]
    listen_address: String,
    /// Path of the metrics endpoint.
    #[arg(
        long = "web.telemetry-path",
        env = "ENTRA_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    telemetry_path: String,
    /// TLS and basic-auth config (exporter-toolkit format).
    #[arg(
        long = "web.config.file",
        env = "ENTRA_EXPORTER_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    web_config_file: Option<PathBuf>,
    /// Requests to the metrics path answered at once (node_exporter's flag); more get
    /// 429. 0: no limit.
    #[arg(
        long = "web.max-requests",
        env = "ENTRA_EXPORTER_WEB_MAX_REQUESTS",
        default_value_t = entra_mfa_exporter::server::DEFAULT_MAX_REQUESTS,
        value_name = "N"
    )]
    max_requests: usize,
    /// Run against a built-in simulated tenant (no credentials needed).
    #[arg(long, env = "ENTRA_EXPORTER_DEMO")]
    demo: bool,
    /// Collect every report once, print the classic exposition, exit non-zero on failure.
    #[arg(long, env = "ENTRA_EXPORTER_ONCE")]
    once: bool,
    /// With --once: write the exposition to FILE atomically instead of stdout.
    #[arg(
        long,
        env = "ENTRA_EXPORTER_OUTPUT",
        requires = "once",
        value_name = "FILE"
    )]
    output: Option<PathBuf>,
    /// Validate the config, print it with secrets redacted, exit.
    #[arg(long = "check-config", env = "ENTRA_EXPORTER_CHECK_CONFIG")]
    check_config: bool,
    /// error, warn, info, debug or trace.
    #[arg(long = "log.level", env = "ENTRA_EXPORTER_LOG_LEVEL", default_value = "info",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
    /// Log line format.
    #[arg(
        long = "log.format",
        env = "ENTRA_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt"
    )]
    log_format: LogFormat,
    /// Persist the last good snapshots here.
    #[arg(
        long = "storage.snapshot-file",
        env = "ENTRA_EXPORTER_STORAGE_SNAPSHOT_FILE",
        value_name = "PATH"
    )]
    snapshot_file: Option<PathBuf>,
    /// This replica's shard: collect only the tenants whose name's FNV-1a 64 hash
    /// modulo --shard.count is this.
    #[arg(
        long = "shard.index",
        env = "ENTRA_EXPORTER_SHARD_INDEX",
        default_value_t = 0
    )]
    shard_index: u32,
    /// Number of shards.
    #[arg(
        long = "shard.count",
        env = "ENTRA_EXPORTER_SHARD_COUNT",
        default_value_t = 1
    )]
    shard_count: u32,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the simulated Graph and token endpoints standalone.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:10078")]
    listen: SocketAddr,
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tenant ID to accept.
    #[arg(long, default_value = simulate::DEMO_TENANT_ID)]
    tenant_id: String,
    /// Client ID to accept.
    #[arg(long, default_value = simulate::DEMO_CLIENT_ID)]
    client_id: String,
    /// Client secret to accept.
    #[arg(long, env = "SIMULATE_CLIENT_SECRET", default_value = simulate::DEMO_CLIENT_SECRET, hide_default_value = true)]
    client_secret: String,
    /// Lifetime of issued tokens.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    token_lifetime: Duration,
    /// Make the data drift with this period (as in --demo).
    #[arg(long, value_parser = humantime::parse_duration)]
    drift: Option<Duration>,
    /// Fault: answer every Nth report request with 429.
    #[arg(long, value_name = "N")]
    throttle_every: Option<u32>,
    /// Fault: Retry-After seconds on those 429s (omitted when unset; may be fractional).
    #[arg(long, value_name = "SECONDS")]
    retry_after: Option<f64>,
    /// Fault: Graph's real limit, at most N report requests per tenant in any sliding
    /// 10-second window; more get 429 (Graph's limit is 5).
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// With --rate-limit: send those 429s without Retry-After, as Graph often does.
    #[arg(long, requires = "rate_limit")]
    rate_limit_no_retry_after: bool,
    /// Fault: answer every Nth report request with 503.
    #[arg(long, value_name = "N")]
    server_error_every: Option<u32>,
    /// Fault: with --server-error-every, fail this many requests in a row (503/504).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1,
        requires = "server_error_every"
    )]
    server_error_burst: u32,
    /// Fault: cut every Nth page off halfway (connection closed mid-body).
    #[arg(long, value_name = "N")]
    truncate_every: Option<u32>,
    /// Fault: stall every Nth page halfway through its body (see --stall).
    #[arg(long, value_name = "N")]
    stall_every: Option<u32>,
    /// How long a stalled body stalls.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    stall: Duration,
    /// Fault: at every Nth report request, expire every issued token (401 mid-walk).
    #[arg(long, value_name = "N")]
    revoke_tokens_every: Option<u32>,
    /// Fault: point every @odata.nextLink at this base URL (another host).
    #[arg(long, value_name = "URL")]
    foreign_next_link: Option<String>,
    /// Fault: leave `value` out of every Nth page.
    #[arg(long, value_name = "N")]
    missing_value_every: Option<u32>,
    /// Fault: make every Nth page's @odata.nextLink its own URL (a paging loop).
    #[arg(long, value_name = "N")]
    next_link_loop_every: Option<u32>,
    /// Fault: the tenant loses its P1/P2 licence after N report requests.
    #[arg(long, value_name = "N")]
    licence_lost_after: Option<u32>,
    /// Simulate a tenant without an Entra ID P1/P2 licence.
    #[arg(long)]
    unlicensed: bool,
    /// Serve usersRegisteredByFeature/Method to app-only tokens (real Graph refuses them).
    #[arg(long)]
    app_only_summaries: bool,
    /// Serve this many tenants (load tests of many-tenant setups): tenant i (from 0)
    /// has tenant ID `{tenant-id}-{i}` and seed `{seed}+i`; client ID and secret are shared.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    tenants: u32,
    /// PEM certificate registered on the app: certificate client assertions are verified
    /// against it.
    #[arg(long, value_name = "PATH")]
    certificate: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Simulate(args)) = cli.command {
        return simulate_standalone(args).await;
    }
    // In demo mode the simulator must be up before the config can point at it.
    let demo = if cli.demo {
        Some(start_demo().await?)
    } else {
        None
    };
    let shard = Shard::new(cli.shard_index, cli.shard_count).map_err(anyhow::Error::msg)?;
    let mut config = match &demo {
        Some(sim) => demo_config(sim)?,
        None => Config::load(&Sources {
            file: cli.config_file.clone(),
            use_env: true,
        })?,
    };
    let configured = config.tenants.len();
    config.tenants.retain(|t| shard.owns(&t.name));
    if shard.count > 1 {
        tracing::info!(%shard, tenants = config.tenants.len(), configured, "collecting this shard's tenants");
        if config.tenants.is_empty() {
            tracing::warn!(%shard, configured, "no configured tenant hashes to this shard");
        }
    }
    if cli.check_config {
        print!("{}", config.to_redacted_toml());
        return Ok(ExitCode::SUCCESS);
    }

    let mut exporter = Exporter::new(&config, RetryPolicy::default());
    exporter.shard = shard;
    if let Some(path) = &cli.snapshot_file {
        // Only this shard's tenants are in `config`, so only theirs are restored.
        // --once prints what it collected, never a restored snapshot; it still persists.
        snapshot_file::attach(path, &config, &exporter.store, !cli.once);
    }
    if cli.once {
        return once(&exporter, cli.output.as_deref()).await;
    }

    let web = WebConfigHandle::load(cli.web_config_file.as_deref())?;
    let listener = tokio::net::TcpListener::bind(&cli.listen_address)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen_address))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut pollers = poller::spawn_all(
        &exporter.tenants,
        exporter.store.clone(),
        exporter.metrics.clone(),
        stop_rx,
    );
    let server_metrics = ServerMetrics::default();
    let state = std::sync::Arc::new(ServerState {
        registry: server_metrics.registered(exporter.registry()),
        metrics: server_metrics,
        max_requests: cli.max_requests,
        store: exporter.store.clone(),
        telemetry_path: cli.telemetry_path.clone(),
        shard,
        banner: demo.as_ref().map(|_| {
            "Demo mode: the tenant \"demo\" is simulated in-process; its data drifts over time."
                .to_owned()
        }),
        web,
        cache: Default::default(),
    });
    let reloader = tokio::spawn(reload_web_config_on_sighup(state.clone()));
    tracing::info!(
        address = %listener.local_addr()?, tenants = config.tenants.len(),
        reports = config.tenants.iter().map(|t| t.reports.len()).sum::<usize>(),
        demo = cli.demo, tls = state.web.current().tls.is_some(),
        basic_auth = state.web.current().auth.is_some(), "listening"
    );
    serve(listener, state, shutdown_signal()).await?;
    reloader.abort();
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(5), async {
        while pollers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        pollers.abort_all();
    }
    if let Some(sim) = demo {
        sim.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

async fn once(exporter: &Exporter, output: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let failures = exporter.collect_once().await;
    let text = exporter.classic_text();
    for (tenant, report, error) in &failures {
        eprintln!("error: tenant {tenant:?} report {report}: {error}");
    }
    match output {
        Some(path) if failures.is_empty() => {
            write_atomically(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Some(path) => eprintln!(
            "not writing {}: {} report(s) failed",
            path.display(),
            failures.len()
        ),
        None => print!("{text}"),
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn start_demo() -> anyhow::Result<SimServer> {
    let seed = 42;
    let sim = SimServer::start(
        ([127, 0, 0, 1], 0).into(),
        simulate::demo_config(DEMO_USERS, seed),
    )
    .await
    .context("cannot start the demo simulator on 127.0.0.1")?;
    tracing::info!(graph_url = %sim.base_url(), users = DEMO_USERS, "demo: simulated tenant started");
    Ok(sim)
}

fn demo_config(sim: &SimServer) -> anyhow::Result<Config> {
    let url = sim.base_url();
    let reports: Vec<String> = ReportKind::ALL
        .iter()
        // Every report but the legacy registration source, which feeds the same families.
        .filter(|r| **r != ReportKind::CredentialUserRegistrationDetails)
        .map(|r| format!("{:?}", r.name()))
        .collect();
    let text = format!(
        "refresh_interval = {DEMO_REFRESH:?}\nmax_requests_per_10s = {DEMO_MAX_REQUESTS_PER_10S}\n[[tenants]]\nname = \"demo\"\ntenant_id = {:?}\nclient_id = {:?}\n\
         client_secret = {:?}\ngraph_url = {url:?}\nlogin_url = {url:?}\nreports = [{}]\n\
         admins_without_mfa = true\n",
        simulate::DEMO_TENANT_ID,
        simulate::DEMO_CLIENT_ID,
        simulate::DEMO_CLIENT_SECRET,
        reports.join(", "),
    );
    Ok(Config::from_toml(&text)?)
}

async fn simulate_standalone(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let certificate = match &args.certificate {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --certificate {}", path.display()))?,
        ),
        None => None,
    };
    let tenants: Vec<SimTenant> = (0..args.tenants)
        .map(|i| {
            let tenant_id = if args.tenants == 1 {
                args.tenant_id.clone()
            } else {
                format!("{}-{i}", args.tenant_id)
            };
            let mut tenant = SimTenant::new(
                tenant_id,
                args.client_id.clone(),
                args.client_secret.clone(),
                args.users,
                args.seed + u64::from(i),
            );
            tenant.licensed = !args.unlicensed;
            tenant.drift = args.drift;
            tenant.certificate_pem = certificate.clone();
            tenant.app_only_summaries = args.app_only_summaries;
            tenant
        })
        .collect();
    let config = SimConfig {
        tenants,
        faults: Faults {
            throttle_every: args.throttle_every,
            retry_after: args.retry_after,
            server_error_every: args.server_error_every,
            server_error_burst: args.server_error_burst,
            rate_limit: args.rate_limit.map(|n| RateLimit {
                retry_after: !args.rate_limit_no_retry_after,
                ..RateLimit::per_10s(n)
            }),
            truncate_every: args.truncate_every,
            stall_every: args.stall_every,
            stall: args.stall,
            revoke_tokens_every: args.revoke_tokens_every,
            foreign_next_link: args.foreign_next_link,
            missing_value_every: args.missing_value_every,
            next_link_loop_every: args.next_link_loop_every,
            licence_lost_after: args.licence_lost_after,
        },
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    };
    simulate::serve(args.listen, config, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Reloads `--web.config.file` on every SIGHUP; a broken file keeps the previous config.
async fn reload_web_config_on_sighup(state: std::sync::Arc<ServerState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the web config will not be reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            match state.web.reload() {
                Ok(true) => tracing::info!("web config reloaded"),
                Ok(false) => tracing::info!("SIGHUP: no --web.config.file to reload"),
                Err(e) => {
                    tracing::error!(error = %e, "web config reload failed; keeping the previous one")
                }
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
