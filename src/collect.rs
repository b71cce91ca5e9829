//! One refresh of one report: ask the report module what to fetch, fetch it through the
//! Graph client (paging where the answer is a collection), hand every body to the
//! report's fold, and return the finished snapshot. Nothing is returned unless every
//! page of every request arrived and parsed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::TenantConfig;
use crate::graph::paging::{WalkStats, walk};
use crate::graph::{GraphClient, GraphError};
use crate::membership::Membership;
use crate::odata::{PageError, PageFold, PageInfo};
use crate::privileged::Privileged;
use crate::reports::{Auth, Refresh, ReportKind, Request};
use crate::snapshot::{Progress, Snapshot};

/// The pages of request number `request` of a refresh.
struct RequestPages<'r> {
    refresh: &'r mut dyn Refresh,
    request: usize,
    progress: &'r Progress,
}

impl PageFold for RequestPages<'_> {
    fn fold_page(&mut self, bytes: &[u8]) -> Result<PageInfo, PageError> {
        self.progress.page();
        self.refresh.page(self.request, bytes)
    }
}

/// Collects `kind` for `tenant` into a snapshot, counting every page in `progress`.
/// `membership` is the tenant's last membership index, which the registration folds
/// join (`None`: unknown); `privileged` likewise its last roles index.
pub async fn collect(
    client: &GraphClient,
    tenant: &TenantConfig,
    kind: ReportKind,
    membership: Option<Arc<Membership>>,
    privileged: Option<Arc<Privileged>>,
    progress: &Progress,
) -> Result<Snapshot, GraphError> {
    let report = kind.report();
    let mut settings = tenant.report_settings();
    settings.membership = membership;
    settings.privileged = privileged;
    settings.today = crate::reports::daily_summaries::utc_day(crate::families::unix_seconds(
        SystemTime::now(),
    ) as i64);
    let mut refresh = report.start(&settings);
    let mut stats = WalkStats::default();
    // Requests run in order and the first failure ends the refresh: a refused token
    // would be refused for every request, and one error per refresh is enough. A
    // request may add more (a group's members once its name is resolved).
    let mut requests: VecDeque<Request> = report.requests(&settings).into();
    let mut request = 0;
    while let Some(r) = requests.pop_front() {
        let endpoint = report.request_endpoint(&r);
        let permission = report.request_permission(&r);
        let url = format!("{}{}", tenant.graph_url, r.path);
        let mut pages = RequestPages {
            refresh: refresh.as_mut(),
            request,
            progress,
        };
        let walked = if r.paged {
            walk(client, url, endpoint, permission, &mut pages).await
        } else {
            single(client, &url, endpoint, permission, &mut pages, stats.pages).await
        };
        let walked = match (walked, report.auth()) {
            // Without a delegated sign-in the app's token was refused: say why.
            (Err(e), Auth::DelegatedOnly { alternative }) if tenant.delegated.is_none() => {
                Err(e.for_delegated_only(endpoint, alternative))
            }
            (result, _) => result,
        };
        // A refusal the report takes as an answer (PIM without P2) ends that request only.
        let walked = match walked {
            Err(e)
                if e.api_error()
                    .is_some_and(|a| refresh.refused(request, a.status, &a.code)) =>
            {
                tracing::debug!(tenant = %tenant.name, report = %kind, endpoint, error = %e, "request refused; the report goes on without it");
                Ok(WalkStats::default())
            }
            result => result,
        }?;
        stats.pages += walked.pages;
        stats.rows += walked.rows;
        requests.extend(
            refresh
                .next_requests(request)
                .map_err(GraphError::Membership)?,
        );
        request += 1;
    }
    let finished = refresh.finish();
    for w in &finished.warnings {
        tracing::warn!(tenant = %tenant.name, report = %kind, detail = %w.detail, "{}", w.message);
    }
    tracing::debug!(tenant = %tenant.name, report = %kind, pages = stats.pages, rows = stats.rows, "report walked");
    Ok(Snapshot {
        data: finished.data,
        records: stats.rows,
        finished_at: SystemTime::now(),
    })
}

/// Fetches one answer that is not a collection (a function's single result).
/// `pages_before` numbers the page in errors across the refresh's requests.
async fn single(
    client: &GraphClient,
    url: &str,
    endpoint: &'static str,
    permission: &'static str,
    fold: &mut (dyn PageFold + Send),
    pages_before: u64,
) -> Result<WalkStats, GraphError> {
    let body = client.get(url, endpoint, permission).await?;
    let info = fold.fold_page(&body).map_err(|source| GraphError::Page {
        page: pages_before + 1,
        source,
    })?;
    Ok(WalkStats {
        pages: 1,
        rows: info.rows,
    })
}
