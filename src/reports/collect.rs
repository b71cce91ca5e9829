//! One refresh of one report: build the first URL, walk every page through the report's
//! fold (or fetch each function result), and return the finished counts. Nothing is
//! returned unless every page and every call succeeded.

use std::time::SystemTime;

use super::users_registered_by::{Summary, SummaryCounts, function_path};
use super::{
    ReportKind, credential_usage_summary, credential_user_registration_count,
    credential_user_registration_details, user_credential_usage_details, user_registration_details,
    users_registered_by_feature, users_registered_by_method,
};
use crate::config::TenantConfig;
use crate::graph::paging::{WalkStats, walk};
use crate::graph::{GraphClient, GraphError};
use crate::reports::page::PageError;
use crate::snapshot::{ReportData, Snapshot};

/// The first page's URL of a report walked page by page (all but the
/// `usersRegisteredBy*` functions, which `summaries` calls once per configured pair).
/// Collections get `$top`; the functions take their parameters in the path
/// (graph-api.md §5.2, §5.3) and `getCredentialUserRegistrationCount` supports no
/// `$top` at all.
fn first_url(tenant: &TenantConfig, report: ReportKind) -> String {
    let root = &tenant.graph_url;
    let path = report.path();
    match report {
        ReportKind::CredentialUserRegistrationCount => format!("{root}{path}"),
        ReportKind::CredentialUsageSummary => {
            format!("{root}{path}(period='{}')", tenant.usage_period)
        }
        _ => format!("{root}{path}?$top={}", tenant.page_size),
    }
}

/// Every configured `(includedUserTypes, includedUserRoles)` pair: each is one call.
fn summary_pairs(tenant: &TenantConfig) -> impl Iterator<Item = (&str, &str)> {
    tenant.summary_user_types.iter().flat_map(|t| {
        tenant
            .summary_user_roles
            .iter()
            .map(move |r| (t.as_str(), r.as_str()))
    })
}

/// Collects `report` for `tenant` into a snapshot.
pub async fn collect(
    client: &GraphClient,
    tenant: &TenantConfig,
    report: ReportKind,
) -> Result<Snapshot, GraphError> {
    let url = || first_url(tenant, report);
    let (endpoint, permission) = (report.endpoint(), report.permission());
    let (data, stats) = match report {
        ReportKind::UserRegistrationDetails => {
            let mut fold = if tenant.admins_without_mfa {
                user_registration_details::Folder::listing_admins_without_mfa(
                    tenant.max_listed_admins as usize,
                )
            } else {
                user_registration_details::Folder::default()
            };
            let stats = walk(client, url(), endpoint, permission, &mut fold).await?;
            if let Some(list) = fold.0.admins_without_mfa.as_ref().filter(|l| l.is_cut()) {
                tracing::warn!(
                    tenant = %tenant.name, listed = list.listed.len(), total = list.total,
                    max_listed_admins = tenant.max_listed_admins,
                    "more admins without MFA than max_listed_admins: entra_admin_without_mfa_info lists only the first by user principal name"
                );
            }
            (ReportData::Registration(fold.0), stats)
        }
        ReportKind::CredentialUserRegistrationDetails => {
            let mut fold = credential_user_registration_details::Folder::default();
            let stats = walk(client, url(), endpoint, permission, &mut fold).await?;
            (ReportData::Registration(fold.0), stats)
        }
        ReportKind::CredentialUserRegistrationCount => {
            let mut fold = credential_user_registration_count::Folder::default();
            let stats = walk(client, url(), endpoint, permission, &mut fold).await?;
            (ReportData::RegistrationStatus(fold.0), stats)
        }
        ReportKind::CredentialUsageSummary => {
            let mut fold = credential_usage_summary::Folder::default();
            let stats = walk(client, url(), endpoint, permission, &mut fold).await?;
            let data = ReportData::UsageActivities {
                period: tenant.usage_period.clone(),
                counts: fold.0,
            };
            (data, stats)
        }
        ReportKind::UserCredentialUsageDetails | ReportKind::UserEventsSummary => {
            // user_events_summary has the same rows (its module re-exports this fold).
            let mut fold = user_credential_usage_details::Folder::default();
            let stats = walk(client, url(), endpoint, permission, &mut fold).await?;
            if fold.0.undated > 0 {
                tracing::warn!(
                    tenant = %tenant.name, report = %report, events = fold.0.undated,
                    "events without a readable eventDateTime: counted, but not in the last-event timestamps"
                );
            }
            (ReportData::UsageEvents(fold.0), stats)
        }
        ReportKind::UsersRegisteredByFeature | ReportKind::UsersRegisteredByMethod => {
            let (parse, alternative): (fn(&[u8]) -> _, _) =
                if report == ReportKind::UsersRegisteredByFeature {
                    (
                        users_registered_by_feature::parse,
                        "entra_users_with_feature",
                    )
                } else {
                    (users_registered_by_method::parse, "entra_users_with_method")
                };
            let (counts, stats) = summaries(client, tenant, report, parse)
                .await
                .map_err(|e| e.for_delegated_only(endpoint, alternative))?;
            (ReportData::Summary(counts), stats)
        }
    };
    tracing::debug!(tenant = %tenant.name, report = %report, pages = stats.pages, rows = stats.rows, "report walked");
    Ok(Snapshot {
        data,
        records: stats.rows,
        finished_at: SystemTime::now(),
    })
}

/// Calls a `usersRegisteredBy*` function once per configured pair. Stops at the first
/// failure: a refused token would be refused for every pair, and one error per refresh
/// is enough. `rows` counts the results.
async fn summaries(
    client: &GraphClient,
    tenant: &TenantConfig,
    report: ReportKind,
    parse: fn(&[u8]) -> Result<Summary, serde_json::Error>,
) -> Result<(SummaryCounts, WalkStats), GraphError> {
    let mut counts = SummaryCounts::default();
    let mut stats = WalkStats::default();
    for (types, roles) in summary_pairs(tenant) {
        let url = format!(
            "{}{}",
            tenant.graph_url,
            function_path(report.path(), types, roles)
        );
        let body = client
            .get(&url, report.endpoint(), report.permission())
            .await?;
        stats.pages += 1;
        let summary = parse(&body).map_err(|e| GraphError::Page {
            page: stats.pages,
            source: PageError::Json(e),
        })?;
        stats.rows += 1;
        counts
            .summaries
            .insert((types.to_owned(), roles.to_owned()), summary);
    }
    Ok((counts, stats))
}
