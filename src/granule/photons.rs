//! The photons of a beam's kept segments: which rows of `signal_photons`
//! to read, merged into runs, and each segment's share of them (the
//! offsets of the list column).

use std::ops::Range;

use arrow::buffer::OffsetBuffer;

use super::GranuleError;

/// Ranges joined where they touch or overlap (input sorted by start).
pub(super) fn merge_runs(ranges: impl Iterator<Item = Range<u64>>) -> Vec<Range<u64>> {
    let mut merged: Vec<Range<u64>> = Vec::new();
    for range in ranges.filter(|range| !range.is_empty()) {
        match merged.last_mut() {
            Some(last) if last.end >= range.start => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Photon rows to read for a beam's kept segments, and each segment's share.
pub(super) struct PhotonRuns {
    pub(super) runs: Vec<Range<u64>>,
    pub(super) offsets: OffsetBuffer<i32>,
    pub(super) n_photons: u64,
}

impl PhotonRuns {
    /// `ranges` in segment order. Segments share no photon, so their
    /// ranges come in order without overlapping, inside the beam's photons
    /// (the values read for the merged runs are then exactly the segments'
    /// lists, back to back); anything else is a corrupt segment index,
    /// refused before the list column is allocated. (The fuzzer found
    /// segment id ranges that ran backwards: their length wrapped around and
    /// panicked in the offsets.)
    pub(super) fn new(
        beam: &str,
        ranges: Vec<Range<u64>>,
        n_photons: u64,
    ) -> Result<PhotonRuns, GranuleError> {
        let mut end = 0;
        for range in &ranges {
            if range.start == range.end {
                continue;
            }
            if range.start > range.end
                || range.start < end
                || range.end > n_photons
                || range.end > i32::MAX as u64
            {
                return Err(GranuleError::Invalid(format!(
                    "{beam}: the photons of the kept segments overlap or pass the beam's \
                     {n_photons} (a corrupt segment index)"
                )));
            }
            end = range.end;
        }
        // Each list's length; at most the beam's photons in all.
        let lengths: Vec<u64> = ranges
            .iter()
            .map(|range| range.end.saturating_sub(range.start))
            .collect();
        Ok(PhotonRuns {
            runs: merge_runs(ranges.into_iter()),
            offsets: OffsetBuffer::from_lengths(lengths.into_iter().map(|length| length as usize)),
            n_photons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // A range that runs backwards is one of the inputs refused.
    #[allow(clippy::reversed_empty_ranges)]
    fn photon_ranges_that_run_backwards_or_overlap_are_refused() {
        let runs = PhotonRuns::new("gt1l", vec![0..3, 3..3, 5..9], 10).unwrap();
        assert_eq!(runs.offsets.as_ref(), &[0, 3, 3, 7]);
        assert_eq!(runs.runs, vec![0..3, 5..9]);
        for ranges in [vec![5..2], vec![0..4, 3..6], vec![0..11], vec![4..5, 0..1]] {
            let err = PhotonRuns::new("gt1l", ranges.clone(), 10)
                .err()
                .unwrap_or_else(|| panic!("{ranges:?} accepted"));
            assert!(err.to_string().contains("gt1l"), "{err}");
        }
    }
}
