//! The layers every request passes through.

pub mod headers;
pub mod metrics;
pub mod problems;
pub mod request_id;
