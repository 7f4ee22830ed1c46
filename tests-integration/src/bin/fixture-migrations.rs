//! A migrations binary for the integration tests; see `dynamigrate_tests::fixtures`.

fn main() -> std::process::ExitCode {
    dynamigrate_cli::main(dynamigrate_tests::fixtures::from_env())
}
