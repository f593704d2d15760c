use super::*;
use berth_model::placement::{BinpackField, PlacementConstraint, SpreadField};

const WEB: &str = "service:web";
const AZ: &str = "ecs.availability-zone";

fn host(id: &str, cpu: i64, mem: i64) -> Candidate {
    Candidate::new(id, Resources::new(cpu, mem).with_ports([22], []))
}

fn request(cpu: i64, mem: i64) -> Request {
    Request {
        demand: Resources::new(cpu, mem),
        group: WEB.into(),
        strategies: Vec::new(),
        constraints: Vec::new(),
        required_attributes: Vec::new(),
        seed: 7,
    }
}

fn member_of(expression: &str) -> Constraint {
    PlacementConstraint::member_of(expression)
        .check("placementConstraints[0]")
        .unwrap()
}

fn placed(plan: &Plan) -> Vec<usize> {
    plan.placements
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .collect()
}

/// Tasks the plan put on each of `n` candidates.
fn per_candidate(plan: &Plan, n: usize) -> Vec<usize> {
    let mut out = vec![0; n];
    for i in placed(plan) {
        out[i] += 1;
    }
    out
}

fn codes(unplaced: &Unplaced) -> Vec<(usize, String)> {
    unplaced
        .rejections
        .iter()
        .map(|r| (r.candidate, r.reason.code()))
        .collect()
}

#[test]
fn never_over_commits_and_names_every_instance_when_full() {
    let hosts = [host("a", 1024, 1000), host("b", 1024, 2000)];
    let plan = place(&hosts, &request(256, 600), 5);
    assert_eq!(per_candidate(&plan, 2), vec![1, 3]);
    assert_eq!(
        plan.remaining[&0],
        Resources::new(768, 400).with_ports([22], [])
    );
    assert_eq!(plan.remaining[&1].memory_mib, 200);
    let miss = plan.placements[4].clone().unwrap_err();
    assert_eq!(
        codes(&miss),
        vec![(0, "RESOURCE:MEMORY".into()), (1, "RESOURCE:MEMORY".into())]
    );
    let cpu_bound = place(&hosts, &request(2048, 1), 1);
    assert_eq!(
        codes(cpu_bound.placements[0].as_ref().unwrap_err()),
        vec![(0, "RESOURCE:CPU".into()), (1, "RESOURCE:CPU".into())]
    );
}

#[test]
fn a_static_port_is_taken_once_per_host() {
    let hosts = [host("a", 4096, 4096)];
    let mut r = request(0, 10);
    r.demand = r.demand.with_ports([80], [53]);
    let plan = place(&hosts, &r, 2);
    assert!(plan.placements[0].is_ok());
    assert_eq!(
        codes(plan.placements[1].as_ref().unwrap_err()),
        vec![(0, "RESOURCE:PORTS".into())]
    );
    assert!(plan.remaining[&0].ports_udp.contains(&53));
    let mut reserved = request(0, 10);
    reserved.demand = reserved.demand.with_ports([22], []);
    assert!(place(&hosts, &reserved, 1).placements[0].is_err());
    let mut udp = request(0, 10);
    udp.demand = udp.demand.with_ports([], [53]);
    let udp_host = [Candidate::new(
        "u",
        Resources::new(10, 100).with_ports([], [53]),
    )];
    assert_eq!(
        codes(
            place(&udp_host, &udp, 1).placements[0]
                .as_ref()
                .unwrap_err()
        ),
        vec![(0, "RESOURCE:PORTS_UDP".into())]
    );
}

#[test]
fn no_candidates_means_no_rejections() {
    let plan = place::<Candidate>(&[], &request(1, 1), 1);
    assert_eq!(plan.placements, vec![Err(Unplaced { rejections: vec![] })]);
}

#[test]
fn binpack_fills_the_fullest_instance_first() {
    let hosts = [
        host("a", 4096, 1000),
        host("b", 4096, 3000),
        host("c", 4096, 2000),
    ];
    let mut r = request(10, 500);
    r.strategies = vec![Strategy::Binpack(BinpackField::Memory)];
    assert_eq!(placed(&place(&hosts, &r, 5)), vec![0, 0, 2, 2, 2]);

    let hosts = [
        host("a", 1000, 4096),
        host("b", 300, 4096),
        host("c", 600, 4096),
    ];
    let mut r = request(200, 10);
    r.strategies = vec![Strategy::Binpack(BinpackField::Cpu)];
    assert_eq!(placed(&place(&hosts, &r, 5)), vec![1, 2, 2, 2, 0]);
}

#[test]
fn spread_by_instance_counts_the_tasks_already_there() {
    let hosts = [
        host("a", 4096, 4096).with_tasks(WEB, 2),
        host("b", 4096, 4096).with_tasks("service:other", 5),
        host("c", 4096, 4096).with_tasks(WEB, 1),
    ];
    let mut r = request(10, 10);
    r.strategies = vec![Strategy::Spread(SpreadField::InstanceId)];
    let plan = place(&hosts, &r, 3);
    assert_eq!(plan.placements[0], Ok(1));
    assert_eq!(per_candidate(&plan, 3), vec![0, 2, 1]);
}

#[test]
fn the_service_default_spreads_over_zones_then_instances() {
    let hosts = [
        host("a", 4096, 4096).with_attribute(AZ, Some("z1")),
        host("b", 4096, 4096).with_attribute(AZ, Some("z1")),
        host("c", 4096, 4096).with_attribute(AZ, Some("z2")),
    ];
    let mut r = request(10, 10);
    r.strategies = service_default();
    for seed in 0..20 {
        r.seed = seed;
        let plan = place(&hosts, &r, 4);
        assert_eq!(per_candidate(&plan, 3), vec![1, 1, 2], "seed {seed}");
    }
}

#[test]
fn spread_by_zone_then_binpack_within_the_zone() {
    let hosts = [
        host("a", 4096, 3000).with_attribute(AZ, Some("z1")),
        host("b", 4096, 1000).with_attribute(AZ, Some("z1")),
        host("c", 4096, 4000).with_attribute(AZ, Some("z2")),
        host("d", 4096, 2000).with_attribute(AZ, Some("z2")),
        host("e", 4096, 500),
    ];
    let mut r = request(10, 100);
    r.strategies = vec![
        Strategy::Spread(SpreadField::Attribute(AZ.into())),
        Strategy::Binpack(BinpackField::Memory),
    ];
    let plan = place(&hosts, &r, 6);
    // One task per value (z1, z2, and the instance without a zone), each on the fullest
    // instance of that value, then round again.
    assert_eq!(per_candidate(&plan, 5), vec![0, 2, 0, 2, 2]);
}

#[test]
fn distinct_instance_counts_existing_tasks_of_the_group() {
    let hosts = [
        host("a", 4096, 4096).with_tasks(WEB, 1),
        host("b", 4096, 4096).with_tasks("family:web", 1),
        host("c", 4096, 4096),
    ];
    let mut r = request(10, 10);
    r.constraints = vec![Constraint::DistinctInstance];
    let plan = place(&hosts, &r, 3);
    assert_eq!(per_candidate(&plan, 3), vec![0, 1, 1]);
    let d = "DistinctInstance placement constraint unsatisfied.".to_string();
    assert_eq!(
        codes(plan.placements[2].as_ref().unwrap_err()),
        vec![(0, d.clone()), (1, d.clone()), (2, d)]
    );
}

#[test]
fn member_of_limits_the_candidates() {
    let hosts = [
        host("a", 4096, 4096).with_attribute("ecs.instance-type", Some("t2.micro")),
        host("b", 4096, 4096).with_attribute("ecs.instance-type", Some("m5.large")),
        host("c", 4096, 4096),
    ];
    let mut r = request(10, 10);
    r.constraints = vec![member_of("attribute:ecs.instance-type =~ t2.*")];
    let plan = place(&hosts, &r, 3);
    assert_eq!(placed(&plan), vec![0, 0, 0]);

    r.constraints = vec![member_of("attribute:ecs.instance-type == c5.xlarge")];
    let plan = place(&hosts, &r, 1);
    let m = "MemberOf placement constraint unsatisfied.".to_string();
    assert_eq!(
        codes(plan.placements[0].as_ref().unwrap_err()),
        vec![(0, m.clone()), (1, m.clone()), (2, m)]
    );
}

#[test]
fn member_of_task_group_places_next_to_other_tasks() {
    let hosts = [
        host("a", 4096, 4096),
        host("b", 4096, 4096).with_tasks("service:db", 1),
        host("c", 4096, 4096),
    ];
    let mut r = request(10, 10);
    r.constraints = vec![member_of("task:group == service:db")];
    assert_eq!(placed(&place(&hosts, &r, 2)), vec![1, 1]);
    // Anti-affinity with itself: once a task of the group is on an instance, no other goes there.
    r.group = "service:db".into();
    r.constraints = vec![member_of("not(task:group == service:db)")];
    let plan = place(&hosts, &r, 3);
    assert_eq!(per_candidate(&plan, 3), vec![1, 0, 1]);
    assert!(plan.placements[2].is_err());
}

#[test]
fn disconnected_agents_and_missing_attributes_are_refused() {
    let mut offline = host("a", 4096, 4096);
    offline.agent_connected = false;
    let hosts = [
        offline,
        host("b", 4096, 4096),
        host("c", 4096, 4096).with_attribute("ecs.capability.task-eni", None),
    ];
    let mut r = request(10, 10);
    r.required_attributes = vec![Attribute::new("ecs.capability.task-eni", None)];
    assert_eq!(placed(&place(&hosts, &r, 2)), vec![2, 2]);
    let plan = place(&hosts[..2], &r, 1);
    assert_eq!(
        codes(plan.placements[0].as_ref().unwrap_err()),
        vec![(0, "AGENT".into()), (1, "ATTRIBUTE".into())]
    );
}

#[test]
fn place_on_checks_each_target_against_what_the_earlier_ones_left() {
    let hosts = [host("a", 4096, 1000), host("b", 4096, 1000)];
    let mut r = request(10, 600);
    r.strategies = vec![Strategy::Binpack(BinpackField::Memory)];
    let plan = place_on(&hosts, &r, &[1, 1, 0]);
    assert_eq!(plan.placements[0], Ok(1));
    assert_eq!(
        codes(plan.placements[1].as_ref().unwrap_err()),
        vec![(1, "RESOURCE:MEMORY".into())]
    );
    assert_eq!(plan.placements[2], Ok(0));
    assert_eq!(plan.remaining[&1].memory_mib, 400);
}

#[test]
fn the_seed_decides_random_placement() {
    let hosts: Vec<Candidate> = (0..6).map(|i| host(&format!("h{i}"), 4096, 4096)).collect();
    let mut r = request(10, 10);
    r.strategies = run_task_default();
    let plans: Vec<Vec<usize>> = (0..10)
        .map(|seed| {
            r.seed = seed;
            placed(&place(&hosts, &r, 4))
        })
        .collect();
    for (seed, plan) in plans.iter().enumerate() {
        r.seed = seed as u64;
        assert_eq!(&placed(&place(&hosts, &r, 4)), plan, "seed {seed}");
    }
    assert!(
        plans.iter().any(|p| p != &plans[0]),
        "different seeds should not all give {:?}",
        plans[0]
    );
}
