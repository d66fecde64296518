//! Target-based overlap policies.
//!
//! When two copies of the same sequence range differ, a receiving host keeps
//! one of them according to its stack's rules; an IDS that keeps the other one
//! sees a different stream than the target (Ptacek & Newsham, 1998). The
//! policies below follow the target-based model of Novak & Sturges,
//! "Target-Based TCP Stream Reassembly" (2007): the decision depends on where
//! the new segment starts and ends relative to the segment already held.

use core::fmt;
use core::str::FromStr;

/// Which copy of overlapping data survives. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OverlapPolicy {
    /// The copy that arrived first always wins (Windows Vista and later behave so).
    #[default]
    First,
    /// The copy that arrived last always wins.
    Last,
    /// BSD, HP-UX 10, IRIX, macOS, Windows XP/2003: the new copy wins only
    /// where it starts before the held segment.
    Bsd,
    /// Linux 2.4 and later: as BSD, and also when it starts with the held
    /// segment and ends beyond it.
    Linux,
    /// Old Linux (2.2) as Linux, and also on an exact overlap.
    OldLinux,
    /// Windows (pre-Vista): the BSD rule.
    Windows,
    /// Solaris and HP-UX 11: the new copy wins when it ends at or beyond the
    /// held segment's end, or starts before it and covers it.
    Solaris,
}

impl OverlapPolicy {
    /// All policies, for tests and command-line help.
    pub const ALL: [OverlapPolicy; 7] = [
        OverlapPolicy::First,
        OverlapPolicy::Last,
        OverlapPolicy::Bsd,
        OverlapPolicy::Linux,
        OverlapPolicy::OldLinux,
        OverlapPolicy::Windows,
        OverlapPolicy::Solaris,
    ];

    /// Does the new segment `[ns, ne)` replace the bytes of the held segment
    /// `[os, oe)` where the two overlap? Offsets are absolute stream offsets.
    pub fn new_wins(self, ns: u64, ne: u64, os: u64, oe: u64) -> bool {
        use OverlapPolicy::*;
        match self {
            First => false,
            Last => true,
            Bsd | Windows => ns < os,
            Linux => ns < os || (ns == os && ne > oe),
            OldLinux => ns < os || (ns == os && ne >= oe),
            // Starting before or with the held segment, the new copy wins
            // when it reaches the held end; starting inside, only past it.
            Solaris => {
                if ns <= os {
                    ne >= oe
                } else {
                    ne > oe
                }
            }
        }
    }

    /// The policy's name as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        use OverlapPolicy::*;
        match self {
            First => "first",
            Last => "last",
            Bsd => "bsd",
            Linux => "linux",
            OldLinux => "old-linux",
            Windows => "windows",
            Solaris => "solaris",
        }
    }
}

impl fmt::Display for OverlapPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownPolicy;

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown overlap policy (expected first, last, bsd, linux, old-linux, windows, vista, solaris, macos, hpux10, hpux11, irix)")
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for OverlapPolicy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, UnknownPolicy> {
        use OverlapPolicy::*;
        Ok(match s.to_ascii_lowercase().as_str() {
            "first" | "vista" => First,
            "last" => Last,
            "bsd" | "macos" | "hpux10" | "irix" => Bsd,
            "linux" => Linux,
            "old-linux" | "oldlinux" => OldLinux,
            "windows" | "win2k3" | "windows2003" => Windows,
            "solaris" | "hpux11" => Solaris,
            _ => return Err(UnknownPolicy),
        })
    }
}

/// What the receiver does with the byte an urgent pointer marks.
/// Plain data: `Send + Sync`.
///
/// A segment with URG set points at urgent data; the receiving socket
/// takes the last urgent byte out of the stream and hands it to the
/// application out of band, unless the application asked for it inline
/// (`SO_OOBINLINE`). A sender can so hide one byte from the application
/// per urgent pointer, or show an observer that keeps it inline a byte
/// the application never reads (the URG evasions of Ptacek & Newsham).
/// Which is right depends on the receiving application, which the wire
/// does not show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum UrgentPolicy {
    /// Urgent bytes stay in the stream, as a receiver with
    /// `SO_OOBINLINE` reads them (and as most capture tools show them).
    #[default]
    Inline,
    /// The byte an urgent pointer marks is taken out of the stream and
    /// reported as [`Event::Urgent`](crate::Event::Urgent), as a Linux
    /// socket without `SO_OOBINLINE` takes it (`tcp_check_urg`): the mark
    /// is the byte before `seq + urgent pointer` (an urgent pointer of 0
    /// marks the segment's first byte), one mark at a time per direction
    /// (a later mark replaces one not reached yet; a mark behind the next
    /// expected byte is ignored), and the byte goes when the stream
    /// reaches it, as for an application that reads as data comes. BSD
    /// and Windows receivers take a byte out too, by other rules (a BSD
    /// receiver only from the URG segment itself, and never for a pointer
    /// of 0).
    OutOfBand,
}

impl UrgentPolicy {
    /// Both policies.
    pub const ALL: [UrgentPolicy; 2] = [UrgentPolicy::Inline, UrgentPolicy::OutOfBand];

    /// The policy's name as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            UrgentPolicy::Inline => "inline",
            UrgentPolicy::OutOfBand => "oob",
        }
    }
}

impl fmt::Display for UrgentPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An urgent policy name that is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownUrgentPolicy;

impl fmt::Display for UnknownUrgentPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown urgent policy (expected inline or oob)")
    }
}

impl std::error::Error for UnknownUrgentPolicy {}

impl FromStr for UrgentPolicy {
    type Err = UnknownUrgentPolicy;
    fn from_str(s: &str) -> Result<Self, UnknownUrgentPolicy> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "inline" => UrgentPolicy::Inline,
            "oob" | "out-of-band" => UrgentPolicy::OutOfBand,
            _ => return Err(UnknownUrgentPolicy),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OverlapPolicy::{self, *};

    /// (new start, new end) against a held segment [10, 20), and which
    /// policies let the new copy win.
    #[test]
    fn decision_table() {
        let cases: &[((u64, u64), &[OverlapPolicy])] = &[
            // starts before, ends inside
            ((5, 15), &[Last, Bsd, Windows, Linux, OldLinux]),
            // starts before, ends at the end
            ((5, 20), &[Last, Bsd, Windows, Linux, OldLinux, Solaris]),
            // starts before, ends after
            ((5, 25), &[Last, Bsd, Windows, Linux, OldLinux, Solaris]),
            // same start, ends inside
            ((10, 15), &[Last]),
            // exact duplicate
            ((10, 20), &[Last, OldLinux, Solaris]),
            // same start, ends after
            ((10, 25), &[Last, Linux, OldLinux, Solaris]),
            // starts inside, ends inside
            ((12, 18), &[Last]),
            // starts inside, ends at the end
            ((12, 20), &[Last]),
            // starts inside, ends after
            ((12, 25), &[Last, Solaris]),
        ];
        for &((ns, ne), winners) in cases {
            for p in OverlapPolicy::ALL {
                assert_eq!(
                    p.new_wins(ns, ne, 10, 20),
                    winners.contains(&p),
                    "policy {p} new [{ns},{ne}) vs old [10,20)"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for p in OverlapPolicy::ALL {
            assert_eq!(p.name().parse::<OverlapPolicy>(), Ok(p));
        }
        assert_eq!("vista".parse::<OverlapPolicy>(), Ok(First));
        assert!("nope".parse::<OverlapPolicy>().is_err());
    }

    #[test]
    fn urgent_names_round_trip() {
        use super::UrgentPolicy;
        for p in UrgentPolicy::ALL {
            assert_eq!(p.name().parse::<UrgentPolicy>(), Ok(p));
        }
        assert_eq!("OUT-OF-BAND".parse(), Ok(UrgentPolicy::OutOfBand));
        assert!("drop".parse::<UrgentPolicy>().is_err());
    }
}
