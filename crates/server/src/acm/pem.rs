//! What ImportCertificate checks of the files it is given, and what it reads from them: one
//! PEM certificate (X.509, RSA or ECDSA, valid now) whose public key matches the PEM private
//! key, and a chain of zero or more PEM certificates; the names, validity, serial, subject,
//! issuer and algorithms DescribeCertificate shows.

use berth_api::ApiError;
use berth_model::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// What an imported certificate says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub domain_name: String,
    pub subject_alternative_names: Vec<String>,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// ACM's name: `RSA_2048`, `EC_prime256v1`, …
    pub key_algorithm: String,
    /// ACM's name: `SHA256WITHRSA`, `SHA256WITHECDSA`, …
    pub signature_algorithm: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::acm_validation(message)
}

fn key_algorithm(cert: &X509Certificate<'_>) -> Result<String, ApiError> {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = rsa.modulus;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            let bits = significant * 8;
            match bits {
                1024 | 2048 | 3072 | 4096 => Ok(format!("RSA_{bits}")),
                _ => Err(invalid(format!(
                    "Certificate: an RSA key of {bits} bits is not supported (1024, 2048, 3072 or 4096)"
                ))),
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => Ok("EC_prime256v1".into()),
                "1.3.132.0.34" => Ok("EC_secp384r1".into()),
                "1.3.132.0.35" => Ok("EC_secp521r1".into()),
                other => Err(invalid(format!(
                    "Certificate: the elliptic curve {other} is not supported (P-256, P-384 or P-521)"
                ))),
            }
        }
        _ => Err(invalid(
            "Certificate: only RSA and ECDSA keys are supported",
        )),
    }
}

fn signature_algorithm(cert: &X509Certificate<'_>) -> String {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.5" => "SHA1WITHRSA".into(),
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA".into(),
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA".into(),
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA".into(),
        "1.2.840.113549.1.1.10" => "RSASSA_PSS".into(),
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA".into(),
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA".into(),
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA".into(),
        _ => oid,
    }
}

/// The one certificate of `pem`.
fn one_certificate(pem: &[u8]) -> Result<CertificateDer<'static>, ApiError> {
    let mut certs = CertificateDer::pem_slice_iter(pem);
    let first = certs
        .next()
        .ok_or_else(|| invalid("Certificate: no PEM certificate found"))?
        .map_err(|e| invalid(format!("Certificate: not a PEM certificate ({e})")))?;
    if certs.next().is_some() {
        return Err(invalid(
            "Certificate: give one certificate; intermediates go in CertificateChain",
        ));
    }
    Ok(first)
}

/// The certificates of a chain.
pub fn chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ApiError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("CertificateChain: not PEM certificates ({e})")))?;
    if chain.is_empty() {
        return Err(invalid("CertificateChain: no PEM certificate found"));
    }
    for (i, der) in chain.iter().enumerate() {
        X509Certificate::from_der(der).map_err(|e| {
            invalid(format!(
                "CertificateChain: certificate {} is not X.509 ({e})",
                i + 1
            ))
        })?;
    }
    Ok(chain)
}

/// Checks an import and reads the certificate; `now` decides whether it is valid yet (and
/// still).
pub fn inspect(
    certificate_pem: &[u8],
    private_key_pem: &[u8],
    chain_pem: Option<&[u8]>,
    now: Timestamp,
) -> Result<Inspected, ApiError> {
    let der = one_certificate(certificate_pem)?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| invalid(format!("Certificate: not an X.509 certificate ({e})")))?;
    let key = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(|e| {
        invalid(format!(
            "PrivateKey: not an unencrypted PEM private key ({e})"
        ))
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(format!("PrivateKey: the key cannot be used ({e})")))?;
    if let Some(chain_pem) = chain_pem {
        chain(chain_pem)?;
    }
    let key_algorithm = key_algorithm(&cert)?;
    CertifiedKey::new(vec![der.clone()], signing)
        .keys_match()
        .map_err(|_| invalid("PrivateKey: the private key does not match the certificate"))?;

    let validity = cert.validity();
    let not_before = Timestamp::from_millis(validity.not_before.timestamp() * 1000);
    let not_after = Timestamp::from_millis(validity.not_after.timestamp() * 1000);
    if now < not_before || now > not_after {
        return Err(invalid(
            "Certificate: the certificate is not valid now (outside its NotBefore and NotAfter)",
        ));
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let domain_name = common_name
        .or_else(|| names.first().cloned())
        .ok_or_else(|| invalid("Certificate: it names no domain (no common name, no DNS names)"))?;
    if !names.contains(&domain_name) {
        names.insert(0, domain_name.clone());
    }
    Ok(Inspected {
        domain_name,
        subject_alternative_names: names,
        serial: cert.raw_serial_as_string(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before,
        not_after,
        key_algorithm,
        signature_algorithm: signature_algorithm(&cert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }

    fn self_signed(names: &[&str]) -> (String, String) {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_what_describe_shows() {
        let (cert, key) = self_signed(&["shop.example.com", "www.shop.example.com"]);
        let i = inspect(cert.as_bytes(), key.as_bytes(), None, now()).unwrap();
        assert_eq!(
            i.subject_alternative_names,
            ["shop.example.com", "www.shop.example.com"]
        );
        assert_eq!(i.domain_name, "shop.example.com");
        assert_eq!(i.key_algorithm, "EC_prime256v1");
        assert_eq!(i.signature_algorithm, "SHA256WITHECDSA");
        assert!(i.not_before < now() && now() < i.not_after);
        assert!(!i.serial.is_empty());
        // A chain of one (itself, here) is read too.
        assert!(
            inspect(
                cert.as_bytes(),
                key.as_bytes(),
                Some(cert.as_bytes()),
                now()
            )
            .is_ok()
        );
    }

    #[test]
    fn refuses_what_acm_refuses() {
        let (cert, key) = self_signed(&["a.example.com"]);
        let (_, other_key) = self_signed(&["b.example.com"]);
        let code = |r: Result<Inspected, ApiError>| r.unwrap_err().message;
        assert!(
            code(inspect(cert.as_bytes(), other_key.as_bytes(), None, now()))
                .contains("does not match")
        );
        assert!(code(inspect(b"garbage", key.as_bytes(), None, now())).contains("Certificate"));
        assert!(code(inspect(cert.as_bytes(), b"garbage", None, now())).contains("PrivateKey"));
        let two = format!("{cert}{cert}");
        assert!(code(inspect(two.as_bytes(), key.as_bytes(), None, now())).contains("one"));
        assert!(
            code(inspect(
                cert.as_bytes(),
                key.as_bytes(),
                Some(b"nope"),
                now()
            ))
            .contains("CertificateChain")
        );
        let long_ago = Timestamp::from_millis(0);
        assert!(
            code(inspect(cert.as_bytes(), key.as_bytes(), None, long_ago)).contains("valid now")
        );
    }
}
