//! Well-formed JSON objects with a field of the wrong type or value, or an artifact path that
//! leaves the workspace on its face. Problems are listed in file order.

use super::{file, Case};

pub const CASES: &[Case] = &[
    file("task-id-number", &["/task_id 4:14: expected a string, found the number 42"]),
    file("confidence-string", &["/confidence 6:17: expected a number, found the string \"high\""]),
    file("confidence-above-one", &["/confidence 6:17: must be at most 1.0, found the number 1.5"]),
    file("confidence-below-zero", &["/confidence 6:17: must be at least 0.0, found the number -0.1"]),
    file(
        "trigger-unknown",
        &["/trigger 6:14: must be one of \"low_confidence\", \"critical_action\", \"error\", \"completion\", found the string \"bored\""],
    ),
    file(
        "status-unknown",
        &["/status 6:13: must be one of \"in_progress\", \"blocked\", \"done\", found the string \"paused\""],
    ),
    file("completed-not-array", &["/completed 6:16: expected an array, found the string \"everything\""]),
    file("completed-number-item", &["/completed/1 6:27: expected a string, found the number 2"]),
    file("context-not-object", &["/context 6:14: expected an object, found an array"]),
    file("artifacts-not-array", &["/artifacts 6:16: expected an array, found an object"]),
    file("artifact-without-path", &["/artifacts/0/path 6:17: required field \"path\" is missing"]),
    file(
        "artifact-sha256-malformed",
        &["/artifacts/0/sha256 6:55: the string \"abc123\" does not match the pattern ^[0-9a-fA-F]{64}$"],
    ),
    file("provenance-wrong-type", &["/provenance 6:17: expected an object, found the string \"gpt\""]),
    file("provenance-tools-string", &["/provenance/tools 6:41: expected an array, found the string \"grep\""]),
    file("fallback-missing-route", &["/fallback/route 6:15: required field \"route\" is missing"]),
    file("fallback-zero-seconds", &["/fallback/after_seconds 6:33: must be at least 1, found the number 0"]),
    file("deadline-not-rfc3339", &["/deadline 6:15: the string \"tomorrow 5pm\" is not a valid date-time"]),
    file(
        "classification-unknown",
        &["/classification 6:21: must be one of \"public\", \"internal\", \"confidential\", \"restricted\", found the string \"secret\""],
    ),
    file("sign-off-not-array", &["/sign_off 6:15: expected an array, found the string \"legal\""]),
    file(
        "scope-number",
        &["/scope 6:12: expected a string, or an object {covers, excludes} of strings or string arrays, found the number 5"],
    ),
    // A null is taken as absent only where a field is optional.
    file("task-id-null", &["/task_id 4:14: expected a string, found null"]),
    // A malformed id cannot be the key: these are answered under the content's digest.
    file(
        "id-illegal-characters",
        &["/id 3:9: the string \"id/illegal characters\" does not match the pattern ^[A-Za-z0-9._:-]+$"],
    ),
    file("id-too-long", &["/id 3:9: must be at most 128 characters"]),
    file(
        "many-problems",
        &[
            "/from_agent 1:1: required field \"from_agent\" is missing",
            "/task_id 4:14: expected a string, found the number 7",
            "/trigger 5:14: must be one of \"low_confidence\", \"critical_action\", \"error\", \"completion\", found the string \"bored\"",
            "/confidence 6:17: must be at most 1.0, found the number 2",
            "/completed/0 7:17: expected a string, found the number 1",
        ],
    ),
    // Artifact paths that leave the workspace on their face (no file is looked at).
    file(
        "artifact-parent-traversal",
        &["/artifacts/0/path 6:26: path \"../x\" contains \"..\" and would leave the workspace"],
    ),
    file(
        "artifact-inner-traversal",
        &["/artifacts/0/path 6:26: path \"inbox/../../x\" contains \"..\" and would leave the workspace"],
    ),
    file(
        "artifact-backslash-traversal",
        &["/artifacts/0/path 6:26: path \"inbox\\..\\..\\x\" contains \"..\" and would leave the workspace"],
    ),
    file(
        "artifact-absolute",
        &["/artifacts/0/path 6:26: path \"/etc/passwd\" is absolute; give a path relative to the workspace, e.g. inbox/report.md"],
    ),
    file(
        "artifact-windows-drive",
        &["/artifacts/0/path 6:26: path \"C:\\Windows\\win.ini\" is absolute; give a path relative to the workspace, e.g. inbox/report.md"],
    ),
    file(
        "artifact-empty-path",
        &["/artifacts/0/path 6:26: must not be empty", "/artifacts/0/path 6:26: path is empty"],
    ),
    file("artifact-nul-byte", &["/artifacts/0/path 6:26: path contains a NUL byte"]),
];
