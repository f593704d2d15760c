//! Test images built offline with the docker CLI from Debian's static busybox (no registry
//! needed): `FROM scratch`, an optional marker file that makes the image (and every layer's
//! chain) unique, busybox and its applet links.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs the docker CLI; `config` is a `DOCKER_CONFIG` directory (for `login`/`push`/`pull`,
/// so the user's own docker config is never touched).
pub fn docker_in(config: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    if let Some(config) = config {
        cmd.env("DOCKER_CONFIG", config);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not run the docker CLI ({e}); these tests need Docker"));
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .expect("write docker stdin");
    }
    child.wait_with_output().expect("wait for docker")
}

/// Builds `tag` from the static busybox; `marker` (if any) goes into `/marker` first, so that
/// no layer is shared with any other image.
pub fn build_busybox_image(tag: &str, marker: Option<&str>) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(busybox, dir.path().join("busybox")).expect("copy busybox");
    let mut dockerfile = String::from("FROM scratch\n");
    if let Some(marker) = marker {
        std::fs::write(dir.path().join("marker"), marker).expect("marker");
        dockerfile.push_str("COPY marker /marker\n");
    }
    dockerfile.push_str(
        "COPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    let out = docker_in(
        None,
        &["build", "-q", "-t", tag, &dir.path().display().to_string()],
        None,
    );
    assert!(
        out.status.success(),
        "docker build of {tag} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
