//! Prompt tokenizers: the checkpoint's Hugging Face `tokenizer.json` (`google/umt5-xxl`) and
//! the byte tokenizer of the built-in `tiny` model. Both append the end-of-sequence id 1 and
//! truncate so that the result, EOS included, fits the text length.

use std::path::Path;

/// Id of `</s>`, appended to every prompt.
pub const EOS_ID: u32 = 1;
/// Id of `<pad>`.
pub const PAD_ID: u32 = 0;

/// Maps each UTF-8 byte `b` to id `3 + b`; 0, 1, 2 are pad, end-of-sequence and unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Ids used by the byte tokenizer: three special ids plus 256 bytes.
    pub const VOCAB_SIZE: usize = 3 + 256;

    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(|b| 3 + b as u32).collect()
    }
}

/// A tokenizer for prompts.
#[derive(Debug, Clone)]
pub enum PromptTokenizer {
    /// A Hugging Face fast tokenizer; its post-processor appends `</s>`.
    HuggingFace(Box<tokenizers::Tokenizer>),
    Bytes(ByteTokenizer),
}

impl PromptTokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| e.to_string())?;
        // Truncation and padding are ours to do (see `encode`), whatever the file configures.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| e.to_string())?;
        Ok(Self::HuggingFace(Box::new(tokenizer)))
    }

    /// Token ids of an already cleaned prompt, truncated to `max_len` ids including the
    /// final `</s>`; no padding (the encoder's padded positions never reach the output).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>, String> {
        let mut ids = match self {
            Self::HuggingFace(tokenizer) => {
                let mut ids = tokenizer
                    .encode(text, true)
                    .map_err(|e| e.to_string())?
                    .get_ids()
                    .to_vec();
                if ids.last() != Some(&EOS_ID) {
                    // A tokenizer.json without the T5 post-processor: add `</s>` ourselves.
                    ids.push(EOS_ID);
                }
                ids
            }
            Self::Bytes(bytes) => {
                let mut ids = bytes.encode(text);
                ids.push(EOS_ID);
                ids
            }
        };
        if ids.len() > max_len {
            // Keep the first max_len − 1 text tokens and the end-of-sequence id.
            ids.truncate(max_len.saturating_sub(1));
            ids.push(EOS_ID);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokenizer_appends_eos_and_truncates_keeping_it() {
        let tok = PromptTokenizer::Bytes(ByteTokenizer);
        assert_eq!(tok.encode("ab", 8).unwrap(), vec![3 + 97, 3 + 98, EOS_ID]);
        assert_eq!(
            tok.encode("abcdef", 4).unwrap(),
            vec![100, 101, 102, EOS_ID]
        );
    }
}
