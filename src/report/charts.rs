//! The quick-look charts, drawn with `plotters`: the map of kept segments (an
//! aggregated grid coloured by one variable, with the region's outline, the
//! selected tracks, a scale bar and a legend) and histograms. SVG for the
//! HTML report, PNG for `--png`. Text is set in DejaVu Sans, embedded, so
//! the output does not depend on the fonts of the machine.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// The map's size in pixels.
pub const MAP_SIZE: (u32, u32) = (1000, 760);
/// One histogram's size in pixels.
pub const HISTOGRAM_SIZE: (u32, u32) = (440, 260);
/// Colour of cells whose variable is null in every row.
const NO_VALUE: RGBColor = RGBColor(170, 170, 170);
const OUTLINE: RGBColor = RGBColor(215, 38, 38);
const TRACK: RGBColor = RGBColor(90, 90, 90);
const FONT: &str = "sans-serif";

/// What the map shows.
#[derive(Debug, Clone, Default)]
pub struct MapData {
    /// Drawing extent: lon min, lat min, lon max, lat max.
    pub bounds: [f64; 4],
    /// Grid cell width and height, degrees.
    pub cell: (f64, f64),
    pub cells: Vec<Cell>,
    /// The colouring variable; `None` when the dataset has no such column
    /// (cells are then coloured by segment count).
    pub variable: Option<String>,
    /// The colour scale's ends.
    pub range: Option<(f64, f64)>,
    /// Region rings, lon/lat.
    pub region: Vec<Vec<[f64; 2]>>,
    /// Selected tracks as polylines, lon/lat.
    pub tracks: Vec<(u16, Vec<(f64, f64)>)>,
    /// How many tracks were selected (drawn or not).
    pub tracks_selected: usize,
}

/// One grid cell: its lower-left corner, the mean of the variable over its
/// rows (`None` when all are null), and its segment count.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub lon: f64,
    pub lat: f64,
    pub value: Option<f64>,
    pub count: u64,
}

/// A histogram of one variable: equal bins of `width` from `low`, the
/// first holding `min`, the last `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub name: String,
    pub count: u64,
    pub nulls: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub low: f64,
    pub width: f64,
    pub bins: Vec<u64>,
}

fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the dejavu crate.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn failed(err: impl std::fmt::Display) -> String {
    format!("drawing failed: {err}")
}

/// The map as an SVG document.
pub fn map_svg(map: &MapData) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, MAP_SIZE).into_drawing_area();
        draw_map(&root, map)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The map as a PNG file at `path`, written whole or not at all.
pub fn map_png(map: &MapData, path: &Path) -> Result<(), String> {
    register_font();
    let (width, height) = MAP_SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, MAP_SIZE).into_drawing_area();
        draw_map(&root, map)?;
        root.present().map_err(failed)?;
    }
    let png = encode_png(&pixels, width, height)?;
    crate::sink::commit::write_atomically(path, &png).map_err(|err| err.to_string())
}

/// An 8-bit RGB PNG of `pixels` (rows top to bottom, no filtering).
fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    use std::io::Write;

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }

    let row = width as usize * 3;
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    for line in pixels.chunks(row).take(height as usize) {
        // Filter type 0 (none) before each row.
        zlib.write_all(&[0])
            .and_then(|()| zlib.write_all(line))
            .map_err(|err| format!("encoding PNG: {err}"))?;
    }
    let data = zlib
        .finish()
        .map_err(|err| format!("encoding PNG: {err}"))?;
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Expands `bounds` so that a degree of longitude and of latitude have
/// their true ground proportions in a `width` x `height` plot.
/// What the map's plot shows of `bounds`: widened to the plot's shape.
pub(super) fn plot_bounds(bounds: [f64; 4]) -> [f64; 4] {
    true_aspect(bounds, f64::from(MAP_SIZE.0 - 270), 640.0)
}

fn true_aspect(bounds: [f64; 4], width: f64, height: f64) -> [f64; 4] {
    let [lon0, lat0, lon1, lat1] = bounds;
    let scale = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.05);
    let (mut dlon, mut dlat) = ((lon1 - lon0).max(1e-6), (lat1 - lat0).max(1e-6));
    if dlon * scale / dlat > width / height {
        dlat = dlon * scale * height / width;
    } else {
        dlon = dlat * width / height / scale;
    }
    let (lon, lat) = ((lon0 + lon1) / 2.0, (lat0 + lat1) / 2.0);
    [
        lon - dlon / 2.0,
        lat - dlat / 2.0,
        lon + dlon / 2.0,
        lat + dlat / 2.0,
    ]
}

/// The part of segment `a`-`b` inside `bounds` (Liang-Barsky).
fn clip(a: (f64, f64), b: (f64, f64), bounds: [f64; 4]) -> Option<((f64, f64), (f64, f64))> {
    let [x0, y0, x1, y1] = bounds;
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

/// A round length (1, 2 or 5 times a power of ten) near a fifth of `km`.
fn scale_length(km: f64) -> f64 {
    let target = (km / 5.0).max(1e-6);
    let power = 10f64.powf(target.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|step| step * power)
        .find(|length| *length <= target)
        .unwrap_or(power)
}

fn length_label(km: f64) -> String {
    if km >= 1.0 {
        format!("{km} km")
    } else {
        format!("{} m", (km * 1000.0).round())
    }
}

/// A short number for axis and legend labels.
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.3e}")
    } else if magnitude >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn color_of(value: f64, (low, high): (f64, f64)) -> RGBColor {
    let position = if high > low {
        ((value - low) / (high - low)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    ViridisRGB.get_color(position as f32)
}

fn draw_map<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    map: &MapData,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(failed)?;
    let (plot, side) = root.split_horizontally(MAP_SIZE.0 - 190);
    let bounds = plot_bounds(map.bounds);
    let [lon0, lat0, lon1, lat1] = bounds;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .caption("Kept segments", (FONT, 20))
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(lon0..lon1, lat0..lat1)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("longitude")
        .y_desc("latitude")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.4}"))
        .y_label_formatter(&|v| format!("{v:.4}"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(failed)?;

    let counts = map.cells.iter().map(|cell| cell.count as f64);
    let count_range = (1.0, counts.fold(1.0, f64::max));
    let (dx, dy) = map.cell;
    chart
        .draw_series(map.cells.iter().filter_map(|cell| {
            let color = match (map.variable.as_ref(), cell.value, map.range) {
                (Some(_), Some(value), Some(range)) => color_of(value, range),
                (Some(_), _, _) => NO_VALUE,
                (None, _, _) => color_of(cell.count as f64, count_range),
            };
            let corner = (cell.lon.max(lon0), cell.lat.max(lat0));
            let far = ((cell.lon + dx).min(lon1), (cell.lat + dy).min(lat1));
            (corner.0 < far.0 && corner.1 < far.1)
                .then(|| Rectangle::new([corner, far], color.filled()))
        }))
        .map_err(failed)?;

    for (rgt, line) in &map.tracks {
        let pieces: Vec<_> = line
            .windows(2)
            .filter_map(|pair| clip(pair[0], pair[1], bounds))
            .collect();
        chart
            .draw_series(
                pieces
                    .iter()
                    .map(|(a, b)| PathElement::new(vec![*a, *b], TRACK.stroke_width(1))),
            )
            .map_err(failed)?;
        if let Some((a, _)) = pieces.first() {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("RGT {rgt}"),
                    *a,
                    (FONT, 12).into_font().color(&TRACK),
                )))
                .map_err(failed)?;
        }
    }
    for ring in &map.region {
        chart
            .draw_series(LineSeries::new(
                ring.iter().map(|point| (point[0], point[1])),
                OUTLINE.stroke_width(2),
            ))
            .map_err(failed)?;
    }

    // Scale bar, lower left.
    let scale = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.05) * 111.32;
    let km = scale_length((lon1 - lon0) * scale);
    let start = (lon0 + (lon1 - lon0) * 0.05, lat0 + (lat1 - lat0) * 0.05);
    let end = (start.0 + km / scale, start.1);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![start, end],
            BLACK.stroke_width(3),
        )))
        .map_err(failed)?;
    chart
        .draw_series(std::iter::once(Text::new(
            length_label(km),
            (start.0, start.1 + (lat1 - lat0) * 0.015),
            (FONT, 13),
        )))
        .map_err(failed)?;

    draw_legend(&side, map, count_range)
}

fn draw_legend<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    map: &MapData,
    count_range: (f64, f64),
) -> Result<(), String> {
    let title = match &map.variable {
        Some(name) => format!("mean {name}"),
        None => "segments per cell".to_string(),
    };
    let range = match (&map.variable, map.range) {
        (Some(_), Some(range)) => Some(range),
        (Some(_), None) => None,
        (None, _) => Some(count_range),
    };
    let text = |label: String, x: i32, y: i32| Text::new(label, (x, y), (FONT, 13).into_font());
    side.draw(&text(title, 10, 50)).map_err(failed)?;
    let (top, height) = (75, 300);
    if let Some((low, high)) = range {
        for step in 0..height {
            let value = high - (high - low) * f64::from(step) / f64::from(height - 1);
            side.draw(&Rectangle::new(
                [(10, top + step), (40, top + step + 1)],
                color_of(value, (low, high)).filled(),
            ))
            .map_err(failed)?;
        }
        for (fraction, value) in [(0.0, high), (0.5, (low + high) / 2.0), (1.0, low)] {
            let y = top + (f64::from(height - 1) * fraction) as i32;
            side.draw(&text(short_number(value), 50, y - 6))
                .map_err(failed)?;
        }
    }
    let mut y = top + height + 30;
    let entries: [(&str, ShapeStyle); 3] = [
        ("study area", OUTLINE.stroke_width(2)),
        ("selected tracks", TRACK.stroke_width(1)),
        ("all values null", NO_VALUE.filled()),
    ];
    for (label, style) in entries {
        if style.filled {
            side.draw(&Rectangle::new([(10, y - 5), (40, y + 5)], style))
                .map_err(failed)?;
        } else {
            side.draw(&PathElement::new(vec![(10, y), (40, y)], style))
                .map_err(failed)?;
        }
        side.draw(&text(label.to_string(), 50, y - 7))
            .map_err(failed)?;
        y += 24;
    }
    Ok(())
}

/// A histogram as an SVG document.
pub fn histogram_svg(histogram: &Histogram) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, HISTOGRAM_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let width = if histogram.width > 0.0 && !histogram.bins.is_empty() {
            histogram.width
        } else {
            1.0
        };
        let low = histogram.low;
        let high = low + width * histogram.bins.len().max(1) as f64;
        let tallest = histogram.bins.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .caption(&histogram.name, (FONT, 15))
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(low..high, 0u64..tallest + tallest / 10 + 1)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(5)
            .y_labels(4)
            .x_label_formatter(&|v| short_number(*v))
            .label_style((FONT, 11))
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(histogram.bins.iter().enumerate().map(|(index, &count)| {
                let left = low + width * index as f64;
                Rectangle::new(
                    [(left, 0), (left + width, count)],
                    RGBColor(49, 104, 142).filled(),
                )
            }))
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_to_the_same_pixels() {
        use std::io::Read;
        let pixels: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 10).collect();
        let png = encode_png(&pixels, 3, 2).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let length = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let crc = crc32fast::hash(&png[37..41 + length]);
        assert_eq!(png[41 + length..45 + length], crc.to_be_bytes());
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&png[41..41 + length])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(raw[0], 0);
        assert_eq!(&raw[1..10], &pixels[..9]);
        assert_eq!(raw[10], 0);
        assert_eq!(&raw[11..], &pixels[9..]);
    }

    #[test]
    fn clips_segments_to_the_box() {
        let bounds = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(
            clip((-1.0, 0.5), (2.0, 0.5), bounds),
            Some(((0.0, 0.5), (1.0, 0.5)))
        );
        assert_eq!(clip((-1.0, 2.0), (-0.5, 3.0), bounds), None);
    }

    #[test]
    fn scale_bars_are_round() {
        assert_eq!(scale_length(1.0), 0.2);
        assert_eq!(scale_length(37.0), 5.0);
        assert_eq!(length_label(0.2), "200 m");
        assert_eq!(length_label(5.0), "5 km");
    }

    #[test]
    fn aspect_keeps_ground_proportions() {
        let [lon0, lat0, lon1, lat1] = true_aspect([10.0, 60.0, 11.0, 60.5], 800.0, 400.0);
        let middle = ((lat0 + lat1) / 2.0).to_radians().cos();
        let ratio = (lon1 - lon0) * middle / (lat1 - lat0);
        assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    }
}
