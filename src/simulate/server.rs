//! The hyper plumbing: binding, the accept loop with graceful shutdown, dispatch to the
//! token endpoint or the Graph routes, the headers every response carries, and the
//! request log and counters tests read.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::body::SimBody;
use super::dates::now_unix;
use super::family_truth::{
    self, RegistrationCountTruth, SummaryBy, SummaryTruth, UsageEventsTruth, UsageSummaryTruth,
};
use super::faults::FaultPlan;
use super::rng::random_guid;
use super::tenant::Tenant;
use super::token::TokenStore;
use super::truth::{self, RegistrationTruth};
use super::{RecordedRequest, SimConfig, SimCounters, SimReport, graph, token};

/// Requests kept in the log; older ones are dropped.
const LOG_CAPACITY: usize = 10_000;
/// Largest token request body accepted (a client assertion is a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Truth results kept, keyed by tenant, report and dataset time.
const TRUTH_CACHE: usize = 16;
/// How long shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Graph's JSON content type (graph-api.md §1.3).
pub(crate) const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const STS_JSON: &str = "application/json; charset=utf-8";

/// A response before the common headers are added.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// How the body goes out (injected faults).
    pub(crate) delivery: Delivery,
    /// A 429 from the sliding-window limit.
    pub(crate) rate_limited: bool,
    /// A 429 from the per-app limit.
    pub(crate) app_rate_limited: bool,
}

/// How a response body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// All of it.
    Whole,
    /// Half, then the connection is closed (the declared length never arrives).
    Truncated,
    /// Half, a pause, then the rest.
    Stalled(Duration),
}

impl Reply {
    /// A Graph JSON response.
    pub(crate) fn graph(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            content_type: GRAPH_JSON,
            headers: Vec::new(),
            delivery: Delivery::Whole,
            rate_limited: false,
            app_rate_limited: false,
        }
    }

    /// A token endpoint JSON response.
    pub(crate) fn sts(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            content_type: STS_JSON,
            headers: vec![("cache-control", "no-store, no-cache".into())],
            delivery: Delivery::Whole,
            rate_limited: false,
            app_rate_limited: false,
        }
    }

    /// Adds a header.
    pub(crate) fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// Correlation ids of one request (graph-api.md §7.8).
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) request_id: String,
    pub(crate) client_request_id: String,
}

/// Tenant index, report and dataset time of a cached truth.
type TruthKey = (usize, SimReport, i64);

/// Everything the handlers share.
pub(crate) struct State {
    pub(crate) config: SimConfig,
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) base_url: String,
    pub(crate) tokens: TokenStore,
    pub(crate) faults: FaultPlan,
    /// Per tenant: whether it holds a P1/P2 licence now (starts from the config and can
    /// be switched at run time to simulate licence loss).
    pub(crate) licensed: Vec<AtomicBool>,
    /// Per tenant: directory permission withdrawn at run time (the app's
    /// `GroupMember.Read.All` consent removed): every directory route answers 403.
    pub(crate) directory_denied: Vec<AtomicBool>,
    /// Issue 14b, per tenant: the policy served now (from the config, replaceable at
    /// run time) and whether its permission was withdrawn at run time.
    pub(crate) policies: Vec<Mutex<super::SimPolicy>>,
    pub(crate) policy_denied: Vec<AtomicBool>,

    /// Issue 14: per tenant, the role-management permission withdrawn at run time
    /// (`RoleManagement.Read.Directory` consent removed): every role route answers 403.
    pub(crate) roles_denied: Vec<AtomicBool>,
    log: Mutex<VecDeque<RecordedRequest>>,
    counters: Mutex<SimCounters>,
    truth_cache: Mutex<VecDeque<(TruthKey, RegistrationTruth)>>,
}

/// A running simulator.
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .field("base_url", &self.state.base_url)
            .finish()
    }
}

impl SimServer {
    /// Binds `listen` (tests pass `127.0.0.1:0`) and spawns the serving task.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        // A wildcard bind is reachable on loopback; that is the URL we can vouch for.
        let host = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
            _ => addr.to_string(),
        };
        let tenants = config
            .tenants
            .iter()
            .map(|t| Tenant::new(&t.tenant_id, t.seed, t.users, t.drift))
            .collect();
        let licensed = config
            .tenants
            .iter()
            .map(|t| AtomicBool::new(t.licensed))
            .collect();
        let directory_denied = config
            .tenants
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let policies = config
            .tenants
            .iter()
            .map(|t| Mutex::new(t.policy.clone()))
            .collect();
        let policy_denied = config
            .tenants
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let roles_denied = config
            .tenants
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let state = Arc::new(State {
            faults: FaultPlan::new(config.faults.clone()),
            licensed,
            directory_denied,
            policies,
            policy_denied,
            roles_denied,
            config,
            tenants,
            base_url: format!("http://{host}"),
            tokens: TokenStore::default(),
            log: Mutex::new(VecDeque::new()),
            counters: Mutex::new(SimCounters::default()),
            truth_cache: Mutex::new(VecDeque::new()),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), stopped));
        Ok(SimServer {
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The index of the tenant with `tenant_id` (compared case-insensitively, as Entra does).
    fn tenant_index(&self, tenant_id: &str) -> Option<usize> {
        self.state
            .config
            .tenants
            .iter()
            .position(|t| t.tenant_id.eq_ignore_ascii_case(tenant_id))
    }

    /// `http://HOST:PORT`, no trailing slash: both the Graph and the login base URL.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The counts implied by the rows a full walk of `report` started now would return
    /// (with `Prefer: include-unknown-enum-members`). Empty for an unknown tenant.
    pub fn truth(&self, tenant_id: &str, report: SimReport) -> RegistrationTruth {
        let Some(index) = self.tenant_index(tenant_id) else {
            return RegistrationTruth::default();
        };
        let tenant = &self.state.tenants[index];
        let key = (index, report, tenant.dataset_time(now_unix()));
        if let Some((_, t)) = self
            .state
            .truth_cache
            .lock()
            .expect("cache poisoned")
            .iter()
            .find(|(k, _)| *k == key)
        {
            return t.clone();
        }
        let computed = truth::compute(tenant, report, key.2);
        let mut cache = self.state.truth_cache.lock().expect("cache poisoned");
        if cache.len() >= TRUTH_CACHE {
            cache.pop_front();
        }
        cache.push_back((key, computed.clone()));
        computed
    }

    /// The coverage families' truth for `spec` (registration counts without the
    /// excluded users, exclusions, per group), for a walk started now.
    pub fn coverage_truth(
        &self,
        tenant_id: &str,
        spec: &super::CoverageSpec,
    ) -> super::CoverageTruth {
        let Some(index) = self.tenant_index(tenant_id) else {
            return super::CoverageTruth::default();
        };
        let tenant = &self.state.tenants[index];
        let cfg = &self.state.config.tenants[index];
        super::coverage_truth::compute(cfg, tenant, tenant.dataset_time(now_unix()), spec)
    }

    /// Issue 14: the privileged families' truth for `spec`, for a walk started now.
    pub fn privileged_truth(
        &self,
        tenant_id: &str,
        spec: &super::PrivilegedSpec,
    ) -> super::PrivilegedTruth {
        let Some(index) = self.tenant_index(tenant_id) else {
            return super::PrivilegedTruth::default();
        };
        let tenant = &self.state.tenants[index];
        let cfg = &self.state.config.tenants[index];
        super::privileged_truth::compute(cfg, tenant, tenant.dataset_time(now_unix()), spec)
    }

    /// The tenant generator and the dataset time a walk started now sees.
    fn tenant_now(&self, tenant_id: &str) -> Option<(&Tenant, i64)> {
        let tenant = &self.state.tenants[self.tenant_index(tenant_id)?];
        Some((tenant, tenant.dataset_time(now_unix())))
    }

    /// What `getCredentialUserRegistrationCount` returns now. Default for an unknown tenant.
    pub fn registration_count_truth(&self, tenant_id: &str) -> RegistrationCountTruth {
        self.tenant_now(tenant_id)
            .map(|(t, at)| family_truth::registration_count(t, at))
            .unwrap_or_default()
    }

    /// What `getCredentialUsageSummary(period)` returns now; `period` is `D1`, `D7` or
    /// `D30` (any case). Default for an unknown tenant or period.
    pub fn usage_summary_truth(&self, tenant_id: &str, period: &str) -> UsageSummaryTruth {
        match (
            self.tenant_now(tenant_id),
            family_truth::period_days(period),
        ) {
            (Some((t, at)), Some(days)) => family_truth::usage_summary(t, at, days),
            _ => UsageSummaryTruth::default(),
        }
    }

    /// The events a full walk of `userCredentialUsageDetails` or `userEventsSummary`
    /// started now returns (the two serve the same events).
    pub fn usage_events_truth(&self, tenant_id: &str) -> UsageEventsTruth {
        self.tenant_now(tenant_id)
            .map(|(t, at)| family_truth::usage_events(t, at))
            .unwrap_or_default()
    }

    /// What `usersRegisteredBy{Feature,Method}(includedUserTypes=types,
    /// includedUserRoles=roles)` returns now; `None` for an unknown tenant or enum value.
    pub fn summary_truth(
        &self,
        tenant_id: &str,
        by: SummaryBy,
        types: &str,
        roles: &str,
    ) -> Option<SummaryTruth> {
        let (t, at) = self.tenant_now(tenant_id)?;
        family_truth::summary(t, at, by, types, roles)
    }

    /// The newest complete day of a daily report a walk started now shows; `None` for
    /// an unknown tenant or when no complete day is served.
    pub fn daily_truth(
        &self,
        tenant_id: &str,
        report: super::DailyReport,
    ) -> Option<super::DailyTruth> {
        let tenant = &self.state.tenants[self.tenant_index(tenant_id)?];
        super::daily::truth(tenant, report, now_unix())
    }

    /// What `userSignInsByAuthMethodSummary(period)` returns now (`period` `d1`, `d7`,
    /// `d30`, any case): method ▸ successful sign-ins. Empty for an unknown tenant.
    pub fn sign_ins_by_method_truth(&self, tenant_id: &str, period: &str) -> BTreeMap<String, u64> {
        match (
            self.tenant_now(tenant_id),
            family_truth::period_days(period),
        ) {
            (Some((t, at)), Some(days)) => family_truth::sign_ins_by_method(t, at, days),
            _ => BTreeMap::new(),
        }
    }

    /// Plays the user of a delegated sign-in: approves (or, `approve = false`, declines)
    /// the device code showing `user_code`. `false` when no pending code has it.
    pub fn decide_device_code(&self, user_code: &str, approve: bool) -> bool {
        self.state.tokens.delegated.decide(user_code, approve)
    }

    /// A refresh token for `tenant_id` as if its user had signed in with `scope` (for
    /// `--demo`, which runs without a login step). `None` for an unknown tenant.
    pub fn mint_refresh_token(&self, tenant_id: &str, scope: &str) -> Option<String> {
        let index = self.tenant_index(tenant_id)?;
        let client = &self.state.config.tenants[index].client_id;
        Some(self.state.tokens.delegated.mint(index, client, scope))
    }

    /// Revokes every refresh token of `tenant_id` (the user's sessions revoked); returns
    /// how many were still redeemable.
    pub fn revoke_refresh_tokens(&self, tenant_id: &str) -> usize {
        self.tenant_index(tenant_id)
            .map_or(0, |i| self.state.tokens.delegated.revoke(i))
    }

    /// Where a refresh token stands; `None` when never issued.
    pub fn refresh_token_status(&self, token: &str) -> Option<super::RefreshStatus> {
        self.state.tokens.delegated.status(token)
    }

    /// User principal names of the admins (`isAdmin` true) who are not MFA capable,
    /// sorted.
    pub fn admins_without_mfa_truth(&self, tenant_id: &str) -> Vec<String> {
        self.tenant_now(tenant_id)
            .map(|(t, at)| family_truth::admins_without_mfa(t, at))
            .unwrap_or_default()
    }

    /// The most recent requests (at most 10,000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .log
            .lock()
            .expect("log poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// Grants or withdraws a tenant's P1/P2 licence from now on (licence loss: every
    /// report route answers 403). Returns false for an unknown tenant.
    pub fn set_licensed(&self, tenant_id: &str, licensed: bool) -> bool {
        let Some(i) = self.tenant_index(tenant_id) else {
            return false;
        };
        self.state.licensed[i].store(licensed, Ordering::SeqCst);
        true
    }

    /// Withdraws (or gives back) the app's directory permission from now on, as if an
    /// admin removed its `GroupMember.Read.All` consent. Returns false for an unknown
    /// tenant.
    pub fn set_directory_permission(&self, tenant_id: &str, granted: bool) -> bool {
        self.set_granted(&self.state.directory_denied, tenant_id, granted)
    }

    /// Issue 14b: withdraws (or gives back) the app's policy permission from now on, as
    /// if an admin removed its `Policy.Read.All` consent. Returns false for an unknown
    /// tenant.
    pub fn set_policy_permission(&self, tenant_id: &str, granted: bool) -> bool {
        self.set_granted(&self.state.policy_denied, tenant_id, granted)
    }

    /// Issue 14b: serves `policy` from now on. Returns false for an unknown tenant.
    pub fn set_policy(&self, tenant_id: &str, policy: super::SimPolicy) -> bool {
        let Some(i) = self.tenant_index(tenant_id) else {
            return false;
        };
        *self.state.policies[i].lock().expect("policy lock") = policy;
        true
    }

    /// Issue 14b: what the policy families should say for the policy served now.
    pub fn policy_truth(&self, tenant_id: &str) -> super::PolicyTruth {
        self.tenant_index(tenant_id)
            .map(|i| self.state.policies[i].lock().expect("policy lock").truth())
            .unwrap_or_default()
    }

    /// Issue 14: withdraws (or gives back) the app's role-management permission from
    /// now on, as if an admin removed its `RoleManagement.Read.Directory` consent.
    /// Returns false for an unknown tenant.
    pub fn set_role_permission(&self, tenant_id: &str, granted: bool) -> bool {
        self.set_granted(&self.state.roles_denied, tenant_id, granted)
    }

    /// Sets tenant `tenant_id`'s flag in `denied` (one per tenant) to `!granted`: the
    /// permission switches above. Returns false for an unknown tenant.
    fn set_granted(&self, denied: &[AtomicBool], tenant_id: &str, granted: bool) -> bool {
        let Some(i) = self.tenant_index(tenant_id) else {
            return false;
        };
        denied[i].store(!granted, Ordering::SeqCst);
        true
    }

    /// A federated token as the simulated Kubernetes issuer projects it into a pod (what
    /// `AZURE_FEDERATED_TOKEN_FILE` holds): `sub` = `subject`, valid for `lifetime_secs`
    /// (negative: already expired). Tenants whose `federated_subject` is `subject`
    /// accept it as a client assertion.
    pub fn federated_token(&self, subject: &str, lifetime_secs: i64) -> String {
        self.state
            .tokens
            .verifier
            .mint_federated(subject, lifetime_secs)
    }

    /// Replaces the injected faults from now on and restarts their request count (and the
    /// sliding windows), so a test can fail one refresh after a good one.
    pub fn set_faults(&self, faults: super::Faults) {
        self.state.faults.replace(faults);
    }

    /// Totals since start.
    pub fn counters(&self) -> SimCounters {
        SimCounters {
            app_window_peak: self.state.faults.app_peak(),
            ..*self.state.counters.lock().expect("counters poisoned")
        }
    }

    /// Stops accepting, lets open connections finish (bounded), and awaits the task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        // Dropped without `shutdown`: stop serving rather than leak a listener.
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    let builder = http1::Builder::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Err(e) => {
                    // Usually EMFILE; back off instead of spinning.
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut stopped => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `["contoso.example", "oauth2", "v2.0", "token"]` -> the tenant segment.
fn token_tenant(path: &str) -> Option<&str> {
    sts_tenant(path, "token")
}

/// The tenant segment of `/{tenant}/oauth2/v2.0/{endpoint}`.
fn sts_tenant<'a>(path: &'a str, endpoint: &str) -> Option<&'a str> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [tenant, o, v, t]
            if o.eq_ignore_ascii_case("oauth2")
                && v.eq_ignore_ascii_case("v2.0")
                && t.eq_ignore_ascii_case(endpoint) =>
        {
            Some(tenant)
        }
        _ => None,
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<SimBody> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let authorization = header(&req, "authorization");
    let prefer = header(&req, "prefer");
    let client_request_id = header(&req, "client-request-id");
    let host = header(&req, "host");
    let ctx = Ctx {
        request_id: random_guid(),
        client_request_id: client_request_id.clone().unwrap_or_else(random_guid),
    };
    let path = super::query::percent_decode(uri.path());
    let is_identity = super::identity::is_identity_path(&path);
    let device_tenant = sts_tenant(&path, "devicecode");
    let is_token = token_tenant(&path).is_some() || is_identity || device_tenant.is_some();
    let mut scope = None;
    let reply = if is_identity {
        if method != Method::GET {
            Reply::sts(405, String::new()).with("allow", "GET".into())
        } else {
            super::identity::handle(
                &state.config,
                &state.tokens,
                &path,
                uri.query(),
                header(&req, "metadata").as_deref(),
                header(&req, "x-identity-header").as_deref(),
            )
        }
    } else if let Some(tenant) = device_tenant {
        if method != Method::POST {
            Reply::sts(405, String::new()).with("allow", "POST".into())
        } else {
            let body = match Limited::new(req.into_body(), MAX_FORM_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::new(),
            };
            token::device_code(
                &state.config.tenants,
                &state.tokens,
                &state.base_url,
                tenant,
                &body,
                state.config.device_code_lifetime,
                state.config.device_code_interval,
            )
        }
    } else if let Some(tenant) = token_tenant(&path) {
        if method != Method::POST {
            Reply::sts(405, String::new()).with("allow", "POST".into())
        } else {
            let body = match Limited::new(req.into_body(), MAX_FORM_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::new(),
            };
            scope = super::query::parse_pairs(&String::from_utf8_lossy(&body))
                .into_iter()
                .find_map(|(k, v)| (k == "scope").then_some(v));
            token::handle(
                &state.config.tenants,
                &state.tokens,
                state.config.token_lifetime,
                &state.base_url,
                tenant,
                authorization.as_deref(),
                &body,
            )
        }
    } else {
        graph::handle(
            state,
            &ctx,
            &graph::Incoming {
                method: &method,
                path: &path,
                raw_path: uri.path(),
                query: uri.query(),
                authorization: authorization.as_deref(),
                prefer: prefer.as_deref(),
                host: host.as_deref(),
            },
        )
    };
    record(
        state,
        is_token,
        &method,
        path_and_query,
        &reply,
        authorization,
        prefer,
        client_request_id,
        scope,
    );
    build(reply, &ctx)
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &State,
    is_token: bool,
    method: &Method,
    path_and_query: String,
    reply: &Reply,
    authorization: Option<String>,
    prefer: Option<String>,
    client_request_id: Option<String>,
    scope: Option<String>,
) {
    {
        let mut c = state.counters.lock().expect("counters poisoned");
        if is_token {
            c.token_requests += 1;
        } else {
            c.graph_requests += 1;
        }
        match reply.status {
            401 => c.unauthorized += 1,
            429 => c.throttled += 1,
            503 | 504 => c.server_errors += 1,
            _ => {}
        }
        c.rate_limited += u64::from(reply.rate_limited);
        c.app_rate_limited += u64::from(reply.app_rate_limited);
        match reply.delivery {
            Delivery::Whole => {}
            Delivery::Truncated => c.truncated += 1,
            Delivery::Stalled(_) => c.stalled += 1,
        }
    }
    let mut log = state.log.lock().expect("log poisoned");
    if log.len() >= LOG_CAPACITY {
        log.pop_front();
    }
    log.push_back(RecordedRequest {
        method: method.to_string(),
        path_and_query,
        status: reply.status,
        authorization,
        prefer,
        client_request_id,
        scope,
    });
}

fn build(reply: Reply, ctx: &Ctx) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::new(Bytes::from(reply.body), reply.delivery));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    let mut set = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    };
    set("content-type", reply.content_type);
    set("request-id", &ctx.request_id);
    set("client-request-id", &ctx.client_request_id);
    set("x-ms-request-id", &ctx.request_id);
    set(
        "date",
        &httpdate::fmt_http_date(std::time::SystemTime::now()),
    );
    set(
        "x-ms-ags-diagnostic",
        r#"{"ServerInfo":{"DataCenter":"Simulated","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"SIM000001"}}"#,
    );
    set("strict-transport-security", "max-age=31536000");
    set("vary", "Accept-Encoding");
    for (name, value) in &reply.headers {
        set(name, value);
    }
    resp
}
