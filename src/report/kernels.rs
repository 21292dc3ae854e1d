//! Batch kernels of the quick-look's second pass: a record batch's columns
//! counted into a `Tally` (rows by beam, granule, month and map cell) and
//! its numbers and times into power-of-two histogram bins, read in place
//! where the type allows.

use std::collections::HashMap;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, RecordBatch, StringArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};

use super::stats::*;
use crate::dataset::schema;

/// A time column as microseconds, whatever unit it is stored in.
pub(super) fn micros(column: &ArrayRef) -> Option<ArrayRef> {
    let DataType::Timestamp(_, zone) = column.data_type() else {
        return None;
    };
    let micros = DataType::Timestamp(TimeUnit::Microsecond, zone.clone());
    arrow::compute::cast(column, &micros)
        .and_then(|column| arrow::compute::cast(&column, &DataType::Int64))
        .ok()
}

/// A numeric or time column as f64 values (times in microseconds).
pub(super) fn as_f64(column: &ArrayRef) -> F64s {
    let column = match column.data_type() {
        DataType::Timestamp(..) => micros(column)
            .unwrap_or_else(|| arrow::array::new_null_array(&DataType::Int64, column.len())),
        _ => column.clone(),
    };
    F64s(
        arrow::compute::cast(&column, &DataType::Float64)
            .unwrap_or_else(|_| arrow::array::new_null_array(&DataType::Float64, column.len())),
    )
}

/// A Float64 column.
pub(super) struct F64s(ArrayRef);

impl F64s {
    pub(super) fn array(&self) -> &Float64Array {
        self.0.as_primitive::<Float64Type>()
    }

    pub(super) fn value(&self, index: usize) -> Option<f64> {
        let array = self.0.as_primitive::<Float64Type>();
        array.is_valid(index).then(|| array.value(index))
    }
}

/// `x.floor() as i64`, without the libm call that `floor` is on baseline
/// x86-64 (no SSE4.1): the same for every f64, NaN giving 0.
pub(super) fn floor_i64(x: f64) -> i64 {
    let truncated = x as i64;
    if (truncated as f64) > x {
        truncated.saturating_sub(1)
    } else {
        truncated
    }
}

/// A text column (dictionary-encoded as read, or plain), or the value of
/// its hive folder, or nulls.
pub(super) enum Text {
    Dictionary(DictionaryArray<Int32Type>, StringArray),
    Column(StringArray),
    Constant(Option<String>),
}

impl Text {
    fn new(batch: &RecordBatch, name: &str, folders: &HashMap<&str, &str>) -> Text {
        let Some(column) = batch.column_by_name(name) else {
            return Text::Constant(folders.get(name).map(|value| value.to_string()));
        };
        if let Some(dictionary) = column.as_dictionary_opt::<Int32Type>()
            && let Some(values) = dictionary.values().as_string_opt::<i32>()
        {
            return Text::Dictionary(dictionary.clone(), values.clone());
        }
        match arrow::compute::cast(column, &DataType::Utf8) {
            Ok(array) => Text::Column(array.as_string::<i32>().clone()),
            Err(_) => Text::Constant(None),
        }
    }

    fn get(&self, index: usize) -> Option<&str> {
        match self {
            Text::Dictionary(keys, values) => keys
                .is_valid(index)
                .then(|| values.value(keys.keys().value(index) as usize)),
            Text::Column(array) => array.is_valid(index).then(|| array.value(index)),
            Text::Constant(value) => value.as_deref(),
        }
    }

    /// Whether rows `a` and `b` hold the same text (equal keys are; a
    /// dictionary may also hold one value under two keys).
    #[inline]
    fn same(&self, a: usize, b: usize) -> bool {
        if let Text::Dictionary(keys, _) = self
            && keys.null_count() == 0
            && keys.keys().values()[a] == keys.keys().values()[b]
        {
            return true;
        }
        self.get(a) == self.get(b)
    }
}

/// Counts one batch. Rows come in runs (a file is sorted by granule and
/// beam, a track crosses a map cell in many segments, a month in many
/// granules), so every key is compared with the previous row's and looked
/// up only where it changes.
pub(super) fn tally_batch(tally: &mut Tally, batch: &RecordBatch, folders: &HashMap<&str, &str>) {
    let rows = batch.num_rows();
    tally.rows += rows as u64;

    let (granule, beam, strength) = (
        Text::new(batch, schema::GRANULE, folders),
        Text::new(batch, schema::BEAM, folders),
        Text::new(batch, schema::BEAM_STRENGTH, folders),
    );
    let mut start = 0;
    for index in 1..=rows {
        let changed = index == rows
            || !granule.same(index, start)
            || !beam.same(index, start)
            || !strength.same(index, start);
        if !changed {
            continue;
        }
        let count = (index - start) as u64;
        *tally
            .granules
            .entry(granule.get(start).unwrap_or_default().to_string())
            .or_default() += count;
        *tally
            .beams
            .entry((
                beam.get(start).unwrap_or_default().to_string(),
                strength.get(start).unwrap_or_default().to_string(),
            ))
            .or_default() += count;
        start = index;
    }
    tally_values(tally, batch);
}

/// Counts one batch's months, map cells and histograms.
pub(super) fn tally_values(tally: &mut Tally, batch: &RecordBatch) {
    if let Some(micros) = batch.column_by_name(schema::TIME).and_then(micros) {
        let micros = micros.as_primitive::<Int64Type>();
        let values = micros.values();
        // The month holding the previous time: [low, high) and its key
        // (none yet: an empty range). The loops read the values slice, as
        // they run for every row a run writes.
        let (mut low, mut high, mut key) = (0i64, 0i64, None::<String>);
        let mut run = 0u64;
        let mut add = |value: i64| {
            if low <= value && value < high {
                run += 1;
                return;
            }
            if let Some(key) = key.take() {
                *tally.months.entry(key).or_default() += run;
            }
            (low, high, key, run) = match month_of(value) {
                Some((first, next, month)) => (first, next, Some(month), 1),
                None => (0, 0, None, 0),
            };
        };
        match micros.nulls() {
            None => values.iter().for_each(|&value| add(value)),
            Some(nulls) => nulls.valid_indices().for_each(|index| add(values[index])),
        }
        if let Some(key) = key {
            *tally.months.entry(key).or_default() += run;
        }
    }

    let longitude = batch.column_by_name(schema::LONGITUDE).map(as_f64);
    let latitude = batch.column_by_name(schema::LATITUDE).map(as_f64);
    if let (Some(longitude), Some(latitude)) = (longitude, latitude) {
        let color = tally
            .color
            .as_deref()
            .and_then(|name| batch.column_by_name(name))
            .map(as_f64);
        tally_cells(
            &mut tally.cells,
            tally.cell_levels,
            (longitude.array(), latitude.array()),
            color.as_ref().map(F64s::array),
        );
        tally.bound_cells();
    }

    for (name, histogram) in &mut tally.histograms {
        if let Some(column) = batch.column_by_name(name) {
            histogram.add(column);
        }
    }
}

/// Adds rows to the map cells they fall in. The loops below run for every
/// row of the dataset at the end of every run: they read the value slices
/// directly and keep their sums in locals.
pub(super) fn tally_cells(
    cells: &mut Cells,
    levels: (i32, i32),
    (longitude, latitude): (&Float64Array, &Float64Array),
    color: Option<&Float64Array>,
) {
    let (x_scale, y_scale) = (scale(levels.0), scale(levels.1));
    let both = NullBuffer::union(longitude.nulls(), latitude.nulls());
    let (longitude, latitude) = (longitude.values(), latitude.values());
    let color_nulls = color.and_then(|color| color.nulls());
    let color = color.map(|color| color.values());
    let mut current: Option<((i64, i64), CellSums)> = None;
    for (index, (&lon, &lat)) in longitude.iter().zip(latitude).enumerate() {
        // As SQL's cast of a non-finite number: no cell.
        if both.as_ref().is_some_and(|nulls| nulls.is_null(index))
            || !lon.is_finite()
            || !lat.is_finite()
        {
            continue;
        }
        let key = (floor_i64(lon * x_scale), floor_i64(lat * y_scale));
        let sums = match &mut current {
            Some((seen, sums)) if *seen == key => sums,
            _ => {
                if let Some((seen, sums)) = current.take() {
                    add_cell(cells, seen, sums);
                }
                &mut current.insert((key, CellSums::default())).1
            }
        };
        sums.rows += 1;
        if let Some(color) = color
            && color_nulls.is_none_or(|nulls| nulls.is_valid(index))
        {
            sums.sum += color[index];
            sums.values += 1;
        }
    }
    if let Some((seen, sums)) = current {
        add_cell(cells, seen, sums);
    }
}

impl Bins {
    /// Adds a numeric or time column's non-null values (times in
    /// microseconds).
    /// Types every value of which an f64 holds exactly (float32, the
    /// integers up to 32 bits) are read in place, not cast first.
    fn add(&mut self, column: &ArrayRef) {
        use arrow::datatypes::{
            Float32Type, Int8Type, Int16Type, UInt8Type, UInt16Type, UInt32Type,
        };
        macro_rules! in_place {
            ($type:ty) => {{
                let array = column.as_primitive::<$type>();
                self.add_values(array.values(), array.nulls())
            }};
        }
        match column.data_type() {
            DataType::Float64 => in_place!(Float64Type),
            DataType::Float32 => in_place!(Float32Type),
            DataType::Int32 => in_place!(Int32Type),
            DataType::Int16 => in_place!(Int16Type),
            DataType::Int8 => in_place!(Int8Type),
            DataType::UInt32 => in_place!(UInt32Type),
            DataType::UInt16 => in_place!(UInt16Type),
            DataType::UInt8 => in_place!(UInt8Type),
            _ => {
                let cast = as_f64(column);
                self.add_values(cast.array().values(), cast.array().nulls())
            }
        }
    }

    /// The loop of `add`: sums in row order; with nulls, over the valid
    /// values gathered first, so the cost does not depend on how the nulls
    /// lie. Fill values scattered among the values (as in the bulk
    /// benchmark) leave runs of one or two valid values: counted a run at a
    /// time, with the first range taken through an iterator of valid
    /// indices (160 M instructions of the quick-look's 373 M), they cost
    /// as much as gathered.
    fn add_values<T: Copy + Into<f64>>(&mut self, values: &[T], nulls: Option<&NullBuffer>) {
        let valid = values.len() - nulls.map_or(0, NullBuffer::null_count);
        if valid == 0 {
            return;
        }
        self.count += valid as u64;
        let gathered;
        let values = match nulls {
            None => values,
            Some(nulls) => {
                gathered = valid_values(values, nulls);
                &gathered[..]
            }
        };
        if self.level.is_none() {
            self.level = Some(first_level(values.iter().map(|&value| value.into())));
        }
        self.add_run(values);
    }

    /// Adds values that are all valid. The loop keeps the bins' slice, its
    /// first key, the scale and the sum in locals; a value outside the
    /// bins held goes through `place`, which widens them (or halves their
    /// resolution), and the locals are taken again.
    fn add_run<T: Copy + Into<f64>>(&mut self, values: &[T]) {
        let mut sum = self.sum;
        let mut rest = values;
        while !rest.is_empty() {
            let scale = scale(self.level.unwrap_or(0));
            let first = self.first;
            let bins = self.bins.as_mut_slice();
            let (mut below, mut above) = (0u64, 0u64);
            let mut outside = None;
            for (position, &value) in rest.iter().enumerate() {
                let value: f64 = value.into();
                sum += value;
                if !value.is_finite() {
                    if value > 0.0 {
                        above += 1;
                    } else {
                        below += 1;
                    }
                    continue;
                }
                let key = floor_i64(value * scale);
                match bins.get_mut(key.wrapping_sub(first) as usize) {
                    Some(count) => *count += 1,
                    None => {
                        outside = Some((position, key));
                        break;
                    }
                }
            }
            self.below += below;
            self.above += above;
            match outside {
                Some((position, key)) => {
                    self.place(key, 1);
                    rest = &rest[position + 1..];
                }
                None => rest = &[],
            }
        }
        self.sum = sum;
    }

    /// Adds `count` to bin `key` (at the current level), widening the
    /// bins to hold it, and halving their resolution while they would
    /// number more than `MAX_BINS`.
    fn place(&mut self, mut key: i64, count: u64) {
        if self.bins.is_empty() {
            self.first = key;
            self.bins.push(count);
            return;
        }
        loop {
            let last = self.first as i128 + self.bins.len() as i128 - 1;
            let span = last.max(key as i128) - (self.first as i128).min(key as i128) + 1;
            if span <= MAX_BINS as i128 {
                break;
            }
            self.halve();
            key >>= 1;
        }
        // Widened by at least the bins held (up to `MAX_BINS`), so values
        // arriving in falling or rising order cost one move in a few.
        let room = MAX_BINS.saturating_sub(self.bins.len());
        if key < self.first {
            let needed = (self.first - key) as usize;
            let extra = needed.max(self.bins.len()).min(room).max(needed);
            self.bins.splice(0..0, std::iter::repeat_n(0, extra));
            self.first -= extra as i64;
        }
        let index = (key - self.first) as usize;
        if index >= self.bins.len() {
            let length = (index + 1)
                .max(self.bins.len() * 2)
                .min(MAX_BINS)
                .max(index + 1);
            self.bins.resize(length, 0);
        }
        self.bins[index] += count;
    }

    /// One level coarser: bins k and k + 1 (k even) become bin k / 2.
    fn halve(&mut self) {
        let Some(level) = self.level else {
            return;
        };
        if !self.bins.is_empty() {
            // In i128: the last bin's key may be near i64::MAX (the keys
            // of huge values saturate).
            let old_first = self.first as i128;
            let first = old_first >> 1;
            let last = (old_first + self.bins.len() as i128 - 1) >> 1;
            let mut bins = vec![0; (last - first + 1) as usize];
            for (index, &count) in self.bins.iter().enumerate() {
                bins[(((old_first + index as i128) >> 1) - first) as usize] += count;
            }
            (self.first, self.bins) = (first as i64, bins);
        }
        self.level = Some(level + 1);
    }

    /// The same counts at `level`, when it is coarser than theirs.
    pub fn coarsen(&mut self, level: i32) {
        match self.level {
            None => self.level = Some(level),
            Some(_) => {
                while self.level.is_some_and(|mine| mine < level) {
                    self.halve();
                }
            }
        }
    }

    pub(super) fn merge(&mut self, mut other: Bins) {
        self.count += other.count;
        self.sum += other.sum;
        self.below += other.below;
        self.above += other.above;
        let level = match (self.level, other.level) {
            (Some(mine), Some(theirs)) => mine.max(theirs),
            (mine, theirs) => mine.or(theirs).unwrap_or(0),
        };
        self.coarsen(level);
        other.coarsen(level);
        for (index, count) in other.bins.into_iter().enumerate() {
            if count > 0 {
                let level_now = self.level.unwrap_or(level);
                // A halving of mine while adding theirs moves their keys too.
                let key = (other.first + index as i64) >> (level_now - level);
                self.place(key, count);
            }
        }
    }

    /// The counts of bins `floor(low / 2^level)` to `floor(high / 2^level)`
    /// (the column's range), after `coarsen(level)`: values no bin holds
    /// in the lowest or highest.
    pub fn dense(&self, low: f64, high: f64) -> Vec<u64> {
        let Some(level) = self.level else {
            return Vec::new();
        };
        let scale = scale(level);
        let (first, last) = if low.is_finite() && high.is_finite() {
            (floor_i64(low * scale), floor_i64(high * scale))
        } else {
            (self.first, self.first + self.bins.len() as i64 - 1)
        };
        let length = usize::try_from(last.saturating_sub(first).saturating_add(1))
            .unwrap_or(1)
            .clamp(1, MAX_BINS);
        let mut bins = vec![0; length];
        for (index, &count) in self.bins.iter().enumerate() {
            let key = self.first + index as i64;
            let at = usize::try_from(key.saturating_sub(first)).unwrap_or(0);
            bins[at.min(length - 1)] += count;
        }
        bins[0] += self.below;
        bins[length - 1] += self.above;
        bins
    }
}

/// The level a histogram starts at, from its first values: a quarter of
/// `MAX_BINS` across their range (finer than the whole column's range will
/// ask for), or a millionth of the value when they are all one value.
pub(super) fn first_level(values: impl Iterator<Item = f64>) -> i32 {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|value| value.is_finite()) {
        low = low.min(value);
        high = high.max(value);
    }
    if high > low {
        level_at_least((high - low) / (MAX_BINS / 4) as f64)
    } else if high.is_finite() && high != 0.0 {
        level_at_least(high.abs()) - 20
    } else {
        -20
    }
}

/// The valid values in order. Every value is copied and the count moves
/// on by its validity bit, 64 to a word of the null mask: no branch per
/// value, whatever the pattern of nulls.
pub(super) fn valid_values<T: Copy>(values: &[T], nulls: &NullBuffer) -> Vec<T> {
    let mut valid = values.to_vec();
    let mut count = 0;
    let bits = nulls.inner();
    let chunks = bits.inner().bit_chunks(bits.offset(), bits.len());
    let mut keep = |block: &[T], word: u64| {
        for (bit, &value) in block.iter().enumerate() {
            valid[count] = value;
            count += ((word >> bit) & 1) as usize;
        }
    };
    for (block, word) in values.chunks_exact(64).zip(chunks.iter()) {
        keep(block, word);
    }
    let rest = chunks.chunk_len() * 64;
    keep(&values[rest..], chunks.remainder_bits());
    valid.truncate(count);
    valid
}

impl Tally {
    /// Counts the rows of one granule as they are written: `beams` gives
    /// its rows by (beam, beam strength), which the text columns would
    /// give (compared row by row, they cost as much as the rest).
    pub fn add_granule<'a>(
        &mut self,
        batch: &RecordBatch,
        granule: &str,
        beams: impl Iterator<Item = (&'a str, &'a str, u64)>,
    ) {
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return;
        }
        self.rows += rows;
        *self.granules.entry(granule.to_string()).or_default() += rows;
        for (beam, strength, rows) in beams.filter(|beam| beam.2 > 0) {
            *self
                .beams
                .entry((beam.to_string(), strength.to_string()))
                .or_default() += rows;
        }
        tally_values(self, batch);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn valid_values_are_the_values_of_the_valid_slots_in_order() {
        // Scattered nulls, runs of each, all valid, none valid; sliced
        // at offsets that are not a whole byte or word.
        let values: Vec<f32> = (0..300).map(|i| i as f32 * 0.5).collect();
        let patterns: [&dyn Fn(usize) -> bool; 4] =
            [&|i| i % 3 != 1, &|i| (i / 70) % 2 == 0, &|_| true, &|_| {
                false
            }];
        for valid in patterns {
            let mask: Vec<bool> = (0..values.len()).map(valid).collect();
            let array = arrow::array::Float32Array::new(
                values.clone().into(),
                Some(NullBuffer::from(mask)),
            );
            for (offset, len) in [(0, 300), (5, 64), (13, 200), (64, 129), (299, 1), (7, 0)] {
                let slice = array.slice(offset, len);
                let expected: Vec<f32> = slice.iter().flatten().collect();
                let got = valid_values(slice.values(), slice.nulls().unwrap());
                assert_eq!(got, expected, "offset {offset}, {len} values");
            }
        }
    }

    #[test]
    fn floor_without_libm_equals_floor() {
        for x in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.999,
            -2.999,
            1e18,
            -1e18,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            4503599627370495.5,
            -4503599627370495.5,
        ] {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }

    /// Numbers in [0, 1) from `seed`, the same in every run (a linear
    /// congruential generator).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Bins made one value at a time: every value's key from `floor_i64`,
    /// and `place`.
    fn add_by_keys(bins: &mut Bins, values: &[f64]) {
        bins.count += values.len() as u64;
        for &value in values {
            bins.sum += value;
            if !value.is_finite() {
                if value > 0.0 {
                    bins.above += 1;
                } else {
                    bins.below += 1;
                }
                continue;
            }
            bins.place(floor_i64(value * scale(bins.level.unwrap_or(0))), 1);
        }
    }

    fn state(bins: &Bins) -> (u64, u64, Option<i32>, i64, Vec<u64>, u64, u64) {
        let Bins {
            count,
            sum,
            level,
            first,
            bins,
            below,
            above,
        } = bins.clone();
        (count, sum.to_bits(), level, first, bins, below, above)
    }

    #[test]
    fn bins_added_in_runs_are_the_bins_placed_one_by_one() {
        // Values a bit below integers; both signs; tiny, huge (whose keys
        // saturate, and whose bins halve) and non-finite values; levels
        // coarse and fine; first bins near and far from zero.
        let mut next = uniform(5);
        let below_one = 1.0 - f64::EPSILON / 2.0;
        let mut sequences: Vec<Vec<f64>> = vec![
            vec![
                -3000.5,
                below_one,
                2.0 - f64::EPSILON,
                -1e-17,
                1e-300,
                -1e-300,
                0.0,
                -0.0,
            ],
            vec![
                -3000.5,
                below_one,
                1.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ],
            vec![
                2e15 + 0.5,
                2e15 + 4000.0 - 2e-3,
                2e15,
                2e15 - 1.0,
                2e15 + 1.0,
            ],
            vec![-2e15, -2e15 + 0.25, -2e15 - 0.25, -2e15 + 4095.75],
            vec![1e300, -1e300, 1e300, 9.3e18, -9.3e18, 1e19],
        ];
        sequences.push(
            (0..4000)
                .map(|i| {
                    let k = (next() * 6000.0) as i64 - 3000;
                    k as f64 - next() * f64::EPSILON * 4.0 * (i % 3) as f64
                })
                .collect(),
        );
        sequences.push((0..4000).map(|_| (next() - 0.5) * 80.0).collect());
        for level in [-60, -3, 0, 4, 40] {
            for values in &sequences {
                let (mut in_runs, mut one_by_one) = (
                    Bins {
                        level: Some(level),
                        ..Bins::default()
                    },
                    Bins {
                        level: Some(level),
                        ..Bins::default()
                    },
                );
                // In two batches: the second starts with bins held.
                let (head, tail) = values.split_at(values.len() / 2);
                for batch in [head, tail] {
                    in_runs.add_values(batch, None);
                    add_by_keys(&mut one_by_one, batch);
                }
                assert_eq!(
                    state(&in_runs),
                    state(&one_by_one),
                    "level {level}, {:?}",
                    &values[..4]
                );
            }
        }
    }

    /// Counts of each value's bin at `level` over bins `floor(low/2^level)`
    /// to `floor(high/2^level)`, non-finite values at the ends, computed
    /// directly.
    fn direct(values: &[Option<f64>], level: i32, low: f64, high: f64) -> Vec<u64> {
        let width = 2f64.powi(level);
        let (first, last) = ((low / width).floor() as i64, (high / width).floor() as i64);
        let mut bins = vec![0; (last - first + 1) as usize];
        for &value in values.iter().flatten() {
            let bin = if value.is_finite() {
                ((value / width).floor() as i64 - first).clamp(0, last - first)
            } else if value > 0.0 {
                last - first
            } else {
                0
            };
            bins[bin as usize] += 1;
        }
        bins
    }

    #[test]
    fn histogram_bins_are_powers_of_two_floored_and_skip_nulls() {
        let values = [
            Some(-2.0),
            Some(-1.5000001),
            Some(-1.5),
            Some(-0.5),
            Some(0.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(-0.0),
        ];
        for column in [
            Arc::new(arrow::array::Float64Array::from(values.to_vec())) as ArrayRef,
            Arc::new(arrow::array::Float32Array::from(
                values.map(|value| value.map(|value| value as f32)).to_vec(),
            )),
        ] {
            let mut bins = Bins {
                level: Some(-1),
                ..Bins::default()
            };
            bins.add(&column);
            assert_eq!(bins.count, 9, "{}", column.data_type());
            // Bins of 0.5 from -2: [-2, -1.5), [-1.5, -1), [-1, -0.5), [-0.5, 0), [0, 0.5).
            assert_eq!(
                bins.dense(-2.0, 0.0),
                vec![4, 1, 0, 1, 3],
                "{}",
                column.data_type()
            );
            assert_eq!(bins.dense(-2.0, 0.0), direct(&values, -1, -2.0, 0.0));
        }
        assert_eq!(level_at_least(0.5), -1);
        assert_eq!(level_at_least(0.75), 0);
        assert_eq!(level_at_least(3.0), 2);

        // Without nulls (the plain loop), integers in place, and the sum
        // added to what earlier batches left, in row order.
        let column: ArrayRef = Arc::new(arrow::array::Int16Array::from(vec![-3, -2, -1, 0, 1]));
        let mut bins = Bins {
            count: 1,
            sum: 0.25,
            level: Some(1),
            ..Bins::default()
        };
        bins.add(&column);
        assert_eq!(bins.count, 6);
        assert_eq!(bins.sum, 0.25 - 3.0 - 2.0 - 1.0 + 0.0 + 1.0);
        assert_eq!(bins.dense(-3.0, 1.0), vec![1, 2, 2]);
    }

    #[test]
    fn counts_kept_fine_and_merged_equal_counts_made_at_the_final_level() {
        // Values in batches whose first levels differ, some far outside
        // the first batch's range (the bins halve past MAX_BINS), merged
        // in two halves: the same counts as binning every value at the
        // level the whole range asks for.
        let mut next = uniform(17);
        let batches: Vec<Vec<Option<f64>>> = (0..12)
            .map(|batch| {
                let spread = 10f64.powi(batch % 4 - 1);
                (0..500)
                    .map(|row| {
                        (row % 37 != 0)
                            .then(|| 40.0 * next() * spread - 3.0 * spread + batch as f64)
                    })
                    .collect()
            })
            .collect();
        let all: Vec<Option<f64>> = batches.iter().flatten().copied().collect();
        let (low, high) = all
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let halves: Vec<Bins> = batches
            .chunks(6)
            .map(|half| {
                let mut bins = Bins::default();
                for batch in half {
                    let column: ArrayRef =
                        Arc::new(arrow::array::Float64Array::from(batch.clone()));
                    bins.add(&column);
                }
                bins
            })
            .collect();
        let mut merged = Bins::default();
        for half in halves {
            merged.merge(half);
        }
        let level = level_at_least((high - low) / 29.0).max(merged.level.unwrap());
        merged.coarsen(level);
        assert_eq!(merged.level, Some(level));
        let expected = direct(&all, level, low, high);
        assert!(
            expected.len() <= 30 && expected.len() > 10,
            "{}",
            expected.len()
        );
        assert_eq!(merged.dense(low, high), expected);
        assert_eq!(merged.count, all.iter().flatten().count() as u64);

        // Map cells likewise: counted at fine levels, halved past MAX_BINS
        // worth of cells, then coarsened.
        let longitude: Vec<f64> = (0..5000).map(|_| 147.0 + 3.0 * next()).collect();
        let latitude: Vec<f64> = (0..5000).map(|_| -44.0 + 3.0 * next()).collect();
        let mut fine = Cells::default();
        tally_cells(
            &mut fine,
            (-12, -13),
            (
                &Float64Array::from(longitude.clone()),
                &Float64Array::from(latitude.clone()),
            ),
            None,
        );
        let mut tally = Tally {
            cells: fine,
            cell_levels: (-12, -13),
            ..Tally::default()
        };
        tally.coarsen((-5, -6), &HashMap::new());
        let mut direct_cells = Cells::default();
        tally_cells(
            &mut direct_cells,
            (-5, -6),
            (
                &Float64Array::from(longitude),
                &Float64Array::from(latitude),
            ),
            None,
        );
        let sorted = |cells: &Cells| {
            let mut rows: Vec<((i64, i64), u64)> =
                cells.iter().map(|(key, sums)| (*key, sums.rows)).collect();
            rows.sort();
            rows
        };
        assert_eq!(sorted(&tally.cells), sorted(&direct_cells));
        assert!(direct_cells.len() > 100);
    }
}
