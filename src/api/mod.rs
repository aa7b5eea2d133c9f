//! The Prometheus-compatible HTTP API (`/api/v1/*`), health and lifecycle endpoints and
//! `/metrics`, served with axum. Handlers parse parameters, run PromQL and storage calls on
//! blocking threads, and render Prometheus's JSON envelope.

// Handlers return a finished `Response` as their error value once per request; boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod json;
pub mod params;

mod admin;
mod federate;
mod handlers;
mod metadata;
mod query;
mod remote;
mod respond;
mod rules;
mod state;
mod status;
mod targets;

pub use state::{ApiOptions, ApiState};

use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;

/// Builds the router for every endpoint.
pub fn router(state: Arc<ApiState>) -> Router {
    let v1 = Router::new()
        .route("/query", any(query::instant))
        .route("/query_range", any(query::range))
        .route("/query_exemplars", any(query::exemplars))
        .route("/format_query", any(query::format_query))
        .route("/parse_query", any(query::parse_query))
        .route("/series", any(metadata::series))
        .route("/labels", any(metadata::labels))
        .route("/label/{name}/values", get(metadata::label_values))
        .route("/metadata", get(targets::metric_metadata))
        .route("/targets", get(targets::targets))
        .route("/targets/metadata", get(targets::targets_metadata))
        .route("/rules", get(rules::rules))
        .route("/alerts", get(rules::alerts))
        .route("/alertmanagers", get(rules::alertmanagers))
        .route("/status/config", get(status::config))
        .route("/status/flags", get(status::flags))
        .route("/status/runtimeinfo", get(status::runtimeinfo))
        .route("/status/buildinfo", get(status::buildinfo))
        .route("/status/tsdb", get(status::tsdb))
        .route("/status/walreplay", get(status::walreplay))
        .route("/admin/tsdb/{action}", any(admin::admin))
        .route("/write", post(remote::write))
        .route("/read", post(remote::read));
    Router::new()
        .nest("/api/v1", v1)
        .route("/-/healthy", any(handlers::healthy))
        .route("/-/ready", any(handlers::ready))
        .route("/-/reload", post(handlers::reload).put(handlers::reload))
        .route("/-/quit", post(handlers::quit).put(handlers::quit))
        .route("/metrics", get(handlers::metrics))
        .route("/federate", get(federate::federate))
        .merge(crate::web::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::instrument,
        ))
        .with_state(state)
}
