//! Cross-process rwlock and seqlock (being written).
