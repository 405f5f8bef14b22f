//! [`ClickModel`]: the simulated user behind `simulate-clicks`.
//!
//! One session shows the top `depth` documents of a query's ranking. Going down the page, the
//! user examines the document at rank r with probability (1 / r)^eta (position bias). The user
//! clicks an examined document with a probability that grows with its grade, from
//! `click_noise` at grade 0 to `click_relevant` at the top grade:
//!
//! ```text
//! relevance(g)   = (2^g - 1) / (2^g_max - 1)                      in [0, 1]
//! P(click | g)   = click_noise + (click_relevant - click_noise) * relevance(g)
//! median dwell   = dwell_irrelevant * (dwell_relevant / dwell_irrelevant)^relevance(g)
//! dwell          = median dwell * exp(dwell_sigma * z),  z ~ N(0, 1)   (log-normal)
//! ```
//!
//! A click whose dwell reaches `satisfied_dwell` seconds satisfies the user, who then leaves
//! the page with probability `stop_after_satisfied`. The documents below stay shown, but the
//! user no longer examines them. Examined documents that are not clicked are the skips. `click_noise` is the
//! noise: clicks on irrelevant documents, independent of position.

use crate::random::Rng;

/// The parameters of the simulated user.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClickModel {
    /// Documents shown per session, from the top of the ranking.
    pub depth: usize,
    /// Position-bias exponent: P(examine rank r) = (1 / r)^eta; 0 examines every rank.
    pub eta: f64,
    /// P(click) of an examined document of grade 0.
    pub click_noise: f64,
    /// P(click) of an examined document of the top grade.
    pub click_relevant: f64,
    /// The top grade; a higher grade in the data counts as this one.
    pub max_grade: f64,
    /// Median dwell in seconds after clicking a grade-0 document.
    pub dwell_irrelevant: f64,
    /// Median dwell in seconds after clicking a top-grade document.
    pub dwell_relevant: f64,
    /// Standard deviation of log(dwell) around its median.
    pub dwell_sigma: f64,
    /// Dwell in seconds from which a click satisfies the user.
    pub satisfied_dwell: f64,
    /// P(leave the page) after a satisfying click.
    pub stop_after_satisfied: f64,
}

/// The outcome of one shown document in one session.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimulatedImpression {
    /// 1-based rank on the page.
    pub position: u32,
    pub click: bool,
    /// Seconds, rounded to 0.1; 0 without a click.
    pub dwell: f64,
}

impl ClickModel {
    /// Returns the grade mapped to [0, 1] with exponential gain, 1 for the top grade.
    pub fn relevance(&self, grade: f64) -> f64 {
        let top = self.max_grade.exp2() - 1.0;
        if top <= 0.0 {
            return 0.0;
        }
        ((grade.min(self.max_grade).exp2() - 1.0) / top).clamp(0.0, 1.0)
    }

    /// P(examine) of the document at 1-based `position`.
    pub fn examination(&self, position: u32) -> f64 {
        (1.0 / f64::from(position)).powf(self.eta)
    }

    pub fn click_probability(&self, grade: f64) -> f64 {
        self.click_noise + (self.click_relevant - self.click_noise) * self.relevance(grade)
    }

    /// Returns the median dwell in seconds after a click on a document of `grade`.
    pub fn median_dwell(&self, grade: f64) -> f64 {
        self.dwell_irrelevant * (self.dwell_relevant / self.dwell_irrelevant).powf(self.relevance(grade))
    }

    /// Simulates one session over `grades`, the grades of the ranking from the top; the page
    /// shows the first `depth` of them.
    pub fn session(&self, grades: &[f64], rng: &mut Rng) -> Vec<SimulatedImpression> {
        let mut left = false;
        let mut page = Vec::with_capacity(self.depth.min(grades.len()));
        for (index, grade) in grades.iter().take(self.depth).enumerate() {
            let position = index as u32 + 1;
            let examined = !left && rng.bernoulli(self.examination(position));
            let click = examined && rng.bernoulli(self.click_probability(*grade));
            let mut dwell = 0.0;
            if click {
                let sample = self.median_dwell(*grade) * (self.dwell_sigma * rng.normal()).exp();
                dwell = (sample * 10.0).round() / 10.0;
                if dwell >= self.satisfied_dwell && rng.bernoulli(self.stop_after_satisfied) {
                    left = true;
                }
            }
            page.push(SimulatedImpression { position, click, dwell });
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ClickModel {
        ClickModel {
            depth: 10,
            eta: 1.0,
            click_noise: 0.05,
            click_relevant: 0.9,
            max_grade: 3.0,
            dwell_irrelevant: 8.0,
            dwell_relevant: 60.0,
            dwell_sigma: 0.5,
            satisfied_dwell: 30.0,
            stop_after_satisfied: 0.5,
        }
    }

    #[test]
    fn click_probability_spans_noise_to_relevant() {
        let m = model();
        assert_eq!(m.click_probability(0.0), 0.05);
        assert!((m.click_probability(3.0) - 0.9).abs() < 1e-12);
        assert!(m.click_probability(1.0) < m.click_probability(2.0));
        assert!((m.click_probability(5.0) - 0.9).abs() < 1e-12, "grades above the top count as the top");
    }

    #[test]
    fn examination_decays_with_rank() {
        let m = model();
        assert_eq!(m.examination(1), 1.0);
        assert_eq!(m.examination(4), 0.25);
        assert_eq!(ClickModel { eta: 0.0, ..m }.examination(9), 1.0);
    }

    #[test]
    fn dwell_median_interpolates_geometrically() {
        let m = model();
        assert!((m.median_dwell(0.0) - 8.0).abs() < 1e-9);
        assert!((m.median_dwell(3.0) - 60.0).abs() < 1e-9);
    }

    #[test]
    fn session_shows_depth_documents() {
        let m = ClickModel { depth: 3, ..model() };
        let page = m.session(&[3.0, 0.0, 1.0, 2.0, 0.0], &mut Rng::new(1));
        assert_eq!(page.iter().map(|s| s.position).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(page.iter().all(|s| s.click || s.dwell == 0.0));
    }

    #[test]
    fn clicks_follow_position_and_grade() {
        let m = model();
        let mut rng = Rng::new(9);
        let grades = [3.0, 3.0, 0.0, 0.0, 3.0, 3.0];
        let mut clicks = [0u32; 6];
        for _ in 0..20_000 {
            for impression in m.session(&grades, &mut rng) {
                clicks[impression.position as usize - 1] += u32::from(impression.click);
            }
        }
        assert!(clicks[0] > clicks[1], "position bias: {clicks:?}");
        assert!(clicks[1] > clicks[4], "position bias: {clicks:?}");
        assert!(clicks[2] < clicks[4] / 2, "grade: {clicks:?}");
        // Rank 1, grade 3, always examined: P(click) = 0.9.
        let ctr = f64::from(clicks[0]) / 20_000.0;
        assert!((ctr - 0.9).abs() < 0.01, "{ctr}");
    }
}
