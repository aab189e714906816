//! Stamps the binary with the git commit it was built from, for `learnloop --version`.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=LEARNLOOP_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout); outside a git checkout these paths do not
    // exist and cargo then reruns the script only when the package changes.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
