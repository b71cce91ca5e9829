//! The truth of the `entra_privileged_*` families (issue 14) for a `privileged_roles`
//! configuration, computed from the simulator's own role assignments, groups and users:
//! per role (by display name) and assignment, the distinct holders present in the
//! registration report and not excluded, their features and strengths, and the opt-in
//! list. Nothing here uses the exporter's code.

use std::collections::{BTreeMap, BTreeSet};

use super::coverage_truth::{CoverageSpec, exclusion};
use super::directory::{resolve, users_of};
use super::tenant::Tenant;
use super::truth::{STRENGTHS, USER_FEATURES, strength_label, user_features};
use super::{SimPrincipal, SimRoleKind, SimTenant};

/// The exporter configuration the truth is for.
#[derive(Debug, Clone, Default)]
pub struct PrivilegedSpec {
    /// `privileged_roles`: display names or template ids (see [`default_roles`]).
    pub roles: Vec<String>,
    /// `list_privileged_users`.
    pub list: bool,
    /// `max_listed_admins`.
    pub max_listed: usize,
    /// The exclusions (`groups` play no part here).
    pub coverage: CoverageSpec,
}

/// The template ids `privileged_roles = "default"` stands for (graph-api.md §13.4.1),
/// from the simulator's own table.
pub fn default_roles() -> Vec<String> {
    // The first twelve of the simulator's built-in definitions are §13.4.1's.
    super::SimRoles::builtin_definitions()
        .into_iter()
        .take(12)
        .map(|d| d.template_id)
        .collect()
}

/// One role held one way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegedRoleTruth {
    /// `entra_privileged_users`.
    pub users: u64,
    /// `entra_privileged_users_with_feature`, every feature (zeros included).
    pub features: BTreeMap<String, u64>,
    /// `entra_privileged_users_by_strength`, all four strengths (zeros included).
    pub strengths: BTreeMap<String, u64>,
}

/// The privileged families' truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegedTruth {
    /// By (`role`, `assignment`): every configured role actively, and as eligible when
    /// the tenant has P2.
    pub roles: BTreeMap<(String, String), PrivilegedRoleTruth>,
    /// `entra_privileged_user_info` as (upn, role, assignment, strength), bounded.
    pub listed: BTreeSet<(String, String, String, String)>,
    /// Entries the list would hold without its bound.
    pub holders: u64,
    /// Whether `eligible` series are published (the tenant has P2).
    pub eligible_published: bool,
}

/// The truth for `spec` at dataset time `t`. A role entry that matches no definition
/// has no entry (the exporter fails the refresh instead).
pub(crate) fn compute(
    cfg: &SimTenant,
    generator: &Tenant,
    t: i64,
    spec: &PrivilegedSpec,
) -> PrivilegedTruth {
    let roles = &cfg.directory_roles;
    let p2 = !roles.no_p2;
    let excluded = exclusion(cfg, &spec.coverage);
    let mut truth = PrivilegedTruth {
        eligible_published: p2,
        ..PrivilegedTruth::default()
    };
    let mut all_listed = BTreeSet::new();
    for entry in &spec.roles {
        let Some(def) = roles.definitions.iter().find(|d| {
            d.template_id.eq_ignore_ascii_case(entry)
                || d.id.eq_ignore_ascii_case(entry)
                || d.display_name.eq_ignore_ascii_case(entry)
        }) else {
            continue;
        };
        for (assignment, kinds) in [
            (
                "active",
                if p2 {
                    &[
                        SimRoleKind::Permanent,
                        SimRoleKind::TimeBound,
                        SimRoleKind::Activated,
                    ][..]
                } else {
                    &[SimRoleKind::Permanent][..]
                },
            ),
            ("eligible", &[SimRoleKind::Eligible][..]),
        ] {
            if assignment == "eligible" && !p2 {
                continue;
            }
            let mut holders = BTreeSet::new();
            for a in roles.assignments.iter().filter(|a| {
                kinds.contains(&a.kind)
                    && (a.role.eq_ignore_ascii_case(&def.id)
                        || a.role.eq_ignore_ascii_case(&def.template_id))
            }) {
                match &a.principal {
                    SimPrincipal::User(i) => {
                        holders.insert(*i);
                    }
                    SimPrincipal::Group(id) => {
                        for g in resolve(cfg, id) {
                            holders.extend(users_of(cfg, g));
                        }
                    }
                    SimPrincipal::ServicePrincipal(_) => {}
                }
            }
            let role = truth
                .roles
                .entry((def.display_name.clone(), assignment.to_owned()))
                .or_insert_with(|| PrivilegedRoleTruth {
                    features: USER_FEATURES.iter().map(|f| ((*f).to_owned(), 0)).collect(),
                    strengths: STRENGTHS.iter().map(|s| ((*s).to_owned(), 0)).collect(),
                    ..PrivilegedRoleTruth::default()
                });
            for index in holders.into_iter().filter(|i| *i < generator.users) {
                let u = generator.user(index, t);
                let upn = generator.upn(index, u.user_type);
                if excluded(index, &upn) {
                    continue;
                }
                role.users += 1;
                for (f, on) in user_features(&u) {
                    *role.features.get_mut(f).expect("preset") += u64::from(on);
                }
                let strength = strength_label(u.methods.as_slice());
                *role.strengths.get_mut(strength).expect("preset") += 1;
                all_listed.insert((
                    upn,
                    def.display_name.clone(),
                    assignment.to_owned(),
                    strength.to_owned(),
                ));
            }
        }
    }
    if spec.list {
        truth.holders = all_listed.len() as u64;
        truth.listed = all_listed.into_iter().take(spec.max_listed).collect();
    }
    truth
}
