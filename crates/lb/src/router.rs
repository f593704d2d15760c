//! Listener rules as ALB evaluates them: in priority order, the first rule whose conditions all
//! match (each condition matching when any of its values does) gives the action; the default
//! rule matches everything. Conditions: path-pattern (case-sensitive, `*` and `?`), host-header
//! and http-header (case-insensitive, wildcards), http-request-method (exact), query-string
//! (key/value pairs, case-insensitive, wildcards) and source-ip (CIDR blocks of the client's
//! address). Also the weighted choice of a forward action's target group and the `Location`
//! of a redirect with its `#{…}` placeholders.

use berth_model::elbv2::data_plane::RuleConfig;
use berth_model::elbv2::{Action, ActionType, Condition, Forward, Redirect, WeightedTargetGroup};
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use std::net::IpAddr;

/// A wildcard pattern: `*` matches any run of characters, `?` exactly one.
#[derive(Debug, Clone)]
pub struct Pattern {
    chars: Vec<char>,
    ignore_case: bool,
}

impl Pattern {
    pub fn new(pattern: &str, ignore_case: bool) -> Pattern {
        let chars = if ignore_case {
            pattern.to_lowercase().chars().collect()
        } else {
            pattern.chars().collect()
        };
        Pattern { chars, ignore_case }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.ignore_case {
            text.to_lowercase().chars().collect()
        } else {
            text.chars().collect()
        };
        berth_model::query::glob_match(&self.chars, &text, true)
    }
}

/// An IPv4 or IPv6 CIDR block.
#[derive(Debug, Clone, Copy)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, bits) = s.split_once('/')?;
        let network: IpAddr = ip.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { network, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, width) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(i)), 32u32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128u32),
            _ => return false,
        };
        let bits = u32::from(self.bits);
        if bits == 0 {
            return true;
        }
        let shift = width - bits;
        (a >> shift) == (b >> shift)
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Path(Vec<Pattern>),
    Host(Vec<Pattern>),
    Header { name: String, values: Vec<Pattern> },
    Method(Vec<String>),
    Query(Vec<(Option<Pattern>, Pattern)>),
    SourceIp(Vec<Cidr>),
}

/// What a rule looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The `Host` header (or the HTTP/2 authority), port included if sent.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub source: IpAddr,
}

impl Cond {
    fn compile(c: &Condition) -> Cond {
        let patterns =
            |values: &[String], ic: bool| values.iter().map(|v| Pattern::new(v, ic)).collect();
        match c {
            Condition::PathPattern { values } => Cond::Path(patterns(values, false)),
            Condition::HostHeader { values } => Cond::Host(patterns(values, true)),
            Condition::HttpHeader { name, values } => Cond::Header {
                name: name.to_ascii_lowercase(),
                values: patterns(values, true),
            },
            Condition::HttpRequestMethod { values } => Cond::Method(values.clone()),
            Condition::QueryString { values } => Cond::Query(
                values
                    .iter()
                    .map(|kv| {
                        (
                            kv.key.as_deref().map(|k| Pattern::new(k, true)),
                            Pattern::new(&kv.value, true),
                        )
                    })
                    .collect(),
            ),
            Condition::SourceIp { values } => {
                Cond::SourceIp(values.iter().filter_map(|v| Cidr::parse(v)).collect())
            }
        }
    }

    fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Cond::Path(ps) => ps.iter().any(|p| p.matches(req.path)),
            Cond::Host(ps) => {
                let Some(host) = req.host else { return false };
                let host = strip_port(host);
                ps.iter().any(|p| p.matches(host))
            }
            Cond::Header { name, values } => req
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| values.iter().any(|p| p.matches(v))),
            Cond::Method(methods) => methods.iter().any(|m| m == req.method),
            Cond::Query(pairs) => {
                let query = query_pairs(req.query.unwrap_or(""));
                pairs.iter().any(|(key, value)| {
                    query.iter().any(|(k, v)| {
                        key.as_ref().is_none_or(|kp| kp.matches(k)) && value.matches(v)
                    })
                })
            }
            Cond::SourceIp(blocks) => blocks.iter().any(|b| b.contains(req.source)),
        }
    }
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if host.ends_with(']') {
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_decode_str(&s).decode_utf8_lossy().into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A rule ready to match requests.
#[derive(Debug, Clone)]
pub struct Rule {
    pub priority: Option<u32>,
    conditions: Vec<Cond>,
    pub action: Option<Action>,
}

impl Rule {
    pub fn compile(r: &RuleConfig) -> Rule {
        Rule {
            priority: r.priority,
            conditions: r.conditions.iter().map(Cond::compile).collect(),
            action: r.actions.first().cloned(),
        }
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.conditions.iter().all(|c| c.matches(req))
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision<'a> {
    Forward(&'a Forward),
    Redirect(&'a Redirect),
    Fixed(&'a berth_model::elbv2::FixedResponse),
    /// No rule applies (a listener without a usable default action).
    Nothing,
}

/// The first rule of `rules` (in priority order, default last) that matches `req`.
pub fn route<'r>(rules: &'r [Rule], req: &RequestView<'_>) -> Decision<'r> {
    let Some(action) = rules
        .iter()
        .find(|r| r.matches(req))
        .and_then(|r| r.action.as_ref())
    else {
        return Decision::Nothing;
    };
    match action.kind {
        ActionType::Forward => action
            .forward
            .as_ref()
            .map_or(Decision::Nothing, Decision::Forward),
        ActionType::Redirect => action
            .redirect
            .as_ref()
            .map_or(Decision::Nothing, Decision::Redirect),
        ActionType::FixedResponse => action
            .fixed_response
            .as_ref()
            .map_or(Decision::Nothing, Decision::Fixed),
    }
}

/// The target group a draw of `roll` in `0..total weight` picks; `None` when every weight is 0.
pub fn pick_weighted(groups: &[WeightedTargetGroup], roll: u32) -> Option<&str> {
    let mut left = roll;
    for g in groups {
        if left < g.weight {
            return Some(&g.target_group_arn);
        }
        left -= g.weight;
    }
    None
}

pub fn total_weight(groups: &[WeightedTargetGroup]) -> u32 {
    groups.iter().map(|g| g.weight).sum()
}

/// The request a redirect is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `HTTP` or `HTTPS`: the listener's protocol.
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// The redirect's status code and `Location`.
pub fn redirect_location(r: &Redirect, o: &Origin<'_>) -> (u16, String) {
    let status = if r.status_code == "HTTP_302" {
        302
    } else {
        301
    };
    let fill = |template: &str| {
        template
            .replace("#{protocol}", &o.protocol.to_ascii_lowercase())
            .replace("#{host}", strip_port(o.host))
            .replace("#{port}", &o.port.to_string())
            .replace("#{path}", o.path.trim_start_matches('/'))
            .replace("#{query}", o.query.unwrap_or(""))
    };
    let protocol = fill(&r.protocol).to_ascii_lowercase();
    let host = fill(&r.host);
    let port = fill(&r.port);
    let mut path = fill(&r.path);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = fill(&r.query);
    let default_port =
        (protocol == "http" && port == "80") || (protocol == "https" && port == "443");
    let mut location = format!("{protocol}://{host}");
    if !default_port {
        location.push(':');
        location.push_str(&port);
    }
    location.push_str(&path);
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    (status, location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::elbv2::condition::KeyValue;
    use berth_model::elbv2::{FixedResponse, Forward};

    fn forward(arn: &str) -> Action {
        Action {
            kind: ActionType::Forward,
            order: None,
            forward: Some(Forward {
                target_groups: vec![WeightedTargetGroup {
                    target_group_arn: arn.into(),
                    weight: 1,
                }],
                stickiness_enabled: false,
                stickiness_duration_seconds: None,
            }),
            redirect: None,
            fixed_response: None,
        }
    }

    fn rule(priority: Option<u32>, conditions: Vec<Condition>, to: &str) -> Rule {
        Rule::compile(&RuleConfig {
            priority,
            conditions,
            actions: vec![forward(to)],
        })
    }

    fn target_of(d: Decision<'_>) -> &str {
        match d {
            Decision::Forward(g) => &g.target_groups[0].target_group_arn,
            other => panic!("not a forward: {other:?}"),
        }
    }

    struct Req {
        method: &'static str,
        host: Option<&'static str>,
        path: &'static str,
        query: Option<&'static str>,
        headers: HeaderMap,
        source: IpAddr,
    }

    impl Req {
        fn get(path: &'static str) -> Req {
            Req {
                method: "GET",
                host: Some("www.example.com:8080"),
                path,
                query: None,
                headers: HeaderMap::new(),
                source: "10.1.2.3".parse().unwrap(),
            }
        }
        fn view(&self) -> RequestView<'_> {
            RequestView {
                method: self.method,
                host: self.host,
                path: self.path,
                query: self.query,
                headers: &self.headers,
                source: self.source,
            }
        }
    }

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards() {
        let p = Pattern::new("/random/*", false);
        assert!(p.matches("/random/"));
        assert!(p.matches("/random/a/b"));
        assert!(!p.matches("/random"));
        assert!(!p.matches("/RANDOM/x"));
        let p = Pattern::new("/a?c*z", false);
        assert!(p.matches("/abcz"));
        assert!(p.matches("/abc-yz"));
        assert!(!p.matches("/acz"));
        assert!(Pattern::new("*.Example.com", true).matches("api.example.COM"));
        assert!(Pattern::new("*", false).matches(""));
        assert!(!Pattern::new("", false).matches("x"));
    }

    #[test]
    fn rules_in_priority_order_then_the_default() {
        let rules = vec![
            rule(
                Some(1),
                vec![Condition::PathPattern {
                    values: values(&["/random/special"]),
                }],
                "special",
            ),
            rule(
                Some(5),
                vec![Condition::PathPattern {
                    values: values(&["/random/*", "/rnd"]),
                }],
                "random",
            ),
            rule(None, vec![], "default"),
        ];
        assert_eq!(
            target_of(route(&rules, &Req::get("/random/special").view())),
            "special"
        );
        assert_eq!(
            target_of(route(&rules, &Req::get("/random/1").view())),
            "random"
        );
        assert_eq!(target_of(route(&rules, &Req::get("/rnd").view())), "random");
        assert_eq!(
            target_of(route(&rules, &Req::get("/auth").view())),
            "default"
        );
        assert_eq!(
            route(&rules[..2], &Req::get("/x").view()),
            Decision::Nothing
        );
    }

    #[test]
    fn each_condition_type() {
        let one = |c: Condition| vec![rule(Some(1), vec![c], "hit"), rule(None, vec![], "miss")];
        let hit = |rules: &[Rule], r: &Req| target_of(route(rules, &r.view())) == "hit";

        let host = one(Condition::HostHeader {
            values: values(&["*.example.com"]),
        });
        assert!(hit(&host, &Req::get("/")));
        let mut other = Req::get("/");
        other.host = Some("example.org");
        assert!(!hit(&host, &other));
        other.host = None;
        assert!(!hit(&host, &other));

        let header = one(Condition::HttpHeader {
            name: "X-Stage".into(),
            values: values(&["0?", "beta"]),
        });
        let mut r = Req::get("/");
        assert!(!hit(&header, &r));
        r.headers.insert("x-stage", "01".parse().unwrap());
        assert!(hit(&header, &r));
        r.headers.insert("x-stage", "BETA".parse().unwrap());
        assert!(hit(&header, &r));
        r.headers.insert("x-stage", "prod".parse().unwrap());
        assert!(!hit(&header, &r));

        let method = one(Condition::HttpRequestMethod {
            values: values(&["POST", "PUT"]),
        });
        let mut r = Req::get("/");
        assert!(!hit(&method, &r));
        r.method = "PUT";
        assert!(hit(&method, &r));

        let query = one(Condition::QueryString {
            values: vec![
                KeyValue {
                    key: Some("version".into()),
                    value: "v2*".into(),
                },
                KeyValue {
                    key: None,
                    value: "canary".into(),
                },
            ],
        });
        let mut r = Req::get("/");
        assert!(!hit(&query, &r));
        r.query = Some("a=1&Version=V2.1");
        assert!(hit(&query, &r));
        r.query = Some("x=canary");
        assert!(hit(&query, &r));
        r.query = Some("version=v1&x=%63anary");
        assert!(hit(&query, &r));
        r.query = Some("version=v1");
        assert!(!hit(&query, &r));

        let source = one(Condition::SourceIp {
            values: values(&["10.1.0.0/16", "2001:db8::/32"]),
        });
        let mut r = Req::get("/");
        assert!(hit(&source, &r));
        r.source = "10.2.0.1".parse().unwrap();
        assert!(!hit(&source, &r));
        r.source = "2001:db8::5".parse().unwrap();
        assert!(hit(&source, &r));
        r.source = "::ffff:10.1.9.9".parse().unwrap();
        assert!(hit(&source, &r));

        // All conditions of a rule must match.
        let both = vec![
            rule(
                Some(1),
                vec![
                    Condition::PathPattern {
                        values: values(&["/api/*"]),
                    },
                    Condition::HttpRequestMethod {
                        values: values(&["GET"]),
                    },
                ],
                "hit",
            ),
            rule(None, vec![], "miss"),
        ];
        assert!(hit(&both, &Req::get("/api/x")));
        let mut post = Req::get("/api/x");
        post.method = "POST";
        assert!(!hit(&both, &post));
    }

    #[test]
    fn fixed_responses_and_redirects_are_decisions() {
        let fixed = Rule::compile(&RuleConfig {
            priority: None,
            conditions: vec![],
            actions: vec![Action {
                kind: ActionType::FixedResponse,
                order: None,
                forward: None,
                redirect: None,
                fixed_response: Some(FixedResponse {
                    status_code: "404".into(),
                    content_type: None,
                    message_body: None,
                }),
            }],
        });
        assert!(matches!(
            route(&[fixed], &Req::get("/").view()),
            Decision::Fixed(f) if f.status_code == "404"
        ));
    }

    #[test]
    fn weighted_forward_distribution() {
        let groups = vec![
            WeightedTargetGroup {
                target_group_arn: "a".into(),
                weight: 1,
            },
            WeightedTargetGroup {
                target_group_arn: "off".into(),
                weight: 0,
            },
            WeightedTargetGroup {
                target_group_arn: "b".into(),
                weight: 3,
            },
        ];
        assert_eq!(total_weight(&groups), 4);
        let picks: Vec<&str> = (0..4).filter_map(|r| pick_weighted(&groups, r)).collect();
        assert_eq!(picks, ["a", "b", "b", "b"]);
        assert_eq!(pick_weighted(&groups, 4), None);
        let none = vec![WeightedTargetGroup {
            target_group_arn: "z".into(),
            weight: 0,
        }];
        assert_eq!(total_weight(&none), 0);
        assert_eq!(pick_weighted(&none, 0), None);
    }

    #[test]
    fn redirect_placeholders() {
        let origin = Origin {
            protocol: "HTTP",
            host: "shop.example.com:8080",
            port: 8080,
            path: "/cart/1",
            query: Some("a=b"),
        };
        let mut r = Redirect {
            protocol: "HTTPS".into(),
            port: "443".into(),
            host: "#{host}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status_code: "HTTP_301".into(),
        };
        assert_eq!(
            redirect_location(&r, &origin),
            (301, "https://shop.example.com/cart/1?a=b".to_string())
        );
        r.protocol = "#{protocol}".into();
        r.port = "#{port}".into();
        r.host = "new.#{host}".into();
        r.path = "/v2/#{path}".into();
        r.query = "from=#{port}".into();
        r.status_code = "HTTP_302".into();
        assert_eq!(
            redirect_location(&r, &origin),
            (
                302,
                "http://new.shop.example.com:8080/v2/cart/1?from=8080".to_string()
            )
        );
        let no_query = Origin {
            query: None,
            ..origin
        };
        r.query = "#{query}".into();
        assert_eq!(
            redirect_location(&r, &no_query).1,
            "http://new.shop.example.com:8080/v2/cart/1"
        );
    }
}
