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

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[i] += x * y;
    }
    reduce(acc)
}

#[inline(always)]
fn sq_dist_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        let d = x - y;
        acc[i] += d * d;
    }
    reduce(acc)
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
    fn wide_and_narrow_paths_are_bit_identical() {
        let a: Vec<f32> = (0..133).map(|i| (i as f32 * 0.73).sin() * 3.1).collect();
        let b: Vec<f32> = (0..133).map(|i| (i as f32 * 0.29).cos() / 1.7).collect();
        assert_eq!(dot(&a, &b).to_bits(), dot_lanes(&a, &b).to_bits());
        assert_eq!(sq_dist(&a, &b).to_bits(), sq_dist_lanes(&a, &b).to_bits());
    }
}
