//! The OpenAPI document of what Livefarm serves, generated from the handlers' annotations
//! (utoipa) and served at `GET /api/openapi.json` (public).

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::studio::error::ErrorBody;
use crate::studio::{objects, playback, sessions, streams, webhooks};

/// Adds the bearer scheme every non-public operation requires.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `Authorization: Bearer <key>` (`livefarm api-key create`)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Livefarm API",
        description = "The Livepeer Studio-compatible API of Livefarm (point the Livepeer SDKs' \
                       serverURL at `<host>/api`) and its HLS playback. Errors are \
                       `{\"errors\": [\"...\"]}`."
    ),
    paths(
        streams::create_stream,
        streams::list_streams,
        streams::get_stream,
        streams::update_stream,
        streams::delete_stream,
        streams::set_suspended,
        streams::terminate_stream,
        streams::end_stream,
        sessions::list_sessions,
        sessions::get_session,
        sessions::stream_sessions,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::get_webhook,
        webhooks::replace_webhook,
        webhooks::delete_webhook,
        webhooks::list_logs,
        webhooks::get_log,
        webhooks::resend_log,
        playback::get_playback,
        serve_openapi,
        crate::recording::serve_top,
        crate::recording::serve_rendition,
        crate::http::hls_master,
        crate::http::hls_recording_master,
        crate::http::hls_rendition,
        crate::http::livepeer_master,
        crate::http::livepeer_media,
        crate::http::livepeer_segment,
    ),
    components(schemas(
        ErrorBody,
        objects::Stream,
        objects::NewStreamPayload,
        objects::StreamPatchPayload,
        objects::SuspendPayload,
        objects::FfmpegProfile,
        objects::TranscodeProfile,
        objects::PlaybackPolicy,
        objects::Target,
        objects::TargetOut,
        playback::PlaybackInfo,
    )),
    modifiers(&BearerKey),
    security(("apiKey" = [])),
    tags(
        (name = "stream", description = "Live streams (Studio §2)"),
        (name = "session", description = "Sessions and recordings (Studio §3)"),
        (name = "webhook", description = "Webhooks, delivery logs and resends (Studio §5)"),
        (name = "playback", description = "Playback info (Studio §4)"),
        (name = "hls", description = "HLS playback"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, made once.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|error| format!("{{\"errors\":[\"openapi: {error}\"]}}"))
    });
    &DOCUMENT
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn serve_openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}
