//! Prompt cleaning as the reference does it before tokenizing (`clean='whitespace'` in
//! `wan/modules/tokenizers.py`): `ftfy.fix_text`, HTML unescaping twice, then every run of
//! whitespace collapsed to one space. ftfy folds full-width punctuation, so the default
//! Chinese negative prompt reaches the tokenizer with ASCII commas.

/// The reference's default negative prompt (`sample_neg_prompt` in
/// `wan/configs/shared_config.py`), used whenever a job gives none.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

/// Cleans a prompt exactly as the reference's tokenizer wrapper does.
pub fn clean_prompt(text: &str) -> String {
    let fixed = plsfix::fix_text(text, None);
    let unescaped =
        html_escape::decode_html_entities(&html_escape::decode_html_entities(&fixed)).into_owned();
    unescaped.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from the reference's own cleaning (`ftfy` 6.3.1, `html.unescape`,
    /// `regex.sub(r'\s+', ' ')`), run on these inputs.
    const CASES: &[(&str, &str)] = &[
        ("  A  cat\t\tsits on\na mat.  ", "A cat sits on a mat."),
        (
            "“Curly quotes” and ‘single’ ones",
            "\"Curly quotes\" and 'single' ones",
        ),
        ("ﬁne ligatures ﬂow", "fine ligatures flow"),
        ("Full－width：ＡＢＣ１２３！？（）", "Full-width:ABC123!?()"),
        ("ideographic\u{3000}space", "ideographic space"),
        (
            "Tom &amp; Jerry &lt;3 &amp;amp; friends",
            "Tom & Jerry <3 & friends",
        ),
        ("broken mojibake: cafÃ©", "broken mojibake: café"),
        ("e\u{301} combining accent", "\u{e9} combining accent"),
        (
            "control\u{7} char and zero\u{200b}width",
            "control char and zero\u{200b}width",
        ),
        ("line\r\nbreaks\u{2028}here", "line breaks here"),
        ("<b>html &amp; tags</b>", "<b>html & tags</b>"),
        ("。、 kept punctuation", "。、 kept punctuation"),
    ];

    #[test]
    fn cleaning_matches_the_reference() {
        for (input, expected) in CASES {
            assert_eq!(clean_prompt(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn default_negative_prompt_gets_ascii_commas() {
        let cleaned = clean_prompt(DEFAULT_NEGATIVE_PROMPT);
        assert_eq!(cleaned.matches(',').count(), 27);
        assert!(!cleaned.contains('，'));
        assert!(cleaned.starts_with("色调艳丽,过曝,静态,"));
    }
}
