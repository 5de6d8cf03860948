//! Sharing item by item: what a person marks shared reaches the partner's own
//! pull as `partner_items` (sync schema 2), decrypted for them; unsharing,
//! deleting, unlinking and deleting the account send it as deleted; nothing
//! else of the person ever reaches the partner, not even when they were active.
//! On SQLite and (with `ATTUNE_TEST_DATABASE_URL`) PostgreSQL, concurrently.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::collections::BTreeSet;

use attune_shared::Clock;
use attune_tests::{TestApp, TestUser, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const NAMED: &str = "a boundary only Ben may read";

/// A pull at schema version 2 (the app with partner items).
async fn pull(app: &TestApp, user: &TestUser, since: Option<i64>) -> Value {
    let since = since.map_or_else(|| "null".to_owned(), |t| t.to_string());
    let path = format!("/v1/sync?last_pulled_at={since}&schema_version=2&migration=null");
    let (status, _, body) = read(app.get(&path).bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A push from a device that has seen everything (the author edits freely).
async fn push(app: &TestApp, user: &TestUser, changes: Value) {
    let response = app.push(user, Some(i64::MAX / 2), changes).await;
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn boundary(id: &str, text: &str, shared: bool) -> Value {
    json!({"id": id, "kind": "emotional", "text": text, "shared_with_partner": shared, "active": true})
}

fn entry(app: &TestApp, id: &str, body: &str, shared: bool) -> Value {
    json!({"id": id, "step": 3, "prompt_id": "p3", "body": body, "occurred_at": app.clock.now_ms(),
           "shared_with_partner": shared})
}

fn changes(table: &str, updated: Vec<Value>, deleted: Vec<&str>) -> Value {
    json!({table: {"created": [], "updated": updated, "deleted": deleted}})
}

fn items(pulled: &Value) -> Vec<Value> {
    pulled["changes"]["partner_items"]["updated"].as_array().unwrap().clone()
}

fn deleted(pulled: &Value) -> BTreeSet<String> {
    let ids = pulled["changes"]["partner_items"]["deleted"].as_array().unwrap();
    ids.iter().map(|id| id.as_str().unwrap().to_owned()).collect()
}

async fn unlink(app: &TestApp, user: &TestUser) {
    let response = app.request(Method::DELETE, "/v1/partner").bearer_auth(&user.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Linking makes both people's sync rows (under its locks) before either
/// pulled: their first pulls must still answer a real timestamp, since
/// WatermelonDB refuses 0 ("pullChanges() returned invalid timestamp 0"; found
/// by `tests/watermelon/partners.js`).
#[tokio::test]
async fn a_first_pull_after_linking_answers_a_real_timestamp() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    for person in [&ana, &ben] {
        let first = pull(&app, person, None).await;
        assert!(first["timestamp"].as_i64().unwrap() > 0, "{}: {}", person.email, first["timestamp"]);
    }
    app.stop().await;
}

#[tokio::test]
async fn shared_items_reach_the_partner_and_leave_when_unshared_deleted_or_unlinked() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    // Shared before linking: delivered at the link.
    push(&app, &ana, changes("boundaries", vec![boundary("b1", NAMED, true), boundary("b2", "mine", false)], vec![]))
        .await;
    app.link_partners(&ana, &ben).await;
    push(&app, &ana, changes("journal_entries", vec![entry(&app, "j1", "a shared page", true)], vec![])).await;
    let checkin = json!({"id": "c1", "occurred_at": app.clock.now_ms(), "mood": 1, "anxiety": 9, "comfort": 1,
                         "exercise_id": null, "completed": false, "note": "a hard day", "tags": ""});
    push(&app, &ana, changes("checkins", vec![checkin], vec![])).await;
    push(&app, &ana, changes("journal_entries", vec![entry(&app, "j2", "not for Ben", false)], vec![])).await;

    let first = pull(&app, &ben, None).await;
    let mut got = items(&first);
    got.sort_by_key(|item| item["kind"].as_str().unwrap().to_owned());
    assert_eq!(got.len(), 2, "{first}");
    assert_eq!(got[0]["kind"], "boundary");
    assert_eq!(got[0]["boundary_kind"], "emotional");
    assert_eq!(got[0]["text"], NAMED);
    assert_eq!(got[1]["kind"], "journal_entry");
    assert_eq!(got[1]["text"], "a shared page");
    for item in &got {
        let keys: BTreeSet<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["id", "kind", "boundary_kind", "text"]), "no step, date or score: {item}");
        assert!(!["b1", "j1"].contains(&item["id"].as_str().unwrap()), "not the author's record id");
    }
    for table in ["checkins", "journal_entries", "boundaries"] {
        assert_eq!(first["changes"][table]["updated"], json!([]), "Ben's own {table} hold nothing of Ana's");
    }
    let text = serde_json::to_string(&first).unwrap();
    assert!(!text.contains("a hard day") && !text.contains("not for Ben") && !text.contains("mine"), "{text}");
    // A device still on schema 1 gets no partner items at all.
    let (_, _, old) = read(
        app.get("/v1/sync?last_pulled_at=null&schema_version=1&migration=null")
            .bearer_auth(&ben.access_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(old["changes"].get("partner_items").is_none(), "{old}");
    // Stored sealed for Ben, never as plaintext.
    let plain = app
        .execute(
            "UPDATE partner_items SET kind = kind WHERE text LIKE '%only Ben%' OR text LIKE '%shared page%'",
            vec![],
        )
        .await;
    assert_eq!(plain, 0);
    let (_, _, view) = read(app.get("/v1/partner").bearer_auth(&ben.access_token).send().await.unwrap()).await;
    assert_eq!(view["sharing"]["partners"], json!({"boundaries": 1, "journal_entries": 1}));
    assert_eq!(view["sharing"]["yours"], json!({"boundaries": 0, "journal_entries": 0}));

    // Editing what is not shared tells Ben nothing, not even that Ana was here.
    let since = first["timestamp"].as_i64().unwrap();
    app.clock.advance(chrono::Duration::minutes(5));
    push(&app, &ana, changes("boundaries", vec![boundary("b2", "mine, edited", false)], vec![])).await;
    let quiet = pull(&app, &ben, Some(since)).await;
    assert_eq!(quiet["timestamp"], first["timestamp"], "Ben's version did not move");
    assert!(items(&quiet).is_empty() && deleted(&quiet).is_empty(), "{quiet}");

    // Unsharing one, deleting the other: both leave Ben's devices.
    push(&app, &ana, changes("boundaries", vec![boundary("b1", NAMED, false)], vec![])).await;
    push(&app, &ana, changes("journal_entries", vec![], vec!["j1"])).await;
    let after = pull(&app, &ben, Some(since)).await;
    let ids: BTreeSet<String> = got.iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(deleted(&after), ids, "{after}");
    assert!(items(&after).is_empty());

    // Shared again, then Ben unlinks: it leaves his devices; later shares do not come.
    push(&app, &ana, changes("boundaries", vec![boundary("b2", "now for Ben", true)], vec![])).await;
    let shared = pull(&app, &ben, after["timestamp"].as_i64()).await;
    assert_eq!(items(&shared).len(), 1);
    let b2 = items(&shared)[0]["id"].as_str().unwrap().to_owned();
    unlink(&app, &ben).await;
    push(&app, &ana, changes("boundaries", vec![boundary("b3", "after the link", true)], vec![])).await;
    let unlinked = pull(&app, &ben, shared["timestamp"].as_i64()).await;
    assert_eq!(deleted(&unlinked), BTreeSet::from([b2.clone()]));
    assert!(items(&unlinked).is_empty(), "{unlinked}");
    assert!(items(&pull(&app, &ben, None).await).is_empty());

    // Re-linked with a new code: what Ana shares comes back.
    app.link_partners(&ben, &ana).await;
    let relinked = pull(&app, &ben, unlinked["timestamp"].as_i64()).await;
    assert_eq!(items(&relinked).len(), 2, "b2 and b3: {relinked}");

    // Ana deletes her account: her items leave Ben's devices; Ben's own stay.
    push(&app, &ben, changes("boundaries", vec![boundary("mine", "Ben's own", false)], vec![])).await;
    assert_eq!(app.delete_account(&ana).await.status(), StatusCode::ACCEPTED);
    let gone = pull(&app, &ben, relinked["timestamp"].as_i64()).await;
    assert_eq!(deleted(&gone).len(), 2, "{gone}");
    let full = pull(&app, &ben, None).await;
    assert!(items(&full).is_empty());
    assert_eq!(full["changes"]["boundaries"]["updated"][0]["text"], "Ben's own");
    app.stop().await;
}

#[tokio::test]
async fn partner_items_are_read_only_and_stay_out_of_the_export() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    push(&app, &ana, changes("boundaries", vec![boundary("b1", NAMED, true)], vec![])).await;
    let item = json!({"id": "x1", "kind": "boundary", "boundary_kind": "physical", "text": "forged"});
    let body = expect_problem(
        app.push(&ben, Some(0), changes("partner_items", vec![item], vec![])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&body), ["changes"]);
    assert_eq!(body["errors"][0]["table"], "partner_items");
    let deletion = expect_problem(
        app.push(&ben, Some(0), changes("partner_items", vec![], vec!["x1"])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(deletion.await["errors"][0]["table"], "partner_items");
    // WatermelonDB lists every table of the app's schema in each push, this one
    // with empty lists: that is no change, and the rest of the push applies.
    let mut with_empty = changes("boundaries", vec![boundary("bb", "Ben's own", false)], vec![]);
    with_empty["partner_items"] = json!({"created": [], "updated": [], "deleted": []});
    let (status, _, answer) = read(app.push(&ben, Some(i64::MAX / 2), with_empty).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (_, _, anas) = read(app.export(&ana).await).await;
    assert_eq!(anas["records"]["boundaries"][0]["shared_with_partner"], true, "marked as shared");
    let (_, _, bens) = read(app.export(&ben).await).await;
    assert!(bens["records"].get("partner_items").is_none(), "{bens}");
    assert!(!serde_json::to_string(&bens).unwrap().contains(NAMED));
    app.stop().await;
}

#[tokio::test]
async fn an_item_shared_while_the_partner_pulls_is_in_that_pull_or_the_next() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    const SHARES: usize = 30;
    let sharing = async {
        for n in 0..SHARES {
            push(
                &app,
                &ana,
                changes("boundaries", vec![boundary(&format!("b{n}"), &format!("share {n}"), true)], vec![]),
            )
            .await;
        }
    };
    let pulling = async {
        let mut since = None;
        let mut seen = BTreeSet::new();
        for _ in 0..SHARES {
            let pulled = pull(&app, &ben, since).await;
            seen.extend(items(&pulled).iter().map(|item| item["text"].as_str().unwrap().to_owned()));
            since = pulled["timestamp"].as_i64();
        }
        (seen, since)
    };
    let ((), (mut seen, since)) = futures::join!(sharing, pulling);
    let last = pull(&app, &ben, since).await;
    seen.extend(items(&last).iter().map(|item| item["text"].as_str().unwrap().to_owned()));
    assert_eq!(seen.len(), SHARES, "every share reached Ben, none lost between pulls");
    app.stop().await;
}

#[tokio::test]
async fn two_partners_pushing_at_once_never_deadlock() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    let writer = |user: &TestUser, prefix: &'static str| {
        let (app, user) = (&app, user.clone());
        async move {
            for n in 0..20 {
                let id = format!("{prefix}{n}");
                let response =
                    app.push(&user, Some(0), changes("boundaries", vec![boundary(&id, "shared", true)], vec![])).await;
                assert_eq!(response.status(), StatusCode::OK, "{prefix} push {n}");
            }
        }
    };
    futures::join!(writer(&ana, "a"), writer(&ben, "b"), writer(&ana, "c"), writer(&ben, "d"));
    assert_eq!(items(&pull(&app, &ben, None).await).len(), 40);
    assert_eq!(items(&pull(&app, &ana, None).await).len(), 40);
    app.stop().await;
}

#[tokio::test]
async fn a_device_migrating_to_schema_2_receives_the_partner_items_and_the_new_column_whole() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    push(&app, &ben, changes("journal_entries", vec![entry(&app, "j1", "Ben's page", false)], vec![])).await;
    app.link_partners(&ana, &ben).await;
    push(&app, &ana, changes("boundaries", vec![boundary("b1", NAMED, true)], vec![])).await;
    // Ben's device synced on schema 1 after all of that.
    let v1 = app.pull(&ben, None).await;
    assert!(v1["changes"].get("partner_items").is_none());
    let since = v1["timestamp"].as_i64().unwrap();
    // WatermelonDB's migration sync: the new table whole, the new column's table again.
    let migration = json!({"from": 1, "tables": ["partner_items"],
                           "columns": [{"table": "journal_entries", "columns": ["shared_with_partner"]}]});
    let path =
        format!("/v1/sync?last_pulled_at={since}&schema_version=2&migration={}", urlencoding(&migration.to_string()));
    let (status, _, migrated) = read(app.get(&path).bearer_auth(&ben.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{migrated}");
    assert_eq!(items(&migrated).len(), 1, "{migrated}");
    let page = &migrated["changes"]["journal_entries"]["updated"][0];
    assert_eq!(page["id"], "j1");
    assert_eq!(page["shared_with_partner"], false);
    assert_eq!(migrated["changes"]["boundaries"]["updated"], json!([]), "unchanged tables stay a delta");
    app.stop().await;
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
