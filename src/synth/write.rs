//! Writing one synthetic granule with libhdf5: the file in the chosen
//! layout, the top-level groups (ancillary_data, orbit_info, METADATA), the
//! beam groups with their attributes and every column with its attributes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use chrono::{DateTime, TimeZone, Utc};
use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};
use rand_chacha::ChaCha8Rng;

use crate::granule::variables::Variable;
use crate::granule::{ATLAS_EPOCH_UNIX_S, BEAMS};
use crate::orbit;

use super::{
    CHUNK_ROWS, Column, GranuleSpec, Layout, R007_PAGE, SynthOptions, delta_time, generate_beam,
    is_strong, spot, utc_of,
};

pub(super) fn write_granule(
    out: &Path,
    spec: &GranuleSpec,
    options: &SynthOptions,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<PathBuf> {
    let (u_region_start, u_region_end) =
        orbit::region_u_range(spec.region).unwrap_or((0.0, std::f64::consts::TAU));
    let start = utc_of(delta_time(spec, u_region_start));
    let end = utc_of(delta_time(spec, u_region_end));
    let name = format!(
        "ATL08_{}_{:04}{:02}{:02}_{:03}_01.h5",
        start.format("%Y%m%d%H%M%S"),
        spec.rgt,
        spec.cycle,
        spec.region,
        options.layout.release()
    );
    let path = out.join(&name);
    let staged = crate::atomic::Staged::reserve(&path)?;
    let temporary = staged.path();
    let result = (|| -> anyhow::Result<()> {
        let file = match options.layout {
            Layout::R006 => hdf5::File::create(temporary)?,
            Layout::R007 => hdf5::File::with_options()
                .with_fcpl(|fcpl| {
                    fcpl.file_space_strategy(hdf5::file::FileSpaceStrategy::FreeSpaceManager {
                        paged: true,
                        persist: true,
                        threshold: 1,
                    })
                    .file_space_page_size(R007_PAGE)
                })
                .create(temporary)?,
        };
        write_top_level(&file, spec, options.layout.release(), start, end)?;
        for beam in BEAMS {
            let group = file.create_group(beam)?;
            write_beam_attributes(&group, beam, spec)?;
            if options.bare_beams.iter().any(|bare| bare == beam) {
                continue;
            }
            let data = generate_beam(beam, spec, options, rng);
            let land = group.create_group("land_segments")?;
            let canopy = land.create_group("canopy")?;
            let terrain = land.create_group("terrain")?;
            for (variable, column) in &data.columns {
                let (folder, leaf) = variable
                    .path
                    .rsplit_once('/')
                    .unwrap_or(("", variable.path));
                let target = match folder {
                    "land_segments/canopy" => &canopy,
                    "land_segments/terrain" => &terrain,
                    _ => &land,
                };
                write_column(target, leaf, variable, column)?;
            }
            if options.photons {
                let photons = group.create_group("signal_photons")?;
                for (variable, column) in &data.photons {
                    write_column(&photons, variable.name(), variable, column)?;
                }
            }
        }
        file.close()?;
        Ok(())
    })();
    result.with_context(|| format!("writing {}", path.display()))?;
    staged.commit(false)?;
    Ok(path)
}

/// Writes one beam dataset: chunks of 10000 rows (by the full width), deflate
/// 6 with shuffle first on integers, unlimited first dimension, `_FillValue`.
fn write_column(
    group: &Group,
    name: &str,
    variable: &Variable,
    column: &Column,
) -> anyhow::Result<()> {
    fn write<T: H5Type + Copy>(
        group: &Group,
        name: &str,
        variable: &Variable,
        data: &[T],
        fill: Option<T>,
        integer: bool,
    ) -> anyhow::Result<()> {
        let width = variable.width;
        let rows = data.len() / width;
        let builder = group.new_dataset::<T>();
        let builder = if integer { builder.shuffle() } else { builder };
        let builder = builder.deflate(6);
        let builder = match fill {
            Some(fill) => builder.fill_value(fill),
            None => builder,
        };
        let dataset = if width == 1 {
            builder.chunk((CHUNK_ROWS,)).shape((rows..,)).create(name)?
        } else {
            builder
                .chunk((CHUNK_ROWS, width))
                .shape((rows.., width))
                .create(name)?
        };
        dataset.write_raw(data)?;
        if let Some(fill) = fill {
            dataset
                .new_attr::<T>()
                .shape(())
                .create("_FillValue")?
                .write_scalar(&fill)?;
        }
        text_attribute(&dataset, "long_name", &name.replace('_', " "))?;
        text_attribute(&dataset, "contentType", "modelResult")?;
        Ok(())
    }
    let fill = variable.fill;
    match column {
        Column::F32(data) => write(group, name, variable, data, fill.map(|f| f as f32), false),
        Column::F64(data) => write(group, name, variable, data, fill, false),
        Column::I8(data) => write(group, name, variable, data, fill.map(|f| f as i8), true),
        Column::I16(data) => write(group, name, variable, data, fill.map(|f| f as i16), true),
        Column::I32(data) => write(group, name, variable, data, fill.map(|f| f as i32), true),
        Column::I64(data) => write(group, name, variable, data, fill.map(|f| f as i64), true),
    }
}

/// A scalar, null-terminated, fixed-length ASCII attribute of exactly the
/// text's size, as NASA writes them.
fn text_attribute(location: &Location, name: &str, text: &str) -> anyhow::Result<()> {
    use hdf5_sys::{h5a, h5p, h5s, h5t};
    let c_name = std::ffi::CString::new(name)?;
    let c_text = std::ffi::CString::new(text)?;
    let size = c_text.as_bytes_with_nul().len();
    let status = hdf5::sync::sync(|| unsafe {
        let string_type = h5t::H5Tcopy(*h5t::H5T_C_S1);
        h5t::H5Tset_size(string_type, size);
        h5t::H5Tset_strpad(string_type, h5t::H5T_str_t::H5T_STR_NULLTERM);
        let space = h5s::H5Screate(h5s::H5S_class_t::H5S_SCALAR);
        let attribute = h5a::H5Acreate2(
            location.id(),
            c_name.as_ptr(),
            string_type,
            space,
            h5p::H5P_DEFAULT,
            h5p::H5P_DEFAULT,
        );
        let status = if attribute < 0 {
            -1
        } else {
            h5a::H5Awrite(attribute, string_type, c_text.as_ptr().cast())
        };
        if attribute >= 0 {
            h5a::H5Aclose(attribute);
        }
        h5s::H5Sclose(space);
        h5t::H5Tclose(string_type);
        status
    });
    if status < 0 {
        anyhow::bail!("cannot write attribute {name}");
    }
    Ok(())
}

/// A fixed-length string dataset of shape (1,), as ancillary_data holds them.
fn text_dataset(group: &Group, name: &str, text: &str) -> anyhow::Result<()> {
    let value: VarLenUnicode = text
        .parse()
        .map_err(|err| anyhow::anyhow!("{name}: {err:?}"))?;
    let dataset = group
        .new_dataset::<VarLenUnicode>()
        .shape((1,))
        .create(name)?;
    dataset.write_raw(&[value])?;
    Ok(())
}

fn scalar_dataset<T: H5Type + Copy>(group: &Group, name: &str, value: T) -> anyhow::Result<()> {
    group
        .new_dataset::<T>()
        .shape((1,))
        .create(name)?
        .write_raw(&[value])?;
    Ok(())
}

fn write_top_level(
    file: &hdf5::File,
    spec: &GranuleSpec,
    release: u16,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<()> {
    let stamp = |time: DateTime<Utc>| time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let ancillary = file.create_group("ancillary_data")?;
    scalar_dataset(&ancillary, "atlas_sdp_gps_epoch", 1_198_800_018.0f64)?;
    text_dataset(&ancillary, "data_start_utc", &stamp(start))?;
    text_dataset(&ancillary, "data_end_utc", &stamp(end))?;
    text_dataset(&ancillary, "granule_start_utc", &stamp(start))?;
    text_dataset(&ancillary, "granule_end_utc", &stamp(end))?;
    text_dataset(&ancillary, "release", &format!("{release:03}"))?;
    for (name, value) in [
        ("start_rgt", i32::from(spec.rgt)),
        ("end_rgt", i32::from(spec.rgt)),
        ("start_cycle", i32::from(spec.cycle)),
        ("end_cycle", i32::from(spec.cycle)),
        ("start_region", i32::from(spec.region)),
        ("end_region", i32::from(spec.region)),
    ] {
        scalar_dataset(&ancillary, name, value)?;
    }
    let start_delta = (start.timestamp_micros() - ATLAS_EPOCH_UNIX_S * 1_000_000) as f64 / 1e6;
    let end_delta = (end.timestamp_micros() - ATLAS_EPOCH_UNIX_S * 1_000_000) as f64 / 1e6;
    scalar_dataset(&ancillary, "start_delta_time", start_delta)?;
    scalar_dataset(&ancillary, "end_delta_time", end_delta)?;

    let orbit_info = file.create_group("orbit_info")?;
    scalar_dataset(&orbit_info, "rgt", spec.rgt as i16)?;
    scalar_dataset(&orbit_info, "cycle_number", spec.cycle as i8)?;
    scalar_dataset(&orbit_info, "sc_orient", spec.sc_orient)?;
    scalar_dataset(&orbit_info, "sc_orient_time", start_delta)?;
    scalar_dataset(
        &orbit_info,
        "orbit_number",
        (u32::from(spec.cycle - 1) * 1387 + u32::from(spec.rgt)) as u16,
    )?;
    let (node_lon, _) = orbit::track_point(spec.rgt, 0.0);
    scalar_dataset(&orbit_info, "lan", node_lon)?;

    let metadata = file.create_group("METADATA")?;
    let identification = metadata.create_group("DatasetIdentification")?;
    text_attribute(&identification, "shortName", "ATL08")?;
    text_attribute(&identification, "VersionID", &format!("{release:03}"))?;
    text_attribute(
        &identification,
        "creationDate",
        &Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .map(stamp)
            .unwrap_or_default(),
    )?;
    text_attribute(
        &identification,
        "purpose",
        "synthetic granule written by icesat2 synth for tests and demos",
    )?;
    for (name, length) in [
        ("ds_geosegments", 5),
        ("ds_surf_type", 5),
        ("ds_metrics", 18),
    ] {
        let values: Vec<i32> = (1..=length).collect();
        file.new_dataset::<i32>()
            .shape((values.len(),))
            .create(name)?
            .write_raw(&values)?;
    }
    text_attribute(file, "short_name", "ATL08")?;
    text_attribute(file, "level", "L3A")?;
    Ok(())
}

fn write_beam_attributes(group: &Group, beam: &str, spec: &GranuleSpec) -> anyhow::Result<()> {
    let strong = is_strong(beam, spec.sc_orient);
    text_attribute(
        group,
        "atlas_beam_type",
        if strong { "strong" } else { "weak" },
    )?;
    text_attribute(
        group,
        "atlas_spot_number",
        &spot(beam, spec.sc_orient).to_string(),
    )?;
    text_attribute(
        group,
        "atlas_pce",
        &format!("pce{}", beam.as_bytes()[2] - b'0'),
    )?;
    text_attribute(group, "beam_pair", &(beam.as_bytes()[2] - b'0').to_string())?;
    text_attribute(group, "beam_type", if strong { "strong" } else { "weak" })?;
    text_attribute(group, "groundtrack_id", beam)?;
    text_attribute(
        group,
        "sc_orientation",
        if spec.sc_orient == 0 {
            "Backward"
        } else {
            "Forward"
        },
    )?;
    Ok(())
}
