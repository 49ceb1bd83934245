//! The simulated world: one relay (or several over one shared store, as relays over one
//! PostgreSQL are), N devices, a network and stores, all driven by one seed on a virtual clock. Every input to a state machine is an event popped from one heap ordered by
//! (time, sequence number), so a seed replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use zerok_core::client::{
    Client, ClientConfig, ClientEvent, ClientInput, ClientOutput, ClientStoreOp, Command, RelayInfo,
};
use zerok_core::io::{ConnId, OpId};
use zerok_core::keys::{DeviceSigningKey, NoiseKeypair};
use zerok_core::relay::{Relay, RelayConfig, RelayInput, RelayOutput, RelayStoreOp, RelayStoreResult, Source};
use zerok_core::{CoreRng, Duration, Now};

use crate::stores::{DeviceStore, RelayStore};

/// How long a held chunk waits before it is looked at again, µs.
const HOLD_RETRY_US: u64 = 200_000;

/// Unix time at virtual time zero.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// Network and store timing.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// One-way latency, µs.
    pub latency_us: u64,
    /// Extra random latency, up to this many µs.
    pub jitter_us: u64,
    /// Store operations take up to this many µs.
    pub store_delay_us: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { latency_us: 2_000, jitter_us: 3_000, store_delay_us: 2_000 }
    }
}

#[derive(Debug)]
pub(crate) enum Ev {
    ConnectDone {
        device: usize,
        conn: ConnId,
        incarnation: u64,
    },
    ToRelay {
        link: u64,
        bytes: Vec<u8>,
    },
    ToDevice {
        link: u64,
        bytes: Vec<u8>,
    },
    /// Look again at a held link's queues.
    Flush {
        link: u64,
    },
    CloseAtRelay {
        link: u64,
    },
    CloseAtDevice {
        link: u64,
    },
    RelayStoreDone {
        relay: usize,
        op: OpId,
        incarnation: u64,
    },
    /// Another relay's append reaches this relay as a hint (LISTEN/NOTIFY).
    Hint {
        relay: usize,
        group: [u8; 32],
    },
    DeviceStoreDone {
        device: usize,
        op: OpId,
        incarnation: u64,
    },
}

pub(crate) struct Link {
    pub device: usize,
    pub relay: usize,
    pub client_conn: ConnId,
    pub relay_conn: ConnId,
    pub open: bool,
    pub up_last: u64,
    pub down_last: u64,
    /// Chunks waiting, in order, while the device is held (device → relay, relay → device).
    pub up_queue: std::collections::VecDeque<Vec<u8>>,
    pub down_queue: std::collections::VecDeque<Vec<u8>>,
    pub flush_scheduled: bool,
}

/// A simulated device: its client (when running), its store, and what it has observed.
pub struct Device {
    /// The running client, `None` while crashed.
    pub client: Option<Client>,
    /// Its configuration.
    pub config: ClientConfig,
    /// Its durable store.
    pub store: DeviceStore,
    pub(crate) pending: BTreeMap<OpId, ClientStoreOp>,
    pub(crate) incarnation: u64,
    pub(crate) timer: Option<u64>,
    /// Cut off from the relay.
    pub partitioned: bool,
    /// Bytes to and from this device are held (delayed, in order) until released.
    pub held: bool,
    /// Clock offset, ms.
    pub skew_ms: i64,
    /// Every event the client emitted, in order.
    pub events: Vec<ClientEvent>,
    /// When its store's last issued operation completes.
    last_store_done: u64,
}

/// A simulated relay process (its durable store is the world's, shared by every relay).
pub struct RelayNode {
    /// The running relay, `None` while crashed.
    pub relay: Option<Relay>,
    /// Its configuration.
    pub config: RelayConfig,
    pub(crate) pending: BTreeMap<OpId, RelayStoreOp>,
    pub(crate) incarnation: u64,
    pub(crate) timer: Option<u64>,
    /// When the last append completes: appends complete in the order issued, as the store
    /// contract asks.
    last_append_at: u64,
}

/// Everything observable that the checks and the trace hash use.
pub trait Observer {
    /// A device emitted an event.
    fn device_event(&mut self, device: usize, event: &ClientEvent);
    /// A device store operation completed (`ok`) or failed.
    fn device_store(&mut self, device: usize, op: &ClientStoreOp, ok: bool);
    /// A relay store operation completed with this result.
    fn relay_store(&mut self, op: &RelayStoreOp, result: &zerok_core::relay::RelayStoreResult);
}

/// The world.
pub struct World {
    /// Virtual time, µs.
    pub now_us: u64,
    /// The seeded generator for every random choice of the simulation.
    pub rng: CoreRng,
    /// Timing.
    pub net: NetConfig,
    /// The relays: one, or several sharing `store`.
    pub relays: Vec<RelayNode>,
    /// The relays' durable store.
    pub store: RelayStore,
    /// Percent of hints (another relay appended) that are lost.
    pub lost_hint_percent: u64,
    /// One store completion in this many crashes its relay right after the commit (0: never).
    pub commit_crash_one_in: u64,
    /// Devices connect to one of the first this many relays (pairing needs inviter and joiner
    /// on one relay: it is not shared through the store yet).
    pub reachable_relays: usize,
    /// The devices.
    pub devices: Vec<Device>,
    pub(crate) links: BTreeMap<u64, Link>,
    next_link: u64,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Ev>,
    next_seq: u64,
    trace: blake3::Hasher,
    /// Steps processed.
    pub steps: u64,
    /// Print a line per device input and transmit (debugging a seed).
    pub tracing: bool,
    /// Connections the relay refused, by reason.
    pub rejections: BTreeMap<String, u64>,
    /// A misbehaving relay, if this run has one.
    pub adversary: Option<crate::adversary::Adversary>,
    snapshot: Option<RelayStore>,
    /// Deliberate bugs switched on (simulator-side ones act here).
    #[cfg(feature = "planted-bugs")]
    pub bugs: zerok_core::bugs::PlantedBugs,
}

impl World {
    /// A world with a relay and `devices` devices (none in a group yet).
    pub fn new(seed: u64, devices: usize, net: NetConfig) -> Self {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut rng = CoreRng::from_seed(seed_bytes);
        let relay_key = NoiseKeypair::generate(&mut rng);
        let relay_endpoint: [u8; 32] = rng.bytes();
        let relay_info =
            RelayInfo { endpoint_id: relay_endpoint, noise_key: relay_key.public(), addrs: vec!["sim-relay".into()] };
        let config = RelayConfig::new(relay_endpoint, relay_key);
        let now = Now::new(0, EPOCH_MS);
        let relay = RelayNode {
            relay: Some(Relay::new(config.clone(), rng.bytes(), now, Vec::new())),
            config,
            pending: BTreeMap::new(),
            incarnation: 0,
            timer: None,
            last_append_at: 0,
        };
        let devices = (0..devices)
            .map(|_| {
                let mut config =
                    ClientConfig::new(DeviceSigningKey::generate(&mut rng), rng.bytes(), relay_info.clone());
                config.backoff_max = Duration::from_secs(5);
                // Within the heal phase, and longer than a full relay disk asks devices to wait (30 s):
                // a gap nobody fills is given up, not waited on for ever.
                config.gap_patience = Duration::from_secs(120);
                // Small, so that the gaps of the simulator's short logs overflow it.
                config.gap_blobs = 8;
                let client = Client::new(config.clone(), Default::default(), rng.bytes(), now);
                Device {
                    client: Some(client),
                    config,
                    store: DeviceStore::default(),
                    pending: BTreeMap::new(),
                    incarnation: 0,
                    timer: None,
                    partitioned: false,
                    held: false,
                    skew_ms: 0,
                    events: Vec::new(),
                    last_store_done: 0,
                }
            })
            .collect();
        World {
            now_us: 0,
            rng,
            net,
            relays: vec![relay],
            store: RelayStore::default(),
            lost_hint_percent: 0,
            commit_crash_one_in: 0,
            reachable_relays: 1,
            devices,
            links: BTreeMap::new(),
            next_link: 1,
            heap: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_seq: 0,
            trace: blake3::Hasher::new(),
            steps: 0,
            adversary: None,
            snapshot: None,
            rejections: BTreeMap::new(),
            tracing: std::env::var_os("SIM_TRACE").is_some(),
            #[cfg(feature = "planted-bugs")]
            bugs: Default::default(),
        }
    }

    /// Switches planted bugs on, in the relay, the clients and the simulated stores.
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bugs: zerok_core::bugs::PlantedBugs) {
        self.bugs = bugs;
        self.store.skip_dedupe = bugs.skip_dedupe;
        let now = self.now_for(0);
        for r in 0..self.relays.len() {
            self.relays[r].config.bugs = bugs;
            let seed = self.rng.bytes();
            self.relays[r].relay = Some(Relay::new(self.relays[r].config.clone(), seed, now, self.store.snapshots()));
        }
        for i in 0..self.devices.len() {
            self.devices[i].config.bugs = bugs;
            let seed = self.rng.bytes();
            let d = &mut self.devices[i];
            d.client = Some(Client::new(d.config.clone(), d.store.state.clone(), seed, now));
        }
    }

    /// A hash of everything that happened so far (for determinism checks).
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    fn now_for(&self, skew_ms: i64) -> Now {
        let unix = (EPOCH_MS + self.now_us / 1000).saturating_add_signed(skew_ms);
        Now::new(self.now_us, unix)
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((at, seq)));
        self.events.insert(seq, ev);
    }

    fn latency(&mut self) -> u64 {
        self.net.latency_us + self.rng.below(self.net.jitter_us + 1)
    }

    /// The time of the next thing that will happen, if anything will.
    pub fn next_time(&self) -> Option<u64> {
        let heap = self.heap.peek().map(|Reverse((t, _))| *t);
        let timers = self.devices.iter().filter(|d| d.client.is_some()).filter_map(|d| d.timer);
        let relay_timers = self.relays.iter().filter(|r| r.relay.is_some()).filter_map(|r| r.timer);
        heap.into_iter().chain(timers).chain(relay_timers).min()
    }

    /// Processes the next event or timer; false when nothing is left to happen.
    pub fn advance(&mut self, obs: &mut dyn Observer) -> bool {
        let Some(t) = self.next_time() else { return false };
        self.now_us = self.now_us.max(t);
        self.steps += 1;
        self.trace.update(&self.now_us.to_le_bytes());
        if self.heap.peek().is_some_and(|Reverse((ht, _))| *ht <= t) {
            if let Some(Reverse((_, seq))) = self.heap.pop()
                && let Some(ev) = self.events.remove(&seq)
            {
                self.process(ev, obs);
            }
            return true;
        }
        if let Some(r) = (0..self.relays.len())
            .find(|r| self.relays[*r].relay.is_some() && self.relays[*r].timer.is_some_and(|rt| rt <= t))
        {
            self.relays[r].timer = None;
            self.relay_input(r, RelayInput::Timeout, obs);
            return true;
        }
        if let Some(d) = (0..self.devices.len())
            .find(|i| self.devices[*i].client.is_some() && self.devices[*i].timer.is_some_and(|dt| dt <= t))
        {
            self.devices[d].timer = None;
            self.device_input(d, ClientInput::Timeout, obs);
        }
        true
    }

    fn process(&mut self, ev: Ev, obs: &mut dyn Observer) {
        match ev {
            Ev::ConnectDone { device, conn, incarnation } => {
                if self.devices[device].incarnation != incarnation || self.devices[device].client.is_none() {
                    return;
                }
                // Devices move between relays: each connection goes to any of them (the list in
                // the connection string, or DNS), and fails if that one is down.
                let relay = match self.reachable_relays.min(self.relays.len()) {
                    0 | 1 => 0,
                    n => self.rng.below(n as u64) as usize,
                };
                if self.devices[device].partitioned || self.relays[relay].relay.is_none() {
                    return self.device_input(device, ClientInput::Disconnected { conn }, obs);
                }
                let id = self.next_link;
                self.next_link += 1;
                let relay_conn = ConnId(id);
                self.links.insert(
                    id,
                    Link {
                        device,
                        relay,
                        client_conn: conn,
                        relay_conn,
                        open: true,
                        up_last: self.now_us,
                        down_last: self.now_us,
                        up_queue: Default::default(),
                        down_queue: Default::default(),
                        flush_scheduled: false,
                    },
                );
                let peer = self.devices[device].config.endpoint_id;
                self.relay_input(relay, RelayInput::Accepted { conn: relay_conn, peer, source: Source::UNKNOWN }, obs);
                self.device_input(device, ClientInput::Connected { conn }, obs);
            }
            Ev::Flush { link } => self.flush(link, obs),
            Ev::ToRelay { link, bytes } => self.arrive(link, true, bytes, obs),
            Ev::ToDevice { link, bytes } => self.arrive(link, false, bytes, obs),
            Ev::CloseAtRelay { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.open = false;
                    let (relay, conn) = (l.relay, l.relay_conn);
                    self.relay_input(relay, RelayInput::Closed { conn }, obs);
                }
                self.maybe_forget(link);
            }
            Ev::CloseAtDevice { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.open = false;
                    let (device, conn) = (l.device, l.client_conn);
                    self.device_input(device, ClientInput::Disconnected { conn }, obs);
                }
                self.maybe_forget(link);
            }
            Ev::RelayStoreDone { relay, op, incarnation } => {
                if incarnation != self.relays[relay].incarnation {
                    return;
                }
                let Some(request) = self.relays[relay].pending.remove(&op) else { return };
                #[allow(unused_mut, reason = "only an adversary rewrites results")]
                let mut result = self.store.apply(&request);
                obs.relay_store(&request, &result);
                if let (RelayStoreOp::Append { group_id, .. }, RelayStoreResult::Stored { .. }) = (&request, &result) {
                    self.hint_others(relay, *group_id);
                }
                if self.commit_crash_one_in > 0 && self.rng.below(self.commit_crash_one_in) == 0 {
                    // Committed, and the relay dies before it hears so: an outcome unknown to
                    // it and to the device, which sends the push again (to any relay).
                    return self.crash_one_relay(relay, obs);
                }
                if let (Some(adv), zerok_core::relay::RelayStoreResult::Blobs { blobs, .. }) =
                    (&mut self.adversary, &mut result)
                {
                    adv.tamper(&mut self.rng, blobs);
                }
                self.trace.update(format!("{result:?}").as_bytes());
                self.relay_input(relay, RelayInput::StoreDone { op, result }, obs);
            }
            Ev::Hint { relay, group } => self.relay_input(relay, RelayInput::GroupChanged { group }, obs),
            Ev::DeviceStoreDone { device, op, incarnation } => {
                if incarnation != self.devices[device].incarnation {
                    return;
                }
                let Some(request) = self.devices[device].pending.remove(&op) else { return };
                let result = self.devices[device].store.apply(&request);
                obs.device_store(device, &request, result.is_ok());
                self.device_input(device, ClientInput::StoreDone { op, result }, obs);
            }
        }
    }

    /// A chunk arrives: delivered at once, unless its device is held or chunks of its stream
    /// are still queued (then it queues behind them, so a stream stays in order).
    fn arrive(&mut self, link: u64, up: bool, bytes: Vec<u8>, obs: &mut dyn Observer) {
        let Some(l) = self.links.get_mut(&link) else { return };
        let held = self.devices[l.device].held;
        let queue = if up { &mut l.up_queue } else { &mut l.down_queue };
        if !held && queue.is_empty() {
            return self.deliver(link, up, bytes, obs);
        }
        queue.push_back(bytes);
        if held {
            self.schedule_flush(link);
        } else {
            self.flush(link, obs);
        }
    }

    fn schedule_flush(&mut self, link: u64) {
        let Some(l) = self.links.get_mut(&link) else { return };
        if !l.flush_scheduled {
            l.flush_scheduled = true;
            let at = self.now_us + HOLD_RETRY_US;
            self.schedule(at, Ev::Flush { link });
        }
    }

    /// Delivers a link's queued streams, each in order, once its device is released.
    fn flush(&mut self, link: u64, obs: &mut dyn Observer) {
        let Some(l) = self.links.get_mut(&link) else { return };
        l.flush_scheduled = false;
        if self.devices[l.device].held {
            return self.schedule_flush(link);
        }
        for up in [true, false] {
            loop {
                let Some(l) = self.links.get_mut(&link) else { return };
                let queue = if up { &mut l.up_queue } else { &mut l.down_queue };
                let Some(bytes) = queue.pop_front() else { break };
                self.deliver(link, up, bytes, obs);
            }
        }
    }

    fn deliver(&mut self, link: u64, up: bool, bytes: Vec<u8>, obs: &mut dyn Observer) {
        let Some(l) = self.links.get(&link).filter(|l| l.open) else { return };
        let (device, relay, client_conn, relay_conn) = (l.device, l.relay, l.client_conn, l.relay_conn);
        if up {
            self.relay_input(relay, RelayInput::Received { conn: relay_conn, bytes }, obs);
        } else {
            self.device_input(device, ClientInput::Received { conn: client_conn, bytes }, obs);
        }
    }

    fn maybe_forget(&mut self, link: u64) {
        if self.links.get(&link).is_some_and(|l| !l.open) {
            self.links.remove(&link);
        }
    }

    /// Tells the other relays, each after a delay and some never, that `from` appended to
    /// `group`.
    fn hint_others(&mut self, from: usize, group: [u8; 32]) {
        for relay in (0..self.relays.len()).filter(|r| *r != from) {
            if self.rng.below(100) >= self.lost_hint_percent {
                let at = self.now_us + self.latency() + self.rng.below(50_000);
                self.schedule(at, Ev::Hint { relay, group });
            }
        }
    }

    pub(crate) fn relay_input(&mut self, r: usize, input: RelayInput, obs: &mut dyn Observer) {
        let now = self.now_for(0);
        let Some(relay) = self.relays[r].relay.as_mut() else { return };
        relay.handle_input(now, input);
        self.drain_relay(r, obs);
    }

    fn drain_relay(&mut self, r: usize, _obs: &mut dyn Observer) {
        loop {
            let Some(relay) = self.relays[r].relay.as_mut() else { return };
            match relay.poll_output() {
                RelayOutput::Transmit { conn, bytes } => {
                    if let Some((&id, _)) =
                        self.links.iter().find(|(_, l)| l.relay == r && l.relay_conn == conn && l.open)
                    {
                        self.send_chunks(id, bytes, false);
                    }
                }
                RelayOutput::Close { conn } => {
                    if let Some((&id, _)) = self.links.iter().find(|(_, l)| l.relay == r && l.relay_conn == conn) {
                        let at = self.links[&id].down_last.max(self.now_us) + self.latency();
                        self.schedule(at, Ev::CloseAtDevice { link: id });
                    }
                }
                RelayOutput::Store { op, request } => {
                    let node = &mut self.relays[r];
                    let mut at = self.now_us + self.rng.below(self.net.store_delay_us + 1);
                    if matches!(request, RelayStoreOp::Append { .. }) {
                        at = at.max(node.last_append_at);
                        node.last_append_at = at;
                    }
                    node.pending.insert(op, request);
                    let incarnation = node.incarnation;
                    self.schedule(at, Ev::RelayStoreDone { relay: r, op, incarnation });
                }
                RelayOutput::Event(e) => {
                    if self.tracing {
                        eprintln!("TRACE {} relay{r} {e:?}", self.now_us);
                    }
                    self.trace.update(format!("{e:?}").as_bytes());
                    if let zerok_core::relay::RelayEvent::Rejected { reason, .. } = e {
                        *self.rejections.entry(format!("{reason:?}")).or_insert(0) += 1;
                    }
                }
                RelayOutput::Timeout(deadline) => {
                    self.relays[r].timer = deadline.map(|i| i.0);
                    return;
                }
            }
        }
    }

    /// Feeds an app command to a running device.
    pub fn command(
        &mut self,
        device: usize,
        command: Command,
        obs: &mut dyn Observer,
    ) -> Option<Result<Option<[u8; 16]>, zerok_core::client::CommandError>> {
        let now = self.now_for(self.devices[device].skew_ms);
        let client = self.devices[device].client.as_mut()?;
        self.trace.update(format!("cmd {device} {command:?}").as_bytes());
        let shown = self.tracing.then(|| format!("{command:?}").chars().take(60).collect::<String>());
        let result = client.command(now, command);
        if let Some(shown) = shown {
            eprintln!("TRACE {} dev{device} command {shown} -> {result:?}", self.now_us);
        }
        self.drain_device(device, obs);
        Some(result)
    }

    pub(crate) fn device_input(&mut self, device: usize, input: ClientInput, obs: &mut dyn Observer) {
        if self.tracing {
            let what = match &input {
                ClientInput::Received { conn, bytes } => format!("recv conn {} {}B", conn.0, bytes.len()),
                other => format!("{other:?}").chars().take(80).collect(),
            };
            eprintln!("TRACE {} dev{device} in {what}", self.now_us);
        }
        let now = self.now_for(self.devices[device].skew_ms);
        let Some(client) = self.devices[device].client.as_mut() else { return };
        client.handle_input(now, input);
        self.drain_device(device, obs);
    }

    fn drain_device(&mut self, device: usize, obs: &mut dyn Observer) {
        loop {
            let Some(client) = self.devices[device].client.as_mut() else { return };
            match client.poll_output() {
                ClientOutput::Connect { conn, .. } => {
                    let at = self.now_us + self.latency();
                    let incarnation = self.devices[device].incarnation;
                    self.schedule(at, Ev::ConnectDone { device, conn, incarnation });
                }
                ClientOutput::Transmit { conn, bytes } => {
                    if self.tracing {
                        eprintln!("TRACE {} dev{device} out conn {} {}B", self.now_us, conn.0, bytes.len());
                    }
                    if let Some((&id, _)) =
                        self.links.iter().find(|(_, l)| l.device == device && l.client_conn == conn && l.open)
                    {
                        self.send_chunks(id, bytes, true);
                    }
                }
                ClientOutput::Close { conn } => {
                    if let Some((&id, _)) = self.links.iter().find(|(_, l)| l.device == device && l.client_conn == conn)
                    {
                        let at = self.links[&id].up_last.max(self.now_us) + self.latency();
                        self.schedule(at, Ev::CloseAtRelay { link: id });
                    }
                }
                ClientOutput::Store { op, request } => {
                    self.devices[device].pending.insert(op, request);
                    // A device store applies its operations in the order they were issued (as
                    // SQLite's single writer and IndexedDB's transactions do): each completes no
                    // earlier than the one before it.
                    let at = (self.now_us + self.rng.below(self.net.store_delay_us + 1))
                        .max(self.devices[device].last_store_done);
                    self.devices[device].last_store_done = at;
                    let incarnation = self.devices[device].incarnation;
                    self.schedule(at, Ev::DeviceStoreDone { device, op, incarnation });
                }
                ClientOutput::Event(e) => {
                    if self.tracing {
                        eprintln!("TRACE {} dev{device} event {e:?}", self.now_us);
                    }
                    self.trace.update(format!("{device} {e:?}").as_bytes());
                    obs.device_event(device, &e);
                    self.devices[device].events.push(e);
                }
                ClientOutput::Timeout(deadline) => {
                    self.devices[device].timer = deadline.map(|i| i.0);
                    return;
                }
            }
        }
    }

    /// Sends bytes over a link split at random points, in order, with latency.
    fn send_chunks(&mut self, link: u64, bytes: Vec<u8>, up: bool) {
        self.trace.update(&bytes);
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = (1 + self.rng.below(rest.len() as u64 * 2) as usize).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let lat = self.latency();
            let Some(l) = self.links.get_mut(&link) else { return };
            let last = if up { &mut l.up_last } else { &mut l.down_last };
            let at = (*last).max(self.now_us + lat);
            *last = at;
            let ev = if up {
                Ev::ToRelay { link, bytes: chunk.to_vec() }
            } else {
                Ev::ToDevice { link, bytes: chunk.to_vec() }
            };
            self.schedule(at, ev);
        }
    }

    /// Cuts every link of a device at once (bytes in flight are lost).
    pub fn cut_device_links(&mut self, device: usize, obs: &mut dyn Observer) {
        let ids: Vec<u64> =
            self.links.iter().filter(|(_, l)| l.device == device && l.open).map(|(id, _)| *id).collect();
        for id in ids {
            self.cut_link(id, obs);
        }
    }

    fn cut_link(&mut self, id: u64, obs: &mut dyn Observer) {
        let Some(l) = self.links.get_mut(&id) else { return };
        l.open = false;
        let (device, relay, client_conn, relay_conn) = (l.device, l.relay, l.client_conn, l.relay_conn);
        self.links.remove(&id);
        self.relay_input(relay, RelayInput::Closed { conn: relay_conn }, obs);
        self.device_input(device, ClientInput::Disconnected { conn: client_conn }, obs);
    }

    /// Crashes a device: its client, unsynced writes and connections are gone.
    pub fn crash_device(&mut self, device: usize, obs: &mut dyn Observer) {
        let ids: Vec<u64> = self.links.iter().filter(|(_, l)| l.device == device).map(|(id, _)| *id).collect();
        self.devices[device].client = None;
        for id in ids {
            if let Some(l) = self.links.remove(&id) {
                self.relay_input(l.relay, RelayInput::Closed { conn: l.relay_conn }, obs);
            }
        }
        let d = &mut self.devices[device];
        d.pending.clear();
        d.incarnation += 1;
        d.timer = None;
        #[cfg(feature = "planted-bugs")]
        if self.bugs.drop_outbox_on_crash {
            d.store.state.outbox.clear();
        }
    }

    /// Restarts a crashed device from its durable store and launches it.
    pub fn restart_device(&mut self, device: usize, obs: &mut dyn Observer) {
        if self.devices[device].client.is_some() {
            return;
        }
        let seed = self.rng.bytes();
        let now = self.now_for(self.devices[device].skew_ms);
        let d = &mut self.devices[device];
        d.client = Some(Client::new(d.config.clone(), d.store.state.clone(), seed, now));
        self.command(device, Command::Launch, obs);
    }

    /// Crashes every relay: connections drop, unsynced writes are lost.
    pub fn crash_relay(&mut self, obs: &mut dyn Observer) {
        for r in 0..self.relays.len() {
            self.crash_one_relay(r, obs);
        }
    }

    /// Crashes relay `r`: its connections drop, its writes in flight are lost.
    pub fn crash_one_relay(&mut self, r: usize, obs: &mut dyn Observer) {
        let node = &mut self.relays[r];
        node.relay = None;
        node.pending.clear();
        node.incarnation += 1;
        node.timer = None;
        let ids: Vec<u64> = self.links.iter().filter(|(_, l)| l.relay == r).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(l) = self.links.remove(&id) {
                self.device_input(l.device, ClientInput::Disconnected { conn: l.client_conn }, obs);
            }
        }
    }

    /// Remembers the relay's store as it is now (for a later rollback), unless an older
    /// snapshot is kept already.
    pub fn snapshot_relay(&mut self) {
        if self.snapshot.is_none() {
            self.snapshot = Some(self.store.clone());
        }
    }

    /// The highest head of the relay's groups in the snapshot kept for a rollback or fork.
    pub fn snapshot_head(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.groups.values().map(|g| g.head).max().unwrap_or(0))
    }

    /// The highest head of the relay's groups in its store.
    pub fn relay_head(&self) -> u64 {
        self.store.groups.values().map(|g| g.head).max().unwrap_or(0)
    }

    /// Whether every running relay knows each group's head as the store holds it.
    pub fn relays_current(&self) -> bool {
        self.relays
            .iter()
            .filter_map(|r| r.relay.as_ref())
            .all(|relay| self.store.groups.iter().all(|(id, g)| relay.group_head(id).is_none_or(|head| head == g.head)))
    }

    /// The relay "loses" everything since the snapshot: crash, restore, restart.
    pub fn rollback_relay(&mut self, obs: &mut dyn Observer) -> bool {
        self.restore_snapshot(crate::adversary::Attack::Rollback, obs)
    }

    /// The relay forks its log into two worlds. The `isolated` devices keep the history they
    /// have seen (they are cut off for now); everyone else goes on from the old snapshot.
    /// When the isolated devices come back, the relay shows them the other world.
    pub fn fork_relay(&mut self, isolated: &[usize], obs: &mut dyn Observer) -> bool {
        if self.snapshot.is_none() {
            return false;
        }
        for &d in isolated {
            self.devices[d].partitioned = true;
            self.cut_device_links(d, obs);
        }
        self.restore_snapshot(crate::adversary::Attack::Fork, obs)
    }

    fn restore_snapshot(&mut self, attack: crate::adversary::Attack, obs: &mut dyn Observer) -> bool {
        if !self.restore_backup(obs) {
            return false;
        }
        if let Some(adv) = &mut self.adversary {
            *adv.done.entry(attack).or_insert(0) += 1;
        }
        true
    }

    /// The honest relay's store is damaged while it is down: crash, `damage`, restart (the
    /// store checks and repairs its log chain as it opens).
    pub fn damage_relay(&mut self, obs: &mut dyn Observer, damage: impl FnOnce(&mut RelayStore, &mut CoreRng)) {
        self.crash_relay(obs);
        damage(&mut self.store, &mut self.rng);
        self.restart_relay(obs);
    }

    /// The operator restores the backup kept by [`Self::snapshot_relay`], keeping the disk's
    /// full flag; returns whether there was one.
    pub fn restore_backup(&mut self, obs: &mut dyn Observer) -> bool {
        let Some(old) = self.snapshot.take() else { return false };
        self.damage_relay(obs, |store, _| {
            let full = store.full;
            *store = old;
            store.full = full;
        });
        true
    }

    /// Restarts every crashed relay from the durable store.
    pub fn restart_relay(&mut self, obs: &mut dyn Observer) {
        for r in 0..self.relays.len() {
            self.restart_one_relay(r, obs);
        }
    }

    /// Restarts relay `r`, if crashed, from the durable store.
    pub fn restart_one_relay(&mut self, r: usize, obs: &mut dyn Observer) {
        if self.relays[r].relay.is_some() {
            return;
        }
        // An honest relay's store checks its log chain as it opens (a lying one would not).
        #[cfg(feature = "planted-bugs")]
        let repair = self.adversary.is_none() && !self.bugs.no_store_repair;
        #[cfg(not(feature = "planted-bugs"))]
        let repair = self.adversary.is_none();
        if repair {
            self.store.repair();
        }
        #[cfg(feature = "planted-bugs")]
        {
            self.store.reuse_cursor_once = self.bugs.cursor_reuse_after_restart;
        }
        let snapshots = self.store.snapshots();
        let seed = self.rng.bytes();
        self.relays[r].relay = Some(Relay::new(self.relays[r].config.clone(), seed, self.now_for(0), snapshots));
        self.drain_relay(r, obs);
    }

    /// Runs the relay with retention on: a blob is pruned once every member acknowledged it.
    /// Call before anything happens.
    pub fn set_retention_all_acked(&mut self) {
        for r in 0..self.relays.len() {
            self.relays[r].config.limits.retention_all_acked = true;
        }
        self.start_relays();
    }

    /// Runs `count` relays over the one store, as relays over one PostgreSQL: each with the
    /// shared-store behaviour (groups looked up before admitting, heads refreshed on hints and
    /// by the poll), the same identity, and `lost_hint_percent` of hints lost. Call before
    /// anything happens.
    pub fn set_relays(&mut self, count: usize, lost_hint_percent: u64) {
        let mut config = self.relays[0].config.clone();
        config.shared_store = true;
        let node = |config: &RelayConfig| RelayNode {
            relay: None,
            config: config.clone(),
            pending: BTreeMap::new(),
            incarnation: 0,
            timer: None,
            last_append_at: 0,
        };
        self.relays = (0..count).map(|_| node(&config)).collect();
        self.lost_hint_percent = lost_hint_percent;
        self.start_relays();
    }

    fn start_relays(&mut self) {
        for r in 0..self.relays.len() {
            let seed = self.rng.bytes();
            let relay = Relay::new(self.relays[r].config.clone(), seed, self.now_for(0), self.store.snapshots());
            self.relays[r].relay = Some(relay);
        }
    }

    /// A short description of every node, for failure reports.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "t={}µs relays={:?} store_full={} heads={:?} rejections={:?} relay_conns_heads={:?} relay_pending_ops={:?} links={:?} queued_events={:?}\n",
            self.now_us,
            self.relays.iter().map(|r| if r.relay.is_some() { "up" } else { "down" }).collect::<Vec<_>>(),
            self.store.full,
            self.store.groups.values().map(|g| g.head).collect::<Vec<_>>(),
            self.rejections,
            self.relays
                .iter()
                .map(|r| r.relay.as_ref().map(|r| (
                    r.connection_count(),
                    self.store.groups.keys().filter_map(|g| r.group_head(g)).collect::<Vec<_>>()
                )))
                .collect::<Vec<_>>(),
            self.relays.iter().map(|r| r.pending.len()).collect::<Vec<_>>(),
            self.links
                .values()
                .map(|l| (
                    l.device,
                    l.relay,
                    l.client_conn.0,
                    l.relay_conn.0,
                    l.open,
                    self.relays[l.relay].relay.as_ref().and_then(|r| r.connection_phase(l.relay_conn))
                ))
                .collect::<Vec<_>>(),
            self.heap
                .iter()
                .map(|r| (r.0.0, format!("{:?}", self.events.get(&r.0.1)).chars().take(60).collect::<String>()))
                .collect::<Vec<_>>()
        );
        for (i, d) in self.devices.iter().enumerate() {
            let state = match &d.client {
                Some(c) => format!(
                    "{:?} status={:?} unsent={} cursor={} member={}",
                    c,
                    c.status(),
                    c.unsent(),
                    c.cursor(),
                    c.membership().is_some()
                ),
                None => "crashed".into(),
            };
            let notable: Vec<String> = d
                .events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        ClientEvent::Equivocation { .. }
                            | ClientEvent::Rollback { .. }
                            | ClientEvent::Forked { .. }
                            | ClientEvent::Withheld { .. }
                            | ClientEvent::Tampered { .. }
                            | ClientEvent::RelayMisbehaved { .. }
                            | ClientEvent::Truncated { .. }
                            | ClientEvent::GroupReady
                    )
                })
                .take(8)
                .map(|e| format!("{e:?}").chars().take(120).collect())
                .collect();
            let tail: Vec<String> = d
                .events
                .iter()
                .rev()
                .filter(|e| !matches!(e, ClientEvent::SyncProgress { .. } | ClientEvent::InviteClosed))
                .take(14)
                .map(|e| format!("{e:?}").chars().take(90).collect())
                .collect();
            out.push_str(&format!(
                "device {i}: {state} partitioned={} full={} outbox(durable)={} inbox={}\n  notable: {notable:?}\n  last events: {tail:?}\n",
                d.partitioned,
                d.store.full,
                d.store.state.outbox.len(),
                d.store.inbox.len()
            ));
        }
        out
    }

    /// Nothing is scheduled: no bytes, store operations or connects in flight.
    pub fn quiet_network(&self) -> bool {
        self.heap.is_empty()
    }
}
