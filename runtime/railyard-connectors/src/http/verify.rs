//! Webhook signature verification: HMAC-SHA256 over the raw body (Shopify) or over the
//! notification URL followed by the raw body (Square), hex or base64, compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use railyard_core::model::pipeline::{Encoding, Signed};
use sha2::Sha256;

/// What the pipeline file says about a signature.
#[derive(Clone, Debug)]
pub struct HmacCheck {
    /// Lower-case header name.
    pub header: String,
    pub encoding: Encoding,
    pub secret: String,
    pub signed: Signed,
    pub url: Option<String>,
}

/// Why a request was not accepted as signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing(String),
    Malformed(String),
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Missing(h) => write!(f, "missing signature header `{h}`"),
            SignatureError::Malformed(h) => write!(f, "signature header `{h}` is not valid"),
            SignatureError::Mismatch => f.write_str("signature does not match"),
        }
    }
}

impl HmacCheck {
    /// Verifies `signature` (the header value, if present) over `body`.
    pub fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        let Some(sig) = signature else {
            return Err(SignatureError::Missing(self.header.clone()));
        };
        let sig = sig.trim();
        let expected = match self.encoding {
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(sig),
            Encoding::Hex => hex::decode(sig).map_err(|_| base64::DecodeError::InvalidPadding),
        }
        .map_err(|_| SignatureError::Malformed(self.header.clone()))?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.as_bytes())
            .map_err(|_| SignatureError::Mismatch)?;
        if self.signed == Signed::UrlAndBody {
            mac.update(self.url.as_deref().unwrap_or_default().as_bytes());
        }
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shopify() -> HmacCheck {
        HmacCheck {
            header: "x-shopify-hmac-sha256".into(),
            encoding: Encoding::Base64,
            secret: "secret".into(),
            signed: Signed::Body,
            url: None,
        }
    }

    fn sign(secret: &str, msg: &[u8]) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn base64_body_signature() {
        let body = br#"{"id":1}"#;
        let good = base64::engine::general_purpose::STANDARD.encode(sign("secret", body));
        assert_eq!(shopify().verify(Some(&good), body), Ok(()));
        assert_eq!(
            shopify().verify(Some(&good), br#"{"id":2}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            shopify().verify(None, body),
            Err(SignatureError::Missing("x-shopify-hmac-sha256".into()))
        );
        assert_eq!(
            shopify().verify(Some("%%%"), body),
            Err(SignatureError::Malformed("x-shopify-hmac-sha256".into()))
        );
    }

    #[test]
    fn hex_url_and_body_signature() {
        let check = HmacCheck {
            header: "x-sig".into(),
            encoding: Encoding::Hex,
            secret: "k".into(),
            signed: Signed::UrlAndBody,
            url: Some("https://example.com/hook".into()),
        };
        let body = b"{}";
        let good = hex::encode(sign("k", b"https://example.com/hook{}"));
        assert_eq!(check.verify(Some(&good), body), Ok(()));
        let body_only = hex::encode(sign("k", body));
        assert_eq!(
            check.verify(Some(&body_only), body),
            Err(SignatureError::Mismatch)
        );
    }
}
