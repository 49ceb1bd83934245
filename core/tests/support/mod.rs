//! Shared builders for core's integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use proptest::prelude::*;
use zerok_core::wire::*;

/// One example of every frame type, in wire order, with fixed contents.
pub fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::Hello(Hello { min_version: 1, max_version: 1, acked_cursor: 41 }),
        Frame::Welcome(Welcome { version: 1, head: 1000, earliest: 1, max_envelope: 1_081_389, max_page_blobs: 256 }),
        Frame::Push(Push { push_id: [0x11; 16], envelope: Bytes(vec![0xEE; 8]) }),
        Frame::PushAck(PushAck { push_id: [0x11; 16], cursor: 300 }),
        Frame::Pull(Pull { after: 299, limit: 100 }),
        Frame::Blobs(Blobs {
            after: 299,
            prev_chain: [0x44; 32],
            blobs: vec![StoredBlob {
                cursor: 300,
                push_id: [0x22; 16],
                stored_at_ms: 1_700_000_000_000,
                envelope: Bytes(vec![1, 2, 3]),
                chain: [0x55; 32],
            }],
            has_more: false,
            max_cursor: 300,
        }),
        Frame::Notify(Notify { cursor: 301 }),
        Frame::Ack(Ack { cursor: 300 }),
        Frame::RegisterDevice(RegisterDevice { access_key: [0x33; 32] }),
        Frame::DeviceRegistered(DeviceRegistered { access_key: [0x33; 32] }),
        Frame::SlotRegister(SlotRegister { slot: 0xABCDE, expires_at_ms: 1_700_000_600_000 }),
        Frame::SlotRegistered(SlotRegistered { slot: 0xABCDE }),
        Frame::SlotOpen(SlotOpen { slot: 0xABCDE }),
        Frame::SlotMessage(SlotMessage { slot: 0xABCDE, data: Bytes(vec![0x44; 4]) }),
        Frame::SlotClose(SlotClose { slot: 0xABCDE, reason: SlotCloseReason::Failed }),
        Frame::Truncated(Truncated { earliest: 42 }),
        Frame::Error(ErrorFrame { code: ErrorCode::RateLimited, retry_after_ms: 1500 }),
        Frame::Ping(Ping { nonce: 7 }),
        Frame::Pong(Pong { nonce: 7 }),
        Frame::Bye(Bye { reason: ByeReason::Normal }),
    ]
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::UnsupportedVersion),
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::Unauthorized),
        Just(ErrorCode::QuotaExceeded),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::SlotTaken),
        Just(ErrorCode::Expired),
        Just(ErrorCode::Unavailable),
        Just(ErrorCode::ShuttingDown),
    ]
}

/// Any frame with arbitrary contents.
pub fn any_frame() -> impl Strategy<Value = Frame> {
    let stored = (any::<u64>(), any::<[u8; 16]>(), any::<u64>(), bytes(64), any::<[u8; 32]>()).prop_map(
        |(cursor, push_id, stored_at_ms, envelope, chain)| StoredBlob {
            cursor,
            push_id,
            stored_at_ms,
            envelope,
            chain,
        },
    );
    let reason = prop_oneof![
        Just(SlotCloseReason::Done),
        Just(SlotCloseReason::Failed),
        Just(SlotCloseReason::Expired),
        Just(SlotCloseReason::Cancelled)
    ];
    let bye = prop_oneof![
        Just(ByeReason::Normal),
        Just(ByeReason::Shutdown),
        Just(ByeReason::Idle),
        Just(ByeReason::ProtocolViolation)
    ];
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u64>()).prop_map(|(a, b, c)| Frame::Hello(Hello {
            min_version: a,
            max_version: b,
            acked_cursor: c
        })),
        (any::<u16>(), any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(v, h, e, m, p)| {
            Frame::Welcome(Welcome { version: v, head: h, earliest: e, max_envelope: m, max_page_blobs: p })
        }),
        (any::<[u8; 16]>(), bytes(2048)).prop_map(|(push_id, envelope)| Frame::Push(Push { push_id, envelope })),
        (any::<[u8; 16]>(), any::<u64>()).prop_map(|(push_id, cursor)| Frame::PushAck(PushAck { push_id, cursor })),
        (any::<u64>(), any::<u32>()).prop_map(|(after, limit)| Frame::Pull(Pull { after, limit })),
        (any::<u64>(), any::<[u8; 32]>(), proptest::collection::vec(stored, 0..5), any::<bool>(), any::<u64>())
            .prop_map(|(after, prev_chain, blobs, has_more, max_cursor)| Frame::Blobs(Blobs {
                after,
                prev_chain,
                blobs,
                has_more,
                max_cursor
            })),
        any::<u64>().prop_map(|cursor| Frame::Notify(Notify { cursor })),
        any::<u64>().prop_map(|cursor| Frame::Ack(Ack { cursor })),
        any::<[u8; 32]>().prop_map(|access_key| Frame::RegisterDevice(RegisterDevice { access_key })),
        any::<[u8; 32]>().prop_map(|access_key| Frame::DeviceRegistered(DeviceRegistered { access_key })),
        (any::<u32>(), any::<u64>())
            .prop_map(|(slot, expires_at_ms)| Frame::SlotRegister(SlotRegister { slot, expires_at_ms })),
        any::<u32>().prop_map(|slot| Frame::SlotRegistered(SlotRegistered { slot })),
        any::<u32>().prop_map(|slot| Frame::SlotOpen(SlotOpen { slot })),
        (any::<u32>(), bytes(256)).prop_map(|(slot, data)| Frame::SlotMessage(SlotMessage { slot, data })),
        (any::<u32>(), reason).prop_map(|(slot, reason)| Frame::SlotClose(SlotClose { slot, reason })),
        any::<u64>().prop_map(|earliest| Frame::Truncated(Truncated { earliest })),
        (error_code(), any::<u64>())
            .prop_map(|(code, retry_after_ms)| Frame::Error(ErrorFrame { code, retry_after_ms })),
        any::<u64>().prop_map(|nonce| Frame::Ping(Ping { nonce })),
        any::<u64>().prop_map(|nonce| Frame::Pong(Pong { nonce })),
        bye.prop_map(|reason| Frame::Bye(Bye { reason })),
    ]
}
