//! Operations endpoints: health, readiness, Prometheus metrics, OpenAPI.

pub mod health;
pub mod metrics;
pub mod openapi;
