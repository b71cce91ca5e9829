//! Writing users as report rows: v1.0 and beta `userRegistrationDetails`, and the legacy
//! beta `credentialUserRegistrationDetails`, with the wire quirks of graph-api.md §1.4
//! and §11.9 (varied field order, missing and `null` values, `""` enums, extra and
//! unknown properties, escaped strings) and evolvable-enum masking (§1.5).

use super::SimReport;
use super::dates::odata_datetime;
use super::json::{push_key, push_str, push_str_escaping_one};
use super::tenant::{
    EnumValue, POST_SENTINEL_LEGACY, POST_SENTINEL_PREFERRED, Tenant, Tri, User, UserType,
};

/// A property of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prop {
    Id,
    Upn,
    DisplayName,
    UserType,
    IsAdmin,
    SsprRegistered,
    SsprEnabled,
    SsprCapable,
    MfaRegistered,
    MfaCapable,
    PasswordlessCapable,
    LastUpdated,
    Methods,
    SystemPreferredEnabled,
    SystemPreferred,
    Preferred,
    DefaultMfa,
    AuthMethods,
    IsRegistered,
    IsEnabled,
    IsCapable,
    IsMfaRegistered,
}

impl Prop {
    /// The JSON property name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Prop::Id => "id",
            Prop::Upn => "userPrincipalName",
            Prop::DisplayName => "userDisplayName",
            Prop::UserType => "userType",
            Prop::IsAdmin => "isAdmin",
            Prop::SsprRegistered => "isSsprRegistered",
            Prop::SsprEnabled => "isSsprEnabled",
            Prop::SsprCapable => "isSsprCapable",
            Prop::MfaRegistered => "isMfaRegistered",
            Prop::MfaCapable => "isMfaCapable",
            Prop::PasswordlessCapable => "isPasswordlessCapable",
            Prop::LastUpdated => "lastUpdatedDateTime",
            Prop::Methods => "methodsRegistered",
            Prop::SystemPreferredEnabled => "isSystemPreferredAuthenticationMethodEnabled",
            Prop::SystemPreferred => "systemPreferredAuthenticationMethods",
            Prop::Preferred => "userPreferredMethodForSecondaryAuthentication",
            Prop::DefaultMfa => "defaultMfaMethod",
            Prop::AuthMethods => "authMethods",
            Prop::IsRegistered => "isRegistered",
            Prop::IsEnabled => "isEnabled",
            Prop::IsCapable => "isCapable",
            Prop::IsMfaRegistered => "isMfaRegistered",
        }
    }
}

/// Which entity shape a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// v1.0 `userRegistrationDetails`.
    V1,
    /// beta `userRegistrationDetails` (adds `defaultMfaMethod`).
    Beta,
    /// beta `credentialUserRegistrationDetails`.
    Legacy,
}

const V1_ORDER: &[Prop] = &[
    Prop::Id,
    Prop::Upn,
    Prop::DisplayName,
    Prop::UserType,
    Prop::IsAdmin,
    Prop::SsprRegistered,
    Prop::SsprEnabled,
    Prop::SsprCapable,
    Prop::MfaRegistered,
    Prop::MfaCapable,
    Prop::PasswordlessCapable,
    Prop::LastUpdated,
    Prop::Methods,
    Prop::SystemPreferredEnabled,
    Prop::SystemPreferred,
    Prop::Preferred,
];

const BETA_ORDER: &[Prop] = &[
    Prop::Id,
    Prop::Upn,
    Prop::DisplayName,
    Prop::UserType,
    Prop::IsAdmin,
    Prop::SsprRegistered,
    Prop::SsprEnabled,
    Prop::SsprCapable,
    Prop::MfaRegistered,
    Prop::MfaCapable,
    Prop::PasswordlessCapable,
    Prop::LastUpdated,
    Prop::Methods,
    Prop::DefaultMfa,
    Prop::SystemPreferredEnabled,
    Prop::SystemPreferred,
    Prop::Preferred,
];

/// The order of the real-world capture (fixtures/real-world): mostly alphabetical.
const CAPTURED_ORDER: &[Prop] = &[
    Prop::Id,
    Prop::IsAdmin,
    Prop::MfaCapable,
    Prop::MfaRegistered,
    Prop::PasswordlessCapable,
    Prop::SsprCapable,
    Prop::SsprEnabled,
    Prop::SsprRegistered,
    Prop::LastUpdated,
    Prop::Methods,
    Prop::DefaultMfa,
    Prop::DisplayName,
    Prop::Upn,
    Prop::UserType,
    Prop::SystemPreferredEnabled,
    Prop::SystemPreferred,
    Prop::Preferred,
];

const LEGACY_ORDER: &[Prop] = &[
    Prop::Id,
    Prop::Upn,
    Prop::DisplayName,
    Prop::AuthMethods,
    Prop::IsRegistered,
    Prop::IsEnabled,
    Prop::IsCapable,
    Prop::IsMfaRegistered,
];

impl Source {
    /// Properties in documentation order.
    pub(crate) fn props(self) -> &'static [Prop] {
        match self {
            Source::V1 => V1_ORDER,
            Source::Beta => BETA_ORDER,
            Source::Legacy => LEGACY_ORDER,
        }
    }

    /// The OData entity type name (for `@odata.type` and error messages).
    pub(crate) fn entity_type(self) -> &'static str {
        match self {
            Source::V1 | Source::Beta => "microsoft.graph.userRegistrationDetails",
            Source::Legacy => "microsoft.graph.credentialUserRegistrationDetails",
        }
    }

    /// The report this shape belongs to.
    pub(crate) fn report(self) -> SimReport {
        match self {
            Source::V1 | Source::Beta => SimReport::UserRegistrationDetails,
            Source::Legacy => SimReport::CredentialUserRegistrationDetails,
        }
    }

    /// Looks a property up by name, case-insensitively as OData does for `$select`.
    pub(crate) fn prop(self, name: &str) -> Option<Prop> {
        self.props()
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// Parses a `$select` list. `Err(name)` names the first unknown property.
pub(crate) fn parse_select(source: Source, text: &str) -> Result<Vec<Prop>, String> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let prop = source.prop(name).ok_or_else(|| name.to_string())?;
        if !out.contains(&prop) {
            out.push(prop);
        }
    }
    Ok(out)
}

/// Writes rows of one response.
pub(crate) struct RowWriter<'a> {
    pub(crate) tenant: &'a Tenant,
    pub(crate) source: Source,
    /// The request carried `Prefer: include-unknown-enum-members`.
    pub(crate) include_unknown: bool,
    /// `$select`ed properties (`id` is always written).
    pub(crate) select: Option<&'a [Prop]>,
}

impl RowWriter<'_> {
    /// Appends one row object to `out`. `first` false means the caller already wrote `{`
    /// and some properties (single-entity responses start with `@odata.context`).
    pub(crate) fn write(&self, out: &mut String, u: &User, mut first: bool) {
        if first {
            out.push('{');
        }
        let mut sep = |out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
        };
        if u.extras & 1 != 0 {
            sep(out);
            push_key(out, "@odata.type");
            push_str(out, &format!("#{}", self.source.entity_type()), false);
        }
        let order: Vec<Prop> = match self.select {
            Some(sel) => self
                .source
                .props()
                .iter()
                .copied()
                .filter(|p| *p == Prop::Id || sel.contains(p))
                .collect(),
            None => match (self.source, u.field_order) {
                (Source::Legacy, 2) => LEGACY_ORDER.iter().rev().copied().collect(),
                (Source::Legacy, _) => LEGACY_ORDER.to_vec(),
                (source, 1) => CAPTURED_ORDER
                    .iter()
                    .copied()
                    .filter(|p| source == Source::Beta || *p != Prop::DefaultMfa)
                    .collect(),
                (source, 2) => source.props().iter().rev().copied().collect(),
                (source, _) => source.props().to_vec(),
            },
        };
        for prop in order {
            self.write_prop(out, u, prop, &mut sep);
        }
        if u.extras & 2 != 0 && self.select.is_none() {
            // An unknown property with nested values: clients must skip it whole.
            sep(out);
            out.push_str(
                r#""signInRiskSummary":{"level":"low","scores":[1,2.5e0,-3,null,true],"nested":{"a":[]},"note":"x\"y\\z"}"#,
            );
        }
        out.push('}');
    }

    fn write_prop(
        &self,
        out: &mut String,
        u: &User,
        prop: Prop,
        sep: &mut impl FnMut(&mut String),
    ) {
        let mut key = |out: &mut String| {
            sep(out);
            push_key(out, prop.name());
        };
        match prop {
            Prop::Id => {
                key(out);
                push_str(out, &self.tenant.id(u.index), false);
            }
            Prop::Upn => {
                key(out);
                push_str(out, &self.tenant.upn(u.index, u.user_type), false);
            }
            Prop::DisplayName => {
                key(out);
                push_str(out, &self.tenant.display_name(u.index), u.ascii_names);
            }
            Prop::UserType => {
                let v = match u.user_type {
                    UserType::Member => "\"member\"",
                    UserType::Guest => "\"guest\"",
                    UserType::UnknownFuture => "\"unknownFutureValue\"",
                    UserType::Null => "null",
                    UserType::Missing => return,
                };
                key(out);
                out.push_str(v);
            }
            Prop::IsAdmin => write_tri(out, u.is_admin, key),
            Prop::SystemPreferredEnabled => write_tri(out, u.system_preferred_enabled, key),
            Prop::SsprRegistered | Prop::IsRegistered => write_bool(out, u.sspr_registered, key),
            Prop::SsprEnabled | Prop::IsEnabled => write_bool(out, u.sspr_enabled, key),
            Prop::SsprCapable | Prop::IsCapable => write_bool(out, u.sspr_capable, key),
            Prop::MfaRegistered | Prop::IsMfaRegistered => write_bool(out, u.mfa_registered, key),
            Prop::MfaCapable => write_bool(out, u.mfa_capable, key),
            Prop::PasswordlessCapable => write_bool(out, u.passwordless_capable, key),
            Prop::LastUpdated => {
                key(out);
                push_str(out, &odata_datetime(u.updated_unix, u.updated_ticks), false);
            }
            Prop::Methods => {
                key(out);
                self.write_list(out, u, u.methods.as_slice(), |m| m);
            }
            Prop::AuthMethods => {
                key(out);
                let include = self.include_unknown;
                self.write_list(out, u, u.legacy_methods.as_slice(), |m| {
                    if m == POST_SENTINEL_LEGACY && !include {
                        "unknownFutureValue"
                    } else {
                        m
                    }
                });
            }
            Prop::SystemPreferred => {
                key(out);
                out.push('[');
                for (i, m) in u.system_preferred.as_slice().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_str(out, m, false);
                }
                out.push(']');
            }
            Prop::Preferred => {
                let include = self.include_unknown;
                write_enum(out, u.preferred, key, |v| {
                    if v == POST_SENTINEL_PREFERRED && !include {
                        "unknownFutureValue"
                    } else {
                        v
                    }
                });
            }
            Prop::DefaultMfa => write_enum(out, u.default_mfa, key, |v| v),
        }
    }

    fn write_list(
        &self,
        out: &mut String,
        u: &User,
        items: &[&'static str],
        map: impl Fn(&'static str) -> &'static str,
    ) {
        out.push('[');
        for (i, m) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if u.escape_methods {
                push_str_escaping_one(out, map(m), 2);
            } else {
                push_str(out, map(m), false);
            }
        }
        if u.duplicate_method
            && let Some(m) = items.first()
        {
            out.push(',');
            push_str_escaping_one(out, map(m), 1);
        }
        out.push(']');
    }
}

fn write_bool(out: &mut String, v: bool, mut key: impl FnMut(&mut String)) {
    key(out);
    out.push_str(if v { "true" } else { "false" });
}

fn write_tri(out: &mut String, v: Tri, mut key: impl FnMut(&mut String)) {
    let text = match v {
        Tri::True => "true",
        Tri::False => "false",
        Tri::Null => "null",
        Tri::Missing => return,
    };
    key(out);
    out.push_str(text);
}

fn write_enum(
    out: &mut String,
    v: EnumValue,
    mut key: impl FnMut(&mut String),
    map: impl Fn(&'static str) -> &'static str,
) {
    match v {
        EnumValue::Value(s) => {
            key(out);
            push_str(out, map(s), false);
        }
        EnumValue::Empty => {
            key(out);
            out.push_str("\"\"");
        }
        EnumValue::Null => {
            key(out);
            out.push_str("null");
        }
        EnumValue::Missing => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tenant::STATIC_DATASET_TIME;
    use super::*;

    #[test]
    fn every_row_is_valid_json_with_the_right_shape() {
        let t = Tenant::new("contoso.example", 5, 3000, None);
        for source in [Source::V1, Source::Beta, Source::Legacy] {
            for include_unknown in [false, true] {
                let w = RowWriter {
                    tenant: &t,
                    source,
                    include_unknown,
                    select: None,
                };
                for i in 0..3000 {
                    let mut out = String::new();
                    w.write(&mut out, &t.user(i, STATIC_DATASET_TIME), true);
                    let v: serde_json::Value =
                        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
                    assert_eq!(v["id"], t.id(i));
                    assert_eq!(v.get("defaultMfaMethod").is_some(), source == Source::Beta);
                    let text = v.to_string();
                    assert_eq!(
                        text.contains(POST_SENTINEL_LEGACY),
                        include_unknown
                            && text.contains("authMethods")
                            && t.user(i, STATIC_DATASET_TIME)
                                .legacy_methods
                                .contains(POST_SENTINEL_LEGACY)
                    );
                }
            }
        }
    }

    #[test]
    fn select_limits_properties() {
        let t = Tenant::new("x", 5, 10, None);
        let sel = parse_select(Source::V1, "userPrincipalName, ISMFACAPABLE").unwrap();
        let w = RowWriter {
            tenant: &t,
            source: Source::V1,
            include_unknown: true,
            select: Some(&sel),
        };
        let mut out = String::new();
        w.write(&mut out, &t.user(0, STATIC_DATASET_TIME), true);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let keys: Vec<&String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@'))
            .collect();
        assert_eq!(keys.len(), 3, "{out}");
        assert_eq!(
            parse_select(Source::V1, "defaultMfaMethod"),
            Err("defaultMfaMethod".into())
        );
        assert!(parse_select(Source::Beta, "defaultMfaMethod").is_ok());
    }
}
