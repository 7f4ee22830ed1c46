//! A migrations binary for the integration tests; see `dynamigrate_tests::fixtures`. With
//! FIXTURE_WITH_FOLDER=1 it is a team's binary that also runs the migrations folder.

fn main() -> std::process::ExitCode {
    let migrations = dynamigrate_tests::fixtures::from_env();
    if std::env::var("FIXTURE_WITH_FOLDER").as_deref() == Ok("1") {
        dynamigrate_cli::App::new().migrations(migrations).with_folder().main()
    } else {
        dynamigrate_cli::main(migrations)
    }
}
