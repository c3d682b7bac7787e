//! Every WHIP/WHEP/API error case returns its status and a short reason, while a real
//! Chromium viewer of the same stream keeps decoding throughout.

mod common;

use common::{Server, create_stream, http, in_netns, node_script, whep_offer};

#[test]
fn bad_input_gets_clear_errors_and_viewer_keeps_playing() {
    if !in_netns("bad_input_gets_clear_errors_and_viewer_keeps_playing") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "bad input");
    let base = server.base.clone();

    // A publisher and a viewer run for 20 s while the bad requests arrive.
    let (id2, key2, base2) = (id.clone(), key.clone(), base.clone());
    let player = std::thread::spawn(move || {
        node_script(
            "publish_watch.mjs",
            &[
                "--base",
                &base2,
                "--stream",
                &id2,
                "--key",
                &key2,
                "--seconds",
                "20",
            ],
        )
    });
    // Let the viewer start before the barrage.
    std::thread::sleep(std::time::Duration::from_secs(6));

    let whip = format!("{base}/whip/{id}");
    let whep = format!("{base}/whep/{id}");
    let sdp = ("Content-Type", "application/sdp");
    let auth = format!("Bearer {key}");
    let offer = whep_offer();

    let r = http("POST", &whip, &[sdp], Some(offer.as_bytes()));
    assert_eq!(r.status, 401, "no key");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = http(
        "POST",
        &whip,
        &[sdp, ("Authorization", "Bearer sk_wrong")],
        Some(offer.as_bytes()),
    );
    assert_eq!(r.status, 401, "wrong key");
    let r = http(
        "POST",
        &whip,
        &[sdp, ("Authorization", &auth)],
        Some(b"v=0\r\nthis is not sdp"),
    );
    assert_eq!(r.status, 400, "malformed SDP");
    assert!(r.body.contains("malformed SDP"), "one-line reason: {}", r.body);
    assert!(!r.body.contains('\n'), "one line: {}", r.body);
    let r = http(
        "POST",
        &whip,
        &[sdp, ("Authorization", &auth)],
        Some(&[0xff, 0xfe, 0x00]),
    );
    assert_eq!(r.status, 400, "binary garbage");
    let r = http(
        "POST",
        &whip,
        &[("Content-Type", "text/plain"), ("Authorization", &auth)],
        Some(offer.as_bytes()),
    );
    assert_eq!(r.status, 415, "wrong content type");
    let big = vec![b'a'; 200_000];
    let r = http("POST", &whip, &[sdp, ("Authorization", &auth)], Some(&big));
    assert_eq!(r.status, 413, "oversized body");
    let r = http(
        "POST",
        &format!("{base}/whip/nosuchstream"),
        &[sdp, ("Authorization", &auth)],
        Some(offer.as_bytes()),
    );
    assert_eq!(r.status, 404, "unknown stream");
    let r = http(
        "POST",
        &format!("{base}/whep/nosuchstream"),
        &[sdp],
        Some(offer.as_bytes()),
    );
    assert_eq!(r.status, 404, "unknown stream (WHEP)");
    let r = http("DELETE", &format!("{whep}/nosuchresource"), &[], None);
    assert_eq!(r.status, 404, "unknown resource");
    let r = http(
        "PATCH",
        &format!("{whip}/nosuchresource"),
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        Some(b"a=end-of-candidates\r\n"),
    );
    assert_eq!(r.status, 404, "unknown resource (PATCH)");
    let r = http("OPTIONS", &whip, &[], None);
    assert!(r.status == 204 || r.status == 200, "OPTIONS: {}", r.status);

    // A real WHEP resource for the PATCH rules.
    let r = http("POST", &whep, &[sdp], Some(offer.as_bytes()));
    assert_eq!(r.status, 201, "canned WHEP offer accepted: {}", r.body);
    assert!(r.body.starts_with("v=0"), "SDP answer");
    let location = r.header("location").expect("Location").to_string();
    let etag = r.header("etag").expect("ETag").to_string();
    let resource = format!("{base}{location}");
    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let r = http(
        "PATCH",
        &resource,
        &[frag, ("If-Match", "\"stale\"")],
        Some(b"a=end-of-candidates\r\n"),
    );
    assert_eq!(r.status, 412, "If-Match mismatch");
    let r = http(
        "PATCH",
        &resource,
        &[("Content-Type", "application/sdp")],
        Some(b"a=end-of-candidates\r\n"),
    );
    assert_eq!(r.status, 415, "PATCH content type");
    let r = http(
        "PATCH",
        &resource,
        &[frag, ("If-Match", &etag)],
        Some(b"a=candidate:garbage\r\n"),
    );
    assert_eq!(r.status, 400, "malformed candidate");
    let r = http(
        "PATCH",
        &resource,
        &[frag, ("If-Match", &etag)],
        Some(b"a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"),
    );
    assert_eq!(r.status, 204, "trickle accepted");
    // A session's candidates are capped (64): 63 more fit, the next PATCH is refused whole.
    let many: String = (1..=63)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 2130706431 127.0.0.1 {} typ host\r\n",
                40000 + i
            )
        })
        .collect();
    let r = http(
        "PATCH",
        &resource,
        &[frag, ("If-Match", &etag)],
        Some(many.as_bytes()),
    );
    assert_eq!(r.status, 204, "up to the cap: {}", r.body);
    let r = http(
        "PATCH",
        &resource,
        &[frag, ("If-Match", &etag)],
        Some(b"a=candidate:99 1 udp 2130706431 127.0.0.1 41000 typ host\r\n"),
    );
    assert_eq!(r.status, 400, "past the cap: {}", r.body);
    assert!(r.body.contains("too many remote ICE candidates"), "{}", r.body);
    let r = http(
        "POST",
        &format!("{resource}/layer"),
        &[("Content-Type", "application/json")],
        Some(b"{nope"),
    );
    assert_eq!(r.status, 400, "bad layer JSON");
    let r = http("DELETE", &resource, &[], None);
    assert_eq!(r.status, 200, "DELETE");
    let r = http("DELETE", &resource, &[], None);
    assert_eq!(r.status, 404, "DELETE twice");

    // The API.
    let api = format!("{base}/api/v1/streams");
    let r = http("POST", &api, &[], Some(b"{}"));
    assert_eq!(r.status, 401, "API without admin token");
    let r = http(
        "POST",
        &api,
        &[("Authorization", "Bearer test-admin-token")],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400, "API with bad JSON");
    let r = http("GET", &format!("{api}/nosuchstream"), &[], None);
    assert_eq!(r.status, 404);
    // Garbage on the media port is ignored.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..2000u32 {
        let junk: Vec<u8> = (0..(i % 1200)).map(|x| (x * 7 + i) as u8).collect();
        let _ = sock.send_to(&junk, "127.0.0.1:18189");
        let _ = sock.send_to(&junk, "127.0.0.1:18190");
    }

    let (ok, v) = player.join().expect("player thread");
    assert!(ok, "the viewer failed during the barrage: {v}");
    let fps = v["run"]["fps"].as_f64().unwrap_or(0.0);
    assert!(fps > 10.0, "the viewer kept decoding at {fps} fps: {v}");
    let r = http("GET", &format!("{api}/{id}"), &[], None);
    assert!(
        r.body.contains("\"status\":\"live\""),
        "stream still live: {}",
        r.body
    );
}
