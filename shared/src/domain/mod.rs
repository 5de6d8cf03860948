//! Domain types and rules: plain data, parsed once at the edge, no I/O.

pub mod account;
pub mod client_address;
pub mod couple;
pub mod device_label;
pub mod history;
pub mod invitation_code;
pub mod notification_choices;
pub mod pacing;
pub mod progress;
pub mod reflection;
pub mod reminders;
pub mod today;
pub mod validation;

pub use account::{Country, DisplayName, Email, Password, Timezone};
pub use validation::{FieldError, ValidationErrors};
