//! Attune's HTTP API (axum). Handlers are thin: they extract, call into
//! `attune-shared`, and map the answer.

pub mod app;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

pub use app::{Application, BuildOptions, WorkerMode};
