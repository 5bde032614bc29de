//! Parity of `vaced::preprocess::cv` with opencv-python(-headless) 5.0.0: every output is
//! compared byte for byte with OpenCV's (see `tests/data/cv/README.md` for how the goldens
//! were made). No tolerance is needed: all operations are exact.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vaced::media::{Frame, load_still};
use vaced::preprocess::cv::{self, Interpolation};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cv")
}

fn cases() -> Value {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json parses")
}

fn png(name: &str) -> Frame {
    load_still(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Numbers are stored as Python `repr` strings: parsing them here is exact.
fn num<T: std::str::FromStr>(v: &Value) -> T
where
    T::Err: std::fmt::Debug,
{
    v.as_str()
        .expect("number as string")
        .parse()
        .expect("number parses")
}

fn int(v: &Value) -> i32 {
    v.as_i64().expect("integer") as i32
}

fn color(v: &Value) -> [u8; 3] {
    let c: Vec<u8> = v
        .as_array()
        .expect("colour")
        .iter()
        .map(|c| int(c) as u8)
        .collect();
    [c[0], c[1], c[2]]
}

fn points(v: &Value) -> Vec<(i32, i32)> {
    v.as_array()
        .expect("points")
        .iter()
        .map(|p| (int(&p[0]), int(&p[1])))
        .collect()
}

/// Panics with the number of differing bytes and the first few, when the frames differ.
fn assert_same(what: &str, got: &Frame, want: &Frame) {
    assert_eq!(
        (got.width, got.height),
        (want.width, want.height),
        "{what}: size"
    );
    assert_eq!(got.rgb.len(), want.rgb.len(), "{what}: buffer length");
    let diffs: Vec<(usize, usize, usize, u8, u8)> = got
        .rgb
        .iter()
        .zip(&want.rgb)
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .map(|(i, (&g, &w))| (i / 3 % got.width, i / 3 / got.width, i % 3, g, w))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} bytes differ; first (x, y, channel, ours, OpenCV's): {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(8)]
    );
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn interpolation(name: &str) -> Interpolation {
    match name {
        "linear" => Interpolation::Linear,
        "area" => Interpolation::Area,
        "lanczos4" => Interpolation::Lanczos4,
        other => panic!("unknown interpolation {other}"),
    }
}

/// The integer test picture of the generator's `pattern`, for the large cases.
fn pattern(width: usize, height: usize) -> Frame {
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height as u64 {
        for x in 0..width as u64 {
            for c in 0..3u64 {
                let v = x * (3 + c)
                    + y * (5 + 2 * c)
                    + ((x / 7) ^ (y / 5)) * 17
                    + ((x * 73_856_093) ^ (y * 19_349_663) ^ (c * 83_492_791)) % 61;
                rgb.push((v % 256) as u8);
            }
        }
    }
    Frame { width, height, rgb }
}

#[test]
fn resize_matches_opencv() {
    let cases = cases();
    for case in cases["resize"].as_array().expect("resize cases") {
        let src = png(case["source"].as_str().expect("source"));
        let (w, h) = (
            case["width"].as_u64().expect("w") as usize,
            case["height"].as_u64().expect("h") as usize,
        );
        let name = case["interpolation"].as_str().expect("interpolation");
        let got = cv::resize(&src, w, h, interpolation(name));
        let what = format!(
            "resize {name} {}x{} -> {w}x{h} ({})",
            src.width, src.height, case["covers"]
        );
        assert_same(
            &what,
            &got,
            &png(case["expected"].as_str().expect("expected")),
        );
    }
}

/// Frame-sized resizes (the short side to 1024 and back, the detector's letterbox), checked
/// by checksum; prints the time of each call.
#[test]
fn resize_large_matches_opencv() {
    let cases = cases();
    for case in cases["resize_large"].as_array().expect("large cases") {
        let field = |k: &str| case[k].as_u64().expect(k) as usize;
        let (w, h) = (field("width"), field("height"));
        let (uw, uh) = (field("up_width"), field("up_height"));
        let src = pattern(w, h);
        let timed = |what: &str, f: &dyn Fn() -> Frame| {
            let start = Instant::now();
            let out = f();
            eprintln!("{what}: {:?}", start.elapsed());
            out
        };
        let up = timed(&format!("Lanczos4 {w}x{h} -> {uw}x{uh}"), &|| {
            cv::resize(&src, uw, uh, Interpolation::Lanczos4)
        });
        assert_eq!(
            sha256(&up.rgb),
            case["lanczos4_up_sha256"],
            "Lanczos4 {w}x{h} -> {uw}x{uh}"
        );
        let back = timed(&format!("area {uw}x{uh} -> {w}x{h}"), &|| {
            cv::resize(&up, w, h, Interpolation::Area)
        });
        assert_eq!(
            sha256(&back.rgb),
            case["area_back_sha256"],
            "area {uw}x{uh} -> {w}x{h}"
        );
        let back = timed(&format!("Lanczos4 {uw}x{uh} -> {w}x{h}"), &|| {
            cv::resize(&up, w, h, Interpolation::Lanczos4)
        });
        assert_eq!(
            sha256(&back.rgb),
            case["lanczos4_back_sha256"],
            "Lanczos4 {uw}x{uh} -> {w}x{h}"
        );
        let (lw, lh) = (field("letterbox_width"), field("letterbox_height"));
        let letter = timed(&format!("linear {w}x{h} -> {lw}x{lh}"), &|| {
            cv::resize(&src, lw, lh, Interpolation::Linear)
        });
        assert_eq!(
            sha256(&letter.rgb),
            case["linear_letterbox_sha256"],
            "linear {w}x{h} -> {lw}x{lh}"
        );
    }
}

#[test]
fn get_affine_transform_matches_opencv() {
    let cases = cases();
    for case in cases["get_affine_transform"]
        .as_array()
        .expect("affine cases")
    {
        let tri = |k: &str| -> [[f32; 2]; 3] {
            std::array::from_fn(|i| std::array::from_fn(|j| num::<f32>(&case[k][i][j])))
        };
        let got = cv::get_affine_transform(tri("src"), tri("dst"));
        let want: [[f64; 3]; 2] =
            std::array::from_fn(|i| std::array::from_fn(|j| num::<f64>(&case["expected"][i][j])));
        // Bit for bit, not approximately.
        assert_eq!(
            got.map(|r| r.map(f64::to_bits)),
            want.map(|r| r.map(f64::to_bits)),
            "{}: {got:?} vs {want:?}",
            case["covers"]
        );
    }
}

#[test]
fn warp_affine_matches_opencv() {
    let cases = cases();
    for case in cases["warp_affine"].as_array().expect("warp cases") {
        let src = png(case["source"].as_str().expect("source"));
        let m: [[f64; 3]; 2] =
            std::array::from_fn(|i| std::array::from_fn(|j| num::<f64>(&case["matrix"][i][j])));
        let (w, h) = (
            case["width"].as_u64().expect("w") as usize,
            case["height"].as_u64().expect("h") as usize,
        );
        let got = cv::warp_affine_linear(&src, &m, w, h);
        let what = format!("warp to {w}x{h} ({})", case["covers"]);
        match case["expected"].as_str() {
            Some(name) => assert_same(&what, &got, &png(name)),
            None => assert_eq!(sha256(&got.rgb), case["sha256"], "{what}"),
        }
    }
}

#[test]
fn ellipse_to_poly_matches_opencv() {
    let cases = cases();
    for case in cases["ellipse2poly"].as_array().expect("polygon cases") {
        let got = cv::ellipse_to_poly(
            (int(&case["center"][0]), int(&case["center"][1])),
            (int(&case["axes"][0]), int(&case["axes"][1])),
            int(&case["angle"]),
            int(&case["arc_start"]),
            int(&case["arc_end"]),
            int(&case["delta"]),
        );
        assert_eq!(got, points(&case["expected"]), "{case}");
    }
}

#[test]
fn fill_convex_poly_matches_opencv() {
    let cases = cases();
    for case in cases["fill_convex_poly"].as_array().expect("fill cases") {
        let mut img = match case["canvas"].as_str() {
            Some("black") => {
                let field = |k: &str| case[k].as_u64().expect(k) as usize;
                Frame::filled(field("width"), field("height"), [0, 0, 0])
            }
            Some(name) => png(name),
            None => panic!("canvas"),
        };
        for poly in case["polygons"].as_array().expect("polygons") {
            cv::fill_convex_poly(&mut img, &points(&poly["points"]), color(&poly["color"]));
        }
        let name = case["expected"].as_str().expect("expected");
        assert_same(name, &img, &png(name));
    }
}

#[test]
fn fill_circle_matches_opencv() {
    let cases = cases();
    let case = &cases["circles"];
    let mut img = png(case["canvas"].as_str().expect("canvas"));
    for c in case["circles"].as_array().expect("circles") {
        cv::fill_circle(
            &mut img,
            (int(&c["center"][0]), int(&c["center"][1])),
            int(&c["radius"]),
            color(&c["color"]),
        );
    }
    assert_same(
        "circles",
        &img,
        &png(case["expected"].as_str().expect("expected")),
    );
}

/// Odd inputs OpenCV would refuse must not panic.
#[test]
fn degenerate_inputs_do_not_panic() {
    let src = png("scene_61x47.png");
    for interp in [
        Interpolation::Linear,
        Interpolation::Area,
        Interpolation::Lanczos4,
    ] {
        assert_eq!(cv::resize(&src, 0, 5, interp).rgb.len(), 0);
        assert_eq!(cv::resize(&Frame::EMPTY, 4, 3, interp).rgb, vec![0; 36]);
        assert_eq!(cv::resize(&src, 1, 1, interp).rgb.len(), 3);
        let short = Frame {
            width: 8,
            height: 8,
            rgb: vec![7; 10],
        };
        assert_eq!(cv::resize(&short, 5, 3, interp).rgb.len(), 45);
    }
    let m = cv::get_affine_transform([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [[0.0, 0.0]; 3]);
    assert_eq!(m, [[0.0; 3]; 2]);
    // A zero matrix inverts to zero, so every pixel samples the source's first, as in OpenCV.
    assert_eq!(
        cv::warp_affine_linear(&src, &m, 7, 5),
        Frame::filled(7, 5, src.pixel(0, 0))
    );
    assert_eq!(
        cv::warp_affine_linear(&Frame::EMPTY, &m, 7, 5).rgb.len(),
        105
    );
    // Steps OpenCV refuses are clamped to 1..=180.
    assert_eq!(
        cv::ellipse_to_poly((3, 4), (5, 2), 10, 0, 360, 0),
        cv::ellipse_to_poly((3, 4), (5, 2), 10, 0, 360, 1)
    );
    assert_eq!(
        cv::ellipse_to_poly((3, 4), (5, 2), 10, 0, 360, 999),
        cv::ellipse_to_poly((3, 4), (5, 2), 10, 0, 360, 180)
    );
    let mut img = Frame::filled(5, 4, [1, 2, 3]);
    let before = img.clone();
    cv::fill_convex_poly(&mut img, &[], [9, 9, 9]);
    cv::fill_convex_poly(
        &mut img,
        &[(i32::MIN, i32::MIN), (i32::MAX, i32::MIN), (i32::MAX, -1)],
        [9, 9, 9],
    );
    cv::fill_circle(&mut img, (2, 2), -1, [9, 9, 9]);
    cv::fill_circle(&mut img, (-100, 50), 4, [9, 9, 9]);
    assert_eq!(img, before);
    cv::fill_circle(&mut img, (i32::MAX, i32::MIN), 1000, [9, 9, 9]);
    assert_eq!(img, before);
    // A disc far larger than the image covers it.
    cv::fill_circle(&mut img, (2, 2), 100_000, [9, 9, 9]);
    assert_eq!(img, Frame::filled(5, 4, [9, 9, 9]));
    let mut empty = Frame::EMPTY;
    cv::fill_convex_poly(&mut empty, &[(0, 0), (3, 0), (0, 3)], [1, 1, 1]);
    cv::fill_circle(&mut empty, (0, 0), 3, [1, 1, 1]);
}
