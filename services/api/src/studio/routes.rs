//! Every route the service serves, in one table: the router is built from it, and a test
//! checks that the OpenAPI document covers it, so a route cannot be served undocumented.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

use crate::studio::{openapi, playback, sessions, streams, webhooks};
use crate::{http, recording, AppState};

/// One route: its method and path template (axum's and OpenAPI's `{param}` syntax).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// Served without an API key.
    pub public: bool,
    pub(crate) handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, public: bool, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter =
        MethodFilter::try_from(method.clone()).expect("the table names only standard methods");
    Route {
        method,
        path,
        public,
        handler: on(filter, handler),
    }
}

/// The route table.
pub fn table() -> Vec<Route> {
    const AUTH: bool = false;
    const PUBLIC: bool = true;
    vec![
        // Studio API (§2, §4)
        route(Method::POST, "/api/stream", AUTH, streams::create_stream),
        route(Method::GET, "/api/stream", AUTH, streams::list_streams),
        route(Method::GET, "/api/stream/{id}", AUTH, streams::get_stream),
        route(
            Method::PATCH,
            "/api/stream/{id}",
            AUTH,
            streams::update_stream,
        ),
        route(
            Method::DELETE,
            "/api/stream/{id}",
            AUTH,
            streams::delete_stream,
        ),
        route(
            Method::PATCH,
            "/api/stream/{id}/suspended",
            AUTH,
            streams::set_suspended,
        ),
        route(
            Method::DELETE,
            "/api/stream/{id}/terminate",
            AUTH,
            streams::terminate_stream,
        ),
        route(
            Method::POST,
            "/api/stream/{id}/end",
            AUTH,
            streams::end_stream,
        ),
        // Sessions (§3)
        route(Method::GET, "/api/session", AUTH, sessions::list_sessions),
        route(
            Method::GET,
            "/api/session/{id}",
            AUTH,
            sessions::get_session,
        ),
        route(
            Method::GET,
            "/api/stream/{id}/sessions",
            AUTH,
            sessions::stream_sessions,
        ),
        // Webhooks (§5)
        route(Method::GET, "/api/webhook", AUTH, webhooks::list_webhooks),
        route(Method::POST, "/api/webhook", AUTH, webhooks::create_webhook),
        route(
            Method::GET,
            "/api/webhook/{id}",
            AUTH,
            webhooks::get_webhook,
        ),
        route(
            Method::PUT,
            "/api/webhook/{id}",
            AUTH,
            webhooks::replace_webhook,
        ),
        route(
            Method::DELETE,
            "/api/webhook/{id}",
            AUTH,
            webhooks::delete_webhook,
        ),
        route(
            Method::GET,
            "/api/webhook/{id}/log",
            AUTH,
            webhooks::list_logs,
        ),
        route(
            Method::GET,
            "/api/webhook/{id}/log/{log_id}",
            AUTH,
            webhooks::get_log,
        ),
        route(
            Method::POST,
            "/api/webhook/{id}/log/{log_id}/resend",
            AUTH,
            webhooks::resend_log,
        ),
        route(
            Method::GET,
            "/api/playback/{id}",
            PUBLIC,
            playback::get_playback,
        ),
        route(
            Method::GET,
            "/api/openapi.json",
            PUBLIC,
            openapi::serve_openapi,
        ),
        // HLS playback
        route(
            Method::GET,
            "/hls/{playback_id}/index.m3u8",
            PUBLIC,
            http::hls_master,
        ),
        route(
            Method::GET,
            "/hls/{playback_id}/recording.m3u8",
            PUBLIC,
            http::hls_recording_master,
        ),
        route(
            Method::GET,
            "/hls/{playback_id}/{rendition}/{file}",
            PUBLIC,
            http::hls_rendition,
        ),
        // recordings of sessions (static HLS and an MP4, made when the session ends)
        route(
            Method::GET,
            "/recordings/{session_id}/{file}",
            PUBLIC,
            recording::serve_top,
        ),
        route(
            Method::GET,
            "/recordings/{session_id}/{rendition}/{file}",
            PUBLIC,
            recording::serve_rendition,
        ),
        // go-livepeer's playback layout, by stream id
        route(Method::GET, "/stream/{file}", PUBLIC, http::livepeer_master),
        route(
            Method::GET,
            "/stream/{id}/{file}",
            PUBLIC,
            http::livepeer_media,
        ),
        route(
            Method::GET,
            "/stream/{id}/{rendition}/{file}",
            PUBLIC,
            http::livepeer_segment,
        ),
    ]
}
