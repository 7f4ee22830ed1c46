//! Migration files: a folder of `YYYYMMDD-description.{toml,js,ts}` files that the bare
//! `dynamigrate` binary runs, no compile needed.
//!
//! - **TOML**: a description, which items, and an ordered list of operations (set, default, add,
//!   remove, rename, copy, version) with DynamoDB's typed literal notation; `down` derived where
//!   the inverse is exact.
//! - **JavaScript / TypeScript**: a module exporting `transform(item)` (and `down`), run in the
//!   sandbox of `dynamigrate-script`.
//!
//! [`discover`] reads a folder into [`FileMigration`]s, each a `dynamigrate::Migration` whose
//! `up` is a backfill configured from its file; [`scaffold`] writes new files.

mod chain;
mod discovery;
mod format;
mod migration;
pub mod ops;
pub mod phase;
pub mod scaffold;
pub mod spec;
pub mod value;

pub use discovery::{classify, discover, FolderError, Kind, Name};
pub use dynamigrate_script::Limits;
pub use migration::FileMigration;
