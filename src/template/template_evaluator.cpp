#include "template/template_evaluator.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "template/template_builtins.hpp"
#include "template/template_lexer.hpp"
#include "template/template_loop.hpp"
#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

// An error that already names its position in the template.
struct LocatedError : Error {
  using Error::Error;
};

enum class Flow { normal, break_, continue_ };

class Evaluator {
 public:
  Evaluator(const std::string& source, const RenderLimits& limits) : source_(source), limits_(limits) {}

  std::string run(const Body& body, const Scope& globals) {
    Scope root(&globals);
    root_ = &root;
    std::string out;
    out_ = &out;
    exec_body(body, root);
    return out;
  }

 private:
  [[noreturn]] void locate(size_t offset, const Error& e) const {
    throw LocatedError(fmt::format("template error at {}: {}", describe_position(source_, offset), e.what()));
  }

  void step() {
    if (++steps_ > limits_.max_steps)
      fail("template evaluation exceeded {} steps (runaway loop?)", limits_.max_steps);
  }

  void emit(const std::string& text) {
    if (out_->size() + text.size() > limits_.max_output_bytes)
      fail("template output exceeds the limit of {} bytes", limits_.max_output_bytes);
    *out_ += text;
  }

  // ---- statements ----
  Flow exec_body(const Body& body, Scope& scope) {
    for (const StmtPtr& s : body) {
      const Flow f = exec(*s, scope);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec(const Stmt& s, Scope& scope) {
    try {
      step();
      return exec_unlocated(s, scope);
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& e) {
      locate(s.offset, e);
    }
  }

  Flow exec_unlocated(const Stmt& s, Scope& scope) {
    switch (s.kind) {
      case StmtKind::text:
        steps_ += s.text.size() / 256;
        emit(s.text);
        return Flow::normal;
      case StmtKind::output: emit(py_str(eval(*s.expr, scope))); return Flow::normal;
      case StmtKind::if_:
        for (const auto& [test, body] : s.branches)
          if (truthy(eval(*test, scope))) return exec_body(body, scope);
        return exec_body(s.else_body, scope);
      case StmtKind::for_: return exec_for(s, scope);
      case StmtKind::set: assign(*s.target, eval(*s.expr, scope), scope); return Flow::normal;
      case StmtKind::set_block:
        assign(*s.target, Value::string(capture(s, scope)), scope);
        return Flow::normal;
      case StmtKind::filter_block: emit(capture(s, scope)); return Flow::normal;
      case StmtKind::macro: define_macro(s, scope); return Flow::normal;
      case StmtKind::with: return exec_with(s, scope);
      case StmtKind::generation: return exec_body(s.body, scope);
      case StmtKind::break_: return Flow::break_;
      case StmtKind::continue_: return Flow::continue_;
      case StmtKind::call_block: fail("call blocks are not supported");
    }
    return Flow::normal;
  }

  // Renders a block body into a string, then applies the statement's filter chain to it.
  std::string capture(const Stmt& s, Scope& scope) {
    std::string buffer;
    std::string* saved = out_;
    out_ = &buffer;
    try {
      Scope inner(&scope);
      exec_body(s.body, inner);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    if (!s.filter) return buffer;
    return py_str(eval_filter_chain(*s.filter, Value::string(std::move(buffer)), scope));
  }

  Value eval_filter_chain(const Expr& e, const Value& input, Scope& scope) {
    const Value inner = e.args[0] ? eval_filter_chain(*e.args[0], input, scope) : input;
    return apply_filter(e.name, inner, eval_args(e, scope));
  }

  Flow exec_for(const Stmt& s, Scope& scope) {
    std::vector<Value> items = iterate(eval(*s.expr, scope));
    if (s.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        Scope probe(&scope);
        assign(*s.target, item, probe);
        if (truthy(eval(*s.filter, probe))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
    // Non-recursive loops all have depth 1 in jinja2.
    auto loop = std::make_shared<LoopObject>(shared_items, 0);
    const Value loop_value = Value::object(loop);
    for (size_t i = 0; i < shared_items->size(); ++i) {
      step();
      Scope iteration(&scope);
      loop->set_index(i);
      iteration.set("loop", loop_value);
      assign(*s.target, (*shared_items)[i], iteration);
      if (exec_body(s.body, iteration) == Flow::break_) break;
    }
    if (shared_items->empty() && !s.else_body.empty()) {
      Scope inner(&scope);
      exec_body(s.else_body, inner);
    }
    return Flow::normal;
  }

  Flow exec_with(const Stmt& s, Scope& scope) {
    Scope inner(&scope);
    std::vector<Value> values;
    for (const ExprPtr& v : s.values) values.push_back(eval(*v, scope));
    for (size_t i = 0; i < values.size(); ++i) assign(*s.targets[i], values[i], inner);
    return exec_body(s.body, inner);
  }

  void assign(const Expr& target, const Value& value, Scope& scope) {
    if (target.kind == ExprKind::name) {
      scope.set(target.name, value);
      return;
    }
    if (target.kind == ExprKind::getattr) {
      const Value* ns = scope.find(target.args[0]->name);
      if (!ns || !ns->is_object() || !ns->object().is_namespace())
        fail("cannot assign attribute on non-namespace object");
      ns->object().set_attr(target.name, value);
      return;
    }
    const std::vector<Value> items = iterate(value);
    if (items.size() != target.args.size())
      fail("{} values to unpack (expected {}, got {})",
           items.size() < target.args.size() ? "not enough" : "too many", target.args.size(), items.size());
    for (size_t i = 0; i < items.size(); ++i) assign(*target.args[i], items[i], scope);
  }

  // Macros see their arguments and the template's top-level variables.
  void define_macro(const Stmt& s, Scope& scope) {
    const Stmt* macro = &s;
    scope.set(s.text, make_function(s.text, [this, macro](const CallArgs& args) {
      return call_macro(*macro, args);
    }));
  }

  Value call_macro(const Stmt& m, const CallArgs& args) {
    if (++call_depth_ > limits_.max_call_depth) {
      --call_depth_;
      fail("macro calls nested deeper than {}", limits_.max_call_depth);
    }
    struct Unwind {
      int& depth;
      ~Unwind() { --depth; }
    } unwind{call_depth_};
    if (args.positional.size() > m.params.size())
      fail("macro '{}' takes not more than {} argument(s)", m.text, m.params.size());
    Scope scope(root_);
    std::vector<bool> bound(m.params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
      scope.set(m.params[i], args.positional[i]);
      bound[i] = true;
    }
    for (const auto& [key, value] : args.keyword) {
      size_t i = 0;
      while (i < m.params.size() && m.params[i] != key) ++i;
      if (i == m.params.size()) fail("macro '{}' takes no keyword argument '{}'", m.text, key);
      scope.set(key, value);
      bound[i] = true;
    }
    for (size_t i = 0; i < m.params.size(); ++i) {
      if (bound[i]) continue;
      scope.set(m.params[i], m.defaults[i] ? eval(*m.defaults[i], scope)
                                           : Value::undefined(fmt::format("parameter '{}' was not provided", m.params[i])));
    }
    std::string buffer;
    std::string* saved = out_;
    out_ = &buffer;
    try {
      exec_body(m.body, scope);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return Value::string(std::move(buffer));
  }

  // ---- expressions ----
  // Big strings and lists cost steps in proportion to their size, so a template cannot spend
  // unbounded time copying values within its step budget.
  void charge(const Value& v) {
    size_t units = 0;
    if (v.is_string()) units = v.str().size() / 256;
    if (v.is_list()) units = v.list().items.size() / 16;
    if (v.is_dict()) units = v.dict().entries.size() / 16;
    if (units == 0) return;
    steps_ += units;
    step();
  }

  Value eval(const Expr& e, Scope& scope) {
    try {
      step();
      Value v = eval_unlocated(e, scope);
      charge(v);
      return v;
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& err) {
      locate(e.offset, err);
    }
  }

  CallArgs eval_args(const Expr& e, Scope& scope) {
    CallArgs args;
    for (size_t i = 1; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
    for (const auto& [key, value] : e.keywords) args.keyword.emplace_back(key, eval(*value, scope));
    if (e.star_args)
      for (Value& v : iterate(eval(*e.star_args, scope))) args.positional.push_back(std::move(v));
    if (e.star_kwargs) {
      const Value kw = eval(*e.star_kwargs, scope);
      if (!kw.is_dict()) fail("argument after ** must be a mapping, not {}", type_name(kw));
      for (const auto& [k, v] : kw.dict().entries) {
        if (!k.is_string()) fail("keywords must be strings");
        args.keyword.emplace_back(k.str(), v);
      }
    }
    return args;
  }

  std::vector<Value> eval_all(const std::vector<ExprPtr>& exprs, Scope& scope) {
    std::vector<Value> out;
    out.reserve(exprs.size());
    for (const ExprPtr& x : exprs) out.push_back(eval(*x, scope));
    return out;
  }

  Value eval_dict(const Expr& e, Scope& scope) {
    auto dict = std::make_shared<Dict>();
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      Value key = eval(*e.args[i], scope);
      dict->set(std::move(key), eval(*e.args[i + 1], scope));
    }
    return Value::dict(std::move(dict));
  }

  // jinja2 folds constant expressions at compile time through the sandbox's getitem, which
  // turns a failed slice into an undefined; at run time the same slice is a TypeError.
  static bool is_constant(const Expr* e) {
    if (!e) return true;
    switch (e->kind) {
      case ExprKind::constant: return true;
      case ExprKind::list: case ExprKind::tuple: case ExprKind::dict: case ExprKind::binary:
      case ExprKind::negate: case ExprKind::positive: case ExprKind::concat: case ExprKind::slice:
      case ExprKind::getitem: case ExprKind::getattr:
        return std::all_of(e->args.begin(), e->args.end(), [](const ExprPtr& a) { return is_constant(a.get()); });
      default: return false;
    }
  }

  Value eval_getitem(const Expr& e, Scope& scope) {
    const Value obj = eval(*e.args[0], scope);
    const Expr& key = *e.args[1];
    if (key.kind != ExprKind::slice) return get_item(obj, eval(key, scope));
    auto part = [&](size_t i) { return key.args[i] ? eval(*key.args[i], scope) : Value::none(); };
    const Value start = part(0), stop = part(1), stride = part(2);
    // Only TypeError-like failures fold to undefined; a zero step (ValueError) still fails.
    const bool zero_step = (stride.is_int() || stride.is_bool()) && stride.as_int() == 0;
    if (!zero_step && is_constant(e.args[0].get()) && is_constant(&key)) {
      try {
        return slice(obj, start, stop, stride);
      } catch (const Error& err) {
        return Value::undefined(err.what());
      }
    }
    return slice(obj, start, stop, stride);
  }

  Value eval_call(const Expr& e, Scope& scope) {
    const Value callee = eval(*e.args[0], scope);
    const CallArgs args = eval_args(e, scope);
    if (callee.is_undefined()) undefined_error(callee);
    if (!callee.is_object() || !callee.object().is_callable())
      fail("'{}' object is not callable", type_name(callee));
    return callee.object().call(args);
  }

  Value eval_binary(const Expr& e, Scope& scope) {
    const Value a = eval(*e.args[0], scope);
    const Value b = eval(*e.args[1], scope);
    static const std::pair<const char*, BinaryOp> ops[] = {
        {"+", BinaryOp::add}, {"-", BinaryOp::sub}, {"*", BinaryOp::mul}, {"/", BinaryOp::div},
        {"//", BinaryOp::floordiv}, {"%", BinaryOp::mod}, {"**", BinaryOp::pow}};
    for (const auto& [sym, op] : ops)
      if (e.name == sym) return binary_op(op, a, b);
    fail("unknown operator '{}'", e.name);
  }

  static bool compare_one(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return py_equal(a, b);
    if (op == "!=") return !py_equal(a, b);
    if (op == "<") return py_less(a, b);
    if (op == ">") return py_less(b, a);
    if (op == "<=") return py_less(a, b) || py_equal(a, b);
    if (op == ">=") return py_less(b, a) || py_equal(a, b);
    if (op == "in") return contains(b, a);
    return !contains(b, a);  // notin
  }

  Value eval_compare(const Expr& e, Scope& scope) {
    Value left = eval(*e.args[0], scope);
    for (size_t i = 0; i < e.ops.size(); ++i) {
      Value right = eval(*e.args[i + 1], scope);
      if (!compare_one(e.ops[i], left, right)) return Value::boolean(false);
      left = std::move(right);
    }
    return Value::boolean(true);
  }

  Value eval_concat(const Expr& e, Scope& scope) {
    std::string out;
    for (const ExprPtr& part : e.args) {
      out += py_str(eval(*part, scope));
      if (out.size() > kMaxValueSize) fail("string too large");
    }
    return Value::string(std::move(out));
  }

  Value lookup(const std::string& name, Scope& scope) {
    if (const Value* v = scope.find(name)) return *v;
    return Value::undefined(fmt::format("'{}' is undefined", name));
  }

  Value eval_unlocated(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case ExprKind::constant: return e.value;
      case ExprKind::name: return lookup(e.name, scope);
      case ExprKind::list: return Value::list(eval_all(e.args, scope));
      case ExprKind::tuple: return Value::list(eval_all(e.args, scope), Seq::tuple);
      case ExprKind::dict: return eval_dict(e, scope);
      case ExprKind::getattr: return get_attr(eval(*e.args[0], scope), e.name);
      case ExprKind::getitem: return eval_getitem(e, scope);
      case ExprKind::slice: fail("a slice is only valid inside []");
      case ExprKind::call: return eval_call(e, scope);
      case ExprKind::filter: {
        const Value input = eval(*e.args[0], scope);
        return apply_filter(e.name, input, eval_args(e, scope));
      }
      case ExprKind::test: {
        const Value input = eval(*e.args[0], scope);
        return Value::boolean(apply_test(e.name, input, eval_args(e, scope)));
      }
      case ExprKind::negate: return negate(eval(*e.args[0], scope));
      case ExprKind::positive: return positive(eval(*e.args[0], scope));
      case ExprKind::logical_not: return Value::boolean(!truthy(eval(*e.args[0], scope)));
      case ExprKind::logical_and: {
        Value a = eval(*e.args[0], scope);
        return truthy(a) ? eval(*e.args[1], scope) : a;
      }
      case ExprKind::logical_or: {
        Value a = eval(*e.args[0], scope);
        return truthy(a) ? a : eval(*e.args[1], scope);
      }
      case ExprKind::binary: return eval_binary(e, scope);
      case ExprKind::concat: return eval_concat(e, scope);
      case ExprKind::compare: return eval_compare(e, scope);
      case ExprKind::condition:
        if (truthy(eval(*e.args[0], scope))) return eval(*e.args[1], scope);
        if (e.args[2]) return eval(*e.args[2], scope);
        return Value::undefined("the inline if-expression evaluated to false and has no else");
    }
    return {};
  }

  const std::string& source_;
  const RenderLimits& limits_;
  std::string* out_ = nullptr;
  Scope* root_ = nullptr;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent_) {
    const auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

std::string evaluate(const std::string& source, const Body& body, const Scope& globals,
                     const RenderLimits& limits) {
  return Evaluator(source, limits).run(body, globals);
}

}  // namespace fp4llm::tmpl
