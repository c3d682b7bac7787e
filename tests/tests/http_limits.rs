//! The HTTP listeners hold up against clients that connect and then say nothing useful:
//! 1,000 slowloris connections (a header trickled a line at a time) on the API listener, and
//! more on the chat listener, are all closed at the header timeout while hls.js plays the test
//! pattern from the same listener without a stall; and a listener at its connection cap closes
//! new connections at once, then serves again when a place frees up.

mod common;

use std::time::{Duration, Instant};

use common::{NodeProc, Server, fatal_hls_errors, http, in_netns, runtime, wait_for_hls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API: &str = "127.0.0.1:18080";
const CHAT: &str = "127.0.0.1:8081";

/// Open `n` connections to `addr`, each with the first line of a request and no more.
async fn slow_clients(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connection {i} to {addr}: {e}"));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: fanout\r\n")
            .await
            .expect("first line written");
        conns.push(s);
    }
    conns
}

/// Trickle one header line a second into every connection, as a slowloris client does, until
/// each is closed by the server; when the last one closed, measured from now.
async fn trickle_until_closed(conns: Vec<TcpStream>, limit: Duration) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    tokio::select! {
                        read = s.read(&mut buf) => match read {
                            // Closed (an error is a reset: closed too).
                            Ok(0) | Err(_) => return Some(start.elapsed()),
                            // A 408 or the like before the close is fine.
                            Ok(_) => {}
                        },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {
                            if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                                return Some(start.elapsed());
                            }
                        }
                    }
                    if start.elapsed() > limit {
                        return None;
                    }
                }
            })
        })
        .collect();
    let mut last = Duration::ZERO;
    let mut open = 0;
    for t in tasks {
        match t.await.expect("trickle task") {
            Some(at) => last = last.max(at),
            None => open += 1,
        }
    }
    assert_eq!(open, 0, "{open} slow connections still open after {limit:?}");
    last
}

#[test]
fn slowloris_connections_are_closed_at_the_header_timeout_while_hls_plays() {
    if !in_netns("slowloris_connections_are_closed_at_the_header_timeout_while_hls_plays") {
        return;
    }
    let server = Server::start_bridged(&["--test-pattern", "--http-header-timeout-secs", "4"]);
    wait_for_hls(&server.base, "test", "360p", 2);
    let player = NodeProc::spawn(
        None,
        "hls_play.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            "test",
            "--seconds",
            "12",
            "--timeout",
            "20",
        ],
    );
    // The flood starts once the player is playing.
    let playing = player.wait_for(Duration::from_secs(20), |v| {
        v["event"] == "sample" && v["state"] == "playing" || v.get("ok").is_some()
    });
    assert!(
        playing.as_ref().is_some_and(|v| v["event"] == "sample"),
        "hls.js did not start playing: {playing:?}"
    );

    let limit = Duration::from_secs(20);
    let (api_closed, chat_closed) = runtime().block_on(async {
        let api = slow_clients(API, 1_000).await;
        let chat = slow_clients(CHAT, 200).await;
        // Meanwhile the API answers at once.
        let r = reqwest::get(format!("{API_BASE}/healthz"))
            .await
            .expect("healthz");
        assert_eq!(r.status(), 200);
        tokio::join!(
            trickle_until_closed(api, limit),
            trickle_until_closed(chat, limit)
        )
    });
    assert!(
        api_closed >= Duration::from_secs(3),
        "closed before the header timeout ({api_closed:?}): not the timeout's doing"
    );
    println!("1,000 slow API connections closed within {api_closed:?}, 200 chat ones within {chat_closed:?}");

    let summary = player
        .wait_for(Duration::from_secs(40), |v| v.get("ok").is_some())
        .expect("hls.js's summary");
    assert_eq!(summary["ok"], true, "hls.js played through the flood: {summary}");
    assert_eq!(summary["stalls"], 0, "{summary}");
    assert!(fatal_hls_errors(&summary).is_empty(), "{summary}");
    assert_eq!(
        http("GET", &format!("{}/healthz", server.base), &[], None).status,
        200
    );
}

const API_BASE: &str = "http://127.0.0.1:18080";

#[test]
fn a_listener_at_its_connection_cap_closes_new_connections_at_once() {
    if !in_netns("a_listener_at_its_connection_cap_closes_new_connections_at_once") {
        return;
    }
    let _server = Server::start(&["--http-max-connections", "20", "--http-header-timeout-secs", "30"]);
    runtime().block_on(async {
        let mut held = slow_clients(API, 20).await;
        // Past the cap: accepted and closed at once, long before any timeout.
        let mut extra = TcpStream::connect(API).await.expect("the kernel accepts");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "a connection past the cap is closed at once: {read:?}"
        );
        // One place frees up: served again.
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = reqwest::Client::new()
                .get(format!("{API_BASE}/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if r.as_ref().is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not served after a place freed up: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
