//! `junit.xml`: gates as test cases, so any CI system shows a failed gate as a failed test.
//!
//! One `<testsuite name="dropzero.<scenario>">` inside a `<testsuites>` root (the form GitHub,
//! GitLab and Jenkins all read), one `<testcase>` per gate, a `<failure>` for each failed gate,
//! and harness warnings in `<system-err>`. Written by hand rather than with an XML crate: the
//! format is tiny and the only subtle part, escaping, is tested here.

use std::io::{self, Write};

use crate::error::ReportError;
use crate::model::Report;

/// Writes the report's gates as a JUnit XML test suite.
pub fn render_junit(report: &Report, out: &mut impl Write) -> Result<(), ReportError> {
    write_junit(report, out).map_err(|source| ReportError::Write {
        format: "junit",
        source,
    })
}

/// The XML declaration, `<testsuites>`, `<testsuite>` and the opening `<properties>` tag,
/// shared by every JUnit output (`suite` already escaped).
pub(crate) fn suite_header(
    out: &mut impl Write,
    suite: &str,
    tests: usize,
    failures: usize,
    started_at: &str,
) -> io::Result<()> {
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="dropzero" tests="{tests}" failures="{failures}" errors="0">"#
    )?;
    writeln!(
        out,
        r#"  <testsuite name="{suite}" tests="{tests}" failures="{failures}" errors="0" skipped="0" timestamp="{}">"#,
        escape(started_at)
    )?;
    writeln!(out, "    <properties>")
}

fn write_junit(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let suite = escape(&format!("dropzero.{}", r.scenario.name));
    let halted = usize::from(r.halted.is_some());
    let tests = r.gates.len() + halted;
    let failures = r.gates.iter().filter(|g| !g.passed).count() + halted;
    suite_header(out, &suite, tests, failures, &r.started_at)?;
    for (name, value) in [
        ("run_id", r.run_id.clone()),
        ("seed", r.scenario.seed.to_string()),
        ("time_scale", r.scenario.time_scale.to_string()),
        ("target", r.target.kind.clone()),
        ("tool_version", r.tool_version.clone()),
    ] {
        writeln!(
            out,
            r#"      <property name="{name}" value="{}"/>"#,
            escape(&value)
        )?;
    }
    writeln!(out, "    </properties>")?;
    for g in &r.gates {
        let name = escape(&g.name);
        if g.passed {
            writeln!(out, r#"    <testcase name="{name}" classname="{suite}"/>"#)?;
            continue;
        }
        let observed = g.observed.map_or("n/a".to_string(), |o| o.to_string());
        writeln!(out, r#"    <testcase name="{name}" classname="{suite}">"#)?;
        writeln!(
            out,
            r#"      <failure message="{}" type="gate">threshold: {} {unit}&#10;observed: {} {unit}</failure>"#,
            escape(&g.message),
            g.threshold,
            escape(&observed),
            unit = escape(&g.unit),
        )?;
        writeln!(out, "    </testcase>")?;
    }
    if let Some(why) = &r.halted {
        // A halt is a failure of its own: CI shows why the run stopped early.
        writeln!(out, r#"    <testcase name="halt" classname="{suite}">"#)?;
        writeln!(
            out,
            r#"      <failure message="{}" type="halt">the run was halted early</failure>"#,
            escape(why)
        )?;
        writeln!(out, "    </testcase>")?;
    }
    if !r.errors.is_empty() {
        writeln!(
            out,
            "    <system-err>{}</system-err>",
            escape(&r.errors.join("\n"))
        )?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}

/// Escapes text for an XML attribute or text node. Characters XML 1.0 forbids outright
/// (most C0 controls) become U+FFFD, since no escape can represent them.
pub(crate) fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            // Keep line breaks and tabs in attributes as breaks rather than spaces.
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            '\t' => s.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_forbidden_characters() {
        let cases = [
            (
                r#"<a href="x">'&'</a>"#,
                "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;",
            ),
            ("line\nbreak", "line&#10;break"),
            ("bell\u{7}", "bell\u{FFFD}"),
            ("plain ✅", "plain ✅"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input), expected, "{input:?}");
        }
    }
}
