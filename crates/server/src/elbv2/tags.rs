//! AddTags, RemoveTags, DescribeTags on load balancers, target groups, listeners and rules.

use super::{FoundRule, listener, load_balancer, rule, target_group};
use crate::db::{Db, Versioned, Writes};
use crate::records::Kind;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, tags as wt};
use berth_api::query::{Params, validation};
use berth_api::xml::Xml;
use berth_model::elbv2::arn::{self, Resource};
use berth_model::elbv2::{MAX_TAGS, Tag, merge_tags, validate_tags};

/// The tags of one resource, and how to write them back.
struct Tagged {
    tags: Vec<Tag>,
    write: Box<dyn FnOnce(Writes, Vec<Tag>) -> Writes>,
}

fn tagged<T: Kind + 'static>(
    read: Versioned<T>,
    tags: impl Fn(&mut T) -> &mut Vec<Tag> + 'static,
) -> Tagged {
    let mut value = read.value.clone();
    let current = tags(&mut value).clone();
    Tagged {
        tags: current,
        write: Box::new(move |writes, new| {
            *tags(&mut value) = new;
            writes.expect_unchanged(&read).put(&read.key, value)
        }),
    }
}

fn resolve(db: &Db, ctx: &Ctx, arn: &str) -> Result<Option<Tagged>, ApiError> {
    let resource = arn::parse(arn)
        .ok_or_else(|| {
            validation(format!(
                "ResourceArns: '{arn}' is not an Elastic Load Balancing ARN"
            ))
        })?
        .resource;
    Ok(Some(match resource {
        Resource::LoadBalancer { .. } => {
            tagged(load_balancer(db, ctx, "ResourceArns", arn)?, |v| {
                &mut v.tags
            })
        }
        Resource::TargetGroup { .. } => {
            tagged(target_group(db, ctx, "ResourceArns", arn)?, |v| &mut v.tags)
        }
        Resource::Listener { .. } => {
            tagged(listener(db, ctx, "ResourceArns", arn)?, |v| &mut v.tags)
        }
        Resource::Rule { .. } => match rule(db, ctx, "ResourceArns", arn)? {
            FoundRule::Custom(r) => tagged(r, |v| &mut v.tags),
            FoundRule::Default(_) => return Ok(None),
        },
    }))
}

fn default_rule_untaggable(arn: &str) -> ApiError {
    wire::operation_not_permitted(format!(
        "Berth does not keep tags on default rules: '{arn}'"
    ))
}

pub async fn add(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wt::add(p)?;
    match validate_tags("Tags", &input.tags) {
        Ok(()) => {}
        Err(None) => return Err(wire::duplicate_tag_keys("Tags: a tag key is given twice")),
        Err(Some(e)) => return Err(wire::invalid(e)),
    }
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            for arn in &input.resource_arns {
                let t = resolve(db, ctx, arn)?.ok_or_else(|| default_rule_untaggable(arn))?;
                let mut tags = t.tags;
                if merge_tags(&mut tags, &input.tags) > MAX_TAGS {
                    return Err(wire::too_many_tags(format!(
                        "'{arn}' would have more than {MAX_TAGS} tags"
                    )));
                }
                writes = (t.write)(writes, tags);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}

pub async fn remove(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wt::remove(p)?;
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            for arn in &input.resource_arns {
                let t = resolve(db, ctx, arn)?.ok_or_else(|| default_rule_untaggable(arn))?;
                let tags: Vec<Tag> = t
                    .tags
                    .iter()
                    .filter(|t| !input.tag_keys.contains(&t.key))
                    .cloned()
                    .collect();
                writes = (t.write)(writes, tags);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}

pub fn describe(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arns = wt::describe(p)?;
    let mut found = Vec::new();
    for arn in &arns {
        let tags = resolve(&app.db, ctx, arn)?
            .map(|t| t.tags)
            .unwrap_or_default();
        found.push((arn.as_str(), tags));
    }
    let mut x = Xml::new();
    wt::write_descriptions(&mut x, found.iter().map(|(a, t)| (*a, t.as_slice())));
    Ok(x.finish())
}
