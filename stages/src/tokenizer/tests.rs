use super::*;

fn corpus() -> Vec<String> {
    let lines = [
        "the search engine ranks documents by relevance",
        "relevance models learn from clicks and human grades",
        "a bert model reads the query and the document together",
        "搜索引擎 根据 相关性 排序 文档",
        "Café résumé naïve façade",
    ];
    lines.iter().cycle().take(50).map(|s| s.to_string()).collect()
}

fn trained() -> Tokenizer {
    train_wordpiece(corpus().into_iter(), 200, 1, Normalization { lowercase: true, strip_accents: true }).unwrap()
}

#[test]
fn trained_vocab_starts_with_special_tokens() {
    let tokenizer = trained();
    for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(tokenizer.token_to_id(token), Some(id as u32), "{token}");
    }
}

#[test]
fn cjk_characters_become_single_tokens() {
    let encoder = PairEncoder::new(trained(), 64, false).unwrap();
    let tokens: Vec<String> = encoder
        .ids("搜索引擎")
        .unwrap()
        .iter()
        .map(|&id| encoder.tokenizer().id_to_token(id).unwrap())
        .collect();
    assert_eq!(tokens, ["搜", "索", "引", "擎"]);
}

#[test]
fn accents_are_stripped_and_text_lowercased() {
    let encoder = PairEncoder::new(trained(), 64, false).unwrap();
    assert_eq!(encoder.ids("CAFÉ").unwrap(), encoder.ids("cafe").unwrap());
}

#[test]
fn pair_truncation_cuts_document_first() {
    let encoder = PairEncoder::new(trained(), 12, false).unwrap();
    let query = encoder.ids("search engine").unwrap();
    let encoding = encoder.encode_pair("search engine", "the search engine ranks documents by relevance and more words").unwrap();
    assert_eq!(encoding.ids.len(), 12);
    assert_eq!(encoding.ids[0], encoder.cls);
    assert_eq!(&encoding.ids[1..1 + query.len()], query.as_slice());
    assert_eq!(encoding.ids[1 + query.len()], encoder.sep);
    assert_eq!(*encoding.ids.last().unwrap(), encoder.sep);
    assert_eq!(encoding.type_ids.iter().filter(|&&t| t == 0).count(), query.len() + 2);
}

#[test]
fn long_query_is_error_unless_allowed() {
    let strict = PairEncoder::new(trained(), 6, false).unwrap();
    let error = strict.encode_pair("the search engine ranks documents", "relevance").unwrap_err();
    assert!(error.to_string().contains("raise max_len or set truncate_query"), "{error}");

    let lenient = PairEncoder::new(trained(), 6, true).unwrap();
    let encoding = lenient.encode_pair("the search engine ranks documents", "relevance").unwrap();
    assert_eq!(encoding.ids.len(), 6);
    assert_eq!(encoding.type_ids.iter().filter(|&&t| t == 1).count(), 2, "one document token and the last [SEP]");
}

#[test]
fn saved_tokenizer_reloads_with_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = trained();
    save(&tokenizer, dir.path()).unwrap();
    let reloaded = load(dir.path()).unwrap();
    let text = "the bert model reads 搜索 documents";
    assert_eq!(tokenizer.encode(text, true).unwrap().get_ids(), reloaded.encode(text, true).unwrap().get_ids());

    let from_vocab = import(&dir.path().join("vocab.txt"), Normalization { lowercase: true, strip_accents: true }).unwrap();
    assert_eq!(tokenizer.encode(text, true).unwrap().get_ids(), from_vocab.encode(text, true).unwrap().get_ids());
}

#[test]
fn training_twice_gives_identical_tokenizers() {
    let texts: Vec<String> = (0..400).map(|i| format!("document {i} about search ranking relevance query number {} and words like alpha{} beta{}", i % 37, i % 11, i % 7)).collect();
    let norm = Normalization { lowercase: true, strip_accents: true };
    let first = train_wordpiece(texts.clone().into_iter(), 300, 1, norm).unwrap().to_string(false).unwrap();
    for _ in 0..3 {
        let again = train_wordpiece(texts.clone().into_iter(), 300, 1, norm).unwrap().to_string(false).unwrap();
        assert_eq!(first, again);
    }
}
