//! The RS256 key the emulator signs id_tokens and access tokens with, and its JWKS entry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

/// A signing key generated at start; restarting the emulator rotates it.
pub struct SigningKeys {
    pub kid: String,
    encoding: EncodingKey,
    pub decoding: DecodingKey,
    n: String,
    e: String,
}

/// Why the signing key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("RSA key generation failed: {0}")]
    Generate(#[from] rsa::Error),
    #[error("RSA key encoding failed: {0}")]
    Encode(#[from] rsa::pkcs1::Error),
    #[error("JWT signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

impl SigningKeys {
    /// A fresh 2048-bit RSA key.
    pub fn generate() -> Result<Self, KeyError> {
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
        let der = private.to_pkcs1_der()?;
        let public = private.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_components(&n, &e)?;
        Ok(Self {
            kid: crate::ids::random_id(12),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding,
            n,
            e,
        })
    }

    /// Signs claims as an RS256 JWT with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// The JWKS document: `{"keys":[…]}`.
    pub fn jwks(&self, issuer: Option<&str>) -> Value {
        let mut key = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": self.n, "e": self.e,
        });
        if let Some(iss) = issuer {
            key["issuer"] = json!(iss);
        }
        json!({ "keys": [key] })
    }
}
