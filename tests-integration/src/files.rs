//! Migration folders for the tests: a fresh folder per test, and the bare `dynamigrate` binary
//! (which runs the folder) on a [`World`](crate::World).

use std::path::{Path, PathBuf};

use crate::process::bare_binary;
use crate::{finish, unique_name, Ran, World};

/// A migrations folder of its own, removed at the end of the test.
pub struct Folder {
    pub dir: PathBuf,
}

impl Folder {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("migrations"));
        std::fs::create_dir_all(&dir).expect("create migrations folder");
        Self { dir }
    }

    /// Writes (or overwrites) one file.
    pub fn write(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.dir.join(name), text).expect("write migration file");
        self
    }
}

impl Default for Folder {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl World {
    /// The bare `dynamigrate` binary on this world, reading migrations from `dir`.
    pub async fn files(&self, dir: &Path, args: &[&str]) -> Ran {
        let dir = dir.to_string_lossy();
        let args: Vec<&str> = ["--dir", dir.as_ref()].into_iter().chain(args.iter().copied()).collect();
        let mut command = self.command_of(&bare_binary(), &args);
        finish(command.spawn().expect("spawn dynamigrate")).await
    }
}
