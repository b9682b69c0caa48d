//! Python's `+`, `-` and unary `-` on datetimes and durations.
//!
//! minijinja's operators only know numbers, strings and sequences. lava
//! compiles each template itself and rewrites the `Add`, `Sub`, `Neg` and
//! `Rem` instructions into calls of the global functions [`ADD`], [`SUB`],
//! [`NEG`] and [`MOD`], which handle `datetime ± timedelta`, `datetime - datetime`,
//! `date ± timedelta`, relativedelta arithmetic, `-timedelta` and Python's
//! `'%s' % x` formatting, and hand everything else back to minijinja's own
//! arithmetic. This uses
//! minijinja's `unstable_machinery` API, so the minijinja version is pinned
//! exactly; the tests in this module fail loudly if an upgrade changes it.

use minijinja::formatting::{FormatStyle, format};
use minijinja::machinery::{CompiledTemplate, Instruction, Instructions};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::args::invalid;
use super::datetime::{PyDate, PyDateTime};
use super::delta::{RelativeDelta, TimeDelta};
use super::pytype::{is_temporal, type_name};

/// The global function that replaces `a + b`.
pub(crate) const ADD: &str = "__lava_add";
/// The global function that replaces `a - b`.
pub(crate) const SUB: &str = "__lava_sub";
/// The global function that replaces `-a`.
pub(crate) const NEG: &str = "__lava_neg";
/// The global function that replaces `a % b`.
pub(crate) const MOD: &str = "__lava_mod";
/// The global function that replaces `a * b`.
pub(crate) const MUL: &str = "__lava_mul";

/// Rewrites the arithmetic instructions of a compiled template.
pub(crate) fn rewrite(compiled: &mut CompiledTemplate<'_>) {
    rewrite_instructions(&mut compiled.instructions);
    for block in compiled.blocks.values_mut() {
        rewrite_instructions(block);
    }
}

fn rewrite_instructions(instructions: &mut Instructions<'_>) {
    let mut idx = 0;
    while let Some(instr) = instructions.get_mut(idx) {
        match instr {
            Instruction::Add => *instr = Instruction::CallFunction(ADD, Some(2)),
            Instruction::Sub => *instr = Instruction::CallFunction(SUB, Some(2)),
            Instruction::Neg => *instr = Instruction::CallFunction(NEG, Some(1)),
            Instruction::Rem => *instr = Instruction::CallFunction(MOD, Some(2)),
            Instruction::Mul => *instr = Instruction::CallFunction(MUL, Some(2)),
            _ => {}
        }
        idx += 1;
    }
}

fn unsupported(op: &str, a: &Value, b: &Value) -> Error {
    invalid(format!(
        "unsupported operand type(s) for {op}: '{}' and '{}'",
        type_name(a),
        type_name(b)
    ))
}

fn undefined_operand(op: &str, a: &Value, b: &Value) -> Error {
    Error::new(
        ErrorKind::UndefinedError,
        format!(
            "tried to use {op} operator on unsupported types {} and {}",
            a.kind(),
            b.kind()
        ),
    )
}

/// `a + b`.
pub(crate) fn add(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(undefined_operand("+", &a, &b));
    }
    if is_temporal(&a) || is_temporal(&b) {
        return temporal_add(&a, &b).ok_or_else(|| unsupported("+", &a, &b))?;
    }
    // minijinja's own `+`, reached through the `sum` filter.
    minijinja::filters::sum(
        state,
        Value::from(vec![b]),
        None,
        Some(a),
        Kwargs::from_iter(std::iter::empty::<(&str, Value)>()),
    )
}

fn temporal_add(a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<TimeDelta>().copied();
    let rd = |v: &Value| v.downcast_object_ref::<RelativeDelta>().copied();
    let dt = |v: &Value| v.downcast_object_ref::<PyDateTime>().copied();
    let date = |v: &Value| v.downcast_object_ref::<PyDate>().copied();
    Some(
        if let (Some(x), Some(y)) = (dt(a), td(b)).or2((dt(b), td(a))) {
            x.add_delta(y).map(PyDateTime::into_value)
        } else if let (Some(x), Some(y)) = (dt(a), rd(b)).or2((dt(b), rd(a))) {
            x.add_relative(&y).map(PyDateTime::into_value)
        } else if let (Some(x), Some(y)) = (date(a), td(b)).or2((date(b), td(a))) {
            x.add_delta(y).map(Value::from_object)
        } else if let (Some(x), Some(y)) = (date(a), rd(b)).or2((date(b), rd(a))) {
            x.add_relative(&y).map(Value::from_object)
        } else if let (Some(x), Some(y)) = (td(a), td(b)) {
            TimeDelta::from_micros(x.micros() + y.micros()).map(Value::from_object)
        } else if let (Some(x), Some(y)) = (rd(a), rd(b)) {
            Ok(Value::from_object(x.plus(y)))
        } else if let (Some(x), Some(y)) = (rd(a), td(b)).or2((rd(b), td(a))) {
            Ok(Value::from_object(x.plus_timedelta(y)))
        } else {
            return None;
        },
    )
}

/// Picks the first pair whose both sides are present.
trait Or2<A, B> {
    fn or2(self, other: (Option<A>, Option<B>)) -> (Option<A>, Option<B>);
}

impl<A, B> Or2<A, B> for (Option<A>, Option<B>) {
    fn or2(self, other: (Option<A>, Option<B>)) -> (Option<A>, Option<B>) {
        if self.0.is_some() && self.1.is_some() {
            self
        } else {
            other
        }
    }
}

/// `a - b`.
pub(crate) fn sub(_state: &State, a: Value, b: Value) -> Result<Value, Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(undefined_operand("-", &a, &b));
    }
    if is_temporal(&a) || is_temporal(&b) {
        return temporal_sub(&a, &b).ok_or_else(|| unsupported("-", &a, &b))?;
    }
    numeric(&a, &b, "-", i128::checked_sub, |x, y| x - y)
}

fn temporal_sub(a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<TimeDelta>().copied();
    let rd = |v: &Value| v.downcast_object_ref::<RelativeDelta>().copied();
    let dt = |v: &Value| v.downcast_object_ref::<PyDateTime>().copied();
    let date = |v: &Value| v.downcast_object_ref::<PyDate>().copied();
    let neg_td = |y: TimeDelta| TimeDelta::from_micros(-y.micros());
    Some(if let (Some(x), Some(y)) = (dt(a), dt(b)) {
        x.minus(&y).map(Value::from_object)
    } else if let (Some(x), Some(y)) = (dt(a), td(b)) {
        neg_td(y)
            .and_then(|y| x.add_delta(y))
            .map(PyDateTime::into_value)
    } else if let (Some(x), Some(y)) = (dt(a), rd(b)) {
        x.add_relative(&y.negate()).map(PyDateTime::into_value)
    } else if let (Some(x), Some(y)) = (date(a), date(b)) {
        x.minus(&y).map(Value::from_object)
    } else if let (Some(x), Some(y)) = (date(a), td(b)) {
        neg_td(y)
            .and_then(|y| x.add_delta(y))
            .map(Value::from_object)
    } else if let (Some(x), Some(y)) = (date(a), rd(b)) {
        x.add_relative(&y.negate()).map(Value::from_object)
    } else if let (Some(x), Some(y)) = (td(a), td(b)) {
        TimeDelta::from_micros(x.micros() - y.micros()).map(Value::from_object)
    } else if let (Some(x), Some(y)) = (rd(a), rd(b)) {
        Ok(Value::from_object(x.plus(y.negate())))
    } else if let (Some(x), Some(y)) = (rd(a), td(b)) {
        neg_td(y).map(|y| Value::from_object(x.plus_timedelta(y)))
    } else {
        return None;
    })
}

/// `-a`.
pub(crate) fn neg(_state: &State, a: Value) -> Result<Value, Error> {
    if let Some(td) = a.downcast_object_ref::<TimeDelta>() {
        return TimeDelta::from_micros(-td.micros()).map(Value::from_object);
    }
    if let Some(rd) = a.downcast_object_ref::<RelativeDelta>() {
        return Ok(Value::from_object(rd.negate()));
    }
    if !(a.is_number() || a.kind() == ValueKind::Bool) {
        return Err(invalid(format!(
            "bad operand type for unary -: '{}'",
            type_name(&a)
        )));
    }
    numeric(&Value::from(0), &a, "-", i128::checked_sub, |x, y| x - y)
}

/// The longest string or sequence `*` may build.
const MAX_REPEAT: usize = 100_000_000;

/// The fuel of `bytes` of data, as minijinja charges it (one per 64 bytes).
fn fuel_for_bytes(bytes: usize) -> u64 {
    u64::try_from(bytes / 64).unwrap_or(u64::MAX)
}

/// `a * b`: `timedelta * number` (either order), else minijinja's own
/// rules (numbers, and strings or sequences repeated).
pub(crate) fn mul(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(undefined_operand("*", &a, &b));
    }
    let is_num = |v: &Value| v.is_number() || v.kind() == ValueKind::Bool;
    if is_temporal(&a) || is_temporal(&b) {
        let (td, n) = match (
            a.downcast_object_ref::<TimeDelta>(),
            b.downcast_object_ref::<TimeDelta>(),
        ) {
            (Some(td), None) if is_num(&b) => (*td, b.clone()),
            (None, Some(td)) if is_num(&a) => (*td, a.clone()),
            _ => return Err(unsupported("*", &a, &b)),
        };
        let micros = if n.is_integer() || n.kind() == ValueKind::Bool {
            let k = i128::try_from(n).map_err(|_| invalid("timedelta out of range"))?;
            td.micros()
                .checked_mul(k)
                .ok_or_else(|| invalid("timedelta out of range"))?
        } else {
            let x = f64::try_from(n).unwrap_or(f64::NAN) * td.micros() as f64;
            if !x.is_finite() || x.abs() > 1e20 {
                return Err(invalid("timedelta out of range"));
            }
            let r = x.round();
            let r = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
                r - x.signum()
            } else {
                r
            };
            r as i128
        };
        return TimeDelta::from_micros(micros).map(Value::from_object);
    }
    let repeat_count = |v: &Value| -> Result<usize, Error> {
        if !(v.is_integer() || v.kind() == ValueKind::Bool) {
            return Err(invalid(format!(
                "can't multiply sequence by non-int of type '{}'",
                type_name(v)
            )));
        }
        Ok(i64::try_from(v.clone()).map_or(0, |n| usize::try_from(n).unwrap_or(0)))
    };
    let text = a
        .as_str()
        .map(|s| (s, &b))
        .or_else(|| b.as_str().map(|s| (s, &a)));
    if let Some((s, n)) = text {
        let n = repeat_count(n)?;
        if s.len().saturating_mul(n) > MAX_REPEAT {
            return Err(invalid("repeated string is too large"));
        }
        // Paid for before it is built, so fuel bounds memory too.
        state.consume_fuel(fuel_for_bytes(s.len().saturating_mul(n)))?;
        return Ok(Value::from(s.repeat(n)));
    }
    let seq = |v: &Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    let items = if seq(&a) && !seq(&b) {
        Some((&a, &b))
    } else if seq(&b) && !seq(&a) {
        Some((&b, &a))
    } else {
        None
    };
    if let Some((items, n)) = items {
        let n = repeat_count(n)?;
        let items: Vec<Value> = items.try_iter()?.collect();
        if items.len().saturating_mul(n) > MAX_REPEAT {
            return Err(invalid("repeated sequence is too large"));
        }
        state.consume_fuel(fuel_for_bytes(
            (items.len() * n).saturating_mul(std::mem::size_of::<Value>()),
        ))?;
        let mut out = Vec::with_capacity(items.len() * n);
        for _ in 0..n {
            out.extend(items.iter().cloned());
        }
        return Ok(Value::from(out));
    }
    numeric(&a, &b, "*", i128::checked_mul, |x, y| x * y)
}

/// `a % b`: Python's printf-style formatting when `a` is a string
/// (`'%s-%d' % ('a', 3)`, `'%(x)s' % d`), else the remainder with the sign
/// of the divisor.
pub(crate) fn rem(_state: &State, a: Value, b: Value) -> Result<Value, Error> {
    if let Some(fmt) = a.as_str() {
        let args: Vec<Value> = if b.is_tuple() {
            b.try_iter()?.collect()
        } else {
            vec![b]
        };
        return format(FormatStyle::Printf, fmt, &args).map(Value::from);
    }
    if a.is_undefined() || b.is_undefined() {
        return Err(undefined_operand("%", &a, &b));
    }
    let zero = |v: &Value| f64::try_from(v.clone()).is_ok_and(|x| x == 0.0);
    if zero(&b) && (b.is_number() || b.kind() == ValueKind::Bool) {
        return Err(invalid("integer division or modulo by zero"));
    }
    numeric(
        &a,
        &b,
        "%",
        |x, y| {
            let r = x.checked_rem(y)?;
            if r != 0 && (r < 0) != (y < 0) {
                r.checked_add(y)
            } else {
                Some(r)
            }
        },
        |x, y| {
            let r = x % y;
            if r != 0.0 && (r < 0.0) != (y < 0.0) {
                r + y
            } else if r == 0.0 {
                0.0f64.copysign(y)
            } else {
                r
            }
        },
    )
}

/// Integer arithmetic when both sides are integers (or booleans), else
/// floating point, as minijinja does.
fn numeric(
    a: &Value,
    b: &Value,
    op: &str,
    int_op: fn(i128, i128) -> Option<i128>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, Error> {
    let is_num = |v: &Value| v.is_number() || v.kind() == ValueKind::Bool;
    if !is_num(a) || !is_num(b) {
        return Err(invalid(format!(
            "tried to use {op} operator on unsupported types {} and {}",
            a.kind(),
            b.kind()
        )));
    }
    let is_int = |v: &Value| v.is_integer() || v.kind() == ValueKind::Bool;
    if is_int(a)
        && is_int(b)
        && let (Ok(x), Ok(y)) = (i128::try_from(a.clone()), i128::try_from(b.clone()))
    {
        return match int_op(x, y) {
            Some(r) => Ok(match i64::try_from(r) {
                Ok(small) => Value::from(small),
                Err(_) => Value::from(r),
            }),
            None => Err(invalid(format!("unable to calculate {a} {op} {b}"))),
        };
    }
    match (f64::try_from(a.clone()), f64::try_from(b.clone())) {
        (Ok(x), Ok(y)) => Ok(Value::from(float_op(x, y))),
        _ => Err(invalid(format!("unable to calculate {a} {op} {b}"))),
    }
}
