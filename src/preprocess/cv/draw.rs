//! `cv2.ellipse2Poly`, `cv2.fillConvexPoly` and filled `cv2.circle` with 8-connected edges
//! and no sub-pixel shift, as OpenCV's `drawing.cpp` scan-converts them. Shapes may lie
//! partly or wholly outside the image: they are clipped, as OpenCV clips them.

use crate::media::Frame;

/// OpenCV's fixed-point shift for polygon edges.
const XY_SHIFT: u32 = 16;
/// One pixel in that fixed point.
const XY_ONE: i64 = 1 << XY_SHIFT;

/// OpenCV's sine table, one entry per degree over 0..=450 (cosines read it 90° on). The
/// literals are OpenCV's, kept as written; they round to the same `f32` values.
#[rustfmt::skip]
#[allow(clippy::excessive_precision, clippy::approx_constant)]
static SIN_TABLE: [f32; 451] = [
    0.0000000, 0.0174524, 0.0348995, 0.0523360, 0.0697565, 0.0871557,
    0.1045285, 0.1218693, 0.1391731, 0.1564345, 0.1736482, 0.1908090,
    0.2079117, 0.2249511, 0.2419219, 0.2588190, 0.2756374, 0.2923717,
    0.3090170, 0.3255682, 0.3420201, 0.3583679, 0.3746066, 0.3907311,
    0.4067366, 0.4226183, 0.4383711, 0.4539905, 0.4694716, 0.4848096,
    0.5000000, 0.5150381, 0.5299193, 0.5446390, 0.5591929, 0.5735764,
    0.5877853, 0.6018150, 0.6156615, 0.6293204, 0.6427876, 0.6560590,
    0.6691306, 0.6819984, 0.6946584, 0.7071068, 0.7193398, 0.7313537,
    0.7431448, 0.7547096, 0.7660444, 0.7771460, 0.7880108, 0.7986355,
    0.8090170, 0.8191520, 0.8290376, 0.8386706, 0.8480481, 0.8571673,
    0.8660254, 0.8746197, 0.8829476, 0.8910065, 0.8987940, 0.9063078,
    0.9135455, 0.9205049, 0.9271839, 0.9335804, 0.9396926, 0.9455186,
    0.9510565, 0.9563048, 0.9612617, 0.9659258, 0.9702957, 0.9743701,
    0.9781476, 0.9816272, 0.9848078, 0.9876883, 0.9902681, 0.9925462,
    0.9945219, 0.9961947, 0.9975641, 0.9986295, 0.9993908, 0.9998477,
    1.0000000, 0.9998477, 0.9993908, 0.9986295, 0.9975641, 0.9961947,
    0.9945219, 0.9925462, 0.9902681, 0.9876883, 0.9848078, 0.9816272,
    0.9781476, 0.9743701, 0.9702957, 0.9659258, 0.9612617, 0.9563048,
    0.9510565, 0.9455186, 0.9396926, 0.9335804, 0.9271839, 0.9205049,
    0.9135455, 0.9063078, 0.8987940, 0.8910065, 0.8829476, 0.8746197,
    0.8660254, 0.8571673, 0.8480481, 0.8386706, 0.8290376, 0.8191520,
    0.8090170, 0.7986355, 0.7880108, 0.7771460, 0.7660444, 0.7547096,
    0.7431448, 0.7313537, 0.7193398, 0.7071068, 0.6946584, 0.6819984,
    0.6691306, 0.6560590, 0.6427876, 0.6293204, 0.6156615, 0.6018150,
    0.5877853, 0.5735764, 0.5591929, 0.5446390, 0.5299193, 0.5150381,
    0.5000000, 0.4848096, 0.4694716, 0.4539905, 0.4383711, 0.4226183,
    0.4067366, 0.3907311, 0.3746066, 0.3583679, 0.3420201, 0.3255682,
    0.3090170, 0.2923717, 0.2756374, 0.2588190, 0.2419219, 0.2249511,
    0.2079117, 0.1908090, 0.1736482, 0.1564345, 0.1391731, 0.1218693,
    0.1045285, 0.0871557, 0.0697565, 0.0523360, 0.0348995, 0.0174524,
    0.0000000, -0.0174524, -0.0348995, -0.0523360, -0.0697565, -0.0871557,
    -0.1045285, -0.1218693, -0.1391731, -0.1564345, -0.1736482, -0.1908090,
    -0.2079117, -0.2249511, -0.2419219, -0.2588190, -0.2756374, -0.2923717,
    -0.3090170, -0.3255682, -0.3420201, -0.3583679, -0.3746066, -0.3907311,
    -0.4067366, -0.4226183, -0.4383711, -0.4539905, -0.4694716, -0.4848096,
    -0.5000000, -0.5150381, -0.5299193, -0.5446390, -0.5591929, -0.5735764,
    -0.5877853, -0.6018150, -0.6156615, -0.6293204, -0.6427876, -0.6560590,
    -0.6691306, -0.6819984, -0.6946584, -0.7071068, -0.7193398, -0.7313537,
    -0.7431448, -0.7547096, -0.7660444, -0.7771460, -0.7880108, -0.7986355,
    -0.8090170, -0.8191520, -0.8290376, -0.8386706, -0.8480481, -0.8571673,
    -0.8660254, -0.8746197, -0.8829476, -0.8910065, -0.8987940, -0.9063078,
    -0.9135455, -0.9205049, -0.9271839, -0.9335804, -0.9396926, -0.9455186,
    -0.9510565, -0.9563048, -0.9612617, -0.9659258, -0.9702957, -0.9743701,
    -0.9781476, -0.9816272, -0.9848078, -0.9876883, -0.9902681, -0.9925462,
    -0.9945219, -0.9961947, -0.9975641, -0.9986295, -0.9993908, -0.9998477,
    -1.0000000, -0.9998477, -0.9993908, -0.9986295, -0.9975641, -0.9961947,
    -0.9945219, -0.9925462, -0.9902681, -0.9876883, -0.9848078, -0.9816272,
    -0.9781476, -0.9743701, -0.9702957, -0.9659258, -0.9612617, -0.9563048,
    -0.9510565, -0.9455186, -0.9396926, -0.9335804, -0.9271839, -0.9205049,
    -0.9135455, -0.9063078, -0.8987940, -0.8910065, -0.8829476, -0.8746197,
    -0.8660254, -0.8571673, -0.8480481, -0.8386706, -0.8290376, -0.8191520,
    -0.8090170, -0.7986355, -0.7880108, -0.7771460, -0.7660444, -0.7547096,
    -0.7431448, -0.7313537, -0.7193398, -0.7071068, -0.6946584, -0.6819984,
    -0.6691306, -0.6560590, -0.6427876, -0.6293204, -0.6156615, -0.6018150,
    -0.5877853, -0.5735764, -0.5591929, -0.5446390, -0.5299193, -0.5150381,
    -0.5000000, -0.4848096, -0.4694716, -0.4539905, -0.4383711, -0.4226183,
    -0.4067366, -0.3907311, -0.3746066, -0.3583679, -0.3420201, -0.3255682,
    -0.3090170, -0.2923717, -0.2756374, -0.2588190, -0.2419219, -0.2249511,
    -0.2079117, -0.1908090, -0.1736482, -0.1564345, -0.1391731, -0.1218693,
    -0.1045285, -0.0871557, -0.0697565, -0.0523360, -0.0348995, -0.0174524,
    -0.0000000, 0.0174524, 0.0348995, 0.0523360, 0.0697565, 0.0871557,
    0.1045285, 0.1218693, 0.1391731, 0.1564345, 0.1736482, 0.1908090,
    0.2079117, 0.2249511, 0.2419219, 0.2588190, 0.2756374, 0.2923717,
    0.3090170, 0.3255682, 0.3420201, 0.3583679, 0.3746066, 0.3907311,
    0.4067366, 0.4226183, 0.4383711, 0.4539905, 0.4694716, 0.4848096,
    0.5000000, 0.5150381, 0.5299193, 0.5446390, 0.5591929, 0.5735764,
    0.5877853, 0.6018150, 0.6156615, 0.6293204, 0.6427876, 0.6560590,
    0.6691306, 0.6819984, 0.6946584, 0.7071068, 0.7193398, 0.7313537,
    0.7431448, 0.7547096, 0.7660444, 0.7771460, 0.7880108, 0.7986355,
    0.8090170, 0.8191520, 0.8290376, 0.8386706, 0.8480481, 0.8571673,
    0.8660254, 0.8746197, 0.8829476, 0.8910065, 0.8987940, 0.9063078,
    0.9135455, 0.9205049, 0.9271839, 0.9335804, 0.9396926, 0.9455186,
    0.9510565, 0.9563048, 0.9612617, 0.9659258, 0.9702957, 0.9743701,
    0.9781476, 0.9816272, 0.9848078, 0.9876883, 0.9902681, 0.9925462,
    0.9945219, 0.9961947, 0.9975641, 0.9986295, 0.9993908, 0.9998477,
    1.0000000,
];

/// `cv2.ellipse2Poly` (integer version): OpenCV builds the double-precision polygon, rounds
/// each point half to even and drops consecutive duplicates; a polygon that collapses to one
/// point becomes two copies of the centre. A step outside 1..=180°, which OpenCV refuses, is
/// clamped into that range.
pub(super) fn ellipse_to_poly(
    center: (i32, i32),
    axes: (i32, i32),
    angle_deg: i32,
    arc_start_deg: i32,
    arc_end_deg: i32,
    delta_deg: i32,
) -> Vec<(i32, i32)> {
    let delta = i64::from(delta_deg.clamp(1, 180));
    let mut angle = i64::from(angle_deg).rem_euclid(360);
    // OpenCV reduces the angle into 0..=360 by whole turns; 360 stays 360.
    if angle_deg > 0 && angle == 0 {
        angle = 360;
    }
    let (mut start, mut end) = (i64::from(arc_start_deg), i64::from(arc_end_deg));
    if start > end {
        std::mem::swap(&mut start, &mut end);
    }
    if start < 0 {
        // Whole turns until the start is not negative.
        let turns = (-start + 359) / 360;
        start += turns * 360;
        end += turns * 360;
    }
    if end > 360 {
        let turns = (end - 360 + 359) / 360;
        start -= turns * 360;
        end -= turns * 360;
    }
    if end - start > 360 {
        start = 0;
        end = 360;
    }
    let (alpha, beta) = sincos(angle);
    let (cx, cy) = (f64::from(center.0), f64::from(center.1));
    let (ax, ay) = (f64::from(axes.0), f64::from(axes.1));

    let mut pts: Vec<(i32, i32)> = Vec::new();
    let mut count = 0usize;
    let mut i = start;
    while i < end + delta {
        let mut a = i.min(end);
        if a < 0 {
            a += 360;
        }
        let a = a.clamp(0, 360) as usize;
        let x = ax * f64::from(SIN_TABLE[450 - a]);
        let y = ay * f64::from(SIN_TABLE[a]);
        let px = cx + x * alpha - y * beta;
        let py = cy + x * beta + y * alpha;
        let pt = (round_to_i32(px), round_to_i32(py));
        count += 1;
        if pts.last() != Some(&pt) {
            pts.push(pt);
        }
        i += delta;
    }
    // OpenCV doubles a lone double-precision point before rounding, and a lone rounded
    // point after; both give two copies of the centre.
    if count == 1 || pts.len() == 1 {
        return vec![center, center];
    }
    pts
}

/// OpenCV's `sincos` on the table: `(cos, sin)` of a whole-degree angle in 0..=360.
fn sincos(angle: i64) -> (f64, f64) {
    let a = angle.clamp(0, 360) as usize;
    (f64::from(SIN_TABLE[450 - a]), f64::from(SIN_TABLE[a]))
}

/// `cvRound(double)`: half to even, saturated to `i32`.
fn round_to_i32(v: f64) -> i32 {
    v.round_ties_even()
        .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// Writes `color` to pixels `xl..=xr` of row `y` (both already inside the image).
fn hline(img: &mut Frame, y: usize, xl: usize, xr: usize, color: [u8; 3]) {
    if xl > xr {
        return;
    }
    let row = &mut img.rgb[(y * img.width + xl) * 3..(y * img.width + xr + 1) * 3];
    for px in row.chunks_exact_mut(3) {
        px.copy_from_slice(&color);
    }
}

/// Sets one pixel if it lies inside the image.
fn put(img: &mut Frame, x: i64, y: i64, color: [u8; 3]) {
    if (0..img.width as i64).contains(&x) && (0..img.height as i64).contains(&y) {
        let at = (y as usize * img.width + x as usize) * 3;
        img.rgb[at..at + 3].copy_from_slice(&color);
    }
}

/// OpenCV's `clipLine` (64-bit version): clips the segment to the image rectangle, `false`
/// when nothing of it is inside.
fn clip_line(width: i64, height: i64, p1: &mut (i64, i64), p2: &mut (i64, i64)) -> bool {
    if width <= 0 || height <= 0 {
        return false;
    }
    let (right, bottom) = (width - 1, height - 1);
    let code = |x: i64, y: i64| -> i32 {
        i32::from(x < 0)
            + i32::from(x > right) * 2
            + i32::from(y < 0) * 4
            + i32::from(y > bottom) * 8
    };
    let (x1, y1) = (&mut p1.0, &mut p1.1);
    let (x2, y2) = (&mut p2.0, &mut p2.1);
    let mut c1 = code(*x1, *y1);
    let mut c2 = code(*x2, *y2);
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            *x1 += ((a - *y1) as f64 * (*x2 - *x1) as f64 / (*y2 - *y1) as f64) as i64;
            *y1 = a;
            c1 = i32::from(*x1 < 0) + i32::from(*x1 > right) * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            *x2 += ((a - *y2) as f64 * (*x2 - *x1) as f64 / (*y2 - *y1) as f64) as i64;
            *y2 = a;
            c2 = i32::from(*x2 < 0) + i32::from(*x2 > right) * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                *y1 += ((a - *x1) as f64 * (*y2 - *y1) as f64 / (*x2 - *x1) as f64) as i64;
                *x1 = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                *y2 += ((a - *x2) as f64 * (*y2 - *y1) as f64 / (*x2 - *x1) as f64) as i64;
                *x2 = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV's `Line` with 8-connectivity: Bresenham from the left end, after clipping.
fn line8(img: &mut Frame, p1: (i64, i64), p2: (i64, i64), color: [u8; 3]) {
    let (w, h) = (img.width as i64, img.height as i64);
    let (mut p1, mut p2) = (p1, p2);
    let outside = |p: (i64, i64)| !(0..w).contains(&p.0) || !(0..h).contains(&p.1);
    if (outside(p1) || outside(p2)) && !clip_line(w, h, &mut p1, &mut p2) {
        return;
    }
    // Left to right; the major axis steps every pixel, the minor one when the error
    // term goes negative.
    if p2.0 < p1.0 {
        std::mem::swap(&mut p1, &mut p2);
    }
    let mut dx = p2.0 - p1.0;
    let mut dy = p2.1 - p1.1;
    let sy = if dy < 0 { -1 } else { 1 };
    dy = dy.abs();
    let (mut major, mut minor) = ((1i64, 0i64), (0i64, sy));
    if dy > dx {
        std::mem::swap(&mut dx, &mut dy);
        std::mem::swap(&mut major, &mut minor);
    }
    let mut err = dx - (dy + dy);
    let plus = dx + dx;
    let minus = -(dy + dy);
    let (mut x, mut y) = p1;
    for _ in 0..=dx {
        put(img, x, y, color);
        let step = err < 0;
        err += minus + if step { plus } else { 0 };
        x += major.0 + if step { minor.0 } else { 0 };
        y += major.1 + if step { minor.1 } else { 0 };
    }
}

/// One side of the polygon during the scan (`FillConvexPoly`'s `edge`).
#[derive(Debug, Clone, Copy)]
struct Side {
    idx: usize,
    di: usize,
    x: i64,
    dx: i64,
    ye: i64,
}

/// `cv2.fillConvexPoly(img, pts, color)` with `LINE_8` and `shift = 0`: the outline drawn
/// with Bresenham lines, then the interior filled row by row between two fixed-point edges.
pub(super) fn fill_convex_poly(img: &mut Frame, pts: &[(i32, i32)], color: [u8; 3]) {
    let npts = pts.len();
    if npts == 0 || img.rgb.len() < img.width * img.height * 3 {
        return;
    }
    let (width, height) = (img.width as i64, img.height as i64);
    let v: Vec<(i64, i64)> = pts
        .iter()
        .map(|&(x, y)| (i64::from(x), i64::from(y)))
        .collect();

    let mut imin = 0;
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (v[0].0, v[0].0, v[0].1, v[0].1);
    let mut p0 = v[npts - 1];
    for (i, &p) in v.iter().enumerate() {
        if p.1 < ymin {
            ymin = p.1;
            imin = i;
        }
        ymax = ymax.max(p.1);
        xmax = xmax.max(p.0);
        xmin = xmin.min(p.0);
        line8(img, p0, p, color);
        p0 = p;
    }
    if npts < 3 || xmax < 0 || ymax < 0 || xmin >= width || ymin >= height {
        return;
    }
    let ymax = ymax.min(height - 1);
    let mut edge = [
        Side {
            idx: imin,
            di: 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
        Side {
            idx: imin,
            di: npts - 1,
            x: -XY_ONE,
            dx: 0,
            ye: ymin,
        },
    ];
    let mut edges = npts as i64;
    let half = XY_ONE >> 1;
    let mut y = ymin;
    loop {
        for e in &mut edge {
            if y < e.ye {
                continue;
            }
            let mut idx0 = e.idx;
            let mut idx = (idx0 + e.di) % npts;
            loop {
                let more = edges > 0;
                edges -= 1;
                if !more {
                    break;
                }
                let ty = v[idx].1;
                if ty > y {
                    let xs = v[idx0].0 << XY_SHIFT;
                    let xe = v[idx].0 << XY_SHIFT;
                    e.ye = ty;
                    e.dx = ((xe - xs) * 2 + (ty - y)) / (2 * (ty - y));
                    e.x = xs;
                    e.idx = idx;
                    break;
                }
                idx0 = idx;
                idx = (idx + e.di) % npts;
            }
        }
        if edges < 0 {
            break;
        }
        if y >= 0 {
            let (l, r) = if edge[0].x > edge[1].x {
                (1, 0)
            } else {
                (0, 1)
            };
            let x1 = (edge[l].x + half) >> XY_SHIFT;
            let x2 = (edge[r].x + half) >> XY_SHIFT;
            if x2 >= 0 && x1 < width {
                hline(
                    img,
                    y as usize,
                    x1.max(0) as usize,
                    x2.min(width - 1) as usize,
                    color,
                );
            }
        }
        // Rows above the image change nothing but the edges' positions, which advance by
        // whole steps; jumping them gives the same positions without the per-row loop.
        let next = if y < 0 {
            (y + 1).max(0.min(edge[0].ye).min(edge[1].ye))
        } else {
            y + 1
        };
        let steps = next - y;
        edge[0].x += edge[0].dx * steps;
        edge[1].x += edge[1].dx * steps;
        y = next;
        if y > ymax {
            break;
        }
    }
}

/// `cv2.circle(img, center, radius, color, thickness=-1)` with `LINE_8`: OpenCV's integer
/// midpoint circle, each octant pair filled as a horizontal span. A negative radius draws
/// nothing (OpenCV refuses it).
pub(super) fn fill_circle(img: &mut Frame, center: (i32, i32), radius: i32, color: [u8; 3]) {
    if radius < 0 || img.rgb.len() < img.width * img.height * 3 {
        return;
    }
    let (w, h) = (img.width as i64, img.height as i64);
    let (cx, cy, r) = (i64::from(center.0), i64::from(center.1), i64::from(radius));
    // A disc wholly outside the image fails OpenCV's per-step test at every step; skipping
    // it saves a loop as long as the radius.
    if cx + r < 0 || cx - r >= w || cy + r < 0 || cy - r >= h {
        return;
    }
    let (mut err, mut dx, mut dy, mut plus, mut minus) = (0i64, r, 0i64, 1i64, (r << 1) - 1);
    // A span on row `y` from `xl` to `xr`, clipped to the image.
    let span = |img: &mut Frame, y: i64, xl: i64, xr: i64| {
        if (0..h).contains(&y) && xl < w && xr >= 0 {
            hline(
                img,
                y as usize,
                xl.max(0) as usize,
                xr.min(w - 1) as usize,
                color,
            );
        }
    };
    while dx >= dy {
        let (y11, y12, y21, y22) = (cy - dy, cy + dy, cy - dx, cy + dx);
        let (x11, x12, x21, x22) = (cx - dx, cx + dx, cx - dy, cx + dy);
        // OpenCV skips the whole step when the outer spans miss the image.
        if x11 < w && x12 >= 0 && y21 < h && y22 >= 0 {
            span(img, y11, x11, x12);
            span(img, y12, x11, x12);
            span(img, y21, x21, x22);
            span(img, y22, x21, x22);
        }
        dy += 1;
        err += plus;
        plus += 2;
        let mask = if err <= 0 { 0 } else { -1 };
        err -= minus & mask;
        dx += mask;
        minus -= mask & 2;
    }
}
