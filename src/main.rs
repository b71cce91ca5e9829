//! `entra-mfa-exporter`: wiring only. Config ▸ logging ▸ clients ▸ store ▸ pollers ▸
//! server ▸ shutdown; `--once`, `--check-config`, `--demo` and `simulate` branch here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::atomic_file::write_atomically;
use entra_mfa_exporter::config::{Config, Sources};
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::logging::{self, LogFormat};
use entra_mfa_exporter::server::{ServerMetrics, ServerState, serve};
use entra_mfa_exporter::shard::Shard;
use entra_mfa_exporter::simulate::{self, SimServer};
use entra_mfa_exporter::web_config::WebConfigHandle;
use entra_mfa_exporter::{poller, reports::ReportKind};

/// Users in the `--demo` tenant: several pages at the default page size.
const DEMO_USERS: u64 = 2_500;
/// Seed of the demo tenant's data.
const DEMO_SEED: u64 = 42;
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
        value_name = "PATH",
        global = true
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
    Simulate(Box<simulate::cli::SimulateArgs>),
    /// Sign in as a user (device code) for the delegated-only reports of one tenant;
    /// writes the refresh token to its refresh_token_file.
    Login {
        /// The tenant's `name` in the config file.
        #[arg(long, value_name = "NAME")]
        tenant: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    logging::init(&cli.log_level, log_format);
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
            report_fatal(&e, log_format);
            ExitCode::FAILURE
        }
    }
}

/// Prints the error that ends the run, once: `error: …` with its causes on stderr, the
/// further lines of a multi-line message (every config problem is one) indented under
/// it. With `--log.format json` it is a JSON record as well: there stderr goes to a log
/// pipeline that indexes and alerts on records it can parse, and a plain line is at best
/// an unparsed string to it. A logfmt record is not added: logfmt is read by people, and
/// it would say the same again with the line breaks escaped as `\n`.
fn report_fatal(e: &anyhow::Error, format: LogFormat) {
    let message = format!("{e:#}");
    if format == LogFormat::Json {
        tracing::error!(error = %message, "exiting");
    }
    eprintln!("error: {}", message.replace('\n', "\n  "));
}

/// Every flag's environment variable, from the clap definitions: config loading must
/// not take them for config keys.
fn flag_env_vars() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .collect()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Simulate(args)) = cli.command {
        simulate::cli::run(*args, shutdown_signal()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Login { tenant }) = &cli.command {
        return login(&cli, tenant).await;
    }
    let shard = Shard::new(cli.shard_index, cli.shard_count).map_err(anyhow::Error::msg)?;
    // In demo mode the simulator must be up before the config can point at it.
    let (demo, config, configured) = load_config(&cli, shard).await?;
    // The demo's refresh-token file goes when the run ends, however it ends.
    let _demo_token = demo.as_ref().and_then(|_| {
        let login = config.tenants.first()?.delegated.as_ref()?;
        Some(RemoveOnDrop(login.refresh_token_file.clone()))
    });
    if cli.check_config {
        if shard.count > 1 {
            println!(
                "# Shard {shard}: {} of the {configured} configured tenants (the others are other shards').",
                config.tenants.len()
            );
        }
        print!("{}", config.to_redacted_toml());
        return Ok(ExitCode::SUCCESS);
    }

    let mut exporter = Exporter::for_shard(&config, RetryPolicy::default(), shard);
    if let Some(path) = &cli.snapshot_file {
        // Only this shard's tenants are in `config`, so only theirs are restored.
        // --once prints what it collected, never a restored snapshot; it still persists.
        exporter.persist_to(path, &config, !cli.once);
    }
    if cli.once {
        return once(&exporter, cli.output.as_deref()).await;
    }
    serve_until_signal(&cli, &config, &exporter, demo.is_some()).await?;
    if let Some(sim) = demo {
        sim.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The config (the demo's, with its simulator), this shard's tenants only, and how many
/// tenants were configured in all. Config warnings are logged.
async fn load_config(
    cli: &Cli,
    shard: Shard,
) -> anyhow::Result<(Option<SimServer>, Config, usize)> {
    let (demo, mut config) = if cli.demo {
        let (sim, config) = start_demo().await?;
        (Some(sim), config)
    } else {
        let config = Config::load(&Sources {
            file: cli.config_file.clone(),
            use_env: true,
            flag_env_vars: flag_env_vars(),
        })?;
        (None, config)
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    // The demo enables the retired reports on purpose, to show every family: a
    // newcomer's first run should not open with warnings about their own config.
    if demo.is_none() {
        warn_retired(&config);
    }
    let configured = config.tenants.len();
    config.tenants.retain(|t| shard.owns(&t.name));
    if shard.count > 1 {
        tracing::info!(%shard, tenants = config.tenants.len(), configured, "collecting this shard's tenants");
        if config.tenants.is_empty() {
            tracing::warn!(%shard, configured, "no configured tenant hashes to this shard");
        }
    }
    Ok((demo, config, configured))
}

/// Serves `/metrics` while the pollers refresh, until SIGTERM or SIGINT; then stops the
/// pollers (5 s to finish, then aborted).
async fn serve_until_signal(
    cli: &Cli,
    config: &Config,
    exporter: &Exporter,
    demo: bool,
) -> anyhow::Result<()> {
    let web = WebConfigHandle::load(cli.web_config_file.as_deref())?;
    let listener = tokio::net::TcpListener::bind(&cli.listen_address)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen_address))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut pollers = poller::spawn_all(&exporter.tenants, exporter.publisher(), stop_rx);
    let server_metrics = ServerMetrics::default();
    let state = std::sync::Arc::new(ServerState {
        registry: server_metrics.registered(exporter.registry()),
        metrics: server_metrics,
        max_requests: cli.max_requests,
        store: exporter.store.clone(),
        telemetry_path: cli.telemetry_path.clone(),
        shard: exporter.shard,
        banner: demo.then(|| {
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
        demo, tls = state.web.current().tls.is_some(),
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
    Ok(())
}

async fn once(exporter: &Exporter, output: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let failures = exporter.collect_once().await;
    let text = exporter.classic_text();
    if !failures.is_empty() {
        // Each failure's reason is logged by the refresh (level error) as it happens;
        // this says which failed and what was not done, without repeating the reasons.
        let total: usize = exporter
            .tenants
            .iter()
            .map(|t| t.config.reports.len())
            .sum();
        let failed: Vec<String> = failures
            .iter()
            .map(|(tenant, report, _)| format!("tenant {tenant:?} report {report}"))
            .collect();
        let not_written = output.map_or(String::new(), |p| {
            format!("; {} was not written", p.display())
        });
        eprintln!(
            "error: {} of {total} report refreshes failed{not_written} (the reasons are logged above): {}",
            failures.len(),
            failed.join(", ")
        );
    }
    match output {
        Some(path) if failures.is_empty() => {
            write_atomically(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Some(_) => {}
        None => print!("{text}"),
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `login --tenant NAME`: the device-code sign-in, then the refresh token written to
/// the tenant's `refresh_token_file` (mode 0600, atomically). The token is never
/// printed.
async fn login(cli: &Cli, name: &str) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Sources {
        file: cli.config_file.clone(),
        use_env: true,
        flag_env_vars: flag_env_vars(),
    })?;
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("no tenant named {name:?} in the config"))?;
    let http = entra_mfa_exporter::graph::http_client(std::time::Duration::from_secs(60));
    let token = entra_mfa_exporter::graph::device_code::sign_in(&http, tenant, |line| {
        println!("{line}");
    })
    .await?;
    let file = &tenant
        .delegated
        .as_ref()
        .context("refresh_token_file is not set")?
        .refresh_token_file;
    entra_mfa_exporter::atomic_file::write_private_atomically(
        file,
        format!("{}\n", token.expose()).as_bytes(),
    )
    .with_context(|| format!("cannot write the refresh token to {}", file.display()))?;
    println!(
        "Signed in: the refresh token of tenant {name} is in {}",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Warns once per retired report a tenant enables (design.md, "Delegated sign-in"):
/// Microsoft's date and the successor, and which tenants use it.
fn warn_retired(config: &Config) {
    for kind in ReportKind::all() {
        let Some(retired) = kind.retired() else {
            continue;
        };
        let tenants: Vec<&str> = config
            .tenants
            .iter()
            .filter(|t| t.reports.iter().any(|r| r.kind == kind))
            .map(|t| t.name.as_str())
            .collect();
        if !tenants.is_empty() {
            tracing::warn!(
                report = %kind,
                retired = retired.date,
                successor = retired.successor,
                tenants = %tenants.join(","),
                "report retired by Microsoft: it is still collected while Graph answers, but move to its successor"
            );
        }
    }
}

/// A file removed when dropped (the demo's refresh token).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the demo simulator and returns it with the exporter config for it.
async fn start_demo() -> anyhow::Result<(SimServer, Config)> {
    let mut sim_config = simulate::demo_config(DEMO_USERS, DEMO_SEED);
    // The delegated-only reports go through a delegated sign-in, as against Graph; the
    // demo has no user to run `login`, so the simulator mints the refresh token.
    sim_config.tenants[0].app_only_summaries = false;
    let tenant = sim_config.tenants[0].clone();
    let sim = SimServer::start(([127, 0, 0, 1], 0).into(), sim_config)
        .await
        .context("cannot start the demo simulator on 127.0.0.1")?;
    tracing::info!(graph_url = %sim.base_url(), users = DEMO_USERS, "demo: simulated tenant started");
    let reports: Vec<String> = ReportKind::all()
        // Every report but the legacy registration source, which feeds the same families.
        .filter(|r| r.name() != "credential_user_registration_details")
        .map(|r| format!("{:?}", r.name()))
        .collect();
    let token = sim
        .mint_refresh_token(&tenant.tenant_id, "offline_access AuditLog.Read.All")
        .context("the demo simulator has no demo tenant")?;
    let token_file = std::env::temp_dir().join(format!(
        "entra-mfa-exporter-demo-{}.refresh-token",
        std::process::id()
    ));
    entra_mfa_exporter::atomic_file::write_private_atomically(&token_file, token.as_bytes())
        .with_context(|| {
            format!(
                "cannot write the demo refresh token to {}",
                token_file.display()
            )
        })?;
    // The simulator's config ends inside its [[tenants]] table: the demo's keys follow.
    let text = format!(
        "refresh_interval = {DEMO_REFRESH:?}\n{}reports = [{}]\nadmins_without_mfa = true\nrefresh_token_file = {}\n{}{}",
        simulate::cli::exporter_config("demo", &tenant, &sim.base_url(), None),
        reports.join(", "),
        toml::Value::String(token_file.display().to_string()),
        simulate::DEMO_COVERAGE_CONFIG,
        simulate::DEMO_PRIVILEGED_CONFIG,
    );
    let config = Config::from_toml(&text)?;
    Ok((sim, config))
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
