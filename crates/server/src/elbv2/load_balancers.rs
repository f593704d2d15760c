//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and the load balancer
//! attributes.

use super::{check_new_tags, find_load_balancer, load_balancer, new_id, page};
use crate::db::Writes;
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, load_balancers as lbs};
use berth_api::query::{Params, validation};
use berth_api::xml::Xml;
use berth_model::elbv2::attributes::{self, DELETION_PROTECTION, LOAD_BALANCER};
use berth_model::elbv2::{
    DEFAULT_VPC_ID, Listener, LoadBalancer, LoadBalancerState, Named, Rule, validate_name,
};

const MAX_LOAD_BALANCERS: usize = 50;

pub async fn create(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = lbs::create(p)?;
    validate_name("Name", &input.name, Named::LoadBalancer).map_err(wire::invalid)?;
    check_new_tags(&input.tags)?;
    let id = new_id();
    let lb = LoadBalancer {
        arn: berth_model::elbv2::arn::load_balancer(&ctx.region, &ctx.account, &input.name, &id),
        dns_name: format!("{}-{id}.lb.berth.local", input.name),
        name: input.name,
        id,
        scheme: input.scheme,
        ip_address_type: input.ip_address_type,
        subnets: input.subnets,
        security_groups: input.security_groups,
        vpc_id: DEFAULT_VPC_ID.into(),
        created_at: ctx.now,
        // Nothing is provisioned until the data plane exists: the record is active at once,
        // and only the Create answer says `provisioning`, as ELBv2's always does.
        state: LoadBalancerState::Active,
        attributes: Default::default(),
        tags: input.tags,
    };
    let key = keys::load_balancer(&ctx.region, &lb.name);
    app.db
        .transact(|db| {
            if db.get::<LoadBalancer>(&key).is_some() {
                return Err(wire::duplicate_load_balancer_name(format!(
                    "A load balancer with the name '{}' already exists",
                    lb.name
                )));
            }
            if db
                .list::<LoadBalancer>(&keys::load_balancers(&ctx.region))
                .len()
                >= MAX_LOAD_BALANCERS
            {
                return Err(wire::too_many_load_balancers(format!(
                    "a region can have at most {MAX_LOAD_BALANCERS} load balancers"
                )));
            }
            Ok((Writes::new().expect(&key, 0).put(&key, lb.clone()), ()))
        })
        .await?;
    let mut x = Xml::new();
    x.members("LoadBalancers", [&lb], |x, lb| {
        lbs::write(x, lb, &ctx.region, LoadBalancerState::Provisioning)
    });
    Ok(x.finish())
}

pub fn describe(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arns = p.strings("LoadBalancerArns")?.unwrap_or_default();
    let names = p.strings("Names")?.unwrap_or_default();
    if !arns.is_empty() && !names.is_empty() {
        return Err(validation("give LoadBalancerArns or Names, not both"));
    }
    let found: Vec<LoadBalancer> = if !arns.is_empty() {
        arns.iter()
            .map(|arn| load_balancer(&app.db, ctx, "LoadBalancerArns", arn).map(|lb| lb.value))
            .collect::<Result<_, _>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|name| {
                app.db
                    .get::<LoadBalancer>(&keys::load_balancer(&ctx.region, name))
                    .map(|lb| lb.value)
                    .ok_or_else(|| {
                        wire::load_balancer_not_found(format!("Load balancer '{name}' not found"))
                    })
            })
            .collect::<Result<_, _>>()?
    } else {
        app.db
            .list::<LoadBalancer>(&keys::load_balancers(&ctx.region))
            .into_iter()
            .map(|lb| lb.value)
            .collect()
    };
    let (items, next) = page(found, p)?;
    let mut x = Xml::new();
    x.members("LoadBalancers", &items, |x, lb| {
        lbs::write(x, lb, &ctx.region, lb.state)
    })
    .opt("NextMarker", next);
    Ok(x.finish())
}

/// Deletes the load balancer with its listeners and their rules; deleting one that does not
/// exist succeeds, as in ELBv2.
pub async fn delete(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("LoadBalancerArn")?;
    app.db
        .transact(|db| {
            let Some(lb) = find_load_balancer(db, ctx, "LoadBalancerArn", arn)? else {
                return Ok((Writes::new(), ()));
            };
            if attributes::value(LOAD_BALANCER, &lb.value.attributes, DELETION_PROTECTION) == "true"
            {
                return Err(wire::operation_not_permitted(format!(
                    "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
                )));
            }
            let mut writes = Writes::new().expect_unchanged(&lb).delete(&lb.key);
            for l in db.list::<Listener>(&keys::listeners_of(&ctx.region, &lb.value.id)) {
                for r in db.list::<Rule>(&keys::rules_of(&ctx.region, &l.value.id)) {
                    writes = writes.expect_unchanged(&r).delete(&r.key);
                }
                writes = writes.expect_unchanged(&l).delete(&l.key);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}
