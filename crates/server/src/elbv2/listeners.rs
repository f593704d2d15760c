//! CreateListener, DescribeListeners, ModifyListener, DeleteListener, and the certificate list
//! of an HTTPS listener: AddListenerCertificates, RemoveListenerCertificates,
//! DescribeListenerCertificates. A listener keeps its default certificate first and the list
//! after it; the data plane serves them all, choosing by SNI.

use super::{
    check_new_tags, forwarded_target_groups, listener, load_balancer, new_id, page, touch,
};
use crate::acm::CertificateRecord;
use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::{self as wire, listeners as wl};
use berth_api::query::{Params, validation};
use berth_api::xml::Xml;
use berth_model::elbv2::arn;
use berth_model::elbv2::{Listener, Rule};

const MAX_LISTENERS: usize = 50;
/// Certificates in a listener's list, besides its default (ALB's quota).
const MAX_LISTED_CERTIFICATES: usize = 25;

/// The ACM certificates an HTTPS listener names, each of which must exist; returned so the
/// write can compare (and touch) them, which keeps them from being deleted under it.
fn certificates(
    db: &Db,
    ctx: &Ctx,
    arns: &[String],
) -> Result<Vec<Versioned<CertificateRecord>>, ApiError> {
    let mut out: Vec<Versioned<CertificateRecord>> = Vec::new();
    for arn in arns {
        if out.iter().any(|c| &c.value.arn == arn) {
            continue;
        }
        let found = crate::acm::find(db, ctx, arn)
            .ok_or_else(|| wire::certificate_not_found(format!("Certificate '{arn}' not found")))?;
        out.push(found);
    }
    Ok(out)
}

fn listeners_xml(items: &[Listener], next: Option<String>) -> String {
    let mut x = Xml::new();
    x.members("Listeners", items, wl::write)
        .opt("NextMarker", next);
    x.finish()
}

fn duplicate_port(port: u16) -> ApiError {
    wire::duplicate_listener(format!(
        "A listener already exists on port {port} of this load balancer"
    ))
}

pub async fn create(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wl::create(p)?;
    check_new_tags(&input.tags)?;
    let (id, default_rule_id) = (new_id(), new_id());
    let created = app
        .db
        .transact(|db| {
            let lb = load_balancer(db, ctx, "LoadBalancerArn", &input.load_balancer_arn)?;
            let siblings = db.list::<Listener>(&keys::listeners_of(&ctx.region, &lb.value.id));
            if siblings.iter().any(|l| l.value.port == input.port) {
                return Err(duplicate_port(input.port));
            }
            if siblings.len() >= MAX_LISTENERS {
                return Err(wire::too_many_listeners(format!(
                    "a load balancer can have at most {MAX_LISTENERS} listeners"
                )));
            }
            let groups =
                forwarded_target_groups(db, ctx, "DefaultActions", &input.default_actions)?;
            let certs = certificates(db, ctx, &input.certificates)?;
            let l = Listener {
                arn: arn::listener(&ctx.region, &ctx.account, &lb.value.name, &lb.value.id, &id),
                load_balancer_arn: lb.value.arn.clone(),
                id: id.clone(),
                port: input.port,
                protocol: input.protocol,
                certificates: input.certificates.clone(),
                ssl_policy: input.ssl_policy.clone(),
                default_actions: input.default_actions.clone(),
                default_rule_id: default_rule_id.clone(),
                tags: input.tags.clone(),
            };
            let key = keys::listener(&ctx.region, &lb.value.id, &id);
            let mut writes = touch(Writes::new(), &lb)
                .expect(&key, 0)
                .put(&key, l.clone());
            for g in &groups {
                writes = touch(writes, g);
            }
            for c in &certs {
                writes = touch(writes, c);
            }
            Ok((writes, l))
        })
        .await?;
    Ok(listeners_xml(&[created], None))
}

pub fn describe(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arns = p.strings("ListenerArns")?.unwrap_or_default();
    let found: Vec<Listener> = match (p.str("LoadBalancerArn"), arns.is_empty()) {
        (Some(_), false) => {
            return Err(validation("give LoadBalancerArn or ListenerArns, not both"));
        }
        (Some(lb_arn), true) => {
            let lb = load_balancer(&app.db, ctx, "LoadBalancerArn", lb_arn)?;
            let mut all: Vec<Listener> = app
                .db
                .list::<Listener>(&keys::listeners_of(&ctx.region, &lb.value.id))
                .into_iter()
                .map(|l| l.value)
                .collect();
            all.sort_by_key(|l| l.port);
            all
        }
        (None, false) => arns
            .iter()
            .map(|a| listener(&app.db, ctx, "ListenerArns", a).map(|l| l.value))
            .collect::<Result<_, _>>()?,
        (None, true) => {
            return Err(validation("give a LoadBalancerArn or ListenerArns"));
        }
    };
    let (items, next) = page(found, p)?;
    Ok(listeners_xml(&items, next))
}

pub async fn modify(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wl::modify(p)?;
    let updated = app
        .db
        .transact(|db| {
            let l = listener(db, ctx, "ListenerArn", &input.listener_arn)?;
            let lb = load_balancer(db, ctx, "LoadBalancerArn", &l.value.load_balancer_arn)?;
            let mut u = l.value.clone();
            if let Some(port) = input.port
                && port != u.port
            {
                let taken = db
                    .list::<Listener>(&keys::listeners_of(&ctx.region, &lb.value.id))
                    .iter()
                    .any(|o| o.value.id != u.id && o.value.port == port);
                if taken {
                    return Err(duplicate_port(port));
                }
                u.port = port;
            }
            if let Some(protocol) = input.protocol {
                u.protocol = protocol;
            }
            if let Some(certs) = &input.certificates {
                // A new default; the list stays.
                let listed: Vec<String> = u.certificates.iter().skip(1).cloned().collect();
                u.certificates = certs.iter().chain(&listed).cloned().collect();
            }
            if input.ssl_policy.is_some() {
                u.ssl_policy = input.ssl_policy.clone();
            }
            if u.protocol == berth_model::elbv2::Protocol::Http {
                u.ssl_policy = input.ssl_policy.clone();
                if input.certificates.is_none() {
                    u.certificates.clear();
                }
            }
            wl::check_tls(u.protocol, &u.certificates, &mut u.ssl_policy)?;
            let mut writes = touch(Writes::new(), &lb);
            for c in certificates(db, ctx, &u.certificates)? {
                writes = touch(writes, &c);
            }
            if let Some(actions) = &input.default_actions {
                for g in forwarded_target_groups(db, ctx, "DefaultActions", actions)? {
                    writes = touch(writes, &g);
                }
                u.default_actions = actions.clone();
            }
            Ok((writes.expect_unchanged(&l).put(&l.key, u.clone()), u))
        })
        .await?;
    Ok(listeners_xml(&[updated], None))
}

/// Deletes the listener and its rules.
pub async fn delete(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("ListenerArn")?;
    app.db
        .transact(|db| {
            let l = listener(db, ctx, "ListenerArn", arn)?;
            let mut writes = Writes::new().expect_unchanged(&l).delete(&l.key);
            for r in db.list::<Rule>(&keys::rules_of(&ctx.region, &l.value.id)) {
                writes = writes.expect_unchanged(&r).delete(&r.key);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}

/// The default certificate of `l` and each one in its list, flagged.
fn flagged(l: &Listener) -> Vec<(String, bool)> {
    l.certificates
        .iter()
        .enumerate()
        .map(|(i, arn)| (arn.clone(), i == 0))
        .collect()
}

fn not_https(l: &Listener) -> ApiError {
    validation(format!(
        "ListenerArn: listener '{}' is not an HTTPS listener",
        l.arn
    ))
}

/// Adds certificates to an HTTPS listener's list; one listed already is not added again.
pub async fn add_certificates(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wl::listener_certificates(p)?;
    let added = app
        .db
        .transact(|db| {
            let l = listener(db, ctx, "ListenerArn", &input.listener_arn)?;
            if l.value.certificates.is_empty() {
                return Err(not_https(&l.value));
            }
            let certs = certificates(db, ctx, &input.certificates)?;
            let mut u = l.value.clone();
            for arn in &input.certificates {
                if !u.certificates[1..].contains(arn) {
                    u.certificates.push(arn.clone());
                }
            }
            if u.certificates.len() - 1 > MAX_LISTED_CERTIFICATES {
                return Err(wire::too_many_certificates(format!(
                    "a listener can list at most {MAX_LISTED_CERTIFICATES} certificates besides \
                     its default"
                )));
            }
            let mut writes = Writes::new().expect_unchanged(&l).put(&l.key, u);
            for c in &certs {
                writes = touch(writes, c);
            }
            let added: Vec<(String, bool)> = input
                .certificates
                .iter()
                .map(|a| (a.clone(), false))
                .collect();
            Ok((writes, added))
        })
        .await?;
    Ok(wl::certificates_xml(&added, None))
}

/// Removes certificates from an HTTPS listener's list; the default cannot be removed.
pub async fn remove_certificates(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let input = wl::listener_certificates(p)?;
    app.db
        .transact(|db| {
            let l = listener(db, ctx, "ListenerArn", &input.listener_arn)?;
            let mut u = l.value.clone();
            if let Some(default) = u.certificates.first()
                && input.certificates.contains(default)
            {
                return Err(wire::operation_not_permitted(format!(
                    "certificate '{default}' is the listener's default and cannot be removed; \
                     change the default with ModifyListener first"
                )));
            }
            u.certificates.retain(|c| !input.certificates.contains(c));
            Ok((Writes::new().expect_unchanged(&l).put(&l.key, u), ()))
        })
        .await?;
    Ok(String::new())
}

pub fn describe_certificates(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let l = listener(&app.db, ctx, "ListenerArn", p.required("ListenerArn")?)?;
    let (items, next) = page(flagged(&l.value), p)?;
    Ok(wl::certificates_xml(&items, next))
}
