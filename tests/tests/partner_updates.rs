//! The opt-in partner update: "Something new is waiting in Attune" when the
//! linked partner shares an item. Off unless chosen, discreet, at most one a
//! day, held through quiet hours, never about anything but a new share, and
//! sent through the real worker to a fake Web Push service. On SQLite and
//! (with `ATTUNE_TEST_DATABASE_URL`, `ATTUNE_TEST_REDIS_URL`) PostgreSQL + Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{sync::Arc, time::Duration};

use attune_shared::{ManualClock, jobs::JobQueue, partners::updates::PARTNER_UPDATE_NOTICE};
use attune_tests::{
    PASSWORD, TestApp, TestUser, eventually,
    fake_push::{FakePushService, FakeSubscription},
    queue_drained, read,
};
use attune_worker::jobs::partner_update;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct Couple {
    app: TestApp,
    fake: FakePushService,
    fake_clock: ManualClock,
    queue: JobQueue,
    ana: TestUser,
    ben: TestUser,
    ana_device: FakeSubscription,
    ben_device: FakeSubscription,
}

/// `local` ("2026-11-10 12:00") in Berlin (the test users' zone), as UTC.
fn berlin(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
    chrono_tz::Europe::Berlin.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

/// Ana and Ben, linked, each with a device, both clocks at `now`; the
/// registrations' mail jobs have run.
async fn couple(now: DateTime<Utc>) -> Couple {
    let fake_clock = ManualClock::new(now);
    let fake = FakePushService::start(Arc::new(fake_clock.clone())).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
    })
    .await;
    app.clock.set(now);
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    let ana_device = subscribe(&app, &fake, &ana).await;
    let ben_device = subscribe(&app, &fake, &ben).await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    queue_drained(&queue).await;
    Couple { app, fake, fake_clock, queue, ana, ben, ana_device, ben_device }
}

/// Signs in again: moving the clock by hours outlives the access token.
async fn again(app: &TestApp, user: &TestUser) -> TestUser {
    let (status, _, body) = read(app.login(&user.email, PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestUser::from_token_response(&user.email, &body)
}

async fn subscribe(app: &TestApp, fake: &FakePushService, user: &TestUser) -> FakeSubscription {
    let device = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    device
}

async fn choose_partner_updates(app: &TestApp, user: &TestUser, on: bool) {
    let choices = json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
                         "paused_until": null, "descriptive": true, "partner_updates": on});
    let response = app
        .request(Method::PUT, "/v1/notifications/settings")
        .bearer_auth(&user.access_token)
        .json(&choices)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!((status, &body["partner_updates"]), (StatusCode::OK, &json!(on)), "{body}");
}

/// `user` writes boundary `id`, shared or not.
async fn write_boundary(app: &TestApp, user: &TestUser, id: &str, text: &str, shared: bool) {
    let record = json!({"id": id, "kind": "emotional", "text": text, "shared_with_partner": shared, "active": true});
    let changes = json!({"boundaries": {"created": [], "updated": [record], "deleted": []}});
    let (status, _, body) = read(app.push(user, Some(i64::MAX / 2), changes).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

impl Couple {
    fn set_clocks(&self, to: DateTime<Utc>) {
        self.app.clock.set(to);
        self.fake_clock.set(to);
    }

    /// Every delivery so far, once the queue has finished all its work.
    async fn delivered(&self) -> Vec<attune_tests::fake_push::Delivery> {
        queue_drained(&self.queue).await;
        self.fake.deliveries()
    }
}

#[tokio::test]
async fn partner_updates_are_opt_in_discreet_and_at_most_one_a_day() {
    let noon = berlin("2026-11-10 12:00:00");
    let c = couple(noon).await;

    // Off unless chosen: a share tells Ben nothing.
    write_boundary(&c.app, &c.ana, "b1", "first", true).await;
    assert!(c.delivered().await.is_empty());

    choose_partner_updates(&c.app, &c.ben, true).await;
    // Not shared: nothing, whatever Ana writes.
    write_boundary(&c.app, &c.ana, "private", "mine alone", false).await;
    assert!(c.delivered().await.is_empty());

    write_boundary(&c.app, &c.ana, "b2", "second", true).await;
    let first = c.fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(first[0].subscription_id, c.ben_device.id, "to Ben's device only");
    let (title, body) = PARTNER_UPDATE_NOTICE;
    assert_eq!(first[0].payload["type"], "partner_update");
    assert_eq!((first[0].payload["title"].as_str(), first[0].payload["body"].as_str()), (Some(title), Some(body)));
    // Discreet though Ben chose descriptive texts: nothing of what or who.
    for word in ["second", "ana", "boundar", "shared"] {
        assert!(!first[0].payload.to_string().to_lowercase().contains(word), "{word}: {}", first[0].payload);
    }

    // More shares that day, an edit of what is shared, and Ana's own choice:
    // nothing more.
    c.set_clocks(noon + chrono::Duration::hours(3));
    let (ana, ben) = (again(&c.app, &c.ana).await, again(&c.app, &c.ben).await);
    write_boundary(&c.app, &ana, "b3", "third", true).await;
    write_boundary(&c.app, &ana, "b2", "second, reworded", true).await;
    write_boundary(&c.app, &ben, "from-ben", "Ben shares too", true).await;
    assert_eq!(c.delivered().await.len(), 1, "one a day; Ana never opted in");

    // An edit of something already shared is not news, even a day later.
    c.set_clocks(noon + chrono::Duration::hours(25));
    let ana = again(&c.app, &c.ana).await;
    write_boundary(&c.app, &ana, "b3", "third, reworded", true).await;
    assert_eq!(c.delivered().await.len(), 1);
    // A new share, a day later: one more.
    write_boundary(&c.app, &ana, "b4", "fourth", true).await;
    let two = c.fake.wait_for_deliveries(2, WAIT).await;
    assert!(two.iter().all(|d| d.subscription_id == c.ben_device.id));
    assert!(c.fake.deliveries().iter().all(|d| d.subscription_id != c.ana_device.id));

    // Unlinked: nothing about the former partner, ever.
    c.set_clocks(noon + chrono::Duration::hours(50));
    let ana = again(&c.app, &c.ana).await;
    let response = c.app.request(Method::DELETE, "/v1/partner").bearer_auth(&ana.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    write_boundary(&c.app, &ana, "b5", "after", true).await;
    assert_eq!(c.delivered().await.len(), 2);
    c.app.stop().await;
}

#[tokio::test]
async fn a_share_in_quiet_hours_is_told_when_they_end_and_never_in_a_pause() {
    let before_seven = berlin("2026-11-10 06:59:58");
    let c = couple(before_seven).await;
    choose_partner_updates(&c.app, &c.ben, true).await;

    write_boundary(&c.app, &c.ana, "b1", "at dawn", true).await;
    // The job has run and waits for the end of quiet hours: nothing is due,
    // nothing was sent.
    eventually("the notice held until 07:00", WAIT, || {
        let queue = c.queue.clone();
        async move {
            let depth = queue.depth().await.unwrap();
            depth.pending == 0 && depth.running == 0 && depth.scheduled == 1
        }
    })
    .await;
    assert!(c.fake.deliveries().is_empty());
    c.set_clocks(berlin("2026-11-10 07:00:01"));
    let delivered = c.fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(delivered[0].subscription_id, c.ben_device.id);

    // A pause holds nothing for later: what falls in it is never sent.
    c.set_clocks(berlin("2026-11-12 12:00:00"));
    let (ana, ben) = (again(&c.app, &c.ana).await, again(&c.app, &c.ben).await);
    let paused = json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
                        "paused_until": "2026-11-20T00:00:00Z", "descriptive": false});
    let response = c
        .app
        .request(Method::PUT, "/v1/notifications/settings")
        .bearer_auth(&ben.access_token)
        .json(&paused)
        .send()
        .await
        .unwrap();
    let (status, _, body): (_, _, Value) = read(response).await;
    assert_eq!((status, &body["partner_updates"]), (StatusCode::OK, &json!(true)), "left out, the choice stays");
    write_boundary(&c.app, &ana, "b2", "in the pause", true).await;
    assert_eq!(c.delivered().await.len(), 1);
    c.app.stop().await;
}

#[tokio::test]
async fn two_workers_at_once_send_one_notice() {
    let noon = berlin("2026-11-10 12:00:00");
    let c = couple(noon).await;
    choose_partner_updates(&c.app, &c.ben, true).await;
    let deps = c.app.worker_deps().await;
    let ben_id = c.ben.id.parse().unwrap();
    // As if two shares' jobs ran at the same moment on two workers.
    let (a, b) = futures::join!(partner_update::run(&deps, ben_id), partner_update::run(&deps, ben_id));
    a.unwrap();
    b.unwrap();
    assert_eq!(c.delivered().await.len(), 1);
    // A day later, the next one may go.
    c.set_clocks(noon + chrono::Duration::hours(24));
    partner_update::run(&deps, ben_id).await.unwrap();
    partner_update::run(&deps, ben_id).await.unwrap();
    assert_eq!(c.delivered().await.len(), 2);
    c.app.stop().await;
}
