//! `attune-worker reflections --week YYYY-MM-DD`, run as operators run it: the
//! real binary against a real database (SQLite by default; a fresh PostgreSQL
//! database when `ATTUNE_TEST_DATABASE_URL` is set).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::process::{Command, Output};

use attune_shared::{
    db,
    entities::{enrollment, reflection, user},
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Statement};
use uuid::Uuid;

/// A database for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database dropped afterwards.
struct TestDb {
    url: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("ATTUNE_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
            Some(admin_url) => {
                let name = format!("attune_cli_{}", Uuid::new_v4().simple());
                let admin = Database::connect(admin_url.as_str()).await.unwrap();
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                admin.close().await.ok();
                let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
                Self { url: format!("{base}/{name}"), dir, pg: Some((admin_url, name)) }
            }
            None => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("attune.db").display());
                Self { url, dir, pg: None }
            }
        }
    }

    async fn drop(self) {
        if let Some((admin_url, name)) = self.pg {
            let admin = Database::connect(admin_url.as_str()).await.unwrap();
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
        }
    }

    fn worker(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_attune-worker"))
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("ATTUNE_DATA_DIR", self.dir.path())
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }
}

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc).timestamp_millis()
}

/// Someone enrolled on 1 January 2025 in Berlin, with two check-ins in the week of 6 January.
async fn seed(db: &DatabaseConnection) -> Uuid {
    let user_id = Uuid::now_v7();
    let enrolled = ms("2025-01-01T09:00:00Z");
    user::Entity::insert(user::ActiveModel {
        id: Set(user_id),
        email: Set("cli@example.org".into()),
        password_hash: Set("not-used".into()),
        display_name: Set("Sam".into()),
        timezone: Set("Europe/Berlin".into()),
        created_at: Set(enrolled),
        updated_at: Set(enrolled),
        deleted_at: Set(None),
        country: Set(Some("DE".into())),
        email_verified_at: Set(None),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    enrollment::Entity::insert(enrollment::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        program: Set("closer".into()),
        mode: Set(enrollment::StoredMode::Solo),
        pace: Set(enrollment::StoredPace::Steady),
        step: Set(1),
        step_started_at: Set(enrolled),
        paused_at: Set(None),
        couple_ended_at: Set(None),
        created_at: Set(enrolled),
        updated_at: Set(enrolled),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    for (id, at, mood) in [("a", "2025-01-07T18:00:00Z", 3_i64), ("b", "2025-01-09T18:00:00Z", 5)] {
        insert_checkin(db, user_id, id, ms(at), mood).await;
    }
    user_id
}

async fn insert_checkin(db: &DatabaseConnection, user_id: Uuid, id: &str, at: i64, mood: i64) {
    let placeholders = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        "$1, $2, $3, $3, $3, $4, 3, 3, NULL, FALSE, NULL, NULL"
    } else {
        "?, ?, ?, ?, ?, ?, 3, 3, NULL, FALSE, NULL, NULL"
    };
    let sql = format!(
        "INSERT INTO checkins (user_id, id, version, created_version, occurred_at, mood, anxiety, comfort, \
         exercise_id, completed, note, tags) VALUES ({placeholders})"
    );
    let values: Vec<sea_orm::Value> = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        vec![user_id.into(), id.into(), at.into(), mood.into()]
    } else {
        vec![user_id.into(), id.into(), at.into(), at.into(), at.into(), mood.into()]
    };
    db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await.unwrap();
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "attune-worker failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_reflections_command_computes_a_week_once_and_is_idempotent() {
    let test_db = TestDb::create().await;
    let db = db::connect(&test_db.url).await.unwrap();
    db::migrate(&db).await.unwrap();
    let user_id = seed(&db).await;

    let first = stdout(&test_db.worker(&["reflections", "--week", "2025-01-06"]));
    assert_eq!(first.trim(), "reflections for the week of 2025-01-06: 1 created, 0 updated, 0 unchanged");
    let again = stdout(&test_db.worker(&["reflections", "--week", "2025-01-06"]));
    assert_eq!(again.trim(), "reflections for the week of 2025-01-06: 0 created, 0 updated, 1 unchanged");

    let stored = reflection::Entity::find_by_id((user_id, "2025-01-06".to_owned())).one(&db).await.unwrap().unwrap();
    assert_eq!(stored.announce_at, None, "operators' recomputations send no notice");
    let body: serde_json::Value = serde_json::from_str(&stored.body).unwrap();
    assert_eq!(body["checkin_count"], 2);
    assert_eq!(body["averages"]["mood"], 4.0);

    // A check-in that arrived late changes the week; recomputing updates it.
    insert_checkin(&db, user_id, "c", ms("2025-01-12T10:00:00Z"), 1).await;
    let changed = stdout(&test_db.worker(&["reflections", "--week", "2025-01-06"]));
    assert_eq!(changed.trim(), "reflections for the week of 2025-01-06: 0 created, 1 updated, 0 unchanged");
    db.close().await.ok();
    test_db.drop().await;
}

#[tokio::test]
async fn the_reflections_command_refuses_a_day_that_is_not_a_monday() {
    let test_db = TestDb::create().await;
    for (week, expected) in
        [("2025-01-07", "must be a Monday; that week starts on 2025-01-06"), ("06/01/2025", "YYYY-MM-DD")]
    {
        let output = test_db.worker(&["reflections", "--week", week]);
        assert_eq!(output.status.code(), Some(2), "a usage error");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--week") && stderr.contains(expected), "{stderr}");
    }
    test_db.drop().await;
}
