#include "template/template_parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

#include "util/error.hpp"

namespace fp4llm::tmpl {

namespace {

using Names = std::initializer_list<const char*>;

class Parser {
 public:
  explicit Parser(const LexedTemplate& lexed) : lexed_(lexed), tokens_(lexed.tokens) {}

  Body parse() {
    Body body = subparse({});
    return body;
  }

 private:
  // ---- token stream ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::op && cur().value == op; }
  bool is_name(const char* name) const {
    return cur().type == TokenType::name && cur().value == name;
  }
  bool is_name_in(const std::vector<std::string>& names) const {
    return cur().type == TokenType::name &&
           std::find(names.begin(), names.end(), cur().value) != names.end();
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::data: return "template data";
      case TokenType::var_begin: return "begin of print statement";
      case TokenType::var_end: return "end of print statement";
      case TokenType::block_begin: return "begin of statement block";
      case TokenType::block_end: return "end of statement block";
      case TokenType::eof: return "end of template";
      case TokenType::string: return "string";
      default: return t.value;
    }
  }

  [[noreturn]] void error(const std::string& message) const { error_at(cur().offset, message); }
  [[noreturn]] void error_at(size_t offset, const std::string& message) const {
    fail("template syntax error at {}: {}", describe_position(lexed_.source, offset), message);
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) error(fmt::format("expected '{}', got '{}'", op, describe(cur())));
  }
  void expect(TokenType type, const char* what) {
    if (cur().type != type) error(fmt::format("expected {}, got '{}'", what, describe(cur())));
    advance();
  }
  std::string expect_name() {
    if (cur().type != TokenType::name) error(fmt::format("expected a name, got '{}'", describe(cur())));
    return advance().value;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxNestingDepth)
        p_.error(fmt::format("template nested too deeply (more than {} levels)", kMaxNestingDepth));
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  static ExprPtr node(ExprKind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // ---- statements ----
  Body subparse(const std::vector<std::string>& end_names) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::text;
        s->offset = t.offset;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::var_begin) {
        advance();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::output;
        s->offset = t.offset;
        s->expr = parse_tuple(false, true, {}, false);
        expect(TokenType::var_end, "end of print statement");
        body.push_back(std::move(s));
      } else if (t.type == TokenType::block_begin) {
        advance();
        if (!end_names.empty() && is_name_in(end_names)) return body;
        body.push_back(parse_statement());
        expect(TokenType::block_end, "end of statement block");
      } else if (t.type == TokenType::eof) {
        if (!end_names.empty()) {
          std::string wanted;
          for (const auto& n : end_names) wanted += (wanted.empty() ? "'" : " or '") + n + "'";
          error(fmt::format("unexpected end of template, expected {}", wanted));
        }
        return body;
      } else {
        error(fmt::format("unexpected '{}'", describe(t)));
      }
    }
  }

  Body parse_statements(const std::vector<std::string>& end_names, bool drop_needle) {
    skip_op(":");
    expect(TokenType::block_end, "end of statement block");
    Body body = subparse(end_names);
    if (drop_needle) advance();
    return body;
  }

  StmtPtr new_stmt(StmtKind kind, size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->offset = offset;
    return s;
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    if (t.type != TokenType::name) error("tag name expected");
    const std::string tag = t.value;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "with") return parse_with();
    if (tag == "filter") return parse_filter_block();
    if (tag == "print") return parse_print();
    if (tag == "generation") {
      auto s = new_stmt(StmtKind::generation, advance().offset);
      s->body = parse_statements({"endgeneration"}, true);
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error(fmt::format("'{}' outside a loop", tag));
      return new_stmt(tag == "break" ? StmtKind::break_ : StmtKind::continue_, advance().offset);
    }
    static const char* known[] = {"block", "extends", "include", "import", "from", "call",
                                  "autoescape", "do", "raw"};
    for (const char* k : known)
      if (tag == k) error(fmt::format("the '{}' tag is not supported by this template engine", tag));
    error(fmt::format("unknown tag '{}'", tag));
  }

  StmtPtr parse_if() {
    auto s = new_stmt(StmtKind::if_, advance().offset);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const std::string which = advance().value;
      if (which == "elif") continue;
      if (which == "else") s->else_body = parse_statements({"endif"}, true);
      return s;
    }
  }

  StmtPtr parse_for() {
    auto s = new_stmt(StmtKind::for_, advance().offset);
    s->target = parse_assign_target(true, {"in"}, false);
    if (!skip_name("in")) error(fmt::format("expected 'in', got '{}'", describe(cur())));
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->filter = parse_expression(true);
    if (is_name("recursive")) error("recursive loops are not supported");
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (advance().value == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_set() {
    const size_t offset = advance().offset;
    ExprPtr target = parse_assign_target(true, {}, true);
    if (skip_op("=")) {
      auto s = new_stmt(StmtKind::set, offset);
      s->target = std::move(target);
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    auto s = new_stmt(StmtKind::set_block, offset);
    s->target = std::move(target);
    if (is_op("|")) s->filter = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  StmtPtr parse_macro() {
    auto s = new_stmt(StmtKind::macro, advance().offset);
    s->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      s->params.push_back(expect_name());
      if (skip_op("="))
        s->defaults.push_back(parse_expression(true));
      else if (std::any_of(s->defaults.begin(), s->defaults.end(), [](auto& d) { return d != nullptr; }))
        error("non-default argument follows default argument");
      else
        s->defaults.push_back(nullptr);
    }
    expect_op(")");
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    return s;
  }

  StmtPtr parse_with() {
    auto s = new_stmt(StmtKind::with, advance().offset);
    while (cur().type != TokenType::block_end) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(false, {}, false));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = new_stmt(StmtKind::filter_block, advance().offset);
    s->filter = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_print() {
    auto s = new_stmt(StmtKind::output, advance().offset);
    std::vector<ExprPtr> items;
    while (cur().type != TokenType::block_end) {
      if (!items.empty()) expect_op(",");
      items.push_back(parse_expression(true));
    }
    if (items.size() != 1) error("print with several expressions is not supported");
    s->expr = std::move(items[0]);
    return s;
  }

  ExprPtr parse_assign_target(bool with_tuple, std::vector<std::string> extra_end, bool with_namespace) {
    const size_t offset = cur().offset;
    ExprPtr target;
    if (with_namespace && look().type == TokenType::op && look().value == "." &&
        cur().type == TokenType::name) {
      target = node(ExprKind::getattr, offset);
      auto ns = node(ExprKind::name, offset);
      ns->name = expect_name();
      advance();
      target->name = expect_name();
      target->args.push_back(std::move(ns));
      return target;
    }
    target = with_tuple ? parse_tuple(true, false, std::move(extra_end), false) : parse_primary();
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& e) const {
    if (e.kind == ExprKind::name) return;
    if (e.kind == ExprKind::tuple) {
      for (const auto& item : e.args) check_assignable(*item);
      return;
    }
    error_at(e.offset, "can't assign to this expression");
  }

  // ---- expressions ----
  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    if (cur().type == TokenType::var_end || cur().type == TokenType::block_end || is_op(")"))
      return true;
    return is_name_in(extra_end);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::vector<std::string> extra_end,
                      bool explicit_parentheses) {
    const size_t offset = cur().offset;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) error(fmt::format("expected an expression, got '{}'", describe(cur())));
    }
    auto t = node(ExprKind::tuple, offset);
    t->args = std::move(args);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const size_t offset = advance().offset;
      auto c = node(ExprKind::condition, offset);
      ExprPtr test = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_condexpr() : nullptr;
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(expr));
      c->args.push_back(std::move(otherwise));
      expr = std::move(c);
    }
    return expr;
  }

  // Errors in a binary expression point at its left operand, where the expression starts.
  ExprPtr binary(ExprKind kind, std::string op, size_t, ExprPtr a, ExprPtr b) {
    auto e = node(kind, a->offset);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const size_t offset = advance().offset;
      left = binary(ExprKind::logical_or, "or", offset, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const size_t offset = advance().offset;
      left = binary(ExprKind::logical_and, "and", offset, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = node(ExprKind::logical_not, advance().offset);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t offset = cur().offset;
    ExprPtr first = parse_math1();
    auto cmp = node(ExprKind::compare, offset);
    while (true) {
      if (cur().type == TokenType::op &&
          (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">="))) {
        cmp->ops.push_back(advance().value);
      } else if (is_name("in")) {
        advance();
        cmp->ops.push_back("in");
      } else if (is_name("not") && look().type == TokenType::name && look().value == "in") {
        advance();
        advance();
        cmp->ops.push_back("notin");
      } else {
        break;
      }
      if (cmp->args.empty()) cmp->args.push_back(std::move(first));
      cmp->args.push_back(parse_math1());
    }
    return cmp->ops.empty() ? std::move(first) : std::move(cmp);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = advance();
      left = binary(ExprKind::binary, t.value, t.offset, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const size_t offset = cur().offset;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto c = node(ExprKind::concat, offset);
    c->args.push_back(std::move(first));
    while (skip_op("~")) c->args.push_back(parse_math2());
    return c;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = advance();
      left = binary(ExprKind::binary, t.value, t.offset, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& t = advance();
      left = binary(ExprKind::binary, "**", t.offset, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& t = advance();
      e = node(t.value == "-" ? ExprKind::negate : ExprKind::positive, t.offset);
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr constant(Value v, size_t offset) {
    auto e = node(ExprKind::constant, offset);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = cur();
    switch (t.type) {
      case TokenType::name: {
        advance();
        if (t.value == "true" || t.value == "True") return constant(Value::boolean(true), t.offset);
        if (t.value == "false" || t.value == "False") return constant(Value::boolean(false), t.offset);
        if (t.value == "none" || t.value == "None") return constant(Value::none(), t.offset);
        auto e = node(ExprKind::name, t.offset);
        e->name = t.value;
        return e;
      }
      case TokenType::string: {
        std::string s;
        const size_t offset = t.offset;
        while (cur().type == TokenType::string) s += advance().value;
        return constant(Value::string(std::move(s)), offset);
      }
      case TokenType::integer: advance(); return constant(Value::integer(t.int_value), t.offset);
      case TokenType::floating: advance(); return constant(Value::floating(t.float_value), t.offset);
      default: break;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(false, true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    error(fmt::format("unexpected '{}'", describe(t)));
  }

  ExprPtr parse_list() {
    auto e = node(ExprKind::list, advance().offset);
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      e->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = node(ExprKind::dict, advance().offset);
    while (!is_op("}")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("}")) break;
      e->args.push_back(parse_expression(true));
      expect_op(":");
      e->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".") || is_op("["))
        e = parse_subscript(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|"))
        e = parse_filter(std::move(e), false);
      else if (is_name("is"))
        e = parse_test(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    DepthGuard guard(*this);
    const Token& t = advance();
    if (t.value == ".") {
      const Token& attr = advance();
      if (attr.type == TokenType::name) {
        auto e = node(ExprKind::getattr, t.offset);
        e->name = attr.value;
        e->args.push_back(std::move(target));
        return e;
      }
      if (attr.type != TokenType::integer) error_at(attr.offset, "expected name or number");
      auto e = node(ExprKind::getitem, t.offset);
      e->args.push_back(std::move(target));
      e->args.push_back(constant(Value::integer(attr.int_value), attr.offset));
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = node(ExprKind::getitem, t.offset);
    e->args.push_back(std::move(target));
    if (args.size() == 1) {
      e->args.push_back(std::move(args[0]));
    } else {
      auto tuple = node(ExprKind::tuple, t.offset);
      tuple->args = std::move(args);
      e->args.push_back(std::move(tuple));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    const size_t offset = cur().offset;
    std::vector<ExprPtr> args;
    if (skip_op(":")) {
      args.push_back(nullptr);
    } else {
      ExprPtr e = parse_expression(true);
      if (!is_op(":")) return e;
      advance();
      args.push_back(std::move(e));
    }
    if (is_op(":") || is_op("]") || is_op(","))
      args.push_back(nullptr);
    else
      args.push_back(parse_expression(true));
    if (skip_op(":")) {
      if (is_op("]") || is_op(","))
        args.push_back(nullptr);
      else
        args.push_back(parse_expression(true));
    } else {
      args.push_back(nullptr);
    }
    auto s = node(ExprKind::slice, offset);
    s->args = std::move(args);
    return s;
  }

  void parse_call_args(Expr& e) {
    const size_t offset = cur().offset;
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) error_at(offset, "invalid syntax for function call expression");
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (skip_op("*")) {
        ensure(!e.star_args && !e.star_kwargs);
        e.star_args = parse_expression(true);
      } else if (skip_op("**")) {
        ensure(!e.star_kwargs);
        e.star_kwargs = parse_expression(true);
      } else if (cur().type == TokenType::name && look().type == TokenType::op && look().value == "=") {
        ensure(!e.star_kwargs);
        std::string key = advance().value;
        advance();
        e.keywords.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!e.star_args && !e.star_kwargs && e.keywords.empty());
        e.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    DepthGuard guard(*this);
    auto e = node(ExprKind::call, cur().offset);
    e->args.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  // `target` null: a filter chain for {% filter %} or {% set x | f %} applied to a block.
  ExprPtr parse_filter(ExprPtr target, bool start_inline) {
    DepthGuard guard(*this);
    while (is_op("|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      const size_t offset = cur().offset;
      auto e = node(ExprKind::filter, offset);
      e->name = parse_dotted_name();
      e->args.push_back(std::move(target));
      if (is_op("(")) parse_call_args(*e);
      target = std::move(e);
    }
    return target;
  }

  ExprPtr parse_test(ExprPtr target) {
    DepthGuard guard(*this);
    const size_t offset = advance().offset;
    const bool negated = skip_name("not");
    auto e = node(ExprKind::test, offset);
    e->name = parse_dotted_name();
    e->args.push_back(std::move(target));
    const TokenType type = cur().type;
    const bool arg_start = type == TokenType::name || type == TokenType::string ||
                           type == TokenType::integer || type == TokenType::floating ||
                           is_op("[") || is_op("{");
    if (is_op("(")) {
      parse_call_args(*e);
    } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error("You cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return e;
    auto n = node(ExprKind::logical_not, offset);
    n->args.push_back(std::move(e));
    return n;
  }

  const LexedTemplate& lexed_;
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const LexedTemplate& lexed) { return Parser(lexed).parse(); }

}  // namespace fp4llm::tmpl
