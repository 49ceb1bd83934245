//! Deterministic simulation sweep: `SIM_SEEDS` seeds (default 1,000) of `SIM_STEPS` steps
//! (default 3,000), each with faults, invariants after every step and a heal phase that must
//! converge. A failure prints its seed and a one-line replay command.

use zerok_transport_mock::scenario::{Scenario, run};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn sweep() {
    let scenario = Scenario { steps: env_u64("SIM_STEPS", 3_000), ..Scenario::default() };
    sweep_seeds(env_u64("SIM_SEEDS", 1_000), &scenario, true);
}

/// Three relays over one store, as over one PostgreSQL: devices move between them, relays
/// crash one at a time (now and then right after a commit), hints come late or never.
/// `SIM_RELAY_SEEDS` seeds (default 300).
#[test]
fn sweep_three_relays() {
    let scenario = Scenario { steps: env_u64("SIM_STEPS", 3_000), relays: 3, damage_one_in: 0, ..Scenario::default() };
    sweep_seeds(env_u64("SIM_RELAY_SEEDS", 300), &scenario, false);
}

/// Runs `seeds` seeds; `every_path`: assert that each of the single-relay sweep's paths ran.
#[allow(clippy::panic, clippy::expect_used, reason = "a test helper reports failure by panicking")]
fn sweep_seeds(seeds: u64, scenario: &Scenario, every_path: bool) {
    let first = env_u64("SIM_FIRST_SEED", 0);
    let threads = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let scenario = scenario.clone();
            std::thread::spawn(move || {
                let mut totals = Totals::default();
                for seed in (first + t..first + seeds).step_by(threads as usize) {
                    match run(seed, &scenario) {
                        Ok(s) => totals.add(&s),
                        Err(f) => return Err(f),
                    }
                }
                Ok(totals)
            })
        })
        .collect();
    let mut t = Totals::default();
    for h in handles {
        match h.join().expect("worker panicked") {
            Ok(part) => t.merge(&part),
            Err(f) => panic!("{f}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {seeds} seeds, {} steps in {secs:.1}s: {:.0} steps/s; {} devices paired during faults; {} runs \
         with retention, {} trust points taken after pruning; {} runs with a damaged relay store: {} damages, {} \
         rows lost; {} exits of short-lived devices; {} runs with a full gap buffer",
        t.steps,
        t.steps as f64 / secs,
        t.mid_run_joins,
        t.pruned_runs,
        t.trust_points,
        t.damaged_runs,
        t.damages,
        t.rows_lost,
        t.short_lived_exits,
        t.full_gap_runs
    );
    // Each new path must be exercised, or this sweep proves nothing about it.
    if seeds >= 100 && every_path {
        assert!(t.trust_points > 0, "no device joined after a prune in {seeds} seeds");
        assert!(t.damages > 0 && t.rows_lost > 0, "no relay store was damaged in {seeds} seeds");
        assert!(t.short_lived_exits > 0, "no short-lived device exited in {seeds} seeds");
        assert!(t.full_gap_runs > 0, "no gap buffer was ever full in {seeds} seeds");
    }
}

/// What a sweep did, summed over its seeds.
#[derive(Default)]
struct Totals {
    steps: u64,
    mid_run_joins: u64,
    pruned_runs: u64,
    trust_points: u64,
    damaged_runs: u64,
    damages: u64,
    rows_lost: u64,
    short_lived_exits: u64,
    full_gap_runs: u64,
}

impl Totals {
    fn add(&mut self, s: &zerok_transport_mock::scenario::Summary) {
        self.merge(&Totals {
            steps: s.steps,
            mid_run_joins: u64::from(s.joined_mid_run),
            pruned_runs: u64::from(s.retention),
            trust_points: s.trust_points,
            damaged_runs: u64::from(s.damage.0 > 0),
            damages: s.damage.0,
            rows_lost: s.damage.1,
            short_lived_exits: s.short_lived_exits,
            full_gap_runs: u64::from(s.full_gap_buffers > 0),
        });
    }

    fn merge(&mut self, o: &Totals) {
        self.steps += o.steps;
        self.mid_run_joins += o.mid_run_joins;
        self.pruned_runs += o.pruned_runs;
        self.trust_points += o.trust_points;
        self.damaged_runs += o.damaged_runs;
        self.damages += o.damages;
        self.rows_lost += o.rows_lost;
        self.short_lived_exits += o.short_lived_exits;
        self.full_gap_runs += o.full_gap_runs;
    }
}

#[test]
fn replay_one() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|v| v.parse().ok()) else { return };
    let adversary_percent = env_u64("SIM_ADVERSARY", 0);
    let relays = env_u64("SIM_RELAYS", 1) as usize;
    let damage_one_in = if relays > 1 { 0 } else { Scenario::default().damage_one_in };
    let scenario = Scenario {
        steps: env_u64("SIM_STEPS", 3_000),
        adversary_percent,
        relays,
        damage_one_in,
        ..Scenario::default()
    };
    match run(seed, &scenario) {
        Ok(s) => eprintln!("seed {seed} ok: {s:?}"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn the_same_seed_replays_identically() {
    let scenario = Scenario { steps: 1_500, ..Scenario::default() };
    let a = run(42, &scenario).expect("seed 42");
    let b = run(42, &scenario).expect("seed 42 again");
    assert_eq!(a.trace, b.trace);
    assert_eq!(a, b);
    let c = run(43, &scenario).expect("seed 43");
    assert_ne!(a.trace, c.trace, "different seeds differ");
}

#[test]
fn an_adversarial_relay_never_gets_altered_data_applied_and_is_detected() {
    let seeds = env_u64("SIM_ADVERSARY_SEEDS", 100);
    let scenario = Scenario { steps: 2_000, adversary_percent: 30, ..Scenario::default() };
    let (mut served, mut reported, mut rollbacks, mut rollback_reports) = (0, 0, 0, 0);
    let (mut forks, mut fork_reports) = (0, 0);
    for seed in 0..seeds {
        let s = run(seed, &scenario).unwrap_or_else(|f| panic!("{f}"));
        served += s.tampering_served;
        reported += s.tampered_reports;
        rollbacks += s.rollbacks.0;
        rollback_reports += s.rollbacks.1;
        forks += s.forks.0;
        fork_reports += s.forks.1;
    }
    eprintln!(
        "adversary: {served} altered blobs served, {reported} reported; {rollbacks} rollbacks, {rollback_reports} \
         reported; {forks} forks, {fork_reports} reported"
    );
    // Each run checks that every device moving past a blob corrupted at rest reported it; in
    // flight, a page can be lost with its connection before a device reads it.
    assert!(served > 0 && reported > 0, "{reported} reports of {served} altered blobs");
    assert!(rollbacks > 0 && rollback_reports > 0, "{rollback_reports} reports of {rollbacks} rollbacks");
    // Each run checks that every device whose history was rewritten reported it.
    assert!(forks > 0 && fork_reports > 0, "{fork_reports} reports of {forks} forks");
}
