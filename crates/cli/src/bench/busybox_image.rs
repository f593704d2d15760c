//! The test image, built offline with the docker CLI from Debian's static busybox (no registry
//! needed): `FROM scratch`, an optional marker file that makes the image (and every layer's
//! chain) unique, busybox and its applet links. `berth bench task-start` builds it when it is
//! missing; the black-box tests include this file through `tests/support/images.rs`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// The image the tests and `berth bench task-start` run.
pub const TEST_IMAGE: &str = "berth-test/busybox:1";

const BUSYBOX: &str = "/bin/busybox";

/// Whether Docker has an image `tag`.
pub fn exists(tag: &str) -> anyhow::Result<bool> {
    let status = Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("could not run the docker CLI; is Docker installed?")?;
    Ok(status.success())
}

/// Builds `tag` from the static busybox; `marker` (if any) goes into `/marker` first, so that
/// no layer is shared with any other image.
pub fn build(tag: &str, marker: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "berth-busybox-image-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let built = build_in(&dir, tag, marker);
    let _ = std::fs::remove_dir_all(&dir);
    built
}

fn build_in(dir: &Path, tag: &str, marker: Option<&str>) -> anyhow::Result<()> {
    std::fs::copy(BUSYBOX, dir.join("busybox")).context("could not copy busybox")?;
    let mut dockerfile = String::from("FROM scratch\n");
    if let Some(marker) = marker {
        std::fs::write(dir.join("marker"), marker).context("could not write the marker")?;
        dockerfile.push_str("COPY marker /marker\n");
    }
    dockerfile.push_str(
        "COPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).context("could not write Dockerfile")?;
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .context("could not run the docker CLI; is Docker installed?")?;
    anyhow::ensure!(
        out.status.success(),
        "docker build of {tag} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
