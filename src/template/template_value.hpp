// The values a template computes with: a model of the Python objects jinja2 sees (None, bool,
// int, float, str, list, tuple, dict, generators, dict views, namespaces, functions), together
// with jinja2's Undefined. Lists and dicts are immutable once built, as in the immutable sandbox
// transformers renders with, so they are shared by pointer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fp4llm::tmpl {

class Value;
class Object;
struct List;
struct Dict;

enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, object };

// Which Python type a sequence value stands for: they print, index, and test differently
// (a generator is always true and has no len(), dict_items prints as "dict_items([...])").
enum class Seq { list, tuple, generator, dict_keys, dict_values, dict_items, range };

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  // A markupsafe.Markup string (from |safe and |escape): not escaped again, and it escapes
  // plain strings added to it with +.
  static Value markup(std::string s);
  static Value list(std::vector<Value> items, Seq seq = Seq::list);
  static Value list(std::shared_ptr<const List> list);
  static Value dict(std::shared_ptr<const Dict> dict);
  static Value object(std::shared_ptr<Object> object);
  static Value from_json(const nlohmann::ordered_json& json, int depth = 0);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_float() const { return kind_ == Kind::floating; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python numbers
  bool is_string() const { return kind_ == Kind::string; }
  bool is_markup() const { return kind_ == Kind::string && markup_; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_object() const { return kind_ == Kind::object; }
  bool is_seq(Seq seq) const;

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }  // also bools (Python's bool is an int)
  double as_float() const { return is_float() ? float_ : static_cast<double>(int_); }
  const std::string& str() const { return string_; }  // strings; the message of an undefined
  const List& list() const { return *list_; }
  const Dict& dict() const { return *dict_; }
  Object& object() const { return *object_; }
  const std::shared_ptr<Object>& object_ptr() const { return object_; }

 private:
  Kind kind_ = Kind::undefined;
  bool bool_ = false;
  bool markup_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<Object> object_;
};

struct List {
  Seq seq = Seq::list;
  std::vector<Value> items;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // what a range() prints
};

// A Python dict: insertion ordered, keys compared as Python compares them (1 == 1.0 == True).
struct Dict {
  std::vector<std::pair<Value, Value>> entries;

  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(Value key, Value value);  // replaces in place, as d[k] = v does

 private:
  std::unordered_map<std::string, size_t> string_index_;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Namespaces, loop objects, functions and bound methods.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  // nullopt: no such attribute (the caller makes an undefined).
  virtual std::optional<Value> get_attr(const std::string& name) const;
  virtual bool is_namespace() const { return false; }
  virtual void set_attr(const std::string& name, Value value);
  virtual bool is_callable() const { return false; }
  virtual Value call(const CallArgs& args);
  // Python's repr(); throws for objects whose repr shows a memory address.
  virtual std::string repr() const;
};

class Function : public Object {
 public:
  Function(std::string name, std::function<Value(const CallArgs&)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string type_name() const override { return "function"; }
  bool is_callable() const override { return true; }
  Value call(const CallArgs& args) override { return fn_(args); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::function<Value(const CallArgs&)> fn_;
};

class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::optional<Value> get_attr(const std::string& name) const override;
  bool is_namespace() const override { return true; }
  void set_attr(const std::string& name, Value value) override;
  std::string repr() const override;

 private:
  Dict attrs_;
};

Value make_function(std::string name, std::function<Value(const CallArgs&)> fn);

// Python's type name, for error messages ("'int' object is not iterable").
std::string type_name(const Value& v);

}  // namespace fp4llm::tmpl
