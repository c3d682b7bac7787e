//! Offers that never connect cannot fill the server: each WHEP session with no ICE success is
//! closed at the connect timeout (its resource then answers 404 and the workers hold nothing),
//! a client address may have only so many sessions waiting to connect (429), and the server
//! only so many in all (503). Other clients are not affected.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, Server, create_stream, http, http_from, in_netns, whep_offer};
use fanout_tests::prometheus;

/// The connect timeout the server runs with here.
const CONNECT_TIMEOUT_SECS: u64 = 4;
const OFFERS: usize = 200;

fn metric(server: &Server, name: &str) -> f64 {
    let r = http("GET", &format!("{}/metrics", server.base), &[], None);
    let m = prometheus::parse(&r.body).expect("/metrics parses");
    match name {
        // Summed over workers.
        "fanout_sfu_worker_sessions" => (0..8)
            .filter_map(|w| m.value(name, &[("worker", &w.to_string())]))
            .sum(),
        _ => m.value(name, &[]).unwrap_or_else(|| panic!("{name} in /metrics")),
    }
}

fn offer_from(server: &Server, id: &str, source: &str) -> Reply {
    http_from(
        Some(source),
        "POST",
        &format!("{}/whep/{id}", server.base),
        &[("Content-Type", "application/sdp")],
        Some(whep_offer().as_bytes()),
    )
}

#[test]
fn offers_that_never_connect_are_reaped_and_capped() {
    if !in_netns("offers_that_never_connect_are_reaped_and_capped") {
        return;
    }
    let timeout = CONNECT_TIMEOUT_SECS.to_string();
    let per_client = OFFERS.to_string();
    let server = Server::start(&[
        "--api-rate-limit",
        "0",
        "--connect-timeout-secs",
        &timeout,
        "--max-connecting-per-client",
        &per_client,
        "--max-sessions",
        "202",
    ]);
    let (id, _) = create_stream(&server, "offers only");

    // 200 offers with no candidates, and no STUN ever sent.
    let mut resources = Vec::new();
    for n in 0..OFFERS {
        let r = offer_from(&server, &id, "127.0.0.1");
        assert_eq!(r.status, 201, "offer {n}: {}", r.body);
        resources.push(r.header("location").expect("Location").to_string());
    }
    let created = Instant::now();
    assert_eq!(metric(&server, "fanout_sfu_sessions_connecting"), OFFERS as f64);

    // This client is at its cap: 429, with when to retry and why.
    let r = offer_from(&server, &id, "127.0.0.1");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.body.contains("not connected yet"), "{}", r.body);
    // Another client is not: until the server is full.
    for source in ["127.0.0.2", "127.0.0.3"] {
        let r = offer_from(&server, &id, source);
        assert_eq!(r.status, 201, "{source}: {}", r.body);
        resources.push(r.header("location").expect("Location").to_string());
    }
    let r = offer_from(&server, &id, "127.0.0.4");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(r.body.contains("server is full"), "{}", r.body);

    // All reaped within the bound (a tick after the timeout; generous for a busy machine).
    let bound = Duration::from_secs(CONNECT_TIMEOUT_SECS + 10);
    let deadline = created + bound;
    loop {
        let (connecting, held) = (
            metric(&server, "fanout_sfu_sessions_connecting"),
            metric(&server, "fanout_sfu_worker_sessions"),
        );
        if connecting == 0.0 && held == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {bound:?}: {connecting} sessions still connecting, {held} held by workers"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        created.elapsed() >= Duration::from_secs(CONNECT_TIMEOUT_SECS - 1),
        "reaped before the timeout"
    );
    assert!(metric(&server, "fanout_sfu_sessions_reaped_total") >= (OFFERS + 2) as f64);

    // Their resources are gone.
    for location in [&resources[0], &resources[OFFERS - 1], &resources[OFFERS + 1]] {
        let url = format!("{}{location}", server.base);
        let r = http(
            "PATCH",
            &url,
            &[("Content-Type", "application/trickle-ice-sdpfrag")],
            Some(b"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"),
        );
        assert_eq!(r.status, 404, "PATCH {location}: {}", r.body);
        assert_eq!(http("DELETE", &url, &[], None).status, 404, "DELETE {location}");
    }
    // And the client may offer again.
    assert_eq!(offer_from(&server, &id, "127.0.0.1").status, 201);
    let log = server.log();
    assert!(log.contains("not connected in time"), "the reaping is logged");
}
