//! The streams API's contract against a real server over HTTP (curl): every endpoint, every
//! error status with its reason; and private streams: WHEP, the stream resource and HLS
//! refuse without a valid viewer token or signed URL, and serve with one.

mod common;

use common::{ADMIN, Server, http, in_netns, whep_offer};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use webrtc::peer_connection::RTCPeerConnectionState;

const JWT_SECRET: &str = "streams-api-test-secret";

/// A JSON call; returns (status, body as JSON or Null).
fn call(server: &Server, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let r = http(
        method,
        &format!("{}{path}", server.base),
        &headers,
        body.map(str::as_bytes),
    );
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[test]
fn every_endpoint_and_error_of_the_streams_api() {
    if !in_netns("every_endpoint_and_error_of_the_streams_api") {
        return;
    }
    // Dozens of calls back to back from one address: the per-IP API limit (tested on its own
    // in signaling/tests/api_rate_limit.rs) would answer some of them 429.
    let server = Server::start(&["--api-rate-limit", "0"]);
    let s = &server;

    // Create: auth, body, field validation.
    assert_eq!(call(s, "POST", "/api/v1/streams", None, Some("{}")).0, 401);
    assert_eq!(
        call(s, "POST", "/api/v1/streams", Some("wrong"), Some("{}")).0,
        401
    );
    let (st, v) = call(s, "POST", "/api/v1/streams", Some(ADMIN), Some("{not json"));
    assert_eq!(st, 400, "{v}");
    for (body, field) in [
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "ok", "visibility": "secret"}), "visibility"),
        (json!({"tags": vec!["a"; 11]}), "tags"),
        (json!({"language": "not a language"}), "language"),
        (json!({"enableDvr": "yes"}), "enableDvr"),
        (json!({"titel": "typo"}), "titel"),
    ] {
        let (st, v) = call(s, "POST", "/api/v1/streams", Some(ADMIN), Some(&body.to_string()));
        assert_eq!(st, 422, "{body} -> {v}");
        assert!(error_of(&v).starts_with(field), "{body} -> {v}");
    }
    let body = json!({"title": "Speedrun night", "category": "Gaming", "language": "en",
        "tags": ["Any%", "PB"], "enableDvr": false, "lowLatencyMode": true});
    let (st, created) = call(s, "POST", "/api/v1/streams", Some(ADMIN), Some(&body.to_string()));
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let key = created["streamKey"].as_str().expect("key shown once").to_string();
    for url in [
        "whipUrl",
        "whepUrl",
        "hlsUrl",
        "rtmpUrl",
        "srtUrl",
        "chatUrl",
        "watchUrl",
        "publishUrl",
    ] {
        assert!(created.get(url).is_some(), "{url} missing: {created}");
    }
    assert_eq!(created["hlsUrl"], format!("{}/hls/{id}/master.m3u8", s.base));
    assert_eq!(created["category"], "gaming");
    assert_eq!(created["tags"], json!(["any%", "pb"]));
    assert_eq!(created["enableDvr"], false);
    assert_eq!(created["visibility"], "public");
    assert_eq!(created["status"], "created");

    // Read.
    let (st, read) = call(s, "GET", &format!("/api/v1/streams/{id}"), None, None);
    assert_eq!(st, 200);
    assert!(
        read.get("streamKey").is_none(),
        "the key is shown only once: {read}"
    );
    assert_eq!(read["title"], "Speedrun night");
    let (st, v) = call(s, "GET", "/api/v1/streams/nope", None, None);
    assert_eq!((st, error_of(&v)), (404, "not found"));

    // Update.
    let path = format!("/api/v1/streams/{id}");
    assert_eq!(call(s, "PATCH", &path, None, Some(r#"{"title":"x"}"#)).0, 401);
    assert_eq!(
        call(
            s,
            "PATCH",
            "/api/v1/streams/nope",
            Some(ADMIN),
            Some(r#"{"title":"x"}"#)
        )
        .0,
        404
    );
    assert_eq!(
        call(s, "PATCH", &path, Some(ADMIN), Some(r#"{"title":""}"#)).0,
        422
    );
    assert_eq!(call(s, "PATCH", &path, Some(ADMIN), Some("[]")).0, 400);
    let (st, v) = call(
        s,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(r#"{"title":"Renamed","category":null}"#),
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        v["audience"]["totalViews"].is_u64() && v.get("health").is_some(),
        "an update answers with the whole stream: {v}"
    );
    assert_eq!(
        (v["title"].as_str(), v["category"].is_null()),
        (Some("Renamed"), true)
    );
    assert_eq!(v["tags"], json!(["any%", "pb"]), "fields not named stay");

    // Browse: only live public streams for anyone; any status for the admin, paged.
    for i in 0..3 {
        let b = json!({"title": format!("extra {i}"), "category": "music"}).to_string();
        assert_eq!(call(s, "POST", "/api/v1/streams", Some(ADMIN), Some(&b)).0, 201);
    }
    let (st, v) = call(s, "GET", "/api/v1/streams", None, None);
    assert_eq!(st, 200);
    assert_eq!(v["streams"], json!([]), "nothing is live");
    assert_eq!(call(s, "GET", "/api/v1/streams?status=all", None, None).0, 403);
    let (_, page1) = call(
        s,
        "GET",
        "/api/v1/streams?status=all&limit=3&sort=newest",
        Some(ADMIN),
        None,
    );
    assert_eq!(page1["streams"].as_array().map(Vec::len), Some(3), "{page1}");
    let cursor = page1["nextCursor"].as_str().expect("a second page").to_string();
    let (_, page2) = call(
        s,
        "GET",
        &format!("/api/v1/streams?status=all&limit=3&sort=newest&cursor={cursor}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(page2["streams"].as_array().map(Vec::len), Some(1), "{page2}");
    assert!(page2["nextCursor"].is_null());
    assert_eq!(page2["streams"][0]["id"], id.as_str(), "the oldest comes last");
    let (_, music) = call(
        s,
        "GET",
        "/api/v1/streams?status=all&category=MUSIC",
        Some(ADMIN),
        None,
    );
    assert_eq!(music["streams"].as_array().map(Vec::len), Some(3), "{music}");
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=zz",
        "sort=loudest",
        "status=weird",
    ] {
        let (st, v) = call(s, "GET", &format!("/api/v1/streams?{bad}"), Some(ADMIN), None);
        assert_eq!(st, 400, "{bad}: {v}");
    }

    // Rotate the key: the old key is refused at the next publish, the new one is accepted.
    assert_eq!(call(s, "POST", &format!("{path}/rotate-key"), None, None).0, 401);
    assert_eq!(
        call(s, "POST", "/api/v1/streams/nope/rotate-key", Some(ADMIN), None).0,
        404
    );
    let (st, rotated) = call(s, "POST", &format!("{path}/rotate-key"), Some(ADMIN), None);
    assert_eq!(st, 200, "{rotated}");
    let new_key = rotated["streamKey"].as_str().expect("new key").to_string();
    assert_ne!(new_key, key);
    let whip = |k: &str| {
        http(
            "POST",
            &format!("{}/whip/{id}", s.base),
            &[
                ("Content-Type", "application/sdp"),
                ("Authorization", &format!("Bearer {k}")),
            ],
            Some(b"v=0\r\n"),
        )
        .status
    };
    assert_eq!(whip(&key), 401, "a rotated key is refused");
    assert_eq!(
        whip(&new_key),
        400,
        "the new key passes auth (and the junk SDP is refused)"
    );

    // Stop and delete.
    let (st, v) = call(s, "POST", &format!("{path}/stop"), Some(ADMIN), None);
    assert_eq!(st, 409, "stopping a stream that is not live: {v}");
    assert_eq!(call(s, "DELETE", &path, None, None).0, 401);
    assert_eq!(call(s, "DELETE", &path, Some(ADMIN), None).0, 204);
    assert_eq!(call(s, "GET", &path, None, None).0, 404);
    assert_eq!(call(s, "DELETE", &path, Some(ADMIN), None).0, 404);

    // Viewer tokens: validation.
    let (_, other) = call(s, "POST", "/api/v1/streams", Some(ADMIN), Some("{}"));
    let other_id = other["id"].as_str().expect("id");
    let tok = format!("/api/v1/streams/{other_id}/viewer-token");
    assert_eq!(call(s, "POST", &tok, None, None).0, 401);
    assert_eq!(
        call(s, "POST", "/api/v1/streams/nope/viewer-token", Some(ADMIN), None).0,
        404
    );
    assert_eq!(
        call(s, "POST", &tok, Some(ADMIN), Some(r#"{"ttlSecs":0}"#)).0,
        422
    );
    assert_eq!(call(s, "POST", &tok, Some(ADMIN), Some(r#"{"bogus":1}"#)).0, 422);
    let (st, t) = call(s, "POST", &tok, Some(ADMIN), Some(r#"{"sub":"u1","ttlSecs":60}"#));
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["sub"], "u1");

    // The OpenAPI description names every endpoint exercised above.
    let (st, spec) = call(s, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(st, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    for p in [
        "/api/v1/streams",
        "/api/v1/streams/{id}",
        "/api/v1/streams/{id}/rotate-key",
        "/api/v1/streams/{id}/stop",
        "/api/v1/streams/{id}/viewer-token",
        "/whip/{id}",
        "/whep/{id}",
        "/hls/{id}/master.m3u8",
    ] {
        assert!(spec["paths"].get(p).is_some(), "{p} not in openapi.json");
    }
}

/// `~{exp}.{sig}` as docs/api.md documents it, signed with the server's secret.
fn signed_segment(stream: &str, exp: u64) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(JWT_SECRET.as_bytes()).expect("any key");
    mac.update(b"fanout-hls\0");
    mac.update(stream.as_bytes());
    mac.update(b"\0");
    mac.update(exp.to_string().as_bytes());
    format!("~{exp}.{}", hex::encode(&mac.finalize().into_bytes()[..16]))
}

fn get_status(url: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = http("GET", url, &headers, None);
    (r.status, r.body)
}

#[test]
fn private_streams_need_a_viewer_token_or_a_signed_url() {
    if !in_netns("private_streams_need_a_viewer_token_or_a_signed_url") {
        return;
    }
    let server = Server::start(&[
        "--test-pattern",
        "--jwt-secret",
        JWT_SECRET,
        "--api-rate-limit",
        "0",
    ]);
    let s = &server;
    let base = &s.base;
    common::wait_for_hls(base, "test", "720p", 0);

    // Public: plain HLS plays.
    assert_eq!(get_status(&format!("{base}/hls/test/master.m3u8"), None).0, 200);
    let (st, v) = call(
        s,
        "PATCH",
        "/api/v1/streams/test",
        Some(ADMIN),
        Some(r#"{"visibility":"private"}"#),
    );
    assert_eq!(st, 200, "{v}");

    // Private: nothing without a token; not listed.
    let (st, body) = get_status(&format!("{base}/hls/test/master.m3u8"), None);
    assert_eq!(st, 401, "{body}");
    assert_eq!(
        get_status(&format!("{base}/hls/test/720p/live.m3u8"), None).0,
        401
    );
    assert_eq!(call(s, "GET", "/api/v1/streams/test", None, None).0, 401);
    let (_, listed) = call(s, "GET", "/api/v1/streams", None, None);
    assert!(
        !listed.to_string().contains("\"id\":\"test\""),
        "a private stream is never listed: {listed}"
    );
    let whep = |token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![("Content-Type", "application/sdp")];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        http(
            "POST",
            &format!("{base}/whep/test"),
            &h,
            Some(whep_offer().as_bytes()),
        )
    };
    assert_eq!(whep(None).status, 401);
    assert_eq!(whep(Some("garbage")).status, 401);

    // A token for another stream is refused with 403.
    let (_, other) = call(s, "POST", "/api/v1/streams", Some(ADMIN), Some("{}"));
    let other_id = other["id"].as_str().expect("id");
    let (_, wrong) = call(
        s,
        "POST",
        &format!("/api/v1/streams/{other_id}/viewer-token"),
        Some(ADMIN),
        None,
    );
    let wrong_token = wrong["token"].as_str().expect("token");
    assert_eq!(whep(Some(wrong_token)).status, 403);
    assert_eq!(
        call(s, "GET", "/api/v1/streams/test", Some(wrong_token), None).0,
        403
    );

    // With a token: WHEP, the stream resource and the signed HLS URL all work.
    let (st, minted) = call(
        s,
        "POST",
        "/api/v1/streams/test/viewer-token",
        Some(ADMIN),
        Some(r#"{"sub":"alice"}"#),
    );
    assert_eq!(st, 201, "{minted}");
    let token = minted["token"].as_str().expect("token");
    let answer = whep(Some(token));
    assert_eq!(answer.status, 201, "{}", answer.body);
    if let Some(location) = answer.header("Location") {
        http("DELETE", &format!("{base}{location}"), &[], None);
    }
    let (st, v) = call(s, "GET", "/api/v1/streams/test", Some(token), None);
    assert_eq!((st, v["visibility"].as_str()), (200, Some("private")));

    let hls_url = minted["hlsUrl"].as_str().expect("signed hlsUrl");
    assert!(hls_url.contains("/hls/test/~"), "{hls_url}");
    let (st, master) = get_status(hls_url, None);
    assert_eq!(st, 200, "{master}");
    // Relative URIs keep the signed prefix: the variant, its init segment and a part.
    let variant = master
        .lines()
        .find(|l| l.ends_with("live.m3u8") && !l.starts_with('#'))
        .expect("a variant URI");
    let dir = hls_url.trim_end_matches("master.m3u8");
    let (st, media) = get_status(&format!("{dir}{variant}"), None);
    assert_eq!(st, 200, "{media}");
    let rendition_dir = format!("{dir}{}", variant.trim_end_matches("live.m3u8"));
    let part = media
        .lines()
        .filter_map(|l| l.split("URI=\"").nth(1))
        .filter_map(|l| l.split('"').next())
        .find(|u| u.ends_with(".m4s"))
        .expect("a part");
    let r = http("GET", &format!("{rendition_dir}{part}"), &[], None);
    assert_eq!(r.status, 200);
    assert!(!r.body.is_empty());

    // A tampered, a foreign and an expired signature are refused with 403.
    let segment = hls_url.split('/').find(|p| p.starts_with('~')).expect("segment");
    // The signature's last hex digit changed (to one it is not: a fixed digit is already
    // there one time in sixteen).
    let flipped = if segment.ends_with('0') { '1' } else { '0' };
    let tampered = hls_url.replace(segment, &format!("{}{flipped}", &segment[..segment.len() - 1]));
    assert_eq!(get_status(&tampered, None).0, 403);
    let foreign = format!(
        "{base}/hls/test/{}/master.m3u8",
        signed_segment(other_id, 4_000_000_000)
    );
    assert_eq!(get_status(&foreign, None).0, 403);
    let expired = format!(
        "{base}/hls/test/{}/master.m3u8",
        signed_segment("test", 1_600_000_000)
    );
    assert_eq!(get_status(&expired, None).0, 403);
    let forged_ok = format!(
        "{base}/hls/test/{}/master.m3u8",
        signed_segment("test", 4_000_000_000)
    );
    assert_eq!(
        get_status(&forged_ok, None).0,
        200,
        "the documented signature scheme"
    );

    // An expired viewer token is refused (5 s of leeway, as JWT libraries allow).
    let (_, short) = call(
        s,
        "POST",
        "/api/v1/streams/test/viewer-token",
        Some(ADMIN),
        Some(r#"{"ttlSecs":1}"#),
    );
    let short_token = short["token"].as_str().expect("token");
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert_eq!(whep(Some(short_token)).status, 401);

    // Public again: plain URLs play, the stream is listed.
    assert_eq!(
        call(
            s,
            "PATCH",
            "/api/v1/streams/test",
            Some(ADMIN),
            Some(r#"{"visibility":"public"}"#)
        )
        .0,
        200
    );
    assert_eq!(get_status(&format!("{base}/hls/test/master.m3u8"), None).0, 200);
    let (_, listed) = call(s, "GET", "/api/v1/streams", None, None);
    assert!(listed.to_string().contains("\"id\":\"test\""), "{listed}");
}

/// Every secret the server handles in a stream's life (created, rotated, published, watched
/// privately, chatted in, stopped from the API), with debug logging on: the admin
/// token, stream keys (right, wrong and rotated), the JWT, TURN and webhook secrets, viewer
/// and chat tokens, TURN credentials. None of them may reach the log, nor stdout (the start-up
/// banner). The server logs JSON lines here (`--log-json`), which the test also checks.
#[test]
fn secrets_never_appear_in_the_log() {
    if !in_netns("secrets_never_appear_in_the_log") {
        return;
    }
    const TURN_SECRET: &str = "turn-secret-for-the-log-test";
    const WEBHOOK_SECRET: &str = "webhook-secret-for-the-log-test";
    let server = Server::start_logging(
        "debug",
        &[
            "--jwt-secret",
            JWT_SECRET,
            "--turn-url",
            "turn:127.0.0.1:3478",
            "--turn-secret",
            TURN_SECRET,
            "--webhook-url",
            "http://127.0.0.1:9/hooks",
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--api-rate-limit",
            "0",
            "--log-json",
        ],
    );
    let s = &server;
    let base = &s.base;
    let (st, created) = call(
        s,
        "POST",
        "/api/v1/streams",
        Some(ADMIN),
        Some(r#"{"title":"secrets"}"#),
    );
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let first_key = created["streamKey"].as_str().expect("key").to_string();
    let (st, rotated) = call(
        s,
        "POST",
        &format!("/api/v1/streams/{id}/rotate-key"),
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 200, "{rotated}");
    let key = rotated["streamKey"].as_str().expect("new key").to_string();

    // Publishing with a wrong and with the rotated-out key: both refused.
    let wrong_key = "sk_wrong_key_the_log_must_not_show";
    for bad in [wrong_key, first_key.as_str()] {
        let auth = format!("Bearer {bad}");
        let r = http(
            "POST",
            &format!("{base}/whip/{id}"),
            &[("Content-Type", "application/sdp"), ("Authorization", &auth)],
            Some(whep_offer().as_bytes()),
        );
        assert_eq!(r.status, 401, "{}", r.body);
    }

    let (st, _) = call(
        s,
        "PATCH",
        &format!("/api/v1/streams/{id}"),
        Some(ADMIN),
        Some(r#"{"visibility":"private"}"#),
    );
    assert_eq!(st, 200);
    let (st, minted) = call(
        s,
        "POST",
        &format!("/api/v1/streams/{id}/viewer-token"),
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 201, "{minted}");
    let viewer_token = minted["token"].as_str().expect("token").to_string();
    let (st, ice) = call(s, "GET", "/api/v1/ice-servers", None, None);
    assert_eq!(st, 200, "{ice}");
    let turn_credential = ice["iceServers"][0]["credential"]
        .as_str()
        .expect("credential")
        .to_string();
    let chat_token = common::guest_token(s, &id);

    let rt = common::runtime();
    rt.block_on(async {
        let publisher = common::webrtc_rs_publisher(s, &id, &key).await;
        let viewer = fanout_tests::whep::Viewer::subscribe(
            &format!("{base}/whep/{id}"),
            fanout_tests::whep::ViewOptions {
                bearer: Some(viewer_token.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("the viewer token opens WHEP");
        viewer
            .wait_connected(std::time::Duration::from_secs(10))
            .await
            .expect("viewer connects");
        let mut chat = common::chat_socket_as(s, &id, &chat_token).await;
        use futures_util::SinkExt;
        chat.send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"type":"send","text":"hello"}"#,
        ))
        .await
        .expect("chat send");
        drop(chat);
        drop(viewer);
        // Stopping a live stream from the API kicks its publisher and answers the ended stream.
        let (st, v) = call(
            s,
            "POST",
            &format!("/api/v1/streams/{id}/stop"),
            Some(ADMIN),
            None,
        );
        assert_eq!((st, v["status"].as_str()), (200, Some("ended")), "{v}");
        assert!(v["audience"]["totalViews"].as_u64() >= Some(1), "{v}");
        let kicked = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while publisher.connection_state() == RTCPeerConnectionState::Connected {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(kicked.is_ok(), "the publisher is still connected after the stop");
    });
    // The server has closed the publisher's session too: its last lines are in the log.
    s.wait_for_log(
        std::time::Duration::from_secs(5),
        "closed publisher session",
        |l| l.contains("\"closed\"") && l.contains("Publisher"),
    );

    let log = s.log();
    // The banner says where the admin token is, not what it is.
    let banner = s.stdout();
    assert!(banner.contains("Admin token     as given"), "{banner}");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string()),
        "every JSON line has a timestamp and a level"
    );
    // The log did record this stream's life at debug level, so the check below can fail.
    assert!(
        lines.iter().filter(|l| l["level"] == "DEBUG").count() > 20,
        "too few debug lines in the log"
    );
    assert!(log.contains(&id), "the stream's id is not in the log");
    for (what, secret) in [
        ("admin token", ADMIN),
        ("JWT secret", JWT_SECRET),
        ("TURN secret", TURN_SECRET),
        ("webhook secret", WEBHOOK_SECRET),
        ("stream key", key.as_str()),
        ("rotated-out stream key", first_key.as_str()),
        ("wrong stream key", wrong_key),
        ("viewer token", viewer_token.as_str()),
        ("chat token", chat_token.as_str()),
        ("TURN credential", turn_credential.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} appears in the log");
        assert!(!banner.contains(secret), "the {what} appears on stdout: {banner}");
    }
}
