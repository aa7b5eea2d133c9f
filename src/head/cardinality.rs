//! Cardinality statistics of the head, for `/api/v1/status/tsdb`.

use super::Head;
use crate::model::METRIC_NAME;

/// Head statistics and top lists by cardinality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cardinality {
    /// Series in the head.
    pub num_series: u64,
    /// Distinct label name/value pairs.
    pub num_label_pairs: u64,
    /// Chunks held in memory (frozen plus open).
    pub chunk_count: u64,
    /// Oldest sample timestamp (ms), or 0 when empty.
    pub min_time: i64,
    /// Newest sample timestamp (ms), or 0 when empty.
    pub max_time: i64,
    /// Metric names with the most series.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Label names with the most distinct values.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Label names by the bytes their values take (summed over distinct values × series).
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Label pairs (`name=value`) with the most series.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

impl Head {
    /// Computes statistics and the `limit` largest entries of each top list.
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        let stats = self.stats();
        let mut by_name = Vec::new();
        let mut value_counts = Vec::new();
        let mut memory = Vec::new();
        let mut pairs = Vec::new();
        let mut num_pairs = 0u64;
        {
            let postings = self.postings.read();
            let names: Vec<String> = postings.names().map(str::to_string).collect();
            for name in &names {
                let mut distinct = 0u64;
                let mut bytes = 0u64;
                for (value, bm) in postings.values(name) {
                    let n = bm.len();
                    distinct += 1;
                    bytes += value.len() as u64 * n;
                    pairs.push((format!("{name}={value}"), n));
                    if name == METRIC_NAME {
                        by_name.push((value.to_string(), n));
                    }
                }
                num_pairs += distinct;
                value_counts.push((name.clone(), distinct));
                memory.push((name.clone(), bytes));
            }
        }
        let mut chunk_count = 0u64;
        let ids: Vec<u32> = self.postings.read().all().iter().collect();
        for id in ids {
            if let Some(s) = self.series_by_ref(u64::from(id)) {
                chunk_count += s.data.lock().num_chunks() as u64;
            }
        }
        Cardinality {
            num_series: stats.num_series,
            num_label_pairs: num_pairs,
            chunk_count,
            min_time: stats.min_time.unwrap_or(0),
            max_time: stats.max_time.unwrap_or(0),
            series_count_by_metric_name: top(by_name, limit),
            label_value_count_by_label_name: top(value_counts, limit),
            memory_in_bytes_by_label_name: top(memory, limit),
            series_count_by_label_value_pair: top(pairs, limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadOptions;
    use crate::model::Labels;

    #[test]
    fn counts_series_by_name_and_pairs() {
        let head = Head::new(HeadOptions::default());
        let mut app = head.appender();
        for (name, job) in [("a", "x"), ("a", "y"), ("b", "x")] {
            let l = Labels::from_pairs(&[("__name__", name), ("job", job)]);
            app.append(&l, 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let c = head.cardinality(10);
        assert_eq!(c.num_series, 3);
        assert_eq!(
            c.series_count_by_metric_name,
            vec![("a".to_string(), 2), ("b".to_string(), 1)]
        );
        assert_eq!(c.num_label_pairs, 4);
        assert_eq!(c.chunk_count, 3);
        assert_eq!(
            c.series_count_by_label_value_pair.get(..2),
            Some(&[("__name__=a".to_string(), 2), ("job=x".to_string(), 2)][..])
        );
    }
}
