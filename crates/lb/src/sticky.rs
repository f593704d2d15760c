//! Stickiness, as ALB does it, with its cookies:
//!
//! - duration-based (`lb_cookie`): every answer from the target group carries `AWSALB` (and
//!   `AWSALBCORS`, the same value for cross-origin requests) naming the target that answered,
//!   for the configured duration;
//! - application-based (`app_cookie`): an answer that sets the application's own cookie (the
//!   group's `cookie_name`) also carries `AWSALBAPP-0` naming the target, for the configured
//!   duration; answers that do not set it leave the client's cookie as it is;
//! - target group stickiness of a forward action: `AWSALBTG` (and `AWSALBTGCORS`) names the
//!   target group a weighted forward chose, so the client's next requests go to it too.
//!
//! A request that brings a target's cookie back goes to that target while it can take new
//! requests (registered, not draining, healthy unless the group fails open), and otherwise to
//! the one the algorithm picks, which the new cookie then names. A group cookie naming a group
//! the action no longer sends requests to is ignored.
//!
//! Values are hex-encoded (`ID:PORT` of a target, a target group's ARN): opaque to clients, not
//! secrets (a forged value can only name a target or group the request could be sent to anyway).

use crate::balancer::Target;
use http::HeaderMap;
use http::header::{self, HeaderValue};
use std::time::Duration;

/// A stickiness cookie's name, and its cross-origin twin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    pub name: &'static str,
    pub cors: Option<&'static str>,
}

/// Duration-based stickiness to a target.
pub const LB_COOKIE: Cookies = Cookies {
    name: "AWSALB",
    cors: Some("AWSALBCORS"),
};
/// Application-based stickiness to a target.
pub const APP_COOKIE: Cookies = Cookies {
    name: "AWSALBAPP-0",
    cors: None,
};
/// A forward action's stickiness to a target group.
pub const GROUP_COOKIE: Cookies = Cookies {
    name: "AWSALBTG",
    cors: Some("AWSALBTGCORS"),
};

/// How a target group holds a client to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// `lb_cookie`: on every answer, for this long.
    LbCookie(Duration),
    /// `app_cookie`: whenever the target sets `cookie_name`, for `duration`.
    AppCookie {
        cookie_name: String,
        duration: Duration,
    },
}

impl Policy {
    pub fn cookies(&self) -> &'static Cookies {
        match self {
            Policy::LbCookie(_) => &LB_COOKIE,
            Policy::AppCookie { .. } => &APP_COOKIE,
        }
    }

    /// The target a request's cookie names: its id and port.
    pub fn requested(&self, request: &HeaderMap) -> Option<(String, u16)> {
        let text = read(request, self.cookies())?;
        let (id, port) = text.rsplit_once(':')?;
        Some((id.to_string(), port.parse().ok()?))
    }

    /// Adds the cookie that holds the client to `target` to its answer, when the policy says so.
    pub fn hold(&self, answer: &mut HeaderMap, target: &Target) {
        let duration = match self {
            Policy::LbCookie(duration) => *duration,
            Policy::AppCookie {
                cookie_name,
                duration,
            } if sets_cookie(answer, cookie_name) => *duration,
            Policy::AppCookie { .. } => return,
        };
        let text = format!("{}:{}", target.id, target.port);
        write(answer, self.cookies(), &text, duration);
    }
}

/// The value a request's cookie of `cookies` carries, decoded.
pub fn read(request: &HeaderMap, cookies: &Cookies) -> Option<String> {
    let value = request
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookies.name || Some(*name) == cookies.cors)
        .map(|(_, value)| value)?;
    String::from_utf8(decode_hex(value)?).ok()
}

/// Adds the cookies of `cookies` carrying `text` for `duration` to an answer.
pub fn write(answer: &mut HeaderMap, cookies: &Cookies, text: &str, duration: Duration) {
    let value = encode_hex(text.as_bytes());
    let age = duration.as_secs();
    let plain = format!("{}={value}; Max-Age={age}; Path=/", cookies.name);
    let cors = cookies
        .cors
        .map(|name| format!("{name}={value}; Max-Age={age}; Path=/; SameSite=None; Secure"));
    for cookie in std::iter::once(plain).chain(cors) {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            answer.append(header::SET_COOKIE, v);
        }
    }
}

/// Whether an answer sets the cookie `name`.
fn sets_cookie(answer: &HeaderMap, name: &str) -> bool {
    answer
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split_once('=').is_some_and(|(n, _)| n.trim() == name))
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

    fn target() -> Target {
        Target {
            id: "i-0abc".into(),
            port: 32768,
            address: None,
            draining: false,
            stats: Arc::new(TargetStats::new(Health::Healthy)),
        }
    }

    fn request_with(pair: &str) -> HeaderMap {
        let mut request = HeaderMap::new();
        request.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("session=1; {pair}")).unwrap(),
        );
        request
    }

    #[test]
    fn the_cookie_set_is_the_cookie_read_back() {
        let policy = Policy::LbCookie(Duration::from_secs(86400));
        let mut answer = HeaderMap::new();
        policy.hold(&mut answer, &target());
        let set: Vec<_> = answer.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(set.len(), 2);
        let first = set[0].to_str().unwrap();
        assert!(first.starts_with("AWSALB="), "{first}");
        assert!(first.contains("Max-Age=86400"), "{first}");
        assert!(set[1].to_str().unwrap().starts_with("AWSALBCORS="));
        assert!(set[1].to_str().unwrap().contains("SameSite=None; Secure"));

        let pair = first.split(';').next().unwrap();
        let request = request_with(pair);
        assert_eq!(policy.requested(&request), Some(("i-0abc".into(), 32768)));
        // Another policy's cookie is not this one's.
        let app = Policy::AppCookie {
            cookie_name: "SESSION".into(),
            duration: Duration::from_secs(60),
        };
        assert_eq!(app.requested(&request), None);

        let mut request = HeaderMap::new();
        for garbage in ["AWSALB=zz", "AWSALB=abc", "AWSALB=", "other=1"] {
            request.insert(header::COOKIE, HeaderValue::from_static(garbage));
            assert_eq!(policy.requested(&request), None, "{garbage}");
        }
    }

    #[test]
    fn the_application_cookie_is_followed_only_when_the_target_sets_it() {
        let policy = Policy::AppCookie {
            cookie_name: "SESSION".into(),
            duration: Duration::from_secs(120),
        };
        let mut answer = HeaderMap::new();
        answer.append(header::SET_COOKIE, HeaderValue::from_static("SESSIONX=1"));
        policy.hold(&mut answer, &target());
        assert_eq!(answer.get_all(header::SET_COOKIE).iter().count(), 1);

        answer.append(
            header::SET_COOKIE,
            HeaderValue::from_static("SESSION=s1; Path=/; HttpOnly"),
        );
        policy.hold(&mut answer, &target());
        let ours: Vec<&str> = answer
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .filter(|v| v.starts_with("AWSALBAPP-0="))
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert!(ours[0].contains("Max-Age=120"), "{ours:?}");
        let request = request_with(ours[0].split(';').next().unwrap());
        assert_eq!(policy.requested(&request), Some(("i-0abc".into(), 32768)));
    }

    #[test]
    fn a_group_cookie_carries_the_group() {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/blue/1";
        let mut answer = HeaderMap::new();
        write(&mut answer, &GROUP_COOKIE, arn, Duration::from_secs(30));
        let set: Vec<&str> = answer
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(set[0].starts_with("AWSALBTG="), "{set:?}");
        assert!(set[1].starts_with("AWSALBTGCORS="), "{set:?}");
        let request = request_with(set[1].split(';').next().unwrap());
        assert_eq!(read(&request, &GROUP_COOKIE).as_deref(), Some(arn));
        assert_eq!(read(&request, &LB_COOKIE), None);
    }
}
