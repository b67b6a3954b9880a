//! The Studio-compatible API over real HTTP, a real database (a SQLite file; the main flows
//! also on a real PostgreSQL server) and the memory bus: authentication, every error path,
//! the stream object, lists with cursors, counts and filters, update, suspend, terminate,
//! delete, tenant isolation, playback info and the OpenAPI document.

mod common;

use std::collections::HashSet;

use common::{call, error_message, Api};
use livefarm_bus::MessageId;
use livefarm_jobs::STREAM_CONTROL;
use livefarm_store::testing::PgServer;
use serde_json::{json, Value};

/// The `StreamControl` messages on the bus so far, as `(stream_id, action)`.
async fn controls(api: &Api) -> Vec<(String, String)> {
    api.bus
        .read_after(
            STREAM_CONTROL,
            MessageId::new(0, 0),
            1000,
            std::time::Duration::ZERO,
        )
        .await
        .expect("read controls")
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.payload).expect("control json");
            (
                v["stream_id"].as_str().expect("stream_id").to_owned(),
                v["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

/// Every flow that must behave the same on SQLite and PostgreSQL.
async fn main_flows(api: &Api) {
    // create: the §2.1 object with the default ladder, no null but the nullable
    let created = api
        .create_stream(
            r#"{"name":"cam","playbackPolicy":{"type":"jwt"},"userTags":{"team":"a","n":[1,"b"]}}"#,
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let pid = created["playbackId"]
        .as_str()
        .expect("playbackId")
        .to_owned();
    assert_eq!(created["name"], "cam");
    assert_eq!(created["createdByTokenName"], "tok");
    assert_eq!(created["userId"], api.tenant.as_str());
    assert_eq!(created["isActive"], false);
    assert_eq!(created["suspended"], false);
    assert_eq!(created["lastSeen"], 0);
    assert_eq!(created["lastTerminatedAt"], Value::Null);
    assert_eq!(created["profiles"].as_array().expect("ladder").len(), 4);
    assert_eq!(created["playbackPolicy"], json!({"type": "jwt"}));
    assert_eq!(created["userTags"], json!({"team": "a", "n": [1, "b"]}));
    assert_eq!(&created["id"].as_str().expect("id")[..4], &pid[..4]);
    let fetched = api
        .json("GET", &format!("/api/stream/{id}"), None, 200)
        .await;
    assert_eq!(fetched, created);

    // list with pagination: 24 more streams, pages of 10 walked through Link
    for i in 0..24 {
        api.create_stream(&format!(r#"{{"name":"s{i}","record":{}}}"#, i % 2 == 0))
            .await;
    }
    let first = api
        .call("GET", "/api/stream?limit=10&count=1&streamsonly=true", None)
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-total-count"), Some("25"));
    let mut seen = HashSet::new();
    let mut reply = first;
    let mut pages = 0;
    loop {
        pages += 1;
        let page: Vec<Value> = serde_json::from_slice(&reply.body).expect("page");
        for stream in &page {
            assert!(seen.insert(stream["id"].as_str().expect("id").to_owned()));
        }
        let Some(link) = reply.header("link") else {
            break;
        };
        let url = link
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(u, _)| u)
            .unwrap_or_else(|| panic!("bad link {link}"));
        let host = format!("http://{}", api.addr());
        let path = url
            .strip_prefix(&host)
            .unwrap_or_else(|| panic!("{url} not under {host}"));
        assert!(
            path.contains("limit=10") && path.contains("streamsonly=true"),
            "{path}"
        );
        reply = api.call("GET", path, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!((pages, seen.len()), (3, 25));
    let all: Vec<Value> = serde_json::from_value(
        api.json("GET", "/api/stream?limit=99999999999999", None, 200)
            .await,
    )
    .expect("all");
    assert_eq!(all.len(), 25, "a huge limit is clamped, not refused");
    let default: Vec<Value> =
        serde_json::from_value(api.json("GET", "/api/stream?limit=abc", None, 200).await)
            .expect("default page");
    assert_eq!(default.len(), 20);
    let bad_cursor = api.call("GET", "/api/stream?cursor=skip20", None).await;
    assert_eq!(bad_cursor.status, 400, "{}", bad_cursor.text());

    // filters (§1.6)
    let filtered = |filters: Value| {
        let query: String =
            url::form_urlencoded::byte_serialize(filters.to_string().as_bytes()).collect();
        format!("/api/stream?count=1&filters={query}")
    };
    let recorded = api
        .call(
            "GET",
            &filtered(json!([{"id":"record","value":true}])),
            None,
        )
        .await;
    assert_eq!(recorded.header("x-total-count"), Some("12"));
    let by_name = api
        .json(
            "GET",
            &filtered(json!([{"id":"name","value":"S1"}])),
            None,
            200,
        )
        .await;
    let names: HashSet<&str> = by_name
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        HashSet::from(["s1", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19"])
    );
    let by_id = api
        .json("GET", &filtered(json!([{"id":"id","value":id}])), None, 200)
        .await;
    assert_eq!(by_id.as_array().expect("list").len(), 1);
    let created_at = created["createdAt"].as_i64().expect("createdAt");
    let newer = api
        .call("GET", &filtered(json!([{"id":"createdAt","value":{"gt": created_at - 1}},{"id":"isActive","value":false}])), None)
        .await;
    assert_eq!(newer.header("x-total-count"), Some("25"));
    let none = api
        .call(
            "GET",
            &filtered(json!([{"id":"lastSeen","value":{"gt": 0}}])),
            None,
        )
        .await;
    assert_eq!(none.header("x-total-count"), Some("0"));
    for (filters, needle) in [
        (
            json!([{"id":"bogus","value":1}]),
            "unknown field: \"bogus\"",
        ),
        (
            json!([{"id":"isActive","value":"true"}]),
            "expected boolean value for field \"isActive\"",
        ),
    ] {
        let reply = api.call("GET", &filtered(filters), None).await;
        assert_eq!(reply.status, 400);
        let message = error_message(&reply);
        assert!(
            message.starts_with("error parsing filters: ") && message.contains(needle),
            "{message}"
        );
    }

    // update
    let path = format!("/api/stream/{id}");
    let patched = api
        .call(
            "PATCH",
            &path,
            Some(r#"{"name":"renamed","record":true,"playbackPolicy":null}"#),
        )
        .await;
    assert_eq!(patched.status, 204, "{}", patched.text());
    let after = api.json("GET", &path, None, 200).await;
    assert_eq!(
        (after["name"].as_str(), after["record"].as_bool()),
        (Some("renamed"), Some(true))
    );
    assert!(after.get("playbackPolicy").is_none());
    assert_eq!(api.call("PATCH", &path, Some("{}")).await.status, 204);
    // live: record and profiles are frozen
    assert!(api
        .store
        .mark_stream_active(&id, livefarm_store::ids::now_ms())
        .await
        .expect("active"));
    for (body, needle) in [
        (
            r#"{"record":false}"#,
            "cannot change 'record' field while stream is active",
        ),
        (
            r#"{"profiles":null}"#,
            "cannot change 'profiles' field while stream is active",
        ),
    ] {
        let reply = api.call("PATCH", &path, Some(body)).await;
        assert_eq!(
            (reply.status, error_message(&reply)),
            (400, needle.to_owned())
        );
    }
    assert_eq!(
        api.call("PATCH", &path, Some(r#"{"record":true}"#))
            .await
            .status,
        204
    );

    // playback info: live, HLS then WebRTC, meta.live from isActive
    let info = call(
        api.addr(),
        "GET",
        &format!("/api/playback/{pid}"),
        None,
        None,
    )
    .await;
    assert_eq!(info.status, 200, "{}", info.text());
    let info: Value = serde_json::from_slice(&info.body).expect("info");
    let base = format!("http://{}", api.addr());
    assert_eq!(
        info,
        json!({"type": "live", "meta": {"live": 1, "source": [
            {"hrn": "HLS (TS)", "type": "html5/application/vnd.apple.mpegurl", "url": format!("{base}/hls/{pid}/index.m3u8")},
            {"hrn": "WebRTC (H264)", "type": "html5/video/h264", "url": format!("{base}/webrtc/{pid}")}
        ]}})
    );

    // suspend: playback is 404 while suspended; ingest is told
    assert_eq!(
        api.call("PATCH", &path, Some(r#"{"suspended":true}"#))
            .await
            .status,
        204
    );
    let hidden = call(
        api.addr(),
        "GET",
        &format!("/api/playback/{pid}"),
        None,
        None,
    )
    .await;
    assert_eq!(hidden.status, 404);
    assert!(hidden
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    assert_eq!(
        error_message(&hidden),
        format!("No playback URL found for {pid}")
    );
    let hls = call(
        api.addr(),
        "GET",
        &format!("/hls/{pid}/index.m3u8"),
        None,
        None,
    )
    .await;
    assert_eq!(hls.status, 404);
    assert!(controls(api)
        .await
        .contains(&(id.clone(), "suspend".to_owned())));
    assert_eq!(
        api.call(
            "PATCH",
            &format!("{path}/suspended"),
            Some(r#"{"suspended":false}"#)
        )
        .await
        .status,
        204
    );
    let back = call(
        api.addr(),
        "GET",
        &format!("/api/playback/{pid}"),
        None,
        None,
    )
    .await;
    assert_eq!(back.status, 200);
    let legacy = api
        .call("PATCH", &format!("{path}/suspended"), Some("{}"))
        .await;
    assert_eq!(
        (legacy.status, error_message(&legacy)),
        (422, "missing suspended property".to_owned())
    );

    // another tenant sees nothing of it
    let (_, other) = common::tenant_with_key(&api.store, "other").await;
    for (method, p, body) in [
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), Some(r#"{"name":"x"}"#)),
        ("DELETE", format!("{path}/terminate"), None),
        (
            "PATCH",
            format!("{path}/suspended"),
            Some(r#"{"suspended":true}"#),
        ),
        ("DELETE", path.clone(), None),
    ] {
        let reply = call(api.addr(), method, &p, Some(&other), body).await;
        assert_eq!(
            (reply.status, error_message(&reply)),
            (404, "not found".to_owned()),
            "{method} {p}"
        );
    }
    let theirs = call(api.addr(), "GET", "/api/stream", Some(&other), None).await;
    assert_eq!(theirs.body, b"[]");

    // terminate, and 429 within 5 s
    let terminate = format!("{path}/terminate");
    assert_eq!(api.call("DELETE", &terminate, None).await.status, 204);
    let again = api.call("DELETE", &terminate, None).await;
    assert_eq!(
        (again.status, error_message(&again)),
        (429, "too many terminate requests".to_owned())
    );
    let terminated = api.json("GET", &path, None, 200).await;
    assert!(terminated["lastTerminatedAt"].as_i64().is_some());
    assert!(controls(api)
        .await
        .contains(&(id.clone(), "terminate".to_owned())));

    // delete (soft): gone from get, list and playback
    assert_eq!(api.call("DELETE", &path, None).await.status, 204);
    assert_eq!(api.call("GET", &path, None).await.status, 404);
    assert_eq!(api.call("DELETE", &path, None).await.status, 404);
    assert_eq!(
        call(
            api.addr(),
            "GET",
            &format!("/api/playback/{pid}"),
            None,
            None
        )
        .await
        .status,
        404
    );
    assert!(controls(api)
        .await
        .contains(&(id.clone(), "delete".to_owned())));
    let count = api.call("GET", "/api/stream?count=1", None).await;
    assert_eq!(count.header("x-total-count"), Some("24"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_flows_on_sqlite() {
    let api = common::start_sqlite().await;
    main_flows(&api).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_flows_on_postgres() {
    let Some(server) = PgServer::start_or_skip() else {
        return;
    };
    let url = server.fresh_database("api_flows").await;
    let api = common::start(common::config(
        &format!("memory://{}", common::unique("api-pg")),
        &url,
    ))
    .await;
    main_flows(&api).await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors_never_echo_the_key() {
    let api = common::start_sqlite().await;
    let addr = api.addr();
    let missing = call(addr, "GET", "/api/stream", None, None).await;
    assert_eq!(
        (missing.status, error_message(&missing)),
        (401, "request is not authenticated".to_owned())
    );
    let wrong = "lf_not-a-real-key-0123456789abcdef";
    let unknown = call(addr, "GET", "/api/stream", Some(wrong), None).await;
    assert_eq!(unknown.status, 401);
    let message = error_message(&unknown);
    assert!(
        message.starts_with("no token ") && message.ends_with(" found"),
        "{message}"
    );
    assert!(
        !unknown.text().contains(wrong),
        "the key is echoed: {message}"
    );
    assert!(!unknown.text().contains("0123456789abcdef"), "{message}");

    // a revoked key stops working within the key cache's period (`api_key_cache_ms`, at most
    // 5 s), on this replica and any other
    let tenant = api.store.create_tenant("revoking").await.expect("tenant");
    let key = api
        .store
        .create_api_key(&tenant.id, "short-lived")
        .await
        .expect("key");
    assert_eq!(
        call(addr, "GET", "/api/stream", Some(&key.secret), None)
            .await
            .status,
        200
    );
    assert!(api
        .store
        .revoke_api_key(&tenant.id, &key.key.id)
        .await
        .expect("revoke"));
    let revoked_at = std::time::Instant::now();
    livefarm_testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the revoked key refused",
        || async {
            call(addr, "GET", "/api/stream", Some(&key.secret), None)
                .await
                .status
                == 401
        },
    )
    .await;
    assert!(revoked_at.elapsed() <= std::time::Duration::from_secs(5));
    let revoked = call(addr, "GET", "/api/stream", Some(&key.secret), None).await;
    assert_eq!(revoked.status, 401);
    assert!(!revoked.text().contains(&key.secret));

    let scheme = livefarm_testkit::http_request_async(
        addr,
        "GET",
        "/api/stream",
        &[("Authorization", "JWT abc")],
        b"",
    )
    .await
    .expect("call");
    assert_eq!(
        (scheme.status, error_message(&scheme)),
        (
            401,
            "unsupported authorization header scheme: JWT".to_owned()
        )
    );
    // go-livepeer's Basic form: tenant id and key
    let basic = base64_encode(&format!("{}:{}", api.tenant, api.key));
    let reply = livefarm_testkit::http_request_async(
        addr,
        "GET",
        "/api/stream",
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    )
    .await
    .expect("call");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let projected = api.call("GET", "/api/stream?projectId=x", None).await;
    assert_eq!(projected.status, 400);

    // every route of the table that is not public refuses a call without a key; the public
    // ones never ask for one
    for route in livefarm_api::studio::routes::table() {
        let path = route
            .path
            .replace("{id}", "x")
            .replace("{playback_id}", "x")
            .replace("{rendition}", "x")
            .replace("{file}", "x.m3u8");
        let reply = call(addr, route.method.as_str(), &path, None, Some("{}")).await;
        if route.public {
            assert_ne!(reply.status, 401, "{} {}", route.method, route.path);
        } else {
            assert_eq!(reply.status, 401, "{} {}", route.method, route.path);
            assert_eq!(error_message(&reply), "request is not authenticated");
        }
    }
    api.stop().await;
}

fn base64_encode(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let api = common::start_sqlite().await;
    let kept = api.create_stream(r#"{"name":"kept"}"#).await;
    let huge = format!(
        r#"{{"name":"x","userTags":{{"a":"{}"}}}}"#,
        "y".repeat(70 * 1024)
    );
    let tags = format!(
        r#"{{"name":"x","userTags":{{"a":"{}"}}}}"#,
        "y".repeat(2100)
    );
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"name\":".to_owned(), 400, "malformed JSON"),
        ("not json".to_owned(), 400, "malformed JSON"),
        (r#"{"name":"x"} trailing"#.to_owned(), 400, "malformed JSON"),
        (r#"{"name":"x","bogus":1}"#.to_owned(), 422, "unknown field `bogus`"),
        (r#"{"name":5}"#.to_owned(), 422, "name: invalid type: integer `5`"),
        (r#"{"record":true}"#.to_owned(), 422, "missing field `name`"),
        (r#"{"name":"x","record":"yes"}"#.to_owned(), 422, "record: invalid type"),
        (r#"{"name":"x","profiles":[{"name":"a","width":640,"height":360,"bitrate":1000}]}"#.to_owned(), 422, "missing field `fps`"),
        (r#"{"name":"x","profiles":[{"name":"a","width":640,"height":360,"bitrate":1000,"fps":0,"profile":"H265"}]}"#.to_owned(), 422, "profiles[0].profile: unknown variant"),
        (r#"{"name":"x","profiles":[{"name":"source","width":640,"height":360,"bitrate":1000,"fps":0}]}"#.to_owned(), 400, "profile cannot be named \"source\""),
        (r#"{"name":"x","profiles":[{"name":"a","width":640,"height":360,"bitrate":1000,"fps":0},{"name":"a","width":640,"height":360,"bitrate":1000,"fps":0}]}"#.to_owned(), 400, "duplicate profile name \"a\""),
        (r#"{"name":"x","recordingSpec":{"profiles":null}}"#.to_owned(), 400, "recordingSpec is only supported with record=true"),
        (r#"{"name":"x","multistream":{"targets":[{"profile":"source"}]}}"#.to_owned(), 400, "must have either an \"id\" or a \"spec\""),
        (r#"{"name":"x","multistream":{"targets":[{"profile":"9k","spec":{"url":"rtmp://a/b"}}]}}"#.to_owned(), 400, "multistream target profile not found: \"9k\""),
        (r#"{"name":"x","multistream":{"targets":[{"profile":"source","spec":{"url":"ftp://a"}}]}}"#.to_owned(), 422, "spec.url"),
        (r#"{"name":"x","playbackPolicy":{"type":"paid"}}"#.to_owned(), 422, "playbackPolicy.type: unknown variant"),
        (r#"{"name":"x","pull":{"source":"rtmp://a"}}"#.to_owned(), 422, "unknown field `pull`"),
        (tags, 400, "userTags object is too large. Max size is 2048 characters"),
        (huge, 413, "request body is too large"),
    ];
    for (body, status, needle) in &cases {
        let reply = api.call("POST", "/api/stream", Some(body)).await;
        assert_eq!(
            reply.status,
            *status,
            "{}: {}",
            &body[..body.len().min(80)],
            reply.text()
        );
        let message = error_message(&reply);
        assert!(
            message.contains(needle),
            "{}: {message}",
            &body[..body.len().min(80)]
        );
        assert!(message.len() < 600, "messages stay short: {message}");
    }
    let id = kept["id"].as_str().expect("id");
    let patch = api
        .call(
            "PATCH",
            &format!("/api/stream/{id}"),
            Some(r#"{"nam":"x"}"#),
        )
        .await;
    assert_eq!(patch.status, 422);
    assert!(error_message(&patch).contains("unknown field `nam`"));
    let recording = api
        .call(
            "PATCH",
            &format!("/api/stream/{id}"),
            Some(r#"{"recordingSpec":{}}"#),
        )
        .await;
    assert_eq!(recording.status, 400);
    // nothing else was made or changed
    let list = api.json("GET", "/api/stream", None, 200).await;
    assert_eq!(list, json!([kept]));

    // SQL-looking strings are data, stored and answered verbatim
    let sql = "x'); DROP TABLE streams; -- \" % _ \\";
    let body = json!({"name": sql, "userTags": {"q": "' OR 1=1 --"}, "creatorId": sql}).to_string();
    let stored = api.create_stream(&body).await;
    assert_eq!(stored["name"], sql);
    assert_eq!(stored["userTags"]["q"], "' OR 1=1 --");
    assert_eq!(
        stored["creatorId"],
        json!({"type": "unverified", "value": sql})
    );
    let again = api
        .json(
            "GET",
            &format!("/api/stream/{}", stored["id"].as_str().expect("id")),
            None,
            200,
        )
        .await;
    assert_eq!(again, stored);
    let query: String = url::form_urlencoded::byte_serialize(
        json!([{"id":"name","value":"% _"}]).to_string().as_bytes(),
    )
    .collect();
    let found = api
        .json("GET", &format!("/api/stream?filters={query}"), None, 200)
        .await;
    assert_eq!(
        found.as_array().expect("list").len(),
        1,
        "LIKE characters are literal"
    );
    assert_eq!(
        api.call("GET", "/api/stream", None).await.status,
        200,
        "the table survived"
    );

    // odd ids are unknown ids
    let long = "a".repeat(5000);
    for odd in [
        long.as_str(),
        "a%2Fb",
        "%E2%9C%93%F0%9F%98%80",
        "%FF%FE",
        "'%20OR%201=1%20--",
        "..",
        "%00",
    ] {
        for (method, path) in [
            ("GET", format!("/api/stream/{odd}")),
            ("DELETE", format!("/api/stream/{odd}/terminate")),
        ] {
            let reply = api.call(method, &path, None).await;
            assert_eq!(
                reply.status,
                404,
                "{method} {}: {}",
                &path[..path.len().min(60)],
                reply.text()
            );
        }
        let playback = call(
            api.addr(),
            "GET",
            &format!("/api/playback/{odd}"),
            None,
            None,
        )
        .await;
        assert_eq!(playback.status, 404, "{}", &odd[..odd.len().min(40)]);
    }

    // unknown /api routes, wrong methods, bodiless calls with the Python SDK's content type
    let unknown = api.call("GET", "/api/nope/x", None).await;
    assert_eq!(
        (unknown.status, error_message(&unknown)),
        (404, "not found".to_owned())
    );
    let method = api.call("PUT", "/api/stream", Some("{}")).await;
    assert_eq!(method.status, 405);
    assert_eq!(error_message(&method), "method not allowed");
    let octet = livefarm_testkit::http_request_async(
        api.addr(),
        "DELETE",
        &format!("/api/stream/{id}/terminate"),
        &[
            ("Content-Type", "application/octet-stream"),
            ("Authorization", &format!("Bearer {}", api.key)),
        ],
        b"",
    )
    .await
    .expect("call");
    assert_eq!(octet.status, 204, "{}", octet.text());
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_info_uses_public_url_and_policies() {
    let config = livefarm_api::ApiConfig {
        public_url: "https://video.example.com/".to_owned(),
        ..common::config(&format!("memory://{}", common::unique("api-pub")), "")
    };
    let api = common::start(config).await;
    let stream = api
        .create_stream(r#"{"name":"gated","playbackPolicy":{"type":"webhook","webhookId":"w1","webhookContext":{"a":1}}}"#)
        .await;
    let pid = stream["playbackId"].as_str().expect("pid");
    let info = call(
        api.addr(),
        "GET",
        &format!("/api/playback/{pid}"),
        None,
        None,
    )
    .await;
    assert_eq!(info.status, 200);
    let info: Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(info["meta"]["live"], 0);
    assert_eq!(
        info["meta"]["playbackPolicy"],
        json!({"type":"webhook","webhookId":"w1","webhookContext":{"a":1}})
    );
    assert_eq!(
        info["meta"]["source"][0]["url"],
        format!("https://video.example.com/hls/{pid}/index.m3u8")
    );
    assert_eq!(
        info["meta"]["source"][1]["url"],
        format!("https://video.example.com/webrtc/{pid}")
    );
    let missing = call(api.addr(), "GET", "/api/playback/nope", None, None).await;
    assert_eq!(
        (missing.status, error_message(&missing)),
        (404, "No playback URL found for nope".to_owned())
    );
    let no_webhook = api
        .call(
            "POST",
            "/api/stream",
            Some(r#"{"name":"x","playbackPolicy":{"type":"webhook"}}"#),
        )
        .await;
    assert_eq!(no_webhook.status, 400);

    // request metrics are labelled by route template, never by id
    let id = stream["id"].as_str().expect("id");
    assert_eq!(
        api.call("GET", &format!("/api/stream/{id}"), None)
            .await
            .status,
        200
    );
    let metrics = call(api.server.admin_addr(), "GET", "/metrics", None, None)
        .await
        .text();
    assert!(
        metrics.contains(
            "livefarm_api_http_requests_total{route=\"/api/stream/{id}\",status=\"2xx\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/api/playback/{id}\""));
    assert!(
        !metrics.contains(id) && !metrics.contains(pid),
        "ids never become labels"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route() {
    let api = common::start_sqlite().await;
    let reply = call(api.addr(), "GET", "/api/openapi.json", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    let doc: Value = serde_json::from_slice(&reply.body).expect("openapi json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );
    let table = livefarm_api::studio::routes::table();
    let served: HashSet<(String, String)> = table
        .iter()
        .map(|r| (r.path.to_owned(), r.method.as_str().to_ascii_lowercase()))
        .collect();
    for route in &table {
        let method = route.method.as_str().to_ascii_lowercase();
        let operation = &doc["paths"][route.path][&method];
        assert!(
            operation.is_object(),
            "{method} {} is not documented",
            route.path
        );
        assert!(
            operation["responses"].is_object(),
            "{method} {}",
            route.path
        );
        // public operations override the document's bearer requirement with none
        let public = operation["security"] == json!([{}]);
        assert_eq!(public, route.public, "{method} {} security", route.path);
    }
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().expect("item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                assert!(
                    served.contains(&(path.clone(), method.clone())),
                    "{method} {path} documented but not served"
                );
            }
        }
    }
    assert_eq!(doc["security"], json!([{"apiKey": []}]));
    let stream = &doc["components"]["schemas"]["Stream"]["properties"];
    for field in [
        "id",
        "name",
        "streamKey",
        "playbackId",
        "profiles",
        "isActive",
        "lastSeen",
        "suspended",
        "lastTerminatedAt",
        "createdByTokenName",
    ] {
        assert!(stream[field].is_object(), "Stream.{field} missing");
    }
    api.stop().await;
}
