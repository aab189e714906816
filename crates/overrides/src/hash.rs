//! Two hashes with different jobs:
//! - FNV-1a 64 for the config checksum: stable across crates, runs and platforms (the model
//!   crate has the same function; this crate may not depend on it);
//! - a fast word-at-a-time hash for the in-memory index, never persisted, so only speed and
//!   spread matter.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The `checksum` column of `learning_configs`: 16 lowercase hex digits of FNV-1a 64 over the
/// exact `config_data` text.
pub fn config_checksum(text: &str) -> String {
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// MurmurHash3's fmix64 avalanche, for build-time seeds.
#[inline]
pub(crate) fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Full 64×64→128 multiply folded to 64 bits: one multiply that mixes every input bit into
/// the low output bits the tables index with (the wyhash/foldhash core).
#[inline]
fn folded_mul(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

#[inline]
fn read8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn read4(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A string of at most 16 bytes as two words: overlapping reads of its first and last 8 (or
/// 4) bytes, or its 1–3 bytes packed. Together with the length they determine the string.
#[inline]
fn short_words(b: &[u8]) -> (u64, u64) {
    let len = b.len();
    if len >= 8 {
        (read8(b, 0), read8(b, len - 8))
    } else if len >= 4 {
        (read4(b, 0), read4(b, len - 4))
    } else if len > 0 {
        let packed = u64::from(b[0]) | u64::from(b[len / 2]) << 8 | u64::from(b[len - 1]) << 16;
        (packed, 0)
    } else {
        (0, 0)
    }
}

/// Fast seeded hash for the in-memory index. Scope values and keys are short: up to 16 bytes
/// cost one multiply.
#[inline]
pub(crate) fn hash_str(seed: u64, s: &str) -> u64 {
    let b = s.as_bytes();
    let len = b.len();
    if len <= 16 {
        let (lo, hi) = short_words(b);
        return folded_mul(lo ^ seed ^ K1, hi ^ K0 ^ len as u64);
    }
    let mut h = seed ^ (len as u64).wrapping_mul(K0);
    let mut at = 0;
    while at + 16 < len {
        h = folded_mul(read8(b, at) ^ h ^ K1, read8(b, at + 8) ^ K0);
        at += 16;
    }
    folded_mul(read8(b, len - 16) ^ h ^ K1, read8(b, len - 8) ^ K0)
}

/// String equality without a library call for the short strings scopes are made of.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        // Equal lengths and these words cover every byte (see `short_words`).
        return short_words(a) == short_words(b);
    }
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(config_checksum("foobar"), "85944171f73967e8");
        assert_eq!(config_checksum("").len(), 16);
    }

    #[test]
    fn fast_hash_depends_on_seed_length_and_every_byte() {
        assert_ne!(hash_str(1, "Good"), hash_str(2, "Good"));
        assert_ne!(hash_str(1, "a"), hash_str(1, "a\0"));
        assert_ne!(hash_str(1, "abcdefgh1"), hash_str(1, "abcdefgh2"));
        assert_eq!(hash_str(7, "Double-Dip"), hash_str(7, "Double-Dip"));
        let long = "module=pm|pattern_key=uptrend.S2.add";
        for i in 0..long.len() {
            let mut other = long.as_bytes().to_vec();
            other[i] ^= 1;
            assert_ne!(
                hash_str(3, long),
                hash_str(3, std::str::from_utf8(&other).unwrap())
            );
        }
        // Every length from 0 to 40 over the same prefix gives a distinct hash.
        let text = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
        let hashes: std::collections::HashSet<u64> =
            (0..=text.len()).map(|n| hash_str(5, &text[..n])).collect();
        assert_eq!(hashes.len(), text.len() + 1);
    }

    #[test]
    fn str_eq_agrees_with_eq() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "acb",
            "aXc",
            "Good",
            "Goo",
            "Dip",
            "Double-Dip",
            "Double-Dop",
            "0123456789abcdef",
            "0123456789abcdeF",
            "0123456789abcdefg",
            "1123456789abcdefg",
            "aaaa",
            "aaab",
            "baaa",
        ];
        for a in words {
            for b in words {
                assert_eq!(str_eq(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
