//! The embedded outbox: without `ATTUNE_SMTP_URL`, an install whose queue is its
//! own (no `REDIS_URL`) writes each mail as an `.eml` file under
//! `<data dir>/outbox/`, readable by its owner alone, and the log names the file,
//! never the code in it. One test in this binary: it captures the process's log.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use attune_shared::{config::LogFormat, telemetry};
use attune_tests::{TestApp, eventually, fake_smtp::ReceivedMail};
use reqwest::StatusCode;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn outbox_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn embedded_mail_goes_to_private_outbox_files_that_the_log_names() {
    let captured = Captured::default();
    let writer = captured.clone();
    telemetry::init_with_writer("info", LogFormat::Json, move || writer.clone());

    // The queue in the data directory (also on the PostgreSQL run): embedded mail.
    let app = TestApp::spawn_with(|s| s.redis_url = None).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.register("ola@example.org").await;
    let reset = app.post("/v1/auth/password-reset").json(&json!({"email": "ola@example.org"})).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::ACCEPTED);
    // A file is complete once the log names it (the worker logs after writing).
    let logged = |path: &std::path::Path| {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        text.lines().any(|l| l.contains(&name) && l.contains("outbox"))
    };
    eventually("two mails in the outbox, each named in the log", std::time::Duration::from_secs(30), || async {
        let files = outbox_files(&outbox);
        files.len() == 2 && files.iter().all(|f| logged(f))
    })
    .await;

    let mut codes = vec![];
    for path in outbox_files(&outbox) {
        assert_eq!(path.extension().unwrap(), "eml");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let mail =
            ReceivedMail { mail_from: String::new(), rcpt_to: vec![], data: std::fs::read_to_string(&path).unwrap() };
        assert_eq!(mail.header("To").as_deref(), Some("ola@example.org"));
        attune_tests::fake_smtp::assert_discreet(&mail);
        codes.push(mail.code().unwrap());
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        assert!(text.lines().any(|l| l.contains(&name) && l.contains("outbox")), "the log names {name}:\n{text}");
    }
    // The codes in the files work: one verifies the address, the other resets.
    let mut worked = 0;
    for code in &codes {
        let verified = app.post("/v1/auth/verify-email").json(&json!({"token": code})).send().await.unwrap();
        let body = json!({"token": code, "new_password": "a new and longer passphrase"});
        let reset = app.post("/v1/auth/password-reset/confirm").json(&body).send().await.unwrap();
        worked += usize::from(verified.status() == StatusCode::NO_CONTENT);
        worked += usize::from(reset.status() == StatusCode::NO_CONTENT);
    }
    assert_eq!(worked, 2);
    app.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for code in &codes {
        assert!(!logs.contains(code.as_str()) && !logs.contains(&code[..20]), "the log holds a code");
    }
    assert!(!logs.contains("ola@example.org"));
}
