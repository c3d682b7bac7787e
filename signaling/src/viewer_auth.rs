//! Who may watch a private stream: viewer tokens for WHEP and the API, signed paths for HLS.
//!
//! A *viewer token* is a JWT with `sub`, `stream`, `role`, `exp` and `aud` = `fanout-watch`
//! ([`WATCH_AUDIENCE`]: a chat token for the same stream does not open its video), minted by
//! `POST /api/v1/streams/{id}/viewer-token` (HS256 with the server's secret) or by a platform
//! with its own RS256/EdDSA key (the public key is configured). It is sent as
//! `Authorization: Bearer` on WHEP and on `GET /api/v1/streams/{id}`.
//!
//! HLS players and CDNs cannot send headers, so HLS uses a *signed path*: a segment
//! `~{exp}.{sig}` after the stream id, `sig` an HMAC of the stream id and the expiry. The
//! playlists' URIs are relative, so every playlist, init segment and part fetched below
//! `/hls/{id}/~{exp}.{sig}/` carries the same proof without the origin rewriting anything. The
//! signature names the stream and an expiry rounded up to [`HLS_EXPIRY_STEP_SECS`], not the
//! viewer: every viewer in the same window shares the same URLs, which is what lets a CDN
//! cache one copy of each part.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat::{JwtConfig, Verifier};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::constant_time_eq;
use crate::error::ApiError;

/// Expiries of signed HLS paths are rounded up to a multiple of this, so that viewers who got
/// their URL within the same five minutes share it (and a CDN's cache).
pub const HLS_EXPIRY_STEP_SECS: u64 = 300;

/// The claims of a viewer token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ViewerClaims {
    /// The viewer (the platform's user id, or any opaque id).
    pub sub: String,
    /// The stream this token opens.
    pub stream: String,
    /// The viewer's role, as the platform sees it (informational).
    #[serde(default = "default_role")]
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// [`WATCH_AUDIENCE`].
    #[serde(default)]
    pub aud: Option<String>,
}

/// The audience of viewer tokens.
pub const WATCH_AUDIENCE: &str = "fanout-watch";

fn default_role() -> String {
    "viewer".into()
}

/// Mints and checks viewer tokens and signed HLS paths.
pub struct ViewerAuth {
    secret: Vec<u8>,
    verifier: Verifier,
}

impl std::fmt::Debug for ViewerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerAuth")
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl ViewerAuth {
    /// HS256 with `secret` (minting and checking), plus platform public keys (PEM, RS256 or
    /// EdDSA) whose tokens are accepted too.
    pub fn new(secret: Vec<u8>, public_keys_pem: Vec<String>) -> Result<ViewerAuth, chat::AuthError> {
        let config = JwtConfig {
            hs256_secret: Some(secret.clone()),
            public_keys_pem,
            ..Default::default()
        };
        Ok(ViewerAuth {
            verifier: Verifier::new(&config)?,
            secret,
        })
    }

    /// A token for `sub` to watch `stream` for `ttl`; returns it with its expiry (epoch secs).
    pub fn mint(&self, stream: &str, sub: &str, role: &str, ttl: Duration) -> (String, u64) {
        let exp = unix_now().saturating_add(ttl.as_secs());
        let claims = ViewerClaims {
            sub: sub.to_owned(),
            stream: stream.to_owned(),
            role: role.to_owned(),
            exp,
            aud: Some(WATCH_AUDIENCE.into()),
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.secret),
        )
        .expect("HS256 signing with a byte secret cannot fail");
        (token, exp)
    }

    /// The claims of a valid token for `stream`: 401 when it is not a valid, unexpired viewer
    /// token, 403 when it is one for another stream.
    pub fn check(&self, token: &str, stream: &str) -> Result<ViewerClaims, ApiError> {
        let claims: ViewerClaims = self.verifier.decode(token).map_err(|_| ApiError::Unauthorized)?;
        if claims.aud.as_deref() != Some(WATCH_AUDIENCE) {
            return Err(ApiError::Unauthorized);
        }
        if claims.stream != stream {
            return Err(ApiError::Forbidden("the token is for another stream".into()));
        }
        Ok(claims)
    }

    /// The signed path segment (`~{exp}.{sig}`) for `stream`, valid until at least `until`
    /// (epoch secs), rounded up to [`HLS_EXPIRY_STEP_SECS`].
    pub fn hls_segment(&self, stream: &str, until: u64) -> String {
        let exp = until
            .div_ceil(HLS_EXPIRY_STEP_SECS)
            .saturating_mul(HLS_EXPIRY_STEP_SECS);
        format!("~{exp}.{}", self.hls_signature(stream, exp))
    }

    /// Whether `segment` (as [`ViewerAuth::hls_segment`] made it) opens `stream` at `now`.
    pub fn check_hls_segment(&self, stream: &str, segment: &str, now: u64) -> Result<(), HlsRefusal> {
        let (exp, sig) = segment
            .strip_prefix('~')
            .and_then(|s| s.split_once('.'))
            .ok_or(HlsRefusal::Malformed)?;
        let exp: u64 = exp.parse().map_err(|_| HlsRefusal::Malformed)?;
        if !constant_time_eq(self.hls_signature(stream, exp).as_bytes(), sig.as_bytes()) {
            return Err(HlsRefusal::BadSignature);
        }
        if exp < now {
            return Err(HlsRefusal::Expired);
        }
        Ok(())
    }

    fn hls_signature(&self, stream: &str, exp: u64) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"fanout-hls\0");
        mac.update(stream.as_bytes());
        mac.update(b"\0");
        mac.update(exp.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// Why a signed HLS path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsRefusal {
    /// Not `~{exp}.{sig}`.
    Malformed,
    /// Signed by someone else, or for another stream.
    BadSignature,
    /// Past its expiry.
    Expired,
}

impl HlsRefusal {
    /// The reason given to the client.
    pub fn reason(self) -> &'static str {
        match self {
            HlsRefusal::Malformed => "malformed signed path",
            HlsRefusal::BadSignature => "signature does not match this stream",
            HlsRefusal::Expired => "signed URL expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> ViewerAuth {
        ViewerAuth::new(b"test-secret-0123456789".to_vec(), Vec::new()).expect("no keys to parse")
    }

    #[test]
    fn tokens_open_their_stream_only() {
        let a = auth();
        let (token, exp) = a.mint("s1", "user-7", "subscriber", Duration::from_secs(60));
        let claims = a.check(&token, "s1").expect("valid for s1");
        assert_eq!(claims.sub, "user-7");
        assert_eq!(claims.role, "subscriber");
        assert_eq!(claims.exp, exp);
        assert!(matches!(a.check(&token, "s2"), Err(ApiError::Forbidden(_))));
        assert!(matches!(a.check("not.a.jwt", "s1"), Err(ApiError::Unauthorized)));
        let other = ViewerAuth::new(b"another-secret".to_vec(), Vec::new()).expect("no keys");
        assert!(matches!(other.check(&token, "s1"), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn expired_and_chat_tokens_are_refused() {
        let a = auth();
        let claims = ViewerClaims {
            sub: "u".into(),
            stream: "s1".into(),
            role: "viewer".into(),
            exp: unix_now() - 3600,
            aud: Some(WATCH_AUDIENCE.into()),
        };
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"test-secret-0123456789"),
        )
        .expect("signs");
        assert!(matches!(a.check(&expired, "s1"), Err(ApiError::Unauthorized)));
        // A chat token for the same stream, signed with the same secret, opens nothing.
        let chat = chat::mint_guest_token(b"test-secret-0123456789", "s1", "guest", Duration::from_secs(60));
        assert!(matches!(a.check(&chat, "s1"), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn signed_hls_paths_are_shared_per_window_and_bound_to_the_stream() {
        let a = auth();
        let now = 1_800_000_000;
        let one = a.hls_segment("s1", now + 10);
        let two = a.hls_segment("s1", now + 200);
        assert_eq!(one, two, "viewers in the same five minutes share the URL");
        assert!(one.starts_with("~1800000300."));
        assert_eq!(a.check_hls_segment("s1", &one, now), Ok(()));
        assert_eq!(
            a.check_hls_segment("s2", &one, now),
            Err(HlsRefusal::BadSignature)
        );
        assert_eq!(
            a.check_hls_segment("s1", &one, now + 301),
            Err(HlsRefusal::Expired)
        );
        let forged = one.replace("~1800000300.", "~1900000000.");
        assert_eq!(
            a.check_hls_segment("s1", &forged, now),
            Err(HlsRefusal::BadSignature)
        );
        for bad in ["", "~", "~abc.def", "1800000300.abc", "~1800000300"] {
            assert_eq!(
                a.check_hls_segment("s1", bad, now),
                Err(HlsRefusal::Malformed),
                "{bad}"
            );
        }
    }
}
