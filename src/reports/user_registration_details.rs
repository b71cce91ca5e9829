//! `user_registration_details`: v1.0 `/reports/authenticationMethods/userRegistrationDetails`
//! (graph-api.md §2), one row per enabled user, folded into [`RegistrationCounts`].

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::MapAccess;

use super::registration::{FAMILIES, TAG, join, join_identity, privileged_join};
use super::restore_tagged;
use super::row::{ByteKeyedRow, CowStr, RawStr, StrList, deserialize_row};
use super::strength::strongest;
use super::user_credential_usage_details::parse_date_time;
use super::{Finished, Folding, Refresh, Report, ReportData, Request, Settings, Warning};
use crate::aggregate::{AdminList, RegistrationCounts, Source, UserFacts};
use crate::families::Family;
use crate::membership::Join;
use crate::odata::Fold;
use crate::privileged::PrivilegedJoin;

/// The report.
pub static REPORT: UserRegistrationDetails = UserRegistrationDetails;

/// v1.0 `userRegistrationDetails`: the default registration source.
#[derive(Debug)]
pub struct UserRegistrationDetails;

impl Report for UserRegistrationDetails {
    fn name(&self) -> &'static str {
        "user_registration_details"
    }

    fn path(&self) -> &'static str {
        "/v1.0/reports/authenticationMethods/userRegistrationDetails"
    }

    fn permission(&self) -> &'static str {
        "AuditLog.Read.All"
    }

    fn is_registration_source(&self) -> bool {
        true
    }

    fn families(&self) -> &'static [&'static Family] {
        FAMILIES
    }

    fn requests(&self, s: &Settings) -> Vec<Request> {
        vec![Request {
            path: format!("{}?$top={}", self.path(), s.page_size),
            paged: true,
        }]
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let mut fold = if s.admins_without_mfa {
            Folder::listing_admins_without_mfa(s.max_listed_admins as usize)
        } else {
            Folder::default()
        };
        fold.1 = join(s);
        fold.2 = privileged_join(s);
        Box::new(Folding::new(fold, Folder::finish))
    }

    fn identity(&self, s: &Settings) -> String {
        let admins = if s.admins_without_mfa {
            format!("admins:{}", s.max_listed_admins)
        } else {
            String::new()
        };
        admins + &join_identity(s)
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<RegistrationCounts>(TAG, stored)?))
    }
}

/// The fields of one row the aggregation uses; everything else is skipped unparsed.
///
/// Every field is optional: Graph omits or nulls properties in practice (§1.4), and a
/// missing boolean is read as "does not hold". Deserialized by hand (keys matched as
/// bytes, strings borrowed, methods held inline) because this is the hot loop of a
/// refresh: see [`super::page::next_key`] and BENCHMARKS.md.
#[derive(Debug, Default)]
pub struct Row<'a> {
    /// `id`: the user's object id, the key of the group-membership join.
    pub id: Option<CowStr<'a>>,
    /// `userPrincipalName`, used only for the opt-in list of admins without MFA, so
    /// kept as raw bytes: validated only for the few rows that are listed.
    pub user_principal_name: Option<RawStr<'a>>,
    /// `userType`: `member`, `guest`, `unknownFutureValue` or null.
    pub user_type: Option<Cow<'a, str>>,
    /// `isAdmin`; null for some users.
    pub is_admin: Option<bool>,
    /// `isMfaRegistered`
    pub mfa_registered: Option<bool>,
    /// `isMfaCapable`
    pub mfa_capable: Option<bool>,
    /// `isSsprRegistered`
    pub sspr_registered: Option<bool>,
    /// `isSsprEnabled`
    pub sspr_enabled: Option<bool>,
    /// `isSsprCapable`
    pub sspr_capable: Option<bool>,
    /// `isPasswordlessCapable`
    pub passwordless_capable: Option<bool>,
    /// `isSystemPreferredAuthenticationMethodEnabled` (nullable).
    pub system_preferred_enabled: Option<bool>,
    /// `methodsRegistered`: an open set of strings (§2.4), counted as sent.
    pub methods_registered: StrList<'a>,
    /// `userPreferredMethodForSecondaryAuthentication`: `""` in practice for users
    /// without one (§1.4).
    pub preferred_method: Option<Cow<'a, str>>,
    /// `lastUpdatedDateTime`: when Microsoft last refreshed the row (§2.1), for
    /// `entra_registration_data_updated_timestamp_seconds`.
    pub last_updated: Option<CowStr<'a>>,
}

impl<'de> Deserialize<'de> for Row<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_row(d)
    }
}

impl<'de> ByteKeyedRow<'de> for Row<'de> {
    const EXPECTING: &'static str = "a userRegistrationDetails object";

    fn read_field<A: MapAccess<'de>>(&mut self, key: &[u8], map: &mut A) -> Result<bool, A::Error> {
        match key {
            b"id" => self.id = map.next_value()?,
            b"userPrincipalName" => self.user_principal_name = map.next_value()?,
            b"userType" => self.user_type = map.next_value::<Option<CowStr>>()?.map(|s| s.0),
            b"isAdmin" => self.is_admin = map.next_value()?,
            b"isMfaRegistered" => self.mfa_registered = map.next_value()?,
            b"isMfaCapable" => self.mfa_capable = map.next_value()?,
            b"isSsprRegistered" => self.sspr_registered = map.next_value()?,
            b"isSsprEnabled" => self.sspr_enabled = map.next_value()?,
            b"isSsprCapable" => self.sspr_capable = map.next_value()?,
            b"isPasswordlessCapable" => self.passwordless_capable = map.next_value()?,
            b"isSystemPreferredAuthenticationMethodEnabled" => {
                self.system_preferred_enabled = map.next_value()?
            }
            b"methodsRegistered" => self.methods_registered.read(map)?,
            b"userPreferredMethodForSecondaryAuthentication" => {
                self.preferred_method = map.next_value::<Option<CowStr>>()?.map(|s| s.0)
            }
            b"lastUpdatedDateTime" => self.last_updated = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Row<'_> {
    /// The facts the aggregation needs.
    pub fn facts(&self) -> UserFacts<'_> {
        let t = |b: Option<bool>| b == Some(true);
        UserFacts {
            user_type: self.user_type.as_deref(),
            is_admin: self.is_admin,
            features: [
                t(self.mfa_registered),
                t(self.mfa_capable),
                t(self.sspr_registered),
                t(self.sspr_enabled),
                t(self.sspr_capable),
                t(self.passwordless_capable),
                t(self.system_preferred_enabled),
            ],
            preferred: self.preferred_method.as_deref(),
        }
    }
}

/// Folds rows of this report.
#[derive(Debug)]
pub struct Folder(
    pub RegistrationCounts,
    pub Option<Join>,
    /// Issue 14: the privileged-roles join.
    pub Option<PrivilegedJoin>,
);

impl Default for Folder {
    fn default() -> Self {
        let mut counts = RegistrationCounts::new(Source::UserRegistrationDetails);
        counts.strength.counted = true;
        Self(counts, None, None)
    }
}

impl Folder {
    /// A folder that also lists admins who are not MFA capable (`isAdmin` true and
    /// `isMfaCapable` not true), at most `cap` of them.
    pub fn listing_admins_without_mfa(cap: usize) -> Self {
        let mut f = Self::default();
        f.0.admins_without_mfa = Some(AdminList::new(cap));
        f
    }
}

impl Folder {
    /// The counts, with a warning when the admin list was cut.
    fn finish(mut self) -> Finished {
        self.0.coverage = self.1.map(Join::finish);
        self.0.privileged = self.2.map(PrivilegedJoin::finish);
        let mut warnings = match &self.0.admins_without_mfa {
            Some(list) if list.is_cut() => vec![Warning {
                message: "more admins without MFA than max_listed_admins: entra_admin_without_mfa_info lists only the first by user principal name",
                detail: format!(
                    "listed={} total={} max_listed_admins={}",
                    list.listed.len(),
                    list.total,
                    list.cap
                ),
            }],
            _ => Vec::new(),
        };
        if let Some(list) = self.0.privileged.as_ref().and_then(|p| p.holders.as_ref())
            && list.is_cut()
        {
            warnings.push(Warning {
                message: "more privileged role holders than max_listed_admins: entra_privileged_user_info lists only the first by user principal name, role and assignment",
                detail: format!(
                    "listed={} total={} max_listed_admins={}",
                    list.listed.len(),
                    list.total,
                    list.cap
                ),
            });
        }
        Finished {
            data: Box::new(self.0),
            warnings,
        }
    }
}

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    #[inline]
    fn add(&mut self, row: Row<'_>) {
        let id = row.id.as_ref().map(|id| id.0.as_ref());
        // Strength and freshness are over all rows, excluded users' too (design.md, "Readings that tests
        // rely on"); unclassified strings are copied only the first time one is seen.
        let facts = &mut self.0.strength;
        if let Some(at) = row
            .last_updated
            .as_ref()
            .and_then(|t| parse_date_time(&t.0))
        {
            facts.updated(at);
        }
        let unclassified = &mut facts.unclassified;
        let strength = strongest(row.methods_registered.iter(), |m| unclassified.insert(m));
        if let Some(join) = &mut self.1 {
            let upn = row.user_principal_name.as_ref().map(RawStr::to_str);
            if join.exclusion(id, upn.as_deref()).is_some() {
                return;
            }
        }
        if let Some(admins) = &mut self.0.admins_without_mfa
            && row.is_admin == Some(true)
            && row.mfa_capable != Some(true)
        {
            let upn = row.user_principal_name.as_ref().map(RawStr::to_str);
            admins.add(upn.as_deref());
        }
        let methods = row.methods_registered.iter();
        let user = row.facts();
        let group = self.0.add_user(&user, methods);
        group.strength[strength as usize] += 1;
        if let Some(join) = &mut self.1
            && join.has_groups()
        {
            join.count(id, &user.features, strength as usize);
        }
        if let Some(join) = &mut self.2 {
            let upn = || {
                let upn = row.user_principal_name.as_ref()?;
                Some(upn.to_str().into_owned())
            };
            join.count(id, upn, &user.features, strength as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Feature, Role, UserType};
    use crate::odata::fold_page;

    const FIXTURE: &str =
        include_str!("../../tests/fixtures/user-registration-details-live-4.json");

    #[test]
    fn real_world_page() {
        let mut f = Folder::default();
        let info = fold_page(FIXTURE.as_bytes(), &mut f).unwrap();
        assert_eq!(info.rows, 4);
        assert_eq!(info.next_link, None);
        let c = &f.0;
        assert_eq!(c.total_users(), 4);
        let member_user = &c.groups[&(UserType::Member, Role::User)];
        let guest_admin = &c.groups[&(UserType::Guest, Role::Admin)];
        let member_admin = &c.groups[&(UserType::Member, Role::Admin)];
        assert_eq!(
            (member_user.users, guest_admin.users, member_admin.users),
            (1, 1, 2)
        );
        assert_eq!(member_admin.feature(Feature::PasswordlessCapable), 2);
        assert_eq!(member_admin.feature(Feature::MfaCapable), 2);
        assert_eq!(member_admin.methods["passKeyDeviceBound"], 2);
        assert_eq!(member_admin.methods["macOsSecureEnclaveKey"], 1);
        // 9 and 6 distinct methods
        assert_eq!(member_admin.method_counts, [0, 0, 0, 0, 0, 2]);
        assert_eq!(member_user.method_counts, [0, 0, 0, 1, 0, 0]);
        assert_eq!(guest_admin.preferred["push"], 1);
        // Strength, indexed none, mfa, passwordless, phishing_resistant.
        assert_eq!(member_user.strength, [0, 1, 0, 0]);
        assert_eq!(guest_admin.strength, [0, 1, 0, 0]);
        assert_eq!(member_admin.strength, [0, 0, 0, 2]);
        assert!(c.strength.counted && c.strength.unclassified.is_empty());
        // The newest of the four: 2026-07-17T12:33:37.9223339Z.
        let newest = c.strength.data_updated.unwrap();
        assert_eq!(
            (newest.as_secs(), newest.subsec_nanos()),
            (1_784_291_617, 922_333_900)
        );
    }

    #[test]
    fn strength_unclassified_and_freshness_over_all_rows() {
        let page = br##"{"value":[
          {"userType":"member","isAdmin":false,"methodsRegistered":["email","temporaryAccessPass"],
           "lastUpdatedDateTime":"2026-01-01T00:00:00Z"},
          {"userType":"member","isAdmin":false,"methodsRegistered":["SMS","quantumKey"],
           "lastUpdatedDateTime":"2026-01-02T00:00:00.5Z"},
          {"userType":"member","isAdmin":false,"methodsRegistered":["microsoftAuthenticatorPasswordless","mobilePhone"],
           "lastUpdatedDateTime":"2026-01-02T00:00:00+00:00"},
          {"userType":"guest","isAdmin":true,"methodsRegistered":["passKeySynced","quantumKey","externalAuthMethod"],
           "lastUpdatedDateTime":"not a time"},
          {"userType":"guest","isAdmin":true,"methodsRegistered":["passKeyDevice\u0042ound"],"lastUpdatedDateTime":null},
          {"userType":"guest","isAdmin":true,"methodsRegistered":["x"]},
          {"userType":"guest","isAdmin":true}
        ]}"##;
        let mut f = Folder::default();
        fold_page(page, &mut f).unwrap();
        let c = &f.0;
        assert_eq!(
            c.groups[&(UserType::Member, Role::User)].strength,
            [1, 1, 1, 0]
        );
        assert_eq!(
            c.groups[&(UserType::Guest, Role::Admin)].strength,
            [2, 0, 0, 2]
        );
        assert_eq!(
            c.strength.unclassified.iter().collect::<Vec<_>>(),
            ["externalAuthMethod", "quantumKey", "x"]
        );
        // 2026-01-02T00:00:00.5Z: newer than the same second without a fraction.
        assert_eq!(
            c.strength.data_updated,
            Some(std::time::Duration::new(1_767_312_000, 500_000_000))
        );

        let mut f = Folder::default();
        fold_page(
            br#"{"value":[{"userType":"member"},{"lastUpdatedDateTime":"?"}]}"#,
            &mut f,
        )
        .unwrap();
        assert_eq!(
            f.0.strength.data_updated, None,
            "no readable time, no freshness"
        );
        let mut f = Folder::default();
        fold_page(br#"{"value":[]}"#, &mut f).unwrap();
        assert_eq!(f.0.strength.data_updated, None);
    }

    #[test]
    fn strength_is_stored_and_old_snapshots_still_restore() {
        let page = br#"{"value":[{"userType":"member","isAdmin":false,"methodsRegistered":["fido2","newThing"],
          "lastUpdatedDateTime":"2026-01-01T00:00:00.25Z"}]}"#;
        let mut f = Folder::default();
        fold_page(page, &mut f).unwrap();
        let stored = f.0.store();
        let back = REPORT.restore(&stored).unwrap();
        assert_eq!(back.store(), stored);
        assert_eq!(
            restore_tagged::<RegistrationCounts>(TAG, &stored).unwrap(),
            f.0
        );

        // A snapshot written before strength existed: no strength fields at all.
        let mut old = stored.clone();
        let inner = old.get_mut(TAG).unwrap().as_object_mut().unwrap();
        inner.remove("strength");
        for pair in inner["groups"].as_array_mut().unwrap() {
            pair[1].as_object_mut().unwrap().remove("strength");
        }
        let restored = restore_tagged::<RegistrationCounts>(TAG, &old).unwrap();
        assert!(
            !restored.strength.counted,
            "no strength series from old data"
        );
        assert_eq!(restored.strength.data_updated, None);
        assert!(restored.strength.unclassified.is_empty());
        assert_eq!(restored.groups, {
            let mut g = f.0.groups.clone();
            g.values_mut().for_each(|g| g.strength = [0; 4]);
            g
        });
    }

    #[test]
    fn doc_quirks() {
        // graph-api.md §2.6: "" preferred method, empty methods; plus nulls, missing
        // fields, escapes and unknown properties.
        let page = br##"{"value":[
          {"userType":"guest","isAdmin":false,"isMfaCapable":false,"methodsRegistered":[],
           "userPreferredMethodForSecondaryAuthentication":"","@odata.type":"#x","extra":{"a":[1]}},
          {"userType":null,"isAdmin":null,"isMfaCapable":true,"methodsRegistered":["em\u0061il","mobilePhone"],
           "userPreferredMethodForSecondaryAuthentication":null,"isSystemPreferredAuthenticationMethodEnabled":null},
          {"userType":"member","isMfaRegistered":true}
        ]}"##;
        let mut f = Folder::default();
        fold_page(page, &mut f).unwrap();
        let c = &f.0;
        let guest = &c.groups[&(UserType::Guest, Role::User)];
        assert_eq!(guest.preferred["none"], 1);
        assert_eq!(guest.method_counts[0], 1);
        let unknown = &c.groups[&(UserType::Unknown, Role::Unknown)];
        assert_eq!(unknown.methods["email"], 1, "escaped strings are decoded");
        assert_eq!(unknown.feature(Feature::MfaCapable), 1);
        assert_eq!(unknown.feature(Feature::SystemPreferredMfaEnabled), 0);
        let member = &c.groups[&(UserType::Member, Role::Unknown)];
        assert_eq!(member.feature(Feature::MfaRegistered), 1);
        assert_eq!(member.preferred["none"], 1);
    }

    #[test]
    fn lists_admins_without_mfa_only_when_asked() {
        let page = br##"{"value":[
          {"userPrincipalName":"b@x","isAdmin":true,"isMfaCapable":false},
          {"userPrincipalName":"a@x","isAdmin":true},
          {"userPrincipalName":"c@x","isAdmin":true,"isMfaCapable":true},
          {"userPrincipalName":"d@x","isAdmin":false,"isMfaCapable":false},
          {"userPrincipalName":"e@x","isAdmin":null,"isMfaCapable":false}
        ]}"##;
        let mut f = Folder::listing_admins_without_mfa(10);
        fold_page(page, &mut f).unwrap();
        let l = f.0.admins_without_mfa.as_ref().unwrap();
        assert_eq!(l.listed.iter().collect::<Vec<_>>(), ["a@x", "b@x"]);
        assert_eq!(l.total, 2);
        let mut f = Folder::default();
        fold_page(page, &mut f).unwrap();
        assert!(f.0.admins_without_mfa.is_none());
    }

    #[test]
    fn wrong_types_fail_the_page() {
        let mut f = Folder::default();
        assert!(fold_page(br#"{"value":[{"isMfaCapable":"true"}]}"#, &mut f).is_err());
        assert!(fold_page(br#"{"value":[{"methodsRegistered":"email"}]}"#, &mut f).is_err());
    }
}
