//! Records the git revision for `entra_exporter_build_info{revision}`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ENTRA_MFA_EXPORTER_GIT_REVISION");
    if std::env::var_os("ENTRA_MFA_EXPORTER_GIT_REVISION").is_some() {
        // Git is not asked, so .git/HEAD does not matter; watching it where it is missing
        // (the image's build context) would rebuild the crate on every cargo build.
        return;
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(rev) = rev {
        println!("cargo:rustc-env=ENTRA_MFA_EXPORTER_GIT_REVISION={rev}");
    }
}
