//! Attune's schema, one file per migration. The same migrations run on SQLite and
//! PostgreSQL: times are stored as epoch milliseconds (`BIGINT`) so comparisons and
//! ordering behave identically on both, and ids are UUIDv7.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_accounts;
mod m20261123_000002_sync;
mod m20261123_000003_program;
mod m20261123_000004_push;
mod m20261123_000005_reminders;
mod m20261123_000006_reflections;
mod m20261123_000007_reminder_outbox;
mod m20261124_000008_reminder_opened_index;
mod m20261124_000009_reminder_delivery_keys;
mod m20261124_000010_reminder_delivery_schedule_key;
mod m20261201_000011_notification_settings;
mod m20261202_000012_session_device;
mod m20261202_000013_native_push;
mod m20261202_000014_mail;
mod m20261202_000015_partners;
mod m20261202_000016_couple_mode;
mod m20261202_000017_checkin_summary;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_accounts::Migration),
            Box::new(m20261123_000002_sync::Migration),
            Box::new(m20261123_000003_program::Migration),
            Box::new(m20261123_000004_push::Migration),
            Box::new(m20261123_000005_reminders::Migration),
            Box::new(m20261123_000006_reflections::Migration),
            Box::new(m20261123_000007_reminder_outbox::Migration),
            Box::new(m20261124_000008_reminder_opened_index::Migration),
            Box::new(m20261124_000009_reminder_delivery_keys::Migration),
            Box::new(m20261124_000010_reminder_delivery_schedule_key::Migration),
            Box::new(m20261201_000011_notification_settings::Migration),
            Box::new(m20261202_000012_session_device::Migration),
            Box::new(m20261202_000013_native_push::Migration),
            Box::new(m20261202_000014_mail::Migration),
            Box::new(m20261202_000015_partners::Migration),
            Box::new(m20261202_000016_couple_mode::Migration),
            Box::new(m20261202_000017_checkin_summary::Migration),
        ]
    }
}
