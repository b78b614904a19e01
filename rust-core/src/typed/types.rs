//! The key and value types of the typed API: the sealed traits that tie Rust types to
//! the map's field kinds, the byte-string types, and what can be passed as an argument.

use crate::value::{In, Out, Value};
use crate::variant::Kind;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

mod sealed {
    /// Seals [`super::Storable`]: the map's field kinds are fixed by the file format.
    pub trait Sealed {}
}

/// A type a map stores as keys or values: [`i16`], [`i32`], [`i64`] or [`Bytes`].
///
/// The four types are the four field kinds of the file format, so the pair `(K, V)` of
/// a [`Map<K, V>`](crate::Map) names one of the ten variants Perl knows (`Map<Bytes,
/// i64>` is `Data::HashMap::Shared::SI`; see [`Map::perl_class`](crate::Map::perl_class)).
/// Sealed: no other type can be stored.
pub trait Storable: sealed::Sealed + Sized + Send + 'static {
    /// How a value is lent out without copying it into an owned `Self`
    /// ([`Map::get_ref`](crate::Map::get_ref), [`Map::for_each`](crate::Map::for_each)):
    /// the integer itself, or a [`BytesRef`].
    type Ref<'a>: Copy + fmt::Debug;

    #[doc(hidden)]
    const KIND: Kind;
    #[doc(hidden)]
    fn from_out(o: Out<'_>) -> Self;
    #[doc(hidden)]
    fn ref_from_out(o: Out<'_>) -> Self::Ref<'_>;
    #[doc(hidden)]
    fn from_value(v: Value) -> Self;
    #[doc(hidden)]
    fn into_value(self) -> Value;
}

/// The integer types a map stores ([`i16`], [`i32`], [`i64`]): maps with these values
/// have counters ([`Map::incr`](crate::Map::incr) and friends).
pub trait Int: Storable + Copy + Eq + Ord + Hash + fmt::Debug + fmt::Display {
    #[doc(hidden)]
    fn to_i64(self) -> i64;
    #[doc(hidden)]
    fn from_i64(v: i64) -> Self;
}

/// Something that can be passed where a `T` is expected, as a key or a value.
///
/// For the integer types: exactly that type (so integer literals infer it). For
/// [`Bytes`]: any string or byte string, by value or by reference. A Rust string
/// (`&str`, `String`) is text, stored with Perl's UTF-8 flag on, so Perl reads it as
/// characters; bytes (`&[u8]`, `Vec<u8>`, `b"..."`) are stored with the flag off; a
/// [`Bytes`] or [`BytesRef`] carries its own flag. Keys are identified by their bytes
/// alone: `"key"` and `b"key"` are the same key.
///
/// Sealed (implemented for the types listed below only).
pub trait Arg<T: Storable> {
    #[doc(hidden)]
    fn arg(&self) -> In<'_>;
}

macro_rules! ints {
    ($($t:ident => $k:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Storable for $t {
            type Ref<'a> = $t;
            const KIND: Kind = Kind::$k;
            #[inline(always)]
            fn from_out(o: Out<'_>) -> $t {
                match o {
                    // The engine returns the field sign-extended from its width: exact.
                    Out::Int(v) => v as $t,
                    Out::Str(..) => unreachable!("an integer field (the variant is checked at open)"),
                }
            }
            #[inline(always)]
            fn ref_from_out(o: Out<'_>) -> $t {
                <$t>::from_out(o)
            }
            #[inline(always)]
            fn from_value(v: Value) -> $t {
                match v {
                    Value::Int(v) => v as $t,
                    Value::Str(..) => unreachable!("an integer field (the variant is checked at open)"),
                }
            }
            #[inline(always)]
            fn into_value(self) -> Value {
                Value::Int(self as i64)
            }
        }
        impl Int for $t {
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            fn from_i64(v: i64) -> $t {
                v as $t
            }
        }
        impl Arg<$t> for $t {
            #[inline(always)]
            fn arg(&self) -> In<'_> {
                In::Int(*self as i64)
            }
        }
    )*};
}
ints!(i16 => I16, i32 => I32, i64 => I64);

/// An owned byte string as a map stores it: the bytes, and Perl's UTF-8 flag.
///
/// Derefs to `[u8]`, so it reads like a byte slice; [`to_str`](Bytes::to_str) and
/// [`into_string`](Bytes::into_string) give text. The flag says whether the Perl side
/// wrote (or will read) a character string rather than a byte string: it is kept and
/// passed on both ways, but it plays no part in comparisons: two `Bytes` are equal
/// (and hash alike) when their bytes are, as map keys are.
///
/// ```
/// use hashmap_shared::Bytes;
///
/// let text = Bytes::from("café");       // a str: flag on
/// let raw = Bytes::from(&b"caf\xc3\xa9"[..]); // bytes: flag off
/// assert!(text.utf8_flag() && !raw.utf8_flag());
/// assert_eq!(text, raw);                 // the same bytes
/// assert_eq!(text.to_str(), Ok("café"));
/// assert_eq!(&raw[..3], b"caf");
/// ```
#[derive(Clone, Default)]
pub struct Bytes {
    bytes: Vec<u8>,
    utf8: bool,
}

impl Bytes {
    /// Bytes with the flag off.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Bytes {
        Bytes { bytes: bytes.into(), utf8: false }
    }
    /// `bytes` with Perl's UTF-8 flag set to `utf8` (true: Perl reads characters,
    /// which the bytes must then encode in UTF-8 for Perl to make sense of them).
    pub fn with_utf8_flag(bytes: impl Into<Vec<u8>>, utf8: bool) -> Bytes {
        Bytes { bytes: bytes.into(), utf8 }
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Perl's UTF-8 flag: on when Perl stored a character string (or Rust stored a
    /// `str`), off for a byte string.
    pub fn utf8_flag(&self) -> bool {
        self.utf8
    }
    /// The bytes as text, when they are UTF-8 (whatever the flag).
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.bytes)
    }
    /// The bytes as an owned `String`, when they are UTF-8 (whatever the flag).
    pub fn into_string(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.bytes)
    }
    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }
    /// Borrowed.
    pub fn as_bytes_ref(&self) -> BytesRef<'_> {
        BytesRef { bytes: &self.bytes, utf8: self.utf8 }
    }
}

/// A borrowed byte string with Perl's UTF-8 flag: what
/// [`Map::get_ref`](crate::Map::get_ref) lends out (valid until the map is used
/// again), and an argument that sets the flag explicitly.
///
/// Derefs to `[u8]`; compares and hashes by its bytes, like [`Bytes`].
#[derive(Clone, Copy, Default)]
pub struct BytesRef<'a> {
    bytes: &'a [u8],
    utf8: bool,
}

impl<'a> BytesRef<'a> {
    /// `bytes` with Perl's UTF-8 flag set to `utf8`.
    pub fn with_utf8_flag(bytes: &'a [u8], utf8: bool) -> BytesRef<'a> {
        BytesRef { bytes, utf8 }
    }
    /// The bytes (for the map's lifetime of the borrow, not this value's).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Perl's UTF-8 flag (see [`Bytes::utf8_flag`]).
    pub fn utf8_flag(&self) -> bool {
        self.utf8
    }
    /// The bytes as text, when they are UTF-8 (whatever the flag).
    pub fn to_str(&self) -> Result<&'a str, std::str::Utf8Error> {
        std::str::from_utf8(self.bytes)
    }
    /// An owned copy.
    pub fn to_bytes(&self) -> Bytes {
        Bytes { bytes: self.bytes.to_vec(), utf8: self.utf8 }
    }
}

impl sealed::Sealed for Bytes {}
impl Storable for Bytes {
    type Ref<'a> = BytesRef<'a>;
    const KIND: Kind = Kind::Str;
    #[inline]
    fn from_out(o: Out<'_>) -> Bytes {
        Bytes::ref_from_out(o).to_bytes()
    }
    #[inline]
    fn ref_from_out(o: Out<'_>) -> BytesRef<'_> {
        match o {
            Out::Str(bytes, utf8) => BytesRef { bytes, utf8 },
            Out::Int(_) => unreachable!("a string field (the variant is checked at open)"),
        }
    }
    #[inline]
    fn from_value(v: Value) -> Bytes {
        match v {
            Value::Str(bytes, utf8) => Bytes { bytes, utf8 },
            Value::Int(_) => unreachable!("a string field (the variant is checked at open)"),
        }
    }
    #[inline]
    fn into_value(self) -> Value {
        Value::Str(self.bytes, self.utf8)
    }
}

/// The string arguments: text with the flag on, bytes with it off, ours with their own.
macro_rules! str_args {
    ($($t:ty => |$s:ident| $bytes:expr, $utf8:expr;)*) => {$(
        impl Arg<Bytes> for $t {
            #[inline(always)]
            fn arg(&self) -> In<'_> {
                let $s = self;
                In::Str($bytes, $utf8)
            }
        }
    )*};
}
str_args! {
    &str => |s| s.as_bytes(), true;
    String => |s| s.as_bytes(), true;
    &String => |s| s.as_bytes(), true;
    &[u8] => |s| s, false;
    Vec<u8> => |s| s, false;
    &Vec<u8> => |s| s, false;
    Bytes => |s| &s.bytes, s.utf8;
    &Bytes => |s| &s.bytes, s.utf8;
    BytesRef<'_> => |s| s.bytes, s.utf8;
}

impl<const N: usize> Arg<Bytes> for &[u8; N] {
    #[inline(always)]
    fn arg(&self) -> In<'_> {
        In::Str(&self[..], false)
    }
}

impl<const N: usize> Arg<Bytes> for [u8; N] {
    #[inline(always)]
    fn arg(&self) -> In<'_> {
        In::Str(&self[..], false)
    }
}

/// What `Bytes` and `BytesRef` share: byte-slice behaviour, comparisons by bytes,
/// a readable `Debug`.
macro_rules! byte_string {
    ($t:ident $(<$l:lifetime>)?) => {
        impl $(<$l>)? Deref for $t $(<$l>)? {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                &self.bytes
            }
        }
        impl $(<$l>)? AsRef<[u8]> for $t $(<$l>)? {
            fn as_ref(&self) -> &[u8] {
                &self.bytes
            }
        }
        impl $(<$l>)? PartialEq for $t $(<$l>)? {
            fn eq(&self, other: &Self) -> bool {
                self.bytes[..] == other.bytes[..]
            }
        }
        impl $(<$l>)? Eq for $t $(<$l>)? {}
        impl $(<$l>)? PartialOrd for $t $(<$l>)? {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl $(<$l>)? Ord for $t $(<$l>)? {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.bytes[..].cmp(&other.bytes[..])
            }
        }
        impl $(<$l>)? Hash for $t $(<$l>)? {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.bytes[..].hash(state)
            }
        }
        impl $(<$l>)? PartialEq<[u8]> for $t $(<$l>)? {
            fn eq(&self, other: &[u8]) -> bool {
                self.bytes[..] == *other
            }
        }
        impl $(<$l>)? PartialEq<&[u8]> for $t $(<$l>)? {
            fn eq(&self, other: &&[u8]) -> bool {
                self.bytes[..] == **other
            }
        }
        impl<$($l,)? const N: usize> PartialEq<&[u8; N]> for $t $(<$l>)? {
            fn eq(&self, other: &&[u8; N]) -> bool {
                self.bytes[..] == other[..]
            }
        }
        impl $(<$l>)? PartialEq<str> for $t $(<$l>)? {
            fn eq(&self, other: &str) -> bool {
                self.bytes[..] == *other.as_bytes()
            }
        }
        impl $(<$l>)? PartialEq<&str> for $t $(<$l>)? {
            fn eq(&self, other: &&str) -> bool {
                self.bytes[..] == *other.as_bytes()
            }
        }
        /// Text in quotes when the bytes are UTF-8, else escaped as `b"..."`; `(utf8)`
        /// after it when the flag is on.
        impl $(<$l>)? fmt::Debug for $t $(<$l>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match std::str::from_utf8(&self.bytes) {
                    Ok(s) => write!(f, "{s:?}")?,
                    Err(_) => write!(f, "b\"{}\"", self.bytes.escape_ascii())?,
                }
                if self.utf8 {
                    f.write_str(" (utf8)")?;
                }
                Ok(())
            }
        }
    };
}
byte_string!(Bytes);
byte_string!(BytesRef<'a>);

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<&str> for Bytes {
    /// Text: the UTF-8 flag on.
    fn from(s: &str) -> Bytes {
        Bytes { bytes: s.as_bytes().to_vec(), utf8: true }
    }
}
impl From<String> for Bytes {
    /// Text: the UTF-8 flag on.
    fn from(s: String) -> Bytes {
        Bytes { bytes: s.into_bytes(), utf8: true }
    }
}
impl From<&[u8]> for Bytes {
    /// Bytes: the UTF-8 flag off.
    fn from(b: &[u8]) -> Bytes {
        Bytes { bytes: b.to_vec(), utf8: false }
    }
}
impl<const N: usize> From<&[u8; N]> for Bytes {
    /// Bytes: the UTF-8 flag off.
    fn from(b: &[u8; N]) -> Bytes {
        Bytes { bytes: b.to_vec(), utf8: false }
    }
}
impl From<Vec<u8>> for Bytes {
    /// Bytes: the UTF-8 flag off.
    fn from(b: Vec<u8>) -> Bytes {
        Bytes { bytes: b, utf8: false }
    }
}
impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.bytes
    }
}
impl From<BytesRef<'_>> for Bytes {
    fn from(b: BytesRef<'_>) -> Bytes {
        b.to_bytes()
    }
}
impl<'a> From<&'a str> for BytesRef<'a> {
    /// Text: the UTF-8 flag on.
    fn from(s: &'a str) -> BytesRef<'a> {
        BytesRef { bytes: s.as_bytes(), utf8: true }
    }
}
impl<'a> From<&'a [u8]> for BytesRef<'a> {
    /// Bytes: the UTF-8 flag off.
    fn from(b: &'a [u8]) -> BytesRef<'a> {
        BytesRef { bytes: b, utf8: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_flagged_and_bytes_are_not() {
        assert_eq!("é".arg(), In::Str("é".as_bytes(), true));
        assert_eq!(String::from("x").arg(), In::Str(b"x", true));
        assert_eq!(b"x".arg(), In::Str(b"x", false));
        assert_eq!((&b"x"[..]).arg(), In::Str(b"x", false));
        assert_eq!(vec![1u8].arg(), In::Str(&[1], false));
        assert_eq!(Bytes::with_utf8_flag("y", true).arg(), In::Str(b"y", true));
        assert_eq!(BytesRef::with_utf8_flag(b"z", true).arg(), In::Str(b"z", true));
        assert_eq!(Arg::<i16>::arg(&-3i16), In::Int(-3));
    }

    #[test]
    fn comparisons_ignore_the_flag() {
        use std::collections::HashSet;
        let a = Bytes::from("k");
        let b = Bytes::from(b"k");
        assert_eq!(a, b);
        assert_eq!(a, "k");
        assert_eq!(a, b"k");
        let set: HashSet<Bytes> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(format!("{:?}", Bytes::from("k")), "\"k\" (utf8)");
        assert_eq!(format!("{:?}", Bytes::from(&b"\xff"[..])), "b\"\\xff\"");
    }

    #[test]
    fn values_round_trip_with_their_flag() {
        let v = Bytes::with_utf8_flag(vec![0xc3, 0xa9], true).into_value();
        assert_eq!(v, Value::Str(vec![0xc3, 0xa9], true));
        let b = Bytes::from_value(v);
        assert!(b.utf8_flag());
        assert_eq!(b.to_str(), Ok("é"));
        assert_eq!(i16::from_out(Out::Int(-2)), -2);
        assert!(Bytes::ref_from_out(Out::Str(b"q", true)).utf8_flag());
    }
}
