//! The building blocks of dropzero's self-contained HTML pages (`index.html`,
//! `compare.html`): the page head with its inline stylesheet, escaped tables, figures with
//! inline SVG, and artefact links.
//!
//! Everything written here is well-formed XML as well as HTML (polyglot markup), so tests can
//! parse a page with an XML parser. Every string from a report goes through [`esc`]; nothing
//! refers to the network, and nothing needs JavaScript.

use std::io::{self, Write};

use crate::charts::Chart;

/// Inline CSS: readable defaults, tables with borders, failed rows tinted.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;\
padding:0 1em;color:#222}h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;\
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right}\
tr.bad td{background:#fde8e8}tr.good td{background:#e8f6e8}figure{margin:1em 0}\
figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-weight:600}\
.verdict{font-size:1.2em;padding:.4em .8em;display:inline-block;border-radius:4px}\
.pass{background:#e8f6e8}.fail{background:#fde8e8}code{background:#f4f4f4;padding:0 .2em}";

/// Escapes text for an HTML element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '&' => s.push_str("&amp;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// A relative link target for a file name: bytes outside a safe set are percent-encoded, so
/// a name can neither leave the attribute nor become a scheme (`javascript:`).
pub fn href(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'/' => {
                s.push(char::from(b))
            }
            b => s.push_str(&format!("%{b:02X}")),
        }
    }
    // "./" keeps a name with a colon (already encoded) or a leading slash relative.
    format!("./{}", s.trim_start_matches('/'))
}

pub fn head(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">")?;
    writeln!(out, "<head>")?;
    writeln!(out, "<meta charset=\"utf-8\"/>")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>"
    )?;
    writeln!(out, "<title>{}</title>", esc(title))?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")
}

pub fn foot(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

/// A row of a table: its cells as plain text (escaped here) and an optional row class
/// (`bad`, `good`).
pub struct Row {
    pub class: Option<&'static str>,
    pub cells: Vec<String>,
}

impl Row {
    pub fn new(cells: Vec<String>) -> Self {
        Row { class: None, cells }
    }
}

pub fn table(
    out: &mut impl Write,
    headers: &[&str],
    rows: impl IntoIterator<Item = Row>,
) -> io::Result<()> {
    writeln!(out, "<table>")?;
    write!(out, "<tr>")?;
    for h in headers {
        write!(out, "<th>{}</th>", esc(h))?;
    }
    writeln!(out, "</tr>")?;
    for row in rows {
        match row.class {
            Some(c) => write!(out, "<tr class=\"{c}\">")?,
            None => write!(out, "<tr>")?,
        }
        for c in &row.cells {
            let numeric = c.parse::<f64>().is_ok();
            let class = if numeric { " class=\"n\"" } else { "" };
            write!(out, "<td{class}>{}</td>", esc(c))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")
}

/// Each chart as a figure with its inline SVG (drawn by us, already escaped by plotters).
pub fn figures(out: &mut impl Write, charts: &[Chart]) -> io::Result<()> {
    for c in charts {
        writeln!(out, "<figure id=\"chart-{}\">", c.id)?;
        writeln!(out, "<figcaption>{}</figcaption>", esc(c.title))?;
        out.write_all(c.svg.as_bytes())?;
        writeln!(out, "</figure>")?;
    }
    Ok(())
}

/// A list of links to the other files of the run directory.
pub fn artefacts(out: &mut impl Write, names: &[String], this: &str) -> io::Result<()> {
    writeln!(out, "<h2 id=\"artefacts\">Files of this run</h2>")?;
    let others: Vec<&String> = names.iter().filter(|n| n.as_str() != this).collect();
    if others.is_empty() {
        return writeln!(out, "<p>No other files.</p>");
    }
    writeln!(out, "<ul>")?;
    for n in others {
        writeln!(out, "<li><a href=\"{}\">{}</a></li>", href(n), esc(n))?;
    }
    writeln!(out, "</ul>")
}
