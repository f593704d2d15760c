//! Duration-based stickiness, as ALB's `lb_cookie` type does it: every answer from a target
//! group with stickiness on carries the `AWSALB` cookie (and `AWSALBCORS`, the same value for
//! cross-origin requests) naming the target that answered, for the configured duration; a
//! request that brings one back goes to that target while it can take new requests (registered,
//! not draining, healthy unless the group fails open), and otherwise to the one the algorithm
//! picks, which the new cookie then names.
//!
//! The value is the target's id and port, hex-encoded: opaque to clients, not a secret (a forged
//! value can only name a target of the same group).

use crate::balancer::Target;
use http::HeaderMap;
use http::header::{self, HeaderValue};
use std::time::Duration;

pub const COOKIE: &str = "AWSALB";
pub const CORS_COOKIE: &str = "AWSALBCORS";

/// The target a request's stickiness cookie names: its id and port.
pub fn requested(headers: &HeaderMap) -> Option<(String, u16)> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE || *name == CORS_COOKIE)
        .map(|(_, value)| value)?;
    let text = String::from_utf8(decode_hex(value)?).ok()?;
    let (id, port) = text.rsplit_once(':')?;
    Some((id.to_string(), port.parse().ok()?))
}

/// Adds the cookies that hold the client to `target` for `duration`.
pub fn set_cookies(headers: &mut HeaderMap, target: &Target, duration: Duration) {
    let value = encode_hex(format!("{}:{}", target.id, target.port).as_bytes());
    let age = duration.as_secs();
    for cookie in [
        format!("{COOKIE}={value}; Max-Age={age}; Path=/"),
        format!("{CORS_COOKIE}={value}; Max-Age={age}; Path=/; SameSite=None; Secure"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::{Health, TargetStats};
    use std::sync::Arc;

    #[test]
    fn the_cookie_set_is_the_cookie_read_back() {
        let target = Target {
            id: "i-0abc".into(),
            port: 32768,
            address: None,
            draining: false,
            stats: Arc::new(TargetStats::new(Health::Healthy)),
        };
        let mut answer = HeaderMap::new();
        set_cookies(&mut answer, &target, Duration::from_secs(86400));
        let set: Vec<_> = answer.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(set.len(), 2);
        let first = set[0].to_str().unwrap();
        assert!(first.starts_with("AWSALB="), "{first}");
        assert!(first.contains("Max-Age=86400"), "{first}");
        assert!(set[1].to_str().unwrap().contains("SameSite=None; Secure"));

        let pair = first.split(';').next().unwrap();
        let mut request = HeaderMap::new();
        request.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("session=1; {pair}")).unwrap(),
        );
        assert_eq!(requested(&request), Some(("i-0abc".into(), 32768)));

        for garbage in ["AWSALB=zz", "AWSALB=abc", "AWSALB=", "other=1"] {
            request.insert(header::COOKIE, HeaderValue::from_static(garbage));
            assert_eq!(requested(&request), None, "{garbage}");
        }
    }
}
