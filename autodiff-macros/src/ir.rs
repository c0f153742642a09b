//! The structured SSA intermediate representation that every stage of the macro works on.
//!
//! Values are defined exactly once. Control flow is structured, as in MLIR's `scf` dialect:
//! an `if` or `match` instruction owns one [`Block`] per arm, every arm ends by yielding the
//! same number of values, and those become the instruction's results (the structured form
//! of block parameters / phi nodes). Lowering builds the SSA form directly from the syntax
//! tree by tracking the current value of each variable, as in Braun et al., "Simple and
//! Efficient Construction of Static Single Assignment Form" (CC 2013); with structured
//! control flow no incomplete phis arise.
//!
//! Entities live in arenas inside [`Function`] and are named by `u32` newtypes that print as
//! `v3`, `inst7`, `block1`.

use proc_macro2::{Span, TokenStream};
use std::fmt;

use crate::primitives::Primitive;

macro_rules! entity {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(pub u32);

        impl $name {
            /// The index of this entity in its arena.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

entity!(
    /// An SSA value: a parameter, an instruction result, or a constant.
    Value,
    "v"
);
entity!(
    /// An instruction in [`Function::insts`].
    Inst,
    "inst"
);
entity!(
    /// A straight-line sequence of instructions ending in a yield.
    Block,
    "block"
);

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// The n-th parameter of the function.
    Param(usize),
    /// The n-th result of an instruction.
    Result(Inst, usize),
    /// The n-th parameter of a loop body block: the induction variable or a loop-carried
    /// variable's value at the start of an iteration.
    BlockParam(Block, usize),
}

/// Per-value side table: definition, the user's span and name for errors and readable code.
#[derive(Clone, Debug)]
pub struct ValueData {
    /// Where the value is defined.
    pub def: ValueDef,
    /// The source span of the expression or binding that produced it.
    pub span: Span,
    /// The user's variable name, when the value was bound to one; used for readable
    /// generated names.
    pub name: Option<String>,
}

/// Binary operators on values. Arithmetic ones are differentiable; the rest are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a % b`
    Rem,
    /// `a & b`, `a | b`, `a ^ b`, `a << b`, `a >> b` (integers and bools only)
    Bit(BitOp),
    /// `a == b`, `a < b`, ...; yields a bool
    Compare(CompareOp),
}

/// Bitwise operators, kept only to reproduce integer code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-a` (differentiable)
    Neg,
    /// `!a` (bools and integers)
    Not,
}

/// How a counted `for` loop walks its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLoop {
    /// `a..=b` rather than `a..b`.
    pub inclusive: bool,
    /// `(a..b).rev()`.
    pub reverse: bool,
    /// `.step_by(k)`: a step operand follows the bounds.
    pub stepped: bool,
    /// The body may leave early (`break`, `return`): it yields a keep-going flag first.
    pub breaks: bool,
}

/// One step of a [`Opcode::Place`] path.
#[derive(Clone, Debug)]
pub enum PlaceStep {
    /// `.name` or `.0`.
    Field(syn::Member),
    /// `[i]`, with the index in the given operand.
    Index(usize),
}

/// An assertion or print macro of [`Opcode::Assert`], with what its arguments need to be
/// written back.
#[derive(Clone, Debug)]
pub struct AssertMacro {
    /// The macro's path as written (`assert_eq`, `debug_assert`).
    pub path: syn::Path,
    /// How many leading arguments are the checked values: 1, or 2 for the `_eq`/`_ne` forms, 0
    /// for the print macros.
    pub checked: usize,
    /// The message's format string, if one is given.
    pub message: Option<syn::LitStr>,
    /// One entry per message argument: `None` for a positional one, the name for one given
    /// by name (`x = e`) or captured by the format string (`{x}`), which is passed by name.
    pub names: Vec<Option<syn::Ident>>,
    /// `panic!`, `unreachable!`, `todo!`, `unimplemented!`: control does not come back. Its
    /// results, if any, stand for the values of the branch it ends (`!` takes any type),
    /// never computed.
    pub diverges: bool,
}

/// Which copy method made a `Copy` instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// `v.clone()`
    Clone,
    /// `x.to_vec()`
    ToVec,
}

/// The closed set of instruction kinds.
#[derive(Clone, Debug)]
pub enum Opcode {
    /// A literal or constant expression referring to no local variable; rematerialised in
    /// the backward pass instead of being saved. The tokens are emitted as written.
    Const(TokenStream),
    /// A parameter of the function (the only instructions with no operands besides `Const`).
    Binary(BinaryOp),
    /// A unary operator.
    Unary(UnaryOp),
    /// `a as ty`.
    Cast(syn::Type),
    /// A primitive with a derivative rule (or a zero derivative) from the table in
    /// [`crate::primitives`].
    Primitive(&'static Primitive),
    /// A call `path(args)`. If an argument is active it must be another `#[differentiate]`
    /// function; otherwise it is an ordinary constant computation.
    Call(syn::ExprPath),
    /// A method call `recv.name(args)` with no entry in the primitive table.
    Method(syn::Ident, Option<syn::AngleBracketedGenericArguments>),
    /// A field or element path into a parameter set, `p.layers[i].w`: args `[p, i, ...]`
    /// (the root, then one index value per `Index` step). Never bound to a variable: the
    /// forward pass writes the path where it is used, and the backward pass reads it from
    /// the saved root; its cotangent is added into the root's cotangent at the same path.
    Place(Vec<PlaceStep>),
    /// `(i, j)`: a tuple of indices, as in `m[(i, j)]`.
    Tuple,
    /// `State { x: a, v: b }` passed to a call: the struct built from its fields' values
    /// (args, in the order of `fields`). Its pullback hands each field of the struct's
    /// cotangent to that field's value.
    MakeStruct(syn::Path, Vec<syn::Ident>),
    /// `(a, b)` passed to a call: the tuple built from its elements' values (args, in order).
    /// Its pullback hands element `k` of the tuple's cotangent to argument `k`.
    MakeTuple,
    /// `Vector3::new(x, y, z)`, `Matrix2::new(a, b, c, d)`: a fixed-size nalgebra vector or
    /// matrix from its elements, in row-major order (as nalgebra's `new` takes them); the
    /// path is the type's (`Vector3`, `Vector3::<f64>`). Its pullback hands element `k` of
    /// the cotangent to argument `k`.
    MatrixNew(syn::Path),
    /// `DMatrix::from_row_slice(r, c, &x[..])`, `DVector::from_vec(v)`,
    /// `Matrix2x3::from_column_slice(&x)`: a nalgebra matrix or vector filled from a slice or
    /// `Vec`, its last argument (the integers before it are a dynamic size). `ty` is the
    /// type's path, `function` the constructor's name, `row_major` the order in which it
    /// reads the data. Its pullback hands the data the cotangent's elements in that order.
    MatrixFrom {
        ty: syn::Path,
        function: syn::Ident,
        row_major: bool,
    },
    /// The shape of a tensor or matrix as a `Vec<usize>`, to check output cotangents.
    ShapeOf,
    /// `&a`: a borrow; for derivatives the identity.
    Ref,
    /// `*a` of a borrowed parameter or borrow; for derivatives the identity.
    Deref,
    /// `a[i]`.
    Index,
    /// `a[i] = v` as a new version of the array: args `[a, i, v]`.
    IndexSet,
    /// `a[i] += v` (`a[i] -= v` when `subtract`) as a new version of the array: args
    /// `[a, i, v]`. Kept apart from a read, an add and a write because its pullback needs
    /// neither the old element nor a write to the array's cotangent: `v̄ = ±b̄[i]`, `ā = b̄`.
    IndexAdd {
        /// `-=` rather than `+=`.
        subtract: bool,
    },
    /// `a.len()`.
    Len,
    /// `a.push(v)` as a new version of the array: args `[a, v, a.len()]`.
    Push,
    /// `a.swap(i, j)` as a new version of the array.
    Swap,
    /// `vec![v; n]`: args `[v, n]`.
    VecFill,
    /// `[v; N]`: args `[v]`, the length expression kept as written.
    ArrayFill(TokenStream),
    /// `vec![a, b, ...]` (`vec: true`) or `[a, b, ...]`.
    ArrayLiteral {
        /// A `Vec` rather than a fixed-size array.
        vec: bool,
    },
    /// `Vec::new()` (no args) or `Vec::with_capacity(n)`.
    VecNew,
    /// `v.clone()`, `x.to_vec()`: a copy, the identity for derivatives.
    Copy(CopyKind),
    /// `&a[start..end]`, `a[start..].iter()`: args `[a, start, end]`, a copy of the range as
    /// a `Vec` (the open ends of `a[..end]`, `a[start..]` are `0` and `a.len()`).
    Slice,
    /// `m.map(|v| body)` on a nalgebra matrix: args `[m]`, results `[y, pullbacks]`. The
    /// closure is [`Function::closures`]`[k]`, differentiated as a scalar function of its own;
    /// `pullbacks` holds its pullback at every element, for the backward pass.
    MapElementwise(usize),
    /// `for i in start..end { body }`: args `[start, end, step?, inits...]`; the body's
    /// parameters are `[i, carried...]` and it yields `[keep_going?, carried...]`; the
    /// results are the carried variables after the loop.
    ForRange(RangeLoop),
    /// `while`/`loop`: args `[inits...]`; the body's parameters are the carried variables and
    /// it yields `[keep_going, carried...]`; the results are the carried variables after it.
    While,
    /// `assert!(c, "...", args)`, `assert_eq!(a, b)`, `assert_ne!` and their `debug_` forms,
    /// and `println!("...", args)`, `print!`, `eprintln!`, `eprint!`: args are the checked
    /// values, then the message's arguments; no results. It runs where the function's own
    /// statements run (the forward pass), and no derivative passes through it.
    Assert(AssertMacro),
    /// `if arg0 { arms[0] } else { arms[1] }`.
    If,
    /// `match arg0 { patterns[i] => arms[i], ... }`.
    Match(Vec<syn::Pat>),
}

/// An instruction: opcode, operands, results, and (for `if`/`match`) its arms.
#[derive(Clone, Debug)]
pub struct InstData {
    /// What the instruction does.
    pub opcode: Opcode,
    /// Operand values.
    pub args: Vec<Value>,
    /// Result values, defined by this instruction.
    pub results: Vec<Value>,
    /// The arms of structured control flow, in source order.
    pub arms: Vec<Block>,
    /// The source span of the expression, for errors.
    pub span: Span,
}

/// A block: parameters (loop bodies only), instructions in order, then the values it
/// yields to its parent (for the function's entry block: the returned values).
#[derive(Clone, Debug, Default)]
pub struct BlockData {
    /// Values bound on entry to each run of the block (loop bodies).
    pub params: Vec<Value>,
    /// Instructions in execution order.
    pub insts: Vec<Inst>,
    /// Values yielded at the end.
    pub yields: Vec<Value>,
}

/// How a parameter takes part in differentiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamRole {
    /// Its type can carry a derivative (a float, or a generic type parameter).
    Float,
    /// An integer, bool, char or string: never active.
    Constant,
}

/// A function parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// The parameter's name.
    pub name: syn::Ident,
    /// Its declared type.
    pub ty: syn::Type,
    /// Whether it can carry a derivative.
    pub role: ParamRole,
    /// The SSA value standing for it.
    pub value: Value,
}

/// A function in SSA form.
#[derive(Clone, Debug)]
pub struct Function {
    /// The function's name.
    pub name: syn::Ident,
    /// Parameters in declaration order.
    pub params: Vec<Param>,
    /// The block that runs first; it yields the return value(s).
    pub entry: Block,
    /// Value arena.
    pub values: Vec<ValueData>,
    /// Instruction arena.
    pub insts: Vec<InstData>,
    /// Block arena.
    pub blocks: Vec<BlockData>,
    /// Per parameter: for arrays, the value of its length, computed on entry, which sizes the
    /// parameter's gradient.
    pub param_lens: Vec<Option<Value>>,
    /// For a `Vec` output: its length, computed at the end, against which `backward` checks
    /// the length of the cotangent it is given.
    pub output_len: Option<Value>,
    /// For a tensor or matrix output: its shape, against which `backward` checks the shape of
    /// the cotangent it is given.
    pub output_shape: Option<Value>,
    /// Per parameter: whether it is a parameter set (a `#[derive(Differentiable)]` struct),
    /// whose cotangent starts as `zero_like` of the parameter.
    pub param_structs: Vec<bool>,
    /// The closures of [`Opcode::MapElementwise`] instructions.
    pub closures: Vec<MapClosure>,
}

/// An element-wise closure, `|v| body`, lifted out as a scalar function of its own (it may
/// not capture anything) so that the same pipeline differentiates it.
#[derive(Clone, Debug)]
pub struct MapClosure {
    /// The closure as written, emitted where no derivative is needed.
    pub closure: syn::ExprClosure,
    /// The lifted function's name, `__autodiff_map_<f>_<k>`.
    pub function: syn::Ident,
    /// Its parameter.
    pub param: syn::Ident,
    /// The parameter's type if the closure declares it.
    pub param_ty: Option<syn::Type>,
    /// The variables of the enclosing function the closure reads, passed to the lifted
    /// function after the element (the instruction's arguments after the matrix).
    pub captures: Vec<syn::Ident>,
    /// The type of the per-element pullbacks, `Vec<…Pullback<generics>>`.
    pub pullbacks_ty: syn::Type,
    /// When the lifted function's pullback holds nothing but its element and its result (or
    /// one of them; `|v| v.tanh()` keeps `tanh v`), the names of those fields: the backward
    /// pass builds each element's pullback from the map's argument and result, and the forward
    /// pass keeps no pullback per element. Set by `expand` before the analysis.
    pub rebuilt_from: Option<RebuiltFrom>,
}

/// The fields of a lifted closure's pullback, filled from the map's argument (`element`)
/// and result (`result`); at least one of them is present.
#[derive(Clone, Debug)]
pub struct RebuiltFrom {
    /// The field holding the element the closure was applied to.
    pub element: Option<syn::Ident>,
    /// The field holding the closure's result.
    pub result: Option<syn::Ident>,
}

impl Function {
    /// An empty function with no parameters and an empty entry block.
    pub fn new(name: syn::Ident) -> Self {
        Function {
            name,
            params: Vec::new(),
            entry: Block(0),
            values: Vec::new(),
            insts: Vec::new(),
            blocks: vec![BlockData::default()],
            param_lens: Vec::new(),
            output_len: None,
            output_shape: None,
            param_structs: Vec::new(),
            closures: Vec::new(),
        }
    }

    /// The data of a value.
    pub fn value(&self, v: Value) -> &ValueData {
        &self.values[v.index()]
    }

    /// The data of an instruction.
    pub fn inst(&self, i: Inst) -> &InstData {
        &self.insts[i.index()]
    }

    /// The data of a block.
    pub fn block(&self, b: Block) -> &BlockData {
        &self.blocks[b.index()]
    }

    /// Adds a parameter and returns its value.
    pub fn add_param(&mut self, name: syn::Ident, ty: syn::Type, role: ParamRole) -> Value {
        let value = Value(self.values.len() as u32);
        self.values.push(ValueData {
            def: ValueDef::Param(self.params.len()),
            span: name.span(),
            name: Some(name.to_string()),
        });
        self.params.push(Param {
            name,
            ty,
            role,
            value,
        });
        value
    }

    /// Creates a new empty block (not yet attached to an instruction).
    pub fn create_block(&mut self) -> Block {
        self.blocks.push(BlockData::default());
        Block(self.blocks.len() as u32 - 1)
    }

    /// Adds a parameter to a (loop body) block.
    pub fn add_block_param(&mut self, block: Block, span: Span) -> Value {
        let index = self.blocks[block.index()].params.len();
        self.values.push(ValueData {
            def: ValueDef::BlockParam(block, index),
            span,
            name: None,
        });
        let value = Value(self.values.len() as u32 - 1);
        self.blocks[block.index()].params.push(value);
        value
    }

    /// Adds a fresh result to an existing instruction (a loop or branch that carries one more
    /// value).
    pub fn add_result(&mut self, inst: Inst) -> Value {
        let index = self.insts[inst.index()].results.len();
        let span = self.insts[inst.index()].span;
        self.values.push(ValueData {
            def: ValueDef::Result(inst, index),
            span,
            name: None,
        });
        let value = Value(self.values.len() as u32 - 1);
        self.insts[inst.index()].results.push(value);
        value
    }

    /// Appends an instruction with `result_count` fresh results to `block`.
    pub fn append(
        &mut self,
        block: Block,
        opcode: Opcode,
        args: Vec<Value>,
        arms: Vec<Block>,
        result_count: usize,
        span: Span,
    ) -> Inst {
        let inst = self.create_inst(opcode, args, arms, result_count, span);
        self.blocks[block.index()].insts.push(inst);
        inst
    }

    /// Creates an instruction with `result_count` fresh results, not yet placed in a block.
    pub fn create_inst(
        &mut self,
        opcode: Opcode,
        args: Vec<Value>,
        arms: Vec<Block>,
        result_count: usize,
        span: Span,
    ) -> Inst {
        let inst = Inst(self.insts.len() as u32);
        self.insts.push(InstData {
            opcode,
            args,
            results: Vec::new(),
            arms,
            span,
        });
        for _ in 0..result_count {
            self.add_result(inst);
        }
        inst
    }

    /// Adds the values defined in `block` and the blocks nested in it to `out`.
    pub fn defined_in(&self, block: Block, out: &mut std::collections::HashSet<Value>) {
        out.extend(self.block(block).params.iter().copied());
        for &inst in &self.block(block).insts {
            out.extend(self.inst(inst).results.iter().copied());
            for &arm in &self.inst(inst).arms {
                self.defined_in(arm, out);
            }
        }
    }

    /// Every instruction, arms included, in execution order (pre-order).
    pub fn walk_insts(&self, block: Block, visit: &mut dyn FnMut(Inst)) {
        for &inst in &self.block(block).insts {
            visit(inst);
            for &arm in &self.inst(inst).arms {
                self.walk_insts(arm, visit);
            }
        }
    }

    /// Whether slice `inst` borrows its range (`&x[a..b]`) instead of copying it: its array
    /// lives as long as the function, a borrowed parameter (through references) or a
    /// borrowed slice of one. A reference to such a slice is the slice itself.
    pub fn borrows_range(&self, inst: Inst) -> bool {
        if !matches!(self.inst(inst).opcode, Opcode::Slice) {
            return false;
        }
        let mut root = self.inst(inst).args[0];
        loop {
            match self.value(root).def {
                ValueDef::Param(i) => {
                    return matches!(self.params[i].ty, syn::Type::Reference(_));
                }
                ValueDef::Result(def, _) => match self.inst(def).opcode {
                    Opcode::Ref => root = self.inst(def).args[0],
                    Opcode::Slice => return self.borrows_range(def),
                    _ => return false,
                },
                ValueDef::BlockParam(..) => return false,
            }
        }
    }

    /// The instruction defining `v`, if it is not a parameter.
    pub fn def_inst(&self, v: Value) -> Option<Inst> {
        match self.value(v).def {
            ValueDef::Result(inst, _) => Some(inst),
            ValueDef::Param(_) | ValueDef::BlockParam(..) => None,
        }
    }

    /// For a loop: how many leading operands are not initial values of carried variables,
    /// and whether its body yields a keep-going flag first and takes an index parameter.
    pub fn loop_layout(&self, inst: Inst) -> Option<LoopLayout> {
        match &self.inst(inst).opcode {
            Opcode::ForRange(range) => Some(LoopLayout {
                fixed_args: 2 + usize::from(range.stepped),
                flag: range.breaks,
                index_param: true,
            }),
            Opcode::While => Some(LoopLayout {
                fixed_args: 0,
                flag: true,
                index_param: false,
            }),
            _ => None,
        }
    }
}

impl Opcode {
    /// The mnemonic used in the text form.
    pub fn mnemonic(&self) -> String {
        match self {
            Opcode::Const(tokens) => format!("const {}", tokens_text(tokens)),
            Opcode::Binary(op) => match op {
                BinaryOp::Add => "add".into(),
                BinaryOp::Sub => "sub".into(),
                BinaryOp::Mul => "mul".into(),
                BinaryOp::Div => "div".into(),
                BinaryOp::Rem => "rem".into(),
                BinaryOp::Bit(bit) => format!("{bit:?}").to_lowercase(),
                BinaryOp::Compare(cmp) => format!("cmp.{}", format!("{cmp:?}").to_lowercase()),
            },
            Opcode::Unary(UnaryOp::Neg) => "neg".into(),
            Opcode::Unary(UnaryOp::Not) => "not".into(),
            Opcode::Cast(ty) => format!("cast.{}", tokens_text(&quote::quote!(#ty))),
            Opcode::Primitive(p) => p.name.to_string(),
            Opcode::Call(path) => format!("call {}", tokens_text(&quote::quote!(#path))),
            Opcode::Method(name, _) => format!("method {name}"),
            Opcode::Place(steps) => {
                let path: String = steps
                    .iter()
                    .map(|s| match s {
                        PlaceStep::Field(m) => format!(".{}", tokens_text(&quote::quote!(#m))),
                        PlaceStep::Index(i) => format!("[#{i}]"),
                    })
                    .collect();
                format!("place{path}")
            }
            Opcode::Tuple => "tuple".into(),
            Opcode::MakeTuple => "make_tuple".into(),
            Opcode::MakeStruct(path, fields) => {
                let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                format!(
                    "struct {} {{ {} }}",
                    tokens_text(&quote::quote!(#path)),
                    fields.join(", ")
                )
            }
            Opcode::MatrixNew(path) => format!("{}::new", tokens_text(&quote::quote!(#path))),
            Opcode::MatrixFrom { ty, function, .. } => {
                format!("{}::{function}", tokens_text(&quote::quote!(#ty)))
            }
            Opcode::ShapeOf => "shape_of".into(),
            Opcode::Ref => "ref".into(),
            Opcode::Deref => "deref".into(),
            Opcode::Index => "index".into(),
            Opcode::IndexSet => "index_set".into(),
            Opcode::IndexAdd { subtract: false } => "index_add".into(),
            Opcode::IndexAdd { subtract: true } => "index_sub".into(),
            Opcode::Len => "len".into(),
            Opcode::Push => "push".into(),
            Opcode::Swap => "swap".into(),
            Opcode::VecFill => "vec_fill".into(),
            Opcode::ArrayFill(len) => format!("array_fill.{}", tokens_text(len)),
            Opcode::ArrayLiteral { vec: true } => "vec".into(),
            Opcode::ArrayLiteral { vec: false } => "array".into(),
            Opcode::VecNew => "vec_new".into(),
            Opcode::Copy(CopyKind::Clone) => "clone".into(),
            Opcode::Copy(CopyKind::ToVec) => "to_vec".into(),
            Opcode::Slice => "slice".into(),
            Opcode::MapElementwise(k) => format!("map #{k}"),
            Opcode::Assert(a) => {
                let path = &a.path;
                format!("{}!", tokens_text(&quote::quote!(#path)))
            }
            Opcode::ForRange(r) => format!(
                "for{}{}{}{}",
                if r.inclusive { ".inclusive" } else { "" },
                if r.reverse { ".rev" } else { "" },
                if r.stepped { ".step" } else { "" },
                if r.breaks { ".breaks" } else { "" }
            ),
            Opcode::While => "while".into(),
            Opcode::If => "if".into(),
            Opcode::Match(_) => "match".into(),
        }
    }
}

/// The shape of a loop instruction; see [`Function::loop_layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopLayout {
    /// Operands before the carried variables' initial values.
    pub fixed_args: usize,
    /// Whether the body yields a keep-going flag before the carried values.
    pub flag: bool,
    /// Whether the body's first parameter is the loop index.
    pub index_param: bool,
}

/// Token text without the spaces `proc_macro2` puts around punctuation, for stable snapshots.
pub fn tokens_text(tokens: &TokenStream) -> String {
    let text = tokens.to_string();
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let tight = |ch: Option<char>| {
                matches!(
                    ch,
                    Some(':' | '.' | '(' | ')' | '<' | '>' | '[' | ']' | '&' | ',')
                )
            };
            if tight(prev) && prev != Some(',') || tight(next) && next != Some('&') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Annotations a pass can attach to the text form of a function.
pub trait Annotate {
    /// Text appended to the line of `inst` (after `;`), or None.
    fn inst_note(&self, _func: &Function, _inst: Inst) -> Option<String> {
        None
    }
    /// Text appended to the header line of the function, or None.
    fn header_note(&self, _func: &Function) -> Option<String> {
        None
    }
}

/// No annotations: the plain text form.
#[cfg(test)]
pub struct Plain;
#[cfg(test)]
impl Annotate for Plain {}

/// Prints the text form, e.g. `v3 = mul v1, v2`, with optional per-instruction notes.
pub fn print(func: &Function, notes: &dyn Annotate) -> String {
    let mut out = String::new();
    let params: Vec<String> = func
        .params
        .iter()
        .map(|p| {
            let ty = &p.ty;
            let role = match p.role {
                ParamRole::Float => "",
                ParamRole::Constant => " const",
            };
            format!("{}: {}{}", p.value, tokens_text(&quote::quote!(#ty)), role)
        })
        .collect();
    out.push_str(&format!("fn {}({})", func.name, params.join(", ")));
    if let Some(note) = notes.header_note(func) {
        out.push_str(&format!(" ; {note}"));
    }
    out.push('\n');
    print_block(func, func.entry, 1, notes, &mut out);
    out
}

fn print_block(
    func: &Function,
    block: Block,
    depth: usize,
    notes: &dyn Annotate,
    out: &mut String,
) {
    let indent = "    ".repeat(depth);
    let params = &func.block(block).params;
    if params.is_empty() {
        out.push_str(&format!("{}{}:\n", "    ".repeat(depth - 1), block));
    } else {
        out.push_str(&format!(
            "{}{}({}):\n",
            "    ".repeat(depth - 1),
            block,
            list(params)
        ));
    }
    for &inst in &func.block(block).insts {
        let data = func.inst(inst);
        out.push_str(&indent);
        if !data.results.is_empty() {
            out.push_str(&list(&data.results));
            out.push_str(" = ");
        }
        out.push_str(&data.opcode.mnemonic());
        if !data.args.is_empty() {
            out.push(' ');
            out.push_str(&list(&data.args));
        }
        if let Some(note) = notes.inst_note(func, inst) {
            out.push_str(&format!(" ; {note}"));
        }
        out.push('\n');
        for (i, &arm) in data.arms.iter().enumerate() {
            let label = match &data.opcode {
                Opcode::If => if i == 0 { "then" } else { "else" }.to_string(),
                Opcode::Match(pats) => {
                    let pat = &pats[i];
                    format!("arm {}", tokens_text(&quote::quote!(#pat)))
                }
                Opcode::ForRange(_) | Opcode::While => "body".to_string(),
                _ => String::new(),
            };
            out.push_str(&format!("{indent}{label}\n"));
            print_block(func, arm, depth + 2, notes, out);
        }
    }
    out.push_str(&format!(
        "{indent}yield {}\n",
        list(&func.block(block).yields)
    ));
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values visible at a point of the verifier's walk, with constant-time membership.
struct Scope {
    stack: Vec<Value>,
    member: Vec<bool>,
}

impl Scope {
    fn push(&mut self, v: Value) {
        self.stack.push(v);
        self.member[v.index()] = true;
    }

    fn contains(&self, v: &Value) -> bool {
        self.member[v.index()]
    }

    fn truncate(&mut self, len: usize) {
        for v in self.stack.drain(len..) {
            self.member[v.index()] = false;
        }
    }
}

/// Checks the SSA invariants: every value is defined once, before its uses, in the same
/// block or an enclosing one; every arm of an instruction yields as many values as the
/// instruction has results; operand counts fit the opcode.
pub fn verify(func: &Function) -> Result<(), String> {
    let mut defined = vec![false; func.values.len()];
    let mut in_scope = Scope {
        stack: Vec::new(),
        member: vec![false; func.values.len()],
    };
    for p in &func.params {
        if defined[p.value.index()] {
            return Err(format!("{} defined twice", p.value));
        }
        defined[p.value.index()] = true;
        in_scope.push(p.value);
    }
    let mut seen_blocks = vec![false; func.blocks.len()];
    verify_block(
        func,
        func.entry,
        &mut defined,
        &mut in_scope,
        &mut seen_blocks,
    )
}

fn verify_block(
    func: &Function,
    block: Block,
    defined: &mut [bool],
    in_scope: &mut Scope,
    seen_blocks: &mut [bool],
) -> Result<(), String> {
    if std::mem::replace(&mut seen_blocks[block.index()], true) {
        return Err(format!("{block} is reachable twice"));
    }
    let scope_start = in_scope.stack.len();
    for (i, &p) in func.block(block).params.iter().enumerate() {
        if std::mem::replace(&mut defined[p.index()], true) {
            return Err(format!("{p} defined twice"));
        }
        if func.value(p).def != ValueDef::BlockParam(block, i) {
            return Err(format!(
                "{p} does not record its definition as a parameter of {block}"
            ));
        }
        in_scope.push(p);
    }
    for &inst in &func.block(block).insts {
        let data = func.inst(inst);
        for &arg in &data.args {
            if !in_scope.contains(&arg) {
                return Err(format!("{inst} uses {arg}, which is not in scope"));
            }
        }
        let expected_args = match &data.opcode {
            Opcode::Const(_) => Some(0),
            Opcode::Binary(_) => Some(2),
            Opcode::Unary(_)
            | Opcode::Cast(_)
            | Opcode::If
            | Opcode::Match(_)
            | Opcode::Ref
            | Opcode::Deref
            | Opcode::Len
            | Opcode::ArrayFill(_)
            | Opcode::Copy(_) => Some(1),
            // the matrix, then the variables the closure reads
            Opcode::MapElementwise(k) => func.closures.get(*k).map(|c| 1 + c.captures.len()),
            Opcode::Index | Opcode::VecFill => Some(2),
            Opcode::IndexSet
            | Opcode::IndexAdd { .. }
            | Opcode::Push
            | Opcode::Swap
            | Opcode::Slice => Some(3),
            Opcode::Primitive(p) => Some(p.arity),
            Opcode::MakeStruct(_, fields) => Some(fields.len()),
            _ => None,
        };
        if let Some(n) = expected_args {
            if data.args.len() != n {
                return Err(format!(
                    "{inst} has {} operands, expected {n}",
                    data.args.len()
                ));
            }
        }
        match &data.opcode {
            Opcode::If if data.arms.len() != 2 => {
                return Err(format!("{inst}: if needs two arms"));
            }
            Opcode::Match(pats) if pats.len() != data.arms.len() => {
                return Err(format!("{inst}: match patterns and arms differ in number"));
            }
            Opcode::MapElementwise(k) if *k >= func.closures.len() || data.results.len() != 2 => {
                return Err(format!("{inst}: map needs a known closure and two results"));
            }
            Opcode::Assert(a)
                if (!a.diverges && !data.results.is_empty())
                    || data.args.len() != a.checked + a.names.len()
                    || (a.message.is_none() && !a.names.is_empty()) =>
            {
                return Err(format!(
                    "{inst}: an assertion has no results (unless it diverges), and one operand per checked value and message argument"
                ));
            }
            _ => {}
        }
        if let Some(layout) = func.loop_layout(inst) {
            let carried = data
                .args
                .len()
                .checked_sub(layout.fixed_args)
                .ok_or(format!("{inst} lacks loop bounds"))?;
            let body = data
                .arms
                .first()
                .copied()
                .ok_or(format!("{inst} has no body"))?;
            if data.arms.len() != 1 || data.results.len() != carried {
                return Err(format!(
                    "{inst}: a loop has one body and one result per carried value"
                ));
            }
            if func.block(body).params.len() != carried + usize::from(layout.index_param) {
                return Err(format!(
                    "{body} has the wrong number of parameters for {inst}"
                ));
            }
            verify_block(func, body, defined, in_scope, seen_blocks)?;
            if func.block(body).yields.len() != carried + usize::from(layout.flag) {
                return Err(format!(
                    "{body} yields the wrong number of values for {inst}"
                ));
            }
        }
        for &arm in data
            .arms
            .iter()
            .filter(|_| func.loop_layout(inst).is_none())
        {
            verify_block(func, arm, defined, in_scope, seen_blocks)?;
            if func.block(arm).yields.len() != data.results.len() {
                return Err(format!(
                    "{arm} yields {} values but {inst} has {} results",
                    func.block(arm).yields.len(),
                    data.results.len()
                ));
            }
        }
        for (i, &r) in data.results.iter().enumerate() {
            if std::mem::replace(&mut defined[r.index()], true) {
                return Err(format!("{r} defined twice"));
            }
            if func.value(r).def != ValueDef::Result(inst, i) {
                return Err(format!("{r} does not record its definition by {inst}"));
            }
            in_scope.push(r);
        }
    }
    for &y in &func.block(block).yields {
        if !in_scope.contains(&y) {
            return Err(format!("{block} yields {y}, which is not in scope"));
        }
    }
    in_scope.truncate(scope_start);
    Ok(())
}
