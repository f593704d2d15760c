//! Which AWS service and operation a request is for.
//!
//! JSON-protocol services name themselves in `X-Amz-Target: PREFIX.Operation`; query-protocol
//! services (ELBv2 and friends, later) are told apart by `Action` and the SigV4 scope's service.

/// The AWS services Berth speaks, by JSON target prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecs,
    Ecr,
}

impl Service {
    /// The `X-Amz-Target` prefix of a JSON 1.1 service.
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::Ecs => "AmazonEC2ContainerServiceV20141113",
            Service::Ecr => "AmazonEC2ContainerRegistry_V20150921",
        }
    }

    /// The SigV4 signing name the service's clients use.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Ecr => "ecr",
        }
    }

    const ALL: [Service; 2] = [Service::Ecs, Service::Ecr];
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
        .find(|s| s.target_prefix() == prefix)
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
}
