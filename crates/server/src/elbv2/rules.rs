//! CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities. A listener's default
//! rule is not stored: it is the listener's default actions, shown with priority `default`.

use super::{
    FoundRule, check_new_tags, default_rule_arn, forwarded_target_groups, listener, new_id, page,
    rule, touch,
};
use crate::db::{Db, Writes};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::rules::RuleView;
use berth_api::elbv2::{self as wire, rules as wr};
use berth_api::query::{Params, validation};
use berth_api::xml::Xml;
use berth_model::elbv2::arn::{self, Resource};
use berth_model::elbv2::{Listener, Rule};
use std::collections::BTreeMap;

const MAX_RULES: usize = 100;

/// A rule or a default rule, ready to show.
enum Shown {
    Custom(Rule),
    Default(String, Listener),
}

impl Shown {
    fn view(&self) -> RuleView<'_> {
        match self {
            Shown::Custom(r) => RuleView {
                arn: &r.arn,
                priority: Some(r.priority),
                conditions: &r.conditions,
                actions: &r.actions,
            },
            Shown::Default(arn, l) => RuleView {
                arn,
                priority: None,
                conditions: &[],
                actions: &l.default_actions,
            },
        }
    }
}

fn rules_xml(items: &[Shown], next: Option<String>) -> String {
    let mut x = Xml::new();
    x.members("Rules", items, |x, r| wr::write(x, &r.view()))
        .opt("NextMarker", next);
    x.finish()
}

fn priority_in_use(priority: u32) -> ApiError {
    wire::priority_in_use(format!("Priority '{priority}' is currently in use"))
}

fn default_rule_refused(what: &str) -> ApiError {
    wire::operation_not_permitted(format!(
        "the default rule cannot be {what}; change the listener's default actions with ModifyListener"
    ))
}

pub async fn create(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wr::create(p)?;
    check_new_tags(&input.tags)?;
    let id = new_id();
    let created = app
        .db
        .transact(|db| {
            let l = listener(db, ctx, "ListenerArn", &input.listener_arn)?;
            let siblings = db.list::<Rule>(&keys::rules_of(&ctx.region, &l.value.id));
            if siblings.iter().any(|r| r.value.priority == input.priority) {
                return Err(priority_in_use(input.priority));
            }
            if siblings.len() >= MAX_RULES {
                return Err(wire::too_many_rules(format!(
                    "a listener can have at most {MAX_RULES} rules"
                )));
            }
            let groups = forwarded_target_groups(db, ctx, "Actions", &input.actions)?;
            let Some(Resource::Listener { lb_name, lb_id, .. }) =
                arn::parse(&l.value.arn).map(|a| a.resource)
            else {
                return Err(ApiError::server("a stored listener has a malformed ARN"));
            };
            let r = Rule {
                arn: arn::rule(
                    &ctx.region,
                    &ctx.account,
                    &lb_name,
                    &lb_id,
                    &l.value.id,
                    &id,
                ),
                listener_arn: l.value.arn.clone(),
                id: id.clone(),
                priority: input.priority,
                conditions: input.conditions.clone(),
                actions: input.actions.clone(),
                tags: input.tags.clone(),
            };
            let key = keys::rule(&ctx.region, &l.value.id, &id);
            let mut writes = touch(Writes::new(), &l)
                .expect(&key, 0)
                .put(&key, r.clone());
            for g in &groups {
                writes = touch(writes, g);
            }
            Ok((writes, r))
        })
        .await?;
    Ok(rules_xml(&[Shown::Custom(created)], None))
}

fn shown(db: &Db, ctx: &Ctx, arn: &str) -> Result<Shown, ApiError> {
    Ok(match rule(db, ctx, "RuleArns", arn)? {
        FoundRule::Custom(r) => Shown::Custom(r.value),
        FoundRule::Default(l) => Shown::Default(arn.to_string(), l.value),
    })
}

pub fn describe(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arns = p.strings("RuleArns")?.unwrap_or_default();
    let found: Vec<Shown> = match (p.str("ListenerArn"), arns.is_empty()) {
        (Some(_), false) => return Err(validation("give ListenerArn or RuleArns, not both")),
        (None, true) => return Err(validation("give a ListenerArn or RuleArns")),
        (Some(l_arn), true) => {
            let l = listener(&app.db, ctx, "ListenerArn", l_arn)?;
            let mut rules: Vec<Rule> = app
                .db
                .list::<Rule>(&keys::rules_of(&ctx.region, &l.value.id))
                .into_iter()
                .map(|r| r.value)
                .collect();
            rules.sort_by_key(|r| r.priority);
            let mut all: Vec<Shown> = rules.into_iter().map(Shown::Custom).collect();
            all.push(Shown::Default(default_rule_arn(ctx, &l.value), l.value));
            all
        }
        (None, false) => arns
            .iter()
            .map(|a| shown(&app.db, ctx, a))
            .collect::<Result<_, _>>()?,
    };
    let (items, next) = page(found, p)?;
    Ok(rules_xml(&items, next))
}

pub async fn modify(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wr::modify(p)?;
    let updated = app
        .db
        .transact(|db| {
            let FoundRule::Custom(r) = rule(db, ctx, "RuleArn", &input.rule_arn)? else {
                return Err(default_rule_refused("modified"));
            };
            let mut u = r.value.clone();
            let mut writes = Writes::new();
            if let Some(conditions) = &input.conditions {
                u.conditions = conditions.clone();
            }
            if let Some(actions) = &input.actions {
                for g in forwarded_target_groups(db, ctx, "Actions", actions)? {
                    writes = touch(writes, &g);
                }
                u.actions = actions.clone();
            }
            Ok((writes.expect_unchanged(&r).put(&r.key, u.clone()), u))
        })
        .await?;
    Ok(rules_xml(&[Shown::Custom(updated)], None))
}

pub async fn delete(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("RuleArn")?;
    app.db
        .transact(|db| {
            let FoundRule::Custom(r) = rule(db, ctx, "RuleArn", arn)? else {
                return Err(default_rule_refused("deleted"));
            };
            Ok((Writes::new().expect_unchanged(&r).delete(&r.key), ()))
        })
        .await?;
    Ok(String::new())
}

/// Gives rules new priorities in one write; the priorities must be unique per listener once
/// all are applied.
pub async fn set_priorities(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let changes = wr::priorities(p)?;
    let updated = app
        .db
        .transact(|db| {
            let mut changed: BTreeMap<String, crate::db::Versioned<Rule>> = BTreeMap::new();
            for (arn, priority) in &changes {
                let FoundRule::Custom(mut r) = rule(db, ctx, "RulePriorities", arn)? else {
                    return Err(default_rule_refused("given a priority"));
                };
                if let Some(earlier) = changed.remove(&r.key) {
                    r = earlier;
                }
                r.value.priority = *priority;
                changed.insert(r.key.clone(), r);
            }
            let mut writes = Writes::new();
            let listeners: std::collections::BTreeSet<String> = changed
                .values()
                .map(|r| r.value.listener_arn.clone())
                .collect();
            for l_arn in listeners {
                let l = listener(db, ctx, "RulePriorities", &l_arn)?;
                let mut seen = BTreeMap::new();
                for r in db.list::<Rule>(&keys::rules_of(&ctx.region, &l.value.id)) {
                    let priority = changed
                        .get(&r.key)
                        .map_or(r.value.priority, |c| c.value.priority);
                    if seen.insert(priority, r.key.clone()).is_some() {
                        return Err(priority_in_use(priority));
                    }
                }
                writes = touch(writes, &l);
            }
            let mut out = Vec::new();
            for r in changed.values() {
                writes = writes.expect_unchanged(r).put(&r.key, r.value.clone());
                out.push(r.value.clone());
            }
            out.sort_by_key(|r| r.priority);
            Ok((writes, out))
        })
        .await?;
    let shown: Vec<Shown> = updated.into_iter().map(Shown::Custom).collect();
    Ok(rules_xml(&shown, None))
}
