//! Identity: JWTs signed with an HS256 secret (ours, e.g. guest tokens) or with a platform's
//! RS256 / EdDSA key (PEM public keys). A socket without a token is anonymous and read-only.

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
}

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

    /// Verify a token and return who it names.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.decode::<Claims>(token).map(identity_from)
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

/// Mint a guest token: role viewer, a fresh random `sub` (`guest:<hex>`), valid for `ttl`.
/// The signaling service offers this behind its guest-token endpoint.
pub fn mint_guest_token(secret: &[u8], name: &str, ttl: Duration) -> String {
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
    };
    mint_token(secret, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_token_round_trips() {
        let v = Verifier::new(&JwtConfig::hs256(b"s3cret".to_vec())).expect("config");
        let t = mint_guest_token(b"s3cret", "Ann", Duration::from_secs(60));
        let id = v.verify(&t).expect("valid");
        assert_eq!(id.name, "Ann");
        assert_eq!(id.role, Role::Viewer);
        assert!(id.id.starts_with("guest:"));
        assert!(
            v.verify(&mint_guest_token(b"other", "Ann", Duration::from_secs(60)))
                .is_err()
        );
        assert!(v.verify("garbage").is_err());
    }

    #[test]
    fn expired_token_is_refused() {
        let v = Verifier::new(&JwtConfig::hs256(b"k".to_vec())).expect("config");
        let claims = Claims {
            sub: "u".into(),
            name: None,
            role: Role::Admin,
            badges: vec![],
            color: None,
            exp: 1000,
        };
        assert!(v.verify(&mint_token(b"k", &claims)).is_err());
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
