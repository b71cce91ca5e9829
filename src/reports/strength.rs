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
    #[inline]
    pub fn of_method(method: &str) -> Option<Strength> {
        // Lower-cased on the stack and matched as bytes: the `match` compiles to a
        // switch on length and a compare, cheaper per row than scanning a table with
        // `eq_ignore_ascii_case`. No string of the table is longer than the buffer.
        let mut buf = [0u8; 40];
        let lower = buf.get_mut(..method.len())?;
        lower.copy_from_slice(method.as_bytes());
        lower.make_ascii_lowercase();
        use Strength::*;
        Some(match &*lower {
            // design.md's table, lower-cased (Graph sends `fido2SecurityKey`,
            // `passKeyDeviceBound`, `windowsHelloForBusiness`, `macOsSecureEnclaveKey` …).
            b"fido2"
            | b"fido2securitykey"
            | b"passkeydevicebound"
            | b"passkeydeviceboundauthenticator"
            | b"passkeydeviceboundwindowshello"
            // Synced passkeys: phishing-resistant as Microsoft's methods page classes
            // them (graph-api.md §13.6.3); high-assurance tenants may require
            // device-bound keys.
            | b"passkeysynced"
            | b"windowshelloforbusiness"
            | b"macossecureenclavekey"
            | b"x509certificatemultifactor" => PhishingResistant,
            // Passwordless but phishable (concept-authentication-methods, §13.6.2).
            b"microsoftauthenticatorpasswordless" => Passwordless,
            b"microsoftauthenticatorpush"
            | b"softwareonetimepasscode"
            | b"hardwareonetimepasscode"
            | b"mobilephone"
            | b"alternatemobilephone"
            | b"officephone"
            | b"sms"
            | b"voice" => Mfa,
            // temporaryAccessPass satisfies MFA while it lasts, but it expires by
            // design: not coverage.
            b"email" | b"securityquestion" | b"temporaryaccesspass" | b"qrcode"
            | b"qrcodepin" | b"password" => None,
            _ => return Option::None,
        })
    }
}

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

// Defined beside the counts that hold them (aggregate.rs sits below the reports).
pub use crate::aggregate::{StrengthCounts, UnclassifiedMethods};

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
        // design.md's table, row by row, written out again here (not taken from the match)
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
        // Near misses, prefixes and overlong strings are not in the table either.
        let long = "microsoftAuthenticatorPasswordless".repeat(2);
        for near in ["passKey", "passKeyDevice", "fido", "mfa", "", long.as_str()] {
            assert_eq!(Strength::of_method(near), Option::None, "{near}");
        }
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
