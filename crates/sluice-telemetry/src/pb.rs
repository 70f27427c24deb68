//! The protobuf wire format, written by hand: what OTLP's messages need (varints, fixed
//! numbers, length-delimited fields and nested messages written in place), and OTLP's
//! `KeyValue`, which spans and metrics both carry.

use std::fmt;

/// A protobuf message being written.
#[derive(Debug, Default)]
pub(crate) struct Pb(pub(crate) Vec<u8>);

impl Pb {
    #[inline]
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    #[inline]
    pub(crate) fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    #[inline]
    pub(crate) fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    #[cfg(test)]
    pub(crate) fn int64(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }

    #[inline]
    pub(crate) fn boolean(&mut self, field: u32, v: bool) {
        self.key(field, 0);
        self.varint(u64::from(v));
    }

    #[inline]
    pub(crate) fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    #[inline]
    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    #[inline]
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }

    #[inline]
    pub(crate) fn string(&mut self, field: u32, v: &str) {
        if !v.is_empty() {
            self.bytes(field, v.as_bytes());
        }
    }

    /// A nested message, written in place: one byte is kept for its length (enough below 128
    /// bytes, most key-values), and the body is moved up only when the length needs more. No
    /// buffer per message, the bytes are the same as encoding it apart (minimal varints).
    pub(crate) fn message(&mut self, field: u32, build: impl FnOnce(&mut Pb)) {
        self.key(field, 2);
        let at = self.0.len();
        self.0.push(0);
        build(self);
        let len = self.0.len() - at - 1;
        if len < 0x80 {
            self.0[at] = len as u8;
            return;
        }
        let mut prefix = [0u8; 10];
        let mut n = 0;
        let mut v = len as u64;
        while v >= 0x80 {
            prefix[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        prefix[n] = v as u8;
        n += 1;
        let end = self.0.len();
        self.0.resize(end + n - 1, 0);
        self.0.copy_within(at + 1..end, at + n);
        self.0[at..at + n].copy_from_slice(&prefix[..n]);
    }
}

impl fmt::Write for Pb {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// How many bytes `v` takes as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// How many bytes a length-delimited field of `len` bytes takes (its number below 16).
#[inline]
pub(crate) fn delimited_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Writes a `KeyValue` (`field` below 16) up to its `AnyValue`'s content (the key-value's key
/// and length, the key, the `AnyValue`'s key and length), its lengths worked out first so
/// none is patched afterwards. Nearly every attribute is short: all four lengths then take a
/// byte each, written as two 4-byte groups around the key.
#[inline(always)]
fn key_value_head(pb: &mut Pb, field: u32, key: &str, any_value: usize) {
    let key_len = if key.is_empty() {
        0
    } else {
        delimited_len(key.len())
    };
    let key_value = key_len + delimited_len(any_value);
    pb.0.reserve(delimited_len(key_value));
    debug_assert!(field < 16);
    if key_value < 0x80 && !key.is_empty() {
        let tag = (field << 3) as u8 | 2;
        pb.0.extend_from_slice(&[tag, key_value as u8, 1 << 3 | 2, key.len() as u8]);
        pb.0.extend_from_slice(key.as_bytes());
        pb.0.extend_from_slice(&[2 << 3 | 2, any_value as u8]);
        return;
    }
    pb.key(field, 2);
    pb.varint(key_value as u64);
    pb.string(1, key);
    pb.key(2, 2);
    pb.varint(any_value as u64);
}

/// A `KeyValue` with a string value, nearly every attribute.
#[inline]
pub(crate) fn key_text(pb: &mut Pb, field: u32, key: &str, value: &str) {
    key_text_parts(pb, field, key, &[value]);
}

/// A `KeyValue` with a string value given in pieces (a URL's parts), written without
/// gathering them first.
#[inline]
pub(crate) fn key_text_parts(pb: &mut Pb, field: u32, key: &str, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    key_value_head(pb, field, key, delimited_len(len));
    pb.key(1, 2);
    pb.varint(len as u64);
    for part in parts {
        pb.0.extend_from_slice(part.as_bytes());
    }
}

/// A `KeyValue` with a boolean value.
pub(crate) fn key_bool(pb: &mut Pb, field: u32, key: &str, value: bool) {
    key_value_head(pb, field, key, 2);
    pb.boolean(2, value);
}

/// A `KeyValue` with an integer value.
pub(crate) fn key_int(pb: &mut Pb, field: u32, key: &str, value: i64) {
    let v = value as u64;
    key_value_head(pb, field, key, 1 + varint_len(v));
    pb.key(3, 0);
    pb.varint(v);
}

/// A `KeyValue` with a double value.
pub(crate) fn key_double(pb: &mut Pb, field: u32, key: &str, value: f64) {
    key_value_head(pb, field, key, 9);
    pb.double(4, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut pb = Pb::default();
            pb.varint(v);
            assert_eq!(varint_len(v), pb.0.len(), "{v}");
        }
    }

    /// `key_text` writes what the nested form writes.
    #[test]
    fn key_text_as_nested_messages() {
        for (key, value) in [("k", "v"), ("", "v"), ("k", ""), ("key", &*"x".repeat(300))] {
            same_as_nested(
                key,
                value,
                |v| v.bytes(1, value.as_bytes()),
                |pb| key_text(pb, 9, key, value),
            );
        }
    }

    /// Text in pieces is text.
    #[test]
    fn key_text_in_parts() {
        for parts in [
            &["http", "://", "a:1", "/p", "?q"][..],
            &[][..],
            &["x"; 300][..],
        ] {
            let mut whole = Pb::default();
            key_text(&mut whole, 9, "url.full", &parts.concat());
            let mut pb = Pb::default();
            key_text_parts(&mut pb, 9, "url.full", parts);
            assert_eq!(pb.0, whole.0, "{parts:?}");
        }
    }

    /// What `ours` writes equals `value` written as the nested form, as key `key`.
    fn same_as_nested(
        key: &str,
        what: impl std::fmt::Debug,
        value: impl FnOnce(&mut Pb),
        ours: impl FnOnce(&mut Pb),
    ) {
        let mut nested = Pb::default();
        nested.message(9, |kv| {
            kv.string(1, key);
            kv.message(2, value);
        });
        let mut pb = Pb::default();
        ours(&mut pb);
        assert_eq!(pb.0, nested.0, "{key:?} {what:?}");
    }

    /// The scalar key-values write what the nested form writes.
    #[test]
    fn key_scalars_as_nested_messages() {
        for key in ["k", "", &*"k".repeat(200)] {
            for i in [0i64, 1, 300, -1, i64::MAX, i64::MIN] {
                same_as_nested(key, i, |v| v.int64(3, i), |pb| key_int(pb, 9, key, i));
            }
            for b in [false, true] {
                same_as_nested(key, b, |v| v.boolean(2, b), |pb| key_bool(pb, 9, key, b));
            }
            for f in [0.0f64, -1.5, f64::MAX] {
                same_as_nested(key, f, |v| v.double(4, f), |pb| key_double(pb, 9, key, f));
            }
        }
    }

    #[test]
    fn varints() {
        let mut pb = Pb::default();
        pb.varint(300);
        assert_eq!(pb.0, [0xac, 0x02]);
        let mut pb = Pb::default();
        pb.string(1, "hi");
        assert_eq!(pb.0, [0x0a, 2, b'h', b'i']);
    }

    /// Messages written in place are what encoding them apart and copying them in gives.
    #[test]
    fn nested_messages_in_place() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut inner = Pb::default();
            inner.bytes(3, &body);
            let mut apart = Pb::default();
            apart.uint(1, 7);
            apart.bytes(2, &inner.0);
            let mut outer = Pb::default();
            outer.bytes(5, &apart.0);
            outer.uint(6, 1);

            let mut pb = Pb::default();
            pb.message(5, |m| {
                m.uint(1, 7);
                m.message(2, |i| i.bytes(3, &body));
            });
            pb.uint(6, 1);
            assert_eq!(pb.0, outer.0, "body of {len} bytes");
        }
    }
}
