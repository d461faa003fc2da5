//! The bench bar chart, as hand-written SVG (no dependencies).
//!
//! One panel per clock mode; in each, one group per row: hv's bar above
//! Xen's, on a logarithmic axis (the rows span two to three decades), each
//! labelled with its figure. A dark tick on hv's line marks the goal, half
//! of Xen's figure: hv meets it when its bar ends left of the tick. Rows hv
//! cannot run say so in place of the bar.

use crate::bench::{figure, ModeResult, Row, GOAL_RATIO};
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 620.0;
const BAR_H: f64 = 13.0;
const GROUP_H: f64 = 38.0;
const PANEL_HEAD: f64 = 58.0;
const PANEL_FOOT: f64 = 30.0;
const HV_COLOR: &str = "#2b6cb0";
const XEN_COLOR: &str = "#dd6b20";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The decades the axis spans: `10^lo ..= 10^hi`.
fn decades(rows: &[Row]) -> (i32, i32) {
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.hv_value(), r.xen_value()])
        .flatten()
        .filter(|v| *v > 0.0)
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    if values.is_empty() {
        return (1, 4);
    }
    let lo = min.log10().floor().clamp(0.0, 12.0);
    let hi = max.log10().ceil().clamp(lo + 1.0, 13.0);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "whole numbers in 0..=13 after floor/ceil and the clamps"
    )]
    (lo as i32, hi as i32)
}

/// x position of `v` on the log axis.
fn x_of(v: f64, (lo, hi): (i32, i32)) -> f64 {
    let t = (v.max(1.0).log10() - f64::from(lo)) / f64::from(hi - lo);
    LABEL_W + t.clamp(0.0, 1.0) * PLOT_W
}

fn panel(out: &mut String, m: &ModeResult, top: f64, date: &str) -> f64 {
    let axis = decades(&m.rows);
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" font-size="16" font-weight="bold">Hot paths, {} per operation (lower is better)</text>"#,
        top + 22.0,
        m.mode.unit()
    );
    let _ = writeln!(
        out,
        r##"<text x="16" y="{:.1}" font-size="12" fill="#555">{}: QEMU TCG {}; {}.{}</text>"##,
        top + 40.0,
        m.mode.name(),
        escape(&m.mode.qemu_args().join(" ")),
        escape(date),
        if m.mode.judges_goal() {
            format!(
                " Black tick: the goal, hv at most {:.0}% of Xen.",
                GOAL_RATIO * 100.0
            )
        } else {
            String::new()
        }
    );
    let plot_top = top + PANEL_HEAD;
    let plot_bottom = plot_top + m.rows.len() as f64 * GROUP_H;
    for d in axis.0..=axis.1 {
        let x = x_of(10f64.powi(d), axis);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{plot_top:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
            plot_bottom + 14.0,
            figure(10f64.powi(d))
        );
    }
    let mut y = plot_top;
    for row in &m.rows {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            LABEL_W - 8.0,
            y + GROUP_H / 2.0 + 4.0,
            escape(&row.name)
        );
        for (i, (value, color, who)) in [
            (row.hv_value(), HV_COLOR, "hv"),
            (row.xen_value(), XEN_COLOR, "Xen"),
        ]
        .into_iter()
        .enumerate()
        {
            let by = y + 5.0 + if i == 0 { 0.0 } else { BAR_H + 2.0 };
            match value {
                Some(v) => {
                    let x = x_of(v, axis);
                    let _ = writeln!(
                        out,
                        r#"<rect x="{LABEL_W:.1}" y="{by:.1}" width="{:.1}" height="{BAR_H:.1}" fill="{color}"><title>{who}: {}</title></rect>"#,
                        (x - LABEL_W).max(1.0),
                        figure(v)
                    );
                    let _ = writeln!(
                        out,
                        r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                        x + 4.0,
                        by + BAR_H - 2.5,
                        figure(v)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#888">{who}: not supported yet</text>"##,
                        LABEL_W + 4.0,
                        by + BAR_H - 2.5
                    );
                }
            }
        }
        if let Some(x) = row.xen_value().filter(|_| m.mode.judges_goal()) {
            let gx = x_of(x * GOAL_RATIO, axis);
            let _ = writeln!(
                out,
                r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{:.1}" stroke="#111" stroke-width="2"/>"##,
                y + 3.0,
                y + 5.0 + BAR_H + 2.0
            );
        }
        y += GROUP_H;
    }
    plot_bottom + PANEL_FOOT
}

/// The whole chart: a legend, then one panel per mode.
pub fn chart(results: &[ModeResult], date: &str) -> String {
    let mut body = String::new();
    let mut top = 34.0;
    for m in results {
        top = panel(&mut body, m, top, date);
    }
    let height = top + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="sans-serif">"#
    );
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(
        out,
        r#"<rect x="16" y="10" width="12" height="12" fill="{HV_COLOR}"/><text x="34" y="21" font-size="12">hv</text>"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="70" y="10" width="12" height="12" fill="{XEN_COLOR}"/><text x="88" y="21" font-size="12">Xen 4.17</text>"#
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Cell, Mode};

    #[test]
    fn chart_has_a_bar_per_figure_and_a_goal_tick_per_xen_row() {
        let rows = vec![
            Row {
                name: "null<hypercall>".into(),
                hv: Some(Cell::Measured(86.0)),
                xen: Some(Cell::Measured(275.0)),
            },
            Row {
                name: "int3_bounce".into(),
                hv: Some(Cell::Unsupported("-ENOSYS".into())),
                xen: Some(Cell::Measured(651.0)),
            },
        ];
        let svg = chart(
            &[ModeResult {
                mode: Mode::Icount,
                rows,
            }],
            "2025-01-01",
        );
        assert!(svg.starts_with("<svg "));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<title>").count(), 3);
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 2);
        assert!(svg.contains("null&lt;hypercall&gt;"));
        assert!(svg.contains("hv: not supported yet"));
        assert_eq!(decades(&[]), (1, 4));
    }

    #[test]
    fn log_axis() {
        assert!((x_of(10.0, (1, 3)) - LABEL_W).abs() < 1e-9);
        assert!((x_of(1000.0, (1, 3)) - (LABEL_W + PLOT_W)).abs() < 1e-9);
        assert!((x_of(100.0, (1, 3)) - (LABEL_W + PLOT_W / 2.0)).abs() < 1e-9);
    }
}
