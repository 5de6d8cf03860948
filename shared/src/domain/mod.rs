//! Domain types and rules: plain data, parsed once at the edge, no I/O.

pub mod account;
pub mod validation;

pub use account::{DisplayName, Email, Password, Timezone};
pub use validation::{FieldError, ValidationErrors};
