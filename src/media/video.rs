//! Reading videos and image sequences into RGB frames: `probe` for what a video holds,
//! `decode` and `decode_sequence` for the frames a `FramePick` selects.
//!
//! A first pass reads packet timestamps only (cheap, no decoding) to get an exact frame
//! count and when each frame is on screen; the second pass decodes and keeps only the
//! selected frames, so memory holds what the model will see and no more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;
use ffmpeg_next::Rational;
use ffmpeg_next::codec::packet::Packet;
use ffmpeg_next::media::Type;
use ffmpeg_next::util::frame::video::Video;

use super::convert::ToRgb;
use super::error::Error;
use super::frame::Frame;
use super::libav::open_input;
use super::still;
use super::timeline::{PickError, Timeline, is_positive_rate};

/// What a video file holds, from its container and an exact count of its packets.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Frame width in pixels.
    pub width_px: usize,
    /// Frame height in pixels.
    pub height_px: usize,
    /// Exact number of frames (video packets), not the container's estimate.
    pub frames: usize,
    /// The stream's average frame rate.
    pub fps: f64,
    /// From the first frame's start to the last frame's end.
    pub duration_secs: f64,
    /// FFmpeg's name for the codec, e.g. `"h264"`, `"vp9"`.
    pub codec: String,
}

impl VideoInfo {
    /// How many frames `FramePick::AtFps { fps, .. }` can take from the clip.
    pub fn frames_at_fps(&self, fps: f64) -> usize {
        super::timeline::instants_before(self.duration_secs, fps)
    }
}

/// Which frames of a clip to take.
#[derive(Debug, Clone, PartialEq)]
pub enum FramePick {
    /// `count` frames resampled to `fps`: output `k` is the frame on screen at `k / fps`.
    AtFps {
        /// The rate to sample at.
        fps: f64,
        /// How many frames to take; the clip must last long enough.
        count: usize,
    },
    /// `count` frames spread evenly from the first to the last frame, whatever the clip's
    /// length (the reference's `keep_last` sampling).
    FitClip {
        /// How many frames to take; at most the clip's frame count.
        count: usize,
    },
}

/// Reads what `path` holds: size, exact frame count, frame rate, duration and codec.
pub fn probe(path: &Path) -> Result<VideoInfo, Error> {
    let scan = scan(path)?;
    let frames = scan.timeline.len();
    let duration_secs = scan.timeline.duration_secs();
    let fps = match scan.avg_fps.or(scan.rate_fps) {
        Some(fps) => fps,
        None if duration_secs > 0.0 => frames as f64 / duration_secs,
        None => 0.0,
    };
    Ok(VideoInfo {
        width_px: scan.width_px,
        height_px: scan.height_px,
        frames,
        fps,
        duration_secs,
        codec: scan.codec,
    })
}

/// Decodes the frames `pick` selects from the video at `path`, as RGB8 at native size.
pub fn decode(path: &Path, pick: &FramePick) -> Result<Vec<Frame>, Error> {
    let scan = scan(path)?;
    let picks = scan
        .timeline
        .pick(pick)
        .map_err(|err| pick_error(path, err, pick, &scan.timeline))?;
    let mut wanted = vec![false; scan.timeline.len()];
    for &i in &picks {
        wanted[i] = true;
    }
    let kept = decode_wanted(path, &scan, &wanted)?;
    Ok(assemble(&picks, kept))
}

/// Loads the images `pick` selects from a sequence; image `i` is frame `i` of the clip.
///
/// For `AtFps` the sequence is taken to run at that rate (image `k` for output `k`); for
/// `FitClip` images are spread like a video's frames, each lasting one index unit.
pub fn decode_sequence(paths: &[PathBuf], pick: &FramePick) -> Result<Vec<Frame>, Error> {
    let first = paths.first().ok_or(Error::EmptySequence)?;
    let (first_w, first_h) = still::dimensions(first)?;
    for path in &paths[1..] {
        let (w, h) = still::dimensions(path)?;
        if (w, h) != (first_w, first_h) {
            return Err(size_error(path, (w, h), (first_w, first_h)));
        }
    }
    // Errors about the whole sequence name its folder.
    let folder = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(first);
    let picks = match *pick {
        FramePick::AtFps { fps, count } => {
            if !is_positive_rate(fps) {
                return Err(Error::InvalidFps {
                    path: folder.to_path_buf(),
                    fps,
                });
            }
            if count > paths.len() {
                return Err(Error::TooShort {
                    path: folder.to_path_buf(),
                    fps,
                    requested: count,
                    available: paths.len(),
                    duration_secs: paths.len() as f64 / fps,
                });
            }
            (0..count).collect()
        }
        FramePick::FitClip { .. } => {
            let timeline = Timeline::uniform(paths.len());
            timeline
                .pick(pick)
                .map_err(|err| pick_error(folder, err, pick, &timeline))?
        }
    };
    let mut kept = HashMap::new();
    for &i in &picks {
        if kept.contains_key(&i) {
            continue;
        }
        let frame = still::load_still(&paths[i])?;
        if (frame.width, frame.height) != (first_w, first_h) {
            return Err(size_error(
                &paths[i],
                (frame.width, frame.height),
                (first_w, first_h),
            ));
        }
        kept.insert(i, frame);
    }
    Ok(assemble(&picks, kept))
}

fn size_error(path: &Path, (w, h): (usize, usize), (first_w, first_h): (usize, usize)) -> Error {
    Error::SequenceSize {
        path: path.to_path_buf(),
        width_px: w,
        height_px: h,
        expected_width_px: first_w,
        expected_height_px: first_h,
    }
}

/// The output in pick order; a frame picked several times is cloned, moved on its last use.
fn assemble(picks: &[usize], mut kept: HashMap<usize, Frame>) -> Vec<Frame> {
    let mut last_use = HashMap::new();
    for (k, &i) in picks.iter().enumerate() {
        last_use.insert(i, k);
    }
    picks
        .iter()
        .enumerate()
        .filter_map(|(k, i)| {
            if last_use.get(i) == Some(&k) {
                kept.remove(i)
            } else {
                kept.get(i).cloned()
            }
        })
        .collect()
}

fn pick_error(path: &Path, err: PickError, pick: &FramePick, timeline: &Timeline) -> Error {
    let path = path.to_path_buf();
    match (err, pick) {
        (PickError::InvalidFps, &FramePick::AtFps { fps, .. }) => Error::InvalidFps { path, fps },
        (PickError::TooShort { available }, &FramePick::AtFps { fps, count }) => Error::TooShort {
            path,
            fps,
            requested: count,
            available,
            duration_secs: timeline.duration_secs(),
        },
        (PickError::TooFewFrames { available }, pick) => Error::TooFewFrames {
            path,
            requested: match *pick {
                FramePick::AtFps { count, .. } | FramePick::FitClip { count } => count,
            },
            available,
        },
        (err, _) => Error::Decode {
            path,
            reason: format!("cannot pick frames: {err:?}"),
        },
    }
}

/// What the packet pass learns about the video stream.
struct Scan {
    stream_index: usize,
    width_px: usize,
    height_px: usize,
    codec: String,
    avg_fps: Option<f64>,
    rate_fps: Option<f64>,
    /// Presentation timestamps in stream time base, sorted; `None` if packets lack them.
    sorted_pts: Option<Vec<i64>>,
    timeline: Timeline,
}

/// One video packet's timing, in stream time base.
struct PacketTime {
    pts: Option<i64>,
    duration: i64,
}

fn positive_rate(rate: Rational) -> Option<f64> {
    (rate.numerator() > 0 && rate.denominator() > 0).then(|| f64::from(rate))
}

/// Reads every packet of the best video stream, without decoding, to time its frames.
fn scan(path: &Path) -> Result<Scan, Error> {
    let mut input = open_input(path)?;
    let stream = input
        .streams()
        .best(Type::Video)
        .ok_or_else(|| Error::NoVideoStream {
            path: path.to_path_buf(),
        })?;
    let stream_index = stream.index();
    let time_base = stream.time_base();
    let avg_fps = positive_rate(stream.avg_frame_rate());
    let rate_fps = positive_rate(stream.rate());
    let listed_frames = stream.frames();
    let parameters = stream.parameters();
    let codec = parameters.id().name().to_string();
    // SAFETY: the parameters belong to a stream of the open input, which outlives the read.
    let (width_px, height_px) = unsafe {
        let p = parameters.as_ptr();
        ((*p).width.max(0) as usize, (*p).height.max(0) as usize)
    };
    // The MP4/MOV index lists every sample, so fewer packets than listed means the file
    // was cut; other containers only estimate their counts.
    let index_is_exact = input.format().name().contains("mp4");

    let mut packets = Vec::new();
    let mut discarded = 0usize;
    let mut invalid_in_a_row = 0;
    loop {
        // A fresh packet each time: `av_read_frame` does not release a filled one.
        let mut packet = Packet::empty();
        match packet.read(&mut input) {
            Ok(()) => invalid_in_a_row = 0,
            Err(ffmpeg::Error::Eof) => break,
            // Demuxers resync after a damaged packet; give up only if that never ends.
            Err(ffmpeg::Error::InvalidData) if invalid_in_a_row < 1000 => {
                invalid_in_a_row += 1;
                continue;
            }
            Err(err) => {
                return Err(Error::Decode {
                    path: path.to_path_buf(),
                    reason: format!("reading packet {} failed: {err}", packets.len() + 1),
                });
            }
        }
        if packet.stream() != stream_index {
            continue;
        }
        // Packets an edit list cuts off are decoded for reference only, never shown.
        if packet.flags().bits() & ffmpeg::ffi::AV_PKT_FLAG_DISCARD != 0 {
            discarded += 1;
            continue;
        }
        packets.push(PacketTime {
            pts: packet.pts().or(packet.dts()),
            duration: packet.duration(),
        });
    }
    if index_is_exact && listed_frames > 0 && packets.len() + discarded < listed_frames as usize {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            read: packets.len() + discarded,
            expected: listed_frames as usize,
        });
    }
    if packets.is_empty() {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            reason: "the video stream holds no frames".into(),
        });
    }

    let fallback_fps = avg_fps.or(rate_fps).unwrap_or(25.0);
    let secs = |ticks: i64| {
        ticks as f64 * f64::from(time_base.numerator()) / f64::from(time_base.denominator())
    };
    let (sorted_pts, timeline) = if packets.iter().all(|p| p.pts.is_some()) {
        packets.sort_by_key(|p| p.pts);
        let pts: Vec<i64> = packets.iter().filter_map(|p| p.pts).collect();
        let first = pts[0];
        let starts = pts.iter().map(|&t| secs(t - first)).collect();
        let last = packets.last().map_or(first, |p| p.pts.unwrap_or(first));
        // The end in ticks, converted once, so that `k / fps` lands on it exactly.
        let end = match packets.last().map(|p| p.duration) {
            Some(duration) if duration > 0 => secs(last - first + duration),
            _ => secs(last - first) + 1.0 / fallback_fps,
        };
        (Some(pts), Timeline::from_starts(starts, end))
    } else {
        // No timestamps to go by: frames in decode order at the nominal rate.
        let starts = (0..packets.len())
            .map(|i| i as f64 / fallback_fps)
            .collect();
        (
            None,
            Timeline::from_starts(starts, packets.len() as f64 / fallback_fps),
        )
    };
    Ok(Scan {
        stream_index,
        width_px,
        height_px,
        codec,
        avg_fps,
        rate_fps,
        sorted_pts,
        timeline,
    })
}

/// Decodes the stream and keeps the frames whose index is `wanted`, converted to RGB.
fn decode_wanted(
    path: &Path,
    scan: &Scan,
    wanted: &[bool],
) -> Result<HashMap<usize, Frame>, Error> {
    let decode_error = |reason: String| Error::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let needed = wanted.iter().filter(|&&w| w).count();
    let mut input = open_input(path)?;
    let stream = input
        .stream(scan.stream_index)
        .ok_or_else(|| decode_error("the video stream vanished on reopening".into()))?;
    let mut context = ffmpeg::codec::Context::from_parameters(stream.parameters())
        .map_err(|err| decode_error(format!("codec parameters: {err}")))?;
    context.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(stream.time_base());
    let mut decoder = decoder.video().map_err(|err| {
        decode_error(format!(
            "no usable decoder for codec '{}': {err}",
            scan.codec
        ))
    })?;

    let mut to_rgb = ToRgb::new();
    let mut kept: HashMap<usize, Frame> = HashMap::new();
    let mut next_index = 0usize;
    let mut decoded = 0usize;
    let mut last_error = None;
    let mut frame = Video::empty();
    let mut receive = |decoder: &mut ffmpeg::decoder::Video,
                       kept: &mut HashMap<usize, Frame>|
     -> Result<(), Error> {
        while decoder.receive_frame(&mut frame).is_ok() {
            decoded += 1;
            // Match the frame to the packet pass by timestamp; fall back to order, which
            // is presentation order for every decoder.
            let index = match (frame.timestamp(), &scan.sorted_pts) {
                (Some(ts), Some(pts)) => pts.binary_search(&ts).unwrap_or(next_index),
                _ => next_index,
            };
            next_index = index + 1;
            if wanted.get(index) == Some(&true) && !kept.contains_key(&index) {
                let rgb = to_rgb
                    .convert(&frame)
                    .map_err(|err| decode_error(format!("converting frame {index}: {err}")))?;
                kept.insert(index, rgb);
            }
        }
        Ok(())
    };

    loop {
        if kept.len() == needed {
            return Ok(kept);
        }
        let mut packet = Packet::empty();
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::InvalidData) => continue,
            Err(err) => {
                last_error = Some(err);
                break;
            }
        }
        if packet.stream() != scan.stream_index {
            continue;
        }
        // Damaged packets are skipped like FFmpeg's own tools do; a frame that never
        // appears is reported below.
        if let Err(err) = decoder.send_packet(&packet) {
            last_error = Some(err);
        }
        receive(&mut decoder, &mut kept)?;
    }
    // Flushing returns the frames the decoder still holds (B-frame and thread delay).
    if decoder.send_eof().is_ok() {
        receive(&mut decoder, &mut kept)?;
    }
    if kept.len() == needed {
        return Ok(kept);
    }
    let missing = wanted
        .iter()
        .enumerate()
        .position(|(i, &w)| w && !kept.contains_key(&i))
        .unwrap_or(0);
    Err(decode_error(format!(
        "only {decoded} of {} frames decode, frame {missing} is missing{}",
        wanted.len(),
        last_error.map_or(String::new(), |err| format!(" (FFmpeg: {err})"))
    )))
}
