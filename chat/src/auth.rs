//! Identity: JWTs signed with an HS256 secret (ours, e.g. guest tokens) or with a platform's
//! RS256 / EdDSA key (PEM public keys). A socket without a token is anonymous and read-only
//! (and refused in a private stream's room).
//!
//! **Scope.** A token names the one stream whose room it opens (`stream`), and its role holds
//! in that room only: a moderator of stream A is a viewer nowhere else, and a viewer token
//! for A logs into A's chat and no other. A token for every room says so explicitly with
//! `"stream": "*"`; the server never mints one (a platform that shares the secret, or signs
//! with its own key, may). A token that names no stream is refused. Roles are the closed set
//! of [`Role`]: any other value makes the token invalid.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// What a user may do, lowest first. Ordering matters: `>= Moderator` may moderate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Any signed-in user.
    #[default]
    Viewer,
    /// Paying subscriber (passes subscribers-only mode).
    Subscriber,
    /// Trusted viewer (may post links).
    Vip,
    /// May delete, ban, time out, and change modes.
    Moderator,
    /// The streamer.
    Broadcaster,
    /// Platform staff.
    Admin,
}

impl Role {
    /// Rank used by the Redis script (0 = viewer .. 5 = admin).
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// Whether this role may moderate.
    pub fn can_moderate(self) -> bool {
        self >= Role::Moderator
    }
}

/// The claims we read from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Display name; defaults to `sub`.
    #[serde(default)]
    pub name: Option<String>,
    /// Role; defaults to viewer.
    #[serde(default)]
    pub role: Role,
    /// Badges.
    #[serde(default)]
    pub badges: Vec<String>,
    /// Name colour.
    #[serde(default)]
    pub color: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// The stream whose room the token opens, or [`ALL_ROOMS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// What the token is for ([`CHAT_AUDIENCE`] on the tokens the server mints for chat; a
    /// viewer token's opens a private stream too). The chat takes either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// The audience of chat-only tokens (guest tokens): they do not open a private stream's video.
pub const CHAT_AUDIENCE: &str = "fanout-chat";

/// The `stream` claim of a token for every room.
pub const ALL_ROOMS: &str = "*";

/// A verified user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable user id (`sub`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Badges.
    pub badges: Vec<String>,
    /// Name colour.
    pub color: Option<String>,
    /// Token expiry in ms since the epoch; sending after it is refused.
    pub expires_at_ms: u64,
}

/// How tokens are verified.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// Secret for HS256 tokens (also what [`mint_guest_token`] signs with).
    pub hs256_secret: Option<Vec<u8>>,
    /// PEM public keys (RSA for RS256, Ed25519 for EdDSA) a platform signs with.
    pub public_keys_pem: Vec<String>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
}

impl JwtConfig {
    /// Only HS256 with this secret.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        JwtConfig {
            hs256_secret: Some(secret.into()),
            ..Default::default()
        }
    }
}

/// Why a token or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configured PEM key is neither RSA nor Ed25519.
    #[error("public key #{0} is not an RSA or Ed25519 PEM public key")]
    BadKey(usize),
    /// A valid token for another stream's room, or for none.
    #[error("the token is not for this stream's chat")]
    WrongStream,
    /// A private stream's room without a token.
    #[error("this stream is private: its chat needs a viewer or chat token for it")]
    Required,
    /// The token is malformed, badly signed, expired, or of an algorithm we do not accept.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

/// Verifies tokens against a [`JwtConfig`]. Cheap to share (`Arc`).
pub struct Verifier {
    hs256: Option<DecodingKey>,
    rsa: Vec<DecodingKey>,
    ed: Vec<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .field("rsa", &self.rsa.len())
            .field("ed", &self.ed.len())
            .finish()
    }
}

impl Verifier {
    /// Parse the keys of `config`.
    pub fn new(config: &JwtConfig) -> Result<Self, AuthError> {
        let mut rsa = Vec::new();
        let mut ed = Vec::new();
        for (i, pem) in config.public_keys_pem.iter().enumerate() {
            if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                rsa.push(k);
            } else if let Ok(k) = DecodingKey::from_ed_pem(pem.as_bytes()) {
                ed.push(k);
            } else {
                return Err(AuthError::BadKey(i));
            }
        }
        Ok(Verifier {
            hs256: config.hs256_secret.as_deref().map(DecodingKey::from_secret),
            rsa,
            ed,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// Verify a token for `room` and return who it names there.
    pub fn verify_for(&self, token: &str, room: &str) -> Result<Identity, AuthError> {
        let claims = self.decode::<Claims>(token)?;
        match claims.stream.as_deref() {
            Some(s) if s == room || s == ALL_ROOMS => Ok(identity_from(claims)),
            _ => Err(AuthError::WrongStream),
        }
    }

    /// Verify a token's signature, expiry (`exp` and `sub` required) and configured issuer and
    /// audience, and read its claims as `T` (other services' claim sets, e.g. viewer tokens).
    pub fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, AuthError> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthError::InvalidToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rsa.iter().collect(),
            Algorithm::EdDSA => self.ed.iter().collect(),
            other => {
                return Err(AuthError::InvalidToken(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let mut last = AuthError::InvalidToken(format!("no key configured for {:?}", header.alg));
        for key in keys {
            match jsonwebtoken::decode::<T>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = invalid(e),
            }
        }
        Err(last)
    }
}

fn identity_from(c: Claims) -> Identity {
    let name = c
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| c.sub.clone());
    Identity {
        name: name.chars().take(64).collect(),
        id: c.sub,
        role: c.role,
        badges: c.badges.into_iter().take(8).collect(),
        color: c.color,
        expires_at_ms: c.exp.saturating_mul(1000),
    }
}

/// Sign an HS256 token with arbitrary claims (used by the signaling service and tests).
pub fn mint_token(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing with a byte secret cannot fail")
}

/// Mint a guest token for `stream`'s room: role viewer, a fresh random `sub`
/// (`guest:<hex>`), valid for `ttl`. The signaling service offers this behind its guest-token
/// endpoint.
pub fn mint_guest_token(secret: &[u8], stream: &str, name: &str, ttl: Duration) -> String {
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(ttl)
        .as_secs();
    let name: String = name.trim().chars().take(32).collect();
    let claims = Claims {
        sub: format!("guest:{hex}"),
        name: Some(if name.is_empty() {
            format!("guest-{}", &hex[..6])
        } else {
            name
        }),
        role: Role::Viewer,
        badges: vec![],
        color: None,
        exp,
        stream: Some(stream.to_owned()),
        aud: Some(CHAT_AUDIENCE.into()),
    };
    mint_token(secret, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_token_round_trips_in_its_room_only() {
        let v = Verifier::new(&JwtConfig::hs256(b"s3cret".to_vec())).expect("config");
        let t = mint_guest_token(b"s3cret", "a", "Ann", Duration::from_secs(60));
        let id = v.verify_for(&t, "a").expect("valid in its room");
        assert_eq!(id.name, "Ann");
        assert_eq!(id.role, Role::Viewer);
        assert!(id.id.starts_with("guest:"));
        assert!(matches!(v.verify_for(&t, "b"), Err(AuthError::WrongStream)));
        let other = mint_guest_token(b"other", "a", "Ann", Duration::from_secs(60));
        assert!(matches!(
            v.verify_for(&other, "a"),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(v.verify_for("garbage", "a").is_err());
    }

    fn claims(role: Role, stream: Option<&str>, exp: u64) -> Claims {
        Claims {
            sub: "u".into(),
            name: None,
            role,
            badges: vec![],
            color: None,
            exp,
            stream: stream.map(str::to_owned),
            aud: None,
        }
    }

    fn in_an_hour() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 3600
    }

    #[test]
    fn a_role_holds_in_the_tokens_room_and_all_rooms_only_when_named() {
        let v = Verifier::new(&JwtConfig::hs256(b"k".to_vec())).expect("config");
        let moderator_of_a = mint_token(b"k", &claims(Role::Moderator, Some("a"), in_an_hour()));
        assert_eq!(
            v.verify_for(&moderator_of_a, "a").expect("in a").role,
            Role::Moderator
        );
        assert!(matches!(
            v.verify_for(&moderator_of_a, "b"),
            Err(AuthError::WrongStream)
        ));
        let everywhere = mint_token(b"k", &claims(Role::Admin, Some(ALL_ROOMS), in_an_hour()));
        assert_eq!(
            v.verify_for(&everywhere, "b").expect("all rooms").role,
            Role::Admin
        );
        let unscoped = mint_token(b"k", &claims(Role::Viewer, None, in_an_hour()));
        assert!(matches!(
            v.verify_for(&unscoped, "a"),
            Err(AuthError::WrongStream)
        ));
    }

    #[test]
    fn roles_are_a_closed_set() {
        let v = Verifier::new(&JwtConfig::hs256(b"k".to_vec())).expect("config");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u", "exp": in_an_hour(), "stream": "a", "role": "owner"}),
            &EncodingKey::from_secret(b"k"),
        )
        .expect("signed");
        assert!(matches!(
            v.verify_for(&token, "a"),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn expired_token_is_refused() {
        let v = Verifier::new(&JwtConfig::hs256(b"k".to_vec())).expect("config");
        let token = mint_token(b"k", &claims(Role::Admin, Some("a"), 1000));
        assert!(v.verify_for(&token, "a").is_err());
    }

    #[test]
    fn bad_pem_is_reported() {
        let cfg = JwtConfig {
            public_keys_pem: vec!["not a key".into()],
            ..Default::default()
        };
        assert!(matches!(Verifier::new(&cfg), Err(AuthError::BadKey(0))));
    }
}
