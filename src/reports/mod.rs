//! The Graph reports this exporter knows: one module per report, and their registry.
//!
//! Pure: rows ▸ counts ▸ metric families. Nothing here does I/O, reads a clock or knows
//! the Graph client; [`crate::collect`] fetches what a report asks for and hands it the
//! bodies.
//!
//! Each report module owns everything about its report: the config name, the Graph
//! path and the clouds it exists in, the permission and auth kind, the row type and
//! fold, the data it stores, how that data becomes metric families, and what identifies
//! its persisted snapshot. It exposes one value implementing [`Report`], listed once in
//! [`REGISTRY`]; adding a report is its module plus one line there.
//!
//! Why a table of trait objects rather than an enum of modules: with an enum every
//! question about a report (name, path, permission, fold, families, identity …) is a
//! `match` with an arm per report, spread over the code, which is how a new report came
//! to touch six places. A trait object answers each question in the report's own
//! module. The cost is one virtual call per page or per snapshot, never per row: a
//! report's fold is monomorphic code behind [`Refresh::page`]. A [`ReportKind`] is a
//! small index into the table, so it stays `Copy`, ordered (registry order, which is
//! the exposition order) and cheap as a map key.

pub mod authentication_methods_policy;
pub mod credential_usage_summary;
pub mod credential_user_registration_count;
pub mod credential_user_registration_details;
pub mod daily_summaries;
pub mod delegated_activity;
pub mod group_membership;
pub mod privileged_roles;
pub mod registration;
pub mod row;
pub mod strength;
pub mod user_credential_usage_details;
pub mod user_registration_details;
pub mod users_registered_by;
pub mod users_registered_by_feature;
pub mod users_registered_by_method;

use std::fmt;

use crate::cloud::Cloud;
use crate::families::{Families, Family};
use crate::odata::{Fold, PageError, PageInfo, fold_page};

/// Every report, in the order of design.md (also the order of `/metrics` families).
pub static REGISTRY: &[&dyn Report] = &[
    &user_registration_details::REPORT,
    &credential_user_registration_details::REPORT,
    &credential_user_registration_count::REPORT,
    &credential_usage_summary::REPORT,
    &user_credential_usage_details::DETAILS,
    &user_credential_usage_details::EVENTS_SUMMARY,
    &users_registered_by_feature::REPORT,
    &users_registered_by_method::REPORT,
    // Issue 15: the app-only daily successors.
    &daily_summaries::MFA_SIGN_INS,
    &daily_summaries::PASSWORD_RESETS,
    // Issue 15: the delegated-only activity reports.
    &delegated_activity::REGISTRATION_ACTIVITY,
    &delegated_activity::SIGN_INS,
    &group_membership::REPORT,
    // Issue 14b: the authentication methods policy.
    &authentication_methods_policy::REPORT,
    // Issue 14: privileged roles (joined into the registration counts).
    &privileged_roles::REPORT,
];

/// Everything the exporter knows about one report.
pub trait Report: Sync {
    /// The config name, also the `report` label value.
    fn name(&self) -> &'static str;
    /// The Graph path below the Graph root, without query.
    fn path(&self) -> &'static str;
    /// The `endpoint` label of `entra_exporter_graph_requests_total`: Graph's own name.
    fn endpoint(&self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or("")
    }
    /// The `endpoint` label of one of the report's requests, for reports whose requests
    /// go to several Graph endpoints.
    fn request_endpoint(&self, _request: &Request) -> &'static str {
        self.endpoint()
    }
    /// Whether the report reads the directory (groups, members), which Graph meters
    /// apart from the reports (graph-api.md §13.1.2): paced by
    /// `directory_max_requests_per_10s` instead of `max_requests_per_10s`.
    fn is_directory(&self) -> bool {
        false
    }
    /// The permission Graph requires for the report (graph-api.md §6.1).
    fn permission(&self) -> &'static str;
    /// The permission one of the report's requests needs, for reports whose requests
    /// need different ones (issue 14: a role-assignable group's members).
    fn request_permission(&self, _request: &Request) -> &'static str {
        self.permission()
    }
    /// Which tokens Graph serves the report to.
    fn auth(&self) -> Auth {
        Auth::AppOnly
    }
    /// Whether Microsoft offers the report in `cloud` (graph-api.md §1.1).
    fn offered_in(&self, _cloud: Cloud) -> bool {
        true
    }
    /// Whether the report is one of the per-user registration sources, of which a
    /// tenant may enable at most one.
    fn is_registration_source(&self) -> bool {
        false
    }
    /// Issue 15: `Some(retirement)` for a report Microsoft has retired. It stays
    /// supported (tenants and proxies may still serve it); the exporter warns at start.
    fn retired(&self) -> Option<Retirement> {
        None
    }
    /// The families the report's data feeds, in exposition order.
    fn families(&self) -> &'static [&'static Family];
    /// What one refresh fetches, in order (paths below the Graph root, with query).
    fn requests(&self, settings: &Settings) -> Vec<Request>;
    /// A refresh's empty state: it takes the bodies of [`Report::requests`].
    fn start(&self, settings: &Settings) -> Box<dyn Refresh>;
    /// The settings that shape the report's data, for the snapshot file: a snapshot
    /// taken under other settings is not restored. Empty when none do.
    fn identity(&self, _settings: &Settings) -> String {
        String::new()
    }
    /// Data as [`ReportData::store`] wrote it, back (`--storage.snapshot-file`).
    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>>;
}

/// A refresh of a report with one paged request, folded by `F` and finished by
/// `finish`: most reports.
pub struct Folding<F> {
    fold: F,
    finish: Box<dyn FnOnce(F) -> Finished + Send>,
}

impl<F> Folding<F> {
    /// A refresh folding into `fold`.
    pub fn new(fold: F, finish: impl FnOnce(F) -> Finished + Send + 'static) -> Self {
        Self {
            fold,
            finish: Box::new(finish),
        }
    }
}

impl<F: Fold + Send> Refresh for Folding<F> {
    fn page(&mut self, _request: usize, body: &[u8]) -> Result<PageInfo, PageError> {
        fold_page(body, &mut self.fold)
    }

    fn finish(self: Box<Self>) -> Finished {
        (self.finish)(self.fold)
    }
}

/// When Microsoft retired a report, and what replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// The date Microsoft gave, `YYYY-MM-DD`.
    pub date: &'static str,
    /// The successor's config name (and how it differs, e.g. delegated only).
    pub successor: &'static str,
}

/// Which tokens Graph serves a report to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Application (client-credentials) tokens.
    AppOnly,
    /// Only a signed-in user's token ("Application: Not supported", graph-api.md §3.6):
    /// an app-only token is refused with a 403. `alternative` names the family with
    /// the same numbers from an app-only report.
    DelegatedOnly {
        /// e.g. `entra_users_with_feature`.
        alternative: &'static str,
    },
}

/// One request of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Path and query below the Graph root.
    pub path: String,
    /// Whether the response is an OData collection whose `@odata.nextLink` is followed;
    /// otherwise the single body is the whole answer.
    pub paged: bool,
}

/// The settings of a tenant that shape what a report fetches and stores (built from
/// the tenant's config, which validated them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `$top` of collections.
    pub page_size: u32,
    /// `getCredentialUsageSummary` period as written: `D1`, `D7`, `D30`.
    pub usage_period: String,
    /// `usersRegisteredBy*` `includedUserTypes` values.
    pub summary_user_types: Vec<String>,
    /// `usersRegisteredBy*` `includedUserRoles` values.
    pub summary_user_roles: Vec<String>,
    /// List admins who are not MFA capable.
    pub admins_without_mfa: bool,
    /// At most this many listed admins.
    pub max_listed_admins: u32,
    /// The UTC day (days since the Unix epoch) the refresh started on: the daily
    /// reports' "today", whose row is partial. Set by [`crate::collect`] from the clock
    /// (the reports read none); 0 outside a refresh.
    pub today: i64,
    /// `groups`: coverage per group, each named by display name or object id.
    pub groups: Vec<String>,
    /// `exclude_groups`: their members never count toward coverage.
    pub exclude_groups: Vec<String>,
    /// `exclude_users`: UPN patterns left out of coverage.
    pub exclude_users: Vec<String>,
    /// The membership index of the tenant's last `group_membership` refresh, for the
    /// registration fold's join; `None` while unknown (or not configured).
    pub membership: Option<std::sync::Arc<crate::membership::Membership>>,
    /// Issue 14: `privileged_roles` as resolved (display names or template ids; empty:
    /// off).
    pub privileged_roles: Vec<String>,
    /// Issue 14: list privileged users by name (`list_privileged_users`).
    pub list_privileged_users: bool,
    /// Issue 14: the roles index of the tenant's last `privileged_roles` refresh, for
    /// the registration fold's join; `None` while unknown (or not configured).
    pub privileged: Option<std::sync::Arc<crate::privileged::Privileged>>,
}

/// One refresh in progress: takes every response body, then yields the data.
pub trait Refresh: Send {
    /// Folds one body of request number `request` (an index into
    /// [`Report::requests`]): a page of a paged request, or the whole answer.
    fn page(&mut self, request: usize, body: &[u8]) -> Result<PageInfo, PageError>;
    /// Requests to run after request number `request` got all its pages, numbered on
    /// from the last one (a group's members once its name is resolved); an error ends
    /// the refresh with that message.
    fn next_requests(&mut self, _request: usize) -> Result<Vec<Request>, String> {
        Ok(Vec::new())
    }
    /// Whether the report takes Graph's refusal of request number `request` (HTTP
    /// `status`, `error.code`) as an answer rather than a failed refresh: the refresh
    /// goes on without its pages (PIM refused for licence, issue 14).
    fn refused(&mut self, _request: usize, _status: u16, _code: &str) -> bool {
        false
    }
    /// The finished data, once every body arrived.
    fn finish(self: Box<Self>) -> Finished;
}

/// A finished refresh.
#[derive(Debug)]
pub struct Finished {
    /// The counts.
    pub data: Box<dyn ReportData>,
    /// Things an operator should know (logged by whoever collects).
    pub warnings: Vec<Warning>,
}

impl Finished {
    /// Data without warnings.
    pub fn new(data: impl ReportData + 'static) -> Self {
        Self {
            data: Box::new(data),
            warnings: Vec::new(),
        }
    }
}

/// A warning about a finished refresh: a fixed message and its details as `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What happened.
    pub message: &'static str,
    /// The numbers, e.g. `listed=100 total=130`.
    pub detail: String,
}

/// What a report's refresh produced and the snapshot store keeps.
pub trait ReportData: Send + Sync + fmt::Debug {
    /// Adds the data's samples for `tenant` to `out`.
    fn encode(&self, tenant: &str, out: &mut Families);
    /// The data for the snapshot file ([`Report::restore`] reads it back).
    fn store(&self) -> serde_json::Value;
    /// The coverage figures of the landing page, for data that has them (the
    /// registration sources); `None` for every other report.
    fn headline(&self) -> Option<Headline> {
        None
    }
    /// The membership index, for data that is one (`group_membership`).
    fn membership(&self) -> Option<std::sync::Arc<crate::membership::Membership>> {
        None
    }
    /// Issue 14: the roles index, for data that is one (`privileged_roles`).
    fn privileged(&self) -> Option<std::sync::Arc<crate::privileged::Privileged>> {
        None
    }
    /// Something the landing page shows beside a successful refresh (e.g. why part
    /// of the data is unavailable); `None` for most data.
    fn note(&self) -> Option<String> {
        None
    }
}

/// `count` of `of` users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Users for whom it holds.
    pub count: u64,
    /// Users it is out of.
    pub of: u64,
}

impl Share {
    /// The share in tenths of a percent, rounded down (so 100.0 % means every user);
    /// `None` when out of no users.
    pub fn per_mille(self) -> Option<u64> {
        (self.of > 0).then(|| (u128::from(self.count) * 1000 / u128::from(self.of)) as u64)
    }
}

/// A tenant's coverage at a glance, from one registration snapshot: what the
/// `entra:*:ratio` recording rules compute, for the landing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    /// Users in the report.
    pub users: u64,
    /// Members (`user_type="member"`, any role) who are MFA capable; `None` when the
    /// source has no user types or no MFA-capable flag (the legacy report).
    pub members_mfa_capable: Option<Share>,
    /// Admins (`role="admin"`, any user type) who are MFA capable; `None` as above.
    pub admins_mfa_capable: Option<Share>,
    /// Users of every kind who are MFA registered.
    pub mfa_registered: Share,
    /// Users with no registered authentication method at all.
    pub without_methods: Share,
    /// Admins who are not MFA capable, by name, when the tenant opted in
    /// (`admins_without_mfa`): the listed names and how many there were.
    pub admins_without_mfa: Option<(Vec<String>, u64)>,
}

/// Data stored as `{tag: data}`: the snapshot file's layout since format 1 (it was a
/// serde enum), kept so files written by earlier versions still restore.
pub fn store_tagged<T: serde::Serialize>(tag: &str, data: &T) -> serde_json::Value {
    let value = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
    serde_json::Value::Object([(tag.to_owned(), value)].into_iter().collect())
}

/// Reads data written by [`store_tagged`] with `tag`.
pub fn restore_tagged<T: serde::de::DeserializeOwned>(
    tag: &str,
    stored: &serde_json::Value,
) -> serde_json::Result<T> {
    let inner = stored
        .get(tag)
        .ok_or_else(|| serde::de::Error::custom(format!("not {tag} data")))?;
    T::deserialize(inner)
}

/// A report, by its place in [`REGISTRY`]. Dereferences to its [`Report`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportKind(u8);

impl ReportKind {
    /// Every report, in registry order.
    pub fn all() -> impl Iterator<Item = ReportKind> {
        (0..REGISTRY.len()).map(|i| ReportKind(i as u8))
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|r| r.name() == name)
    }

    /// The report named `name`; panics on an unknown name (for tests and constants).
    pub fn named(name: &str) -> Self {
        Self::from_name(name).unwrap_or_else(|| panic!("no report named {name:?}"))
    }

    /// The report.
    pub fn report(self) -> &'static dyn Report {
        REGISTRY[usize::from(self.0)]
    }
}

impl std::ops::Deref for ReportKind {
    type Target = dyn Report;

    fn deref(&self) -> &Self::Target {
        self.report()
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every report family in exposition order: each report's, in registry order.
pub fn family_order() -> impl Iterator<Item = &'static Family> {
    REGISTRY.iter().flat_map(|r| r.families().iter().copied())
}

/// Graph's camelCase enum member in snake_case (`ssprRegistered` ▸ `sspr_registered`),
/// the label convention of design.md for feature and status values. Unknown members
/// (added by Microsoft later) go through the same rule, so they keep their own names.
pub fn snake_case(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in value.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let names: Vec<_> = ReportKind::all().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "user_registration_details",
                "credential_user_registration_details",
                "credential_user_registration_count",
                "credential_usage_summary",
                "user_credential_usage_details",
                "user_events_summary",
                "users_registered_by_feature",
                "users_registered_by_method",
                "user_mfa_sign_in_summary",
                "user_password_resets_and_changes_summary",
                "user_registration_activity",
                "user_sign_ins_by_auth_method_summary",
                "group_membership",
                "authentication_methods_policy",
                "privileged_roles",
            ]
        );
        for r in ReportKind::all() {
            assert_eq!(ReportKind::from_name(r.name()), Some(r));
        }
        assert_eq!(ReportKind::from_name("nope"), None);
        assert_eq!(
            ReportKind::named("user_registration_details").endpoint(),
            "userRegistrationDetails"
        );
        assert_eq!(
            ReportKind::named("credential_usage_summary").endpoint(),
            "getCredentialUsageSummary"
        );
    }

    #[test]
    fn families_shared_by_reports_are_declared_alike() {
        let mut seen: Vec<&Family> = Vec::new();
        for f in family_order() {
            match seen.iter().find(|s| s.name == f.name) {
                Some(s) => assert_eq!(s.help, f.help, "{}", f.name),
                None => seen.push(f),
            }
            assert!(f.name.starts_with("entra_"), "{}", f.name);
            assert!(
                f.help.ends_with('.') && !f.help.ends_with(".."),
                "{}: {:?}",
                f.name,
                f.help
            );
        }
    }

    #[test]
    fn only_the_legacy_apis_are_global_only() {
        let global_only: Vec<_> = ReportKind::all()
            .filter(|r| !r.offered_in(Cloud::China))
            .map(|r| r.name())
            .collect();
        assert_eq!(
            global_only,
            [
                "credential_user_registration_details",
                "credential_user_registration_count",
                "credential_usage_summary",
                "user_credential_usage_details",
            ]
        );
        assert!(ReportKind::all().all(|r| r.offered_in(Cloud::Global)));
    }

    #[test]
    fn retired_reports_name_their_successor() {
        let retired: Vec<_> = ReportKind::all()
            .filter_map(|r| r.retired().map(|x| (r.name(), x.date, x.successor)))
            .collect();
        assert_eq!(
            retired,
            [
                (
                    "credential_user_registration_details",
                    "2024-06-30",
                    "user_registration_details"
                ),
                (
                    "credential_usage_summary",
                    "2025-08-01",
                    "user_registration_activity (delegated only)"
                ),
                (
                    "user_credential_usage_details",
                    "2025-08-01",
                    "user_events_summary"
                ),
            ]
        );
    }

    #[test]
    fn snake_case_follows_design() {
        assert_eq!(snake_case("ssprRegistered"), "sspr_registered");
        assert_eq!(snake_case("mfaRegistered"), "mfa_registered");
        assert_eq!(snake_case("registered"), "registered");
        assert_eq!(snake_case("unknownFutureValue"), "unknown_future_value");
        assert_eq!(snake_case("PasswordlessCapable"), "passwordless_capable");
        assert_eq!(snake_case(""), "");
    }
}
