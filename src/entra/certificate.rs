//! A certificate credential for Gatehouse's Entra app: instead of sending a client secret,
//! Gatehouse signs a short-lived client assertion with the certificate's private key, which
//! Microsoft recommends over secrets for confidential clients.
//! https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials

use super::EntraError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::der::Decode;

/// How long a client assertion is valid: Microsoft accepts up to ten minutes.
const ASSERTION_LIFETIME_SECS: i64 = 5 * 60;

/// From this long before a certificate expires, Gatehouse warns (log, portal, `/metrics`).
pub const CERTIFICATE_WARNING_SECS: i64 = 30 * 24 * 3600;

/// The form value that says the client authenticates with a signed JWT.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a certificate or its key cannot be used; said at start, with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no PEM `CERTIFICATE` block found")]
    NoCertificate,
    #[error("the certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("no RSA private key found (a PEM `PRIVATE KEY` or `RSA PRIVATE KEY` block): {0}")]
    BadKey(String),
}

/// The certificate's thumbprint and private key. The key never leaves this struct.
pub struct ClientCertificate {
    key: EncodingKey,
    /// Base64url SHA-256 of the certificate's DER: the `x5t#S256` header Microsoft matches
    /// against the certificate uploaded to the app registration.
    thumbprint_s256: String,
    /// Unix seconds when the certificate stops being valid.
    not_after: i64,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint_s256", &self.thumbprint_s256)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl ClientCertificate {
    /// The certificate (PEM) and its RSA private key (PEM, PKCS#8 or PKCS#1); the key may sit
    /// in the same text as the certificate.
    pub fn from_pem(certificate: &str, key: &str) -> Result<Self, CertificateError> {
        let blocks = pem::parse_many(certificate)
            .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
        let der = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(CertificateError::NoCertificate)?
            .contents()
            .to_vec();
        let parsed = x509_cert::Certificate::from_der(&der)
            .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
        let not_after = parsed
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs() as i64;
        let key = EncodingKey::from_rsa_pem(key.as_bytes())
            .map_err(|e| CertificateError::BadKey(e.to_string()))?;
        Ok(Self {
            key,
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
            not_after,
        })
    }

    /// When the certificate expires (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// What the portal says when the certificate is within 30 days of its end (or past it).
    pub fn warning(&self, now: i64) -> Option<String> {
        let left = self.not_after - now;
        if left >= CERTIFICATE_WARNING_SECS {
            return None;
        }
        let date = chrono::DateTime::from_timestamp(self.not_after, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        Some(if left <= 0 {
            format!("Gatehouse's Entra certificate expired on {date}: Microsoft refuses it, and no tenant can be reached. The operator must upload a new certificate to the app registration and set ENTRA_CLIENT_CERTIFICATE_FILE.")
        } else {
            format!("Gatehouse's Entra certificate expires on {date} (in {} days). The operator should upload a new certificate to the app registration and set ENTRA_CLIENT_CERTIFICATE_FILE before then.", left / 86_400)
        })
    }

    /// A client assertion for `client_id` at the token endpoint `audience`: `PS256`, with the
    /// certificate's SHA-256 thumbprint in `x5t#S256`, as Microsoft's certificate credentials
    /// page describes it today.
    pub fn assertion(
        &self,
        client_id: &oauth2::ClientId,
        audience: &str,
    ) -> Result<String, EntraError> {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(self.thumbprint_s256.clone());
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id.as_str(),
            sub: client_id.as_str(),
            jti: crate::server::util::random_id(24),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| EntraError::Malformed(format!("cannot sign the client assertion: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_end(not_after: i64) -> ClientCertificate {
        ClientCertificate {
            key: EncodingKey::from_secret(b"unused"),
            thumbprint_s256: "t".into(),
            not_after,
        }
    }

    #[test]
    fn the_portal_warns_from_thirty_days_before_the_end() {
        let now = 1_800_000_000;
        assert_eq!(with_end(now + 31 * 86_400).warning(now), None);
        let soon = with_end(now + 29 * 86_400).warning(now).unwrap();
        assert!(soon.contains("in 29 days"), "{soon}");
        let gone = with_end(now - 1).warning(now).unwrap();
        assert!(gone.contains("expired"), "{gone}");
    }

    #[test]
    fn a_file_without_a_certificate_or_key_is_refused_with_a_reason() {
        assert!(matches!(
            ClientCertificate::from_pem("nothing here", ""),
            Err(CertificateError::NoCertificate)
        ));
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ClientCertificate::from_pem(not_der, ""),
            Err(CertificateError::BadCertificate(_))
        ));
    }
}
