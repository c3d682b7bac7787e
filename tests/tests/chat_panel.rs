//! The web pages' chat panel works out of the box with `fanout serve`: two watch pages get
//! guest tokens from signaling, join the stream's chat room on the chat listener, and a
//! message typed in one shows up in the other.

mod common;

use common::{Server, create_stream, in_netns, node_script};

#[test]
fn watch_pages_chat_through_the_embedded_chat_service() {
    if !in_netns("watch_pages_chat_through_the_embedded_chat_service") {
        return;
    }
    let server = Server::start(&[]);
    let (id, _key) = create_stream(&server, "chat");
    let (ok, v) = node_script("chat_panel.mjs", &["--base", &server.base, "--stream", &id]);
    assert!(ok, "chat between two pages failed: {v}");
    assert!(v["text"].as_str().unwrap_or("").contains("hello from a"), "{v}");
}
