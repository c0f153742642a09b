//! A seeded generator of random functions in the subset `#[differentiate]` supports.
//!
//! [`render`] writes a Rust module: `count` functions `f0`, `f1`, ... with
//! `#[differentiate]`, generic over `T: Float + NumAssign + Sum` (so that the same source runs
//! at `f64` in the generated gradient, at `Dual<f64>` for forward mode and at the branch
//! recording `Probe` of `harness.rs`), each followed by two wrappers that call it on a flat
//! slice of inputs, and a table `CASES` that `harness::check_all` walks. The generator has no
//! dependencies (its own splitmix64), so the output depends on the seed, the batch number and
//! the count only, and the same seed gives the same file on every machine.
//!
//! What the functions contain: scalar arithmetic, literals `T::from(c).unwrap()`, `if`/`else`
//! (statements and expressions) and `while` conditions on active values, `for` loops over
//! ranges (`a..b`, `a..=b`, `.rev()`, `.step_by(k)`) and over slices (`iter`, `&v`,
//! `enumerate`, `zip`, `rev`, `copied`), bounded `while` and `loop` (also `break value`),
//! `break`/`continue`, early `return`, `match` on integers, late initialisation, shadowing,
//! helper closures bound by `let`,
//! tuple destructuring and swaps, local `Vec`s (`vec![..; n]`, `to_vec`, `with_capacity` +
//! `push`, `clone`, indexed writes and compound writes, `swap`), iterator reductions (`sum`,
//! `product`, `fold`, `map`, `zip`), calls to earlier functions (scalar, tuple and `Vec`
//! results, slices passed through), functions written as associated functions of an `impl`
//! block of their own (`M3::f3`, called by that path), pairs returned as the struct
//! `Pt { a, b }` (its fields in either order), lets through a local `Pt` changed and read by
//! field, `wrt(...)` subsets, integer
//! parameters, and every scalar
//! primitive of docs/supported.md in its three call syntaxes (`x.sin()`, `T::sin(x)`,
//! `Float::sin(x)`).
//!
//! How values stay finite and moderate: every expression carries a bound on its absolute
//! value, computed from the bounds of its operands for inputs in `[-INPUT_BOUND, INPUT_BOUND]`.
//! Arguments are moved into each primitive's domain with a margin (`ln` of `e * e + c` or of
//! `e + (B + c)` where `B` bounds `e`, `asin` of `0.9 * tanh(e)`, `acosh` of `e * e + 1.5`,
//! divisions by such positive forms, ...), and whatever grows past a cap is squashed
//! (`tanh(k e)`, `sin(k e)`, `atan(k e)` with `k = 2 / B`). Loops have at most 5 trips and
//! nest at most twice; a variable updated in a loop may grow by at most `LOOP_ALLOWANCE` per
//! trip, which its bound accounts for. Calls pass arguments squashed to the input bound the
//! callee was generated for, and an estimate of the work (the callee's cost times the trips
//! around the call) keeps the call graph from exploding.
//!
//! Kinks and jumps (`abs`, `max`, `floor`, `%`, comparisons, ...) are generated freely: the
//! checker detects the points where they matter (see `harness.rs`) instead of the generator
//! avoiding them.

use std::fmt::Write as _;

/// The seed of the committed `tests/generated/cases.rs`.
pub const DEFAULT_SEED: u64 = 20_240_601;
/// The number of functions in the committed `tests/generated/cases.rs`.
pub const DEFAULT_COUNT: usize = 500;
/// Inputs are drawn from `[-INPUT_BOUND, INPUT_BOUND]`; callees get arguments in that range.
pub const INPUT_BOUND: f64 = 1.5;
/// The command that rewrites the committed cases file.
pub const REGENERATE: &str = "cargo run --release --example gradient_fuzz -- --write-cases";

/// The bounds of the generic parameter: `Float`, and what `+=` and `.sum()`/`.product()` need.
pub const BOUNDS: &str = "Float + NumAssign + Sum + Product";
/// Squash scalar variables above this bound when they are assigned.
const VAR_CAP: f64 = 4.0;
/// The largest bound of a function's output.
const OUT_CAP: f64 = 12.0;
/// What one trip of a loop may add to a variable declared outside the loop.
const LOOP_ALLOWANCE: f64 = 1.0;
/// The largest product of trip counts around a statement.
const MAX_TRIPS: usize = 25;
/// The largest estimated cost (primitive operations per call) of a function.
const MAX_COST: f64 = 4000.0;
/// The share of functions generated as methods of an `impl` block.
const METHOD_SHARE: f64 = 0.1;
/// The share of functions with a pair as output that return it as the struct `Pt<T>`.
const STRUCT_SHARE: f64 = 0.4;

/// Constructs that currently hit known bugs of `#[differentiate]` (docs/testing.md lists them
/// with minimal reproductions). They make the generated crate fail to compile, which would
/// stop every other check, so they are generated only when asked for (`--known-bugs` of the
/// fuzz example); once a bug is fixed, its switch is removed and the construct is always
/// generated. No bug is open now, so there is no switch and `--known-bugs` changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KnownBugs {}

impl KnownBugs {
    pub const ALL: KnownBugs = KnownBugs {};
}

/// splitmix64: small, fast and good enough for choosing among grammar productions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index into `weights`, chosen with probability proportional to the weight.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut r = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }
}

/// The seed of the random generator of one batch.
pub fn batch_seed(seed: u64, batch: u64) -> u64 {
    let mut rng = Rng::new(seed ^ batch.wrapping_mul(0xd1b5_4a32_d192_ed03));
    rng.next_u64()
}

/// A parameter of a generated function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    /// `T`
    Scalar,
    /// `&[T]` of this length
    Slice(usize),
    /// `usize`, a constant; the wrappers pass this value, callers any value in `1..=4`
    Count(usize),
}

/// What a generated function returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Output {
    /// `T`: checked through `_grad`
    Scalar,
    /// `(T, T)`: checked through `backward` with a random cotangent
    Pair,
    /// `Vec<T>` of this length: checked through `backward` with a random cotangent
    Vector(usize),
    /// `[T; N]` of this length: checked through the rows of `jacobian()` combined with a
    /// random cotangent
    Array(usize),
    /// `Pt<T>`, a struct of two floats built by a struct expression: checked through
    /// `backward` with a random cotangent `Pt { a, b }`
    Struct,
}

impl Output {
    pub fn len(self) -> usize {
        match self {
            Output::Scalar => 1,
            Output::Pair | Output::Struct => 2,
            Output::Vector(n) | Output::Array(n) => n,
        }
    }
}

/// One generated function.
#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub params: Vec<(String, Param)>,
    /// Parallel to `params`: whether the parameter gets a cotangent.
    pub active: Vec<bool>,
    pub output: Output,
    /// A bound on the absolute value of the output for inputs in the input bound.
    pub out_bound: f64,
    /// Estimated primitive operations per call, callees included.
    pub cost: f64,
    /// `#[differentiate] fn ... { ... }`, or that function as a method of a block of its own
    /// (`pub struct M3; #[differentiate] impl M3 { #[differentiate] fn f3 .. }`)
    pub source: String,
    /// How other code calls it: `f3`, or `M3::f3` for a method
    pub path: String,
}

impl Function {
    /// The number of float inputs (slice elements counted one by one).
    pub fn inputs(&self) -> usize {
        self.params
            .iter()
            .map(|(_, p)| match p {
                Param::Scalar => 1,
                Param::Slice(n) => *n,
                Param::Count(_) => 0,
            })
            .sum()
    }

    /// The flat input indices of the active parameters, in order.
    pub fn active_inputs(&self) -> Vec<usize> {
        let mut at = 0;
        let mut active = Vec::new();
        for ((_, p), a) in self.params.iter().zip(&self.active) {
            let width = match p {
                Param::Scalar => 1,
                Param::Slice(n) => *n,
                Param::Count(_) => 0,
            };
            if *a {
                active.extend(at..at + width);
            }
            at += width;
        }
        active
    }

    /// Moves the function into an `impl` block of a struct of its own, as an associated
    /// function without `self` (the struct has no fields, so a receiver would add nothing to
    /// check): its gradient entry points become `M3::f3_grad` and `M3::f3_pullback`, and
    /// callers compose with it through the path call `M3::f3(..)`.
    fn make_method(&mut self, index: usize) {
        let holder = format!("M{index}");
        let mut method = String::new();
        for line in self.source.lines() {
            if !line.is_empty() {
                method.push_str("    ");
            }
            method.push_str(line);
            method.push('\n');
        }
        self.source =
            format!("pub struct {holder};\n\n#[differentiate]\nimpl {holder} {{\n{method}}}\n");
        self.path = format!("{holder}::{}", self.name);
    }

    /// The call of this function on the flat input slice `p`.
    fn call_on_flat(&self, p: &str) -> String {
        let mut at = 0;
        let args: Vec<String> = self
            .params
            .iter()
            .map(|(_, param)| match param {
                Param::Scalar => {
                    at += 1;
                    format!("{p}[{}]", at - 1)
                }
                Param::Slice(n) => {
                    at += n;
                    format!("&{p}[{}..{}]", at - n, at)
                }
                Param::Count(v) => format!("{v}"),
            })
            .collect();
        args.join(", ")
    }
}

/// Generates the functions of one batch.
pub fn generate(seed: u64, batch: u64, count: usize, bugs: KnownBugs) -> Vec<Function> {
    let mut rng = Rng::new(batch_seed(seed, batch));
    // streams of their own, so that which functions become methods, and which pairs structs,
    // changes no function's body
    let mut placement = Rng::new(batch_seed(seed, batch) ^ 0x006d_6574_686f_6473);
    let mut shapes = Rng::new(batch_seed(seed, batch) ^ 0x7374_7275_6374_7321);
    let mut functions: Vec<Function> = Vec::with_capacity(count);
    for index in 0..count {
        let struct_pair = shapes.chance(STRUCT_SHARE);
        let mut f = FnGen::function(&mut rng, index, &functions, bugs, struct_pair);
        if placement.chance(METHOD_SHARE) {
            f.make_method(index);
        }
        functions.push(f);
    }
    functions
}

/// The whole module for one batch: the functions, their wrappers and the `CASES` table.
///
/// `harness` is the path of the harness module as seen from the generated module.
pub fn render(seed: u64, batch: u64, count: usize, bugs: KnownBugs, harness: &str) -> String {
    let functions = generate(seed, batch, count, bugs);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! {count} functions generated by tests/generator for seed {seed}, batch {batch}.\n\
         //! Do not edit: `{REGENERATE}` rewrites the committed copy.\n"
    );
    out.push_str(ALLOWS);
    let _ = writeln!(
        out,
        "\nuse {harness}::{{Case, Flatten, Probe}};\n\
         use autodiff::prelude::*;\n\
         use num_traits::NumAssign;\n\
         use std::iter::{{Product, Sum}};\n\n\
         pub const SEED: u64 = {seed};\n\
         pub const BATCH: u64 = {batch};\n\
         /// This file, for printing the source of a failing case.\n\
         pub static SOURCE: &str = include_str!(\"cases.rs\");\n\n\
         /// The struct some functions return: a pair of floats by name.\n\
         pub struct Pt<T> {{\n    pub a: T,\n    pub b: T,\n}}\n"
    );
    for (index, f) in functions.iter().enumerate() {
        let (name, path) = (&f.name, &f.path);
        let _ = writeln!(out, "// ---- {name} ----");
        out.push_str(&f.source);
        let call = f.call_on_flat("p");
        let run = match f.output {
            Output::Scalar => format!("vec![{path}({call})]"),
            Output::Pair => format!("let (a, b) = {path}({call});\n    vec![a, b]"),
            Output::Struct => format!("let Pt {{ a, b }} = {path}({call});\n    vec![a, b]"),
            Output::Vector(_) => format!("{path}({call})"),
            Output::Array(_) => format!("{path}({call}).to_vec()"),
        };
        let _ = writeln!(
            out,
            "\nfn run_{name}<T: {BOUNDS}>(p: &[T]) -> Vec<T> {{\n    {run}\n}}\n"
        );
        match f.output {
            Output::Scalar => {
                let _ = writeln!(
                    out,
                    "fn vjp_{name}(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n    \
                     let (y, g) = {path}_grad({call});\n    (vec![y], g.flatten())\n}}"
                );
            }
            // every other pair goes through `jacobian()` too, the same way
            Output::Array(_) | Output::Pair
                if matches!(f.output, Output::Array(_)) || index % 2 == 1 =>
            {
                // the rows of the Jacobian, combined with the cotangent as `backward` would
                let value = if f.output == Output::Pair {
                    "y.flatten()"
                } else {
                    "y.to_vec()"
                };
                let _ = writeln!(
                    out,
                    "fn vjp_{name}(p: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n    \
                     let (y, pullback) = {path}_pullback({call});\n    \
                     let mut vjp: Vec<f64> = Vec::new();\n    \
                     for (ci, row) in c.iter().zip(pullback.jacobian()) {{\n        \
                     let row = row.flatten();\n        \
                     vjp.resize(row.len(), 0.0);\n        \
                     for (v, r) in vjp.iter_mut().zip(row) {{\n            \
                     *v += ci * r;\n        \
                     }}\n    \
                     }}\n    \
                     ({value}, vjp)\n}}"
                );
            }
            Output::Struct => {
                let _ = writeln!(
                    out,
                    "fn vjp_{name}(p: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n    \
                     let (y, pullback) = {path}_pullback({call});\n    \
                     (vec![y.a, y.b], pullback.backward(Pt {{ a: c[0], b: c[1] }}).flatten())\n}}"
                );
            }
            Output::Pair | Output::Vector(_) | Output::Array(_) => {
                let cotangent = if f.output == Output::Pair {
                    "(c[0], c[1])"
                } else {
                    "c.to_vec()"
                };
                let _ = writeln!(
                    out,
                    "fn vjp_{name}(p: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {{\n    \
                     let (y, pullback) = {path}_pullback({call});\n    \
                     (y.flatten(), pullback.backward({cotangent}).flatten())\n}}"
                );
            }
        }
        let _ = writeln!(out, "// ---- end {name} ----\n");
    }
    out.push_str("pub static CASES: &[Case] = &[\n");
    for f in &functions {
        let name = &f.name;
        let _ = writeln!(
            out,
            "    Case {{ name: \"{name}\", inputs: {}, active: &{:?}, outputs: {}, probe: run_{name}::<Probe>, dual: run_{name}::<Dual<f64>>, vjp: vjp_{name} }},",
            f.inputs(),
            f.active_inputs(),
            f.output.len()
        );
    }
    out.push_str("];\n");
    out
}

/// The value of a function returning a pair: a tuple, or the struct `Pt`, its fields in the
/// order of their names or the other way (the macro orders them by name either way).
fn pair_value(output: Output, a: &str, b: &str) -> String {
    match output {
        Output::Struct if a.len() % 2 == 0 => format!("Pt {{ a: {a}, b: {b} }}"),
        Output::Struct => format!("Pt {{ b: {b}, a: {a} }}"),
        _ => format!("({a}, {b})"),
    }
}

/// Lints the generated code is allowed to trip: forms a person would write differently,
/// kept because the macro must handle them too. No rustc lint is allowed: the generator
/// reads every variable, mutates every `mut` and names unused loop variables `_`.
pub const ALLOWS: &str = "#![allow(
    clippy::approx_constant,
    clippy::assign_op_pattern,
    clippy::collapsible_if,
    clippy::eq_op,
    clippy::if_same_then_else,
    clippy::ifs_same_cond,
    clippy::let_and_return,
    clippy::manual_memcpy,
    clippy::map_clone,
    clippy::misrefactored_assign_op,
    clippy::needless_late_init,
    clippy::needless_range_loop,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::nonminimal_bool,
    clippy::self_assignment,
    clippy::unnecessary_to_owned,
    clippy::unused_enumerate_index,
    clippy::useless_vec
)]
";

// ---------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------

/// Operator precedence of a generated expression, for parenthesising.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
enum Prec {
    /// identifiers, calls, method calls, indexing, parenthesised expressions
    Atom,
    /// `-e`, `*v`
    Unary,
    /// `a + b`, `a * b`, ...
    Binary,
    /// `if ... { } else { }`
    Block,
}

#[derive(Clone, Debug)]
struct E {
    code: String,
    /// `|value| <= bound`
    bound: f64,
    prec: Prec,
}

impl E {
    fn new(code: String, bound: f64, prec: Prec) -> E {
        E { code, bound, prec }
    }

    /// As the receiver of a method call.
    fn recv(&self) -> String {
        if self.prec == Prec::Atom {
            self.code.clone()
        } else {
            format!("({})", self.code)
        }
    }

    /// As an operand of a binary operator.
    fn operand(&self) -> String {
        if self.prec <= Prec::Unary && !self.code.starts_with('-') {
            self.code.clone()
        } else {
            format!("({})", self.code)
        }
    }
}

/// A float literal as `T::from(c).unwrap()`.
fn lit(c: f64) -> E {
    let c = (c * 1000.0).round() / 1000.0;
    let c = if c == 0.0 { 0.0 } else { c };
    let text = format!("{c:?}");
    E::new(format!("T::from({text}).unwrap()"), c.abs(), Prec::Atom)
}

/// Round a positive bound up so the printed constant is not below it.
fn up(c: f64) -> f64 {
    (c * 1000.0).ceil() / 1000.0
}

/// Round a positive scale factor down.
fn down(c: f64) -> f64 {
    (c * 1000.0).floor().max(1.0) / 1000.0
}

// ---------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// a `T` value
    Scalar,
    /// `&[T]` or a local `Vec<T>`
    Vector { len: usize, owned: bool },
    /// a `usize` index with values in `0..max`
    Index { max: usize },
    /// a `usize` parameter with values in `1..=4`
    Count,
}

#[derive(Clone, Debug)]
struct Var {
    name: String,
    kind: Kind,
    /// bound on the value (the elements, for vectors)
    bound: f64,
    /// the bound assignments inside loops must respect
    base: f64,
    /// what may still be added per trip of the innermost loop (infinite outside loops)
    allowance: f64,
    mutable: bool,
    /// the value was read
    read: bool,
    /// written since last read
    dirty: bool,
    mutated: bool,
    /// placeholder slot of `mut ` (for `let`) or of the name (for loop patterns)
    slot: Option<usize>,
    /// reading needs `*name` (a `&T` loop variable)
    deref: bool,
    /// iterated over or mutably borrowed: no writes to it (nor reads, when `locked`)
    borrowed: bool,
    locked: bool,
    /// a parameter or the accumulator: consumed by the tail only
    param: bool,
    /// a loop pattern variable: written as `_` when not read
    pattern: bool,
}

impl Var {
    fn new(name: String, kind: Kind, bound: f64) -> Var {
        Var {
            name,
            kind,
            bound,
            base: bound,
            allowance: f64::INFINITY,
            mutable: false,
            read: false,
            dirty: false,
            mutated: false,
            slot: None,
            deref: false,
            borrowed: false,
            locked: false,
            param: false,
            pattern: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum LoopKind {
    /// `for` and `while`: `break` and `continue` allowed
    Plain,
    /// `loop`: the exit test is at the end of the body, so no `break` or `continue` in it
    Loop,
}

struct FnGen<'a> {
    rng: &'a mut Rng,
    prior: &'a [Function],
    vars: Vec<Var>,
    scopes: Vec<usize>,
    out: String,
    indent: usize,
    /// placeholder texts: `\u{1}k\u{2}` in `out` becomes `slots[k]`
    slots: Vec<String>,
    cost: f64,
    trips: usize,
    loops: Vec<LoopKind>,
    fresh: usize,
    output: Output,
    out_bound: f64,
    /// statements still to generate in this function
    budget: usize,
    /// nesting of blocks
    depth: usize,
    /// generating a closure body: no calls, no `if`
    in_closure: bool,
    /// inside `let r = loop { .. }`: no `break`, `continue` or `return` (they would be
    /// inside an expression, which the macro rejects)
    value_loops: usize,
}

const UNARY: &[&str] = &[
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "exp",
    "exp2",
    "exp_m1",
    "ln",
    "log2",
    "log10",
    "ln_1p",
    "sqrt",
    "cbrt",
    "recip",
    "abs",
    "fract",
    "to_degrees",
    "to_radians",
    "floor",
    "ceil",
    "round",
    "trunc",
    "signum",
    "powi",
];

const BINARY: &[&str] = &[
    "powf", "log", "hypot", "atan2", "mul_add", "max", "min", "clamp", "rem",
];

impl<'a> FnGen<'a> {
    // -----------------------------------------------------------------------------------
    // The function
    // -----------------------------------------------------------------------------------

    fn function(
        rng: &'a mut Rng,
        index: usize,
        prior: &'a [Function],
        _bugs: KnownBugs,
        struct_pair: bool,
    ) -> Function {
        let name = format!("f{index}");
        let mut params: Vec<(String, Param)> = Vec::new();
        let scalars = rng.range(0, 3);
        let slices = if scalars == 0 {
            rng.range(1, 2)
        } else {
            rng.range(0, 2)
        };
        for name in ["x", "y", "z"].iter().take(scalars) {
            params.push((name.to_string(), Param::Scalar));
        }
        for name in ["xs", "ys"].iter().take(slices) {
            params.push((name.to_string(), Param::Slice(rng.range(2, 5))));
        }
        if rng.chance(0.25) {
            params.push(("n".to_string(), Param::Count(rng.range(1, 4))));
        }
        // shuffle
        for i in (1..params.len()).rev() {
            let j = rng.below(i + 1);
            params.swap(i, j);
        }
        let floats: Vec<usize> = (0..params.len())
            .filter(|&i| !matches!(params[i].1, Param::Count(_)))
            .collect();
        let mut active: Vec<bool> = params
            .iter()
            .map(|(_, p)| !matches!(p, Param::Count(_)))
            .collect();
        let wrt = floats.len() >= 2 && rng.chance(0.15);
        if wrt {
            let keep = *rng.pick(&floats);
            for &i in &floats {
                if i != keep && rng.chance(0.5) {
                    active[i] = false;
                }
            }
        }
        let output = match rng.weighted(&[0.7, 0.1, 0.1, 0.1]) {
            0 => Output::Scalar,
            1 if struct_pair => Output::Struct,
            1 => Output::Pair,
            2 => Output::Vector(rng.range(2, 4)),
            _ => Output::Array(rng.range(1, 4)),
        };

        let mut g = FnGen {
            rng,
            prior,
            vars: Vec::new(),
            scopes: vec![0],
            out: String::new(),
            indent: 1,
            slots: Vec::new(),
            cost: 0.0,
            trips: 1,
            loops: Vec::new(),
            fresh: 0,
            output,
            out_bound: 0.0,
            budget: 0,
            depth: 0,
            in_closure: false,
            value_loops: 0,
        };
        for (pname, p) in &params {
            let mut v = match p {
                Param::Scalar => Var::new(pname.clone(), Kind::Scalar, INPUT_BOUND),
                Param::Slice(n) => Var::new(
                    pname.clone(),
                    Kind::Vector {
                        len: *n,
                        owned: false,
                    },
                    INPUT_BOUND,
                ),
                Param::Count(_) => Var::new(pname.clone(), Kind::Count, 4.0),
            };
            v.param = true;
            g.vars.push(v);
        }
        g.scopes.push(g.vars.len());
        g.budget = g.rng.range(3, 9);

        // the accumulator every block may fold unread values into
        let init = g.expr(2);
        let init = g.squash(init, VAR_CAP);
        let slot = g.slot("mut ");
        g.line(format!("let {}acc = {};", g.placeholder(slot), init.code));
        let mut acc = Var::new("acc".to_string(), Kind::Scalar, init.bound);
        acc.mutable = true;
        acc.dirty = true;
        acc.slot = Some(slot);
        acc.param = true;
        g.vars.push(acc);

        while g.budget > 0 {
            g.statement();
        }
        g.tail();
        g.finish_vars(0);

        let body = g.resolve();
        let (bounds, where_clause) = if g.rng.chance(0.5) {
            (format!("<T: {BOUNDS}>"), " ".to_string())
        } else {
            ("<T>".to_string(), format!("\nwhere\n    T: {BOUNDS},\n"))
        };
        let sig_params: Vec<String> = params
            .iter()
            .map(|(n, p)| match p {
                Param::Scalar => format!("{n}: T"),
                Param::Slice(_) => format!("{n}: &[T]"),
                Param::Count(_) => format!("{n}: usize"),
            })
            .collect();
        let ret = match output {
            Output::Scalar => "T".to_string(),
            Output::Pair => "(T, T)".to_string(),
            Output::Struct => "Pt<T>".to_string(),
            Output::Vector(_) => "Vec<T>".to_string(),
            Output::Array(n) => format!("[T; {n}]"),
        };
        let attr = if wrt {
            let names: Vec<&str> = params
                .iter()
                .zip(&active)
                .filter(|(_, a)| **a)
                .map(|((n, _), _)| n.as_str())
                .collect();
            format!("#[differentiate(wrt({}))]", names.join(", "))
        } else {
            "#[differentiate]".to_string()
        };
        let source = format!(
            "{attr}\nfn {name}{bounds}({}) -> {ret}{where_clause}{{\n{body}}}\n",
            sig_params.join(", ")
        );
        Function {
            path: name.clone(),
            name,
            params,
            active,
            output,
            out_bound: g.out_bound,
            cost: g.cost,
            source,
        }
    }

    /// The result, folding in everything not read yet.
    fn tail(&mut self) {
        let unread = self.unread_values(0);
        match self.output {
            Output::Scalar => {
                let mut e = self.read_var_by_name("acc");
                for u in unread {
                    let u = self.squash(u, VAR_CAP);
                    e = self.combine(e, u);
                }
                if self.rng.chance(0.5) {
                    let extra = self.expr(2);
                    e = self.combine(e, extra);
                }
                let e = self.squash(e, OUT_CAP);
                let vectors = self.readable_vectors();
                if !vectors.is_empty() && self.rng.chance(0.2) {
                    // a loop over a slice through a scratch buffer declared before it, summing
                    // into a variable the result then transforms: the loop `_grad` runs
                    // eagerly; in a third of them an iteration reads what the previous one
                    // left in the buffer, so `_grad` must start over with the pullback
                    let (vname, len) = self.read_some_vector(&vectors);
                    let (buf, sum, i, j) = (
                        self.name("buf"),
                        self.name("sum"),
                        self.name("i"),
                        self.name("j"),
                    );
                    let m = self.rng.range(2, 5);
                    let term = self.expr(1);
                    let term = self.squash(term, VAR_CAP);
                    let (s0, s1) = (self.rng.uniform(0.2, 0.9), self.rng.uniform(0.2, 0.9));
                    let carried = if self.rng.chance(1.0 / 3.0) {
                        format!(" + {buf}[{}] * T::from(0.5).unwrap()", m - 1)
                    } else {
                        String::new()
                    };
                    let fill = if self.rng.chance(0.5) {
                        format!(
                            "for {j} in 1..{m} {{\n        {buf}[{j}] = ({buf}[{j} - 1] * T::from({s1:.3}).unwrap()).sin();\n    }}"
                        )
                    } else {
                        (1..m)
                            .map(|k| {
                                format!(
                                    "{buf}[{k}] = ({buf}[{}] * T::from({s1:.3}).unwrap()).sin();",
                                    k - 1
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n    ")
                    };
                    // the sum is updated unconditionally or in the arms of a branch
                    let last = m - 1;
                    let update = if self.rng.chance(0.5) {
                        format!("{sum} += {buf}[{last}] * {buf}[0] * T::from(0.5).unwrap();")
                    } else {
                        format!(
                            "if {buf}[0] > T::zero() {{\n        {sum} += {buf}[{last}] * T::from(0.5).unwrap();\n    }} else {{\n        {sum} -= {buf}[{last}] * {buf}[0] * T::from(0.5).unwrap();\n    }}"
                        )
                    };
                    // in 40% of them a loop writes every element first (so no cotangent can
                    // cross between iterations, unless the writes read the buffer: `carried`)
                    let first = if self.rng.chance(0.4) {
                        let k = self.name("k");
                        format!(
                            "for {k} in 0..{m} {{\n        {buf}[{k}] = ({vname}[{i}] * T::from({s0:.3}).unwrap() + {} + T::from({k}).unwrap() * T::from(0.1).unwrap(){carried}).tanh();\n    }}",
                            term.code
                        )
                    } else {
                        format!(
                            "{buf}[0] = ({vname}[{i}] * T::from({s0:.3}).unwrap() + {}{carried}).tanh();",
                            term.code
                        )
                    };
                    self.line(format!("let mut {buf} = vec![T::zero(); {m}];"));
                    self.line(format!("let mut {sum} = {};", e.code));
                    self.line(format!(
                        "for {i} in 0..{vname}.len() {{\n    {first}\n    {fill}\n    {update}\n}}"
                    ));
                    self.out_bound = self.out_bound.max(e.bound + 0.5 * len as f64 + 1.0);
                    self.line(format!("({sum} * T::from(0.7).unwrap()).sin() + {sum}"));
                } else if !vectors.is_empty() && self.rng.chance(0.3) {
                    // a last loop summing into the result, which is returned as it is: the
                    // loop `_grad` runs in one sweep
                    let (vname, len) = self.read_some_vector(&vectors);
                    let (sum, i) = (self.name("sum"), self.name("i"));
                    let term = self.expr(1);
                    let term = self.squash(term, VAR_CAP);
                    let scale = self.rng.uniform(0.2, 0.9);
                    self.line(format!("let mut {sum} = {};", e.code));
                    self.line(format!(
                        "for {i} in 0..{vname}.len() {{\n    {sum} += ({vname}[{i}] * T::from({scale:.3}).unwrap() + {}).tanh() * T::from(0.5).unwrap();\n}}",
                        term.code
                    ));
                    self.out_bound = self.out_bound.max(e.bound + 0.5 * len as f64);
                    self.line(sum);
                } else {
                    self.out_bound = self.out_bound.max(e.bound);
                    self.line(e.code);
                }
            }
            Output::Pair | Output::Struct => {
                let mut a = self.read_var_by_name("acc");
                let mut b = self.expr(2);
                for (i, u) in unread.into_iter().enumerate() {
                    let u = self.squash(u, VAR_CAP);
                    if i % 2 == 0 {
                        b = self.combine(b, u);
                    } else {
                        a = self.combine(a, u);
                    }
                }
                let a = self.squash(a, OUT_CAP);
                let b = self.squash(b, OUT_CAP);
                self.out_bound = self.out_bound.max(a.bound).max(b.bound);
                let value = pair_value(self.output, &a.code, &b.code);
                self.line(value);
            }
            Output::Array(len) => {
                let mut parts = vec![self.read_var_by_name("acc")];
                for _ in 1..len {
                    parts.push(self.expr(2));
                }
                for (i, u) in unread.into_iter().enumerate() {
                    let u = self.squash(u, VAR_CAP);
                    let k = i % len;
                    parts[k] = self.combine(parts[k].clone(), u);
                }
                let mut codes = Vec::with_capacity(len);
                for part in parts {
                    let part = self.squash(part, OUT_CAP);
                    self.out_bound = self.out_bound.max(part.bound);
                    codes.push(part.code);
                }
                self.line(format!("[{}]", codes.join(", ")));
            }
            Output::Vector(len) => {
                let name = self.name("out");
                let init = self.vec_init(len);
                self.line(format!("let mut {name} = {};", init.code));
                let mut bound = init.bound;
                let mut consumed = vec![self.read_var_by_name("acc")];
                consumed.extend(unread);
                for (i, u) in consumed.into_iter().enumerate() {
                    let u = self.squash(u, VAR_CAP);
                    let k = i % len;
                    if self.rng.chance(0.5) {
                        bound += u.bound;
                        self.line(format!("{name}[{k}] += {};", u.code));
                    } else {
                        bound = bound.max(u.bound);
                        self.line(format!("{name}[{k}] = {};", u.code));
                    }
                }
                let k = self.rng.below(len);
                let e = self.expr(2);
                let e = self.squash(e, VAR_CAP);
                bound = bound.max(e.bound);
                self.line(format!("{name}[{k}] = {};", e.code));
                self.out_bound = self.out_bound.max(bound);
                self.line(name);
            }
        }
    }

    /// One of `vectors`, picked at random and marked read: its name and length.
    fn read_some_vector(&mut self, vectors: &[usize]) -> (String, usize) {
        let v = *self.rng.pick(vectors);
        self.vars[v].read = true;
        let len = match self.vars[v].kind {
            Kind::Vector { len, .. } => len,
            _ => 1,
        };
        (self.vars[v].name.clone(), len)
    }

    /// A vector of length `len`: zeros, a constant, literal elements, a copy of a slice of
    /// that length, or pushes.
    fn vec_init(&mut self, len: usize) -> E {
        let sources: Vec<usize> = self
            .readable_vectors()
            .into_iter()
            .filter(|&i| matches!(self.vars[i].kind, Kind::Vector { len: l, .. } if l == len))
            .collect();
        match self.rng.below(4) {
            0 if !sources.is_empty() => {
                let owned: Vec<usize> = sources
                    .iter()
                    .copied()
                    .filter(|&i| matches!(self.vars[i].kind, Kind::Vector { owned: true, .. }))
                    .collect();
                let i = if !owned.is_empty() && self.rng.chance(0.5) {
                    *self.rng.pick(&owned)
                } else {
                    *self.rng.pick(&sources)
                };
                self.vars[i].read = true;
                self.vars[i].dirty = false;
                let owned = matches!(self.vars[i].kind, Kind::Vector { owned: true, .. });
                let clone = self.rng.chance(0.5);
                let name = &self.vars[i].name;
                let code = if owned && clone {
                    format!("{name}.clone()")
                } else {
                    format!("{name}.to_vec()")
                };
                E::new(code, self.vars[i].bound, Prec::Atom)
            }
            1 => {
                let e = self.expr(1);
                let e = self.squash(e, VAR_CAP);
                E::new(format!("vec![{}; {len}]", e.code), e.bound, Prec::Atom)
            }
            3 if self.rng.chance(0.3) => {
                // a copy of a range of a vector at least as long
                let longer: Vec<(usize, usize)> = self
                    .readable_vectors()
                    .into_iter()
                    .filter_map(|i| match self.vars[i].kind {
                        Kind::Vector { len: l, .. } if l >= len => Some((i, l)),
                        _ => None,
                    })
                    .collect();
                if longer.is_empty() {
                    return E::new(format!("vec![T::zero(); {len}]"), 0.0, Prec::Atom);
                }
                let (i, l) = *self.rng.pick(&longer);
                self.vars[i].read = true;
                self.vars[i].dirty = false;
                let offset = self.rng.below(l - len + 1);
                let name = &self.vars[i].name;
                let code = match (offset, offset + len == l) {
                    (0, true) if self.rng.chance(0.5) => format!("{name}[..].to_vec()"),
                    (0, _) => format!("{name}[..{len}].to_vec()"),
                    (_, true) => format!("{name}[{offset}..].to_vec()"),
                    _ => format!("{name}[{offset}..{}].to_vec()", offset + len),
                };
                E::new(code, self.vars[i].bound, Prec::Atom)
            }
            3 if !sources.is_empty() && self.rng.chance(0.5) => {
                // an element-wise map collected into a new vector
                let i = *self.rng.pick(&sources);
                self.vars[i].read = true;
                self.vars[i].dirty = false;
                let (name, source_bound) = (self.vars[i].name.clone(), self.vars[i].bound);
                let e = self.expr(1);
                let (code, bound) = if self.rng.chance(0.5) {
                    let e = self.squash(e, 1.0);
                    (format!("q_el * {}", e.operand()), source_bound * e.bound)
                } else {
                    let e = self.squash(e, VAR_CAP - 1.0);
                    (format!("q_el.sin() + {}", e.operand()), 1.0 + e.bound)
                };
                E::new(
                    format!("{name}.iter().map(|&q_el| {code}).collect::<Vec<_>>()"),
                    bound,
                    Prec::Atom,
                )
            }
            2 if len <= 3 => {
                let mut items = Vec::new();
                let mut bound: f64 = 0.0;
                for _ in 0..len {
                    let e = self.expr(1);
                    let e = self.squash(e, VAR_CAP);
                    bound = bound.max(e.bound);
                    items.push(e.code);
                }
                E::new(format!("vec![{}]", items.join(", ")), bound, Prec::Atom)
            }
            _ => E::new(format!("vec![T::zero(); {len}]"), 0.0, Prec::Atom),
        }
    }

    // -----------------------------------------------------------------------------------
    // Output text, placeholders, names
    // -----------------------------------------------------------------------------------

    fn line(&mut self, text: String) {
        for l in text.lines() {
            for _ in 0..self.indent {
                self.out.push_str("    ");
            }
            self.out.push_str(l);
            self.out.push('\n');
        }
    }

    fn slot(&mut self, text: &str) -> usize {
        self.slots.push(text.to_string());
        self.slots.len() - 1
    }

    fn placeholder(&self, slot: usize) -> String {
        format!("\u{1}{slot}\u{2}")
    }

    fn resolve(&self) -> String {
        let mut out = String::with_capacity(self.out.len());
        let mut rest = self.out.as_str();
        while let Some(start) = rest.find('\u{1}') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('\u{2}').unwrap() + start;
            let k: usize = rest[start + 1..end].parse().unwrap();
            out.push_str(&self.slots[k]);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn name(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}{}", self.fresh)
    }

    // -----------------------------------------------------------------------------------
    // Scopes and variables
    // -----------------------------------------------------------------------------------

    fn push_scope(&mut self) {
        self.scopes.push(self.vars.len());
        self.depth += 1;
    }

    /// Ends a block: folds unread values declared in it into a variable of an outer scope,
    /// fixes the `mut` and loop-pattern placeholders, and forgets the block's variables.
    fn pop_scope(&mut self) {
        let start = *self.scopes.last().unwrap();
        let unread = self.unread_values(start);
        if !unread.is_empty() {
            let mut e: Option<E> = None;
            for u in unread {
                let u = self.squash(u, VAR_CAP);
                e = Some(match e {
                    None => u,
                    Some(e) => self.combine(e, u),
                });
            }
            self.fold_into_outer(e.unwrap(), start);
        }
        self.finish_vars(start);
        self.vars.truncate(start);
        self.scopes.pop();
        self.depth -= 1;
    }

    /// Resolves the placeholders of the variables from `start` on.
    fn finish_vars(&mut self, start: usize) {
        for i in start..self.vars.len() {
            let v = &self.vars[i];
            if let Some(slot) = v.slot {
                if v.pattern {
                    self.slots[slot] = if v.read {
                        v.name.clone()
                    } else {
                        "_".to_string()
                    };
                } else {
                    self.slots[slot] = if v.mutated { "mut " } else { "" }.to_string();
                }
            }
        }
    }

    /// Reads of the values declared from `start` on that were never read or were written
    /// since, marking them read.
    fn unread_values(&mut self, start: usize) -> Vec<E> {
        let mut reads = Vec::new();
        for i in start..self.vars.len() {
            let v = &self.vars[i];
            let needs = !v.read || v.dirty;
            let hidden = self.vars[i + 1..].iter().any(|w| w.name == v.name);
            if !needs || v.locked {
                continue;
            }
            // loop patterns become `_`; parameters and the accumulator are read by the tail
            if v.pattern || (v.param && start > 0) {
                continue;
            }
            if v.name == "acc" {
                continue;
            }
            if hidden {
                // shadowed without being read: cannot happen (shadowing reads)
                continue;
            }
            match v.kind.clone() {
                Kind::Scalar => reads.push(self.read_var(i)),
                Kind::Vector { len, .. } => {
                    let k = self.rng.below(len);
                    self.vars[i].read = true;
                    self.vars[i].dirty = false;
                    reads.push(E::new(
                        format!("{}[{k}]", self.vars[i].name),
                        self.vars[i].bound,
                        Prec::Atom,
                    ));
                }
                Kind::Count => {
                    self.vars[i].read = true;
                    reads.push(E::new(
                        format!("T::from({}).unwrap()", self.vars[i].name),
                        4.0,
                        Prec::Atom,
                    ));
                }
                Kind::Index { max } => {
                    self.vars[i].read = true;
                    reads.push(E::new(
                        format!("T::from({}).unwrap()", self.vars[i].name),
                        max as f64,
                        Prec::Atom,
                    ));
                }
            }
        }
        reads
    }

    /// `target = squash(target + e)` for a mutable scalar declared before `start`.
    fn fold_into_outer(&mut self, e: E, start: usize) {
        let targets: Vec<usize> = (0..start)
            .filter(|&i| {
                let v = &self.vars[i];
                v.mutable && v.kind == Kind::Scalar && !self.shadowed(i)
            })
            .collect();
        let t = if targets.is_empty() {
            unreachable!("the accumulator is always in scope")
        } else {
            *self.rng.pick(&targets)
        };
        self.assign_scalar(t, Some(e));
    }

    fn shadowed(&self, i: usize) -> bool {
        let name = &self.vars[i].name;
        self.vars[i + 1..].iter().any(|w| &w.name == name)
    }

    fn read_var(&mut self, i: usize) -> E {
        let v = &mut self.vars[i];
        v.read = true;
        v.dirty = false;
        match v.kind {
            Kind::Scalar => {
                if v.deref {
                    E::new(format!("*{}", v.name), v.bound, Prec::Unary)
                } else {
                    E::new(v.name.clone(), v.bound, Prec::Atom)
                }
            }
            Kind::Index { max } => E::new(
                format!("T::from({}).unwrap()", v.name),
                max as f64,
                Prec::Atom,
            ),
            Kind::Count => E::new(format!("T::from({}).unwrap()", v.name), 4.0, Prec::Atom),
            Kind::Vector { .. } => unreachable!(),
        }
    }

    fn read_var_by_name(&mut self, name: &str) -> E {
        let i = self.vars.iter().rposition(|v| v.name == name).unwrap();
        self.read_var(i)
    }

    fn declare(&mut self, name: String, kind: Kind, bound: f64, mutable: bool) -> usize {
        let mut v = Var::new(name, kind, bound);
        v.mutable = mutable;
        v.dirty = false;
        self.vars.push(v);
        self.vars.len() - 1
    }

    fn scalars(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|&i| {
                matches!(self.vars[i].kind, Kind::Scalar)
                    && !self.vars[i].locked
                    && !self.shadowed(i)
            })
            .collect()
    }

    fn readable_vectors(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|&i| {
                matches!(self.vars[i].kind, Kind::Vector { .. })
                    && !self.vars[i].locked
                    && !self.shadowed(i)
            })
            .collect()
    }

    fn writable_scalars(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|&i| {
                let v = &self.vars[i];
                v.mutable && v.kind == Kind::Scalar && !v.locked && !self.shadowed(i)
            })
            .collect()
    }

    fn writable_vectors(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|&i| {
                let v = &self.vars[i];
                v.mutable
                    && matches!(v.kind, Kind::Vector { owned: true, .. })
                    && !v.borrowed
                    && !v.locked
                    && !self.shadowed(i)
            })
            .collect()
    }

    fn indices(&self) -> Vec<usize> {
        (0..self.vars.len())
            .filter(|&i| {
                matches!(self.vars[i].kind, Kind::Index { .. } | Kind::Count) && !self.shadowed(i)
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------
    // Writes
    // -----------------------------------------------------------------------------------

    /// An assignment to the mutable scalar `i`: `v = e`, `v += e`, `v -= e`, `v *= e`,
    /// `v /= e` or `v = v op e`, within its bound and allowance. `fold` is a value that must
    /// be read by the assignment.
    fn assign_scalar(&mut self, i: usize, fold: Option<E>) {
        let in_loop = self.vars[i].allowance.is_finite();
        let name = self.vars[i].name.clone();
        let allowance = self.vars[i].allowance;
        let e = match fold {
            Some(e) => e,
            None => self.big_expr(),
        };
        let choice = self.rng.below(6);
        let can_add = if in_loop {
            allowance >= 0.05
        } else {
            self.vars[i].bound + e.bound.min(VAR_CAP) <= 3.0 * VAR_CAP
        };
        self.vars[i].mutated = true;
        match choice {
            0 | 1 if can_add => {
                let cap = if in_loop { allowance } else { VAR_CAP };
                let e = self.squash(e, cap);
                let op = if choice == 0 { "+=" } else { "-=" };
                self.line(format!("{name} {op} {};", e.code));
                if in_loop {
                    self.vars[i].allowance -= e.bound;
                } else {
                    self.vars[i].bound += e.bound;
                }
                self.vars[i].read = true;
                self.vars[i].dirty = true;
            }
            2 => {
                let e = self.squash(e, 1.0);
                self.line(format!("{name} *= {};", e.code));
                self.vars[i].read = true;
                self.vars[i].dirty = true;
            }
            3 => {
                let d = self.positive_form(e, 1.0);
                self.line(format!("{name} /= {};", d.0.code));
                self.vars[i].read = true;
                self.vars[i].dirty = true;
            }
            _ => {
                // v = f(v, e): reads v, so an unread earlier value is never overwritten
                let cur = self.read_var(i);
                let e = match self.rng.below(3) {
                    0 => self.combine(cur, e),
                    1 => {
                        let k = lit(self.rng.uniform(-0.9, 0.9));
                        let scaled = E::new(
                            format!("{} * {}", cur.operand(), k.code),
                            cur.bound * k.bound,
                            Prec::Binary,
                        );
                        self.combine(scaled, e)
                    }
                    _ => {
                        let p = self.unary_on(cur);
                        self.combine(p, e)
                    }
                };
                let cap = if in_loop { self.vars[i].base } else { VAR_CAP };
                let e = self.squash(e, cap);
                self.line(format!("{name} = {};", e.code));
                if !in_loop {
                    self.vars[i].bound = e.bound;
                }
                self.vars[i].dirty = true;
            }
        }
    }

    /// `a + b`, `a - b` or `a * b` of two values, for folding.
    fn combine(&mut self, a: E, b: E) -> E {
        match self.rng.below(4) {
            0 | 1 => E::new(
                format!("{} + {}", a.operand(), b.operand()),
                a.bound + b.bound,
                Prec::Binary,
            ),
            2 => E::new(
                format!("{} - {}", a.operand(), b.operand()),
                a.bound + b.bound,
                Prec::Binary,
            ),
            _ => E::new(
                format!("{} * {}", a.operand(), b.operand()),
                a.bound * b.bound,
                Prec::Binary,
            ),
        }
    }

    // -----------------------------------------------------------------------------------
    // Expressions
    // -----------------------------------------------------------------------------------

    /// A random scalar expression of at most `depth` levels.
    fn expr(&mut self, depth: usize) -> E {
        self.cost += self.trips as f64;
        if depth == 0 || self.rng.chance(0.3) {
            return self.leaf();
        }
        let calls = self.callable(Output::Scalar);
        let weights = [
            3.0,                                      // + - *
            0.8,                                      // division
            3.0,                                      // unary primitive
            1.2,                                      // binary primitive
            if calls.is_empty() { 0.0 } else { 0.7 }, // call
            if depth >= 2 && !self.in_closure {
                0.3
            } else {
                0.0
            }, // if expression
            0.3,                                      // negation
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let a = self.expr(depth - 1);
                let b = self.expr(depth - 1);
                match self.rng.below(3) {
                    0 => E::new(
                        format!("{} + {}", a.operand(), b.operand()),
                        a.bound + b.bound,
                        Prec::Binary,
                    ),
                    1 => E::new(
                        format!("{} - {}", a.operand(), b.operand()),
                        a.bound + b.bound,
                        Prec::Binary,
                    ),
                    _ => {
                        let a = self.squash(a, VAR_CAP);
                        let b = self.squash(b, VAR_CAP);
                        E::new(
                            format!("{} * {}", a.operand(), b.operand()),
                            a.bound * b.bound,
                            Prec::Binary,
                        )
                    }
                }
            }
            1 => {
                let a = self.expr(depth - 1);
                let b = self.expr(depth - 1);
                let (d, lo) = self.positive_form(b, 0.5);
                E::new(
                    format!("{} / {}", a.operand(), d.operand()),
                    a.bound / lo,
                    Prec::Binary,
                )
            }
            2 => {
                let a = self.expr(depth - 1);
                self.unary_on(a)
            }
            3 => self.binary_primitive(depth),
            4 => self.call_scalar(&calls),
            5 => {
                let c = self.cond(1);
                let a = self.expr(depth - 1);
                let b = self.expr(depth - 1);
                E::new(
                    format!("if {c} {{ {} }} else {{ {} }}", a.code, b.code),
                    a.bound.max(b.bound),
                    Prec::Block,
                )
            }
            _ => {
                let a = self.expr(depth - 1);
                E::new(format!("-{}", a.operand()), a.bound, Prec::Unary)
            }
        }
    }

    /// A statement's main expression: mostly of depth 2, sometimes 3.
    fn big_expr(&mut self) -> E {
        let depth = if self.rng.chance(0.3) { 3 } else { 2 };
        self.expr(depth)
    }

    /// A variable, a slice element, an index as `T`, or a constant.
    fn leaf(&mut self) -> E {
        let scalars = self.scalars();
        let vectors = self.readable_vectors();
        let indices = self.indices();
        let weights = [
            if scalars.is_empty() { 0.0 } else { 5.0 },
            if vectors.is_empty() { 0.0 } else { 3.0 },
            if indices.is_empty() { 0.0 } else { 0.5 },
            0.7,
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let i = *self.rng.pick(&scalars);
                self.read_var(i)
            }
            1 if !self.in_closure && self.rng.chance(0.02) => {
                // a reduction over windows or chunks of a vector
                let i = *self.rng.pick(&vectors);
                let Kind::Vector { len, .. } = self.vars[i].kind else {
                    unreachable!()
                };
                self.vars[i].read = true;
                self.vars[i].dirty = false;
                let (name, b) = (self.vars[i].name.clone(), self.vars[i].bound);
                let (code, bound) = match self.rng.below(3) {
                    0 => (
                        format!("{name}.windows(2).map(|q_w| q_w[0] * q_w[1]).sum::<T>()"),
                        len.saturating_sub(1) as f64 * b * b,
                    ),
                    1 => (
                        format!("{name}.chunks(2).map(|q_c| q_c[q_c.len() - 1]).sum::<T>()"),
                        len.div_ceil(2) as f64 * b,
                    ),
                    _ => (
                        format!("{name}.chunks_exact(2).map(|q_c| q_c[0] - q_c[1]).sum::<T>()"),
                        (len / 2) as f64 * 2.0 * b,
                    ),
                };
                let e = E::new(code, bound, Prec::Atom);
                self.squash(e, VAR_CAP)
            }
            1 => {
                let i = *self.rng.pick(&vectors);
                self.element(i)
            }
            2 => {
                let i = *self.rng.pick(&indices);
                self.read_var(i)
            }
            _ => match self.rng.below(6) {
                0 => E::new("T::one()".to_string(), 1.0, Prec::Atom),
                1 => lit(0.5),
                _ => lit(self.rng.uniform(-2.0, 2.0)),
            },
        }
    }

    /// Whether `code` reads a float variable or vector in scope.
    fn mentions_variable(&self, code: &str) -> bool {
        code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| {
                self.vars
                    .iter()
                    .any(|v| v.name == w && matches!(v.kind, Kind::Scalar | Kind::Vector { .. }))
            })
    }

    /// A float variable or a vector element.
    fn variable_leaf(&mut self) -> E {
        let scalars = self.scalars();
        let vectors = self.readable_vectors();
        if !scalars.is_empty() && (vectors.is_empty() || self.rng.chance(0.6)) {
            let i = *self.rng.pick(&scalars);
            self.read_var(i)
        } else if !vectors.is_empty() {
            let i = *self.rng.pick(&vectors);
            self.element(i)
        } else {
            lit(self.rng.uniform(-1.0, 1.0))
        }
    }

    /// `v[k]` for a vector variable `i`, with an index that is in bounds.
    fn element(&mut self, i: usize) -> E {
        let Kind::Vector { len, .. } = self.vars[i].kind else {
            unreachable!()
        };
        self.vars[i].read = true;
        self.vars[i].dirty = false;
        let name = self.vars[i].name.clone();
        let bound = self.vars[i].bound;
        let index = self.index_expr(len, &name, false);
        E::new(format!("{name}[{index}]"), bound, Prec::Atom)
    }

    /// An index expression valid for a vector of length `len` named `name`. The index of a
    /// write does not call `name.len()`: the write borrows the vector first.
    fn index_expr(&mut self, len: usize, name: &str, write: bool) -> String {
        let indices = self.indices();
        if indices.is_empty() || self.rng.chance(0.3) {
            return format!("{}", self.rng.below(len));
        }
        let i = *self.rng.pick(&indices);
        self.vars[i].read = true;
        let iname = self.vars[i].name.clone();
        let max = match self.vars[i].kind {
            Kind::Index { max } => max,
            // a count is in 1..=4
            _ => 5,
        };
        let is_count = self.vars[i].kind == Kind::Count;
        let fits = max <= len;
        match self.rng.below(4) {
            0 if fits && !is_count => iname,
            1 if max < len && !is_count => format!("{iname} + 1"),
            2 if fits && !is_count && !write => format!("{name}.len() - 1 - {iname}"),
            2 if fits && !is_count => format!("{} - {iname}", len - 1),
            3 if is_count && len >= 4 => format!("{iname} - 1"),
            _ => {
                if self.rng.chance(0.5) && !write {
                    format!("{iname} % {name}.len()")
                } else {
                    format!("{iname} % {len}")
                }
            }
        }
    }

    /// Squashes `e` into `[-cap, cap]` if its bound is larger.
    fn squash(&mut self, e: E, cap: f64) -> E {
        if e.bound <= cap {
            return e;
        }
        self.cost += self.trips as f64;
        let k = lit(down(2.0 / e.bound));
        let arg = format!("{} * {}", e.operand(), k.code);
        let (f, b) = match self.rng.below(4) {
            0 | 1 => ("tanh", 1.0),
            2 => ("sin", 1.0),
            _ => ("atan", std::f64::consts::FRAC_PI_2),
        };
        let call = self.call_syntax(f, &format!("({arg})"), &arg);
        let squashed = E::new(call, b, Prec::Atom);
        if b <= cap {
            squashed
        } else {
            let s = lit(down(cap / b));
            E::new(
                format!("{} * {}", squashed.code, s.code),
                b * s.bound,
                Prec::Binary,
            )
        }
    }

    /// `name(arg)` as `recv.name()`, `T::name(arg)` or `Float::name(arg)`; `recv` is the
    /// argument as a method receiver.
    fn call_syntax(&mut self, name: &str, recv: &str, arg: &str) -> String {
        match self.rng.weighted(&[6.0, 1.0, 1.0]) {
            0 => format!("{recv}.{name}()"),
            1 => format!("T::{name}({arg})"),
            _ => format!("Float::{name}({arg})"),
        }
    }

    /// A positive expression from `e`, at least `lo`: `e * e + c`, `e + (B + c)`,
    /// `e.exp() * c + c`, or `e.abs() + c`. Returns it with its lower bound.
    fn positive_form(&mut self, e: E, lo: f64) -> (E, f64) {
        let c = lit(lo + self.rng.below(3) as f64 * 0.25);
        let small = e.code.len() < 48;
        match self.rng.below(4) {
            0 if small => {
                let e = self.squash(e, VAR_CAP);
                (
                    E::new(
                        format!("{} * {} + {}", e.operand(), e.operand(), c.code),
                        e.bound * e.bound + c.bound,
                        Prec::Binary,
                    ),
                    c.bound,
                )
            }
            1 => {
                let e = self.squash(e, 2.0);
                let e = E::new(format!("{}.exp()", e.recv()), e.bound.exp(), Prec::Atom);
                (
                    E::new(
                        format!("{} + {}", e.code, c.code),
                        e.bound + c.bound,
                        Prec::Binary,
                    ),
                    c.bound,
                )
            }
            2 => (
                E::new(
                    format!("{}.abs() + {}", e.recv(), c.code),
                    e.bound + c.bound,
                    Prec::Binary,
                ),
                c.bound,
            ),
            _ => {
                let e = self.squash(e, VAR_CAP);
                let shift = lit(up(e.bound + c.bound));
                (
                    E::new(
                        format!("{} + {}", e.operand(), shift.code),
                        e.bound + shift.bound,
                        Prec::Binary,
                    ),
                    shift.bound - e.bound,
                )
            }
        }
    }

    /// Moves `e` into `(-0.9, 0.9)`.
    fn unit_form(&mut self, e: E) -> E {
        match self.rng.below(3) {
            0 => E::new(
                format!("{}.tanh() * {}", e.recv(), lit(0.9).code),
                0.9,
                Prec::Binary,
            ),
            1 => E::new(
                format!("{}.sin() * {}", e.recv(), lit(0.85).code),
                0.85,
                Prec::Binary,
            ),
            _ => {
                let e = self.squash(e, 1.0);
                E::new(
                    format!("{} * {}", e.operand(), lit(0.9).code),
                    0.9 * e.bound,
                    Prec::Binary,
                )
            }
        }
    }

    /// A unary primitive applied to `e` within its domain.
    fn unary_on(&mut self, e: E) -> E {
        self.cost += self.trips as f64;
        let name = *self.rng.pick(UNARY);
        let (arg, bound) = match name {
            "sin" | "cos" => {
                let a = self.squash(e, 4.0);
                (a, 1.0)
            }
            "tan" => {
                let a = E::new(format!("{}.tanh()", e.recv()), 1.0, Prec::Atom);
                (a, 1.0f64.tan())
            }
            "asin" | "acos" => {
                let a = self.unit_form(e);
                (a, std::f64::consts::PI)
            }
            "atan" => (e, std::f64::consts::FRAC_PI_2),
            "sinh" | "cosh" => {
                let a = self.squash(e, 2.5);
                let b = a.bound.cosh();
                (a, b)
            }
            "tanh" => (e, 1.0),
            "asinh" => {
                let b = e.bound.asinh();
                (e, b)
            }
            "acosh" => {
                let (a, _) = self.positive_form(e, 0.5);
                let a = E::new(
                    format!("{} + T::one()", a.operand()),
                    a.bound + 1.0,
                    Prec::Binary,
                );
                let b = a.bound.acosh();
                (a, b)
            }
            "atanh" => {
                let a = self.unit_form(e);
                (a, 0.9f64.atanh())
            }
            "exp" | "exp2" | "exp_m1" => {
                let a = self.squash(e, 2.5);
                let b = a.bound.exp();
                (a, b)
            }
            "ln" | "log2" | "log10" => {
                let (a, lo) = self.positive_form(e, 0.5);
                let b = a.bound.ln().abs().max(lo.ln().abs()) * 1.5;
                (a, b)
            }
            "ln_1p" => {
                let (a, lo) = self.positive_form(e, 0.25);
                let a = E::new(
                    format!("{} - {}", a.operand(), lit(0.75).code),
                    a.bound,
                    Prec::Binary,
                );
                let b = (a.bound + 1.0).ln().abs().max((lo + 0.25).ln().abs());
                (a, b)
            }
            "sqrt" => {
                let (a, _) = self.positive_form(e, 0.5);
                let b = a.bound.sqrt();
                (a, b)
            }
            "cbrt" => {
                let (a, _) = self.positive_form(e, 0.5);
                let b = a.bound.cbrt();
                if self.rng.chance(0.5) {
                    let neg = E::new(format!("-{}", a.operand()), a.bound, Prec::Unary);
                    (neg, b)
                } else {
                    (a, b)
                }
            }
            "recip" => {
                let (a, lo) = self.positive_form(e, 0.5);
                (a, 1.0 / lo)
            }
            "to_degrees" => {
                let a = self.squash(e, 0.05);
                (a, 0.05 * 57.3)
            }
            "to_radians" => {
                let b = e.bound * 0.0175;
                (e, b)
            }
            "abs" => {
                let b = e.bound;
                (e, b)
            }
            "fract" | "signum" => (e, 1.0),
            "floor" | "ceil" | "round" | "trunc" => {
                let b = e.bound + 1.0;
                (e, b)
            }
            "powi" => {
                let n: i32 = *self.rng.pick(&[-2, -1, 2, 2, 3, 3, 4]);
                if n < 0 {
                    let (a, lo) = self.positive_form(e, 0.5);
                    let b = lo.powi(n);
                    let code = match self.rng.below(3) {
                        0 => format!("{}.powi({n})", a.recv()),
                        1 => format!("T::powi({}, {n})", a.code),
                        _ => format!("Float::powi({}, {n})", a.code),
                    };
                    return E::new(code, b, Prec::Atom);
                } else {
                    let a = self.squash(e, 2.0);
                    let b = a.bound.powi(n);
                    let code = match self.rng.below(3) {
                        0 => format!("{}.powi({n})", a.recv()),
                        1 => format!("T::powi({}, {n})", a.code),
                        _ => format!("Float::powi({}, {n})", a.code),
                    };
                    return E::new(code, b, Prec::Atom);
                }
            }
            _ => unreachable!("{name}"),
        };
        let code = self.call_syntax(name, &arg.recv(), &arg.code);
        E::new(code, bound, Prec::Atom)
    }

    /// A primitive of two (or three) arguments within its domain.
    fn binary_primitive(&mut self, depth: usize) -> E {
        self.cost += self.trips as f64;
        let name = *self.rng.pick(BINARY);
        let a = self.expr(depth - 1);
        // (every generated expression must end up in the text: generating marks reads)
        let b = if name == "clamp" {
            None
        } else {
            Some(self.expr(depth - 1))
        };
        let b = || b.unwrap();
        let two = |g: &mut Self, name: &str, a: &E, b: &E| -> String {
            match g.rng.weighted(&[6.0, 1.0, 1.0]) {
                0 => format!("{}.{name}({})", a.recv(), b.code),
                1 => format!("T::{name}({}, {})", a.code, b.code),
                _ => format!("Float::{name}({}, {})", a.code, b.code),
            }
        };
        match name {
            "powf" => {
                let (base, lo) = self.positive_form(a, 0.5);
                let p = self.squash(b(), 2.0);
                let bound = base.bound.max(1.0).powf(p.bound) * lo.min(1.0).powf(-p.bound);
                E::new(two(self, "powf", &base, &p), bound, Prec::Atom)
            }
            "log" => {
                let (x, lo) = self.positive_form(a, 0.5);
                let (base, _) = self.positive_form(b(), 2.0);
                let bound = x.bound.ln().abs().max(lo.ln().abs()) / 2f64.ln();
                E::new(two(self, "log", &x, &base), bound, Prec::Atom)
            }
            "hypot" => {
                // away from the origin, where it has a kink
                let (b, _) = self.positive_form(b(), 0.5);
                let (x, y) = if self.rng.chance(0.5) { (a, b) } else { (b, a) };
                let bound = x.bound + y.bound;
                E::new(two(self, "hypot", &x, &y), bound, Prec::Atom)
            }
            "atan2" => {
                // the second argument away from 0, on either side; a branch cut crossing
                // (second argument negative, first changing sign) is caught by the checker
                let (mut b, _) = self.positive_form(b(), 0.5);
                if self.rng.chance(0.3) {
                    b = E::new(format!("-{}", b.operand()), b.bound, Prec::Unary);
                }
                E::new(two(self, "atan2", &a, &b), std::f64::consts::PI, Prec::Atom)
            }
            "mul_add" => {
                let a = self.squash(a, VAR_CAP);
                let b = self.squash(b(), VAR_CAP);
                let c = self.expr(depth - 1);
                let bound = a.bound * b.bound + c.bound;
                let code = match self.rng.weighted(&[6.0, 1.0, 1.0]) {
                    0 => format!("{}.mul_add({}, {})", a.recv(), b.code, c.code),
                    1 => format!("T::mul_add({}, {}, {})", a.code, b.code, c.code),
                    _ => format!("Float::mul_add({}, {}, {})", a.code, b.code, c.code),
                };
                E::new(code, bound, Prec::Atom)
            }
            "max" | "min" => {
                let b = b();
                let bound = a.bound.max(b.bound);
                E::new(two(self, name, &a, &b), bound, Prec::Atom)
            }
            "clamp" => {
                // lo <= -0.25 < 0.25 <= hi
                let (lo, hi) = if self.rng.chance(0.5) {
                    let l = self.rng.uniform(0.25, 1.5);
                    let h = self.rng.uniform(0.25, 1.5);
                    (lit(-l), lit(h))
                } else {
                    let l = self.expr(depth - 1);
                    let l = self.squash(l, 1.0);
                    let l = E::new(
                        format!("{} - {}", l.operand(), lit(1.25).code),
                        l.bound + 1.25,
                        Prec::Binary,
                    );
                    let h = self.leaf();
                    let h = self.squash(h, 1.0);
                    let h = E::new(
                        format!("{} + {}", h.operand(), lit(1.25).code),
                        h.bound + 1.25,
                        Prec::Binary,
                    );
                    (l, h)
                };
                let bound = lo.bound.max(hi.bound);
                let code = match self.rng.weighted(&[6.0, 1.0, 1.0]) {
                    0 => format!("{}.clamp({}, {})", a.recv(), lo.code, hi.code),
                    1 => format!("T::clamp({}, {}, {})", a.code, lo.code, hi.code),
                    _ => format!("Float::clamp({}, {}, {})", a.code, lo.code, hi.code),
                };
                E::new(code, bound, Prec::Atom)
            }
            "rem" => {
                let (d, _) = self.positive_form(b(), 0.5);
                let bound = d.bound.min(a.bound);
                E::new(
                    format!("{} % {}", a.operand(), d.operand()),
                    bound,
                    Prec::Binary,
                )
            }
            _ => unreachable!("{name}"),
        }
    }

    /// A condition on active values: comparisons, `&&`, `||`, `!`, sign predicates.
    fn cond(&mut self, depth: usize) -> String {
        if depth > 0 && self.rng.chance(0.25) {
            let a = self.cond(depth - 1);
            let b = self.cond(depth - 1);
            return match self.rng.below(3) {
                0 => format!("{a} && {b}"),
                1 => format!("{a} || {b}"),
                _ => format!("!({a}) && {b}"),
            };
        }
        // sometimes `all` or `any` over a vector's elements, by a threshold within their bound
        let vectors = self.readable_vectors();
        if !vectors.is_empty() && self.rng.chance(0.06) {
            let i = *self.rng.pick(&vectors);
            self.vars[i].read = true;
            let (name, bound) = (self.vars[i].name.clone(), self.vars[i].bound);
            let c = lit(self.rng.uniform(-0.7, 0.7) * bound.min(3.0));
            return match self.rng.below(3) {
                0 => format!("{name}.iter().all(|v| *v > {})", c.code),
                1 => format!("{name}.iter().any(|&v| v < {})", c.code),
                _ => format!(
                    "{name}.iter().map(|v| v.abs()).any(|t| t > {})",
                    lit(self.rng.uniform(0.0, 0.7) * bound.min(3.0)).code
                ),
            };
        }
        let a = self.expr(1);
        let a = if a.prec == Prec::Block {
            E::new(format!("({})", a.code), a.bound, Prec::Atom)
        } else {
            a
        };
        // a condition on constants only decides nothing: combine with a variable
        let a = if self.mentions_variable(&a.code) {
            a
        } else {
            let v = self.variable_leaf();
            self.combine(v, a)
        };
        match self.rng.below(8) {
            0 => format!("{}.is_sign_positive()", a.recv()),
            1 => format!("{}.is_sign_negative()", a.recv()),
            2 | 3 => {
                let b = self.leaf();
                let op = *self.rng.pick(&["<", ">", "<=", ">="]);
                format!("{} {op} {}", a.operand(), b.operand())
            }
            _ => {
                // against a constant inside the range of `a`, so both branches are taken
                let c = lit(self.rng.uniform(-0.7, 0.7) * a.bound.min(3.0));
                let op = *self.rng.pick(&["<", ">", "<=", ">="]);
                format!("{} {op} {}", a.operand(), c.code)
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Calls
    // -----------------------------------------------------------------------------------

    /// Earlier functions with output kind `kind` that can be called here: cheap enough,
    /// and every slice parameter has a vector in scope to pass.
    fn callable(&self, kind: Output) -> Vec<usize> {
        if self.prior.is_empty() || self.in_closure {
            return Vec::new();
        }
        let budget = (MAX_COST - self.cost) / self.trips as f64;
        let lo = self.prior.len().saturating_sub(60);
        (lo..self.prior.len())
            .filter(|&k| {
                let f = &self.prior[k];
                let same_kind = matches!(
                    (kind, f.output),
                    (Output::Scalar, Output::Scalar)
                        | (Output::Pair, Output::Pair)
                        | (Output::Vector(_), Output::Vector(_))
                );
                same_kind
                    && f.cost <= budget.min(MAX_COST / 4.0)
                    && f.params.iter().all(|(_, p)| match p {
                        Param::Slice(n) => !self.passable(*n).is_empty(),
                        _ => true,
                    })
            })
            .collect()
    }

    /// Vectors of exactly `len` elements within the input bound (a callee may loop over
    /// `xs.len()`, and its bounds were planned for that length).
    fn passable(&self, len: usize) -> Vec<usize> {
        self.readable_vectors()
            .into_iter()
            .filter(|&i| {
                let v = &self.vars[i];
                matches!(v.kind, Kind::Vector { len: l, .. } if l == len) && v.bound <= INPUT_BOUND
            })
            .collect()
    }

    /// The argument list of a call to `prior[k]`.
    fn call_args(&mut self, k: usize) -> String {
        let params = self.prior[k].params.clone();
        self.cost += self.prior[k].cost * self.trips as f64;
        let mut args = Vec::new();
        for (_, p) in params {
            match p {
                Param::Scalar => {
                    let e = self.expr(1);
                    let e = self.squash(e, INPUT_BOUND);
                    args.push(e.code);
                }
                Param::Slice(n) => {
                    let candidates = self.passable(n);
                    let i = *self.rng.pick(&candidates);
                    self.vars[i].read = true;
                    self.vars[i].dirty = false;
                    let v = &self.vars[i];
                    let owned = matches!(v.kind, Kind::Vector { owned: true, .. });
                    args.push(if owned {
                        format!("&{}", v.name)
                    } else {
                        v.name.clone()
                    });
                }
                Param::Count(_) => {
                    let counts: Vec<usize> = self
                        .vars
                        .iter()
                        .enumerate()
                        .filter(|(i, v)| v.kind == Kind::Count && !self.shadowed(*i))
                        .map(|(i, _)| i)
                        .collect();
                    if !counts.is_empty() && self.rng.chance(0.5) {
                        let i = counts[0];
                        self.vars[i].read = true;
                        args.push(self.vars[i].name.clone());
                    } else {
                        args.push(format!("{}", self.rng.range(1, 4)));
                    }
                }
            }
        }
        let name = &self.prior[k].path;
        let turbofish = if self.rng.chance(0.2) { "::<T>" } else { "" };
        format!("{name}{turbofish}({})", args.join(", "))
    }

    fn call_scalar(&mut self, calls: &[usize]) -> E {
        let k = *self.rng.pick(calls);
        let call = self.call_args(k);
        E::new(call, self.prior[k].out_bound, Prec::Atom)
    }

    // -----------------------------------------------------------------------------------
    // Statements
    // -----------------------------------------------------------------------------------

    fn statement(&mut self) {
        self.budget = self.budget.saturating_sub(1);
        let in_loop = !self.loops.is_empty();
        let plain_loop = self.loops.last() == Some(&LoopKind::Plain) && self.value_loops == 0;
        let nest_ok = self.depth < 4 && self.budget > 0;
        let loop_ok = nest_ok && self.loops.len() < 2 && self.trips * 2 <= MAX_TRIPS;
        let writable = !self.writable_scalars().is_empty();
        let vec_writable = !self.writable_vectors().is_empty();
        let has_vectors = !self.readable_vectors().is_empty();
        let has_index = !self.indices().is_empty();
        let pair_calls = !self.callable(Output::Pair).is_empty();
        let vec_calls = !self.callable(Output::Vector(0)).is_empty();
        // a function returning a struct may not `return` from inside a loop
        let returns = matches!(self.output, Output::Scalar | Output::Pair)
            || self.output == Output::Struct && self.loops.is_empty();
        let weights = [
            3.0,                                             // 0 let
            if writable { 4.0 } else { 0.0 },                // 1 assign
            if nest_ok { 2.0 } else { 0.0 },                 // 2 if
            if loop_ok { 2.0 } else { 0.0 },                 // 3 for range
            if loop_ok && has_vectors { 1.5 } else { 0.0 },  // 4 for slice
            if loop_ok { 0.7 } else { 0.0 },                 // 5 while
            if loop_ok { 0.5 } else { 0.0 },                 // 6 loop
            1.0,                                             // 7 let vec
            if vec_writable { 2.0 } else { 0.0 },            // 8 vec write
            if vec_writable { 0.6 } else { 0.0 },            // 9 swap
            if has_vectors { 1.0 } else { 0.0 },             // 10 reduction
            if pair_calls || vec_calls { 0.6 } else { 0.0 }, // 11 call let
            if self.writable_scalars().len() >= 2 {
                0.3
            } else {
                0.0
            }, // 12 tuple swap
            if has_index && nest_ok { 0.5 } else { 0.0 },    // 13 match
            if plain_loop { 0.6 } else { 0.0 },              // 14 break/continue
            if !returns || self.value_loops > 0 {
                0.0
            } else if in_loop {
                0.1
            } else {
                0.25
            }, // 15 return
            0.4,                                             // 16 shadow
            if nest_ok { 0.4 } else { 0.0 },                 // 17 late init
            0.3,                                             // 18 block / tuple let
            if loop_ok && vec_writable { 0.8 } else { 0.0 }, // 19 fill and read
            if loop_ok && has_vectors { 0.6 } else { 0.0 },  // 20 keep an element
        ];
        match self.rng.weighted(&weights) {
            0 => self.stmt_let(),
            1 => {
                let w = self.writable_scalars();
                let i = *self.rng.pick(&w);
                self.assign_scalar(i, None);
            }
            2 => self.stmt_if(),
            3 => self.stmt_for_range(),
            4 => self.stmt_for_slice(),
            5 => self.stmt_while(),
            6 => self.stmt_loop(),
            7 => self.stmt_let_vec(),
            8 => self.stmt_vec_write(),
            9 => self.stmt_swap(),
            10 => self.stmt_reduction(),
            11 => self.stmt_call_let(pair_calls, vec_calls),
            12 => self.stmt_tuple_swap(),
            13 => self.stmt_match(),
            14 => self.stmt_break(),
            15 => self.stmt_return(),
            16 => self.stmt_shadow(),
            17 => self.stmt_late_init(),
            18 => self.stmt_block_let(),
            19 => self.stmt_fill(),
            _ => self.stmt_keep(),
        }
    }

    /// Statements of a nested block, up to `n` of them.
    fn block(&mut self, n: usize) {
        let n = n.min(self.budget.max(1));
        for _ in 0..n {
            self.statement();
        }
    }

    fn stmt_let(&mut self) {
        let e = self.big_expr();
        let e = self.squash(e, VAR_CAP);
        let name = self.name("t");
        if self.rng.chance(0.12) {
            // through a closure bound by `let`, called twice with half the scale (exact)
            // (not `move`: the expression may read a vector used later)
            let helper = self.name("h");
            self.line(format!("let {helper} = |s: T| ({}) * s;", e.code));
            self.line(format!(
                "let {name} = {helper}(T::from(0.5).unwrap()) + {helper}(T::from(0.5).unwrap());"
            ));
            self.declare(name, Kind::Scalar, e.bound, false);
        } else if self.rng.chance(0.1) {
            // through a struct built here, changed and read by field (exact: 0.5 e + 0.5 e)
            let built = self.name("q");
            self.line(format!(
                "let mut {built} = Pt {{ b: T::from(0.5).unwrap(), a: {} }};",
                e.code
            ));
            self.line(format!("{built}.b *= {built}.a;"));
            self.line(format!("let {name} = {built}.b + {built}.b;"));
            self.declare(name, Kind::Scalar, e.bound, false);
        } else if self.rng.chance(0.4) {
            let slot = self.slot("mut ");
            self.line(format!(
                "let {}{name} = {};",
                self.placeholder(slot),
                e.code
            ));
            let i = self.declare(name, Kind::Scalar, e.bound, true);
            self.vars[i].slot = Some(slot);
            self.vars[i].dirty = true;
            self.vars[i].read = false;
        } else {
            self.line(format!("let {name} = {};", e.code));
            self.declare(name, Kind::Scalar, e.bound, false);
        }
    }

    /// Runs `f` in an `if` branch from the state `before`, returning the state after.
    fn branch(&mut self, f: impl FnOnce(&mut Self)) -> Vec<Var> {
        self.indent += 1;
        self.push_scope();
        f(self);
        self.pop_scope();
        self.indent -= 1;
        self.vars.clone()
    }

    /// Merges the variable states of alternative branches into `self.vars`.
    fn merge(&mut self, states: &[Vec<Var>]) {
        for i in 0..self.vars.len() {
            let v = &mut self.vars[i];
            for s in states {
                let w = &s[i];
                v.bound = v.bound.max(w.bound);
                v.allowance = v.allowance.min(w.allowance);
                v.read |= w.read;
                v.dirty |= w.dirty;
                v.mutated |= w.mutated;
            }
        }
    }

    fn stmt_if(&mut self) {
        let c = self.cond(2);
        self.line(format!("if {c} {{"));
        let before = self.vars.clone();
        let n = self.rng.range(1, 3);
        let mut states = vec![self.branch(|g| g.block(n))];
        let arms = self.rng.weighted(&[0.35, 0.45, 0.2]);
        if arms >= 2 {
            self.vars = before.clone();
            let c2 = self.cond(1);
            self.line(format!("}} else if {c2} {{"));
            let n = self.rng.range(1, 2);
            states.push(self.branch(|g| g.block(n)));
        }
        if arms >= 1 {
            self.vars = before.clone();
            self.line("} else {".to_string());
            let n = self.rng.range(1, 2);
            states.push(self.branch(|g| g.block(n)));
        } else {
            states.push(before.clone());
        }
        self.line("}".to_string());
        self.vars = before;
        self.merge(&states);
    }

    /// Enters a loop of at most `trips` iterations: outer mutable values may grow by the
    /// allowance per trip, which their bounds account for.
    fn enter_loop(&mut self, trips: usize, kind: LoopKind) -> Vec<(f64, f64)> {
        let saved: Vec<(f64, f64)> = self.vars.iter().map(|v| (v.allowance, v.base)).collect();
        let trips = trips.max(1);
        for v in &mut self.vars {
            let growable =
                v.mutable && matches!(v.kind, Kind::Scalar | Kind::Vector { owned: true, .. });
            if !growable {
                continue;
            }
            if v.allowance.is_infinite() {
                v.base = v.bound;
                v.bound += trips as f64 * LOOP_ALLOWANCE;
                v.allowance = LOOP_ALLOWANCE;
            } else {
                v.allowance /= trips as f64;
            }
        }
        self.trips *= trips.max(1);
        self.loops.push(kind);
        saved
    }

    /// Leaves a loop: a value declared outside any loop ends within its bound at entry plus
    /// what the trips added; one inside an outer loop keeps, per outer trip, what this
    /// loop's trips left unused.
    fn exit_loop(&mut self, trips: usize, saved: Vec<(f64, f64)>) {
        let trips_f = trips.max(1) as f64;
        for (v, (a, b)) in self.vars.iter_mut().zip(saved) {
            let growable =
                v.mutable && matches!(v.kind, Kind::Scalar | Kind::Vector { owned: true, .. });
            if !growable {
                continue;
            }
            if a.is_infinite() {
                let used = (LOOP_ALLOWANCE - v.allowance).max(0.0);
                v.bound = v.bound.min(v.base + trips_f * used);
                v.allowance = f64::INFINITY;
                v.base = b;
            } else {
                v.allowance = (trips_f * v.allowance).min(a);
                v.base = b;
            }
        }
        self.trips /= trips.max(1);
        self.loops.pop();
    }

    /// A loop body: a scope, statements, and the loop's variables declared first.
    fn loop_body(&mut self, header_vars: Vec<Var>, n: usize) {
        self.indent += 1;
        self.push_scope();
        for v in header_vars {
            self.vars.push(v);
        }
        self.block(n);
        self.pop_scope();
        self.indent -= 1;
    }

    /// A pattern variable of a loop header: `_` when the body does not read it.
    fn pattern_var(&mut self, stem: &str, kind: Kind, bound: f64) -> (Var, String) {
        let name = self.name(stem);
        let slot = self.slot(&name);
        let mut v = Var::new(name, kind, bound);
        v.slot = Some(slot);
        v.pattern = true;
        (v, self.placeholder(slot))
    }

    fn stmt_for_range(&mut self) {
        let max_trips = (MAX_TRIPS / self.trips).min(5);
        let counts: Vec<usize> = (0..self.vars.len())
            .filter(|&i| self.vars[i].kind == Kind::Count && !self.shadowed(i))
            .collect();
        let vectors = self.readable_vectors();
        // (range text, trips, index max exclusive)
        let (range, trips, max) = match self.rng.below(7) {
            0 if !counts.is_empty() && max_trips >= 4 => {
                let i = counts[0];
                self.vars[i].read = true;
                (format!("0..{}", self.vars[i].name), 4, 4)
            }
            1 if !vectors.is_empty() => {
                let i = *self.rng.pick(&vectors);
                let Kind::Vector { len, .. } = self.vars[i].kind else {
                    unreachable!()
                };
                if len > max_trips {
                    let n = self.rng.range(1, max_trips.max(1));
                    (format!("0..{n}"), n, n)
                } else {
                    self.vars[i].read = true;
                    self.vars[i].dirty = false;
                    (format!("0..{}.len()", self.vars[i].name), len, len)
                }
            }
            2 => {
                let n = self.rng.range(1, max_trips.max(1));
                (format!("(0..{n}).rev()"), n, n)
            }
            3 => {
                let n = self.rng.range(2, (2 * max_trips).clamp(2, 6));
                let k = self.rng.range(2, 3);
                if self.rng.chance(0.5) {
                    (format!("(0..{n}).step_by({k})"), n.div_ceil(k), n)
                } else {
                    (format!("(0..{n}).rev().step_by({k})"), n.div_ceil(k), n)
                }
            }
            4 => {
                let n = self.rng.range(1, max_trips.max(1));
                (format!("1..={n}"), n, n + 1)
            }
            _ => {
                let a = self.rng.range(0, 1);
                let n = self.rng.range(1, max_trips.max(1));
                (format!("{a}..{}", a + n), n, a + n)
            }
        };
        let (v, pat) = self.pattern_var("i", Kind::Index { max }, max as f64);
        self.line(format!("for {pat} in {range} {{"));
        let saved = self.enter_loop(trips, LoopKind::Plain);
        let n = self.rng.range(1, 4);
        self.loop_body(vec![v], n);
        self.exit_loop(trips, saved);
        self.line("}".to_string());
    }

    fn stmt_for_slice(&mut self) {
        let vectors = self.readable_vectors();
        let i = *self.rng.pick(&vectors);
        let Kind::Vector { len, owned } = self.vars[i].kind else {
            unreachable!()
        };
        if len * self.trips > MAX_TRIPS {
            return self.stmt_let();
        }
        self.vars[i].read = true;
        self.vars[i].dirty = false;
        let bound = self.vars[i].bound;
        let name = self.vars[i].name.clone();
        let by_ref = if owned {
            format!("&{name}")
        } else {
            name.clone()
        };
        let mut header_vars = Vec::new();
        let mut iterated = vec![i];
        let header = match self.rng.below(8) {
            0 => {
                let (mut v, p) = self.pattern_var("v", Kind::Scalar, bound);
                v.deref = true;
                header_vars.push(v);
                let filter = self.filter_clause(bound);
                format!("for {p} in {name}.iter(){filter} {{")
            }
            1 => {
                let (v, p) = self.pattern_var("v", Kind::Scalar, bound);
                header_vars.push(v);
                let filter = self.filter_clause(bound);
                format!("for &{p} in {name}.iter(){filter} {{")
            }
            2 => {
                let (mut v, p) = self.pattern_var("v", Kind::Scalar, bound);
                v.deref = true;
                header_vars.push(v);
                format!("for {p} in {by_ref} {{")
            }
            3 => {
                let (j, pj) = self.pattern_var("j", Kind::Index { max: len }, len as f64);
                let (v, p) = self.pattern_var("v", Kind::Scalar, bound);
                header_vars.push(j);
                header_vars.push(v);
                // the pairs last first, or the elements last first counted from 0
                let (before, after) = match self.rng.below(5) {
                    0 => ("", ".rev()"),
                    1 => (".rev()", ""),
                    _ => ("", ""),
                };
                format!("for ({pj}, &{p}) in {name}.iter(){before}.enumerate(){after} {{")
            }
            4 => {
                let (v, p) = self.pattern_var("v", Kind::Scalar, bound);
                header_vars.push(v);
                let filter = self.filter_clause(bound);
                format!("for &{p} in {name}.iter().rev(){filter} {{")
            }
            5 => {
                let (v, p) = self.pattern_var("v", Kind::Scalar, bound);
                header_vars.push(v);
                format!("for {p} in {name}.iter().copied() {{")
            }
            _ => {
                // zip with another vector (or itself)
                let j = *self.rng.pick(&vectors);
                iterated.push(j);
                self.vars[j].read = true;
                self.vars[j].dirty = false;
                let other = self.vars[j].name.clone();
                let other_bound = self.vars[j].bound;
                let (a, pa) = self.pattern_var("a", Kind::Scalar, bound);
                let (b, pb) = self.pattern_var("b", Kind::Scalar, other_bound);
                header_vars.push(a);
                header_vars.push(b);
                let other_owned = matches!(self.vars[j].kind, Kind::Vector { owned: true, .. });
                let other_ref = if other_owned {
                    format!("&{other}")
                } else {
                    other
                };
                if self.rng.chance(0.5) {
                    format!("for (&{pa}, &{pb}) in {name}.iter().zip({other_ref}) {{")
                } else {
                    let other_iter = other_ref.trim_start_matches('&').to_string();
                    format!("for (&{pa}, &{pb}) in {name}.iter().zip({other_iter}.iter()) {{")
                }
            }
        };
        // sometimes the same loop as `source.for_each(|pattern| { body })`, on a method-call
        // source (`&v` and a slice are no iterators), its body without `break`, `continue` or
        // `return`
        let for_each = header
            .strip_prefix("for ")
            .and_then(|rest| rest.split_once(" in "))
            .and_then(|(pattern, source)| {
                let source = source.strip_suffix(" {")?;
                source
                    .ends_with(')')
                    .then(|| format!("{source}.for_each(|{pattern}| {{"))
            })
            .filter(|_| self.rng.chance(0.25));
        let closing = if for_each.is_some() { "});" } else { "}" };
        self.line(for_each.clone().unwrap_or(header));
        // the iterated vectors cannot be written in the body
        let borrowed: Vec<usize> = iterated
            .into_iter()
            .filter(|&k| !self.vars[k].borrowed)
            .collect();
        for &k in &borrowed {
            self.vars[k].borrowed = true;
        }
        let saved = self.enter_loop(len, LoopKind::Plain);
        let n = self.rng.range(1, 4);
        let no_jumps = for_each.is_some() as usize;
        self.value_loops += no_jumps;
        self.loop_body(header_vars, n);
        self.value_loops -= no_jumps;
        self.exit_loop(len, saved);
        for &k in &borrowed {
            self.vars[k].borrowed = false;
        }
        self.line(closing.to_string());
    }

    fn stmt_while(&mut self) {
        let max_trips = (MAX_TRIPS / self.trips).min(5);
        let trips = self.rng.range(1, max_trips.max(1));
        let k = self.name("k");
        self.line(format!("let mut {k} = 0;"));
        // the condition runs before every iteration, so it sees the values the body grows:
        // it is generated with the bounds of the loop's body (a `clamp` whose bounds come
        // from a growing variable must still have `lo <= hi`)
        let saved = self.enter_loop(trips, LoopKind::Plain);
        let c = self.cond(1);
        if self.rng.chance(0.5) {
            self.line(format!("while {k} < {trips} && ({c}) {{"));
        } else {
            self.line(format!("while ({c}) && {k} < {trips} {{"));
        }
        self.indent += 1;
        self.line(format!("{k} += 1;"));
        self.indent -= 1;
        let n = self.rng.range(1, 3);
        self.loop_body(Vec::new(), n);
        self.exit_loop(trips, saved);
        self.line("}".to_string());
    }

    fn stmt_loop(&mut self) {
        let max_trips = (MAX_TRIPS / self.trips).min(5);
        let trips = self.rng.range(1, max_trips.max(1));
        let k = self.name("k");
        self.line(format!("let mut {k} = 0;"));
        let with_value = self.rng.chance(0.5);
        let result = self.name("r");
        if with_value {
            self.line(format!("let {result} = loop {{"));
        } else {
            self.line("loop {".to_string());
        }
        self.indent += 1;
        self.line(format!("{k} += 1;"));
        self.indent -= 1;
        let saved = self.enter_loop(trips, LoopKind::Loop);
        self.indent += 1;
        self.push_scope();
        let n = self.rng.range(1, 3);
        self.value_loops += with_value as usize;
        self.block(n);
        self.value_loops -= with_value as usize;
        let c = self.cond(1);
        if with_value {
            let e = self.expr(2);
            let e = self.squash(e, VAR_CAP);
            self.line(format!("if {k} >= {trips} || ({c}) {{"));
            self.line(format!("    break {};", e.code));
            self.line("}".to_string());
            self.pop_scope();
            self.indent -= 1;
            self.exit_loop(trips, saved);
            self.line("};".to_string());
            self.declare(result, Kind::Scalar, e.bound, false);
        } else {
            self.line(format!("if ({c}) || {k} >= {trips} {{"));
            self.line("    break;".to_string());
            self.line("}".to_string());
            self.pop_scope();
            self.indent -= 1;
            self.exit_loop(trips, saved);
            self.line("}".to_string());
        }
    }

    fn stmt_let_vec(&mut self) {
        // often the length of a vector in scope, so that it can be copied or cloned
        let lens: Vec<usize> = self
            .readable_vectors()
            .into_iter()
            .filter_map(|i| match self.vars[i].kind {
                Kind::Vector { len, .. } => Some(len),
                _ => None,
            })
            .collect();
        let len = if !lens.is_empty() && self.rng.chance(0.5) {
            *self.rng.pick(&lens)
        } else {
            self.rng.range(2, 5)
        };
        let name = self.name("w");
        if self.rng.chance(0.25) && len * self.trips <= MAX_TRIPS && self.loops.len() < 2 {
            // with_capacity + push in a loop
            let slot = self.slot("");
            self.line(format!(
                "let mut {name}{} = Vec::with_capacity({len});",
                self.placeholder(slot)
            ));
            let (iv, pat) = self.pattern_var("i", Kind::Index { max: len }, len as f64);
            self.line(format!("for {pat} in 0..{len} {{"));
            let saved = self.enter_loop(len, LoopKind::Plain);
            self.indent += 1;
            self.push_scope();
            self.vars.push(iv);
            let e = self.expr(2);
            let e = self.squash(e, VAR_CAP);
            self.line(format!("{name}.push({});", e.code));
            // the element type of a vector of call results, which the macro cannot see (it
            // asks for this annotation when such an element is saved)
            let calls = e.code.split("f").skip(1).any(|rest| {
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                digits > 0 && rest[digits..].starts_with(['(', ':'])
            });
            if calls {
                self.slots[slot] = ": Vec<T>".to_string();
            }
            self.pop_scope();
            self.indent -= 1;
            self.exit_loop(len, saved);
            self.line("}".to_string());
            let i = self.declare(name, Kind::Vector { len, owned: true }, e.bound, true);
            self.vars[i].mutated = true;
            return;
        }
        let init = self.vec_init(len);
        let slot = self.slot("mut ");
        self.line(format!(
            "let {}{name} = {};",
            self.placeholder(slot),
            init.code
        ));
        let i = self.declare(name, Kind::Vector { len, owned: true }, init.bound, true);
        self.vars[i].slot = Some(slot);
    }

    fn stmt_vec_write(&mut self) {
        let w = self.writable_vectors();
        let i = *self.rng.pick(&w);
        let Kind::Vector { len, .. } = self.vars[i].kind else {
            unreachable!()
        };
        let name = self.vars[i].name.clone();
        let index = self.index_expr(len, &name, true);
        let in_loop = self.vars[i].allowance.is_finite();
        self.vars[i].mutated = true;
        self.vars[i].dirty = true;
        let op = self.rng.below(4);
        // a compound write borrows the vector mutably before the right side is evaluated
        if op > 0 {
            self.vars[i].locked = true;
        }
        let e = self.big_expr();
        self.vars[i].locked = false;
        match op {
            1 | 2 if !in_loop || self.vars[i].allowance >= 0.05 => {
                let cap = if in_loop {
                    self.vars[i].allowance
                } else {
                    VAR_CAP
                };
                let e = self.squash(e, cap);
                let sym = if op == 1 { "+=" } else { "-=" };
                self.line(format!("{name}[{index}] {sym} {};", e.code));
                if in_loop {
                    self.vars[i].allowance -= e.bound;
                } else {
                    self.vars[i].bound += e.bound;
                }
            }
            3 => {
                let e = self.squash(e, 1.0);
                self.line(format!("{name}[{index}] *= {};", e.code));
            }
            _ => {
                let cap = if in_loop { self.vars[i].base } else { VAR_CAP };
                let e = self.squash(e, cap);
                self.line(format!("{name}[{index}] = {};", e.code));
                if !in_loop {
                    self.vars[i].bound = self.vars[i].bound.max(e.bound);
                }
            }
        }
    }

    /// A local vector filled element by element (`w[i] = e` for `i in 0..len`), then read
    /// by an index loop over the same range: the shape whose reads the macro replaces by the
    /// filling expression when the vector changes later (a scratch buffer in a loop) and `e`
    /// is cheap arithmetic on elements at `i`, scalars and constants, as it mostly is here.
    /// The vectors among `candidates` short enough for a loop over them at this depth.
    fn loopable(&self, candidates: Vec<usize>) -> Vec<usize> {
        candidates
            .into_iter()
            .filter(|&i| match self.vars[i].kind {
                Kind::Vector { len, .. } => len * self.trips <= MAX_TRIPS,
                _ => false,
            })
            .collect()
    }

    fn stmt_fill(&mut self) {
        let w = self.loopable(self.writable_vectors());
        if w.is_empty() {
            return self.stmt_vec_write();
        }
        let i = *self.rng.pick(&w);
        let Kind::Vector { len, .. } = self.vars[i].kind else {
            unreachable!()
        };
        let name = self.vars[i].name.clone();
        let in_loop = self.vars[i].allowance.is_finite();
        self.vars[i].mutated = true;
        let (iv, pat) = self.pattern_var("i", Kind::Index { max: len }, len as f64);
        let iname = iv.name.clone();
        // the loop header is written once the write is known: an `iter_mut()` loop when the
        // value reads nothing of the vector itself
        let (header_at, header_indent) = (self.out.len(), self.indent);
        let saved = self.enter_loop(len, LoopKind::Plain);
        self.indent += 1;
        self.push_scope();
        self.vars.push(iv);
        let induction = self.vars.len() - 1;
        let e = if self.rng.chance(0.75) {
            self.cheap_element(len, induction, i)
        } else {
            self.expr(2)
        };
        let cap = if in_loop { self.vars[i].base } else { VAR_CAP };
        let e = if e.bound <= cap {
            e
        } else if self.rng.chance(0.8) {
            // scaled by a constant, which keeps the expression cheap
            let k = lit(down(cap / e.bound));
            E::new(
                format!("{} * {}", e.operand(), k.code),
                e.bound * k.bound,
                Prec::Binary,
            )
        } else {
            self.squash(e, cap)
        };
        // the write's index reads the induction variable
        self.vars[induction].read = true;
        let reads_itself =
            e.code.contains(&format!("{name}[")) || e.code.contains(&format!("{name}."));
        let header = if !reads_itself && self.rng.chance(0.35) {
            let item = self.name("o");
            self.line(format!("*{item} = {};", e.code));
            let word = |c: char| c.is_alphanumeric() || c == '_';
            let reads_index = e.code.match_indices(iname.as_str()).any(|(at, _)| {
                !e.code[at + iname.len()..].starts_with(word) && !e.code[..at].ends_with(word)
            });
            if reads_index {
                format!("for ({pat}, {item}) in {name}.iter_mut().enumerate() {{")
            } else {
                format!("for {item} in {name}.iter_mut() {{")
            }
        } else {
            self.line(format!("{name}[{iname}] = {};", e.code));
            format!("for {pat} in 0..{len} {{")
        };
        let indent = "    ".repeat(header_indent);
        self.out
            .insert_str(header_at, &format!("{indent}{header}\n"));
        self.pop_scope();
        self.indent -= 1;
        self.exit_loop(len, saved);
        self.line("}".to_string());
        if !in_loop {
            self.vars[i].bound = self.vars[i].bound.max(e.bound);
        }
        // the read: an index loop over the same range
        self.vars[i].read = true;
        self.vars[i].dirty = false;
        let bound = self.vars[i].bound;
        let (result, acc, k) = (self.name("s"), self.name("acc"), self.name("k"));
        let (other, other_bound) = match self.rng.below(3) {
            0 => (format!("{name}[{k}]"), bound),
            1 => (format!("{name}[{len} - 1 - {k}]"), bound),
            _ => ("T::from(0.5).unwrap()".to_string(), 0.5),
        };
        self.line(format!(
            "let {result} = {{ let mut {acc} = T::zero(); for {k} in 0..{len} {{ {acc} = {acc} + {name}[{k}] * {other}; }} {acc} }};"
        ));
        self.cost += self.trips as f64 * len as f64 * 3.0;
        self.declare(
            result,
            Kind::Scalar,
            len as f64 * bound * other_bound,
            false,
        );
        if self.rng.chance(0.6) {
            // the vector changes after the reads
            let r = self.rng.below(len);
            self.line(format!("{name}[{r}] *= T::from(0.5).unwrap();"));
        }
    }

    /// A loop keeping one element: `let mut m = e0; for i in lo..len { if e(i) > m { m = e(i); } }`
    /// with any comparison, the keeping arm first or second, walking up or down; the macro
    /// reads `m` after the loop again where it was taken when `e` is cheap (docs/design.md,
    /// "Kept elements").
    fn stmt_keep(&mut self) {
        let vectors = self.loopable(self.readable_vectors());
        if vectors.is_empty() {
            return self.stmt_let();
        }
        let j = *self.rng.pick(&vectors);
        let Kind::Vector { len, .. } = self.vars[j].kind else {
            unreachable!()
        };
        let init = self.big_expr();
        let init = self.squash(init, VAR_CAP);
        let best = self.name("best");
        let (iv, pat) = self.pattern_var("i", Kind::Index { max: len }, len as f64);
        let lo = self.rng.below(2);
        let range = if self.rng.chance(0.3) {
            format!("({lo}..{len}).rev()")
        } else {
            format!("{lo}..{len}")
        };
        self.line(format!("let mut {best} = {};", init.code));
        self.line(format!("for {pat} in {range} {{"));
        let saved = self.enter_loop(len, LoopKind::Plain);
        self.indent += 1;
        self.push_scope();
        self.vars.push(iv);
        let induction = self.vars.len() - 1;
        let e = self.cheap_element(len, induction, usize::MAX);
        let e = self.squash(e, VAR_CAP);
        let compare = *self.rng.pick(&[">", ">=", "<", "<="]);
        if self.rng.chance(0.3) {
            self.line(format!(
                "if {} {compare} {best} {{}} else {{ {best} = {}; }}",
                e.code, e.code
            ));
        } else {
            self.line(format!(
                "if {} {compare} {best} {{ {best} = {}; }}",
                e.code, e.code
            ));
        }
        self.pop_scope();
        self.indent -= 1;
        self.exit_loop(len, saved);
        self.line("}".to_string());
        self.cost += self.trips as f64 * len as f64 * 2.0;
        self.declare(best, Kind::Scalar, init.bound.max(e.bound), false);
    }

    /// `+`, `-` and `*` of one to three elements at the induction variable (of vectors
    /// other than `skip` at least `len` long), scalars and constants.
    fn cheap_element(&mut self, len: usize, induction: usize, skip: usize) -> E {
        let iname = self.vars[induction].name.clone();
        let vectors: Vec<usize> = self
            .readable_vectors()
            .into_iter()
            .filter(|&j| {
                j != skip && matches!(self.vars[j].kind, Kind::Vector { len: l, .. } if l >= len)
            })
            .collect();
        let scalars = self.scalars();
        let mut out: Option<E> = None;
        for term in 0..self.rng.range(1, 3) {
            let weights = [
                if vectors.is_empty() { 0.0 } else { 4.0 },
                if scalars.is_empty() { 0.0 } else { 2.0 },
                1.0,
            ];
            // the first term reads the induction variable when it can
            let pick = if term == 0 && !vectors.is_empty() {
                0
            } else {
                self.rng.weighted(&weights)
            };
            let e = match pick {
                0 => {
                    let j = *self.rng.pick(&vectors);
                    self.vars[j].read = true;
                    self.vars[j].dirty = false;
                    self.vars[induction].read = true;
                    let b = self.vars[j].bound;
                    E::new(format!("{}[{iname}]", self.vars[j].name), b, Prec::Atom)
                }
                1 => {
                    let j = *self.rng.pick(&scalars);
                    self.read_var(j)
                }
                _ => lit(self.rng.uniform(-1.5, 1.5)),
            };
            out = Some(match out {
                None => e,
                Some(a) => self.combine(a, e),
            });
        }
        out.unwrap_or_else(|| lit(0.5))
    }

    fn stmt_swap(&mut self) {
        let w = self.writable_vectors();
        let i = *self.rng.pick(&w);
        let Kind::Vector { len, .. } = self.vars[i].kind else {
            unreachable!()
        };
        let a = self.rng.below(len);
        let b = self.rng.below(len);
        self.vars[i].mutated = true;
        self.line(format!("{}.swap({a}, {b});", self.vars[i].name));
    }

    fn stmt_reduction(&mut self) {
        let vectors = self.readable_vectors();
        let i = *self.rng.pick(&vectors);
        let Kind::Vector { len, owned } = self.vars[i].kind else {
            unreachable!()
        };
        // (restored when the index loop below reads another vector instead)
        let (was_read, was_dirty) = (self.vars[i].read, self.vars[i].dirty);
        self.vars[i].read = true;
        self.vars[i].dirty = false;
        let name = self.vars[i].name.clone();
        let bound = self.vars[i].bound;
        let _ = owned;
        let result = self.name("s");
        // local vectors (which may change later) are read by an index loop more often
        let has_locals = vectors.iter().any(|&j| {
            self.vars[j].mutable && matches!(self.vars[j].kind, Kind::Vector { owned: true, .. })
        });
        let form = if has_locals && self.rng.chance(0.3) {
            6
        } else {
            self.rng.below(8)
        };
        let (code, rbound) = match form {
            0 => (
                format!("{name}.iter().copied().sum::<T>()"),
                len as f64 * bound,
            ),
            1 => {
                let filter = self.filter_clause(bound);
                let e = self.closure_body("v", true, bound);
                (
                    format!("{name}.iter(){filter}.map(|v| {}).sum::<T>()", e.code),
                    len as f64 * e.bound,
                )
            }
            2 => {
                let e = self.closure_body("v", false, bound);
                // a filter on the map's values
                let filter = if self.rng.chance(0.25) {
                    let c = lit(self.rng.uniform(-0.5, 0.5) * e.bound);
                    match self.rng.below(2) {
                        0 => format!(".filter(|w| *w > {})", c.code),
                        _ => format!(".filter(|&w| w < {})", c.code),
                    }
                } else {
                    String::new()
                };
                (
                    format!("{name}.iter().map(|&v| {}){filter}.sum::<T>()", e.code),
                    len as f64 * e.bound,
                )
            }
            3 if bound <= 1.5 => (
                format!("{name}.iter().copied().product::<T>()"),
                bound.max(1.0).powi(len as i32),
            ),
            4 => {
                // fold with a contracting accumulator
                let init = self.leaf();
                let init = self.squash(init, 1.0);
                let e = self.closure_body("v", false, bound);
                let e = self.squash(e, 1.0);
                let k = lit(self.rng.uniform(0.2, 0.8));
                let code = if self.rng.chance(0.4) {
                    // the same fold over a map's values
                    format!(
                        "{name}.iter().map(|&v| {}).fold({}, |acc, w| acc * {} + w)",
                        e.code, init.code, k.code
                    )
                } else {
                    let filter = self.filter_clause(bound);
                    format!(
                        "{name}.iter(){filter}.fold({}, |acc, &v| acc * {} + {})",
                        init.code,
                        k.code,
                        e.operand()
                    )
                };
                (code, 1.0 + 1.0 / (1.0 - k.bound))
            }
            5 => {
                let vectors = self.readable_vectors();
                let j = *self.rng.pick(&vectors);
                self.vars[j].read = true;
                self.vars[j].dirty = false;
                let other = self.vars[j].name.clone();
                let other_owned = matches!(self.vars[j].kind, Kind::Vector { owned: true, .. });
                let ob = self.vars[j].bound;
                let other_ref = if other_owned {
                    format!("&{other}")
                } else {
                    other
                };
                let f = *self
                    .rng
                    .pick(&["*a * *b", "(*a - *b).sin()", "*a * b.tanh()"]);
                let b = if f.contains('-') { 1.0 } else { bound * ob };
                (
                    format!("{name}.iter().zip({other_ref}).map(|(a, b)| {f}).sum::<T>()"),
                    len as f64 * b,
                )
            }
            6 => {
                // an index loop whose only saved values are elements of a vector: when it is
                // a local that changes later, its records are pushed after the loop
                let locals: Vec<usize> = vectors
                    .iter()
                    .copied()
                    .filter(|&j| {
                        self.vars[j].mutable
                            && matches!(self.vars[j].kind, Kind::Vector { owned: true, .. })
                    })
                    .collect();
                let (name, len, bound) = match locals.is_empty() {
                    true => (name, len, bound),
                    false => {
                        let j = *self.rng.pick(&locals);
                        let Kind::Vector { len, .. } = self.vars[j].kind else {
                            unreachable!()
                        };
                        if j != i {
                            self.vars[i].read = was_read;
                            self.vars[i].dirty = was_dirty;
                        }
                        self.vars[j].read = true;
                        self.vars[j].dirty = false;
                        (self.vars[j].name.clone(), len, self.vars[j].bound)
                    }
                };
                let (acc, k) = (self.name("acc"), self.name("k"));
                let other = match self.rng.below(3) {
                    0 => format!("{name}[{k}]"),
                    1 => format!("{name}[{len} - 1 - {k}]"),
                    _ => format!("{name}[({k} + 1) % {len}]"),
                };
                (
                    format!(
                        "{{ let mut {acc} = T::zero(); for {k} in 0..{len} {{ {acc} = {acc} + {name}[{k}] * {other}; }} {acc} }}"
                    ),
                    len as f64 * bound * bound,
                )
            }
            _ => {
                let e = self.closure_body_indexed(&name, bound);
                (
                    format!("(0..{len}).map(|i| {}).sum::<T>()", e.code),
                    len as f64 * e.bound,
                )
            }
        };
        self.cost += self.trips as f64 * len as f64 * 3.0;
        if self.rng.chance(0.3) {
            self.line(format!("let {result}: T = {code};"));
        } else {
            self.line(format!("let {result} = {code};"));
        }
        self.declare(result, Kind::Scalar, rbound, false);
    }

    /// Sometimes a `.filter(..)` on the `&&T` items of `.iter()`, by a threshold within the
    /// elements' bound; otherwise nothing.
    fn filter_clause(&mut self, bound: f64) -> String {
        if !self.rng.chance(0.3) {
            return String::new();
        }
        let c = lit(self.rng.uniform(-0.5, 0.5) * bound);
        match self.rng.below(3) {
            0 => format!(".filter(|v| **v > {})", c.code),
            1 => format!(".filter(|&&v| v < {})", c.code),
            _ => format!(
                ".filter(|v| v.abs() > {})",
                lit(self.rng.uniform(0.0, 0.5) * bound).code
            ),
        }
    }

    /// A closure body in the element `v` (a `&T` when `deref`).
    fn closure_body(&mut self, v: &str, deref: bool, bound: f64) -> E {
        let mut var = Var::new(v.to_string(), Kind::Scalar, bound);
        var.deref = deref;
        var.pattern = true;
        // only the element and constants: keep the closure simple
        let saved = std::mem::take(&mut self.vars);
        self.vars.push(var);
        self.in_closure = true;
        let e = loop {
            let e = self.expr(2);
            if self.vars[0].read {
                break e;
            }
        };
        self.in_closure = false;
        self.vars = saved;
        self.squash(e, VAR_CAP)
    }

    /// `|i| ... name[i] ...` for a range reduction.
    fn closure_body_indexed(&mut self, name: &str, bound: f64) -> E {
        let scale = lit(self.rng.uniform(-1.5, 1.5));
        let f = *self.rng.pick(&["sin", "cos", "tanh", "atan"]);
        let b = if f == "atan" {
            std::f64::consts::FRAC_PI_2
        } else {
            1.0
        };
        let _ = bound;
        E::new(
            format!("({name}[i] * {}).{f}() * T::from(i).unwrap()", scale.code),
            b * 5.0,
            Prec::Binary,
        )
    }

    fn stmt_call_let(&mut self, pair: bool, vector: bool) {
        let use_pair = pair && (!vector || self.rng.chance(0.5));
        if use_pair {
            let calls = self.callable(Output::Pair);
            let k = *self.rng.pick(&calls);
            let call = self.call_args(k);
            let (a, b) = (self.name("p"), self.name("q"));
            self.line(format!("let ({a}, {b}) = {call};"));
            let bound = self.prior[k].out_bound;
            self.declare(a, Kind::Scalar, bound, false);
            self.declare(b, Kind::Scalar, bound, false);
        } else {
            let calls = self.callable(Output::Vector(0));
            let k = *self.rng.pick(&calls);
            let Output::Vector(len) = self.prior[k].output else {
                unreachable!()
            };
            let call = self.call_args(k);
            let name = self.name("u");
            let mutable = self.rng.chance(0.3);
            if mutable {
                let slot = self.slot("mut ");
                self.line(format!("let {}{name} = {call};", self.placeholder(slot)));
                let i = self.declare(
                    name,
                    Kind::Vector { len, owned: true },
                    self.prior[k].out_bound,
                    true,
                );
                self.vars[i].slot = Some(slot);
            } else {
                self.line(format!("let {name} = {call};"));
                self.declare(
                    name,
                    Kind::Vector { len, owned: true },
                    self.prior[k].out_bound,
                    false,
                );
            }
        }
    }

    fn stmt_tuple_swap(&mut self) {
        let w = self.writable_scalars();
        let i = *self.rng.pick(&w);
        let j = *self.rng.pick(&w);
        if i == j {
            return self.assign_scalar(i, None);
        }
        let (a, b) = (self.vars[i].name.clone(), self.vars[j].name.clone());
        let (li, lj) = (
            self.vars[i].allowance.is_finite(),
            self.vars[j].allowance.is_finite(),
        );
        if li != lj {
            return self.assign_scalar(i, None);
        }
        let in_loop = li;
        let (bi, bj) = (self.vars[i].bound, self.vars[j].bound);
        for k in [i, j] {
            self.vars[k].read = true;
            self.vars[k].dirty = true;
            self.vars[k].mutated = true;
        }
        if !in_loop {
            if self.rng.chance(0.4) {
                self.line(format!("std::mem::swap(&mut {a}, &mut {b});"));
            } else {
                self.line(format!("({a}, {b}) = ({b}, {a});"));
            }
            self.vars[i].bound = bj;
            self.vars[j].bound = bi;
        } else {
            // keep each within the bound the loop was planned with
            let ri = lit(down((self.vars[i].base / bj.max(1e-9)).min(1.0)));
            let rj = lit(down((self.vars[j].base / bi.max(1e-9)).min(1.0)));
            self.line(format!(
                "({a}, {b}) = ({b} * {}, {a} * {});",
                ri.code, rj.code
            ));
        }
    }

    fn stmt_match(&mut self) {
        let indices = self.indices();
        let i = *self.rng.pick(&indices);
        self.vars[i].read = true;
        let name = self.vars[i].name.clone();
        let is_count = self.vars[i].kind == Kind::Count;
        let scrutinee = if is_count {
            name.clone()
        } else {
            format!("{name} % 3")
        };
        // an index modulo 3 can also be matched exhaustively, the catch-all unreachable
        let diverging = !is_count && self.rng.chance(0.25);
        let mut arms: Vec<String> = if is_count {
            vec!["1".into(), "2 | 3".into(), "_".into()]
        } else if diverging {
            vec!["0".into(), "1".into(), "2".into()]
        } else if self.rng.chance(0.5) {
            vec!["0".into(), "1 | 2".into(), "_".into()]
        } else {
            vec!["0".into(), "1".into(), "_".into()]
        };
        // sometimes a guard on the middle arm, a condition on the values in scope (not before
        // the unreachable catch-all, which the guard's values would then reach)
        if !diverging && self.rng.chance(0.3) {
            let c = self.cond(1);
            arms[1] = format!("{} if {c}", arms[1]);
        }
        self.line(format!("match {scrutinee} {{"));
        let before = self.vars.clone();
        let mut states = Vec::new();
        for arm in arms {
            self.vars = before.clone();
            self.indent += 1;
            self.line(format!("{arm} => {{"));
            let n = self.rng.range(1, 2);
            states.push(self.branch(|g| g.block(n)));
            self.line("}".to_string());
            self.indent -= 1;
        }
        if diverging {
            self.line(format!(
                "    _ => unreachable!(\"{{}} % 3 is below 3\", {name}),"
            ));
        }
        self.line("}".to_string());
        self.vars = before;
        self.merge(&states);
    }

    fn stmt_break(&mut self) {
        let c = self.cond(1);
        let what = if self.rng.chance(0.5) {
            "break"
        } else {
            "continue"
        };
        self.line(format!("if {c} {{"));
        self.line(format!("    {what};"));
        self.line("}".to_string());
    }

    fn stmt_return(&mut self) {
        let c = self.cond(1);
        self.line(format!("if {c} {{"));
        self.indent += 1;
        match self.output {
            Output::Scalar => {
                let e = self.big_expr();
                let e = self.squash(e, OUT_CAP);
                self.out_bound = self.out_bound.max(e.bound);
                self.line(format!("return {};", e.code));
            }
            _ => {
                let a = self.expr(2);
                let a = self.squash(a, OUT_CAP);
                let b = self.expr(2);
                let b = self.squash(b, OUT_CAP);
                self.out_bound = self.out_bound.max(a.bound).max(b.bound);
                let value = pair_value(self.output, &a.code, &b.code);
                self.line(format!("return {value};"));
            }
        }
        self.indent -= 1;
        self.line("}".to_string());
    }

    fn stmt_shadow(&mut self) {
        let candidates: Vec<usize> = self
            .scalars()
            .into_iter()
            .filter(|&i| {
                let v = &self.vars[i];
                !v.mutable && !v.param && !v.deref
            })
            .collect();
        if candidates.is_empty() {
            return self.stmt_let();
        }
        let i = *self.rng.pick(&candidates);
        let cur = self.read_var(i);
        let e = self.unary_on(cur);
        let e = self.squash(e, VAR_CAP);
        let name = self.vars[i].name.clone();
        self.line(format!("let {name} = {};", e.code));
        self.declare(name, Kind::Scalar, e.bound, false);
    }

    fn stmt_late_init(&mut self) {
        let name = self.name("l");
        self.line(format!("let {name};"));
        let c = self.cond(2);
        self.line(format!("if {c} {{"));
        let before = self.vars.clone();
        let mut bound: f64 = 0.0;
        let mut states = Vec::new();
        for arm in 0..2 {
            if arm == 1 {
                self.vars = before.clone();
                self.line("} else {".to_string());
            }
            let mut e_bound = 0.0;
            states.push(self.branch(|g| {
                if g.rng.chance(0.4) {
                    g.block(1);
                }
                let x = g.expr(3);
                let e = g.squash(x, VAR_CAP);
                e_bound = e.bound;
                // written before the scope closes: closing it may fold the branch's unread
                // values into a variable `e` reads, which would change it after `e`'s bound
                g.line(format!("{name} = {};", e.code));
            }));
            bound = bound.max(e_bound);
        }
        self.line("}".to_string());
        self.vars = before;
        self.merge(&states);
        self.declare(name, Kind::Scalar, bound, false);
    }

    fn stmt_block_let(&mut self) {
        let name = self.name("b");
        if self.rng.chance(0.5) {
            // let (p, q) = (e1, e2);
            let other = self.name("b");
            let a = self.expr(2);
            let a = self.squash(a, VAR_CAP);
            let b = self.expr(2);
            let b = self.squash(b, VAR_CAP);
            self.line(format!("let ({name}, {other}) = ({}, {});", a.code, b.code));
            self.declare(name, Kind::Scalar, a.bound, false);
            self.declare(other, Kind::Scalar, b.bound, false);
            return;
        }
        self.line(format!("let {name} = {{"));
        self.indent += 1;
        self.push_scope();
        let inner = self.name("c");
        let e = self.expr(2);
        let e = self.squash(e, VAR_CAP);
        self.line(format!("let {inner} = {};", e.code));
        self.declare(inner, Kind::Scalar, e.bound, false);
        let r = self.expr(2);
        // the block's value must read the inner variable
        let inner_read = self.vars.last().unwrap().read;
        let r = if inner_read {
            r
        } else {
            let v = self.read_var(self.vars.len() - 1);
            self.combine(v, r)
        };
        let r = self.squash(r, VAR_CAP);
        self.line(r.code.clone());
        self.finish_vars(*self.scopes.last().unwrap());
        let start = *self.scopes.last().unwrap();
        self.vars.truncate(start);
        self.scopes.pop();
        self.depth -= 1;
        self.indent -= 1;
        self.line("};".to_string());
        self.declare(name, Kind::Scalar, r.bound, false);
    }
}
