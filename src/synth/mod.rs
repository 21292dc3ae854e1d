//! `icesat2 synth`: realistic synthetic ATL08 granules, written with libhdf5
//! in the real layout (see ATL08.md): beam groups with attributes,
//! land_segments with canopy and terrain subgroups, signal_photons consistent
//! with the segment ids, orbit_info, ancillary_data, METADATA; every beam
//! dataset chunked by 10000 rows, deflate 6, shuffle on integers,
//! `_FillValue` attributes where the product defines a fill.
//!
//! Positions follow the built-in RGT model with the six beams' cross-track
//! offsets. `near` picks the RGTs passing closest to a point and points the
//! instrument (a cross-track shift of a few km, as ICESat-2 does over land)
//! so the tracks cross it. Values are plausible, not physical: terrain is a
//! random walk, canopy comes and goes in stands, some values are fill.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::granule::variables::{CATALOG, Level, Variable};
use crate::granule::{ATLAS_EPOCH_UNIX_S, BEAMS, Dtype};
use crate::orbit;

mod write;

use write::write_granule;

/// What to write.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub granules: u32,
    pub seed: u64,
    /// Make tracks cross this point (lon, lat).
    pub near: Option<(f64, f64)>,
    /// Land segments per strong beam.
    pub segments: u32,
    /// Write signal_photons.
    pub photons: bool,
    /// Beam groups written without land_segments (as over the ocean).
    pub bare_beams: Vec<String>,
    /// How the file is laid out, and the release it claims.
    pub layout: Layout,
}

/// The file layouts NSIDC has written ATL08 in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Release 006 and before: libhdf5's defaults (superblock version 0,
    /// metadata interleaved with data as it was written).
    #[default]
    R006,
    /// Release 007's cloud-optimized layout: file-space strategy PAGE with
    /// persistent free space (superblock version 2 and a file-space info
    /// message) and 8 MiB pages, so metadata lies in whole pages at the
    /// front of the file instead of scattered between data.
    R007,
}

impl Layout {
    /// The release a granule in this layout claims (name and metadata).
    fn release(self) -> u16 {
        match self {
            Layout::R006 => 6,
            Layout::R007 => 7,
        }
    }
}

/// The file-space page size of release 007 granules.
const R007_PAGE: u64 = 8 << 20;

const CHUNK_ROWS: usize = 10_000;
const EARTH_RADIUS_M: f64 = 6_371_000.0;
const SEGMENT_M: f64 = 100.0;
/// Cross-track distance between beam pairs, and between the beams of a pair.
const PAIR_SPACING_M: f64 = 3_300.0;
const BEAM_SPACING_M: f64 = 90.0;

/// One granule to write.
#[derive(Debug, Clone)]
struct GranuleSpec {
    rgt: u16,
    cycle: u8,
    region: u8,
    /// Argument of latitude at the middle of the written stretch (radians).
    u_center: f64,
    /// Cross-track pointing offset of the whole beam pattern (m, right of travel).
    pointing_m: f64,
    sc_orient: i8,
}

/// Writes `options.granules` granules into `out`; returns their paths.
pub fn write_granules(out: &Path, options: &SynthOptions) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let specs = match options.near {
        Some((lon, lat)) => specs_near(lon, lat, options.granules, &mut rng),
        None => (0..options.granules)
            .map(|index| random_spec(index, &mut rng))
            .collect(),
    };
    let mut written = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let mut granule_rng = ChaCha8Rng::seed_from_u64(
            options
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(index as u64),
        );
        written.push(write_granule(out, spec, options, &mut granule_rng)?);
    }
    Ok(written)
}

/// Argument of latitude where the track reaches geodetic latitude `lat`.
fn u_at_latitude(lat: f64, ascending: bool) -> Option<f64> {
    let inclination = 92f64.to_radians();
    let geocentric = ((1.0 - 0.006_694_379_990_14) * lat.to_radians().tan()).atan();
    let ratio = geocentric.sin() / inclination.sin();
    if ratio.abs() > 1.0 {
        return None;
    }
    let s = ratio.asin();
    let u = if ascending {
        s
    } else {
        std::f64::consts::PI - s
    };
    Some(u.rem_euclid(std::f64::consts::TAU))
}

/// Unit vectors (east, north) along the track and to its right, at `u`.
fn track_frame(rgt: u16, u: f64) -> ((f64, f64), (f64, f64)) {
    let delta = 1e-5;
    let (lon_a, lat_a) = orbit::track_point(rgt, u - delta);
    let (lon_b, lat_b) = orbit::track_point(rgt, u + delta);
    let east = orbit::wrap_lon(lon_b - lon_a) * ((lat_a + lat_b) / 2.0).to_radians().cos();
    let north = lat_b - lat_a;
    let norm = (east * east + north * north).sqrt().max(1e-12);
    let along = (east / norm, north / norm);
    (along, (along.1, -along.0))
}

/// Moves (lon, lat) by `east_m`, `north_m` metres.
fn offset(lon: f64, lat: f64, east_m: f64, north_m: f64) -> (f64, f64) {
    let metres_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let lat_new = lat + north_m / metres_per_degree;
    let lon_new = lon + east_m / (metres_per_degree * lat.to_radians().cos().max(1e-6));
    (orbit::wrap_lon(lon_new), lat_new)
}

fn specs_near(lon: f64, lat: f64, n_granules: u32, rng: &mut ChaCha8Rng) -> Vec<GranuleSpec> {
    // (distance of the point from the track to its right, metres; rgt; u)
    let mut candidates: Vec<(f64, u16, f64)> = Vec::new();
    for rgt in 1..=orbit::N_RGTS {
        for ascending in [true, false] {
            let Some(u) = u_at_latitude(lat, ascending) else {
                continue;
            };
            let (track_lon, track_lat) = orbit::track_point(rgt, u);
            let metres_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
            let east_m =
                orbit::wrap_lon(lon - track_lon) * metres_per_degree * track_lat.to_radians().cos();
            let (_, right) = track_frame(rgt, u);
            let across = east_m * right.0;
            candidates.push((across, rgt, u));
        }
    }
    candidates.sort_by(|a, b| a.0.abs().total_cmp(&b.0.abs()));
    // Two granules per track (successive cycles, three months apart) by default.
    let n_tracks = (n_granules as usize).div_ceil(2).clamp(1, 8);
    let chosen = &candidates[..n_tracks.min(candidates.len())];
    (0..n_granules as usize)
        .map(|index| {
            let (across, rgt, u) = chosen[index % chosen.len()];
            let cycle = 3 + (index / chosen.len()) as u8;
            // Point the centre pair (between spots 3 and 4) at the place, give or take 40 m.
            let pointing_m = across + rng.random_range(-40.0..40.0);
            GranuleSpec {
                rgt,
                cycle,
                region: orbit::region_at(rgt, u),
                u_center: u,
                pointing_m,
                sc_orient: rng.random_range(0..2),
            }
        })
        .collect()
}

fn random_spec(index: u32, rng: &mut ChaCha8Rng) -> GranuleSpec {
    let rgt = rng.random_range(1..=orbit::N_RGTS);
    let region = [1u8, 2, 3, 5, 6, 7, 8, 9, 10, 12, 13, 14][rng.random_range(0..12)];
    let (start, end) = orbit::region_u_range(region).unwrap_or((0.0, 0.1));
    let u_center = start + (end - start) * rng.random_range(0.3..0.7);
    GranuleSpec {
        rgt,
        cycle: 3 + (index % 20) as u8,
        region,
        u_center,
        pointing_m: rng.random_range(-1500.0..1500.0),
        sc_orient: rng.random_range(0..2),
    }
}

/// Seconds since the ATLAS SDP epoch at which `spec`'s track passes `u`.
fn delta_time(spec: &GranuleSpec, u: f64) -> f64 {
    let model_start = (orbit::model_epoch().timestamp() - ATLAS_EPOCH_UNIX_S) as f64;
    model_start
        + f64::from(spec.cycle - 1) * orbit::DAYS_PER_CYCLE * 86_400.0
        + f64::from(spec.rgt - 1) * orbit::NODAL_PERIOD_S
        + u / std::f64::consts::TAU * orbit::NODAL_PERIOD_S
}

fn utc_of(delta_time: f64) -> DateTime<Utc> {
    let micros = ATLAS_EPOCH_UNIX_S * 1_000_000 + (delta_time * 1e6).round() as i64;
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Solar elevation (degrees) from a simple almanac: good to a degree or two.
fn solar_elevation(time: DateTime<Utc>, lon: f64, lat: f64) -> (f64, f64) {
    let day = f64::from(time.ordinal());
    let declination =
        (-23.44f64).to_radians() * ((360.0 / 365.0) * (day + 10.0)).to_radians().cos();
    let hours = f64::from(time.hour())
        + f64::from(time.minute()) / 60.0
        + f64::from(time.second()) / 3600.0;
    let hour_angle = ((hours - 12.0) * 15.0 + lon).to_radians();
    let lat = lat.to_radians();
    let sin_elevation =
        lat.sin() * declination.sin() + lat.cos() * declination.cos() * hour_angle.cos();
    let elevation = sin_elevation.clamp(-1.0, 1.0).asin();
    let azimuth = (-hour_angle.sin() * declination.cos())
        .atan2(declination.sin() * lat.cos() - declination.cos() * lat.sin() * hour_angle.cos());
    (
        elevation.to_degrees(),
        azimuth.to_degrees().rem_euclid(360.0),
    )
}

/// The cross-track offset of a beam from the RGT (m, right of travel).
fn beam_offset(beam: &str, sc_orient: i8) -> f64 {
    let pair = f64::from(beam.as_bytes()[2] - b'1') - 1.0;
    let side = if beam.ends_with('l') { -0.5 } else { 0.5 };
    let sign = if sc_orient == 0 { 1.0 } else { -1.0 };
    sign * (pair * PAIR_SPACING_M + side * BEAM_SPACING_M)
}

fn is_strong(beam: &str, sc_orient: i8) -> bool {
    (sc_orient == 0) == beam.ends_with('l')
}

fn spot(beam: &str, sc_orient: i8) -> u8 {
    let index = BEAMS.iter().position(|b| *b == beam).unwrap_or(0) as u8;
    if sc_orient == 0 { index + 1 } else { 6 - index }
}

/// One beam's generated segments: every column by catalog path, plus photons.
struct BeamData {
    columns: Vec<(&'static Variable, Column)>,
    photons: Vec<(&'static Variable, Column)>,
}

enum Column {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

fn generate_beam(
    beam: &str,
    spec: &GranuleSpec,
    options: &SynthOptions,
    rng: &mut ChaCha8Rng,
) -> BeamData {
    let strong = is_strong(beam, spec.sc_orient);
    let (u_start_region, u_end_region) =
        orbit::region_u_range(spec.region).unwrap_or((0.0, std::f64::consts::TAU));
    let du = SEGMENT_M / EARTH_RADIUS_M;
    let n_window = options.segments as usize;
    let half = n_window as f64 / 2.0 * du;
    let u_first = (spec.u_center - half).max(u_start_region);
    let u_last = (spec.u_center + half).min(u_end_region - du);
    let n_slots = (((u_last - u_first) / du).floor() as usize).max(1);
    // Segments with too few photons are absent: gaps of 1-40 segments,
    // more on weak beams. None within 1.5 km of the window's centre.
    let gap_chance = if strong { 0.004 } else { 0.012 };
    let centre_slot = ((spec.u_center - u_first) / du) as i64;
    let mut slots = Vec::with_capacity(n_slots);
    let mut gap_left = 0usize;
    for slot in 0..n_slots {
        let near_centre = (slot as i64 - centre_slot).abs() < 15;
        if gap_left > 0 && !near_centre {
            gap_left -= 1;
            continue;
        }
        if !near_centre && rng.random_bool(gap_chance) {
            gap_left = rng.random_range(1..40);
            continue;
        }
        slots.push(slot);
    }
    let n = slots.len();
    let cross = spec.pointing_m + beam_offset(beam, spec.sc_orient);

    let mut latitude = Vec::with_capacity(n);
    let mut longitude = Vec::with_capacity(n);
    let mut lat20 = Vec::with_capacity(n * 5);
    let mut lon20 = Vec::with_capacity(n * 5);
    let mut times = Vec::with_capacity(n);
    let mut segment_beg = Vec::with_capacity(n);
    for &slot in &slots {
        let u = u_first + (slot as f64 + 0.5) * du;
        let place = |u: f64| {
            let (lon, lat) = orbit::track_point(spec.rgt, u);
            let (_, right) = track_frame(spec.rgt, u);
            offset(lon, lat, right.0 * cross, right.1 * cross)
        };
        let (lon, lat) = place(u);
        longitude.push(lon as f32);
        latitude.push(lat as f32);
        for sub in 0..5 {
            let (lon, lat) = place(u + (f64::from(sub) - 2.0) * du / 5.0);
            lon20.push(lon as f32);
            lat20.push(lat as f32);
        }
        times.push(delta_time(spec, u));
        segment_beg.push(((u - du / 2.0) * EARTH_RADIUS_M / 20.0).round() as i32 + 1);
    }

    // Terrain: a random walk; canopy: stands that come and go.
    let mut elevation = rng.random_range(50.0..1200.0f64);
    let mut forest = rng.random_bool(0.6);
    let mut stand_height = rng.random_range(8.0..35.0f64);
    let mut h_te = Vec::with_capacity(n);
    let mut h_canopy = Vec::with_capacity(n);
    for _ in 0..n {
        elevation = (elevation + rng.random_range(-4.0..4.0)).clamp(0.0, 3500.0);
        if rng.random_bool(0.02) {
            forest = !forest;
            stand_height = rng.random_range(5.0..40.0);
        }
        h_te.push(elevation);
        let canopy = forest && !rng.random_bool(0.1);
        h_canopy.push(canopy.then(|| (stand_height + rng.random_range(-4.0..4.0)).max(2.0)));
    }

    // Photons per segment.
    let (mean, spread, least) = if strong {
        (100.0, 30.0, 20.0)
    } else {
        (28.0, 9.0, 6.0)
    };
    let counts: Vec<i32> = (0..n)
        .map(|_| (mean + spread * rng.random_range(-1.0..1.0f64)).max(least) as i32)
        .collect();

    let mut columns: Vec<(&'static Variable, Column)> = Vec::new();
    let mut solar = Vec::with_capacity(n);
    for i in 0..n {
        solar.push(solar_elevation(
            utc_of(times[i]),
            f64::from(longitude[i]),
            f64::from(latitude[i]),
        ));
    }
    let fill32 = f32::MAX;
    let mut first_photon = 1i64;
    let ph_ndx_beg: Vec<i64> = counts
        .iter()
        .map(|&count| {
            let first = first_photon;
            first_photon += i64::from(count);
            first
        })
        .collect();

    for variable in CATALOG
        .iter()
        .filter(|v| v.level == Level::Segment && v.in_release(options.layout.release()))
    {
        let column = match variable.name() {
            "latitude" => Column::F32(latitude.clone()),
            "longitude" => Column::F32(longitude.clone()),
            "latitude_20m" => Column::F32(lat20.clone()),
            "longitude_20m" => Column::F32(lon20.clone()),
            "delta_time" => Column::F64(times.clone()),
            "delta_time_beg" => Column::F64(times.iter().map(|t| t - 0.007).collect()),
            "delta_time_end" => Column::F64(times.iter().map(|t| t + 0.007).collect()),
            "segment_id_beg" => Column::I32(segment_beg.clone()),
            "segment_id_end" => Column::I32(segment_beg.iter().map(|id| id + 4).collect()),
            "rgt" => Column::I16(vec![spec.rgt as i16; n]),
            "night_flag" => Column::I32(
                solar
                    .iter()
                    .map(|(elevation, _)| i32::from(*elevation < 0.0))
                    .collect(),
            ),
            "solar_elevation" => Column::F32(
                solar
                    .iter()
                    .map(|(elevation, _)| *elevation as f32)
                    .collect(),
            ),
            "solar_azimuth" => {
                Column::F32(solar.iter().map(|(_, azimuth)| *azimuth as f32).collect())
            }
            "n_seg_ph" => Column::I32(counts.clone()),
            "ph_ndx_beg" => Column::I64(ph_ndx_beg.clone()),
            "h_te_best_fit" => Column::F32(
                h_te.iter()
                    .map(|&h| {
                        if rng.random_bool(0.03) {
                            fill32
                        } else {
                            (h + rng.random_range(-0.5..0.5)) as f32
                        }
                    })
                    .collect(),
            ),
            "dem_h" => Column::F32(
                h_te.iter()
                    .map(|&h| (h + rng.random_range(-6.0..6.0)) as f32)
                    .collect(),
            ),
            "h_te_best_fit_20m" => Column::F32(
                (0..n * 5)
                    .map(|k| {
                        if rng.random_bool(0.15) {
                            fill32
                        } else {
                            (h_te[k / 5] + rng.random_range(-1.0..1.0)) as f32
                        }
                    })
                    .collect(),
            ),
            "h_canopy" => Column::F32(
                h_canopy
                    .iter()
                    .map(|h| h.map_or(fill32, |h| h as f32))
                    .collect(),
            ),
            "h_canopy_abs" => Column::F32(
                h_canopy
                    .iter()
                    .zip(&h_te)
                    .map(|(c, t)| c.map_or(fill32, |c| (c + t) as f32))
                    .collect(),
            ),
            "canopy_h_metrics" | "canopy_h_metrics_abs" => {
                let absolute = variable.name().ends_with("_abs");
                let mut values = Vec::with_capacity(n * 18);
                for (canopy, terrain) in h_canopy.iter().zip(&h_te) {
                    match canopy {
                        Some(height) => {
                            for k in 0..18 {
                                let fraction = (10.0 + 5.0 * f64::from(k)) / 100.0;
                                let rh = height * fraction.powf(0.6) * 0.98;
                                values.push((if absolute { rh + terrain } else { rh }) as f32);
                            }
                        }
                        None => values.extend(std::iter::repeat_n(fill32, 18)),
                    }
                }
                Column::F32(values)
            }
            "h_canopy_20m" => Column::F32(
                (0..n * 5)
                    .map(|k| match h_canopy[k / 5] {
                        Some(h) if !rng.random_bool(0.2) => {
                            (h + rng.random_range(-3.0..3.0)).max(0.5) as f32
                        }
                        _ => fill32,
                    })
                    .collect(),
            ),
            "n_te_photons" => Column::I32(counts.iter().map(|c| c / 2).collect()),
            "n_ca_photons" => Column::I32(
                counts
                    .iter()
                    .zip(&h_canopy)
                    .map(|(c, h)| if h.is_some() { c / 3 } else { 0 })
                    .collect(),
            ),
            "n_toc_photons" => Column::I32(
                counts
                    .iter()
                    .zip(&h_canopy)
                    .map(|(c, h)| if h.is_some() { c / 10 } else { 0 })
                    .collect(),
            ),
            "segment_watermask" => {
                Column::I32((0..n).map(|_| i32::from(rng.random_bool(0.03))).collect())
            }
            "urban_flag" => Column::I32((0..n).map(|_| i32::from(rng.random_bool(0.02))).collect()),
            "terrain_flg" => Column::I32(vec![0; n]),
            "segment_landcover" => {
                let classes = [
                    111, 112, 114, 115, 116, 121, 124, 126, 20, 30, 40, 50, 60, 80, 90, 100,
                ];
                Column::I32(
                    h_canopy
                        .iter()
                        .map(|h| {
                            if h.is_some() {
                                classes[rng.random_range(0..8)]
                            } else {
                                classes[rng.random_range(8..16)]
                            }
                        })
                        .collect(),
                )
            }
            "segment_snowcover" => Column::I8(
                (0..n)
                    .map(|_| if rng.random_bool(0.95) { 1 } else { 2 })
                    .collect(),
            ),
            "msw_flag" => Column::I8(
                (0..n)
                    .map(|_| {
                        if rng.random_bool(0.8) {
                            0
                        } else {
                            rng.random_range(1..6)
                        }
                    })
                    .collect(),
            ),
            "cloud_flag_atm" => Column::I8(
                (0..n)
                    .map(|_| {
                        if rng.random_bool(0.7) {
                            0
                        } else {
                            rng.random_range(1..11)
                        }
                    })
                    .collect(),
            ),
            "surf_type" => Column::I8((0..n * 5).map(|k| i8::from(k % 5 == 0)).collect()),
            "canopy_rh_conf" => Column::I8(
                h_canopy
                    .iter()
                    .map(|h| {
                        if h.is_some() {
                            rng.random_range(0..3)
                        } else {
                            0
                        }
                    })
                    .collect(),
            ),
            "subset_can_flag" | "subset_te_flag" => Column::I8(
                (0..n * 5)
                    .map(|_| {
                        if rng.random_bool(0.05) {
                            127
                        } else {
                            i8::from(rng.random_bool(0.9))
                        }
                    })
                    .collect(),
            ),
            "segment_cover" => Column::I16(
                h_canopy
                    .iter()
                    .map(|h| {
                        if h.is_some() {
                            rng.random_range(10..100)
                        } else {
                            i16::MAX
                        }
                    })
                    .collect(),
            ),
            _ => generic_column(variable, n, &h_canopy, rng),
        };
        columns.push((variable, column));
    }

    // Photons: spread over the 5 ATL03 segments of each land segment, sorted by id.
    let mut photons = Vec::new();
    if options.photons {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut ph_segment_id = Vec::with_capacity(total);
        let mut ph_h = Vec::with_capacity(total);
        let mut class = Vec::with_capacity(total);
        let mut class_index = Vec::with_capacity(total);
        let mut d_flag = Vec::with_capacity(total);
        let mut ph_time = Vec::with_capacity(total);
        for i in 0..n {
            let count = counts[i] as usize;
            let mut ids: Vec<i32> = (0..count)
                .map(|_| segment_beg[i] + rng.random_range(0..5))
                .collect();
            ids.sort_unstable();
            for (k, id) in ids.into_iter().enumerate() {
                ph_segment_id.push(id);
                let draw: f64 = rng.random();
                let (flag, height) = match h_canopy[i] {
                    _ if draw < 0.03 => (0i8, rng.random_range(-20.0..60.0)),
                    Some(top) if draw < 0.55 => (2, rng.random_range(0.5..top)),
                    Some(top) if draw < 0.62 => (3, top + rng.random_range(-1.0..1.0)),
                    _ => (1, rng.random_range(-0.4..0.4)),
                };
                class.push(flag);
                ph_h.push(height as f32);
                class_index.push(k as i32 * 3 + rng.random_range(0..3));
                d_flag.push(i8::from(rng.random_bool(0.9)));
                ph_time.push(times[i] - 0.007 + 0.014 * k as f64 / count.max(1) as f64);
            }
        }
        for variable in CATALOG.iter().filter(|v| v.level == Level::Photon) {
            let column = match variable.name() {
                "ph_segment_id" => Column::I32(ph_segment_id.clone()),
                "ph_h" => Column::F32(ph_h.clone()),
                "classed_pc_flag" => Column::I8(class.clone()),
                "classed_pc_indx" => Column::I32(class_index.clone()),
                "d_flag" => Column::I8(d_flag.clone()),
                _ => Column::F64(ph_time.clone()),
            };
            photons.push((variable, column));
        }
    }
    BeamData { columns, photons }
}

/// Plausible values for variables without a special rule: small positive
/// numbers for floats (fill where canopy is absent for canopy variables),
/// small flags for integers.
fn generic_column(
    variable: &Variable,
    n: usize,
    h_canopy: &[Option<f64>],
    rng: &mut ChaCha8Rng,
) -> Column {
    let rows = n * variable.width;
    let canopy_variable = variable.path.contains("/canopy/");
    let fill_row = |k: usize, rng: &mut ChaCha8Rng| {
        variable.fill.is_some()
            && ((canopy_variable && h_canopy[k / variable.width].is_none())
                || rng.random_bool(0.02))
    };
    match variable.dtype {
        Dtype::F32 => Column::F32(
            (0..rows)
                .map(|k| {
                    if fill_row(k, rng) {
                        f32::MAX
                    } else {
                        rng.random_range(0.0..10.0)
                    }
                })
                .collect(),
        ),
        Dtype::F64 => Column::F64((0..rows).map(|_| rng.random_range(0.0..10.0)).collect()),
        Dtype::I8 => Column::I8(
            (0..rows)
                .map(|k| {
                    if fill_row(k, rng) {
                        i8::MAX
                    } else {
                        rng.random_range(0..2)
                    }
                })
                .collect(),
        ),
        Dtype::I16 => Column::I16(
            (0..rows)
                .map(|k| {
                    if fill_row(k, rng) {
                        i16::MAX
                    } else {
                        rng.random_range(0..100)
                    }
                })
                .collect(),
        ),
        Dtype::I64 => Column::I64((0..rows).map(|_| rng.random_range(0..100)).collect()),
        _ => Column::I32(
            (0..rows)
                .map(|k| {
                    if fill_row(k, rng) {
                        i32::MAX
                    } else {
                        rng.random_range(0..3)
                    }
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beams_follow_the_orientation_table() {
        // ATL08.md: backward, gt1l gt2l gt3l strong (spots 1 3 5); forward, gt1r 5, gt2r 3, gt3r 1.
        assert!(is_strong("gt1l", 0) && !is_strong("gt1r", 0));
        assert!(is_strong("gt3r", 1) && !is_strong("gt3l", 1));
        assert_eq!(
            [spot("gt1l", 0), spot("gt2l", 0), spot("gt3l", 0)],
            [1, 3, 5]
        );
        assert_eq!(
            [spot("gt1r", 1), spot("gt2r", 1), spot("gt3r", 1)],
            [5, 3, 1]
        );
        assert!((beam_offset("gt2l", 0) + 45.0).abs() < 1e-9);
        assert!((beam_offset("gt3r", 0) - 3345.0).abs() < 1e-9);
    }

    #[test]
    fn near_tracks_cross_the_point() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let specs = specs_near(147.368, -43.143, 4, &mut rng);
        assert_eq!(specs.len(), 4);
        for spec in specs {
            let (lon, lat) = orbit::track_point(spec.rgt, spec.u_center);
            let (_, right) = track_frame(spec.rgt, spec.u_center);
            let (lon, lat) = offset(
                lon,
                lat,
                right.0 * spec.pointing_m,
                right.1 * spec.pointing_m,
            );
            // The place's distance from the pointed track, across it.
            let east = (147.368 - lon) * 111_195.0 * lat.to_radians().cos();
            let north = (-43.143 - lat) * 111_195.0;
            let across = east * right.0 + north * right.1;
            assert!(across.abs() < 60.0, "{spec:?}: {across} m");
        }
    }
}
