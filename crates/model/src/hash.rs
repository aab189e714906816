//! A stable 64-bit hash (FNV-1a). Stable across crates, runs, platforms and compiler versions,
//! which `std::hash` does not promise.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, fed incrementally; resumable from a state (scope hashes are built field by field).
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        Self(FNV_OFFSET)
    }
}

impl StableHasher {
    /// Continue hashing from a previous `finish()` value.
    pub fn from_state(state: u64) -> Self {
        Self(state)
    }

    /// Feed bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash of everything fed so far (also the state to resume from).
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of `bytes`, in one call.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x85944171f73967e8);
    }

    /// The runtime (`overrides`, which may not depend on this crate) has its own one-shot FNV-1a
    /// for config checksums: the two must stay the same function.
    #[test]
    fn agrees_with_the_runtimes_copy() {
        for bytes in [&b""[..], b"a", b"{\"macro_phase\":\"Good\"}", &[0xff, 0, 7]] {
            assert_eq!(stable_hash(bytes), learnloop_overrides::fnv1a64(bytes));
        }
    }
}
