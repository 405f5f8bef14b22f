//! Per (query, document) aggregation of a click log into the behaviour features [`FEATURES`].
//!
//! A result page is the rows that share a `qid` and a `session`; a row without a session is a
//! page of its own. On a page, the last click is the clicked row with the highest position
//! number, because the log has no click times and the lowest-ranked click is the best proxy for
//! the last one. A skip is a row that was not clicked but is ranked above that last click.

use std::collections::{BTreeMap, HashMap};

use crate::artifact::Impression;

/// The feature names, in the order they are written.
pub const FEATURES: [&str; 9] = [
    // Rows that showed the document.
    "impressions",
    "clicks",
    // clicks / impressions.
    "ctr",
    // clicks / sum over impressions of (1 / position)^eta: CTR corrected for position bias.
    "debiased_ctr",
    // Skips / impressions.
    "skip_rate",
    // Mean dwell in seconds over clicks; 0 without clicks.
    "mean_dwell",
    // Clicks with dwell >= the long-dwell threshold / clicks; 0 without clicks.
    "long_dwell_rate",
    // Pages where this was the last click / clicks; 0 without clicks.
    "last_click_rate",
    "mean_position",
];

/// Sums over the impressions of one (query, document) pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub impressions: u64,
    pub clicks: u64,
    /// Sum of examination propensities (1 / position)^eta over impressions.
    pub propensity: f64,
    pub skips: u64,
    /// Seconds, summed over clicks.
    pub dwell: f64,
    pub long_clicks: u64,
    pub last_clicks: u64,
    pub positions: u64,
}

impl Counts {
    /// Returns the values of [`FEATURES`], in order.
    pub fn features(&self) -> [f64; FEATURES.len()] {
        let impressions = self.impressions as f64;
        let clicks = self.clicks as f64;
        let per_click = |n: u64| if self.clicks > 0 { n as f64 / clicks } else { 0.0 };
        [
            impressions,
            clicks,
            clicks / impressions,
            if self.propensity > 0.0 { clicks / self.propensity } else { 0.0 },
            self.skips as f64 / impressions,
            if self.clicks > 0 { self.dwell / clicks } else { 0.0 },
            per_click(self.long_clicks),
            per_click(self.last_clicks),
            self.positions as f64 / impressions,
        ]
    }
}

/// Aggregates `rows` by (qid, docid). `eta` is the position-bias exponent of the propensities
/// and `long_dwell` the threshold, in seconds, of a long click.
///
/// Sums run in row order, so the result does not depend on hash order.
pub fn aggregate(rows: &[&Impression], eta: f64, long_dwell: f64) -> BTreeMap<(String, String), Counts> {
    // Pass 1: the position of each page's last click.
    let mut last_click: HashMap<Page<'_>, u32> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        if row.click == 1 {
            let last = last_click.entry(page(row, index)).or_insert(0);
            *last = (*last).max(row.position);
        }
    }

    // Pass 2: per-pair sums.
    let mut pairs: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for (index, row) in rows.iter().enumerate() {
        let last = last_click.get(&page(row, index)).copied().unwrap_or(0);
        let counts = pairs.entry((row.qid.clone(), row.docid.clone())).or_default();
        counts.impressions += 1;
        counts.positions += u64::from(row.position);
        counts.propensity += (1.0 / f64::from(row.position)).powf(eta);
        if row.click == 1 {
            counts.clicks += 1;
            counts.dwell += row.dwell;
            counts.long_clicks += u64::from(row.dwell >= long_dwell);
            counts.last_clicks += u64::from(row.position == last);
        } else if row.position < last {
            counts.skips += 1;
        }
    }
    pairs
}

/// A result page: the rows of one qid and session, or one row without a session.
#[derive(PartialEq, Eq, Hash)]
enum Page<'a> {
    Session(&'a str, String),
    Row(usize),
}

fn page(row: &Impression, index: usize) -> Page<'_> {
    match row.session() {
        Some(session) => Page::Session(row.qid.as_str(), session),
        None => Page::Row(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn row(session: &str, docid: &str, position: u32, click: u8, dwell: f64) -> Impression {
        let mut extra = Map::new();
        if !session.is_empty() {
            extra.insert("session".into(), json!(session));
        }
        Impression { qid: "q".into(), docid: docid.into(), position, click, dwell, extra }
    }

    #[test]
    fn one_page_gives_skips_and_last_click() {
        // Page s1: a (1) skipped, b (2) clicked 40 s, c (3) skipped, d (4) clicked 5 s, e (5) below.
        let rows = [
            row("s1", "a", 1, 0, 0.0),
            row("s1", "b", 2, 1, 40.0),
            row("s1", "c", 3, 0, 0.0),
            row("s1", "d", 4, 1, 5.0),
            row("s1", "e", 5, 0, 0.0),
        ];
        let refs: Vec<&Impression> = rows.iter().collect();
        let pairs = aggregate(&refs, 1.0, 30.0);
        let get = |d: &str| pairs[&("q".to_string(), d.to_string())].clone();
        assert_eq!(get("a").skips, 1);
        assert_eq!(get("c").skips, 1);
        assert_eq!(get("e").skips, 0, "below the last click is not a skip");
        assert_eq!((get("b").long_clicks, get("b").last_clicks), (1, 0));
        assert_eq!((get("d").long_clicks, get("d").last_clicks), (0, 1));
    }

    #[test]
    fn features_over_two_pages() {
        // Document x: clicked at position 2 (dwell 50) on s1, shown unclicked at 1 on s2 above a click.
        let rows = [
            row("s1", "x", 2, 1, 50.0),
            row("s2", "x", 1, 0, 0.0),
            row("s2", "y", 2, 1, 10.0),
        ];
        let refs: Vec<&Impression> = rows.iter().collect();
        let pairs = aggregate(&refs, 1.0, 30.0);
        let features = pairs[&("q".to_string(), "x".to_string())].features();
        let named: Vec<(&str, f64)> = FEATURES.iter().copied().zip(features).collect();
        assert_eq!(
            named,
            [
                ("impressions", 2.0),
                ("clicks", 1.0),
                ("ctr", 0.5),
                ("debiased_ctr", 1.0 / 1.5),
                ("skip_rate", 0.5),
                ("mean_dwell", 50.0),
                ("long_dwell_rate", 1.0),
                ("last_click_rate", 1.0),
                ("mean_position", 1.5),
            ]
        );
    }

    #[test]
    fn rows_without_session_are_separate_pages() {
        let rows = [row("", "a", 1, 0, 0.0), row("", "b", 2, 1, 10.0)];
        let refs: Vec<&Impression> = rows.iter().collect();
        let pairs = aggregate(&refs, 1.0, 30.0);
        assert_eq!(pairs[&("q".to_string(), "a".to_string())].skips, 0);
        assert_eq!(pairs[&("q".to_string(), "b".to_string())].last_clicks, 1);
    }
}
