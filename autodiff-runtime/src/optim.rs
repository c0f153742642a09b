//! Optimizers that update any [`Differentiable`] parameter set in place from its gradient.

use crate::differentiable::{Differentiable, ParamVisitor};
use num_traits::Float;

/// Stochastic gradient descent, `w = w - lr * grad`, optionally with momentum
/// (`v = momentum * v + grad; w = w - lr * v`, as PyTorch's `SGD`).
///
/// ```
/// use autodiff_runtime::{Sgd, Differentiable};
///
/// let mut w = vec![1.0_f64, -2.0];
/// let grad = vec![0.5, -0.5];
/// Sgd::new(0.1).step(&mut w, &grad);
/// assert_eq!(w, vec![0.95, -1.95]);
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    /// The learning rate.
    pub lr: f64,
    /// The momentum factor; 0 for plain gradient descent.
    pub momentum: f64,
    velocity: Vec<Vec<f64>>,
}

impl Sgd {
    /// Plain gradient descent with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            velocity: Vec::new(),
        }
    }

    /// Adds momentum.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Updates `params` in place from `grad` (a gradient of the same shape).
    pub fn step<P: Differentiable>(&mut self, params: &mut P, grad: &P) {
        let mut visitor = SgdStep { sgd: self, leaf: 0 };
        params.visit(grad, &mut visitor);
    }
}

struct SgdStep<'a> {
    sgd: &'a mut Sgd,
    leaf: usize,
}

impl ParamVisitor for SgdStep<'_> {
    fn leaf<T: Float>(&mut self, params: &mut [T], grads: &[T]) {
        let lr = self.sgd.lr;
        if self.sgd.momentum == 0.0 {
            for (p, g) in params.iter_mut().zip(grads) {
                *p = *p - T::from(lr).unwrap() * *g;
            }
        } else {
            if self.sgd.velocity.len() <= self.leaf {
                self.sgd.velocity.push(vec![0.0; params.len()]);
            }
            let velocity = &mut self.sgd.velocity[self.leaf];
            for ((p, g), v) in params.iter_mut().zip(grads).zip(velocity.iter_mut()) {
                *v = self.sgd.momentum * *v + g.to_f64().unwrap();
                *p = *p - T::from(lr * *v).unwrap();
            }
        }
        self.leaf += 1;
    }
}

/// Adam (Kingma & Ba, 2015) with bias correction, as PyTorch's `Adam`.
///
/// ```
/// use autodiff_runtime::Adam;
///
/// // minimise (w - 3)^2: gradient 2 (w - 3)
/// let mut w = vec![0.0_f64];
/// let mut adam = Adam::new(0.1);
/// for _ in 0..500 {
///     let grad = vec![2.0 * (w[0] - 3.0)];
///     adam.step(&mut w, &grad);
/// }
/// assert!((w[0] - 3.0).abs() < 1e-3);
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    /// The learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    steps: i32,
    moments: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Adam {
    /// Adam with learning rate `lr` and the usual defaults `β = (0.9, 0.999)`, `ε = 1e-8`.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            steps: 0,
            moments: Vec::new(),
        }
    }

    /// Updates `params` in place from `grad` (a gradient of the same shape).
    pub fn step<P: Differentiable>(&mut self, params: &mut P, grad: &P) {
        self.steps += 1;
        let mut visitor = AdamStep {
            adam: self,
            leaf: 0,
        };
        params.visit(grad, &mut visitor);
    }
}

struct AdamStep<'a> {
    adam: &'a mut Adam,
    leaf: usize,
}

impl ParamVisitor for AdamStep<'_> {
    fn leaf<T: Float>(&mut self, params: &mut [T], grads: &[T]) {
        let adam = &mut *self.adam;
        if adam.moments.len() <= self.leaf {
            adam.moments
                .push((vec![0.0; params.len()], vec![0.0; params.len()]));
        }
        let (b1, b2, lr, eps) = (adam.beta1, adam.beta2, adam.lr, adam.eps);
        let correction1 = 1.0 - b1.powi(adam.steps);
        let correction2 = 1.0 - b2.powi(adam.steps);
        let (m, v) = &mut adam.moments[self.leaf];
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let g = g.to_f64().unwrap();
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let update = lr * (*m / correction1) / ((*v / correction2).sqrt() + eps);
            *p = *p - T::from(update).unwrap();
        }
        self.leaf += 1;
    }
}
