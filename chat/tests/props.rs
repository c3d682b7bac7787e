//! Property tests: arbitrary input through the frame parser and the room state machine (with
//! the embedded ledger) never panics, and every reply is a well-formed server frame.

use chat::auth::{Identity, Role};
use chat::ledger::{LedgerRules, MemoryLedger};
use chat::protocol::parse_client_frame;
use chat::room::{Input, Output, Room, RoomConfig};
use proptest::prelude::*;

fn frame_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("\"text\":\"hi\"".to_string()),
        "[a-zA-Z ]{0,40}".prop_map(|t| format!("\"text\":\"{t}\"")),
        Just("\"kind\":\"cheer\"".to_string()),
        Just("\"kind\":\"emote\"".to_string()),
        Just("\"kind\":\"system\"".to_string()),
        any::<u32>().prop_map(|b| format!("\"bits\":{b}")),
        any::<u64>().prop_map(|s| format!("\"seconds\":{s}")),
        any::<u64>().prop_map(|s| format!("\"id\":{s}")),
        any::<u32>().prop_map(|s| format!("\"limit\":{s}")),
        any::<u64>().prop_map(|s| format!("\"before\":{s}")),
        "[a-z]{0,3}".prop_map(|u| format!("\"userId\":\"{u}\"")),
        any::<bool>().prop_map(|b| format!("\"enabled\":{b}")),
        Just("\"nonce\":-1".to_string()),
    ];
    let ty = prop_oneof![
        Just("send"),
        Just("delete"),
        Just("ban"),
        Just("timeout"),
        Just("unban"),
        Just("slow"),
        Just("emoteOnly"),
        Just("subscribersOnly"),
        Just("history"),
        Just("ping"),
        Just("auth"),
        Just("nope"),
    ];
    (ty, prop::collection::vec(field, 0..4)).prop_map(|(t, fields)| {
        let mut s = format!("{{\"type\":\"{t}\"");
        for f in fields {
            s.push(',');
            s.push_str(&f);
        }
        s.push('}');
        s
    })
}

fn role() -> impl Strategy<Value = Option<Role>> {
    prop_oneof![
        Just(None),
        Just(Some(Role::Viewer)),
        Just(Some(Role::Subscriber)),
        Just(Some(Role::Moderator)),
        Just(Some(Role::Admin)),
    ]
}

proptest! {
    #[test]
    fn parser_never_panics(s in any::<String>()) {
        let _ = parse_client_frame(&s);
    }

    #[test]
    fn parser_never_panics_on_near_valid_frames(s in frame_text(), cut in any::<usize>()) {
        let _ = parse_client_frame(&s);
        let cut = cut % (s.len() + 1);
        if s.is_char_boundary(cut) {
            let _ = parse_client_frame(&s[..cut]);
        }
    }

    #[test]
    fn room_never_panics_and_replies_are_frames(
        steps in prop::collection::vec((0u64..4, frame_text(), 0u64..3000, role(), any::<bool>()), 1..80)
    ) {
        let mut room = Room::new("p", RoomConfig::default());
        let mut ledger = MemoryLedger::new(LedgerRules::default());
        let mut now = 1_000_000u64;
        let mut last_id = 0u64;
        let mut joined = [false; 4];
        for (conn, text, dt, role, leave) in steps {
            now += dt;
            let c = conn as usize;
            if !joined[c] {
                joined[c] = true;
                let identity = role.map(|r| Identity {
                    id: format!("u{conn}"),
                    name: format!("u{conn}"),
                    role: r,
                    badges: vec![],
                    color: None,
                    expires_at_ms: now + 5_000,
                });
                room.handle(now, Input::Join { conn, identity });
            } else if leave {
                joined[c] = false;
                room.handle(now, Input::Leave { conn });
                continue;
            }
            match parse_client_frame(&text) {
                Ok(frame) => room.handle(now, Input::Frame { conn, frame }),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            while let Some(out) = room.poll_output() {
                match out {
                    Output::Reply { frame, .. } => {
                        let v: serde_json::Value = serde_json::from_str(&frame).expect("reply is JSON");
                        prop_assert!(v["type"].is_string());
                    }
                    Output::Admit { draft, .. } => {
                        if let Ok(a) = ledger.admit(&draft, now, Some(now - 10)) {
                            prop_assert!(a.id > last_id);
                            last_id = a.id;
                            let _: chat::protocol::ChatMessage =
                                serde_json::from_str(&a.frame).expect("message frame reads back");
                            room.handle(now, Input::Posted(draft));
                        }
                    }
                    Output::Moderate { by, action, .. } => {
                        ledger.apply(&action, now);
                        let notice = chat::room::moderation_notice(&by, &action).to_json();
                        prop_assert!(serde_json::from_str::<serde_json::Value>(&notice).is_ok());
                        room.handle(now, Input::Modes(ledger.modes()));
                    }
                    Output::History { limit, before, .. } => {
                        let h = ledger.recent(limit, before);
                        prop_assert!(h.len() <= limit);
                    }
                    Output::LocalPresence(n) => prop_assert!(n <= 4),
                }
            }
        }
    }
}
