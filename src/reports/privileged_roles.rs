//! `privileged_roles`: who holds the configured directory roles (graph-api.md §13.4),
//! folded into a [`Privileged`] index that the registration fold joins by user id, and
//! the `entra_privileged_*` families that join produces.
//!
//! One refresh: the role definitions (to resolve display names and template ids and
//! to learn each role's display name, the `role` label), then per role its active
//! assignments (`roleAssignments?$filter=roleDefinitionId eq …&$expand=principal`),
//! then the PIM lists `roleAssignmentScheduleInstances` (time-bound and activated
//! assignments appear only there, design.md) and `roleEligibilityScheduleInstances`,
//! each once for all roles and matched here by `roleDefinitionId`. Principals that are
//! role-assignable groups are expanded to their user members with the walk of
//! [`super::group_membership`]; service principals never count. Scoped assignments
//! (`directoryScopeId` not `/`) count like tenant-wide ones.
//!
//! Without a P2 licence Graph refuses the PIM lists with HTTP 400
//! `AadPremiumLicenseRequired` (§13.4.6): the refresh still succeeds, `active` is read
//! from `roleAssignments`, and the index says why `eligible` is left out.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::group_membership::{MemberRow, members_request};
use super::strength::Strength;
use super::{
    Finished, Refresh, Report, ReportData, Request, Settings, Warning, restore_tagged, store_tagged,
};
use crate::aggregate::Source;
use crate::families::{Families, Family};
use crate::membership::{is_object_id, object_id};
use crate::odata::{Fold, PageError, PageInfo, fold_page};
use crate::privileged::{Assignment, Privileged, PrivilegedCoverage};

/// The report.
pub static REPORT: PrivilegedRoles = PrivilegedRoles;

/// The snapshot-file tag of roles data.
const TAG: &str = "Privileged";

/// Graph's error code for a PIM call on a tenant without P2 (graph-api.md §13.4.6).
const LICENCE_REQUIRED: &str = "AadPremiumLicenseRequired";

/// `privileged_roles = "default"`: graph-api.md §13.4.1, by template id.
pub const DEFAULT_ROLES: [(&str, &str); 12] = [
    (
        "Global Administrator",
        "62e90394-69f5-4237-9190-012177145e10",
    ),
    (
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
    ),
    (
        "Privileged Authentication Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    ),
    (
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
    ),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
    (
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
    ),
    (
        "SharePoint Administrator",
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    ),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    ),
    (
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
    ),
    (
        "Hybrid Identity Administrator",
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
    ),
    (
        "Conditional Access Administrator",
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    ),
    (
        "Authentication Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    ),
];

const DEFINITIONS: &str = "/v1.0/roleManagement/directory/roleDefinitions";
const ASSIGNMENTS: &str = "/v1.0/roleManagement/directory/roleAssignments";
const SCHEDULE_INSTANCES: &str = "/v1.0/roleManagement/directory/roleAssignmentScheduleInstances";
const ELIGIBILITY_INSTANCES: &str =
    "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances";

/// The `privileged_roles` report.
#[derive(Debug)]
pub struct PrivilegedRoles;

impl Report for PrivilegedRoles {
    fn name(&self) -> &'static str {
        "privileged_roles"
    }

    fn path(&self) -> &'static str {
        DEFINITIONS
    }

    fn request_endpoint(&self, request: &Request) -> &'static str {
        let path = request.path.split('?').next().unwrap_or("");
        match path.rsplit('/').next().unwrap_or("") {
            "roleAssignments" => "roleAssignments",
            "roleAssignmentScheduleInstances" => "roleAssignmentScheduleInstances",
            "roleEligibilityScheduleInstances" => "roleEligibilityScheduleInstances",
            "transitiveMembers" => "transitiveMembers",
            _ => "roleDefinitions",
        }
    }

    fn is_directory(&self) -> bool {
        true
    }

    fn permission(&self) -> &'static str {
        "RoleManagement.Read.Directory"
    }

    fn request_permission(&self, request: &Request) -> &'static str {
        match self.request_endpoint(request) {
            // Listing a group's members is a group read, not a role-management one.
            "transitiveMembers" => super::group_membership::REPORT.permission(),
            _ => self.permission(),
        }
    }

    fn families(&self) -> &'static [&'static Family] {
        &[]
    }

    fn requests(&self, _s: &Settings) -> Vec<Request> {
        vec![Request {
            path: format!("{DEFINITIONS}?$select=id,displayName,templateId"),
            paged: true,
        }]
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        Box::new(RolesRefresh {
            entries: s.privileged_roles.clone(),
            steps: vec![Step::Definitions],
            definitions: Vec::new(),
            roles: Vec::new(),
            direct: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            listed_groups: 0,
            refused: Vec::new(),
        })
    }

    fn identity(&self, s: &Settings) -> String {
        format!("roles:{}", s.privileged_roles.join("\u{1f}"))
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        let p: Privileged = restore_tagged(TAG, stored)?;
        Ok(Box::new(PrivilegedData(Arc::new(p))))
    }
}

fn filtered(path: &str, role_id: &str) -> Request {
    Request {
        path: format!(
            "{path}?$filter={}&$expand=principal",
            super::group_membership::percent_encode(&format!("roleDefinitionId eq '{role_id}'"))
        ),
        paged: true,
    }
}

fn unfiltered(path: &str) -> Request {
    Request {
        path: format!("{path}?$expand=principal"),
        paged: true,
    }
}

/// What request number `i` of a refresh is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Definitions,
    /// `roleAssignments` of resolved role `n`.
    Assignments(usize),
    /// `roleAssignmentScheduleInstances`, all roles.
    ScheduleInstances,
    /// `roleEligibilityScheduleInstances`, all roles.
    EligibilityInstances,
    /// The members of group principal `n`.
    Members(usize),
}

/// A role definition as listed.
#[derive(Debug, Clone)]
struct Definition {
    id: String,
    template_id: String,
    display_name: String,
}

/// A role-assignable group holding roles: its bits, and its members once listed.
#[derive(Debug, Default)]
struct GroupPrincipal {
    id: String,
    bits: u64,
    members: Vec<u128>,
}

struct RolesRefresh {
    /// `privileged_roles` as resolved by the config (names or template ids).
    entries: Vec<String>,
    steps: Vec<Step>,
    definitions: Vec<Definition>,
    /// Per entry, its definition.
    roles: Vec<Definition>,
    /// User id ▸ bits held directly.
    direct: HashMap<u128, u64>,
    groups: Vec<GroupPrincipal>,
    group_index: HashMap<String, usize>,
    /// Groups whose members were asked for so far.
    listed_groups: usize,
    /// The PIM lists Graph refused for licence.
    refused: Vec<&'static str>,
}

impl RolesRefresh {
    /// The bits of `assignment` of every entry whose role is `role_id`.
    fn bits(&self, role_id: &str, assignment: Assignment) -> u64 {
        self.roles
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.id.eq_ignore_ascii_case(role_id) || d.template_id.eq_ignore_ascii_case(role_id)
            })
            .fold(0, |bits, (i, _)| bits | assignment.bit(i))
    }

    /// Resolves the entries against the definitions.
    fn resolve(&mut self) -> Result<(), String> {
        for entry in &self.entries {
            let by_id = is_object_id(entry);
            let found: Vec<&Definition> = self
                .definitions
                .iter()
                .filter(|d| {
                    if by_id {
                        d.template_id.eq_ignore_ascii_case(entry)
                            || d.id.eq_ignore_ascii_case(entry)
                    } else {
                        d.display_name.eq_ignore_ascii_case(entry)
                    }
                })
                .collect();
            match found.as_slice() {
                [d] => self.roles.push((*d).clone()),
                [] => {
                    return Err(format!(
                        "privileged_roles: no role definition has the {} `{entry}` (check the \
                         spelling against Entra ▸ Roles and administrators, or name it by template id)",
                        if by_id { "template id" } else { "display name" }
                    ));
                }
                several => {
                    let ids: Vec<&str> = several.iter().map(|d| d.id.as_str()).collect();
                    return Err(format!(
                        "privileged_roles: {} role definitions have the display name `{entry}` (ids {}); \
                         name the one meant by its template id",
                        several.len(),
                        ids.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Refresh for RolesRefresh {
    fn page(&mut self, request: usize, body: &[u8]) -> Result<PageInfo, PageError> {
        match self.steps[request] {
            Step::Definitions => fold_page(body, &mut Definitions(&mut self.definitions)),
            Step::Members(g) => fold_page(body, &mut Users(&mut self.groups[g].members)),
            step => {
                let assignment = match step {
                    Step::EligibilityInstances => Assignment::Eligible,
                    _ => Assignment::Active,
                };
                fold_page(
                    body,
                    &mut Assignments {
                        refresh: self,
                        assignment,
                    },
                )
            }
        }
    }

    fn refused(&mut self, request: usize, status: u16, code: &str) -> bool {
        let endpoint = match self.steps[request] {
            Step::ScheduleInstances => "roleAssignmentScheduleInstances",
            Step::EligibilityInstances => "roleEligibilityScheduleInstances",
            _ => return false,
        };
        let refused = status == 400 && code == LICENCE_REQUIRED;
        if refused {
            self.refused.push(endpoint);
        }
        refused
    }

    fn next_requests(&mut self, request: usize) -> Result<Vec<Request>, String> {
        let mut next = Vec::new();
        if self.steps[request] == Step::Definitions {
            self.resolve()?;
            for (i, d) in self.roles.iter().enumerate() {
                self.steps.push(Step::Assignments(i));
                next.push(filtered(ASSIGNMENTS, &d.id));
            }
            self.steps.push(Step::ScheduleInstances);
            next.push(unfiltered(SCHEDULE_INSTANCES));
            self.steps.push(Step::EligibilityInstances);
            next.push(unfiltered(ELIGIBILITY_INSTANCES));
        }
        // Groups met as principals since the last request: list their members.
        while self.listed_groups < self.groups.len() {
            let g = self.listed_groups;
            self.steps.push(Step::Members(g));
            next.push(members_request(&self.groups[g].id));
            self.listed_groups += 1;
        }
        Ok(next)
    }

    fn finish(self: Box<Self>) -> Finished {
        let mut index = Privileged {
            roles: self.roles.iter().map(|d| d.display_name.clone()).collect(),
            ..Privileged::default()
        };
        for (id, bits) in &self.direct {
            index.grant(*id, *bits);
        }
        for g in &self.groups {
            for id in &g.members {
                index.grant(*id, g.bits);
            }
        }
        let mut warnings = Vec::new();
        if !self.refused.is_empty() {
            let reason = unavailable_reason(&self.refused);
            warnings.push(Warning {
                message: "PIM eligibility is unavailable: entra_privileged_* publish active assignments only",
                detail: format!("reason={reason:?}"),
            });
            index.eligibility_unavailable = Some(reason);
        }
        Finished {
            data: Box::new(PrivilegedData(Arc::new(index))),
            warnings,
        }
    }
}

/// What the operator reads on `/` and in the log when Graph refused PIM.
fn unavailable_reason(refused: &[&str]) -> String {
    format!(
        "eligibility unavailable: Graph refused {} with {LICENCE_REQUIRED} (HTTP 400: the tenant \
         has no Microsoft Entra ID P2 or ID Governance licence, which PIM needs), so no \
         `eligible` series are published and `active` counts roleAssignments only (time-bound \
         and activated assignments are PIM too)",
        refused.join(" and ")
    )
}

/// A `roleDefinitions` row.
#[derive(Deserialize)]
struct DefinitionRow<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "displayName", borrow)]
    display_name: Option<Cow<'a, str>>,
    #[serde(rename = "templateId", borrow)]
    template_id: Option<Cow<'a, str>>,
}

struct Definitions<'a>(&'a mut Vec<Definition>);

impl Fold for Definitions<'_> {
    type Row<'de> = DefinitionRow<'de>;

    fn add(&mut self, row: DefinitionRow<'_>) {
        let Some(id) = row.id else { return };
        self.0.push(Definition {
            template_id: row.template_id.as_deref().unwrap_or(&id).to_owned(),
            display_name: row.display_name.unwrap_or_default().into_owned(),
            id: id.into_owned(),
        });
    }
}

/// The expanded `principal` of an assignment: `@odata.type` says what it is.
#[derive(Deserialize)]
struct PrincipalRow<'a> {
    #[serde(rename = "@odata.type", borrow)]
    odata_type: Option<Cow<'a, str>>,
}

/// A row of `roleAssignments` or of either schedule-instance list (same base fields).
#[derive(Deserialize)]
struct AssignmentRow<'a> {
    #[serde(rename = "principalId", borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(rename = "roleDefinitionId", borrow)]
    role_definition_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    principal: Option<PrincipalRow<'a>>,
}

struct Assignments<'a> {
    refresh: &'a mut RolesRefresh,
    assignment: Assignment,
}

impl Fold for Assignments<'_> {
    type Row<'de> = AssignmentRow<'de>;

    fn add(&mut self, row: AssignmentRow<'_>) {
        let (Some(principal), Some(role)) = (row.principal_id, row.role_definition_id) else {
            return;
        };
        let bits = self.refresh.bits(&role, self.assignment);
        if bits == 0 {
            return;
        }
        let kind = row
            .principal
            .and_then(|p| p.odata_type)
            .map(|t| t.to_ascii_lowercase());
        match kind.as_deref() {
            Some("#microsoft.graph.user") => {
                *self
                    .refresh
                    .direct
                    .entry(object_id(&principal))
                    .or_default() |= bits;
            }
            Some("#microsoft.graph.group") => {
                let r = &mut *self.refresh;
                let key = principal.to_ascii_lowercase();
                let g = *r.group_index.entry(key).or_insert_with(|| {
                    r.groups.push(GroupPrincipal {
                        id: principal.into_owned(),
                        ..GroupPrincipal::default()
                    });
                    r.groups.len() - 1
                });
                r.groups[g].bits |= bits;
            }
            // Service principals hold roles too; they have no MFA to count.
            _ => {}
        }
    }
}

struct Users<'a>(&'a mut Vec<u128>);

impl Fold for Users<'_> {
    type Row<'de> = MemberRow<'de>;

    fn add(&mut self, row: MemberRow<'_>) {
        if let Some(id) = row.user_id() {
            self.0.push(id);
        }
    }
}

/// The index one refresh built, shared with the registration folds.
#[derive(Debug)]
pub struct PrivilegedData(pub Arc<Privileged>);

impl ReportData for PrivilegedData {
    fn encode(&self, _tenant: &str, _out: &mut Families) {}

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, &*self.0)
    }

    fn privileged(&self) -> Option<Arc<Privileged>> {
        Some(self.0.clone())
    }

    fn note(&self) -> Option<String> {
        self.0.eligibility_unavailable.clone()
    }
}

// The joined families, emitted with the registration counts (their fold joins the
// index by user id, after exclusions).
static USERS: Family = Family::gauge(
    "entra_privileged_users",
    "Distinct users of the registration report holding the role (directly or through a role-assignable group), by assignment (active, eligible), exclusions left out.",
);
static WITH_FEATURE: Family = Family::gauge(
    "entra_privileged_users_with_feature",
    "Users holding the role for whom the feature holds.",
);
static BY_STRENGTH: Family = Family::gauge(
    "entra_privileged_users_by_strength",
    "Users holding the role by strongest registered method (none, mfa, passwordless, phishing_resistant).",
);
static USER_INFO: Family = Family::gauge(
    "entra_privileged_user_info",
    "1 per user, role and assignment, with the user's strongest method; opt-in per tenant (list_privileged_users), at most max_listed_admins.",
);

/// The joined families, in exposition order.
pub static FAMILIES: [&Family; 4] = [&USERS, &WITH_FEATURE, &BY_STRENGTH, &USER_INFO];

/// Adds the `entra_privileged_*` series of `coverage`.
pub fn encode(coverage: &PrivilegedCoverage, source: Source, tenant: &str, out: &mut Families) {
    let [users, with_feature, by_strength, info] = FAMILIES.map(|f| out.id(f));
    for c in &coverage.roles {
        let labels = vec![
            ("tenant", tenant),
            ("role", c.role.as_str()),
            ("assignment", c.assignment.label()),
        ];
        out.push(users, labels.clone(), c.users);
        for f in source.features() {
            let mut l = labels.clone();
            l.push(("feature", f.label()));
            out.push(with_feature, l, c.features[*f as usize]);
        }
        for s in Strength::ALL {
            let mut l = labels.clone();
            l.push(("strength", s.label()));
            out.push(by_strength, l, c.strengths[s as usize]);
        }
    }
    for (upn, role, assignment, strength) in coverage.holders.iter().flat_map(|h| &h.listed) {
        let strength = Strength::ALL
            .get(*strength)
            .copied()
            .unwrap_or(Strength::ALL[0]);
        out.push(
            info,
            vec![
                ("tenant", tenant),
                ("user_principal_name", upn.as_str()),
                ("role", role.as_str()),
                ("assignment", assignment.label()),
                ("strength", strength.label()),
            ],
            1u64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
    const SEC: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    const U1: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const U2: &str = "aaaaaaaa-0000-0000-0000-000000000002";
    const U3: &str = "aaaaaaaa-0000-0000-0000-000000000003";
    const G1: &str = "bbbbbbbb-0000-0000-0000-000000000001";

    fn settings(roles: &[&str]) -> Settings {
        Settings {
            privileged_roles: roles.iter().map(|s| s.to_string()).collect(),
            ..Settings::default()
        }
    }

    const DEFS: &[u8] = br#"{"value":[
      {"id":"62e90394-69f5-4237-9190-012177145e10","displayName":"Global Administrator","templateId":"62e90394-69f5-4237-9190-012177145e10"},
      {"id":"194ae4cb-b126-40b2-bd5b-6091b380977d","displayName":"Security Administrator","templateId":"194ae4cb-b126-40b2-bd5b-6091b380977d"},
      {"id":"cccccccc-0000-0000-0000-00000000c001","displayName":"Dup","templateId":"cccccccc-0000-0000-0000-00000000c001"},
      {"id":"cccccccc-0000-0000-0000-00000000c002","displayName":"Dup","templateId":"cccccccc-0000-0000-0000-00000000c002"}]}"#;

    fn user(id: &str, role: &str) -> String {
        format!(
            r##"{{"principalId":"{id}","roleDefinitionId":"{role}","directoryScopeId":"/","principal":{{"@odata.type":"#microsoft.graph.user","id":"{id}"}}}}"##
        )
    }

    #[test]
    fn a_refresh_unions_assignments_expands_groups_and_reads_eligibility() {
        let s = settings(&[GA, "Security Administrator"]);
        let first = REPORT.requests(&s);
        assert_eq!(
            first[0].path,
            "/v1.0/roleManagement/directory/roleDefinitions?$select=id,displayName,templateId"
        );
        let mut r = REPORT.start(&s);
        r.page(0, DEFS).unwrap();
        let next = r.next_requests(0).unwrap();
        let paths: Vec<&str> = next.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!(
                    "{ASSIGNMENTS}?$filter=roleDefinitionId%20eq%20%27{GA}%27&$expand=principal"
                )
                .as_str(),
                &format!(
                    "{ASSIGNMENTS}?$filter=roleDefinitionId%20eq%20%27{SEC}%27&$expand=principal"
                ),
                &format!("{SCHEDULE_INSTANCES}?$expand=principal"),
                &format!("{ELIGIBILITY_INSTANCES}?$expand=principal"),
            ]
        );
        let endpoints: Vec<&str> = next.iter().map(|q| REPORT.request_endpoint(q)).collect();
        assert_eq!(
            endpoints,
            [
                "roleAssignments",
                "roleAssignments",
                "roleAssignmentScheduleInstances",
                "roleEligibilityScheduleInstances"
            ]
        );
        // GA: U1 directly (scoped), the group G1 and a service principal.
        let ga = format!(
            r##"{{"value":[{},{{"principalId":"{G1}","roleDefinitionId":"{GA}","directoryScopeId":"/administrativeUnits/x","principal":{{"@odata.type":"#microsoft.graph.group","id":"{G1}","isAssignableToRole":true}}}},
              {{"principalId":"dddddddd-0000-0000-0000-000000000001","roleDefinitionId":"{GA}","principal":{{"@odata.type":"#microsoft.graph.servicePrincipal"}}}}]}}"##,
            user(U1, GA).replace("\"/\"", "\"/administrativeUnits/au1\"")
        );
        r.page(1, ga.as_bytes()).unwrap();
        let members = r.next_requests(1).unwrap();
        assert_eq!(members, vec![members_request(G1)]);
        assert_eq!(REPORT.request_endpoint(&members[0]), "transitiveMembers");
        assert_eq!(
            REPORT.request_permission(&members[0]),
            "GroupMember.Read.All"
        );
        assert_eq!(
            REPORT.request_permission(&next[0]),
            "RoleManagement.Read.Directory"
        );
        r.page(2, format!(r#"{{"value":[{}]}}"#, user(U2, SEC)).as_bytes())
            .unwrap();
        assert!(r.next_requests(2).unwrap().is_empty());
        // Schedule instances: a time-bound GA for U3 and another role ignored.
        let schedule = format!(
            r#"{{"value":[{},{}]}}"#,
            user(U3, GA),
            user(U3, "ffffffff-0000-0000-0000-000000000000")
        );
        r.page(3, schedule.as_bytes()).unwrap();
        assert!(r.next_requests(3).unwrap().is_empty());
        // Eligibility: U1 for Security (besides GA active), and G1 again.
        let eligible = format!(
            r##"{{"value":[{},{{"principalId":"{G1}","roleDefinitionId":"{SEC}","principal":{{"@odata.type":"#microsoft.graph.group"}}}}]}}"##,
            user(U1, SEC)
        );
        r.page(4, eligible.as_bytes()).unwrap();
        assert!(r.next_requests(4).unwrap().is_empty(), "G1 is listed once");
        // G1's members: U1 (also direct: counted once) and U2; a nested device.
        let page = format!(
            r##"{{"value":[{{"@odata.type":"#microsoft.graph.user","id":"{U1}"}},{{"@odata.type":"#microsoft.graph.user","id":"{U2}"}},{{"@odata.type":"#microsoft.graph.device","id":"{U3}"}}]}}"##
        );
        r.page(5, page.as_bytes()).unwrap();
        let finished = r.finish();
        assert!(finished.warnings.is_empty());
        let p = finished.data.privileged().unwrap();
        assert_eq!(p.roles, ["Global Administrator", "Security Administrator"]);
        let held = |id| p.held.get(&object_id(id)).copied().unwrap_or(0);
        let (ga_a, ga_e, sec_a, sec_e) = (
            Assignment::Active.bit(0),
            Assignment::Eligible.bit(0),
            Assignment::Active.bit(1),
            Assignment::Eligible.bit(1),
        );
        assert_eq!(held(U1), ga_a | sec_e);
        assert_eq!(held(U2), ga_a | sec_a | sec_e);
        assert_eq!(held(U3), ga_a);
        assert_eq!(ga_e, 2);
        assert_eq!(p.held.len(), 3);
        let back = REPORT.restore(&finished.data.store()).unwrap();
        assert_eq!(back.privileged().unwrap(), p);
    }

    #[test]
    fn without_p2_eligibility_is_refused_and_said_so() {
        let mut r = REPORT.start(&settings(&[GA]));
        r.page(0, DEFS).unwrap();
        r.next_requests(0).unwrap();
        r.page(1, format!(r#"{{"value":[{}]}}"#, user(U1, GA)).as_bytes())
            .unwrap();
        assert!(
            !r.refused(1, 400, LICENCE_REQUIRED),
            "roleAssignments is not PIM"
        );
        assert!(!r.refused(2, 403, "Authorization_RequestDenied"));
        assert!(r.refused(2, 400, LICENCE_REQUIRED));
        assert!(r.refused(3, 400, LICENCE_REQUIRED));
        let finished = r.finish();
        assert_eq!(finished.warnings.len(), 1);
        let p = finished.data.privileged().unwrap();
        let reason = p.eligibility_unavailable.clone().unwrap();
        assert!(
            reason.contains("roleEligibilityScheduleInstances")
                && reason.contains("AadPremiumLicenseRequired")
                && reason.contains("P2"),
            "{reason}"
        );
        assert_eq!(finished.data.note(), Some(reason));
        assert_eq!(p.published(), [(0, Assignment::Active)]);
    }

    #[test]
    fn unknown_and_ambiguous_roles_fail_naming_the_key() {
        for (entry, want) in [
            (
                "Global Admin",
                "privileged_roles: no role definition has the display name `Global Admin`",
            ),
            (
                "00000000-0000-0000-0000-000000000000",
                "no role definition has the template id",
            ),
            ("dup", "2 role definitions have the display name `dup`"),
        ] {
            let mut r = REPORT.start(&settings(&[entry]));
            r.page(0, DEFS).unwrap();
            let e = r.next_requests(0).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        // Display names match case-insensitively, ids either way.
        let mut r = REPORT.start(&settings(&["security administrator", &GA.to_uppercase()]));
        r.page(0, DEFS).unwrap();
        assert_eq!(r.next_requests(0).unwrap().len(), 4);
    }
}
