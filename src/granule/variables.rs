//! The built-in ATL08 variable catalog: every variable a manifest may request
//! (paths under a beam group), its type, columns and the fill the product
//! defines. Used to validate manifests before any granule is read, to type the
//! nulls of a variable a granule lacks, as the fill for files stored without
//! attributes, and by `synth` to write realistic granules.

use super::h5::Dtype;

/// Where a variable's rows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One row per 100 m land segment (`land_segments/...`).
    Segment,
    /// One row per classified photon (`signal_photons/...`); one list per segment.
    Photon,
}

/// One catalog entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variable {
    /// Path under the beam group, e.g. `land_segments/canopy/h_canopy`.
    pub path: &'static str,
    pub dtype: Dtype,
    /// Values per row: 1 for 1-D, k for `(N, k)`.
    pub width: usize,
    /// The product's fill value, if the variable has one (as in real
    /// release-004 granules' `_FillValue` attributes).
    pub fill: Option<f64>,
    pub level: Level,
    /// Earliest release that has it (4 for the base set).
    pub since_release: u16,
    /// Last release that has it.
    pub until_release: u16,
}

impl Variable {
    /// Whether granules of `release` carry it.
    pub fn in_release(&self, release: u16) -> bool {
        (self.since_release..=self.until_release).contains(&release)
    }

    /// The last path component: the default output column name.
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

const F32_FILL: Option<f64> = Some(f32::MAX as f64);
const I32_FILL: Option<f64> = Some(i32::MAX as f64);
const I16_FILL: Option<f64> = Some(i16::MAX as f64);
const I8_FILL: Option<f64> = Some(i8::MAX as f64);

const fn seg(
    path: &'static str,
    dtype: Dtype,
    width: usize,
    fill: Option<f64>,
    since_release: u16,
) -> Variable {
    Variable {
        path,
        dtype,
        width,
        fill,
        level: Level::Segment,
        since_release,
        until_release: LATEST_RELEASE,
    }
}

/// A variable dropped after release 004.
const fn seg_r004(path: &'static str, dtype: Dtype, fill: Option<f64>) -> Variable {
    Variable {
        path,
        dtype,
        width: 1,
        fill,
        level: Level::Segment,
        since_release: 4,
        until_release: 4,
    }
}

const fn ph(path: &'static str, dtype: Dtype, fill: Option<f64>) -> Variable {
    Variable {
        path,
        dtype,
        width: 1,
        fill,
        level: Level::Photon,
        since_release: 4,
        until_release: LATEST_RELEASE,
    }
}

/// The newest release the catalog describes.
pub const LATEST_RELEASE: u16 = 7;

use Dtype::{F32, F64, I8, I16, I32, I64};

/// Every variable of the catalog.
pub static CATALOG: &[Variable] = &[
    seg("land_segments/latitude", F32, 1, None, 4),
    seg("land_segments/longitude", F32, 1, None, 4),
    seg("land_segments/delta_time", F64, 1, None, 4),
    seg("land_segments/delta_time_beg", F64, 1, None, 4),
    seg("land_segments/delta_time_end", F64, 1, None, 4),
    seg("land_segments/segment_id_beg", I32, 1, None, 4),
    seg("land_segments/segment_id_end", I32, 1, None, 4),
    seg("land_segments/rgt", I16, 1, None, 4),
    seg("land_segments/night_flag", I32, 1, I32_FILL, 4),
    seg("land_segments/urban_flag", I32, 1, I32_FILL, 4),
    seg("land_segments/terrain_flg", I32, 1, I32_FILL, 4),
    seg("land_segments/segment_watermask", I32, 1, Some(255.0), 4),
    // i4 in release 004, i2 from 005: the output keeps the wider type.
    seg("land_segments/segment_landcover", I32, 1, Some(255.0), 4),
    seg("land_segments/segment_snowcover", I8, 1, I8_FILL, 4),
    seg("land_segments/msw_flag", I8, 1, I8_FILL, 4),
    seg("land_segments/cloud_flag_atm", I8, 1, I8_FILL, 4),
    seg("land_segments/brightness_flag", I8, 1, I8_FILL, 4),
    seg("land_segments/sat_flag", I8, 1, I8_FILL, 4),
    seg("land_segments/layer_flag", I8, 1, None, 4),
    seg("land_segments/dem_removal_flag", I8, 1, None, 4),
    seg("land_segments/ph_removal_flag", I8, 1, None, 4),
    seg("land_segments/psf_flag", I8, 1, None, 4),
    seg("land_segments/cloud_fold_flag", I8, 1, I8_FILL, 4),
    seg("land_segments/dem_flag", I8, 1, I8_FILL, 4),
    seg("land_segments/last_seg_extend", F32, 1, None, 4),
    seg("land_segments/sigma_atlas_land", F32, 1, F32_FILL, 4),
    seg("land_segments/dem_h", F32, 1, F32_FILL, 4),
    seg("land_segments/asr", F32, 1, F32_FILL, 4),
    seg("land_segments/snr", F32, 1, F32_FILL, 4),
    seg("land_segments/sigma_h", F32, 1, F32_FILL, 4),
    seg("land_segments/sigma_topo", F32, 1, F32_FILL, 4),
    seg("land_segments/sigma_along", F32, 1, F32_FILL, 4),
    seg("land_segments/sigma_across", F32, 1, F32_FILL, 4),
    seg("land_segments/h_dif_ref", F32, 1, F32_FILL, 4),
    seg("land_segments/solar_azimuth", F32, 1, None, 4),
    seg("land_segments/solar_elevation", F32, 1, None, 4),
    seg("land_segments/beam_azimuth", F32, 1, F32_FILL, 4),
    seg("land_segments/beam_coelev", F32, 1, F32_FILL, 4),
    seg("land_segments/atlas_pa", F32, 1, F32_FILL, 4),
    seg("land_segments/n_seg_ph", I32, 1, None, 4),
    seg("land_segments/ph_ndx_beg", I64, 1, None, 4),
    seg("land_segments/surf_type", I8, 5, None, 4),
    seg("land_segments/latitude_20m", F32, 5, F32_FILL, 5),
    seg("land_segments/longitude_20m", F32, 5, F32_FILL, 5),
    seg("land_segments/canopy/h_canopy", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_canopy_abs", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_canopy_quad", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/canopy/h_canopy_uncertainty",
        F32,
        1,
        F32_FILL,
        4,
    ),
    seg("land_segments/canopy/h_min_canopy", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_min_canopy_abs", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_max_canopy", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_max_canopy_abs", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/h_mean_canopy", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/canopy/h_mean_canopy_abs",
        F32,
        1,
        F32_FILL,
        4,
    ),
    seg("land_segments/canopy/h_median_canopy", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/canopy/h_median_canopy_abs",
        F32,
        1,
        F32_FILL,
        4,
    ),
    seg("land_segments/canopy/h_dif_canopy", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/canopy_openness", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/centroid_height", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/toc_roughness", F32, 1, F32_FILL, 4),
    seg("land_segments/canopy/photon_rate_can", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/canopy/photon_rate_can_nr",
        F32,
        1,
        F32_FILL,
        6,
    ),
    seg("land_segments/canopy/can_noise", F32, 1, F32_FILL, 6),
    seg(
        "land_segments/canopy/canopy_h_metrics",
        F32,
        18,
        F32_FILL,
        4,
    ),
    seg(
        "land_segments/canopy/canopy_h_metrics_abs",
        F32,
        18,
        F32_FILL,
        4,
    ),
    seg("land_segments/canopy/h_canopy_20m", F32, 5, F32_FILL, 5),
    seg("land_segments/canopy/n_ca_photons", I32, 1, None, 4),
    seg("land_segments/canopy/n_toc_photons", I32, 1, None, 4),
    seg("land_segments/canopy/segment_cover", I16, 1, I16_FILL, 5),
    seg("land_segments/canopy/subset_can_flag", I8, 5, I8_FILL, 4),
    seg("land_segments/canopy/canopy_rh_conf", I8, 1, None, 4),
    seg_r004("land_segments/canopy/canopy_flag", I32, I32_FILL),
    seg_r004("land_segments/canopy/landsat_flag", I32, I32_FILL),
    seg_r004("land_segments/canopy/landsat_perc", F32, F32_FILL),
    seg("land_segments/canopy/can_quality_score", I8, 1, I8_FILL, 7),
    seg("land_segments/terrain/h_te_best_fit", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_interp", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_max", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_mean", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_median", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_min", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_mode", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_rh25", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_skew", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/h_te_std", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/terrain/h_te_uncertainty",
        F32,
        1,
        F32_FILL,
        4,
    ),
    seg("land_segments/terrain/terrain_slope", F32, 1, F32_FILL, 4),
    seg("land_segments/terrain/photon_rate_te", F32, 1, F32_FILL, 4),
    seg(
        "land_segments/terrain/h_te_best_fit_20m",
        F32,
        5,
        F32_FILL,
        5,
    ),
    seg("land_segments/terrain/n_te_photons", I32, 1, None, 4),
    seg("land_segments/terrain/subset_te_flag", I8, 5, I8_FILL, 4),
    seg("land_segments/terrain/te_quality_score", I8, 1, I8_FILL, 7),
    ph("signal_photons/ph_segment_id", I32, None),
    ph("signal_photons/ph_h", F32, F32_FILL),
    ph("signal_photons/classed_pc_flag", I8, None),
    ph("signal_photons/classed_pc_indx", I32, None),
    ph("signal_photons/d_flag", I8, None),
    ph("signal_photons/delta_time", F64, None),
];

/// The catalog entry for `path`.
pub fn lookup(path: &str) -> Option<&'static Variable> {
    CATALOG.iter().find(|variable| variable.path == path)
}

/// The catalog path closest to `path` (by full path and by last component),
/// for 'did you mean' messages.
pub fn suggest(path: &str) -> Option<&'static str> {
    let last = path.rsplit('/').next().unwrap_or(path);
    CATALOG
        .iter()
        .map(|variable| {
            let by_path = strsim::levenshtein(path, variable.path);
            let by_name = strsim::levenshtein(last, variable.name()) * 2;
            (by_path.min(by_name), variable.path)
        })
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= path.len().max(6) / 2 + 2)
        .map(|(_, path)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique() {
        let mut paths: Vec<&str> = CATALOG.iter().map(|v| v.path).collect();
        paths.sort();
        let n = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), n);
    }

    #[test]
    fn suggests_near_misses() {
        assert_eq!(
            suggest("land_segments/canopy/h_canopyy"),
            Some("land_segments/canopy/h_canopy")
        );
        assert_eq!(
            suggest("land_segments/h_canopy"),
            Some("land_segments/canopy/h_canopy")
        );
        assert_eq!(
            suggest("canopy/h_te_best_fit"),
            Some("land_segments/terrain/h_te_best_fit")
        );
        assert_eq!(
            suggest("qqqqqqqqqqqqqqqqqqqqqqqqqqqqqq/zzzzzzzzzzzzzz"),
            None
        );
    }
}
