//! Renderers: one function per output format, each `(&Report, &mut impl Write)`.
//!
//! They only format; every number they print is already in the [`crate::Report`]. None of them
//! opens a file or decides a path: that is the harness's job.

pub mod capacity;
pub mod capacity_html;
pub mod compare;
pub mod html;
pub(crate) mod html_page;
pub mod json;
pub mod junit;
pub mod markdown;
mod markdown_ecs;
mod markdown_faults;
