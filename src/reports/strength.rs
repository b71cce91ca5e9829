//! Method strength (design.md "Method strength"): each user's strongest registered
//! method, from the `methodsRegistered` strings of a registration row.
//!
//! The classes follow Microsoft's built-in authentication strengths and its
//! phishing-resistant/phishable table (graph-api.md §13.6.2). Strings are matched
//! case-insensitively; a string not in the table never raises strength and is handed
//! back as unclassified, so a method Microsoft adds later is noticed
//! (`entra_exporter_unclassified_method_info`) rather than counted as strong.
//!
//! Pure and allocation-free per row: [`strongest`] reports unclassified strings through
//! a callback, and [`UnclassifiedMethods::insert`] copies a string only the first time.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// `strength` label values, weakest first (the derived order is the strength order).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// No method that satisfies MFA: none registered, or only `email`,
    /// `securityQuestion`, `temporaryAccessPass`, QR code, password or unclassified ones.
    #[default]
    None,
    /// Satisfies MFA (with a password): Authenticator push, OATH tokens, phone methods.
    Mfa,
    /// Passwordless but phishable: Authenticator phone sign-in.
    Passwordless,
    /// Phishing-resistant: FIDO2 keys, passkeys (device-bound and synced), Windows Hello
    /// for Business, macOS platform credential, multifactor certificates.
    PhishingResistant,
}

impl Strength {
    /// Every strength, weakest first (exposition order).
    pub const ALL: [Strength; 4] = [
        Self::None,
        Self::Mfa,
        Self::Passwordless,
        Self::PhishingResistant,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Mfa => "mfa",
            Self::Passwordless => "passwordless",
            Self::PhishingResistant => "phishing_resistant",
        }
    }

    /// The class of one `methodsRegistered` string, matched case-insensitively;
    /// `None` when the string is not in the table (unclassified). Strings in the
    /// table's `none` row (`email`, `temporaryAccessPass`, …) are `Some(Strength::None)`.
    pub fn of_method(method: &str) -> Option<Strength> {
        // A scan: 24 short entries, and `eq_ignore_ascii_case` rejects on length first.
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(method))
            .map(|&(_, s)| s)
    }
}

/// The table of design.md, spelled as Graph sends the strings.
const TABLE: [(&str, Strength); 24] = {
    use Strength::*;
    [
        ("fido2", PhishingResistant),
        ("fido2SecurityKey", PhishingResistant),
        ("passKeyDeviceBound", PhishingResistant),
        ("passKeyDeviceBoundAuthenticator", PhishingResistant),
        ("passKeyDeviceBoundWindowsHello", PhishingResistant),
        // Synced passkeys: phishing-resistant as Microsoft's methods page classes them
        // (graph-api.md §13.6.3); high-assurance tenants may require device-bound keys.
        ("passKeySynced", PhishingResistant),
        ("windowsHelloForBusiness", PhishingResistant),
        ("macOsSecureEnclaveKey", PhishingResistant),
        ("x509CertificateMultiFactor", PhishingResistant),
        // Passwordless but phishable (concept-authentication-methods, §13.6.2).
        ("microsoftAuthenticatorPasswordless", Passwordless),
        ("microsoftAuthenticatorPush", Mfa),
        ("softwareOneTimePasscode", Mfa),
        ("hardwareOneTimePasscode", Mfa),
        ("mobilePhone", Mfa),
        ("alternateMobilePhone", Mfa),
        ("officePhone", Mfa),
        ("sms", Mfa),
        ("voice", Mfa),
        ("email", None),
        ("securityQuestion", None),
        // Satisfies MFA while it lasts, but it expires by design: not coverage.
        ("temporaryAccessPass", None),
        ("qrCode", None),
        ("qrCodePin", None),
        ("password", None),
    ]
};

/// The strongest strength of one row's `methodsRegistered`; every unclassified string
/// (not in the table, not empty) is passed to `unclassified`, duplicates included.
/// Empty strings are not methods (as in [`crate::aggregate::RegistrationCounts::add_user`]).
#[inline]
pub fn strongest<'m>(
    methods: impl IntoIterator<Item = &'m str>,
    mut unclassified: impl FnMut(&'m str),
) -> Strength {
    let mut best = Strength::None;
    for method in methods {
        match Strength::of_method(method) {
            Some(s) => best = best.max(s),
            Option::None if !method.is_empty() => unclassified(method),
            Option::None => {}
        }
    }
    best
}

/// Users per strength, indexed like [`Strength::ALL`].
pub type StrengthCounts = [u64; 4];

/// The distinct unclassified method strings of a refresh, as sent, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnclassifiedMethods(BTreeSet<String>);

impl UnclassifiedMethods {
    /// Adds `method`, copying it only when it is new.
    #[inline]
    pub fn insert(&mut self, method: &str) {
        if !self.0.contains(method) {
            self.0.insert(method.to_owned());
        }
    }

    /// Adds every string of `other`.
    pub fn extend(&mut self, other: &UnclassifiedMethods) {
        for m in other.iter() {
            self.insert(m);
        }
    }

    /// The strings, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many distinct strings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(methods: &[&'static str]) -> (Strength, Vec<&'static str>) {
        let mut unknown = Vec::new();
        let s = strongest(methods.iter().copied(), |m| unknown.push(m));
        (s, unknown)
    }

    #[test]
    fn every_table_entry_has_its_class() {
        // design.md's table, row by row, written out again here (not read from TABLE)
        // so that a typo in either shows.
        let rows: [(Strength, &[&str]); 4] = [
            (
                Strength::PhishingResistant,
                &[
                    "fido2",
                    "fido2SecurityKey",
                    "passKeyDeviceBound",
                    "passKeyDeviceBoundAuthenticator",
                    "passKeyDeviceBoundWindowsHello",
                    "passKeySynced",
                    "windowsHelloForBusiness",
                    "macOsSecureEnclaveKey",
                    "x509CertificateMultiFactor",
                ],
            ),
            (
                Strength::Passwordless,
                &["microsoftAuthenticatorPasswordless"],
            ),
            (
                Strength::Mfa,
                &[
                    "microsoftAuthenticatorPush",
                    "softwareOneTimePasscode",
                    "hardwareOneTimePasscode",
                    "mobilePhone",
                    "alternateMobilePhone",
                    "officePhone",
                    "sms",
                    "voice",
                ],
            ),
            (
                Strength::None,
                &[
                    "email",
                    "securityQuestion",
                    "temporaryAccessPass",
                    "qrCode",
                    "qrCodePin",
                    "password",
                ],
            ),
        ];
        let listed: usize = rows.iter().map(|(_, m)| m.len()).sum();
        assert_eq!(listed, TABLE.len(), "TABLE has no entry the design lacks");
        for (class, methods) in rows {
            for &method in methods {
                assert_eq!(Strength::of_method(method), Some(class), "{method}");
                let mut unknown = Vec::new();
                let s = strongest([method], |m| unknown.push(m));
                assert_eq!((s, unknown), (class, vec![]), "row {method}");
            }
        }
    }

    #[test]
    fn matching_ignores_case() {
        use Strength::*;
        for (method, class) in [
            ("FIDO2", PhishingResistant),
            ("passkeysynced", PhishingResistant),
            ("PASSKEYDEVICEBOUND", PhishingResistant),
            ("WindowsHelloForBusiness", PhishingResistant),
            ("MicrosoftAuthenticatorPasswordless", Passwordless),
            ("microsoftauthenticatorpush", Mfa),
            ("SMS", Mfa),
            ("Email", None),
            ("TemporaryAccessPass", None),
        ] {
            assert_eq!(Strength::of_method(method), Some(class), "{method}");
            assert_eq!(
                row(&[method]).1,
                Vec::<&str>::new(),
                "{method} is classified"
            );
        }
    }

    #[test]
    fn unknown_strings_never_raise_strength_and_are_reported() {
        use Strength::*;
        assert_eq!(Strength::of_method("externalAuthMethod"), Option::None);
        assert_eq!(Strength::of_method("fido3"), Option::None);
        assert_eq!(
            Strength::of_method("x509CertificateSingleFactor"),
            Option::None
        );
        assert_eq!(Strength::of_method(" fido2"), Option::None, "no trimming");
        assert_eq!(
            row(&["quantumKey"]),
            (None, vec!["quantumKey"]),
            "alone it is none"
        );
        assert_eq!(
            row(&["mobilePhone", "quantumKey", "externalAuthMethod"]),
            (Mfa, vec!["quantumKey", "externalAuthMethod"])
        );
        // Duplicates are passed on (the set dedups); "" is not a method at all.
        assert_eq!(row(&["x", "", "x"]), (None, vec!["x", "x"]));
        assert_eq!(row(&[""]), (None, vec![]));
    }

    #[test]
    fn the_strongest_method_wins_in_any_order() {
        use Strength::*;
        assert_eq!(row(&[]), (None, vec![]));
        assert_eq!(row(&["email", "securityQuestion"]).0, None);
        assert_eq!(row(&["temporaryAccessPass"]).0, None);
        assert_eq!(row(&["sms", "email"]).0, Mfa);
        assert_eq!(
            row(&[
                "microsoftAuthenticatorPasswordless",
                "microsoftAuthenticatorPush"
            ])
            .0,
            Passwordless
        );
        assert_eq!(
            row(&[
                "mobilePhone",
                "passKeySynced",
                "microsoftAuthenticatorPasswordless"
            ])
            .0,
            PhishingResistant
        );
        assert_eq!(
            row(&["passKeyDeviceBound", "mobilePhone"]).0,
            PhishingResistant
        );
    }

    #[test]
    fn labels_and_order() {
        assert_eq!(
            Strength::ALL.map(Strength::label),
            ["none", "mfa", "passwordless", "phishing_resistant"]
        );
        let mut sorted = Strength::ALL;
        sorted.sort();
        assert_eq!(sorted, Strength::ALL);
        assert!(Strength::PhishingResistant > Strength::Passwordless);
        assert!(Strength::Passwordless > Strength::Mfa);
        assert!(Strength::Mfa > Strength::None);
        for s in Strength::ALL {
            assert_eq!(Strength::ALL[s as usize], s, "index like ALL");
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.label()));
        }
    }

    #[test]
    fn unclassified_set_dedups_and_sorts_as_sent() {
        let mut u = UnclassifiedMethods::default();
        assert!(u.is_empty());
        for m in ["zeta", "alpha", "zeta", "Alpha"] {
            u.insert(m);
        }
        assert_eq!(u.iter().collect::<Vec<_>>(), ["Alpha", "alpha", "zeta"]);
        let mut v = UnclassifiedMethods::default();
        v.insert("beta");
        v.extend(&u);
        assert_eq!(v.len(), 4);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"["Alpha","alpha","beta","zeta"]"#);
        assert_eq!(
            serde_json::from_str::<UnclassifiedMethods>(&json).unwrap(),
            v
        );
    }
}
