//! Ranking measures over the judged documents of one query: [`auc`], [`pnr_counts`] and
//! [`ndcg`]. Each takes [`Judged`] documents in any order and gives the same result for every
//! order, because ties are resolved by rule rather than by position.

/// One judged document of a query: its human grade and the score under evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    pub grade: f64,
    pub score: f64,
}

/// The gain of a grade in DCG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gain {
    /// gain = grade, the gain trec_eval reads from its qrels file. Its discount differs:
    /// trec_eval's `ndcg` (m_ndcg.c, trec_eval 9) divides by log2(rank) from rank 2 on, so ranks
    /// 1 and 2 both count in full, while [`ndcg`] divides by log2(rank + 1) at every rank.
    Linear,
    /// gain = 2^grade - 1, which weighs high grades more than linear gain does.
    Exponential,
}

impl Gain {
    fn of(self, grade: f64) -> f64 {
        match self {
            Gain::Linear => grade,
            Gain::Exponential => grade.exp2() - 1.0,
        }
    }
}

/// ROC AUC of the scores, with documents of grade >= `threshold` as positives, in the
/// Mann–Whitney form: the share of (positive, negative) pairs where the positive scores higher,
/// a tie counting one half.
///
/// Returns `None` when the documents are all positive or all negative: AUC is undefined there,
/// and reporting 0.5 would hide that.
pub fn auc(docs: &[Judged], threshold: f64) -> Option<f64> {
    let (positives, negatives): (Vec<&Judged>, Vec<&Judged>) = docs.iter().partition(|d| d.grade >= threshold);
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in &positives {
        for n in &negatives {
            if p.score > n.score {
                wins += 1.0;
            } else if p.score == n.score {
                wins += 0.5;
            }
        }
    }
    Some(wins / (positives.len() * negatives.len()) as f64)
}

/// Counts (concordant, discordant) pairs among the documents: a pair with different grades is
/// concordant when the higher grade has the higher score and discordant when it has the lower.
/// Pairs with equal grades or equal scores count as neither.
pub fn pnr_counts(docs: &[Judged]) -> (u64, u64) {
    let (mut concordant, mut discordant) = (0, 0);
    for (i, a) in docs.iter().enumerate() {
        for b in &docs[i + 1..] {
            if a.grade == b.grade || a.score == b.score {
                continue;
            }
            if (a.grade > b.grade) == (a.score > b.score) {
                concordant += 1;
            } else {
                discordant += 1;
            }
        }
    }
    (concordant, discordant)
}

/// Returns concordant / discordant, or `None` when there is no discordant pair (the ratio is
/// unbounded) or no pair at all.
pub fn pnr(concordant: u64, discordant: u64) -> Option<f64> {
    (discordant > 0).then(|| concordant as f64 / discordant as f64)
}

/// NDCG@k: DCG of the first `k` documents ranked by score, divided by the DCG of the ideal
/// ranking (by grade), with DCG = sum over ranks i = 1.. of gain(grade_i) / log2(i + 1).
///
/// Documents with equal scores are ranked lowest grade first (the worst case), so a scorer gets
/// no credit for ties and the result does not depend on input order. Returns `None` when the
/// ideal DCG is 0 (no document has a positive gain), where NDCG is undefined.
pub fn ndcg(docs: &[Judged], k: usize, gain: Gain) -> Option<f64> {
    let mut ranked: Vec<Judged> = docs.to_vec();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.grade.total_cmp(&b.grade)));
    let mut ideal: Vec<f64> = docs.iter().map(|d| d.grade).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));

    let ideal_dcg = dcg(ideal.into_iter(), k, gain);
    if ideal_dcg <= 0.0 {
        return None;
    }
    Some(dcg(ranked.iter().map(|d| d.grade), k, gain) / ideal_dcg)
}

fn dcg(grades: impl Iterator<Item = f64>, k: usize, gain: Gain) -> f64 {
    grades.take(k).enumerate().map(|(i, grade)| gain.of(grade) / ((i + 2) as f64).log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns one query with grades [3, 2, 0, 1, 0] and scores [0.9, 0.3, 0.8, 0.4, 0.1]. The
    /// expected values below were computed by hand from the definitions above.
    fn golden() -> Vec<Judged> {
        [(3.0, 0.9), (2.0, 0.3), (0.0, 0.8), (1.0, 0.4), (0.0, 0.1)]
            .into_iter()
            .map(|(grade, score)| Judged { grade, score })
            .collect()
    }

    /// Asserts a defined value equal to `expected` at the four decimals of the golden values.
    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("defined");
        assert!((actual - expected).abs() < 5e-5, "{actual} != {expected}");
    }

    #[test]
    fn golden_pnr() {
        assert_eq!(pnr_counts(&golden()), (6, 3));
        assert_eq!(pnr(6, 3), Some(2.0));
    }

    #[test]
    fn golden_ndcg() {
        assert_close(ndcg(&golden(), 3, Gain::Exponential), 0.7985);
        assert_close(ndcg(&golden(), 3, Gain::Linear), 0.7350);
        assert_close(ndcg(&golden(), 5, Gain::Exponential), 0.9360);
        assert_close(ndcg(&golden(), 5, Gain::Linear), 0.9159);
    }

    #[test]
    fn golden_auc() {
        assert_close(auc(&golden(), 2.0), 0.6667);
        assert_close(auc(&golden(), 1.0), 0.6667);
    }

    #[test]
    fn auc_single_class_is_undefined() {
        let all_relevant: Vec<Judged> = golden().into_iter().map(|d| Judged { grade: 3.0, ..d }).collect();
        assert_eq!(auc(&all_relevant, 1.0), None);
        assert_eq!(auc(&golden(), 4.0), None);
    }

    #[test]
    fn one_grade_gives_no_pairs() {
        let flat: Vec<Judged> = golden().into_iter().map(|d| Judged { grade: 1.0, ..d }).collect();
        assert_eq!(pnr_counts(&flat), (0, 0));
        assert_eq!(pnr(0, 0), None);
    }

    #[test]
    fn tied_scores_ignore_input_order() {
        let docs: Vec<Judged> = [(3.0, 0.5), (0.0, 0.5), (1.0, 0.5), (2.0, 0.9)]
            .into_iter()
            .map(|(grade, score)| Judged { grade, score })
            .collect();
        let mut reversed = docs.clone();
        reversed.reverse();
        for k in [1, 2, 3, 4] {
            for gain in [Gain::Linear, Gain::Exponential] {
                assert_eq!(ndcg(&docs, k, gain), ndcg(&reversed, k, gain), "k {k} {gain:?}");
            }
        }
        assert_eq!(auc(&docs, 1.0), auc(&reversed, 1.0));
        assert_eq!(pnr_counts(&docs), pnr_counts(&reversed));
        // Worst case among the tied documents: grade 0 at rank 2, then 1, then 3.
        let expected_dcg = 2.0 + 0.0 / 3f64.log2() + 1.0 / 4f64.log2() + 3.0 / 5f64.log2();
        let ideal_dcg = 3.0 + 2.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert_close(ndcg(&docs, 4, Gain::Linear), expected_dcg / ideal_dcg);
    }

    #[test]
    fn tied_scores_in_auc_and_pnr() {
        let docs = [Judged { grade: 1.0, score: 0.5 }, Judged { grade: 0.0, score: 0.5 }];
        assert_eq!(auc(&docs, 1.0), Some(0.5));
        assert_eq!(pnr_counts(&docs), (0, 0));
    }

    #[test]
    fn ndcg_undefined_without_gain() {
        let zeros = [Judged { grade: 0.0, score: 0.3 }, Judged { grade: 0.0, score: 0.1 }];
        assert_eq!(ndcg(&zeros, 3, Gain::Linear), None);
    }
}
