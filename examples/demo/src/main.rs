//! The demo's migrations binary: a team's binary looks just like this.

mod migrations;

fn main() -> std::process::ExitCode {
    dynamigrate_cli::main(migrations::all())
}
