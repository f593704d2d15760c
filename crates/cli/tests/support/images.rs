//! Test images built offline with the docker CLI from Debian's static busybox (no registry
//! needed), by the same code as `berth bench task-start` (`src/bench/busybox_image.rs`), and
//! the docker CLI with a config directory of the test's own.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The builder `berth bench task-start` uses too.
#[path = "../../src/bench/busybox_image.rs"]
mod busybox_image;

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
    busybox_image::build(tag, marker).unwrap_or_else(|e| panic!("{e:#}"));
}
