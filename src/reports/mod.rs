//! The Graph reports this exporter knows, one module per report: its URL, its serde
//! row type and its fold into counts.

pub mod collect;
pub mod credential_usage_summary;
pub mod credential_user_registration_count;
pub mod credential_user_registration_details;
pub mod page;
pub mod user_credential_usage_details;
pub mod user_events_summary;
pub mod user_registration_details;
pub mod users_registered_by;
pub mod users_registered_by_feature;
pub mod users_registered_by_method;

use std::fmt;

use crate::cloud::Cloud;

/// A report, by its config name (design.md, "Reports").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportKind {
    /// v1.0 `/reports/authenticationMethods/userRegistrationDetails`.
    UserRegistrationDetails,
    /// beta `/reports/credentialUserRegistrationDetails` (legacy, retired by Microsoft).
    CredentialUserRegistrationDetails,
    /// beta `getCredentialUserRegistrationCount`.
    CredentialUserRegistrationCount,
    /// beta `getCredentialUsageSummary(period=…)`.
    CredentialUsageSummary,
    /// beta `userCredentialUsageDetails`.
    UserCredentialUsageDetails,
    /// beta `authenticationMethods/userEventsSummary`.
    UserEventsSummary,
    /// v1.0 `usersRegisteredByFeature(…)`.
    UsersRegisteredByFeature,
    /// v1.0 `usersRegisteredByMethod(…)`.
    UsersRegisteredByMethod,
}

impl ReportKind {
    /// Every report, in the order of design.md.
    pub const ALL: [ReportKind; 8] = [
        Self::UserRegistrationDetails,
        Self::CredentialUserRegistrationDetails,
        Self::CredentialUserRegistrationCount,
        Self::CredentialUsageSummary,
        Self::UserCredentialUsageDetails,
        Self::UserEventsSummary,
        Self::UsersRegisteredByFeature,
        Self::UsersRegisteredByMethod,
    ];

    /// The config name, also the `report` label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserRegistrationDetails => "user_registration_details",
            Self::CredentialUserRegistrationDetails => "credential_user_registration_details",
            Self::CredentialUserRegistrationCount => "credential_user_registration_count",
            Self::CredentialUsageSummary => "credential_usage_summary",
            Self::UserCredentialUsageDetails => "user_credential_usage_details",
            Self::UserEventsSummary => "user_events_summary",
            Self::UsersRegisteredByFeature => "users_registered_by_feature",
            Self::UsersRegisteredByMethod => "users_registered_by_method",
        }
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether Microsoft documents the report as delegated-only ("Application: Not
    /// supported", graph-api.md §3.6): an app-only token is refused with a 403.
    pub fn is_delegated_only(self) -> bool {
        matches!(
            self,
            Self::UsersRegisteredByFeature | Self::UsersRegisteredByMethod
        )
    }

    /// Whether the report is one of the two per-user registration sources, of which a
    /// tenant may enable at most one.
    pub fn is_registration_source(self) -> bool {
        matches!(
            self,
            Self::UserRegistrationDetails | Self::CredentialUserRegistrationDetails
        )
    }

    /// The Graph path below the Graph root, without query.
    pub fn path(self) -> &'static str {
        match self {
            Self::UserRegistrationDetails => {
                "/v1.0/reports/authenticationMethods/userRegistrationDetails"
            }
            Self::CredentialUserRegistrationDetails => {
                "/beta/reports/credentialUserRegistrationDetails"
            }
            Self::CredentialUserRegistrationCount => {
                "/beta/reports/getCredentialUserRegistrationCount"
            }
            Self::CredentialUsageSummary => "/beta/reports/getCredentialUsageSummary",
            Self::UserCredentialUsageDetails => "/beta/reports/userCredentialUsageDetails",
            Self::UserEventsSummary => "/beta/reports/authenticationMethods/userEventsSummary",
            Self::UsersRegisteredByFeature => {
                "/v1.0/reports/authenticationMethods/usersRegisteredByFeature"
            }
            Self::UsersRegisteredByMethod => {
                "/v1.0/reports/authenticationMethods/usersRegisteredByMethod"
            }
        }
    }

    /// The `endpoint` label of `entra_exporter_graph_requests_total`: Graph's own name.
    pub fn endpoint(self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or("")
    }

    /// Whether Microsoft offers the report in `cloud`. The legacy `credential*` and
    /// `userCredentialUsageDetails` APIs are Global only (graph-api.md §1.1); the rest
    /// are available in all four clouds.
    pub fn offered_in(self, cloud: Cloud) -> bool {
        cloud == Cloud::Global
            || !matches!(
                self,
                Self::CredentialUserRegistrationDetails
                    | Self::CredentialUserRegistrationCount
                    | Self::CredentialUsageSummary
                    | Self::UserCredentialUsageDetails
            )
    }

    /// The application permission Graph requires for the report (graph-api.md §6.1).
    pub fn permission(self) -> &'static str {
        match self {
            Self::UserRegistrationDetails
            | Self::UserEventsSummary
            | Self::UsersRegisteredByFeature
            | Self::UsersRegisteredByMethod => "AuditLog.Read.All",
            _ => "Reports.Read.All",
        }
    }
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

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ReportKind::ALL {
            assert_eq!(ReportKind::from_name(r.name()), Some(r));
        }
        assert_eq!(ReportKind::from_name("nope"), None);
        assert_eq!(
            ReportKind::UserRegistrationDetails.endpoint(),
            "userRegistrationDetails"
        );
        assert_eq!(
            ReportKind::CredentialUsageSummary.endpoint(),
            "getCredentialUsageSummary"
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
