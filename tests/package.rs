//! `scripts/package-release.sh`, which the release workflow packs each
//! archive with: the archive's layout, its `.sha256` checked by
//! `sha256sum -c`, the packed file unchanged and still executable, the same
//! bytes when packed twice, and bad arguments refused with exit 2.
//!
//! The binary packed is a small stand-in: gzip takes 40 s on the 300 MB
//! debug binary on a 2-core machine, and the archive only carries the bytes.
//! The release workflow runs the real binary out of its archive.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VERSION: &str = "1.2.3";
const TARGET: &str = "x86_64-unknown-linux-musl";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package-release.sh")
}

fn package(args: &[&str]) -> Output {
    // A fixed date makes the archive the same byte for byte on every run.
    Command::new("bash").arg(script()).args(args).env("SOURCE_DATE_EPOCH", "1700000000").output().unwrap()
}

/// A small executable that answers `--version` like infergate.
fn stand_in(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("infergate-build");
    std::fs::write(&bin, "#!/bin/sh\necho \"infergate 1.2.3 (stand-in $1)\"\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn archive_holds_one_folder_with_the_binary_docs_and_licences_and_its_checksum_verifies() {
    let build = tempfile::tempdir().unwrap();
    let bin = stand_in(build.path());
    let bin = bin.to_str().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().to_str().unwrap();
    let out = package(&[VERSION, TARGET, bin, out_path]);
    ok(&out);
    let name = format!("infergate-{VERSION}-{TARGET}");
    let archive = out_dir.path().join(format!("{name}.tar.gz"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), archive.to_str().unwrap());

    let list = Command::new("tar").arg("-tvzf").arg(&archive).output().unwrap();
    ok(&list);
    let listing = String::from_utf8(list.stdout).unwrap();
    let mut entries: Vec<&str> = listing.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    entries.sort_unstable();
    let mut expected = vec![
        format!("{name}/"),
        format!("{name}/CHANGELOG.md"),
        format!("{name}/DejaVuSans-LICENSE.txt"),
        format!("{name}/README.md"),
        format!("{name}/infergate"),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for licence in std::fs::read_dir(root).unwrap() {
        let file = licence.unwrap().file_name().into_string().unwrap();
        if file.starts_with("LICENSE") {
            expected.push(format!("{name}/{file}"));
        }
    }
    expected.sort_unstable();
    assert_eq!(entries, expected, "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "owned by root, not the builder: {line}");
        if line.ends_with("/infergate") {
            assert!(line.starts_with("-rwxr-xr-x"), "{line}");
        }
    }

    let sums = out_dir.path().join(format!("{name}.tar.gz.sha256"));
    let sum_line = std::fs::read_to_string(&sums).unwrap();
    assert!(sum_line.ends_with(&format!("  {name}.tar.gz\n")), "{sum_line:?}");
    let check = Command::new("sha256sum").arg("-c").arg(&sums).current_dir(out_dir.path()).output().unwrap();
    ok(&check);

    let unpacked = tempfile::tempdir().unwrap();
    ok(&Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(unpacked.path()).output().unwrap());
    let version = Command::new(unpacked.path().join(&name).join("infergate")).arg("--version").output().unwrap();
    ok(&version);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        "infergate 1.2.3 (stand-in --version)
"
    );
    assert_eq!(
        std::fs::read(unpacked.path().join(&name).join("CHANGELOG.md")).unwrap(),
        std::fs::read(root.join("CHANGELOG.md")).unwrap()
    );

    // Reproducible: packing again gives the same bytes, so the same checksum.
    let again = tempfile::tempdir().unwrap();
    ok(&package(&[VERSION, TARGET, bin, again.path().to_str().unwrap()]));
    assert_eq!(
        std::fs::read(&sums).unwrap(),
        std::fs::read(again.path().join(format!("{name}.tar.gz.sha256"))).unwrap()
    );

    // A corrupted archive fails the check.
    std::fs::write(&archive, b"not the archive").unwrap();
    let check = Command::new("sha256sum").arg("-c").arg(&sums).current_dir(out_dir.path()).output().unwrap();
    assert!(!check.status.success());
}

#[test]
fn bad_arguments_exit_2_saying_what_to_give() {
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().to_str().unwrap();
    let build = tempfile::tempdir().unwrap();
    let bin = stand_in(build.path());
    let bin = bin.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&[VERSION, TARGET, bin], "usage:"),
        (&["v1.2.3", TARGET, bin, out_path], "give 1.2.3, not v1.2.3"),
        (&[VERSION, "../../etc", bin, out_path], "is not a target triple"),
        (&[VERSION, TARGET, "/no/such/infergate", out_path], "is not an executable file"),
        (&[VERSION, TARGET, out_path, out_path], "is not an executable file"),
    ];
    for (args, message) in cases {
        let out = package(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0, "nothing written");
}
