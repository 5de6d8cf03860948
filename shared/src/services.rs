//! The one place the services are built from settings. The API, the worker and
//! the test harness all start from [`Services::connect`], so a new service is
//! wired once. The use cases that span services are methods of [`Services`] in
//! `usecases`: each runs in one transaction.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    Clock,
    accounts::{Accounts, mail::AccountMail},
    config::Settings,
    crypto::DataCipher,
    db,
    enrollment::Enrollments,
    jobs::JobQueue,
    notifications::{Notifications, choices::NotificationSettings},
    partners::Partners,
    person_cache::{self, Announcer, FreshCache, PersonChanges},
    push::PushPolicy,
    reflections::Reflections,
    reminders::Reminders,
    secrets::Secrets,
    sync::SyncService,
};

/// Whether [`Services::connect`] applies pending migrations first (embedded
/// mode and tests do; a scaled install runs `attune-api migrate` as its own step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    Yes,
    No,
}

/// Every service over one database connection, one queue and one clock.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub queue: JobQueue,
    pub clock: Arc<dyn Clock>,
    pub secrets: Secrets,
    /// This process's caches of what requests read about the person asking,
    /// and the announcement of changes to the other replicas (`person_cache`).
    pub changes: PersonChanges,
    pub accounts: Accounts,
    /// Password reset, email verification and the notices that go by mail: the
    /// API queues them, the worker renders and sends them.
    pub account_mail: AccountMail,
    pub sync: SyncService,
    pub enrollments: Enrollments,
    pub notifications: Notifications,
    pub reminders: Reminders,
    pub notification_settings: NotificationSettings,
    pub reflections: Reflections,
    pub partners: Partners,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl Services {
    /// Resolves the secrets, opens the database (migrating it when asked) and the
    /// job queue, and builds every service.
    pub async fn connect(settings: &Settings, clock: Arc<dyn Clock>, migrate: Migrate) -> anyhow::Result<Self> {
        let secrets = Secrets::resolve(settings)?;
        // Broken program content is a clear start-up error, never a failure mid-request.
        crate::content::catalog().map_err(|e| anyhow::anyhow!("program content: {e}"))?;
        let db = db::connect(&settings.database_url())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
        if migrate == Migrate::Yes {
            db::migrate(&db).await.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
        }
        let queue = JobQueue::connect(settings).await?;
        Self::new(settings, db, queue, secrets, clock)
    }

    /// Builds every service over connections already open. Fails only on mail
    /// settings that cannot work (`ATTUNE_SMTP_URL`, `ATTUNE_MAIL_FROM`).
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        queue: JobQueue,
        secrets: Secrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let sync = SyncService::new(
            db.clone(),
            DataCipher::new(secrets.data_keys.clone()),
            clock.clone(),
            settings.tombstone_retention_days,
        );
        let notifications =
            Notifications::new(db.clone(), clock.clone(), PushPolicy::from_settings(settings), queue.clone());
        let sessions = Arc::new(FreshCache::new(clock.clone(), person_cache::CAPACITY));
        let descriptive = Arc::new(FreshCache::new(clock.clone(), person_cache::CAPACITY));
        // On Redis the other replicas hear of each change; embedded, this process is the only one.
        let announcer = queue
            .redis_connection()
            .map(|conn| Announcer::new(conn, person_cache::channel_name(&settings.queue_namespace)));
        let program = Arc::new(FreshCache::new(clock.clone(), person_cache::CAPACITY));
        let changes = PersonChanges::new(vec![sessions.clone(), descriptive.clone(), program.clone()], announcer);
        let accounts = Accounts::new(db.clone(), clock.clone(), &secrets, queue.clone(), sessions, changes.clone());
        let enrollments = Enrollments::new(db.clone(), clock.clone(), program, changes.clone());
        let reminders = Reminders::new(db.clone(), clock.clone(), changes.clone());
        let reflections = Reflections::new(db.clone(), clock.clone());
        let notification_settings = NotificationSettings::new(db.clone(), reminders.clone(), descriptive);
        let account_mail =
            AccountMail::new(db.clone(), clock.clone(), settings, &secrets, queue.clone(), changes.clone())?;
        let partners = Partners::new(db.clone(), clock.clone());
        Ok(Self {
            db,
            queue,
            clock,
            secrets,
            changes,
            accounts,
            account_mail,
            sync,
            enrollments,
            notifications,
            reminders,
            notification_settings,
            reflections,
            partners,
        })
    }
}
