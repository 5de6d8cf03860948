//! Attune's shared core: configuration, database, entities, domain rules, the
//! account services and the job queue that the API enqueues into and the worker
//! consumes.

pub mod accounts;
pub mod clock;
pub mod config;
pub mod content;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod enrollment;
pub mod entities;
pub mod jobs;
pub mod mail;
pub mod notifications;
pub mod partners;
pub mod person_cache;
pub mod push;
pub mod reflections;
pub mod reminders;
mod secret;
pub mod secrets;
pub mod services;
pub mod shutdown;
pub mod sync;
pub mod telemetry;
pub mod usecases;

#[cfg(any(test, feature = "testing"))]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
