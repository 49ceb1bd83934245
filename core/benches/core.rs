//! Micro benchmarks of the core. `cargo bench -p zerok-core --bench core`, then
//! `python3 scripts/bench_report.py` prints the table for BENCHMARKS.md with ratios against
//! raw XChaCha20-Poly1305 measured in the same run.

#![allow(clippy::unwrap_used, reason = "benchmark set-up on known-good inputs")]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use zerok_core::CoreRng;
use zerok_core::crypto::Aead256;
use zerok_core::envelope::{BlobCipher, BlobKind, ChainLink};
use zerok_core::invite::{JoinRequest, ShortCode, SpakeExchange, pairing_prologue};
use zerok_core::keys::*;
use zerok_core::noise::*;
use zerok_core::wire::*;

const SIZES: [(usize, &str); 3] = [(1024, "1KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let push = Frame::Push(Push { push_id: [7; 16], envelope: Bytes(vec![0xAB; 1024]) });
    let bytes = push.to_bytes().unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_push_1KiB", |b| b.iter(|| black_box(&push).to_bytes().unwrap()));
    g.bench_function("decode_push_1KiB", |b| b.iter(|| Frame::decode(black_box(&bytes)).unwrap()));
    let ack = Frame::PushAck(PushAck { push_id: [7; 16], cursor: 123_456 });
    let ack_bytes = ack.to_bytes().unwrap();
    g.bench_function("encode_pushack", |b| b.iter(|| black_box(&ack).to_bytes().unwrap()));
    g.bench_function("decode_pushack", |b| b.iter(|| Frame::decode(black_box(&ack_bytes)).unwrap()));
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    let mut rng = CoreRng::from_seed([1; 32]);
    let group = GroupId::random(&mut rng);
    let cipher = BlobCipher::new(&group, 0, &EpochSecret::random(&mut rng));
    let signer = DeviceSigningKey::generate(&mut rng);
    let raw = Aead256::new(&[9; 32]);
    let link = ChainLink { seq: 1, prev_hash: [0; 32] };
    let mut g = c.benchmark_group("envelope");
    for (size, name) in SIZES {
        let payload = vec![0x5A; size];
        let sealed = cipher.seal(&signer, link, BlobKind::Data, &payload, &mut rng).unwrap().envelope;
        let raw_ct = raw.seal(&[3; 24], b"aad", &payload).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        if size >= 64 * 1024 {
            g.sample_size(20);
        }
        g.bench_with_input(BenchmarkId::new("raw_xchacha_seal", name), &payload, |b, p| {
            b.iter(|| raw.seal(&[3; 24], b"aad", black_box(p)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("seal", name), &payload, |b, p| {
            b.iter(|| cipher.seal(&signer, link, BlobKind::Data, black_box(p), &mut rng).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("raw_xchacha_open", name), &raw_ct, |b, ct| {
            b.iter(|| raw.open(&[3; 24], b"aad", black_box(ct)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("open", name), &sealed, |b, e| {
            b.iter(|| cipher.open(black_box(e)).unwrap())
        });
    }
    g.finish();
}

fn handshakes(c: &mut Criterion) {
    let mut rng = CoreRng::from_seed([2; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(&GroupId::random(&mut rng), 1, Intent::Member);
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ik_full", |b| {
        b.iter(|| {
            let (init, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
            let (_, m2) = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap().accept().unwrap();
            init.finish(&m2).unwrap()
        })
    });
    g.bench_function("ik_responder_only", |b| {
        let (_, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
        b.iter(|| IkResponder::read_first(&mut rng, &relay, &prologue, black_box(&m1)).unwrap().accept().unwrap())
    });
    let jk = NoiseKeypair::generate(&mut rng);
    let ik = NoiseKeypair::generate(&mut rng);
    let code = ShortCode::generate(&mut rng);
    let request = JoinRequest::new(NoiseKeypair::generate(&mut rng).public(), DeviceId([3; 32])).to_bytes();
    g.bench_function("short_code_pairing_spake2_xxpsk3", |b| {
        b.iter(|| {
            let (sj, mj) = SpakeExchange::start(&code, &mut rng);
            let (si, mi) = SpakeExchange::start(&code, &mut rng);
            let (pj, pi) = (sj.finish(&mi).unwrap(), si.finish(&mj).unwrap());
            let prologue = pairing_prologue(code.slot());
            let mut j = PairingHandshake::new(&mut rng, PairingRole::Joiner, &jk, &pj, &prologue, None).unwrap();
            let mut i = PairingHandshake::new(&mut rng, PairingRole::Inviter, &ik, &pi, &prologue, None).unwrap();
            i.read(&j.write(&[]).unwrap()).unwrap();
            j.read(&i.write(&[]).unwrap()).unwrap();
            i.read(&j.write(&request).unwrap()).unwrap();
            (i.finish().unwrap(), j.finish().unwrap())
        })
    });
    g.finish();
}

fn channel(c: &mut Criterion) {
    let mut rng = CoreRng::from_seed([3; 32]);
    let access = NoiseKeypair::generate(&mut rng);
    let relay = NoiseKeypair::generate(&mut rng);
    let prologue = ik_prologue(&[1; 32], &[2; 32]);
    let auth = ClientAuth::new(&GroupId::random(&mut rng), 1, Intent::Member);
    let (init, m1) = IkInitiator::start(&mut rng, &access, &relay.public(), &prologue, &auth).unwrap();
    let (rs, m2) = IkResponder::read_first(&mut rng, &relay, &prologue, &m1).unwrap().accept().unwrap();
    let mut tx = Channel::new(init.finish(&m2).unwrap(), &[]);
    let mut rx = Channel::new(rs, &[]);
    let frame = Frame::Push(Push { push_id: [1; 16], envelope: Bytes(vec![0x42; 1024 * 1024]) });
    let mut g = c.benchmark_group("channel");
    g.throughput(Throughput::Bytes(1024 * 1024));
    g.sample_size(20);
    g.bench_function("push_frame_1MiB_send_and_receive", |b| {
        b.iter(|| {
            let mut wire = Vec::with_capacity(1_100_000);
            tx.send(&frame, &mut wire).unwrap();
            rx.receive(&wire);
            rx.next_frame().unwrap().unwrap()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = frames, envelopes, handshakes, channel }
criterion_main!(benches);
