//! Baseline files: the schema, merge and validation are the core crate's;
//! this module reads baselines and decides where one may be written.

pub use infergate_core::baseline::*;

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use anyhow::{anyhow, bail};

/// Reads a baseline (version 2, or version 1 as one run); errors name the file, line and key.
pub fn load(path: &Path) -> anyhow::Result<Baseline> {
    let text = crate::input::read_capped(path, MAX_FILE_BYTES, "baseline")?;
    Baseline::parse(&text, &path.display().to_string())
}

/// Resolves `--baseline` for reading: a profile name means
/// `baselines/NAME.toml`; anything else is a path.
pub fn resolve_for_read(arg: &str) -> PathBuf {
    if is_profile_name(arg) { Path::new(DIR).join(format!("{arg}.toml")) } else { PathBuf::from(arg) }
}

/// Resolves `--baseline` for writing: the file must end up inside the
/// baselines folder of `root`, whatever the argument says (`..`, absolute
/// paths and symbolic links cannot escape it).
pub fn resolve_for_write(root: &Path, arg: &str) -> anyhow::Result<PathBuf> {
    if arg.contains('\0') {
        bail!("--baseline {}: a NUL character cannot be part of a file name", arg.escape_debug());
    }
    let dir = root.join(DIR);
    let rel: PathBuf = if is_profile_name(arg) {
        PathBuf::from(format!("{arg}.toml"))
    } else {
        let p = Path::new(arg);
        let inside = if p.is_absolute() {
            let abs_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
            p.strip_prefix(&abs_dir).map(Path::to_path_buf).ok()
        } else {
            p.strip_prefix(DIR).map(Path::to_path_buf).ok()
        };
        inside.ok_or_else(|| {
            anyhow!(
                "--baseline {arg}: baselines are written only inside {}/; give a profile name or a path under it",
                DIR
            )
        })?
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || rel.as_os_str().is_empty() {
        bail!(
            "--baseline {arg}: the path may not contain `..`, `.` or a root; give a profile name like `h200-qwen-vllm`"
        );
    }
    if rel.extension().is_none_or(|e| e != "toml") {
        bail!("--baseline {arg}: a baseline file name ends in .toml");
    }
    // Room for the writer's temporary name beside it within the file system's 255 bytes.
    if let Some(long) = rel.components().map(|c| c.as_os_str().len()).find(|n| *n > MAX_NAME_BYTES) {
        bail!(
            "--baseline: a name of {long} bytes is too long for a baseline file (at most {MAX_NAME_BYTES}); give a shorter profile name"
        );
    }
    let target = dir.join(&rel);
    // No symbolic link on the way down, the folder itself included: checked
    // before anything is created, so a link cannot even make a folder outside.
    let mut walked = dir.clone();
    for part in std::iter::once(None).chain(rel.parent().into_iter().flat_map(Path::components).map(Some)) {
        if let Some(part) = part {
            walked.push(part);
        }
        if walked.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "--baseline {arg}: {} is a symbolic link; baselines are written only into plain folders under {}/",
                walked.display(),
                DIR
            );
        }
    }
    std::fs::create_dir_all(target.parent().unwrap_or(&dir))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Symbolic links inside the folder could still point outside it.
    let real_dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let real_parent = target
        .parent()
        .unwrap_or(&dir)
        .canonicalize()
        .with_context(|| format!("cannot resolve the folder of {}", target.display()))?;
    if !real_parent.starts_with(&real_dir) {
        bail!("--baseline {arg}: {} leads outside {}/ through a symbolic link", target.display(), DIR);
    }
    if target.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        bail!("--baseline {arg}: {} is a symbolic link; baselines are plain files", target.display());
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_and_paths_stay_inside_the_folder() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(resolve_for_write(r, "h200-qwen").unwrap(), r.join("baselines/h200-qwen.toml"));
        assert_eq!(resolve_for_write(r, "baselines/x.toml").unwrap(), r.join("baselines/x.toml"));
        assert_eq!(resolve_for_write(r, "baselines/team/x.toml").unwrap(), r.join("baselines/team/x.toml"));
        for bad in [
            "../x.toml",
            "baselines/../x.toml",
            "/etc/x.toml",
            "x/../../y.toml",
            "other/x.toml",
            "baselines/x.txt",
            "baselines/",
        ] {
            assert!(resolve_for_write(r, bad).is_err(), "{bad} must be refused");
        }
        let abs = std::path::absolute(r.join("baselines/abs.toml")).unwrap();
        assert!(resolve_for_write(r, abs.to_str().unwrap()).is_ok());
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), r.join("baselines/escape")).unwrap();
            assert!(resolve_for_write(r, "baselines/escape/x.toml").is_err());
            std::os::unix::fs::symlink(outside.path().join("f.toml"), r.join("baselines/link.toml")).unwrap();
            assert!(resolve_for_write(r, "link").is_err());
            // A link deeper down is refused before any folder is made through it.
            assert!(resolve_for_write(r, "baselines/escape/new/x.toml").is_err());
            assert!(!outside.path().join("new").exists());
            // The baselines folder itself a link to elsewhere.
            let other = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), other.path().join("baselines")).unwrap();
            for arg in ["p", "baselines/p.toml", "baselines/sub/p.toml"] {
                let err = resolve_for_write(other.path(), arg).unwrap_err().to_string();
                assert!(err.contains("symbolic link"), "{arg}: {err}");
            }
            assert!(std::fs::read_dir(outside.path()).unwrap().all(|e| e.unwrap().file_name() != "sub"));
        }
        // A NUL, a separator, a root or `..` in what looks like a profile name is never a file name.
        for bad in
            ["a\0b", "a\0b.toml", "baselines/a\0b.toml", "/", "..", ".", "baselines/..", "baselines/.x/../y.toml"]
        {
            assert!(resolve_for_write(r, bad).is_err(), "{bad:?} must be refused");
        }
        assert!(!is_profile_name("a/b") && !is_profile_name("a\\b") && !is_profile_name("a\0b"));
        assert!(!is_profile_name("..") && !is_profile_name(".hidden") && !is_profile_name(""));
        assert_eq!(resolve_for_read("a/b"), PathBuf::from("a/b"));
        assert_eq!(resolve_for_read("sim-demo"), PathBuf::from("baselines/sim-demo.toml"));
        assert_eq!(resolve_for_read("some/where.toml"), PathBuf::from("some/where.toml"));
    }
}
