//! The JSON Schema of `job.json`, generated from the manifest types so it never drifts;
//! `docs/job.schema.json` is this output (a test keeps it current).

use super::JobManifest;

/// The schema as pretty-printed JSON.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(JobManifest);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_schema_is_current() {
        let shipped =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/job.schema.json"))
                .unwrap_or_default();
        let generated = super::schema_json();
        assert!(
            shipped == generated,
            "docs/job.schema.json is out of date; run `vaced schema > docs/job.schema.json`"
        );
    }
}
