//! HTTPS listeners: TLS (1.2 and 1.3, rustls with ring) with the certificates the listener
//! names, offering HTTP/2 and HTTP/1.1 by ALPN. The certificate a connection gets is chosen by
//! the name the client asks for (SNI): the first of the listener's certificates valid for that
//! name (wildcards included) whose key can sign with a scheme the client offers, otherwise the
//! listener's default (first) certificate, as ALB does. A certificate whose PEMs do not load is
//! left out with a warning; a listener left with none serves nothing.

use berth_model::elbv2::data_plane::CertificateConfig;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// The ALPN protocols offered, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and signing key of `c`, or why they do not load.
pub fn load(c: &CertificateConfig) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(c.certificate_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the certificate PEM does not read: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate PEM holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(c.private_key_pem.as_bytes())
        .map_err(|e| format!("the private key PEM does not read: {e}"))?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the private key cannot sign: {e}"))?;
    let certified = CertifiedKey::new(chain, key);
    certified
        .keys_match()
        .map_err(|e| format!("the private key does not match the certificate: {e}"))?;
    Ok(Arc::new(certified))
}

/// Picks a listener's certificate by SNI.
#[derive(Debug)]
struct BySni {
    /// The listener's certificates, its default first.
    certificates: Vec<Arc<CertifiedKey>>,
}

fn valid_for(certificate: &CertifiedKey, name: &ServerName<'_>) -> bool {
    certificate
        .end_entity_cert()
        .ok()
        .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
        .is_some_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        let can_sign = |c: &&Arc<CertifiedKey>| c.key.choose_scheme(schemes).is_some();
        let named = hello
            .server_name()
            .and_then(|n| ServerName::try_from(n).ok())
            .and_then(|name| {
                self.certificates
                    .iter()
                    .filter(can_sign)
                    .find(|c| valid_for(c, &name))
            });
        named.or_else(|| self.certificates.first()).cloned()
    }
}

/// The TLS settings of a listener serving `certificates` (its default first); `None` when
/// there are none.
pub fn server_config(certificates: Vec<Arc<CertifiedKey>>) -> Option<Arc<ServerConfig>> {
    if certificates.is_empty() {
        return None;
    }
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certificates }));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Some(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str]) -> CertificateConfig {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let c = rcgen::generate_simple_self_signed(sans).unwrap();
        CertificateConfig {
            arn: format!("arn:{}", names[0]),
            certificate_chain_pem: c.cert.pem(),
            private_key_pem: c.key_pair.serialize_pem(),
        }
    }

    #[test]
    fn loads_matching_pems_and_refuses_others() {
        let good = certificate(&["a.example.com"]);
        assert!(load(&good).is_ok());
        let other = certificate(&["b.example.com"]);
        let mismatched = CertificateConfig {
            private_key_pem: other.private_key_pem.clone(),
            ..good.clone()
        };
        assert!(load(&mismatched).unwrap_err().contains("does not match"));
        let empty = CertificateConfig {
            certificate_chain_pem: String::new(),
            ..good
        };
        assert!(load(&empty).is_err());
        assert!(server_config(Vec::new()).is_none());
    }

    #[test]
    fn names_pick_certificates_and_wildcards_match_one_label() {
        let default = load(&certificate(&["default.example.com"])).unwrap();
        let shop = load(&certificate(&["shop.example.com"])).unwrap();
        let wild = load(&certificate(&["*.api.example.com"])).unwrap();
        let name = |n: &str| ServerName::try_from(n.to_string()).unwrap();
        assert!(valid_for(&shop, &name("shop.example.com")));
        assert!(!valid_for(&shop, &name("www.shop.example.com")));
        assert!(valid_for(&wild, &name("v1.api.example.com")));
        assert!(!valid_for(&wild, &name("a.b.api.example.com")));
        assert!(!valid_for(&default, &name("shop.example.com")));
        let config = server_config(vec![default, shop, wild]).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
