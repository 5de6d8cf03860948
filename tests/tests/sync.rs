//! Offline-first sync on WatermelonDB's protocol, as an app's `synchronize()` uses it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::collections::BTreeSet;

use attune_tests::{Backend, TEST_DATA_KEYS, TestApp, expect_problem, read};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const NOW_MS: i64 = 1_795_000_000_000;

fn checkin(id: &str, mood: i64, note: Option<&str>) -> Value {
    json!({"id": id, "occurred_at": NOW_MS, "mood": mood, "anxiety": 3, "comfort": 4,
           "exercise_id": null, "completed": false, "note": note, "tags": "[\"evening\"]",
           "_status": "created", "_changed": ""})
}

fn journal(id: &str, body: &str) -> Value {
    json!({"id": id, "step": 1, "prompt_id": "s1-where-it-started", "body": body, "occurred_at": NOW_MS})
}

fn boundary(id: &str, text: &str) -> Value {
    json!({"id": id, "kind": "emotional", "text": text, "shared_with_partner": false, "active": true})
}

fn created(table: &str, records: Vec<Value>) -> Value {
    json!({ table: {"created": records, "updated": [], "deleted": []} })
}

fn ids(pull: &Value, table: &str, kind: &str) -> BTreeSet<String> {
    pull["changes"][table][kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {table}.{kind} in {pull}"))
        .iter()
        .map(|r| r.as_str().map_or_else(|| r["id"].as_str().unwrap().to_owned(), str::to_owned))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn timestamp(pull: &Value) -> i64 {
    pull["timestamp"].as_i64().unwrap()
}

#[tokio::test]
async fn a_first_sync_then_changes_flow_between_two_devices() {
    let app = TestApp::spawn().await;
    let user = app.register("sync@example.org").await;

    // Device A: first pull of an empty account, then its local records go up.
    let first = app.pull(&user, None).await;
    for table in ["checkins", "journal_entries", "boundaries"] {
        for kind in ["created", "updated", "deleted"] {
            assert!(first["changes"][table][kind].as_array().unwrap().is_empty(), "{first}");
        }
    }
    let t0 = timestamp(&first);
    let pushed = app
        .push(
            &user,
            Some(t0),
            json!({
                "checkins": {"created": [checkin("c1", 2, Some("tight chest")), checkin("c2", 4, None)], "updated": [], "deleted": []},
                "journal_entries": {"created": [journal("j1", "I notice I go quiet when I'm scared.")], "updated": [], "deleted": []},
                "boundaries": {"created": [boundary("b1", "I'd like to be asked before a hug.")], "updated": [], "deleted": []},
            }),
        )
        .await;
    let (status, _, body) = read(pushed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pushed_at = body["timestamp"].as_i64().unwrap();
    assert!(pushed_at > t0, "server timestamps strictly increase");

    // Device B signs in and pulls everything, values intact; records always come as
    // `updated` (the client syncs with `sendCreatedAsUpdated: true`).
    let b = app.pull(&user, None).await;
    assert_eq!(ids(&b, "checkins", "updated"), set(&["c1", "c2"]));
    assert_eq!(ids(&b, "journal_entries", "updated"), set(&["j1"]));
    let c1 = b["changes"]["checkins"]["updated"].as_array().unwrap().iter().find(|r| r["id"] == "c1").unwrap().clone();
    assert_eq!(
        c1,
        json!({"id": "c1", "occurred_at": NOW_MS, "mood": 2, "anxiety": 3, "comfort": 4, "exercise_id": null,
                          "completed": false, "note": "tight chest", "tags": "[\"evening\"]"}),
        "no _status/_changed"
    );
    assert_eq!(b["changes"]["boundaries"]["updated"][0]["text"], "I'd like to be asked before a hug.");
    let tb = timestamp(&b);
    assert_eq!(tb, pushed_at);

    // Device A's incremental pull sees its own records, as updated: were they sent
    // as created, WatermelonDB would recreate any of them it deleted meanwhile.
    let a = app.pull(&user, Some(t0)).await;
    assert_eq!(ids(&a, "checkins", "updated"), set(&["c1", "c2"]));

    // Device B updates c1 and deletes c2; device A pulls exactly that.
    let mut c1_changed = checkin("c1", 3, Some("a little lighter"));
    c1_changed["_status"] = json!("updated");
    let response = app
        .push(&user, Some(tb), json!({"checkins": {"created": [], "updated": [c1_changed], "deleted": ["c2"]}}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let a2 = app.pull(&user, Some(timestamp(&a))).await;
    assert_eq!(ids(&a2, "checkins", "updated"), set(&["c1"]));
    assert_eq!(ids(&a2, "checkins", "deleted"), set(&["c2"]));
    assert_eq!(a2["changes"]["checkins"]["updated"][0]["note"], "a little lighter");
    assert!(ids(&a2, "journal_entries", "updated").is_empty(), "unchanged tables stay empty");

    // Nothing new: an empty pull with the same timestamp.
    let a3 = app.pull(&user, Some(timestamp(&a2))).await;
    assert!(ids(&a3, "checkins", "updated").is_empty() && ids(&a3, "checkins", "deleted").is_empty());
    assert_eq!(timestamp(&a3), timestamp(&a2));
    app.stop().await;
}

#[tokio::test]
async fn pushes_follow_the_protocol_rules() {
    let app = TestApp::spawn().await;
    let user = app.register("rules@example.org").await;
    let t0 = timestamp(&app.pull(&user, None).await);
    assert_eq!(
        app.push(&user, Some(t0), created("checkins", vec![checkin("x", 2, None)])).await.status(),
        StatusCode::OK
    );
    let t1 = timestamp(&app.pull(&user, Some(t0)).await);

    // Created but already there (the app never heard the first push succeed): an update.
    let again = app.push(&user, Some(t1), created("checkins", vec![checkin("x", 5, None)])).await;
    assert_eq!(again.status(), StatusCode::OK);
    let t2 = timestamp(&app.pull(&user, Some(t1)).await);
    let all = app.pull(&user, None).await;
    assert_eq!(all["changes"]["checkins"]["updated"][0]["mood"], 5);

    // Updated but missing, with no tombstone: created.
    let update_missing = json!({"checkins": {"created": [], "updated": [checkin("ghost", 1, None)], "deleted": []}});
    assert_eq!(app.push(&user, Some(t2), update_missing).await.status(), StatusCode::OK);
    // Deleting something that does not exist is fine.
    let delete_missing = json!({"checkins": {"created": [], "updated": [], "deleted": ["never-existed"]}});
    assert_eq!(app.push(&user, Some(t2), delete_missing).await.status(), StatusCode::OK);

    // Delete x, then another device (which last pulled before that) updates x: 409.
    let t3 = timestamp(&app.pull(&user, Some(t2)).await);
    let delete_x = json!({"checkins": {"created": [], "updated": [], "deleted": ["x"]}});
    assert_eq!(app.push(&user, Some(t3), delete_x).await.status(), StatusCode::OK);
    let stale_update = json!({"checkins": {"created": [checkin("fresh", 3, None)], "updated": [checkin("x", 1, None)], "deleted": []}});
    let conflict = expect_problem(app.push(&user, Some(t3), stale_update).await, StatusCode::CONFLICT).await;
    assert_eq!(conflict["conflicts"], json!([{"table": "checkins", "id": "x"}]));
    let everything = app.pull(&user, None).await;
    assert!(!ids(&everything, "checkins", "updated").contains("fresh"), "a refused push applies nothing");
    // Even after pulling the deletion, updating a deleted record is refused: the
    // tombstone says it was deleted.
    let t4 = timestamp(&app.pull(&user, Some(t3)).await);
    let late_update = json!({"checkins": {"created": [], "updated": [checkin("x", 1, None)], "deleted": []}});
    expect_problem(app.push(&user, Some(t4), late_update).await, StatusCode::CONFLICT).await;
    app.stop().await;
}

#[tokio::test]
async fn a_record_changed_since_the_last_pull_is_a_conflict_and_nothing_applies() {
    let app = TestApp::spawn().await;
    let user = app.register("conflict@example.org").await;
    let t0 = timestamp(&app.pull(&user, None).await);
    app.push(&user, Some(t0), created("checkins", vec![checkin("shared", 3, Some("v1")), checkin("other", 3, None)]))
        .await;
    let phone = timestamp(&app.pull(&user, Some(t0)).await);
    let tablet = phone;
    // The phone edits first.
    let edit = json!({"checkins": {"created": [], "updated": [checkin("shared", 4, Some("phone"))], "deleted": []}});
    assert_eq!(app.push(&user, Some(phone), edit).await.status(), StatusCode::OK);
    // The tablet, still on the old pull, edits the same record and another one.
    let edit = json!({"checkins": {"created": [], "updated": [checkin("shared", 1, Some("tablet")), checkin("other", 1, Some("tablet"))], "deleted": []}});
    let problem = expect_problem(app.push(&user, Some(tablet), edit).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["type"], "/problems/sync-conflict");
    assert_eq!(problem["conflicts"], json!([{"table": "checkins", "id": "shared"}]));
    let now = app.pull(&user, None).await;
    let records = now["changes"]["checkins"]["updated"].as_array().unwrap();
    let note_of = |id: &str| records.iter().find(|r| r["id"] == id).unwrap()["note"].clone();
    assert_eq!(note_of("shared"), "phone");
    assert_eq!(note_of("other"), Value::Null, "all or nothing");
    // Deleting a record changed since the last pull is a conflict too.
    let delete = json!({"checkins": {"created": [], "updated": [], "deleted": ["shared"]}});
    expect_problem(app.push(&user, Some(tablet), delete).await, StatusCode::CONFLICT).await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_pushes_name_table_record_and_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("invalid@example.org").await;
    let mut bad = checkin("bad-one", 9, None);
    bad["tags"] = json!("not json");
    let changes = json!({
        "checkins": {"created": [checkin("good", 3, Some("fine")), bad], "updated": [], "deleted": []},
        "journal_entries": {"created": [{"id": "j", "body": "x".repeat(20_001), "occurred_at": NOW_MS, "unknown": true}], "updated": [], "deleted": []},
    });
    let problem = expect_problem(app.push(&user, Some(0), changes).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors: Vec<(String, String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["table"].as_str().unwrap().to_owned(),
                e["record_id"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("checkins".to_owned(), "bad-one".to_owned(), "mood".to_owned()),
            ("checkins".to_owned(), "bad-one".to_owned(), "tags".to_owned()),
            ("journal_entries".to_owned(), "j".to_owned(), "body".to_owned()),
        ]
    );
    assert_eq!(app.count_rows("checkins").await, 0, "nothing applied");

    let unknown_table = json!({"secrets": {"created": [], "updated": [], "deleted": []}});
    let problem = expect_problem(app.push(&user, Some(0), unknown_table).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["table"], "secrets");

    let duplicate = json!({"checkins": {"created": [checkin("d", 3, None)], "updated": [], "deleted": ["d"]}});
    expect_problem(app.push(&user, Some(0), duplicate).await, StatusCode::UNPROCESSABLE_ENTITY).await;

    let bad_id = json!({"checkins": {"created": [checkin("../etc", 3, None)], "updated": [], "deleted": []}});
    expect_problem(app.push(&user, Some(0), bad_id).await, StatusCode::UNPROCESSABLE_ENTITY).await;

    let bad_since = app.get("/v1/sync?last_pulled_at=yesterday").bearer_auth(&user.access_token).send().await.unwrap();
    expect_problem(bad_since, StatusCode::UNPROCESSABLE_ENTITY).await;
    let no_token = app.get("/v1/sync").send().await.unwrap();
    expect_problem(no_token, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn a_push_over_5000_records_or_the_body_limit_gets_413() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 4 * 1024 * 1024).await;
    let user = app.register("limits@example.org").await;
    let many: Vec<Value> = (0..5_001).map(|i| checkin(&format!("r{i}"), 3, None)).collect();
    let problem =
        expect_problem(app.push(&user, Some(0), created("checkins", many)).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(problem["detail"].as_str().unwrap().contains("5000"), "{problem}");
    let exactly: Vec<Value> = (0..5_000).map(|i| checkin(&format!("r{i}"), 3, None)).collect();
    let (status, _, body) = read(app.push(&user, Some(0), created("checkins", exactly)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pulled = app.pull(&user, None).await;
    assert_eq!(pulled["changes"]["checkins"]["updated"].as_array().unwrap().len(), 5_000, "pages stream whole");

    let huge = "x".repeat(5 * 1024 * 1024);
    let response = app
        .post("/v1/sync?last_pulled_at=0")
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(format!(r#"{{"changes":{{"checkins":{{"created":[],"updated":[],"deleted":[],"pad":"{huge}"}}}}}}"#))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    app.stop().await;
}

#[tokio::test]
async fn ids_belong_to_their_owner_and_nobody_else_can_touch_them() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.push(&ana, Some(0), created("checkins", vec![checkin("same-id", 2, Some("ana's note"))])).await;

    // Ben uses the very same id: it is his own record, not Ana's.
    let (status, _, _) =
        read(app.push(&ben, Some(0), created("checkins", vec![checkin("same-id", 5, Some("ben's"))])).await).await;
    assert_eq!(status, StatusCode::OK);
    let ben_pull = app.pull(&ben, None).await;
    assert_eq!(ben_pull["changes"]["checkins"]["updated"].as_array().unwrap().len(), 1);
    assert_eq!(ben_pull["changes"]["checkins"]["updated"][0]["note"], "ben's");
    // Ben updates and deletes "same-id" and a guessed id: only his own records move.
    let ben_t = timestamp(&ben_pull);
    app.push(
        &ben,
        Some(ben_t),
        json!({"checkins": {"created": [], "updated": [checkin("same-id", 1, Some("x"))], "deleted": []}}),
    )
    .await;
    let ben_t = timestamp(&app.pull(&ben, Some(ben_t)).await);
    app.push(&ben, Some(ben_t), json!({"checkins": {"created": [], "updated": [], "deleted": ["same-id"]}})).await;

    let ana_pull = app.pull(&ana, None).await;
    let records = ana_pull["changes"]["checkins"]["updated"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["note"], "ana's note");
    assert_eq!(records[0]["mood"], 2);
    assert!(ids(&ana_pull, "checkins", "deleted").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn private_text_is_ciphertext_at_rest_and_bound_to_its_record() {
    let app = TestApp::spawn().await;
    let user = app.register("private@example.org").await;
    let secrets = ["my chest tightens at night", "I was hurt when I was young", "no touching my neck"];
    let changes = json!({
        "checkins": {"created": [checkin("c1", 2, Some(secrets[0])), checkin("c2", 2, Some("second"))], "updated": [], "deleted": []},
        "journal_entries": {"created": [journal("j1", secrets[1])], "updated": [], "deleted": []},
        "boundaries": {"created": [boundary("b1", secrets[2])], "updated": [], "deleted": []},
    });
    assert_eq!(app.push(&user, Some(0), changes).await.status(), StatusCode::OK);

    let raw_rows = dump(&app, &["checkins", "journal_entries", "boundaries"]).await;
    for secret in secrets {
        assert!(!raw_rows.contains(secret), "plaintext {secret:?} found at rest");
        for word in secret.split_whitespace().filter(|w| w.len() > 4) {
            assert!(!raw_rows.contains(word), "a word of private text ({word}) found at rest");
        }
    }
    assert!(raw_rows.contains("v1:t1:"), "values carry their key id");
    if app.backend == Backend::Sqlite {
        let file = std::fs::read(app.settings.data_dir.join("attune.db")).unwrap();
        let wal = std::fs::read(app.settings.data_dir.join("attune.db-wal")).unwrap_or_default();
        for bytes in [file, wal] {
            assert!(!String::from_utf8_lossy(&bytes).contains(secrets[0]), "plaintext in the SQLite file");
        }
    }

    // Copying c1's ciphertext onto c2 does not give c2 c1's note: it fails to open.
    let c1_note = scalar(&app, "SELECT note FROM checkins WHERE id = 'c1'").await;
    exec(&app, &format!("UPDATE checkins SET note = '{c1_note}' WHERE id = 'c2'")).await;
    let response = app.get("/v1/sync?last_pulled_at=0").bearer_auth(&user.access_token).send().await.unwrap();
    let body = response.text().await;
    let leaked = body.as_ref().is_ok_and(|b| b.contains(secrets[0]));
    assert!(!leaked, "a moved ciphertext must not decrypt");
    assert!(body.is_err() || serde_json::from_str::<Value>(&body.unwrap()).is_err(), "the pull fails rather than lie");
    app.stop().await;
}

#[tokio::test]
async fn rotating_keys_re_encrypts_old_values_and_keeps_them_readable() {
    let app = TestApp::spawn().await;
    let user = app.register("rotate@example.org").await;
    app.push(&user, Some(0), created("journal_entries", vec![journal("j1", "written under the first key")])).await;
    let before = scalar(&app, "SELECT body FROM journal_entries WHERE id = 'j1'").await;
    assert!(before.starts_with("v1:t1:"));

    let ring = format!("{TEST_DATA_KEYS},t2:{}", "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=");
    let service = app.sync_service(&ring);
    let cipher = attune_shared::crypto::DataCipher::new(attune_shared::secrets::KeyRing::parse(&ring).unwrap());
    let rewritten = attune_shared::sync::rotate_keys(&app.db, &cipher).await.unwrap();
    assert_eq!(rewritten, 1);
    let after = scalar(&app, "SELECT body FROM journal_entries WHERE id = 'j1'").await;
    assert!(after.starts_with("v1:t2:"), "{after}");
    assert_eq!(attune_shared::sync::rotate_keys(&app.db, &cipher).await.unwrap(), 0, "idempotent");
    let pulled = service.pull_value(user.uuid(), &Default::default()).await.unwrap();
    assert_eq!(pulled["changes"]["journal_entries"]["updated"][0]["body"], "written under the first key");
    app.stop().await;
}

#[tokio::test]
async fn deletions_are_forgotten_after_retention_and_stale_clients_get_a_replacement_sync() {
    let app = TestApp::spawn().await;
    let user = app.register("stale@example.org").await;
    app.push(&user, Some(0), created("checkins", vec![checkin("keep", 3, None), checkin("drop", 3, None)])).await;
    let old_pull = timestamp(&app.pull(&user, None).await);
    let delete = json!({"checkins": {"created": [], "updated": [], "deleted": ["drop"]}});
    assert_eq!(app.push(&user, Some(old_pull), delete).await.status(), StatusCode::OK);

    // Within retention: an ordinary incremental pull with the deletion.
    app.clock.advance(chrono::Duration::days(89));
    let user = app.sign_in_again(&user).await;
    let recent = app.pull(&user, Some(old_pull)).await;
    assert_eq!(ids(&recent, "checkins", "deleted"), set(&["drop"]));
    assert!(recent.get("experimentalStrategy").is_none());

    // Past retention the tombstone is purged by the worker's job…
    app.clock.advance(chrono::Duration::days(2));
    let user = app.sign_in_again(&user).await;
    let service = app.sync_service(TEST_DATA_KEYS);
    assert_eq!(service.purge_tombstones().await.unwrap(), 1);
    assert_eq!(app.count_rows("sync_tombstones").await, 0);
    // …so a client that last pulled before then gets everything, as a replacement.
    let stale = app.pull(&user, Some(old_pull)).await;
    assert_eq!(stale["experimentalStrategy"], "replacement");
    assert_eq!(ids(&stale, "checkins", "updated"), set(&["keep"]));
    // A timestamp this server never gave (from the future) is treated the same way.
    let future = app.pull(&user, Some(timestamp(&stale) + 1_000_000)).await;
    assert_eq!(future["experimentalStrategy"], "replacement");
    app.stop().await;
}

#[tokio::test]
async fn a_migration_sync_returns_whole_tables_new_to_the_client() {
    let app = TestApp::spawn().await;
    let user = app.register("migrate@example.org").await;
    app.push(
        &user,
        Some(0),
        json!({
            "checkins": {"created": [checkin("c1", 3, None)], "updated": [], "deleted": []},
            "boundaries": {"created": [boundary("b1", "ask first")], "updated": [], "deleted": []},
        }),
    )
    .await;
    let t = timestamp(&app.pull(&user, None).await);
    let migration = r#"{"from":0,"tables":["boundaries"],"columns":[{"table":"checkins","columns":["tags"]}]}"#;
    let url = format!("/v1/sync?last_pulled_at={t}&schema_version=1&migration={}", urlencode(migration));
    let (status, _, pulled) = read(app.get(&url).bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{pulled}");
    assert_eq!(ids(&pulled, "boundaries", "updated"), set(&["b1"]), "a table new to the client comes whole");
    assert_eq!(ids(&pulled, "checkins", "updated"), set(&["c1"]), "records get their new columns");
    assert!(ids(&pulled, "journal_entries", "updated").is_empty());

    let bad =
        format!("/v1/sync?last_pulled_at={t}&migration={}", urlencode(r#"{"from":0,"tables":["users"],"columns":[]}"#));
    expect_problem(
        app.get(&bad).bearer_auth(&user.access_token).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_export_and_account_purge_include_synced_records() {
    let app = TestApp::spawn().await;
    let user = app.register("export-sync@example.org").await;
    app.push(&user, Some(0), created("journal_entries", vec![journal("j1", "mine to take with me")])).await;
    app.push(&user, Some(0), json!({"checkins": {"created": [], "updated": [], "deleted": ["gone"]}})).await;
    let (_, _, export) = read(app.export(&user).await).await;
    assert_eq!(export["records"]["journal_entries"][0]["body"], "mine to take with me");
    assert_eq!(export["records"]["checkins"], json!([]), "a deleted record is not exported");

    let columns = app.user_columns().await;
    for table in ["checkins", "journal_entries", "boundaries", "sync_tombstones", "sync_state"] {
        assert!(columns.iter().any(|(t, _)| t == table), "{table} is covered by the purge check");
    }
    assert_eq!(app.delete_account(&user).await.status(), reqwest::StatusCode::ACCEPTED);
    let uid = user.uuid();
    attune_tests::eventually("purge", std::time::Duration::from_secs(30), || async {
        let mut left = 0;
        for (table, column) in &columns {
            left += app.count_rows_for_user(table, column, uid).await;
        }
        left == 0
    })
    .await;
    app.stop().await;
}

/// Many pushes and pulls of one user at once: the union of what the pulls returned
/// must be exactly what was pushed, never missing a change that committed while a
/// pull was running. Meaningful on PostgreSQL (real concurrency); also runs on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_and_pulls_never_miss_a_change() {
    const PUSHERS: usize = 6;
    const PUSHES_EACH: usize = 15;
    const RECORDS_EACH: usize = 3;
    const PULLERS: usize = 4;
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let user = app.register("race@example.org").await;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pullers = Vec::new();
    for _ in 0..PULLERS {
        let (app, user, done) = (app.clone(), user.clone(), done.clone());
        pullers.push(tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut since: Option<i64> = None;
            let mut pulls = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let pulled = app.pull(&user, since).await;
                seen.extend(ids(&pulled, "checkins", "updated"));
                seen.extend(ids(&pulled, "checkins", "updated"));
                since = Some(timestamp(&pulled));
                pulls += 1;
                if finished {
                    return (seen, pulls);
                }
            }
        }));
    }
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let (app, user) = (app.clone(), user.clone());
        pushers.push(tokio::spawn(async move {
            let mut pushed = BTreeSet::new();
            for n in 0..PUSHES_EACH {
                let records: Vec<Value> =
                    (0..RECORDS_EACH).map(|r| checkin(&format!("p{p}-n{n}-r{r}"), 3, Some("x"))).collect();
                pushed.extend(records.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
                let response = app.push(&user, Some(0), created("checkins", records)).await;
                assert_eq!(response.status(), StatusCode::OK);
            }
            pushed
        }));
    }
    let mut pushed = BTreeSet::new();
    for pusher in pushers {
        pushed.extend(pusher.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(pushed.len(), PUSHERS * PUSHES_EACH * RECORDS_EACH);
    for puller in pullers {
        let (seen, pulls) = puller.await.unwrap();
        assert!(pulls > 1, "each puller pulled while pushes ran");
        assert_eq!(seen, pushed, "a puller missed or invented changes");
    }
    std::sync::Arc::try_unwrap(app).ok().expect("sole owner").stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn dump(app: &TestApp, tables: &[&str]) -> String {
    let mut out = String::new();
    for table in tables {
        let rows = app
            .db
            .query_all_raw(Statement::from_string(app.db.get_database_backend(), format!("SELECT * FROM {table}")))
            .await
            .unwrap();
        for row in rows {
            for column in row.column_names() {
                if let Ok(Some(text)) = row.try_get::<Option<String>>("", &column) {
                    out.push_str(&text);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn scalar(app: &TestApp, sql: &str) -> String {
    let row = app
        .db
        .query_one_raw(Statement::from_string(app.db.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

async fn exec(app: &TestApp, sql: &str) {
    app.db.execute_unprepared(sql).await.unwrap();
}

/// The data-loss report: a device writes a record, syncs, deletes it and syncs again.
/// WatermelonDB pulls before it pushes, so that second pull carries the device's own
/// write; sent as `created`, the client recreated the record it had just deleted.
#[tokio::test]
async fn a_device_s_own_writes_come_back_as_updated_so_its_deletions_survive() {
    let app = TestApp::spawn().await;
    let user = app.register("resurrection@example.org").await;
    let t0 = timestamp(&app.pull(&user, None).await);
    let records = json!({
        "checkins": {"created": [checkin("c", 2, Some("a hard evening"))], "updated": [], "deleted": []},
        "journal_entries": {"created": [journal("j", "something I want gone")], "updated": [], "deleted": []},
        "boundaries": {"created": [boundary("b", "not yet")], "updated": [], "deleted": []},
    });
    assert_eq!(app.push(&user, Some(t0), records).await.status(), StatusCode::OK);

    // The device deleted all three locally; its next sync pulls since t0 first.
    let pulled = app.pull(&user, Some(t0)).await;
    for (table, id) in [("checkins", "c"), ("journal_entries", "j"), ("boundaries", "b")] {
        assert_eq!(pulled["changes"][table]["created"], json!([]), "never as created: {pulled}");
        assert_eq!(ids(&pulled, table, "updated"), set(&[id]));
    }
    let deletions = json!({
        "checkins": {"created": [], "updated": [], "deleted": ["c"]},
        "journal_entries": {"created": [], "updated": [], "deleted": ["j"]},
        "boundaries": {"created": [], "updated": [], "deleted": ["b"]},
    });
    assert_eq!(app.push(&user, Some(timestamp(&pulled)), deletions).await.status(), StatusCode::OK);

    // Every device from then on, old or new, learns only that they are gone.
    let after = app.pull(&user, Some(timestamp(&pulled))).await;
    let fresh = app.pull(&user, None).await;
    for (table, id) in [("checkins", "c"), ("journal_entries", "j"), ("boundaries", "b")] {
        assert_eq!(ids(&after, table, "deleted"), set(&[id]));
        assert!(ids(&after, table, "updated").is_empty());
        assert!(ids(&fresh, table, "updated").is_empty() && ids(&fresh, table, "deleted").is_empty());
    }
    app.stop().await;
}

/// The prepared statements a PostgreSQL connection holds, by how they were planned.
async fn plans(db: &impl ConnectionTrait, statement_like: &str) -> Vec<(String, i64, i64)> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE $1",
            [statement_like.into()],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "statement").unwrap(),
                r.try_get("", "generic_plans").unwrap(),
                r.try_get("", "custom_plans").unwrap(),
            )
        })
        .collect()
}

/// On PostgreSQL every statement of a push is planned for its own values every
/// time (`sync::sql::plan_for_values`): after five runs of a prepared statement
/// PostgreSQL may plan it once for any values, from the average person's rows,
/// and for `user_id = $1 AND id IN (…)` that plan once read a long history whole
/// on every push. The same lookup outside a push, on the same connection, is
/// planned generically: the setting is the push's alone and does not stay on
/// the pooled connection. SQLite plans every statement for its values, so there
/// is nothing to observe there.
#[tokio::test]
async fn a_push_s_lookups_are_planned_for_their_own_ids_on_postgres() {
    let app = TestApp::spawn().await;
    if app.backend != Backend::Postgres {
        app.stop().await;
        return;
    }
    let user = app.register("planned@example.org").await;
    // One connection, so that every statement below is prepared on it.
    let options = sea_orm::ConnectOptions::new(app.settings.database_url()).max_connections(1).to_owned();
    let one = sea_orm::Database::connect(options).await.unwrap();
    let service = app.sync_service(TEST_DATA_KEYS);
    let lookup = "SELECT k.column1 AS id, (SELECT t.version FROM \"checkins\" t %";
    for round in 0..8 {
        let records = (0..20).map(|n| checkin(&format!("r{round}-{n}"), 2, None)).collect();
        service.push(&one, user.uuid(), None, &created("checkins", records)).await.unwrap();
    }
    let pushed = plans(&one, "%").await;
    assert!(pushed.len() > 3, "a push's statements: {pushed:?}");
    for (statement, generic, _) in &pushed {
        assert_eq!(*generic, 0, "planned for its values in every push: {statement}");
    }
    let lookups: Vec<_> = pushed.iter().filter(|(text, _, _)| text.starts_with(&lookup[..lookup.len() - 1])).collect();
    assert_eq!(lookups.len(), 1, "one lookup statement for 20 ids: {pushed:?}");
    assert_eq!(lookups[0].2, 8, "the lookup, planned for its ids in each of the 8 pushes");

    // The same lookup, outside a push: PostgreSQL goes generic after five runs.
    let table = attune_shared::sync::tables::table("checkins").unwrap();
    let ids: Vec<String> = (0..20).map(|n| format!("r0-{n}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for _ in 0..8 {
        let found = attune_shared::sync::sql::row_versions(&one, table, user.uuid(), &ids).await.unwrap();
        assert_eq!(found.len(), 20);
    }
    let (_, generic, custom) = plans(&one, lookup).await[0];
    assert_eq!(generic + custom, 16);
    assert!(generic > 0, "the setting outlived the pushes' transactions: {custom} custom plans");
    one.close().await.unwrap();
    app.stop().await;
}
