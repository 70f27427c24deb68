//! Eight bytes at a time: where the first byte of a word that needs attention is, without a
//! branch per byte. JSON strings are scanned this way when they are read and written, as most
//! of their bytes are plain.
//!
//! Each test marks the high bit of the bytes it matches. A byte's mark can also be set by a
//! borrow from a matching byte below it, never below the first match, so the lowest mark of a
//! test (or of several tests combined with `|`) is always a true one: [`first`] reads only
//! that.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes from `at` as one word (the first in its lowest byte), if there are eight.
pub(crate) fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*chunk))
}

/// Marks the bytes below `n` (`n` at most 0x80).
pub(crate) const fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * n as u64) & !word & HIGHS
}

/// Marks the bytes equal to `byte`.
pub(crate) const fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * byte as u64), 1)
}

/// Marks the bytes equal to `byte` once the bits of `ignored` are set in both: with one bit, the
/// two byte values that differ only in it (`equal_ignoring(w, b'<', 0x02)`: `<` and `>`).
pub(crate) const fn equal_ignoring(word: u64, byte: u8, ignored: u8) -> u64 {
    equal(word | (ONES * ignored as u64), byte | ignored)
}

/// The index of the first byte from `from` that needs attention, or the length: `marks` tests
/// eight bytes at once while eight are left, `is` the last ones byte by byte (the two must agree).
pub(crate) fn position_from(
    bytes: &[u8],
    mut from: usize,
    marks: impl Fn(u64) -> u64,
    is: impl Fn(u8) -> bool,
) -> usize {
    while let Some(word) = word_at(bytes, from) {
        if let Some(at) = first(marks(word)) {
            return from + at;
        }
        from += 8;
    }
    let rest = &bytes[from..];
    from + rest.iter().position(|&b| is(b)).unwrap_or(rest.len())
}

/// The index in the word of the first marked byte, if any.
pub(crate) const fn first(marks: u64) -> Option<usize> {
    if marks == 0 {
        None
    } else {
        Some((marks.trailing_zeros() / 8) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position and every pair of bytes around it: the first mark is the first match.
    #[test]
    fn the_first_mark_is_the_first_match() {
        let specials = [0x00, 0x1F, 0x20, b'"', b'\\', 0x7F, 0x80, 0xE2, 0xFF];
        let test = |w: u64| below(w, 0x20) | equal(w, b'"') | equal(w, b'\\') | equal(w, 0xE2);
        let matches = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b == 0xE2;
        for fill in [b'a', 0x00, 0xFF, 0x80, b'"'] {
            for at in 0..8 {
                for &x in &specials {
                    for &y in &specials {
                        let mut bytes = [fill; 8];
                        bytes[at] = x;
                        bytes[(at + 3) % 8] = y;
                        let expected = bytes.iter().position(|&b| matches(b));
                        let got = first(test(word_at(&bytes, 0).unwrap_or_default()));
                        assert_eq!(got, expected, "{bytes:02x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_short_tail_is_no_word() {
        assert_eq!(word_at(b"1234567", 0), None);
        assert_eq!(word_at(b"12345678", 1), None);
        assert_eq!(word_at(b"12345678", 9), None);
        assert_eq!(
            word_at(b"12345678", 0),
            Some(u64::from_le_bytes(*b"12345678"))
        );
    }
}
