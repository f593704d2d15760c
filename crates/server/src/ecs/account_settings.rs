//! PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting, ListAccountSettings.
//!
//! A setting is stored per principal; the account's root principal (which
//! PutAccountSettingDefault writes for) is stored under the principal segment `default`. The
//! effective value for a principal is its own setting, else the account default, else ECS's
//! built-in default.

use super::paging::{after_key, page_size, paginate};
use crate::db::Writes;
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::account_settings::*;
use berth_model::common::{Setting, SettingName, SettingType};

/// Every setting name, in the order ECS lists them.
const ALL: [SettingName; 11] = [
    SettingName::ServiceLongArnFormat,
    SettingName::TaskLongArnFormat,
    SettingName::ContainerInstanceLongArnFormat,
    SettingName::AwsvpcTrunking,
    SettingName::ContainerInsights,
    SettingName::FargateFipsMode,
    SettingName::TagResourceAuthorization,
    SettingName::FargateTaskRetirementWaitPeriod,
    SettingName::GuardDutyActivate,
    SettingName::DefaultLogDriverMode,
    SettingName::FargateEventWindows,
];

pub fn name_str(name: SettingName) -> String {
    serde_json::to_value(name)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse_name(member: &str, name: &str) -> Result<SettingName, ApiError> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        let valid: Vec<String> = ALL.iter().map(|n| name_str(*n)).collect();
        ApiError::invalid_parameter(format!(
            "{member}: '{name}' is not a valid setting name; valid names are {}",
            valid.join(", ")
        ))
    })
}

/// ECS's own default for a setting.
pub fn builtin_default(name: SettingName) -> &'static str {
    match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat => "enabled",
        SettingName::AwsvpcTrunking
        | SettingName::ContainerInsights
        | SettingName::FargateFipsMode
        | SettingName::FargateEventWindows => "disabled",
        SettingName::TagResourceAuthorization => "on",
        SettingName::FargateTaskRetirementWaitPeriod => "7",
        SettingName::GuardDutyActivate => "off",
        SettingName::DefaultLogDriverMode => "non-blocking",
    }
}

fn allowed_values(name: SettingName) -> &'static [&'static str] {
    match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat
        | SettingName::AwsvpcTrunking
        | SettingName::FargateFipsMode
        | SettingName::FargateEventWindows => &["enabled", "disabled"],
        SettingName::ContainerInsights => &["enabled", "disabled", "enhanced"],
        SettingName::TagResourceAuthorization | SettingName::GuardDutyActivate => &["on", "off"],
        SettingName::FargateTaskRetirementWaitPeriod => &["0", "7", "14"],
        SettingName::DefaultLogDriverMode => &["blocking", "non-blocking"],
    }
}

fn check_value(name: SettingName, value: &str) -> Result<(), ApiError> {
    let allowed = allowed_values(name);
    if !allowed.contains(&value) {
        return Err(ApiError::invalid_parameter(format!(
            "value: '{value}' is not valid for {}; use one of {}",
            name_str(name),
            allowed.join(", ")
        )));
    }
    if name == SettingName::GuardDutyActivate {
        return Err(ApiError::invalid_parameter(
            "guardDutyActivate can only be changed through GuardDuty",
        ));
    }
    Ok(())
}

fn root_arn(ctx: &Ctx) -> String {
    format!("arn:aws:iam::{}:root", ctx.account)
}

/// The principal a request names (or the caller), checked to belong to this account.
fn principal(ctx: &Ctx, given: Option<&str>) -> Result<String, ApiError> {
    let Some(p) = given else {
        return Ok(ctx.principal.clone());
    };
    let ok = p.starts_with("arn:")
        && p.split(':').nth(4) == Some(ctx.account.as_str())
        && p.split(':').nth(2) == Some("iam")
        && p.len() <= 2048;
    if !ok {
        return Err(ApiError::invalid_parameter(format!(
            "principalArn: '{p}' is not an IAM user, role or root ARN of account {}",
            ctx.account
        )));
    }
    Ok(p.to_string())
}

/// The principal segment of a setting key: `default` for the account root, else the ARN with
/// `/` escaped so that one principal's prefix never covers another's.
fn principal_segment(ctx: &Ctx, principal: &str) -> String {
    if principal == root_arn(ctx) {
        "default".to_string()
    } else {
        principal.replace('%', "%25").replace('/', "%2F")
    }
}

fn setting_key(ctx: &Ctx, principal: &str, name: SettingName) -> String {
    keys::account_setting(
        &ctx.region,
        &principal_segment(ctx, principal),
        &name_str(name),
    )
}

/// The setting that applies to `principal` for `name`.
pub fn effective(app: &App, ctx: &Ctx, principal: &str, name: SettingName) -> Setting {
    if let Some(s) = app.db.get::<Setting>(&setting_key(ctx, principal, name)) {
        return s.value;
    }
    let root = root_arn(ctx);
    if let Some(s) = app.db.get::<Setting>(&setting_key(ctx, &root, name)) {
        let mut s = s.value;
        s.principal_arn = Some(principal.to_string());
        return s;
    }
    Setting {
        name: Some(name),
        value: Some(builtin_default(name).to_string()),
        principal_arn: Some(principal.to_string()),
        r#type: Some(SettingType::AwsManaged),
    }
}

async fn put_for(
    app: &App,
    ctx: &Ctx,
    principal: String,
    name: &str,
    value: &str,
) -> Result<Setting, ApiError> {
    let name = parse_name("name", name)?;
    check_value(name, value)?;
    if name == SettingName::FargateTaskRetirementWaitPeriod && principal != root_arn(ctx) {
        return Err(ApiError::invalid_parameter(
            "fargateTaskRetirementWaitPeriod can only be set for the root user",
        ));
    }
    let key = setting_key(ctx, &principal, name);
    let setting = Setting {
        name: Some(name),
        value: Some(value.to_string()),
        principal_arn: Some(principal),
        r#type: Some(SettingType::User),
    };
    let out = setting.clone();
    app.db
        .transact(|_| Ok((Writes::new().put(&key, setting.clone()), ())))
        .await?;
    Ok(out)
}

pub async fn put(
    app: App,
    ctx: Ctx,
    input: PutAccountSettingRequest,
) -> Result<SettingResponse, ApiError> {
    let principal = principal(&ctx, input.principal_arn.as_deref())?;
    let setting = put_for(&app, &ctx, principal, &input.name, &input.value).await?;
    Ok(SettingResponse { setting })
}

pub async fn put_default(
    app: App,
    ctx: Ctx,
    input: PutAccountSettingDefaultRequest,
) -> Result<SettingResponse, ApiError> {
    let root = root_arn(&ctx);
    let setting = put_for(&app, &ctx, root, &input.name, &input.value).await?;
    Ok(SettingResponse { setting })
}

pub async fn delete(
    app: App,
    ctx: Ctx,
    input: DeleteAccountSettingRequest,
) -> Result<SettingResponse, ApiError> {
    let principal = principal(&ctx, input.principal_arn.as_deref())?;
    let name = parse_name("name", &input.name)?;
    let key = setting_key(&ctx, &principal, name);
    let removed = app
        .db
        .transact(|db| {
            let current = db.get::<Setting>(&key);
            let writes = match &current {
                Some(c) => Writes::new().expect_unchanged(c).delete(&key),
                None => Writes::new(),
            };
            Ok((writes, current.map(|c| c.value)))
        })
        .await?;
    let setting = removed.unwrap_or_else(|| effective(&app, &ctx, &principal, name));
    Ok(SettingResponse { setting })
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListAccountSettingsRequest,
) -> Result<ListAccountSettingsResponse, ApiError> {
    let size = page_size(input.max_results, 10)?;
    let after = after_key(input.next_token.as_deref())?;
    let principal = principal(&ctx, input.principal_arn.as_deref())?;
    let name = input
        .name
        .as_deref()
        .map(|n| parse_name("name", n))
        .transpose()?;
    if input.value.is_some() && name.is_none() {
        return Err(ApiError::invalid_parameter(
            "value: give an account setting name to filter by value",
        ));
    }
    let names: Vec<SettingName> = match name {
        Some(n) => vec![n],
        None => ALL.to_vec(),
    };
    let mut found = Vec::new();
    for n in names {
        let setting = if input.effective_settings {
            Some(effective(&app, &ctx, &principal, n))
        } else {
            app.db
                .get::<Setting>(&setting_key(&ctx, &principal, n))
                .map(|s| s.value)
        };
        if let Some(s) = setting
            && input
                .value
                .as_ref()
                .is_none_or(|v| s.value.as_ref() == Some(v))
        {
            found.push((name_str(n), s));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate(found, after.as_deref(), size);
    Ok(ListAccountSettingsResponse {
        settings: page.items,
        next_token: page.next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(
            parse_name("name", "serviceLongArnFormat").unwrap(),
            SettingName::ServiceLongArnFormat
        );
        assert_eq!(
            parse_name("name", "fargateFIPSMode").unwrap(),
            SettingName::FargateFipsMode
        );
        assert!(parse_name("name", "bogus").is_err());
        assert!(check_value(SettingName::ContainerInsights, "enhanced").is_ok());
        assert!(check_value(SettingName::TaskLongArnFormat, "on").is_err());
        for n in ALL {
            assert!(allowed_values(n).contains(&builtin_default(n)));
        }
    }

    #[test]
    fn principals_are_escaped_in_keys() {
        let ctx = Ctx {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            principal: "arn:aws:iam::123456789012:root".into(),
            now: Default::default(),
        };
        assert_eq!(
            principal_segment(&ctx, "arn:aws:iam::123456789012:root"),
            "default"
        );
        assert_eq!(
            principal_segment(&ctx, "arn:aws:iam::123456789012:user/a/b"),
            "arn:aws:iam::123456789012:user%2Fa%2Fb"
        );
        assert!(principal(&ctx, Some("arn:aws:iam::999999999999:root")).is_err());
    }
}
