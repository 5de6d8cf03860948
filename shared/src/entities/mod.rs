//! sea-orm entities. Times are epoch milliseconds (see `attune-migrations`).

pub mod boundary;
pub mod checkin_distress;
pub mod checkin_exercise_tally;
pub mod checkin_session_slot;
pub mod enrollment;
pub mod journal_entry;
pub mod login_throttle;
pub mod notification_setting;
pub mod one_time_token;
pub mod partner_invitation;
pub mod partner_link;
pub mod push_subscription;
pub mod reflection;
pub mod refresh_token;
pub mod reminder_delivery;
pub mod reminder_schedule;
pub mod session;
pub mod step_change;
pub mod sync_state;
pub mod sync_tombstone;
pub mod user;
