//! Compact JWS (ES256) signing and verification of service-account token claims with ring.
//!
//! Invariants: a token is accepted only with header `alg: ES256`, a valid P-256 signature by this
//! key over `header.payload`, and claims that parse; input longer than [`MAX_TOKEN_LEN`] is
//! rejected before decoding, so hostile tokens cost bounded work.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Tokens longer than this are rejected unparsed (upstream tokens are about 1 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Errors from loading the key, signing or checking a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The signing key PEM is not a PKCS#8 P-256 key.
    #[error("service-account signing key: {0}")]
    Key(String),
    /// Signing failed (ring reports no detail).
    #[error("signing a token failed")]
    Sign,
    /// The token is not a well-formed ES256 JWT of ours.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify with our key.
    #[error("invalid token signature")]
    Signature,
    /// The token is outside its validity window.
    #[error("token is expired or not yet valid")]
    Expired,
    /// The token is for another audience or issuer.
    #[error("token audience or issuer is not this API server")]
    Audience,
    /// The service account or bound object is gone or was replaced.
    #[error("{0}")]
    Revoked(String),
}

/// A `{name, uid}` reference inside the `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

/// The private `kubernetes.io` claim, as upstream writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeClaims {
    /// Namespace of the service account.
    pub namespace: String,
    /// The service account.
    pub serviceaccount: Ref,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    /// The secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    /// The node the token is bound to, or the bound pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// The claims of a service-account token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Unique token id.
    #[serde(default)]
    pub jti: String,
    /// Not before.
    pub nbf: i64,
    /// `system:serviceaccount:NS:NAME`.
    pub sub: String,
    /// Kubernetes-specific claims.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubeClaims,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kid: String,
}

/// The signing key and its public half; cheap to clone.
#[derive(Clone)]
pub struct TokenKeys(Arc<Inner>);

struct Inner {
    pair: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TokenKeys")
            .field("kid", &self.0.kid)
            .finish()
    }
}

impl TokenKeys {
    /// Loads a PKCS#8 PEM ECDSA P-256 key (the PKI's `sa.key`).
    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| TokenError::Key(e.to_string()))?;
        let public = pair.public_key().as_ref().to_vec();
        // The key id identifies the key without revealing anything: a hash of the public point.
        let kid = B64.encode(ring::digest::digest(&ring::digest::SHA256, &public));
        Ok(TokenKeys(Arc::new(Inner {
            pair,
            public,
            kid,
            rng,
        })))
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = Header {
            alg: "ES256".into(),
            kid: self.0.kid.clone(),
        };
        let enc = |v: &[u8]| B64.encode(v);
        let head = serde_json::to_vec(&header).map_err(|_| TokenError::Sign)?;
        let body = serde_json::to_vec(claims).map_err(|_| TokenError::Sign)?;
        let signing_input = format!("{}.{}", enc(&head), enc(&body));
        let sig = self
            .0
            .pair
            .sign(&self.0.rng, signing_input.as_bytes())
            .map_err(|_| TokenError::Sign)?;
        Ok(format!("{signing_input}.{}", enc(sig.as_ref())))
    }

    /// Checks the signature of `token` and returns its claims (times are not checked here).
    pub fn verify(&self, token: &[u8]) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split(|b| *b == b'.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let dec = |v: &[u8]| B64.decode(v).map_err(|_| TokenError::Malformed);
        let header: Header =
            serde_json::from_slice(&dec(head)?).map_err(|_| TokenError::Malformed)?;
        if header.alg != "ES256" {
            return Err(TokenError::Malformed);
        }
        let signing_input = &token[..head.len() + 1 + body.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0.public)
            .verify(signing_input, &dec(sig)?)
            .map_err(|_| TokenError::Signature)?;
        serde_json::from_slice(&dec(body)?).map_err(|_| TokenError::Malformed)
    }
}

/// Checks the validity window (with upstream's 60 s leeway) and that `audience` is among the
/// token's audiences and the issuer is ours.
pub fn check_claims(claims: &Claims, now: i64, audience: &str) -> Result<(), TokenError> {
    const LEEWAY: i64 = 60;
    if claims.iss != super::ISSUER || !claims.aud.iter().any(|a| a == audience) {
        return Err(TokenError::Audience);
    }
    if now > claims.exp.saturating_add(LEEWAY) || now < claims.nbf.saturating_sub(LEEWAY) {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn keys() -> TokenKeys {
        let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        TokenKeys::from_pem(&pem).unwrap()
    }

    fn claims(now: i64) -> Claims {
        Claims {
            aud: vec![crate::satoken::ISSUER.into()],
            exp: now + 600,
            iat: now,
            iss: crate::satoken::ISSUER.into(),
            jti: "j".into(),
            nbf: now,
            sub: "system:serviceaccount:default:default".into(),
            kubernetes: KubeClaims {
                namespace: "default".into(),
                serviceaccount: Ref {
                    name: "default".into(),
                    uid: "u1".into(),
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn sign_verify_round_trip_and_tamper() {
        let k = keys();
        let c = claims(1000);
        let t = k.sign(&c).unwrap();
        assert_eq!(k.verify(t.as_bytes()).unwrap(), c);
        // Another key's signature fails.
        assert!(matches!(
            keys().verify(t.as_bytes()),
            Err(TokenError::Signature)
        ));
        // A changed payload fails.
        let mut parts: Vec<&str> = t.split('.').collect();
        let mut c2 = c.clone();
        c2.sub = "system:serviceaccount:kube-system:admin".into();
        let body = B64.encode(serde_json::to_vec(&c2).unwrap());
        parts[1] = &body;
        assert!(matches!(
            k.verify(parts.join(".").as_bytes()),
            Err(TokenError::Signature)
        ));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(k.verify(bad.as_bytes()).is_err(), "{bad:.20}");
        }
        // alg none is refused.
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            B64.encode(serde_json::to_vec(&c).unwrap())
        );
        assert!(matches!(
            k.verify(none.as_bytes()),
            Err(TokenError::Malformed)
        ));
        assert!(!format!("{k:?}").contains("BEGIN"));
    }

    #[test]
    fn windows_and_audiences() {
        let c = claims(1000);
        let aud = crate::satoken::ISSUER;
        assert!(check_claims(&c, 1000, aud).is_ok());
        assert!(check_claims(&c, 1600 + 60, aud).is_ok());
        assert!(matches!(
            check_claims(&c, 1600 + 61, aud),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            check_claims(&c, 1000 - 61, aud),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            check_claims(&c, 1000, "vault"),
            Err(TokenError::Audience)
        ));
    }
}
