//! Deterministic simulation sweep: `SIM_SEEDS` seeds (default 1,000) of `SIM_STEPS` steps
//! (default 3,000), each with faults, invariants after every step and a heal phase that must
//! converge. A failure prints its seed and a one-line replay command.

use zerok_transport_mock::scenario::{Scenario, run};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn sweep() {
    let seeds = env_u64("SIM_SEEDS", 1_000);
    let first = env_u64("SIM_FIRST_SEED", 0);
    let scenario = Scenario { steps: env_u64("SIM_STEPS", 3_000), ..Scenario::default() };
    let threads = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let started = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let scenario = scenario.clone();
            std::thread::spawn(move || {
                let (mut steps, mut mid_run_joins, mut pruned_runs, mut trust_points) = (0u64, 0u64, 0u64, 0u64);
                for seed in (first + t..first + seeds).step_by(threads as usize) {
                    match run(seed, &scenario) {
                        Ok(s) => {
                            steps += s.steps;
                            mid_run_joins += u64::from(s.joined_mid_run);
                            pruned_runs += u64::from(s.retention);
                            trust_points += s.trust_points;
                        }
                        Err(f) => return Err(f),
                    }
                }
                Ok((steps, mid_run_joins, pruned_runs, trust_points))
            })
        })
        .collect();
    let (mut steps, mut mid_run_joins, mut pruned_runs, mut trust_points) = (0, 0, 0, 0);
    for h in handles {
        match h.join().expect("worker panicked") {
            Ok((s, j, p, t)) => {
                steps += s;
                mid_run_joins += j;
                pruned_runs += p;
                trust_points += t;
            }
            Err(f) => panic!("{f}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {seeds} seeds, {steps} steps in {secs:.1}s: {:.0} steps/s; {mid_run_joins} devices paired during \
         faults; {pruned_runs} runs with retention, {trust_points} trust points taken after pruning",
        steps as f64 / secs
    );
    // The late-joiner path must be exercised, or this sweep proves nothing about it.
    assert!(seeds < 100 || trust_points > 0, "no device joined after a prune in {seeds} seeds");
}

#[test]
fn replay_one() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|v| v.parse().ok()) else { return };
    let adversary_percent = env_u64("SIM_ADVERSARY", 0);
    let scenario = Scenario { steps: env_u64("SIM_STEPS", 3_000), adversary_percent, ..Scenario::default() };
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
