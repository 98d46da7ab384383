//! The order in which candidates run, round by round: rotated by one each
//! round, so that every candidate runs first, second, ... equally often and slow
//! drift of the machine (thermal, other load) spreads evenly instead of
//! favouring one position.

/// `rounds` rounds of `candidates` indices, each round the previous one rotated by one.
pub fn schedule(candidates: usize, rounds: u32) -> Vec<Vec<usize>> {
    (0..rounds as usize)
        .map(|r| {
            (0..candidates)
                .map(|i| (i + r) % candidates.max(1))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounds_rotate() {
        assert_eq!(
            super::schedule(3, 4),
            vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        assert_eq!(super::schedule(1, 2), vec![vec![0], vec![0]]);
        // Each candidate takes each position equally often over a full cycle.
        let s = super::schedule(4, 4);
        for pos in 0..4 {
            let mut seen: Vec<usize> = s.iter().map(|r| r[pos]).collect();
            seen.sort();
            assert_eq!(seen, vec![0, 1, 2, 3]);
        }
    }
}
