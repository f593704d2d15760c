//! Task placement strategies and constraints (CreateService, UpdateService, RunTask), and their
//! checked, typed forms for the scheduler.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::query::{self, Expr};
use crate::task_definition::TaskDefinitionPlacementConstraint;

/// At most this many placement strategies per service or RunTask call.
pub const MAX_PLACEMENT_STRATEGIES: usize = 5;
/// At most this many placement constraints per service or RunTask call (ECS counts the task
/// definition's constraints too; callers that merge them check the total).
pub const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
/// The longest `memberOf` expression ECS accepts.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// `PlacementStrategyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementStrategyType {
    Random,
    Spread,
    Binpack,
}

/// `PlacementStrategy`, as sent and as returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<PlacementStrategyType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// `PlacementConstraintType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlacementConstraintType {
    #[serde(rename = "distinctInstance")]
    DistinctInstance,
    #[serde(rename = "memberOf")]
    MemberOf,
}

/// `PlacementConstraint`, as sent and as returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<PlacementConstraintType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expression: Option<String>,
}

/// What `binpack` packs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// What `spread` spreads over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// `instanceId` or `host`.
    InstanceId,
    /// `attribute:NAME`, e.g. `attribute:ecs.availability-zone`; holds `NAME`.
    Attribute(String),
}

/// A checked placement strategy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Strategy {
    Random,
    Spread(SpreadField),
    Binpack(BinpackField),
}

/// A checked placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    DistinctInstance,
    MemberOf(Expr),
}

impl PlacementStrategy {
    pub fn random() -> Self {
        PlacementStrategy {
            r#type: Some(PlacementStrategyType::Random),
            field: None,
        }
    }
    pub fn spread(field: impl Into<String>) -> Self {
        PlacementStrategy {
            r#type: Some(PlacementStrategyType::Spread),
            field: Some(field.into()),
        }
    }
    pub fn binpack(field: impl Into<String>) -> Self {
        PlacementStrategy {
            r#type: Some(PlacementStrategyType::Binpack),
            field: Some(field.into()),
        }
    }

    /// Checks the type/field combination; `path` names the member, e.g. `placementStrategy[0]`.
    /// binpack takes `cpu` or `memory` (any case); spread takes `instanceId`, `host` or
    /// `attribute:NAME`; random takes no field.
    pub fn check(&self, path: &str) -> Result<Strategy, ValidationError> {
        let Some(kind) = self.r#type else {
            return Err(ValidationError::invalid(
                format!("{path}.type"),
                format!("{path}.type is required: one of random, spread, binpack"),
            ));
        };
        let field = self
            .field
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty());
        let field_path = format!("{path}.field");
        match kind {
            PlacementStrategyType::Random => match field {
                None => Ok(Strategy::Random),
                Some(f) => Err(ValidationError::invalid(
                    field_path,
                    format!("the random placement strategy takes no field, got '{f}'"),
                )),
            },
            PlacementStrategyType::Binpack => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Ok(Strategy::Binpack(BinpackField::Cpu)),
                Some("memory") => Ok(Strategy::Binpack(BinpackField::Memory)),
                _ => Err(ValidationError::invalid(
                    field_path,
                    format!(
                        "the binpack placement strategy field must be cpu or memory, got '{}'",
                        field.unwrap_or("")
                    ),
                )),
            },
            PlacementStrategyType::Spread => match field {
                Some(f)
                    if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
                {
                    Ok(Strategy::Spread(SpreadField::InstanceId))
                }
                Some(f) if f.starts_with("attribute:") && f.len() > "attribute:".len() => Ok(
                    Strategy::Spread(SpreadField::Attribute(f["attribute:".len()..].to_string())),
                ),
                _ => Err(ValidationError::invalid(
                    field_path,
                    format!(
                        "the spread placement strategy field must be instanceId, host or \
                         attribute:NAME, got '{}'",
                        field.unwrap_or("")
                    ),
                )),
            },
        }
    }
}

impl PlacementConstraint {
    pub fn distinct_instance() -> Self {
        PlacementConstraint {
            r#type: Some(PlacementConstraintType::DistinctInstance),
            expression: None,
        }
    }
    pub fn member_of(expression: impl Into<String>) -> Self {
        PlacementConstraint {
            r#type: Some(PlacementConstraintType::MemberOf),
            expression: Some(expression.into()),
        }
    }

    /// Checks the constraint; `path` names the member, e.g. `placementConstraints[1]`.
    /// distinctInstance takes no expression; memberOf needs one that parses (at most 2000
    /// characters).
    pub fn check(&self, path: &str) -> Result<Constraint, ValidationError> {
        let expression = self.expression.as_deref().filter(|e| !e.trim().is_empty());
        match self.r#type {
            None => Err(ValidationError::invalid(
                format!("{path}.type"),
                format!("{path}.type is required: one of distinctInstance, memberOf"),
            )),
            Some(PlacementConstraintType::DistinctInstance) => match expression {
                None => Ok(Constraint::DistinctInstance),
                Some(_) => Err(ValidationError::invalid(
                    format!("{path}.expression"),
                    "the distinctInstance placement constraint takes no expression",
                )),
            },
            Some(PlacementConstraintType::MemberOf) => {
                let Some(e) = expression else {
                    return Err(ValidationError::invalid(
                        format!("{path}.expression"),
                        "the memberOf placement constraint requires an expression",
                    ));
                };
                if e.chars().count() > MAX_EXPRESSION_LEN {
                    return Err(ValidationError::invalid(
                        format!("{path}.expression"),
                        format!("expression must be at most {MAX_EXPRESSION_LEN} characters"),
                    ));
                }
                let expr = query::parse(e).map_err(|err| {
                    ValidationError::invalid(
                        format!("{path}.expression"),
                        format!("{path}.expression: {err}"),
                    )
                })?;
                Ok(Constraint::MemberOf(expr))
            }
        }
    }
}

/// Checks a `placementStrategy` list (at most 5) and returns the typed strategies.
/// `field` is the member name, `placementStrategy`.
pub fn check_strategies(
    field: &str,
    strategies: &[PlacementStrategy],
) -> Result<Vec<Strategy>, ValidationError> {
    if strategies.len() > MAX_PLACEMENT_STRATEGIES {
        return Err(ValidationError::invalid(
            field,
            format!(
                "{field} has {} strategies: at most {MAX_PLACEMENT_STRATEGIES} are allowed",
                strategies.len()
            ),
        ));
    }
    strategies
        .iter()
        .enumerate()
        .map(|(i, s)| s.check(&format!("{field}[{i}]")))
        .collect()
}

/// Checks a `placementConstraints` list (at most 10) and returns the typed constraints.
/// `field` is the member name, `placementConstraints`.
pub fn check_constraints(
    field: &str,
    constraints: &[PlacementConstraint],
) -> Result<Vec<Constraint>, ValidationError> {
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(ValidationError::invalid(
            field,
            format!(
                "{field} has {} constraints: at most {MAX_PLACEMENT_CONSTRAINTS} are allowed",
                constraints.len()
            ),
        ));
    }
    constraints
        .iter()
        .enumerate()
        .map(|(i, c)| c.check(&format!("{field}[{i}]")))
        .collect()
}

/// Checks a task definition's `placementConstraints` when a task of it is placed, and returns
/// them typed. They count toward the limit of 10 together with the `requested` constraints of
/// the call (RunTask, CreateService), as ECS counts them; a bad expression names
/// `taskDefinition.placementConstraints[i]`.
pub fn check_task_definition_constraints(
    requested: usize,
    constraints: &[TaskDefinitionPlacementConstraint],
) -> Result<Vec<Constraint>, ValidationError> {
    let total = requested + constraints.len();
    if total > MAX_PLACEMENT_CONSTRAINTS {
        return Err(ValidationError::invalid(
            "placementConstraints",
            format!(
                "placementConstraints has {requested} constraints and the task definition has {}: \
                 at most {MAX_PLACEMENT_CONSTRAINTS} are allowed together",
                constraints.len()
            ),
        ));
    }
    constraints
        .iter()
        .enumerate()
        .map(|(i, c)| {
            PlacementConstraint {
                r#type: c.r#type.map(|_| PlacementConstraintType::MemberOf),
                expression: c.expression.clone(),
            }
            .check(&format!("taskDefinition.placementConstraints[{i}]"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shapes() {
        let s: Vec<PlacementStrategy> = serde_json::from_value(json!([
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "binpack", "field": "memory"},
            {"type": "random"}
        ]))
        .unwrap();
        assert_eq!(s[2], PlacementStrategy::random());
        assert_eq!(
            serde_json::to_value(&s[1]).unwrap(),
            json!({"type": "binpack", "field": "memory"})
        );
        let c: PlacementConstraint =
            serde_json::from_value(json!({"type": "memberOf", "expression": "attribute:a exists"}))
                .unwrap();
        assert_eq!(c, PlacementConstraint::member_of("attribute:a exists"));
        assert_eq!(
            serde_json::to_value(PlacementConstraint::distinct_instance()).unwrap(),
            json!({"type": "distinctInstance"})
        );
    }

    #[test]
    fn strategy_table() {
        use PlacementStrategyType::*;
        let s = |t: Option<PlacementStrategyType>, f: Option<&str>| PlacementStrategy {
            r#type: t,
            field: f.map(String::from),
        };
        let ok: Vec<(PlacementStrategy, Strategy)> = vec![
            (s(Some(Random), None), Strategy::Random),
            (s(Some(Random), Some("")), Strategy::Random),
            (
                s(Some(Binpack), Some("cpu")),
                Strategy::Binpack(BinpackField::Cpu),
            ),
            (
                s(Some(Binpack), Some("MEMORY")),
                Strategy::Binpack(BinpackField::Memory),
            ),
            (
                s(Some(Spread), Some("instanceId")),
                Strategy::Spread(SpreadField::InstanceId),
            ),
            (
                s(Some(Spread), Some("host")),
                Strategy::Spread(SpreadField::InstanceId),
            ),
            (
                s(Some(Spread), Some("attribute:ecs.availability-zone")),
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            ),
        ];
        for (input, want) in ok {
            assert_eq!(
                input.check("placementStrategy[0]").unwrap(),
                want,
                "{input:?}"
            );
        }
        let bad = [
            (s(None, None), "placementStrategy[0].type"),
            (s(Some(Random), Some("cpu")), "placementStrategy[0].field"),
            (s(Some(Binpack), None), "placementStrategy[0].field"),
            (
                s(Some(Binpack), Some("instanceId")),
                "placementStrategy[0].field",
            ),
            (s(Some(Spread), None), "placementStrategy[0].field"),
            (s(Some(Spread), Some("cpu")), "placementStrategy[0].field"),
            (
                s(Some(Spread), Some("attribute:")),
                "placementStrategy[0].field",
            ),
        ];
        for (input, field) in bad {
            assert_eq!(
                input.check("placementStrategy[0]").unwrap_err().field,
                field,
                "{input:?}"
            );
        }
        let six = vec![PlacementStrategy::random(); 6];
        assert_eq!(
            check_strategies("placementStrategy", &six)
                .unwrap_err()
                .field,
            "placementStrategy"
        );
        let e = check_strategies(
            "placementStrategy",
            &[
                PlacementStrategy::random(),
                PlacementStrategy::binpack("disk"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.field, "placementStrategy[1].field");
    }

    #[test]
    fn constraint_table() {
        assert_eq!(
            PlacementConstraint::distinct_instance()
                .check("c[0]")
                .unwrap(),
            Constraint::DistinctInstance
        );
        let m = PlacementConstraint::member_of("attribute:ecs.instance-type =~ t2.*")
            .check("c[0]")
            .unwrap();
        assert!(matches!(m, Constraint::MemberOf(_)));
        let e = PlacementConstraint {
            r#type: Some(PlacementConstraintType::DistinctInstance),
            expression: Some("a exists".into()),
        }
        .check("placementConstraints[0]")
        .unwrap_err();
        assert_eq!(e.field, "placementConstraints[0].expression");
        let e = PlacementConstraint {
            r#type: Some(PlacementConstraintType::MemberOf),
            expression: None,
        }
        .check("placementConstraints[0]")
        .unwrap_err();
        assert_eq!(e.field, "placementConstraints[0].expression");
        let e = PlacementConstraint::member_of("attribute:x foo")
            .check("placementConstraints[2]")
            .unwrap_err();
        assert_eq!(e.field, "placementConstraints[2].expression");
        assert!(
            e.message.contains("unexpected token 'foo' at position 12"),
            "{}",
            e.message
        );
        let long = format!("attribute:x == {}", "a".repeat(2000));
        assert!(PlacementConstraint::member_of(long).check("c").is_err());
        let eleven = vec![PlacementConstraint::distinct_instance(); 11];
        assert_eq!(
            check_constraints("placementConstraints", &eleven)
                .unwrap_err()
                .field,
            "placementConstraints"
        );
    }

    #[test]
    fn task_definition_constraints_count_with_the_request() {
        use crate::task_definition::TaskDefinitionPlacementConstraintType;
        let td = |e: &str| TaskDefinitionPlacementConstraint {
            r#type: Some(TaskDefinitionPlacementConstraintType::MemberOf),
            expression: Some(e.into()),
        };
        let ok =
            check_task_definition_constraints(9, &[td("attribute:ecs.os-type == linux")]).unwrap();
        assert!(matches!(&ok[..], [Constraint::MemberOf(_)]));
        let e =
            check_task_definition_constraints(9, &[td("a exists"), td("b exists")]).unwrap_err();
        assert_eq!(e.field, "placementConstraints");
        let e = check_task_definition_constraints(0, &[td("a exists"), td("attribute:x ==")])
            .unwrap_err();
        assert_eq!(e.field, "taskDefinition.placementConstraints[1].expression");
    }
}
