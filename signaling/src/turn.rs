//! TURN credentials for clients behind NATs and firewalls that block UDP to the SFU.
//!
//! coturn runs with `use-auth-secret` and the same shared secret as signaling (the TURN REST
//! scheme): a username is `<expiry unix time>:<tag>`, its password the base64 HMAC-SHA1 of the
//! username under the secret, so coturn checks credentials without asking anyone. Signaling
//! hands them out on every WHIP/WHEP response (and OPTIONS) as RFC 9725 `Link` headers and at
//! `GET /api/v1/ice-servers` (see `ice_servers.rs`) for pages that want them before their
//! first offer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Where the TURN servers are and the secret they share with signaling.
#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URLs, e.g. `turn:turn.example.com:3478?transport=udp`.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// How long minted credentials stay valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// One set of credentials for every configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// The URLs they are good for.
    pub urls: Vec<String>,
    /// `<expiry>:<tag>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
    /// Expiry, seconds since the epoch.
    pub expires: u64,
}

impl TurnConfig {
    /// Credentials valid from `now` for the configured lifetime, labelled with `tag`.
    pub fn mint(&self, now: SystemTime, tag: &str) -> TurnCredentials {
        let expires = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + self.ttl.as_secs();
        let username = format!("{expires}:{tag}");
        TurnCredentials {
            urls: self.urls.clone(),
            credential: credential(&self.secret, &username),
            username,
            expires,
        }
    }
}

/// The TURN REST password for `username`.
pub fn credential(secret: &str, username: &str) -> String {
    let mut mac = <Hmac<Sha1>>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// RFC 9725 section 4.6 `Link` values, one per URL.
pub fn link_values(c: &TurnCredentials) -> Vec<String> {
    c.urls
        .iter()
        .map(|url| {
            format!(
                "<{url}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                c.username, c.credential
            )
        })
        .collect()
}

/// Add the `Link` headers when TURN is configured.
pub(crate) fn add_links(turn: Option<&TurnConfig>, headers: &mut HeaderMap) {
    let Some(turn) = turn else {
        return;
    };
    for v in link_values(&turn.mint(SystemTime::now(), "fanout")) {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(header::LINK, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_the_turn_rest_scheme() {
        // Computed independently: printf '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64
        assert_eq!(
            credential("secret", "1700000000:alice"),
            "d8soP47RbdIKLDUOpnJPVQyq5Ts="
        );
    }

    #[test]
    fn minted_credentials_expire_after_the_ttl_and_become_links() {
        let turn = TurnConfig {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: "s3cret".into(),
            ttl: Duration::from_secs(600),
        };
        let c = turn.mint(UNIX_EPOCH + Duration::from_secs(1_000), "fanout");
        assert_eq!(c.expires, 1_600);
        assert_eq!(c.username, "1600:fanout");
        assert_eq!(c.credential, credential("s3cret", "1600:fanout"));
        let links = link_values(&c);
        assert_eq!(
            links,
            [format!(
                "<turn:127.0.0.1:3478?transport=udp>; rel=\"ice-server\"; username=\"1600:fanout\"; credential=\"{}\"; credential-type=\"password\"",
                c.credential
            )]
        );
        assert!(!format!("{turn:?}").contains("s3cret"));
    }
}
