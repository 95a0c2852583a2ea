//! The Prometheus text exposition format (version 0.0.4), written by hand: a few dozen lines, and
//! it lets every figure live in plain atomics. The maintained crate (`prometheus-client`) keeps a
//! labelled family behind an `RwLock` taken on each `get_or_create`, the lock this module's users
//! must not take per request.

use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One scrape's text, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines. Every sample of the family follows.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let _ = write!(self.out, "# HELP {name} ");
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    /// An integer sample (exact past 2^53, unlike going through `f64`).
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's lines: one `_bucket` per upper bound (`counts` per bucket, not cumulative;
    /// one more than `bounds`, the last for `+Inf`), then `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let mut total = 0;
        for (i, n) in counts.iter().enumerate() {
            total += n;
            let mut le = String::new();
            match bounds.get(i) {
                Some(b) => push_float(&mut le, *b),
                None => le.push_str("+Inf"),
            }
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {total}");
        }
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        self.out.push(' ');
        push_float(&mut self.out, sum);
        let _ = write!(self.out, "\n{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {total}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let le = le.map(|v| ("le", v));
        for (i, (k, v)) in labels.iter().copied().chain(le).enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Writes `v` as Prometheus parses it (`+Inf`, `-Inf`, `NaN`; Rust's `inf` is not accepted).
fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not reserved `__`).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_histograms() {
        let mut e = Exposition::default();
        e.family("a_total", "Line one\nand \\ two", Kind::Counter);
        e.sample_u64("a_total", &[("k", "q\"\\\n")], 3);
        e.family("h_seconds", "H", Kind::Histogram);
        e.histogram("h_seconds", &[("s", "x")], &[0.5, 1.0], &[1, 0, 2], 3.25);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP a_total Line one\\nand \\\\ two\n# TYPE a_total counter\na_total{k=\"q\\\"\\\\\\n\"} 3\n\
             # HELP h_seconds H\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{s=\"x\",le=\"0.5\"} 1\nh_seconds_bucket{s=\"x\",le=\"1\"} 1\n\
             h_seconds_bucket{s=\"x\",le=\"+Inf\"} 3\nh_seconds_sum{s=\"x\"} 3.25\nh_seconds_count{s=\"x\"} 3\n"
        );
    }

    #[test]
    fn names() {
        assert!(valid_metric_name("a:b_c1") && !valid_metric_name("1a") && !valid_metric_name("a-b"));
        assert!(valid_label_name("_a1") && !valid_label_name("__a") && !valid_label_name("a:b"));
        let mut s = String::new();
        push_float(&mut s, f64::INFINITY);
        assert_eq!(s, "+Inf");
    }
}
