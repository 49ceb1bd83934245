//! Injected randomness: one 32-byte seed from the host, expanded with ChaCha20.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

/// The core's only source of randomness: a ChaCha20 stream from a host-given seed.
///
/// The same seed always yields the same keys, nonces and jitter, which is what lets a
/// simulation replay byte for byte.
pub struct CoreRng(ChaCha20Rng);

impl CoreRng {
    /// A generator expanded from `seed`. The host must pass 32 bytes of real entropy in
    /// production, and a fixed seed in tests.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        CoreRng(ChaCha20Rng::from_seed(seed))
    }

    /// 32 fresh bytes, to seed a child generator.
    pub fn fork_seed(&mut self) -> Zeroizing<[u8; 32]> {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.0.fill_bytes(seed.as_mut());
        seed
    }

    /// A fresh array of random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.0.fill_bytes(&mut out);
        out
    }

    /// A uniformly random value in `0..bound` (`bound` > 0), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.0.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }
}

impl RngCore for CoreRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for CoreRng {}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// Hands snow a ChaCha20 stream seeded from the core's generator; every other primitive is
/// snow's pure-Rust default. One resolver serves one handshake.
pub(crate) struct SeededResolver {
    seed: Zeroizing<[u8; 32]>,
    inner: DefaultResolver,
}

impl SeededResolver {
    pub(crate) fn new(rng: &mut CoreRng) -> Box<Self> {
        Box::new(SeededResolver { seed: rng.fork_seed(), inner: DefaultResolver })
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(*self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        self.inner.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        self.inner.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        self.inner.resolve_cipher(choice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let mut a = CoreRng::from_seed([7; 32]);
        let mut b = CoreRng::from_seed([7; 32]);
        assert_eq!(a.bytes::<16>(), b.bytes::<16>());
        let fa = a.fork_seed();
        let fb = a.fork_seed();
        assert_ne!(*fa, *fb);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = CoreRng::from_seed([1; 32]);
        for bound in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below(bound) < bound.max(1));
            }
        }
        assert_eq!(r.below(0), 0);
    }
}
