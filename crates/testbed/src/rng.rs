//! [`Rng`]: the deterministic random numbers of generated test data (xorshift64*): fast, no
//! dependency, the same sequence for the same seed on every machine.

/// xorshift64*.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` scrambled (neighbouring seeds give unrelated
    /// sequences).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator whose state is `state` itself (0, which xorshift cannot leave, becomes 1).
    pub fn from_state(state: u64) -> Self {
        Rng(state.max(1))
    }

    /// The next 64 random bits.
    #[allow(
        clippy::should_implement_trait,
        reason = "an infinite generator, not an iterator"
    )]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A position in `0..len` (0 when `len` is 0): [`Rng::below`] for indexing.
    pub fn index(&mut self, len: usize) -> usize {
        // A usize always fits in u64 here, and the result is below `len`.
        self.below(len as u64) as usize
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next(), b.next());
        assert_ne!(Rng::new(7).next(), Rng::new(8).next());
        assert_ne!(Rng::from_state(0).next(), 0);
        assert!(Rng::from_state(3).below(5) < 5);
        assert!(Rng::from_state(3).index(5) < 5);
        assert_eq!(Rng::from_state(3).index(0), 0);
    }
}
