//! The image registry: the OCI Distribution API under `/v2/` on the server's one port, for the
//! docker CLI and other OCI clients. The ECR API (`crate::ecr`) manages the same repositories.
//!
//! Every request needs HTTP Basic credentials `AWS:<token>` with a token from ECR's
//! GetAuthorizationToken ([`auth`]), which also names the region whose repositories the
//! request sees; only `--auth off` lets anonymous requests in. Blob bytes go through the
//! [`blobs::BlobStore`]; metadata (repositories, manifests, tags, which blobs a repository
//! holds, uploads in progress) lives in the store ([`meta`], keys in `crate::records`).
//! [`referrers`] answers OCI 1.1's referrers API from the `subject` recorded with each
//! manifest.
//!
//! A background sweep ([`run_sweeper`]) applies the repositories' [`lifecycle`] policies and
//! then collects garbage ([`gc`]): blobs no manifest references and abandoned uploads.

pub mod auth;
mod blob_api;
#[cfg(test)]
mod blob_conformance;
pub mod blobs;
mod errors;
pub mod gc;
pub mod images;
pub mod lifecycle;
mod manifests;
pub mod meta;
pub mod object_blobs;
mod referrers;
mod uploads;

use crate::App;
use crate::config::AuthMode;
use crate::records::keys;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_api::ecr::is_valid_repository_name;
use berth_model::Timestamp;
use errors::OciError;
use meta::RepositoryRecord;

/// One authorised request to a repository.
struct Req<'a> {
    app: &'a App,
    region: String,
    now: Timestamp,
    name: String,
}

/// What a `/v2/` path addresses. Names may contain `/`; the last segment never does.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Base,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
    Referrers(String, String),
}

fn endpoint(path: &str) -> Option<Endpoint> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Endpoint::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Endpoint::Tags(name.to_string()));
    }
    let (head, last) = rest.rsplit_once('/')?;
    let last = last.to_string();
    if let Some(name) = head.strip_suffix("/manifests") {
        return Some(Endpoint::Manifest(name.to_string(), last));
    }
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(if last.is_empty() {
            Endpoint::Uploads(name.to_string())
        } else {
            Endpoint::Upload(name.to_string(), last)
        });
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        return Some(if last == "uploads" {
            Endpoint::Uploads(name.to_string())
        } else {
            Endpoint::Blob(name.to_string(), last)
        });
    }
    if let Some(name) = head.strip_suffix("/referrers") {
        return Some(Endpoint::Referrers(name.to_string(), last));
    }
    None
}

/// A query parameter, percent-decoded.
fn query(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// A response with headers and a body.
fn respond(status: StatusCode, headers: Vec<(&'static str, String)>, body: Body) -> Response {
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// The region a request may see: the one its token was issued for.
fn authorize(app: &App, headers: &HeaderMap, now: Timestamp) -> Result<String, OciError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth::verify_basic(&app.db, authorization, now) {
        Ok(grant) => Ok(grant.region),
        Err(_) if app.config.auth == AuthMode::Off => Ok(app.config.default_region.clone()),
        Err(refusal) => Err(OciError::unauthorized(refusal.to_string())),
    }
}

/// Every request under `/v2`.
pub async fn serve(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut response = match handle(&app, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

async fn handle(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    let now = app.clock.now();
    let region = authorize(app, headers, now)?;
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .map_err(|_| OciError::name_invalid("the path is not UTF-8"))?;
    let endpoint = endpoint(&path)
        .ok_or_else(|| OciError::unsupported(format!("nothing is served at {path}")))?;
    let name = match &endpoint {
        Endpoint::Base => {
            return match *method {
                Method::GET | Method::HEAD => Ok(respond(
                    StatusCode::OK,
                    vec![("content-type", "application/json".into())],
                    Body::from("{}"),
                )),
                _ => Err(OciError::unsupported(format!(
                    "{method} /v2/ is not supported"
                ))),
            };
        }
        Endpoint::Tags(n)
        | Endpoint::Manifest(n, _)
        | Endpoint::Blob(n, _)
        | Endpoint::Uploads(n)
        | Endpoint::Upload(n, _)
        | Endpoint::Referrers(n, _) => n.clone(),
    };
    if !is_valid_repository_name(&name) {
        return Err(
            OciError::name_invalid(format!("'{name}' is not a valid repository name"))
                .with_detail(serde_json::json!({ "name": name })),
        );
    }
    if app
        .db
        .get::<RepositoryRecord>(&keys::repository(&region, &name))
        .is_none()
    {
        return Err(OciError::name_unknown(format!(
            "the repository with name '{name}' does not exist in the registry with id '{}'",
            app.config.account_id
        ))
        .with_detail(serde_json::json!({ "name": name })));
    }
    let r = Req {
        app,
        region,
        now,
        name,
    };
    let head = *method == Method::HEAD;
    match (endpoint, method.clone()) {
        (Endpoint::Tags(_), Method::GET) => manifests::tags_list(&r, uri),
        (Endpoint::Manifest(_, reference), Method::GET | Method::HEAD) => {
            manifests::get(&r, &reference, head)
        }
        (Endpoint::Manifest(_, reference), Method::PUT) => {
            manifests::put(&r, &reference, headers, body).await
        }
        (Endpoint::Manifest(_, reference), Method::DELETE) => {
            manifests::delete(&r, &reference).await
        }
        (Endpoint::Blob(_, digest), Method::GET | Method::HEAD) => {
            blob_api::get(&r, &digest, headers, head).await
        }
        (Endpoint::Blob(_, digest), Method::DELETE) => blob_api::delete(&r, &digest).await,
        (Endpoint::Uploads(_), Method::POST) => uploads::start(&r, uri, body).await,
        (Endpoint::Upload(_, id), Method::PATCH) => uploads::patch(&r, &id, headers, body).await,
        (Endpoint::Upload(_, id), Method::PUT) => uploads::finish(&r, &id, uri, body).await,
        (Endpoint::Upload(_, id), Method::GET) => uploads::status(&r, &id).await,
        (Endpoint::Upload(_, id), Method::DELETE) => uploads::cancel(&r, &id).await,
        (Endpoint::Referrers(_, digest), Method::GET) => referrers::list(&r, &digest, uri),
        (_, method) => Err(OciError::unsupported(format!(
            "{method} is not supported on {path}"
        ))),
    }
}

/// Applies lifecycle policies and then collects garbage, every
/// `config.registry_sweep.interval`, until the task is dropped.
pub async fn run_sweeper(app: App) {
    let sweep = app.config.registry_sweep.clone();
    crate::background::every(sweep.interval, || async {
        let now = app.clock.now();
        match lifecycle::apply_lifecycle_policies(&app, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(images = n, "lifecycle policies expired images"),
            Err(e) => tracing::warn!(error = %e, "could not apply lifecycle policies"),
        }
        match gc::collect_garbage(&app, now, &sweep).await {
            Ok(report) if report.is_empty() => {}
            Ok(report) => tracing::info!(?report, "registry garbage collected"),
            Err(e) => tracing::warn!(error = %e, "could not collect registry garbage"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_endpoint() {
        let e = |p| endpoint(p);
        assert_eq!(e("/v2/"), Some(Endpoint::Base));
        assert_eq!(e("/v2"), Some(Endpoint::Base));
        assert_eq!(e("/v2/a/b/tags/list"), Some(Endpoint::Tags("a/b".into())));
        assert_eq!(
            e("/v2/a/manifests/latest"),
            Some(Endpoint::Manifest("a".into(), "latest".into()))
        );
        assert_eq!(
            e("/v2/x/blobs/manifests/v1"),
            Some(Endpoint::Manifest("x/blobs".into(), "v1".into()))
        );
        assert_eq!(
            e("/v2/a/b/blobs/sha256:00"),
            Some(Endpoint::Blob("a/b".into(), "sha256:00".into()))
        );
        assert_eq!(
            e("/v2/a/blobs/uploads/"),
            Some(Endpoint::Uploads("a".into()))
        );
        assert_eq!(
            e("/v2/a/blobs/uploads"),
            Some(Endpoint::Uploads("a".into()))
        );
        assert_eq!(
            e("/v2/a/blobs/uploads/u1"),
            Some(Endpoint::Upload("a".into(), "u1".into()))
        );
        assert_eq!(
            e("/v2/a/b/referrers/sha256:00"),
            Some(Endpoint::Referrers("a/b".into(), "sha256:00".into()))
        );
        assert_eq!(
            e("/v2/x/referrers/manifests/v1"),
            Some(Endpoint::Manifest("x/referrers".into(), "v1".into()))
        );
        assert_eq!(e("/v2/a/other/x"), None);
        assert_eq!(e("/v3/a"), None);
    }

    #[test]
    fn query_parameters_are_decoded() {
        let uri: Uri = "/v2/a/blobs/uploads/?mount=sha256%3Aab&from=team%2Fapp"
            .parse()
            .unwrap();
        assert_eq!(query(&uri, "mount").as_deref(), Some("sha256:ab"));
        assert_eq!(query(&uri, "from").as_deref(), Some("team/app"));
        assert_eq!(query(&uri, "digest"), None);
    }
}
