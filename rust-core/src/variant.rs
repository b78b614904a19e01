//! The ten variants, from one table: key kind, value kind, slot geometry.
//!
//! Variant ids are the C implementation's (api.md 1.1), so "variant mismatch (file=3,
//! expected=10)" means the same in both. Every slot field is naturally aligned so it
//! can be accessed with an atomic of its own width.

/// The type of a key or value field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// Byte string (an 8-byte string reference in the slot).
    Str,
}

impl Kind {
    /// True for the integer kinds.
    #[inline]
    pub fn is_int(self) -> bool {
        !matches!(self, Kind::Str)
    }
    /// Bytes the field takes in a slot.
    #[inline]
    pub fn width(self) -> usize {
        match self {
            Kind::I16 => 2,
            Kind::I32 => 4,
            Kind::I64 | Kind::Str => 8,
        }
    }
    /// Two's-complement narrowing to this width (low bits kept, sign-extended back);
    /// identity for `I64` and `Str`.
    #[inline]
    pub fn narrow(self, v: i64) -> i64 {
        match self {
            Kind::I16 => v as i16 as i64,
            Kind::I32 => v as i32 as i64,
            Kind::I64 | Kind::Str => v,
        }
    }
}

/// One of the ten typed map variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Variant {
    /// int16 -> int16
    I16 = 1,
    /// int32 -> int32
    I32 = 2,
    /// int64 -> int64
    II = 3,
    /// int16 -> bytes
    I16S = 4,
    /// int32 -> bytes
    I32S = 5,
    /// int64 -> bytes
    IS = 6,
    /// bytes -> int16
    SI16 = 7,
    /// bytes -> int32
    SI32 = 8,
    /// bytes -> int64
    SI = 9,
    /// bytes -> bytes
    SS = 10,
}

struct Info {
    name: &'static str,
    key: Kind,
    val: Kind,
    slot: u32,
    key_off: u32,
    val_off: u32,
}

const fn info(name: &'static str, key: Kind, val: Kind, slot: u32, key_off: u32, val_off: u32) -> Info {
    Info { name, key, val, slot, key_off, val_off }
}

/// DESIGN.md "Variants": id order, (key kind, value kind, slot bytes, key offset, value
/// offset). 8-byte fields first where widths differ so that all fields stay aligned.
const TABLE: [Info; 10] = [
    info("I16", Kind::I16, Kind::I16, 4, 0, 2),
    info("I32", Kind::I32, Kind::I32, 8, 0, 4),
    info("II", Kind::I64, Kind::I64, 16, 0, 8),
    info("I16S", Kind::I16, Kind::Str, 16, 8, 0),
    info("I32S", Kind::I32, Kind::Str, 16, 8, 0),
    info("IS", Kind::I64, Kind::Str, 16, 0, 8),
    info("SI16", Kind::Str, Kind::I16, 16, 0, 8),
    info("SI32", Kind::Str, Kind::I32, 16, 0, 8),
    info("SI", Kind::Str, Kind::I64, 16, 0, 8),
    info("SS", Kind::Str, Kind::Str, 16, 0, 8),
];

/// All variants in id order.
pub const ALL: [Variant; 10] = [
    Variant::I16,
    Variant::I32,
    Variant::II,
    Variant::I16S,
    Variant::I32S,
    Variant::IS,
    Variant::SI16,
    Variant::SI32,
    Variant::SI,
    Variant::SS,
];

impl Variant {
    /// The variant with on-disk id `id` (1..=10).
    pub fn from_id(id: u32) -> Option<Variant> {
        ALL.get((id as usize).wrapping_sub(1)).copied()
    }
    /// On-disk id (1..=10).
    #[inline]
    pub fn id(self) -> u32 {
        self as u32
    }
    #[inline]
    fn info(self) -> &'static Info {
        &TABLE[self as usize - 1]
    }
    /// Class suffix, e.g. "SS" for Data::HashMap::Shared::SS.
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// Kind of the key.
    #[inline]
    pub fn key_kind(self) -> Kind {
        self.info().key
    }
    /// Kind of the value.
    #[inline]
    pub fn val_kind(self) -> Kind {
        self.info().val
    }
    /// Bytes per slot.
    #[inline]
    pub fn slot_size(self) -> u32 {
        self.info().slot
    }
    /// Offset of the key field within a slot.
    #[inline]
    pub fn key_off(self) -> u32 {
        self.info().key_off
    }
    /// Offset of the value field within a slot.
    #[inline]
    pub fn val_off(self) -> u32 {
        self.info().val_off
    }
    /// True when keys or values are strings (the map has an arena).
    #[inline]
    pub fn has_arena(self) -> bool {
        self.key_kind() == Kind::Str || self.val_kind() == Kind::Str
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, v) in ALL.iter().enumerate() {
            assert_eq!(v.id() as usize, i + 1);
            assert_eq!(Variant::from_id(v.id()), Some(*v));
            let (k, val) = (v.key_kind(), v.val_kind());
            let (ko, vo) = (v.key_off() as usize, v.val_off() as usize);
            assert_eq!(ko % k.width(), 0, "{v:?} key aligned");
            assert_eq!(vo % val.width(), 0, "{v:?} value aligned");
            assert!(ko + k.width() <= v.slot_size() as usize);
            assert!(vo + val.width() <= v.slot_size() as usize);
            assert!(ko + k.width() <= vo || vo + val.width() <= ko, "{v:?} fields overlap");
            assert!(v.slot_size().is_power_of_two());
        }
        assert_eq!(Variant::from_id(0), None);
        assert_eq!(Variant::from_id(11), None);
        assert!(!Variant::II.has_arena());
        assert!(Variant::I16S.has_arena());
    }

    #[test]
    fn narrowing() {
        assert_eq!(Kind::I16.narrow(70000), 4464);
        assert_eq!(Kind::I16.narrow(40000), -25536);
        assert_eq!(Kind::I32.narrow(1 << 32), 0);
        assert_eq!(Kind::I64.narrow(i64::MIN), i64::MIN);
    }
}
