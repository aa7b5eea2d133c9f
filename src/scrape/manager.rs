//! Scrape pools (one per `scrape_configs` entry), one loop per target, target
//! discovery (static, file and HTTP), `target_limit`, reloads that keep unchanged targets running, and the
//! state behind `/api/v1/targets` and the metadata endpoints.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::{HttpClient, ScrapeClient, ScrapeUrl};
use super::scraper::{MetricMeta, ScrapeOptions, Scraper};
use super::target::{
    glob_files, read_sd_file, targets_from_groups, DroppedTarget, Target, TargetGroup,
};
use crate::config::{Config, ScrapeConfig};
use crate::db::Db;
use crate::wal::FsyncPolicy;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Health of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl Health {
    /// As `/api/v1/targets` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The last scrape of a target.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    /// Health.
    pub health: Health,
    /// Error of the last scrape (empty when it succeeded).
    pub last_error: String,
    /// Unix ms of the last scrape (0 before the first).
    pub last_scrape_ms: i64,
    /// Seconds the last scrape took.
    pub last_duration_s: f64,
    /// Metric metadata seen on this target, by family name.
    pub metadata: Arc<BTreeMap<String, MetricMeta>>,
}

/// An active target as `/api/v1/targets` shows it.
#[derive(Debug, Clone)]
pub struct ActiveTarget {
    /// The pool (job name).
    pub pool: String,
    /// The target.
    pub target: Target,
    /// Its last scrape.
    pub status: TargetStatus,
}

/// A snapshot of every pool's targets.
#[derive(Debug, Clone, Default)]
pub struct TargetsSnapshot {
    /// Active targets, by pool then by labels.
    pub active: Vec<ActiveTarget>,
    /// Dropped targets (pool, labels).
    pub dropped: Vec<(String, DroppedTarget)>,
    /// Dropped targets per pool (including ones not kept).
    pub dropped_counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Stop; write end-of-run staleness markers (the target went away).
    Gone,
    /// Stop without markers (reload or shutdown).
    Quiet,
}

struct LoopHandle {
    target: Target,
    status: Arc<Mutex<TargetStatus>>,
    stop: watch::Sender<Stop>,
    join: JoinHandle<Scraper>,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    /// The HTTP client of the pool's scrapes (shared token cache and TLS settings).
    client: Arc<HttpClient>,
    loops: HashMap<u64, LoopHandle>,
    dropped: Vec<DroppedTarget>,
    dropped_count: usize,
    /// Discovery refresh tasks (file and HTTP).
    refreshers: Vec<JoinHandle<()>>,
    static_groups: Vec<TargetGroup>,
    file_groups: Vec<TargetGroup>,
    /// Last good answer of each `http_sd_configs` entry.
    http_groups: BTreeMap<usize, Vec<TargetGroup>>,
    /// Last groups of each `dns_sd_configs` entry (a name that fails keeps its group).
    dns_groups: BTreeMap<usize, Vec<TargetGroup>>,
    /// The error every scrape of the pool fails with (`target_limit` exceeded).
    forced: Arc<Mutex<Option<String>>>,
}

impl Pool {
    fn groups(&self) -> Vec<TargetGroup> {
        let mut g = self.static_groups.clone();
        g.extend(self.file_groups.iter().cloned());
        for hg in self.http_groups.values().chain(self.dns_groups.values()) {
            g.extend(hg.iter().cloned());
        }
        g
    }

    fn stop_refreshers(&mut self) {
        for r in self.refreshers.drain(..) {
            r.abort();
        }
    }
}

/// Runs all scrape loops.
pub struct ScrapeManager {
    db: Arc<Db>,
    pools: tokio::sync::Mutex<BTreeMap<String, Pool>>,
    snapshot: Mutex<Vec<PoolSnapshot>>,
    this: std::sync::Weak<ScrapeManager>,
    shutdown: watch::Sender<bool>,
}

type PoolSnapshot = (
    String,
    Vec<(Target, Arc<Mutex<TargetStatus>>)>,
    Vec<DroppedTarget>,
    usize,
);

impl std::fmt::Debug for ScrapeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager").finish_non_exhaustive()
    }
}

fn options(cfg: &ScrapeConfig) -> ScrapeOptions {
    ScrapeOptions {
        honor_labels: cfg.honor_labels,
        honor_timestamps: cfg.honor_timestamps,
        track_timestamps_staleness: cfg.track_timestamps_staleness,
        sample_limit: cfg.sample_limit.unwrap_or(0),
        label_limit: cfg.label_limit.unwrap_or(0),
        label_name_length_limit: cfg.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: cfg.label_value_length_limit.unwrap_or(0),
        metric_relabel: Arc::new(cfg.metric_relabel_configs.clone()),
    }
}

fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    cfg.static_configs
        .iter()
        .map(|s| TargetGroup {
            targets: s.targets.clone(),
            labels: s.labels.clone(),
            source: "static".into(),
            ..Default::default()
        })
        .collect()
}

fn file_groups(cfg: &ScrapeConfig, base: &std::path::Path) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for f in &cfg.file_sd_configs {
        for pattern in &f.files {
            let p = std::path::Path::new(pattern);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            for file in glob_files(&p) {
                match read_sd_file(&file) {
                    Ok(g) => out.extend(g),
                    Err(e) => {
                        log::error!(target: "aion::discovery", "error reading file discovery file err={e:?}")
                    }
                }
            }
        }
    }
    out
}

/// The offset of a target's scrapes within the interval: a stable hash of the target,
/// so restarts and reloads keep each target's phase.
fn offset_ms(hash: u64, interval_ms: i64, now: i64) -> u64 {
    let iv = interval_ms.max(1) as u64;
    let base = iv - (now.rem_euclid(iv as i64) as u64);
    let off = hash % iv;
    let next = base + off;
    if next >= iv {
        next - iv
    } else {
        next
    }
}

impl ScrapeManager {
    /// A manager storing into `db`, with no pools yet.
    pub fn new(db: Arc<Db>) -> Arc<ScrapeManager> {
        Arc::new_cyclic(|w| ScrapeManager {
            db,
            pools: tokio::sync::Mutex::new(BTreeMap::new()),
            snapshot: Mutex::new(Vec::new()),
            this: w.clone(),
            shutdown: watch::channel(false).0,
        })
    }

    /// Applies a configuration: new pools start, removed ones stop (their series are
    /// marked stale), unchanged targets keep running with their state.
    pub async fn apply_config(&self, cfg: &Config) {
        let mut pools = self.pools.lock().await;
        let wanted: HashMap<&str, &ScrapeConfig> = cfg
            .scrape_configs
            .iter()
            .map(|c| (c.job_name.as_str(), c))
            .collect();
        let gone: Vec<String> = pools
            .keys()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut p) = pools.remove(&name) {
                p.stop_refreshers();
                for (_, h) in p.loops.drain() {
                    let _ = h.stop.send(Stop::Gone);
                }
            }
        }
        for sc in &cfg.scrape_configs {
            let sc_arc = Arc::new(sc.clone());
            let pool = pools.entry(sc.job_name.clone()).or_insert_with(|| Pool {
                cfg: sc_arc.clone(),
                client: HttpClient::new(sc.http_client()),
                loops: HashMap::new(),
                dropped: Vec::new(),
                dropped_count: 0,
                refreshers: Vec::new(),
                static_groups: Vec::new(),
                file_groups: Vec::new(),
                http_groups: BTreeMap::new(),
                dns_groups: BTreeMap::new(),
                forced: Arc::new(Mutex::new(None)),
            });
            pool.stop_refreshers();
            if pool.cfg.http_sd_configs != sc.http_sd_configs {
                pool.http_groups.clear();
            }
            if pool.cfg.dns_sd_configs != sc.dns_sd_configs {
                pool.dns_groups.clear();
            }
            pool.static_groups = static_groups(sc);
            pool.file_groups = file_groups(sc, &cfg.base_dir);
            let groups = pool.groups();
            let changed = *pool.cfg != *sc;
            if changed {
                // Settings changed: every loop restarts with the new settings, keeping
                // its cache and without staleness markers.
                pool.cfg = sc_arc.clone();
                pool.client = HttpClient::new(sc.http_client());
                let old: Vec<(u64, LoopHandle)> = pool.loops.drain().collect();
                let mut scrapers = HashMap::new();
                for (h, l) in old {
                    let _ = l.stop.send(Stop::Quiet);
                    if let Ok(s) = l.join.await {
                        scrapers.insert(h, (s, l.status));
                    }
                }
                self.sync_pool(pool, &groups, scrapers);
            } else {
                self.sync_pool(pool, &groups, HashMap::new());
            }
            if !sc.file_sd_configs.is_empty() {
                let refresh = sc
                    .file_sd_configs
                    .iter()
                    .map(|f| f.refresh_interval.std())
                    .min()
                    .unwrap_or(Duration::from_secs(300))
                    .max(Duration::from_millis(100));
                let me = self.this.clone();
                let job = sc.job_name.clone();
                let base = cfg.base_dir.clone();
                pool.refreshers.push(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(refresh).await;
                        let Some(m) = me.upgrade() else { return };
                        m.refresh_files(&job, &base).await;
                    }
                }));
            }
            self.spawn_dns(pool, sc);
            for (i, h) in sc.http_sd_configs.iter().enumerate() {
                let me = self.this.clone();
                let job = sc.job_name.clone();
                let hcfg = h.clone();
                let client = HttpClient::new(h.http_client());
                let refresh = h.refresh_interval.std().max(Duration::from_millis(100));
                pool.refreshers.push(tokio::spawn(async move {
                    loop {
                        let res = super::http_sd::fetch(&client, &hcfg).await;
                        let Some(m) = me.upgrade() else { return };
                        match res {
                            Ok(groups) => m.refresh_http(&job, i, groups).await,
                            Err(e) => {
                                log::error!(target: "aion::discovery", "Unable to refresh target groups discovery=http config={job} err={e:?}")
                            }
                        }
                        drop(m);
                        tokio::time::sleep(refresh).await;
                    }
                }));
            }
        }
        self.publish(&pools);
    }

    fn spawn_dns(&self, pool: &mut Pool, sc: &ScrapeConfig) {
        for (i, d) in sc.dns_sd_configs.iter().enumerate() {
            let me = self.this.clone();
            let job = sc.job_name.clone();
            let dcfg = d.clone();
            let refresh = d.refresh_interval.std().max(Duration::from_millis(100));
            pool.refreshers.push(tokio::spawn(async move {
                loop {
                    let resolver = super::dns_sd::Resolver::from_system();
                    let (groups, failed) = super::dns_sd::discover(&resolver, &dcfg).await;
                    let Some(m) = me.upgrade() else { return };
                    for (name, e) in &failed {
                        log::error!(target: "aion::discovery", "Error refreshing DNS targets discovery=dns config={job} name={name} err={e:?}");
                    }
                    let failed: Vec<String> = failed.into_iter().map(|(n, _)| n).collect();
                    m.refresh_dns(&job, i, groups, &failed).await;
                    drop(m);
                    tokio::time::sleep(refresh).await;
                }
            }));
        }
    }

    async fn refresh_dns(
        &self,
        job: &str,
        index: usize,
        mut found: Vec<TargetGroup>,
        failed: &[String],
    ) {
        let mut pools = self.pools.lock().await;
        let Some(pool) = pools.get_mut(job) else {
            return;
        };
        if let Some(old) = pool.dns_groups.get(&index) {
            found.extend(old.iter().filter(|g| failed.contains(&g.source)).cloned());
        }
        found.sort_by(|a, b| a.source.cmp(&b.source));
        if pool.dns_groups.get(&index) == Some(&found) {
            return;
        }
        pool.dns_groups.insert(index, found);
        let groups = pool.groups();
        self.sync_pool(pool, &groups, HashMap::new());
        self.publish(&pools);
    }

    async fn refresh_files(&self, job: &str, base: &std::path::Path) {
        let mut pools = self.pools.lock().await;
        let Some(pool) = pools.get_mut(job) else {
            return;
        };
        let files = file_groups(&pool.cfg, base);
        if files == pool.file_groups {
            return;
        }
        pool.file_groups = files;
        let groups = pool.groups();
        self.sync_pool(pool, &groups, HashMap::new());
        self.publish(&pools);
    }

    async fn refresh_http(&self, job: &str, index: usize, found: Vec<TargetGroup>) {
        let mut pools = self.pools.lock().await;
        let Some(pool) = pools.get_mut(job) else {
            return;
        };
        if pool.http_groups.get(&index) == Some(&found) {
            return;
        }
        pool.http_groups.insert(index, found);
        let groups = pool.groups();
        self.sync_pool(pool, &groups, HashMap::new());
        self.publish(&pools);
    }

    fn sync_pool(
        &self,
        pool: &mut Pool,
        groups: &[TargetGroup],
        mut reuse: HashMap<u64, (Scraper, Arc<Mutex<TargetStatus>>)>,
    ) {
        let (active, dropped) = targets_from_groups(&pool.cfg, groups);
        for (d, err) in &dropped {
            if let Some(e) = err {
                log::warn!(target: "aion::scrape", "dropping invalid target scrape_pool={} labels={} err={e}", pool.cfg.job_name, d.discovered);
            }
        }
        let keep = pool.cfg.keep_dropped_targets.unwrap_or(0) as usize;
        pool.dropped_count = dropped.len();
        pool.dropped = dropped
            .into_iter()
            .map(|(d, _)| d)
            .take(if keep == 0 { usize::MAX } else { keep })
            .collect();
        let limit = pool.cfg.target_limit.unwrap_or(0) as usize;
        let mut wanted: HashMap<u64, Target> = HashMap::new();
        for t in active {
            wanted.entry(t.hash()).or_insert(t);
        }
        // As Prometheus: over the limit, every target of the pool stays but each scrape
        // fails with the same error (`up` 0, earlier series marked stale).
        let forced = (limit > 0 && wanted.len() > limit).then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                wanted.len()
            )
        });
        if let Some(e) = &forced {
            log::error!(target: "aion::scrape", "scrape pool over its target limit scrape_pool={} err={e}", pool.cfg.job_name);
        }
        *pool.forced.lock() = forced;
        let gone: Vec<u64> = pool
            .loops
            .keys()
            .filter(|h| !wanted.contains_key(h))
            .copied()
            .collect();
        for h in gone {
            if let Some(l) = pool.loops.remove(&h) {
                let _ = l.stop.send(Stop::Gone);
            }
        }
        for (h, t) in wanted {
            if pool.loops.contains_key(&h) {
                continue;
            }
            let (scraper, status) = match reuse.remove(&h) {
                Some((mut s, st)) => {
                    s.set_options(t.labels.clone(), options(&pool.cfg));
                    (s, st)
                }
                None => (
                    Scraper::new(t.labels.clone(), options(&pool.cfg)),
                    Arc::new(Mutex::new(TargetStatus::default())),
                ),
            };
            let (tx, rx) = watch::channel(Stop::Run);
            let ctx = LoopCtx {
                db: self.db.clone(),
                target: t.clone(),
                cfg: pool.cfg.clone(),
                client: pool.client.clone(),
                forced: pool.forced.clone(),
                status: status.clone(),
                hash: h,
                shutdown: self.shutdown.subscribe(),
            };
            let join = tokio::spawn(run_loop(ctx, scraper, rx));
            pool.loops.insert(
                h,
                LoopHandle {
                    target: t,
                    status,
                    stop: tx,
                    join,
                },
            );
        }
    }

    fn publish(&self, pools: &BTreeMap<String, Pool>) {
        let mut snap = Vec::new();
        for (name, p) in pools {
            let mut ts: Vec<(Target, Arc<Mutex<TargetStatus>>)> = p
                .loops
                .values()
                .map(|l| (l.target.clone(), l.status.clone()))
                .collect();
            ts.sort_by(|a, b| a.0.labels.cmp(&b.0.labels));
            snap.push((name.clone(), ts, p.dropped.clone(), p.dropped_count));
        }
        *self.snapshot.lock() = snap;
    }

    /// Every pool's targets and their last scrape.
    pub fn targets(&self) -> TargetsSnapshot {
        let snap = self.snapshot.lock().clone();
        let mut out = TargetsSnapshot::default();
        for (pool, ts, dropped, count) in snap {
            for (t, st) in ts {
                out.active.push(ActiveTarget {
                    pool: pool.clone(),
                    target: t,
                    status: st.lock().clone(),
                });
            }
            for d in dropped {
                out.dropped.push((pool.clone(), d));
            }
            out.dropped_counts.insert(pool, count);
        }
        out
    }

    /// Stops every loop without staleness markers (shutdown) and waits for them.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let mut pools = self.pools.lock().await;
        for (_, mut p) in std::mem::take(&mut *pools) {
            p.stop_refreshers();
            for (_, l) in p.loops.drain() {
                let _ = l.stop.send(Stop::Quiet);
                let _ = l.join.await;
            }
        }
        self.snapshot.lock().clear();
    }
}

struct LoopCtx {
    db: Arc<Db>,
    target: Target,
    cfg: Arc<ScrapeConfig>,
    client: Arc<HttpClient>,
    forced: Arc<Mutex<Option<String>>>,
    status: Arc<Mutex<TargetStatus>>,
    hash: u64,
    shutdown: watch::Receiver<bool>,
}

async fn wait_or_stop(rx: &mut watch::Receiver<Stop>, d: Duration) -> Option<Stop> {
    if *rx.borrow() != Stop::Run {
        return Some(*rx.borrow());
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => None,
        r = rx.changed() => Some(match r {
            Ok(()) => *rx.borrow(),
            Err(_) => Stop::Quiet,
        }),
    }
}

/// Scrapes of targets with up to [`INLINE_SERIES_MAX`] cached series and a body of up
/// to [`INLINE_BODY_MAX`] bytes are parsed and stored on the scrape loop's own thread
/// (such a steady-state scrape takes a few milliseconds of CPU at most): handing them
/// to a blocking thread and back costs two thread wake-ups per scrape, several percent
/// of the CPU a small scrape needs. Larger scrapes and first scrapes (which create
/// series) go to a blocking thread, and so does every scrape when each WAL write waits
/// for an fsync.
const INLINE_BODY_MAX: usize = 512 << 10;

/// See [`INLINE_BODY_MAX`].
const INLINE_SERIES_MAX: usize = 10_000;

async fn run_loop(ctx: LoopCtx, scraper: Scraper, mut rx: watch::Receiver<Stop>) -> Scraper {
    let interval = ctx.target.interval.std().max(Duration::from_millis(1));
    let timeout = ctx.target.timeout.std();
    let mut scraper = Some(scraper);
    let url = ScrapeUrl::parse(&ctx.target.url);
    let mut client = ScrapeClient::new(ctx.client.clone());
    let limit = ctx.cfg.body_size_limit.map(|b| b.0).unwrap_or(0);
    let first = offset_ms(ctx.hash, ctx.target.interval.ms(), now_ms());
    let mut stop = wait_or_stop(&mut rx, Duration::from_millis(first)).await;
    let mut next = tokio::time::Instant::now();
    let mut last_t: Option<i64> = None;
    while stop.is_none() {
        let started = Instant::now();
        let t = now_ms();
        let forced = ctx.forced.lock().clone();
        let fetched = match (&url, forced) {
            (_, Some(e)) => Err(e),
            (Ok(u), None) => client.fetch(u, timeout, limit).await,
            (Err(e), None) => Err(e.clone()),
        };
        let db = ctx.db.clone();
        let Some(mut s) = scraper.take() else { break };
        let cached = s.cached_series();
        let inline = cached > 0
            && cached <= INLINE_SERIES_MAX
            && fetched
                .as_ref()
                .map_or(true, |f| f.body.len() <= INLINE_BODY_MAX)
            && !matches!(db.options().wal.fsync, FsyncPolicy::Always);
        let work = move || {
            let out = match &fetched {
                Ok(f) => s.scrape(&db, Ok((f.body.as_slice(), f.format)), t, started),
                Err(e) => s.scrape(&db, Err(e.clone()), t, started),
            };
            let meta = s.take_metadata_if_changed();
            (s, out, meta, fetched)
        };
        let res = if inline {
            Ok(work())
        } else {
            tokio::task::spawn_blocking(work).await
        };
        let (s, out, meta, fetched) = match res {
            Ok(r) => r,
            Err(e) => {
                log::error!(target: "aion::scrape", "scrape task failed err={e}");
                return Scraper::new(ctx.target.labels.clone(), ScrapeOptions::default());
            }
        };
        scraper = Some(s);
        if let Ok(f) = fetched {
            client.recycle(f.body);
        }
        last_t = Some(t);
        {
            let mut st = ctx.status.lock();
            st.health = if out.error.is_none() {
                Health::Up
            } else {
                Health::Down
            };
            st.last_error = out
                .error
                .clone()
                .or_else(|| out.warning.clone())
                .unwrap_or_default();
            st.last_scrape_ms = t;
            st.last_duration_s = started.elapsed().as_secs_f64();
            if let Some(m) = meta {
                st.metadata = Arc::new(m.into_iter().collect());
            }
        }
        if let Some(e) = &out.error {
            log::debug!(target: "aion::scrape", "scrape failed scrape_pool={} target={} err={e}", ctx.cfg.job_name, ctx.target.url);
        }
        if let Some(w) = &out.warning {
            log::warn!(target: "aion::scrape", "samples rejected scrape_pool={} target={} err={w}", ctx.cfg.job_name, ctx.target.url);
        }
        next += interval;
        let now = tokio::time::Instant::now();
        while next <= now {
            next += interval;
        }
        stop = wait_or_stop(&mut rx, next - now).await;
    }
    let mut s = scraper
        .unwrap_or_else(|| Scraper::new(ctx.target.labels.clone(), ScrapeOptions::default()));
    if stop == Some(Stop::Gone) {
        if let Some(last) = last_t {
            // Wait until the next scrape would have happened, then one more interval
            // (plus 10%) so a re-created target has written its samples, then mark
            // everything stale at the time of that missed scrape.
            let iv = ctx.target.interval.ms();
            let stale_t = last + iv;
            let wait_until = last + 2 * iv + iv / 10;
            let d = (wait_until - now_ms()).max(0) as u64;
            let mut shutdown = ctx.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(d)) => {}
                _ = shutdown.changed() => return s,
            }
            let db = ctx.db.clone();
            s = match tokio::task::spawn_blocking(move || {
                s.end_of_run(&db, stale_t);
                s
            })
            .await
            {
                Ok(s) => s,
                Err(_) => Scraper::new(ctx.target.labels.clone(), ScrapeOptions::default()),
            };
        }
    }
    s
}
