//! The Elastic Load Balancing v2 API (query protocol, SigV4 service `elasticloadbalancing`):
//! application load balancers, target groups, listeners, rules, targets and their health,
//! attributes and tags. This is the control plane only: it keeps the records the data plane
//! (`berth lb`, later) will serve and whose target health it will write.
//!
//! Parent records are compared (and rewritten unchanged) by writes that depend on their
//! children, so checks that span records — unique listener ports and rule priorities, a
//! target group not deleted while a rule forwards to it — hold across servers too.

mod attributes;
pub mod data_plane;
mod listeners;
mod load_balancers;
mod rules;
mod tags;
mod target_groups;
mod targets;

pub use targets::run_drain_sweeper;

use crate::db::{Db, Versioned, Writes};
use crate::records::{Kind, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, NAMESPACE};
use berth_api::query::{Form, Params, validation};
use berth_api::xml;
use berth_model::elbv2::arn::{self, Resource};
use berth_model::elbv2::{Action, Listener, LoadBalancer, Rule, Tag, TargetGroup};
use std::collections::{BTreeMap, BTreeSet};

/// Runs the ELBv2 action `action` and returns the whole XML response document.
pub async fn dispatch(
    app: App,
    ctx: Ctx,
    action: &str,
    form: &Form,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let p = form.root();
    let (app, ctx) = (&app, &ctx);
    let result = match action {
        "CreateLoadBalancer" => load_balancers::create(app, ctx, &p).await,
        "DescribeLoadBalancers" => load_balancers::describe(app, ctx, &p),
        "DeleteLoadBalancer" => load_balancers::delete(app, ctx, &p).await,
        "DescribeLoadBalancerAttributes" => attributes::describe::<LoadBalancer>(app, ctx, &p),
        "ModifyLoadBalancerAttributes" => attributes::modify::<LoadBalancer>(app, ctx, &p).await,
        "CreateTargetGroup" => target_groups::create(app, ctx, &p).await,
        "DescribeTargetGroups" => target_groups::describe(app, ctx, &p),
        "ModifyTargetGroup" => target_groups::modify(app, ctx, &p).await,
        "DeleteTargetGroup" => target_groups::delete(app, ctx, &p).await,
        "DescribeTargetGroupAttributes" => attributes::describe::<TargetGroup>(app, ctx, &p),
        "ModifyTargetGroupAttributes" => attributes::modify::<TargetGroup>(app, ctx, &p).await,
        "CreateListener" => listeners::create(app, ctx, &p).await,
        "DescribeListeners" => listeners::describe(app, ctx, &p),
        "ModifyListener" => listeners::modify(app, ctx, &p).await,
        "DeleteListener" => listeners::delete(app, ctx, &p).await,
        "AddListenerCertificates" => listeners::add_certificates(app, ctx, &p).await,
        "RemoveListenerCertificates" => listeners::remove_certificates(app, ctx, &p).await,
        "DescribeListenerCertificates" => listeners::describe_certificates(app, ctx, &p),
        "CreateRule" => rules::create(app, ctx, &p).await,
        "DescribeRules" => rules::describe(app, ctx, &p),
        "ModifyRule" => rules::modify(app, ctx, &p).await,
        "DeleteRule" => rules::delete(app, ctx, &p).await,
        "SetRulePriorities" => rules::set_priorities(app, ctx, &p).await,
        "RegisterTargets" => targets::register(app, ctx, &p).await,
        "DeregisterTargets" => targets::deregister(app, ctx, &p).await,
        "DescribeTargetHealth" => targets::describe_health(app, ctx, &p),
        "AddTags" => tags::add(app, ctx, &p).await,
        "RemoveTags" => tags::remove(app, ctx, &p).await,
        "DescribeTags" => tags::describe(app, ctx, &p),
        _ => Err(wire::invalid_action(format!(
            "Elastic Load Balancing v2 action '{action}' is not supported by Berth"
        ))),
    }?;
    Ok(xml::response(action, NAMESPACE, request_id, &result))
}

/// A new 16-hex-digit id, as ELBv2 puts in its ARNs.
fn new_id() -> String {
    crate::clock::new_id()[..16].to_string()
}

/// Parses an ARN of the expected kind; a malformed one is a `ValidationError` naming the
/// parameter, one of another region or account is `not_found`.
fn parse_arn(
    ctx: &Ctx,
    param: &str,
    value: &str,
    kind: &str,
    not_found: fn(String) -> ApiError,
) -> Result<Resource, ApiError> {
    let parsed = arn::parse(value)
        .ok_or_else(|| validation(format!("{param}: '{value}' is not a valid {kind} ARN")))?;
    if parsed.region != ctx.region || parsed.account != ctx.account {
        return Err(not_found(format!("{kind} '{value}' not found")));
    }
    Ok(parsed.resource)
}

fn load_balancer_not_found(arn: &str) -> ApiError {
    wire::load_balancer_not_found(format!("Load balancer '{arn}' not found"))
}
fn target_group_not_found(arn: &str) -> ApiError {
    wire::target_group_not_found(format!("Target group '{arn}' not found"))
}
fn listener_not_found(arn: &str) -> ApiError {
    wire::listener_not_found(format!("Listener '{arn}' not found"))
}
fn rule_not_found(arn: &str) -> ApiError {
    wire::rule_not_found(format!("Rule '{arn}' not found"))
}

/// The load balancer `arn` names, or `None` when it does not exist.
fn find_load_balancer(
    db: &Db,
    ctx: &Ctx,
    param: &str,
    arn: &str,
) -> Result<Option<Versioned<LoadBalancer>>, ApiError> {
    let Resource::LoadBalancer { name, .. } = parse_arn(
        ctx,
        param,
        arn,
        "load balancer",
        wire::load_balancer_not_found,
    )?
    else {
        return Err(validation(format!(
            "{param}: '{arn}' is not a load balancer ARN"
        )));
    };
    Ok(db
        .get::<LoadBalancer>(&keys::load_balancer(&ctx.region, &name))
        .filter(|lb| lb.value.arn == arn))
}

fn load_balancer(
    db: &Db,
    ctx: &Ctx,
    param: &str,
    arn: &str,
) -> Result<Versioned<LoadBalancer>, ApiError> {
    find_load_balancer(db, ctx, param, arn)?.ok_or_else(|| load_balancer_not_found(arn))
}

pub(crate) fn find_target_group(
    db: &Db,
    ctx: &Ctx,
    param: &str,
    arn: &str,
) -> Result<Option<Versioned<TargetGroup>>, ApiError> {
    let Resource::TargetGroup { name, .. } = parse_arn(
        ctx,
        param,
        arn,
        "target group",
        wire::target_group_not_found,
    )?
    else {
        return Err(validation(format!(
            "{param}: '{arn}' is not a target group ARN"
        )));
    };
    Ok(db
        .get::<TargetGroup>(&keys::target_group(&ctx.region, &name))
        .filter(|tg| tg.value.arn == arn))
}

fn target_group(
    db: &Db,
    ctx: &Ctx,
    param: &str,
    arn: &str,
) -> Result<Versioned<TargetGroup>, ApiError> {
    find_target_group(db, ctx, param, arn)?.ok_or_else(|| target_group_not_found(arn))
}

fn listener(db: &Db, ctx: &Ctx, param: &str, arn: &str) -> Result<Versioned<Listener>, ApiError> {
    let Resource::Listener { lb_id, id, .. } =
        parse_arn(ctx, param, arn, "listener", wire::listener_not_found)?
    else {
        return Err(validation(format!(
            "{param}: '{arn}' is not a listener ARN"
        )));
    };
    db.get::<Listener>(&keys::listener(&ctx.region, &lb_id, &id))
        .filter(|l| l.value.arn == arn)
        .ok_or_else(|| listener_not_found(arn))
}

/// A rule ARN resolved: a stored rule, or the default rule its listener holds.
enum FoundRule {
    Custom(Versioned<Rule>),
    Default(Versioned<Listener>),
}

fn rule(db: &Db, ctx: &Ctx, param: &str, arn: &str) -> Result<FoundRule, ApiError> {
    let Resource::Rule {
        lb_id,
        listener_id,
        id,
        ..
    } = parse_arn(ctx, param, arn, "rule", wire::rule_not_found)?
    else {
        return Err(validation(format!("{param}: '{arn}' is not a rule ARN")));
    };
    if let Some(r) = db
        .get::<Rule>(&keys::rule(&ctx.region, &listener_id, &id))
        .filter(|r| r.value.arn == arn)
    {
        return Ok(FoundRule::Custom(r));
    }
    db.get::<Listener>(&keys::listener(&ctx.region, &lb_id, &listener_id))
        .filter(|l| l.value.default_rule_id == id && default_rule_arn(ctx, &l.value) == arn)
        .map(FoundRule::Default)
        .ok_or_else(|| rule_not_found(arn))
}

fn default_rule_arn(ctx: &Ctx, l: &Listener) -> String {
    let (lb_name, lb_id) = match arn::parse(&l.load_balancer_arn).map(|a| a.resource) {
        Some(Resource::LoadBalancer { name, id }) => (name, id),
        _ => (String::new(), String::new()),
    };
    arn::rule(
        &ctx.region,
        &ctx.account,
        &lb_name,
        &lb_id,
        &l.id,
        &l.default_rule_id,
    )
}

/// The load balancer ARN a listener or rule ARN belongs to.
fn owning_load_balancer(ctx: &Ctx, arn: &str) -> Option<String> {
    match arn::parse(arn)?.resource {
        Resource::Listener { lb_name, lb_id, .. } | Resource::Rule { lb_name, lb_id, .. } => Some(
            arn::load_balancer(&ctx.region, &ctx.account, &lb_name, &lb_id),
        ),
        _ => None,
    }
}

/// Which load balancers forward to each target group (through a listener or a rule).
pub(crate) fn usage(db: &Db, ctx: &Ctx) -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |actions: &[Action], lb: &str| {
        for a in actions {
            for tg in a.target_group_arns() {
                used.entry(tg.to_string())
                    .or_default()
                    .insert(lb.to_string());
            }
        }
    };
    db.scan::<Listener>(&keys::listeners(&ctx.region), |_, l| {
        note(&l.default_actions, &l.load_balancer_arn);
        true
    });
    db.scan::<Rule>(&keys::rules(&ctx.region), |_, r| {
        if let Some(lb) = owning_load_balancer(ctx, &r.arn) {
            note(&r.actions, &lb);
        }
        true
    });
    used
}

/// Checks that every target group `actions` forward to exists; returns them so the write can
/// compare (and touch) them.
fn forwarded_target_groups(
    db: &Db,
    ctx: &Ctx,
    field: &str,
    actions: &[Action],
) -> Result<Vec<Versioned<TargetGroup>>, ApiError> {
    let mut out: Vec<Versioned<TargetGroup>> = Vec::new();
    for arn in actions.iter().flat_map(Action::target_group_arns) {
        if out.iter().any(|t| t.value.arn == arn) {
            continue;
        }
        out.push(target_group(db, ctx, field, arn)?);
    }
    Ok(out)
}

/// Compares a record and rewrites it unchanged, so a concurrent write that depends on it (or
/// on its absence of children) conflicts.
fn touch<T: Kind>(writes: Writes, read: &Versioned<T>) -> Writes {
    writes
        .expect_unchanged(read)
        .put(&read.key, read.value.clone())
}

/// Tags given to a Create call: unique keys, at most 50.
fn check_new_tags(tags: &[Tag]) -> Result<(), ApiError> {
    match berth_model::elbv2::validate_tags("Tags", tags) {
        Ok(()) => {}
        Err(None) => return Err(wire::duplicate_tag_keys("Tags: a tag key is given twice")),
        Err(Some(e)) => return Err(wire::invalid(e)),
    }
    if tags.len() > berth_model::elbv2::MAX_TAGS {
        return Err(wire::too_many_tags(format!(
            "Tags: {} tags given; a resource can have at most {}",
            tags.len(),
            berth_model::elbv2::MAX_TAGS
        )));
    }
    Ok(())
}

/// A page of `items` after the `Marker` (an offset a previous page returned).
fn page<T>(items: Vec<T>, p: &Params<'_>) -> Result<(Vec<T>, Option<String>), ApiError> {
    let (marker, size) = wire::paging(p)?;
    let start = match marker {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            validation(format!(
                "Marker: '{m}' is not a marker a previous call returned"
            ))
        })?,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + items.len() < total).then(|| (start + items.len()).to_string());
    Ok((items, next))
}
