//! `dynamigrate`: the command line with no compiled-in migrations. `status` and `unlock` work on
//! any history table; migrations come from a team's own binary built on `dynamigrate_cli::main`.

fn main() -> std::process::ExitCode {
    dynamigrate_cli::main(Vec::new())
}
