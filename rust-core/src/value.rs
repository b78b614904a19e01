//! The untyped keys and values every engine layer passes around: an integer, or bytes
//! with Perl's UTF-8 flag. The typed API ([`crate::Map`]) converts its types to and
//! from these; the C ABI crate converts its `HmIn` / `HmOut` structs.
//!
//! A module of its own, below everything that uses it (the map, the shard sets, the
//! reader of C-format files), so that none of them imports a layer above it.

/// A key or value passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In<'a> {
    /// For integer keys/values (narrowed to the variant width).
    Int(i64),
    /// For string keys/values: bytes and Perl's UTF-8 flag.
    Str(&'a [u8], bool),
}

/// A key or value returned, borrowing the handle's buffers (valid until the next call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out<'a> {
    /// An integer (sign-extended from the variant width).
    Int(i64),
    /// Bytes and the stored UTF-8 flag.
    Str(&'a [u8], bool),
}

/// An owned key or value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// Bytes and the stored UTF-8 flag.
    Str(Vec<u8>, bool),
}

impl Out<'_> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            Out::Int(v) => Value::Int(v),
            Out::Str(b, u) => Value::Str(b.to_vec(), u),
        }
    }
}

impl Value {
    /// Borrowed as an argument.
    pub fn as_in(&self) -> In<'_> {
        match self {
            Value::Int(v) => In::Int(*v),
            Value::Str(b, u) => In::Str(b, *u),
        }
    }
}
