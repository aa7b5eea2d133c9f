//! Aion's own metrics: a small registry of counters, gauges and histograms rendered in the
//! Prometheus text exposition format, with Prometheus's metric names where the meaning is
//! the same so existing dashboards and alerts keep working.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::model::{Label, Labels};

/// Default latency buckets (seconds), as Prometheus's HTTP duration histogram uses.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A float stored in an atomic.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    /// Adds `v`.
    pub fn add(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(x) => cur = x,
            }
        }
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Reads the value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Debug)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// A summary without quantiles: `_sum` and `_count` only.
    Summary,
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    bounds: &'static [f64],
    values: BTreeMap<Vec<(String, String)>, f64>,
    histograms: BTreeMap<Vec<(String, String)>, Histogram>,
}

/// A registry of metric families keyed by name.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

fn key(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut k: Vec<_> = labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    k.sort();
    k
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_family(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        bounds: &'static [f64],
        f: impl FnOnce(&mut Family),
    ) {
        let mut fams = self.families.lock();
        let fam = fams.entry(name).or_insert_with(|| Family {
            help,
            kind,
            bounds,
            values: BTreeMap::new(),
            histograms: BTreeMap::new(),
        });
        f(fam);
    }

    /// Adds `v` to a counter.
    pub fn counter_add(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.with_family(name, help, Kind::Counter, &[], |f| {
            *f.values.entry(key(labels)).or_insert(0.0) += v;
        });
    }

    /// Sets a counter to an absolute value taken from elsewhere (e.g. storage stats).
    pub fn counter_set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.with_family(name, help, Kind::Counter, &[], |f| {
            f.values.insert(key(labels), v);
        });
    }

    /// Sets a gauge.
    pub fn gauge_set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.with_family(name, help, Kind::Gauge, &[], |f| {
            f.values.insert(key(labels), v);
        });
    }

    /// Sets a summary (without quantiles) to a sum and count taken from elsewhere.
    pub fn summary_set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        sum: f64,
        count: u64,
    ) {
        self.with_family(name, help, Kind::Summary, &[], |f| {
            f.histograms.insert(
                key(labels),
                Histogram {
                    buckets: Vec::new(),
                    count,
                    sum,
                },
            );
        });
    }

    /// Records an observation in a histogram with the given bucket bounds.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        labels: &[(&str, &str)],
        v: f64,
    ) {
        self.with_family(name, help, Kind::Histogram, bounds, |f| {
            let h = f
                .histograms
                .entry(key(labels))
                .or_insert_with(|| Histogram {
                    buckets: vec![0; bounds.len()],
                    count: 0,
                    sum: 0.0,
                });
            for (i, b) in bounds.iter().enumerate() {
                if v <= *b {
                    if let Some(c) = h.buckets.get_mut(i) {
                        *c += 1;
                    }
                }
            }
            h.count += 1;
            h.sum += v;
        });
    }

    /// Every sample as `(labels incl. __name__, value)`, for storing in-process.
    pub fn samples(&self) -> Vec<(Labels, f64)> {
        let mut out = Vec::new();
        let fams = self.families.lock();
        for (name, fam) in fams.iter() {
            let mk = |suffix: &str, k: &[(String, String)], extra: Option<(&str, String)>| {
                let mut ls: Vec<Label> = k
                    .iter()
                    .map(|(n, v)| Label::new(n.clone(), v.clone()))
                    .collect();
                ls.push(Label::new("__name__", format!("{name}{suffix}")));
                if let Some((n, v)) = extra {
                    ls.push(Label::new(n, v));
                }
                Labels::new(ls)
            };
            for (k, v) in &fam.values {
                out.push((mk("", k, None), *v));
            }
            for (k, h) in &fam.histograms {
                for (b, c) in fam.bounds.iter().zip(&h.buckets) {
                    out.push((
                        mk(
                            "_bucket",
                            k,
                            Some(("le", crate::api::json::format_float(*b))),
                        ),
                        *c as f64,
                    ));
                }
                if fam.kind == Kind::Histogram {
                    out.push((
                        mk("_bucket", k, Some(("le", "+Inf".into()))),
                        h.count as f64,
                    ));
                }
                out.push((mk("_sum", k, None), h.sum));
                out.push((mk("_count", k, None), h.count as f64));
            }
        }
        out
    }

    /// Renders the text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let fams = self.families.lock();
        for (name, fam) in fams.iter() {
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
                Kind::Summary => "summary",
            };
            let _ = writeln!(out, "# HELP {name} {}", fam.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (k, v) in &fam.values {
                let _ = writeln!(
                    out,
                    "{name}{} {}",
                    render_labels(k, None),
                    crate::api::json::format_float(*v)
                );
            }
            for (k, h) in &fam.histograms {
                for (b, c) in fam.bounds.iter().zip(&h.buckets) {
                    let le = crate::api::json::format_float(*b);
                    let _ = writeln!(out, "{name}_bucket{} {c}", render_labels(k, Some(&le)));
                }
                if fam.kind == Kind::Histogram {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(k, Some("+Inf")),
                        h.count
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_sum{} {}",
                    render_labels(k, None),
                    crate::api::json::format_float(h.sum)
                );
                let _ = writeln!(out, "{name}_count{} {}", render_labels(k, None), h.count);
            }
        }
        out
    }
}

fn render_labels(k: &[(String, String)], le: Option<&str>) -> String {
    if k.is_empty() && le.is_none() {
        return String::new();
    }
    let mut s = String::from("{");
    let mut first = true;
    let mut push = |n: &str, v: &str| {
        if !first {
            s.push(',');
        }
        first = false;
        let esc = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{n}=\"{esc}\"");
    };
    for (n, v) in k {
        push(n, v);
    }
    if let Some(le) = le {
        push("le", le);
    }
    s.push('}');
    s
}

/// Process statistics read from `/proc/self` (Linux); missing values are skipped.
pub fn update_process_metrics(reg: &Registry, start_time_secs: f64) {
    reg.gauge_set(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[],
        start_time_secs,
    );
    // CLK_TCK is 100 on the Linux platforms Aion targets.
    let ticks = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may contain spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
            if let (Some(u), Some(s)) = (num(11), num(12)) {
                reg.counter_set(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    &[],
                    (u + s) / ticks,
                );
            }
            if let Some(vsize) = num(20) {
                reg.gauge_set(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    &[],
                    vsize,
                );
            }
            if let Some(rss) = num(21) {
                reg.gauge_set(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    &[],
                    rss * 4096.0,
                );
            }
        }
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        reg.gauge_set(
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            d.count() as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_renders_sum_and_count_only() {
        let r = Registry::new();
        r.summary_set("x_seconds", "X.", &[], 1.5, 3);
        assert_eq!(
            r.render(),
            "# HELP x_seconds X.\n# TYPE x_seconds summary\nx_seconds_sum 1.5\nx_seconds_count 3\n"
        );
        assert_eq!(r.samples().len(), 2);
    }

    #[test]
    fn renders_exposition() {
        let r = Registry::new();
        r.counter_add("x_total", "Help.", &[("code", "200")], 2.0);
        r.observe("d_seconds", "Dur.", &[0.1, 1.0], &[("h", "q")], 0.5);
        let s = r.render();
        assert!(
            s.contains("# TYPE x_total counter\nx_total{code=\"200\"} 2\n"),
            "{s}"
        );
        assert!(
            s.contains("d_seconds_bucket{h=\"q\",le=\"0.1\"} 0\n"),
            "{s}"
        );
        assert!(s.contains("d_seconds_bucket{h=\"q\",le=\"1\"} 1\n"), "{s}");
        assert!(
            s.contains("d_seconds_bucket{h=\"q\",le=\"+Inf\"} 1\n"),
            "{s}"
        );
        assert!(s.contains("d_seconds_count{h=\"q\"} 1\n"), "{s}");
        assert_eq!(r.samples().len(), 1 + 3 + 2);
    }
}
