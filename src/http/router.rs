//! The route table: every endpoint the gateway serves, in one place.
//! `/openapi.json` is checked against this table by a test.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use hyper::Method;

use super::error::ApiError;
use super::request::Req;
use super::response::Resp;
use crate::api::{
    admin, api_keys, contacts, events, groups, lifecycle, me, messages, orgs, profile, sessions, sim, sim_directory,
    sim_groups, webhooks,
};
use crate::app::App;
use crate::console;
use crate::ops::{health, metrics, openapi};

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Resp, ApiError>> + Send>>;
/// A handler: the app and the buffered request.
pub type Handler = fn(Arc<App>, Req) -> HandlerFuture;

/// One method on one path pattern (`{id}` and one more `{...}` —
/// `{msgId}`, `{contact}`, `{groupId}`, `{code}` — each match one segment).
pub struct Route {
    pub method: Method,
    pub pattern: &'static str,
    pub handler: Handler,
    /// Largest request body the route reads (1 MiB unless it takes media).
    pub max_body: usize,
}

macro_rules! route {
    ($method:ident $pattern:literal => $handler:path) => {
        route!($method $pattern => $handler, super::pipeline::MAX_BODY)
    };
    ($method:ident $pattern:literal => $handler:path, $max:expr) => {
        Route {
            method: Method::$method,
            pattern: $pattern,
            handler: |app, req| Box::pin($handler(app, req)),
            max_body: $max,
        }
    };
}

/// Body limit of a message send: 16 MiB of media as base64, plus the JSON.
pub const MAX_MESSAGE_BODY: usize = 24 * 1024 * 1024;
/// Body limit of a picture upload (CONTRACT §12: the image ≤ 5 MiB).
pub const MAX_PICTURE_BODY: usize = 5 * 1024 * 1024;
/// Body limit of a batch send.
pub const MAX_BATCH_BODY: usize = 32 * 1024 * 1024;

/// Every route, in the order the README lists them.
pub fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        vec![
            route!(GET "/api/v1/admin/sessions" => admin::list_sessions),
            route!(POST "/api/v1/admin/sessions" => admin::create_session),
            route!(GET "/api/v1/admin/organizations" => orgs::list),
            route!(POST "/api/v1/admin/organizations" => orgs::create),
            route!(PATCH "/api/v1/admin/organizations/{id}" => orgs::update),
            route!(POST "/api/v1/admin/sessions/{id}/start" => lifecycle::admin_start),
            route!(POST "/api/v1/admin/sessions/{id}/stop" => lifecycle::admin_stop),
            route!(POST "/api/v1/admin/backup" => admin::backup),
            route!(GET "/api/v1/sessions" => sessions::list),
            route!(POST "/api/v1/sessions" => sessions::create),
            route!(GET "/api/v1/sessions/{id}" => sessions::get),
            route!(PATCH "/api/v1/sessions/{id}" => sessions::update),
            route!(DELETE "/api/v1/sessions/{id}" => sessions::delete),
            route!(POST "/api/v1/sessions/{id}/start" => lifecycle::start),
            route!(POST "/api/v1/sessions/{id}/stop" => lifecycle::stop),
            route!(POST "/api/v1/sessions/{id}/restart" => lifecycle::restart),
            route!(POST "/api/v1/sessions/{id}/logout" => lifecycle::logout),
            route!(GET "/api/v1/sessions/{id}/qr" => lifecycle::qr),
            route!(POST "/api/v1/sessions/{id}/pair-code" => lifecycle::pair_code),
            route!(POST "/api/v1/sessions/{id}/sim/pair" => lifecycle::sim_pair),
            route!(POST "/api/v1/sessions/{id}/sim/disconnect" => lifecycle::sim_disconnect),
            route!(POST "/api/v1/sessions/{id}/sim/logout" => lifecycle::sim_logout),
            route!(POST "/api/v1/sessions/{id}/sim/incoming" => sim::incoming),
            route!(POST "/api/v1/sessions/{id}/sim/receipt" => sim::receipt),
            route!(POST "/api/v1/sessions/{id}/sim/refuse" => sim::refuse),
            route!(GET "/api/v1/sessions/{id}/sim/outbox" => sim::outbox),
            route!(POST "/api/v1/sessions/{id}/sim/contacts" => sim_directory::contacts),
            route!(POST "/api/v1/sessions/{id}/sim/presence" => sim_directory::presence),
            route!(POST "/api/v1/sessions/{id}/sim/group-event" => sim_groups::group_event),
            route!(POST "/api/v1/sessions/{id}/messages" => messages::send, MAX_MESSAGE_BODY),
            route!(POST "/api/v1/sessions/{id}/messages/batch" => messages::batch, MAX_BATCH_BODY),
            route!(GET "/api/v1/sessions/{id}/messages" => messages::list),
            route!(GET "/api/v1/sessions/{id}/messages/{msgId}" => messages::get),
            route!(DELETE "/api/v1/sessions/{id}/messages/{msgId}" => messages::delete),
            route!(GET "/api/v1/sessions/{id}/messages/{msgId}/media" => messages::media),
            route!(POST "/api/v1/sessions/{id}/contacts/check" => contacts::check),
            route!(GET "/api/v1/sessions/{id}/contacts" => contacts::list),
            route!(GET "/api/v1/sessions/{id}/contacts/{contact}" => contacts::get),
            route!(GET "/api/v1/sessions/{id}/contacts/{contact}/picture" => contacts::picture),
            route!(PUT "/api/v1/sessions/{id}/contacts/{contact}/block" => contacts::block),
            route!(DELETE "/api/v1/sessions/{id}/contacts/{contact}/block" => contacts::unblock),
            route!(PUT "/api/v1/sessions/{id}/presence" => profile::set_presence),
            route!(POST "/api/v1/sessions/{id}/presence/subscribe" => profile::subscribe_presence),
            route!(GET "/api/v1/sessions/{id}/profile" => profile::get),
            route!(PATCH "/api/v1/sessions/{id}/profile" => profile::update),
            route!(PUT "/api/v1/sessions/{id}/profile/picture" => profile::set_picture, MAX_PICTURE_BODY),
            route!(DELETE "/api/v1/sessions/{id}/profile/picture" => profile::delete_picture),
            route!(GET "/api/v1/sessions/{id}/groups" => groups::list),
            route!(POST "/api/v1/sessions/{id}/groups" => groups::create),
            route!(POST "/api/v1/sessions/{id}/groups/join" => groups::join),
            route!(GET "/api/v1/sessions/{id}/groups/invite/{code}" => groups::invite_preview),
            route!(GET "/api/v1/sessions/{id}/groups/{groupId}" => groups::get),
            route!(PATCH "/api/v1/sessions/{id}/groups/{groupId}" => groups::update),
            route!(DELETE "/api/v1/sessions/{id}/groups/{groupId}" => groups::leave),
            route!(POST "/api/v1/sessions/{id}/groups/{groupId}/participants" => groups::participants),
            route!(GET "/api/v1/sessions/{id}/groups/{groupId}/invite" => groups::invite),
            route!(POST "/api/v1/sessions/{id}/groups/{groupId}/invite/revoke" => groups::revoke_invite),
            route!(GET "/api/v1/sessions/{id}/groups/{groupId}/requests" => groups::requests),
            route!(POST "/api/v1/sessions/{id}/groups/{groupId}/requests" => groups::answer_requests),
            route!(PUT "/api/v1/sessions/{id}/groups/{groupId}/picture" => groups::set_picture, MAX_PICTURE_BODY),
            route!(GET "/api/v1/events" => events::list),
            route!(GET "/api/v1/admin/events" => events::admin_list),
            route!(POST "/api/v1/webhooks" => webhooks::create),
            route!(GET "/api/v1/webhooks" => webhooks::list),
            route!(GET "/api/v1/webhooks/{id}" => webhooks::get),
            route!(PATCH "/api/v1/webhooks/{id}" => webhooks::patch),
            route!(DELETE "/api/v1/webhooks/{id}" => webhooks::delete),
            route!(POST "/api/v1/webhooks/{id}/rotate-secret" => webhooks::rotate_secret),
            route!(GET "/api/v1/webhooks/{id}/deliveries" => webhooks::deliveries),
            route!(POST "/api/v1/webhooks/{id}/replay" => webhooks::replay),
            route!(POST "/api/v1/webhooks/{id}/test" => webhooks::test),
            route!(POST "/api/v1/api-keys" => api_keys::create),
            route!(GET "/api/v1/api-keys" => api_keys::list),
            route!(DELETE "/api/v1/api-keys/{id}" => api_keys::revoke),
            route!(GET "/api/v1/me" => me::me),
            route!(GET "/healthz" => health::healthz),
            route!(GET "/readyz" => health::readyz),
            route!(GET "/metrics" => metrics::render),
            route!(GET "/openapi.json" => openapi::serve),
            route!(GET "/.well-known/jwks.json" => health::jwks),
            route!(GET "/console" => console::index),
            route!(GET "/console/{id}" => console::file),
            route!(GET "/docs" => console::docs),
        ]
    })
}

impl Route {
    /// Whether the route takes a bearer token: every `/api/` route does;
    /// the operational ones (health, metrics, OpenAPI, JWKS) and the web
    /// console's files never do, and none of those takes a body.
    pub fn needs_auth(&self) -> bool {
        self.pattern.starts_with("/api/")
    }
}

/// The route of a benchmark's fixed response (`App::extra_static`).
pub fn static_route() -> &'static Route {
    static STATIC: OnceLock<Route> = OnceLock::new();
    STATIC.get_or_init(|| Route {
        method: Method::GET,
        pattern: "static",
        max_body: 0,
        handler: |app, req| {
            Box::pin(async move {
                let body = app.extra_static(&req.path).unwrap_or_default();
                Ok(super::response::bytes(200, "application/json", body))
            })
        },
    })
}

/// The path segments a route's pattern captured: `{id}`, and the second
/// one (`{msgId}`, `{contact}`, `{groupId}` or `{code}`).
pub type Params = (Option<String>, Option<String>);

/// The result of matching a request against the table.
pub enum Match {
    /// A route, with its `{id}` and `{msgId}` segments if any.
    Found(&'static Route, Params),
    /// The path exists, but not with this method.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[cfg(test)]
fn matches(pattern: &str, path: &str) -> Option<Params> {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    matches_split(&pattern, &path)
}

/// [`matches`] on patterns and paths already split at `/`.
fn matches_split(pattern: &[&str], path: &[&str]) -> Option<Params> {
    if pattern.len() != path.len() {
        return None;
    }
    let (mut id, mut sub) = (None, None);
    for (p, seg) in pattern.iter().zip(path) {
        match *p {
            "{id}" if !seg.is_empty() => id = Some(seg.to_string()),
            p if p.starts_with('{') && !seg.is_empty() => sub = Some(seg.to_string()),
            p if p == *seg => {}
            _ => return None,
        }
    }
    Some((id, sub))
}

/// The route table split once: each route's pattern segments, grouped by
/// how many segments it has (a request is compared only with routes of its
/// own length, without splitting any pattern again). Exists so that the
/// table can grow without every request paying for every route.
struct Index {
    by_len: Vec<Vec<(&'static Route, Vec<&'static str>, usize)>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut by_len: Vec<Vec<(&'static Route, Vec<&'static str>, usize)>> = Vec::new();
        for r in routes() {
            let segs: Vec<&'static str> = r.pattern.split('/').collect();
            let params = r.pattern.matches('{').count();
            if by_len.len() <= segs.len() {
                by_len.resize_with(segs.len() + 1, Vec::new);
            }
            by_len[segs.len()].push((r, segs, params));
        }
        Index { by_len }
    })
}

/// Finds the route for a method and path; `HEAD` is served wherever `GET` is.
/// A literal segment beats a `{...}` one: `.../messages/batch` is the batch
/// route, never message `batch`.
pub fn find(method: &Method, path: &str) -> Match {
    let wanted = if method == Method::HEAD { &Method::GET } else { method };
    let segs: Vec<&str> = path.split('/').collect();
    let Some(same_len) = index().by_len.get(segs.len()) else { return Match::NotFound };
    let mut candidates: Vec<(&'static Route, Params, usize)> = Vec::new();
    for (r, pattern, params) in same_len {
        if let Some(p) = matches_split(pattern, &segs) {
            candidates.push((r, p, *params));
        }
    }
    let Some(fewest) = candidates.iter().map(|c| c.2).min() else { return Match::NotFound };
    let mut allowed = Vec::new();
    for (route, found, _) in candidates.into_iter().filter(|c| c.2 == fewest) {
        if route.method == wanted {
            return Match::Found(route, found);
        }
        if route.method == Method::GET {
            allowed.push(Method::HEAD);
        }
        allowed.push(route.method.clone());
    }
    Match::MethodNotAllowed(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert_eq!(matches("/api/v1/sessions/{id}", "/api/v1/sessions/abc"), Some((Some("abc".into()), None)));
        assert_eq!(
            matches("/api/v1/sessions/{id}/messages/{msgId}", "/api/v1/sessions/a/messages/b"),
            Some((Some("a".into()), Some("b".into())))
        );
        assert_eq!(matches("/api/v1/sessions/{id}", "/api/v1/sessions/"), None);
        assert_eq!(matches("/api/v1/sessions/{id}", "/api/v1/sessions/a/b"), None);
        assert_eq!(matches("/api/v1/sessions", "/api/v1/sessions/"), None);
        assert_eq!(matches("/healthz", "/healthz"), Some((None, None)));
        assert!(matches!(find(&Method::PUT, "/api/v1/sessions"), Match::MethodNotAllowed(m) if m.len() == 3));
        assert!(matches!(find(&Method::HEAD, "/healthz"), Match::Found(r, _) if r.method == Method::GET));
        assert!(matches!(find(&Method::GET, "/nope"), Match::NotFound));
        assert!(matches!(find(&Method::GET, "/api/v1/sessions/a/messages/batch"), Match::MethodNotAllowed(m) if m == [Method::POST]));
        assert!(matches!(find(&Method::GET, "/api/v1/sessions/a/messages/b"), Match::Found(r, _) if r.pattern.ends_with("{msgId}")));
    }
}
