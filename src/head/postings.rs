//! The head's inverted index: label name → value → bitmap of series indexes.
//!
//! Series are identified in bitmaps by their `u32` index (the head uses the series
//! reference itself, which is why a head holds at most `u32::MAX` series over its life).

use std::borrow::Cow;
use std::convert::Infallible;

use roaring::RoaringBitmap;

use super::StrMap;
use crate::index::PostingsSource;
use crate::model::{LabelStr, Labels, Matcher};

/// Label postings: for each label name and value, the set of series carrying that pair,
/// plus the set of all series.
#[derive(Debug, Default)]
pub struct MemPostings {
    by_name: StrMap<LabelStr, StrMap<LabelStr, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl MemPostings {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes series `id` under each of its labels.
    pub fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels {
            let values = match self.by_name.get_mut(l.name) {
                Some(v) => v,
                None => self.by_name.entry(LabelStr::from(l.name)).or_default(),
            };
            match values.get_mut(l.value) {
                Some(bm) => {
                    bm.insert(id);
                }
                None => {
                    let mut bm = RoaringBitmap::new();
                    bm.insert(id);
                    values.insert(LabelStr::from(l.value), bm);
                }
            }
        }
        self.all.insert(id);
    }

    /// Bulk form of [`Self::add`] for series not indexed yet: `pairs` maps each label
    /// pair to the series carrying it, `all` is the set of those series.
    pub(crate) fn add_bulk<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str, RoaringBitmap)>,
        all: RoaringBitmap,
    ) {
        for (name, value, ids) in pairs {
            let values = match self.by_name.get_mut(name) {
                Some(v) => v,
                None => self.by_name.entry(LabelStr::from(name)).or_default(),
            };
            match values.get_mut(value) {
                Some(bm) => *bm |= ids,
                None => {
                    values.insert(LabelStr::from(value), ids);
                }
            }
        }
        self.all |= all;
    }

    /// Adds every series of `other` (built separately, e.g. by a replay worker).
    pub(crate) fn merge(&mut self, other: MemPostings) {
        for (name, values) in other.by_name {
            let mine = self.by_name.entry(name).or_default();
            for (value, bm) in values {
                match mine.get_mut(value.as_str()) {
                    Some(m) => *m |= bm,
                    None => {
                        mine.insert(value, bm);
                    }
                }
            }
        }
        self.all |= other.all;
    }

    /// Removes series `id`, indexed under `labels`, dropping values and names left
    /// without series.
    pub fn remove(&mut self, id: u32, labels: &Labels) {
        for l in labels {
            let Some(values) = self.by_name.get_mut(l.name) else {
                continue;
            };
            if let Some(bm) = values.get_mut(l.value) {
                bm.remove(id);
                if bm.is_empty() {
                    values.remove(l.value);
                }
            }
            if values.is_empty() {
                self.by_name.remove(l.name);
            }
        }
        self.all.remove(id);
    }

    /// All indexed series.
    pub fn all(&self) -> &RoaringBitmap {
        &self.all
    }

    /// The series with `name="value"` (empty when none).
    pub fn get(&self, name: &str, value: &str) -> Option<&RoaringBitmap> {
        self.by_name.get(name).and_then(|v| v.get(value))
    }

    /// All label names, unsorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(LabelStr::as_str)
    }

    /// The values of `name` with their postings, unsorted.
    pub fn values(&self, name: &str) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.by_name
            .get(name)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, bm)| (v.as_str(), bm)))
    }

    /// The series matching all `matchers`, with Prometheus's semantics: a label that is
    /// absent matches as the empty string, so `{foo=""}` selects series without `foo`
    /// and `{foo!=""}` series that have it. Matchers that do not match the empty string
    /// intersect; those that do subtract the series whose value they reject. With no
    /// intersecting matcher the result starts from all series. No matchers select all
    /// series. The logic is shared with the block index
    /// ([`crate::index::postings_for_matchers`]).
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> RoaringBitmap {
        match crate::index::postings_for_matchers(self, matchers) {
            Ok(bm) => bm,
            Err(never) => match never {},
        }
    }
}

impl PostingsSource for MemPostings {
    type Error = Infallible;

    fn all_postings(&self) -> Result<Cow<'_, RoaringBitmap>, Infallible> {
        Ok(Cow::Borrowed(&self.all))
    }

    fn postings(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Option<Cow<'_, RoaringBitmap>>, Infallible> {
        Ok(self.get(name, value).map(Cow::Borrowed))
    }

    fn union_values(
        &self,
        name: &str,
        keep: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap, Infallible> {
        let mut out = RoaringBitmap::new();
        for (v, bm) in self.values(name) {
            if keep(v) {
                out |= bm;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn idx() -> MemPostings {
        let mut p = MemPostings::new();
        p.add(1, &Labels::from_pairs(&[("__name__", "up"), ("job", "a")]));
        p.add(2, &Labels::from_pairs(&[("__name__", "up"), ("job", "b")]));
        p.add(
            3,
            &Labels::from_pairs(&[("__name__", "up"), ("job", "c"), ("foo", "x")]),
        );
        p.add(
            4,
            &Labels::from_pairs(&[("__name__", "down"), ("foo", "y")]),
        );
        p
    }

    fn sel(p: &MemPostings, ms: &[(MatchOp, &str, &str)]) -> Vec<u32> {
        let ms: Vec<Matcher> = ms
            .iter()
            .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
            .collect();
        p.postings_for_matchers(&ms).iter().collect()
    }

    /// The index must agree with evaluating every matcher on every series.
    fn brute(p: &MemPostings, labels: &[(u32, Labels)], ms: &[(MatchOp, &str, &str)]) {
        let matchers: Vec<Matcher> = ms
            .iter()
            .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
            .collect();
        let want: Vec<u32> = labels
            .iter()
            .filter(|(_, l)| matchers.iter().all(|m| m.matches(l.get_or_empty(&m.name))))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(sel(p, ms), want, "matchers {matchers:?}");
    }

    use MatchOp::*;

    #[test]
    fn equal_and_not_equal() {
        let p = idx();
        assert_eq!(sel(&p, &[(Equal, "__name__", "up")]), vec![1, 2, 3]);
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (NotEqual, "job", "a")]),
            vec![2, 3]
        );
        assert_eq!(sel(&p, &[(Equal, "job", "nope")]), Vec::<u32>::new());
        // a != on a missing label keeps series lacking it
        assert_eq!(sel(&p, &[(NotEqual, "job", "a")]), vec![2, 3, 4]);
    }

    #[test]
    fn empty_value_selects_absent_label() {
        let p = idx();
        assert_eq!(sel(&p, &[(Equal, "foo", "")]), vec![1, 2]);
        assert_eq!(sel(&p, &[(NotEqual, "foo", "")]), vec![3, 4]);
        assert_eq!(
            sel(&p, &[(Equal, "__name__", "up"), (Equal, "foo", "")]),
            vec![1, 2]
        );
        assert_eq!(sel(&p, &[(RegexMatch, "foo", "x|")]), vec![1, 2, 3]);
        assert_eq!(sel(&p, &[(RegexMatch, "foo", ".+")]), vec![3, 4]);
        assert_eq!(sel(&p, &[(RegexNoMatch, "foo", "")]), vec![3, 4]);
        assert_eq!(sel(&p, &[(RegexNoMatch, "foo", "x")]), vec![1, 2, 4]);
        assert_eq!(sel(&p, &[(RegexMatch, "nolabel", ".*")]), vec![1, 2, 3, 4]);
        assert_eq!(sel(&p, &[(Equal, "nolabel", "")]), vec![1, 2, 3, 4]);
        assert_eq!(sel(&p, &[(NotEqual, "nolabel", "")]), Vec::<u32>::new());
    }

    #[test]
    fn merge_equals_adding_everything_to_one_index() {
        let sets = [
            (1, Labels::from_pairs(&[("__name__", "up"), ("job", "a")])),
            (2, Labels::from_pairs(&[("__name__", "up"), ("job", "b")])),
            (3, Labels::from_pairs(&[("__name__", "down"), ("job", "a")])),
            (4, Labels::from_pairs(&[("__name__", "up"), ("zone", "z")])),
        ];
        let mut one = MemPostings::new();
        let (mut even, mut odd) = (MemPostings::new(), MemPostings::new());
        for (id, l) in &sets {
            one.add(*id, l);
            if id % 2 == 0 {
                even.add(*id, l)
            } else {
                odd.add(*id, l)
            }
        }
        even.merge(odd);
        assert_eq!(even.all(), one.all());
        for name in ["__name__", "job", "zone"] {
            let a: Vec<_> = even
                .values(name)
                .map(|(v, b)| (v.to_string(), b.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let b: Vec<_> = one
                .values(name)
                .map(|(v, b)| (v.to_string(), b.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            assert_eq!(a, b, "{name}");
        }
    }

    #[test]
    fn regex_set_and_scan() {
        let p = idx();
        assert_eq!(sel(&p, &[(RegexMatch, "job", "a|c")]), vec![1, 3]);
        assert_eq!(sel(&p, &[(RegexMatch, "job", "[ab]")]), vec![1, 2]);
        assert_eq!(sel(&p, &[(RegexNoMatch, "job", "a|c")]), vec![2, 4]);
        assert_eq!(sel(&p, &[]), vec![1, 2, 3, 4]);
    }

    #[test]
    fn agrees_with_brute_force() {
        let p = idx();
        let labels = vec![
            (1, Labels::from_pairs(&[("__name__", "up"), ("job", "a")])),
            (2, Labels::from_pairs(&[("__name__", "up"), ("job", "b")])),
            (
                3,
                Labels::from_pairs(&[("__name__", "up"), ("job", "c"), ("foo", "x")]),
            ),
            (4, Labels::from_pairs(&[("__name__", "down"), ("foo", "y")])),
        ];
        let names = ["__name__", "job", "foo", "zzz"];
        let values = ["", "a", "up", "x", "a|", "a|b", ".*", ".+", "[a-c]", "x|y|"];
        for n in names {
            for v in values {
                for op in [Equal, NotEqual, RegexMatch, RegexNoMatch] {
                    brute(&p, &labels, &[(op, n, v)]);
                    brute(&p, &labels, &[(op, n, v), (NotEqual, "job", "b")]);
                    brute(&p, &labels, &[(Equal, "foo", ""), (op, n, v)]);
                }
            }
        }
    }
}
