//! Charts for the performance report: grouped bar charts (one bar per series in each group, e.g. per model) and
//! line charts (e.g. throughput against context length), each written as `NAME.svg` and `NAME.png`.
//!
//! The input is plain data and the output is files, so callers build the chart values from results and never touch
//! plotters. Missing values and empty charts are drawn as "n/a" and "no data" rather than refused, so a partial run
//! still yields a report.
//!
//! Text in the PNG is drawn with a font embedded from `assets/fonts/` (licences beside them) so that rendering needs
//! no system fonts: DejaVu Sans for English charts, and for Korean ones a subset of Noto Sans CJK KR (Latin, Latin-1
//! and the 2,350 Hangul syllables of KS X 1001; `scripts/subset-font.sh` rebuilds it), since DejaVu has no Hangul.
//! Text outside a chart's font (Hangul in an English chart, Chinese anywhere) shows as empty boxes in the PNG. The SVG
//! names the family as CSS (`sans-serif`; for Korean `Noto Sans CJK KR, Noto Sans KR, sans-serif`), so a browser
//! picks a local font and any script renders there: the SVG embeds no font.
//!
//! plotters' `ab_glyph` rasteriser places each glyph without its side bearing, so letter spacing in the PNG is
//! slightly uneven; the SVG is unaffected.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::words::{Lang, Words};

/// Size of every chart in pixels (the SVG uses the same user units).
const SIZE: (u32, u32) = (900, 500);

/// The family both backends are told to use. plotters measures text with the registered font even for SVG, so the
/// embedded font is registered under this generic name; the SVG then names `sans-serif` and the viewer substitutes.
const FONT_FAMILY: &str = "sans-serif";

/// The family of Korean charts: the embedded Hangul font is registered under this name, which the SVG writes as its
/// `font-family`, a CSS list that a viewer reads as "Noto Sans KR if installed, else its sans-serif".
const KO_FONT_FAMILY: &str = "Noto Sans CJK KR, Noto Sans KR, sans-serif";

static FONT_BYTES: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/DejaVuSans.ttf"));

static KO_FONT_BYTES: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/NotoSansCJKkr-Subset.otf"));

/// How a chart's text is drawn: the font family of its language and the few words the drawing itself writes.
#[derive(Debug, Clone)]
struct Look {
    family: &'static str,
    no_data: String,
    na: String,
    words: Words,
}

impl Look {
    fn of(lang: Lang) -> Look {
        let words = Words::of(lang);
        let family = match lang {
            Lang::En => FONT_FAMILY,
            Lang::Ko => KO_FONT_FAMILY,
        };
        Look { family, no_data: words.must("chart.no_data", None, &[]), na: words.must("chart.na", None, &[]), words }
    }
}

const TITLE_SIZE: f64 = 22.0;
const LEGEND_SIZE: f64 = 14.0;
const AXIS_DESC_SIZE: f64 = 15.0;
const TICK_SIZE: f64 = 13.0;
const GROUP_LABEL_SIZE: f64 = 14.0;
const VALUE_LABEL_SIZE: f64 = 12.0;
/// Smallest font a bar's value label is shrunk to.
const MIN_LABEL_SIZE: f64 = 9.0;

const TEXT: RGBColor = RGBColor(0x33, 0x33, 0x33);
const MUTED: RGBColor = RGBColor(0x88, 0x88, 0x88);
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

/// Tableau 10: distinguishable, colour-blind-tolerant, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xBA, 0xB0, 0xAC),
];

/// One bar group (e.g. a model) with one value per series (e.g. "initial loading", "continuous response");
/// `None` = no data (draw nothing, label "n/a").
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// Shown under the group on the x axis.
    pub label: String,
    /// One value per series, in the order of [`BarChart::series`]; missing trailing values count as `None`.
    pub values: Vec<Option<f64>>,
}

/// Grouped vertical bars with a y axis from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// File stem, e.g. "response_time_comparison".
    pub name: String,
    /// Shown above the chart.
    pub title: String,
    /// Description of the y axis, units included.
    pub y_label: String,
    /// Legend entries, one colour each.
    pub series: Vec<String>,
    /// Groups left to right.
    pub groups: Vec<BarGroup>,
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// Legend entry.
    pub label: String,
    /// `(x, y)` points; drawn in order of x, non-finite points skipped.
    pub points: Vec<(f64, f64)>,
}

/// Lines with point markers; the x axis spans the data, the y axis starts at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// File stem.
    pub name: String,
    /// Shown above the chart.
    pub title: String,
    /// Description of the x axis, units included.
    pub x_label: String,
    /// Description of the y axis, units included.
    pub y_label: String,
    /// Lines, one colour each.
    pub series: Vec<LineSeries>,
}

/// Any chart [`render_all`] can write.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Bar(BarChart),
    Line(LineChart),
}

impl Chart {
    fn name(&self) -> &str {
        match self {
            Chart::Bar(c) => &c.name,
            Chart::Line(c) => &c.name,
        }
    }

    fn title(&self) -> &str {
        match self {
            Chart::Bar(c) => &c.title,
            Chart::Line(c) => &c.title,
        }
    }
}

/// A written chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlotFile {
    /// The chart's file stem.
    pub name: String,
    /// The chart's title, for alt text and captions.
    pub title: String,
    /// Path of the SVG file.
    pub svg: PathBuf,
    /// Path of the PNG file.
    pub png: PathBuf,
}

/// Writes NAME.svg and NAME.png (900x500) for each chart into `dir` (created if missing), each through a temporary
/// file renamed into place, and returns them in the order given; the text is drawn with the font of `lang`, the
/// charts' own texts are the caller's. Errors name the file.
pub fn render_all(charts: &[Chart], dir: &Path, lang: Lang) -> anyhow::Result<Vec<PlotFile>> {
    ensure_font()?;
    fs::create_dir_all(dir).with_context(|| format!("creating the chart directory {}", dir.display()))?;
    let look = Look::of(lang);
    charts.iter().map(|chart| render_one(chart, dir, &look)).collect()
}

fn render_one(chart: &Chart, dir: &Path, look: &Look) -> anyhow::Result<PlotFile> {
    let name = chart.name();
    check_name(name)?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    write_svg(chart, &svg, look)?;
    write_png(chart, &png, look)?;
    Ok(PlotFile { name: name.to_owned(), title: chart.title().to_owned(), svg, png })
}

/// The name becomes a file stem inside `dir`; anything that could escape it or hide the file is refused.
fn check_name(name: &str) -> anyhow::Result<()> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.chars().any(|c| matches!(c, '/' | '\\' | ':') || c.is_control());
    if bad {
        bail!("chart name {name:?} cannot be used as a file name: use letters, digits, '_' and '-' (e.g. \"ttft\")");
    }
    Ok(())
}

/// Registers the embedded fonts with plotters, once per process.
fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        let register =
            |family, bytes, file| plotters::style::register_font(family, FontStyle::Normal, bytes).map_err(|_| file);
        register(FONT_FAMILY, FONT_BYTES, "assets/fonts/DejaVuSans.ttf")?;
        register(KO_FONT_FAMILY, KO_FONT_BYTES, "assets/fonts/NotoSansCJKkr-Subset.otf")
    });
    if let Err(file) = registered {
        bail!("the embedded font {file} could not be parsed; the build is broken");
    }
    Ok(())
}

fn write_svg(chart: &Chart, path: &Path, look: &Look) -> anyhow::Result<()> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw_chart(chart, &root, look).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    crate::fsutil::write_atomic(path, text.as_bytes())
}

fn write_png(chart: &Chart, path: &Path, look: &Look) -> anyhow::Result<()> {
    // The encoder writes by path and picks the format from the temporary name's extension.
    crate::fsutil::write_atomic_via_path(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        draw_chart(chart, &root, look)
            .and_then(|()| root.present())
            .map_err(|e| anyhow!("drawing {}: {e}", path.display()))
    })
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn font(look: &Look, size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(look.family), size, FontStyle::Normal)
}

fn text_style(look: &Look, size: f64, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(look, size).color(color).pos(Pos::new(h, v))
}

fn draw_chart<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>, look: &Look) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    match chart {
        Chart::Bar(bar) => draw_bar(bar, root, look),
        Chart::Line(line) => draw_line(line, root, look),
    }
}

/// What a legend entry's swatch looks like.
#[derive(Clone, Copy)]
enum Swatch {
    Block,
    LineAndPoint,
}

/// Draws the title and a centred, wrapping legend, and returns the area left for the chart.
fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    look: &Look,
    title: &str,
    legend: &[(String, RGBColor)],
    swatch: Swatch,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = root.dim_in_pixel();
    let width = i32::try_from(width).unwrap_or(i32::MAX);
    let title = fit_text(root, look, title, TITLE_SIZE, 16.0, width - 20, Cut::End)?;
    root.draw(&Text::new(title.text, (width / 2, 10), text_style(look, title.size, &TEXT, HPos::Center, VPos::Top)))?;

    const SWATCH_W: i32 = 22;
    const GAP: i32 = 6;
    const SPACING: i32 = 22;
    const ROW_H: i32 = 22;
    let max_row = width - 40;
    let mut items = Vec::new();
    for (label, color) in legend {
        let fitted = fit_text(root, look, label, LEGEND_SIZE, LEGEND_SIZE, max_row - SWATCH_W - GAP, Cut::End)?;
        items.push((fitted.text, fitted.width + SWATCH_W + GAP, *color));
    }
    let mut rows: Vec<Vec<(String, i32, RGBColor)>> = Vec::new();
    let mut row_width = 0;
    for item in items {
        match rows.last_mut() {
            Some(row) if row_width + SPACING + item.1 <= max_row => {
                row_width += SPACING + item.1;
                row.push(item);
            }
            _ => {
                row_width = item.1;
                rows.push(vec![item]);
            }
        }
    }
    let top = 44;
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|i| i.1).sum::<i32>() + SPACING * (row.len() as i32 - 1);
        let mut x = (width - total) / 2;
        let y = top + ROW_H * r as i32 + ROW_H / 2;
        for (label, item_width, color) in row {
            match swatch {
                Swatch::Block => {
                    root.draw(&Rectangle::new([(x + 5, y - 6), (x + 17, y + 6)], color.filled()))?;
                }
                Swatch::LineAndPoint => {
                    root.draw(&PathElement::new(vec![(x, y), (x + SWATCH_W, y)], color.stroke_width(2)))?;
                    root.draw(&Circle::new((x + SWATCH_W / 2, y), 4, color.filled()))?;
                }
            }
            root.draw(&Text::new(
                label.clone(),
                (x + SWATCH_W + GAP, y),
                text_style(look, LEGEND_SIZE, &TEXT, HPos::Left, VPos::Center),
            ))?;
            x += item_width + SPACING;
        }
    }
    let header = top + ROW_H * rows.len() as i32 + 4;
    Ok(root.split_vertically(header).1)
}

/// Text fitted into a width, and the font size it was fitted at.
struct Fitted {
    text: String,
    size: f64,
    width: i32,
}

/// Where [`fit_text`] cuts text that does not fit: titles and legends keep their start; group labels such as
/// `org/model-7B-instruct` differ at the end, so they keep both ends.
#[derive(Clone, Copy)]
enum Cut {
    End,
    Middle,
}

fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: &Look,
    text: &str,
    size: f64,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    Ok(i32::try_from(area.estimate_text_size(text, &TextStyle::from(font(look, size)))?.0).unwrap_or(i32::MAX))
}

/// Shrinks text from `size` down to `min_size` and then cuts it with an ellipsis until it is at most `max_width`
/// pixels wide.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: &Look,
    text: &str,
    size: f64,
    min_size: f64,
    max_width: i32,
    cut: Cut,
) -> Result<Fitted, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut s = size;
    loop {
        let width = text_width(area, look, text, s)?;
        if width <= max_width {
            return Ok(Fitted { text: text.to_owned(), size: s, width });
        }
        if s - 1.0 < min_size {
            break;
        }
        s -= 1.0;
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let candidate = match cut {
            Cut::End => format!("{}…", String::from_iter(&chars[..keep]).trim_end()),
            Cut::Middle => {
                let head = keep.div_ceil(2);
                let tail = keep - head;
                format!("{}…{}", String::from_iter(&chars[..head]), String::from_iter(&chars[chars.len() - tail..]))
            }
        };
        let width = text_width(area, look, &candidate, s)?;
        if width <= max_width {
            return Ok(Fitted { text: candidate, size: s, width });
        }
    }
    Ok(Fitted { text: String::new(), size: s, width: 0 })
}

/// Characters after which a group label may wrap onto a second line.
const BREAK_AFTER: [char; 5] = ['/', '-', '_', ' ', ':'];

/// A group label on one line if it fits (shrinking down to 11 px), else on two lines split after a separator,
/// each cut in the middle if it still does not fit.
fn fit_group_label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: &Look,
    label: &str,
    max_width: i32,
) -> Result<(Vec<String>, f64), DrawingAreaErrorKind<DB::ErrorType>> {
    const MIN: f64 = 11.0;
    let one = fit_text(area, look, label, GROUP_LABEL_SIZE, MIN, max_width, Cut::Middle)?;
    if one.text == label {
        return Ok((vec![one.text], one.size));
    }
    let mut best: Option<(i32, usize)> = None;
    for (i, c) in label.char_indices() {
        if !BREAK_AFTER.contains(&c) || i + c.len_utf8() >= label.len() {
            continue;
        }
        let at = i + c.len_utf8();
        let widest =
            text_width(area, look, label[..at].trim_end(), MIN)?.max(text_width(area, look, label[at..].trim(), MIN)?);
        if best.is_none_or(|(w, _)| widest < w) {
            best = Some((widest, at));
        }
    }
    let Some((_, at)) = best else {
        return Ok((vec![one.text], one.size));
    };
    let mut lines = Vec::new();
    for part in [label[..at].trim_end(), label[at..].trim()] {
        lines.push(fit_text(area, look, part, MIN, MIN, max_width, Cut::Middle)?.text);
    }
    Ok((lines, MIN))
}

/// How bar values are written, from most to least precise; a chart uses one for all its bars, the first whose
/// labels all fit their bars, so the labels read alike.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ValueFormat {
    /// One or two decimals.
    Precise,
    /// Values of 10 and more without decimals.
    Whole,
    /// Values of 1000 and more as "12.3k", "4.5M".
    Compact,
    /// Values of 1000 and more as "12k", "5M".
    CompactWhole,
}

impl ValueFormat {
    const ALL: [ValueFormat; 4] = [Self::Precise, Self::Whole, Self::Compact, Self::CompactWhole];

    fn format(self, v: f64) -> String {
        let scaled = [(1e9, "G"), (1e6, "M"), (1e3, "k")].into_iter().find(|(scale, _)| v.abs() >= *scale);
        match (self, scaled) {
            (Self::Precise, _) => fmt_value(v),
            (Self::Compact, Some((scale, suffix))) => format!("{:.1}{suffix}", v / scale),
            (Self::CompactWhole, Some((scale, suffix))) => format!("{:.0}{suffix}", v / scale),
            _ if v.abs() >= 10.0 => format!("{v:.0}"),
            _ => fmt_value(v),
        }
    }
}

/// The most precise format and the largest size (down to [`MIN_LABEL_SIZE`]) at which every label fits
/// `max_width`; when none does, the shortest format at the smallest size, as a slight overlap reads better than
/// a cut number.
fn fit_value_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: &Look,
    values: &[f64],
    max_width: i32,
) -> Result<(ValueFormat, f64), DrawingAreaErrorKind<DB::ErrorType>> {
    for format in ValueFormat::ALL {
        let mut size = VALUE_LABEL_SIZE;
        while size >= MIN_LABEL_SIZE {
            let mut fits = true;
            for &v in values {
                if text_width(area, look, &format.format(v), size)? > max_width {
                    fits = false;
                    break;
                }
            }
            if fits {
                return Ok((format, size));
            }
            size -= 1.0;
        }
    }
    Ok((ValueFormat::CompactWhole, MIN_LABEL_SIZE))
}

/// Number of y ticks asked of plotters; [`y_label_area`] measures the same ticks.
const Y_TICKS: usize = 8;

/// Room for the y tick labels (measured on the ticks plotters will draw), the tick marks and the rotated axis
/// description, so the description sits beside the numbers however wide they are.
fn y_label_area<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: &Look,
    y: &std::ops::Range<f64>,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut widest = 0;
    for tick in RangedCoordf64::from(y.clone()).key_points(Y_TICKS) {
        widest = widest.max(text_width(area, look, &fmt_tick(&tick), TICK_SIZE)?);
    }
    Ok((widest + 40).clamp(56, 160))
}

/// The y range: from 0 (or below, for negative data) with about 10% headroom; `0..1` when there is nothing to show.
fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi - lo <= f64::EPSILON {
        return 0.0..1.0;
    }
    (lo * 1.1)..(hi * 1.1)
}

/// The x range spanning the data, widened around a single distinct value so the axis is not degenerate.
fn x_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad)..(hi + pad);
    }
    lo..hi
}

/// Axis tick labels: integers without decimals, other values with up to three, trailing zeros dropped.
fn fmt_tick(v: &f64) -> String {
    let v = *v;
    if v.abs() < 1e-12 {
        return "0".to_owned();
    }
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Bar value labels: two decimals for small values, one for the rest.
fn fmt_value(v: f64) -> String {
    if v.abs() < 10.0 { format!("{v:.2}") } else { format!("{v:.1}") }
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn draw_no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, look: &Look, center: (i32, i32)) -> DrawResult<DB> {
    root.draw(&Text::new(look.no_data.as_str(), center, text_style(look, 20.0, &MUTED, HPos::Center, VPos::Center)))?;
    Ok(())
}

fn draw_bar<DB: DrawingBackend>(bar: &BarChart, root: &DrawingArea<DB, Shift>, look: &Look) -> DrawResult<DB> {
    let n_series = bar.groups.iter().map(|g| g.values.len()).max().unwrap_or(0).max(bar.series.len());
    let series_label = |i: usize| {
        bar.series.get(i).cloned().unwrap_or_else(|| look.words.must("chart.series", Some(i as i64 + 1), &[]))
    };
    let legend: Vec<(String, RGBColor)> =
        (0..n_series).map(|i| (series_label(i), PALETTE[i % PALETTE.len()])).collect();
    let area = draw_header(root, look, &bar.title, &legend, Swatch::Block)?;

    let value = |g: &BarGroup, i: usize| finite(g.values.get(i).copied().flatten());
    let values = bar.groups.iter().flat_map(|g| (0..n_series).filter_map(move |i| value(g, i)));
    let has_data = values.clone().next().is_some();
    let y = y_range(values.clone());
    let n_groups = bar.groups.len().max(1);

    let mut chart = ChartBuilder::on(&area)
        .margin_left(10)
        .margin_right(20)
        .margin_top(8)
        .margin_bottom(10)
        .x_label_area_size(44)
        .y_label_area_size(y_label_area(root, look, &y)?)
        .build_cartesian_2d(0.0..n_groups as f64, y.clone())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(Y_TICKS)
        .y_desc(bar.y_label.as_str())
        .y_label_formatter(&fmt_tick)
        .label_style(font(look, TICK_SIZE).color(&TEXT))
        .axis_desc_style(font(look, AXIS_DESC_SIZE).color(&TEXT))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()?;

    // Each group takes one unit of x; its bars share the middle 80% of it.
    const GROUP_FILL: f64 = 0.8;
    let bar_w = GROUP_FILL / n_series.max(1) as f64;
    let unit_px = chart.backend_coord(&(1.0, y.start)).0 - chart.backend_coord(&(0.0, y.start)).0;
    let slot_px = (bar_w * f64::from(unit_px)) as i32;
    let base = y.start.max(0.0).min(y.end);
    let all_values: Vec<f64> = values.collect();
    let (value_format, value_size) = fit_value_labels(root, look, &all_values, slot_px)?;
    let na_size =
        fit_text(root, look, &look.na, VALUE_LABEL_SIZE, MIN_LABEL_SIZE, slot_px, Cut::End)?.size.min(value_size);

    for (gi, group) in bar.groups.iter().enumerate() {
        let left = gi as f64 + (1.0 - GROUP_FILL) / 2.0;
        for si in 0..n_series {
            let x0 = left + bar_w * si as f64;
            let x1 = x0 + bar_w;
            let xc = (x0 + x1) / 2.0;
            let color = PALETTE[si % PALETTE.len()];
            match value(group, si) {
                Some(v) => {
                    let inset = bar_w * 0.06;
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x0 + inset, base), (x1 - inset, v)],
                        color.filled(),
                    )))?;
                    let (px, py) = chart.backend_coord(&(xc, v));
                    let (anchor, dy) = if v >= 0.0 { (VPos::Bottom, -4) } else { (VPos::Top, 4) };
                    root.draw(&Text::new(
                        value_format.format(v),
                        (px, py + dy),
                        text_style(look, value_size, &TEXT, HPos::Center, anchor),
                    ))?;
                }
                None => {
                    let (px, py) = chart.backend_coord(&(xc, base));
                    root.draw(&Text::new(
                        look.na.as_str(),
                        (px, py - 4),
                        text_style(look, na_size, &MUTED, HPos::Center, VPos::Bottom),
                    ))?;
                }
            }
        }
        let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, y.start));
        let (lines, size) = fit_group_label(root, look, &group.label, unit_px - 8)?;
        for (i, line) in lines.into_iter().enumerate() {
            let dy = 8 + (size * 1.25) as i32 * i as i32;
            root.draw(&Text::new(line, (px, py + dy), text_style(look, size, &TEXT, HPos::Center, VPos::Top)))?;
        }
    }

    if !has_data {
        draw_no_data(root, look, chart.backend_coord(&(n_groups as f64 / 2.0, (y.start + y.end) / 2.0)))?;
    }
    Ok(())
}

fn draw_line<DB: DrawingBackend>(line: &LineChart, root: &DrawingArea<DB, Shift>, look: &Look) -> DrawResult<DB> {
    let legend: Vec<(String, RGBColor)> =
        line.series.iter().enumerate().map(|(i, s)| (s.label.clone(), PALETTE[i % PALETTE.len()])).collect();
    let area = draw_header(root, look, &line.title, &legend, Swatch::LineAndPoint)?;

    let series: Vec<Vec<(f64, f64)>> = line
        .series
        .iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        })
        .collect();
    let all = || series.iter().flatten();
    let x = x_range(all().map(|p| p.0));
    let y = y_range(all().map(|p| p.1));

    let mut chart = ChartBuilder::on(&area)
        .margin_left(10)
        .margin_right(30)
        .margin_top(8)
        .margin_bottom(10)
        .x_label_area_size(50)
        .y_label_area_size(y_label_area(root, look, &y)?)
        .build_cartesian_2d(x.clone(), y.clone())?;
    chart
        .configure_mesh()
        .x_labels(10)
        .y_labels(Y_TICKS)
        .x_desc(line.x_label.as_str())
        .y_desc(line.y_label.as_str())
        .x_label_formatter(&fmt_tick)
        .y_label_formatter(&fmt_tick)
        .label_style(font(look, TICK_SIZE).color(&TEXT))
        .axis_desc_style(font(look, AXIS_DESC_SIZE).color(&TEXT))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()?;

    for (i, points) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart.draw_series(plotters::series::LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }

    if all().next().is_none() {
        draw_no_data(root, look, chart.backend_coord(&((x.start + x.end) / 2.0, (y.start + y.end) / 2.0)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

    fn bar_chart() -> Chart {
        Chart::Bar(BarChart {
            name: "response_time_comparison".into(),
            title: "Response time by model".into(),
            y_label: "Time (s)".into(),
            series: vec!["initial loading".into(), "continuous response".into()],
            groups: vec![
                BarGroup { label: "llama-3.1-8b".into(), values: vec![Some(0.42), Some(12.345)] },
                BarGroup { label: "qwen2.5-7b-instruct".into(), values: vec![Some(0.61), None] },
            ],
        })
    }

    fn line_chart() -> Chart {
        let ctx = [256.0, 1024.0, 4096.0, 16384.0, 32768.0, 76800.0];
        Chart::Line(LineChart {
            name: "throughput_by_context".into(),
            title: "Decode throughput by context length".into(),
            x_label: "Context length (tokens)".into(),
            y_label: "Throughput (tokens/s)".into(),
            series: vec![
                LineSeries {
                    label: "llama-3.1-8b".into(),
                    points: ctx.iter().map(|&x| (x, 120.0 - x / 1000.0)).collect(),
                },
                LineSeries {
                    label: "qwen2.5-7b-instruct".into(),
                    points: ctx.iter().map(|&x| (x, 95.0 - x / 1500.0)).collect(),
                },
            ],
        })
    }

    fn empty_charts() -> Vec<Chart> {
        vec![
            Chart::Bar(BarChart {
                name: "empty_bar".into(),
                title: "No groups".into(),
                y_label: "Time (s)".into(),
                series: vec!["a".into()],
                groups: vec![],
            }),
            Chart::Bar(BarChart {
                name: "all_none_bar".into(),
                title: "All missing".into(),
                y_label: "Time (s)".into(),
                series: vec!["a".into(), "b".into()],
                groups: vec![BarGroup { label: "m".into(), values: vec![None, Some(f64::NAN)] }],
            }),
            Chart::Line(LineChart {
                name: "empty_line".into(),
                title: "No points".into(),
                x_label: "Context length".into(),
                y_label: "Tokens/s".into(),
                series: vec![LineSeries { label: "a".into(), points: vec![] }],
            }),
        ]
    }

    /// Width and height from the IHDR chunk, which PNG requires to come first.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], &PNG_SIGNATURE, "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    fn assert_svg(path: &Path, must_contain: &[&str]) {
        let svg = fs::read_to_string(path).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}: {}", path.display(), &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"), "{} is not closed", path.display());
        assert!(svg.contains("font-family=\"sans-serif\""), "{}", path.display());
        for text in must_contain {
            assert!(svg.contains(text), "{} lacks {text:?}", path.display());
        }
    }

    fn assert_png(path: &Path, min_bytes: usize) {
        let bytes = fs::read(path).unwrap();
        assert_eq!(png_size(&bytes), SIZE, "{}", path.display());
        // The PNG cannot be decoded without adding a dependency; a flat image compresses to well under this.
        assert!(bytes.len() > min_bytes, "{} is only {} bytes", path.display(), bytes.len());
    }

    /// Draws into memory and counts distinct colours, which the PNG size can only hint at.
    fn distinct_pixels(chart: &Chart) -> usize {
        ensure_font().unwrap();
        let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
            draw_chart(chart, &root, &Look::of(Lang::En)).unwrap();
            root.present().unwrap();
        }
        let set: std::collections::HashSet<&[u8]> = buf.chunks_exact(3).collect();
        set.len()
    }

    #[test]
    fn renders_bar_and_line_charts_to_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plots");
        let files = render_all(&[bar_chart(), line_chart()], &out, Lang::En).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "response_time_comparison");
        assert_eq!(files[0].title, "Response time by model");
        assert_eq!(files[0].svg, out.join("response_time_comparison.svg"));
        assert_eq!(files[0].png, out.join("response_time_comparison.png"));
        assert_eq!(files[1].name, "throughput_by_context");

        assert_svg(
            &files[0].svg,
            &["Response time by model", "initial loading", "continuous response", "llama-3.1-8b", "n/a", "12.3"],
        );
        assert_svg(
            &files[1].svg,
            &["Decode throughput by context length", "llama-3.1-8b", "qwen2.5-7b-instruct", "Context length"],
        );
        for file in &files {
            assert_png(&file.png, 5 * 1024);
        }
        // No temporary files are left behind.
        let mut names: Vec<String> =
            fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "response_time_comparison.png",
                "response_time_comparison.svg",
                "throughput_by_context.png",
                "throughput_by_context.svg"
            ]
        );
    }

    #[test]
    fn drawn_charts_are_not_flat() {
        assert!(distinct_pixels(&bar_chart()) > 10);
        assert!(distinct_pixels(&line_chart()) > 10);
    }

    #[test]
    fn empty_charts_render_with_a_no_data_caption() {
        let dir = tempfile::tempdir().unwrap();
        let files = render_all(&empty_charts(), dir.path(), Lang::En).unwrap();
        assert_eq!(files.len(), 3);
        for file in &files {
            assert_svg(&file.svg, &["no data", &file.title]);
            assert_png(&file.png, 1024);
        }
        assert_svg(&files[1].svg, &["n/a"]);
    }

    #[test]
    fn text_without_glyphs_or_with_markup_still_renders() {
        let dir = tempfile::tempdir().unwrap();
        let Chart::Bar(mut chart) = bar_chart() else { unreachable!() };
        chart.title = "응답 시간 <p50> & p99".into();
        let files = render_all(&[Chart::Bar(chart)], dir.path(), Lang::En).unwrap();
        // The SVG keeps the text (escaped); the PNG draws placeholder boxes for the missing Hangul glyphs.
        assert_svg(&files[0].svg, &["응답 시간 &lt;p50&gt; &amp; p99"]);
        assert_png(&files[0].png, 5 * 1024);
    }

    /// `text` drawn alone in the font of `lang`, as pixels.
    fn drawn(text: &str, lang: Lang) -> Vec<u8> {
        ensure_font().unwrap();
        let look = Look::of(lang);
        let size = (64, 40);
        let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new(text, (4, 4), text_style(&look, 28.0, &TEXT, HPos::Left, VPos::Top))).unwrap();
            root.present().unwrap();
        }
        buf
    }

    /// The Korean font has a glyph for every Hangul syllable the Korean charts
    /// print (drawn, it differs from the box of a character it lacks), and
    /// draws them as letters: two syllables differ, where the English font
    /// draws both as the same missing-glyph box.
    #[test]
    fn korean_charts_draw_hangul() {
        // A Han character: in neither font, so drawn as the missing-glyph box.
        let missing = drawn("\u{4E00}", Lang::Ko);
        let mut checked = 0;
        for (key, forms) in super::super::words::tests::entries(Lang::Ko) {
            if !key.starts_with("chart.") {
                continue;
            }
            for c in forms.iter().flat_map(|f| f.chars()).filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(c)) {
                assert_ne!(drawn(&c.to_string(), Lang::Ko), missing, "`{key}`: no glyph for {c}");
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked} syllables");
        assert_ne!(drawn("가", Lang::Ko), drawn("나", Lang::Ko));
        assert_eq!(drawn("가", Lang::En), drawn("나", Lang::En), "DejaVu has no Hangul: both are the box");
        // Latin still draws in the Korean font.
        assert_ne!(drawn("a", Lang::Ko), drawn("b", Lang::Ko));
    }

    #[test]
    fn korean_charts_name_the_korean_font_and_korean_words_in_the_svg() {
        let dir = tempfile::tempdir().unwrap();
        let mut charts = empty_charts();
        let Chart::Bar(mut chart) = bar_chart() else { unreachable!() };
        chart.title = "모델 응답 시간 비교".into();
        chart.series = vec!["초기 로딩".into(), "연속 응답".into()];
        charts.push(Chart::Bar(chart));
        let files = render_all(&charts, dir.path(), Lang::Ko).unwrap();
        for file in &files {
            let svg = fs::read_to_string(&file.svg).unwrap();
            assert!(
                svg.contains("font-family=\"Noto Sans CJK KR, Noto Sans KR, sans-serif\""),
                "{}",
                file.svg.display()
            );
            assert!(!svg.contains("font-family=\"sans-serif\""), "{}", file.svg.display());
        }
        assert!(fs::read_to_string(&files[0].svg).unwrap().contains("데이터 없음"));
        let missing = fs::read_to_string(&files[1].svg).unwrap();
        assert!(missing.matches("없음").count() >= 3 && !missing.contains("n/a"), "{missing}");
        let last = fs::read_to_string(&files[3].svg).unwrap();
        assert!(last.contains("모델 응답 시간 비교") && last.contains("초기 로딩"), "{last}");
        assert_png(&files[3].png, 5 * 1024);
    }

    #[test]
    fn render_all_with_no_charts_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render_all(&[], dir.path(), Lang::En).unwrap().is_empty());
    }

    #[test]
    fn bad_names_are_refused_with_the_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "../escape", "a/b", ".hidden"] {
            let Chart::Bar(mut chart) = bar_chart() else { unreachable!() };
            chart.name = name.into();
            let err = render_all(&[Chart::Bar(chart)], dir.path(), Lang::En).unwrap_err();
            assert!(format!("{err:#}").contains(&format!("{name:?}")), "{err:#}");
        }
    }

    #[test]
    fn write_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "").unwrap();
        let err = render_all(&[bar_chart()], &blocker, Lang::En).unwrap_err();
        assert!(format!("{err:#}").contains("not-a-dir"), "{err:#}");
    }

    #[test]
    fn ranges_and_labels() {
        assert_eq!(y_range([].into_iter()), 0.0..1.0);
        let r = y_range([2.0, 10.0].into_iter());
        assert_eq!(r.start, 0.0);
        assert!((r.end - 11.0).abs() < 1e-9);
        assert_eq!(x_range([256.0, 76800.0, 1024.0].into_iter()), 256.0..76800.0);
        let single = x_range([100.0].into_iter());
        assert!(single.start < 100.0 && single.end > 100.0);
        assert_eq!(fmt_tick(&76800.0), "76800");
        assert_eq!(fmt_tick(&0.25), "0.25");
        assert_eq!(fmt_tick(&-0.0), "0");
        assert_eq!(fmt_value(0.4213), "0.42");
        assert_eq!(fmt_value(123.45), "123.5");
        assert_eq!(ValueFormat::Precise.format(12345.67), "12345.7");
        assert_eq!(ValueFormat::Whole.format(12345.67), "12346");
        assert_eq!(ValueFormat::Whole.format(1.234), "1.23");
        assert_eq!(ValueFormat::Compact.format(12345.67), "12.3k");
        assert_eq!(ValueFormat::Compact.format(2_500_000.0), "2.5M");
        assert_eq!(ValueFormat::Compact.format(123.4), "123");
        assert_eq!(ValueFormat::CompactWhole.format(12345.67), "12k");
    }

    /// Writes sample charts to /tmp/plots-preview/ for a person to look at: `cargo test --lib plots -- --ignored`.
    #[test]
    #[ignore = "writes outside the temp dir; run by hand to look at the charts"]
    fn preview() {
        let mut charts = vec![bar_chart(), line_chart()];
        charts.extend(empty_charts());
        charts.push(Chart::Bar(BarChart {
            name: "crowded_bar".into(),
            title: ["A long title that goes on and on to check how the header copes", "with text wider than the chart"]
                .join(" "),
            y_label: "Tokens per second (higher is better)".into(),
            series: (1..=5).map(|i| format!("concurrency {i}")).collect(),
            groups: (0..6)
                .map(|g| BarGroup {
                    label: format!("meta-llama/Llama-3.1-{g}B-Instruct-very-long-name"),
                    values: (0..5).map(|s| (s != 3 || g != 2).then_some(1234.5678 * (g + s + 1) as f64)).collect(),
                })
                .collect(),
        }));
        let files = render_all(&charts, Path::new("/tmp/plots-preview"), Lang::En).unwrap();
        for file in files {
            println!("{}", file.png.display());
        }
        // The full report's charts in Korean, from its Korean words.
        let report = crate::report::full::tests::two_models_report();
        let files =
            render_all(&crate::report::full::charts(&report, Lang::Ko), Path::new("/tmp/plots-preview/ko"), Lang::Ko)
                .unwrap();
        for file in files {
            println!("{}", file.png.display());
        }
    }
}
