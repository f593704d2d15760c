//! Property tests of the scheduler's invariants: a plan never over-commits CPU, memory or ports;
//! distinctInstance holds; spread keeps counts level; binpack always takes the fullest instance
//! that fits, and puts equal tasks on no more equal instances than they need; the same seed
//! gives the same plan.

use berth_model::container_instance::Resources;
use berth_model::placement::{
    BinpackField, Constraint, PlacementConstraint, SpreadField, Strategy as Rule,
};
use berth_scheduler::{Candidate, Plan, Request, place};
use proptest::prelude::*;
use std::collections::BTreeMap;

const WEB: &str = "service:web";
const AZ: &str = "ecs.availability-zone";
const ZONES: [&str; 3] = ["z1", "z2", "z3"];

fn ports(choices: &'static [u16]) -> impl Strategy<Value = Vec<u16>> {
    proptest::sample::subsequence(choices, 0..=choices.len())
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        0i64..4096,
        0i64..4096,
        ports(&[22, 80, 443, 8080]),
        ports(&[53]),
        proptest::option::of(proptest::sample::select(&ZONES[..])),
        proptest::bool::weighted(0.9),
        0usize..3,
        0usize..3,
    )
        .prop_map(|(cpu, mem, tcp, udp, zone, connected, web, other)| {
            let mut c = Candidate::new("ci", Resources::new(cpu, mem).with_ports(tcp, udp))
                .with_tasks(WEB, web)
                .with_tasks("family:other", other);
            if let Some(z) = zone {
                c = c.with_attribute(AZ, Some(z));
            }
            c.agent_connected = connected;
            c
        })
}

fn candidates(max: usize) -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(candidate(), 0..max).prop_map(|mut cs| {
        for (i, c) in cs.iter_mut().enumerate() {
            c.id = format!("arn:aws:ecs:us-east-1:0:container-instance/c/{i}");
        }
        cs
    })
}

fn demand() -> impl Strategy<Value = Resources> {
    (0i64..1024, 0i64..1024, ports(&[80, 8080]), ports(&[53]))
        .prop_map(|(cpu, mem, tcp, udp)| Resources::new(cpu, mem).with_ports(tcp, udp))
}

fn strategy() -> impl Strategy<Value = Rule> {
    prop_oneof![
        Just(Rule::Random),
        Just(Rule::Binpack(BinpackField::Cpu)),
        Just(Rule::Binpack(BinpackField::Memory)),
        Just(Rule::Spread(SpreadField::InstanceId)),
        Just(Rule::Spread(SpreadField::Attribute(AZ.into()))),
    ]
}

fn constraint() -> impl Strategy<Value = Constraint> {
    prop_oneof![
        Just(Constraint::DistinctInstance),
        proptest::sample::select(
            &[
                "attribute:ecs.availability-zone in [z1, z2]",
                "attribute:ecs.availability-zone exists",
                "not(task:group == service:web)",
                "task:group == family:other",
            ][..]
        )
        .prop_map(|e| PlacementConstraint::member_of(e).check("c").unwrap()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        demand(),
        proptest::collection::vec(strategy(), 0..4),
        proptest::collection::vec(constraint(), 0..3),
        any::<u64>(),
    )
        .prop_map(|(demand, strategies, constraints, seed)| Request {
            demand,
            group: WEB.into(),
            strategies,
            constraints,
            required_attributes: Vec::new(),
            seed,
        })
}

/// The placed candidate indexes, in order.
fn placed(plan: &Plan) -> Vec<usize> {
    plan.placements
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .collect()
}

/// Roomy, connected instances in the given zones with no tasks of the group.
fn roomy(zones: &[Option<usize>]) -> Vec<Candidate> {
    zones
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let c = Candidate::new(format!("c{i}"), Resources::new(1 << 20, 1 << 20));
            match z {
                Some(z) => c.with_attribute(AZ, Some(ZONES[*z])),
                None => c,
            }
        })
        .collect()
}

fn spread(tail: Option<Rule>, first: SpreadField, seed: u64) -> Request {
    Request {
        demand: Resources::new(1, 1),
        group: WEB.into(),
        strategies: std::iter::once(Rule::Spread(first)).chain(tail).collect(),
        constraints: Vec::new(),
        required_attributes: Vec::new(),
        seed,
    }
}

proptest! {
    #[test]
    fn never_over_commits(cs in candidates(8), r in request(), count in 0usize..12) {
        let plan = place(&cs, &r, count);
        prop_assert_eq!(plan.placements.len(), count);
        let mut remaining: Vec<Resources> = cs.iter().map(|c| c.remaining.clone()).collect();
        for (step, p) in plan.placements.iter().enumerate() {
            match p {
                Ok(i) => {
                    prop_assert!(cs[*i].agent_connected, "step {step} on a disconnected instance");
                    prop_assert_eq!(remaining[*i].fits(&r.demand), Ok(()), "step {}", step);
                    remaining[*i].subtract(&r.demand);
                }
                Err(miss) => {
                    let mut seen: Vec<usize> = miss.rejections.iter().map(|x| x.candidate).collect();
                    seen.sort_unstable();
                    prop_assert_eq!(seen, (0..cs.len()).collect::<Vec<_>>());
                }
            }
        }
        let taken: BTreeMap<usize, Resources> = plan
            .placements
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .map(|&i| (i, remaining[i].clone()))
            .collect();
        prop_assert_eq!(&plan.remaining, &taken);
        for r in plan.remaining.values() {
            prop_assert!(r.cpu >= 0 && r.memory_mib >= 0, "{:?}", r);
        }
    }

    #[test]
    fn distinct_instance_holds(cs in candidates(8), mut r in request(), count in 0usize..12) {
        r.constraints.push(Constraint::DistinctInstance);
        let plan = place(&cs, &r, count);
        let mut planned = vec![0usize; cs.len()];
        for i in placed(&plan) {
            planned[i] += 1;
        }
        for (c, n) in cs.iter().zip(&planned) {
            prop_assert!(c.tasks_in(WEB) + n <= 1 || *n == 0, "{} got {} with {} already", c.id, n, c.tasks_in(WEB));
            prop_assert!(*n <= 1);
        }
    }

    #[test]
    fn spread_by_instance_is_level(n in 1usize..8, count in 0usize..30, seed: u64, tail in proptest::option::of(strategy())) {
        let cs = roomy(&vec![None; n]);
        let plan = place(&cs, &spread(tail, SpreadField::InstanceId, seed), count);
        let mut per = vec![0usize; n];
        for i in placed(&plan) {
            per[i] += 1;
        }
        prop_assert_eq!(per.iter().sum::<usize>(), count);
        prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1, "{:?}", per);
    }

    #[test]
    fn spread_goes_to_the_emptiest_instance(cs in candidates(8), mut r in request(), count in 0usize..12) {
        r.strategies.insert(0, Rule::Spread(SpreadField::InstanceId));
        r.constraints.clear();
        let plan = place(&cs, &r, count);
        let mut in_group: Vec<usize> = cs.iter().map(|c| c.tasks_in(WEB)).collect();
        let mut remaining: Vec<Resources> = cs.iter().map(|c| c.remaining.clone()).collect();
        for i in placed(&plan) {
            for (j, c) in cs.iter().enumerate() {
                if c.agent_connected && remaining[j].fits(&r.demand).is_ok() {
                    prop_assert!(in_group[i] <= in_group[j], "placed on {} with {} while {} had {}", i, in_group[i], j, in_group[j]);
                }
            }
            in_group[i] += 1;
            remaining[i].subtract(&r.demand);
        }
    }

    #[test]
    fn spread_by_zone_is_level(zones in proptest::collection::vec(0usize..3, 1..8), count in 0usize..30, seed: u64, tail in proptest::option::of(strategy())) {
        let cs = roomy(&zones.iter().copied().map(Some).collect::<Vec<_>>());
        let plan = place(&cs, &spread(tail, SpreadField::Attribute(AZ.into()), seed), count);
        let mut per_zone = [0usize; 3];
        for i in placed(&plan) {
            per_zone[zones[i]] += 1;
        }
        let present: Vec<usize> = (0..3).filter(|z| zones.contains(z)).map(|z| per_zone[z]).collect();
        prop_assert_eq!(present.iter().sum::<usize>(), count);
        prop_assert!(present.iter().max().unwrap() - present.iter().min().unwrap() <= 1, "{:?}", present);
    }

    #[test]
    fn binpack_takes_the_fullest_instance_that_fits(cs in candidates(8), mut r in request(), count in 0usize..12, memory: bool) {
        let field = if memory { BinpackField::Memory } else { BinpackField::Cpu };
        r.strategies = vec![Rule::Binpack(field)];
        r.constraints.clear();
        let left = |x: &Resources| if memory { x.memory_mib } else { x.cpu };
        let plan = place(&cs, &r, count);
        let mut remaining: Vec<Resources> = cs.iter().map(|c| c.remaining.clone()).collect();
        for i in placed(&plan) {
            for (j, c) in cs.iter().enumerate() {
                if c.agent_connected && remaining[j].fits(&r.demand).is_ok() {
                    prop_assert!(left(&remaining[i]) <= left(&remaining[j]), "placed on {} ({:?}) while {} had {:?}", i, remaining[i], j, remaining[j]);
                }
            }
            remaining[i].subtract(&r.demand);
        }
    }

    #[test]
    fn binpack_puts_equal_tasks_on_no_more_equal_instances_than_needed(n in 1usize..8, per in 1i64..6, count in 0usize..40, memory: bool, seed: u64) {
        // n empty instances with room for `per` tasks each, by the binpacked resource.
        let size = 256;
        let cs: Vec<Candidate> = (0..n)
            .map(|i| {
                let (cpu, mem) = if memory { (1 << 20, per * size) } else { (per * size, 1 << 20) };
                Candidate::new(format!("c{i}"), Resources::new(cpu, mem))
            })
            .collect();
        let field = if memory { BinpackField::Memory } else { BinpackField::Cpu };
        let r = Request {
            demand: Resources::new(size, size),
            group: WEB.into(),
            strategies: vec![Rule::Binpack(field)],
            constraints: Vec::new(),
            required_attributes: Vec::new(),
            seed,
        };
        let plan = place(&cs, &r, count);
        let fits = count.min(n * per as usize);
        prop_assert_eq!(placed(&plan).len(), fits);
        let used = plan.remaining.len();
        prop_assert_eq!(used, fits.div_ceil(per as usize), "{} tasks on {:?}", fits, plan.remaining);
    }

    #[test]
    fn the_same_seed_gives_the_same_plan(cs in candidates(8), r in request(), count in 0usize..12) {
        prop_assert_eq!(place(&cs, &r, count), place(&cs, &r, count));
    }
}
