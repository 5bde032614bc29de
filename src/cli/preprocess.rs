//! `vaced preprocess --task NAME [options] --video IN [--mask IN] --out DIR`: one
//! preprocessing task run as a job would run it (the same checks, the same code), its
//! results written as files to inspect or to render from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::device;
use crate::manifest::{self, FrameSize, ManifestError, ModelName, Problem};
use crate::preprocess::{AnnotatorDir, write};
use crate::render;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task: gray, depth, scribble, scribble_edges, inpainting, outpainting,
    /// outpainting_inner, extension, layout_bbox, reference (see docs/preprocessing.md).
    #[arg(long)]
    task: String,
    /// Source video (a video file or a folder of frames).
    #[arg(long)]
    video: Option<PathBuf>,
    /// Mask (white = region) for `inpainting`; the subject's mask for `reference`.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Folder to create for the results.
    #[arg(long)]
    out: PathBuf,
    /// `inpainting` and `reference`: a box `x1,y1,x2,y2` in pixels.
    #[arg(long = "box", value_name = "X1,Y1,X2,Y2")]
    pixel_box: Option<String>,
    /// `inpainting`: keyframed boxes `FRAME:x1,y1,x2,y2 ...`; `layout_bbox`: the start and
    /// end box `x1,y1,x2,y2 x1,y1,x2,y2`.
    #[arg(long)]
    boxes: Option<String>,
    /// `outpainting`: sides to generate, e.g. `left,right`.
    #[arg(long)]
    direction: Option<String>,
    /// `outpainting`: border as a fraction of the source's width or height.
    #[arg(long)]
    expand_ratio: Option<f64>,
    /// `extension`: first_frame, last_frame, first_last_frame, first_clip, last_clip,
    /// first_last_clip; `reference`: plain, mask, box.
    #[arg(long)]
    mode: Option<String>,
    /// `extension` (frame modes) and `reference`: the image.
    #[arg(long)]
    image: Option<PathBuf>,
    /// `extension` `first_last_frame`: the last image.
    #[arg(long)]
    last_image: Option<PathBuf>,
    /// `extension` `first_last_clip`: the clip to end on.
    #[arg(long)]
    last_clip: Option<PathBuf>,
    /// `extension` clip modes: frames kept from each clip.
    #[arg(long)]
    keep_frames: Option<usize>,
    /// `scribble_edges`: line density, 0 to 1.
    #[arg(long)]
    detail: Option<f64>,
    /// `layout_bbox`: the outline's colour `r,g,b`.
    #[arg(long)]
    color: Option<String>,
    /// Frames of the result (4n+1).
    #[arg(long)]
    frames: Option<usize>,
    /// Frame rate: source sampling and the written videos.
    #[arg(long, default_value_t = 16)]
    fps: u32,
    /// Fit the results to `WIDTHxHEIGHT` (default: the task's own size; the canvas of
    /// `layout_bbox` is the model's size unless given).
    #[arg(long)]
    size: Option<FrameSize>,
    /// The model whose defaults (size, frames) apply.
    #[arg(long, default_value = "vace-1.3b", value_parser = parse_model)]
    model: ModelName,
    /// Also write a job.json with this prompt, making the folder a job that renders them.
    #[arg(long)]
    prompt: Option<String>,
    /// Annotator weights folder (the VACE-Annotators download).
    #[arg(long, env = "VACED_ANNOTATORS")]
    annotators: Option<PathBuf>,
    /// `cpu` or `cuda:N`, for the annotators with networks.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn parse_model(text: &str) -> Result<ModelName, String> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| format!("`{text}`: use vace-1.3b, vace-14b or tiny"))
}

/// A path as a job path relative to `/`, so the job machinery can read it where it is.
fn from_root(path: &Path) -> anyhow::Result<String> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    Ok(absolute
        .strip_prefix("/")
        .unwrap_or(&absolute)
        .to_string_lossy()
        .into_owned())
}

/// `a,b,c,d` as numbers.
fn numbers(text: &str, flag: &str, count: usize) -> anyhow::Result<Vec<f64>> {
    let values: Result<Vec<f64>, _> = text.split(',').map(|v| v.trim().parse::<f64>()).collect();
    match values {
        Ok(v) if v.len() == count => Ok(v),
        _ => bail!("--{flag} `{text}`: give {count} comma-separated numbers"),
    }
}

/// The task's options as job.json would hold them.
fn task_json(args: &Args) -> anyhow::Result<Value> {
    let mut task = Map::new();
    task.insert("task".into(), json!(args.task));
    let path = |p: &Option<PathBuf>| p.as_deref().map(from_root).transpose();
    if let Some(text) = &args.pixel_box {
        task.insert("box".into(), json!(numbers(text, "box", 4)?));
    }
    if let Some(text) = &args.boxes {
        let boxes: anyhow::Result<Vec<Value>> = text
            .split_whitespace()
            .map(|item| match item.split_once(':') {
                Some((frame, b)) => {
                    let frame: usize = frame
                        .parse()
                        .with_context(|| format!("--boxes `{item}`: the frame before `:`"))?;
                    Ok(json!({"frame": frame, "box": numbers(b, "boxes", 4)?}))
                }
                None => Ok(json!(numbers(item, "boxes", 4)?)),
            })
            .collect();
        task.insert("boxes".into(), Value::Array(boxes?));
    }
    if let Some(text) = &args.direction {
        let sides: Vec<&str> = text.split(',').map(str::trim).collect();
        task.insert("direction".into(), json!(sides));
    }
    for (key, value) in [
        ("expand_ratio", args.expand_ratio.map(|v| json!(v))),
        ("mode", args.mode.as_ref().map(|v| json!(v))),
        ("keep_frames", args.keep_frames.map(|v| json!(v))),
        ("detail", args.detail.map(|v| json!(v))),
        ("image", path(&args.image)?.map(|v| json!(v))),
        ("last_image", path(&args.last_image)?.map(|v| json!(v))),
        ("last_clip", path(&args.last_clip)?.map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            task.insert(key.into(), value);
        }
    }
    if let Some(text) = &args.color {
        let rgb = numbers(text, "color", 3)?;
        task.insert(
            "color".into(),
            json!(rgb.iter().map(|v| *v as i64).collect::<Vec<_>>()),
        );
    }
    if args.task == "reference"
        && let Some(mask) = path(&args.mask)?
    {
        task.insert("mask".into(), json!(mask));
    }
    Ok(Value::Object(task))
}

/// Job fields and task options named as this command's flags.
fn as_flag(problem: Problem) -> Problem {
    let field = problem.field.as_str();
    let flag = match field {
        "inputs.video" => "--video".to_owned(),
        "inputs.mask" => "--mask".to_owned(),
        "preprocess" | "preprocess[0]" | "preprocess[0].task" => "--task".to_owned(),
        "" => String::new(),
        _ => match field.strip_prefix("preprocess[0].") {
            Some(key) => {
                let key = key.split(['.', '[']).next().unwrap_or(key);
                format!("--{}", key.replace('_', "-"))
            }
            None => format!("--{}", field.replace('_', "-")),
        },
    };
    Problem::new(flag, problem.message)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!(
            "--out {}: already exists; choose a new folder",
            args.out.display()
        );
    }
    let mut inputs = Map::new();
    if let Some(video) = &args.video {
        inputs.insert("video".into(), json!(from_root(video)?));
    }
    if args.task != "reference"
        && let Some(mask) = &args.mask
    {
        inputs.insert("mask".into(), json!(from_root(mask)?));
    }
    let mut job = json!({
        "version": 1,
        "prompt": args.prompt.clone().unwrap_or_else(|| "preprocess".to_owned()),
        "fps": args.fps,
        "inputs": inputs,
        "preprocess": [task_json(&args)?],
    });
    if let Some(frames) = args.frames {
        job["frames"] = json!(frames);
    }
    if let Some(size) = args.size {
        job["size"] = json!(size.to_string());
    }
    let text = serde_json::to_string(&job)?;
    let root = Path::new("/");
    let annotators = AnnotatorDir::new(args.annotators.clone());
    let invalid = |problems: Vec<Problem>| ManifestError::Invalid {
        path: PathBuf::from(format!("vaced preprocess --task {}", args.task)),
        problems: problems.into_iter().map(as_flag).collect(),
    };
    let (manifest, problems) = manifest::parse_with_problems(&text, Path::new("job.json"))
        .map_err(|e| invalid(e.problems()))?;
    let plan = match render::plan(root, &manifest, args.model, &annotators) {
        Ok(plan) if problems.is_empty() => plan,
        Ok(_) => return Err(invalid(problems).into()),
        Err(more) => return Err(invalid(problems.into_iter().chain(more).collect()).into()),
    };
    let dev = device::open(&args.device)?;
    let prepared = render::preprocess_media(&plan, &dev, args.size)
        .with_context(|| format!("running `{}`", args.task))?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let written = write::write(&prepared, &args.task, &args.out, args.fps)
        .with_context(|| format!("writing into {}", args.out.display()))?;
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    for path in written
        .video
        .iter()
        .chain(&written.mask)
        .chain(&written.references)
    {
        println!("{}", path.display());
    }
    if let Some(prompt) = &args.prompt {
        let mut inputs = Map::new();
        if let Some(video) = written.video.as_ref().and_then(name) {
            inputs.insert("video".into(), json!(video));
        }
        if let Some(mask) = written.mask.as_ref().and_then(name) {
            inputs.insert("mask".into(), json!(mask));
        }
        let references: Vec<Option<String>> = written.references.iter().map(name).collect();
        if !references.is_empty() {
            inputs.insert("reference_images".into(), json!(references));
        }
        let job = json!({
            "version": 1,
            "prompt": prompt,
            "frames": plan.frames,
            "fps": args.fps,
            "inputs": inputs,
        });
        let path = args.out.join(manifest::MANIFEST_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&job)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
