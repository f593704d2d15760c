//! Which instances may take a task at all, and why the others may not.
//!
//! An instance is checked in this order, and the first failing check is its reason: the agent is
//! connected (`AGENT`); it has every attribute the task definition requires (`ATTRIBUTE`); each
//! placement constraint holds, in the order given (`memberOf` expressions see the tasks the plan
//! has already put there; `distinctInstance` counts the instance's tasks of the same group,
//! planned or not); and the task's CPU, memory and static ports fit (`RESOURCE:…`).
//!
//! [`Rules`] answers only whether an instance passes, as [`Check::fault`] would, for one plan:
//! it splits the checks into those no placement can change and those it can, and evaluates each
//! `memberOf` expression once per distinct combination of the values it reads rather than once
//! per instance and task. [`Check::fault`] names the reason, only when a failure is reported.

use std::fmt;

use berth_model::common::Attribute;
use berth_model::container_instance::{ResourceShortfall, Resources};
use berth_model::placement::Constraint;
use berth_model::query::Expr;

use crate::candidate::{Candidate, Subject};
use crate::memo::Interner;

/// Why an instance cannot take a task, as ECS words it in RunTask's `failures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The instance's agent is disconnected.
    Agent,
    /// The instance lacks an attribute the task definition requires (or has another value).
    MissingAttribute { name: String, value: Option<String> },
    /// A `memberOf` expression (held here in canonical form) does not hold for the instance.
    MemberOf(String),
    /// `distinctInstance`: the instance already has a task of the group.
    DistinctInstance,
    /// Not enough CPU or memory left, or a static host port already taken.
    Resource(ResourceShortfall),
}

impl Reason {
    /// The failure `reason` ECS reports: `AGENT`, `ATTRIBUTE`,
    /// `MemberOf placement constraint unsatisfied.`,
    /// `DistinctInstance placement constraint unsatisfied.`, or `RESOURCE:CPU`,
    /// `RESOURCE:MEMORY`, `RESOURCE:PORTS`, `RESOURCE:PORTS_UDP`.
    pub fn code(&self) -> String {
        match self {
            Reason::Agent => "AGENT".into(),
            Reason::MissingAttribute { .. } => "ATTRIBUTE".into(),
            Reason::MemberOf(_) => "MemberOf placement constraint unsatisfied.".into(),
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.".into(),
            Reason::Resource(shortfall) => shortfall.reason(),
        }
    }
}

/// The failure's `detail`: what exactly was missing.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Agent => f.write_str("the container instance's agent is not connected"),
            Reason::MissingAttribute { name, value: None } => {
                write!(f, "the container instance lacks required attribute {name}")
            }
            Reason::MissingAttribute {
                name,
                value: Some(v),
            } => write!(
                f,
                "the container instance lacks required attribute {name} with value {v}"
            ),
            Reason::MemberOf(expression) => write!(f, "memberOf({expression}) does not hold"),
            Reason::DistinctInstance => {
                f.write_str("the container instance already runs a task of this group")
            }
            Reason::Resource(shortfall) => write!(f, "{shortfall}"),
        }
    }
}

/// Whether the instance has `required`: the attribute, and its value when one is required.
fn has_attribute(candidate: &Candidate, required: &Attribute) -> bool {
    match (candidate.attributes.get(&required.name), &required.value) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
    }
}

/// A failed check, borrowing what it names: cheap to make for every instance that cannot take
/// a task, turned into a [`Reason`] only when a failure is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault<'a> {
    Agent,
    MissingAttribute(&'a Attribute),
    MemberOf(&'a Expr),
    DistinctInstance,
    Resource(ResourceShortfall),
}

impl Fault<'_> {
    pub(crate) fn into_reason(self) -> Reason {
        match self {
            Fault::Agent => Reason::Agent,
            Fault::MissingAttribute(a) => Reason::MissingAttribute {
                name: a.name.clone(),
                value: a.value.clone(),
            },
            Fault::MemberOf(expr) => Reason::MemberOf(expr.to_string()),
            Fault::DistinctInstance => Reason::DistinctInstance,
            Fault::Resource(shortfall) => Reason::Resource(shortfall),
        }
    }
}

/// What the checks need to know beyond the candidate itself.
pub(crate) struct Check<'a> {
    pub demand: &'a Resources,
    pub required_attributes: &'a [Attribute],
    pub constraints: &'a [Constraint],
    pub group: &'a str,
}

/// Whether a constraint's verdict on an instance can change while a plan places tasks: only
/// `distinctInstance` and expressions that read `task:group` can.
fn is_static(constraint: &Constraint) -> bool {
    match constraint {
        Constraint::DistinctInstance => false,
        Constraint::MemberOf(expr) => !expr.subjects().contains(&"task:group"),
    }
}

impl Check<'_> {
    /// Whether `candidate`, with `remaining` resources, `in_group` tasks of the group (existing
    /// and planned) and `planned` of them from this plan, may take one more task.
    #[cfg(test)]
    pub(crate) fn run(
        &self,
        candidate: &Candidate,
        remaining: &Resources,
        in_group: usize,
        planned: usize,
    ) -> Result<(), Reason> {
        self.fault(candidate, remaining, in_group, planned)
            .map_err(Fault::into_reason)
    }

    /// Every check in order, stopping at the first that fails (the reason an instance is
    /// reported with).
    pub(crate) fn fault(
        &self,
        candidate: &Candidate,
        remaining: &Resources,
        in_group: usize,
        planned: usize,
    ) -> Result<(), Fault<'_>> {
        if !candidate.agent_connected {
            return Err(Fault::Agent);
        }
        if let Some(missing) = self
            .required_attributes
            .iter()
            .find(|a| !has_attribute(candidate, a))
        {
            return Err(Fault::MissingAttribute(missing));
        }
        let planned_group = (planned > 0).then_some(self.group);
        for constraint in self.constraints {
            match constraint {
                Constraint::DistinctInstance if in_group > 0 => {
                    return Err(Fault::DistinctInstance);
                }
                Constraint::DistinctInstance => {}
                Constraint::MemberOf(expr) => {
                    if !expr.evaluate_multi(&|s: &str| candidate.subject(s, planned_group)) {
                        return Err(Fault::MemberOf(expr));
                    }
                }
            }
        }
        remaining.fits(self.demand).map_err(Fault::Resource)
    }
}

/// One `memberOf` expression prepared for one plan: its subjects told apart once, and its
/// verdict kept for each distinct combination of their values on the instances it has seen.
struct MemberOf<'a> {
    expr: &'a Expr,
    /// Each subject the expression reads, as written and as told apart.
    subjects: Vec<(&'a str, Subject<'a>)>,
    /// Ids for the combinations of values: each subject's values then `None`.
    keys: Interner<Option<&'a str>>,
    /// The verdict for each id.
    verdicts: Vec<bool>,
    /// The key being looked up, kept to reuse its allocation.
    key: Vec<Option<&'a str>>,
}

impl<'a> MemberOf<'a> {
    fn new(expr: &'a Expr) -> Self {
        MemberOf {
            expr,
            subjects: expr
                .subjects()
                .into_iter()
                .map(|s| (s, Subject::parse(s)))
                .collect(),
            keys: Interner::new(),
            verdicts: Vec::new(),
            key: Vec::new(),
        }
    }

    /// Whether the expression holds on `candidate`, with the plan's tasks of group `planned`
    /// there if any (as [`Check::fault`] evaluates it).
    fn holds(&mut self, candidate: &'a Candidate, planned: Option<&'a str>) -> bool {
        let key = &mut self.key;
        key.clear();
        for &(_, subject) in &self.subjects {
            candidate.each_value(subject, planned, |v| key.push(Some(v)));
            key.push(None);
        }
        let (id, new) = self.keys.id(&self.key);
        if new {
            let verdict = self.expr.evaluate_multi(&|s: &str| self.values(s));
            self.verdicts.push(verdict);
        }
        self.verdicts[id]
    }

    /// The values of `subject` in the key being looked up.
    fn values(&self, subject: &str) -> Vec<String> {
        let Some(n) = self.subjects.iter().position(|(s, _)| *s == subject) else {
            return Vec::new();
        };
        self.key
            .split(Option::is_none)
            .nth(n)
            .unwrap_or_default()
            .iter()
            .flatten()
            .map(|v| v.to_string())
            .collect()
    }
}

/// A request's checks prepared for one plan: whether an instance passes them, as
/// [`Check::fault`] would say, split into what no placement can change and what it can.
pub(crate) struct Rules<'a> {
    group: &'a str,
    required_attributes: &'a [Attribute],
    distinct_instance: bool,
    /// The expressions that do not read `task:group`.
    fixed: Vec<MemberOf<'a>>,
    /// The expressions that do.
    moving: Vec<MemberOf<'a>>,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(check: &Check<'a>) -> Self {
        let (fixed, moving) = check
            .constraints
            .iter()
            .filter_map(|c| match c {
                Constraint::MemberOf(expr) => Some((is_static(c), MemberOf::new(expr))),
                Constraint::DistinctInstance => None,
            })
            .partition::<Vec<_>, _>(|(fixed, _)| *fixed);
        Rules {
            group: check.group,
            required_attributes: check.required_attributes,
            distinct_instance: check.constraints.contains(&Constraint::DistinctInstance),
            fixed: fixed.into_iter().map(|(_, m)| m).collect(),
            moving: moving.into_iter().map(|(_, m)| m).collect(),
        }
    }

    /// Whether `candidate` passes every check that no placement of this plan can change: the
    /// agent, required attributes and the expressions that do not read `task:group`.
    pub(crate) fn passes_static(&mut self, candidate: &'a Candidate) -> bool {
        candidate.agent_connected
            && self
                .required_attributes
                .iter()
                .all(|a| has_attribute(candidate, a))
            && self.fixed.iter_mut().all(|m| m.holds(candidate, None))
    }

    /// For a candidate that [`passes_static`](Self::passes_static): whether the constraints
    /// that placements change hold, with `in_group` tasks of the group there (existing and
    /// planned) and `planned` of them from this plan. Resources are not checked.
    pub(crate) fn passes_moving(
        &mut self,
        candidate: &'a Candidate,
        in_group: usize,
        planned: usize,
    ) -> bool {
        let planned_group = (planned > 0).then_some(self.group);
        !(self.distinct_instance && in_group > 0)
            && self
                .moving
                .iter_mut()
                .all(|m| m.holds(candidate, planned_group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::placement::PlacementConstraint;

    fn member_of(e: &str) -> Constraint {
        PlacementConstraint::member_of(e).check("c").unwrap()
    }

    #[test]
    fn checks_in_order_and_names_the_first_failure() {
        let demand = Resources::new(100, 100);
        let required = [Attribute::new("ecs.capability.task-eni", None)];
        let constraints = [
            member_of("attribute:ecs.os-type == linux"),
            Constraint::DistinctInstance,
        ];
        let check = Check {
            demand: &demand,
            required_attributes: &required,
            constraints: &constraints,
            group: "service:web",
        };
        let good = Candidate::new("a", Resources::new(100, 100))
            .with_attribute("ecs.capability.task-eni", None)
            .with_attribute("ecs.os-type", Some("linux"));
        assert_eq!(check.run(&good, &good.remaining, 0, 0), Ok(()));

        let mut offline = good.clone();
        offline.agent_connected = false;
        offline.attributes.clear();
        assert_eq!(
            check.run(&offline, &offline.remaining, 1, 0),
            Err(Reason::Agent)
        );

        let mut bare = good.clone();
        bare.attributes.remove("ecs.capability.task-eni");
        let e = check.run(&bare, &bare.remaining, 0, 0).unwrap_err();
        assert_eq!(e.code(), "ATTRIBUTE");
        assert_eq!(
            e.to_string(),
            "the container instance lacks required attribute ecs.capability.task-eni"
        );

        let windows = good.clone().with_attribute("ecs.os-type", Some("windows"));
        let e = check.run(&windows, &windows.remaining, 1, 0).unwrap_err();
        assert_eq!(e.code(), "MemberOf placement constraint unsatisfied.");
        assert_eq!(
            e.to_string(),
            "memberOf(attribute:ecs.os-type == linux) does not hold"
        );

        let e = check.run(&good, &good.remaining, 1, 0).unwrap_err();
        assert_eq!(e, Reason::DistinctInstance);
        assert_eq!(
            e.code(),
            "DistinctInstance placement constraint unsatisfied."
        );

        let e = check
            .run(&good, &Resources::new(100, 99), 0, 0)
            .unwrap_err();
        assert_eq!(e.code(), "RESOURCE:MEMORY");
        assert_eq!(e.to_string(), "needs 100 MiB of memory, 99 available");
    }

    #[test]
    fn required_attribute_values_must_match() {
        let demand = Resources::default();
        let required = [Attribute::new("stack", Some("prod".into()))];
        let check = Check {
            demand: &demand,
            required_attributes: &required,
            constraints: &[],
            group: "g",
        };
        let run = |c: Candidate| check.run(&c, &Resources::default(), 0, 0);
        let c = Candidate::new("a", Resources::default());
        assert!(run(c.clone().with_attribute("stack", Some("prod"))).is_ok());
        let e = run(c.clone().with_attribute("stack", Some("dev"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the container instance lacks required attribute stack with value prod"
        );
        assert!(run(c.clone().with_attribute("stack", None)).is_err());
        assert!(run(c).is_err());
    }

    #[test]
    fn member_of_sees_planned_tasks_of_the_group() {
        let demand = Resources::default();
        let constraints = [member_of("not(task:group == service:db)")];
        let check = Check {
            demand: &demand,
            required_attributes: &[],
            constraints: &constraints,
            group: "service:db",
        };
        let c = Candidate::new("a", Resources::default());
        assert!(check.run(&c, &c.remaining, 0, 0).is_ok());
        assert!(check.run(&c, &c.remaining, 1, 1).is_err());
        let busy = c.with_tasks("service:db", 1);
        assert!(check.run(&busy, &busy.remaining, 1, 0).is_err());
    }
}
