//! Which AWS service and operation a request is for.
//!
//! JSON-protocol services name themselves in `X-Amz-Target: PREFIX.Operation`; query-protocol
//! services (ELBv2 and friends, later) are told apart by `Action` and the SigV4 scope's service.

/// The AWS services Berth speaks, by JSON target prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecs,
    Ecr,
    /// AWS Certificate Manager: the certificates HTTPS listeners serve.
    Acm,
    /// AWS Secrets Manager: the secrets tasks receive as environment variables.
    SecretsManager,
    /// AWS Systems Manager Parameter Store: the parameters tasks receive too.
    Ssm,
    /// Elastic Load Balancing v2: query protocol, routed by [`route_query`].
    Elbv2,
}

impl Service {
    /// The `X-Amz-Target` prefix of a JSON 1.1 service (`None` for query services).
    pub fn target_prefix(self) -> Option<&'static str> {
        match self {
            Service::Ecs => Some("AmazonEC2ContainerServiceV20141113"),
            Service::Ecr => Some("AmazonEC2ContainerRegistry_V20150921"),
            Service::Acm => Some("CertificateManager"),
            Service::SecretsManager => Some("secretsmanager"),
            Service::Ssm => Some("AmazonSSM"),
            Service::Elbv2 => None,
        }
    }

    /// The SigV4 signing name the service's clients use.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Ecr => "ecr",
            Service::Acm => "acm",
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Elbv2 => "elasticloadbalancing",
        }
    }

    /// The JSON-protocol services.
    const ALL: [Service; 5] = [
        Service::Ecs,
        Service::Ecr,
        Service::Acm,
        Service::SecretsManager,
        Service::Ssm,
    ];
}

/// A request routed to a service operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service: Service,
    pub operation: String,
}

/// Routes a JSON-protocol request by its `X-Amz-Target` header value.
pub fn route(target: Option<&str>) -> Result<Route, crate::ApiError> {
    let target = target.ok_or_else(|| {
        crate::ApiError::unknown_operation(
            "request has no X-Amz-Target header naming the operation",
        )
    })?;
    let (prefix, operation) = target.split_once('.').ok_or_else(|| {
        crate::ApiError::unknown_operation(format!(
            "X-Amz-Target '{target}' is not of the form Service.Operation"
        ))
    })?;
    let service = Service::ALL
        .into_iter()
        .find(|s| s.target_prefix() == Some(prefix))
        .ok_or_else(|| {
            crate::ApiError::unknown_operation(format!(
                "no service is served under the target prefix '{prefix}'"
            ))
        })?;
    if operation.is_empty() {
        return Err(crate::ApiError::unknown_operation(
            "X-Amz-Target names no operation",
        ));
    }
    Ok(Route {
        service,
        operation: operation.to_string(),
    })
}

/// The API version of ELBv2's query protocol.
pub const ELBV2_VERSION: &str = "2015-12-01";

/// Routes a query-protocol request by its `Action` and `Version` parameters and, when it is
/// signed, the service of its SigV4 credential scope.
pub fn route_query(
    action: Option<&str>,
    version: Option<&str>,
    signing_service: Option<&str>,
) -> Result<Route, crate::ApiError> {
    if let Some(service) = signing_service
        && service != Service::Elbv2.signing_name()
    {
        return Err(crate::ApiError::new(
            "InvalidAction",
            400,
            format!("no query-protocol API is served for the signing service '{service}'"),
        ));
    }
    let action = action.filter(|a| !a.is_empty()).ok_or_else(|| {
        crate::ApiError::new("MissingAction", 400, "the request has no Action parameter")
    })?;
    match version {
        Some(ELBV2_VERSION) => {}
        Some(other) => {
            return Err(crate::ApiError::new(
                "InvalidAction",
                400,
                format!(
                    "Version '{other}' is not served (Elastic Load Balancing v2 is {ELBV2_VERSION})"
                ),
            ));
        }
        None => {
            return Err(crate::ApiError::new(
                "MissingParameter",
                400,
                "the request has no Version parameter",
            ));
        }
    }
    Ok(Route {
        service: Service::Elbv2,
        operation: action.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ecs_targets() {
        let r = route(Some("AmazonEC2ContainerServiceV20141113.ListClusters")).unwrap();
        assert_eq!(
            r,
            Route {
                service: Service::Ecs,
                operation: "ListClusters".into()
            }
        );
    }

    #[test]
    fn routes_ecr_targets() {
        let r = route(Some(
            "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
        ))
        .unwrap();
        assert_eq!(r.service, Service::Ecr);
        assert_eq!(r.operation, "CreateRepository");
    }

    #[test]
    fn routes_acm_targets() {
        let r = route(Some("CertificateManager.ImportCertificate")).unwrap();
        assert_eq!(r.service, Service::Acm);
        assert_eq!(r.operation, "ImportCertificate");
        assert_eq!(Service::Acm.signing_name(), "acm");
    }

    #[test]
    fn routes_ssm_targets() {
        let r = route(Some("AmazonSSM.GetParameters")).unwrap();
        assert_eq!(r.service, Service::Ssm);
        assert_eq!(r.operation, "GetParameters");
        assert_eq!(Service::Ssm.signing_name(), "ssm");
    }

    #[test]
    fn routes_secretsmanager_targets() {
        let r = route(Some("secretsmanager.GetSecretValue")).unwrap();
        assert_eq!(r.service, Service::SecretsManager);
        assert_eq!(r.operation, "GetSecretValue");
        assert_eq!(Service::SecretsManager.signing_name(), "secretsmanager");
    }

    #[test]
    fn refuses_missing_or_foreign_targets() {
        for bad in [
            None,
            Some("ListClusters"),
            Some("DynamoDB_20120810.ListTables"),
            Some("AmazonEC2ContainerServiceV20141113."),
        ] {
            let err = route(bad).unwrap_err();
            assert_eq!(err.code, "UnknownOperationException", "{bad:?}");
        }
    }

    #[test]
    fn routes_query_requests_by_action_version_and_scope() {
        let r = route_query(
            Some("CreateRule"),
            Some("2015-12-01"),
            Some("elasticloadbalancing"),
        )
        .unwrap();
        assert_eq!(r.service, Service::Elbv2);
        assert_eq!(r.operation, "CreateRule");
        assert!(route_query(Some("CreateRule"), Some("2015-12-01"), None).is_ok());
        for (action, version, scope, code) in [
            (None, Some("2015-12-01"), None, "MissingAction"),
            (Some("CreateRule"), None, None, "MissingParameter"),
            (
                Some("CreateRule"),
                Some("2012-06-01"),
                None,
                "InvalidAction",
            ),
            (
                Some("CreateRule"),
                Some("2015-12-01"),
                Some("sqs"),
                "InvalidAction",
            ),
        ] {
            assert_eq!(route_query(action, version, scope).unwrap_err().code, code);
        }
    }
}
