//! Whom an `https://` endpoint must prove to be.
//!
//! Either a certificate chain to the system's roots that is valid for the endpoint's name (a
//! server with a certificate from a public or company CA), or a pinned key: the server must
//! present a certificate whose SubjectPublicKeyInfo hashes (SHA-256) to the pin, and prove in
//! the handshake that it holds that key. A pin ignores issuers, names and validity dates, so a
//! server with a self-signed certificate reached by any address is still recognised, and nothing
//! else is. Berth's join tokens carry the pin of the server that made them.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use sha2::{Digest, Sha256};

/// The SHA-256 of a server's SubjectPublicKeyInfo. Reads as 64 hex digits, optionally after
/// `sha256:`; shows (and serializes) as the hex digits.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerPin([u8; 32]);

impl TryFrom<String> for ServerPin {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ServerPin> for String {
    fn from(pin: ServerPin) -> String {
        pin.to_string()
    }
}

impl ServerPin {
    /// The pin of a DER certificate's key.
    pub fn of_certificate(der: &[u8]) -> Result<ServerPin, String> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the certificate does not parse: {e}"))?;
        Ok(ServerPin(
            Sha256::digest(parsed.tbs_certificate.subject_pki.raw).into(),
        ))
    }
}

impl std::str::FromStr for ServerPin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("sha256:").unwrap_or(s);
        let bytes = hex::decode(digits).ok().filter(|b| b.len() == 32).ok_or_else(|| {
            format!("'{s}' is not a server pin: 64 hex digits (the SHA-256 of the server's public key), optionally after sha256:")
        })?;
        let mut pin = [0; 32];
        pin.copy_from_slice(&bytes);
        Ok(ServerPin(pin))
    }
}

impl std::fmt::Display for ServerPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for ServerPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerPin({self})")
    }
}

/// Whom an `https://` endpoint must prove to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// A chain to the system's root certificates, valid for the endpoint's name.
    #[default]
    SystemRoots,
    /// A certificate with this key, whatever its issuer or names.
    Pin(ServerPin),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder(
    provider: &Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
}

/// A configuration that trusts no one, for connectors that never make a handshake.
pub(crate) fn plain_config() -> Result<ClientConfig, String> {
    Ok(builder(&provider())?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// The TLS configuration for `trust`.
pub(crate) fn client_config(trust: &Trust) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = builder(&provider)?;
    Ok(match trust {
        Trust::SystemRoots => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedKey {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    })
}

/// Accepts only a server whose certificate carries the pinned key; the handshake's signature
/// checks prove the server holds it.
#[derive(Debug)]
struct PinnedKey {
    pin: ServerPin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = ServerPin::of_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if presented == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the server is not the one pinned: its key's pin is {presented}, the pin held is {}",
            self.pin
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_as_hex_with_or_without_the_prefix() {
        let hex = "0f".repeat(32);
        let pin: ServerPin = hex.parse().unwrap();
        assert_eq!(pin.to_string(), hex);
        assert_eq!(format!("sha256:{hex}").parse::<ServerPin>(), Ok(pin));
        for bad in ["", "sha256:", "0f0f", &"zz".repeat(32), &"0f".repeat(33)] {
            let err = bad.parse::<ServerPin>().unwrap_err();
            assert!(err.contains("not a server pin"), "{bad}: {err}");
        }
    }
}
