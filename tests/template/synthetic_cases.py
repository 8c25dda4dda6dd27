"""Small templates that exercise one feature each, plus randomly assembled whitespace-control
templates. Each is rendered by Python jinja2 (as transformers configures it) and by fp4llm."""
import random

V = {
    "s": "Hello, World",
    "u": "héllo wörld ΣΑΣ straße ﬁx İi",
    "n": 42, "neg": -7, "f": 2.5, "z": 0, "t": True, "no": False, "nil": None,
    "xs": [3, 1, 2], "words": ["b", "A", "c", "a"], "empty": [],
    "d": {"b": 1, "a": [1, 2.0, {"k": None}], "c": "x"},
    "msgs": [{"role": "user", "content": "hi", "n": 1}, {"role": "assistant", "content": "yo", "n": 2},
             {"role": "tool", "content": "", "n": 3}],
    "nested": {"a": {"b": {"c": "deep"}}},
    "floats": [0.1, 1.0, 1e16, 1e-5, 123456789.125, -0.0, 1e300 * 10, 3.14159, 100.0, 1e22],
    "txt": "  line one\n\tline two  \n\nline four\u3000",
}

CASES = [
    # --- whitespace control, trim_blocks and lstrip_blocks ---
    "a\n{% if t %}\nb\n{% endif %}\nc",
    "a\n    {% if t %}\n    b\n    {% endif %}\nc",
    "a  {% if t %}  b  {% endif %}  c",
    "a\n  {%- if t %}\n  b\n  {%- endif %}\nc",
    "a\n  {% if t -%}\n  b\n  {% endif -%}\nc",
    "a\n  {%+ if t %}\n  b\n  {%+ endif %}\nc",
    "a\n  {% if t +%}\n  b\n  {% endif +%}\nc",
    "a\n  {{ s }}\n  {{- s }}  \n  {{ s -}}  \n  z",
    "  {# comment #}\nx\n  {#- c2 -#}  y\n{# c3 #}  \nq",
    "\t\t{% for i in xs %}\n\t\t{{ i }}\n\t\t{% endfor %}\n",
    "{% for i in xs %}{{ i }}\n{% endfor %}",
    "line\r\nsecond\r\n{% if t %}\r\nthird\r\n{% endif %}\r\n",
    "mac\rline\r{% if t %}\rx{% endif %}",
    "trailing newline\n",
    "two trailing newlines\n\n",
    "{% raw %}{{ not rendered }}{% endraw %}",
    "  {% raw %}\n  {{ x }} {% if %}\n  {% endraw %}\nafter",
    "{%- raw -%}  a  {%- endraw -%}  b",
    "\u3000 {% if t %}x{% endif %}",
    "a\u00a0\n\u2003{% if t %}y{% endif %}",
    "{{ 'a' }}  {% if t %}b{% endif %}",
    "{% if t %}   {% endif %}\n  {% if t %}x{% endif %}",
    "x {%- if t -%} \n\n y \n\n {%- endif -%} z",
    "{{- '  a  ' -}}",
    "\n\n{{- s -}}\n\n",
    "{% if t %}a{% else %}b{% endif %}\n{% if no %}a{% elif t %}c{% else %}b{% endif %}",
    "{% set x %}\n  block {{ n }}\n{% endset %}[{{ x }}]",
    "{% set x | upper %}shout{% endset %}{{ x }}",
    "{% filter upper %}up {{ s }}{% endfilter %}",
    "{{ 'a' ~ 'b' }}{#\nmulti\nline\n#}\n{{ 'c' }}",
    # --- loops ---
    "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
    "{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
    "{% for x in empty %}{{ x }}{% else %}none{% endfor %}",
    "{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{{ loop.length }}{% else %}E{% endfor %}",
    "{% for x in xs if x > 10 %}{{ x }}{% else %}filtered-empty{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in d %}{{ k }}{% endfor %}",
    "{% for c in s %}{{ c }}.{% endfor %}",
    "{% for c in u %}[{{ c }}]{% endfor %}",
    "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
    "{% for x in xs %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for a in xs %}{% for b in xs %}{% if b == 2 %}{% break %}{% endif %}{{ a }}{{ b }},{% endfor %}"
    "{{ loop.index }}|{% endfor %}",
    "{% for x in xs %}{{ loop.cycle('odd', 'even') }}{% endfor %}",
    "{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}",
    "{% for x in xs %}{% for y in 'ab' %}{{ loop.depth }}{{ loop.depth0 }}{% endfor %}{{ loop.depth }}{% endfor %}",
    "{% for m in msgs | selectattr('role', 'equalto', 'user') %}{{ m.content }}{% endfor %}",
    "{% for m in msgs | rejectattr('role', 'in', ['user', 'tool']) %}{{ m.content }}{% endfor %}",
    "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
    "{% for x in range(3) %}{{ x }}{% endfor %}{% for x in range(1, 10, 3) %}{{ x }}{% endfor %}"
    "{% for x in range(5, 0, -2) %}{{ x }}{% endfor %}",
    "{% for x in nil %}{% endfor %}",
    "{% for x in undefined_thing %}x{% else %}else{% endfor %}",
    "{% for m in msgs[::-1] %}{{ m.role }}{% endfor %}",
    "{% for x in xs %}{{ loop }}{% endfor %}",
    # --- scoping and namespaces ---
    "{% set x = 1 %}{% for i in xs %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, s='') %}{% for i in xs %}{% set ns.total = ns.total + i %}"
    "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.total }} {{ ns.s }} {{ ns }}",
    "{% if t %}{% set y = 5 %}{% endif %}{{ y }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}",
    "{% with a = 3, b = 4 %}{{ a * b }}{% endwith %}{{ a }}",
    "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c }}",
    "{% set x = 5 %}{% set x = x + 1 %}{{ x }}",
    "{% set d2 = dict(a=1, b=[2]) %}{{ d2 }}",
    # --- expressions and printing ---
    "{{ n }} {{ neg }} {{ f }} {{ z }} {{ t }} {{ no }} {{ nil }} {{ missing }}|",
    "{{ floats }}",
    "{% for x in floats %}{{ x }} {% endfor %}",
    "{{ d }} {{ xs }} {{ msgs }} {{ (1, 'a') }} {{ (1,) }} {{ () }} {{ [] }} {{ {} }}",
    "{{ ['it\\'s', \"q\\\"uote\", 'both\\'\"', 'nl\\n', 'tab\\t', 'bs\\\\', 'uni é \\u00a0 \\x07'] }}",
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}"
    " {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
    "{{ 1 + 2.0 }} {{ 10 / 4 }} {{ 3 * 1.5 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} "
    "{{ 1.5e-3 }} {{ 2E5 }}",
    "{{ 'ab' * 3 }} {{ [1] * 3 }} {{ 3 * 'x' }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'x' ~ 1 ~ nil ~ t }}",
    "{{ t + 1 }} {{ t * 3 }} {{ no + 0.5 }} {{ -t }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }}"
    " {{ (1, 2) == [1, 2] }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}",
    "{{ 'ell' in s }} {{ 2 in xs }} {{ 'b' in d }} {{ 'zz' not in s }} {{ 5 not in xs }} {{ 'x' in undefined_var }}",
    "{{ t and 'yes' }} {{ no and 'yes' }} {{ no or 'fallback' }} {{ nil or missing or 'last' }}"
    " {{ not t }} {{ not nil }} {{ (xs and empty) }} {{ xs or 1 }}",
    "{{ 'a' if t else 'b' }} {{ 'a' if no else 'b' }} {{ 'a' if no }}|{{ 1 if no else 2 if t else 3 }}",
    "{{ 'con' 'cat' \"enated\" }}",
    "{{ '\\x41\\u00e9\\U0001F600\\101\\n\\t\\\\\\'\\\"\\q\\a' }}",
    "{{ 'é\\é' }}",
    "{{ s[0] }} {{ s[-1] }} {{ s[1:4] }} {{ s[:3] }} {{ s[7:] }} {{ s[::-1] }} {{ s[::2] }} {{ s[-3:] }}"
    " {{ s[100:] }} {{ s[-100:2] }} {{ s[5:1:-1] }}",
    "{{ u[0] }} {{ u[1] }} {{ u[-1] }} {{ u[2:6] }} {{ u[::-1] }} {{ u | length }}",
    "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[5:] }}"
    " {{ msgs[1:][0].role }} {{ xs[-5:-1] }} {{ xs[::-2] }}",
    "{{ msgs[0].content }} {{ msgs[0]['role'] }} {{ d.a[2].k }} {{ nested.a.b.c }} {{ nested['a']['b'] }}"
    " {{ xs.0 }} {{ msgs.1.role }}",
    "{{ d.missing }}|{{ d['missing'] }}|{{ xs[10] }}|{{ s.nope }}|{{ nil.x }}|{{ n.real }}",
    "{{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ d.get('c') }} {{ d.get('q') }} {{ d.get('q', 9) }}",
    "{{ {'a': 1, 'b': [1, 2]}['b'][1] }} {{ {1: 'one', 'k': 'v'}[1] }} {{ [1, [2, [3]]][1][1][0] }}",
    "{{ (1, 2)[0] }} {{ range(5)[2] }} {{ range(3) }} {{ range(1, 7, 2) }}",
    # --- string methods ---
    "{{ s.lower() }} {{ s.upper() }} {{ s.title() }} {{ s.capitalize() }} {{ s.swapcase() }}",
    "{{ u.lower() }} {{ u.upper() }} {{ u.title() }} {{ u.capitalize() }}",
    "{{ s.startswith('Hell') }} {{ s.endswith('d') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith('o', 0, 5) }}",
    "{{ s.split(', ') }} {{ s.split() }} {{ 'a b  c'.split(' ') }} {{ 'a,b,c'.split(',', 1) }}"
    " {{ 'a,b,c'.rsplit(',', 1) }} {{ '  x  y '.split() }} {{ ' a b '.rsplit(None, 1) }} {{ ''.split() }}"
    " {{ ''.split(',') }}",
    "[{{ txt.strip() }}] [{{ txt.lstrip() }}] [{{ txt.rstrip() }}] [{{ 'xxhixx'.strip('x') }}]"
    " [{{ '\\n\\nhi\\n'.lstrip('\\n') }}] [{{ 'abcba'.strip('ab') }}]",
    "{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 2) }} {{ 'ab'.replace('', '-') }} {{ s.find('o') }}"
    " {{ s.rfind('o') }} {{ s.find('zz') }} {{ s.count('l') }} {{ u.find('w') }} {{ s.index('W') }}",
    "{{ '-'.join(['a', 'b']) }} {{ s.isdigit() }} {{ '123'.isdigit() }} {{ 'abc'.isalpha() }}"
    " {{ 'ab1'.isalnum() }} {{ '  '.isspace() }} {{ 'abc'.islower() }} {{ 'ABC'.isupper() }}",
    "{{ 'x'.ljust(4, '.') }}|{{ 'x'.rjust(4) }}|{{ 'ab'.center(7, '*') }}|{{ '42'.zfill(5) }}|"
    "{{ '-42'.zfill(6) }}",
    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'k=v=w'.partition('=') }} {{ 'k=v=w'.rpartition('=') }}"
    " {{ 'prefix-x'.removeprefix('prefix-') }} {{ 'x.txt'.removesuffix('.txt') }}",
    "{{ '{} and {}'.format('a', 1) }} {{ '{0}{1}{0}'.format('x', 'y') }} {{ '{name}!'.format(name='N') }}",
    "{{ '%s is %d' % ('x', 3) }} {{ 'no args' % () }} {{ '%s' % [1, 2] }} {{ '100%%' % () }}",
    "{{ msgs[0].content.startswith('h') and msgs[0].content.endswith('i') }}",
    "{{ '</think>' in 'a</think>b' }} {{ 'a\\n\\n</think>\\n\\nb'.split('</think>')[-1].lstrip('\\n') }}",
    # --- filters ---
    "{{ d | tojson }} {{ xs | tojson }} {{ msgs | tojson }}",
    "{{ {'é': 'ü \\u2028 \\x00 \\x1f \\x7f \"q\" \\\\ / <b>&'} | tojson }}",
    "{{ floats | tojson }}",
    "{{ [1, 1.0, true, none, 'x', [], {}, (1, 2)] | tojson }}",
    "{{ d | tojson(indent=2) }}",
    "{{ d | tojson(indent=0) }}{{ [] | tojson(indent=2) }}{{ {'a': []} | tojson(indent='\\t') }}",
    "{{ d | tojson(sort_keys=true) }} {{ {'b': 1, 'a': 2} | tojson(separators=(',', ':')) }}",
    "{{ 'é😀' | tojson(ensure_ascii=true) }} {{ {1: 'int key', none: 'n', true: 'b', 2.5: 'f'} | tojson }}",
    "{{ s | tojson }} {{ n | tojson }} {{ nil | tojson }} {{ t | tojson }}",
    "{{ missing | tojson }}",
    "{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ txt | trim }}|{{ n | trim }}|{{ missing | trim }}|",
    "{{ xs | length }} {{ s | length }} {{ d | length }} {{ u | count }} {{ missing | length }} {{ empty | length }}",
    "{{ xs | first }} {{ xs | last }} {{ s | first }} {{ s | last }} {{ d | first }} {{ empty | first }}|",
    "{{ xs | join }} {{ xs | join(', ') }} {{ msgs | join('-', attribute='role') }} {{ [1, none, 'a'] | join('|') }}",
    "{{ missing | default('dflt') }} {{ nil | default('dflt') }} {{ '' | default('dflt', true) }}"
    " {{ 0 | d('zero', boolean=true) }} {{ s | default('x') }} {{ missing | d }}|",
    "{{ s | list }} {{ d | list }} {{ (1, 2) | list }} {{ missing | list }}",
    "{{ n | string }} {{ nil | string }} {{ xs | string }} {{ f | string ~ '!' }}",
    "{{ s | lower }} {{ s | upper }} {{ 'hello WORLD-foo bar(baz' | title }} {{ 'hELLO world' | capitalize }}",
    "{{ u | upper }} {{ u | lower }} {{ u | title }}",
    "{{ '42' | int }} {{ '42.7' | int }} {{ 3.9 | int }} {{ 'abc' | int }} {{ 'abc' | int(7) }} {{ t | int }}"
    " {{ ' 12 ' | int }} {{ '1_000' | int }} {{ nil | int }} {{ 'ff' | int(base=16) }} {{ '-3' | int }}",
    "{{ '2.5' | float }} {{ 3 | float }} {{ 'x' | float }} {{ 'x' | float(1.5) }} {{ '1e3' | float }}"
    " {{ 'inf' | float }} {{ ' -0.5 ' | float }}",
    "{{ s | safe }} {{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | escape }}",
    "{{ s | replace('o', '0') }} {{ s | replace('l', '', 1) }} {{ n | replace('4', 'four') }}",
    "{{ xs | reverse | list }} {{ s | reverse }} {{ xs | sort }} {{ xs | sort(reverse=true) }}"
    " {{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ msgs | sort(attribute='role') | map(attribute='n') | list }}",
    "{{ msgs | map(attribute='role') | list }} {{ msgs | map(attribute='missing', default='?') | list }}"
    " {{ ['a', 'B'] | map('upper') | list }} {{ xs | map('string') | join }} {{ [[1, 2]] | map(attribute='0') | list }}",
    "{{ xs | select('odd') | list }} {{ xs | reject('odd') | list }} {{ [0, 1, '', 'a', none] | select | list }}"
    " {{ xs | select('>', 1) | list }} {{ xs | select('equalto', 2) | list }} {{ words | select('lower') | list }}",
    "{{ msgs | selectattr('content') | map(attribute='role') | list }} {{ msgs | rejectattr('content') | list }}"
    " {{ msgs | selectattr('n', 'ge', 2) | map(attribute='n') | list }}",
    "{% if empty | select %}generator-is-true{% endif %} {{ (empty | select | list) | length }}",
    "{{ d | items | list }} {{ d | dictsort }} {{ {'b': 2, 'A': 1, 'a': 3} | dictsort }}"
    " {{ {'b': 2, 'a': 3} | dictsort(by='value', reverse=true) }}",
    "{{ [1, 2, 1, 3] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ xs | min }} {{ xs | max }}"
    " {{ words | max }} {{ empty | min }}| {{ xs | sum }} {{ msgs | sum(attribute='n') }} {{ [0.5, 1] | sum(start=1) }}",
    "{{ -3 | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 7 | round }}"
    " {{ 1.25 | round(1, 'floor') }} {{ 1.21 | round(1, 'ceil') }} {{ -0.5 | round }}",
    "{{ 'line1\\nline2\\n\\nline4' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}",
    "{{ '%s-%s' | format('a', 2) }} {{ s | attr('upper')() }} {{ d | attr('c') }}",
    "{{ 'x' | center(5) }}|",
    # --- tests ---
    "{{ n is defined }} {{ missing is defined }} {{ missing is undefined }} {{ nil is none }} {{ n is none }}"
    " {{ t is boolean }} {{ n is boolean }} {{ t is true }} {{ 1 is true }} {{ no is false }}",
    "{{ n is integer }} {{ t is integer }} {{ f is float }} {{ t is number }} {{ f is number }}"
    " {{ s is string }} {{ d is mapping }} {{ xs is mapping }} {{ xs is iterable }} {{ s is iterable }}"
    " {{ n is iterable }} {{ missing is iterable }} {{ d is sequence }} {{ xs is sequence }} {{ n is sequence }}",
    "{{ n is even }} {{ n is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'a' is lower }}"
    " {{ 'A' is upper }} {{ range is callable }} {{ n is callable }} {{ nil is sameas none }} {{ n is sameas 42 }}",
    "{{ 2 is in xs }} {{ 2 is eq 2 }} {{ 2 is ne 2 }} {{ 1 is lt 2 }} {{ 3 is gt 2 }} {{ 2 is le 2 }}"
    " {{ 2 is ge 3 }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }} {{ s is escaped }}",
    "{{ n is not none }} {{ missing is not defined }} {{ xs is not string }}",
    "{% if messages is defined and messages is not none %}x{% else %}y{% endif %}",
    # --- macros ---
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }}",
    "{% macro item(x) %}<{{ x }}>{% endmacro %}{% for i in xs %}{{ item(i) }}{% endfor %}{{ item() }}",
    "{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(4) }}",
    # --- errors (both sides must fail) ---
    "{{ missing.attr }}",
    "{{ missing['k'] }}",
    "{{ missing + 1 }}",
    "{{ 'a' + 1 }}",
    "{{ 1 / 0 }}",
    "{{ raise_exception('custom failure message') }}",
    "{% for x in n %}{% endfor %}",
    "{{ 'x' in nil }}",
    "{% if %}{% endif %}",
    "{% for x in xs %}",
    "{{ x ",
    "{% endfor %}",
    "{% unknown_tag %}",
    "{{ xs | nosuchfilter }}",
    "{{ xs is nosuchtest }}",
    "{{ [1, 2 }}",
    "{% set xs.a = 1 %}",
    "{{ xs.append(4) }}",
    "{{ d.update({}) }}",
    "{{ range(1000000) | length }}",
    "{{ 'a' < 1 }}",
    "{{ none < 1 }}",
    "{{ (xs | reverse)[0] }}",
    "{{ undefined_fn() }}",
    "{% set a, b = xs %}",
    "{{ s.casefold() }}",
    # jinja2 folds constant subscripts at compile time: a failed slice of a constant is undefined
    "{{ {'a': 1, 'b': [1, 2]}['b'][1] [::-1] }}|{{ [1][0][1:] }}|{{ (1).real[1:] }}|{{ 2[::-1] }}",
    "{{ xs[0][1:] }}",
    "{{ 'abc'[::-0] | safe }}",
    "{{ 'abc'['a':] }}|{{ 'inf' | int }}|{{ 'nan' | int(3) }}",
    "{{ 1.0e999 | int }}",
    "h{#",
    "h{# x",
    "h{% raw %}",
    "h{% raw %}x",
    # --- Markup from |safe and |escape; undefined arguments where Python needs a value ---
    "{{ '<b>' | escape | e }}",
    "{{ '<b>'|safe + '<i>' }}",
    "{{ '<i>' + '<b>'|safe }}",
    "{{ '<b>'|e ~ '<i>' }}",
    "{{ '<b>'|safe|string + '&' }}",
    "{{ '<b>'|safe is escaped }} {{ 'x' is escaped }}",
    "{{ '&'|forceescape|forceescape }}",
    "{{ ('<'|e) == '&lt;' }}",
    "{{ ['<'|e] }}",
    "{{ '<'|safe|tojson }}",
    '{{ [1,2] | sum(start) }}',
    '{{ xs[::undefined_thing] }}',
    "{{ 'a b'.split(undefined_thing) }}",
    '{{ xs | sort(reverse=1) }}',
    '{{ xs|sort(reverse=none) }}',
    '{{ (xs|reverse)[1:] }}',
    '{{ d[1:] }}',
    "{{ '{}{0}'.format(1) }}",
    "{{ ' x '|trim(undefined_thing) }}",
    # --- more semantics: truthiness, numbers, scoping corners, unicode case mapping ---
    "{% set x = 1 if no %}{{ x }}|{{ x is defined }}",
    "{{ none ~ 1 }}{{ [1,2] | join(none) }}",
    "{{ 'a' * -1 }}|{{ [1] * 0 }}",
    "{{ {'a':1,'a':2} }}",
    "{{ {'a': 1} | dictsort(by='value') }}",
    "{{ [3,1] | sort | first }}",
    "{{ xs | map('int') | list }}",
    "{{ msgs | map(attribute='content') | join(',') }}",
    "{{ d.a.1 }} {{ d['a'][-1]['k'] }} {{ xs[1.0] }}",
    "{{ s[1:3:0] }}",
    "{{ 'x' is string and 1 is number }}",
    "{{ 1 is divisibleby 0 }}",
    "{{ (1, 2) + (3,) }} {{ [1] + (2,) }}",
    "{% for i in 3 %}{% endfor %}",
    "{{ -n }} {{ +f }} {{ -'a' }}",
    "{{ not missing }} {{ missing == missing }} {{ missing != none }}",
    "{{ 'a' in ['a'] and 'b' not in 'abc' }}",
    "{{ 1 == true }} {{ 0 == false }} {{ 1.0 == true }} {{ [true] == [1] }} {{ {1: 'a'}[true] }}",
    "{% set ns = namespace(x=[]) %}{% set ns.x = ns.x + [1] %}{{ ns.x }}",
    "{{ range(3) | list }} {{ range(0) | length }} {{ range(10)[2:5] | list }}",
    "{{ txt.split('\\n') }}",
    "{{ '\u00e9\u00e8' | upper }} {{ 'ǅ' | lower }} {{ 'ﬁ'.upper() }} {{ 'ß'.title() }} {{ 'ΣΑΣ ΑΣ'.lower() }}",
    "{{ u.capitalize() }} {{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'ab_cd-ef'.title() }}",
    "{{ 3.0 }} {{ 1e-4 }} {{ 0.0001 }} {{ 1e15 }} {{ 12345678901234567.0 }} {{ 1/3 }} {{ 2/3 }} {{ 0.1+0.2 }}",
    "{{ [0.1+0.2, 1e-10, 5e-324, 1.7976931348623157e308] | tojson }}",
    "{{ 9007199254740993 }} {{ 2**62 }} {{ -2**63 }}",
    "{{ xs | sum(start=0.5) }} {{ [[1],[2]] | sum(start=[]) }}",
    "{{ 'a' ~ 1.0 ~ [1.0] ~ {'x': 1.5} }}",
    "{% for k, v in d | dictsort %}{{ k }}{% endfor %}",
    "{% for a in [[1,2,3]] %}{% for x in a %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% for x in xs %}{% set y = loop.index %}{% endfor %}{{ y }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{% if xs|length > 2 and xs[0] is odd %}Y{% endif %}",
    "{{ {'k': none}.k is none }} {{ {'k': none}.get('k', 1) }}",
    "{{ msgs[0]['content'][0] }}{{ msgs|last|attr('content') }}",
    "{{ 'x'|indent(first=true) }} {{ ''|indent }}",
    "{{ d|length }}{{ d|first }}{{ d|last }}",
    "{{ xs|reverse|first }}",
    "{{ t|string|upper }} {{ nil|lower }}",
    "{{ 'ab'[5] }}|{{ 'ab'[5] is defined }}",
    "{{ xs[t] }} {{ xs[no] }}",
    "{{ 'abc'.startswith('') }} {{ ''.join([]) }} {{ 'a b'.split(' ', 0) }} {{ 'a,b,,c'.split(',') }}",
    "{%- for m in msgs -%}\n  {{- m.role -}}\n{%- endfor -%}",
    "{% for m in msgs %}\n  {%- if loop.first %}F{% endif %}\n{% endfor %}",
    "A{#-  -#}B{# x -#}  C  {#- y #}D",
    "{{ 1 }}{% raw -%}  R  {%- endraw %}",
    "{{ d|tojson(indent=-1) }}",
    "{{ 1 if t else 2 if no }}",
    "{{ 'x' if 'x' in s else 'y' }}",
    "{{ n // 0.0 }}",
    "{{ 5 % -3 }} {{ -5 % 3 }} {{ 5.5 % -2 }} {{ -5 // 3 }} {{ 5 // -3.0 }}",
    "{{ 2 ** 0.5 }} {{ 4 ** -2 }} {{ (-8) ** 2 }} {{ 0 ** 0 }}",
    "{{ [1,2,3][1:2][0] }} {{ (1,2,3)[::-1] }} {{ 'abc'[-1:-4:-1] }}",
    "{{ 'k' in {'k': 1}.keys() }} {{ 1 in {'k': 1}.values() }} {{ d.items() | list | first }}",
]


# Python prints these with a memory address ("<generator object ... at 0x...>"), which no
# prompt should contain: fp4llm refuses them with a clear error instead.
ADDRESS_PRINTING = [
    "{{ xs | select('odd') }}",
    "{{ xs | reverse }}",
    "{{ d.items }}",
    "{{ range }}",
]


def synthetic_cases():
    return [{"template": t, "variables": V} for t in CASES]


# --- random whitespace-control templates: the lexer's stripping rules are the usual source of
# byte differences, so build many templates from tricky pieces and compare them all. ---
BLANKS = ["", " ", "  ", "\t", "\n", "\n  ", "  \n", "\n\n", " \t\n\t ", "x", "x ", " y\n", "\u3000"]
SIGNS = ["", "-", "+"]


def _open(kind, sign):
    return {"block": "{%", "var": "{{", "comment": "{#"}[kind] + sign


def _close(kind, sign):
    end = {"block": "%}", "var": "}}", "comment": "#}"}[kind]
    return (sign if kind != "var" or sign != "+" else "") + end


def _tag(rng, body, kind):
    return _open(kind, rng.choice(SIGNS)) + " " + body + " " + _close(kind, rng.choice(SIGNS))


def _random_body(rng, depth):
    parts = []
    for _ in range(rng.randint(1, 5)):
        parts.append(rng.choice(BLANKS))
        roll = rng.random()
        if roll < 0.3 and depth < 3:
            test = rng.choice(["t", "no"])
            parts.append(_tag(rng, f"if {test}", "block") + _random_body(rng, depth + 1))
            if rng.random() < 0.4:
                parts.append(rng.choice(BLANKS) + _tag(rng, "else", "block") + _random_body(rng, depth + 1))
            parts.append(rng.choice(BLANKS) + _tag(rng, "endif", "block"))
        elif roll < 0.45 and depth < 3:
            parts.append(_tag(rng, "for i in xs", "block") + _random_body(rng, depth + 1))
            parts.append(rng.choice(BLANKS) + _tag(rng, "endfor", "block"))
        elif roll < 0.7:
            parts.append(_tag(rng, rng.choice(["'v'", "i", "n", "loop.index", "'a\\nb'"]), "var"))
        elif roll < 0.85:
            parts.append(_tag(rng, "c", "comment"))
        else:
            parts.append(_tag(rng, f"set q = {rng.randint(0, 9)}", "block"))
    parts.append(rng.choice(BLANKS))
    return "".join(parts)


def random_whitespace_cases(count=400, seed=1234):
    rng = random.Random(seed)
    return [{"template": _random_body(rng, 0), "variables": V} for _ in range(count)]
