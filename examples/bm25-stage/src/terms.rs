//! The term rule of flywheel's built-in corpus stages, copied so that this plugin depends only
//! on `flywheel-stage-api`. A test checks it against `flywheel_stages::terms`.

/// Splits text into lowercased terms: runs of letters or digits, with every CJK ideograph a
/// term of its own.
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !current.is_empty() {
                terms.push(std::mem::take(&mut current));
            }
            terms.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            terms.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        terms.push(current);
    }
    terms
}

/// Returns whether `c` is a CJK ideograph, which BERT's basic tokenizer splits into a
/// one-character word.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}
