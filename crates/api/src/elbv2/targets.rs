//! RegisterTargets / DeregisterTargets / DescribeTargetHealth parameters and the
//! `TargetHealthDescription` document.

use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::Xml;
use berth_model::elbv2::target::Reported;

/// A target as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDescription {
    pub id: String,
    pub port: Option<u16>,
    pub availability_zone: Option<String>,
}

/// `Targets.member.N.Id/Port/AvailabilityZone`; `required` refuses an absent or empty list.
pub fn parse(p: &Params<'_>, required: bool) -> Result<Vec<TargetDescription>, ApiError> {
    let items = p.list("Targets")?.unwrap_or_default();
    if required && items.is_empty() {
        return Err(validation("Targets must list at least one target"));
    }
    items
        .iter()
        .map(|t| {
            let id = t.required("Id")?;
            if id.is_empty() || id.len() > 255 || id.contains(['/', ' ']) {
                return Err(validation(format!(
                    "{}: '{id}' is not a target id",
                    t.path("Id")
                )));
            }
            Ok(TargetDescription {
                id: id.to_string(),
                port: t.int("Port", 1, 65535)?,
                availability_zone: t.str("AvailabilityZone").map(str::to_string),
            })
        })
        .collect()
}

/// One `<member>` of `TargetHealthDescriptions`.
pub fn write(x: &mut Xml, id: &str, port: u16, health_check_port: u16, health: &Reported) {
    x.node("Target", |x| {
        x.text("Id", id).text("Port", port);
    })
    .text("HealthCheckPort", health_check_port)
    .node("TargetHealth", |x| {
        x.text("State", health.state)
            .opt("Reason", health.reason.as_deref())
            .opt("Description", health.description.as_deref());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    #[test]
    fn parses_targets() {
        let f = Form::parse(
            b"Targets.member.1.Id=i-1&Targets.member.1.Port=32768&Targets.member.2.Id=10.0.0.5",
        )
        .unwrap();
        let t = parse(&f.root(), true).unwrap();
        assert_eq!(t[0].port, Some(32768));
        assert_eq!(t[1].port, None);
        let f = Form::parse(b"Targets.member.1.Id=i-1&Targets.member.1.Port=0").unwrap();
        assert!(
            parse(&f.root(), true)
                .unwrap_err()
                .message
                .contains("Targets.member.1.Port")
        );
        let f = Form::parse(b"X=1").unwrap();
        assert!(parse(&f.root(), true).is_err());
        assert!(parse(&f.root(), false).unwrap().is_empty());
        let mut x = Xml::new();
        write(&mut x, "i-1", 32768, 32768, &Reported::not_registered());
        assert!(
            x.finish()
                .contains("<State>unused</State><Reason>Target.NotRegistered</Reason>")
        );
    }
}
