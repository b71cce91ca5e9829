//! The `simulate` subcommand: its flags, and a start-up that tells the credentials it
//! accepts and an exporter config that works against it, so `--once` succeeds on the
//! first try.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Faults, RateLimit, SimConfig, SimServer,
    SimTenant, department_groups,
};

/// What the exporter's `max_requests_per_10s` is raised to against a simulator that
/// does not pace: every report of a tenant refreshes at once instead of 5 per 10 s.
pub const UNPACED_MAX_REQUESTS_PER_10S: u32 = 100;

/// `entra-mfa-exporter simulate`: serve the simulated Graph and token endpoint.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on (port 0: any free port; the start-up lines tell which).
    #[arg(long, default_value = "127.0.0.1:10078")]
    listen: SocketAddr,
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tenant ID to accept.
    #[arg(long, default_value = DEMO_TENANT_ID)]
    tenant_id: String,
    /// Client ID to accept.
    #[arg(long, default_value = DEMO_CLIENT_ID)]
    client_id: String,
    /// Client secret to accept (a simulator's: it is printed at start).
    #[arg(long, env = "SIMULATE_CLIENT_SECRET", default_value = DEMO_CLIENT_SECRET)]
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
    /// Fault: Graph's per-app limit, at most N report requests per app (client ID)
    /// across all its tenants in any sliding 10-second window; more get 429 with
    /// Retry-After (Graph's limit is 122).
    #[arg(long, value_name = "N")]
    app_rate_limit: Option<u32>,
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
    /// Serve one more tenant, with this many users (scale tests: one huge tenant among
    /// many small ones): tenant ID `{tenant-id}-large`, seed `{seed}+{tenants}`, the same
    /// client ID and secret.
    #[arg(long, value_name = "USERS")]
    large_tenant_users: Option<u64>,
    /// PEM certificate registered on the app: certificate client assertions are verified
    /// against it.
    #[arg(long, value_name = "PATH")]
    certificate: Option<PathBuf>,
    /// Serve this many groups, `Department 0` … (ids in the start banner's config), that
    /// share --group-memberships between them (load tests of `groups`).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=50))]
    groups: u32,
    /// With --groups: user memberships over all the groups together.
    #[arg(long, value_name = "M", default_value_t = 0, requires = "groups")]
    group_memberships: u64,
}

/// Why `simulate` could not start.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--certificate` could not be read.
    #[error("cannot read --certificate {}: {source}", path.display())]
    Certificate {
        /// The file named.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--listen` could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Serves the simulator as `args` say until `shutdown` completes. Once listening it
/// prints the credentials and an exporter config for it on stdout.
pub async fn run(
    args: SimulateArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let config = sim_config(&args)?;
    let first = config.tenants[0].clone();
    let server = SimServer::start(args.listen, config)
        .await
        .map_err(|source| CliError::Listen {
            addr: args.listen,
            source,
        })?;
    let base_url = server.base_url();
    tracing::info!(
        %base_url, tenants = args.tenants, users = args.users, tenant_id = %first.tenant_id,
        client_id = %first.client_id,
        "simulated Graph and token endpoint listening; credentials and an exporter config on stdout"
    );
    print!("{}", start_banner(&args, &first, &base_url));
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

/// The simulator `args` describe.
fn sim_config(args: &SimulateArgs) -> Result<SimConfig, CliError> {
    let certificate = match &args.certificate {
        Some(path) => {
            Some(
                std::fs::read_to_string(path).map_err(|source| CliError::Certificate {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let large = args
        .large_tenant_users
        .map(|users| (format!("{}-large", args.tenant_id), users));
    let tenants = (0..args.tenants)
        .map(|i| (tenant_id(&args.tenant_id, i, args.tenants), args.users))
        .chain(large)
        .zip(args.seed..)
        .map(|((id, users), seed)| {
            let mut tenant = SimTenant::new(
                id,
                args.client_id.clone(),
                args.client_secret.clone(),
                users,
                seed,
            );
            tenant.licensed = !args.unlicensed;
            tenant.drift = args.drift;
            tenant.certificate_pem = certificate.clone();
            tenant.app_only_summaries = args.app_only_summaries;
            tenant.groups = department_groups(args.groups, args.users, args.group_memberships);
            tenant
        })
        .collect();
    Ok(SimConfig {
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
            app_rate_limit: args.app_rate_limit.map(RateLimit::per_10s),
            truncate_every: args.truncate_every,
            stall_every: args.stall_every,
            stall: args.stall,
            revoke_tokens_every: args.revoke_tokens_every,
            foreign_next_link: args.foreign_next_link.clone(),
            missing_value_every: args.missing_value_every,
            next_link_loop_every: args.next_link_loop_every,
            licence_lost_after: args.licence_lost_after,
            ..Faults::default()
        },
        token_lifetime: args.token_lifetime,
        ..SimConfig::default()
    })
}

/// Tenant `i` of `count`: the given ID alone, or `{id}-{i}` when there are several.
fn tenant_id(base: &str, i: u32, count: u32) -> String {
    if count == 1 {
        base.to_owned()
    } else {
        format!("{base}-{i}")
    }
}

/// What `simulate` prints once listening: the credentials, then a config to paste.
fn start_banner(args: &SimulateArgs, first: &SimTenant, base_url: &str) -> String {
    let mut out = format!(
        "Simulated Graph and token endpoint on {base_url}\n\
         tenant_id     = {}\nclient_id     = {}\nclient_secret = {}\n",
        first.tenant_id, first.client_id, first.client_secret
    );
    if args.tenants > 1 {
        out.push_str(&format!(
            "{} tenants: {} … {}, each with this client ID and secret; the config below names the first.\n",
            args.tenants,
            first.tenant_id,
            tenant_id(&args.tenant_id, args.tenants - 1, args.tenants),
        ));
    }
    if let Some(users) = args.large_tenant_users {
        out.push_str(&format!(
            "Plus {}-large with {users} users, with this client ID and secret.\n",
            args.tenant_id
        ));
    }
    out.push_str(
        "Exporter config (save it as sim.toml, then run entra-mfa-exporter --config.file sim.toml --once):\n\n",
    );
    out.push_str(&exporter_config("sim", first, base_url, args.rate_limit));
    if args.tenants > 1 {
        out.push_str(&format!(
            "# The other tenants: repeat [[tenants]] with tenant_id = \"{}\" … \"{}\" and names of their own.\n",
            tenant_id(&args.tenant_id, 1, args.tenants),
            tenant_id(&args.tenant_id, args.tenants - 1, args.tenants),
        ));
    }
    out
}

/// An exporter config (TOML) with one tenant `name` reading `tenant` from the simulator
/// at `base_url`. `rate_limit` is the simulator's `--rate-limit`, if any: the exporter
/// paces at it; without one the exporter's pace is lifted to
/// [`UNPACED_MAX_REQUESTS_PER_10S`]. It ends inside the `[[tenants]]` table, so a
/// caller may append more keys of that tenant.
pub fn exporter_config(
    name: &str,
    tenant: &SimTenant,
    base_url: &str,
    rate_limit: Option<u32>,
) -> String {
    let pace = match rate_limit {
        Some(n) => format!(
            "# The simulator's --rate-limit: at most {n} requests per 10 s.\nmax_requests_per_10s = {n}\n"
        ),
        None => format!(
            "# The simulator does not pace like Graph (5 requests per 10 s): lift the exporter's\n\
             # limit for local runs. Leave this line out against Graph.\n\
             max_requests_per_10s = {UNPACED_MAX_REQUESTS_PER_10S}\n"
        ),
    };
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    format!(
        "{pace}\n[[tenants]]\nname = {}\ntenant_id = {}\nclient_id = {}\nclient_secret = {}\n\
         graph_url = {}\nlogin_url = {}\n",
        s(name),
        s(&tenant.tenant_id),
        s(&tenant.client_id),
        s(&tenant.client_secret),
        s(base_url),
        s(base_url),
    )
}

/// `simulate ARGS…` parsed as the binary would.
#[cfg(test)]
pub(super) fn parse(args: &[&str]) -> SimulateArgs {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }
    <Cli as clap::Parser>::parse_from(std::iter::once("simulate").chain(args.iter().copied())).args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_the_simulator() {
        let args = parse(&[
            "--tenants",
            "3",
            "--tenant-id",
            "t",
            "--seed",
            "7",
            "--rate-limit",
            "5",
            "--rate-limit-no-retry-after",
            "--unlicensed",
        ]);
        let config = sim_config(&args).unwrap();
        let ids: Vec<_> = config
            .tenants
            .iter()
            .map(|t| t.tenant_id.as_str())
            .collect();
        assert_eq!(ids, ["t-0", "t-1", "t-2"]);
        assert_eq!(config.tenants[2].seed, 9);
        assert!(config.tenants.iter().all(|t| !t.licensed));
        assert_eq!(config.faults.app_rate_limit, None);
        let large_args = parse(&[
            "--tenants",
            "2",
            "--tenant-id",
            "t",
            "--users",
            "10",
            "--large-tenant-users",
            "5000",
            "--app-rate-limit",
            "122",
        ]);
        let large = sim_config(&large_args).unwrap();
        let shape: Vec<_> = large
            .tenants
            .iter()
            .map(|t| (t.tenant_id.as_str(), t.users, t.seed))
            .collect();
        assert_eq!(
            shape,
            [("t-0", 10, 1), ("t-1", 10, 2), ("t-large", 5000, 3)]
        );
        assert_eq!(large.faults.app_rate_limit, Some(RateLimit::per_10s(122)));
        assert_eq!(
            config.faults.rate_limit,
            Some(RateLimit {
                retry_after: false,
                ..RateLimit::per_10s(5)
            })
        );
        let one = sim_config(&parse(&[])).unwrap();
        assert_eq!(one.tenants[0].tenant_id, DEMO_TENANT_ID);
        assert_eq!(one.tenants[0].client_secret, DEMO_CLIENT_SECRET);
    }

    #[test]
    fn a_missing_certificate_names_the_flag_and_file() {
        let args = parse(&["--certificate", "/nonexistent/app.crt"]);
        let e = sim_config(&args).unwrap_err().to_string();
        assert!(e.contains("--certificate /nonexistent/app.crt"), "{e}");
    }

    #[test]
    fn the_banner_tells_credentials_and_a_config() {
        let args = parse(&[]);
        let config = sim_config(&args).unwrap();
        let text = start_banner(&args, &config.tenants[0], "http://127.0.0.1:1");
        for want in [
            DEMO_TENANT_ID,
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "max_requests_per_10s = 100",
            "login_url = \"http://127.0.0.1:1\"",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        let args = parse(&["--tenants", "4", "--tenant-id", "t", "--rate-limit", "5"]);
        let config = sim_config(&args).unwrap();
        let text = start_banner(&args, &config.tenants[0], "http://127.0.0.1:1");
        assert!(text.contains("4 tenants: t-0 … t-3"), "{text}");
        assert!(text.contains("tenant_id = \"t-1\" … \"t-3\""), "{text}");
        assert!(text.contains("max_requests_per_10s = 5\n"), "{text}");
        let args = parse(&["--tenant-id", "t", "--large-tenant-users", "9"]);
        let config = sim_config(&args).unwrap();
        let text = start_banner(&args, &config.tenants[0], "http://127.0.0.1:1");
        assert!(text.contains("Plus t-large with 9 users"), "{text}");
    }

    #[test]
    fn the_config_is_toml_with_one_tenant() {
        let tenant = SimTenant::new("t.example", "c", "s\"e\\c", 1, 1);
        let text = exporter_config("sim", &tenant, "http://127.0.0.1:9", None);
        let v: toml::Table = text.parse().unwrap();
        assert_eq!(v["max_requests_per_10s"].as_integer(), Some(100));
        let t = &v["tenants"].as_array().unwrap()[0];
        assert_eq!(t["client_secret"].as_str(), Some("s\"e\\c"));
        assert_eq!(t["tenant_id"].as_str(), Some("t.example"));
        assert_eq!(t["graph_url"].as_str(), Some("http://127.0.0.1:9"));
        assert_eq!(t["login_url"].as_str(), Some("http://127.0.0.1:9"));
    }
}
