//! Test only: placement done the plain way the crate's docs describe it — for every task, every
//! check on every candidate ([`Check::fault`]), the spread counts counted afresh, and each
//! strategy applied in turn ([`narrow`]) — and a property test that [`place`] and [`place_on`]
//! give exactly its plans on random small clusters.

use std::collections::BTreeMap;

use berth_model::common::Attribute;
use berth_model::container_instance::Resources;
use berth_model::placement::{
    BinpackField, Constraint, PlacementConstraint, SpreadField, Strategy as Rule,
};
use proptest::prelude::*;

use crate::rng::Rng;
use crate::strategy::{Standing, narrow};
use crate::{Candidate, Plan, Rejection, Request, SpreadCount, Unplaced, place, place_on};
use std::borrow::Cow;

/// The state of one plan, placed the plain way.
struct Reference<'a> {
    candidates: &'a [Candidate],
    request: &'a Request,
    remaining: Vec<Cow<'a, Resources>>,
    in_group: Vec<usize>,
    planned: Vec<usize>,
    rng: Rng,
    placements: Vec<Result<usize, crate::Unplaced>>,
}

impl<'a> Reference<'a> {
    fn new(candidates: &'a [Candidate], request: &'a Request) -> Self {
        Reference {
            candidates,
            request,
            remaining: candidates
                .iter()
                .map(|c| Cow::Borrowed(&c.remaining))
                .collect(),
            in_group: candidates
                .iter()
                .map(|c| c.tasks_in(&request.group))
                .collect(),
            planned: vec![0; candidates.len()],
            rng: Rng::new(request.seed),
            placements: Vec::new(),
        }
    }

    /// The group's tasks per value of each spread attribute, counted from scratch: a value's
    /// slot is the first candidate that has it.
    fn spread_counts(&self) -> Vec<SpreadCount> {
        let value = |name: &str, i: usize| self.candidates[i].attribute(name);
        let names = self.request.strategies.iter().filter_map(|s| match s {
            Rule::Spread(SpreadField::Attribute(name)) => Some(name.clone()),
            _ => None,
        });
        names
            .map(|name| {
                let n = self.candidates.len();
                let slot_of: Vec<usize> = (0..n)
                    .map(|i| {
                        (0..n)
                            .find(|&j| value(&name, j) == value(&name, i))
                            .unwrap()
                    })
                    .collect();
                let mut tasks = vec![0; n];
                for (i, &slot) in slot_of.iter().enumerate() {
                    tasks[slot] += self.in_group[i];
                }
                SpreadCount {
                    name,
                    slot_of,
                    tasks,
                }
            })
            .collect()
    }

    fn place_one(&mut self, considered: Vec<usize>) {
        let check = self.request.check();
        let fault = |i: usize| {
            check.fault(
                &self.candidates[i],
                &self.remaining[i],
                self.in_group[i],
                self.planned[i],
            )
        };
        let mut fit: Vec<usize> = considered
            .iter()
            .copied()
            .filter(|&i| fault(i).is_ok())
            .collect();
        if fit.is_empty() {
            let rejections = considered
                .into_iter()
                .filter_map(|i| {
                    let reason = fault(i).err()?.into_reason();
                    Some(Rejection {
                        candidate: i,
                        reason,
                    })
                })
                .collect();
            self.placements.push(Err(Unplaced { rejections }));
            return;
        }
        let spread_counts = self.spread_counts();
        let standing = Standing {
            remaining: &self.remaining,
            in_group: &self.in_group,
            spread_counts: &spread_counts,
        };
        for strategy in &self.request.strategies {
            if fit.len() == 1 {
                break;
            }
            fit = narrow(strategy, fit, &standing, &mut self.rng);
        }
        let chosen = fit[self.rng.below(fit.len())];
        self.remaining[chosen]
            .to_mut()
            .subtract(&self.request.demand);
        self.in_group[chosen] += 1;
        self.planned[chosen] += 1;
        self.placements.push(Ok(chosen));
    }

    fn finish(self) -> Plan {
        Plan {
            placements: self.placements,
            remaining: crate::taken(self.remaining),
        }
    }
}

fn reference_place(candidates: &[Candidate], request: &Request, count: usize) -> Plan {
    let mut plan = Reference::new(candidates, request);
    for _ in 0..count {
        plan.place_one((0..candidates.len()).collect());
    }
    plan.finish()
}

fn reference_place_on(candidates: &[Candidate], request: &Request, targets: &[usize]) -> Plan {
    let mut plan = Reference::new(candidates, request);
    for &target in targets {
        plan.place_one(vec![target]);
    }
    plan.finish()
}

const GROUPS: [&str; 3] = ["service:web", "family:other", "service:db"];
const AZ: &str = "ecs.availability-zone";

fn ports(choices: &'static [u16]) -> impl Strategy<Value = Vec<u16>> {
    proptest::sample::subsequence(choices, 0..=choices.len())
}

/// An instance with a few of each kind of subject, the attribute `rack` taking more values
/// than are compared directly when interned.
fn candidate() -> impl Strategy<Value = Candidate> {
    let attributes = (
        proptest::option::of(proptest::sample::select(&["z1", "z2", "z3"][..])),
        proptest::option::of(proptest::sample::select(
            &["t2.micro", "t2.large", "m5.large"][..],
        )),
        proptest::option::of(0u8..12),
        any::<bool>(),
    );
    let rest = (
        (0i64..2048, 0i64..2048, ports(&[22, 80]), ports(&[53])),
        proptest::collection::vec(0usize..3, 3),
        proptest::bool::weighted(0.9),
        proptest::option::of(0u8..4),
        0u8..5,
    );
    (attributes, rest).prop_map(
        |((zone, kind, rack, flag), (resources, tasks, connected, ec2, running))| {
            let (cpu, mem, tcp, udp) = resources;
            let mut c = Candidate::new("", Resources::new(cpu, mem).with_ports(tcp, udp));
            let rack = rack.map(|r| format!("r{r}"));
            for (name, value) in [
                (AZ, zone),
                ("ecs.instance-type", kind),
                ("rack", rack.as_deref()),
            ] {
                if let Some(v) = value {
                    c = c.with_attribute(name, Some(v));
                }
            }
            if flag {
                c = c.with_attribute("flag", None);
            }
            for (group, n) in GROUPS.iter().zip(tasks) {
                c = c.with_tasks(group, n);
            }
            c.agent_connected = connected;
            c.ec2_instance_id = ec2.map(|n| format!("i-{n}"));
            c.properties = BTreeMap::from([("runningTasksCount".into(), running.to_string())]);
            c
        },
    )
}

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(candidate(), 0..20).prop_map(|mut cs| {
        for (i, c) in cs.iter_mut().enumerate() {
            c.id = format!("ci-{i}");
        }
        cs
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        Just(Rule::Random),
        Just(Rule::Binpack(BinpackField::Cpu)),
        Just(Rule::Binpack(BinpackField::Memory)),
        Just(Rule::Spread(SpreadField::InstanceId)),
        Just(Rule::Spread(SpreadField::Attribute(AZ.into()))),
        Just(Rule::Spread(SpreadField::Attribute("rack".into()))),
        Just(Rule::Spread(SpreadField::Attribute("missing".into()))),
    ]
}

fn constraint() -> impl Strategy<Value = Constraint> {
    const EXPRESSIONS: [&str; 10] = [
        "attribute:ecs.availability-zone in [z1, z2]",
        "attribute:ecs.availability-zone exists",
        "attribute:ecs.instance-type =~ t2.*",
        "attribute:rack in [r1, r2, r3, r4, r5, r6, r7, r8, r9] or attribute:flag exists",
        "not(task:group == service:web)",
        "task:group == family:other",
        "task:group != service:db and attribute:rack != r1",
        "attribute:ecs.availability-zone == z1 or task:group == service:web",
        "ec2InstanceId != i-2 and instanceId != ci-3",
        "runningTasksCount > 2 or agentConnected == false",
    ];
    prop_oneof![
        Just(Constraint::DistinctInstance),
        proptest::sample::select(&EXPRESSIONS[..])
            .prop_map(|e| PlacementConstraint::member_of(e).check("c").unwrap()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let demand = (0i64..512, 0i64..512, ports(&[80]), ports(&[53]))
        .prop_map(|(cpu, mem, tcp, udp)| Resources::new(cpu, mem).with_ports(tcp, udp));
    let required = proptest::sample::subsequence(
        vec![
            Attribute::new("flag", None),
            Attribute::new("ecs.instance-type", Some("t2.large".into())),
        ],
        0..=1,
    );
    (
        demand,
        proptest::sample::select(&GROUPS[..]),
        proptest::collection::vec(rule(), 0..5),
        proptest::collection::vec(constraint(), 0..3),
        required,
        any::<u64>(),
    )
        .prop_map(
            |(demand, group, strategies, constraints, required_attributes, seed)| Request {
                demand,
                group: group.into(),
                strategies,
                constraints,
                required_attributes,
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn place_gives_the_plain_way_s_plan(cs in candidates(), r in request(), count in 0usize..16) {
        prop_assert_eq!(place(&cs, &r, count), reference_place(&cs, &r, count));
    }

    #[test]
    fn place_on_gives_the_plain_way_s_plan(
        cs in candidates(),
        r in request(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let targets: Vec<usize> = if cs.is_empty() {
            Vec::new()
        } else {
            picks.iter().map(|p| p.index(cs.len())).collect()
        };
        prop_assert_eq!(place_on(&cs, &r, &targets), reference_place_on(&cs, &r, &targets));
    }
}
