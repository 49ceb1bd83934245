//! Padmé padding (Nikitin et al., PETS 2019): hides all but O(log log L) bits of a length.

/// The smallest padded length: short blobs are indistinguishable from each other.
pub const PAD_FLOOR: usize = 256;

/// The Padmé length for `len`: at most ~12% overhead, leaking O(log log len) bits.
pub const fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// The padded length of an inner plaintext of `len` bytes: Padmé with a [`PAD_FLOOR`] floor.
pub const fn padded_len(len: usize) -> usize {
    let p = padme(len);
    if p < PAD_FLOOR { PAD_FLOOR } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(padded_len(0), 256);
        assert_eq!(padded_len(256), 256);
        assert_eq!(padded_len(257), 272);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1_048_717), 1_081_344);
    }

    proptest! {
        #[test]
        fn padme_never_shrinks_and_overhead_is_bounded(len in 2usize..(1 << 24)) {
            let p = padme(len);
            prop_assert!(p >= len);
            prop_assert!((p - len) * 100 <= len * 12 + 100);
            prop_assert_eq!(padme(p), p, "padded lengths are fixed points");
        }
    }
}
