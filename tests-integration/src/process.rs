//! Running the binaries under test as real processes: where they are, and what a finished one printed.

use std::path::PathBuf;

/// A finished process: its exit code and what it printed.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The fixture migrations binary (built by `cargo test -p dynamigrate-tests`).
pub(crate) fn fixture_binary() -> PathBuf {
    built("fixture-migrations", "cargo test -p dynamigrate-tests")
}

/// The bare `dynamigrate` binary, which runs a migrations folder (scripts/test.sh builds it).
pub fn bare_binary() -> PathBuf {
    built("dynamigrate", "cargo build --workspace --bins")
}

/// A binary of this workspace, beside the test executable's `deps` folder.
fn built(name: &str, how: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let binary = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} is missing: build it with `{how}`", binary.display());
    binary
}

pub async fn finish(child: tokio::process::Child) -> Ran {
    let output = child.wait_with_output().await.expect("wait for fixture binary");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
