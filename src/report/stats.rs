//! The quick-look's statistics: how rows are binned (`Binning`), the counts
//! a pass keeps (`Tally`, `Bins`, `Cells`) and how counts made at a fine
//! level merge into coarser ones, so a run's own counts and a scan of the
//! dataset add up exactly.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// A column's smallest and largest non-null value (a time in microseconds).
pub type Range = (f64, f64);

/// How the second pass bins: the map grid and each histogram. Every bin
/// and cell is aligned on a power of two (bin k of level e holds
/// [k 2^e, (k + 1) 2^e)), so counts kept at a finer level add up exactly
/// into any coarser one: a run counts its own rows as it writes them, at
/// levels fine enough for any extent, and the report coarsens them to the
/// levels the whole dataset's extent asks for (`Tally::coarsen`).
#[derive(Debug, Clone)]
pub struct Binning {
    /// Levels of the map cells: 2^x degrees of longitude by 2^y of latitude.
    pub cell_levels: (i32, i32),
    /// The column the map cells average.
    pub color: Option<String>,
    /// Each histogram's column and level (`None`: chosen from its first
    /// values, finer than any extent they will reach asks for).
    pub histograms: Vec<(String, Option<i32>)>,
}

/// Most bins a histogram keeps before it halves its resolution.
pub(super) const MAX_BINS: usize = 1 << 12;
/// Most map cells a tally keeps before it halves its resolution.
pub(super) const MAX_CELLS: usize = 1 << 18;

/// 2^-level: what a value is multiplied by to give its bin (exact for
/// every level a finite range asks for).
pub(super) fn scale(level: i32) -> f64 {
    2f64.powi(-level)
}

/// The level of bins of at least `width` (the smallest power of two not
/// below it).
pub fn level_at_least(width: f64) -> i32 {
    if !width.is_finite() || width <= 0.0 {
        return 0;
    }
    let mut level = width.log2().ceil() as i32;
    while 2f64.powi(level) < width {
        level += 1;
    }
    while 2f64.powi(level - 1) >= width {
        level -= 1;
    }
    level
}

/// One histogram's sums: counts of bins `first`, `first + 1`, ... at
/// `level`, and of values no bin holds (NaN and minus infinity count as
/// the lowest bin, plus infinity as the highest, as before).
#[derive(Debug, Clone, Default)]
pub struct Bins {
    pub count: u64,
    pub sum: f64,
    pub level: Option<i32>,
    pub first: i64,
    pub bins: Vec<u64>,
    pub below: u64,
    pub above: u64,
}

/// A map cell's sums: colour values added, how many, rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct CellSums {
    pub sum: f64,
    pub values: u64,
    pub rows: u64,
}

/// Map cells by (column, row) of the grid. Hashed with FxHash, not std's
/// SipHash: a cell is looked up for every run of rows in one cell, and the
/// maps of every row group are merged (SipHash and the merges were 6% of
/// the report's CPU on the bulk benchmark's dataset).
pub type Cells = rustc_hash::FxHashMap<(i64, i64), CellSums>;

/// What the second pass counts.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub rows: u64,
    /// Rows by (beam, beam strength).
    pub beams: BTreeMap<(String, String), u64>,
    pub granules: BTreeMap<String, u64>,
    /// Rows by `YYYY-MM` (rows with a time).
    pub months: BTreeMap<String, u64>,
    /// Rows with both coordinates, by cell (x, y): [x 2^cell_levels.0,
    /// (x + 1) 2^cell_levels.0) of longitude, likewise of latitude.
    pub cells: Cells,
    pub cell_levels: (i32, i32),
    /// The colour column the cells sum.
    pub color: Option<String>,
    /// By column, in the order of `Binning::histograms`.
    pub histograms: Vec<(String, Bins)>,
}

impl Tally {
    pub fn new(binning: &Binning) -> Tally {
        Tally {
            cell_levels: binning.cell_levels,
            color: binning.color.clone(),
            histograms: binning
                .histograms
                .iter()
                .map(|(name, level)| {
                    (
                        name.clone(),
                        Bins {
                            level: *level,
                            ..Bins::default()
                        },
                    )
                })
                .collect(),
            ..Tally::default()
        }
    }

    /// The same counts at coarser levels: cells at `cell_levels`, and
    /// each histogram at its level in `levels` (by column; a level finer
    /// than the tally's is left as it is).
    pub fn coarsen(&mut self, cell_levels: (i32, i32), levels: &HashMap<String, i32>) {
        let shift = (
            cell_levels.0.saturating_sub(self.cell_levels.0).max(0),
            cell_levels.1.saturating_sub(self.cell_levels.1).max(0),
        );
        if shift != (0, 0) {
            let mut cells = Cells::default();
            for ((x, y), sums) in self.cells.drain() {
                add_cell(
                    &mut cells,
                    (x >> shift.0.min(63), y >> shift.1.min(63)),
                    sums,
                );
            }
            self.cells = cells;
            self.cell_levels = (self.cell_levels.0 + shift.0, self.cell_levels.1 + shift.1);
        }
        for (name, bins) in &mut self.histograms {
            if let Some(&level) = levels.get(name) {
                bins.coarsen(level);
            }
        }
    }

    pub fn merge(mut self, mut other: Tally) -> Tally {
        let cell_levels = (
            self.cell_levels.0.max(other.cell_levels.0),
            self.cell_levels.1.max(other.cell_levels.1),
        );
        let no_levels = HashMap::new();
        self.coarsen(cell_levels, &no_levels);
        other.coarsen(cell_levels, &no_levels);
        self.rows += other.rows;
        for (key, rows) in other.beams {
            *self.beams.entry(key).or_default() += rows;
        }
        for (key, rows) in other.granules {
            *self.granules.entry(key).or_default() += rows;
        }
        for (key, rows) in other.months {
            *self.months.entry(key).or_default() += rows;
        }
        for (key, sums) in other.cells {
            add_cell(&mut self.cells, key, sums);
        }
        for (name, theirs) in other.histograms {
            match self.histograms.iter_mut().find(|(mine, _)| *mine == name) {
                Some((_, mine)) => mine.merge(theirs),
                None => self.histograms.push((name, theirs)),
            }
        }
        self.bound_cells();
        self
    }

    /// Halves the map's resolution until its cells are few enough.
    pub(super) fn bound_cells(&mut self) {
        while self.cells.len() > MAX_CELLS {
            let levels = (self.cell_levels.0 + 1, self.cell_levels.1 + 1);
            self.coarsen(levels, &HashMap::new());
        }
    }
}

pub(super) fn add_cell(cells: &mut Cells, key: (i64, i64), sums: CellSums) {
    let cell = cells.entry(key).or_default();
    cell.sum += sums.sum;
    cell.values += sums.values;
    cell.rows += sums.rows;
}

/// The UTC month holding `micros`: its first and past-the-last microsecond
/// and `YYYY-MM`.
pub(super) fn month_of(micros: i64) -> Option<(i64, i64, String)> {
    let time = DateTime::from_timestamp_micros(micros)?;
    let first = Utc
        .with_ymd_and_hms(time.year(), time.month(), 1, 0, 0, 0)
        .single()?;
    let (year, month) = if time.month() == 12 {
        (time.year() + 1, 1)
    } else {
        (time.year(), time.month() + 1)
    };
    let next = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()?;
    Some((
        first.timestamp_micros(),
        next.timestamp_micros(),
        format!("{:04}-{:02}", time.year(), time.month()),
    ))
}

/// A time in microseconds as `icesat2 query` prints it (RFC 3339, UTC).
pub fn format_time(micros: f64) -> Option<String> {
    DateTime::from_timestamp_micros(micros as i64)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_hold_their_first_microsecond_and_not_the_next_months() {
        let march = Utc.with_ymd_and_hms(2019, 3, 1, 0, 0, 0).unwrap();
        let (first, next, key) = month_of(march.timestamp_micros()).unwrap();
        assert_eq!(key, "2019-03");
        assert_eq!(first, march.timestamp_micros());
        let april = Utc.with_ymd_and_hms(2019, 4, 1, 0, 0, 0).unwrap();
        assert_eq!(next, april.timestamp_micros());
        assert_eq!(month_of(next - 1).unwrap().2, "2019-03");
        // December rolls into the next year; before 1970 too.
        assert_eq!(month_of(-1).unwrap().2, "1969-12");
        assert_eq!(month_of(-1).unwrap().1, 0);
    }

    #[test]
    fn times_print_as_query_prints_them() {
        assert_eq!(format_time(0.0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(1_555_665_219_123_456.0).unwrap(),
            "2019-04-19T09:13:39.123456Z"
        );
    }
}
