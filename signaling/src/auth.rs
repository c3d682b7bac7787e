//! Bearer tokens and stream keys.

use axum::http::{HeaderMap, header};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request carries the admin token.
pub fn is_admin(headers: &HeaderMap, admin_token: &str) -> bool {
    bearer(headers).is_some_and(|t| constant_time_eq(t.as_bytes(), admin_token.as_bytes()))
}

/// Require the admin token.
pub fn require_admin(headers: &HeaderMap, admin_token: &str) -> Result<(), ApiError> {
    if is_admin(headers, admin_token) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// A new random secret: `prefix` + 32 hex characters of 128 random bits.
pub fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// How keys are stored: they are 128-bit random, so a plain SHA-256 is enough.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compare without leaking where the first difference is (`subtle`; only the lengths, which
/// are public, may end it early).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("valid header"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("valid header"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn keys_hash_and_compare() {
        let k = new_secret("sk_");
        assert_eq!(k.len(), 35);
        assert_eq!(hash_key(&k), hash_key(&k));
        assert_ne!(hash_key(&k), hash_key("sk_other"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
