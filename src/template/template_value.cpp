#include "template/template_value.hpp"

#include "template/template_ops.hpp"
#include "template/template_printing.hpp"
#include "util/error.hpp"

namespace fp4llm::tmpl {

Value Value::undefined(std::string hint) {
  Value v;
  v.string_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.bool_ = b;
  v.int_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::integer;
  v.int_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.kind_ = Kind::floating;
  v.float_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::string;
  v.string_ = std::move(s);
  return v;
}

Value Value::markup(std::string s) {
  Value v = string(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::list(std::vector<Value> items, Seq seq) {
  auto list = std::make_shared<List>();
  list->seq = seq;
  list->items = std::move(items);
  return Value::list(std::move(list));
}

Value Value::list(std::shared_ptr<const List> list) {
  Value v;
  v.kind_ = Kind::list;
  v.list_ = std::move(list);
  return v;
}

Value Value::dict(std::shared_ptr<const Dict> dict) {
  Value v;
  v.kind_ = Kind::dict;
  v.dict_ = std::move(dict);
  return v;
}

Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.kind_ = Kind::object;
  v.object_ = std::move(object);
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json, int depth) {
  using T = nlohmann::ordered_json::value_t;
  // Python's json module and jinja2 recurse too; refuse absurd nesting instead of the stack.
  if (depth > 256) fail("template input nested more than 256 levels deep");
  switch (json.type()) {
    case T::null:
      return none();
    case T::boolean:
      return boolean(json.get<bool>());
    case T::number_integer:
      return integer(json.get<int64_t>());
    case T::number_unsigned: {
      const auto u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail("integer {} is too large for a template", u);
      return integer(static_cast<int64_t>(u));
    }
    case T::number_float:
      return floating(json.get<double>());
    case T::string:
      return string(json.get<std::string>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item, depth + 1));
      return list(std::move(items));
    }
    case T::object: {
      auto dict = std::make_shared<Dict>();
      for (const auto& [key, item] : json.items()) dict->set(string(key), from_json(item, depth + 1));
      return Value::dict(std::move(dict));
    }
    default:
      fail("unsupported JSON value in template input");
  }
}

bool Value::is_seq(Seq seq) const { return is_list() && list_->seq == seq; }

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(key.str());
  for (const auto& [k, v] : entries)
    if (!k.is_string() && py_equal(k, key)) return &v;
  return nullptr;
}

const Value* Dict::find(const std::string& key) const {
  const auto it = string_index_.find(key);
  return it == string_index_.end() ? nullptr : &entries[it->second].second;
}

void Dict::set(Value key, Value value) {
  if (key.is_list() && key.list().seq != Seq::tuple) fail("unhashable type: '{}'", type_name(key));
  if (key.is_dict()) fail("unhashable type: 'dict'");
  if (key.is_string()) {
    const auto [it, inserted] = string_index_.try_emplace(key.str(), entries.size());
    if (inserted)
      entries.emplace_back(std::move(key), std::move(value));
    else
      entries[it->second].second = std::move(value);
    return;
  }
  for (auto& [k, v] : entries) {
    if (!k.is_string() && py_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

std::optional<Value> Object::get_attr(const std::string&) const { return std::nullopt; }

void Object::set_attr(const std::string&, Value) {
  fail("cannot assign attribute on non-namespace object");
}

Value Object::call(const CallArgs&) { fail("'{}' object is not callable", type_name()); }

std::string Object::repr() const {
  fail("cannot print a {} object (Python would print its memory address)", type_name());
}

std::optional<Value> Namespace::get_attr(const std::string& name) const {
  if (const Value* v = attrs_.find(name)) return *v;
  return std::nullopt;
}

void Namespace::set_attr(const std::string& name, Value value) {
  attrs_.set(Value::string(name), std::move(value));
}

std::string Namespace::repr() const {
  auto dict = std::make_shared<Dict>(attrs_);
  return "<Namespace " + py_repr(Value::dict(dict)) + ">";
}

Value make_function(std::string name, std::function<Value(const CallArgs&)> fn) {
  return Value::object(std::make_shared<Function>(std::move(name), std::move(fn)));
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined:
      return "Undefined";
    case Kind::none:
      return "NoneType";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return "str";
    case Kind::dict:
      return "dict";
    case Kind::object:
      return v.object().type_name();
    case Kind::list:
      break;
  }
  switch (v.list().seq) {
    case Seq::list:
      return "list";
    case Seq::tuple:
      return "tuple";
    case Seq::generator:
      return "generator";
    case Seq::dict_keys:
      return "dict_keys";
    case Seq::dict_values:
      return "dict_values";
    case Seq::dict_items:
      return "dict_items";
    case Seq::range:
      return "range";
  }
  return "object";
}

}  // namespace fp4llm::tmpl
