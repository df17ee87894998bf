//! Runs `examples/quickstart.sh` against the binary cargo built for the tests,
//! so the README's walk-through cannot silently rot.

use std::process::Command;

#[test]
fn quickstart_script_runs_clean() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed: skipping the quickstart walk-through");
        return;
    }
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.sh"))
        .env("WAG_BIN", env!("CARGO_BIN_EXE_wa-gateway"))
        .output()
        .expect("run quickstart.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "quickstart failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all steps behaved as documented"));
    assert!(stdout.contains("GET /api/v1/admin/sessions -> 403"));
}
