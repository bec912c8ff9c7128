//! f32 vector kernels. Each keeps sixteen independent accumulators in a
//! fixed order, so the compiler vectorizes the loop (SSE2 everywhere, AVX2
//! when the CPU has it) and every path — scan, filtered rows, HNSW — gets
//! bit-identical scores: Rust never contracts or reorders float operations.

const LANES: usize = 16;

#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `Σ f(aᵢ, bᵢ)` over the common length, in sixteen lanes. Plain index
/// loops over fixed-width blocks: the compiler drops the bounds checks and
/// vectorizes, and inlines it whole into the AVX2 copy.
#[inline(always)]
fn fold_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let whole = n / LANES * LANES;
    let mut base = 0;
    while base < whole {
        let x = &a[base..base + LANES];
        let y = &b[base..base + LANES];
        for i in 0..LANES {
            acc[i] += f(x[i], y[i]);
        }
        base += LANES;
    }
    for i in whole..n {
        acc[i - whole] += f(a[i], b[i]);
    }
    reduce(acc)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    fold_lanes(a, b, |x, y| x * y)
}

#[inline(always)]
fn sq_dist_lanes(a: &[f32], b: &[f32]) -> f32 {
    fold_lanes(a, b, |x, y| {
        let d = x - y;
        d * d
    })
}

#[cfg(target_arch = "x86_64")]
mod wide {
    /// # Safety
    /// The caller must have checked that the CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_lanes(a, b)
    }

    /// # Safety
    /// The caller must have checked that the CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
        super::sq_dist_lanes(a, b)
    }

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }
}

/// `Σ aᵢbᵢ` over the common length.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide::available() {
        // SAFETY: AVX2 support was just checked at run time.
        return unsafe { wide::dot(a, b) };
    }
    dot_lanes(a, b)
}

/// `Σ (aᵢ−bᵢ)²` over the common length.
#[inline]
pub fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide::available() {
        // SAFETY: AVX2 support was just checked at run time.
        return unsafe { wide::sq_dist(a, b) };
    }
    sq_dist_lanes(a, b)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// The vector metrics of API.md §5.2; higher scores rank first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cosine,
    Dot,
    Euclidean,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::Euclidean => "euclidean",
        }
    }
}

/// Score of `v` against `q` given both norms (used by cosine only).
#[inline]
pub fn score(metric: Metric, q: &[f32], q_norm: f32, v: &[f32], v_norm: f32) -> f32 {
    match metric {
        Metric::Dot => dot(q, v),
        Metric::Cosine => {
            let denom = q_norm * v_norm;
            if denom == 0.0 {
                0.0
            } else {
                dot(q, v) / denom
            }
        }
        Metric::Euclidean => -sq_dist(q, v).sqrt(),
    }
}

#[inline(always)]
fn score_lanes(metric: Metric, q: &[f32], q_norm: f32, v: &[f32], v_norm: f32) -> f32 {
    match metric {
        Metric::Dot => dot_lanes(q, v),
        Metric::Cosine => {
            let denom = q_norm * v_norm;
            if denom == 0.0 {
                0.0
            } else {
                dot_lanes(q, v) / denom
            }
        }
        Metric::Euclidean => -sq_dist_lanes(q, v).sqrt(),
    }
}

#[inline(always)]
fn score_run_lanes(
    metric: Metric,
    q: &[f32],
    q_norm: f32,
    records: &[f32],
    norms: &[f32],
    out: &mut Vec<f32>,
) {
    out.clear();
    let dim = q.len().max(1);
    for (record, norm) in records.chunks_exact(dim).zip(norms) {
        out.push(score_lanes(metric, q, q_norm, record, *norm));
    }
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// The caller must have checked that the CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn score_run_wide(
    metric: Metric,
    q: &[f32],
    q_norm: f32,
    records: &[f32],
    norms: &[f32],
    out: &mut Vec<f32>,
) {
    score_run_lanes(metric, q, q_norm, records, norms, out)
}

/// Scores of consecutive `q.len()`-wide records (one norm each) into
/// `out`, dispatching once per run: exactly `score` of each record.
pub fn score_run(
    metric: Metric,
    q: &[f32],
    q_norm: f32,
    records: &[f32],
    norms: &[f32],
    out: &mut Vec<f32>,
) {
    #[cfg(target_arch = "x86_64")]
    if wide::available() {
        // SAFETY: AVX2 support was just checked at run time.
        return unsafe { score_run_wide(metric, q, q_norm, records, norms, out) };
    }
    score_run_lanes(metric, q, q_norm, records, norms, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn kernels_agree_with_a_naive_sum() {
        for n in [0usize, 1, 3, 15, 16, 17, 64, 130] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            assert!(
                (f64::from(dot(&a, &b)) - naive_dot(&a, &b)).abs() < 1e-4,
                "{n}"
            );
            let d: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                .sum();
            assert!((f64::from(sq_dist(&a, &b)) - d).abs() < 1e-4, "{n}");
        }
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
    }

    #[test]
    fn batch_scores_equal_single_scores() {
        let q: Vec<f32> = (0..20).map(|i| (i as f32 * 0.3).sin()).collect();
        let records: Vec<f32> = (0..60).map(|i| (i as f32 * 0.17).cos()).collect();
        let norms: Vec<f32> = records.chunks(20).map(norm).collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let mut out = Vec::new();
            score_run(metric, &q, norm(&q), &records, &norms, &mut out);
            let single: Vec<f32> = records
                .chunks(20)
                .zip(&norms)
                .map(|(r, n)| score(metric, &q, norm(&q), r, *n))
                .collect();
            assert_eq!(out, single);
        }
    }

    #[test]
    fn wide_and_narrow_paths_are_bit_identical() {
        let a: Vec<f32> = (0..133).map(|i| (i as f32 * 0.73).sin() * 3.1).collect();
        let b: Vec<f32> = (0..133).map(|i| (i as f32 * 0.29).cos() / 1.7).collect();
        assert_eq!(dot(&a, &b).to_bits(), dot_lanes(&a, &b).to_bits());
        assert_eq!(sq_dist(&a, &b).to_bits(), sq_dist_lanes(&a, &b).to_bits());
    }
}
