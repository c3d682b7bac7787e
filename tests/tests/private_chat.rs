//! A private stream's chat is as private as its video, and tokens are scoped: an anonymous
//! socket on a private stream's room is closed with 4001 and its `/replay` answers 401; a guest
//! token for it needs a viewer token; a viewer token (even with role `moderator`) for stream A
//! is refused in B's room; a role outside the closed set cannot be minted; `/metrics` without
//! the admin token lists no private stream's id.

mod common;

use std::time::{Duration, Instant};

use common::{ChatSocket, Reply, Server, create_stream, http, in_netns, runtime};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn json_call(server: &Server, method: &str, path: &str, bearer: Option<&str>, body: Option<&str>) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    http(
        method,
        &format!("{}{path}", server.base),
        &headers,
        body.map(str::as_bytes),
    )
}

fn chat_url(server: &Server, id: &str) -> String {
    let r = json_call(
        server,
        "GET",
        &format!("/api/v1/streams/{id}"),
        Some(&server.admin),
        None,
    );
    let v: Value = serde_json::from_str(&r.body).expect("stream JSON");
    v["chatUrl"].as_str().expect("chatUrl").to_string()
}

/// The close code and the last error message a socket got, or `None` when the room took it
/// (its first frame was `hello`).
async fn refusal(url: &str) -> Option<(u16, String)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
    let mut message = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("neither taken (hello) nor closed within 10 s: {url}"),
            Ok(Some(Ok(Message::Text(t)))) if t.contains(r#""type":"hello""#) => return None,
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["type"] == "error" {
                    message = v["message"].as_str().unwrap_or("").to_string();
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Some((frame.map_or(0, |f| u16::from(f.code)), message));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Some((0, message)),
        }
    }
}

async fn sent_and_seen(ws: &mut ChatSocket, text: &str) -> bool {
    let frame = serde_json::json!({"type": "send", "text": text}).to_string();
    ws.send(Message::text(frame)).await.expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = m
            && t.contains(text)
        {
            return true;
        }
    }
    false
}

#[test]
fn private_chat_needs_a_token_for_its_stream_and_tokens_stay_in_their_room() {
    if !in_netns("private_chat_needs_a_token_for_its_stream_and_tokens_stay_in_their_room") {
        return;
    }
    // A short counting window: viewer counts (the /metrics series below) are swept often.
    let server = Server::start(&["--audience-window-secs", "4"]);
    let (a, _) = create_stream(&server, "private A");
    let (b, _) = create_stream(&server, "public B");
    let r = json_call(
        &server,
        "PATCH",
        &format!("/api/v1/streams/{a}"),
        Some(&server.admin),
        Some(r#"{"visibility":"private"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mint = |role: &str| {
        let r = json_call(
            &server,
            "POST",
            &format!("/api/v1/streams/{a}/viewer-token"),
            Some(&server.admin),
            Some(&format!(r#"{{"role":"{role}"}}"#)),
        );
        (
            r.status,
            serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null),
        )
    };
    let (status, v) = mint("moderator");
    assert_eq!(status, 201, "{v}");
    let moderator_of_a = v["token"].as_str().expect("token").to_string();
    // Roles are a closed set.
    for bad in ["owner", "admin", "Moderator"] {
        assert_eq!(mint(bad).0, 422, "role {bad}");
    }

    // A guest token for A's chat needs a viewer token for A.
    let guest_body = format!(r#"{{"stream":"{a}","name":"ann"}}"#);
    let r = json_call(
        &server,
        "POST",
        "/api/v1/chat/guest-token",
        None,
        Some(&guest_body),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = json_call(
        &server,
        "POST",
        "/api/v1/chat/guest-token",
        Some(&moderator_of_a),
        Some(&guest_body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let guest_of_a = serde_json::from_str::<Value>(&r.body).expect("JSON")["token"]
        .as_str()
        .expect("token")
        .to_string();
    // A chat token for A does not open A's video.
    let r = http(
        "POST",
        &format!("{}/whep/{a}", server.base),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &format!("Bearer {guest_of_a}")),
        ],
        Some(common::whep_offer().as_bytes()),
    );
    assert_eq!(r.status, 401, "a chat token opened WHEP: {}", r.body);

    let (url_a, url_b) = (chat_url(&server, &a), chat_url(&server, &b));
    runtime().block_on(async {
        // Anonymous on A: refused, with the reason.
        let refused = refusal(&url_a).await;
        let (code, message) = refused.expect("an anonymous socket on a private stream is closed");
        assert_eq!(code, 4001, "{message}");
        assert!(message.contains("private"), "{message}");
        // Anonymous on B (public): reads as before.
        assert_eq!(
            refusal(&url_b).await,
            None,
            "a public room takes anonymous readers"
        );

        // A's tokens in A: in.
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url_a}?token={moderator_of_a}"))
            .await
            .expect("upgrade");
        assert!(sent_and_seen(&mut ws, "hello from a moderator of A").await);
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url_a}?token={guest_of_a}"))
            .await
            .expect("upgrade");
        assert!(sent_and_seen(&mut ws, "hello from a guest of A").await);

        // A's moderator token in B: refused (it moderates nothing there, nor signs in).
        let (code, message) = refusal(&format!("{url_b}?token={moderator_of_a}"))
            .await
            .expect("A's token is refused in B");
        assert_eq!(code, 4001);
        assert!(message.contains("not for this stream"), "{message}");
    });

    // A's archive: 401 without a token for A (or with B's room's), 200 with one; B's is open.
    let replay = |url: &str, token: Option<&str>| {
        let mut url = url.replacen("ws://", "http://", 1) + "/replay";
        if let Some(t) = token {
            url += &format!("?token={t}");
        }
        http("GET", &url, &[], None)
    };
    let r = replay(&url_a, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("private"), "{}", r.body);
    assert_eq!(replay(&url_a, Some(&guest_of_a)).status, 200);
    assert_eq!(replay(&url_a, Some("garbage")).status, 401);
    assert_eq!(replay(&url_b, None).status, 200);
    assert_eq!(
        replay(&url_b, Some(&moderator_of_a)).status,
        401,
        "A's token in B's archive"
    );

    // /metrics: A's id only for the admin (the chat sockets made A watched).
    let metrics = |bearer: Option<&str>| json_call(&server, "GET", "/metrics", bearer, None).body;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics(Some(&server.admin)).contains(&a) {
        assert!(
            Instant::now() < deadline,
            "A never appeared in the admin's /metrics: {}",
            metrics(Some(&server.admin))
                .lines()
                .filter(|l| l.contains("stream="))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let public = metrics(None);
    assert!(!public.contains(&a), "a private stream's id in public /metrics");
}
