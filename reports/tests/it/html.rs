//! `index.html`: parses as XML (polyglot markup), puts the gate table before the charts,
//! inlines every chart, refers to nothing outside the run directory, links each artefact,
//! and escapes every string that came from the report.

use dropzero_reports::*;

use crate::sample;

fn html(report: &Report, artefacts: &[&str]) -> String {
    let names: Vec<String> = artefacts.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    render_html(report, &names, &mut out).expect("renders");
    String::from_utf8(out).expect("utf-8")
}

fn parse(text: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
        .unwrap_or_else(|e| panic!("index.html is not well-formed: {e}"))
}

const FILES: [&str; 6] = [
    "index.html",
    "report.json",
    "report.md",
    "junit.xml",
    "sessions.jsonl",
    "logs/r1.log",
];

#[test]
fn gate_table_comes_first_then_charts_then_tables_and_links() {
    let text = html(&sample::report(), &FILES);
    // Inline SVG without light grid lines keeps a typical page small enough to attach to a CI
    // job or mail around.
    assert!(text.len() < 150_000, "index.html is {} bytes", text.len());
    let doc = parse(&text);
    let tables: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .collect();
    let first_row: Vec<&str> = tables[0]
        .descendants()
        .filter(|n| n.has_tag_name("th"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(first_row, ["Gate", "Threshold", "Observed", "Detail"]);
    let gate_rows = tables[0]
        .children()
        .filter(|n| n.has_tag_name("tr"))
        .count();
    assert_eq!(gate_rows, 1 + sample::report().gates.len());
    let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("no {needle}"));
    assert!(pos("<table>") < pos("<svg"));
    assert!(pos("<svg") < pos("id=\"drain\""));
    assert!(pos("id=\"drain\"") < pos("id=\"faults\""));
    assert!(pos("id=\"faults\"") < pos("id=\"latency\""));

    let figures = doc
        .descendants()
        .filter(|n| n.has_tag_name("figure"))
        .filter(|n| n.children().any(|c| c.has_tag_name("svg")))
        .count();
    let charts = charts::report_charts(&sample::report()).expect("draws");
    assert_eq!(figures, charts.len());
    assert!(figures >= 4, "{figures} charts");

    let links: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("a"))
        .filter_map(|n| n.attribute("href"))
        .collect();
    assert_eq!(
        links,
        [
            "./report.json",
            "./report.md",
            "./junit.xml",
            "./sessions.jsonl",
            "./logs/r1.log"
        ]
    );
}

#[test]
fn nothing_refers_outside_the_page() {
    let text = html(&sample::report(), &FILES);
    let doc = parse(&text);
    for n in doc.descendants().filter(|n| n.is_element()) {
        assert!(
            !["script", "link", "img", "iframe", "object"].contains(&n.tag_name().name()),
            "external or scripted element <{}>",
            n.tag_name().name()
        );
        for a in n.attributes() {
            let external = a.value().contains("//") && a.name() != "xmlns";
            assert!(
                !external,
                "<{} {}={:?}>",
                n.tag_name().name(),
                a.name(),
                a.value()
            );
            assert!(!a.name().starts_with("on"), "event handler {}", a.name());
        }
    }
    assert!(!text.contains("url("), "no CSS fetches");
}

#[test]
fn strings_from_the_report_are_escaped() {
    let mut r = sample::report();
    r.scenario.name = "<script>alert('name')</script>".into();
    r.errors = vec!["bad & <b>bold</b>".into()];
    r.drop_reasons[0].reason = "<img src=x onerror=alert(1)>".into();
    r.faults[0].notes = vec!["\"quoted\" <i>".into()];
    let text = html(&r, &["report.json", "x\" onclick=\"alert(1).json"]);
    let doc = parse(&text);
    assert!(
        doc.descendants()
            .all(|n| !["script", "img", "b", "i"].contains(&n.tag_name().name())),
        "a string from the report became markup"
    );
    let heading = doc
        .descendants()
        .find(|n| n.has_tag_name("h1"))
        .and_then(|n| n.text());
    assert_eq!(heading, Some("dropzero: <script>alert('name')</script>"));
    let hrefs: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("href"))
        .collect();
    assert_eq!(
        hrefs,
        ["./report.json", "./x%22%20onclick%3D%22alert%281%29.json"]
    );
    assert!(doc.descendants().all(|n| n.attribute("onclick").is_none()));
}

#[test]
fn an_empty_report_still_renders_a_page() {
    let text = html(&Report::default(), &[]);
    let doc = parse(&text);
    assert!(doc.descendants().all(|n| !n.has_tag_name("svg")));
    assert!(text.contains("No other files."));
}

#[test]
fn capacity_page_has_the_curve_and_one_row_per_level() {
    let sweep = crate::capacity::sample();
    let mut out = Vec::new();
    render_capacity_html(&sweep, &["capacity.json".into()], &mut out).expect("renders");
    let text = String::from_utf8(out).expect("utf-8");
    let doc = parse(&text);
    assert_eq!(
        doc.descendants().filter(|n| n.has_tag_name("svg")).count(),
        1
    );
    let rows = doc.descendants().filter(|n| n.has_tag_name("tr")).count();
    assert_eq!(rows, 1 + sweep.levels.len());
    assert!(text.contains("href=\"./capacity.json\""));
}
