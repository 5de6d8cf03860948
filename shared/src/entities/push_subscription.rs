//! A device that receives notifications: a browser's Web Push subscription, an
//! APNs device token or an FCM registration token. The endpoint is a bearer
//! capability, the keys are the browser's and tokens address one device: none of
//! them is ever logged or returned by the API.

use sea_orm::entity::prelude::*;

use crate::push::DeviceKind;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// Which service delivers to it.
    pub kind: DeviceKind,
    /// Web Push: the push service URL. APNs and FCM: `apns:<token>` /
    /// `fcm:<token>` (see `push::NativeDevice`), so one unique index covers all.
    #[sea_orm(unique)]
    pub endpoint: String,
    /// Web Push only (empty for native devices): base64url, as the browser gave
    /// it (normalised, unpadded).
    pub p256dh: String,
    pub auth: String,
    /// APNs only: `production` or `sandbox`.
    pub environment: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSubscription")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
