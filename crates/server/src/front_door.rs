//! The one HTTP port: AWS JSON 1.1 requests on `POST /`, routed by `X-Amz-Target`, and
//! query-protocol requests (form-encoded `POST /` or `GET /?Action=…`, ELBv2), routed by
//! `Action` and the SigV4 scope's service and answered in XML (the OCI registry under `/v2/`
//! has its own entry, [`crate::registry::serve`]).
//!
//! Order of checks for every API request: body size, routing, signature, then the handler.
//! Every failure leaves as the protocol's error shape; nothing here panics on input.

use crate::auth::{self, Caller};
use crate::{App, Ctx, acm, agent_api, ecr, ecs, elbv2, secretsmanager, ssm};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_api::{ApiError, Service};
use berth_model::agent_channel::JOIN_PATH;
use http_body_util::{BodyExt, Limited};

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const XML_CONTENT_TYPE: &str = "text/xml";

/// Whether a request speaks the query protocol: no JSON target, and a form body or a GET.
fn is_query(method: &Method, headers: &HeaderMap) -> bool {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    !headers.contains_key("x-amz-target") && (form || method == Method::GET)
}

pub async fn aws_api(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = crate::clock::new_id();
    let query = is_query(&method, &headers);
    let outcome = handle(&app, &method, &uri, &headers, body, query, &request_id).await;
    let (status, payload) = match outcome {
        Ok(payload) => (StatusCode::OK, payload),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(code = e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(code = e.code, message = %e.message, "request refused");
            }
            let body = if query {
                berth_api::xml::error(&e, berth_api::elbv2::NAMESPACE, &request_id)
            } else {
                e.json_body()
            };
            (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            )
        }
    };
    let mut response = (status, payload).into_response();
    let h = response.headers_mut();
    let content_type = if query {
        XML_CONTENT_TYPE
    } else {
        JSON_CONTENT_TYPE
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

async fn handle(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    query: bool,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let body = read_body(app, body).await?;
    let parts = berth_sigv4::RequestParts {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
        payload: berth_sigv4::Payload::Bytes(&body),
    };
    let mut form = berth_api::query::Form::default();
    let route = if query {
        form = berth_api::query::Form::parse(&body)?;
        form.extend(uri.query().unwrap_or(""))?;
        let scope = berth_sigv4::parse(&parts).ok();
        berth_api::route_query(
            form.root().str("Action"),
            form.root().str("Version"),
            scope.as_ref().map(|s| s.service()),
        )?
    } else {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        berth_api::route(target)?
    };
    let (caller, ctx) = authenticate(app, &parts).await?;
    match route.service {
        Service::Ecs => ecs::dispatch(app.clone(), ctx, &route.operation, &body).await,
        Service::Ecr => {
            let origin = ecr::Origin::new(app, headers, caller.access_key_id);
            ecr::dispatch(app.clone(), ctx, origin, &route.operation, &body).await
        }
        Service::Acm => acm::dispatch(app.clone(), ctx, &route.operation, &body).await,
        Service::SecretsManager => {
            secretsmanager::dispatch(app.clone(), ctx, &route.operation, &body).await
        }
        Service::Ssm => ssm::dispatch(app.clone(), ctx, &route.operation, &body).await,
        Service::Elbv2 => {
            elbv2::dispatch(app.clone(), ctx, &route.operation, &form, request_id).await
        }
    }
}

/// The request body, refused past the configured size.
async fn read_body(app: &App, body: Body) -> Result<Bytes, ApiError> {
    let limit = app.config.max_body_bytes;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::serialization(format!(
            "request body could not be read: {e}"
        ))),
    }
}

/// Checks the request's signature; the caller, and the context its handlers run in.
async fn authenticate(
    app: &App,
    parts: &berth_sigv4::RequestParts<'_>,
) -> Result<(Caller, Ctx), ApiError> {
    let caller: Caller = auth::authenticate(
        &app.db,
        app.config.auth,
        app.clock.as_ref(),
        &app.config.default_region,
        &app.config.account_id,
        parts,
    )
    .await?;
    let ctx = Ctx::new(app, caller.region.clone(), caller.principal_arn.clone());
    Ok((caller, ctx))
}

/// Anything that is not an API call, the registry or the console.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    let e = ApiError::unknown_operation(format!("nothing is served at {method} {}", uri.path()));
    let mut response = (StatusCode::NOT_FOUND, e.json_body()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// Berth's own APIs, for the load balancer data plane (`/_berth/lb/v1/…`, see
/// [`elbv2::data_plane`]) and for agents (`/_berth/agent/v1/…`, see [`agent_api`]): JSON in
/// and out, signed and authenticated like every AWS call.
pub async fn berth_call(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = async {
        let body = read_body(&app, body).await?;
        let parts = berth_sigv4::RequestParts {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: &headers,
            payload: berth_sigv4::Payload::Bytes(&body),
        };
        let path = uri.path();
        // The token in the body is the credential of a joining agent, which has no key yet.
        let ctx = if path == JOIN_PATH {
            Ctx::internal(&app, app.config.default_region.clone())
        } else {
            authenticate(&app, &parts).await?.1
        };
        if path.starts_with("/_berth/agent/") {
            agent_api::dispatch(&app, &ctx, path, &body).await
        } else {
            elbv2::data_plane::dispatch(&app, &ctx, path, &body).await
        }
    }
    .await;
    let (status, payload) = match outcome {
        Ok(payload) => (StatusCode::OK, payload),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.json_body(),
        ),
    };
    let mut response = (status, payload).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The JSON body of a call to one of Berth's own APIs (an empty body is `{}`).
pub(crate) fn decode_own<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("the request body is not valid: {e}")))
}

/// The JSON answer of a call to one of Berth's own APIs.
pub(crate) fn encode_own<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value)
        .map_err(|e| ApiError::server(format!("the answer does not serialize: {e}")))
}
