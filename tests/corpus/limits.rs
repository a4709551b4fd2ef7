//! The limits of SPEC section 3: size (1 MiB), nesting depth (32), string length (64 KiB);
//! and the bounds that keep a worst-case file cheap: at most 1000 artifacts, at most 100
//! problems listed. The inputs are made here, except one small enough to be a file.

use super::{file, Case, Cli, Errors, Input};

/// The size problem; the CLI puts the file's path before it, the daemon does not.
macro_rules! too_large {
    ($size:literal) => {
        concat!(
            "file is ",
            $size,
            " bytes, over the limit of 1048576 bytes; move bulky content into inbox/ artifacts"
        )
    };
}

pub const CASES: &[Case] = &[
    // Refused from its size alone: the daemon never reads it.
    Case {
        name: "sparse-1-gib",
        input: Input::Sparse(1 << 30),
        errors: Errors::Lines(&[concat!("(document) -: ", too_large!("1073741824"))]),
        cli: Cli::Ends(too_large!("1073741824")),
    },
    Case {
        name: "one-byte-over-1-mib",
        input: Input::Made(one_byte_over_1_mib),
        errors: Errors::Lines(&[concat!("(document) -: ", too_large!("1048577"))]),
        cli: Cli::Ends(too_large!("1048577")),
    },
    // Refused at the 33rd bracket, without recursing any deeper.
    made(
        "arrays-100000-deep",
        || format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        &["/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0 1:33: nesting deeper than 32 levels; flatten the structure"],
    ),
    made(
        "objects-100000-deep",
        || format!("{}1{}", "{\"a\": ".repeat(100_000), "}".repeat(100_000)).into_bytes(),
        &["/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a 1:193: nesting deeper than 32 levels; flatten the structure"],
    ),
    // 33 objects deep in all, counting the document: one too many.
    file(
        "context-33-deep",
        &["/context/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a 6:201: nesting deeper than 32 levels; flatten the structure"],
    ),
    // Over-long strings and keys are placed where serde_json stopped reading: at their end.
    made(
        "string-over-64-kib",
        || format!("{}, \"summary\": \"{}\"}}", head("string-over-64-kib"), "x".repeat(65_537)).into_bytes(),
        &["/summary 1:65656: string is 65537 bytes, over the limit of 65536 bytes; put long text in an inbox/ artifact"],
    ),
    // The message shows the start of the key, not all 64 KiB of it.
    made(
        "key-over-64-kib",
        || format!("{}, \"{}\": 1}}", head("key-over-64-kib"), "k".repeat(65_537)).into_bytes(),
        &["(document) 1:65642: key \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…\" is 65537 bytes, over the limit of 65536 bytes; use short keys"],
    ),
    Case {
        name: "half-a-million-mistakes",
        input: Input::Made(half_a_million_mistakes),
        errors: Errors::Made(first_hundred_mistakes),
        cli: Cli::Same,
    },
    made(
        "artifacts-over-1000",
        || {
            let one = "{\"path\": \"inbox/report.md\"}";
            let all = vec![one; 1001].join(", ");
            format!("{}, \"artifacts\": [{all}]}}", head("artifacts-over-1000")).into_bytes()
        },
        &["/artifacts 1:121: must have at most 1000 items, found 1001"],
    ),
];

const fn made(name: &'static str, make: fn() -> Vec<u8>, errors: &'static [&'static str]) -> Case {
    Case {
        name,
        input: Input::Made(make),
        errors: Errors::Lines(errors),
        cli: Cli::Same,
    }
}

/// The required fields on one line, without the closing brace.
fn head(id: &str) -> String {
    format!("{{\"handoff_version\": \"1.0\", \"id\": \"{id}\", \"task_id\": \"corpus\", \"from_agent\": \"corpus-agent\"")
}

/// A valid handoff padded with spaces to one byte over the limit.
fn one_byte_over_1_mib() -> Vec<u8> {
    let mut text = format!("{}, \"summary\": \"padded\"", head("one-byte-over-1-mib"));
    text.push_str(&" ".repeat(1024 * 1024 - text.len()));
    text.push('}');
    text.into_bytes()
}

/// 1 MiB of `1,1,1,...` where strings belong: over half a million problems in one file.
const MISTAKES: usize = 524_188;

fn half_a_million_mistakes() -> Vec<u8> {
    let items = vec!["1"; MISTAKES].join(",");
    format!(
        "{}, \"completed\": [{items}]}}",
        head("half-a-million-mistakes")
    )
    .into_bytes()
}

/// The first 100 in file order, and how many more there were.
fn first_hundred_mistakes() -> Vec<String> {
    let first = head("half-a-million-mistakes").len() + ", \"completed\": [".len() + 1;
    let mut lines: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "/completed/{i} 1:{}: expected a string, found the number 1",
                first + 2 * i
            )
        })
        .collect();
    lines.push(format!(
        "(document) -: {} more problem(s) not listed; fix the ones above and validate again",
        MISTAKES - 100
    ));
    lines
}
