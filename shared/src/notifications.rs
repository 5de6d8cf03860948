//! Devices (Web Push subscriptions, APNs and FCM tokens) and the messages sent
//! to them. Sending happens in the
//! worker, one job per (message, subscription), so one failing device never
//! delays or repeats another.

pub mod choices;

use std::{collections::HashMap, sync::Arc};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    Clock,
    db::{UUID_BIND_BYTES, rows_per_statement},
    domain::ValidationErrors,
    entities::push_subscription::{self, Entity as PushSubscription},
    jobs::{Job, JobQueue, QueueError},
    push::{
        DeviceError, DeviceKind, DeviceRegistrationJson, PushKind, PushMessage, PushPayload, PushPolicy, Urgency,
        ValidDevice,
    },
};

/// Each person's push subscriptions (ids only), for sending one notice to many
/// people: one statement per [`rows_per_statement`] people.
pub async fn devices_by_user(db: &impl ConnectionTrait, users: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>, DbErr> {
    let mut devices: HashMap<Uuid, Vec<Uuid>> = HashMap::with_capacity(users.len());
    for chunk in users.chunks(rows_per_statement(UUID_BIND_BYTES)) {
        let rows = PushSubscription::find()
            .select_only()
            .columns([push_subscription::Column::UserId, push_subscription::Column::Id])
            .filter(push_subscription::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple::<(Uuid, Uuid)>()
            .all(db)
            .await?;
        for (user_id, subscription_id) in rows {
            devices.entry(user_id).or_default().push(subscription_id);
        }
    }
    Ok(devices)
}

/// Devices one person may register.
pub const MAX_SUBSCRIPTIONS_PER_USER: u64 = 10;
/// The test notification's title and body, the same on every kind of device.
pub const TEST_NOTICE: (&str, &str) = ("Attune", "Notifications work on this device.");
/// A test notification is worth showing for an hour at most.
const TEST_TTL_SECS: u32 = 60 * 60;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("at most {MAX_SUBSCRIPTIONS_PER_USER} devices may receive notifications")]
    TooManySubscriptions,
    #[error("{} push is not enabled on this install", .0.as_str())]
    ServiceNotEnabled(DeviceKind),
    #[error("no such subscription")]
    NotFound,
    #[error("no device is subscribed to notifications")]
    NoSubscriptions,
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Clone)]
pub struct Notifications {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    policy: PushPolicy,
    queue: JobQueue,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").finish_non_exhaustive()
    }
}

/// Whether a subscription was new or an update of the same endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Created,
    Updated,
}

impl Notifications {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, policy: PushPolicy, queue: JobQueue) -> Self {
        Self { db, clock, policy, queue }
    }

    /// Stores a device: a browser's subscription, an APNs device token or an
    /// FCM registration token. The same endpoint or token again updates it
    /// (keys rotate; a device may change hands) rather than adding a duplicate.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn subscribe(
        &self,
        user_id: Uuid,
        raw: &DeviceRegistrationJson,
    ) -> Result<(push_subscription::Model, Stored), NotificationError> {
        let device = ValidDevice::parse(raw, &self.policy).map_err(|error| match error {
            DeviceError::Invalid(errors) => NotificationError::Validation(errors),
            DeviceError::NotEnabled(kind) => NotificationError::ServiceNotEnabled(kind),
        })?;
        let now = self.clock.now_ms();
        let (endpoint, p256dh, auth, expires_at, environment) = match &device {
            ValidDevice::Web(valid) => (
                valid.endpoint().as_str().to_owned(),
                valid.p256dh_base64url(),
                valid.auth_base64url(),
                valid.expiration_time().map(|t| t.timestamp_millis()),
                None,
            ),
            ValidDevice::Native(native) => (
                native.storage_key(),
                String::new(),
                String::new(),
                None,
                native.environment().map(|e| e.as_str().to_owned()),
            ),
        };
        if let Some(existing) =
            PushSubscription::find().filter(push_subscription::Column::Endpoint.eq(&endpoint)).one(&self.db).await?
        {
            if existing.user_id != user_id {
                self.check_cap(user_id).await?;
            }
            let mut model: push_subscription::ActiveModel = existing.into();
            model.user_id = Set(user_id);
            model.p256dh = Set(p256dh);
            model.auth = Set(auth);
            model.expires_at = Set(expires_at);
            model.environment = Set(environment);
            model.updated_at = Set(now);
            return Ok((model.update(&self.db).await?, Stored::Updated));
        }
        self.check_cap(user_id).await?;
        let model = push_subscription::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            kind: Set(device.kind()),
            endpoint: Set(endpoint),
            p256dh: Set(p256dh),
            auth: Set(auth),
            environment: Set(environment),
            expires_at: Set(expires_at),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        tracing::info!(subscription_id = %model.id, kind = device.kind().as_str(), "push device stored");
        Ok((model, Stored::Created))
    }

    /// The device kinds this install accepts (`GET /v1/push/providers`).
    pub fn accepted_kinds(&self) -> Vec<DeviceKind> {
        self.policy.native().kinds()
    }

    async fn check_cap(&self, user_id: Uuid) -> Result<(), NotificationError> {
        let count =
            PushSubscription::find().filter(push_subscription::Column::UserId.eq(user_id)).count(&self.db).await?;
        if count >= MAX_SUBSCRIPTIONS_PER_USER {
            return Err(NotificationError::TooManySubscriptions);
        }
        Ok(())
    }

    pub async fn list(&self, user_id: Uuid) -> Result<Vec<push_subscription::Model>, DbErr> {
        PushSubscription::find()
            .filter(push_subscription::Column::UserId.eq(user_id))
            .order_by_asc(push_subscription::Column::CreatedAt)
            .all(&self.db)
            .await
    }

    pub async fn unsubscribe(&self, user_id: Uuid, id: Uuid) -> Result<(), NotificationError> {
        let deleted = PushSubscription::delete_many()
            .filter(push_subscription::Column::Id.eq(id))
            .filter(push_subscription::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(NotificationError::NotFound);
        }
        Ok(())
    }

    /// Queues a test notification to every device of the user; returns how many.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn send_test(&self, user_id: Uuid) -> Result<usize, NotificationError> {
        let subscriptions = self.list(user_id).await?;
        if subscriptions.is_empty() {
            return Err(NotificationError::NoSubscriptions);
        }
        let delivery_id = Uuid::now_v7();
        for subscription in &subscriptions {
            let payload = PushPayload {
                r#type: PushKind::Test,
                title: TEST_NOTICE.0.into(),
                body: TEST_NOTICE.1.into(),
                url: "/".into(),
                delivery_id: Some(delivery_id),
            };
            let message = PushMessage::new(payload, TEST_TTL_SECS, Urgency::Normal);
            self.queue
                .enqueue(Job::SendPush { user_id, subscription_id: subscription.id, message, attempt: 0 })
                .await?;
        }
        Ok(subscriptions.len())
    }
}
