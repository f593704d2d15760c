//! Elastic Load Balancing v2 on the wire: the query-protocol request parameters decoded into
//! the model's types (`berth_model::elbv2`), the XML result documents, and ELBv2's error codes.
//! One module per resource family; validation beyond the shape of a parameter is the model's.

pub mod listeners;
pub mod load_balancers;
pub mod rules;
pub mod target_groups;
pub mod targets;

use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::Xml;
use berth_model::elbv2::Tag;
use berth_model::{ErrorKind, ValidationError};

/// The XML namespace of every ELBv2 document.
pub const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

macro_rules! elbv2_errors {
    ($($fn:ident => $code:literal),* $(,)?) => {
        $(
            #[doc = concat!("`", $code, "` (HTTP 400).")]
            pub fn $fn(message: impl Into<String>) -> ApiError {
                ApiError::new($code, 400, message)
            }
        )*
    };
}

elbv2_errors! {
    certificate_not_found => "CertificateNotFound",
    duplicate_listener => "DuplicateListener",
    duplicate_load_balancer_name => "DuplicateLoadBalancerName",
    duplicate_tag_keys => "DuplicateTagKeys",
    duplicate_target_group_name => "DuplicateTargetGroupName",
    invalid_action => "InvalidAction",
    invalid_configuration_request => "InvalidConfigurationRequest",
    invalid_target => "InvalidTarget",
    listener_not_found => "ListenerNotFound",
    load_balancer_not_found => "LoadBalancerNotFound",
    operation_not_permitted => "OperationNotPermitted",
    priority_in_use => "PriorityInUse",
    resource_in_use => "ResourceInUse",
    rule_not_found => "RuleNotFound",
    target_group_not_found => "TargetGroupNotFound",
    too_many_certificates => "TooManyCertificates",
    too_many_listeners => "TooManyListeners",
    too_many_load_balancers => "TooManyLoadBalancers",
    too_many_rules => "TooManyRules",
    too_many_tags => "TooManyTags",
    too_many_target_groups => "TooManyTargetGroups",
    too_many_targets => "TooManyTargets",
}

/// A model validation failure as ELBv2 reports it: `ValidationError` for a bad member,
/// `InvalidConfigurationRequest` for a request that cannot be honoured as a whole.
pub fn invalid(e: ValidationError) -> ApiError {
    let message = if e.field.is_empty() || e.message.starts_with(&e.field) {
        e.message
    } else {
        format!("{}: {}", e.field, e.message)
    };
    match e.kind {
        ErrorKind::InvalidParameter => validation(message),
        ErrorKind::Client => invalid_configuration_request(message),
    }
}

/// `Tags.member.N.Key/Value`.
pub fn parse_tags(p: &Params<'_>, name: &str) -> Result<Vec<Tag>, ApiError> {
    let Some(items) = p.list(name)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|t| {
            Ok(Tag {
                key: t.required("Key")?.to_string(),
                value: t.str("Value").map(str::to_string),
            })
        })
        .collect()
}

pub fn write_tags(x: &mut Xml, tags: &[Tag]) {
    x.members("Tags", tags, |x, t| {
        x.text("Key", &t.key).opt("Value", t.value.as_deref());
    });
}

/// `Marker` and `PageSize` (1-400) of the Describe calls.
pub fn paging(p: &Params<'_>) -> Result<(Option<String>, usize), ApiError> {
    let size = p.int::<usize>("PageSize", 1, 400)?.unwrap_or(400);
    Ok((p.str("Marker").map(str::to_string), size))
}

/// The `AddTags`, `RemoveTags` and `DescribeTags` requests.
pub mod tags {
    use super::*;
    use crate::xml::Xml;

    pub struct AddTags {
        pub resource_arns: Vec<String>,
        pub tags: Vec<Tag>,
    }

    pub fn add(p: &Params<'_>) -> Result<AddTags, ApiError> {
        let resource_arns = required_strings(p, "ResourceArns")?;
        let tags = parse_tags(p, "Tags")?;
        if tags.is_empty() {
            return Err(validation("Tags must list at least one tag"));
        }
        Ok(AddTags {
            resource_arns,
            tags,
        })
    }

    pub struct RemoveTags {
        pub resource_arns: Vec<String>,
        pub tag_keys: Vec<String>,
    }

    pub fn remove(p: &Params<'_>) -> Result<RemoveTags, ApiError> {
        Ok(RemoveTags {
            resource_arns: required_strings(p, "ResourceArns")?,
            tag_keys: required_strings(p, "TagKeys")?,
        })
    }

    pub fn describe(p: &Params<'_>) -> Result<Vec<String>, ApiError> {
        let arns = required_strings(p, "ResourceArns")?;
        if arns.len() > 20 {
            return Err(validation(format!(
                "ResourceArns lists {} resources; at most 20 are allowed",
                arns.len()
            )));
        }
        Ok(arns)
    }

    pub fn write_descriptions<'a>(
        x: &mut Xml,
        items: impl IntoIterator<Item = (&'a str, &'a [Tag])>,
    ) {
        x.members("TagDescriptions", items, |x, (arn, tags)| {
            x.text("ResourceArn", arn);
            write_tags(x, tags);
        });
    }
}

/// A list that must be given with at least one member.
pub fn required_strings(p: &Params<'_>, name: &str) -> Result<Vec<String>, ApiError> {
    match p.strings(name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(validation(format!(
            "{} must list at least one member",
            p.path(name)
        ))),
    }
}

/// `Attributes.member.N.Key/Value` of the Modify*Attributes calls.
pub fn parse_attributes(p: &Params<'_>) -> Result<Vec<(String, String)>, ApiError> {
    match p.pairs("Attributes")? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(validation("Attributes must list at least one attribute")),
    }
}

pub fn write_attributes(x: &mut Xml, attributes: &[(String, String)]) {
    x.members("Attributes", attributes, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    #[test]
    fn maps_model_failures_to_elbv2_codes() {
        let e = invalid(ValidationError::invalid("Port", "must be 1-65535"));
        assert_eq!(
            (e.code, e.message.as_str()),
            ("ValidationError", "Port: must be 1-65535")
        );
        let e = invalid(ValidationError::client("Conditions", "too many"));
        assert_eq!(e.code, "InvalidConfigurationRequest");
    }

    #[test]
    fn tags_and_attributes() {
        let f = Form::parse(
            b"ResourceArns.member.1=a&Tags.member.1.Key=k&Tags.member.1.Value=v&Tags.member.2.Key=bare\
              &Attributes.member.1.Key=x&Attributes.member.1.Value=1",
        )
        .unwrap();
        let add = tags::add(&f.root()).unwrap();
        assert_eq!(add.resource_arns, ["a"]);
        assert_eq!(
            add.tags[1],
            Tag {
                key: "bare".into(),
                value: None
            }
        );
        let mut x = Xml::new();
        write_tags(&mut x, &add.tags);
        assert_eq!(
            x.finish(),
            "<Tags><member><Key>k</Key><Value>v</Value></member><member><Key>bare</Key></member></Tags>"
        );
        assert_eq!(
            parse_attributes(&f.root()).unwrap(),
            [("x".to_string(), "1".to_string())]
        );
        let empty = Form::parse(b"ResourceArns=").unwrap();
        assert!(
            tags::describe(&empty.root())
                .unwrap_err()
                .message
                .contains("ResourceArns")
        );
        assert!(parse_attributes(&empty.root()).is_err());
    }
}
