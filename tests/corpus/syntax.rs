//! Files that are not a JSON object, or not one this daemon speaks: syntax, encoding, the
//! version gate and the three required fields.

use super::{file, Case};

pub const CASES: &[Case] = &[
    // Not JSON. serde_json's terse words get a hint where they would mislead.
    file(
        "truncated",
        &["(document) 7:1: EOF while parsing an object: the JSON is truncated (write the file whole, e.g. temp file + rename)"],
    ),
    file("empty", &["(document) 1:1: file is empty; write one JSON object"]),
    file("whitespace-only", &["(document) 1:1: file is empty; write one JSON object"]),
    file(
        "utf8-bom",
        &["(document) 1:1: file starts with a UTF-8 byte order mark (BOM); write plain UTF-8 JSON without one"],
    ),
    file("not-utf8", &["(document) 6:16: not valid UTF-8 at byte 120; contract files must be UTF-8"]),
    file(
        "nan-literal",
        &["(document) 6:17: invalid JSON: expected value; NaN and Infinity are not JSON numbers, write null or a string"],
    ),
    file(
        "infinity-literal",
        &["(document) 6:18: invalid JSON: invalid number; NaN and Infinity are not JSON numbers, write null or a string"],
    ),
    file("number-out-of-range", &["(document) 6:21: invalid JSON: number out of range"]),
    file("line-comment", &["(document) 6:3: invalid JSON: key must be a string; JSON has no comments"]),
    file("block-comment", &["(document) 6:17: invalid JSON: expected value; JSON has no comments"]),
    file("trailing-comma-object", &["(document) 7:1: invalid JSON: trailing comma"]),
    file("trailing-comma-array", &["(document) 6:36: invalid JSON: trailing comma"]),
    file(
        "single-quotes",
        &["(document) 2:3: invalid JSON: key must be a string; JSON strings and keys take double quotes, not single quotes"],
    ),
    file("duplicate-key", &["/task_id 6:11: duplicate key \"task_id\"; each key may appear once"]),
    // An agent that appends instead of replacing.
    file("two-objects", &["(document) 7:1: invalid JSON: trailing characters"]),
    file("trailing-garbage", &["(document) 7:1: invalid JSON: trailing characters"]),
    // Columns count characters, not bytes: the NaN is the 44th character but the 48th byte.
    file(
        "non-ascii-columns",
        &["(document) 6:44: invalid JSON: expected value; NaN and Infinity are not JSON numbers, write null or a string"],
    ),
    // JSON, but not an object.
    file("top-level-array", &["(document) 1:1: expected a JSON object, found an array"]),
    file(
        "top-level-string",
        &["(document) 1:1: expected a JSON object, found the string \"handoff_version 1.0, task corpus\""],
    ),
    file("top-level-null", &["(document) 1:1: expected a JSON object, found null"]),
    file("top-level-number", &["(document) 1:1: expected a JSON object, found the number 1.0"]),
    // The version gate: another major version is refused before anything else is judged.
    file(
        "handoff-version-2",
        &["/handoff_version 2:22: handoff_version \"2.0\" is not supported: this daemon speaks handoff_version 1.x (\"1\", \"1.N\", \"1.N.M\"); upgrade baton or write version 1"],
    ),
    file("handoff-version-number", &["/handoff_version 2:22: expected a string, found the number 1.0"]),
    file(
        "handoff-version-words",
        &["/handoff_version 2:22: the string \"one\" does not match the pattern ^[0-9]+(\\.[0-9]+){0,2}$"],
    ),
    // Required fields: a missing one points at its object.
    file("missing-handoff-version", &["/handoff_version 1:1: required field \"handoff_version\" is missing"]),
    file("missing-task-id", &["/task_id 1:1: required field \"task_id\" is missing"]),
    file("missing-from-agent", &["/from_agent 1:1: required field \"from_agent\" is missing"]),
    file(
        "empty-object",
        &[
            "/handoff_version 1:1: required field \"handoff_version\" is missing",
            "/task_id 1:1: required field \"task_id\" is missing",
            "/from_agent 1:1: required field \"from_agent\" is missing",
        ],
    ),
];
