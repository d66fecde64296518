//! Error types of the ring: small `Copy` enums, no heap.

use core::fmt;

/// Why a push failed; the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// No free slot right now.
    Full(T),
    /// The consumer has been dropped; nothing will ever be popped again.
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that could not be pushed.
    ///
    /// ```
    /// let (mut tx, _rx) = weft_ring::channel(1);
    /// tx.push(1).unwrap();
    /// assert_eq!(tx.push(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) => v,
        }
    }
}

// By hand, so `PushError<T>: Error` needs no `T: Debug`.
impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
            PushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("ring is full"),
            PushError::Closed(_) => f.write_str("ring consumer has been dropped"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Why a pop failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// Nothing ready right now.
    Empty,
    /// The producer has been dropped and every item it pushed has been popped.
    Closed,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopError::Empty => f.write_str("ring is empty"),
            PopError::Closed => {
                f.write_str("ring producer has been dropped and the ring is drained")
            }
        }
    }
}

impl std::error::Error for PopError {}
