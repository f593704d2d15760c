//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup and the
//! target group attributes.

use super::{check_new_tags, find_target_group, load_balancer, new_id, page, target_group, usage};
use crate::db::Writes;
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, target_groups as tgs};
use berth_api::query::{Params, validation};
use berth_api::xml::Xml;
use berth_model::elbv2::{DEFAULT_VPC_ID, Named, RegisteredTarget, TargetGroup, validate_name};

const MAX_TARGET_GROUPS: usize = 3000;

fn write_groups(app: &App, ctx: &Ctx, groups: &[TargetGroup], next: Option<String>) -> String {
    let used = usage(&app.db, ctx);
    let mut x = Xml::new();
    x.members("TargetGroups", groups, |x, tg| {
        let lbs: Vec<String> = used
            .get(&tg.arn)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        tgs::write(x, tg, &lbs)
    })
    .opt("NextMarker", next);
    x.finish()
}

pub async fn create(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = tgs::create(p)?;
    validate_name("Name", &input.name, Named::TargetGroup).map_err(wire::invalid)?;
    check_new_tags(&input.tags)?;
    let id = new_id();
    let tg = TargetGroup {
        arn: berth_model::elbv2::arn::target_group(&ctx.region, &ctx.account, &input.name, &id),
        name: input.name,
        id,
        protocol: input.protocol,
        protocol_version: input.protocol_version,
        port: input.port,
        vpc_id: input.vpc_id.unwrap_or_else(|| DEFAULT_VPC_ID.into()),
        target_type: input.target_type,
        ip_address_type: input.ip_address_type,
        health_check: input.health_check,
        attributes: Default::default(),
        tags: input.tags,
        created_at: ctx.now,
    };
    let key = keys::target_group(&ctx.region, &tg.name);
    app.db
        .transact(|db| {
            if db.get::<TargetGroup>(&key).is_some() {
                return Err(wire::duplicate_target_group_name(format!(
                    "A target group with the name '{}' already exists",
                    tg.name
                )));
            }
            if db
                .list::<TargetGroup>(&keys::target_groups(&ctx.region))
                .len()
                >= MAX_TARGET_GROUPS
            {
                return Err(wire::too_many_target_groups(format!(
                    "a region can have at most {MAX_TARGET_GROUPS} target groups"
                )));
            }
            Ok((Writes::new().expect(&key, 0).put(&key, tg.clone()), ()))
        })
        .await?;
    Ok(write_groups(app, ctx, &[tg], None))
}

pub fn describe(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arns = p.strings("TargetGroupArns")?.unwrap_or_default();
    let names = p.strings("Names")?.unwrap_or_default();
    let lb_arn = p.str("LoadBalancerArn");
    let filters = [!arns.is_empty(), !names.is_empty(), lb_arn.is_some()];
    if filters.iter().filter(|f| **f).count() > 1 {
        return Err(validation(
            "give at most one of LoadBalancerArn, TargetGroupArns and Names",
        ));
    }
    let found: Vec<TargetGroup> = if !arns.is_empty() {
        arns.iter()
            .map(|arn| target_group(&app.db, ctx, "TargetGroupArns", arn).map(|t| t.value))
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|name| {
                app.db
                    .get::<TargetGroup>(&keys::target_group(&ctx.region, name))
                    .map(|t| t.value)
                    .ok_or_else(|| {
                        wire::target_group_not_found(format!("Target group '{name}' not found"))
                    })
            })
            .collect::<Result<_, _>>()?
    } else {
        let all = app
            .db
            .list::<TargetGroup>(&keys::target_groups(&ctx.region))
            .into_iter()
            .map(|t| t.value);
        match lb_arn {
            Some(lb_arn) => {
                load_balancer(&app.db, ctx, "LoadBalancerArn", lb_arn)?;
                let used = usage(&app.db, ctx);
                all.filter(|tg| used.get(&tg.arn).is_some_and(|lbs| lbs.contains(lb_arn)))
                    .collect()
            }
            None => all.collect(),
        }
    };
    let (items, next) = page(found, p)?;
    Ok(write_groups(app, ctx, &items, next))
}

pub async fn modify(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let tg = app
        .db
        .transact(|db| {
            let tg = target_group(db, ctx, "TargetGroupArn", arn)?;
            let mut updated = tg.value.clone();
            tgs::apply_health_check(p, &mut updated.health_check)?;
            Ok((
                Writes::new()
                    .expect_unchanged(&tg)
                    .put(&tg.key, updated.clone()),
                updated,
            ))
        })
        .await?;
    Ok(write_groups(app, ctx, &[tg], None))
}

/// Deletes the target group and its targets unless a listener or rule forwards to it;
/// deleting one that does not exist succeeds.
pub async fn delete(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    app.db
        .transact(|db| {
            let Some(tg) = find_target_group(db, ctx, "TargetGroupArn", arn)? else {
                return Ok((Writes::new(), ()));
            };
            if let Some(lbs) = usage(db, ctx).get(arn) {
                let lbs: Vec<&str> = lbs.iter().map(String::as_str).collect();
                return Err(wire::resource_in_use(format!(
                    "Target group '{arn}' is currently in use by a listener or a rule of {}",
                    lbs.join(", ")
                )));
            }
            let mut writes = Writes::new().expect_unchanged(&tg).delete(&tg.key);
            for t in db.list::<RegisteredTarget>(&keys::targets_of(&ctx.region, &tg.value.id)) {
                writes = writes.expect_unchanged(&t).delete(&t.key);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}
