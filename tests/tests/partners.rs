//! Two people link by consent, and either leaves alone, at once and unannounced:
//! invite, preview, accept, unlink, re-link with a new code, delete; every
//! refusal; guessing throttled; a third person sees nothing of the couple. On
//! SQLite and (with `ATTUNE_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_tests::{TestApp, TestUser, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn named(app: &TestApp, email: &str, name: &str) -> TestUser {
    let user = app.register(email).await;
    let response = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"display_name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    user
}

async fn invite(app: &TestApp, user: &TestUser) -> String {
    let (status, _, body) =
        read(app.post("/v1/partner/invitations").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

async fn preview(app: &TestApp, user: &TestUser, code: &str) -> reqwest::Response {
    app.get(&format!("/v1/partner/invitations/{code}")).bearer_auth(&user.access_token).send().await.unwrap()
}

async fn accept(app: &TestApp, user: &TestUser, code: &str) -> reqwest::Response {
    app.post(&format!("/v1/partner/invitations/{code}/accept")).bearer_auth(&user.access_token).send().await.unwrap()
}

async fn partner(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.get("/v1/partner").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

async fn unlink(app: &TestApp, user: &TestUser) -> StatusCode {
    app.request(Method::DELETE, "/v1/partner").bearer_auth(&user.access_token).send().await.unwrap().status()
}

async fn link(app: &TestApp, inviter: &TestUser, invitee: &TestUser) {
    let code = invite(app, inviter).await;
    assert_eq!(accept(app, invitee, &code).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn two_people_link_by_consent_and_either_leaves_alone_and_at_once() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;

    let (status, _, invitation) =
        read(app.post("/v1/partner/invitations").bearer_auth(&ana.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let code = invitation["code"].as_str().unwrap().to_owned();
    assert!(code.len() >= 8 && !code.contains(['0', 'O', '1', 'I']), "{code}");
    let expires_at = chrono::DateTime::parse_from_rfc3339(invitation["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires_at.timestamp(),
        (attune_shared::Clock::now(&app.clock) + chrono::Duration::hours(24)).timestamp()
    );
    assert_eq!(app.count_rows_for_user("partner_invitations", "inviter_id", ana.uuid()).await, 1);

    // Ben sees who invited him (typed in lower case with a dash, as people do).
    let typed = format!("{}-{}", &code[..5], &code[5..]).to_lowercase();
    let (status, _, seen) = read(preview(&app, &ben, &typed).await).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["inviter"], json!({"display_name": "Ana"}));
    assert_eq!(seen["expires_at"], invitation["expires_at"]);

    let (status, _, linked) = read(accept(&app, &ben, &code).await).await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    assert_eq!(linked["partner"], json!({"display_name": "Ana"}));
    let (status, ana_view) = partner(&app, &ana).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ana_view["partner"], json!({"display_name": "Ben"}));
    assert_eq!(ana_view["linked_at"], linked["linked_at"]);
    assert_eq!(
        ana_view["sharing"],
        json!({"yours": {"boundaries": 0, "journal_entries": 0}, "partners": {"boundaries": 0, "journal_entries": 0}})
    );
    assert_eq!(partner(&app, &ben).await.1["partner"], json!({"display_name": "Ana"}));

    // The code was used: nobody can look at it or use it again.
    expect_problem(preview(&app, &ben, &code).await, StatusCode::NOT_FOUND).await;
    let cy = named(&app, "cy@example.org", "Cy").await;
    expect_problem(preview(&app, &cy, &code).await, StatusCode::NOT_FOUND).await;
    expect_problem(accept(&app, &cy, &code).await, StatusCode::NOT_FOUND).await;
    // A third person sees nothing of the couple.
    expect_problem(app.get("/v1/partner").bearer_auth(&cy.access_token).send().await.unwrap(), StatusCode::NOT_FOUND)
        .await;

    // Ben leaves: at once, for both.
    assert_eq!(unlink(&app, &ben).await, StatusCode::NO_CONTENT);
    assert_eq!(partner(&app, &ana).await.0, StatusCode::NOT_FOUND);
    assert_eq!(partner(&app, &ben).await.0, StatusCode::NOT_FOUND);
    assert_eq!(unlink(&app, &ben).await, StatusCode::NO_CONTENT, "leaving twice is fine");
    assert_eq!(app.count_rows("partner_links").await, 0);

    // They re-link with a new code, the other way round.
    link(&app, &ben, &ana).await;
    assert_eq!(partner(&app, &ana).await.1["partner"], json!({"display_name": "Ben"}));
    app.stop().await;
}

#[tokio::test]
async fn every_refusal_says_what_it_may_and_nothing_more() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    let cy = named(&app, "cy@example.org", "Cy").await;

    // Own code: 422 naming the code.
    let own = invite(&app, &ana).await;
    let body = expect_problem(accept(&app, &ana, &own).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["code"]);

    // A new invitation replaces the old; a withdrawn one is gone.
    let newer = invite(&app, &ana).await;
    assert_ne!(newer, own);
    expect_problem(preview(&app, &ben, &own).await, StatusCode::NOT_FOUND).await;
    let withdraw = app.request(Method::DELETE, "/v1/partner/invitations").bearer_auth(&ana.access_token);
    assert_eq!(withdraw.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let withdrawn = expect_problem(accept(&app, &ben, &newer).await, StatusCode::NOT_FOUND).await;

    // Expired after 24 hours: answered exactly as an unknown code.
    let expiring = invite(&app, &ana).await;
    app.clock.advance(chrono::Duration::hours(24));
    let ana = app.sign_in_again(&ana).await;
    let ben = app.sign_in_again(&ben).await;
    let cy = app.sign_in_again(&cy).await;
    let expired = expect_problem(accept(&app, &ben, &expiring).await, StatusCode::NOT_FOUND).await;
    let unknown = expect_problem(accept(&app, &ben, "ZZZZZZZZZZ").await, StatusCode::NOT_FOUND).await;
    let malformed = expect_problem(preview(&app, &ben, "not-a-code").await, StatusCode::NOT_FOUND).await;
    for other in [&expired, &unknown, &malformed] {
        assert_eq!(other["detail"], withdrawn["detail"], "unknown, expired, withdrawn alike");
    }

    // Linked already: the accepting side is told plainly, and may not invite.
    link(&app, &ana, &ben).await;
    let cys = invite(&app, &cy).await;
    let body = expect_problem(accept(&app, &ben, &cys).await, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/already-linked");
    let response = app.post("/v1/partner/invitations").bearer_auth(&ben.access_token).send().await.unwrap();
    expect_problem(response, StatusCode::CONFLICT).await;

    // Cy links elsewhere while her code is still open: whoever holds it learns
    // only that the inviter is no longer available.
    let dee = named(&app, "dee@example.org", "Dee").await;
    link(&app, &dee, &cy).await;
    let eve = named(&app, "eve@example.org", "Eve").await;
    let body = expect_problem(accept(&app, &eve, &cys).await, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/inviter-unavailable");
    assert_eq!(body["detail"], "The inviter is no longer available.");
    app.stop().await;
}

#[tokio::test]
async fn guessing_codes_is_throttled_per_account_and_per_address() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    let code = invite(&app, &ana).await;
    // Known codes do not use up the allowance.
    for _ in 0..12 {
        assert_eq!(preview(&app, &ben, &code).await.status(), StatusCode::OK);
    }
    for n in 0..10 {
        let status = preview(&app, &ben, &format!("ZZZZZZZZ{}", ["A", "B", "C", "D", "E", "F", "G", "H", "J", "K"][n]))
            .await
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "guess {n}");
    }
    let response = accept(&app, &ben, "ZZZZZZZZZM").await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    expect_problem(preview(&app, &ben, &code).await, StatusCode::TOO_MANY_REQUESTS).await;

    // Another account from the same address is throttled too (the address is over).
    let cy = named(&app, "cy@example.org", "Cy").await;
    expect_problem(preview(&app, &cy, &code).await, StatusCode::TOO_MANY_REQUESTS).await;

    // After the hour, the allowance is back.
    app.clock.advance(chrono::Duration::minutes(61));
    let ben = app.sign_in_again(&ben).await;
    assert_eq!(accept(&app, &ben, &code).await.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn two_accepts_of_one_code_at_once_make_one_link() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let mut invitees = vec![];
    for n in 0..6 {
        invitees.push(named(&app, &format!("p{n}@example.org"), "P").await);
    }
    let code = invite(&app, &ana).await;
    let accepts = invitees.iter().map(|user| accept(&app, user, &code));
    let statuses: Vec<StatusCode> =
        futures::future::join_all(accepts).await.into_iter().map(|response| response.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    // The others find the code used (404) or, reading after the winner
    // committed, the inviter linked (409): never a second link, never a 500.
    let refused = [StatusCode::CREATED, StatusCode::NOT_FOUND, StatusCode::CONFLICT];
    assert!(statuses.iter().all(|s| refused.contains(s)), "{statuses:?}");
    assert_eq!(app.count_rows("partner_links").await, 2, "one link: a row per person");

    // Two people accepting each other's codes at once: one link, never two.
    let bo = named(&app, "bo@example.org", "Bo").await;
    let cal = named(&app, "cal@example.org", "Cal").await;
    let dot = named(&app, "dot@example.org", "Dot").await;
    let (bos, cals) = (invite(&app, &bo).await, invite(&app, &cal).await);
    let (a, b) = futures::join!(accept(&app, &dot, &bos), accept(&app, &dot, &cals));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::CREATED, "{statuses:?}");
    assert!([StatusCode::CONFLICT, StatusCode::NOT_FOUND].contains(&statuses[1]), "{statuses:?}");
    assert_eq!(app.count_rows("partner_links").await, 4);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_account_unlinks_and_ends_its_invitation() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    link(&app, &ana, &ben).await;
    let cy = named(&app, "cy@example.org", "Cy").await;
    let cys = invite(&app, &cy).await;

    assert_eq!(app.delete_account(&ana).await.status(), StatusCode::ACCEPTED);
    assert_eq!(partner(&app, &ben).await.0, StatusCode::NOT_FOUND, "unlinked at once, before the purge");
    assert_eq!(app.count_rows_for_user("partner_links", "partner_id", ana.uuid()).await, 0);

    assert_eq!(app.delete_account(&cy).await.status(), StatusCode::ACCEPTED);
    expect_problem(preview(&app, &ben, &cys).await, StatusCode::NOT_FOUND).await;
    // Ben is free to link again.
    let dee = named(&app, "dee@example.org", "Dee").await;
    link(&app, &dee, &ben).await;
    app.stop().await;
}

#[tokio::test]
async fn an_accept_whose_link_cannot_be_stored_leaves_the_code_unused_and_the_retry_links() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    let code = invite(&app, &ana).await;
    app.fail_writes("partner_links", "INSERT").await;
    expect_problem(accept(&app, &ben, &code).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(app.count_rows_for_user("partner_invitations", "inviter_id", ana.uuid()).await, 1, "code not used");
    app.allow_writes("partner_links", "INSERT").await;
    assert_eq!(accept(&app, &ben, &code).await.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn an_account_deletion_whose_unlinking_fails_deletes_nothing() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    link(&app, &ana, &ben).await;
    app.fail_writes("partner_links", "DELETE").await;
    expect_problem(app.delete_account(&ana).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(partner(&app, &ana).await.0, StatusCode::OK, "still signed in, still linked");
    app.allow_writes("partner_links", "DELETE").await;
    assert_eq!(app.delete_account(&ana).await.status(), StatusCode::ACCEPTED);
    assert_eq!(partner(&app, &ben).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn enroll_as(app: &TestApp, user: &TestUser, mode: &str) -> reqwest::Response {
    app.post("/v1/enrollments")
        .bearer_auth(&user.access_token)
        .json(&json!({"program": "closer", "mode": mode, "pace": "steady"}))
        .send()
        .await
        .unwrap()
}

async fn mode(app: &TestApp, user: &TestUser) -> Value {
    let (_, _, body) =
        read(app.get("/v1/enrollments/current").bearer_auth(&user.access_token).send().await.unwrap()).await;
    body["mode"].clone()
}

#[tokio::test]
async fn couple_mode_needs_a_linked_partner_and_unlinking_makes_it_partnered() {
    let app = TestApp::spawn().await;
    let ana = named(&app, "ana@example.org", "Ana").await;
    let ben = named(&app, "ben@example.org", "Ben").await;
    let body = expect_problem(enroll_as(&app, &ana, "couple").await, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/no-linked-partner");

    link(&app, &ana, &ben).await;
    assert_eq!(enroll_as(&app, &ana, "couple").await.status(), StatusCode::CREATED);
    assert_eq!(enroll_as(&app, &ben, "solo").await.status(), StatusCode::CREATED);
    let to_couple = app
        .request(Method::PATCH, "/v1/enrollments/current")
        .bearer_auth(&ben.access_token)
        .json(&json!({"mode": "couple"}));
    assert_eq!(to_couple.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!((mode(&app, &ana).await, mode(&app, &ben).await), (json!("couple"), json!("couple")));

    assert_eq!(unlink(&app, &ana).await, StatusCode::NO_CONTENT);
    assert_eq!((mode(&app, &ana).await, mode(&app, &ben).await), (json!("partnered"), json!("partnered")));
    let back = app
        .request(Method::PATCH, "/v1/enrollments/current")
        .bearer_auth(&ben.access_token)
        .json(&json!({"mode": "couple"}));
    expect_problem(back.send().await.unwrap(), StatusCode::CONFLICT).await;
    app.stop().await;
}
