//! Cohorts: which scenario each session of the run plays, as a pure function of its
//! index, so every agent agrees without being told. The counts are exact (scenarios
//! with a fixed number of sessions get it; the rest share the remainder by weight,
//! largest remainder first) and the scenarios are interleaved evenly through the
//! indices: with weights 95 and 5, every twentieth session is a publisher.

/// The split of a run's sessions over its scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohorts {
    /// Sessions in the run.
    total: u64,
    /// Sessions of each scenario (sum = total).
    counts: Vec<u64>,
}

/// Why the split is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CohortError {
    /// No scenario can take sessions.
    #[error("no scenario has a weight or a number of sessions")]
    NoWeight,
    /// The fixed counts need more sessions than the plan has.
    #[error("the scenarios' fixed session counts add up to {fixed}, more than the plan's {total} sessions")]
    TooMany {
        /// Sum of the fixed counts.
        fixed: u64,
        /// The plan's sessions.
        total: u64,
    },
    /// Fixed counts leave sessions that no weighted scenario can take.
    #[error("the scenarios' fixed session counts add up to {fixed}, but the plan has {total} sessions and no scenario has a weight to take the rest")]
    Remainder {
        /// Sum of the fixed counts.
        fixed: u64,
        /// The plan's sessions.
        total: u64,
    },
}

impl Cohorts {
    /// `shares[k]` is `(fixed sessions, weight)` of scenario k (fixed 0: by weight).
    pub fn new(total: u64, shares: &[(u64, u64)]) -> Result<Cohorts, CohortError> {
        let fixed: u64 = shares.iter().map(|s| s.0).sum();
        if fixed > total {
            return Err(CohortError::TooMany { fixed, total });
        }
        let weight: u64 = shares.iter().filter(|s| s.0 == 0).map(|s| s.1).sum();
        let rest = total - fixed;
        if rest > 0 && weight == 0 {
            return Err(if fixed == 0 {
                CohortError::NoWeight
            } else {
                CohortError::Remainder { fixed, total }
            });
        }
        let mut counts: Vec<u64> = shares.iter().map(|s| s.0).collect();
        if rest > 0 {
            // Largest remainder: floor shares first, then one more each to the
            // scenarios with the largest fractional parts (ties: plan order).
            let mut fractions = Vec::new();
            let mut given = 0u64;
            for (k, s) in shares.iter().enumerate().filter(|(_, s)| s.0 == 0) {
                let exact = u128::from(rest) * u128::from(s.1);
                let floor = u64::try_from(exact / u128::from(weight)).unwrap_or(u64::MAX);
                counts[k] = floor;
                given += floor;
                fractions.push((exact % u128::from(weight), k));
            }
            fractions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, k) in fractions.into_iter().take(usize::try_from(rest - given).unwrap_or(0)) {
                counts[k] += 1;
            }
        }
        Ok(Cohorts { total, counts })
    }

    /// Sessions of each scenario.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The scenario of session `index` and the session's rank within that scenario
    /// (0-based; feeders in `unique` mode give rank r row r).
    ///
    /// Scenario 0 takes its share of the indices evenly (Bresenham); scenario 1 takes
    /// its share of the indices left, and so on: O(scenarios) per call, exact counts.
    pub fn locate(&self, index: u64) -> (usize, u64) {
        let mut r = u128::from(index.min(self.total.saturating_sub(1)));
        let mut n = u128::from(self.total);
        for (k, &c) in self.counts.iter().enumerate() {
            let c = u128::from(c);
            if n == 0 {
                break;
            }
            let upto = (r + 1) * c / n; // this scenario's picks among ranks 0..=r
            let before = r * c / n;
            if upto > before {
                return (k, u64::try_from(before).unwrap_or(u64::MAX));
            }
            r -= upto;
            n -= c;
        }
        (self.counts.len().saturating_sub(1), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(c: &Cohorts) -> Vec<u64> {
        let mut t = vec![0; c.counts().len()];
        let mut ranks: Vec<Vec<u64>> = vec![Vec::new(); c.counts().len()];
        for i in 0..c.total {
            let (k, rank) = c.locate(i);
            t[k] += 1;
            ranks[k].push(rank);
        }
        for (k, r) in ranks.iter().enumerate() {
            assert_eq!(
                *r,
                (0..c.counts()[k]).collect::<Vec<_>>(),
                "ranks of {k} are 0..n in order"
            );
        }
        t
    }

    #[test]
    fn weights_split_exactly_and_interleave() {
        let c = Cohorts::new(1000, &[(0, 95), (0, 5)]).unwrap();
        assert_eq!(c.counts(), &[950, 50]);
        assert_eq!(tally(&c), vec![950, 50]);
        // Evenly spread: every block of 20 sessions holds exactly one of the 5 %.
        for block in 0..50 {
            let pubs = (block * 20..block * 20 + 20).filter(|i| c.locate(*i).0 == 1).count();
            assert_eq!(pubs, 1, "block {block}");
        }
    }

    #[test]
    fn fixed_counts_and_remainders() {
        let c = Cohorts::new(10_001, &[(0, 1), (1, 0)]).unwrap();
        assert_eq!(c.counts(), &[10_000, 1]);
        assert_eq!(tally(&c), vec![10_000, 1]);
        let c = Cohorts::new(10, &[(0, 1), (0, 1), (0, 1)]).unwrap();
        assert_eq!(c.counts(), &[4, 3, 3]);
        assert_eq!(tally(&c), vec![4, 3, 3]);
        let c = Cohorts::new(7, &[(0, 3)]).unwrap();
        assert_eq!(tally(&c), vec![7]);
    }

    #[test]
    fn impossible_splits_are_refused() {
        assert_eq!(
            Cohorts::new(5, &[(6, 0)]),
            Err(CohortError::TooMany { fixed: 6, total: 5 })
        );
        assert_eq!(
            Cohorts::new(5, &[(3, 0)]),
            Err(CohortError::Remainder { fixed: 3, total: 5 })
        );
        assert_eq!(Cohorts::new(5, &[(0, 0)]), Err(CohortError::NoWeight));
        assert!(Cohorts::new(5, &[(5, 0), (0, 0)]).is_ok());
    }
}
