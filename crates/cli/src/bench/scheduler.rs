//! `berth bench scheduler`: the pure placement function alone, on one core. Places `--tasks`
//! tasks (ten per call, as RunTask does) onto 1k, 5k and 10k simulated instances with
//! spread by zone then binpack on memory and a memberOf constraint that half the instances
//! meet, carrying each call's result into the next as the server does. The instances carry
//! what a Berth agent registers (its capability attributes, reserved ports) and the tasks
//! require the Docker API version every task definition does, so that the attribute look-ups
//! and resource copies cost here what they cost in the server.
//!
//! Then packing: on small random cases, tasks of random sizes placed one at a time with
//! binpack onto equal empty instances, against the fewest instances an exhaustive search
//! packs them into.

use std::time::Instant;

use berth_model::common::Attribute;
use berth_model::container_instance::Resources;
use berth_model::placement::{PlacementConstraint, PlacementStrategy};
use berth_model::task_definition::berth_capabilities;
use berth_scheduler::{Candidate, Request, place};
use clap::Args;

#[derive(Args)]
pub struct SchedulerArgs {
    /// Tasks to place on each cluster size.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Cluster sizes to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    instances: Vec<usize>,
    /// Small random cases on which packing is compared with an exhaustive search.
    #[arg(long, default_value_t = 1000)]
    packing_cases: usize,
}

/// Room on each instance of the packing cases, in units of [`UNIT_MIB`].
const PACKING_ROOM: i64 = 8;
const UNIT_MIB: i64 = 128;

const GROUP: &str = "service:bench";

fn cluster(size: usize, tasks: usize) -> Vec<Candidate> {
    // Room for every task on the eligible half, twice over.
    let per_instance = (tasks * 4 / size.max(1)).max(1) as i64;
    let capabilities = berth_capabilities(false);
    (0..size)
        .map(|i| {
            let kind = if i % 2 == 0 { "t2.large" } else { "m5.large" };
            let mut c = Candidate::new(
                format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{i:05}"),
                Resources::new(per_instance * 128, per_instance * 256)
                    .with_ports(berth_agent::ports::DEFAULT_RESERVED, []),
            )
            .with_attribute("ecs.availability-zone", Some(&format!("zone-{}", i % 3)))
            .with_attribute("ecs.instance-type", Some(kind));
            for name in &capabilities {
                c = c.with_attribute(name, None);
            }
            c
        })
        .collect()
}

fn request() -> anyhow::Result<Request> {
    Ok(Request {
        demand: Resources::new(128, 256),
        group: GROUP.into(),
        strategies: vec![
            PlacementStrategy::spread("attribute:ecs.availability-zone").check("strategy")?,
            PlacementStrategy::binpack("memory").check("strategy")?,
        ],
        constraints: vec![
            PlacementConstraint::member_of("attribute:ecs.instance-type =~ t2.*")
                .check("constraint")?,
        ],
        required_attributes: vec![Attribute::new(
            "com.amazonaws.ecs.capability.docker-remote-api.1.17",
            None,
        )],
        seed: 7,
    })
}

pub fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    let mut request = request()?;
    println!(
        "{:>9} {:>9} {:>9} {:>10} {:>14}",
        "INSTANCES", "TASKS", "UNPLACED", "SECONDS", "PLACEMENTS/S"
    );
    for &size in &args.instances {
        let mut candidates = cluster(size, args.tasks);
        let (mut placed, mut unplaced) = (0usize, 0usize);
        let started = Instant::now();
        while placed + unplaced < args.tasks {
            let count = 10.min(args.tasks - placed - unplaced);
            request.seed = request.seed.wrapping_add(1);
            let plan = place(&candidates, &request, count);
            for (i, remaining) in plan.remaining {
                candidates[i].remaining = remaining;
            }
            for outcome in &plan.placements {
                match outcome {
                    Ok(i) => {
                        *candidates[*i]
                            .task_groups
                            .entry(GROUP.to_string())
                            .or_default() += 1;
                        placed += 1;
                    }
                    Err(_) => unplaced += 1,
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{size:>9} {placed:>9} {unplaced:>9} {seconds:>10.2} {:>14.0}",
            placed as f64 / seconds.max(1e-9)
        );
    }
    packing(args.packing_cases);
    Ok(())
}

/// Places the tasks of random sizes of `cases` small cases one at a time with binpack on
/// memory onto as many equal empty instances as there are tasks, and prints how many
/// instances that used against the fewest an exhaustive search needs.
fn packing(cases: usize) {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |below: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % below
    };
    let (mut used_sum, mut fewest_sum, mut same) = (0usize, 0usize, 0usize);
    for _ in 0..cases {
        let sizes: Vec<i64> = (0..3 + next(6)).map(|_| 1 + next(6) as i64).collect();
        let mut candidates: Vec<Candidate> = (0..sizes.len())
            .map(|i| {
                Candidate::new(
                    format!("c{i}"),
                    Resources::new(1 << 20, PACKING_ROOM * UNIT_MIB),
                )
            })
            .collect();
        for (n, size) in sizes.iter().enumerate() {
            let request = Request {
                demand: Resources::new(1, size * UNIT_MIB),
                group: GROUP.into(),
                strategies: vec![
                    PlacementStrategy::binpack("memory")
                        .check("strategy")
                        .expect("a valid strategy"),
                ],
                constraints: Vec::new(),
                required_attributes: Vec::new(),
                seed: n as u64,
            };
            for (i, remaining) in place(&candidates, &request, 1).remaining {
                candidates[i].remaining = remaining;
            }
        }
        let used = candidates
            .iter()
            .filter(|c| c.remaining.memory_mib < PACKING_ROOM * UNIT_MIB)
            .count();
        let fewest = fewest_instances(&sizes);
        used_sum += used;
        fewest_sum += fewest;
        same += usize::from(used == fewest);
    }
    println!(
        "packing: {cases} cases of 3 to 8 tasks of 1 to 6 units onto instances of {PACKING_ROOM}: binpack used the fewest instances in {same}, and {:.3}x the fewest in all",
        used_sum as f64 / fewest_sum.max(1) as f64
    );
}

/// The fewest instances of [`PACKING_ROOM`] units that hold tasks of `sizes`, by trying every
/// way to pack them (largest first, cutting off what cannot do better).
fn fewest_instances(sizes: &[i64]) -> usize {
    fn go(sizes: &[i64], bins: &mut Vec<i64>, best: &mut usize) {
        let Some((&size, rest)) = sizes.split_first() else {
            *best = (*best).min(bins.len());
            return;
        };
        for b in 0..bins.len() {
            if bins[b] + size <= PACKING_ROOM {
                bins[b] += size;
                go(rest, bins, best);
                bins[b] -= size;
            }
        }
        if bins.len() + 1 < *best {
            bins.push(size);
            go(rest, bins, best);
            bins.pop();
        }
    }
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut best = sorted.len();
    go(&sorted, &mut Vec::new(), &mut best);
    best
}
