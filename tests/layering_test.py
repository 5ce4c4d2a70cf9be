"""Tests that the library's modules import only what the BUILD file lets their package use, with no cycle."""

import ast
import os

import tensorflow as tf

import ltp_tfmot

_PACKAGE_DIR = os.path.dirname(os.path.abspath(ltp_tfmot.__file__))
_ROOT = os.path.dirname(_PACKAGE_DIR)


def _module_name(path):
  relative = os.path.relpath(path, _ROOT)[:-len('.py')].replace(os.sep, '.')
  return relative.removesuffix('.__init__')


def _library_modules():
  """Module name -> path of every module of the package."""
  modules = {}
  for folder, _, names in os.walk(_PACKAGE_DIR):
    for name in names:
      if name.endswith('.py'):
        modules[_module_name(os.path.join(folder, name))] = os.path.join(folder, name)
  return modules


def _imported_modules(path, modules):
  """The library modules a file imports, at the top or inside functions."""
  found = set()
  for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
    if isinstance(node, ast.Import):
      candidates = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      # `from ltp_tfmot.keras2 import rounds` imports a module; `from ltp_tfmot.errors import X` a name.
      candidates = [f'{node.module}.{alias.name}' for alias in node.names] + [node.module]
    else:
      continue
    found.update(name for name in candidates if name in modules)
  # Every module imports its package's __init__ files; they import nothing eagerly.
  return {name for name in found if not modules[name].endswith('__init__.py')}


def _build_targets():
  """Target name -> (its source files, the names of its deps), read from the root BUILD file."""

  def glob(patterns):
    import glob as glob_lib  # pylint: disable=g-import-not-at-top
    return [os.path.relpath(path, _ROOT) for pattern in patterns
            for path in glob_lib.glob(os.path.join(_ROOT, pattern))]

  targets = {}
  with open(os.path.join(_ROOT, 'BUILD'), encoding='utf-8') as build_file:
    tree = ast.parse(build_file.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'py_library':
      arguments = {keyword.arg: keyword.value for keyword in node.keywords}
      srcs = arguments.get('srcs')
      if isinstance(srcs, ast.Call):  # glob([...])
        files = glob(ast.literal_eval(srcs.args[0]))
      else:
        files = ast.literal_eval(srcs) if srcs is not None else []
      deps = ast.literal_eval(arguments['deps']) if 'deps' in arguments else []
      targets[ast.literal_eval(arguments['name'])] = (files, [dep.lstrip(':') for dep in deps])
  return targets


def _closure(target, targets):
  seen, stack = set(), [target]
  while stack:
    for dep in targets[stack.pop()][1]:
      if dep not in seen:
        seen.add(dep)
        stack.append(dep)
  return seen


def _cycles(graph):
  """The strongly connected components of more than one module (Tarjan's algorithm)."""
  index, low, on_stack, stack, components = {}, {}, set(), [], []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for successor in graph[node]:
      if successor not in index:
        visit(successor)
        low[node] = min(low[node], low[successor])
      elif successor in on_stack:
        low[node] = min(low[node], index[successor])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        components.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return components


class LayeringTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.modules = _library_modules()
    self.imports = {name: _imported_modules(path, self.modules) for name, path in self.modules.items()}

  def test_every_module_belongs_to_one_build_target(self):
    owners = {}
    for target, (files, _) in _build_targets().items():
      for path in files:
        owners.setdefault(_module_name(os.path.join(_ROOT, path)), []).append(target)
    for name in self.modules:
      self.assertLen(owners.get(name, []), 1, f'{name}: owned by {owners.get(name)} in BUILD')

  def test_modules_import_only_what_their_build_target_depends_on(self):
    targets = _build_targets()
    owner = {}
    for target, (files, _) in targets.items():
      for path in files:
        owner[_module_name(os.path.join(_ROOT, path))] = target
    wrong = []
    for name, imported in sorted(self.imports.items()):
      allowed = _closure(owner[name], targets) | {owner[name]}
      wrong += [f'{name} imports {module} (target {owner[module]})' for module in sorted(imported)
                if owner[module] not in allowed]
    self.assertEqual(wrong, [], 'add the dep in BUILD if the layering allows it, else move the code')

  def test_every_test_file_runs_in_a_bazel_target(self):
    tests_dir = os.path.join(_ROOT, 'tests')
    with open(os.path.join(tests_dir, 'BUILD'), encoding='utf-8') as build_file:
      build = build_file.read()
    names = sorted(name[:-len('.py')] for name in os.listdir(tests_dir) if name.endswith('_test.py'))
    self.assertNotEmpty(names)
    self.assertEqual([name for name in names if f'"{name}"' not in build], [])

  def test_no_import_cycle_between_modules(self):
    self.assertEqual(_cycles(self.imports), [])

  def test_the_cycle_finder_finds_a_cycle(self):
    self.assertEqual(_cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}), [['a', 'b', 'c']])


if __name__ == '__main__':
  tf.test.main()
