use super::*;
use serde_json::json;

fn read(text: &str) -> Result<Value, Problem> {
    parse(text.as_bytes(), &Limits::default()).map(|(v, _)| v)
}

fn refused(text: &str) -> Problem {
    read(text).expect_err("refused")
}

#[test]
fn a_handoff_reads_as_the_json_it_stands_for() {
    let text = "handoff_version: \"1.0\"\ntask_id: t-1\nfrom_agent: a\nconfidence: 0.5\n\
        remaining:\n  - write tests\n  - 'ship: it'\ncontext: {retries: 3, big: 0x10, none: ~, ok: true}\n\
        summary: |\n  two\n  lines\n";
    let value = read(text).unwrap();
    assert_eq!(
        value,
        json!({"handoff_version": "1.0", "task_id": "t-1", "from_agent": "a", "confidence": 0.5,
            "remaining": ["write tests", "ship: it"],
            "context": {"retries": 3, "big": 16, "none": null, "ok": true},
            "summary": "two\nlines\n"})
    );
}

#[test]
fn every_node_has_its_place() {
    let text = "a: 1\nlist:\n  - x\n  - {b: 2}\n";
    let (_, places) = parse(text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(places.locate("/a"), Some((1, 4)));
    assert_eq!(places.locate("/list/1/b"), Some((4, 9)));
    assert_eq!(
        places.locate("/list/1/missing"),
        Some((4, 5)),
        "the nearest ancestor"
    );
}

#[test]
fn duplicate_keys_are_refused_with_both_places() {
    let p = refused("a: 1\nb: 2\na: 3\n");
    assert_eq!(
        (p.pointer.as_str(), p.line, p.column),
        ("/a", Some(3), Some(1))
    );
    assert!(p.message.contains("first at line 1:1"), "{}", p.message);
}

#[test]
fn tags_are_refused_wherever_they_are() {
    for text in [
        "a: !!str 1\n",
        "a: !custom {b: 1}\n",
        "!!map {a: 1}\n",
        "a: !!python/object:os.system [ls]\n",
    ] {
        let p = refused(text);
        assert!(p.message.contains("tags"), "{text}: {p}");
        assert!(p.line.is_some(), "{text}");
    }
}

#[test]
fn a_billion_laughs_costs_nothing() {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names: Vec<char> = ('b'..='j').collect();
    let mut prev = 'a';
    for n in names {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    let started = std::time::Instant::now();
    let p = refused(&text);
    assert!(p.message.contains("expand to more than"), "{p}");
    // Not a timing assertion on the result: a guard that the test itself stays cheap.
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn aliases_within_the_budget_are_expanded() {
    let value = read("base: &b {x: 1}\ncopy: *b\n").unwrap();
    assert_eq!(value["copy"], json!({"x": 1}));
}

#[test]
fn limits_hold_as_for_json() {
    let limits = Limits::default();
    let deep = format!("{}1{}", "[".repeat(33), "]".repeat(33));
    assert!(refused(&deep).message.contains("deeper than 32"));
    let ok = format!("{}1{}", "[".repeat(32), "]".repeat(32));
    assert!(read(&ok).is_ok());
    let long = format!("a: {}\n", "x".repeat(limits.max_string + 1));
    assert!(refused(&long).message.contains("over the limit"));
    let big = vec![b'#'; limits.max_bytes + 1];
    assert!(parse(&big, &limits)
        .unwrap_err()
        .message
        .contains("over the limit"));
    let through_alias = format!("a: &a {}1{}\nb: [*a]\n", "[".repeat(31), "]".repeat(31));
    assert!(refused(&through_alias)
        .message
        .contains("through this alias"));
}

#[test]
fn syntax_errors_and_odd_documents_say_where() {
    let p = refused("a: [1, 2\nb: 3\n");
    assert!(p.message.starts_with("invalid YAML"), "{p}");
    assert!(p.line.is_some());
    assert!(refused("a: 1\n---\nb: 2\n")
        .message
        .contains("more than one YAML document"));
    assert!(refused("# only a comment\n").message.contains("empty"));
    assert!(refused("? [a, b]\n: 1\n").message.contains("mapping key"));
    assert!(refused("a: .nan\n").message.contains("not a JSON number"));
    assert!(refused("a: *nowhere\n").line.is_some());
}

#[test]
fn plain_scalars_follow_the_core_schema() {
    let value =
        read("a: 1.0\nb: yes\nc: 1e3\nd: -7\ne: 12345678901234567890\nf: .5\ng: 1.2.3\n").unwrap();
    assert_eq!(value["a"], json!(1.0));
    assert_eq!(value["b"], json!("yes"), "YAML 1.2: yes is a string");
    assert_eq!(value["c"], json!(1000.0));
    assert_eq!(value["d"], json!(-7));
    assert_eq!(value["e"], json!(12345678901234567890u64));
    assert_eq!(value["f"], json!(0.5));
    assert_eq!(value["g"], json!("1.2.3"));
}

#[test]
fn numbers_are_kept_exactly_or_refused_as_in_json() {
    for (text, word) in [
        ("a: 100000000000000000000\n", "integer"),
        ("a: -9223372036854775809\n", "integer"),
        ("a: 0.1000000000000000000001\n", "precision"),
    ] {
        let p = read(text).expect_err(text);
        assert!(p.message.contains(word), "{text}: {}", p.message);
        assert_eq!(p.pointer, "/a", "{text}");
    }
    assert_eq!(read("a: 1e20\n").unwrap()["a"], json!(1e20));
}

#[test]
fn deep_long_keys_cost_their_bytes_once_not_per_node() {
    // 31 nested keys of 1,000 bytes (YAML's longest implicit key), then 25,000 items: a
    // pointer kept per node would be 25,000 x 31,000 bytes. Positions are a tree instead.
    let limits = Limits {
        max_bytes: 2 * 1024 * 1024,
        ..Limits::default()
    };
    let mut text = String::new();
    for depth in 0..31 {
        text.push_str(&" ".repeat(depth));
        text.push_str(&format!("{}{depth}:\n", "k".repeat(1_000)));
    }
    for _ in 0..25_000 {
        text.push_str(&" ".repeat(31));
        text.push_str("- a\n");
    }
    let (value, places) = parse(text.as_bytes(), &limits).unwrap();
    let mut pointer = String::new();
    let mut node = &value;
    for depth in 0..31 {
        let key = format!("{}{depth}", "k".repeat(1_000));
        pointer = push_pointer(&pointer, &key);
        node = &node[&key];
    }
    assert_eq!(node.as_array().unwrap().len(), 25_000);
    assert_eq!(
        places.locate(&format!("{pointer}/24999")),
        Some((31 + 25_000, 34))
    );
}

#[test]
fn anchored_copies_count_against_the_budget() {
    let limits = Limits {
        max_bytes: 4096,
        ..Limits::default()
    };
    // Each level anchored: the copies kept for aliases would multiply memory by the depth.
    let mut text = String::new();
    for depth in 0..20 {
        text.push_str(&" ".repeat(depth * 2));
        text.push_str(&format!("k{depth}: &a{depth}\n"));
    }
    text.push_str(&" ".repeat(40));
    text.push_str(&format!("leaf: \"{}\"\n", "x".repeat(300)));
    let p = parse(text.as_bytes(), &limits).unwrap_err();
    assert!(p.message.contains("expand to more than 4096 bytes"), "{p}");
}
