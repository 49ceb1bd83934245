//! The short code: 16 Crockford base32 characters typed by hand, `XXXX-XXXX-XXXX-XXXX`.
//!
//! 80 bits = 20-bit relay slot || 55-bit secret || 5-bit check symbol. The check is a weighted
//! sum over GF(32), so every single-character typo and every swap of two neighbours is caught
//! locally, before anything reaches the network.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::InviteError;
use crate::CoreRng;

/// Bits of the relay slot number.
pub const SLOT_BITS: u32 = 20;
/// Bits of the secret.
pub const SECRET_BITS: u32 = 55;
/// Characters in a short code, hyphens excluded.
pub const SHORT_CODE_CHARS: usize = 16;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A parsed short code.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ShortCode {
    slot: u32,
    secret: u64,
}

impl core::fmt::Debug for ShortCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ShortCode").field("slot", &self.slot).finish_non_exhaustive()
    }
}

impl ShortCode {
    /// A fresh code: random slot and secret.
    pub fn generate(rng: &mut CoreRng) -> Self {
        ShortCode { slot: rng.below(1 << SLOT_BITS) as u32, secret: rng.below(1 << SECRET_BITS) }
    }

    /// A code from its parts; `None` if either is out of range.
    pub fn from_parts(slot: u32, secret: u64) -> Option<Self> {
        (slot < (1 << SLOT_BITS) && secret < (1 << SECRET_BITS)).then_some(ShortCode { slot, secret })
    }

    /// The relay slot the inviter waits on.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The secret as the 7 big-endian bytes fed to SPAKE2.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 7]> {
        let mut out = zeroize::Zeroizing::new([0u8; 7]);
        if let Some(tail) = self.secret.to_be_bytes().get(1..) {
            out.copy_from_slice(tail);
        }
        out
    }

    /// The code as shown to people: `XXXX-XXXX-XXXX-XXXX`.
    pub fn display(&self) -> String {
        let symbols = self.symbols();
        let mut s = String::with_capacity(SHORT_CODE_CHARS + 3);
        for (i, v) in symbols.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(symbol_char(*v));
        }
        s
    }

    /// Parses a typed code: case-insensitive, hyphens and spaces optional, `I`/`L` read as
    /// `1` and `O` as `0`. A typo is reported as [`InviteError::Checksum`].
    pub fn parse(input: &str) -> Result<Self, InviteError> {
        let mut symbols = [0u8; SHORT_CODE_CHARS];
        let mut n = 0usize;
        for c in input.chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let v = symbol_value(c).ok_or(InviteError::InvalidCharacter)?;
            *symbols.get_mut(n).ok_or(InviteError::WrongLength)? = v;
            n += 1;
        }
        if n != SHORT_CODE_CHARS {
            return Err(InviteError::WrongLength);
        }
        let (data, check) = symbols.split_at(SHORT_CODE_CHARS - 1);
        if check != [checksum(data)] {
            return Err(InviteError::Checksum);
        }
        let value = data.iter().fold(0u128, |acc, v| (acc << 5) | u128::from(*v));
        let slot = (value >> SECRET_BITS) as u32;
        let secret = (value & ((1u128 << SECRET_BITS) - 1)) as u64;
        Ok(ShortCode { slot, secret })
    }

    fn symbols(&self) -> [u8; SHORT_CODE_CHARS] {
        let value = (u128::from(self.slot) << SECRET_BITS) | u128::from(self.secret);
        let mut out = [0u8; SHORT_CODE_CHARS];
        for (i, s) in out.iter_mut().take(SHORT_CODE_CHARS - 1).enumerate() {
            *s = ((value >> (5 * (SHORT_CODE_CHARS - 2 - i))) & 31) as u8;
        }
        let check = checksum(out.get(..SHORT_CODE_CHARS - 1).unwrap_or_default());
        if let Some(last) = out.last_mut() {
            *last = check;
        }
        out
    }
}

fn symbol_char(v: u8) -> char {
    char::from(ALPHABET.get(usize::from(v & 31)).copied().unwrap_or(b'0'))
}

fn symbol_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        other => other,
    };
    ALPHABET.iter().position(|&a| char::from(a) == c).and_then(|p| u8::try_from(p).ok())
}

/// Multiplication in GF(32) modulo the primitive polynomial x^5 + x^2 + 1.
fn gf32_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & 0x20 != 0 {
            a ^= 0b10_0101;
        }
    }
    product
}

/// The check symbol: Σ αⁱ⁺¹·vᵢ over GF(32), so that the whole code (check weighted by α⁰ = 1)
/// sums to zero. Distinct non-zero weights catch every substitution and adjacent swap.
fn checksum(data: &[u8]) -> u8 {
    let mut weight = 2u8; // α¹
    let mut sum = 0u8;
    for v in data {
        sum ^= gf32_mul(weight, *v);
        weight = gf32_mul(weight, 2);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip_and_lenient_input() {
        let code = ShortCode::from_parts(0xABCDE, 0x12_3456_789A_BCDE).unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        assert_eq!(ShortCode::parse(&shown).unwrap(), code);
        assert_eq!(ShortCode::parse(&shown.to_lowercase()).unwrap(), code);
        assert_eq!(ShortCode::parse(&shown.replace('-', "")).unwrap(), code);
        let confusable = shown.replace('1', "l").replace('0', "o");
        assert_eq!(ShortCode::parse(&confusable).unwrap(), code);
    }

    #[test]
    fn every_single_typo_and_adjacent_swap_is_caught() {
        let mut rng = CoreRng::from_seed([5; 32]);
        for _ in 0..50 {
            let code = ShortCode::generate(&mut rng);
            let symbols = code.symbols();
            for i in 0..SHORT_CODE_CHARS {
                for v in 0..32u8 {
                    if v == symbols[i] {
                        continue;
                    }
                    let mut typo = symbols;
                    typo[i] = v;
                    assert_eq!(ShortCode::parse(&render(&typo)), Err(InviteError::Checksum));
                }
                if i + 1 < SHORT_CODE_CHARS && symbols[i] != symbols[i + 1] {
                    let mut swapped = symbols;
                    swapped.swap(i, i + 1);
                    assert_eq!(ShortCode::parse(&render(&swapped)), Err(InviteError::Checksum));
                }
            }
        }
    }

    #[test]
    fn bad_lengths_and_characters() {
        assert_eq!(ShortCode::parse(""), Err(InviteError::WrongLength));
        assert_eq!(ShortCode::parse("0000-0000-0000-000"), Err(InviteError::WrongLength));
        assert_eq!(ShortCode::parse("0000-0000-0000-00000"), Err(InviteError::WrongLength));
        assert_eq!(ShortCode::parse("0000-0000-0000-000U"), Err(InviteError::InvalidCharacter));
        assert_eq!(ShortCode::parse("0000-0000-0000-000é"), Err(InviteError::InvalidCharacter));
    }

    #[test]
    fn out_of_range_parts_are_refused() {
        assert!(ShortCode::from_parts(1 << SLOT_BITS, 0).is_none());
        assert!(ShortCode::from_parts(0, 1 << SECRET_BITS).is_none());
    }

    fn render(symbols: &[u8; SHORT_CODE_CHARS]) -> String {
        symbols.iter().map(|v| symbol_char(*v)).collect()
    }
}
