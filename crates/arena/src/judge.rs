//! Whether reading ahead pays where the helper runs ([`Judge`]).
//!
//! A helper that reads the bytes ahead of the reader ([`Window::warm`])
//! helps only when the two threads share a cache that holds them. On one
//! 2-vCPU virtual machine an inline replay of a 1.1 GB capture took
//! 0.89-0.93x the time of mapping alone at some times, and 1.22-1.29x at
//! others, minutes apart: its host moves the vCPUs between cores that
//! share a cache and cores that do not (the reader then fetches each line
//! the helper read from the other core's cache). What the system reports
//! of its caches does not tell the two apart (a virtual machine's
//! topology is made up), so the helper times the reader with warming and
//! without, now and then, and stops warming while it is the slower way.
//!
//! [`Window::warm`]: crate::readahead::Window::warm

/// How the helper judges warming: stretches of the reader's progress, in
/// bytes. Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judge {
    /// Bytes the reader goes, warmed, before the first trial: the start of
    /// a capture (connections being set up, caches cold) runs at its own
    /// pace and would mislead a trial.
    pub first: usize,
    /// Bytes the reader goes after a switch before its time is taken (the
    /// helper needs them to get ahead, or the cache to forget).
    pub settle: usize,
    /// Bytes timed in each of a trial's four legs: warmed, not, not,
    /// warmed (or the other way round, every other trial), so that a
    /// steady change in the traffic's pace favours neither. Not 0: a
    /// helper is not started with a judge that times nothing.
    pub timed: usize,
    /// Bytes the winner is then kept for, before the next trial.
    pub keep: usize,
    /// Warming stops only when the reader goes this many percent slower
    /// with it. Warming is what the caller asked for; when it hurts, it
    /// hurts by a fifth or more, while a trial's legs are short enough to
    /// differ by a few percent by chance (and the first MiBs after a
    /// switch still carry the other way's effect).
    pub margin_pct: u32,
}

impl Judge {
    /// The first trial after 64 MiB; legs of 4 MiB to settle (more than
    /// the 3 MiB [`Window::WARM`] reads ahead) and 12 MiB timed (a few
    /// milliseconds: the helper sees the reader's progress once a chunk,
    /// so the time of a leg is known to within one poll); the winner kept
    /// for 512 MiB; a 5 % margin. A trial costs at most 32 MiB of the
    /// slower way in every 576 MiB.
    ///
    /// [`Window::WARM`]: crate::readahead::Window::WARM
    pub const DEFAULT: Judge = Judge {
        first: 64 << 20,
        settle: 4 << 20,
        timed: 12 << 20,
        keep: 512 << 20,
        margin_pct: 5,
    };
}

/// Legs of a trial.
const LEGS: usize = 4;

/// Where a trial stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Going `leg`'s way until the reader reaches `until`.
    Settle { leg: usize, until: usize },
    /// Timing `leg`'s way from `from` at `start` (ns) to `until`.
    Time {
        leg: usize,
        from: usize,
        start: u64,
        until: usize,
    },
    /// The last winner (warming before the first trial), kept until the
    /// reader reaches `until`.
    Keep { until: usize },
}

/// The trials' state: fed the reader's progress and the time, it says
/// whether to warm now. Deterministic (time is passed in), so it is tested
/// without a clock.
#[derive(Clone, Debug)]
pub(crate) struct Trials {
    judge: Judge,
    stage: Stage,
    /// The way the current trial's first and last legs go (it alternates
    /// between trials).
    outer_warm: bool,
    /// Nanoseconds and bytes timed, warmed and not, in the current trial.
    ns: [u64; 2],
    bytes: [u64; 2],
    /// What the last trial chose.
    best: bool,
    /// Trials finished, and how many warming won.
    pub(crate) held: u32,
    pub(crate) won: u32,
}

impl Trials {
    /// Trials for a reader at `pos`: warming until the first.
    pub(crate) fn new(judge: Judge, pos: usize) -> Trials {
        Trials {
            judge,
            stage: Stage::Keep {
                until: pos.saturating_add(judge.first),
            },
            outer_warm: false,
            ns: [0; 2],
            bytes: [0; 2],
            best: true,
            held: 0,
            won: 0,
        }
    }

    /// Which way `leg` of the current trial goes.
    fn way(&self, leg: usize) -> bool {
        let outer = leg == 0 || leg == LEGS - 1;
        self.outer_warm == outer
    }

    /// The reader is at `progress` at time `now` (ns, from any fixed
    /// start): whether the helper should warm now.
    pub(crate) fn observe(&mut self, progress: usize, now: u64) -> bool {
        // A few stages at most per call: a reader that jumped far passes
        // them one call at a time, and one at the end of the address space
        // (where every bound saturates to it) cannot spin here.
        for _ in 0..4 {
            match self.stage {
                Stage::Settle { leg, until } if progress >= until => {
                    self.stage = Stage::Time {
                        leg,
                        from: progress,
                        start: now,
                        until: progress.saturating_add(self.judge.timed),
                    };
                }
                Stage::Time {
                    leg,
                    from,
                    start,
                    until,
                } if progress >= until => {
                    let k = usize::from(self.way(leg));
                    self.ns[k] = self.ns[k].saturating_add(now.saturating_sub(start));
                    self.bytes[k] = self.bytes[k].saturating_add((progress - from) as u64);
                    self.stage = if leg + 1 < LEGS {
                        Stage::Settle {
                            leg: leg + 1,
                            until: progress.saturating_add(self.judge.settle),
                        }
                    } else {
                        self.decide();
                        Stage::Keep {
                            until: progress.saturating_add(self.judge.keep),
                        }
                    };
                }
                Stage::Keep { until } if progress >= until => {
                    self.outer_warm = !self.outer_warm;
                    (self.ns, self.bytes) = ([0; 2], [0; 2]);
                    self.stage = Stage::Settle {
                        leg: 0,
                        until: progress.saturating_add(self.judge.settle),
                    };
                }
                _ => break,
            }
        }
        match self.stage {
            Stage::Settle { leg, .. } | Stage::Time { leg, .. } => self.way(leg),
            Stage::Keep { .. } => self.best,
        }
    }

    /// Ends a trial: warming goes on unless its time per byte was higher
    /// by more than the margin.
    fn decide(&mut self) {
        // warm_ns / warm_b * 100 <= cold_ns / cold_b * (100 + margin), in
        // integers (u128, saturating: past any real run's times and sizes).
        let [cold_ns, warm_ns] = self.ns.map(u128::from);
        let [cold_b, warm_b] = self.bytes.map(|b| u128::from(b.max(1)));
        let margin = u128::from(self.judge.margin_pct) + 100;
        let warm = warm_ns.saturating_mul(cold_b).saturating_mul(100);
        self.best = warm <= cold_ns.saturating_mul(warm_b).saturating_mul(margin);
        self.held = self.held.saturating_add(1);
        self.won = self.won.saturating_add(u32::from(self.best));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn small(margin_pct: u32) -> Judge {
        Judge {
            first: 2 * MIB,
            settle: MIB,
            timed: 2 * MIB,
            keep: 8 * MIB,
            margin_pct,
        }
    }

    /// Runs a reader from `from` one MiB a step for `steps` steps, the MiB
    /// at step `i` taking `cost(i, warm)` ns. Returns the ways taken.
    fn run(
        t: &mut Trials,
        from: usize,
        steps: usize,
        cost: impl Fn(usize, bool) -> u64,
    ) -> Vec<bool> {
        let mut now = 1_000u64;
        let mut ways = Vec::new();
        for i in 0..steps {
            let warm = t.observe(from + i * MIB, now);
            ways.push(warm);
            now += cost(i, warm);
        }
        ways
    }

    /// The first trial's legs go warmed, not, not, warmed (each a MiB to
    /// settle and two timed), after two warmed MiB.
    const TRIAL_1: [bool; 14] = [
        true, true, // before the first trial
        true, true, true, // settle, timed
        false, false, false, //
        false, false, false, //
        true, true, true,
    ];

    #[test]
    fn warming_stops_only_where_it_is_slower_by_more_than_the_margin() {
        for (warm_ns, cold_ns, wins) in [
            (900, 1000, true),   // faster: warm
            (1000, 1000, true),  // a tie: warm
            (1040, 1000, true),  // 4 % slower: within the margin, warm
            (1060, 1000, false), // 6 %: cold
            (1300, 1000, false), // the slow case: cold
        ] {
            let mut t = Trials::new(small(5), 5 * MIB);
            let ways = run(
                &mut t,
                5 * MIB,
                22,
                |_, w| if w { warm_ns } else { cold_ns },
            );
            assert_eq!(ways[..14], TRIAL_1, "{warm_ns}/{cold_ns}");
            assert_eq!(ways[14..], [wins; 8], "{warm_ns}/{cold_ns}");
            assert_eq!((t.held, t.won), (1, u32::from(wins)));
        }
    }

    #[test]
    fn a_steady_trend_in_the_pace_favours_neither_way() {
        // Both ways cost the same, more (or less) at every step: the
        // warmed legs (first and last) add up to the same as the others,
        // a tie, which goes on warming even with no margin (an order that
        // timed one way always first would favour that way).
        for step in [100i64, -100] {
            let mut t = Trials::new(small(0), 0);
            let ways = run(&mut t, 0, 15, |i, _| (3000 + step * i as i64) as u64);
            assert_eq!(ways[..14], TRIAL_1);
            assert_eq!(t.ns[0], t.ns[1]);
            assert_eq!((t.held, t.won), (1, 1), "{step}");
        }
    }

    #[test]
    fn trials_come_back_after_the_kept_stretch_in_the_other_order() {
        let mut t = Trials::new(small(5), 0);
        // Warming slow at first, fast from step 22 on (when the second
        // trial starts, its outer legs not warmed): it switches back.
        let ways = run(&mut t, 0, 42, |i, w| match (w, i < 22) {
            (true, true) => 1500,
            (true, false) => 800,
            (false, _) => 1000,
        });
        assert_eq!(ways[14..22], [false; 8]);
        let trial_2: Vec<bool> = TRIAL_1[2..].iter().map(|w| !w).collect();
        assert_eq!(ways[22..34], trial_2[..]);
        assert_eq!(ways[34..], [true; 8]);
        assert_eq!((t.held, t.won), (2, 1));
    }

    #[test]
    fn a_reader_that_jumps_or_stands_still_never_stalls_the_trials() {
        let mut t = Trials::new(small(5), 0);
        // Standing still: nothing changes.
        for now in 0..100 {
            assert!(t.observe(0, now));
        }
        // Each jump ends a stage; time that stands still or goes back, and
        // progress at the very end of the address space, do not panic.
        for (i, now) in [5, 5, 3, 0, 9, 9, 9, 9, 9].into_iter().enumerate() {
            t.observe((i + 1) * 100 * MIB, now);
        }
        assert_eq!(t.held, 1);
        for now in [0, u64::MAX, 0] {
            t.observe(usize::MAX, now);
        }
    }
}
