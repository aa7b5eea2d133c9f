//! Matcher evaluation over an inverted index, shared by the head's in-memory postings and
//! the persistent block index so both select exactly the same series.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use crate::model::{MatchOp, Matcher};

/// An inverted index: label name → value → bitmap of series ids.
pub trait PostingsSource {
    /// Why reading postings failed (`Infallible` for in-memory indexes).
    type Error;

    /// All series ids.
    fn all_postings(&self) -> Result<Cow<'_, RoaringBitmap>, Self::Error>;

    /// The series with `name="value"`, `None` when there are none.
    fn postings(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Option<Cow<'_, RoaringBitmap>>, Self::Error>;

    /// Union of the postings of the values of `name` for which `keep` returns true.
    fn union_values(
        &self,
        name: &str,
        keep: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap, Self::Error>;
}

/// Union of the postings of `name=v` for each `v` in `values`.
fn union_literals<P: PostingsSource + ?Sized>(
    p: &P,
    name: &str,
    values: &[String],
) -> Result<RoaringBitmap, P::Error> {
    let mut out = RoaringBitmap::new();
    for v in values {
        if let Some(bm) = p.postings(name, v)? {
            out |= bm.as_ref();
        }
    }
    Ok(out)
}

/// Series that carry the label `m.name` with a value for which `m` matches (when `want`
/// is true) or does not match (when `want` is false). Series without the label are never
/// included.
fn present_with<P: PostingsSource + ?Sized>(
    p: &P,
    m: &Matcher,
    want: bool,
) -> Result<RoaringBitmap, P::Error> {
    // Fast paths: a literal value or literal alternation resolves by lookups.
    let literal_set = match m.op {
        MatchOp::Equal | MatchOp::NotEqual => Some(vec![m.value.clone()]),
        MatchOp::RegexMatch => m.set_matches(),
        MatchOp::RegexNoMatch => Matcher::new(MatchOp::RegexMatch, "", m.value.as_str())
            .ok()
            .and_then(|pos| pos.set_matches()),
    };
    let positive = matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch);
    match literal_set {
        // the values listed are exactly those where a positive matcher matches, or where
        // a negative one does not
        Some(lits) if want == positive => union_literals(p, &m.name, &lits),
        _ => p.union_values(&m.name, &mut |v| m.matches(v) == want),
    }
}

/// The series matching all `matchers`, with Prometheus's semantics: a label that is absent
/// matches as the empty string, so `{foo=""}` selects series without `foo` and
/// `{foo!=""}` series that have it. Matchers that do not match the empty string
/// intersect; those that do subtract the series whose value they reject. With no
/// intersecting matcher the result starts from all series. No matchers select all series.
pub fn postings_for_matchers<P: PostingsSource + ?Sized>(
    p: &P,
    matchers: &[Matcher],
) -> Result<RoaringBitmap, P::Error> {
    let mut intersect: Vec<RoaringBitmap> = Vec::new();
    let mut subtract: Vec<&Matcher> = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            // Selected: series without the label, plus series whose value matches.
            // Equivalently all series minus those whose present value is rejected.
            subtract.push(m);
        } else {
            intersect.push(present_with(p, m, true)?);
        }
    }
    // Intersect the smallest sets first so the running result stays small.
    intersect.sort_by_key(|b| b.len());
    let mut iter = intersect.into_iter();
    let mut result = match iter.next() {
        Some(first) => first,
        None => p.all_postings()?.into_owned(),
    };
    for b in iter {
        if result.is_empty() {
            break;
        }
        result &= b;
    }
    for m in subtract {
        if result.is_empty() {
            break;
        }
        result -= present_with(p, m, false)?;
    }
    Ok(result)
}
