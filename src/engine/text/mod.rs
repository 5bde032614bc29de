//! Text conditioning: prompt cleaning, tokenization and the UMT5 encoder, producing the
//! `[seq_len, dim]` states the DiT consumes (the encoder output trimmed to the real tokens,
//! spec §2.4).

mod prompt;
mod tokenizer;
mod umt5;

pub use prompt::{DEFAULT_NEGATIVE_PROMPT, clean_prompt};
pub use tokenizer::{ByteTokenizer, EOS_ID, PAD_ID, PromptTokenizer};
pub use umt5::{Umt5Encoder, relative_position_bucket};

use candle_core::{Device, Result, Tensor};

/// A tokenizer and encoder pair that turns prompts into DiT context.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: PromptTokenizer,
    encoder: Umt5Encoder,
    /// Longest token sequence, end-of-sequence included (the DiT's `text_len`).
    text_len: usize,
    device: Device,
}

impl TextEncoder {
    pub fn new(
        tokenizer: PromptTokenizer,
        encoder: Umt5Encoder,
        text_len: usize,
        device: Device,
    ) -> Self {
        Self {
            tokenizer,
            encoder,
            text_len,
            device,
        }
    }

    /// Token ids of a prompt after the reference's cleaning.
    pub fn token_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(&clean_prompt(prompt), self.text_len)
            .map_err(|e| candle_core::Error::Msg(format!("cannot tokenize the prompt: {e}")))
    }

    /// Encoder states `[seq_len, dim]` of a prompt.
    pub fn encode(&self, prompt: &str) -> Result<Tensor> {
        let ids = self.token_ids(prompt)?;
        self.encoder.encode(&ids, &self.device)
    }

    pub fn encoder(&self) -> &Umt5Encoder {
        &self.encoder
    }
}
