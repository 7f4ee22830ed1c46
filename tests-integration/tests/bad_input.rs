//! The input contract, tried as a hostile but fair user would: flags, config files, environment
//! variables, migration ids and history contents outside their shape. Every case runs the real
//! binary against DynamoDB Local and must exit with the documented code, name the problem, not
//! panic, and leave every table it could touch and its working directory exactly as they were.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use dynamigrate_tests::bad::{check_all, Case};
use dynamigrate_tests::{create_table, planted, put_items, seed_items, unique_name, World};

const FIRST: &str = "20250101_first";
const THIRD: &str = "20250103_third";

#[tokio::test]
async fn flags_outside_their_shape_are_refused_before_anything_is_written() {
    let world = World::new().await;
    let a_directory = std::env::temp_dir().display().to_string();
    let table = world.table.clone();
    let cases = vec![
        Case::new("negative wait", &["run", "--wait", "-5"], 2, "-5"),
        Case::new("wait past u64", &["run", "--wait", "99999999999999999999"], 2, "--wait"),
        Case::new("wait past a day", &["run", "--wait", "100000"], 2, "0..=86400"),
        Case::new("zero steps", &["down", "--steps", "0"], 2, "--steps"),
        Case::new("new without a word", &["new", "→ ←"], 2, "no letters or digits"),
        Case::new("new in two forms", &["new", "x", "--toml", "--js"], 2, "cannot be used with"),
        Case::new("steps and to", &["down", "--steps", "2", "--to", FIRST], 2, "cannot be used with"),
        Case::new("to not an id", &["run", "--to", "not-an-id"], 2, "invalid migration id"),
        Case::new("to a date that does not exist", &["run", "--to", "20250230_x"], 2, "day does not exist"),
        Case::new("to an unknown id", &["run", "--to", "20250909_nope"], 2, "no migration with that id"),
        Case::new("down with nothing applied", &["down"], 0, "nothing to roll back"),
        Case::new("down to a migration not applied", &["down", "--to", THIRD], 2, "is not applied"),
        Case::new("zero segments", &["run", "--segments", "0"], 2, "segments = 0 is out of range"),
        Case::new("too many segments", &["run", "--segments", "2000000"], 2, "segments = 2000000"),
        Case::new("zero concurrency", &["run", "--concurrency", "0"], 2, "concurrency = 0"),
        Case::new("huge concurrency", &["run", "--concurrency", "1025"], 2, "concurrency = 1025"),
        Case::new("zero page size", &["run", "--page-size", "0"], 2, "page_size = 0"),
        Case::new("zero page size, old spelling", &["run", "--batch-size", "0"], 2, "page_size = 0"),
        Case::new("page delay past an hour", &["run", "--page-delay-ms", "99999999999"], 2, "page_delay_ms"),
        Case::new("zero rate", &["run", "--rate", "0"], 2, "rate = 0 must be a positive number"),
        Case::new("negative rate", &["run", "--rate", "-1"], 2, "-1"),
        Case::new("rate not a number", &["run", "--rate", "NaN"], 2, "rate = NaN"),
        Case::new("infinite capacity", &["run", "--max-wcu", "inf"], 2, "max_wcu = inf"),
        Case::new("capacity not a number", &["run", "--max-rcu", "abc"], 2, "--max-rcu"),
        Case::new("unknown write mode", &["run", "--write-mode", "fast"], 2, "unknown write mode"),
        Case::new("unknown rate mode", &["run", "--rate-mode", "fast"], 2, "unknown rate mode"),
        Case::new("too many sample diffs", &["run", "--sample-diffs", "100000"], 2, "sample_diffs"),
        Case::new("negative failure limit", &["run", "--max-failures", "-3"], 2, "-3"),
        Case::new("too many conflict retries", &["run", "--max-conflict-retries", "5000"], 2, "max_conflict_retries"),
        Case::new(
            "failures file in no directory",
            &["run", "--failures-file", "/no/such/dir/f.jsonl"],
            2,
            "does not exist",
        ),
        Case::new("failures file a directory", &["run", "--failures-file", &a_directory], 2, "is a directory"),
        Case::new("unknown log format", &["--log-format", "xml", "status"], 2, "--log-format"),
        Case::new("stage with a space", &["--stage", "bad stage", "status"], 2, "invalid stage name"),
        Case::new("empty stage", &["--stage", "", "status"], 2, "invalid stage name"),
        Case::new("empty table", &["--table", "", "run"], 2, "not a DynamoDB table name"),
        Case::new("table too short", &["--table", "ab", "run"], 2, "not a DynamoDB table name"),
        Case::new("table with a slash", &["--table", "bad/name", "run"], 2, "not a DynamoDB table name"),
        Case::new("empty history table", &["--history-table", "", "status"], 2, "history table"),
        Case::new("history table is the migrated table", &["--history-table", &table, "run"], 2, "is also a table"),
        Case::new("empty region", &["--region", "", "status"], 2, "is not an AWS region"),
        Case::new("region with spaces", &["--region", "not a region!", "status"], 2, "is not an AWS region"),
        Case::new("endpoint not a URL", &["--endpoint-url", "not a url", "status"], 2, "not a usable endpoint"),
        Case::new("endpoint not HTTP", &["--endpoint-url", "ftp://x", "status"], 2, "not a usable endpoint"),
        Case::new("endpoint without a host", &["--endpoint-url", "http://", "status"], 2, "not a usable endpoint"),
        Case::new("endpoint port too big", &["--endpoint-url", "http://127.0.0.1:99999", "status"], 2, "port"),
        Case::new("empty profile", &["--profile", "", "status"], 2, "not a profile name"),
        Case::new("unknown command", &["frobnicate"], 2, "unrecognized subcommand"),
        Case::new("unknown flag", &["run", "--nonsense-flag"], 2, "unexpected argument"),
        Case::new("config file that is not there", &["status", "--config", "/no/such.toml"], 2, "/no/such.toml"),
    ];
    check_all(&world, cases).await;
}

#[tokio::test]
async fn config_files_that_cannot_work_are_refused_before_anything_is_written() {
    let world = World::new().await;
    let history_is_table = format!("[stages.dev]\nhistory_table = \"{}\"\n", world.table);
    let cases = vec![
        Case::new("not TOML", &["status"], 2, "config file").config("this is [not toml"),
        Case::new("unknown top key", &["status"], 2, "histroy_table").config("histroy_table = \"x\"\n"),
        Case::new("unknown stage key", &["status"], 2, "tabel").config("[stages.dev]\ntabel = \"x\"\n"),
        Case::new("lease too short", &["status"], 2, "lease_seconds = 1 is out of range").config("lease_seconds = 1\n"),
        Case::new("lease past a day", &["status"], 2, "lease_seconds").config("lease_seconds = 9999999999\n"),
        Case::new("negative lease", &["status"], 2, "lease_seconds").config("lease_seconds = -5\n"),
        Case::new("negative capacity", &["run"], 2, "max_wcu").config("[stages.dev]\nmax_wcu = -1\n"),
        Case::new("unknown write mode", &["run"], 2, "fast").config("[stages.dev]\nwrite_mode = \"fast\"\n"),
        Case::new("page size not a number", &["run"], 2, "page_size").config("[stages.dev]\npage_size = \"many\"\n"),
        Case::new("empty region", &["status"], 2, "region").config("[stages.dev]\nregion = \"\"\n"),
        Case::new("endpoint not a URL", &["status"], 2, "not a usable endpoint")
            .config("[stages.dev]\nendpoint_url = \"nope\"\n")
            .omit("--endpoint-url"),
        Case::new("table too short", &["run"], 2, "not a DynamoDB table name")
            .config("[stages.dev]\ntable = \"x\"\n")
            .omit("--table"),
        Case::new("unknown stage", &["--stage", "staging", "status"], 2, "unknown stage \"staging\"")
            .config("[stages.dev]\n[stages.prod]\n"),
        Case::new("another table with a bad name", &["status"], 2, "orders")
            .config("[stages.dev.tables]\norders = \"bad name!\"\n"),
        Case::new("stages not a table", &["status"], 2, "stages").config("stages = 3\n"),
        Case::new("failures file in no directory", &["run"], 2, "does not exist")
            .config("[stages.dev]\nfailures_file = \"/no/such/dir/f.jsonl\"\n"),
        Case::new("history table is the migrated table", &["run"], 2, "is also a table")
            .config(history_is_table)
            .omit("--history-table"),
        Case::new("zero concurrency", &["run"], 2, "concurrency = 0").config("[stages.dev]\nconcurrency = 0\n"),
        Case::new("lease of u64::MAX seconds", &["run"], 2, "lease_seconds")
            .config("lease_seconds = 18446744073709551615\n"),
        Case::new("down on prod with nothing applied", &["--stage", "prod", "down"], 0, "nothing to roll back")
            .config("[stages.prod]\nregion = \"us-east-1\"\n"),
        Case::new(
            "run on prod to an unknown id",
            &["--stage", "prod", "--yes", "run", "--to", "20250909_nope"],
            2,
            "no migration with that id",
        )
        .config("[stages.prod]\nregion = \"us-east-1\"\n"),
    ];
    check_all(&world, cases).await;
}

#[tokio::test]
async fn environment_variables_outside_their_shape_are_refused() {
    let world = World::new().await;
    let nowhere = "/nonexistent/aws/file";
    let cases = vec![
        Case::new("stage with a space", &["status"], 2, "invalid stage name").env("STAGE", "bad stage"),
        Case::new("access key with a line break", &["status"], 2, "AWS_ACCESS_KEY_ID holds")
            .env("AWS_ACCESS_KEY_ID", "AKID\nNEWLINE"),
        Case::new("secret with a space", &["status"], 2, "AWS_SECRET_ACCESS_KEY holds")
            .env("AWS_SECRET_ACCESS_KEY", "with space"),
        Case::new("session token with a control character", &["status"], 2, "AWS_SESSION_TOKEN holds")
            .env("AWS_SESSION_TOKEN", "tok\u{7}en"),
        Case::new("no credentials", &["status"], 2, "no usable AWS credentials")
            .without_env("AWS_ACCESS_KEY_ID")
            .without_env("AWS_SECRET_ACCESS_KEY")
            .without_env("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", nowhere),
        Case::new("a profile that does not exist", &["status"], 2, "no usable AWS credentials")
            .without_env("AWS_ACCESS_KEY_ID")
            .without_env("AWS_SECRET_ACCESS_KEY")
            .env("AWS_PROFILE", "nobody")
            .env("AWS_CONFIG_FILE", nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", nowhere),
        Case::new("log filter that is not one", &["status"], 2, "DYNAMIGRATE_LOG").env("DYNAMIGRATE_LOG", "[[bad"),
        Case::new("unknown log format", &["status"], 2, "xml").env("DYNAMIGRATE_LOG_FORMAT", "xml"),
        Case::new("owner with a line break", &["status"], 2, "DYNAMIGRATE_OWNER").env("DYNAMIGRATE_OWNER", "a\nb"),
        Case::new("config that is not there", &["status"], 2, "/no/such.toml")
            .env("DYNAMIGRATE_CONFIG", "/no/such.toml"),
        Case::new("region with a space", &["status"], 2, "AWS_REGION").env("AWS_REGION", "bad region"),
        Case::new("endpoint not a URL", &["status"], 2, "AWS_ENDPOINT_URL_DYNAMODB")
            .env("AWS_ENDPOINT_URL_DYNAMODB", "not a url"),
        Case::new("profile with a space", &["status"], 2, "AWS_PROFILE").env("AWS_PROFILE", "a b"),
        // A bad knob is found before the credential chain is asked (which may go to the network).
        Case::new("a bad knob and no credentials", &["run", "--concurrency", "0"], 2, "concurrency = 0")
            .without_env("AWS_ACCESS_KEY_ID")
            .without_env("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", nowhere),
    ];
    check_all(&world, cases).await;
}

#[tokio::test]
async fn migration_ids_outside_their_shape_stop_everything() {
    let world = World::new().await;
    let cases = vec![
        Case::new("a date that does not exist", &["run"], 2, "day does not exist")
            .env("FIXTURE_EXTRA_ID", "20250230_bad_date"),
        Case::new("a duplicate", &["run"], 2, "duplicate migration id").env("FIXTURE_EXTRA_ID", FIRST),
        Case::new("no description", &["status"], 2, "invalid migration id").env("FIXTURE_EXTRA_ID", "20250101_"),
        Case::new("upper case", &["status"], 2, "invalid migration id").env("FIXTURE_EXTRA_ID", "20250101_Bad"),
        Case::new("a year out of range", &["run"], 2, "invalid migration id").env("FIXTURE_EXTRA_ID", "19000101_old"),
    ];
    check_all(&world, cases).await;
}

/// A table keyed `pk` alone, or `pk` (N) and `sk` (S): not a history table, whatever its name.
async fn create_keyed(world: &World, name: &str, keys: &[(&str, KeyType, ScalarAttributeType)]) {
    let mut create = world.client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (attribute, key_type, kind) in keys {
        create = create
            .key_schema(
                KeySchemaElement::builder().attribute_name(*attribute).key_type(key_type.clone()).build().unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name(*attribute).attribute_type(kind.clone()).build().unwrap(),
            );
    }
    create.send().await.expect("create table");
}

#[tokio::test]
async fn a_history_table_that_is_not_one_is_refused_and_left_alone() {
    let world = World::new().await;
    let pk_only = unique_name("history-pk-only");
    create_keyed(&world, &pk_only, &[("pk", KeyType::Hash, ScalarAttributeType::S)]).await;
    let numbered = unique_name("history-numbered");
    let keys = [("pk", KeyType::Hash, ScalarAttributeType::N), ("sk", KeyType::Range, ScalarAttributeType::S)];
    create_keyed(&world, &numbered, &keys).await;
    let someone_elses = unique_name("history-items");
    create_table(&world.client, &someone_elses).await;
    put_items(&world.client, &someone_elses, seed_items(30)).await;
    let cases = vec![
        Case::new("keyed pk alone", &["--history-table", &pk_only, "run"], 2, "is not a dynamigrate history table")
            .table(&pk_only),
        Case::new("keyed pk as a number", &["--history-table", &numbered, "status"], 2, "keyed pk (N) and sk (S)")
            .table(&numbered),
        Case::new(
            "another table's items",
            &["--history-table", &someone_elses, "run"],
            2,
            "not an item dynamigrate writes",
        )
        .table(&someone_elses),
        Case::new(
            "another table's items, unlock",
            &["--history-table", &someone_elses, "unlock", "--force"],
            2,
            "not an item",
        )
        .table(&someone_elses),
    ];
    check_all(&world, cases).await;
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

#[tokio::test]
async fn a_malformed_lock_is_named_blocks_nothing_forever_and_unlock_force_clears_it() {
    let world = World::new().await;
    assert_eq!(world.run(&["run", "--to", FIRST]).await.code, 0);
    let lock = HashMap::from([
        ("pk".to_string(), s("LOCK")),
        ("sk".to_string(), s("LOCK")),
        ("entity".to_string(), s("lock")),
        ("run_id".to_string(), s("someone")),
        ("expires_at_ms".to_string(), s("soon")),
    ]);
    world.client.put_item().table_name(&world.history).set_item(Some(lock)).send().await.unwrap();
    let malformed = r#"(pk "LOCK", sk "LOCK") is malformed"#;
    let cases = vec![
        Case::new("status", &["status"], 2, malformed),
        Case::new("run", &["run"], 2, malformed),
        Case::new("run says how to clear it", &["run"], 2, "unlock --force"),
        Case::new("unlock without force", &["unlock"], 2, malformed),
    ];
    check_all(&world, cases).await;
    let forced = world.run(&["unlock", "--force"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(forced.stdout.contains("removed a lock item no runner could read"), "{}", forced.stdout);
    assert_eq!(world.run(&["run"]).await.code, 0, "the next run goes on");
}

#[tokio::test]
async fn an_expired_lock_missing_a_field_is_refused_not_overwritten() {
    let world = World::new().await;
    dynamigrate::Ledger::new(world.client.clone(), &world.history).ensure_table().await.unwrap();
    let lock = HashMap::from([
        ("pk".to_string(), s("LOCK")),
        ("sk".to_string(), s("LOCK")),
        ("entity".to_string(), s("lock")),
        ("run_id".to_string(), s("someone")),
        ("acquired_at".to_string(), s("2025-01-01T00:00:00.000Z")),
        ("expires_at".to_string(), s("2025-01-01T00:01:00.000Z")),
        ("expires_at_ms".to_string(), AttributeValue::N("1735689660000".into())),
    ]);
    world.client.put_item().table_name(&world.history).set_item(Some(lock)).send().await.unwrap();
    let cases = vec![Case::new("run", &["run"], 2, "is malformed: it has no owner")];
    check_all(&world, cases).await;
}

#[tokio::test]
async fn checkpoints_a_resume_would_trust_are_checked_before_anything_is_written() {
    for (total, says) in [("0", "total_segments is 0"), ("4000000000", "total_segments is 4000000000")] {
        let world = World::new().await;
        put_items(&world.client, &world.table, seed_items(20)).await;
        planted::plant(&world, planted::checkpoint(total)).await;
        let case = Case::new("a checkpoint's total", &["run"], 2, says).env("FIXTURE_BACKFILL", "1");
        check_all(&world, vec![case]).await;
    }
}

#[tokio::test]
async fn a_migration_out_of_attempt_numbers_stops_the_run_before_anything_is_done() {
    let world = World::new().await;
    assert_eq!(world.run(&["run", "--to", FIRST]).await.code, 0);
    let catalog = [("pk", s("CATALOG")), ("sk", s(&format!("MIGRATION#{FIRST}")))];
    let mut update = world.client.update_item().table_name(&world.history);
    for (name, value) in catalog {
        update = update.key(name, value);
    }
    update
        .update_expression("SET attempt = :last, #state = :failed")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":last", AttributeValue::N("999999".into()))
        .expression_attribute_values(":failed", s("failed"))
        .send()
        .await
        .unwrap();
    let cases = vec![Case::new("attempt 999999 failed", &["run"], 2, "the most the history can number")];
    check_all(&world, cases).await;
}

/// Each bad migration file is a case of its own: exit 2, the file and its problem named, nothing
/// written (the fixture binary here reads the folder, as the bare binary does).
#[tokio::test]
async fn bad_migration_files_are_refused_each_with_its_problem() {
    let world = World::new().await;
    let files: [(&'static str, &str, &str, &'static str); 15] = [
        ("bad date", "20251301-bad-month.ts", "export function transform() {}", "month must be 01 to 12"),
        ("unknown extension", "20250101-x.py", "", "unknown extension .py"),
        ("two dots", "20250101-x.test.ts", "", "one dot"),
        ("upper case", "20250101-Add-Field.toml", "", "invalid migration id"),
        ("TOML syntax", "20250101-x.toml", "description = ", "TOML parse error"),
        ("TOML without up", "20250101-x.toml", "description = \"d\"", "no `up`"),
        (
            "TOML unknown key",
            "20250101-x.toml",
            "description = \"d\"\nup = [{ remove = \"a\" }]\nspeed = 3",
            "unknown field `speed`",
        ),
        (
            "TOML bad literal",
            "20250101-x.toml",
            "description = \"d\"\nup = [{ set = \"a\", value = { N = \"1e999\" } }]",
            "outside the range",
        ),
        (
            "TOML bad setting",
            "20250101-x.toml",
            "description = \"d\"\nup = [{ remove = \"a\" }]\n[settings]\nconcurrency = 0",
            "concurrency = 0",
        ),
        (
            "id inside disagrees",
            "20250101-x.toml",
            "id = \"20250101_y\"\ndescription = \"d\"\nup = [{ remove = \"a\" }]",
            "does not match the file name",
        ),
        ("script syntax", "20250101-x.js", "export function transform( {", "line 1"),
        (
            "script import",
            "20250101-x.js",
            "import x from 'y';\nexport function transform() {}",
            "import is not available",
        ),
        ("script without transform", "20250101-x.ts", "export const description = 'd';", "no `transform`"),
        (
            "script throws at load",
            "20250101-x.js",
            "throw new Error('at load');\nexport function transform() {}",
            "at load",
        ),
        (
            "script keeps state across items",
            "20250101-x.ts",
            "let n = 0;\nexport function transform() { n++; return null; }",
            "`n` is declared at the top level",
        ),
    ];
    let mut folders = Vec::new();
    let mut cases = Vec::new();
    for (name, file, text, says) in files {
        let folder = dynamigrate_tests::files::Folder::new();
        folder.write(file, text);
        let dir = folder.dir.display().to_string();
        cases.push(Case::new(name, &["--dir", &dir, "run"], 2, says).env("FIXTURE_WITH_FOLDER", "1"));
        folders.push(folder);
    }
    let missing = std::env::temp_dir().join(unique_name("no-such-folder")).display().to_string();
    cases.push(
        Case::new("named folder missing", &["--dir", &missing, "run"], 2, "does not exist")
            .env("FIXTURE_WITH_FOLDER", "1"),
    );
    check_all(&world, cases).await;
}
