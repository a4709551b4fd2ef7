//! The index on its own: documents in, hits out.

use super::*;
use std::sync::Arc;
use std::time::Duration;
use tantivy::collector::Collector;

fn doc(kind: Kind, ws: &str, path: &str, body: &str) -> Doc {
    Doc {
        kind: Some(kind),
        workspace: ws.into(),
        path: path.into(),
        fp: "1".into(),
        title: path.into(),
        body: body.into(),
        modified: 1_769_817_600,
        ..Doc::default()
    }
}

fn indexed(docs: Vec<Doc>) -> (tempfile::TempDir, Arc<SearchIndex>, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let (index, why) = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(why.as_deref(), Some("no search index yet"));
    let index = Arc::new(index);
    let (writer, _) = Writer::spawn(index.clone(), 20_000_000, Duration::from_millis(50)).unwrap();
    for d in docs {
        assert!(writer.send(Op::Put(Box::new(d))));
    }
    assert!(writer.flush());
    (dir, index, writer)
}

fn search(index: &SearchIndex, q: &str) -> Hits {
    let req = Request {
        q: q.into(),
        ..Request::default()
    };
    index.search(&req).unwrap()
}

#[test]
fn words_phrases_prefixes_filters_and_facets() {
    let (_dir, index, writer) = indexed(vec![
        doc(
            Kind::Artifact,
            "a",
            "inbox/x.md",
            "the validation error <script>alert(1)</script>",
        ),
        Doc {
            modified: 1_769_817_700,
            ..doc(
                Kind::Artifact,
                "b",
                "inbox/y.md",
                "error in authentication token",
            )
        },
        doc(
            Kind::Checkpoint,
            "b",
            "checkpoints/1.json",
            "validation passed",
        ),
    ]);
    let hits = search(&index, "validation error");
    assert_eq!(hits.total, 1);
    assert_eq!(hits.hits[0].path, "inbox/x.md");
    assert_eq!(
        hits.hits[0].snippet,
        "the <b>validation</b> <b>error</b> &lt;script&gt;alert(1)&lt;/script"
    );
    assert_eq!(search(&index, "\"error validation\"").total, 0);
    let auth = search(&index, "authen*");
    assert_eq!(auth.total, 1);
    assert!(
        auth.hits[0].snippet.contains("<b>authentication</b>"),
        "{}",
        auth.hits[0].snippet
    );
    let all = search(&index, "error OR validation");
    assert_eq!(all.total, 3);
    assert_eq!(all.facets.workspace.get("b"), Some(&2));
    assert_eq!(all.facets.kind.get("artifact"), Some(&2));
    assert_eq!(search(&index, "validation workspace:b").total, 1);
    assert_eq!(search(&index, "validation -kind:checkpoint").total, 1);
    assert_eq!(search(&index, "kind:checkpoint").total, 1);
    // Filters alone list newest first.
    let listed = search(&index, "-kind:checkpoint kind:artifact");
    assert_eq!(listed.total, 2);
    assert_eq!(listed.hits[0].path, "inbox/y.md", "the newer one");
    assert_eq!(search(&index, "error before:2026-01-31").total, 0);
    assert_eq!(search(&index, "error after:2026-01-31").total, 2);
    assert_eq!(search(&index, "\" : ( ] AND").total, 0);
    // Replacing a document leaves one copy; deleting it leaves none.
    writer.send(Op::Put(Box::new(doc(
        Kind::Artifact,
        "b",
        "inbox/y.md",
        "renamed",
    ))));
    writer.flush();
    assert_eq!(search(&index, "authentication").total, 0);
    assert_eq!(search(&index, "renamed").total, 1);
    writer.send(Op::Delete(doc_id(Kind::Artifact, "b", "inbox/y.md")));
    writer.flush();
    assert_eq!(search(&index, "renamed").total, 0);
    assert_eq!(index.known().len(), 2);
}

#[test]
fn a_scope_hides_other_workspaces() {
    let (_dir, index, _w) = indexed(vec![
        doc(Kind::Artifact, "a", "inbox/x.md", "secret plan"),
        doc(Kind::Artifact, "b", "inbox/y.md", "secret plan"),
    ]);
    let req = Request {
        q: "secret".into(),
        scope: Some(vec!["a".into()]),
        ..Request::default()
    };
    let hits = index.search(&req).unwrap();
    assert_eq!(hits.total, 1);
    assert_eq!(hits.hits[0].workspace, "a");
    assert_eq!(hits.facets.workspace.len(), 1);
}

#[test]
fn a_corrupt_or_foreign_index_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(SearchIndex::open(dir.path()).unwrap());
    std::fs::write(index_dir(dir.path()).join("meta.json"), b"{not json").unwrap();
    let (_, why) = SearchIndex::open(dir.path()).unwrap();
    assert!(why.is_some_and(|w| w.contains("cannot be used")));
    std::fs::create_dir_all(dir.path().join("search/v0")).unwrap();
    let (_, why) = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(why, None);
    assert!(!dir.path().join("search/v0").exists());
}

#[test]
fn a_query_past_its_time_limit_says_it_is_partial() {
    let (_dir, index, _w) = indexed(vec![doc(Kind::Artifact, "a", "inbox/x.md", "late words")]);
    let req = Request {
        q: "late".into(),
        time_limit: Duration::ZERO,
        ..Request::default()
    };
    let hits = index.search(&req).unwrap();
    assert!(hits.partial);
    assert_eq!(hits.total, 0, "no segment was searched");
    let req = Request {
        q: "late".into(),
        ..Request::default()
    };
    let hits = index.search(&req).unwrap();
    assert!(!hits.partial);
    assert_eq!(hits.total, 1);
}

#[test]
fn counts_stop_at_the_bound_and_say_so_with_an_estimate() {
    let n = COUNT_LIMIT as usize + 500;
    let docs = (0..n)
        .map(|i| {
            let body = if i % 2 == 0 { "common even" } else { "common" };
            doc(Kind::Artifact, "a", &format!("inbox/{i}.md"), body)
        })
        .collect();
    let (_dir, index, _w) = indexed(docs);
    let all = search(&index, "common");
    assert_eq!(all.total, COUNT_LIMIT as usize);
    assert!(all.total_is_lower_bound);
    let estimate = all.total_estimate.expect("an estimate past the bound");
    assert!(
        (n as u64 - 200..=n as u64 + 200).contains(&estimate),
        "{estimate} for {n}"
    );
    assert_eq!(all.facets.workspace.get("a"), Some(&COUNT_LIMIT));
    assert_eq!(all.hits.len(), 20, "a full page all the same");
    // Under the bound, the count is exact and says so.
    let even = search(&index, "even");
    assert_eq!(even.total, n.div_ceil(2));
    assert!(!even.total_is_lower_bound);
    assert_eq!(even.total_estimate, None);
    // A date range holding every document changes nothing; one holding none finds nothing.
    assert_eq!(search(&index, "even after:2000-01-01").total, n.div_ceil(2));
    assert_eq!(search(&index, "even before:2000-01-01").total, 0);
}

#[test]
fn a_record_snippet_shows_its_prose_and_its_other_strings_are_searched() {
    let sha = "ab".repeat(32);
    let (_dir, index, _w) = indexed(vec![Doc {
        other: format!("alice\n2026-01-31T12:00:00Z\n{sha}\n"),
        ..doc(
            Kind::Decision,
            "a",
            ".baton/handoffs/k/decision.json",
            "the retry loop never backs off\n",
        )
    }]);
    let by_name = search(&index, "alice");
    assert_eq!(by_name.total, 1);
    assert_eq!(by_name.hits[0].snippet, "the retry loop never backs off");
    let by_word = search(&index, "retry");
    assert_eq!(
        by_word.hits[0].snippet,
        "the <b>retry</b> loop never backs off"
    );
    assert!(!by_name.hits[0].snippet.contains(&sha));
}

/// Bytes of the segment files a query reads (what the warmer reads ahead), in `dir`.
fn query_files_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            ["idx", "pos", "term", "fast", "fieldnorm"]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn new_segments_are_read_before_queries_see_them_and_an_opened_index_when_asked() {
    let docs = (0..200)
        .map(|i| {
            doc(
                Kind::Artifact,
                "a",
                &format!("inbox/{i}.md"),
                "warm words here",
            )
        })
        .collect();
    let (dir, index, writer) = indexed(docs);
    let files = index_dir(dir.path());
    // Each file read but its footer (tantivy's version and checksum, left out of a read).
    let read_whole = |read: u64| {
        let on_disk = query_files_bytes(&files);
        read <= on_disk && read * 10 >= on_disk * 9
    };
    // A commit's segment is read by the reload that makes it searchable.
    assert!(read_whole(index.warmed_bytes()), "{}", index.warmed_bytes());
    drop(writer);
    drop(index);
    // Opening an index reads nothing itself (it would wait for it); `warm_files` reads every
    // segment, once.
    let (opened, why) = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(why, None);
    assert_eq!(opened.warmed_bytes(), 0);
    opened.warm_files();
    let once = opened.warmed_bytes();
    assert!(read_whole(once), "{once}");
    opened.warm_files();
    assert_eq!(opened.warmed_bytes(), once);
    assert_eq!(search(&opened, "warm").total, 200);
}

#[test]
fn a_writer_leaves_its_marker_until_it_stops_and_a_marker_of_another_boot_has_the_index_made_again()
{
    let dir = tempfile::tempdir().unwrap();
    let index_at = index_dir(dir.path());
    let marker = index_at.join(unsynced::MARKER);
    let (index, _) = SearchIndex::open(dir.path()).unwrap();
    let index = Arc::new(index);
    let (writer, thread) =
        Writer::spawn(index.clone(), 20_000_000, Duration::from_millis(50)).unwrap();
    assert!(writer.send(Op::Put(Box::new(doc(
        Kind::Artifact,
        "a",
        "inbox/x.md",
        "kept"
    )))));
    assert!(writer.flush());
    // Written without syncs meanwhile: the marker says so, for this boot.
    assert!(marker.exists());
    // A process that died (same boot) leaves files the page cache holds: opened as they are.
    let (again, why) = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(why, None);
    assert_eq!(again.num_docs(), 1);
    drop(again);
    drop(writer);
    thread.join().unwrap();
    // Stopped: every file synced, the marker gone.
    assert!(!marker.exists());
    drop(index);
    // The machine went down while a writer ran: its writes may be lost, the index is rebuilt.
    std::fs::write(&marker, "another-boot").unwrap();
    let (fresh, why) = SearchIndex::open(dir.path()).unwrap();
    assert!(why.unwrap().contains("restarted"));
    assert_eq!(fresh.num_docs(), 0);
}

#[test]
fn a_negation_ranks_as_its_wanted_words_do_without_the_excluded_documents() {
    // Scores vary with how often `alpha` appears; every third document also holds `beta`.
    let docs: Vec<Doc> = (0..1200)
        .map(|i| {
            let mut body = "alpha ".repeat(1 + i % 13);
            body.push_str(&"filler ".repeat(i % 7));
            if i.is_multiple_of(3) {
                body.push_str("beta");
            }
            doc(Kind::Artifact, "a", &format!("inbox/{i:04}.txt"), &body)
        })
        .collect();
    let (_dir, index, writer) = indexed(docs[..600].to_vec());
    // A second segment: the page's threshold is carried from one segment to the next.
    for d in &docs[600..] {
        assert!(writer.send(Op::Put(Box::new(d.clone()))));
    }
    assert!(writer.flush());
    assert!(index.segments() >= 2, "{}", index.segments());
    let page = |q: &str, offset: usize| {
        let req = Request {
            q: q.into(),
            limit: 100,
            offset,
            ..Request::default()
        };
        index.search(&req).unwrap()
    };
    // The reference: every document of `alpha`, ranked, those holding `beta` left out.
    let mut all = Vec::new();
    for offset in (0..1200).step_by(100) {
        all.extend(page("alpha", offset).hits);
    }
    assert_eq!(all.len(), 1200);
    let expected: Vec<(String, f32)> = all
        .iter()
        .filter(|h| {
            let i: usize = h.path[6..10].parse().unwrap();
            !i.is_multiple_of(3)
        })
        .map(|h| (h.path.clone(), h.score))
        .collect();
    assert_eq!(expected.len(), 800);
    for offset in [0, 100, 700] {
        let got = page("alpha -beta", offset);
        let got: Vec<(String, f32)> = got.hits.iter().map(|h| (h.path.clone(), h.score)).collect();
        assert_eq!(
            got,
            expected[offset..(offset + 100).min(800)],
            "offset {offset}"
        );
    }
    let counted = page("alpha -beta", 0);
    assert_eq!(counted.total, 800);
    assert!(!counted.total_is_lower_bound);
    // An excluded filter too, beside the words.
    assert_eq!(page("beta -kind:artifact", 0).total, 0);
    assert_eq!(page("beta -workspace:b", 0).total, 400);
}

#[test]
fn an_index_another_process_committed_to_since_it_was_opened_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(SearchIndex::open(dir.path()).unwrap().0);
    let (writer, thread) =
        Writer::spawn(first.clone(), 20_000_000, Duration::from_millis(50)).unwrap();
    let one = doc(Kind::Artifact, "a", "inbox/x.md", "one");
    assert!(writer.send(Op::Put(Box::new(one))));
    assert!(writer.flush());
    // Its lock is let go when its thread ends: the other writer below must not find it held.
    drop(writer);
    thread.join().unwrap();
    let (stale, _) = SearchIndex::open(dir.path()).unwrap();
    assert!(!stale.changed_on_disk(), "opened just now");
    assert!(!first.changed_on_disk(), "its own writer reloaded it");
    let (other, _) = SearchIndex::open(dir.path()).unwrap();
    let (writer, thread) =
        Writer::spawn(Arc::new(other), 20_000_000, Duration::from_millis(50)).unwrap();
    assert!(writer.send(Op::Put(Box::new(doc(
        Kind::Artifact,
        "a",
        "inbox/y.md",
        "two"
    )))));
    assert!(writer.flush());
    drop(writer);
    thread.join().unwrap();
    assert!(stale.changed_on_disk(), "a segment was added");
    let (fresh, _) = SearchIndex::open(dir.path()).unwrap();
    assert!(!fresh.changed_on_disk());
}

#[test]
fn a_word_ranks_as_tantivys_own_query_ranks_it_when_a_segment_holds_it_in_one_field() {
    // The first segment holds `alpha` in titles only (boosted, of varied lengths); the second
    // in bodies, and in half of its titles. Either way the pages, scores included, are those of the parser's query.
    let titled: Vec<Doc> = (0..700)
        .map(|i| Doc {
            title: format!("alpha {}", "x ".repeat(i % 9)),
            ..doc(Kind::Artifact, "a", &format!("inbox/{i:04}.txt"), "filler")
        })
        .collect();
    let (_dir, index, writer) = indexed(titled);
    for i in 700..1400 {
        let body = format!("{}filler", "alpha ".repeat(1 + i % 5));
        let path = format!("inbox/{i:04}.txt");
        let d = Doc {
            title: match i % 2 {
                0 => format!("alpha {i}"),
                _ => path.clone(),
            },
            ..doc(Kind::Artifact, "b", &path, &body)
        };
        assert!(writer.send(Op::Put(Box::new(d))));
    }
    assert!(writer.flush());
    assert!(index.segments() >= 2, "{}", index.segments());
    ranks_as_parsed(
        &index,
        &[
            "alpha",
            "alpha filler",
            "alpha OR x",
            "alpha OR x OR filler",
        ],
    );
    // A phrase or a prefix is kept as the parser made it.
    assert!(!format!("{:?}", index.text_query("\"alpha x\"")).contains("AnyField"));
}

/// Each query's pages (up to every match, scores included, from several offsets) and count
/// are those of the parser's own query.
fn ranks_as_parsed(index: &SearchIndex, queries: &[&str]) {
    let searcher = index.reader.searcher();
    for q in queries {
        let pruned = index.text_query(q);
        let plain = index.parsed_text_query(q);
        assert!(
            format!("{pruned:?}").contains("AnyField"),
            "{q}: {pruned:?}"
        );
        for (limit, offset) in [
            (1, 0),
            (10, 0),
            (20, 40),
            (100, 0),
            (300, 0),
            (800, 0),
            (1400, 0),
        ] {
            let top = |query: &dyn tantivy::query::Query| {
                let page = tantivy::collector::TopDocs::with_limit(limit).and_offset(offset);
                searcher.search(query, &page.order_by_score()).unwrap()
            };
            assert_eq!(
                top(pruned.as_ref()),
                top(plain.as_ref()),
                "{q}, {limit}, {offset}"
            );
            // And each segment's own page, which the merge of the pages may hide.
            let by_segment = |query: &dyn tantivy::query::Query| {
                let page = tantivy::collector::TopDocs::with_limit(limit).and_offset(offset);
                let page = page.order_by_score();
                let scoring = tantivy::query::EnableScoring::enabled_from_searcher(&searcher);
                let weight = query.weight(scoring).unwrap();
                let segments = searcher.segment_readers().iter().enumerate();
                let pages = segments.map(|(ord, segment)| {
                    let ord = u32::try_from(ord).unwrap();
                    let fruit = page.collect_segment(weight.as_ref(), ord, segment).unwrap();
                    page.merge_fruits(vec![fruit]).unwrap()
                });
                pages.collect::<Vec<_>>()
            };
            assert_eq!(
                by_segment(pruned.as_ref()),
                by_segment(plain.as_ref()),
                "{q}, {limit}, {offset}, by segment"
            );
        }
        let count = |query: &dyn tantivy::query::Query| {
            searcher.search(query, &tantivy::collector::Count).unwrap()
        };
        assert_eq!(count(pruned.as_ref()), count(plain.as_ref()), "{q}");
    }
}

#[test]
fn a_word_whose_best_score_many_documents_tie_ranks_as_tantivys_own_query() {
    // Segment a: `gamma` in bodies only (a part ranked alone). b: in titles of three lengths
    // and half the bodies, twice in a few (a union whose best few are known exactly), some
    // deleted. c: in titles and bodies all of one length, as a common word in titles alike:
    // the page fills at the segment's best score, and the rest is not read. d: once 70 times
    // in a body (no exact best). e: in titles, bodies and the other strings (three parts: no
    // exact best either).
    let at = |i: usize, ws: &str, title: String, body: String| Doc {
        title,
        ..doc(Kind::Artifact, ws, &format!("inbox/{i:04}.txt"), &body)
    };
    let (_dir, index, writer) = indexed(
        (0..700)
            .map(|i| {
                at(
                    i,
                    "a",
                    format!("delta {i}"),
                    format!("gamma {}", "y ".repeat(i % 4)),
                )
            })
            .collect(),
    );
    let put = |docs: Vec<Doc>| {
        for d in docs {
            assert!(writer.send(Op::Put(Box::new(d))));
        }
        assert!(writer.flush());
    };
    put((700..1400)
        .map(|i| {
            let title = format!("gamma {i} {}", "x ".repeat(i % 3));
            let body = match (i % 97, i % 2) {
                (0, _) => "gamma gamma filler",
                (_, 0) => "gamma filler",
                _ => "filler",
            };
            at(i, "b", title, body.into())
        })
        .collect());
    for i in (700..1400).step_by(13) {
        let id = super::doc_id(Kind::Artifact, "b", &format!("inbox/{i:04}.txt"));
        assert!(writer.send(Op::Delete(id)));
    }
    assert!(writer.flush());
    let tied = |i| at(i, "c", format!("gamma {i}"), "gamma filler".into());
    put((1400..1600).map(tied).collect());
    put((1600..1700)
        .map(|i| match i {
            1650 => at(i, "d", format!("gamma {i}"), "gamma ".repeat(70)),
            _ => at(i, "d", format!("gamma {i}"), "filler".into()),
        })
        .collect());
    put((1700..1800)
        .map(|i| Doc {
            other: "gamma".into(),
            ..at(i, "e", format!("gamma {i}"), "gamma filler".into())
        })
        .collect());
    assert!(index.segments() >= 5, "{}", index.segments());
    let before = index.ceilings.stops();
    ranks_as_parsed(&index, &["gamma", "gamma OR filler", "gamma -x"]);
    assert!(
        index.ceilings.stops() > before,
        "no segment stopped at its best"
    );
    // Asked again, the bests kept from the first time rank alike.
    ranks_as_parsed(&index, &["gamma"]);
}

#[test]
fn a_facet_lists_the_values_with_the_most_matches_and_says_it_left_others_out() {
    // Workspace i holds 1 + i / 10 documents with `beta`: w00..w09 one each, w50..w59 six.
    let docs: Vec<Doc> = (0..60)
        .flat_map(|i| {
            (0..1 + i / 10).map(move |j| {
                let ws = format!("w{i:02}");
                doc(Kind::Artifact, &ws, &format!("inbox/{j}.txt"), "beta")
            })
        })
        .collect();
    let (_dir, index, _writer) = indexed(docs);
    let hits = search(&index, "beta");
    assert_eq!(hits.total, 210);
    assert!(hits.facets_truncated);
    let shown: Vec<&str> = hits.facets.workspace.keys().map(String::as_str).collect();
    let expected: Vec<String> = (10..60).map(|i| format!("w{i:02}")).collect();
    assert_eq!(
        shown,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(hits.facets.workspace["w59"], 6);
    assert_eq!(hits.facets.workspace["w10"], 2);
    assert_eq!(hits.facets.kind["artifact"], 210);
    let one = search(&index, "beta workspace:w59");
    assert!(!one.facets_truncated);
    assert_eq!(one.facets.workspace.len(), 1);
    let json = serde_json::to_value(&one).unwrap();
    assert!(json.get("facets_truncated").is_none(), "{json}");
}
