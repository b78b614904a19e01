//! Typed hash maps in mmap'd shared memory (engine of Data::HashMap::Shared).
//! See doc/DESIGN.md for the file format, lock protocol and C ABI.

pub mod lock;
