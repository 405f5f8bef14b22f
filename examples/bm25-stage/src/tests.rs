use super::*;

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn terms_match_builtin_corpus_rule() {
    let samples = ["BM25 搜索引擎 ranking!", "Ünïcode CAFÉ, naïve—façade", "x2y 3.14 a_b", "", "  \t", "ＡＢＣ全角"];
    for sample in samples {
        assert_eq!(terms(sample), flywheel_stages::terms(sample), "{sample:?}");
    }
}

#[test]
fn idf_at_half_corpus_is_ln2() {
    // N = 4, n = 2: ln(1 + 2.5 / 2.5) = ln 2.
    assert!((Bm25::idf(4, 2) - std::f64::consts::LN_2).abs() < 1e-15);
}

#[test]
fn repeated_query_term_counts_twice() {
    let stats = CorpusStats {
        documents: 2,
        total_terms: 4,
        document_frequency: [("cat".to_string(), 1)].into(),
        paired: HashMap::new(),
    };
    let frequencies: HashMap<String, u64> = [("cat".to_string(), 1)].into();
    let bm25 = Bm25 { k1: 1.2, b: 0.75 };
    let once = bm25.score(&strings(&["cat"]), 2, &frequencies, &stats);
    let twice = bm25.score(&strings(&["cat", "cat"]), 2, &frequencies, &stats);
    assert!(once > 0.0);
    assert_eq!(twice, 2.0 * once);
}

#[test]
fn b_zero_ignores_document_length() {
    let stats = CorpusStats {
        documents: 3,
        total_terms: 9,
        document_frequency: [("cat".to_string(), 1)].into(),
        paired: HashMap::new(),
    };
    let frequencies: HashMap<String, u64> = [("cat".to_string(), 1)].into();
    let bm25 = Bm25 { k1: 1.2, b: 0.0 };
    let short = bm25.score(&strings(&["cat"]), 1, &frequencies, &stats);
    let long = bm25.score(&strings(&["cat"]), 7, &frequencies, &stats);
    assert_eq!(short, long);
    // With b = 0 and tf = 1 the term weight is exactly IDF: 1 * 2.2 / (1 + 1.2).
    assert!((short - Bm25::idf(3, 1)).abs() < 1e-15);
}

#[test]
fn empty_corpus_average_is_zero() {
    assert_eq!(CorpusStats::default().average_length(), 0.0);
}
