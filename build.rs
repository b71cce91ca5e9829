//! Records the git revision for `entra_exporter_build_info{revision}`.
use std::path::Path;
use std::process::Command;

/// Git's answer to `args`, trimmed; `None` without git, outside a repository, or empty.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ENTRA_MFA_EXPORTER_GIT_REVISION");
    // Without other rerun-if lines cargo would rerun this on any change in the package.
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("ENTRA_MFA_EXPORTER_GIT_REVISION").is_some() {
        return;
    }
    // The files that change with the revision, wherever git keeps them (a worktree's
    // HEAD is not .git/HEAD): HEAD (a checkout), the branch's ref (a commit) and
    // packed-refs. Only files that exist: watching a missing one (the image's build
    // context has no .git) would rebuild the crate on every cargo build.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(rev) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=ENTRA_MFA_EXPORTER_GIT_REVISION={rev}");
    }
}
