//! `icesat2 synth --out DIR [--granules N] [--seed S] [--near LON,LAT] [--segments N] [--layout r006|r007]`.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct SynthArgs {
    /// Folder to write the granules into.
    #[arg(long)]
    out: PathBuf,
    /// How many granules.
    #[arg(long, default_value_t = 3)]
    granules: u32,
    /// Random seed; the same seed writes the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make granules whose ground tracks cross this point (degrees).
    #[arg(long, value_name = "LON,LAT")]
    near: Option<String>,
    /// Land segments per strong beam (weak beams get about as many);
    /// real granules hold tens of thousands.
    #[arg(long, default_value_t = 20_000)]
    segments: u32,
    /// Leave out signal_photons (smaller files).
    #[arg(long)]
    no_photons: bool,
    /// Write this beam group without land_segments, as over the ocean (repeatable).
    #[arg(long, value_name = "BEAM")]
    without_land_segments: Vec<String>,
    /// File layout and release: r006 (libhdf5's defaults) or r007 (the
    /// cloud-optimized layout of release 007: paged aggregation, 8 MiB
    /// pages, metadata in whole pages at the front).
    #[arg(long, value_enum, default_value_t = LayoutArg::R006)]
    layout: LayoutArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    R006,
    R007,
}

#[cfg(feature = "hdf5")]
pub(crate) fn run(args: SynthArgs) -> anyhow::Result<u8> {
    let near = args.near.as_deref().map(parse_near).transpose()?;
    let options = crate::synth::SynthOptions {
        granules: args.granules,
        seed: args.seed,
        near,
        segments: args.segments,
        photons: !args.no_photons,
        bare_beams: args.without_land_segments,
        layout: match args.layout {
            LayoutArg::R006 => crate::synth::Layout::R006,
            LayoutArg::R007 => crate::synth::Layout::R007,
        },
    };
    let written = crate::synth::write_granules(&args.out, &options)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(0)
}

#[cfg(not(feature = "hdf5"))]
pub fn run(_args: SynthArgs) -> anyhow::Result<u8> {
    anyhow::bail!(
        "synth writes HDF5 with libhdf5: build with `cargo build --features hdf5` (needs Debian's libhdf5-dev)"
    )
}

#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
fn parse_near(text: &str) -> anyhow::Result<(f64, f64)> {
    let (lon, lat) = text
        .split_once(',')
        .ok_or_else(|| anyhow::anyhow!("--near '{text}': expected LON,LAT"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--near '{text}': longitude is not a number"))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--near '{text}': latitude is not a number"))?;
    if !(-180.0..=180.0).contains(&lon) || !(-88.0..=88.0).contains(&lat) {
        anyhow::bail!(
            "--near '{text}': longitude must lie in [-180, 180] and latitude in [-88, 88]"
        );
    }
    Ok((lon, lat))
}
