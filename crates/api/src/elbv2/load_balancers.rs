//! CreateLoadBalancer's parameters and the `LoadBalancer` document.

use super::parse_tags;
use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::{Xml, iso8601};
use berth_model::elbv2::{CANONICAL_HOSTED_ZONE_ID, LoadBalancer, LoadBalancerState, Tag};

pub struct CreateLoadBalancer {
    pub name: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub scheme: String,
    pub ip_address_type: String,
    pub tags: Vec<Tag>,
}

fn one_of(p: &Params<'_>, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match p.str(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(validation(format!(
            "{}: '{v}' is not one of {}",
            p.path(name),
            allowed.join(", ")
        ))),
    }
}

pub fn create(p: &Params<'_>) -> Result<CreateLoadBalancer, ApiError> {
    let name = p.required("Name")?.to_string();
    match p.str("Type") {
        None | Some("application") => {}
        Some(other) => {
            return Err(validation(format!(
                "Type: '{other}' load balancers are not supported by Berth (application only)"
            )));
        }
    }
    let mut subnets = p.strings("Subnets")?.unwrap_or_default();
    if let Some(mappings) = p.list("SubnetMappings")? {
        if !subnets.is_empty() {
            return Err(validation(
                "give either Subnets or SubnetMappings, not both",
            ));
        }
        for m in mappings {
            subnets.push(m.required("SubnetId")?.to_string());
        }
    }
    for (i, s) in subnets.iter().enumerate() {
        if s.is_empty() || s.contains('/') {
            return Err(validation(format!(
                "Subnets.member.{}: '{s}' is not a subnet id",
                i + 1
            )));
        }
    }
    Ok(CreateLoadBalancer {
        name,
        subnets,
        security_groups: p.strings("SecurityGroups")?.unwrap_or_default(),
        scheme: one_of(p, "Scheme", &["internet-facing", "internal"])?
            .unwrap_or_else(|| "internet-facing".into()),
        ip_address_type: one_of(
            p,
            "IpAddressType",
            &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
        )?
        .unwrap_or_else(|| "ipv4".into()),
        tags: parse_tags(p, "Tags")?,
    })
}

/// The zone a load balancer's `n`th subnet is reported in: `REGIONa`, `REGIONb`, …
fn zone(region: &str, n: usize) -> String {
    let letter = (b'a' + (n % 26) as u8) as char;
    format!("{region}{letter}")
}

/// One `<member>` of `LoadBalancers`, with `state` as the answer reports it.
pub fn write(x: &mut Xml, lb: &LoadBalancer, region: &str, state: LoadBalancerState) {
    x.text("LoadBalancerArn", &lb.arn)
        .text("DNSName", &lb.dns_name)
        .text("CanonicalHostedZoneId", CANONICAL_HOSTED_ZONE_ID)
        .text("CreatedTime", iso8601(lb.created_at))
        .text("LoadBalancerName", &lb.name)
        .text("Scheme", &lb.scheme)
        .text("VpcId", &lb.vpc_id)
        .node("State", |x| {
            x.text("Code", state.as_str());
        })
        .text("Type", "application")
        .members(
            "AvailabilityZones",
            lb.subnets.iter().enumerate(),
            |x, (i, s)| {
                x.text("ZoneName", zone(region, i)).text("SubnetId", s);
            },
        )
        .strings("SecurityGroups", &lb.security_groups)
        .text("IpAddressType", &lb.ip_address_type);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    #[test]
    fn parses_create_with_defaults_and_mappings() {
        let f =
            Form::parse(b"Name=web&Subnets.member.1=subnet-a&Subnets.member.2=subnet-b").unwrap();
        let c = create(&f.root()).unwrap();
        assert_eq!(c.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(
            (c.scheme.as_str(), c.ip_address_type.as_str()),
            ("internet-facing", "ipv4")
        );
        let f = Form::parse(b"Name=web&SubnetMappings.member.1.SubnetId=subnet-c&Scheme=internal")
            .unwrap();
        let c = create(&f.root()).unwrap();
        assert_eq!(
            (c.subnets[0].as_str(), c.scheme.as_str()),
            ("subnet-c", "internal")
        );
        for (bad, member) in [
            (&b"Subnets.member.1=a"[..], "Name"),
            (b"Name=w&Type=network", "Type"),
            (b"Name=w&Scheme=public", "Scheme"),
            (b"Name=w&IpAddressType=v6", "IpAddressType"),
        ] {
            let f = Form::parse(bad).unwrap();
            let e = create(&f.root()).err().unwrap();
            assert!(e.message.contains(member), "{}", e.message);
        }
        assert_eq!(zone("us-east-1", 1), "us-east-1b");
    }
}
