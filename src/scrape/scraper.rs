//! The synchronous half of a scrape loop: turning a body into one committed batch.
//!
//! A [`Scraper`] belongs to one target. It keeps a cache from the exact text of a
//! series in the body (`name{labels}`) to a handle on the series in the head, so a
//! steady-state scrape parses each line, looks its text up and appends through the
//! handle: no label parsing, hashing of label sets, lookup of the series in the head or
//! allocation per sample. Series dropped by
//! `metric_relabel_configs` are cached as dropped.
//!
//! Staleness follows Prometheus: a series present in the previous successful scrape
//! and absent from this one gets a staleness marker at this scrape's timestamp; a
//! failed scrape marks every series of the previous scrape stale; when a target goes
//! away, its series and report series are marked stale at the time its next scrape
//! would have happened. Series exposed with an explicit timestamp are not tracked
//! (unless `track_timestamps_staleness` is set).
//!
//! A scrape is all or nothing: a parse error, a limit or a duplicate series rolls the
//! batch back, and only staleness markers and the report series are written.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::cache::{SeriesCache, Slot};
use crate::config::relabel::process;
use crate::config::RelabelConfig;
use crate::db::Db;
use crate::exposition::{Entry, Format, MetricType, Parser};
use crate::head::{AppendError, Appender, SeriesRef};
use crate::model::{Label, Labels, STALE_NAN};

/// FxHash over bytes: the cache key is already a unique text, a cheap hash suffices.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Limits and label handling of one scrape config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeOptions {
    /// Scraped labels win over target labels.
    pub honor_labels: bool,
    /// Use timestamps from the body.
    pub honor_timestamps: bool,
    /// Track staleness of series with explicit timestamps too.
    pub track_timestamps_staleness: bool,
    /// Samples per scrape after relabelling (0 = none).
    pub sample_limit: u64,
    /// Labels per series (0 = none).
    pub label_limit: u64,
    /// Label name length (0 = none).
    pub label_name_length_limit: u64,
    /// Label value length (0 = none).
    pub label_value_length_limit: u64,
    /// `metric_relabel_configs`.
    pub metric_relabel: Arc<Vec<RelabelConfig>>,
}

/// Metadata of a metric family from `# HELP`, `# TYPE` and `# UNIT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricMeta {
    /// The type.
    pub kind: MetricType,
    /// The help text.
    pub help: String,
    /// The unit.
    pub unit: String,
}

/// Counts of one scrape, for the report series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Samples in the body.
    pub scraped: u64,
    /// Samples after metric relabelling.
    pub post_relabel: u64,
    /// Series new to this target's cache.
    pub series_added: u64,
    /// Samples of new series rejected by the head's series limit.
    pub series_limited: u64,
}

/// What one scrape did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeOutcome {
    /// Counts.
    pub counts: ScrapeCounts,
    /// The error that failed the scrape, if any.
    pub error: Option<String>,
    /// A problem that did not fail the scrape (samples the store refused), shown as the
    /// target's last error.
    pub warning: Option<String>,
    /// Staleness markers written.
    pub stale_markers: u64,
}

/// The names of the report series, in the order they are written.
pub const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Per-target scrape state: the series cache, staleness bookkeeping and metadata.
#[derive(Debug)]
pub struct Scraper {
    target_labels: Labels,
    opts: ScrapeOptions,
    cache: SeriesCache,
    /// The head the cache's handles and the report references belong to.
    head_id: u64,
    iter: u64,
    report: [Option<SeriesRef>; 5],
    metadata: FxMap<String, MetricMeta>,
    metadata_changed: bool,
}

const NEVER: u64 = 0;

impl Scraper {
    /// A scraper for a target with these labels (`job`, `instance`, ...).
    pub fn new(target_labels: Labels, opts: ScrapeOptions) -> Self {
        Scraper {
            target_labels,
            opts,
            cache: SeriesCache::default(),
            head_id: 0,
            iter: 2,
            report: [None; 5],
            metadata: FxMap::default(),
            metadata_changed: false,
        }
    }

    /// Changes the options after a reload. Cached label sets depend on them, so a
    /// change empties the cache.
    pub fn set_options(&mut self, target_labels: Labels, opts: ScrapeOptions) {
        if opts != self.opts || target_labels != self.target_labels {
            self.opts = opts;
            self.target_labels = target_labels;
            self.report = [None; 5];
            self.cache.clear();
        }
    }

    /// The metadata seen so far, if it changed since the last call.
    pub fn take_metadata_if_changed(&mut self) -> Option<Vec<(String, MetricMeta)>> {
        if !self.metadata_changed {
            return None;
        }
        self.metadata_changed = false;
        Some(
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Number of cached series (including dropped ones).
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }

    fn meta_entry(&mut self, name: &str) -> Option<&mut MetricMeta> {
        if !self.metadata.contains_key(name) {
            self.metadata
                .insert(name.to_string(), MetricMeta::default());
            self.metadata_changed = true;
        }
        self.metadata.get_mut(name)
    }

    /// Labels of a scraped series after merging target labels and metric relabelling;
    /// `None` when dropped.
    fn sample_labels(&self, raw: &Labels) -> Option<Labels> {
        let mut lb = raw.builder();
        lb.retain(|l| !l.value.is_empty());
        if self.opts.honor_labels {
            for l in self.target_labels.iter() {
                if lb.get(l.name).is_none_or(str::is_empty) {
                    lb.set(l.name, l.value);
                }
            }
        } else {
            let mut conflicts: Vec<Label> = Vec::new();
            for l in self.target_labels.iter() {
                if let Some(v) = lb.get(l.name) {
                    if !v.is_empty() {
                        conflicts.push(Label::new(l.name, v));
                    }
                }
                lb.set(l.name, l.value);
            }
            conflicts.sort_by_key(|l| l.name.len());
            for c in conflicts {
                let mut name = c.name.to_string();
                loop {
                    name = format!("exported_{name}");
                    if lb.get(&name).is_none_or(str::is_empty) {
                        lb.set(&name, &c.value);
                        break;
                    }
                }
            }
        }
        let merged = lb.labels();
        process(&merged, &self.opts.metric_relabel)
    }

    fn check_label_limits(&self, l: &Labels) -> Result<(), String> {
        let name = l.get_or_empty("__name__");
        let o = &self.opts;
        if o.label_limit > 0 && l.len() as u64 > o.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {name:.50}, number of labels: {}, limit: {})",
                l.len(),
                o.label_limit
            ));
        }
        for lab in l.iter() {
            if o.label_name_length_limit > 0 && lab.name.len() as u64 > o.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {name:.50}, label name: {:.50}, length: {}, limit: {})",
                    lab.name,
                    lab.name.len(),
                    o.label_name_length_limit
                ));
            }
            if o.label_value_length_limit > 0 && lab.value.len() as u64 > o.label_value_length_limit
            {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {name:.50}, label name: {:.50}, value: {:.50}, length: {}, limit: {})",
                    lab.name,
                    lab.value,
                    lab.value.len(),
                    o.label_value_length_limit
                ));
            }
        }
        Ok(())
    }

    /// Forgets the cached series and report references when `app` writes to another
    /// head than the one they belong to.
    fn check_head(&mut self, app: &Appender<'_>) {
        let id = app.head_id();
        if id != self.head_id {
            self.head_id = id;
            self.report = [None; 5];
            self.cache.clear();
        }
    }

    /// Appends a sample of a cached series (nothing for a dropped one).
    #[inline]
    fn append_cached(app: &mut Appender<'_>, e: &Slot, t: i64, v: f64) -> Result<(), String> {
        match &e.handle {
            Some(h) => app.append_handle(h, t, v).or_else(ignorable),
            None => Ok(()),
        }
    }

    /// Parses `body` and appends every sample to `app` at default time `t`, then the
    /// staleness markers of series that disappeared. On error the caller must roll
    /// `app` back and call [`Scraper::append_failure`].
    pub fn append_body(
        &mut self,
        app: &mut Appender<'_>,
        body: &[u8],
        format: Format,
        t: i64,
    ) -> Result<ScrapeCounts, (ScrapeCounts, String)> {
        self.check_head(app);
        self.iter += 1;
        let cur = self.iter;
        let mut counts = ScrapeCounts::default();
        let mut parser = Parser::new(body, format);
        self.cache.begin();
        let om = format == Format::OpenMetrics;
        while let Some(entry) = parser.next_entry_hinted(self.cache.expected(om)) {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => return Err((counts, e.to_string())),
            };
            let s = match entry {
                Entry::Series(s) => s,
                Entry::Help { name, text } => {
                    let mut changed = false;
                    if let Some(m) = self.meta_entry(&name) {
                        if m.help != text {
                            m.help = text.into_owned();
                            changed = true;
                        }
                    }
                    self.metadata_changed |= changed;
                    continue;
                }
                Entry::Type { name, kind } => {
                    let mut changed = false;
                    if let Some(m) = self.meta_entry(&name) {
                        if m.kind != kind {
                            m.kind = kind;
                            changed = true;
                        }
                    }
                    self.metadata_changed |= changed;
                    continue;
                }
                Entry::Unit { name, unit } => {
                    let mut changed = false;
                    if let Some(m) = self.meta_entry(&name) {
                        if m.unit != unit {
                            m.unit = unit.to_string();
                            changed = true;
                        }
                    }
                    self.metadata_changed |= changed;
                    continue;
                }
                Entry::Comment(_) | Entry::Eof => continue,
            };
            counts.scraped += 1;
            let (ts, explicit) = match s.timestamp {
                Some(ts) if self.opts.honor_timestamps => (ts, true),
                _ => (t, false),
            };
            let track = !explicit || self.opts.track_timestamps_staleness;
            let key = s.series_text();
            let found = match parser.hint_matched().then(|| self.cache.take_expected()) {
                Some(Some(i)) => Ok(i),
                _ => self.cache.lookup(key),
            };
            let miss = match found {
                Ok(i) => {
                    let Some(e) = self.cache.slot_mut(i) else {
                        continue;
                    };
                    if e.last_iter == cur && e.last_t == ts {
                        let name = String::from_utf8_lossy(key).into_owned();
                        return Err((counts, format!("duplicate sample for timestamp: series {name} appears twice in the scrape")));
                    }
                    if e.last_iter != cur {
                        e.set_prev_seen(e.last_iter == cur - 1);
                    }
                    e.last_iter = cur;
                    e.last_t = ts;
                    e.set_track(track);
                    if e.dropped() {
                        continue;
                    }
                    counts.post_relabel += 1;
                    if self.opts.sample_limit > 0 && counts.post_relabel > self.opts.sample_limit {
                        return Err((counts, "sample limit exceeded".into()));
                    }
                    if let Err(err) = Self::append_cached(app, e, ts, s.value) {
                        return Err((counts, err));
                    }
                    continue;
                }
                Err(m) => m,
            };
            // A series new to this target.
            let raw = match s.to_labels() {
                Ok(l) => l,
                Err(e) => return Err((counts, e.to_string())),
            };
            let series = match self.sample_labels(&raw) {
                None => None,
                Some(l) => {
                    if l.get("__name__").is_none_or(str::is_empty) {
                        return Err((counts, format!("no metric name for series {raw}")));
                    }
                    if let Err(e) = self.check_label_limits(&l) {
                        return Err((counts, e));
                    }
                    counts.post_relabel += 1;
                    if self.opts.sample_limit > 0 && counts.post_relabel > self.opts.sample_limit {
                        return Err((counts, "sample limit exceeded".into()));
                    }
                    match app.append(&l, ts, s.value) {
                        Ok(r) => {
                            counts.series_added += 1;
                            match app.handle(r) {
                                Some(h) => Some(h),
                                // Gone already (cannot happen while the appender holds
                                // it): looked up again next time.
                                None => continue,
                            }
                        }
                        Err(AppendError::InvalidLabels(e)) => {
                            return Err((counts, format!("invalid labels {l}: {e}")))
                        }
                        // The head is full: this sample is dropped, the rest of the
                        // scrape is stored, and the target reports it.
                        Err(AppendError::SeriesLimit { .. }) => {
                            counts.series_limited += 1;
                            continue;
                        }
                        // Out of order or out of bounds: dropped without failing the
                        // scrape; the series is looked up again next time.
                        Err(_) => continue,
                    }
                }
            };
            self.cache.insert(key, miss, series, cur, ts, track, om);
        }
        // Series of the previous scrape that are gone now get a staleness marker;
        // series not seen for two scrapes leave the cache.
        let prev = cur - 1;
        self.cache.sweep(|e| {
            if e.last_iter == prev && e.track() && !e.dropped() {
                let _ = Self::append_cached(app, e, t, STALE_NAN);
            }
            e.last_iter >= prev
        });
        Ok(counts)
    }

    /// After a failed scrape (fetch error, or a body rolled back): marks every series
    /// of the previous successful scrape stale at `t`.
    pub fn append_failure(&mut self, app: &mut Appender<'_>, t: i64, attempted: bool) -> u64 {
        self.check_head(app);
        if !attempted {
            self.iter += 1;
        }
        let cur = self.iter;
        let mut stale = 0u64;
        self.cache.for_each_live(|e| {
            let was_prev = e.last_iter == cur - 1 || (e.last_iter == cur && e.prev_seen());
            if e.last_iter == cur {
                // Touched by the rolled-back attempt: not part of any stored scrape.
                e.last_iter = NEVER;
            }
            if was_prev && e.track() && !e.dropped() {
                let _ = Self::append_cached(app, e, t, STALE_NAN);
                stale += 1;
            }
            if was_prev {
                e.last_iter = NEVER;
            }
        });
        stale
    }

    /// Marks every series of the last scrape and the report series stale at `t`
    /// (the target went away).
    pub fn append_end_of_run(&mut self, app: &mut Appender<'_>, t: i64) {
        self.check_head(app);
        let last = self.iter;
        self.cache.for_each_live(|e| {
            if e.last_iter == last && e.track() && !e.dropped() {
                let _ = Self::append_cached(app, e, t, STALE_NAN);
            }
        });
        for i in 0..REPORT_NAMES.len() {
            self.report_sample(app, i, t, STALE_NAN);
        }
    }

    fn report_sample(&mut self, app: &mut Appender<'_>, i: usize, t: i64, v: f64) {
        let cached = self.report.get(i).copied().flatten();
        if let Some(r) = cached {
            match app.append_ref(r, t, v) {
                Err(AppendError::UnknownRef(_)) => {}
                _ => return,
            }
        }
        let Some(name) = REPORT_NAMES.get(i) else {
            return;
        };
        let mut lb = self.target_labels.builder();
        lb.set("__name__", name);
        if let Ok(r) = app.append(&lb.labels(), t, v) {
            if let Some(slot) = self.report.get_mut(i) {
                *slot = Some(r);
            }
        }
    }

    /// Appends the five report series.
    pub fn append_report(
        &mut self,
        app: &mut Appender<'_>,
        t: i64,
        up: bool,
        duration_s: f64,
        c: ScrapeCounts,
    ) {
        let vals = [
            if up { 1.0 } else { 0.0 },
            duration_s,
            c.scraped as f64,
            c.post_relabel as f64,
            c.series_added as f64,
        ];
        for (i, v) in vals.into_iter().enumerate() {
            self.report_sample(app, i, t, v);
        }
    }

    /// One complete scrape: the body (or the fetch error), staleness and the report
    /// series, committed as one batch.
    pub fn scrape(
        &mut self,
        db: &Db,
        fetched: Result<(&[u8], Format), String>,
        t: i64,
        started: std::time::Instant,
    ) -> ScrapeOutcome {
        let mut app = db.appender();
        let mut out = ScrapeOutcome::default();
        match fetched {
            Ok((body, format)) => match self.append_body(&mut app, body, format, t) {
                Ok(c) => {
                    out.counts = c;
                    if c.series_limited > 0 {
                        out.warning = Some(format!(
                            "{} samples of new series rejected: head series limit of {} \
                             reached (--storage.tsdb.head-series-limit)",
                            c.series_limited,
                            db.options().max_head_series
                        ));
                    }
                }
                Err((c, e)) => {
                    app.rollback();
                    app = db.appender();
                    out.counts = c;
                    out.error = Some(e);
                    out.stale_markers = self.append_failure(&mut app, t, true);
                }
            },
            Err(e) => {
                out.error = Some(e);
                out.stale_markers = self.append_failure(&mut app, t, false);
            }
        }
        let up = out.error.is_none();
        self.append_report(&mut app, t, up, started.elapsed().as_secs_f64(), out.counts);
        if let Err(e) = app.commit() {
            log::error!(target: "aion::scrape", "committing scrape failed err={e}");
            if out.error.is_none() {
                out.error = Some(format!("storing the scrape failed: {e}"));
            }
        }
        out
    }

    /// Writes end-of-run staleness markers and commits.
    pub fn end_of_run(&mut self, db: &Db, t: i64) {
        let mut app = db.appender();
        self.append_end_of_run(&mut app, t);
        if let Err(e) = app.commit() {
            log::error!(target: "aion::scrape", "committing staleness markers failed err={e}");
        }
    }
}

/// Out-of-order, duplicate and out-of-bounds samples are dropped without failing the
/// scrape, as Prometheus does.
fn ignorable(e: AppendError) -> Result<(), String> {
    match e {
        AppendError::InvalidLabels(e) => Err(format!("invalid labels: {e}")),
        _ => Ok(()),
    }
}
