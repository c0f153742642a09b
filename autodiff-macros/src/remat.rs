//! Rematerialisation on the IR: an element of an array that a loop filled is read as the
//! expression that filled it.
//!
//! ```text
//! for id in 0..d { xc[id] = x[o + id] - m[p + id]; }
//! for i in 0..d { ... xc[i] ... }
//! ```
//! reads, in the IR, `x[o + i] - m[p + i]` in place of `xc[i]`. The backward pass then
//! recomputes the element from values that never change instead of saving it (the array is
//! a scratch buffer that later code overwrites), and the element's cotangent flows straight
//! into `x̄` and `m̄` instead of through a cotangent array of `xc` that has to be zeroed and
//! checked; when every read is rewritten, `xc` takes no part in the derivative at all. Only
//! arrays that change or move after the filling loop (a scratch buffer carried by a loop
//! around it) are rewritten: the elements of one that stays as filled are still there for
//! the backward pass, and reading one costs less than evaluating its expression.
//!
//! The rewrite keeps the program's values exactly:
//! - the filling loop runs over a plain range to its end (no `break`, `return` or
//!   `step_by`), and its only use of the array is one unconditional `a[i] = v` at its
//!   induction variable, so after it `a[j] == v(j)` for every `j` of the range;
//! - the read's index is the induction variable of a loop around the read whose range lies
//!   inside the filling loop's range, and the read sees the array the filling loop yields;
//! - `v` is cheap arithmetic (`+ - *`, negation, casts, constants, `T::from(c).unwrap()`) on
//!   the induction variable, values defined before the loop, and elements of arrays that
//!   nothing ever modifies or moves (or parameters behind a shared reference), so it
//!   evaluates to the same number at the read. Its reads of those arrays are
//!   the ones the filling loop performed at the same index, so no new panic can arise.

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenTree;

use crate::ir::{BinaryOp, Block, Function, Inst, Opcode, UnaryOp, Value, ValueDef};

/// At most this many arithmetic instructions and element reads are copied for one read, so
/// that a long expression stays one saved value instead of being evaluated again at every
/// read (constants and conversions are free at run time and not counted).
const MAX_COPIED: usize = 8;

/// At most this many instructions of any kind: a bound on the work of the pass.
const MAX_EXPRESSION: usize = 32;

/// Rewrites every eligible read of a filled array.
pub fn rematerialise_filled_elements(func: &mut Function) {
    let places = Places::of(func);
    let mut fills = Vec::new();
    func.walk_insts(func.entry, &mut |inst| {
        if matches!(func.inst(inst).opcode, Opcode::ForRange(_)) {
            fills.push(inst);
        }
    });
    for fill in fills {
        let carried = func.inst(fill).results.len();
        for slot in 0..carried {
            // an array that stays as filled keeps its elements for the backward pass anyway,
            // where reading one is cheaper than evaluating its expression again
            if let Some(filled) = filled_array(func, fill, slot) {
                if !never_changes(func, filled.array) {
                    rewrite_reads(func, &places, &filled);
                }
            }
        }
    }
}

/// Where every instruction sits: its block, and the instruction owning each block.
struct Places {
    block_of: HashMap<Inst, Block>,
    owner: HashMap<Block, Inst>,
}

impl Places {
    fn of(func: &Function) -> Self {
        let mut places = Places {
            block_of: HashMap::new(),
            owner: HashMap::new(),
        };
        places.visit(func, func.entry);
        places
    }

    fn visit(&mut self, func: &Function, block: Block) {
        for &inst in &func.block(block).insts {
            self.block_of.insert(inst, block);
            for &arm in &func.inst(inst).arms {
                self.owner.insert(arm, inst);
                self.visit(func, arm);
            }
        }
    }

    /// The instructions whose arms contain `inst`, innermost first.
    fn enclosing(&self, inst: Inst) -> Vec<Inst> {
        let mut out = Vec::new();
        let mut current = inst;
        while let Some(owner) = self
            .block_of
            .get(&current)
            .and_then(|block| self.owner.get(block))
        {
            out.push(*owner);
            current = *owner;
        }
        out
    }
}

/// A loop slot that fills an array element by element.
struct Filled {
    /// The filling loop.
    fill: Inst,
    /// The array after the loop.
    array: Value,
    /// The loop's induction variable.
    induction: Value,
    /// The element written at the induction variable.
    element: Value,
    /// The instructions of the loop body that compute the element, in execution order.
    expression: Vec<Inst>,
}

fn filled_array(func: &Function, fill: Inst, slot: usize) -> Option<Filled> {
    let Opcode::ForRange(range) = func.inst(fill).opcode else {
        return None;
    };
    if range.breaks || range.stepped {
        return None;
    }
    let body = *func.inst(fill).arms.first()?;
    let params = &func.block(body).params;
    let induction = *params.first()?;
    let carried = *params.get(1 + slot)?;
    let yielded = *func.block(body).yields.get(slot)?;
    // the carried array's one use: `a[i] = v` directly in the body, yielded as is
    let mut writes = Vec::new();
    func.walk_insts(body, &mut |inst| {
        let data = func.inst(inst);
        if data.args.contains(&carried) {
            writes.push(inst);
        }
    });
    let [write] = writes[..] else {
        return None;
    };
    let data = func.inst(write);
    if !matches!(data.opcode, Opcode::IndexSet)
        || data.args.len() != 3
        || data.args[0] != carried
        || data.args[1] != induction
        || data.results.first() != Some(&yielded)
        || !func.block(body).insts.contains(&write)
        || func.block(body).yields.contains(&carried)
    {
        return None;
    }
    let element = data.args[2];
    let top_level: HashSet<Inst> = func.block(body).insts.iter().copied().collect();
    let mut inside = HashSet::new();
    func.defined_in(body, &mut inside);
    let mut expression = Vec::new();
    if !collect_expression(
        func,
        element,
        induction,
        &top_level,
        &inside,
        &mut expression,
    ) || expression.is_empty()
        || expression
            .iter()
            .filter(|&&inst| {
                matches!(
                    func.inst(inst).opcode,
                    Opcode::Binary(_) | Opcode::Unary(_) | Opcode::Index
                )
            })
            .count()
            > MAX_COPIED
    {
        return None;
    }
    // keep the body's order, which is a valid evaluation order
    let order: HashMap<Inst, usize> = func
        .block(body)
        .insts
        .iter()
        .enumerate()
        .map(|(i, &inst)| (inst, i))
        .collect();
    expression.sort_by_key(|inst| order.get(inst).copied().unwrap_or(usize::MAX));
    Some(Filled {
        fill,
        array: *func.inst(fill).results.get(slot)?,
        induction,
        element,
        expression,
    })
}

/// Collects the instructions computing `value` from the induction variable and values
/// defined outside the loop; false when the expression uses anything else.
pub(crate) fn collect_expression(
    func: &Function,
    value: Value,
    induction: Value,
    top_level: &HashSet<Inst>,
    inside: &HashSet<Value>,
    out: &mut Vec<Inst>,
) -> bool {
    if value == induction || !inside.contains(&value) {
        return true;
    }
    let ValueDef::Result(inst, 0) = func.value(value).def else {
        return false;
    };
    if out.contains(&inst) {
        return true;
    }
    if !top_level.contains(&inst) || out.len() >= MAX_EXPRESSION {
        return false;
    }
    let data = func.inst(inst);
    let cheap = match &data.opcode {
        Opcode::Const(_) | Opcode::Cast(_) => true,
        Opcode::Binary(op) => matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul),
        Opcode::Unary(op) => matches!(op, UnaryOp::Neg),
        // the constants of generic code, `T::from(0.5).unwrap()`, and conversions
        Opcode::Call(path) => {
            crate::names::method_form(path).is_none()
                && path.path.segments.len() >= 2
                && path.path.segments.last().is_some_and(|segment| {
                    matches!(
                        segment.ident.to_string().as_str(),
                        "from" | "zero" | "one" | "from_f64" | "from_f32"
                    )
                })
        }
        Opcode::Method(name, _) => name == "unwrap",
        Opcode::Index => data
            .args
            .first()
            .is_some_and(|&array| !inside.contains(&array) && never_changes(func, array)),
        _ => false,
    };
    if !cheap || data.results.len() != 1 || !data.arms.is_empty() {
        return false;
    }
    out.push(inst);
    data.args
        .iter()
        .all(|&arg| collect_expression(func, arg, induction, top_level, inside, out))
}

/// Whether every use of `array` only reads it (element reads, lengths, borrows, copies), so
/// that it holds the same elements wherever it is in scope.
fn never_changes(func: &Function, array: Value) -> bool {
    // a parameter behind a shared reference cannot change whatever its uses
    if let ValueDef::Param(index) = func.value(array).def {
        if let Some(param) = func.params.get(index) {
            if matches!(&param.ty, syn::Type::Reference(r) if r.mutability.is_none()) {
                return true;
            }
        }
    }
    let read_only = func.insts.iter().all(|data| {
        data.args.iter().enumerate().all(|(position, &arg)| {
            arg != array
                || match data.opcode {
                    Opcode::Index | Opcode::Slice => position == 0,
                    Opcode::Len | Opcode::Ref | Opcode::Copy(_) => true,
                    _ => false,
                }
        })
    });
    read_only
        && func
            .blocks
            .iter()
            .all(|block| !block.yields.contains(&array))
}

/// Whether the range of loop `inner` lies inside that of loop `outer`.
fn range_within(func: &Function, inner: Inst, outer: Inst) -> bool {
    let (Opcode::ForRange(inner_range), Opcode::ForRange(outer_range)) =
        (&func.inst(inner).opcode, &func.inst(outer).opcode)
    else {
        return false;
    };
    let (inner_args, outer_args) = (&func.inst(inner).args, &func.inst(outer).args);
    let (Some(&inner_start), Some(&inner_end), Some(&outer_start), Some(&outer_end)) = (
        inner_args.first(),
        inner_args.get(1),
        outer_args.first(),
        outer_args.get(1),
    ) else {
        return false;
    };
    let start_inside = same_constant(func, inner_start, outer_start)
        || matches!(
            (integer(func, inner_start), integer(func, outer_start)),
            (Some(a), Some(b)) if a >= b
        );
    let end_inside = if inner_range.inclusive && !outer_range.inclusive {
        false
    } else {
        same_constant(func, inner_end, outer_end)
            || matches!(
                (integer(func, inner_end), integer(func, outer_end)),
                (Some(a), Some(b)) if a <= b
            )
    };
    start_inside && end_inside
}

/// Whether two values are one value, constants written as the same literal or name, or the
/// lengths of one array value (`0..x.len()` written twice).
fn same_constant(func: &Function, a: Value, b: Value) -> bool {
    if a == b {
        return true;
    }
    let length_of = |value: Value| match func.value(value).def {
        ValueDef::Result(inst, 0) if matches!(func.inst(inst).opcode, Opcode::Len) => {
            func.inst(inst).args.first().copied()
        }
        _ => None,
    };
    if let (Some(x), Some(y)) = (length_of(a), length_of(b)) {
        return x == y;
    }
    let text = |value: Value| {
        let ValueDef::Result(inst, 0) = func.value(value).def else {
            return None;
        };
        let Opcode::Const(tokens) = &func.inst(inst).opcode else {
            return None;
        };
        let mut trees = tokens.clone().into_iter();
        match (trees.next(), trees.next()) {
            (Some(tree @ (TokenTree::Ident(_) | TokenTree::Literal(_))), None) => {
                Some(tree.to_string())
            }
            _ => None,
        }
    };
    matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}

/// The value of an unsuffixed or `usize`-suffixed integer constant.
fn integer(func: &Function, value: Value) -> Option<u128> {
    let ValueDef::Result(inst, 0) = func.value(value).def else {
        return None;
    };
    let Opcode::Const(tokens) = &func.inst(inst).opcode else {
        return None;
    };
    let literal: syn::LitInt = syn::parse2(tokens.clone()).ok()?;
    if !matches!(literal.suffix(), "" | "usize") {
        return None;
    }
    literal.base10_parse().ok()
}

/// Replaces every read `filled.array[i]` whose index is the induction variable of a loop
/// around it with a range inside the filling loop's.
fn rewrite_reads(func: &mut Function, places: &Places, filled: &Filled) {
    let reads: Vec<Inst> = (0..func.insts.len() as u32)
        .map(Inst)
        .filter(|&inst| {
            let data = func.inst(inst);
            matches!(data.opcode, Opcode::Index)
                && data.args.first() == Some(&filled.array)
                && data.results.len() == 1
                && places.block_of.contains_key(&inst)
        })
        .collect();
    for read in reads {
        let Some(&index) = func.inst(read).args.get(1) else {
            continue;
        };
        let within = places.enclosing(read).into_iter().any(|around| {
            matches!(func.inst(around).opcode, Opcode::ForRange(_))
                && func
                    .inst(around)
                    .arms
                    .first()
                    .and_then(|&body| func.block(body).params.first())
                    == Some(&index)
                && range_within(func, around, filled.fill)
        });
        if within {
            copy_expression(func, places, filled, read, index);
        }
    }
}

/// Turns `read` into the filling expression at `index`, the expression's other instructions
/// copied in front of it.
fn copy_expression(
    func: &mut Function,
    places: &Places,
    filled: &Filled,
    read: Inst,
    index: Value,
) {
    let Some(&block) = places.block_of.get(&read) else {
        return;
    };
    let Some(position) = func.block(block).insts.iter().position(|&i| i == read) else {
        return;
    };
    let mut renamed: HashMap<Value, Value> = HashMap::from([(filled.induction, index)]);
    let mut copies = Vec::new();
    let root = filled.element;
    for &original in &filled.expression {
        let data = func.inst(original).clone();
        let args: Vec<Value> = data
            .args
            .iter()
            .map(|arg| renamed.get(arg).copied().unwrap_or(*arg))
            .collect();
        if data.results.first() == Some(&root) {
            let target = &mut func.insts[read.index()];
            target.opcode = data.opcode;
            target.args = args;
            continue;
        }
        let copy = func.create_inst(data.opcode, args, Vec::new(), 1, data.span);
        let (Some(&old), Some(&new)) = (data.results.first(), func.inst(copy).results.first())
        else {
            continue;
        };
        func.values[new.index()].name = func.value(old).name.clone();
        renamed.insert(old, new);
        copies.push(copy);
    }
    func.blocks[block.index()]
        .insts
        .splice(position..position, copies);
}
