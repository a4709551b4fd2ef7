//! Routing by `to_agent`: `to_agent` is a field the agent writes. It may choose only among the
//! routes that match the handoff (and not leave a keyed route for a catch-all), and a route
//! it chose over the first match auto-approves only if the route says
//! `auto_approve_when_named = true`.

use crate::util::{bytes, handoff, user, write_atomic, Daemon, TestEnv};
use serde_json::Value;

fn routes(fast_when_named: bool) -> String {
    let route = |name: &str, keys: &str, reviewer: &str, auto: bool| {
        let auto = if auto {
            "auto_approve_min_confidence = 0.9\nauto_approve_unproven = true\n"
        } else {
            ""
        };
        format!("[[routes]]\nname = \"{name}\"\n{keys}reviewers = [\"{reviewer}\"]\n{auto}")
    };
    // The key only when set, so that the first half runs on a baton that predates it.
    let named = match fast_when_named {
        true => "auto_approve_when_named = true\n",
        false => "",
    };
    let fast_keys = format!("triggers = [\"completion\"]\n{named}");
    [
        user("rita", "\"reviewer\""),
        user("sam", "\"reviewer\""),
        route(
            "strict",
            "triggers = [\"critical_action\"]\n",
            "rita",
            false,
        ),
        route("review", "labels = [\"deploy\"]\n", "rita", false),
        route("fast", &fast_keys, "sam", true),
        route("lenient", "", "sam", true),
    ]
    .concat()
}

/// Writes handoff `id` (with `fields`) into `ws` and returns its detail once received.
fn receive(env: &TestEnv, d: &Daemon, ws: &str, id: &str, fields: Value) -> Value {
    let mut h = handoff(id);
    h.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    write_atomic(&env.ws(ws).join("handoff.json"), &bytes(&h));
    let path = format!("/api/v1/handoffs/{id}");
    d.wait_until("received", || d.get(&path).0 == 200);
    d.get(&path).1
}

#[test]
fn to_agent_chooses_only_among_matching_routes_and_never_earns_an_auto_approval() {
    let mut env = TestEnv::with_config(&routes(false));
    env.init("beta");
    let d = env.start();
    let critical = serde_json::json!({"trigger": "critical_action", "to_agent": "lenient",
                                      "confidence": 0.99});
    let detail = receive(&env, &d, "alpha", "steer-1", critical);
    assert_eq!(detail["route"], "strict", "{detail}");
    assert_eq!(detail["state"], "pending");

    let deploy = serde_json::json!({"trigger": "completion", "labels": ["deploy"],
                                    "to_agent": "fast", "confidence": 0.99});
    let detail = receive(&env, &d, "beta", "steer-2", deploy.clone());
    assert_eq!(
        detail["route"], "fast",
        "a matching keyed route may be chosen"
    );
    assert_eq!(
        detail["state"], "pending",
        "but its policy does not apply: {detail}"
    );
    d.stop();

    // The route's own word lets a route chosen by name auto-approve.
    let mut env = TestEnv::with_config(&routes(true));
    let d = env.start();
    let detail = receive(&env, &d, "alpha", "steer-3", deploy);
    d.wait_until("auto-approved", || {
        d.get("/api/v1/handoffs/steer-3").1["state"] != "pending"
    });
    assert_eq!(detail["route"], "fast");
    let decision = crate::util::decision(&env.ws("alpha")).unwrap();
    assert_eq!(decision["by"], "policy:fast");
}
