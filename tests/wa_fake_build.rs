//! The fake WhatsApp server's certificates are not signed by WhatsApp, so
//! the tests build whatsapp-rust with `danger-skip-cert-chain-verify` (a
//! dev-dependency feature). This proves the feature stays out of what
//! `cargo build --release` builds: resolver 2 resolves the normal build
//! without dev-dependency features, and `cargo tree -e no-dev` shows exactly
//! that resolution.

use std::process::Command;

/// The features cargo resolves for `wacore-noise` (where the skip lives),
/// with or without the dev-dependencies.
fn wacore_noise_features(with_dev: bool) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let edges = if with_dev { "features" } else { "features,no-dev" };
    let out = Command::new(cargo)
        .args(["tree", "--frozen", "-e", edges, "-i", "wacore-noise"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_release_build_verifies_whatsapps_certificate_chain() {
    let release = wacore_noise_features(false);
    assert!(release.contains("wacore-noise v0.7"), "{release}");
    assert!(!release.contains("danger-skip-cert-chain-verify"), "the release build skips the cert check:\n{release}");
    // The check can see the feature where it is on: the test build.
    let tests = wacore_noise_features(true);
    assert!(tests.contains("danger-skip-cert-chain-verify"), "{tests}");
}
