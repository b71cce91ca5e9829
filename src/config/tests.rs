#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use super::*;
use crate::certificate::AssertionAlgorithm;

const MINIMAL: &str = r#"
[[tenants]]
name = "contoso"
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "s3cr3t-value"
"#;

fn err(text: &str) -> String {
    Config::from_toml(text).unwrap_err().to_string()
}

#[test]
fn minimal_tenant_gets_defaults() {
    let c = Config::from_toml(MINIMAL).unwrap();
    let t = &c.tenants[0];
    assert_eq!(t.name, "contoso");
    assert_eq!(t.graph_url, "https://graph.microsoft.com");
    assert_eq!(t.login_url, "https://login.microsoftonline.com");
    assert_eq!(t.scope, "https://graph.microsoft.com/.default");
    assert_eq!(t.reports.len(), 1);
    assert_eq!(
        t.reports[0].kind,
        ReportKind::named("user_registration_details")
    );
    assert_eq!(t.reports[0].refresh_interval, Duration::from_secs(3600));
    assert_eq!((t.page_size, t.max_requests_per_10s), (999, 5));
    assert_eq!(t.usage_period, "D30");
}

#[test]
fn top_level_settings_are_tenant_defaults_and_tenants_override() {
    let c = Config::from_toml(&format!(
        "refresh_interval = \"30m\"\npage_size = 500\ncloud = \"usgov\"\n\
         [report_refresh_intervals]\nuser_registration_details = \"2h\"\n{MINIMAL}\
         page_size = 100\n"
    ))
    .unwrap();
    let t = &c.tenants[0];
    assert_eq!(t.page_size, 100);
    assert_eq!(t.cloud, Cloud::Usgov);
    assert_eq!(t.graph_url, "https://graph.microsoft.us");
    assert_eq!(t.login_url, "https://login.microsoftonline.us");
    assert_eq!(t.scope, "https://graph.microsoft.us/.default");
    assert_eq!(t.reports[0].refresh_interval, Duration::from_secs(7200));
}

#[test]
fn report_interval_overrides_are_checked_where_they_are_written() {
    let e = err(&format!(
        "[report_refresh_intervals]\nbogus = \"1h\"\n{MINIMAL}"
    ));
    assert!(
        e.contains("top level: report_refresh_intervals.bogus"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[tenants.report_refresh_intervals]\nuser_registration_details = \"x\"\n"
    ));
    assert!(
        e.contains("tenants[0]): report_refresh_intervals.user_registration_details"),
        "{e}"
    );
    let c = Config::from_toml(&format!(
        "[report_refresh_intervals]\nuser_registration_details = \"2h\"\n{MINIMAL}\
         [tenants.report_refresh_intervals]\nuser_registration_details = \"3h\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.tenants[0].reports[0].refresh_interval,
        Duration::from_secs(3 * 3600)
    );
}

#[test]
fn every_cloud_has_matching_hosts() {
    for (cloud, graph, login) in [
        (
            "global",
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com",
        ),
        (
            "usgov",
            "https://graph.microsoft.us",
            "https://login.microsoftonline.us",
        ),
        (
            "usgov_dod",
            "https://dod-graph.microsoft.us",
            "https://login.microsoftonline.us",
        ),
        (
            "china",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://login.chinacloudapi.cn",
        ),
    ] {
        let c = Config::from_toml(&format!("{MINIMAL}cloud = \"{cloud}\"\n")).unwrap();
        let t = &c.tenants[0];
        assert_eq!((t.graph_url.as_str(), t.login_url.as_str()), (graph, login));
        assert_eq!(t.scope, format!("{graph}/.default"));
    }
    assert!(err(&format!("{MINIMAL}cloud = \"mars\"\n")).contains("cloud"));
}

#[test]
fn unknown_keys_name_the_tenant_and_the_close_key() {
    let second = "[[tenants]]\nname = \"alpha2\"\ntenant_id = \"b\"\nclient_id = \"c\"\n";
    let e = err(&format!("{MINIMAL}{second}client_secrett = \"x\"\n"));
    assert!(
        e.ends_with(
            "tenant \"alpha2\" (tenants[1]): unknown key client_secrett; did you mean client_secret?"
        ),
        "{e}"
    );
    let e = err(&format!("page_sise = 5\n{MINIMAL}"));
    assert!(
        e.ends_with("top level: unknown key page_sise; did you mean page_size?"),
        "{e}"
    );
    let e = err(&format!("refresh_intervall = \"1h\"\n{MINIMAL}"));
    assert!(e.contains("did you mean refresh_interval?"), "{e}");
    // Nothing close: the valid keys, the tenant's (name, tenant_id) or the top level's.
    let e = err(&format!("{MINIMAL}colour = \"blue\"\n"));
    assert!(
        e.contains("tenant \"contoso\" (tenants[0]): unknown key colour; valid keys: ")
            && e.contains("tenant_id, ")
            && e.contains("client_id, "),
        "{e}"
    );
    let e = err(&format!("name = \"x\"\n{MINIMAL}"));
    assert!(
        e.contains("top level: unknown key name; valid keys: ") && e.contains("tenants"),
        "{e}"
    );
    // A tenant without a name is named by its index; wrong types name the key.
    let e = err("[[tenants]]\ntenant_id = \"t\"\npage_size = \"big\"\n");
    assert!(
        e.contains("tenants[0]: page_size: invalid type: found string \"big\", expected u32"),
        "{e}"
    );
    // Unknown values of enumerations: the close one, or the list.
    let e = err(&format!("{MINIMAL}cloud = \"usgob\"\n"));
    assert!(
        e.contains(
            "tenant \"contoso\" (tenants[0]): cloud: unknown value `usgob`; did you mean `usgov`?"
        ),
        "{e}"
    );
    let e = err(&format!("cloud = \"mars\"\n{MINIMAL}"));
    assert!(
        e.contains("top level: cloud: unknown value `mars`; expected one of global, usgov, usgov_dod, china"),
        "{e}"
    );
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let sources = Sources {
            file: Some(path.clone()),
            ..Sources::default()
        };
        Config::load(&sources).unwrap_err().to_string()
    };
    let e = load(&format!("{MINIMAL}page_sise = 5\n"));
    assert!(
        e.ends_with(&format!(
            "tenant \"contoso\" (tenants[0]): unknown key page_sise; did you mean page_size? (in {})",
            path.display()
        )),
        "{e}"
    );
    // Not about one key: the file, then the parser's words.
    let e = load("[[tenants]\n");
    let start = format!(
        "invalid configuration: {}: TOML parse error",
        path.display()
    );
    assert!(e.starts_with(&start), "{e}");
}

#[test]
fn invalid_values_name_tenant_and_key() {
    let e = err(&format!(
        "{MINIMAL}page_size = 5000\nrefresh_interval = \"soon\"\n"
    ));
    assert!(
        e.contains("tenant \"contoso\" (tenants[0]): page_size"),
        "{e}"
    );
    assert!(
        e.contains("tenant \"contoso\" (tenants[0]): refresh_interval"),
        "{e}"
    );

    let e = err(&format!(
        "{MINIMAL}reports = [\"user_registration_details\", \"credential_user_registration_details\"]\n"
    ));
    assert!(e.contains("reports") && e.contains("both"), "{e}");
    let e = err(&format!("{MINIMAL}reports = [\"bogus\"]\n"));
    assert!(
        e.contains("reports: unknown report `bogus`; expected one of user_registration_details, "),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}reports = [\"user_registration_detail\"]\n"
    ));
    assert!(
        e.contains(
            "tenant \"contoso\" (tenants[0]): reports: unknown report `user_registration_detail`; \
             did you mean `user_registration_details`?"
        ),
        "{e}"
    );
    assert!(err(&format!("{MINIMAL}reports = []\n")).contains("reports"));
    assert!(err(&MINIMAL.replace("contoso.onmicrosoft.com", "common")).contains("AADSTS9001023"));
    let e = err(&format!(
        "{MINIMAL}[[tenants]]\nname = \"contoso\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\n"
    ));
    assert!(e.contains("tenants[1]") && e.contains("unique"), "{e}");
    let e = err("[[tenants]]\nname = \"x\"\n");
    for key in ["tenant_id", "client_id", "client_secret_file"] {
        assert!(e.contains(key), "{key} missing from {e}");
    }
}

#[test]
fn urls_must_be_https_unless_loopback() {
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
        "https://proxy.example/graph/",
    ] {
        let c = Config::from_toml(&format!(
            "{MINIMAL}graph_url = \"{ok}\"\nlogin_url = \"{ok}\"\n"
        ))
        .unwrap();
        assert!(!c.tenants[0].graph_url.ends_with('/'));
    }
    for bad in [
        "http://graph.example.com",
        "http://10.0.0.1",
        "ftp://x",
        "not a url",
        "https://u:p@h",
    ] {
        let e = err(&format!("{MINIMAL}graph_url = \"{bad}\"\n"));
        assert!(e.contains("graph_url"), "{bad}: {e}");
    }
}

#[test]
fn secrets_never_print() {
    let c = Config::from_toml(MINIMAL).unwrap();
    let shown = format!("{c:?}\n{}", c.to_redacted_toml());
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("<redacted>"));
    // an error about the secret does not echo it either, even one of the wrong type
    let e = err(&MINIMAL.replace("\"s3cr3t-value\"", "98765432"));
    assert!(
        e.contains("client_secret: invalid type: expected a string") && !e.contains("98765432"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}client_secret_file = \"/nonexistent\"\n"));
    assert!(!e.contains("s3cr3t-value") && e.contains("not both"), "{e}");
}

#[test]
fn secret_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "from-file\n").unwrap();
    let text = MINIMAL.replace(
        "client_secret = \"s3cr3t-value\"",
        &format!("client_secret_file = {:?}", path.display().to_string()),
    );
    let c = Config::from_toml(&text).unwrap();
    assert!(matches!(&c.tenants[0].credential, Credential::ClientSecretFile(p) if p == &path));
    assert_eq!(read_secret_file(&path).unwrap().expose(), "from-file");
    std::fs::write(&path, "  \n").unwrap();
    assert!(err(&text).contains("is empty"));
    assert!(err(&text.replace("secret\"", "missing\"")).contains("cannot read"));
}

const APP_PEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/app.pem");
const EC_PEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/ec.pem");

fn with_credential(credential: &str) -> String {
    MINIMAL.replace("client_secret = \"s3cr3t-value\"", credential)
}

#[test]
fn certificate_credentials_are_loaded_and_checked() {
    let c =
        Config::from_toml(&with_credential(&format!("certificate_file = {APP_PEM:?}"))).unwrap();
    assert!(matches!(
        &c.tenants[0].credential,
        Credential::Certificate {
            algorithm: AssertionAlgorithm::Ps256,
            ..
        }
    ));
    let c = Config::from_toml(&with_credential(&format!(
        "auth = \"certificate\"\ncertificate_file = {APP_PEM:?}\nassertion_algorithm = \"RS256\""
    )))
    .unwrap();
    assert!(matches!(
        &c.tenants[0].credential,
        Credential::Certificate {
            algorithm: AssertionAlgorithm::Rs256,
            ..
        }
    ));
    let shown = c.to_redacted_toml();
    assert!(
        shown.contains("app.pem") && !shown.contains("PRIVATE"),
        "{shown}"
    );
    let e = err(&with_credential("certificate_file = \"missing.pem\""));
    assert!(
        e.contains("tenants[0]") && e.contains("certificate_file: cannot read missing.pem"),
        "{e}"
    );
    let e = err(&with_credential(&format!("certificate_file = {EC_PEM:?}")));
    assert!(e.contains("certificate_file") && e.contains("RSA"), "{e}");
    let e = err(&with_credential("auth = \"certificate\""));
    assert!(e.contains("certificate_file: is required"), "{e}");
    let e = err(&format!("{MINIMAL}certificate_file = {APP_PEM:?}\n"));
    assert!(
        e.contains(
            "client_secret: is only used with `auth` = client_secret (this tenant uses certificate)"
        ),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}assertion_algorithm = \"HS256\"\n"));
    assert!(e.contains("assertion_algorithm"), "{e}");
}

#[test]
fn credentials_at_the_top_level_are_inherited_whole() {
    let text = format!(
        "client_id = \"msp-app\"\ncertificate_file = {APP_PEM:?}\nassertion_algorithm = \"RS256\"\n\
         [[tenants]]\nname = \"a\"\ntenant_id = \"a.example\"\n\
         [[tenants]]\nname = \"b\"\ntenant_id = \"b.example\"\nclient_id = \"own\"\nclient_secret = \"s\"\n"
    );
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(c.tenants[0].client_id, "msp-app");
    assert!(matches!(
        c.tenants[0].credential,
        Credential::Certificate {
            algorithm: AssertionAlgorithm::Rs256,
            ..
        }
    ));
    assert_eq!(c.tenants[1].client_id, "own");
    assert!(matches!(
        c.tenants[1].credential,
        Credential::ClientSecret(_)
    ));
    // A tenant's own managed identity is system-assigned unless it names one: the top
    // level's app id is no user-assigned identity. Inherited whole, the id comes along.
    let text = "client_id = \"msp-app\"\nclient_secret = \"s\"\n\
        [[tenants]]\nname = \"vm\"\nauth = \"managed_identity\"\n";
    let c = Config::from_toml(text).unwrap();
    let Credential::ManagedIdentity(mi) = &c.tenants[0].credential else {
        panic!("not managed identity")
    };
    assert_eq!(mi.client_id, None);
    let c = Config::from_toml(
        "client_id = \"uami\"\nauth = \"managed_identity\"\n[[tenants]]\nname = \"vm\"\n",
    )
    .unwrap();
    let Credential::ManagedIdentity(mi) = &c.tenants[0].credential else {
        panic!("not managed identity")
    };
    assert_eq!(mi.client_id.as_deref(), Some("uami"));
}

#[test]
fn workload_identity_falls_back_to_the_webhook_variables() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("azure-identity-token");
    std::fs::write(&token, "eyJ.fake.jwt").unwrap();
    let token_path = token.display().to_string();
    let env = |k: &str| match k {
        "AZURE_TENANT_ID" => Some("env-tenant.example".to_owned()),
        "AZURE_CLIENT_ID" => Some("env-client".to_owned()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some(token_path.clone()),
        "AZURE_AUTHORITY_HOST" => Some("https://login.microsoftonline.us/".to_owned()),
        _ => None,
    };
    let text = "[[tenants]]\nname = \"k8s\"\nauth = \"workload_identity\"\n";
    let c = Config::from_toml_with_env(text, &env).unwrap();
    // --check-config writes out what the variables gave: its output alone means the same.
    let shown = c.to_redacted_toml();
    let again = Config::from_toml(&shown).unwrap_or_else(|e| panic!("{e}\n{shown}"));
    assert_eq!(format!("{c:?}"), format!("{again:?}"));
    assert!(!shown.contains("eyJ"), "{shown}");
    let t = &c.tenants[0];
    assert_eq!(
        (t.tenant_id.as_str(), t.client_id.as_str()),
        ("env-tenant.example", "env-client")
    );
    assert_eq!(t.login_url, "https://login.microsoftonline.us");
    assert!(
        matches!(&t.credential, Credential::WorkloadIdentity { token_file } if token_file == &token)
    );
    // The file wins over the environment.
    let c = Config::from_toml_with_env(
        &format!(
            "{text}tenant_id = \"file-tenant\"\nlogin_url = \"https://login.microsoftonline.com\"\n"
        ),
        &env,
    )
    .unwrap();
    assert_eq!(c.tenants[0].tenant_id, "file-tenant");
    assert_eq!(c.tenants[0].login_url, "https://login.microsoftonline.com");
    // Without the environment every missing piece is named.
    let e = err(text);
    for key in [
        "tenant_id",
        "client_id",
        "federated_token_file: is required",
    ] {
        assert!(e.contains(key), "{key}: {e}");
    }
    // Other modes do not read the workload-identity variables.
    assert!(Config::from_toml_with_env(&with_credential(""), &env).is_err());
}

#[test]
fn managed_identity_picks_imds_or_app_service() {
    let text = "[[tenants]]\nname = \"vm\"\nauth = \"managed_identity\"\n";
    let c = Config::from_toml(text).unwrap();
    let Credential::ManagedIdentity(mi) = &c.tenants[0].credential else {
        panic!("not managed identity")
    };
    assert_eq!(mi.endpoint, IMDS_ENDPOINT);
    assert!(matches!(mi.protocol, IdentityProtocol::Imds) && mi.client_id.is_none());
    let c = Config::from_toml(&format!(
        "{text}client_id = \"uami\"\nmanaged_identity_endpoint = \"http://127.0.0.1:9/metadata/identity/oauth2/token\"\n"
    ))
    .unwrap();
    let Credential::ManagedIdentity(mi) = &c.tenants[0].credential else {
        panic!()
    };
    assert_eq!(mi.client_id.as_deref(), Some("uami"));
    let env = |k: &str| match k {
        "IDENTITY_ENDPOINT" => Some("http://localhost:42356/msi/token".to_owned()),
        "IDENTITY_HEADER" => Some("hdr-secret".to_owned()),
        _ => None,
    };
    let c = Config::from_toml_with_env(text, &env).unwrap();
    let Credential::ManagedIdentity(mi) = &c.tenants[0].credential else {
        panic!()
    };
    assert!(
        matches!(&mi.protocol, IdentityProtocol::AppService { header } if header.expose() == "hdr-secret")
    );
    assert!(!c.to_redacted_toml().contains("hdr-secret"));
    let e = err(&format!(
        "{text}managed_identity_endpoint = \"http://example.com/token\"\n"
    ));
    assert!(
        e.contains("managed_identity_endpoint") && e.contains("loopback or link-local"),
        "{e}"
    );
    let e = err(&format!("{text}client_secret = \"x\"\n"));
    assert!(e.contains("client_secret: is only used with"), "{e}");
    let e = err(&format!("{MINIMAL}auth = \"kerberos\"\n"));
    assert!(
        e.contains(
            "tenant \"contoso\" (tenants[0]): auth: unknown value `kerberos`; expected one of \
             client_secret, certificate, workload_identity, managed_identity"
        ),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}auth = \"managed_identty\"\n"));
    assert!(
        e.contains("auth: unknown value `managed_identty`; did you mean `managed_identity`?"),
        "{e}"
    );
}

#[test]
fn sovereign_clouds_refuse_global_only_reports() {
    for cloud in ["usgov", "usgov_dod", "china"] {
        let e = err(&format!(
            "{MINIMAL}cloud = \"{cloud}\"\nreports = [\"credential_usage_summary\"]\n"
        ));
        assert!(
            e.contains(&format!("report `credential_usage_summary` is not offered by Microsoft in the `{cloud}` cloud")),
            "{e}"
        );
        let ok = format!("{MINIMAL}cloud = \"{cloud}\"\n");
        assert!(Config::from_toml(&ok).is_ok());
    }
    for kind in ReportKind::all() {
        assert!(kind.offered_in(Cloud::Global));
    }
    assert!(!ReportKind::named("credential_user_registration_details").offered_in(Cloud::China));
    assert!(ReportKind::named("user_events_summary").offered_in(Cloud::China));
}

#[test]
fn env_layers_over_file_and_azure_variables_define_default_tenant() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", &format!("page_size = 100\n{MINIMAL}"))?;
        jail.set_env("ENTRA_EXPORTER_PAGE_SIZE", "250");
        let c = Config::load(&Sources {
            file: Some("c.toml".into()),
            use_env: true,
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(c.tenants[0].page_size, 250);

        jail.set_env("ENTRA_EXPORTER_PAGE_SISE", "1");
        let e = Config::load(&Sources {
            file: Some("c.toml".into()),
            use_env: true,
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "top level: unknown key page_sise; did you mean page_size? \
                 (from ENTRA_EXPORTER_PAGE_SISE)"
            ),
            "{e}"
        );
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
        jail.set_env("AZURE_CLIENT_ID", "cid");
        jail.set_env("AZURE_CLIENT_SECRET", "env-secret");
        let c = Config::load(&Sources {
            file: None,
            use_env: true,
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(c.tenants.len(), 1);
        assert_eq!(c.tenants[0].name, "default");
        assert_eq!(c.tenants[0].client_id, "cid");
        assert!(!c.to_redacted_toml().contains("env-secret"));
        Ok(())
    });
    figment::Jail::expect_with(|_| {
        let e = Config::load(&Sources {
            file: None,
            use_env: true,
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no tenants configured") && e.contains("--demo"),
            "{e}"
        );
        let e = Config::load(&Sources {
            file: Some("missing.toml".into()),
            use_env: false,
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        Ok(())
    });
}

#[test]
fn flag_variables_are_not_config_keys_but_other_prefixed_ones_are() {
    let sources = |flags: &[&str]| Sources {
        file: Some("c.toml".into()),
        use_env: true,
        flag_env_vars: flags.iter().map(|f| f.to_string()).collect(),
    };
    let flags = [
        "ENTRA_EXPORTER_LOG_LEVEL",
        "ENTRA_EXPORTER_WEB_LISTEN_ADDRESS",
    ];
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", MINIMAL)?;
        jail.set_env("ENTRA_EXPORTER_LOG_LEVEL", "debug");
        jail.set_env("ENTRA_EXPORTER_WEB_LISTEN_ADDRESS", "127.0.0.1:1");
        assert!(Config::load(&sources(&flags)).is_ok());
        // Not declared a flag, the same variable is an unknown key.
        let e = Config::load(&sources(&flags[1..])).unwrap_err().to_string();
        assert!(
            e.contains("top level: unknown key log_level; valid keys: ")
                && e.contains("(from ENTRA_EXPORTER_LOG_LEVEL)"),
            "{e}"
        );
        jail.set_env("ENTRA_EXPORTER_FOO", "1");
        let e = Config::load(&sources(&flags)).unwrap_err().to_string();
        assert!(
            e.contains("top level: unknown key foo; valid keys: ")
                && e.contains("(from ENTRA_EXPORTER_FOO)"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn azure_variables_follow_the_sdk() {
    let load = || {
        Config::load(&Sources {
            file: None,
            use_env: true,
            ..Sources::default()
        })
    };
    // Empty variables are unset: an empty certificate path does not turn the secret's
    // tenant into a certificate one.
    figment::Jail::expect_with(|jail| {
        jail.set_env("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
        jail.set_env("AZURE_CLIENT_ID", "cid");
        jail.set_env("AZURE_CLIENT_SECRET", "env-secret");
        jail.set_env("AZURE_CLIENT_CERTIFICATE_PATH", "");
        let c = load().unwrap();
        assert!(matches!(
            c.tenants[0].credential,
            Credential::ClientSecret(_)
        ));
        jail.set_env("AZURE_CLIENT_SECRET", "");
        jail.set_env("AZURE_CLIENT_CERTIFICATE_PATH", APP_PEM);
        let c = load().unwrap();
        assert!(matches!(
            c.tenants[0].credential,
            Credential::Certificate { .. }
        ));
        // Both set: the secret wins, as in EnvironmentCredential.
        jail.set_env("AZURE_CLIENT_SECRET", "env-secret");
        let c = load().unwrap();
        assert!(matches!(
            c.tenants[0].credential,
            Credential::ClientSecret(_)
        ));
        Ok(())
    });
    // Workload identity: AZURE_AUTHORITY_HOST is only the fallback of login_url, below
    // ENTRA_EXPORTER_LOGIN_URL; a bare host gets https.
    figment::Jail::expect_with(|jail| {
        jail.create_file("token", "eyJ.fake.jwt")?;
        let token = jail.directory().join("token");
        jail.set_env("AZURE_TENANT_ID", "contoso.onmicrosoft.com");
        jail.set_env("AZURE_CLIENT_ID", "cid");
        jail.set_env("AZURE_FEDERATED_TOKEN_FILE", token.display());
        jail.set_env("AZURE_AUTHORITY_HOST", "login.microsoftonline.us");
        let c = load().unwrap();
        assert!(matches!(
            c.tenants[0].credential,
            Credential::WorkloadIdentity { .. }
        ));
        assert_eq!(c.tenants[0].login_url, "https://login.microsoftonline.us");
        jail.set_env("ENTRA_EXPORTER_LOGIN_URL", "https://login.example.test");
        let c = load().unwrap();
        assert_eq!(c.tenants[0].login_url, "https://login.example.test");
        Ok(())
    });
}

#[test]
fn every_report_of_the_family_is_accepted_with_its_settings() {
    let names: Vec<String> = ReportKind::all()
        .filter(|r| *r != ReportKind::named("credential_user_registration_details"))
        // Enabled by `groups`/`exclude_groups` (tested in `groups_enable_membership`).
        .filter(|r| *r != ReportKind::named("group_membership"))
        // Enabled by `privileged_roles` (tested in `privileged_roles_enable_the_report`).
        .filter(|r| *r != ReportKind::named("privileged_roles"))
        .map(|r| format!("{:?}", r.name()))
        .collect();
    let c = Config::from_toml(&format!(
        "{MINIMAL}reports = [{}]\nusage_period = \"D7\"\nsummary_user_types = [\"member\", \"guest\"]\n\
         summary_user_roles = [\"privilegedAdmin\"]\nadmins_without_mfa = true\nmax_listed_admins = 3\n",
        names.join(", ")
    ))
    .unwrap();
    let t = &c.tenants[0];
    assert_eq!(t.reports.len(), names.len());
    assert_eq!(t.usage_period, "D7");
    assert_eq!(t.summary_user_types, ["member", "guest"]);
    assert_eq!(t.summary_user_roles, ["privilegedAdmin"]);
    assert!(t.admins_without_mfa);
    assert_eq!(t.max_listed_admins, 3);
    // A repeated value would query one pair twice and count its records twice.
    for (key, list) in [
        ("summary_user_types", "[\"member\", \"guest\", \"member\"]"),
        ("summary_user_roles", "[\"all\", \"all\"]"),
    ] {
        let e = err(&format!("{MINIMAL}{key} = {list}\n"));
        assert!(
            e.contains(&format!("tenant \"contoso\" (tenants[0]): {key}: `"))
                && e.contains("` is listed twice"),
            "{e}"
        );
    }
}

#[test]
fn admins_without_mfa_needs_the_registration_report() {
    let e = err(&format!(
        "{MINIMAL}reports = [\"credential_user_registration_details\"]\nadmins_without_mfa = true\n"
    ));
    assert!(
        e.contains("tenant \"contoso\" (tenants[0]): admins_without_mfa: needs the user_registration_details report"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}usage_period = \"d30\"\nsummary_user_roles = [\"root\"]\n"
    ));
    assert!(e.contains("usage_period: must be D1, D7 or D30"), "{e}");
    assert!(
        e.contains("summary_user_roles: unknown value `root`"),
        "{e}"
    );
}

#[test]
fn short_intervals_against_graph_are_warnings() {
    let two = format!(
        "refresh_interval = \"4m\"\n{MINIMAL}reports = [\"user_registration_details\", \"credential_usage_summary\"]\n\
         [[tenants]]\nname = \"fine\"\ntenant_id = \"f.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = \"x\"\n\
         refresh_interval = \"5m\"\n"
    );
    let c = Config::from_toml(&two).expect("a warning is not an error");
    assert_eq!(
        c.warnings(),
        [
            "tenant \"contoso\" (tenants[0]): refresh_interval: user_registration_details every 4m, \
             credential_usage_summary every 4m is under 5m: Graph recomputes these reports only every \
             few hours and throttles them per 10 s, so this spends the request budget without \
             fresher data; an interval of an hour or more is right"
        ]
    );
    // One report's own interval counts too, in a sovereign cloud as well.
    let c = Config::from_toml(&format!(
"{MINIMAL}cloud = \"usgov\"\nreport_refresh_intervals = {{ user_registration_details = \"30s\" }}\n"
    ))
    .unwrap();
    let w = c.warnings();
    assert!(
        w.len() == 1
            && w[0].contains(": refresh_interval: user_registration_details every 30s is under 5m"),
        "{w:?}"
    );
    // A simulator on loopback may be polled as often as a test likes.
    for url in [
        "http://127.0.0.1:10078",
        "http://localhost:1",
        "http://[::1]:2",
    ] {
        let c = Config::from_toml(&format!(
            "refresh_interval = \"20s\"\n{MINIMAL}graph_url = \"{url}\"\nlogin_url = \"{url}\"\n"
        ))
        .unwrap();
        assert!(c.warnings().is_empty(), "{url}");
    }
    assert!(Config::from_toml(MINIMAL).unwrap().warnings().is_empty());
}

#[test]
fn a_config_file_that_cannot_be_read_says_why() {
    let path = std::path::Path::new("/etc/entra/entra.toml");
    let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    assert_eq!(
        unreadable(path, &denied),
        "config file /etc/entra/entra.toml: permission denied (the exporter's user cannot \
         read it, or cannot enter a directory on its path)"
    );
    let load = |file: &std::path::Path| {
        Config::load(&Sources {
            file: Some(file.to_owned()),
            ..Sources::default()
        })
        .unwrap_err()
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&dir.path().join("missing.toml")),
        format!(
            "config file {} does not exist",
            dir.path().join("missing.toml").display()
        )
    );
    assert_eq!(
        load(dir.path()),
        format!(
            "config file {} is a directory, not a file",
            dir.path().display()
        )
    );
    let file = dir.path().join("entra.toml");
    std::fs::write(&file, "x").unwrap();
    let e = load(&file.join("below-a-file.toml"));
    assert!(
        e.starts_with(&format!(
            "cannot read config file {}/below-a-file.toml: ",
            file.display()
        )),
        "{e}"
    );
}

// --- Per-app budget (issue 16) ---

#[test]
fn app_budget_defaults_to_graphs_split_over_the_shards_unless_set() {
    let tenant = "[[tenants]]\nname = \"t\"\ntenant_id = \"t.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let unset = Config::from_toml(tenant).unwrap();
    assert_eq!(unset.app_max_requests_per_10s, None);
    assert_eq!(unset.app_budget(1), 122);
    assert_eq!(unset.app_budget(2), 61);
    assert_eq!(unset.app_budget(3), 40);
    assert_eq!(unset.app_budget(500), 1, "never 0");
    let set = Config::from_toml(&format!("app_max_requests_per_10s = 100\n{tenant}")).unwrap();
    assert_eq!(set.app_budget(1), 100);
    assert_eq!(set.app_budget(2), 100, "a set budget is this replica's own");
    // --check-config shows it at the top level, and it loads back.
    let shown = set.to_redacted_toml();
    assert!(
        shown.contains("\napp_max_requests_per_10s = 100\n"),
        "{shown}"
    );
    let shown = shown.replace("# client_secret", "client_secret");
    let again = Config::from_toml(&shown.replace("<redacted>", "s"));
    assert_eq!(
        again.map(|c| c.app_max_requests_per_10s).ok(),
        Some(Some(100))
    );
    assert!(
        !unset
            .to_redacted_toml()
            .contains("app_max_requests_per_10s")
    );
}

#[test]
fn app_budget_of_zero_or_per_tenant_is_refused_naming_the_key() {
    let tenant = "[[tenants]]\nname = \"t\"\ntenant_id = \"t.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let e = Config::from_toml(&format!("app_max_requests_per_10s = 0\n{tenant}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("app_max_requests_per_10s") && e.contains("at least 1"),
        "{e}"
    );
    // Top level only: it is the app's, not a tenant's.
    let e = Config::from_toml(&format!("{tenant}app_max_requests_per_10s = 50\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("app_max_requests_per_10s"), "{e}");
}

#[test]
fn groups_enable_membership_and_are_checked() {
    let c = Config::from_toml(&format!(
        "groups = [\"Finance\"]\nexclude_users = [\"bg*@x\"]\n{MINIMAL}exclude_groups = [\"Break glass\"]\n\
         directory_max_requests_per_10s = 7\n"
    ))
    .unwrap();
    let t = &c.tenants[0];
    let names: Vec<&str> = t.reports.iter().map(|r| r.kind.name()).collect();
    assert_eq!(names, ["user_registration_details", "group_membership"]);
    assert_eq!(t.groups, ["Finance"], "inherited from the top level");
    assert_eq!(t.exclude_groups, ["Break glass"]);
    assert_eq!(t.exclude_users, ["bg*@x"]);
    assert_eq!(t.directory_max_requests_per_10s, 7);
    // The effective config loads back to the same.
    let again = Config::from_toml(
        &c.to_redacted_toml()
            .replace("# client_secret = \"<redacted>\"", "client_secret = \"s\""),
    )
    .unwrap();
    assert_eq!(again.tenants[0].groups, t.groups);
    assert_eq!(again.tenants[0].reports.len(), 2);
    let d = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(d.tenants[0].directory_max_requests_per_10s, 20);
    assert_eq!(d.tenants[0].reports.len(), 1);

    let many: Vec<String> = (0..51).map(|i| format!("\"g{i}\"")).collect();
    for (extra, key, why) in [
        (
            format!("groups = [{}]", many.join(",")),
            "groups",
            "at most 50",
        ),
        (
            "groups = [\"a\", \"a\"]".to_owned(),
            "groups",
            "listed twice",
        ),
        (
            "exclude_groups = [\" \"]".to_owned(),
            "exclude_groups",
            "empty entry",
        ),
        (
            "reports = [\"group_membership\"]".to_owned(),
            "reports",
            "neither groups",
        ),
        (
            "groups = [\"a\"]\nreports = [\"credential_usage_summary\"]".to_owned(),
            "groups",
            "needs a registration",
        ),
        (
            "exclude_users = [\"x\"]\nreports = [\"credential_user_registration_details\"]"
                .to_owned(),
            "reports",
            "join the registration",
        ),
        (
            "groups = [\"a\"]\ndirectory_max_requests_per_10s = 0".to_owned(),
            "directory_max_requests_per_10s",
            "at least 1",
        ),
    ] {
        let e = Config::from_toml(&format!("{MINIMAL}{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(why), "{extra}: {e}");
    }
}

#[test]
fn privileged_roles_enable_the_report_and_are_checked() {
    let c = Config::from_toml(&format!(
        "privileged_roles = \"default\"\nlist_privileged_users = true\n{MINIMAL}"
    ))
    .unwrap();
    let t = &c.tenants[0];
    let names: Vec<&str> = t.reports.iter().map(|r| r.kind.name()).collect();
    assert_eq!(names, ["user_registration_details", "privileged_roles"]);
    assert_eq!(t.privileged_roles.len(), 12, "the default set, inherited");
    assert_eq!(
        t.privileged_roles[0],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    assert!(t.list_privileged_users);
    let settings = t.report_settings();
    assert_eq!(settings.privileged_roles, t.privileged_roles);
    // The effective config loads back to the same.
    let again = Config::from_toml(
        &c.to_redacted_toml()
            .replace("# client_secret = \"<redacted>\"", "client_secret = \"s\""),
    )
    .unwrap();
    assert_eq!(again.tenants[0].privileged_roles, t.privileged_roles);
    // A list as written; [] and unset are off.
    let c = Config::from_toml(&format!(
        "{MINIMAL}privileged_roles = [\"Helpdesk Administrator\", \"62e90394-69f5-4237-9190-012177145e10\"]\n"
    ))
    .unwrap();
    assert_eq!(c.tenants[0].privileged_roles.len(), 2);
    assert_eq!(c.tenants[0].reports.len(), 2);
    for off in ["privileged_roles = []\n", ""] {
        let c = Config::from_toml(&format!("{MINIMAL}{off}")).unwrap();
        assert!(c.tenants[0].privileged_roles.is_empty());
        assert_eq!(c.tenants[0].reports.len(), 1);
    }
    let many: Vec<String> = (0..33).map(|i| format!("\"r{i}\"")).collect();
    for (extra, key, why) in [
        (
            "privileged_roles = \"all\"".to_owned(),
            "privileged_roles",
            "must be \"default\"",
        ),
        (
            format!("privileged_roles = [{}]", many.join(",")),
            "privileged_roles",
            "at most 32",
        ),
        (
            "privileged_roles = [\"a\", \"a\"]".to_owned(),
            "privileged_roles",
            "listed twice",
        ),
        (
            "reports = [\"user_registration_details\", \"privileged_roles\"]".to_owned(),
            "reports",
            "privileged_roles is not set",
        ),
        (
            "privileged_roles = \"default\"\nreports = [\"credential_usage_summary\"]".to_owned(),
            "privileged_roles",
            "needs the user_registration_details",
        ),
        (
            "list_privileged_users = true".to_owned(),
            "list_privileged_users",
            "needs privileged_roles",
        ),
    ] {
        let e = Config::from_toml(&format!("{MINIMAL}{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(why), "{extra}: {e}");
    }
}
