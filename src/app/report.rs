//! `infergate report`: the user's report, in Korean or English, with plots.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::ReportCmdArgs;
use crate::exit::{self, Failure};
use crate::report::full::{self, Lang};
use crate::report::plots::{self, PlotFile};
use crate::results::Results;

/// `infergate report`.
pub fn report(args: &ReportCmdArgs) -> Result<i32, Failure> {
    let lang = super::gate::load_config(args.config.as_deref())?.config.report_lang(args.lang);
    let mut all = Vec::new();
    for path in &args.results {
        all.push((path.clone(), crate::results::load(path).map_err(Failure::invalid)?));
    }
    let template = match &args.template {
        Some(p) => Some(
            crate::input::read_capped(p, crate::input::MAX_TEXT_FILE_BYTES, "the template")
                .map_err(|e| anyhow::anyhow!("{e:#} (from --template)"))
                .map_err(Failure::invalid)?,
        ),
        None => None,
    };
    crate::fsutil::probe_folder(&args.out)
        .with_context(|| format!("the report folder {} (from --out) is not writable", args.out.display()))
        .map_err(Failure::invalid)?;
    let Some(_lock) = crate::fsutil::try_lock_folder(&args.out).map_err(Failure::invalid)? else {
        return Err(Failure::invalid(anyhow::anyhow!(
            "another infergate is writing a report to {}; wait for it to finish, or give another --out",
            args.out.display()
        )));
    };
    let written = write_full_report(&all, lang, template.as_deref(), &args.out)?;
    super::print_stdout(&format!("{}\n", written.display()))?;
    Ok(exit::PASS)
}

/// Builds the report, renders its plots into `dir/plots/` and writes
/// `dir/report.md` and `dir/report.json`; returns the Markdown's path.
pub fn write_full_report(
    results: &[(PathBuf, Results)],
    lang: Lang,
    template: Option<&str>,
    dir: &Path,
) -> Result<PathBuf, Failure> {
    let report = full::build(results);
    let written =
        plots::render_all(&full::charts(&report, lang), &dir.join("plots"), lang).map_err(crate::fsutil::failure)?;
    // The report links its plots relative to its own folder.
    let relative: Vec<PlotFile> = written
        .into_iter()
        .map(|p| PlotFile {
            svg: p.svg.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(p.svg.clone()),
            png: p.png.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(p.png.clone()),
            ..p
        })
        .collect();
    let md = full::render(&report, lang, template, &relative).map_err(Failure::invalid)?;
    let md_path = dir.join("report.md");
    crate::fsutil::write_atomic(&md_path, md.as_bytes()).map_err(crate::fsutil::failure)?;
    let mut json = crate::json::to_vec(&report).context("cannot serialize the report").map_err(Failure::run)?;
    json.push(b'\n');
    crate::fsutil::write_atomic(&dir.join("report.json"), &json).map_err(crate::fsutil::failure)?;
    Ok(md_path)
}
