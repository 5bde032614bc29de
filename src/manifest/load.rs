//! Reading `job.json`: JSON syntax errors with their position, unknown keys with a
//! suggestion, wrong types with the key's path, then every value checked, all problems
//! reported at once.

use std::path::{Path, PathBuf};

use super::{FrameSampling, JobManifest, MANIFEST_FILE, MANIFEST_VERSION, ModelName};

/// Frame counts a job may ask for (4n+1, up to 15 s at 16 fps).
pub const MAX_FRAMES: usize = 241;
/// Largest frame side any model accepts.
pub const MAX_SIDE_PX: usize = 4096;
/// Largest frame side of the `tiny` model, to keep CPU jobs small.
pub const TINY_MAX_SIDE_PX: usize = 512;

/// One thing wrong with a manifest, at a key path like `inputs.mask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.field, self.message)
        }
    }
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}, column {column}: {message} (the file is not valid JSON)", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {}", path.display(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ManifestError {
    /// The problems found, or the one parse failure as a problem.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Self::Invalid { problems, .. } => problems.clone(),
            other => vec![Problem::new("", other.to_string())],
        }
    }
}

fn list(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let lines: Vec<String> = many.iter().map(|p| format!("\n  - {p}")).collect();
            format!("{} problems:{}", many.len(), lines.concat())
        }
    }
}

/// Reads and checks `job_dir/job.json`.
pub fn load(job_dir: &Path) -> Result<JobManifest, ManifestError> {
    let path = job_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Unreadable {
        path: path.clone(),
        source,
    })?;
    parse(&text, &path)
}

/// The closest known key to a misspelt one, if any is close.
fn suggestion(unknown: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.to_owned())
}

/// Turns serde's message for an unknown key ("unknown field `x`, expected one of `a`, `b`")
/// into a problem that lists the known keys and suggests the closest.
fn unknown_field(message: &str, parent: &str) -> Option<Problem> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, expected) = rest.split_once('`')?;
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let field = if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    };
    let mut text = "unknown key".to_owned();
    if let Some(best) = suggestion(name, &known) {
        text.push_str(&format!("; did you mean `{best}`?"));
    } else if !known.is_empty() {
        text.push_str(&format!("; known keys here: {}", known.join(", ")));
    } else if expected.contains("there are no fields") {
        text.push_str("; this takes no options");
    }
    Some(Problem::new(field, text))
}

/// Turns serde's message for an unknown name ("unknown variant `x`, expected one of `a`,
/// `b`") into a problem that suggests the closest and lists the rest.
fn unknown_variant(message: &str, field: &str) -> Option<Problem> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (name, expected) = rest.split_once('`')?;
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let mut text = format!("unknown value `{name}`");
    if let Some(best) = suggestion(name, &known) {
        text.push_str(&format!("; did you mean `{best}`?"));
    }
    text.push_str(&format!(" (one of: {})", known.join(", ")));
    Some(Problem::new(field, text))
}

/// Parses manifest text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<JobManifest, ManifestError> {
    let (manifest, problems) = parse_with_problems(text, path)?;
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(ManifestError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

/// Reads `job_dir/job.json`, returning the value problems beside the manifest (so that
/// later checks can add theirs and all are reported at once); fails only when the file
/// cannot be read or does not have the manifest's shape.
pub fn load_with_problems(job_dir: &Path) -> Result<(JobManifest, Vec<Problem>), ManifestError> {
    let path = job_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Unreadable {
        path: path.clone(),
        source,
    })?;
    parse_with_problems(&text, &path)
}

/// [`parse`], with the value problems returned beside the manifest.
pub fn parse_with_problems(
    text: &str,
    path: &Path,
) -> Result<(JobManifest, Vec<Problem>), ManifestError> {
    let invalid = |problems: Vec<Problem>| ManifestError::Invalid {
        path: path.to_owned(),
        problems,
    };
    // Syntax first, so a stray comma is reported as such rather than as a type error.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        return Err(ManifestError::Syntax {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let manifest: JobManifest =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            let message = strip_position(&e.inner().to_string());
            let parent = field.rsplit_once('.').map_or("", |(p, _)| p);
            let problem = unknown_field(&message, if field == "." { "" } else { parent })
                .or_else(|| unknown_field(&message, if field == "." { "" } else { &field }))
                .or_else(|| unknown_variant(&message, if field == "." { "" } else { &field }))
                .unwrap_or_else(|| {
                    Problem::new(if field == "." { String::new() } else { field }, message)
                });
            invalid(vec![problem])
        })?;
    let problems = check(&manifest);
    Ok((manifest, problems))
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

/// Sizes a model renders, or `None` for any multiple of 16 up to its largest side.
pub fn supported_sizes(model: ModelName) -> Option<&'static [(usize, usize)]> {
    match model {
        ModelName::Vace1_3b => Some(&[(832, 480), (480, 832)]),
        ModelName::Vace14b => Some(&[(1280, 720), (720, 1280), (832, 480), (480, 832)]),
        ModelName::Tiny => None,
    }
}

/// Checks a frame size against the model; `None` when fine.
pub fn size_problem(model: ModelName, width_px: usize, height_px: usize) -> Option<String> {
    if width_px == 0 || height_px == 0 || width_px % 16 != 0 || height_px % 16 != 0 {
        return Some(format!(
            "{width_px}x{height_px}: width and height must be positive multiples of 16"
        ));
    }
    match supported_sizes(model) {
        Some(sizes) if !sizes.contains(&(width_px, height_px)) => {
            let names: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect();
            Some(format!(
                "{} renders {}, not {width_px}x{height_px}",
                model.as_str(),
                names.join(", ")
            ))
        }
        None if width_px.max(height_px) > TINY_MAX_SIDE_PX => Some(format!(
            "the tiny model renders sides up to {TINY_MAX_SIDE_PX} px, not {width_px}x{height_px}"
        )),
        _ if width_px.max(height_px) > MAX_SIDE_PX => Some(format!(
            "{width_px}x{height_px} is larger than {MAX_SIDE_PX} px"
        )),
        _ => None,
    }
}

/// Checks a frame count; `None` when fine.
pub fn frames_problem(frames: usize) -> Option<String> {
    if frames == 0 || (frames - 1) % 4 != 0 {
        let below = 4 * ((frames.max(1) - 1) / 4) + 1;
        return Some(format!(
            "{frames} is not 4n+1; use {below} or {}",
            below + 4
        ));
    }
    (frames > MAX_FRAMES)
        .then(|| format!("{frames} is more than the {MAX_FRAMES} frames a job may have"))
}

fn range(problems: &mut Vec<Problem>, field: &str, value: f64, low: f64, high: f64) {
    if !(low..=high).contains(&value) {
        problems.push(Problem::new(
            field,
            format!("{value} is outside {low}..={high}"),
        ));
    }
}

/// Every value check that needs no media.
fn check(m: &JobManifest) -> Vec<Problem> {
    let mut problems = Vec::new();
    if m.version != MANIFEST_VERSION {
        problems.push(Problem::new(
            "version",
            format!(
                "this vaced reads manifest version {MANIFEST_VERSION}, not {}",
                m.version
            ),
        ));
    }
    if m.prompt.trim().is_empty() {
        problems.push(Problem::new("prompt", "is empty; say what to generate"));
    }
    if let (Some(size), Some(model)) = (m.size, m.model)
        && let Some(message) = size_problem(model, size.width_px, size.height_px)
    {
        problems.push(Problem::new("size", message));
    }
    if let Some(frames) = m.frames
        && let Some(message) = frames_problem(frames)
    {
        problems.push(Problem::new("frames", message));
    }
    range(&mut problems, "fps", m.fps as f64, 1.0, 120.0);
    if let Some(steps) = m.steps {
        range(&mut problems, "steps", steps as f64, 1.0, 1000.0);
    }
    range(&mut problems, "guidance", m.guidance, 0.0, 50.0);
    range(&mut problems, "shift", m.shift, 0.1, 100.0);
    range(&mut problems, "context_scale", m.context_scale, 0.0, 4.0);
    range(
        &mut problems,
        "priority",
        m.priority as f64,
        -1000.0,
        1000.0,
    );
    range(&mut problems, "output.crf", m.output.crf as f64, 0.0, 51.0);
    let inputs = &m.inputs;
    let named = [
        ("inputs.video".to_owned(), &inputs.video),
        ("inputs.mask".to_owned(), &inputs.mask),
    ];
    let references = inputs
        .reference_images
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("inputs.reference_images[{i}]"), r));
    let paths = named
        .iter()
        .filter_map(|(field, p)| p.as_ref().map(|p| (field.clone(), p)))
        .chain(references);
    for (field, path) in paths {
        if let Err(e) = path.check() {
            problems.push(Problem::new(field, e.to_string()));
        }
    }
    if m.inputs.mask.is_some() && m.inputs.video.is_none() {
        problems.push(Problem::new(
            "inputs.mask",
            "a mask needs a source video; add `inputs.video` or remove the mask",
        ));
    }
    if m.inputs.video.is_none() && m.inputs.frame_sampling != FrameSampling::default() {
        problems.push(Problem::new(
            "inputs.frame_sampling",
            "only applies to a source video; add `inputs.video`",
        ));
    }
    for (i, address) in m.notify.iter().enumerate() {
        let valid = address.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !address.contains(char::is_whitespace)
        });
        if !valid {
            problems.push(Problem::new(
                format!("notify[{i}]"),
                format!("`{address}` is not an e-mail address"),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, Path::new("job.json")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems(),
        }
    }

    #[test]
    fn a_minimal_manifest_takes_the_reference_defaults() {
        let m = parse(
            r#"{"version": 1, "prompt": "a fox"}"#,
            Path::new("job.json"),
        )
        .unwrap();
        assert_eq!(m.model, None);
        assert_eq!(
            (m.fps, m.guidance, m.shift, m.context_scale),
            (16, 5.0, 16.0, 1.0)
        );
        assert_eq!(m.output.crf, 18);
        assert!(m.seed.is_none() && m.frames.is_none() && m.size.is_none());
    }

    #[test]
    fn misspelt_keys_get_a_suggestion() {
        let p = problems(r#"{"version": 1, "promt": "a fox"}"#);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "promt");
        assert!(p[0].message.contains("did you mean `prompt`"), "{p:?}");
        let p = problems(r#"{"version": 1, "prompt": "a", "inputs": {"maks": "m.png"}}"#);
        assert_eq!(p[0].field, "inputs.maks", "{p:?}");
        assert!(p[0].message.contains("`mask`"), "{p:?}");
        let p = problems(r#"{"version": 1, "prompt": "a", "colour": "red"}"#);
        assert!(p[0].message.contains("known keys here"), "{p:?}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let p = problems(r#"{"version": 1, "prompt": "a", "inputs": {"video": 3}}"#);
        assert_eq!(p[0].field, "inputs.video", "{p:?}");
        assert!(p[0].message.contains("expected a string"), "{p:?}");
        let p = problems(r#"{"version": 1, "prompt": "a", "solver": "euler"}"#);
        assert_eq!(p[0].field, "solver", "{p:?}");
    }

    #[test]
    fn syntax_errors_give_the_position() {
        let err = parse("{\n  \"version\": 1,\n}", Path::new("job.json")).unwrap_err();
        assert!(
            matches!(err, ManifestError::Syntax { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn all_value_problems_are_reported_together() {
        let p = problems(
            r#"{"version": 2, "prompt": " ", "frames": 80, "size": "830x480", "steps": 0, "model": "vace-1.3b",
                "inputs": {"mask": "m.png"}, "notify": ["bob"]}"#,
        );
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "version",
                "prompt",
                "size",
                "frames",
                "steps",
                "inputs.mask",
                "notify[0]"
            ]
        );
        assert!(p[3].message.contains("use 77 or 81"), "{p:?}");
    }

    #[test]
    fn sizes_follow_the_model() {
        assert_eq!(size_problem(ModelName::Vace1_3b, 832, 480), None);
        assert!(
            size_problem(ModelName::Vace1_3b, 1280, 720)
                .unwrap()
                .contains("832x480, 480x832")
        );
        assert_eq!(size_problem(ModelName::Vace14b, 1280, 720), None);
        assert_eq!(size_problem(ModelName::Tiny, 128, 80), None);
        assert!(
            size_problem(ModelName::Tiny, 1024, 576)
                .unwrap()
                .contains("512")
        );
        assert!(
            size_problem(ModelName::Tiny, 100, 80)
                .unwrap()
                .contains("16")
        );
    }

    #[test]
    fn paths_escaping_the_folder_are_refused_while_parsing() {
        let p = problems(r#"{"version": 1, "prompt": "a", "inputs": {"video": "../x.mp4"}}"#);
        assert_eq!(p[0].field, "inputs.video", "{p:?}");
        assert!(p[0].message.contains("leaves the job folder"), "{p:?}");
    }
}
