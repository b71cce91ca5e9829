//! `credential_user_registration_details`: beta `/reports/credentialUserRegistrationDetails`
//! (graph-api.md §5.1), the legacy per-user report Microsoft retired on 2024-06-30. It has
//! no user type, admin flag or preferred method, so its users land in the
//! `user_type="unknown", role="unknown"` group with four features.

use serde::Deserialize;
use serde::de::MapAccess;

use super::registration::{FAMILIES, TAG};
use super::row::{ByteKeyedRow, StrList, deserialize_row};
use super::{Finished, Folding, Refresh, Report, ReportData, Request, Settings, restore_tagged};
use crate::aggregate::{RegistrationCounts, Source, UserFacts};
use crate::cloud::Cloud;
use crate::families::Family;
use crate::odata::Fold;

/// The report.
pub static REPORT: CredentialUserRegistrationDetails = CredentialUserRegistrationDetails;

/// beta `credentialUserRegistrationDetails`: the legacy registration source.
#[derive(Debug)]
pub struct CredentialUserRegistrationDetails;

impl Report for CredentialUserRegistrationDetails {
    fn name(&self) -> &'static str {
        "credential_user_registration_details"
    }

    fn path(&self) -> &'static str {
        "/beta/reports/credentialUserRegistrationDetails"
    }

    fn retired(&self) -> Option<super::Retirement> {
        Some(super::Retirement {
            date: "2024-06-30",
            successor: "user_registration_details",
        })
    }

    fn permission(&self) -> &'static str {
        "Reports.Read.All"
    }

    /// A legacy `credential*` API: Global only (graph-api.md §1.1).
    fn offered_in(&self, cloud: Cloud) -> bool {
        cloud == Cloud::Global
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

    fn start(&self, _: &Settings) -> Box<dyn Refresh> {
        Box::new(Folding::new(Folder::default(), |f| Finished::new(f.0)))
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<RegistrationCounts>(TAG, stored)?))
    }
}

/// The fields of one row the aggregation uses, deserialized by hand like
/// [`super::user_registration_details::Row`] (keys as bytes, methods inline).
#[derive(Debug, Default)]
pub struct Row<'a> {
    /// `authMethods`: `registrationAuthMethod` values, counted as sent.
    pub auth_methods: StrList<'a>,
    /// `isRegistered`: SSPR registered.
    pub is_registered: Option<bool>,
    /// `isEnabled`: SSPR enabled.
    pub is_enabled: Option<bool>,
    /// `isCapable`: SSPR capable.
    pub is_capable: Option<bool>,
    /// `isMfaRegistered`: MFA registered.
    pub is_mfa_registered: Option<bool>,
}

impl<'de> Deserialize<'de> for Row<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_row(d)
    }
}

impl<'de> ByteKeyedRow<'de> for Row<'de> {
    const EXPECTING: &'static str = "a credentialUserRegistrationDetails object";

    fn read_field<A: MapAccess<'de>>(&mut self, key: &[u8], map: &mut A) -> Result<bool, A::Error> {
        match key {
            b"authMethods" => self.auth_methods.read(map)?,
            b"isRegistered" => self.is_registered = map.next_value()?,
            b"isEnabled" => self.is_enabled = map.next_value()?,
            b"isCapable" => self.is_capable = map.next_value()?,
            b"isMfaRegistered" => self.is_mfa_registered = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Row<'_> {
    /// The facts the aggregation needs, mapped as design.md says.
    pub fn facts(&self) -> UserFacts<'static> {
        let t = |b: Option<bool>| b == Some(true);
        UserFacts {
            user_type: None,
            is_admin: None,
            features: [
                t(self.is_mfa_registered),
                false,
                t(self.is_registered),
                t(self.is_enabled),
                t(self.is_capable),
                false,
                false,
            ],
            preferred: None,
        }
    }
}

/// Folds rows of this report.
#[derive(Debug)]
pub struct Folder(pub RegistrationCounts);

impl Default for Folder {
    fn default() -> Self {
        Self(RegistrationCounts::new(
            Source::CredentialUserRegistrationDetails,
        ))
    }
}

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    #[inline]
    fn add(&mut self, row: Row<'_>) {
        let methods = row.auth_methods.iter();
        self.0.add_user(&row.facts(), methods);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Feature, Role, UserType};
    use crate::odata::fold_page;

    #[test]
    fn maps_legacy_fields() {
        // graph-api.md §5.1 example, plus a post-sentinel member and @odata.type.
        let page = br##"{"@odata.context":"x","value":[
          {"id":"d3590ed6","userPrincipalName":"abc@contoso.com","userDisplayName":"abc",
           "authMethods":["email","mobilePhone"],"isRegistered":false,"isEnabled":true,
           "isCapable":false,"isMfaRegistered":true},
          {"@odata.type":"#microsoft.graph.credentialUserRegistrationDetails","authMethods":["externalAuthMethod"],
           "isRegistered":true,"isEnabled":true,"isCapable":true,"isMfaRegistered":false}
        ]}"##;
        let mut f = Folder::default();
        fold_page(page, &mut f).unwrap();
        let g = &f.0.groups[&(UserType::Unknown, Role::Unknown)];
        assert_eq!(g.users, 2);
        assert_eq!(g.feature(Feature::MfaRegistered), 1);
        assert_eq!(g.feature(Feature::SsprRegistered), 1);
        assert_eq!(g.feature(Feature::SsprEnabled), 2);
        assert_eq!(g.feature(Feature::SsprCapable), 1);
        assert_eq!(g.methods["externalAuthMethod"], 1);
        assert_eq!(g.method_counts, [0, 1, 1, 0, 0, 0]);
        assert!(g.preferred.is_empty());
    }
}
