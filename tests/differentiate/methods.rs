//! `#[differentiate]` on an `impl` block: methods taking `self`, calls between them, generic
//! blocks and `wrt(self)`.

use autodiff::prelude::*;

fn close(a: f64, b: f64) -> bool {
    autodiff::relative_error(a, b) < 1e-7
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Neuron {
    pub w: Vec<f64>,
    pub b: f64,
}

#[differentiate]
impl Neuron {
    const DECAY: f64 = 0.1;

    /// tanh(b + Σ w_i x_i)
    #[differentiate]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mut s = self.b;
        for i in 0..x.len() {
            s += self.w[i] * x[i];
        }
        s.tanh()
    }

    /// (predict(x) - y)² + DECAY b²: a call of another marked method and of a marked
    /// associated function, a constant of the block through `Self`
    #[differentiate]
    pub fn loss(&self, x: &[f64], y: f64) -> f64 {
        let r = self.predict(x) - y;
        r * r + Self::penalty(self.b) * Self::DECAY
    }

    #[differentiate]
    fn penalty(b: f64) -> f64 {
        b * b
    }

    #[differentiate(wrt(x))]
    pub fn input_sensitivity(&self, x: &[f64]) -> f64 {
        self.predict(x) * 2.0
    }

    /// Not marked: left as it is.
    pub fn width(&self) -> usize {
        self.w.len()
    }
}

fn neuron() -> Neuron {
    Neuron {
        w: vec![0.4, -0.7, 0.2],
        b: 0.3,
    }
}

/// The parameters and inputs of `loss` as one vector, for finite differences.
fn loss_at(p: &[f64]) -> f64 {
    let n = Neuron {
        w: p[..3].to_vec(),
        b: p[3],
    };
    n.loss(&p[4..7], p[7])
}

#[test]
fn a_method_gradient_matches_finite_differences() {
    let n = neuron();
    let x = [0.5, 1.5, -1.0];
    let y = 0.25;
    let (value, (d_self, d_x, d_y)) = n.loss_grad(&x, y);
    assert_eq!(value, n.loss(&x, y));
    let at: Vec<f64> =
        n.w.iter()
            .copied()
            .chain([n.b])
            .chain(x)
            .chain([y])
            .collect();
    let fd = finite_difference_gradient(loss_at, &at);
    let ours: Vec<f64> = d_self
        .w
        .iter()
        .copied()
        .chain([d_self.b])
        .chain(d_x)
        .chain([d_y])
        .collect();
    for (o, f) in ours.iter().zip(&fd) {
        assert!(close(*o, *f), "{ours:?} vs {fd:?}");
    }
    assert_eq!(n.width(), 3);
}

#[test]
fn a_method_pullback_is_a_vjp() {
    // predict = tanh(s): ∂/∂w_i = (1 - tanh² s) x_i, ∂/∂b = 1 - tanh² s, ∂/∂x_i = (1 - tanh² s) w_i
    let n = neuron();
    let x = [0.5, 1.5, -1.0];
    let (value, pullback) = n.predict_pullback(&x);
    let s: f64 = n.b + n.w.iter().zip(&x).map(|(w, x)| w * x).sum::<f64>();
    assert!(close(value, s.tanh()));
    let (d_self, d_x) = pullback.backward(3.0);
    let slope = 3.0 * (1.0 - s.tanh().powi(2));
    assert!(close(d_self.b, slope));
    for i in 0..3 {
        assert!(close(d_self.w[i], slope * x[i]));
        assert!(close(d_x[i], slope * n.w[i]));
    }
}

#[test]
fn associated_functions_and_wrt_on_methods() {
    // penalty(b) = b²  =>  2 b
    assert_eq!(Neuron::penalty_grad(1.5), (2.25, 3.0));
    // wrt(x): only the input's gradient, 2 (1 - tanh² s) w_i
    let n = neuron();
    let x = [0.5, 1.5, -1.0];
    let (_, d_x) = n.input_sensitivity_grad(&x);
    let fd = finite_difference_gradient(|x: &[f64]| n.input_sensitivity(x), &x);
    for i in 0..3 {
        assert!(close(d_x[i], fd[i]), "{d_x:?} vs {fd:?}");
    }
}

#[derive(Differentiable, Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[differentiate]
impl Point {
    /// Compiled out, with everything generated for it (or this file would not build).
    #[cfg(any())]
    #[differentiate]
    pub fn compiled_out(&self) -> f64 {
        self.x
    }

    /// |p| = sqrt(x² + y²), taking `self` by value: ∂/∂x = x / |p|, ∂/∂y = y / |p|
    #[differentiate]
    pub fn norm(self) -> f64 {
        (self.x * self.x + self.y * self.y).sqrt()
    }

    /// the distance to `other` scaled by `k`; `wrt(self)` leaves `other` and `k` constant:
    /// ∂/∂self = k (self - other) / |self - other|
    #[differentiate(wrt(self))]
    pub fn scaled_distance(&self, other: &Point, k: f64) -> f64 {
        let dx = self.x - other.x;
        let dy = self.y - other.y;
        k * (dx * dx + dy * dy).sqrt()
    }
}

#[test]
fn self_by_value_and_wrt_self() {
    let p = Point { x: 3.0, y: -4.0 };
    let (value, d) = p.norm_grad();
    assert_eq!(value, 5.0);
    assert!(close(d.x, 0.6) && close(d.y, -0.8), "{d:?}");
    let q = Point { x: 1.0, y: 1.0 };
    let (value, d) = p.scaled_distance_grad(&q, 2.0);
    let r = (4.0f64 + 25.0).sqrt();
    assert!(close(value, 2.0 * r));
    assert!(
        close(d.x, 2.0 * 2.0 / r) && close(d.y, 2.0 * -5.0 / r),
        "{d:?}"
    );
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Spring<T> {
    pub stiffness: T,
    pub rest: T,
}

#[differentiate]
impl<T: Float> Spring<T> {
    /// k (x - r)² / 2: ∂/∂k = (x - r)² / 2, ∂/∂r = -k (x - r), ∂/∂x = k (x - r)
    #[differentiate]
    pub fn energy(&self, x: T) -> T {
        let stretch = x - self.rest;
        self.stiffness * stretch * stretch / T::from(2.0).unwrap()
    }
}

/// A free function generic over the float, with a generic parameter set, calling the method:
/// 2 energy(x), so twice the method's gradient.
#[differentiate]
fn double_energy<T: Float>(spring: &Spring<T>, x: T) -> T {
    spring.energy(x) * T::from(2.0).unwrap()
}

#[test]
fn generic_parameter_sets_in_free_functions() {
    let spring = Spring {
        stiffness: 3.0f64,
        rest: 1.0,
    };
    let (value, (d_spring, d_x)) = double_energy_grad(&spring, 1.5);
    let (method_value, (method_d_spring, method_d_x)) = spring.energy_grad(1.5);
    assert_eq!(value, 2.0 * method_value);
    assert_eq!(d_spring.stiffness, 2.0 * method_d_spring.stiffness);
    assert_eq!(d_spring.rest, 2.0 * method_d_spring.rest);
    assert_eq!(d_x, 2.0 * method_d_x);
    let spring = Spring {
        stiffness: 3.0f32,
        rest: 1.0,
    };
    let (_, (_, d_x)) = double_energy_grad(&spring, 1.5f32);
    assert!((d_x - 3.0).abs() < 1e-6);
}

#[test]
fn generic_blocks_generate_generic_methods() {
    let spring = Spring {
        stiffness: 3.0f64,
        rest: 1.0,
    };
    let (value, (d_spring, d_x)) = spring.energy_grad(1.5);
    assert!(close(value, 0.375));
    assert!(close(d_spring.stiffness, 0.125));
    assert!(close(d_spring.rest, -1.5));
    assert!(close(d_x, 1.5));
    let spring = Spring {
        stiffness: 3.0f32,
        rest: 1.0,
    };
    let (_, (_, d_x)) = spring.energy_grad(1.5);
    assert!((d_x - 1.5).abs() < 1e-6);
}

/// Σ_j predict(x_j)² + penalty(b) decay, calling the methods from a free function: as a
/// method of a parameter, and by path.
#[differentiate]
fn batch_energy(n: &Neuron, xs: &[f64], width: usize) -> f64 {
    let mut total = 0.0;
    for j in 0..xs.len() / width {
        let p = n.predict(&xs[j * width..(j + 1) * width]);
        total += p * p;
    }
    total + Neuron::penalty(n.b) * Neuron::DECAY
}

#[test]
fn free_functions_compose_with_methods() {
    let n = neuron();
    let xs = [0.5, 1.5, -1.0, -0.2, 0.3, 0.9];
    let (value, (d_n, d_xs)) = batch_energy_grad(&n, &xs, 3);
    assert_eq!(value, batch_energy(&n, &xs, 3));
    let at: Vec<f64> = n.w.iter().copied().chain([n.b]).chain(xs).collect();
    let energy = |p: &[f64]| {
        let n = Neuron {
            w: p[..3].to_vec(),
            b: p[3],
        };
        batch_energy(&n, &p[4..], 3)
    };
    let fd = finite_difference_gradient(energy, &at);
    let ours: Vec<f64> = d_n.w.iter().copied().chain([d_n.b]).chain(d_xs).collect();
    for (o, f) in ours.iter().zip(&fd) {
        assert!(close(*o, *f), "{ours:?} vs {fd:?}");
    }
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Poly<const N: usize> {
    pub c: [f64; N],
}

#[differentiate]
impl<const N: usize> Poly<N> {
    /// Σ c_k x^k by Horner: ∂/∂c_k = x^k, ∂/∂x = Σ k c_k x^(k-1)
    #[differentiate]
    pub fn eval(&self, x: f64) -> f64 {
        let mut acc = 0.0;
        for k in (0..N).rev() {
            acc = acc * x + self.c[k];
        }
        acc
    }

    /// The value and the linear term: a tuple output, so a `jacobian`
    #[differentiate]
    pub fn value_and_linear(&self, x: f64) -> (f64, f64) {
        (self.eval(x), self.c[1] * x)
    }
}

#[test]
fn const_generic_blocks_and_jacobians_of_methods() {
    let p = Poly { c: [1.0, 2.0, 3.0] };
    let x = 2.0;
    let (value, (d_p, d_x)) = p.eval_grad(x);
    assert_eq!(value, 17.0);
    assert_eq!(d_p.c, [1.0, x, x * x]);
    assert!(close(d_x, 2.0 + 2.0 * 3.0 * x));
    let (_, pullback) = p.value_and_linear_pullback(x);
    let [(row0_p, row0_x), (row1_p, row1_x)] = pullback.jacobian();
    assert_eq!((row0_p, row0_x), (d_p, d_x));
    // c_1 x: ∂/∂c = (0, x, 0), ∂/∂x = c_1
    assert_eq!((row1_p.c, row1_x), ([0.0, x, 0.0], 2.0));
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Layer {
    pub w: f64,
    pub b: f64,
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct TwoLayers {
    pub first: Layer,
    pub second: Layer,
}

#[differentiate]
impl Layer {
    /// tanh(w x + b)
    #[differentiate]
    pub fn forward(&self, x: f64) -> f64 {
        (self.w * x + self.b).tanh()
    }
}

#[differentiate]
impl TwoLayers {
    /// second(first(x)): the fields' methods called by path, their gradients added into the
    /// fields of the block's cotangent
    #[differentiate]
    pub fn forward(&self, x: f64) -> f64 {
        let h = Layer::forward(&self.first, x);
        Layer::forward(&self.second, h) + Layer::forward(&self.first, h) * 0.5
    }
}

#[test]
fn nested_parameter_sets_compose_through_their_methods() {
    let net = TwoLayers {
        first: Layer { w: 0.5, b: 0.1 },
        second: Layer { w: -1.2, b: 0.3 },
    };
    let (value, (d_net, d_x)) = net.forward_grad(0.7);
    assert_eq!(value, net.forward(0.7));
    let at = [0.5, 0.1, -1.2, 0.3, 0.7];
    let fd = finite_difference_gradient(
        |p: &[f64]| {
            let net = TwoLayers {
                first: Layer { w: p[0], b: p[1] },
                second: Layer { w: p[2], b: p[3] },
            };
            net.forward(p[4])
        },
        &at,
    );
    let ours = [
        d_net.first.w,
        d_net.first.b,
        d_net.second.w,
        d_net.second.b,
        d_x,
    ];
    for (o, f) in ours.iter().zip(&fd) {
        assert!(close(*o, *f), "{ours:?} vs {fd:?}");
    }
}

/// Methods of fields and of a loop's elements called with method syntax, whose types the
/// macro cannot name: the hidden entry points are called by method syntax too.
mod methods_of_fields {
    use autodiff::prelude::*;

    #[derive(Differentiable, Clone)]
    pub struct Dense {
        pub w: Vec<f64>,
        pub b: Vec<f64>,
        pub n_in: usize,
        pub n_out: usize,
    }

    #[derive(Differentiable, Clone)]
    pub struct Stack {
        pub layers: Vec<Dense>,
        pub head: Dense,
    }

    #[differentiate]
    impl Dense {
        /// tanh(W x + b)
        #[differentiate]
        pub fn forward(&self, x: &[f64]) -> Vec<f64> {
            let mut out = vec![0.0; self.n_out];
            for o in 0..self.n_out {
                let mut z = self.b[o];
                for i in 0..self.n_in {
                    z += self.w[o * self.n_in + i] * x[i];
                }
                out[o] = z.tanh();
            }
            out
        }

        /// |W|²
        #[differentiate]
        pub fn energy(&self) -> f64 {
            let mut e = 0.0;
            for v in &self.w {
                e += v * v;
            }
            e
        }
    }

    #[differentiate]
    impl Stack {
        #[differentiate(wrt(self))]
        pub fn predict(&self, x: &[f64]) -> f64 {
            let mut h = x.to_vec();
            for layer in &self.layers {
                h = layer.forward(&h);
            }
            let out = self.head.forward(&h);
            out[0] + 0.01 * self.head.energy()
        }
    }

    #[differentiate(wrt(net))]
    fn loss(net: &Stack, xs: &[Vec<f64>], ys: &[f64]) -> f64 {
        let mut total = 0.0;
        for i in 0..ys.len() {
            total += (net.predict(&xs[i]) - ys[i]).powi(2);
        }
        total + 0.001 * net.layers[0].energy() + net.layers[0].forward(&xs[0])[3]
    }

    fn dense(n_in: usize, n_out: usize, shift: f64) -> Dense {
        Dense {
            w: (0..n_in * n_out)
                .map(|k| ((k as f64 + shift) * 0.37).sin() * 0.8)
                .collect(),
            b: (0..n_out).map(|k| 0.1 * k as f64 + 0.2).collect(),
            n_in,
            n_out,
        }
    }

    fn flat(net: &Stack) -> Vec<f64> {
        net.layers
            .iter()
            .chain(std::iter::once(&net.head))
            .flat_map(|l| l.w.iter().chain(&l.b).copied())
            .collect()
    }

    fn unflat(like: &Stack, p: &[f64]) -> Stack {
        let mut net = like.clone();
        let mut k = 0;
        for layer in net.layers.iter_mut().chain(std::iter::once(&mut net.head)) {
            for v in layer.w.iter_mut().chain(layer.b.iter_mut()) {
                *v = p[k];
                k += 1;
            }
        }
        net
    }

    #[test]
    fn methods_called_on_fields_and_loop_elements_match_finite_differences() {
        let net = Stack {
            layers: vec![dense(2, 4, 0.0), dense(4, 2, 1.0)],
            head: dense(2, 1, 2.0),
        };
        let xs = vec![
            vec![0.5, -0.3],
            vec![1.0, 0.8],
            vec![-0.6, 0.1],
            vec![0.2, 0.4],
        ];
        let ys = [0.2, 0.9, -0.1, 0.4];
        let (value, d_net) = loss_grad(&net, &xs, &ys);
        assert_eq!(value.to_bits(), loss(&net, &xs, &ys).to_bits());
        let at = flat(&net);
        let error = check_gradient(
            |p: &[f64]| loss(&unflat(&net, p), &xs, &ys),
            &at,
            &flat(&d_net),
        );
        assert!(error < 1e-8, "relative error {error}");
    }
}
