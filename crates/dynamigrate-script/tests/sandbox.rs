//! Scripts in the sandbox: values in and out exactly, patches and whole items, and every way a
//! script can misbehave failing only its item. No DynamoDB needed: these call the transform directly.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use dynamigrate::{Change, Item, Transform};
use dynamigrate_script::{Entry, Language, Limits, RunInfo, Script};

const BIG: &str = "12345678901234567890123456789012345678";
const TINY: &str = "0.12345678901234567891";

fn item() -> Item {
    let s = |v: &str| AV::S(v.into());
    HashMap::from([
        ("pk".into(), s("ITEM#1")),
        ("sk".into(), s("METADATA")),
        ("name".into(), s("a ☃ name")),
        ("count".into(), AV::N("42".into())),
        ("big".into(), AV::N(BIG.into())),
        ("tiny".into(), AV::N(TINY.into())),
        ("ratio".into(), AV::N("1.50".into())),
        ("flag".into(), AV::Bool(true)),
        ("nothing".into(), AV::Null(true)),
        ("bytes".into(), AV::B(Blob::new(vec![0u8, 255, 7]))),
        ("tags".into(), AV::Ss(vec!["x".into(), "y".into()])),
        ("scores".into(), AV::Ns(vec!["1".into(), BIG.into()])),
        ("blobs".into(), AV::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8])])),
        ("list".into(), AV::L(vec![s("a"), AV::N("1".into()), AV::L(vec![])])),
        ("map".into(), AV::M(HashMap::from([("inner".into(), AV::N(BIG.into())), ("s".into(), s("t"))]))),
    ])
}

fn limits() -> Limits {
    Limits { item_timeout: Duration::from_millis(100), memory_bytes: 16 * 1024 * 1024, ..Limits::default() }
}

fn load(language: Language, text: &str) -> Script {
    Script::load("test-script", text, language, limits()).unwrap_or_else(|e| panic!("{e}"))
}

fn apply(text: &str, item: &Item) -> anyhow::Result<Change> {
    let script = load(Language::JavaScript, text);
    let info = RunInfo {
        migration: "20250101_x".into(),
        table: "T".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        dry_run: false,
    };
    script.transform(Entry::Up, vec!["pk".into(), "sk".into()], info).apply(item)
}

fn error(text: &str) -> String {
    format!("{:#}", apply(text, &item()).expect_err("the item should fail"))
}

#[test]
fn an_identity_transform_changes_nothing_for_every_type() {
    for text in [
        "export function transform(item) { return item; }",
        "export function transform(item) { return { ...item }; }",
        // Re-made values of every type: new Sets, new Uint8Arrays, copied maps and lists.
        "export function transform(i) { return { ...i, tags: new Set([...i.tags]), scores: new Set([...i.scores]), \
         blobs: new Set([...i.blobs].map(b => new Uint8Array(b))), bytes: new Uint8Array(i.bytes), \
         list: [...i.list], map: { ...i.map } }; }",
    ] {
        let change = apply(text, &item()).unwrap();
        let Change::Put(new) = &change else { panic!("a whole item: {change:?}") };
        assert_eq!(new, &item(), "{text}");
        assert_eq!(change.normalize(&item()), Change::Skip);
    }
}

#[test]
fn scripts_see_documentclient_shapes_and_exact_numbers() {
    let text = r#"export function transform(i) {
        const checks = [
          typeof i.count === "number" && i.count === 42,
          i.big instanceof NumberValue && i.big.value === "12345678901234567890123456789012345678",
          i.tiny instanceof NumberValue, typeof i.ratio === "number" && i.ratio === 1.5,
          i.tags instanceof Set && i.tags.has("x"), i.bytes instanceof Uint8Array && i.bytes[1] === 255,
          i.nothing === null, i.flag === true, Array.isArray(i.list), i.map.inner instanceof NumberValue,
          [...i.scores].some(n => n instanceof NumberValue),
        ];
        return { ok: checks.every(Boolean) ? "yes" : checks.map(String).join(",") };
    }"#;
    let Change::Update { set, .. } = apply(text, &item()).unwrap() else { panic!("a patch") };
    assert_eq!(set["ok"], AV::S("yes".into()));
}

#[test]
fn new_big_numbers_go_back_as_text_and_bigints_as_integers() {
    let text = r#"export function transform(i) {
        return { total: new NumberValue("99999999999999999999999999999999999999"), n: 10n ** 30n, half: 0.5 };
    }"#;
    let Change::Update { set, remove } = apply(text, &item()).unwrap() else { panic!("a patch") };
    assert_eq!(set["total"], AV::N("99999999999999999999999999999999999999".into()));
    assert_eq!(set["n"], AV::N(format!("1{}", "0".repeat(30))));
    assert_eq!(set["half"], AV::N("0.5".into()));
    assert!(remove.is_empty());
}

#[test]
fn patches_set_and_remove_and_null_skips() {
    let text = "export function transform(i) { return { version: 2, legacy: undefined, pk: i.pk }; }";
    let Change::Update { set, remove } = apply(text, &item()).unwrap() else { panic!("a patch") };
    assert_eq!(set.keys().collect::<Vec<_>>(), ["version"], "the partial key is not set");
    assert_eq!(remove, ["legacy"]);
    assert_eq!(apply("export const transform = () => null;", &item()).unwrap(), Change::Skip);
}

#[test]
fn a_whole_item_drops_what_it_leaves_out_but_may_not_move_the_key() {
    let text = "export function transform(i) { const { name, ...rest } = i; return rest; }";
    let Change::Put(new) = apply(text, &item()).unwrap() else { panic!("a whole item") };
    assert!(!new.contains_key("name") && new.len() == item().len() - 1);
    assert!(error("export function transform(i) { return { ...i, sk: 'OTHER' }; }").contains("key attribute sk"));
}

#[test]
fn typescript_runs_after_its_types_are_stripped() {
    let text = r#"
        interface Item { pk: string; sk: string; version?: number }
        type Meta = { tags: string[] };
        export const description: string = "typed";
        export function transform(item: Item, ctx: { startedAt: string }): Partial<Item> & { meta: Meta; at: string } {
            return { version: 2, meta: { tags: [] as string[] }, at: ctx.startedAt };
        }"#;
    let script = load(Language::TypeScript, text);
    assert_eq!(script.description, "typed");
    let Change::Update { set, .. } =
        script.transform(Entry::Up, vec!["pk".into()], RunInfo::default()).apply(&item()).unwrap()
    else {
        panic!("a patch")
    };
    assert_eq!(set["version"], AV::N("2".into()));
    assert_eq!(set["meta"], AV::M(HashMap::from([("tags".into(), AV::L(vec![]))])));
}

#[test]
fn exports_are_read_once_at_load() {
    let script = load(
        Language::JavaScript,
        "export const description = 'd'; export const select = { pk_prefix: 'ITEM#' };\n\
         export const settings = { page_size: 100 }; export function transform() {} export function down() {}",
    );
    assert!(script.has_transform && script.has_down);
    assert_eq!(script.data["select"]["pk_prefix"], "ITEM#");
    assert_eq!(script.data["settings"]["page_size"], 100);
    assert_eq!(script.checksum().len(), 64);
}

#[test]
fn misbehaving_scripts_fail_their_item_with_a_clear_error() {
    let cases = [
        ("export function transform() { throw new Error('boom'); }", "boom"),
        ("export function transform() { while (true) {} }", "longer than its limit of 100 ms"),
        ("export function transform() { try { for (;;) {} } catch (e) {} return null; }", "longer than its limit"),
        (
            "export function transform() { const a = []; for (;;) a.push(new Array(1 << 20).fill(1)); }",
            "memory limit of 16 MiB",
        ),
        ("export function transform() { return 'x'.repeat(1 << 28); }", "memory limit"),
        ("export function transform() { const f = () => f(); return f(); }", "stack"),
        ("export function transform() { return require('fs'); }", "require is not available"),
        ("export function transform() { return fetch('http://x'); }", "fetch is not available"),
        ("export function transform() { return { e: process.env.HOME }; }", "process is not available"),
        ("export function transform() { return { t: Date.now() }; }", "no clock"),
        ("export function transform() { return { t: new Date().toISOString() }; }", "no clock"),
        ("export function transform() { return import('fs'); }", "Promise"),
        ("export async function transform(i) { return i; }", "Promise"),
        ("export function transform() { globalThis.leak = 1; return null; }", "frozen"),
        ("export function transform() { Array.prototype.push = null; return null; }", "read-only"),
        ("export function transform() { return { s: new Set() }; }", "empty Set"),
        ("export function transform() { return { s: new Set(['a', 1]) }; }", "mixed types"),
        ("export function transform() { return { n: NaN }; }", "NaN"),
        ("export function transform() { return { m: new Map() }; }", "Map object"),
        (
            "export function transform() { let a = []; for (let i = 0; i < 100000; i++) a = [a]; return { a }; }",
            "nested more than 32 levels",
        ),
        ("export function transform() { return { u: [undefined] }; }", "undefined"),
        ("export function transform() { }", "returned undefined"),
        ("export function transform() { return 5; }", "must return an object or null"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(message.contains(expected), "{text}: {message}");
    }
}

/// Array built-ins loop over `length` in C without polling the interrupt handler; the prelude
/// refuses lengths no dense array within the memory limit can have, before the loop starts.
#[test]
fn array_built_ins_refuse_lengths_only_a_sparse_array_can_have() {
    for text in [
        "export function transform() { return { s: new Array(1e9) + '' }; }",
        "export function transform() { const a = []; a.length = 2 ** 30; return { i: a.indexOf(1) }; }",
        "export function transform() { return { s: Array.prototype.join.call({ length: 1e9 }) }; }",
        "export function transform() { new Array(1e9).forEach(() => {}); return null; }",
    ] {
        let message = error(text);
        assert!(message.contains("arrays of at most 16777216 elements"), "{text}: {message}");
    }
}

#[test]
fn top_level_values_are_computed_once_and_nothing_carries_from_one_item_to_the_next() {
    let script = load(
        Language::JavaScript,
        "const seen = [];\nconst index = new Map([['ITEM#1', 'first']]);\nconst counts = { n: 0 };\n\
         export function transform(i) {\n\
           if (i.name === 'push') seen.push(i.pk);\n\
           if (i.name === 'map') index.set(i.pk, 'x');\n\
           if (i.name === 'count') counts.n += 1;\n\
           return { label: index.get(i.pk) ?? 'none', seen: seen.length, n: counts.n };\n\
         }",
    );
    let transform = script.transform(Entry::Up, vec!["pk".into(), "sk".into()], RunInfo::default());
    let with_name = |name: &str| {
        let mut item = item();
        item.insert("name".into(), AV::S(name.into()));
        item
    };
    for (name, expected) in [("push", "not extensible"), ("map", "read-only"), ("count", "read-only")] {
        let error = format!("{:#}", transform.apply(&with_name(name)).unwrap_err());
        assert!(error.contains(expected), "{name}: {error}");
    }
    let Change::Update { set: new, .. } = transform.apply(&item()).unwrap() else { panic!("a patch") };
    assert_eq!(
        (&new["label"], &new["seen"], &new["n"]),
        (&AV::S("first".into()), &AV::N("0".into()), &AV::N("0".into()))
    );
}

#[test]
fn a_top_level_variable_a_function_assigns_is_refused_at_load() {
    let error = Script::load(
        "f.js",
        "let seen = 0;\nexport function transform() { seen += 1; return null; }",
        Language::JavaScript,
        limits(),
    )
    .unwrap_err();
    assert!(error.contains("line 1: `seen` is declared at the top level and assigned inside a function"), "{error}");
}

#[test]
fn a_script_that_fails_to_load_says_why() {
    for (text, expected) in [
        ("import x from 'y';\nexport function transform() {}", "line 1: import is not available"),
        ("export function transform( {", "line 1"),
        ("while (true) {}", "longer than its limit"),
        ("throw new Error('at load');", "at load"),
        ("export const description = 5;", "`description` must be a string"),
    ] {
        let error = Script::load("f.js", text, Language::JavaScript, limits()).expect_err(text);
        assert!(error.contains(expected), "{text}: {error}");
    }
}
