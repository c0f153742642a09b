//! A fixed-seed random generator, the dot-product test of a rule, and tensor helpers.

use autodiff_runtime::Tensor;

/// SplitMix64: small, fast and good enough to draw test data from a fixed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal entries.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| self.normal()).collect(), shape)
    }

    /// Normal-like entries at least `gap` away from zero, so that a finite-difference step
    /// never crosses the kink of `relu`.
    pub fn away_from_zero(&mut self, shape: &[usize], gap: f64) -> Tensor<f64> {
        self.tensor(shape).map(|x| x.signum() * (gap + x.abs()))
    }

    /// A random permutation of `0.1 · (0..n)` shifted to be centred on 0: entries at least
    /// 0.1 apart, so that a finite-difference step never changes a maximum.
    pub fn distinct(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let mut v: Vec<f64> = (0..n).map(|i| 0.1 * (i as f64 - n as f64 / 2.0)).collect();
        for i in (1..n).rev() {
            v.swap(i, self.below(i + 1));
        }
        Tensor::from_vec(v, shape)
    }

    pub fn labels(&mut self, n: usize, classes: usize) -> Vec<usize> {
        (0..n).map(|_| self.below(classes)).collect()
    }
}

/// A value with an inner product: an argument or output of a primitive.
pub trait Space: Clone + core::fmt::Debug {
    fn inner(&self, other: &Self) -> f64;
    fn random_like(&self, rng: &mut Rng) -> Self;
    /// `self + h t`.
    fn step(&self, t: &Self, h: f64) -> Self;
}

impl Space for f64 {
    fn inner(&self, other: &Self) -> f64 {
        self * other
    }
    fn random_like(&self, rng: &mut Rng) -> Self {
        rng.normal()
    }
    fn step(&self, t: &Self, h: f64) -> Self {
        self + h * t
    }
}

impl Space for Tensor<f64> {
    fn inner(&self, other: &Self) -> f64 {
        assert_eq!(
            self.shape(),
            other.shape(),
            "inner product of different shapes"
        );
        self.data()
            .iter()
            .zip(other.data())
            .map(|(a, b)| a * b)
            .sum()
    }
    fn random_like(&self, rng: &mut Rng) -> Self {
        rng.tensor(self.shape())
    }
    fn step(&self, t: &Self, h: f64) -> Self {
        self + &(t * h)
    }
}

/// The relative tolerance of the dot-product test.
pub const TOLERANCE: f64 = 1e-7;

/// The dot-product test of a vector-Jacobian product: for a random direction `t` of the
/// argument and a random output cotangent `c`, `<t, vjp(c)>` must equal `<jvp(t), c>`,
/// where the Jacobian-vector product is a fourth-order central difference of `f` along `t`.
///
/// `vjp` receives the output `y = f(x)` (which some rules read) and `c`.
#[track_caller]
pub fn check_vjp<X: Space, Y: Space>(
    name: &str,
    x: &X,
    f: impl Fn(&X) -> Y,
    vjp: impl Fn(&Y, Y) -> X,
    rng: &mut Rng,
) {
    let y = f(x);
    let t = x.random_like(rng);
    let c = y.random_like(rng);
    let lhs = t.inner(&vjp(&y, c.clone()));
    let h = 1e-3;
    let at = |s: f64| f(&x.step(&t, s * h)).inner(&c);
    let rhs = (8.0 * (at(1.0) - at(-1.0)) - (at(2.0) - at(-2.0))) / (12.0 * h);
    let err = (lhs - rhs).abs() / lhs.abs().max(rhs.abs()).max(1e-6);
    assert!(
        err < TOLERANCE,
        "{name}: <t, vjp(c)> = {lhs}, <jvp(t), c> = {rhs} (relative error {err:e}) at x = {x:?}"
    );
}

/// Asserts that two tensors have the same shape and elements within `tol` (relative to
/// the larger magnitude, at least 1).
#[track_caller]
pub fn assert_close<T: Into<f64> + Copy + autodiff_runtime::TensorElement>(
    got: &Tensor<T>,
    want: &Tensor<f64>,
    tol: f64,
) {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let g: f64 = g.into();
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "element {i}: got {g}, want {w} (shape {:?})",
            want.shape()
        );
    }
}

/// Asserts that two scalars agree within `tol` (relative to the larger magnitude, at least 1).
#[track_caller]
pub fn assert_close_scalar(got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

/// The same tensor in `f32`.
pub fn to_f32(x: &Tensor<f64>) -> Tensor<f32> {
    Tensor::from_vec(x.data().iter().map(|&v| v as f32).collect(), x.shape())
}
