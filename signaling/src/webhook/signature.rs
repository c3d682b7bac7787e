//! The `Fanout-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! The timestamp is part of what is signed, so a receiver that rejects old timestamps also
//! rejects replayed deliveries. Each attempt of a delivery is signed afresh.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The header is not `t=<seconds>,v1=<hex>[,v1=<hex>...]`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from `now` than the tolerance (a replay, or a clock problem).
    #[error("signature timestamp outside the tolerance")]
    Expired,
    /// No `v1` signature matches the body under this secret.
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], t: u64, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value for `body` sent at `t` (unix seconds).
pub(crate) fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(mac(secret, t, body).finalize().into_bytes())
    )
}

/// Check a `Fanout-Signature` header against the raw request body, as a receiver does.
///
/// `now` is the receiver's clock; deliveries whose timestamp is more than `tolerance` away
/// from it (either way) are refused. Several `v1=` entries are allowed (any may match), so a
/// receiver keeps working while a sender moves to a new secret. The comparison is constant
/// time.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// # let (secret, header, body) = ("whsec_x", "t=0,v1=00", b"{}");
/// let ok = signaling::verify_signature(
///     secret.as_bytes(),
///     header,
///     body,
///     SystemTime::now(),
///     Duration::from_secs(300),
/// );
/// # assert!(ok.is_err());
/// ```
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse::<u64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            // Schemes this receiver does not know are ignored, as the header's future may add some.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(SignatureError::Expired);
    }
    let expected = mac(secret, t, body);
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"stream.live"}"#;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn good_signature_verifies() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify_signature(SECRET, &h, BODY, at(1_700_000_010), TOLERANCE),
            Ok(())
        );
        // A little clock skew the other way is fine too.
        assert_eq!(
            verify_signature(SECRET, &h, BODY, at(1_699_999_990), TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn known_vector() {
        // Computed independently: printf '1.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn bad_signature_is_refused() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        let now = at(1_700_000_000);
        assert_eq!(
            verify_signature(b"another secret", &h, BODY, now, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        let tampered = br#"{"id":"evt_1","type":"stream.ended"}"#;
        assert_eq!(
            verify_signature(SECRET, &h, tampered, now, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify_signature(SECRET, &moved, BODY, now, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_timestamp_is_refused() {
        let h = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify_signature(SECRET, &h, BODY, at(1_700_000_301), TOLERANCE),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature(SECRET, &h, BODY, at(1_699_999_000), TOLERANCE),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let now = at(1_700_000_000);
        for h in [
            "",
            "garbage",
            "t=1700000000",
            "v1=00ff",
            "t=soon,v1=00ff",
            "t=1700000000,v1=not-hex",
            "t=1700000000;v1=00ff",
        ] {
            assert_eq!(
                verify_signature(SECRET, h, BODY, now, TOLERANCE),
                Err(SignatureError::Malformed),
                "{h:?}"
            );
        }
    }

    #[test]
    fn any_v1_may_match() {
        let good = sign(SECRET, 1_700_000_000, BODY);
        let v1 = good.split_once(",v1=").expect("v1 part").1;
        let h = format!("t=1700000000,v1={},v1={v1},v0=ignored", "00".repeat(32));
        assert_eq!(
            verify_signature(SECRET, &h, BODY, at(1_700_000_000), TOLERANCE),
            Ok(())
        );
    }
}
