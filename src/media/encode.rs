//! Writing results: H.264 MP4 for the finished video and PNG for single frames.
//!
//! The MP4 is constant frame rate (frame `k` at `k / fps`), yuv420p, BT.709 tagged, with
//! the index at the front (`+faststart`) so browsers can play it while it downloads. The
//! general `write_video` behind it also lets tests make VP9, MPEG-4 and ProRes files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ffmpeg_next as ffmpeg;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::color;
use ffmpeg_next::{Dictionary, Packet, Rational};

use super::convert::FromRgb;
use super::error::Error;
use super::frame::Frame;
use super::libav::{file_url, init};

/// How to encode an MP4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Settings {
    /// Frames per second; the file is constant frame rate.
    pub fps: u32,
    /// libx264's constant rate factor, 0 (lossless) to 51; 18 looks visually lossless.
    pub crf: u8,
    /// libx264's speed/size preset, `ultrafast` … `veryslow`.
    pub preset: String,
}

/// Writes `frames` as an H.264 (libx264) yuv420p MP4 at a constant `settings.fps`.
///
/// The frames must share one even size. The file appears at `path` only when complete; on
/// failure nothing is left behind and an older file at `path` is untouched.
pub fn write_mp4(path: &Path, frames: &[Frame], settings: &Mp4Settings) -> Result<(), Error> {
    write_video(
        path,
        frames,
        &VideoSpec {
            container: "mp4",
            codec: "libx264",
            pixel: Pixel::YUV420P,
            fps: settings.fps,
            codec_options: vec![
                ("crf", settings.crf.to_string()),
                ("preset", settings.preset.clone()),
            ],
            mux_options: vec![("movflags", "+faststart")],
            colour: color::Space::BT709,
        },
    )
}

/// A container, an encoder and its settings: what `write_video` makes.
pub(crate) struct VideoSpec<'a> {
    /// FFmpeg's muxer name: `mp4`, `matroska`, `webm`, `mov`, `avi`.
    pub(crate) container: &'a str,
    /// FFmpeg's encoder name: `libx264`, `libvpx-vp9`, `mpeg4`, `prores_ks`.
    pub(crate) codec: &'a str,
    /// The pixel format the encoder takes.
    pub(crate) pixel: Pixel,
    /// Frames per second, constant.
    pub(crate) fps: u32,
    /// Private options of the encoder.
    pub(crate) codec_options: Vec<(&'a str, String)>,
    /// Options of the muxer.
    pub(crate) mux_options: Vec<(&'a str, &'a str)>,
    /// The YUV matrix to convert with and tag: BT.709, or SMPTE170M (BT.601) for codecs
    /// that cannot carry a tag, whose small videos readers decode as BT.601.
    pub(crate) colour: color::Space,
}

/// Encodes `frames` per `spec` into `path`.
///
/// The video is written to a hidden sibling and renamed into place when complete, so
/// `path` never holds a half-written video and a failed write leaves an old file intact.
pub(crate) fn write_video(path: &Path, frames: &[Frame], spec: &VideoSpec) -> Result<(), Error> {
    let (width, height) = common_even_size(path, frames)?;
    if spec.fps == 0 || spec.fps > i32::MAX as u32 {
        return Err(settings_error(
            path,
            spec,
            "the frame rate must be at least 1".into(),
        ));
    }
    let partial = partial_path(path);
    let result = encode(path, &partial, frames, spec, (width, height)).and_then(|()| {
        std::fs::rename(&partial, path).map_err(|err| Error::Encode {
            path: path.to_path_buf(),
            reason: format!("moving the finished video into place: {err}"),
        })
    });
    if result.is_err() {
        // Nothing to clean up if encoding failed before creating it.
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `dir/.name.partial-<pid>-<n>` next to `path`: same file system, so renaming is atomic.
fn partial_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "video".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}

/// The frames' common size, which must be even for 4:2:0 chroma.
fn common_even_size(path: &Path, frames: &[Frame]) -> Result<(u32, u32), Error> {
    let first = frames.first().ok_or_else(|| Error::NoFrames {
        path: path.to_path_buf(),
    })?;
    let (w, h) = (first.width, first.height);
    for (index, frame) in frames.iter().enumerate() {
        let bad_size = (frame.width, frame.height) != (w, h)
            || w % 2 != 0
            || h % 2 != 0
            || w == 0
            || h == 0
            || frame.rgb.len() != w * h * 3;
        if bad_size {
            return Err(Error::FrameSize {
                path: path.to_path_buf(),
                index,
                width_px: frame.width,
                height_px: frame.height,
                first_width_px: w,
                first_height_px: h,
            });
        }
    }
    Ok((w as u32, h as u32))
}

fn settings_error(path: &Path, spec: &VideoSpec, reason: String) -> Error {
    let settings = spec
        .codec_options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::iter::once(format!("fps={}", spec.fps)))
        .collect::<Vec<_>>()
        .join(", ");
    Error::EncoderSettings {
        path: path.to_path_buf(),
        codec: spec.codec.to_string(),
        settings,
        reason,
    }
}

/// Encodes into `write_to`; errors name `path`, the file the user asked for.
fn encode(
    path: &Path,
    write_to: &Path,
    frames: &[Frame],
    spec: &VideoSpec,
    (width, height): (u32, u32),
) -> Result<(), Error> {
    init();
    let failed = |what: &str, err: ffmpeg::Error| Error::Encode {
        path: path.to_path_buf(),
        reason: format!("{what}: {err}"),
    };
    let fps = spec.fps as i32;
    let frame_time = Rational::new(1, fps);

    let mut output = ffmpeg::format::output_as(&file_url(write_to)?, spec.container)
        .map_err(|err| failed("creating the file", err))?;
    let codec = ffmpeg::encoder::find_by_name(spec.codec).ok_or_else(|| {
        settings_error(path, spec, "this FFmpeg build has no such encoder".into())
    })?;
    let global_header = output
        .format()
        .flags()
        .contains(ffmpeg::format::Flags::GLOBAL_HEADER);

    let mut context = ffmpeg::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|err| failed("setting up the encoder", err))?;
    context.set_width(width);
    context.set_height(height);
    context.set_format(spec.pixel);
    context.set_time_base(frame_time);
    context.set_frame_rate(Some(Rational::new(fps, 1)));
    // Tag what `FromRgb` writes, so players need not guess from the size.
    context.set_colorspace(spec.colour);
    if spec.colour == color::Space::BT709 {
        context.set_color_primaries(color::Primaries::BT709);
        context.set_color_transfer_characteristic(color::TransferCharacteristic::BT709);
    }
    context.set_color_range(color::Range::MPEG);
    if global_header {
        context.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    for (key, value) in &spec.codec_options {
        options.set(key, value);
    }
    let mut encoder = context
        .open_with(options)
        .map_err(|err| settings_error(path, spec, err.to_string()))?;

    let stream_index = {
        let mut stream = output
            .add_stream(codec)
            .map_err(|err| failed("adding the video stream", err))?;
        stream.set_parameters(&encoder);
        // Muxers may refine this (MP4 picks a finer timescale); packets are rescaled below.
        stream.set_time_base(frame_time);
        stream.set_avg_frame_rate(Rational::new(fps, 1));
        stream.set_rate(Rational::new(fps, 1));
        stream.index()
    };
    let mut mux_options = Dictionary::new();
    for (key, value) in &spec.mux_options {
        mux_options.set(key, value);
    }
    output
        .write_header_with(mux_options)
        .map_err(|err| failed("writing the header", err))?;
    let stream_time = output
        .stream(stream_index)
        .map(|s| s.time_base())
        .unwrap_or(frame_time);

    let drain = |encoder: &mut ffmpeg::encoder::Video,
                 output: &mut ffmpeg::format::context::Output|
     -> Result<(), Error> {
        loop {
            let mut packet = Packet::empty();
            match encoder.receive_packet(&mut packet) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {
                    return Ok(());
                }
                Err(err) => return Err(failed("encoding", err)),
            }
            // Constant frame rate: every frame lasts one tick, the last one included.
            if packet.duration() <= 0 {
                packet.set_duration(1);
            }
            packet.set_stream(stream_index);
            packet.rescale_ts(frame_time, stream_time);
            packet
                .write_interleaved(output)
                .map_err(|err| failed("writing a packet", err))?;
        }
    };

    let mut to_yuv = FromRgb::new(width, height, spec.pixel, spec.colour)
        .map_err(|err| failed("setting up the colour conversion", err))?;
    for (k, frame) in frames.iter().enumerate() {
        let mut yuv = to_yuv
            .convert(frame)
            .map_err(|err| failed("converting a frame", err))?;
        yuv.set_pts(Some(k as i64));
        encoder
            .send_frame(&yuv)
            .map_err(|err| failed("encoding", err))?;
        drain(&mut encoder, &mut output)?;
    }
    encoder
        .send_eof()
        .map_err(|err| failed("finishing the encoding", err))?;
    drain(&mut encoder, &mut output)?;
    output
        .write_trailer()
        .map_err(|err| failed("finishing the file", err))?;
    Ok(())
}
