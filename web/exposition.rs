//! The Prometheus text format 0.0.4, from the OpenMetrics text the registry encodes, for
//! scrapers that ask for it (`Accept: text/plain; version=0.0.4`) and would otherwise read
//! every counter as untyped: 0.0.4 names a counter's family as its samples are named
//! (`x_total`), and knows no `# UNIT`, `# EOF`, `_created` samples, exemplars or info.

use std::collections::HashMap;

/// Content types of the two formats.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for 0.0.4 rather than OpenMetrics: it names `text/plain`
/// and not OpenMetrics. No header, `*/*` or OpenMetrics keep OpenMetrics.
pub fn wants_text_004(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let accept = accept.to_ascii_lowercase();
    accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
}

/// `openmetrics` (as `prometheus_client` writes it) in the 0.0.4 text format.
pub fn to_text_004(openmetrics: &str) -> String {
    // Family name -> (its OpenMetrics type, the name its samples carry in 0.0.4).
    let mut families: HashMap<&str, &str> = HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                families.insert(name, kind);
            }
        }
    }
    let renamed = |name: &str| -> String {
        match families.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let kind = match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" | "stateset" => "gauge",
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {} {kind}\n", renamed(name)));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name)));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if line[..name_end].ends_with("_created") {
            continue;
        }
        // An exemplar follows ` # ` after the value; 0.0.4 has none.
        let sample = match line.find(" # ") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_their_samples_and_openmetrics_only_lines_go() {
        let om = "# HELP baton_handoffs Handoffs received.\n# TYPE baton_handoffs counter\n\
                  baton_handoffs_total{ws=\"a\"} 3 # {trace=\"x\"} 1.0\n\
                  baton_handoffs_created{ws=\"a\"} 1.7e9\n\
                  # HELP baton_up Up.\n# TYPE baton_up gauge\n# UNIT baton_up seconds\nbaton_up 1\n\
                  # TYPE baton_build info\nbaton_build_info{v=\"1\"} 1\n# EOF\n";
        let text = to_text_004(om);
        assert_eq!(
            text,
            "# HELP baton_handoffs_total Handoffs received.\n# TYPE baton_handoffs_total counter\n\
             baton_handoffs_total{ws=\"a\"} 3\n# HELP baton_up Up.\n# TYPE baton_up gauge\n\
             baton_up 1\n# TYPE baton_build_info gauge\nbaton_build_info{v=\"1\"} 1\n"
        );
    }

    #[test]
    fn only_a_plain_text_request_without_openmetrics_gets_0_0_4() {
        assert!(wants_text_004(Some("text/plain; version=0.0.4")));
        assert!(wants_text_004(Some("text/plain")));
        assert!(!wants_text_004(None));
        assert!(!wants_text_004(Some("*/*")));
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert!(!wants_text_004(Some(prometheus)));
    }
}
