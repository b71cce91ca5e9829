//! The synthetic tenant: users as a pure function of `(seed, index, dataset time)`.
//!
//! Nothing is stored: a page is generated from its index range and the truth by
//! iterating the same function, so a million users take constant memory. Every property
//! is drawn from a fixed slot of the user's hash stream, so drift (which moves the rates
//! thresholds are compared against) changes only the users near a threshold.

use std::time::Duration;

use super::rng::{Draws, guid_from, hash3};

/// Dataset time of static tenants: 2026-07-14T03:33:20Z, near the real-world capture.
pub(crate) const STATIC_DATASET_TIME: i64 = 1_784_000_000;

/// Dataset time granularity of drifting tenants: truth and walks started within the same
/// minute see the same rows.
const DRIFT_QUANTUM: i64 = 60;

/// A made-up member of `userDefaultAuthenticationMethod` after `unknownFutureValue`,
/// hidden without `Prefer: include-unknown-enum-members` (graph-api.md §1.5).
pub(crate) const POST_SENTINEL_PREFERRED: &str = "passkey";
/// The `registrationAuthMethod` member after the sentinel (graph-api.md §5.1).
pub(crate) const POST_SENTINEL_LEGACY: &str = "externalAuthMethod";
/// A method string no documentation knows, so clients meet an unknown open-set value.
pub(crate) const FUTURE_METHOD: &str = "quantumEntangledToken";
/// A made-up future passkey kind: unclassified by design.md's strength table, so it
/// must not raise strength however strong its name sounds.
pub(crate) const UNCLASSIFIED_METHOD: &str = "passKeyWearable";

/// `userType` as it will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserType {
    Member,
    Guest,
    /// The enum sentinel itself.
    UnknownFuture,
    Null,
    Missing,
}

/// A nullable boolean that may also be absent from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Null,
    Missing,
}

/// An enum-typed string that may be `""`, `null` or absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnumValue {
    Value(&'static str),
    Empty,
    Null,
    Missing,
}

/// A short list of static strings without heap allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    items: [&'static str; 14],
    len: usize,
}

impl List {
    fn new() -> Self {
        Self {
            items: [""; 14],
            len: 0,
        }
    }

    fn push(&mut self, s: &'static str) {
        if self.len < self.items.len() && !self.contains(s) {
            self.items[self.len] = s;
            self.len += 1;
        }
    }

    /// The items, distinct, in order.
    pub(crate) fn as_slice(&self) -> &[&'static str] {
        &self.items[..self.len]
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        self.as_slice().contains(&s)
    }
}

/// One synthetic user, everything needed to write either report's row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct User {
    pub(crate) index: u64,
    pub(crate) user_type: UserType,
    pub(crate) is_admin: Tri,
    pub(crate) sspr_registered: bool,
    pub(crate) sspr_enabled: bool,
    pub(crate) sspr_capable: bool,
    pub(crate) mfa_registered: bool,
    pub(crate) mfa_capable: bool,
    pub(crate) passwordless_capable: bool,
    pub(crate) system_preferred_enabled: Tri,
    /// `methodsRegistered`, distinct.
    pub(crate) methods: List,
    pub(crate) system_preferred: List,
    pub(crate) preferred: EnumValue,
    /// Beta only.
    pub(crate) default_mfa: EnumValue,
    /// Legacy `authMethods`, distinct, with-header view.
    pub(crate) legacy_methods: List,
    pub(crate) updated_unix: i64,
    pub(crate) updated_ticks: Option<u32>,
    // Wire quirks, not data.
    /// Write method strings with one `\u00XX` escape.
    pub(crate) escape_methods: bool,
    /// Repeat the first method (escaped) so clients must count distinct values.
    pub(crate) duplicate_method: bool,
    /// Write non-ASCII characters of names as `\uXXXX`.
    pub(crate) ascii_names: bool,
    /// Which property order the row is written in.
    pub(crate) field_order: u8,
    /// Bit 0: `@odata.type`; bit 1: an unknown nested property.
    pub(crate) extras: u8,
}

const SALT_USER: u64 = 1;
const SALT_METHODS: u64 = 2;
const SALT_NAME: u64 = 3;
const SALT_ID_HI: u64 = 4;
const SALT_ID_LO: u64 = 5;
const SALT_ID_MASK: u64 = 6;
const SALT_PRIVILEGED: u64 = 9;

const STRONG_METHODS: &[(&str, f64)] = &[
    ("microsoftAuthenticatorPush", 0.50),
    ("mobilePhone", 0.40),
    ("softwareOneTimePasscode", 0.35),
    ("officePhone", 0.05),
    ("alternateMobilePhone", 0.04),
    ("hardwareOneTimePasscode", 0.02),
    ("temporaryAccessPass", 0.015),
    ("fido2", 0.015),
];

const PASSWORDLESS_METHODS: &[(&str, f64)] = &[
    ("microsoftAuthenticatorPasswordless", 0.35),
    ("windowsHelloForBusiness", 0.30),
    ("passKeyDeviceBound", 0.12),
    ("passKeyDeviceBoundAuthenticator", 0.10),
    ("passKeySynced", 0.08),
    ("fido2", 0.03),
    ("macOsSecureEnclaveKey", 0.02),
];

/// Passwordless methods, for deriving `isPasswordlessCapable` and the system-preferred
/// method.
fn is_passwordless(method: &str) -> bool {
    PASSWORDLESS_METHODS.iter().any(|(m, _)| *m == method)
}

/// One tenant's generator.
#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub(crate) seed: u64,
    pub(crate) users: u64,
    pub(crate) drift: Option<Duration>,
    pub(crate) domain: String,
}

impl Tenant {
    /// A generator; `tenant_id` names the UPN domain when it is a domain.
    pub(crate) fn new(tenant_id: &str, seed: u64, users: u64, drift: Option<Duration>) -> Self {
        let domain = if tenant_id.contains('.') {
            tenant_id.to_ascii_lowercase()
        } else {
            "contoso.onmicrosoft.com".to_string()
        };
        Self {
            seed,
            users,
            drift,
            domain,
        }
    }

    /// The dataset time a walk started at `now` (unix seconds) sees.
    pub(crate) fn dataset_time(&self, now: i64) -> i64 {
        match self.drift {
            Some(_) => now - now.rem_euclid(DRIFT_QUANTUM),
            None => STATIC_DATASET_TIME,
        }
    }

    /// Offset added to coverage rates at dataset time `t`: an oscillation over the drift
    /// period plus a slower one (7 periods) that reads as gradual growth or decline.
    fn drift_offset(&self, t: i64) -> f64 {
        match self.drift {
            Some(period) if period.as_secs() > 0 => {
                let p = period.as_secs_f64();
                let tau = std::f64::consts::TAU;
                0.10 * (tau * t as f64 / p).sin() + 0.05 * (tau * t as f64 / (7.0 * p)).sin()
            }
            _ => 0.0,
        }
    }

    /// The user's object id: stable per index, with the index recoverable (XOR-masked in
    /// the last 48 bits) so a single-entity GET needs no table.
    pub(crate) fn id(&self, index: u64) -> String {
        let mask = hash3(self.seed, 0, SALT_ID_MASK) & 0xFFFF_FFFF_FFFF;
        let lo = (hash3(self.seed, index, SALT_ID_LO) & 0xFFFF_0000_0000_0000)
            | ((index ^ mask) & 0xFFFF_FFFF_FFFF);
        guid_from(hash3(self.seed, index, SALT_ID_HI), lo)
    }

    /// The index of the user with this id, if any.
    pub(crate) fn index_of(&self, id: &str) -> Option<u64> {
        let tail = id.get(24..)?;
        let v = u64::from_str_radix(tail, 16).ok()?;
        let mask = hash3(self.seed, 0, SALT_ID_MASK) & 0xFFFF_FFFF_FFFF;
        let index = v ^ mask;
        (index < self.users && self.id(index).eq_ignore_ascii_case(id)).then_some(index)
    }

    /// Whether an admin holds one of the privileged roles `includedUserRoles =
    /// privilegedAdmin` covers (graph-api.md §3.3): about 40 % of admins.
    pub(crate) fn is_privileged_admin(&self, index: u64) -> bool {
        hash3(self.seed, index, SALT_PRIVILEGED) % 100 < 40
    }

    /// Display name; some carry non-ASCII letters, quotes or an emoji.
    pub(crate) fn display_name(&self, index: u64) -> String {
        const FIRST: &[&str] = &[
            "Alex", "Allan", "Bianca", "José", "Zoë", "Łukasz", "Søren", "Renée", "Megan",
            "Nestor", "Adele", "Grady", "Lidia", "Ängel", "Chloé", "Dmitri", "Aoife", "Jürgen",
            "Miriam", "Yuki",
        ];
        const LAST: &[&str] = &[
            "Wilber",
            "Deyoung",
            "Pisani",
            "García",
            "Dvořák",
            "O'Brien",
            "Bowen",
            "Müller",
            "Holloway",
            "Nguyễn",
            "Søndergaard",
            "Fernández",
            "Smith",
            "Kowalski",
            "Tanaka",
            "Ó Súilleabháin",
        ];
        let mut d = Draws::new(self.seed, index, SALT_NAME);
        let first = FIRST[d.below(FIRST.len() as u64) as usize];
        let last = LAST[d.below(LAST.len() as u64) as usize];
        let quirk = d.below(1000);
        match quirk {
            0 => format!("{first} \"{}\" {last}", first.chars().next().unwrap_or('X')),
            1 => format!("{first} {last} 🚀"),
            2 => format!("{first} {last} \\ Admin"),
            _ => format!("{first} {last}"),
        }
    }

    /// User principal name; guests carry the `#EXT#` form.
    pub(crate) fn upn(&self, index: u64, user_type: UserType) -> String {
        match user_type {
            UserType::Guest => format!("guest{index}_partner.example#EXT#@{}", self.domain),
            _ => format!("user{index}@{}", self.domain),
        }
    }

    /// The user at `index` as of dataset time `t`.
    pub(crate) fn user(&self, index: u64, t: i64) -> User {
        let mut d = Draws::new(self.seed, index, SALT_USER);
        let mut u = [0.0f64; 24];
        for slot in u.iter_mut() {
            *slot = d.unit();
        }
        let user_type = match u[0] {
            x if x < 0.005 => UserType::Null,
            x if x < 0.010 => UserType::Missing,
            x if x < 0.015 => UserType::UnknownFuture,
            x if x < 0.125 => UserType::Guest,
            _ => UserType::Member,
        };
        let is_admin = match u[1] {
            x if x < 0.004 => Tri::Null,
            x if x < 0.006 => Tri::Missing,
            x if x < 0.056 => Tri::True,
            _ => Tri::False,
        };
        let admin = is_admin == Tri::True;
        let off = self.drift_offset(t);
        let (base_mfa, sspr_policy, off) = match user_type {
            UserType::Member => (0.74, 0.85, off),
            UserType::Guest => (0.42, 0.30, off / 2.0),
            _ => (0.55, 0.60, off),
        };
        let mfa_rate = (base_mfa + if admin { 0.18 } else { 0.0 } + off).clamp(0.02, 0.99);
        let mfa_registered = u[2] < mfa_rate;
        let pwless_rate = (if admin { 0.45 } else { 0.22 } + off * 0.6).clamp(0.0, 0.95);
        let has_passwordless = mfa_registered && u[3] < pwless_rate;
        let mfa_capable = mfa_registered && u[4] < 0.96;
        let sspr_enabled = u[5] < sspr_policy;
        let sspr_registered = u[6] < if mfa_registered { 0.82 } else { 0.18 };
        let sspr_capable = sspr_enabled && sspr_registered && u[7] < 0.98;

        // Methods come from their own stream so the choice of methods does not shift
        // when a drifting threshold flips a user.
        let mut m = Draws::new(self.seed, index, SALT_METHODS);
        let mut methods = List::new();
        if mfa_registered {
            let k = match m.unit() {
                x if x < 0.32 => 1,
                x if x < 0.62 => 2,
                x if x < 0.80 => 3,
                x if x < 0.90 => 4,
                x if x < 0.96 => 5,
                _ => 6,
            };
            pick_weighted(&mut m, STRONG_METHODS, k, &mut methods);
        }
        if has_passwordless {
            let k = if m.chance(0.3) { 2 } else { 1 };
            pick_weighted(&mut m, PASSWORDLESS_METHODS, k, &mut methods);
        }
        let email_p = if sspr_registered { 0.6 } else { 0.15 };
        if m.chance(email_p) {
            methods.push("email");
        }
        if sspr_registered && m.chance(0.06) {
            methods.push("securityQuestion");
        }
        if m.chance(0.003) {
            methods.push(FUTURE_METHOD);
        }
        // Rarer strings of the strength table, and one it does not classify; drawn
        // last so the draws above (and the data they made) stay as they were.
        if mfa_registered && m.chance(0.004) {
            methods.push("passKeyDeviceBoundWindowsHello");
        }
        if mfa_registered && m.chance(0.003) {
            methods.push("x509CertificateMultiFactor");
        }
        if mfa_registered && m.chance(0.002) {
            methods.push("fido2SecurityKey");
        }
        if m.chance(0.002) {
            methods.push(UNCLASSIFIED_METHOD);
        }
        let passwordless_capable =
            methods.as_slice().iter().any(|s| is_passwordless(s)) && u[8] < 0.97;

        let system_preferred_enabled = match u[9] {
            x if x < 0.02 => Tri::Null,
            x if x < 0.035 => Tri::Missing,
            x if x < 0.80 => Tri::True,
            _ => Tri::False,
        };
        let has = |s: &str| methods.contains(s);
        let mut system_preferred = List::new();
        if mfa_registered {
            // Real rows carry `PhoneAppNotification`/`Fido2` as well as the documented
            // names (fixtures/real-world/README.md), so both spellings appear.
            if methods.as_slice().iter().any(|s| is_passwordless(s)) && u[10] < 0.6 {
                system_preferred.push("Fido2");
            } else if has("microsoftAuthenticatorPush") {
                system_preferred.push(if u[10] < 0.7 {
                    "PhoneAppNotification"
                } else {
                    "push"
                });
            } else if has("softwareOneTimePasscode") || has("hardwareOneTimePasscode") {
                system_preferred.push("oath");
            } else if has("mobilePhone") {
                system_preferred.push("sms");
            } else if has("officePhone") {
                system_preferred.push("voiceOffice");
            }
        }

        let preferred = if mfa_registered {
            match u[11] {
                x if x < 0.02 => EnumValue::Empty,
                x if x < 0.03 => EnumValue::Null,
                x if x < 0.04 => EnumValue::Missing,
                x if x < 0.045 => EnumValue::Value(POST_SENTINEL_PREFERRED),
                x if x < 0.05 => EnumValue::Value("voiceAlternateMobile"),
                _ if has("microsoftAuthenticatorPush") => EnumValue::Value("push"),
                _ if has("softwareOneTimePasscode") || has("hardwareOneTimePasscode") => {
                    EnumValue::Value("oath")
                }
                _ if has("mobilePhone") => {
                    EnumValue::Value(if u[12] < 0.6 { "sms" } else { "voiceMobile" })
                }
                _ if has("officePhone") => EnumValue::Value("voiceOffice"),
                _ => EnumValue::Value("none"),
            }
        } else {
            match u[11] {
                x if x < 0.60 => EnumValue::Empty,
                x if x < 0.75 => EnumValue::Value("none"),
                x if x < 0.88 => EnumValue::Null,
                _ => EnumValue::Missing,
            }
        };
        let default_mfa = if mfa_registered && u[13] < 0.93 {
            if has("microsoftAuthenticatorPush") {
                EnumValue::Value("microsoftAuthenticatorPush")
            } else if has("softwareOneTimePasscode") {
                EnumValue::Value("softwareOneTimePasscode")
            } else if has("mobilePhone") {
                EnumValue::Value("mobilePhone")
            } else if has("officePhone") {
                EnumValue::Value("officePhone")
            } else if has("alternateMobilePhone") {
                EnumValue::Value("alternateMobilePhone")
            } else {
                EnumValue::Value("none")
            }
        } else if u[13] < 0.5 {
            EnumValue::Value("none")
        } else {
            EnumValue::Empty
        };

        let mut legacy_methods = List::new();
        for method in methods.as_slice() {
            let mapped = match *method {
                "email" => "email",
                "mobilePhone" => "mobilePhone",
                "officePhone" => "officePhone",
                "securityQuestion" => "securityQuestion",
                "microsoftAuthenticatorPush" => "appNotification",
                "softwareOneTimePasscode" | "hardwareOneTimePasscode" => "appCode",
                "alternateMobilePhone" => "alternateMobilePhone",
                "fido2"
                | "passKeyDeviceBound"
                | "passKeyDeviceBoundAuthenticator"
                | "passKeySynced" => "fido",
                _ => continue,
            };
            legacy_methods.push(mapped);
        }
        if u[14] < 0.01 {
            legacy_methods.push("appPassword");
        }
        if u[15] < 0.02 {
            legacy_methods.push(POST_SENTINEL_LEGACY);
        }

        let age = (hash3(self.seed, index, 7) % (6 * 3600)) as i64 + 1800;
        let updated_ticks =
            (u[16] >= 0.05).then(|| (hash3(self.seed, index, 8) % 10_000_000) as u32);
        User {
            index,
            user_type,
            is_admin,
            sspr_registered,
            sspr_enabled,
            sspr_capable,
            mfa_registered,
            mfa_capable,
            passwordless_capable,
            system_preferred_enabled,
            methods,
            system_preferred,
            preferred,
            default_mfa,
            legacy_methods,
            updated_unix: t - age,
            updated_ticks,
            escape_methods: u[17] < 0.01,
            duplicate_method: u[18] < 0.003 && methods.len > 0,
            ascii_names: u[19] < 0.3,
            field_order: (u[20] * 3.0) as u8,
            extras: match u[21] {
                x if x < 0.03 => 1,
                x if x < 0.05 => 2,
                x if x < 0.06 => 3,
                _ => 0,
            },
        }
    }
}

/// Adds `k` distinct methods drawn by weight without replacement.
fn pick_weighted(d: &mut Draws, pool: &[(&'static str, f64)], k: usize, out: &mut List) {
    let mut taken = [false; 16];
    for _ in 0..k.min(pool.len()) {
        let total: f64 = pool
            .iter()
            .zip(taken)
            .filter(|(_, t)| !t)
            .map(|((_, w), _)| w)
            .sum();
        let mut x = d.unit() * total;
        let mut chosen = None;
        for (i, (_, w)) in pool.iter().enumerate() {
            if taken[i] {
                continue;
            }
            chosen = Some(i);
            if x < *w {
                break;
            }
            x -= w;
        }
        if let Some(i) = chosen {
            taken[i] = true;
            out.push(pool[i].0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(t: &Tenant, n: u64) -> Vec<String> {
        (0..n)
            .map(|i| format!("{:?}", t.user(i, STATIC_DATASET_TIME)))
            .collect()
    }

    #[test]
    fn same_seed_same_users_different_seed_differs() {
        let a = Tenant::new("contoso.example", 7, 200, None);
        let b = Tenant::new("contoso.example", 7, 200, None);
        let c = Tenant::new("contoso.example", 8, 200, None);
        assert_eq!(fingerprint(&a, 200), fingerprint(&b, 200));
        assert_ne!(fingerprint(&a, 200), fingerprint(&c, 200));
        assert_eq!(a.display_name(5), b.display_name(5));
        assert_eq!(a.id(5), b.id(5));
        assert_ne!(a.id(5), c.id(5));
    }

    #[test]
    fn ids_round_trip_to_indexes() {
        let t = Tenant::new("x", 3, 1000, None);
        for i in [0, 1, 999] {
            assert_eq!(t.index_of(&t.id(i)), Some(i));
            assert_eq!(t.index_of(&t.id(i).to_uppercase()), Some(i));
        }
        assert_eq!(t.index_of(&Tenant::new("x", 3, 2000, None).id(1500)), None);
        assert_eq!(t.index_of("not-a-guid"), None);
    }

    #[test]
    fn mix_is_realistic() {
        let t = Tenant::new("x", 42, 20_000, None);
        let users: Vec<User> = (0..20_000)
            .map(|i| t.user(i, STATIC_DATASET_TIME))
            .collect();
        let members: Vec<&User> = users
            .iter()
            .filter(|u| u.user_type == UserType::Member)
            .collect();
        let ratio = |f: &dyn Fn(&User) -> bool, set: &[&User]| {
            set.iter().filter(|u| f(u)).count() as f64 / set.len() as f64
        };
        assert!(members.len() > 16_000);
        let mfa = ratio(&|u| u.mfa_registered, &members);
        assert!((0.6..0.85).contains(&mfa), "member mfa {mfa}");
        let all: Vec<&User> = users.iter().collect();
        let admins = ratio(&|u| u.is_admin == Tri::True, &all);
        assert!((0.03..0.08).contains(&admins), "admins {admins}");
        assert!(users.iter().any(|u| u.methods.as_slice().len() >= 5));
        assert!(users.iter().any(|u| u.methods.as_slice().is_empty()));
        assert!(users.iter().any(|u| u.methods.contains(FUTURE_METHOD)));
        assert!(
            users
                .iter()
                .any(|u| u.legacy_methods.contains(POST_SENTINEL_LEGACY))
        );
        assert!(
            users
                .iter()
                .any(|u| u.preferred == EnumValue::Value(POST_SENTINEL_PREFERRED))
        );
        assert!(users.iter().any(|u| u.is_admin == Tri::Null));
        assert!(users.iter().any(|u| u.user_type == UserType::UnknownFuture));
    }

    #[test]
    fn drift_moves_coverage() {
        let t = Tenant::new("x", 1, 5000, Some(Duration::from_secs(3600)));
        let count = |time: i64| {
            (0..5000)
                .filter(|&i| t.user(i, time).mfa_registered)
                .count()
        };
        // A quarter period apart: peak versus zero crossing of the main oscillation.
        assert_ne!(count(900), count(0));
        assert_eq!(t.dataset_time(1_000_059), 1_000_020);
    }
}
