//! Scraping: targets from `scrape_configs` (static, file, HTTP and DNS discovery, relabelled),
//! one loop per target fetching the exposition over HTTP, parsing it without copying,
//! and committing each scrape as one batch with the synthetic series `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added`, and with
//! staleness markers written exactly when Prometheus writes them.
//!
//! * [`target`]: discovered label sets → relabelled targets (labels, URL, interval).
//! * [`client`]: the HTTP request (headers, auth, timeout, gzip, body size limit).
//! * [`tls`], [`proxy`], [`oauth2`]: `tls_config`, proxies and OAuth 2 of the client.
//! * [`http_sd`], [`dns_sd`]: HTTP and DNS service discovery.
//! * [`scraper`]: the synchronous per-target state: series cache, staleness, report.
//! * [`manager`]: pools, loops, reloads, and the targets/metadata snapshot.

mod cache;
pub mod client;
pub mod dns_sd;
pub mod http_sd;
pub mod manager;
pub mod oauth2;
pub mod proxy;
pub mod scraper;
pub mod target;
pub mod tls;

pub use manager::{ActiveTarget, Health, ScrapeManager, TargetStatus, TargetsSnapshot};
pub use scraper::{MetricMeta, ScrapeCounts, ScrapeOptions, Scraper};
pub use target::{Target, TargetGroup};

#[cfg(test)]
mod tests;
