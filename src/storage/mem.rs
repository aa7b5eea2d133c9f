//! A simple in-memory store: the reference implementation of the query contract, used by
//! tests, the PromQL script runner and anyone who wants PromQL over data they hold.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Querier, Queryable, Series, SeriesChunk, StorageError};
use crate::model::{Labels, Matcher, Sample, Timestamp};

/// An in-memory series store with no durability.
#[derive(Debug, Default)]
pub struct MemStorage {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample, keeping each series sorted by time (a sample at an existing
    /// timestamp replaces the old one).
    pub fn add(&self, labels: &Labels, s: Sample) {
        let mut map = self.series.write();
        let v = map.entry(labels.clone()).or_default();
        match v.last() {
            Some(last) if last.t < s.t => v.push(s),
            None => v.push(s),
            Some(_) => match v.binary_search_by(|x| x.t.cmp(&s.t)) {
                Ok(i) => {
                    if let Some(slot) = v.get_mut(i) {
                        *slot = s;
                    }
                }
                Err(i) => v.insert(i, s),
            },
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.series.write().clear();
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.series.read().len()
    }

    fn matching(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<Series> {
        let map = self.series.read();
        map.iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches(l.get_or_empty(&m.name))))
            .filter_map(|(l, s)| {
                let start = s.partition_point(|x| x.t < mint);
                let end = s.partition_point(|x| x.t <= maxt);
                let part = s.get(start..end)?;
                if part.is_empty() {
                    return None;
                }
                Some(Series::new(
                    l.clone(),
                    vec![SeriesChunk::Decoded(Arc::from(part))],
                    mint,
                    maxt,
                ))
            })
            .collect()
    }
}

struct MemQuerier<'a> {
    store: &'a MemStorage,
    mint: Timestamp,
    maxt: Timestamp,
}

impl Queryable for MemStorage {
    fn querier(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

impl Querier for MemQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self.store.matching(matchers, self.mint, self.maxt))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for s in self.store.matching(matchers, self.mint, self.maxt) {
            names.extend(s.labels.iter().map(|l| l.name.to_string()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for s in self.store.matching(matchers, self.mint, self.maxt) {
            if let Some(v) = s.labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    #[test]
    fn select_filters_by_matchers_and_time() {
        let st = MemStorage::new();
        let a = Labels::from_pairs(&[("__name__", "x"), ("job", "a")]);
        let b = Labels::from_pairs(&[("__name__", "x"), ("job", "b")]);
        for t in 0..10 {
            st.add(&a, Sample::new(t * 1000, t as f64));
            st.add(&b, Sample::new(t * 1000, -(t as f64)));
        }
        let q = st.querier(2000, 4000).unwrap();
        let m = [Matcher::new(MatchOp::RegexMatch, "job", "a|c").unwrap()];
        let got = q.select(&m).unwrap();
        assert_eq!(got.len(), 1);
        let ts: Vec<_> = got[0].iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![2000, 3000, 4000]);
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b"]);
    }
}
