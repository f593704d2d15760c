//! The listings: GetParametersByPath (the parameters right in a path, or `Recursive`ly below
//! it; names without `/` sit at the root `/`), DescribeParameters (every parameter's current
//! metadata) and GetParameterHistory (a parameter's versions, oldest first), each narrowed by
//! [`super::filters`] where it takes them and paged by `MaxResults` (at most 10 by path, 50
//! otherwise, the maximum by default) and a `NextToken` naming the last key answered, so a page
//! never repeats or skips a parameter that stays put.

use super::filters::{Filters, Operation, in_path, normalize_path};
use super::{ParameterRecord, arn, lookup, metadata, parameter_out, value_of};
use crate::ecs::paging::after_key_or;
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ssm::{
    DescribeParametersRequest, DescribedParameter, GetParameterHistoryRequest,
    GetParametersByPathRequest, ParameterHistory, ParametersPage, check_levels, page_size,
};
use berth_api::{ApiError, json};

/// The key a `NextToken` continues after.
fn after_token(token: Option<&str>) -> Result<Option<String>, ApiError> {
    after_key_or(token, || {
        ApiError::ssm_invalid_next_token("NextToken: not a token a previous call returned")
    })
}

/// Up to `size` items that `item` makes of the region's parameters under `prefix`, in key
/// order after `after`, and the token for the rest.
fn page<T>(
    app: &App,
    prefix: &str,
    after: Option<&str>,
    size: usize,
    mut item: impl FnMut(&ParameterRecord) -> Option<Result<T, ApiError>>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    let mut failed = None;
    app.db
        .scan_after::<ParameterRecord>(prefix, after, |key, record| {
            let Some(made) = item(record) else {
                return true;
            };
            if items.len() == size {
                more = true;
                return false;
            }
            match made {
                Ok(made) => items.push(made),
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
            last_key = Some(key.to_owned());
            true
        });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((items, last_key.filter(|_| more).map(hex::encode)))
}

pub fn by_path(
    app: &App,
    ctx: &Ctx,
    input: GetParametersByPathRequest,
) -> Result<Vec<u8>, ApiError> {
    let path = normalize_path(&input.path)
        .map_err(|why| ApiError::ssm_validation(format!("Path: {why}")))?;
    check_levels(&path)?;
    let recursive = input.recursive.unwrap_or(false);
    let filters = Filters::parse(
        input.parameter_filters.as_deref().unwrap_or_default(),
        Operation::ByPath,
    )?;
    let size = page_size(input.max_results, 10)?;
    let after = after_token(input.next_token.as_deref())?;
    let decrypt = input.with_decryption.unwrap_or(false);
    let prefix = if path == "/" {
        keys::parameters(&ctx.region)
    } else {
        keys::parameter(&ctx.region, &format!("{path}/"))
    };
    let (parameters, next_token) = page(app, &prefix, after.as_deref(), size, |record| {
        if !in_path(&record.full_path(), &path, recursive) {
            return None;
        }
        let version = filters.select(record)?;
        Some(parameter_out(app, ctx, record, version, None, decrypt))
    })?;
    json::encode(&ParametersPage {
        parameters,
        next_token,
    })
}

pub fn describe(
    app: &App,
    ctx: &Ctx,
    input: DescribeParametersRequest,
) -> Result<Vec<u8>, ApiError> {
    let filters = match (&input.filters, &input.parameter_filters) {
        (Some(_), Some(_)) => {
            return Err(ApiError::ssm_validation(
                "Filters, ParameterFilters: use one or the other in a request, not both",
            ));
        }
        (Some(legacy), None) => Filters::legacy(legacy)?,
        (None, given) => Filters::parse(given.as_deref().unwrap_or_default(), Operation::Describe)?,
    };
    let size = page_size(input.max_results, 50)?;
    let after = after_token(input.next_token.as_deref())?;
    // Berth shares no parameters between accounts.
    let shared = input.shared == Some(true);
    let (parameters, next_token) = page(
        app,
        &keys::parameters(&ctx.region),
        after.as_deref(),
        size,
        |record| {
            let version = filters.select(record).filter(|_| !shared)?;
            Some(Ok(DescribedParameter {
                metadata: metadata(&record.name, version),
                arn: arn(ctx, &record.name),
            }))
        },
    )?;
    json::encode(&ParametersPage {
        parameters,
        next_token,
    })
}

pub fn history(
    app: &App,
    ctx: &Ctx,
    input: GetParameterHistoryRequest,
) -> Result<Vec<u8>, ApiError> {
    let size = page_size(input.max_results, 50)?;
    let after = after_token(input.next_token.as_deref())?;
    let record = lookup(&app.db, ctx, &input.name)?.value;
    let decrypt = input.with_decryption.unwrap_or(false);
    let versions = record
        .versions
        .iter()
        .map(|v| (format!("{:020}", v.version), v));
    let page = crate::ecs::paging::paginate(versions, after.as_deref(), size);
    let parameters = page
        .items
        .into_iter()
        .map(|v| {
            Ok(ParameterHistory {
                metadata: metadata(&record.name, v),
                value: value_of(app, ctx, &record.name, v, decrypt)?,
                labels: v.labels.clone(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    json::encode(&ParametersPage {
        parameters,
        next_token: page.next_token,
    })
}
