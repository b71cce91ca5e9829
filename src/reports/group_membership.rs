//! `group_membership`: the transitive user members of the configured `groups` and
//! `exclude_groups` (graph-api.md §13.2–13.3), folded into a
//! [`Membership`] index that the registration fold joins by user id.
//!
//! A group named by object id is listed directly; one named by display name is first
//! resolved with `$filter=displayName eq '…'`, which must find exactly one group. Only
//! `#microsoft.graph.user` members count (no OData cast, so no `ConsistencyLevel`
//! header, §13.3.3); a user reached through several nested groups, or through a cycle,
//! counts once (the index is keyed by id). The report has no families of its own: its
//! data is the index, and its `entra_exporter_report_*` series say whether it is fresh.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use super::{
    Finished, Refresh, Report, ReportData, Request, Settings, restore_tagged, store_tagged,
};
use crate::families::{Families, Family};
use crate::membership::{Membership, MembershipBuilder, is_object_id, object_id};
use crate::odata::{Fold, PageError, PageInfo, fold_page};

/// The report.
pub static REPORT: GroupMembership = GroupMembership;

/// The snapshot-file tag of membership data.
const TAG: &str = "Membership";

/// `$top` of member lists: Graph's maximum (the page itself states none; §13.3.1).
const MEMBERS_TOP: u32 = 999;

/// The `group_membership` report.
#[derive(Debug)]
pub struct GroupMembership;

impl Report for GroupMembership {
    fn name(&self) -> &'static str {
        "group_membership"
    }

    fn path(&self) -> &'static str {
        "/v1.0/groups"
    }

    fn request_endpoint(&self, request: &Request) -> &'static str {
        if request.path.contains("/transitiveMembers") {
            "transitiveMembers"
        } else {
            "groups"
        }
    }

    fn is_directory(&self) -> bool {
        true
    }

    fn permission(&self) -> &'static str {
        "GroupMember.Read.All"
    }

    fn families(&self) -> &'static [&'static Family] {
        &[]
    }

    fn requests(&self, s: &Settings) -> Vec<Request> {
        entries(s).iter().map(Entry::first_request).collect()
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let entries = entries(s);
        let steps = (0..entries.len()).map(Step::First).collect();
        Box::new(MembershipRefresh {
            membership: MembershipBuilder::new(s.groups.clone()),
            entries,
            steps,
            candidates: Vec::new(),
        })
    }

    fn identity(&self, s: &Settings) -> String {
        format!(
            "groups:{}|exclude:{}",
            s.groups.join("\u{1f}"),
            s.exclude_groups.join("\u{1f}")
        )
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        let m: Membership = restore_tagged(TAG, stored)?;
        Ok(Box::new(MembershipData(Arc::new(m))))
    }
}

/// Where a configured group's members go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Entry number `n` of `groups`.
    Group(usize),
    /// An entry of `exclude_groups`.
    Excluded,
}

/// One configured group.
#[derive(Debug, Clone)]
struct Entry {
    /// The config key it came from.
    key: &'static str,
    /// As written: an object id or a display name.
    value: String,
    slot: Slot,
}

impl Entry {
    /// By id: the members at once; by name: the name's resolution first.
    fn first_request(&self) -> Request {
        if is_object_id(&self.value) {
            members_request(&self.value)
        } else {
            Request {
                path: format!(
                    "/v1.0/groups?$filter={}&$select=id,displayName",
                    percent_encode(&format!(
                        "displayName eq '{}'",
                        self.value.replace('\'', "''")
                    ))
                ),
                paged: true,
            }
        }
    }
}

/// `groups` then `exclude_groups`.
fn entries(s: &Settings) -> Vec<Entry> {
    let groups = s.groups.iter().enumerate().map(|(i, g)| Entry {
        key: "groups",
        value: g.clone(),
        slot: Slot::Group(i),
    });
    let excluded = s.exclude_groups.iter().map(|g| Entry {
        key: "exclude_groups",
        value: g.clone(),
        slot: Slot::Excluded,
    });
    groups.chain(excluded).collect()
}

/// The transitive members of group `id`, a page of [`MEMBERS_TOP`] at a time (also the
/// walk of `privileged_roles` for role-assignable group principals).
pub(crate) fn members_request(id: &str) -> Request {
    Request {
        path: format!("/v1.0/groups/{id}/transitiveMembers?$select=id&$top={MEMBERS_TOP}"),
        paged: true,
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, after the
/// quotes are doubled (graph-api.md §13.2.2: `&`, `#`, `+`, `%` would corrupt the query).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What request number `i` of a refresh is.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Entry `n`'s first request (members by id, or its name's resolution).
    First(usize),
    /// Entry `n`'s members, once its name resolved.
    Members(usize),
}

struct MembershipRefresh {
    membership: MembershipBuilder,
    entries: Vec<Entry>,
    steps: Vec<Step>,
    /// The `(id, displayName)` rows of the resolution running now.
    candidates: Vec<(String, String)>,
}

impl MembershipRefresh {
    /// Whether request `step` lists members (else it resolves a name).
    fn members_of(&self, step: Step) -> Option<Slot> {
        match step {
            Step::Members(n) => Some(self.entries[n].slot),
            Step::First(n) if is_object_id(&self.entries[n].value) => Some(self.entries[n].slot),
            Step::First(_) => None,
        }
    }
}

impl Refresh for MembershipRefresh {
    fn page(&mut self, request: usize, body: &[u8]) -> Result<PageInfo, PageError> {
        let step = self.steps[request];
        match self.members_of(step) {
            Some(slot) => fold_page(
                body,
                &mut Members {
                    membership: &mut self.membership,
                    slot,
                },
            ),
            None => fold_page(body, &mut Candidates(&mut self.candidates)),
        }
    }

    fn next_requests(&mut self, request: usize) -> Result<Vec<Request>, String> {
        let Step::First(n) = self.steps[request] else {
            return Ok(Vec::new());
        };
        if self.members_of(Step::First(n)).is_some() {
            return Ok(Vec::new());
        }
        let entry = &self.entries[n];
        let candidates = std::mem::take(&mut self.candidates);
        match candidates.as_slice() {
            [(id, _)] => {
                self.steps.push(Step::Members(n));
                Ok(vec![members_request(id)])
            }
            [] => Err(format!(
                "{}: no group has the display name `{}` (check the spelling, or name it by object id)",
                entry.key, entry.value
            )),
            several => {
                let ids: Vec<&str> = several.iter().map(|(id, _)| id.as_str()).collect();
                Err(format!(
                    "{}: {} groups have the display name `{}` (ids {}); name the one meant by its object id",
                    entry.key,
                    several.len(),
                    entry.value,
                    ids.join(", ")
                ))
            }
        }
    }

    fn finish(self: Box<Self>) -> Finished {
        Finished::new(MembershipData(Arc::new(self.membership.build())))
    }
}

/// A `groups?$filter=displayName eq …` row.
#[derive(Deserialize)]
struct GroupRow<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "displayName", borrow)]
    display_name: Option<Cow<'a, str>>,
}

struct Candidates<'a>(&'a mut Vec<(String, String)>);

impl Fold for Candidates<'_> {
    type Row<'de> = GroupRow<'de>;

    fn add(&mut self, row: GroupRow<'_>) {
        if let Some(id) = row.id {
            let name = row.display_name.unwrap_or_default();
            self.0.push((id.into_owned(), name.into_owned()));
        }
    }
}

/// A `transitiveMembers?$select=id` row: `@odata.type` says what the member is.
#[derive(Deserialize)]
pub(crate) struct MemberRow<'a> {
    #[serde(rename = "@odata.type", borrow)]
    odata_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

impl MemberRow<'_> {
    /// The member's id when it is a user. Nested groups are listed beside their
    /// members (§13.3.2); devices, service principals and contacts never count.
    pub(crate) fn user_id(&self) -> Option<u128> {
        let is_user = self
            .odata_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("#microsoft.graph.user"));
        self.id.as_deref().filter(|_| is_user).map(object_id)
    }
}

struct Members<'a> {
    membership: &'a mut MembershipBuilder,
    slot: Slot,
}

impl Fold for Members<'_> {
    type Row<'de> = MemberRow<'de>;

    fn add(&mut self, row: MemberRow<'_>) {
        let Some(id) = row.user_id() else {
            return;
        };
        match self.slot {
            Slot::Group(g) => self.membership.add_member(g, id),
            Slot::Excluded => self.membership.add_excluded(id),
        }
    }
}

/// The index one refresh built, shared with the registration folds.
#[derive(Debug)]
pub struct MembershipData(pub Arc<Membership>);

impl ReportData for MembershipData {
    fn encode(&self, _tenant: &str, _out: &mut Families) {}

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, &*self.0)
    }

    fn membership(&self) -> Option<Arc<Membership>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(groups: &[&str], exclude: &[&str]) -> Settings {
        Settings {
            page_size: 999,
            usage_period: "D30".into(),
            summary_user_types: vec![],
            summary_user_roles: vec![],
            admins_without_mfa: false,
            max_listed_admins: 100,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            exclude_groups: exclude.iter().map(|s| s.to_string()).collect(),
            exclude_users: vec![],
            ..Settings::default()
        }
    }

    const ID: &str = "4a1f6c2e-0b7d-4e59-9c3a-2f8e1d5b7a90";

    #[test]
    fn names_are_resolved_with_quotes_doubled_and_encoded() {
        let s = settings(&["O'Brien & Co admins", ID], &["Break glass"]);
        let r = REPORT.requests(&s);
        assert_eq!(
            r[0].path,
            "/v1.0/groups?$filter=displayName%20eq%20%27O%27%27Brien%20%26%20Co%20admins%27&$select=id,displayName"
        );
        assert_eq!(
            r[1].path,
            format!("/v1.0/groups/{ID}/transitiveMembers?$select=id&$top=999")
        );
        assert_eq!(REPORT.request_endpoint(&r[0]), "groups");
        assert_eq!(REPORT.request_endpoint(&r[1]), "transitiveMembers");
        assert!(r[2].path.contains("Break%20glass"));
        assert!(r.iter().all(|r| r.paged));
    }

    #[test]
    fn a_refresh_resolves_then_lists_only_users_once() {
        let s = settings(&["Finance", ID], &["Break glass"]);
        let mut r = REPORT.start(&s);
        // Request 0: resolve Finance.
        let page =
            br#"{"value":[{"id":"11111111-0000-0000-0000-000000000001","displayName":"Finance"}]}"#;
        r.page(0, page).unwrap();
        // Request 1: the id group's members, over two pages, a cycle repeating a user.
        let members = br##"{"@odata.nextLink":"x","value":[
          {"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-0000-0000-000000000001"},
          {"@odata.type":"#microsoft.graph.group","id":"aaaaaaaa-0000-0000-0000-0000000000ff"},
          {"@odata.type":"#microsoft.graph.device","id":"aaaaaaaa-0000-0000-0000-0000000000fe"},
          {"@odata.type":"#microsoft.graph.servicePrincipal","id":"aaaaaaaa-0000-0000-0000-0000000000fd"},
          {"@odata.type":"#microsoft.graph.orgContact","id":"aaaaaaaa-0000-0000-0000-0000000000fc"}]}"##;
        r.page(1, members).unwrap();
        r.page(1, br##"{"value":[{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-0000-0000-000000000001"},{"id":"aaaaaaaa-0000-0000-0000-000000000009"}]}"##).unwrap();
        assert_eq!(r.next_requests(1).unwrap(), vec![]);
        let next = r.next_requests(0).unwrap();
        assert_eq!(
            next[0].path,
            "/v1.0/groups/11111111-0000-0000-0000-000000000001/transitiveMembers?$select=id&$top=999"
        );
        // Request 2: resolve Break glass; 3: Finance's members; 4: Break glass's.
        r.page(
            2,
            br#"{"value":[{"id":"22222222-0000-0000-0000-000000000002"}]}"#,
        )
        .unwrap();
        r.page(3, br##"{"value":[{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-0000-0000-000000000002"},{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-0000-0000-000000000001"}]}"##).unwrap();
        assert_eq!(r.next_requests(3).unwrap(), vec![]);
        let next = r.next_requests(2).unwrap();
        assert!(next[0].path.contains("22222222"));
        r.page(4, br##"{"value":[{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-0000-0000-000000000002"}]}"##).unwrap();
        let data = r.finish().data;
        let m = data.membership().unwrap();
        assert_eq!(m.groups, vec!["Finance".to_owned(), ID.to_owned()]);
        // Finance: 2 and 1; the id group: 1. User 2 is excluded.
        assert_eq!(m.member_of.len(), 2);
        assert_eq!(m.excluded.len(), 1);
        assert_eq!(m.members(), vec![1, 1]);
        let back = REPORT.restore(&data.store()).unwrap();
        assert_eq!(back.membership().unwrap(), m);
    }

    #[test]
    fn a_name_must_match_exactly_one_group() {
        let s = settings(&["Finance"], &["Dup"]);
        let mut r = REPORT.start(&s);
        r.page(0, br#"{"value":[]}"#).unwrap();
        let e = r.next_requests(0).unwrap_err();
        assert!(
            e.starts_with("groups: no group has the display name `Finance`"),
            "{e}"
        );
        r.page(1, br#"{"value":[{"id":"a1"},{"id":"b2"}]}"#)
            .unwrap();
        let e = r.next_requests(1).unwrap_err();
        assert!(
            e.contains("exclude_groups: 2 groups") && e.contains("ids a1, b2"),
            "{e}"
        );
    }
}
