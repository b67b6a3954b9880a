//! List conventions shared by every `GET` list (Studio §1.6): `limit` (default 20, at most
//! 1000), an opaque `cursor`, `Link: <...>; rel="next"` when a full page may have more, and
//! `X-Total-Count` with `count`.

use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use livefarm_store::Page;
use serde::Serialize;

use crate::studio::base_url;
use crate::studio::body::Params;
use crate::studio::streams::parse_limit;
use crate::AppState;

/// The page `limit` and `cursor` ask for.
pub(crate) fn page_of(params: &Params) -> Page {
    Page {
        limit: parse_limit(params.get("limit")),
        cursor: params
            .get("cursor")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
    }
}

/// The `Link` header value of the next page: the request's URL with `cursor` replaced.
pub(crate) fn next_link(base: &str, uri: &Uri, params: &Params, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.pairs() {
        if name != "cursor" {
            query.append_pair(name, value);
        }
    }
    query.append_pair("cursor", cursor);
    format!("<{base}{}?{}>; rel=\"next\"", uri.path(), query.finish())
}

/// A JSON array with the list headers.
pub(crate) fn list_response<T: Serialize>(
    state: &AppState,
    request_headers: &HeaderMap,
    uri: &Uri,
    params: &Params,
    items: Vec<T>,
    next: Option<String>,
    total: Option<i64>,
) -> Response {
    let mut response = Json(items).into_response();
    let headers = response.headers_mut();
    if let Some(next) = next {
        let link = next_link(&base_url(state, request_headers), uri, params, &next);
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, value);
        }
    }
    if let Some(total) = total {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    response
}
