//! The `entra_users*` families and the admins-without-MFA list, fed by either
//! registration source ([`super::user_registration_details`] or the legacy
//! [`super::credential_user_registration_details`]) from [`RegistrationCounts`].

use crate::aggregate::{METHOD_COUNT_BUCKETS, RegistrationCounts};
use crate::families::{Families, Family};

use super::{ReportData, store_tagged};

/// The snapshot-file tag of registration data.
pub const TAG: &str = "Registration";

static USERS: Family = Family::gauge(
    "entra_users",
    "Users in the registration report, by user type and admin role.",
);
static WITH_FEATURE: Family = Family::gauge(
    "entra_users_with_feature",
    "Users for whom the feature holds (MFA/SSPR registered, enabled or capable; passwordless capable; system-preferred MFA enabled).",
);
static WITH_METHOD: Family = Family::gauge(
    "entra_users_with_method",
    "Users with the authentication method registered (method as Graph names it).",
);
static PREFERRED: Family = Family::gauge(
    "entra_users_by_preferred_method",
    "Users by preferred secondary authentication method (`none` when unset).",
);
static BY_COUNT: Family = Family::gauge(
    "entra_users_by_registered_methods",
    "Users by number of distinct registered authentication methods (0-4, 5+).",
);
static ADMINS: Family = Family::gauge(
    "entra_admin_without_mfa_info",
    "1 per admin (any Entra admin role) who is not MFA capable; opt-in per tenant (admins_without_mfa), at most max_listed_admins.",
);

/// The families of both registration sources, in exposition order.
pub static FAMILIES: &[&Family] = &[
    &USERS,
    &WITH_FEATURE,
    &WITH_METHOD,
    &PREFERRED,
    &BY_COUNT,
    &ADMINS,
];

impl ReportData for RegistrationCounts {
    fn encode<'a>(&'a self, tenant: &'a str, out: &mut Families<'a>) {
        let [users, with_feature, with_method, preferred, by_count] =
            [&USERS, &WITH_FEATURE, &WITH_METHOD, &PREFERRED, &BY_COUNT].map(|f| out.id(f));
        let methods = self.all_methods();
        let preferred_labels = self.all_preferred();
        for ((user_type, role), g) in &self.groups {
            let group = [
                ("tenant", tenant),
                ("user_type", user_type.label()),
                ("role", role.label()),
            ];
            let with = |key: &'static str, value| {
                let mut l = group.to_vec();
                l.push((key, value));
                l
            };
            out.push(users, group.to_vec(), g.users);
            for f in self.source.features() {
                out.push(with_feature, with("feature", f.label()), g.feature(*f));
            }
            for &m in &methods {
                out.push(
                    with_method,
                    with("method", m),
                    *g.methods.get(m).unwrap_or(&0),
                );
            }
            if self.source.has_preferred_method() {
                for &p in &preferred_labels {
                    out.push(
                        preferred,
                        with("method", p),
                        *g.preferred.get(p).unwrap_or(&0),
                    );
                }
            }
            for (bucket, n) in METHOD_COUNT_BUCKETS.iter().zip(g.method_counts) {
                out.push(by_count, with("methods", bucket), n);
            }
        }
        for upn in self.admins_without_mfa.iter().flat_map(|a| &a.listed) {
            out.add(
                &ADMINS,
                vec![("tenant", tenant), ("user_principal_name", upn)],
                1u64,
            );
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, self)
    }
}
