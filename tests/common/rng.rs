//! xorshift64*: a tiny seeded RNG shared by the randomized tests, so a
//! failure can be replayed from its seed without a dependency.
#![allow(dead_code)]

/// The generator's state (never 0: xorshift stays at 0 forever).
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is taken as 1).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A non-zero byte to XOR with (a flip that changes something).
    pub fn mask(&mut self) -> u8 {
        (self.next() % 255 + 1) as u8
    }
}
