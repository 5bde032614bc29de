//! The UMT5 encoder against the reference on padded rows.

mod common;

use candle_core::{DType, IndexOp};
use common::*;
use vaced::engine::config::T5Config;
use vaced::engine::text::{ByteTokenizer, HostEncoder, PromptTokenizer, TextEncoder, Umt5Encoder};

#[test]
fn parity_umt5_encoder_matches_reference() {
    for case in cases("t5_") {
        let meta = json(&case);
        let cfg: T5Config = serde_json::from_value(meta["config"].clone()).unwrap();
        let encoder = Umt5Encoder::new(&cfg, weights(&case)).unwrap();
        // The form a GPU worker uses: weights in host memory, uploaded per prompt.
        let host = HostEncoder::capture(&cfg, weights(&case)).unwrap();
        let uploaded = TextEncoder::host_resident(
            PromptTokenizer::Bytes(ByteTokenizer),
            host,
            512,
            test_device(),
        );
        let io = io(&case);
        let ids = get(&io, "ids").to_dtype(DType::U32).unwrap();
        let out = encoder.forward(&ids, get(&io, "mask")).unwrap();
        assert_t5_close(&format!("{case} out"), &out, get(&io, "out"));

        // The pipeline encodes each prompt alone, without padding: its rows must equal the
        // real rows of the padded batch.
        let lengths: Vec<f32> = get(&io, "mask").sum(1).unwrap().to_vec1().unwrap();
        for (row, len) in lengths.iter().enumerate() {
            let len = *len as usize;
            let row_ids: Vec<u32> = ids.i((row, ..len)).unwrap().to_vec1().unwrap();
            let alone = encoder.encode(&row_ids, &test_device()).unwrap();
            let padded = get(&io, "out").i((row, ..len)).unwrap();
            assert_t5_close(&format!("{case} row {row} encoded alone"), &alone, &padded);
            let again = uploaded.encode_ids(&row_ids).unwrap();
            let diff = (&again - &alone).unwrap().abs().unwrap().max_all().unwrap();
            let diff: f32 = diff.to_dtype(DType::F32).unwrap().to_scalar().unwrap();
            assert_eq!(
                diff, 0.0,
                "{case} row {row}: the uploaded host copy differs"
            );
        }
    }
}
