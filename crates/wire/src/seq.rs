//! TCP sequence numbers with wrapping (RFC 9293 §3.4, RFC 1982) arithmetic.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, Sub};

/// A TCP sequence (or acknowledgment) number.
///
/// Arithmetic wraps modulo 2^32. Comparison is by the sign of the wrapping
/// distance, so `Seq(1) > Seq(u32::MAX)`: it is a partial order only (two
/// numbers exactly 2^31 apart compare by the sign bit, and the relation is
/// not transitive across the whole space), hence `PartialOrd` and no `Ord`.
/// Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seq(pub u32);

impl Seq {
    /// The later of two sequence numbers (by wrapping distance).
    pub fn max(a: Seq, b: Seq) -> Seq {
        if (a - b) >= 0 {
            a
        } else {
            b
        }
    }

    /// The earlier of two sequence numbers (by wrapping distance).
    pub fn min(a: Seq, b: Seq) -> Seq {
        if (a - b) <= 0 {
            a
        } else {
            b
        }
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    fn add(self, rhs: u32) -> Seq {
        Seq(self.0.wrapping_add(rhs))
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    fn sub(self, rhs: u32) -> Seq {
        Seq(self.0.wrapping_sub(rhs))
    }
}

impl Sub<Seq> for Seq {
    /// Signed wrapping distance `self - other`.
    type Output = i32;
    fn sub(self, rhs: Seq) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for Seq {
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_across_zero() {
        let a = Seq(u32::MAX - 1);
        let b = a + 4;
        assert_eq!(b, Seq(2));
        assert_eq!(b - a, 4);
        assert_eq!(a - b, -4);
        assert_eq!(b - 4, a);
        assert!(b > a);
        assert!(a < b);
        let same = a;
        assert!(a <= same);
        assert!(a >= same);
        assert_eq!(a.partial_cmp(&same), Some(core::cmp::Ordering::Equal));
        assert_eq!(Seq::max(a, b), b);
        assert_eq!(Seq::min(a, b), a);
        assert_eq!(Seq::max(b, a), b);
        assert_eq!(Seq::min(b, a), a);
    }

    #[test]
    fn half_space_distances() {
        let a = Seq(0);
        assert!(Seq(0x7fff_ffff) > a);
        assert!(Seq(0x8000_0001) < a);
        assert_eq!(Seq(0x8000_0000) - a, i32::MIN);
        assert_eq!(Seq(5).to_string(), "5");
    }
}
