//! CreateTargetGroup and ModifyTargetGroup parameters and the `TargetGroup` document.

use super::{invalid, parse_tags};
use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::Xml;
use berth_model::elbv2::{HealthCheck, Protocol, Tag, TargetGroup, TargetType};

pub struct CreateTargetGroup {
    pub name: String,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub port: u16,
    pub vpc_id: Option<String>,
    pub target_type: TargetType,
    pub ip_address_type: String,
    pub health_check: HealthCheck,
    pub tags: Vec<Tag>,
}

pub fn create(p: &Params<'_>) -> Result<CreateTargetGroup, ApiError> {
    let name = p.required("Name")?.to_string();
    let target_type = match p.str("TargetType") {
        None => TargetType::Instance,
        Some(t) => TargetType::parse("TargetType", t).map_err(invalid)?,
    };
    let protocol = Protocol::parse(
        "Protocol",
        p.str("Protocol").ok_or_else(|| {
            validation(format!(
                "Protocol is required for target groups of type '{}'",
                target_type.as_str()
            ))
        })?,
    )
    .map_err(invalid)?;
    let port = p.int::<u16>("Port", 1, 65535)?.ok_or_else(|| {
        validation(format!(
            "Port is required for target groups of type '{}'",
            target_type.as_str()
        ))
    })?;
    let protocol_version = match p.str("ProtocolVersion") {
        None => "HTTP1".to_string(),
        Some(v @ ("HTTP1" | "HTTP2" | "GRPC")) => v.to_string(),
        Some(v) => {
            return Err(validation(format!(
                "ProtocolVersion: '{v}' is not HTTP1, HTTP2 or GRPC"
            )));
        }
    };
    let ip_address_type = match p.str("IpAddressType") {
        None => "ipv4".to_string(),
        Some(v @ ("ipv4" | "ipv6")) => v.to_string(),
        Some(v) => {
            return Err(validation(format!(
                "IpAddressType: '{v}' is not ipv4 or ipv6"
            )));
        }
    };
    let mut health_check = HealthCheck::defaults(protocol);
    apply_health_check(p, &mut health_check)?;
    Ok(CreateTargetGroup {
        name,
        protocol,
        protocol_version,
        port,
        vpc_id: p.str("VpcId").map(str::to_string),
        target_type,
        ip_address_type,
        health_check,
        tags: parse_tags(p, "Tags")?,
    })
}

/// Applies the `HealthCheck*`, threshold and `Matcher` parameters to `hc` and validates the
/// result (CreateTargetGroup applies them to the defaults, ModifyTargetGroup to the stored
/// check).
pub fn apply_health_check(p: &Params<'_>, hc: &mut HealthCheck) -> Result<(), ApiError> {
    if let Some(v) = p.str("HealthCheckProtocol") {
        hc.protocol = Protocol::parse("HealthCheckProtocol", v).map_err(invalid)?;
    }
    if let Some(v) = p.str("HealthCheckPort") {
        hc.port = v.to_string();
    }
    if let Some(v) = p.bool("HealthCheckEnabled")? {
        hc.enabled = v;
    }
    if let Some(v) = p.str("HealthCheckPath") {
        hc.path = v.to_string();
    }
    if let Some(v) = p.int("HealthCheckIntervalSeconds", 5, 300)? {
        hc.interval_seconds = v;
    }
    if let Some(v) = p.int("HealthCheckTimeoutSeconds", 2, 120)? {
        hc.timeout_seconds = v;
    }
    if let Some(v) = p.int("HealthyThresholdCount", 2, 10)? {
        hc.healthy_threshold = v;
    }
    if let Some(v) = p.int("UnhealthyThresholdCount", 2, 10)? {
        hc.unhealthy_threshold = v;
    }
    if let Some(m) = p.child("Matcher") {
        if m.has("GrpcCode") {
            return Err(validation(
                "Matcher.GrpcCode is not supported by Berth (use HttpCode)",
            ));
        }
        hc.matcher = m.required("HttpCode")?.to_string();
    }
    hc.validate().map_err(invalid)
}

/// One `<member>` of `TargetGroups`.
pub fn write(x: &mut Xml, tg: &TargetGroup, load_balancer_arns: &[String]) {
    let hc = &tg.health_check;
    x.text("TargetGroupArn", &tg.arn)
        .text("TargetGroupName", &tg.name)
        .text("Protocol", tg.protocol.as_str())
        .text("Port", tg.port)
        .text("VpcId", &tg.vpc_id)
        .text("HealthCheckProtocol", hc.protocol.as_str())
        .text("HealthCheckPort", &hc.port)
        .text("HealthCheckEnabled", hc.enabled)
        .text("HealthCheckIntervalSeconds", hc.interval_seconds)
        .text("HealthCheckTimeoutSeconds", hc.timeout_seconds)
        .text("HealthyThresholdCount", hc.healthy_threshold)
        .text("UnhealthyThresholdCount", hc.unhealthy_threshold)
        .text("HealthCheckPath", &hc.path)
        .node("Matcher", |x| {
            x.text("HttpCode", &hc.matcher);
        })
        .strings("LoadBalancerArns", load_balancer_arns)
        .text("TargetType", tg.target_type.as_str())
        .text("ProtocolVersion", &tg.protocol_version)
        .text("IpAddressType", &tg.ip_address_type);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    #[test]
    fn create_fills_alb_defaults_and_takes_the_health_check() {
        let f = Form::parse(b"Name=auth&Protocol=HTTP&Port=10080&VpcId=vpc-1").unwrap();
        let c = create(&f.root()).unwrap();
        assert_eq!(c.health_check, HealthCheck::defaults(Protocol::Http));
        assert_eq!(
            (c.target_type, c.protocol_version.as_str()),
            (TargetType::Instance, "HTTP1")
        );
        let f = Form::parse(
            b"Name=random&Protocol=HTTP&Port=10081&TargetType=ip&HealthCheckPort=traffic-port\
              &HealthCheckPath=%2Frandom%2F&HealthCheckIntervalSeconds=10&HealthCheckTimeoutSeconds=3\
              &HealthyThresholdCount=2&UnhealthyThresholdCount=3&Matcher.HttpCode=200-299",
        )
        .unwrap();
        let c = create(&f.root()).unwrap();
        let hc = c.health_check;
        assert_eq!(
            (hc.path.as_str(), hc.interval_seconds, hc.timeout_seconds),
            ("/random/", 10, 3)
        );
        assert_eq!(
            (
                hc.healthy_threshold,
                hc.unhealthy_threshold,
                hc.matcher.as_str()
            ),
            (2, 3, "200-299")
        );
        assert_eq!(c.target_type, TargetType::Ip);
    }

    #[test]
    fn create_refuses_bad_members_by_name() {
        for (body, member, code) in [
            (&b"Name=a&Port=80"[..], "Protocol", "ValidationError"),
            (
                b"Name=a&Protocol=TCP&Port=80",
                "Protocol",
                "ValidationError",
            ),
            (b"Name=a&Protocol=HTTP", "Port", "ValidationError"),
            (
                b"Name=a&Protocol=HTTP&Port=80&TargetType=lambda",
                "TargetType",
                "ValidationError",
            ),
            (
                b"Name=a&Protocol=HTTP&Port=80&HealthCheckPort=x",
                "HealthCheckPort",
                "ValidationError",
            ),
            (
                b"Name=a&Protocol=HTTP&Port=80&HealthCheckIntervalSeconds=4",
                "HealthCheckIntervalSeconds",
                "ValidationError",
            ),
            (
                b"Name=a&Protocol=HTTP&Port=80&Matcher.HttpCode=600",
                "Matcher.HttpCode",
                "ValidationError",
            ),
        ] {
            let f = Form::parse(body).unwrap();
            let e = create(&f.root()).err().unwrap();
            assert_eq!(e.code, code);
            assert!(e.message.contains(member), "{}: {}", member, e.message);
        }
    }
}
