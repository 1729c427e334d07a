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
    let common: Common = serde_json::from_value(data.claims.clone()).map_err(|e| {
        ApiError::InvalidJws(format!("the signed payload lacks `purpose` or `iat`: {e}"))
    })?;
    if common.purpose != purpose {
        return Err(ApiError::WrongPurpose {
            expected: purpose,
            got: common.purpose,
        });
    }
    if (common.iat - now).abs() > IAT_WINDOW_SECS {
        return Err(ApiError::StaleJws(common.iat));
    }
    let payload: T = serde_json::from_value(data.claims)
        .map_err(|e| ApiError::InvalidRequest(format!("the signed payload is incomplete: {e}")))?;
    Ok((common, payload))
}
