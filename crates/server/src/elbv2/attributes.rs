//! Describe/Modify LoadBalancerAttributes and TargetGroupAttributes: one pair of handlers for
//! every resource that carries ELBv2 attributes.

use super::{load_balancer, target_group};
use crate::db::{Db, Versioned, Writes};
use crate::records::Kind;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, write_attributes};
use berth_api::query::Params;
use berth_api::xml::Xml;
use berth_model::elbv2::attributes::{self, LOAD_BALANCER, Spec, TARGET_GROUP};
use berth_model::elbv2::{LoadBalancer, TargetGroup};
use std::collections::BTreeMap;

/// A resource with ELBv2 attributes.
pub trait HasAttributes: Kind {
    /// The request parameter that names it, e.g. `LoadBalancerArn`.
    const ARN_PARAM: &'static str;
    /// The attributes it may have, with their defaults.
    const SPECS: &'static [Spec];
    fn find(db: &Db, ctx: &Ctx, param: &str, arn: &str) -> Result<Versioned<Self>, ApiError>;
    fn attributes(&self) -> &BTreeMap<String, String>;
    fn attributes_mut(&mut self) -> &mut BTreeMap<String, String>;
}

impl HasAttributes for LoadBalancer {
    const ARN_PARAM: &'static str = "LoadBalancerArn";
    const SPECS: &'static [Spec] = LOAD_BALANCER;
    fn find(db: &Db, ctx: &Ctx, param: &str, arn: &str) -> Result<Versioned<Self>, ApiError> {
        load_balancer(db, ctx, param, arn)
    }
    fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }
    fn attributes_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.attributes
    }
}

impl HasAttributes for TargetGroup {
    const ARN_PARAM: &'static str = "TargetGroupArn";
    const SPECS: &'static [Spec] = TARGET_GROUP;
    fn find(db: &Db, ctx: &Ctx, param: &str, arn: &str) -> Result<Versioned<Self>, ApiError> {
        target_group(db, ctx, param, arn)
    }
    fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }
    fn attributes_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.attributes
    }
}

/// Every attribute with its effective value (the set ones, else the defaults).
fn attributes_xml<T: HasAttributes>(resource: &T) -> String {
    let mut x = Xml::new();
    write_attributes(
        &mut x,
        &attributes::effective(T::SPECS, resource.attributes()),
    );
    x.finish()
}

pub fn describe<T: HasAttributes>(
    app: &App,
    ctx: &Ctx,
    p: &Params<'_>,
) -> Result<String, ApiError> {
    let found = T::find(&app.db, ctx, T::ARN_PARAM, p.required(T::ARN_PARAM)?)?;
    Ok(attributes_xml(&found.value))
}

pub async fn modify<T: HasAttributes>(
    app: &App,
    ctx: &Ctx,
    p: &Params<'_>,
) -> Result<String, ApiError> {
    let arn = p.required(T::ARN_PARAM)?;
    let changes = wire::parse_attributes(p)?;
    let updated = app
        .db
        .transact(|db| {
            let current = T::find(db, ctx, T::ARN_PARAM, arn)?;
            let mut updated = current.value.clone();
            attributes::apply(T::SPECS, updated.attributes_mut(), &changes, "Attributes")
                .map_err(wire::invalid)?;
            Ok((
                Writes::new()
                    .expect_unchanged(&current)
                    .put(&current.key, updated.clone()),
                updated,
            ))
        })
        .await?;
    Ok(attributes_xml(&updated))
}
