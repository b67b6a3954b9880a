//! Frame-rate conversion on a fixed output grid.
//!
//! Output frame `k` sits at `k * den / num` seconds from timestamp zero, so the grid is the same
//! for every segment and every rendition of the same rate: timestamps stay continuous across
//! segments and keyframes line up across renditions. Each grid point shows the latest source
//! frame at or before it (FFmpeg's `fps` filter with `round=down`).

/// Timestamps are in this many ticks per second (MPEG-TS clock).
pub const TICKS_PER_SECOND: i64 = 90_000;

#[derive(Debug, Clone)]
pub struct FpsConverter {
    num: i64,
    den: i64,
    /// Index of the next grid point not yet emitted.
    next_index: Option<i64>,
}

impl FpsConverter {
    /// `num/den` frames per second; both must be positive.
    pub fn new(num: u32, den: u32) -> Self {
        FpsConverter {
            num: i64::from(num.max(1)),
            den: i64::from(den.max(1)),
            next_index: None,
        }
    }

    /// The grid point `index` in ticks.
    pub fn grid_pts(&self, index: i64) -> i64 {
        // Rounded integer arithmetic: exact for 30000/1001 (3003 ticks) and for integer rates.
        (index * TICKS_PER_SECOND * self.den + self.num / 2) / self.num
    }

    /// First grid index whose point is at or after `pts`.
    fn first_index_at_or_after(&self, pts: i64) -> i64 {
        let mut index = (pts * self.num).div_euclid(TICKS_PER_SECOND * self.den);
        while self.grid_pts(index) < pts {
            index += 1;
        }
        while index > 0 && self.grid_pts(index - 1) >= pts {
            index -= 1;
        }
        index
    }

    /// Output grid points covered by a source frame shown from `pts` until `end` (exclusive):
    /// the frame is emitted once per point. Call in presentation order.
    pub fn points_for(&mut self, pts: i64, end: i64) -> Vec<i64> {
        let mut index = match self.next_index {
            Some(next) => next,
            None => self.first_index_at_or_after(pts),
        };
        // After a gap (or the very first frame) never emit points before this frame.
        let first_here = self.first_index_at_or_after(pts);
        if index < first_here && self.grid_pts(index) < pts - self.frame_ticks() * 8 {
            index = first_here;
        }
        let mut points = Vec::new();
        while self.grid_pts(index) < end {
            points.push(self.grid_pts(index));
            index += 1;
        }
        self.next_index = Some(index);
        points
    }

    /// Length of one output frame in ticks (rounded).
    pub fn frame_ticks(&self) -> i64 {
        (TICKS_PER_SECOND * self.den + self.num / 2) / self.num
    }

    /// Forget the position (after a discontinuity that moved timestamps).
    pub fn reset(&mut self) {
        self.next_index = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_60_to_30_drops_every_other_frame() {
        let mut conv = FpsConverter::new(30, 1);
        let src_step = 1500; // 60 fps
        let mut out = Vec::new();
        for i in 0..120 {
            let pts = i * src_step;
            out.extend(conv.points_for(pts, pts + src_step));
        }
        assert_eq!(out.len(), 60);
        assert!(out.windows(2).all(|w| w[1] - w[0] == 3000));
    }

    #[test]
    fn doubling_25_to_50_duplicates() {
        let mut conv = FpsConverter::new(50, 1);
        let mut out = Vec::new();
        for i in 0..25 {
            let pts = i * 3600;
            out.extend(conv.points_for(pts, pts + 3600));
        }
        assert_eq!(out.len(), 50);
    }

    #[test]
    fn ntsc_grid_is_exact() {
        let conv = FpsConverter::new(30000, 1001);
        assert_eq!(conv.grid_pts(1), 3003);
        assert_eq!(conv.grid_pts(30000), 90_090_000);
    }

    #[test]
    fn continuous_across_segment_boundaries() {
        // 25 fps source converted to 30000/1001, fed in two "segments": no gap, no duplicate.
        let mut conv = FpsConverter::new(30000, 1001);
        let mut out = Vec::new();
        for i in 0..100 {
            let pts = 126_000 + i * 3600;
            out.extend(conv.points_for(pts, pts + 3600));
        }
        assert!(out.windows(2).all(|w| w[1] - w[0] == 3003));
        let span = out.last().expect("frames") - out[0];
        assert_eq!(span, (out.len() as i64 - 1) * 3003);
    }

    #[test]
    fn starts_at_first_grid_point_after_a_late_start() {
        let mut conv = FpsConverter::new(30, 1);
        let points = conv.points_for(10_001, 13_000);
        assert_eq!(points, vec![12_000]);
    }

    #[test]
    fn a_large_gap_does_not_backfill() {
        let mut conv = FpsConverter::new(30, 1);
        conv.points_for(0, 3000);
        let after_gap = conv.points_for(900_000, 903_000);
        assert_eq!(after_gap, vec![900_000]);
    }
}
