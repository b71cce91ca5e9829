//! What the benchmarks share: a client-credentials token and a page fetch, done the
//! plain way (no retries, no limiter) so the measured tools differ only in what they
//! do with the bytes. Included with `#[path]` by benches/parse_fold.rs and
//! examples/download_floor.rs.

/// A bearer token for `client_id` from the token endpoint under `base`.
pub async fn bearer(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let body = http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("token request")
        .bytes()
        .await
        .expect("token body");
    let token: serde_json::Value = serde_json::from_slice(&body).expect("token json");
    format!(
        "Bearer {}",
        token["access_token"].as_str().expect("access_token")
    )
}

/// One page, as bytes.
pub async fn page(http: &reqwest::Client, url: &str, bearer: &str) -> bytes::Bytes {
    http.get(url)
        .header("Authorization", bearer)
        .header("Prefer", "include-unknown-enum-members")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("page request")
        .bytes()
        .await
        .expect("page body")
}
