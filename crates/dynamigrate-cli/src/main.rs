//! `dynamigrate`: the command line running the migrations folder (`migrations/` beside the
//! config, or `--dir`): TOML, JavaScript and TypeScript files, no compile needed. A team with Rust
//! migrations builds its own binary on `dynamigrate_cli::main` or `dynamigrate_cli::App`.

fn main() -> std::process::ExitCode {
    dynamigrate_cli::App::new().with_folder().main()
}
