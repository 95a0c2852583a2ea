//! The metrics registry: the proxy's built-in figures (as [`Collect`]ors) and the families a host
//! defines, rendered together on each scrape.
//!
//! A host's update must not take a lock per request: a labelled series is looked up once
//! ([`Family::with`], behind the family's lock) and the [`Series`] it returns is kept by the
//! caller; every update after that is one atomic operation on the series' own cells.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::text::{valid_label_name, valid_metric_name, Exposition, Kind};

/// Something that writes families at scrape time (the built-in figures, pool sizes).
pub trait Collect: Send + Sync + 'static {
    /// Writes this collector's families.
    fn collect(&self, out: &mut Exposition);
}

/// Why a family or a series could not be made or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// A name, a label name, a label count or the buckets are not valid.
    Invalid(String),
    /// The name is taken by a family of another kind, labels or buckets.
    Conflict(String),
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Invalid(m) | MetricError::Conflict(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MetricError {}

/// The prefix of the built-in families; hosts may not define names under it.
pub const BUILTIN_PREFIX: &str = "libproxy_";

/// The families and collectors of one server.
#[derive(Default)]
pub struct Registry {
    families: RwLock<Vec<Arc<Family>>>,
    collectors: RwLock<Vec<Arc<dyn Collect>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("families", &self.families.read().len()).finish()
    }
}

impl Registry {
    /// Adds a collector, rendered on every scrape after those added before it.
    pub fn register(&self, c: Arc<dyn Collect>) {
        self.collectors.write().push(c);
    }

    /// The family `name`, created on first use. Counters get `_total` appended when missing (the
    /// OpenMetrics rule `promtool` checks). Asking again with the same kind, labels and buckets
    /// returns the same family; anything else is a [`MetricError::Conflict`]. `buckets` (upper
    /// bounds, increasing) are for histograms only; empty means Prometheus' default buckets.
    pub fn family(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Result<Arc<Family>, MetricError> {
        let name = match kind {
            Kind::Counter if !name.ends_with("_total") => format!("{name}_total"),
            _ => name.to_string(),
        };
        check_family(kind, &name, labels, buckets)?;
        let bounds: Arc<[f64]> = match (kind, buckets.is_empty()) {
            (Kind::Histogram, true) => DEFAULT_BUCKETS.into(),
            (Kind::Histogram, false) => buckets.into(),
            _ => Arc::new([]),
        };
        let mut families = self.families.write();
        if let Some(f) = families.iter().find(|f| f.name == name) {
            let same = f.kind == kind && f.labels.iter().eq(labels.iter()) && *f.bounds == *bounds;
            return if same {
                Ok(f.clone())
            } else {
                Err(MetricError::Conflict(format!(
                    "metric {name:?} exists with another kind, labels or buckets"
                )))
            };
        }
        let f = Arc::new(Family {
            name,
            help: help.to_string(),
            kind,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            bounds,
            series: Mutex::new(Vec::new()),
        });
        families.push(f.clone());
        Ok(f)
    }

    /// The exposition of every collector, then every host family.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        for c in self.collectors.read().iter() {
            c.collect(&mut out);
        }
        for f in self.families.read().iter() {
            f.render(&mut out);
        }
        out.finish()
    }
}

/// Prometheus' default histogram buckets (seconds).
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn check_family(kind: Kind, name: &str, labels: &[&str], buckets: &[f64]) -> Result<(), MetricError> {
    let invalid = |m: String| Err(MetricError::Invalid(m));
    if !valid_metric_name(name) || name.starts_with(BUILTIN_PREFIX) {
        return invalid(format!("{name:?} is not a metric name a host may define"));
    }
    let reserved = kind == Kind::Histogram && labels.contains(&"le");
    if let Some(l) = labels.iter().find(|l| !valid_label_name(l)).or(reserved.then_some(&"le")) {
        return invalid(format!("{l:?} is not a label name this metric may have"));
    }
    if kind != Kind::Histogram && !buckets.is_empty() {
        return invalid("only histograms have buckets".into());
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) || buckets.iter().any(|b| !b.is_finite()) {
        return invalid("buckets must be finite and increasing".into());
    }
    Ok(())
}

/// A series with its label values.
type Labelled = (Box<[String]>, Arc<Series>);

/// A host-defined metric with its label names; [`Family::with`] gives a series to update.
pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    labels: Box<[String]>,
    bounds: Arc<[f64]>,
    /// In creation order; searched only when a series is looked up, never per update.
    series: Mutex<Vec<Labelled>>,
}

impl fmt::Debug for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family").field("name", &self.name).field("kind", &self.kind).finish()
    }
}

impl Family {
    /// The family's name as exposed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The series for these label values (one per label name, in order), created on first use.
    /// Keep it: updates through it take no lock.
    pub fn with(&self, values: &[&str]) -> Result<Arc<Series>, MetricError> {
        if values.len() != self.labels.len() {
            return Err(MetricError::Invalid(format!(
                "{} takes {} label values, got {}",
                self.name,
                self.labels.len(),
                values.len()
            )));
        }
        let mut series = self.series.lock();
        if let Some((_, s)) = series.iter().find(|(v, _)| v.iter().eq(values.iter())) {
            return Ok(s.clone());
        }
        let cells = match self.kind {
            Kind::Histogram => self.bounds.len() + 2,
            _ => 1,
        };
        let s = Arc::new(Series {
            kind: self.kind,
            bounds: self.bounds.clone(),
            cells: (0..cells).map(|_| AtomicU64::new(0)).collect(),
        });
        series.push((values.iter().map(|v| v.to_string()).collect(), s.clone()));
        Ok(s)
    }

    fn render(&self, out: &mut Exposition) {
        out.family(&self.name, &self.help, self.kind);
        for (values, s) in self.series.lock().iter() {
            let labels: Vec<(&str, &str)> =
                self.labels.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
            match self.kind {
                Kind::Histogram => {
                    let n = self.bounds.len() + 1;
                    let counts: Vec<u64> = s.cells[..n].iter().map(|c| c.load(Ordering::Relaxed)).collect();
                    let sum = f64::from_bits(s.cells[n].load(Ordering::Relaxed));
                    out.histogram(&self.name, &labels, &self.bounds, &counts, sum);
                }
                _ => out.sample(&self.name, &labels, s.value()),
            }
        }
    }
}

/// One labelled series: atomic cells, updated from any thread without a lock.
#[derive(Debug)]
pub struct Series {
    kind: Kind,
    bounds: Arc<[f64]>,
    /// Counter and gauge: the value's `f64` bits. Histogram: a count per bucket (the last for
    /// `+Inf`), then the sum's bits.
    cells: Box<[AtomicU64]>,
}

impl Series {
    /// Adds `v` to a counter (`v` must not be negative) or a gauge.
    pub fn add(&self, v: f64) -> Result<(), MetricError> {
        match self.kind {
            Kind::Counter if v < 0.0 || v.is_nan() => {
                Err(MetricError::Invalid("a counter only goes up".into()))
            }
            Kind::Histogram => Err(MetricError::Invalid("a histogram takes observations".into())),
            _ => {
                add_f64(&self.cells[0], v);
                Ok(())
            }
        }
    }

    /// Sets a gauge to `v`.
    pub fn set(&self, v: f64) -> Result<(), MetricError> {
        match self.kind {
            Kind::Gauge => {
                self.cells[0].store(v.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            _ => Err(MetricError::Invalid("only a gauge can be set".into())),
        }
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, v: f64) -> Result<(), MetricError> {
        if self.kind != Kind::Histogram || v.is_nan() {
            return Err(MetricError::Invalid("only a histogram takes observations (not NaN)".into()));
        }
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.cells[i].fetch_add(1, Ordering::Relaxed);
        add_f64(&self.cells[self.bounds.len() + 1], v);
        Ok(())
    }

    /// The value of a counter or gauge (a histogram's sum).
    pub fn value(&self) -> f64 {
        f64::from_bits(self.cells[self.cells.len() - 1].load(Ordering::Relaxed))
    }
}

/// Adds to an `f64` kept as bits: a compare-and-swap loop, lock-free.
fn add_f64(cell: &AtomicU64, v: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + v).to_bits())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_series_and_rendering() {
        let r = Registry::default();
        let c = r.family(Kind::Counter, "app_hits", "Hits.", &["route"], &[]).unwrap();
        assert_eq!(c.name(), "app_hits_total");
        let a = c.with(&["/a"]).unwrap();
        a.add(2.0).unwrap();
        c.with(&["/a"]).unwrap().add(0.5).unwrap();
        assert!(a.add(-1.0).is_err() && a.set(1.0).is_err());
        assert!(c.with(&[]).is_err());
        // The same definition again is the same family; another one is refused.
        assert!(Arc::ptr_eq(
            &c,
            &r.family(Kind::Counter, "app_hits_total", "Hits.", &["route"], &[]).unwrap()
        ));
        assert!(matches!(
            r.family(Kind::Gauge, "app_hits_total", "x", &[], &[]),
            Err(MetricError::Conflict(_))
        ));
        assert!(r.family(Kind::Gauge, "libproxy_x", "x", &[], &[]).is_err());
        assert!(r.family(Kind::Histogram, "h", "x", &["le"], &[]).is_err());
        assert!(r.family(Kind::Histogram, "h", "x", &[], &[2.0, 1.0]).is_err());
        let h = r.family(Kind::Histogram, "app_seconds", "Time.", &[], &[0.1, 1.0]).unwrap();
        let s = h.with(&[]).unwrap();
        s.observe(0.05).unwrap();
        s.observe(5.0).unwrap();
        let text = r.render();
        assert!(text.contains("app_hits_total{route=\"/a\"} 2.5\n"), "{text}");
        assert!(
            text.contains("app_seconds_bucket{le=\"0.1\"} 1\napp_seconds_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("app_seconds_count 2\n"), "{text}");
    }
}
