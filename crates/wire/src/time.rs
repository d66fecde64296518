//! Capture timestamps.

use core::fmt;

/// A capture timestamp: nanoseconds since the Unix epoch.
///
/// Time in weft always comes from the capture (packet timestamps), never from
/// the wall clock, so replays are deterministic. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and a nanosecond part.
    ///
    /// Saturates at `u64::MAX` nanoseconds (the year 2554).
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// The nanosecond part (below one second).
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// `self - earlier` in nanoseconds, or 0 when `earlier` is later.
    pub const fn saturating_sub(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    /// Formats as `secs.nanos`, the nanoseconds zero-padded to nine digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_display() {
        let t = Timestamp::from_secs_nanos(12, 34);
        assert_eq!(t.as_nanos(), 12_000_000_034);
        assert_eq!(t.to_string(), "12.000000034");
        assert_eq!(t.saturating_sub(Timestamp(0)), 12_000_000_034);
        assert_eq!(Timestamp(0).saturating_sub(t), 0);
        assert_eq!(Timestamp::from_secs_nanos(u64::MAX, 5).0, u64::MAX);
    }
}
