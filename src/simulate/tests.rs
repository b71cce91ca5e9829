//! Loopback tests of the whole simulator: a tiny HTTP/1.1 client walks the served pages
//! and recounts them with `serde_json::Value`, independently of the generator, and the
//! recount must equal [`SimServer::truth`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const TENANT: &str = "contoso.example";
const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SECRET: &str = "s~cret&+=";
const SCOPE: &str = "https%3A%2F%2Fgraph.microsoft.com%2F.default";
const URD: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const URD_BETA: &str = "/beta/reports/authenticationMethods/userRegistrationDetails";
const LEGACY: &str = "/beta/reports/credentialUserRegistrationDetails";
const PREFER: (&str, &str) = ("Prefer", "include-unknown-enum-members");

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out")
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request over a fresh connection.
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    // Lossy: a body cut off by a fault can end inside a character.
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, target: &str, token: &str, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    http(addr, "GET", target, &headers, "").await
}

async fn token_for(addr: SocketAddr, tenant: &str, client: &str, secret: &str) -> Resp {
    let body = format!(
        "client_id={client}&scope={SCOPE}&client_secret={}&grant_type=client_credentials",
        super::query::percent_encode(secret)
            .replace('$', "%24")
            .replace('\'', "%27")
            .replace(',', "%2C")
    );
    http(
        addr,
        "POST",
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .await
}

async fn token(addr: SocketAddr) -> String {
    let r = token_for(addr, TENANT, CLIENT, SECRET).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_string()
}

fn tenant(users: u64, seed: u64) -> SimTenant {
    SimTenant::new(TENANT, CLIENT, SECRET, users, seed)
}

async fn start(tenants: Vec<SimTenant>, faults: Faults) -> SimServer {
    let config = SimConfig {
        tenants,
        faults,
        ..SimConfig::default()
    };
    SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("start")
}

/// Follows `@odata.nextLink` to the end; returns every page.
async fn walk(sim: &SimServer, first: &str, token: &str, extra: &[(&str, &str)]) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut target = first.to_string();
    loop {
        let r = get(sim.local_addr(), &target, token, extra).await;
        assert_eq!(r.status, 200, "{target}: {}", r.body);
        let page = r.json();
        let next = page
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(str::to_string);
        pages.push(page);
        match next {
            Some(link) => {
                let rest = link
                    .strip_prefix(&sim.base_url())
                    .expect("absolute link on our base");
                target = rest.to_string();
            }
            None => return pages,
        }
    }
}

/// Counts rows the way design.md says the exporter must, from the JSON alone.
fn recount(pages: &[Value], legacy: bool) -> RegistrationTruth {
    let features: &[(&str, &str)] = if legacy {
        &[
            ("isRegistered", "sspr_registered"),
            ("isEnabled", "sspr_enabled"),
            ("isCapable", "sspr_capable"),
            ("isMfaRegistered", "mfa_registered"),
        ]
    } else {
        &[
            ("isMfaRegistered", "mfa_registered"),
            ("isMfaCapable", "mfa_capable"),
            ("isSsprRegistered", "sspr_registered"),
            ("isSsprEnabled", "sspr_enabled"),
            ("isSsprCapable", "sspr_capable"),
            ("isPasswordlessCapable", "passwordless_capable"),
            (
                "isSystemPreferredAuthenticationMethodEnabled",
                "system_preferred_mfa_enabled",
            ),
        ]
    };
    let mut truth = RegistrationTruth::default();
    for row in pages.iter().flat_map(|p| p["value"].as_array().unwrap()) {
        let (user_type, role) = if legacy {
            ("unknown", "unknown")
        } else {
            let ut = match row.get("userType").and_then(Value::as_str) {
                Some("member") => "member",
                Some("guest") => "guest",
                _ => "unknown",
            };
            let role = match row.get("isAdmin").and_then(Value::as_bool) {
                Some(true) => "admin",
                Some(false) => "user",
                None => "unknown",
            };
            (ut, role)
        };
        let g = truth
            .groups
            .entry((user_type.into(), role.into()))
            .or_insert_with(|| {
                let mut g = GroupTruth::default();
                for (_, f) in features {
                    g.features.insert((*f).into(), 0);
                }
                for b in ["0", "1", "2", "3", "4", "5+"] {
                    g.method_count_buckets.insert(b.into(), 0);
                }
                g
            });
        g.users += 1;
        for (field, f) in features {
            if row.get(*field).and_then(Value::as_bool) == Some(true) {
                *g.features.get_mut(*f).unwrap() += 1;
            }
        }
        let list = if legacy {
            "authMethods"
        } else {
            "methodsRegistered"
        };
        let methods: BTreeSet<&str> = row[list]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        for m in &methods {
            *g.methods.entry((*m).into()).or_default() += 1;
        }
        let bucket = if methods.len() >= 5 {
            "5+".to_string()
        } else {
            methods.len().to_string()
        };
        *g.method_count_buckets.get_mut(&bucket).unwrap() += 1;
        if !legacy {
            let p = match row
                .get("userPreferredMethodForSecondaryAuthentication")
                .and_then(Value::as_str)
            {
                Some(s) if !s.is_empty() => s,
                _ => "none",
            };
            *g.preferred.entry(p.into()).or_default() += 1;
            // Strength and freshness, from the JSON (the table is the simulator's own).
            if g.strength.is_empty() {
                g.strength = truth::STRENGTHS
                    .iter()
                    .map(|s| (s.to_string(), 0))
                    .collect();
            }
            let listed: Vec<&str> = methods.iter().copied().collect();
            *g.strength.get_mut(truth::strength_label(&listed)).unwrap() += 1;
            truth.unclassified_methods.extend(
                listed
                    .iter()
                    .filter(|m| truth::method_strength(m).is_none())
                    .map(|m| m.to_string()),
            );
            let text = row["lastUpdatedDateTime"].as_str().unwrap();
            let at = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            truth.data_updated = Some(truth.data_updated.map_or(at, |t: f64| t.max(at)));
        }
    }
    truth
}

#[tokio::test]
async fn full_walks_match_truth() {
    bounded(async {
        let sim = start(vec![tenant(2345, 5)], Faults::default()).await;
        let tok = token(sim.local_addr()).await;
        for (path, report, legacy) in [
            (URD, SimReport::UserRegistrationDetails, false),
            (URD_BETA, SimReport::UserRegistrationDetails, false),
            (LEGACY, SimReport::CredentialUserRegistrationDetails, true),
        ] {
            let pages = walk(&sim, &format!("{path}?%24top=999"), &tok, &[PREFER]).await;
            assert_eq!(pages.len(), 3);
            let ids: HashSet<&str> = pages
                .iter()
                .flat_map(|p| p["value"].as_array().unwrap())
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), 2345);
            let truth = sim.truth(TENANT, report);
            assert_eq!(truth.total_users(), 2345);
            assert_eq!(recount(&pages, legacy), truth, "{path}");
        }
        // Default page size is 100.
        let pages = walk(&sim, URD, &tok, &[PREFER]).await;
        assert_eq!(pages.len(), 24);
        assert_eq!(pages[0]["value"].as_array().unwrap().len(), 100);
        assert_eq!(
            recount(&pages, false),
            sim.truth(TENANT, SimReport::UserRegistrationDetails)
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn same_seed_same_pages_different_seed_differs() {
    bounded(async {
        let a = start(vec![tenant(300, 9)], Faults::default()).await;
        let b = start(vec![tenant(300, 9)], Faults::default()).await;
        let c = start(vec![tenant(300, 10)], Faults::default()).await;
        let (ta, tb, tc) = (
            token(a.local_addr()).await,
            token(b.local_addr()).await,
            token(c.local_addr()).await,
        );
        let target = format!("{URD}?$top=999");
        let pa = get(a.local_addr(), &target, &ta, &[]).await.json();
        let pb = get(b.local_addr(), &target, &tb, &[]).await.json();
        let pc = get(c.local_addr(), &target, &tc, &[]).await.json();
        assert_eq!(pa["value"], pb["value"]);
        assert_ne!(pa["value"], pc["value"]);
        assert_ne!(
            a.truth(TENANT, SimReport::UserRegistrationDetails),
            c.truth(TENANT, SimReport::UserRegistrationDetails)
        );
        for s in [a, b, c] {
            s.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn token_endpoint_errors() {
    bounded(async {
        let sim = start(vec![tenant(10, 1)], Faults::default()).await;
        let addr = sim.local_addr();
        let r = token_for(addr, TENANT, CLIENT, "wrong").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"], "invalid_client");
        assert_eq!(r.json()["error_codes"][0], 7_000_215);
        let r = token_for(addr, "nope.example", CLIENT, SECRET).await;
        assert_eq!(
            (r.status, r.json()["error_codes"][0].as_u64()),
            (400, Some(90_002))
        );
        let r = token_for(addr, "common", CLIENT, SECRET).await;
        assert_eq!(
            (r.status, r.json()["error_codes"][0].as_u64()),
            (400, Some(9_001_023))
        );
        let r = token_for(addr, TENANT, "someone-else", SECRET).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        let bad_scope = format!(
            "client_id={CLIENT}&scope=User.Read&client_secret=x&grant_type=client_credentials"
        );
        let r = http(
            addr,
            "POST",
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[],
            &bad_scope,
        )
        .await;
        assert_eq!(r.status, 401, "secret is checked before scope");
        let bad_scope = bad_scope.replace(
            "client_secret=x",
            &format!("client_secret={}", "s%7Ecret%26%2B%3D"),
        );
        let r = http(
            addr,
            "POST",
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[],
            &bad_scope,
        )
        .await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("invalid_scope"))
        );
        assert_eq!(r.json()["error_codes"][0], 1_002_012);
        let ok = token_for(addr, &TENANT.to_uppercase(), CLIENT, SECRET).await;
        assert_eq!(ok.status, 200);
        let v = ok.json();
        assert_eq!(v["expires_in"], 3599);
        assert_eq!(v["ext_expires_in"], 3599);
        let c = sim.counters();
        assert_eq!(c.token_requests, 7);
        assert_eq!(c.unauthorized, 2);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn graph_auth_licence_and_roles() {
    bounded(async {
        let mut unlicensed = SimTenant::new("unlicensed.example", "app2", "pw2", 10, 2);
        unlicensed.licensed = false;
        let mut reports_only = SimTenant::new("reports.example", "app3", "pw3", 10, 3);
        reports_only.roles = vec!["Reports.Read.All".into()];
        let mut short = SimTenant::new("short.example", "app4", "pw4", 10, 4);
        short.roles = vec!["AuditLog.Read.All".into()];
        let sim = start(
            vec![tenant(10, 1), unlicensed, reports_only, short],
            Faults::default(),
        )
        .await;
        let addr = sim.local_addr();

        let r = http(addr, "GET", URD, &[("client-request-id", "abc-123")], "").await;
        assert_eq!(r.status, 401);
        let e = r.json();
        assert_eq!(e["error"]["code"], "InvalidAuthenticationToken");
        assert_eq!(e["error"]["message"], "Access token is empty.");
        assert_eq!(e["error"]["innerError"]["client-request-id"], "abc-123");
        assert!(e["error"]["innerError"]["request-id"].is_string());
        assert!(e["error"]["innerError"]["date"].is_string());
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
        assert_eq!(r.header("client-request-id"), Some("abc-123"));
        let r = get(addr, URD, "made-up", &[]).await;
        assert_eq!(r.status, 401);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Access token validation failure")
        );

        let t2 = token_for(addr, "unlicensed.example", "app2", "pw2")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = get(addr, URD, &t2, &[]).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.json()["error"]["code"],
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        );
        assert_eq!(get(addr, LEGACY, &t2, &[]).await.status, 403);

        let t3 = token_for(addr, "reports.example", "app3", "pw3")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = get(addr, URD, &t3, &[]).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.json()["error"]["code"],
            "Authentication_MSGraphPermissionMissing"
        );
        assert_eq!(
            r.json()["error"]["message"],
            "Calling principal does not have required MSGraph permissions AuditLog.Read.All"
        );
        assert_eq!(get(addr, LEGACY, &t3, &[]).await.status, 200);

        let t4 = token_for(addr, "short.example", "app4", "pw4").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = get(addr, LEGACY, &t4, &[]).await;
        assert_eq!(r.status, 403);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("Reports.Read.All")
        );
        assert_eq!(sim.counters().unauthorized, 2);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    bounded(async {
        let config = SimConfig {
            tenants: vec![tenant(10, 1)],
            token_lifetime: Duration::ZERO,
            ..SimConfig::default()
        };
        let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let tok = token(sim.local_addr()).await;
        let r = get(sim.local_addr(), URD, &tok, &[]).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json()["error"]["message"],
            "Lifetime validation failed, the token is expired."
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn query_options_and_paging_errors() {
    bounded(async {
        let sim = start(vec![tenant(50, 1)], Faults::default()).await;
        let addr = sim.local_addr();
        let tok = token(addr).await;
        for bad in [
            "$top=1000",
            "$top=0",
            "$top=abc",
            "$skip=10",
            "$orderby=userPrincipalName",
            "$skiptoken=100",
            "$select=nope",
            "$filter=isMfaCapable gt 1",
        ] {
            let r = get(
                addr,
                &format!("{URD}?{}", bad.replace(' ', "%20")),
                &tok,
                &[],
            )
            .await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "BadRequest");
        }
        let r = get(addr, &format!("{URD}?%24top=7"), &tok, &[])
            .await
            .json();
        assert_eq!(r["value"].as_array().unwrap().len(), 7);
        let next = r["@odata.nextLink"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{}{URD}?$top=7&$skiptoken=", sim.base_url())),
            "{next}"
        );
        assert_eq!(
            r["@odata.context"],
            format!(
                "{}/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails",
                sim.base_url()
            )
        );
        // Tamper with one character of the opaque token.
        let (head, token_text) = next.split_once("$skiptoken=").unwrap();
        let mut chars: Vec<char> = token_text.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let target = format!("{head}$skiptoken={tampered}").replace(&sim.base_url(), "");
        assert_eq!(get(addr, &target, &tok, &[]).await.status, 400);
        // $select keeps only the asked properties plus id, and rides along in next links.
        let r = get(
            addr,
            &format!("{URD}?$top=2&$select=userPrincipalName,isMfaCapable"),
            &tok,
            &[],
        )
        .await
        .json();
        for row in r["value"].as_array().unwrap() {
            let keys: BTreeSet<&str> = row
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|k| !k.starts_with('@'))
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["id", "userPrincipalName", "isMfaCapable"])
            );
        }
        assert!(
            r["@odata.nextLink"]
                .as_str()
                .unwrap()
                .contains("$select=userPrincipalName,isMfaCapable")
        );
        // Routes: unknown segment, wrong method, single entity.
        let r = get(addr, "/v1.0/reports/authenticationMethods/nope", &tok, &[]).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json()["error"]["message"],
            "Resource not found for the segment 'nope'."
        );
        let r = http(
            addr,
            "POST",
            URD,
            &[("Authorization", &format!("Bearer {tok}"))],
            "",
        )
        .await;
        assert_eq!(r.status, 405);
        let first = get(addr, URD, &tok, &[PREFER]).await.json()["value"][3].clone();
        let id = first["id"].as_str().unwrap();
        let one = get(
            addr,
            &format!("{}/{id}", URD.to_uppercase().replace("V1.0", "v1.0")),
            &tok,
            &[PREFER],
        )
        .await
        .json();
        assert_eq!(one["id"], first["id"]);
        assert_eq!(one["isMfaRegistered"], first["isMfaRegistered"]);
        assert_eq!(
            get(
                addr,
                &format!("{URD}/00000000-0000-4000-8000-000000000000"),
                &tok,
                &[]
            )
            .await
            .status,
            404
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn filter_subset() {
    bounded(async {
        let sim = start(vec![tenant(1500, 8)], Faults::default()).await;
        let tok = token(sim.local_addr()).await;
        let truth = sim.truth(TENANT, SimReport::UserRegistrationDetails);
        let admins: u64 = truth
            .groups
            .iter()
            .filter(|((_, r), _)| r == "admin")
            .map(|(_, g)| g.users)
            .sum();
        let pages = walk(
            &sim,
            &format!("{URD}?$top=50&$filter=isAdmin%20eq%20true"),
            &tok,
            &[],
        )
        .await;
        let rows: Vec<&Value> = pages
            .iter()
            .flat_map(|p| p["value"].as_array().unwrap())
            .collect();
        assert_eq!(rows.len() as u64, admins);
        assert!(rows.iter().all(|r| r["isAdmin"] == true));
        let with_email: u64 = truth
            .groups
            .values()
            .map(|g| g.methods.get("email").copied().unwrap_or(0))
            .sum();
        let pages = walk(
            &sim,
            &format!("{URD}?$top=999&$filter=methodsRegistered/any(x:x+eq+'email')"),
            &tok,
            &[],
        )
        .await;
        let n: usize = pages
            .iter()
            .map(|p| p["value"].as_array().unwrap().len())
            .sum();
        assert_eq!(n as u64, with_email);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn throttling_and_server_errors() {
    bounded(async {
        let faults = Faults {
            throttle_every: Some(3),
            retry_after: Some(0.2),
            server_error_every: Some(5),
            ..Faults::default()
        };
        let sim = start(vec![tenant(10, 1)], faults).await;
        let tok = token(sim.local_addr()).await;
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let r = get(sim.local_addr(), URD, &tok, &[]).await;
            if r.status == 429 {
                assert_eq!(r.header("retry-after"), Some("0.2"));
                let e = r.json();
                assert_eq!(e["error"]["code"], "TooManyRequests");
                assert_eq!(e["error"]["innerError"]["status"], "429");
            }
            if r.status == 503 {
                assert_eq!(r.json()["error"]["code"], "ServiceUnavailable");
            }
            statuses.push(r.status);
        }
        assert_eq!(statuses, vec![200, 200, 429, 200, 503, 429]);
        let c = sim.counters();
        assert_eq!(
            (
                c.throttled,
                c.server_errors,
                c.graph_requests,
                c.token_requests
            ),
            (2, 1, 6, 1)
        );
        sim.shutdown().await;

        let faults = Faults {
            throttle_every: Some(1),
            ..Faults::default()
        };
        let sim = start(vec![tenant(10, 1)], faults).await;
        let tok = token(sim.local_addr()).await;
        let r = get(sim.local_addr(), URD, &tok, &[]).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), None);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn prefer_header_unmasks_post_sentinel_members() {
    bounded(async {
        let sim = start(vec![tenant(3000, 21)], Faults::default()).await;
        let tok = token(sim.local_addr()).await;
        let target = format!("{LEGACY}?$top=999");
        let masked = walk(&sim, &target, &tok, &[]).await;
        let shown = walk(&sim, &target, &tok, &[PREFER]).await;
        let text = |pages: &[Value]| pages.iter().map(Value::to_string).collect::<String>();
        assert!(!text(&masked).contains("externalAuthMethod"));
        assert!(text(&masked).contains("unknownFutureValue"));
        assert!(text(&shown).contains("externalAuthMethod"));
        let truth = sim.truth(TENANT, SimReport::CredentialUserRegistrationDetails);
        assert!(
            truth.groups[&("unknown".to_string(), "unknown".to_string())]
                .methods
                .contains_key("externalAuthMethod")
        );
        let masked = walk(&sim, &format!("{URD}?$top=999"), &tok, &[]).await;
        let shown = walk(&sim, &format!("{URD}?$top=999"), &tok, &[PREFER]).await;
        assert!(!text(&masked).contains("\"passkey\""));
        assert!(text(&shown).contains("\"passkey\""));
        assert_eq!(
            recount(&shown, false),
            sim.truth(TENANT, SimReport::UserRegistrationDetails)
        );
        let log = sim.requests();
        assert_eq!(
            log.iter().filter(|r| r.prefer.is_some()).count(),
            shown.len() * 2
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn quirks_and_escapes_are_valid_json() {
    bounded(async {
        let sim = start(vec![tenant(3000, 4)], Faults::default()).await;
        let addr = sim.local_addr();
        let tok = token(addr).await;
        let mut raw = String::new();
        let mut target = format!("{URD_BETA}?$top=999");
        loop {
            let r = get(addr, &target, &tok, &[PREFER]).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some(super::server::GRAPH_JSON));
            for h in [
                "request-id",
                "client-request-id",
                "date",
                "x-ms-ags-diagnostic",
            ] {
                assert!(r.header(h).is_some(), "{h}");
            }
            let page = r.json();
            raw.push_str(&r.body);
            match page["@odata.nextLink"].as_str() {
                Some(l) => target = l.replace(&sim.base_url(), ""),
                None => break,
            }
        }
        assert!(raw.contains("\\u00"), "non-ASCII written as escapes");
        assert!(raw.contains("\"userPreferredMethodForSecondaryAuthentication\":\"\""));
        assert!(raw.contains("\"defaultMfaMethod\":\"\""));
        assert!(raw.contains("\"isAdmin\":null"));
        assert!(raw.contains("\"userType\":\"unknownFutureValue\""));
        assert!(raw.contains("PhoneAppNotification") && raw.contains("Fido2"));
        assert!(raw.contains("quantumEntangledToken"));
        assert!(raw.contains("@odata.type"));
        assert!(raw.contains("signInRiskSummary"));
        // A method string with an escape inside it decodes to a plain known method.
        let escaped = raw
            .match_indices("\"methodsRegistered\":[\"")
            .filter(|(i, _)| {
                raw[i + 22..].starts_with("\\u")
                    || raw[i + 23..].starts_with("\\u")
                    || raw[i + 24..].starts_with("\\u")
            })
            .count();
        assert!(escaped > 0, "some method strings carry a \\u escape");
        let seven_digits = raw.split("\"lastUpdatedDateTime\":\"").skip(1).any(|s| {
            s.get(19..28)
                .is_some_and(|f| f.starts_with('.') && f.ends_with('Z'))
        });
        assert!(seven_digits);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn large_tenant_pages_are_cheap() {
    bounded(async {
        let sim = start(vec![tenant(1_000_000, 77)], Faults::default()).await;
        let tok = token(sim.local_addr()).await;
        let r = get(sim.local_addr(), &format!("{URD}?$top=999"), &tok, &[])
            .await
            .json();
        assert_eq!(r["value"].as_array().unwrap().len(), 999);
        let next = r["@odata.nextLink"]
            .as_str()
            .unwrap()
            .replace(&sim.base_url(), "");
        let r = get(sim.local_addr(), &next, &tok, &[]).await.json();
        assert_eq!(r["value"].as_array().unwrap().len(), 999);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn demo_config_and_serve() {
    bounded(async {
        let config = demo_config(200, 1);
        assert!(config.tenants[0].drift.is_some());
        let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), config.clone())
            .await
            .unwrap();
        let r = token_for(
            sim.local_addr(),
            DEMO_TENANT_ID,
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
        )
        .await;
        let tok = r.json()["access_token"].as_str().unwrap().to_string();
        let pages = walk(&sim, &format!("{URD}?$top=999"), &tok, &[PREFER]).await;
        let truth = sim.truth(DEMO_TENANT_ID, SimReport::UserRegistrationDetails);
        assert_eq!(truth.total_users(), 200);
        assert_eq!(recount(&pages, false).total_users(), 200);
        assert!(!format!("{config:?}").contains(DEMO_CLIENT_SECRET));
        sim.shutdown().await;

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let args = super::cli::parse(&["--listen", "127.0.0.1:0", "--users", "10"]);
        let task = tokio::spawn(super::cli::run(args, async {
            let _ = rx.await;
        }));
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
    })
    .await;
}

#[test]
fn truth_totals_and_buckets() {
    let t = super::tenant::Tenant::new(TENANT, 3, 4000, None);
    let truth = super::truth::compute(
        &t,
        SimReport::UserRegistrationDetails,
        super::tenant::STATIC_DATASET_TIME,
    );
    assert_eq!(truth.total_users(), 4000);
    let methods: BTreeMap<&str, u64> = truth.groups.values().flat_map(|g| g.methods.iter()).fold(
        BTreeMap::new(),
        |mut m, (k, v)| {
            *m.entry(k.as_str()).or_default() += v;
            m
        },
    );
    for known in [
        "microsoftAuthenticatorPush",
        "mobilePhone",
        "email",
        "windowsHelloForBusiness",
        "passKeyDeviceBound",
    ] {
        assert!(methods.contains_key(known), "{known}");
    }
}

/// Timing of the truth over a million users; run with `--ignored --nocapture`
/// (in release it is a fraction of a second; debug builds are ~10x slower).
#[test]
#[ignore]
fn truth_for_a_million_users() {
    let t = super::tenant::Tenant::new(TENANT, 1, 1_000_000, None);
    let started = std::time::Instant::now();
    let truth = super::truth::compute(
        &t,
        SimReport::UserRegistrationDetails,
        super::tenant::STATIC_DATASET_TIME,
    );
    assert_eq!(truth.total_users(), 1_000_000);
    println!("truth over 1M users: {:?}", started.elapsed());
    let w = super::rows::RowWriter {
        tenant: &t,
        source: super::rows::Source::Beta,
        include_unknown: true,
        select: None,
    };
    let started = std::time::Instant::now();
    let mut page = String::new();
    for i in 0..999 {
        w.write(
            &mut page,
            &t.user(i, super::tenant::STATIC_DATASET_TIME),
            true,
        );
    }
    println!(
        "999-row page: {} bytes in {:?}",
        page.len(),
        started.elapsed()
    );
    println!("{}", &page[..page.find("}{").unwrap_or(page.len()) + 1]);
}

// ---- the rest of the report family (graph-api.md §3, §4.1, §5.2-§5.4) ----

const EVENTS_V: &str = "/beta/reports/userCredentialUsageDetails";
const EVENTS_NEW: &str = "/beta/reports/authenticationMethods/userEventsSummary";

#[tokio::test]
async fn event_walks_recount_to_truth_and_mask_without_prefer() {
    bounded(async {
        let sim = start(vec![tenant(1_234, 8)], Faults::default()).await;
        let token = token(sim.local_addr()).await;
        let truth = sim.usage_events_truth(TENANT);
        for (first, entity) in [
            (format!("{EVENTS_V}?$top=100"), "userCredentialUsageDetails"),
            (format!("{EVENTS_NEW}?$top=300"), "userEventsSummary"),
        ] {
            let pages = walk(&sim, &first, &token, &[PREFER]).await;
            assert!(pages.len() > 4, "{first}");
            let mut events: BTreeMap<(String, String, String), u64> = BTreeMap::new();
            let mut ids = HashSet::new();
            for row in pages.iter().flat_map(|p| p["value"].as_array().unwrap()) {
                assert!(
                    ids.insert(row["id"].as_str().unwrap().to_string()),
                    "{entity}: duplicate id"
                );
                let result = if row["isSuccess"].as_bool().unwrap() {
                    "success"
                } else {
                    "failure"
                };
                assert_eq!(
                    row["failureReason"].as_str().unwrap().is_empty(),
                    result == "success"
                );
                *events
                    .entry((
                        row["feature"].as_str().unwrap().to_string(),
                        row["authMethod"].as_str().unwrap().to_string(),
                        result.to_string(),
                    ))
                    .or_default() += 1;
            }
            assert_eq!(events, truth.events, "{entity}");
            assert_eq!(ids.len() as u64, truth.rows);
        }
        // Without the Prefer header post-sentinel members read unknownFutureValue.
        let plain = walk(&sim, EVENTS_NEW, &token, &[]).await;
        let rows: Vec<&Value> = plain
            .iter()
            .flat_map(|p| p["value"].as_array().unwrap())
            .collect();
        assert_eq!(rows.len(), 1_234, "default page of 1000 plus the rest");
        assert!(rows.iter().any(|r| r["authMethod"] == "unknownFutureValue"));
        assert!(rows.iter().any(|r| r["feature"] == "unknownFutureValue"));
        assert!(
            !rows
                .iter()
                .any(|r| r["authMethod"] == "microsoftAuthenticatorPush")
        );
        assert!(
            rows.iter()
                .all(|r| r["@odata.type"] == "#microsoft.graph.userEventsSummary")
        );
        for bad in [
            format!("{EVENTS_NEW}?$top=1001"),
            format!("{EVENTS_V}?$skip=5"),
            "/v1.0/reports/authenticationMethods/userEventsSummary".to_string(),
        ] {
            let r = get(sim.local_addr(), &bad, &token, &[]).await;
            assert_eq!(r.status, 400, "{bad}");
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn function_url_forms_and_period_validation() {
    bounded(async {
        let sim = start(vec![tenant(800, 4)], Faults::default()).await;
        let token = token(sim.local_addr()).await;
        let addr = sim.local_addr();

        let d7 = sim.usage_summary_truth(TENANT, "D7");
        for path in [
            "/beta/reports/getCredentialUsageSummary(period='D7')",
            "/beta/reports/microsoft.graph.getCredentialUsageSummary(period='d7')",
            "/BETA/Reports/GETCREDENTIALUSAGESUMMARY(PERIOD='D7')",
        ] {
            let r = get(addr, path, &token, &[PREFER]).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let mut got = BTreeMap::new();
            for row in r.json()["value"].as_array().unwrap() {
                got.insert(
                    (
                        row["feature"].as_str().unwrap().to_string(),
                        row["authMethod"].as_str().unwrap().to_string(),
                    ),
                    (
                        row["successfulActivityCount"].as_u64().unwrap(),
                        row["failureActivityCount"].as_u64().unwrap(),
                    ),
                );
            }
            assert_eq!(got, d7.activities, "{path}");
        }
        assert_ne!(sim.usage_summary_truth(TENANT, "D1"), d7);
        for bad in [
            "/beta/reports/getCredentialUsageSummary(period='D2')",
            "/beta/reports/getCredentialUsageSummary",
            "/beta/reports/getCredentialUsageSummary(period=D7)",
            "/beta/reports/getCredentialUsageSummary(days='D7')",
            "/beta/reports/getCredentialUsageSummary(period='D7')?$filter=isSuccess%20eq%20true",
            "/beta/reports/getCredentialUserRegistrationCount?$top=5",
            "/v1.0/reports/getCredentialUsageSummary(period='D7')",
        ] {
            let r = get(addr, bad, &token, &[PREFER]).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "BadRequest", "{bad}");
        }
        let r = get(
            addr,
            "/beta/reports/getCredentialUsageSummary(period='D30')?$filter=feature%20eq%20'reset'",
            &token,
            &[PREFER],
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(
            r.json()["value"]
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["feature"] == "reset")
        );

        let count = sim.registration_count_truth(TENANT);
        for path in [
            "/beta/reports/getCredentialUserRegistrationCount",
            "/beta/reports/getCredentialUserRegistrationCount()",
            "/beta/reports/microsoft.graph.getCredentialUserRegistrationCount()",
        ] {
            let r = get(addr, path, &token, &[PREFER]).await;
            assert_eq!(r.status, 200, "{path}");
            let v = r.json();
            let element = &v["value"][0];
            assert_eq!(element["totalUserCount"], count.total_users);
            let statuses: BTreeMap<String, u64> = element["userRegistrationCounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["registrationStatus"].as_str().unwrap().to_string(),
                        c["registrationCount"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(statuses, count.statuses);
        }
        let r = get(
            addr,
            "/beta/reports/getCredentialUserRegistrationCount",
            &token,
            &[],
        )
        .await;
        assert!(r.body.contains("unknownFutureValue") && !r.body.contains("passwordlessCapable"));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn summaries_are_delegated_only_unless_switched_on() {
    bounded(async {
        let mut open = tenant(600, 2);
        open.tenant_id = "open.example".into();
        open.app_only_summaries = true;
        let sim = start(vec![tenant(600, 2), open], Faults::default()).await;
        let addr = sim.local_addr();
        let refused = token(addr).await;
        let path = "/v1.0/reports/authenticationMethods/usersRegisteredByFeature(includedUserTypes='all',includedUserRoles='all')";
        let r = get(addr, path, &refused, &[PREFER]).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "Authorization_RequestDenied");

        let t = token_for(addr, "open.example", CLIENT, SECRET).await;
        let allowed = t.json()["access_token"].as_str().unwrap().to_string();
        let truth = sim.summary_truth("open.example", SummaryBy::Feature, "member", "privilegedAdmin").unwrap();
        for p in [
            "/v1.0/reports/authenticationMethods/usersRegisteredByFeature(includedUserTypes='member',includedUserRoles='privilegedAdmin')",
            "/beta/reports/authenticationMethods/microsoft.graph.usersRegisteredByFeature(includedUserRoles=microsoft.graph.includedUserRoles'privilegedAdmin',includedUserTypes='member')",
        ] {
            let r = get(addr, p, &allowed, &[PREFER]).await;
            assert_eq!(r.status, 200, "{p}: {}", r.body);
            let v = r.json();
            assert_eq!(v["totalUserCount"], truth.total_users);
            assert_eq!((v["userTypes"].as_str(), v["userRoles"].as_str()), (Some("member"), Some("privilegedAdmin")));
            let counts: BTreeMap<String, u64> = v["userRegistrationFeatureCounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["feature"].as_str().unwrap().to_string(), c["userCount"].as_u64().unwrap()))
                .collect();
            assert_eq!(counts, truth.counts);
        }
        let all = sim.summary_truth("open.example", SummaryBy::Method, "all", "all").unwrap();
        for p in [
            "/v1.0/reports/authenticationMethods/usersRegisteredByMethod",
            "/v1.0/reports/authenticationMethods/usersRegisteredByMethod()",
        ] {
            let r = get(addr, p, &allowed, &[PREFER]).await;
            assert_eq!(r.status, 200, "{p}");
            assert_eq!(r.json()["totalUserCount"], all.total_users);
            assert_eq!(r.json()["userRegistrationMethodCounts"].as_array().unwrap().len(), all.counts.len());
        }
        for bad in [
            "/v1.0/reports/authenticationMethods/usersRegisteredByMethod(includedUserTypes='everyone',includedUserRoles='all')",
            "/v1.0/reports/authenticationMethods/usersRegisteredByMethod(includedUserTypes='all',includedUserRoles='root')",
            "/v1.0/reports/authenticationMethods/usersRegisteredByMethod()?$top=1",
        ] {
            let r = get(addr, bad, &allowed, &[PREFER]).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn sliding_window_limit_per_tenant() {
    bounded(async {
        let faults = Faults {
            rate_limit: Some(super::RateLimit {
                requests: 3,
                window: Duration::from_millis(1500),
                retry_after: false,
            }),
            ..Faults::default()
        };
        let sim = start(vec![tenant(10, 1)], faults).await;
        let tok = token(sim.local_addr()).await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let r = get(sim.local_addr(), URD, &tok, &[]).await;
            if r.status == 429 {
                assert_eq!(r.header("retry-after"), None);
                assert_eq!(r.json()["error"]["code"], "TooManyRequests");
            }
            statuses.push(r.status);
        }
        assert_eq!(statuses, [200, 200, 200, 429]);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(get(sim.local_addr(), URD, &tok, &[]).await.status, 200);
        let c = sim.counters();
        assert_eq!((c.throttled, c.rate_limited), (1, 1));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn page_faults_change_what_is_served() {
    bounded(async {
        let sim = start(vec![tenant(30, 1)], Faults::default()).await;
        let tok = token(sim.local_addr()).await;
        let first = format!("{URD}?$top=10");
        let base = sim.base_url();

        sim.set_faults(Faults {
            missing_value_every: Some(1),
            ..Faults::default()
        });
        let page = get(sim.local_addr(), &first, &tok, &[]).await.json();
        assert!(page.get("value").is_none() && page.get("@odata.nextLink").is_some());

        sim.set_faults(Faults {
            next_link_loop_every: Some(1),
            ..Faults::default()
        });
        let page = get(sim.local_addr(), &first, &tok, &[]).await.json();
        assert_eq!(page["@odata.nextLink"], format!("{base}{first}"));

        sim.set_faults(Faults {
            foreign_next_link: Some("http://127.0.0.9:1".into()),
            ..Faults::default()
        });
        let page = get(sim.local_addr(), &first, &tok, &[]).await.json();
        let link = page["@odata.nextLink"].as_str().unwrap();
        assert!(
            link.starts_with("http://127.0.0.9:1/v1.0/reports/"),
            "{link}"
        );

        sim.set_faults(Faults {
            truncate_every: Some(1),
            ..Faults::default()
        });
        let r = get(sim.local_addr(), &first, &tok, &[]).await;
        let declared: usize = r.header("content-length").unwrap().parse().unwrap();
        assert!(r.status == 200 && r.body.len() < declared, "cut off");

        sim.set_faults(Faults {
            stall_every: Some(1),
            stall: Duration::from_millis(300),
            ..Faults::default()
        });
        let started = std::time::Instant::now();
        let r = get(sim.local_addr(), &first, &tok, &[]).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(r.json()["value"].as_array().unwrap().len(), 10);

        sim.set_faults(Faults {
            revoke_tokens_every: Some(2),
            licence_lost_after: Some(2),
            ..Faults::default()
        });
        assert_eq!(get(sim.local_addr(), &first, &tok, &[]).await.status, 200);
        let r = get(sim.local_addr(), &first, &tok, &[]).await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("expired"));
        let tok = token(sim.local_addr()).await;
        let r = get(sim.local_addr(), &first, &tok, &[]).await;
        assert_eq!(r.status, 403);
        assert!(r.body.contains("NonPremium"));
        let c = sim.counters();
        assert_eq!((c.truncated, c.stalled, c.unauthorized), (1, 1, 1));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn sliding_window_limit_per_app_across_tenants() {
    bounded(async {
        let window = Duration::from_millis(1500);
        let faults = Faults {
            rate_limit: Some(super::RateLimit {
                requests: 2,
                window,
                retry_after: true,
            }),
            app_rate_limit: Some(super::RateLimit {
                requests: 3,
                window,
                retry_after: true,
            }),
            ..Faults::default()
        };
        // Two tenants of one app, one of another app.
        let tenants = vec![
            SimTenant::new("a.example", CLIENT, SECRET, 10, 1),
            SimTenant::new("b.example", CLIENT, SECRET, 10, 2),
            SimTenant::new("c.example", "other-app", SECRET, 10, 3),
        ];
        let sim = start(tenants, faults).await;
        let addr = sim.local_addr();
        let mut tok = Vec::new();
        for (t, c) in [
            ("a.example", CLIENT),
            ("b.example", CLIENT),
            ("c.example", "other-app"),
        ] {
            let r = token_for(addr, t, c, SECRET).await;
            tok.push(r.json()["access_token"].as_str().unwrap().to_string());
        }
        let mut statuses = Vec::new();
        // a, a (its tenant limit), b: the app's 3; then b is refused by the app, not by
        // its tenant window (which it has room in), and the other app is unaffected.
        for i in [0, 0, 1, 1, 2, 0] {
            let r = get(addr, URD, &tok[i], &[]).await;
            if r.status == 429 {
                assert_eq!(r.header("retry-after"), Some("2"), "rounded up");
            }
            statuses.push(r.status);
        }
        assert_eq!(statuses, [200, 200, 200, 429, 200, 429]);
        let c = sim.counters();
        assert_eq!((c.throttled, c.rate_limited, c.app_rate_limited), (2, 1, 1));
        assert_eq!(c.app_window_peak, 3);
        // A refused request counted against neither window: b has room again once the
        // app window has moved on.
        tokio::time::sleep(window + Duration::from_millis(100)).await;
        for _ in 0..2 {
            assert_eq!(get(addr, URD, &tok[1], &[]).await.status, 200);
        }
        assert_eq!(sim.counters().app_window_peak, 3);
        sim.shutdown().await;
    })
    .await;
}

/// Issue 15: the daily reports walk (over two pages on some seeds), recount from JSON
/// alone to the truth, refuse `$top`, and never serve today's row as complete.
#[tokio::test]
async fn daily_reports_recount_to_truth() {
    bounded(async {
        let tenants: Vec<SimTenant> = (0..8)
            .map(|seed| SimTenant::new(format!("d{seed}.example"), CLIENT, SECRET, 500, seed))
            .collect();
        let sim = start(tenants, Faults::default()).await;
        let mut split = 0;
        for seed in 0..8u64 {
            let tenant = format!("d{seed}.example");
            let r = token_for(sim.local_addr(), &tenant, CLIENT, SECRET).await;
            let token = r.json()["access_token"].as_str().unwrap().to_string();
            for (report, path, date, names) in [
                (
                    DailyReport::MfaSignIns,
                    "userMfaSignInSummary",
                    "createdDateTime",
                    ["multiFactorSignIns", "singleFactorSignIns", "totalSignIns"],
                ),
                (
                    DailyReport::PasswordEvents,
                    "userPasswordResetsAndChangesSummary",
                    "aggregatedDateTime",
                    [
                        "passwordResetsByAdminCount",
                        "passwordResetsSelfServiceCount",
                        "changePasswordSelfServiceCount",
                    ],
                ),
            ] {
                let url = format!("/beta/reports/authenticationMethods/{path}");
                let pages = walk(&sim, &url, &token, &[]).await;
                split += usize::from(pages.len() > 1);
                let today = dates::now_unix().div_euclid(86_400);
                let mut newest: Option<(i64, [u64; 3])> = None;
                for row in pages.iter().flat_map(|p| p["value"].as_array().unwrap()) {
                    let text = row[date].as_str().unwrap();
                    let t = humantime::parse_rfc3339(text).unwrap();
                    let day = (t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400)
                        as i64;
                    let counts = names.map(|n| row[n].as_u64().unwrap());
                    if day < today && newest.is_none_or(|(d, _)| day > d) {
                        newest = Some((day, counts));
                    }
                }
                let truth = sim.daily_truth(&tenant, report).unwrap();
                assert_eq!(
                    newest,
                    Some((truth.day_start / 86_400, truth.counts)),
                    "{path} seed {seed}"
                );
                let refused = get(sim.local_addr(), &format!("{url}?$top=5"), &token, &[]).await;
                assert_eq!(refused.status, 400, "{}", refused.body);
            }
        }
        assert!(split > 0 && split < 16, "{split} of 16 walks were split");
        sim.shutdown().await;
    })
    .await;
}

/// Issue 15: delegated sign-in over HTTP. The device code is pending until the user
/// (the test) approves it; its tokens read the delegated-only reports that app tokens
/// may not; refresh tokens rotate on every use, a reused one is refused (and revokes its
/// descendants), a revoked one is refused.
#[tokio::test]
async fn device_code_sign_in_and_refresh_token_rotation() {
    bounded(async {
        let config = SimConfig {
            tenants: vec![tenant(300, 4)],
            device_code_interval: Duration::ZERO,
            ..SimConfig::default()
        };
        let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let addr = sim.local_addr();
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let scope = "offline_access%20https%3A%2F%2Fgraph.microsoft.com%2FAuditLog.Read.All";
        let post = |endpoint: &'static str, body: String| async move {
            http(addr, "POST", &format!("/{TENANT}/oauth2/v2.0/{endpoint}"), &form, &body).await
        };
        let r = post("devicecode", format!("client_id=nope&scope={scope}")).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("unauthorized_client")));
        let r = post("devicecode", format!("client_id={CLIENT}&scope={scope}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let start = r.json();
        let device_code = start["device_code"].as_str().unwrap().to_string();
        assert_eq!(start["interval"], 0);
        assert!(start["verification_uri"].as_str().unwrap().ends_with("/devicelogin"));
        let redeem = format!(
            "client_id={CLIENT}&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={device_code}"
        );
        let r = post("token", redeem.clone()).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("authorization_pending")));
        assert!(sim.decide_device_code(start["user_code"].as_str().unwrap(), true));
        let r = post("token", redeem.clone()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let tokens = r.json();
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let first = tokens["refresh_token"].as_str().unwrap().to_string();

        let path = "/v1.0/reports/authenticationMethods/usersRegisteredByMethod(includedUserTypes='all',includedUserRoles='all')";
        assert_eq!(get(addr, path, &token(addr).await, &[]).await.status, 403, "app token");
        let r = get(addr, path, &access, &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);

        let refresh = |t: &str| format!("client_id={CLIENT}&grant_type=refresh_token&refresh_token={t}&scope={scope}");
        let mut current = first.clone();
        for _ in 0..3 {
            let r = post("token", refresh(&current)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let next = r.json()["refresh_token"].as_str().unwrap().to_string();
            assert_ne!(next, current);
            assert_eq!(sim.refresh_token_status(&current), Some(RefreshStatus::Rotated));
            current = next;
        }
        let r = post("token", refresh(&first)).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "reuse");
        assert_eq!(sim.refresh_token_status(&current), Some(RefreshStatus::Revoked));

        let fresh = sim.mint_refresh_token(TENANT, "offline_access AuditLog.Read.All").unwrap();
        assert_eq!(sim.revoke_refresh_tokens(TENANT), 1);
        let r = post("token", refresh(&fresh)).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "revoked");
        assert!(r.json()["error_description"].as_str().unwrap().contains("AADSTS50173"));
        sim.shutdown().await;
    })
    .await;
}

/// Issue 15: the delegated-only activity reports refuse app tokens with Graph's 403,
/// take only lowercase periods, and serve the truth to a signed-in user.
#[tokio::test]
async fn delegated_activity_reports() {
    bounded(async {
        let sim = start(vec![tenant(300, 6)], Faults::default()).await;
        let addr = sim.local_addr();
        let app = token(addr).await;
        let sign_ins =
            "/beta/reports/authenticationMethods/userSignInsByAuthMethodSummary(period='d7')";
        let activity = "/beta/reports/authenticationMethods/userRegistrationActivity(period='d7')";
        for path in [sign_ins, activity] {
            let r = get(addr, path, &app, &[]).await;
            assert_eq!(
                (r.status, r.json()["error"]["code"].as_str()),
                (403, Some("Authorization_RequestDenied")),
                "{path}"
            );
        }
        let refresh = sim
            .mint_refresh_token(TENANT, "offline_access AuditLog.Read.All")
            .unwrap();
        let r = http(
            addr,
            "POST",
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("client_id={CLIENT}&grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await;
        let user = r.json()["access_token"].as_str().unwrap().to_string();
        let r = get(addr, sign_ins, &user, &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let served: BTreeMap<String, u64> = r.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["authenticationMethod"].as_str().unwrap().to_string(),
                    v["successActivityCount"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(served, sim.sign_ins_by_method_truth(TENANT, "d7"));
        let r = get(addr, activity, &user, &[PREFER]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.json()["value"].as_array().unwrap().len();
        assert_eq!(rows, sim.usage_summary_truth(TENANT, "D7").activities.len());
        let upper = get(addr, &activity.replace("'d7'", "'D7'"), &user, &[]).await;
        assert_eq!(upper.status, 400, "{}", upper.body);
        sim.shutdown().await;
    })
    .await;
}
