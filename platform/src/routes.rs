//! The route table: every path the platform serves, in one list.
//!
//! Why a table: the OpenAPI document (`platform/openapi.yaml`) must describe exactly what the
//! router serves. The router is built from [`ROUTES`] (a route cannot exist without being listed),
//! and a test checks the list against the document in both directions.

use crate::error::PlatformError;
use crate::server::Shared;
use crate::{appliance, console, operator};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

/// (method, path) of every route, in axum's path syntax (which is also OpenAPI's).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/enroll"),
    ("GET", "/api/v1/appliance/poll"),
    ("POST", "/api/v1/appliance/heartbeat"),
    ("POST", "/api/v1/appliance/jobs/{job_id}/status"),
    ("POST", "/api/v1/appliance/results"),
    ("POST", "/api/v1/appliance/commands/{command_id}/result"),
    ("POST", "/api/v1/appliance/renew"),
    ("POST", "/api/v1/enrollment-codes"),
    ("GET", "/api/v1/appliances"),
    ("GET", "/api/v1/appliances/{id}"),
    ("POST", "/api/v1/appliances/{id}/commands"),
    ("GET", "/api/v1/appliances/{id}/commands"),
    ("POST", "/api/v1/appliances/{id}/revoke"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("GET", "/api/v1/findings"),
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("POST", "/console/logout"),
    ("GET", "/console/appliances/{id}"),
    ("POST", "/console/appliances/{id}/revoke"),
    ("GET", "/console/jobs"),
    ("POST", "/console/jobs"),
    ("GET", "/console/findings"),
    ("POST", "/console/codes"),
    ("GET", "/console/style.css"),
];

fn handler(method: &str, path: &str) -> Option<MethodRouter<Shared>> {
    Some(match (method, path) {
        ("POST", "/api/v1/enroll") => post(appliance::enroll),
        ("GET", "/api/v1/appliance/poll") => get(appliance::poll),
        ("POST", "/api/v1/appliance/heartbeat") => post(appliance::heartbeat),
        ("POST", "/api/v1/appliance/jobs/{job_id}/status") => post(appliance::job_status),
        ("POST", "/api/v1/appliance/results") => post(appliance::results),
        ("POST", "/api/v1/appliance/commands/{command_id}/result") => {
            post(appliance::command_result)
        }
        ("POST", "/api/v1/appliance/renew") => post(appliance::renew),
        ("POST", "/api/v1/enrollment-codes") => post(operator::post_code),
        ("GET", "/api/v1/appliances") => get(operator::list_appliances),
        ("GET", "/api/v1/appliances/{id}") => get(operator::get_appliance),
        ("POST", "/api/v1/appliances/{id}/commands") => post(operator::post_command),
        ("GET", "/api/v1/appliances/{id}/commands") => get(operator::list_commands),
        ("POST", "/api/v1/appliances/{id}/revoke") => post(operator::revoke_appliance),
        ("POST", "/api/v1/jobs") => post(operator::post_job),
        ("GET", "/api/v1/jobs") => get(operator::list_jobs),
        ("GET", "/api/v1/jobs/{id}") => get(operator::get_job),
        ("GET", "/api/v1/findings") => get(operator::list_findings),
        ("GET", "/") => get(console::root),
        ("GET", "/console") => get(console::fleet),
        ("GET", "/console/login") => get(console::login_page),
        ("POST", "/console/login") => post(console::login),
        ("POST", "/console/logout") => post(console::logout),
        ("GET", "/console/appliances/{id}") => get(console::appliance),
        ("POST", "/console/appliances/{id}/revoke") => post(console::revoke),
        ("GET", "/console/jobs") => get(console::jobs),
        ("POST", "/console/jobs") => post(console::create_job),
        ("GET", "/console/findings") => get(console::findings),
        ("POST", "/console/codes") => post(console::create_code),
        ("GET", "/console/style.css") => get(console::style),
        _ => return None,
    })
}

/// The router over [`ROUTES`]. Routes without a handler are a programming error reported here
/// (and by a unit test), not at request time.
pub fn try_router(platform: Shared) -> Result<Router, PlatformError> {
    let mut router: Router<Shared> = Router::new();
    for (method, path) in ROUTES {
        let h = handler(method, path).ok_or_else(|| PlatformError::Invalid {
            what: "route table",
            detail: format!("{method} {path} has no handler"),
        })?;
        router = router.route(path, h);
    }
    Ok(router
        .fallback(|| async {
            PlatformError::NotFound {
                what: "route",
                id: "(no such route)".into(),
            }
        })
        .with_state(platform))
}
