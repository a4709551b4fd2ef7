//! The served OpenAPI document is valid OpenAPI 3.1, as an external validator judges it
//! (Python's openapi-spec-validator, installed by .ci/run into the virtualenv the MCP test
//! uses), so a route added with an undeclared parameter or a malformed schema fails here.

use crate::util::TestEnv;
use std::process::Command;

const VALIDATE: &str = r#"
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator
with open(sys.argv[1]) as f:
    spec = json.load(f)
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for e in errors:
    print("/".join(str(p) for p in e.absolute_path) or "(document)", ":", e.message)
print(len(errors), "errors")
sys.exit(1 if errors else 0)
"#;

/// Runs the validator over a document; Ok, or its report.
fn validate(doc: &serde_json::Value, dir: &std::path::Path) -> Result<(), String> {
    let file = dir.join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new(crate::mcp::python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(&file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(report)
    }
}

#[test]
fn the_served_openapi_document_validates_as_openapi_3_1() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (status, doc) = d.get_as("/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    if let Err(report) = validate(&doc, env.root()) {
        panic!("/api/v1/openapi.json is not valid OpenAPI 3.1:\n{report}");
    }
    // The validator does see the mistakes this test is for: a path parameter left undeclared.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/workspaces/{ws}/handoff"]
        .as_object_mut()
        .unwrap()
        .remove("parameters");
    let report = validate(&broken, env.root()).expect_err("an undeclared parameter is refused");
    assert!(report.contains("ws"), "{report}");
}
