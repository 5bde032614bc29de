//! Text conditioning: prompt cleaning, tokenization and the UMT5 encoder, producing the
//! `[seq_len, dim]` states the DiT consumes (the encoder output trimmed to the real tokens,
//! spec §2.4).

mod host_copy;
#[cfg(feature = "cuda")]
mod page_lock;
mod prompt;
mod tokenizer;
mod umt5;

pub use host_copy::HostEncoder;
pub use prompt::{DEFAULT_NEGATIVE_PROMPT, clean_prompt};
pub use tokenizer::{ByteTokenizer, EOS_ID, PAD_ID, PromptTokenizer};
pub use umt5::{Umt5Encoder, relative_position_bucket};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use candle_core::{Device, Result, Tensor};

use crate::engine::config::T5Config;

/// Prompts whose encoder states are kept (at most 512 × 4096 bf16 = 4 MiB each for UMT5-xxl).
pub const PROMPT_CACHE_ENTRIES: usize = 32;

/// A tokenizer and encoder pair that turns prompts into DiT context. Clones share one cache
/// of encoded prompts, so a worker encodes the default negative prompt once, and a queue of
/// jobs with the same prompt encodes it once.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: PromptTokenizer,
    encoder: Residence,
    /// Longest token sequence, end-of-sequence included (the DiT's `text_len`).
    text_len: usize,
    device: Device,
    cache: Arc<Mutex<PromptCache>>,
}

/// Whether an encoder for `device` keeps its weights in host memory between prompts: on a
/// GPU they would otherwise hold ~10.6 GiB (UMT5-xxl) for the whole job, for a model that
/// runs once per new prompt.
pub fn weights_stay_on_host(device: &Device) -> bool {
    !device.is_cpu()
}

/// Where the encoder's weights stay between prompts.
#[derive(Debug, Clone)]
enum Residence {
    /// On the encoding device (the CPU, or a GPU with room to spare).
    Device(Umt5Encoder),
    /// In host memory, copied to the device for each prompt not in the cache.
    Host(HostEncoder),
}

/// Encoder states by token ids, most recently used first.
#[derive(Debug, Default)]
struct PromptCache {
    entries: VecDeque<(Vec<u32>, Tensor)>,
    /// Encoder runs so far (cache misses).
    encodes: usize,
}

impl TextEncoder {
    /// An encoder that stays on `device`.
    pub fn new(
        tokenizer: PromptTokenizer,
        encoder: Umt5Encoder,
        text_len: usize,
        device: Device,
    ) -> Self {
        Self::with(tokenizer, Residence::Device(encoder), text_len, device)
    }

    /// An encoder whose weights stay in host memory and are copied to `device` only while a
    /// prompt missing from the cache is encoded.
    pub fn host_resident(
        tokenizer: PromptTokenizer,
        mut encoder: HostEncoder,
        text_len: usize,
        device: Device,
    ) -> Self {
        encoder.page_lock_for(&device);
        Self::with(tokenizer, Residence::Host(encoder), text_len, device)
    }

    fn with(
        tokenizer: PromptTokenizer,
        encoder: Residence,
        text_len: usize,
        device: Device,
    ) -> Self {
        Self {
            tokenizer,
            encoder,
            text_len,
            device,
            cache: Arc::default(),
        }
    }

    /// Token ids of a prompt after the reference's cleaning.
    pub fn token_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(&clean_prompt(prompt), self.text_len)
            .map_err(|e| candle_core::Error::Msg(format!("cannot tokenize the prompt: {e}")))
    }

    /// Encoder states `[seq_len, dim]` of a prompt; prompts that tokenize alike are encoded
    /// once while they stay among the [`PROMPT_CACHE_ENTRIES`] most recently used.
    pub fn encode(&self, prompt: &str) -> Result<Tensor> {
        let mut states = self.encode_all(&[prompt])?;
        states
            .pop()
            .ok_or_else(|| candle_core::Error::Msg("no encoder states for the prompt".into()))
    }

    /// [`Self::encode`] for several prompts (a job's prompt and negative prompt): a
    /// host-resident encoder is uploaded once for all the prompts missing from the cache.
    pub fn encode_all(&self, prompts: &[&str]) -> Result<Vec<Tensor>> {
        let mut encoder = None;
        let mut states = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let ids = self.token_ids(prompt)?;
            // A prompt repeated within the call is found here after its first encoding.
            if let Some(cached) = self.cached(&ids) {
                states.push(cached);
                continue;
            }
            let encoder = match &mut encoder {
                Some(encoder) => encoder,
                None => encoder.insert(self.device_encoder()?),
            };
            let encoded = encoder.encode(&ids, &self.device)?;
            self.remember(ids, encoded.clone());
            states.push(encoded);
        }
        Ok(states)
    }

    fn remember(&self, ids: Vec<u32>, states: Tensor) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.encodes += 1;
            cache.entries.push_front((ids, states));
            cache.entries.truncate(PROMPT_CACHE_ENTRIES);
        }
    }

    fn cached(&self, ids: &[u32]) -> Option<Tensor> {
        let mut cache = self.cache.lock().ok()?;
        let at = cache.entries.iter().position(|(key, _)| key == ids)?;
        let entry = cache.entries.remove(at)?;
        let states = entry.1.clone();
        cache.entries.push_front(entry);
        Some(states)
    }

    /// How many times the encoder has run (prompts not found in the cache).
    pub fn encoder_runs(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.encodes)
    }

    /// Runs the encoder on token ids, bypassing the cache; a host-resident encoder is
    /// uploaded for the call and freed after it.
    pub fn encode_ids(&self, ids: &[u32]) -> Result<Tensor> {
        // An uploaded copy is freed on return; candle orders the free after the encoder's
        // kernels on the device's one stream.
        self.device_encoder()?.encode(ids, &self.device)
    }

    /// Whether the weights stay in host memory between prompts.
    pub fn is_host_resident(&self) -> bool {
        matches!(self.encoder, Residence::Host(_))
    }

    pub fn config(&self) -> &T5Config {
        match &self.encoder {
            Residence::Device(encoder) => encoder.config(),
            Residence::Host(host) => host.config(),
        }
    }

    /// The encoder on the device: the resident one, or a fresh upload of the host copy.
    pub fn device_encoder(&self) -> Result<Umt5Encoder> {
        match &self.encoder {
            Residence::Device(encoder) => Ok(encoder.clone()),
            Residence::Host(host) => host.upload(&self.device),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::engine::preset::Preset;

    fn text_encoder() -> TextEncoder {
        Preset::Tiny
            .random_pipeline(&Device::Cpu, DType::F32)
            .unwrap()
            .text
    }

    #[test]
    fn a_repeated_prompt_is_encoded_once() {
        let text = text_encoder();
        let first = text.encode("A red fox,  running").unwrap();
        // Cleaning collapses the spaces: the same tokens, so the same cached states.
        let again = text.clone().encode("A red fox, running").unwrap();
        let other = text.encode("a grey wolf").unwrap();
        assert_eq!(text.encoder_runs(), 2);
        let diff = (first - &again).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        assert_ne!(other.dims(), again.dims());
    }

    #[test]
    fn a_host_resident_encoder_gives_the_resident_states() {
        let resident = text_encoder();
        let weights = crate::engine::random_weights::RandomWeights::new(
            crate::engine::preset::RANDOM_WEIGHTS_SEED,
        );
        let vb = weights.var_builder(DType::F32, &Device::Cpu).pp("text");
        let host = HostEncoder::capture(resident.config(), vb).unwrap();
        assert!(host.size_bytes() > 0);
        let text = TextEncoder::host_resident(
            PromptTokenizer::Bytes(ByteTokenizer),
            host,
            resident.text_len,
            Device::Cpu,
        );
        assert!(text.is_host_resident());
        let want = resident.encode("a lighthouse in a storm").unwrap();
        let got = text.encode("a lighthouse in a storm").unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        // Cached like the resident encoder: the second request does not upload again.
        text.encode("a lighthouse in a storm").unwrap();
        assert_eq!(text.encoder_runs(), 1);
    }

    #[test]
    fn a_job_encodes_each_new_prompt_once() {
        let text = text_encoder();
        let want = text.clone().encode("a grey wolf").unwrap();
        let fresh = text_encoder();
        let states = fresh
            .encode_all(&["a grey wolf", DEFAULT_NEGATIVE_PROMPT, "a grey  wolf"])
            .unwrap();
        assert_eq!(states.len(), 3);
        // "a grey  wolf" cleans to the first prompt: two encoder runs, not three.
        assert_eq!(fresh.encoder_runs(), 2);
        for got in [&states[0], &states[2]] {
            let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        }
    }

    #[test]
    fn the_least_recently_used_prompt_is_evicted() {
        let text = text_encoder();
        text.encode(DEFAULT_NEGATIVE_PROMPT).unwrap();
        for i in 0..PROMPT_CACHE_ENTRIES {
            text.encode(&format!("prompt {i}")).unwrap();
            // Used before every new prompt, the negative prompt stays cached.
            text.encode(DEFAULT_NEGATIVE_PROMPT).unwrap();
        }
        assert_eq!(text.encoder_runs(), 1 + PROMPT_CACHE_ENTRIES);
        text.encode("prompt 0").unwrap();
        assert_eq!(text.encoder_runs(), 2 + PROMPT_CACHE_ENTRIES);
    }
}
