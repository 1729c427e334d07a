//! Verification of the compact ES256 JWS that signs every state-changing mobile request.

use super::error::ApiError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashSet;

/// How far `iat` may be from the server's clock.
pub const IAT_WINDOW_SECS: i64 = 300;

/// The fields every signed payload carries.
#[derive(Debug, Deserialize)]
pub struct Common {
    pub purpose: String,
    pub iat: i64,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// Parses a JWK sent at registration: only a public P-256 key is accepted.
pub fn parse_public_key(value: &serde_json::Value) -> Result<Jwk, ApiError> {
    if value.get("d").is_some() {
        // A private key must never leave the phone; refuse rather than store it.
        return Err(ApiError::InvalidPublicKey(
            "the key contains its private part (`d`); send only the public key".into(),
        ));
    }
    let jwk: Jwk = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::InvalidPublicKey(format!("public_key is not a JWK: {e}")))?;
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {}
        _ => {
            return Err(ApiError::InvalidPublicKey(
                "public_key must be an EC key on the P-256 curve (kty EC, crv P-256)".into(),
            ))
        }
    }
    DecodingKey::from_jwk(&jwk)
        .map_err(|e| ApiError::InvalidPublicKey(format!("public_key is not usable: {e}")))?;
    Ok(jwk)
}

/// RFC 7638 thumbprint of a P-256 key: one device record per key.
pub fn thumbprint(jwk: &Jwk) -> String {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            let canonical = format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                ec.x, ec.y
            );
            crate::server::util::sha256_hex(&canonical)
        }
        _ => String::new(),
    }
}

/// True when any string (or key) in `value` holds a NUL: the door (server/nul.rs) cannot see
/// inside a JWS's base64url, and PostgreSQL refuses a NUL in any text value.
fn carries_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(carries_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || carries_nul(v))
        }
        _ => false,
    }
}

/// Verifies `token` with `jwk`, checks `purpose` and the `iat` window, and returns the payload.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    jwk: &Jwk,
    purpose: &'static str,
    now: i64,
) -> Result<(Common, T), ApiError> {
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored key unusable: {e}")))?;
    let mut validation = Validation::new(Algorithm::ES256);
    // These tokens are proofs of possession with their own freshness rule (iat), not
    // bearer tokens: no exp, no aud.
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
            ApiError::InvalidJws(format!(
                "the jws is not a valid ES256 signature by this device's key ({e})"
            ))
        })?;
    if carries_nul(&data.claims) {
        return Err(ApiError::InvalidRequest(
            "the signed payload contains a NUL character, which no field takes".into(),
        ));
    }
    let common: Common = serde_json::from_value(data.claims.clone()).map_err(|e| {
        ApiError::InvalidJws(format!("the signed payload lacks `purpose` or `iat`: {e}"))
    })?;
    if common.purpose != purpose {
        return Err(ApiError::WrongPurpose {
            expected: purpose,
            got: common.purpose,
        });
    }
    // `iat` is any number the phone signed: the distance is taken without overflowing.
    if common.iat.abs_diff(now) > IAT_WINDOW_SECS.unsigned_abs() {
        return Err(ApiError::StaleJws(common.iat));
    }
    let payload: T = serde_json::from_value(data.claims)
        .map_err(|e| ApiError::InvalidRequest(format!("the signed payload is incomplete: {e}")))?;
    Ok((common, payload))
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn phone_key() -> Jwk {
        parse_public_key(&serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        .unwrap()
    }

    proptest! {
        /// A request body's `jws` is attacker-controlled: any string, or three base64url
        /// parts with any content, is refused as an invalid JWS, never a panic or a pass.
        #[test]
        fn an_arbitrary_jws_is_refused(
            raw in any::<String>(),
            parts in prop::collection::vec("[A-Za-z0-9_-]{0,60}", 3),
            header in "[ -~]{0,40}",
        ) {
            use base64::Engine as _;
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let forged = [
                raw,
                parts.join("."),
                format!("{}.{}.{}", b64(&header), b64("{\"purpose\":\"approve\",\"iat\":0}"), parts[2]),
                format!("{}.{}.{}", b64("{\"alg\":\"none\"}"), b64("{\"purpose\":\"approve\",\"iat\":0}"), ""),
                format!("{}.{}.{}", b64("{\"alg\":\"HS256\"}"), b64("{\"purpose\":\"approve\",\"iat\":0}"), parts[2]),
            ];
            for token in forged {
                let out = verify::<serde_json::Value>(&token, &phone_key(), "approve", 0);
                prop_assert!(matches!(out, Err(ApiError::InvalidJws(_))), "{:?} for {}", out.map(|_| ()), token);
            }
        }

        /// Any JSON sent as a device's public key is a P-256 public key or refused as one.
        #[test]
        fn an_arbitrary_public_key_is_accepted_only_as_p256(
            kty in prop_oneof![Just("EC".to_string()), Just("RSA".to_string()), Just("oct".to_string()), "[A-Z]{0,4}"],
            crv in prop_oneof![Just("P-256".to_string()), Just("P-384".to_string()), Just("secp256k1".to_string()), "[ -~]{0,8}"],
            x in "[A-Za-z0-9_-]{0,50}",
            y in "[A-Za-z0-9_-]{0,50}",
            d in prop::option::of("[A-Za-z0-9_-]{1,43}"),
        ) {
            let mut key = serde_json::json!({"kty": kty, "crv": crv, "x": x, "y": y});
            if let Some(d) = d {
                key["d"] = d.into();
            }
            match parse_public_key(&key) {
                Ok(jwk) => {
                    prop_assert!(key.get("d").is_none(), "a private key is never stored");
                    prop_assert!(matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256));
                }
                Err(e) => prop_assert!(matches!(e, ApiError::InvalidPublicKey(_))),
            }
        }
    }
}
