//! A seeded run: set up a group, pair devices (one of them mid-run), then a fault phase of
//! random app actions and faults with invariants checked after every step, then a heal phase
//! that must converge.

use zerok_core::Duration;
use zerok_core::client::{Command, SyncStatus};

use crate::check::{Checker, Violation};
use crate::world::{NetConfig, World};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Devices, including the group's creator.
    pub devices: usize,
    /// Steps of the fault phase.
    pub steps: u64,
    /// Inject faults (crashes, partitions, cuts, full disks, skew).
    pub faults: bool,
    /// Most steps the heal phase may take to converge.
    pub heal_steps: u64,
    /// Percent of served pages an adversarial relay tampers with (0: an honest relay); an
    /// adversarial relay also rolls its store back now and then.
    pub adversary_percent: u64,
    /// One seed in this many runs its relay with retention on (a blob is pruned once every
    /// member acknowledged it), so the device that pairs mid-run joins after a prune (0: never).
    pub retention_one_in: u64,
    /// One seed in this many runs an honest relay whose store is damaged between restarts:
    /// restored from an older backup, a row deleted, a byte flipped (0: never).
    pub damage_one_in: u64,
    /// One seed in this many has a device that lives as short-lived processes do (a CLI
    /// command, an app the OS keeps killing): it exits as soon as it is synced and starts
    /// again for its next action (0: never).
    pub short_lived_one_in: u64,
    /// Relays over one shared store (1: the embedded single relay). With several, devices
    /// connect to any of them, relays crash one at a time (some right after a commit, its
    /// outcome unknown to them), and hints of other relays' appends come late or never.
    pub relays: usize,
    /// Deliberate bugs to switch on.
    #[cfg(feature = "planted-bugs")]
    pub bugs: zerok_core::bugs::PlantedBugs,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            devices: 4,
            steps: 2_000,
            faults: true,
            heal_steps: 400_000,
            adversary_percent: 0,
            retention_one_in: 4,
            damage_one_in: 4,
            short_lived_one_in: 3,
            relays: 1,
            #[cfg(feature = "planted-bugs")]
            bugs: Default::default(),
        }
    }
}

/// What a successful run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Hash of the whole trace.
    pub trace: [u8; 32],
    /// Steps processed in total.
    pub steps: u64,
    /// Pushes the apps made.
    pub pushed: usize,
    /// Pushes acknowledged.
    pub acked: usize,
    /// Faults injected.
    pub faults: u64,
    /// Blobs an adversarial relay altered (bit flips, splices) in served pages.
    pub tampering_served: u64,
    /// `Tampered` reports by devices.
    pub tampered_reports: u64,
    /// Relay rollbacks, and `Rollback` reports by devices.
    pub rollbacks: (u64, u64),
    /// Relay forks, and `Forked` reports by devices.
    pub forks: (u64, u64),
    /// Devices in the group at the end.
    pub members: usize,
    /// The last device joined during the fault phase.
    pub joined_mid_run: bool,
    /// The relay pruned with every member's acknowledgement.
    pub retention: bool,
    /// Trust points devices reported (a sender's chain starting after pruned history).
    pub trust_points: u64,
    /// Times the honest relay's store was damaged (restored from a backup, a row deleted, a
    /// byte flipped), and rows its chain check dropped.
    pub damage: (u64, u64),
    /// Exits of the short-lived device.
    pub short_lived_exits: u64,
    /// Steps at which a device's gap buffer was full.
    pub full_gap_buffers: u64,
}

/// A failed run: the seed, and the broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub violation: Violation,
    /// At which step.
    pub step: u64,
    /// The state of every node at the failure.
    pub detail: String,
    /// Environment settings the replay command needs besides the seed.
    pub replay_env: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "seed {} failed at step {}: {}\n{}replay: SIM_SEED={}{} cargo test -p zerok-tests --test simulation replay_one -- --nocapture",
            self.seed, self.step, self.violation.0, self.detail, self.seed, self.replay_env
        )
    }
}

/// Runs one seed.
pub fn run(seed: u64, scenario: &Scenario) -> Result<Summary, Failure> {
    #[allow(unused_mut, reason = "mutated only with planted bugs")]
    let mut world = World::new(seed, scenario.devices, NetConfig::default());
    if scenario.relays > 1 {
        world.set_relays(scenario.relays, LOST_HINT_PERCENT);
        world.commit_crash_one_in = COMMIT_CRASH_ONE_IN;
    }
    #[cfg(feature = "planted-bugs")]
    world.plant(scenario.bugs);
    let retention = scenario.retention_one_in > 0 && seed % scenario.retention_one_in == 1 % scenario.retention_one_in;
    if retention {
        world.set_retention_all_acked();
    }
    let damaged = scenario.adversary_percent == 0
        && scenario.damage_one_in > 0
        && seed % scenario.damage_one_in == 2 % scenario.damage_one_in;
    let short_lived = (scenario.short_lived_one_in > 0 && seed.is_multiple_of(scenario.short_lived_one_in))
        .then_some(1)
        .filter(|&d| d < scenario.devices);
    let mut check = Checker::default();
    check.adversarial = scenario.adversary_percent > 0;
    let mut damage = Damage::default();
    // Each seed tries one family of attacks, so that one cannot hide another (a blob corrupted
    // at rest stalls its sender's chain on every device, and a stalled device cannot be shown
    // another history).
    let family = (scenario.adversary_percent > 0).then_some(match seed % 3 {
        0 => Family::InFlight,
        1 => Family::AtRest,
        _ => Family::History,
    });
    if let Some(family) = family {
        let percent = if family == Family::InFlight { scenario.adversary_percent } else { 0 };
        world.adversary = Some(crate::adversary::Adversary::new(percent, &mut world.rng));
    }
    let fail = |world: &World, v: &Violation| Failure {
        seed,
        violation: v.clone(),
        step: world.steps,
        detail: world.describe(),
        replay_env: format!(
            " SIM_STEPS={}{}{}",
            scenario.steps,
            if scenario.relays > 1 { format!(" SIM_RELAYS={}", scenario.relays) } else { String::new() },
            if scenario.adversary_percent > 0 {
                format!(" SIM_ADVERSARY={}", scenario.adversary_percent)
            } else {
                String::new()
            }
        ),
    };
    let mid_joiner = scenario.devices.saturating_sub(1);
    // Pairing is not shared between relays yet: with several, every device pairs through one
    // relay before the faults, and nobody joins mid-run.
    let several = scenario.relays > 1;

    world.command(0, Command::CreateGroup { admission_token: None }, &mut check);
    // Every device but the mid-run joiner pairs before the faults start.
    if let Err(v) = converge(&mut world, &mut check, scenario.heal_steps, mid_joiner, several) {
        return Err(fail(&world, &v));
    }
    world.reachable_relays = scenario.relays;
    let mut faults = Faults::default();
    let mut next_action_us = world.now_us;
    for step in 0..scenario.steps {
        let allow_mid_joiner = step >= scenario.steps / 4 && !several;
        drive_pairing(&mut world, &mut check, allow_mid_joiner, mid_joiner);
        // App actions and faults arrive in simulated time (about one per ACTION_GAP_US), so a
        // busy network does not squeeze the whole fault phase into a few milliseconds.
        if world.now_us >= next_action_us {
            next_action_us = world.now_us + world.rng.below(2 * ACTION_GAP_US);
            // Half of the history runs keep the network clean, so devices see enough history
            // for a rewrite to matter; the other half mix it with every other fault.
            let clean = family == Some(Family::History) && seed.is_multiple_of(2);
            random_action(&mut world, &mut check, scenario.faults && !clean, &mut faults);
        }
        if let Some(family) = family {
            adversary_step(&mut world, &mut check, family);
        }
        if damaged {
            damage.step(&mut world, &mut check);
        }
        if let Some(d) = short_lived {
            damage.short_lived(&mut world, &mut check, d);
        }
        world.advance(&mut check);
        check.check_world(&world);
        if let Some(v) = check.first_violation() {
            return Err(fail(&world, v));
        }
    }

    let joined_mid_run = world.devices.get(mid_joiner).is_some_and(|d| d.store.state.membership.is_some());
    if let Some(adv) = &mut world.adversary {
        adv.percent = 0;
    }
    heal(&mut world, &mut check);
    if let Err(v) = converge(&mut world, &mut check, scenario.heal_steps, mid_joiner, true) {
        return Err(fail(&world, &v));
    }
    check.check_converged(&world);
    if let Some(v) = check.first_violation() {
        return Err(fail(&world, v));
    }
    // Any relay over the shared store admits every member, whichever relay admitted its key.
    if let Some(n) = world.rejections.get("Unauthorized").filter(|_| several) {
        return Err(fail(&world, &Violation(format!("relays refused members {n} times"))));
    }
    let members = world.devices.iter().filter(|d| d.client.as_ref().is_some_and(|c| c.membership().is_some())).count();
    // An adversarial relay may deny service (a rollback can erase the group): only honest
    // relays owe membership and convergence.
    if members != scenario.devices && scenario.adversary_percent == 0 {
        return Err(fail(&world, &Violation(format!("only {members} of {} devices joined", scenario.devices))));
    }
    Ok(Summary {
        trace: world.trace_hash(),
        steps: world.steps,
        pushed: check.pushes.len(),
        acked: check.acked.len(),
        faults: faults.injected,
        tampering_served: world.adversary.as_ref().map_or(0, |a| a.tampering()),
        tampered_reports: check.tampered_reports,
        rollbacks: (
            world
                .adversary
                .as_ref()
                .map_or(0, |a| a.done.get(&crate::adversary::Attack::Rollback).copied().unwrap_or(0)),
            check.rollback_reports,
        ),
        forks: (
            world.adversary.as_ref().map_or(0, |a| a.done.get(&crate::adversary::Attack::Fork).copied().unwrap_or(0)),
            check.fork_reports,
        ),
        members,
        joined_mid_run,
        retention,
        trust_points: check.trust_point_reports(),
        damage: (damage.done, damage.dropped),
        short_lived_exits: damage.exits,
        full_gap_buffers: check.full_gap_buffers,
    })
}

/// Runs until every device is a member, synced with nothing unsent (pairing any device that
/// is not, `last` only if `with_last`), checking invariants at every step; gives up after
/// `max_steps`.
pub fn converge(
    world: &mut World,
    check: &mut Checker,
    max_steps: u64,
    last: usize,
    with_last: bool,
) -> Result<(), Violation> {
    let mut idle_rounds = 0;
    let limit = world.steps + max_steps;
    // With several relays a device is synced with what its relay knows: done once every
    // relay has caught up with the store too (its poll, if a hint was lost).
    let done = |world: &World| {
        world.devices.iter().enumerate().filter(|(i, _)| with_last || *i != last).all(|(_, d)| synced(d))
            && world.relays_current()
    };
    while world.steps < limit {
        drive_pairing(world, check, with_last, last);
        if !world.advance(check) || world.quiet_network() {
            if done(world) {
                break;
            }
            idle_rounds += 1;
            world.now_us += Duration::from_millis(500).as_micros();
            for d in 0..world.devices.len() {
                world.command(d, Command::SyncNow, check);
            }
            if idle_rounds > 2_000 {
                break;
            }
        }
        check.check_world(world);
        if let Some(v) = check.first_violation() {
            return Err(v.clone());
        }
    }
    Ok(())
}

fn synced(d: &crate::world::Device) -> bool {
    d.client.as_ref().is_some_and(|c| c.membership().is_some() && c.status() == SyncStatus::Synced && c.unsent() == 0)
}

/// Whether every device is a member, synced, with nothing unsent.
pub fn converged(world: &World) -> bool {
    world.devices.iter().all(synced)
}

/// What an adversarial relay does in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// Alters served pages (bit flips, splices, drops, replays, reorders).
    InFlight,
    /// Corrupts stored blobs.
    AtRest,
    /// Rolls its store back, or forks it into two worlds.
    History,
}

fn adversary_step(world: &mut World, check: &mut Checker, family: Family) {
    let roll = world.rng.below(2000);
    match family {
        Family::InFlight => {}
        Family::AtRest if roll < 20 => {
            let before: Vec<Option<u64>> =
                world.devices.iter().map(|d| d.store.state.membership.as_ref().map(|_| d.store.state.cursor)).collect();
            let corrupted = match world.adversary.as_mut() {
                Some(adv) => adv.corrupt_at_rest(&mut world.rng, &mut world.store),
                None => None,
            };
            if let Some(cursor) = corrupted {
                check.corrupted.push((cursor, before));
            }
        }
        Family::AtRest => {}
        Family::History => {
            // Rewrite only a history with a group in it and something since the snapshot.
            let rewritable = world.snapshot_head().is_some_and(|h| h > 0 && world.relay_head() >= h + 10);
            match roll {
                0..=9 if world.relay_head() > 0 => world.snapshot_relay(),
                10..=11 if rewritable => {
                    check.history_rewritten(world);
                    world.rollback_relay(check);
                }
                12..=15 if rewritable => {
                    let isolated: Vec<usize> = (0..world.devices.len()).filter(|_| world.rng.below(2) == 0).collect();
                    check.history_rewritten(world);
                    world.fork_relay(&isolated, check);
                }
                16..=23 => world.devices.iter_mut().for_each(|d| d.partitioned = false),
                _ => {}
            }
        }
    }
}

/// What befalls an honest relay's disk, and the short-lived device.
#[derive(Default)]
struct Damage {
    done: u64,
    dropped: u64,
    exits: u64,
}

impl Damage {
    /// Now and then the operator takes a backup; more rarely the relay's store is damaged
    /// while it is down: the backup restored over it, a row deleted, a byte flipped.
    fn step(&mut self, world: &mut World, check: &mut Checker) {
        let roll = world.rng.below(2000);
        if roll < 10 && world.relay_head() > 0 {
            world.snapshot_relay();
        }
        if !(10..14).contains(&roll) || world.relay_head() == 0 {
            return;
        }
        let before = world.store.clone();
        let damaged = match world.rng.below(3) {
            0 => world.restore_backup(check),
            kind => {
                world.damage_relay(check, |store, rng| {
                    let Some(g) = store.groups.values_mut().next() else { return };
                    let cursors: Vec<u64> = g.blobs.keys().copied().collect();
                    let Some(&cursor) = cursors.get(rng.below(cursors.len().max(1) as u64) as usize) else { return };
                    if kind == 1 {
                        g.blobs.remove(&cursor);
                    } else if let Some(b) = g.blobs.get_mut(&cursor) {
                        let field: &mut [u8] = match rng.below(4) {
                            0 => &mut b.chain,
                            1 => &mut b.push_id,
                            _ => &mut b.envelope.0,
                        };
                        if !field.is_empty() {
                            let bit = rng.below(field.len() as u64 * 8) as usize;
                            field[bit / 8] ^= 1 << (bit % 8);
                        }
                    }
                });
                true
            }
        };
        if damaged {
            self.done += 1;
            self.dropped += check.relay_damaged(&before, world);
        }
    }

    /// The short-lived device exits once synced (not while pairing), and starts again now and
    /// then, as its user runs the next command.
    fn short_lived(&mut self, world: &mut World, check: &mut Checker, d: usize) {
        match &world.devices[d].client {
            Some(c) if c.membership().is_some() && c.status() == SyncStatus::Synced && !c.pairing_in_progress() => {
                self.exits += 1;
                world.crash_device(d, check);
            }
            None if world.rng.below(40) == 0 => world.restart_device(d, check),
            _ => {}
        }
    }
}

#[derive(Default)]
struct Faults {
    injected: u64,
}

/// Pairs devices that are not in the group yet: an online member opens an invite, and the
/// joiner types its short code. The last device joins only in the second half.
fn drive_pairing(world: &mut World, check: &mut Checker, allow_last: bool, last: usize) {
    if world.devices[0].client.as_ref().is_some_and(|c| c.membership().is_none()) {
        // The creator crashed before its group was saved: it creates one again.
        world.command(0, Command::CreateGroup { admission_token: None }, check);
        return;
    }
    let joiner = (1..world.devices.len()).find(|&i| {
        let d = &world.devices[i];
        d.client.as_ref().is_some_and(|c| c.membership().is_none())
            && (i != last || allow_last)
            && d.store.state.membership.is_none()
    });
    let Some(joiner) = joiner else { return };
    if let Some((_, code)) = check.invites.pop() {
        world.command(joiner, Command::JoinInvite(code), check);
        return;
    }
    let busy = world.devices[joiner].client.as_ref().is_some_and(|c| c.pairing_in_progress());
    if busy || world.rng.below(20) != 0 {
        return;
    }
    let inviting = world
        .devices
        .iter()
        .any(|d| d.client.as_ref().is_some_and(|c| c.membership().is_some() && c.pairing_in_progress()));
    if inviting && world.rng.below(50) != 0 {
        // An invite is being opened or waits for its joiner: give it time.
        return;
    }
    let inviter = (0..world.devices.len()).find(|&i| {
        world.devices[i].client.as_ref().is_some_and(|c| c.membership().is_some() && c.status() != SyncStatus::Offline)
    });
    if let Some(inviter) = inviter {
        let _ = world.command(inviter, Command::CancelInvite, check);
        let _ = world.command(inviter, Command::CreateInvite, check);
    }
}

/// Percent of other relays' append hints lost, with several relays.
const LOST_HINT_PERCENT: u64 = 20;

/// With several relays, one store completion in this many crashes its relay just after the
/// commit (during the fault phase).
const COMMIT_CRASH_ONE_IN: u64 = 400;

/// Mean simulated time between app actions in the fault phase.
const ACTION_GAP_US: u64 = 2_000;

/// One in this many fault draws injects a fault.
const FAULT_DILUTION: u64 = 5;

fn random_action(world: &mut World, check: &mut Checker, faults_on: bool, faults: &mut Faults) {
    let n = world.devices.len();
    let members: Vec<usize> =
        (0..n).filter(|&i| world.devices[i].client.as_ref().is_some_and(|c| c.membership().is_some())).collect();
    let roll = world.rng.below(100);
    // A step is one network event, and a pairing takes some 30 of them: faults come at a
    // fifth of the rate of app actions so that work can also finish; repairs at full rate.
    let repair = matches!(roll, 70..=77 | 79..=82 | 86..=89 | 97..=98)
        || (roll == 93 && world.store.full)
        || (roll == 94 && world.devices.iter().any(|d| d.store.full));
    if roll >= 66 && !repair && world.rng.below(FAULT_DILUTION) != 0 {
        return;
    }
    // App actions come from members' apps; a device still pairing only waits.
    let d = if roll < 66 && !members.is_empty() {
        members[world.rng.below(members.len() as u64) as usize]
    } else {
        world.rng.below(n as u64) as usize
    };
    if roll >= 66 && faults_on {
        faults.injected += 1;
    }
    match roll {
        0..=44 => {
            let len = match world.rng.below(10) {
                0 => world.rng.below(20_000) as usize,
                _ => world.rng.below(600) as usize,
            };
            let payload: Vec<u8> = (0..len).map(|_| world.rng.below(256) as u8).collect();
            if let Some(Ok(Some(push_id))) = world.command(d, Command::Push(payload.clone()), check) {
                check.pushed(d, push_id, &payload);
            }
        }
        45..=52 => {
            world.command(d, Command::SyncNow, check);
        }
        53..=54 => {
            world.command(d, Command::Pause { flush_for: Duration::from_millis(500) }, check);
        }
        55..=65 => {
            // Apps come back to the foreground: a paused one if any.
            let paused = afflicted(world, |dev| dev.client.as_ref().is_some_and(|c| c.is_paused()));
            world.command(paused.unwrap_or(d), Command::Resume, check);
        }
        _ if !faults_on => {}
        66..=69 => world.crash_device(d, check),
        70..=77 => {
            // Repairs go to a device that needs them, so no device stays down for good.
            if let Some(d) = afflicted(world, |dev| dev.client.is_none()) {
                world.restart_device(d, check);
            }
        }
        78 if world.relays.len() > 1 => {
            let r = world.rng.below(world.relays.len() as u64) as usize;
            world.crash_one_relay(r, check);
        }
        78 => world.crash_relay(check),
        79..=82 => {
            let down: Vec<usize> = (0..world.relays.len()).filter(|r| world.relays[*r].relay.is_none()).collect();
            if let Some(&r) = down.get(world.rng.below(down.len().max(1) as u64) as usize) {
                world.restart_one_relay(r, check);
            }
        }
        83..=85 => {
            world.devices[d].partitioned = true;
            world.cut_device_links(d, check);
        }
        86..=89 => {
            if let Some(d) = afflicted(world, |dev| dev.partitioned) {
                world.devices[d].partitioned = false;
            }
        }
        90..=92 => world.cut_device_links(d, check),
        93 => world.store.full = !world.store.full,
        94 => match afflicted(world, |dev| dev.store.full) {
            Some(full) => world.devices[full].store.full = false,
            None => world.devices[d].store.full = true,
        },
        95 => world.devices[d].skew_ms = world.rng.below(600_000) as i64 - 300_000,
        96 => world.devices[d].held = true,
        97..=98 => {
            if let Some(d) = afflicted(world, |dev| dev.held) {
                world.devices[d].held = false;
            }
        }
        _ => {}
    }
}

/// A random device for which `test` holds, if any.
fn afflicted(world: &mut World, test: impl Fn(&crate::world::Device) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..world.devices.len()).filter(|&i| test(&world.devices[i])).collect();
    let i = world.rng.below(candidates.len().max(1) as u64) as usize;
    candidates.get(i).copied()
}

fn heal(world: &mut World, check: &mut Checker) {
    world.commit_crash_one_in = 0;
    world.restart_relay(check);
    world.store.full = false;
    for d in 0..world.devices.len() {
        world.devices[d].partitioned = false;
        world.devices[d].held = false;
        world.devices[d].store.full = false;
        world.restart_device(d, check);
        world.command(d, Command::Resume, check);
        world.command(d, Command::Enable, check);
        world.command(d, Command::SyncNow, check);
    }
}
