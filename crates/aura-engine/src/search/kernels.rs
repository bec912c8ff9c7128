//! f32 vector kernels. Each keeps sixteen independent accumulators in a
//! fixed order: the portable copy lets the compiler vectorize (SSE2), the
//! AVX2 copy (chosen at run time) holds the same lanes in two registers.
//! Both perform the same float operations in the same order, so every path
//! — scan, filtered rows, HNSW — gets bit-identical scores: Rust never
//! contracts or reorders float operations, and no fused multiply-add is used.

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
/// vectorizes.
#[inline(always)]
fn fold_lanes<T: Copy>(a: &[f32], b: &[T], f: impl Fn(f32, T) -> f32) -> f32 {
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

/// IEEE half-precision bits of `x`, rounded to nearest (ties to even).
/// `x` must be finite with `|x| <= 1`: graph records are scaled into that
/// range before they are stored.
pub fn to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = x.abs();
    // Below 2^-14 a half is subnormal: a multiple of 2^-24. Scaling by a
    // power of two is exact; 1024 encodes the smallest normal, as it should.
    if a < 6.103_515_6e-5 {
        return sign | (a * 16_777_216.0).round_ties_even() as u16;
    }
    let exponent = ((bits >> 23) & 0xff) + 15 - 127;
    let mantissa = bits & 0x7f_ffff;
    let mut half = (exponent << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) {
        half += 1; // a carry into the exponent is the right rounding too
    }
    sign | half as u16
}

/// The f32 value of half-precision bits (exact: every half is an f32).
#[inline(always)]
pub fn from_f16(half: u16) -> f32 {
    let sign = u32::from(half & 0x8000) << 16;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa as f32 * 5.960_464_5e-8, // 2^-24
        31 => f32::from_bits(0x7f80_0000 | (mantissa << 13)),
        _ => f32::from_bits(((exponent + 127 - 15) << 23) | (mantissa << 13)),
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

#[inline(always)]
fn dot_f16_lanes(q: &[f32], half: &[u16]) -> f32 {
    fold_lanes(q, half, |x, h| x * from_f16(h))
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::{
        __m128i, __m256, _mm256_add_ps, _mm256_cvtph_ps, _mm256_loadu_ps, _mm256_mul_ps,
        _mm256_setzero_ps, _mm256_storeu_ps, _mm256_sub_ps, _mm_loadu_si128,
    };

    use super::{from_f16, reduce, LANES};

    /// Proof that the CPU supports AVX2, and whether it has F16C: only
    /// `detect` makes one.
    #[derive(Debug, Clone, Copy)]
    pub struct Avx2 {
        f16c: bool,
    }

    impl Avx2 {
        pub fn detect() -> Option<Avx2> {
            let f16c = std::arch::is_x86_feature_detected!("f16c");
            std::arch::is_x86_feature_detected!("avx2").then_some(Avx2 { f16c })
        }

        #[inline(always)]
        pub fn dot_f16(self, q: &[f32], half: &[u16]) -> f32 {
            if !self.f16c {
                return super::dot_f16_lanes(q, half);
            }
            // SAFETY: `self` exists only on a CPU with AVX2, and `f16c`
            // says it has F16C.
            unsafe { fold_f16(q, half) }
        }

        #[inline(always)]
        pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: `self` exists only on a CPU with AVX2.
            unsafe { fold::<false>(a, b) }
        }

        #[inline(always)]
        pub fn sq_dist(self, a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: `self` exists only on a CPU with AVX2.
            unsafe { fold::<true>(a, b) }
        }
    }

    /// `x·y`, or `(x−y)²` when `SQ`.
    #[inline(always)]
    fn term<const SQ: bool>(x: f32, y: f32) -> f32 {
        if SQ {
            let d = x - y;
            d * d
        } else {
            x * y
        }
    }

    /// `term` on eight lanes at once.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn terms<const SQ: bool>(x: __m256, y: __m256) -> __m256 {
        if SQ {
            let d = _mm256_sub_ps(x, y);
            _mm256_mul_ps(d, d)
        } else {
            _mm256_mul_ps(x, y)
        }
    }

    /// `fold_lanes` with lanes 0..8 and 8..16 in two registers: each lane
    /// gets the same multiplications and additions in the same order (no
    /// fused multiply-add), so the result is bit-identical to the portable
    /// kernel.
    ///
    /// # Safety
    /// The caller must have checked that the CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn fold<const SQ: bool>(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let whole = n / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut base = 0;
        while base < whole {
            // SAFETY: `base + 16 <= whole <= n`, so the four unaligned
            // eight-float loads stay inside both slices.
            let (xl, xh, yl, yh) = unsafe {
                let (x, y) = (a.as_ptr().add(base), b.as_ptr().add(base));
                (
                    _mm256_loadu_ps(x),
                    _mm256_loadu_ps(x.add(8)),
                    _mm256_loadu_ps(y),
                    _mm256_loadu_ps(y.add(8)),
                )
            };
            lo = _mm256_add_ps(lo, terms::<SQ>(xl, yl));
            hi = _mm256_add_ps(hi, terms::<SQ>(xh, yh));
            base += LANES;
        }
        let mut acc = [0.0f32; LANES];
        // SAFETY: `acc` holds sixteen floats: eight at 0 and eight at 8.
        unsafe {
            _mm256_storeu_ps(acc.as_mut_ptr(), lo);
            _mm256_storeu_ps(acc.as_mut_ptr().add(LANES / 2), hi);
        }
        for i in whole..n {
            acc[i - whole] += term::<SQ>(a[i], b[i]);
        }
        reduce(acc)
    }

    /// `fold::<false>` of `q` with a record of half floats: the same lanes,
    /// operations and order as `dot_f16_lanes` (the conversion is exact),
    /// so both give bit-identical results. It spells out `fold`'s ending
    /// rather than sharing a helper that takes the two registers: such a
    /// helper was not inlined, and cost the exact scan a third of its speed.
    ///
    /// # Safety
    /// The caller must have checked that the CPU supports AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn fold_f16(q: &[f32], half: &[u16]) -> f32 {
        let n = q.len().min(half.len());
        let whole = n / LANES * LANES;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut base = 0;
        while base < whole {
            // SAFETY: `base + 16 <= whole <= n`: the eight-float and
            // eight-half unaligned loads stay inside both slices.
            let (ql, qh, hl, hh) = unsafe {
                let (x, h) = (q.as_ptr().add(base), half.as_ptr().add(base));
                (
                    _mm256_loadu_ps(x),
                    _mm256_loadu_ps(x.add(8)),
                    _mm256_cvtph_ps(_mm_loadu_si128(h.cast::<__m128i>())),
                    _mm256_cvtph_ps(_mm_loadu_si128(h.add(8).cast::<__m128i>())),
                )
            };
            lo = _mm256_add_ps(lo, _mm256_mul_ps(ql, hl));
            hi = _mm256_add_ps(hi, _mm256_mul_ps(qh, hh));
            base += LANES;
        }
        let mut acc = [0.0f32; LANES];
        // SAFETY: `acc` holds sixteen floats: eight at 0 and eight at 8.
        unsafe {
            _mm256_storeu_ps(acc.as_mut_ptr(), lo);
            _mm256_storeu_ps(acc.as_mut_ptr().add(LANES / 2), hi);
        }
        for i in whole..n {
            acc[i - whole] += q[i] * from_f16(half[i]);
        }
        reduce(acc)
    }
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

/// The kernels this CPU runs: AVX2 (and F16C for half records) when it has
/// them, portable otherwise.
/// Both give bit-identical results; only speed differs.
#[derive(Debug, Clone, Copy)]
pub enum Folds {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(wide::Avx2),
}

impl Folds {
    #[inline]
    pub fn detect() -> Folds {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = wide::Avx2::detect() {
            return Folds::Avx2(avx2);
        }
        Folds::Portable
    }

    /// `Σ aᵢbᵢ` over the common length.
    #[inline(always)]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Folds::Portable => dot_lanes(a, b),
            #[cfg(target_arch = "x86_64")]
            Folds::Avx2(avx2) => avx2.dot(a, b),
        }
    }

    /// `Σ qᵢhᵢ` with `h` in half floats, over the common length.
    #[inline(always)]
    pub fn dot_f16(self, q: &[f32], half: &[u16]) -> f32 {
        match self {
            Folds::Portable => dot_f16_lanes(q, half),
            #[cfg(target_arch = "x86_64")]
            Folds::Avx2(avx2) => avx2.dot_f16(q, half),
        }
    }

    /// `Σ (aᵢ−bᵢ)²` over the common length.
    #[inline(always)]
    pub fn sq_dist(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Folds::Portable => sq_dist_lanes(a, b),
            #[cfg(target_arch = "x86_64")]
            Folds::Avx2(avx2) => avx2.sq_dist(a, b),
        }
    }

    /// Score of `v` against `q` given both norms (used by cosine only).
    #[inline(always)]
    pub fn score(self, metric: Metric, q: &[f32], q_norm: f32, v: &[f32], v_norm: f32) -> f32 {
        match metric {
            Metric::Dot => self.dot(q, v),
            Metric::Cosine => {
                let denom = q_norm * v_norm;
                if denom == 0.0 {
                    0.0
                } else {
                    self.dot(q, v) / denom
                }
            }
            Metric::Euclidean => -self.sq_dist(q, v).sqrt(),
        }
    }
}

/// `Σ aᵢbᵢ` over the common length.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Folds::detect().dot(a, b)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Score of `v` against `q` given both norms (used by cosine only).
#[inline]
pub fn score(metric: Metric, q: &[f32], q_norm: f32, v: &[f32], v_norm: f32) -> f32 {
    Folds::detect().score(metric, q, q_norm, v, v_norm)
}

/// How far ahead of the record being scored the scan asks for records:
/// far enough that their memory reads are done when the scan reaches them,
/// near enough that they are still in L1. Measured on a 100k x 128 scan
/// (16 records ahead): reads go from about 40 to 50 GB/s, above what the
/// hardware prefetcher reaches alone.
const PREFETCH_BYTES: usize = 8 << 10;

/// `items` in order, each yielded once `ask` has been called for the item
/// `ahead` places after it (the first `ahead` are asked for up front):
/// items that lie apart in memory then arrive while earlier ones are used.
pub fn prefetched<'a, T>(
    items: &'a [T],
    ahead: usize,
    ask: impl Fn(&T) + 'a,
) -> impl Iterator<Item = &'a T> + 'a {
    items.iter().take(ahead).for_each(&ask);
    items.iter().enumerate().map(move |(i, item)| {
        if let Some(later) = items.get(i + ahead) {
            ask(later);
        }
        item
    })
}

/// Asks the CPU to start loading every cache line `record` touches
/// (a record need not start on a line), so that fetching it overlaps
/// with other work.
#[inline(always)]
pub fn prefetch<T>(record: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let size = std::mem::size_of_val(record);
        let start = record.as_ptr().cast::<i8>();
        let into_line = start as usize % 64;
        let line = start.wrapping_sub(into_line);
        let end = if size == 0 { 0 } else { into_line + size };
        for offset in (0..end).step_by(64) {
            // SAFETY: a prefetch is only a hint; it never faults or reads
            // into the program. The address is that of a line `record`
            // touches (computed with wrapping arithmetic, never read).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = record;
}

/// Scores of consecutive `q.len()`-wide records (one norm each) into
/// `out`, detecting the CPU once per run: exactly `score` of each record.
pub fn score_run(
    metric: Metric,
    q: &[f32],
    q_norm: f32,
    records: &[f32],
    norms: &[f32],
    out: &mut Vec<f32>,
) {
    let folds = Folds::detect();
    out.clear();
    let dim = q.len().max(1);
    let n = (records.len() / dim).min(norms.len());
    let ahead = (PREFETCH_BYTES / (dim * 4)).max(1);
    for (i, v_norm) in norms.iter().enumerate().take(n) {
        if let Some(ahead) = records.get((i + ahead) * dim..(i + ahead + 1) * dim) {
            prefetch(ahead);
        }
        out.push(folds.score(metric, q, q_norm, &records[i * dim..(i + 1) * dim], *v_norm));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetched_asks_ahead_of_each_item_in_order() {
        let log = std::cell::RefCell::new(Vec::new());
        let items = [10, 11, 12, 13, 14];
        let ask = |i: &i32| log.borrow_mut().push(format!("ask {i}"));
        for item in prefetched(&items, 2, ask) {
            log.borrow_mut().push(format!("use {item}"));
        }
        let want = [
            "ask 10", "ask 11", "ask 12", "use 10", "ask 13", "use 11", "ask 14", "use 12",
            "use 13", "use 14",
        ];
        assert_eq!(*log.borrow(), want);
        assert_eq!(
            prefetched(&items, 9, |_| ()).count(),
            5,
            "more ahead than items"
        );
    }

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
            assert!(
                (f64::from(Folds::detect().sq_dist(&a, &b)) - d).abs() < 1e-4,
                "{n}"
            );
        }
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
    }

    #[test]
    fn batch_scores_equal_single_scores() {
        for (dim, count) in [(20, 3), (20, 11), (128, 9), (133, 6), (7, 4)] {
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.3).sin()).collect();
            let records: Vec<f32> = (0..dim * count)
                .map(|i| (i as f32 * 0.17).cos() * 2.3)
                .collect();
            let mut norms: Vec<f32> = records.chunks(dim).map(norm).collect();
            norms[0] = 0.0; // a zero norm scores 0 under cosine
            for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
                let mut out = Vec::new();
                score_run(metric, &q, norm(&q), &records, &norms, &mut out);
                let single: Vec<u32> = records
                    .chunks(dim)
                    .zip(&norms)
                    .map(|(r, n)| score(metric, &q, norm(&q), r, *n).to_bits())
                    .collect();
                let batch: Vec<u32> = out.iter().map(|s| s.to_bits()).collect();
                assert_eq!(batch, single, "{metric:?} dim {dim} count {count}");
                let portable: Vec<u32> = records
                    .chunks(dim)
                    .zip(&norms)
                    .map(|(r, n)| Folds::Portable.score(metric, &q, norm(&q), r, *n).to_bits())
                    .collect();
                assert_eq!(batch, portable, "{metric:?} dim {dim} count {count}");
            }
        }
    }

    #[test]
    fn halves_round_to_nearest_even_and_convert_back_exactly() {
        assert_eq!(to_f16(0.0), 0);
        assert_eq!(to_f16(-0.0), 0x8000);
        assert_eq!(to_f16(1.0), 0x3c00);
        assert_eq!(to_f16(-1.0), 0xbc00);
        assert_eq!(to_f16(0.5), 0x3800);
        assert_eq!(to_f16(0.333_333_34), 0x3555);
        assert_eq!(to_f16(6.103_515_6e-5), 0x0400); // smallest normal
        assert_eq!(to_f16(5.960_464_5e-8), 0x0001); // smallest subnormal
        assert_eq!(to_f16(2.0e-8), 0); // rounds to zero
                                       // 1 + 2^-11 is halfway between 1 and the next half: ties to even.
        assert_eq!(to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(to_f16(1.0 - 2f32.powi(-12)), 0x3c00);
        for h in 0u16..0x7c00 {
            for half in [h, h | 0x8000] {
                assert_eq!(to_f16(from_f16(half)), half, "{half:#06x}");
            }
        }
        let mut x = 1.0f32;
        while x > 1e-9 {
            let back = from_f16(to_f16(x));
            assert!((back - x).abs() <= x * 4.9e-4 + 3.0e-8, "{x} -> {back}");
            x *= 0.937;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn halves_match_the_cpu_conversion() {
        use std::arch::x86_64::{__m128i, _mm256_cvtps_ph, _mm256_loadu_ps, _mm_storeu_si128};
        if !std::arch::is_x86_feature_detected!("f16c") {
            return;
        }
        #[target_feature(enable = "avx,f16c")]
        fn cpu(x: [f32; 8]) -> [u16; 8] {
            let mut out = [0u16; 8];
            // SAFETY: both buffers hold eight elements of the loaded and
            // stored widths; the caller checked for F16C.
            unsafe {
                let h = _mm256_cvtps_ph::<0>(_mm256_loadu_ps(x.as_ptr()));
                _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), h);
            }
            out
        }
        let mut seed = 0x2545_f491u32;
        for _ in 0..20_000 {
            let mut x = [0.0f32; 8];
            for v in &mut x {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                // Magnitudes from 1 down to about 2^-30, both signs.
                let mag = f32::from_bits(0x3f80_0000 - (seed % (30 << 23)));
                *v = if seed & 1 == 1 { -mag } else { mag };
            }
            // SAFETY: F16C was detected above.
            let expected = unsafe { cpu(x) };
            assert_eq!(x.map(to_f16), expected, "{x:?}");
        }
    }

    #[test]
    fn half_dot_products_agree_across_kernels() {
        for n in [0usize, 1, 15, 16, 17, 64, 128, 133] {
            let q: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
            let h: Vec<u16> = (0..n).map(|i| to_f16((i as f32 * 0.11).cos())).collect();
            let wide = Folds::detect().dot_f16(&q, &h);
            let portable = Folds::Portable.dot_f16(&q, &h);
            assert_eq!(wide.to_bits(), portable.to_bits(), "{n}");
            let widened: Vec<f32> = h.iter().map(|x| from_f16(*x)).collect();
            assert_eq!(
                portable.to_bits(),
                Folds::Portable.dot(&q, &widened).to_bits()
            );
        }
    }

    #[test]
    fn wide_and_narrow_paths_are_bit_identical() {
        let a: Vec<f32> = (0..133).map(|i| (i as f32 * 0.73).sin() * 3.1).collect();
        let b: Vec<f32> = (0..133).map(|i| (i as f32 * 0.29).cos() / 1.7).collect();
        for n in [0, 1, 15, 16, 17, 64, 128, 133] {
            let (a, b) = (&a[..n], &b[..n]);
            let (best, portable) = (Folds::detect(), Folds::Portable);
            assert_eq!(
                best.dot(a, b).to_bits(),
                portable.dot(a, b).to_bits(),
                "{n}"
            );
            let (d, p) = (best.sq_dist(a, b), portable.sq_dist(a, b));
            assert_eq!(d.to_bits(), p.to_bits(), "{n}");
        }
    }
}
