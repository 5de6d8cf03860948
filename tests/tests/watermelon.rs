//! Sync with the real client: WatermelonDB's own `synchronize()` (npm
//! `@nozbe/watermelondb`, LokiJS adapter, in Node) against the real API, on the
//! backend this run uses. The scenarios live in `tests/watermelon/scenarios.js`
//! (schema version 1; each ends with a fresh device and checks every device's
//! records) and `tests/watermelon/partners.js` (schema version 2: partner
//! items between two linked people); every scenario checks that WatermelonDB
//! logged no `[Sync]` diagnostic.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use attune_tests::TestApp;

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("watermelon")
}

/// Installs the pinned client packages (`package-lock.json`) when they are not
/// there yet; `.ci/run` installs them up front from its cache.
fn ensure_client_installed(dir: &Path) {
    if dir.join("node_modules/@nozbe/watermelondb/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm must be installed to run the WatermelonDB client tests (Node 20 and npm)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[tokio::test]
async fn watermelondb_synchronize_keeps_deletions_and_converges_on_every_device() {
    let dir = client_dir();
    ensure_client_installed(&dir);
    let app = TestApp::spawn().await;

    let output = tokio::process::Command::new("node")
        .args(["--test-reporter=spec", "--test", "scenarios.js", "partners.js"])
        .current_dir(&dir)
        .env("ATTUNE_URL", &app.base_url)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("node must be installed to run the WatermelonDB client tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "WatermelonDB scenarios failed on {:?}:\n{stdout}\n{stderr}", app.backend);
    // The runner's own summary: scenarios ran, and none failed, was skipped or cancelled.
    let count = |label: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("ℹ {label} "))?.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no `{label}` count in node's summary:\n{stdout}"))
    };
    assert!(count("pass") >= 28, "too few scenarios ran:\n{stdout}");
    for label in ["fail", "cancelled", "skipped", "todo"] {
        assert_eq!(count(label), 0, "{label}:\n{stdout}");
    }
    app.stop().await;
}
