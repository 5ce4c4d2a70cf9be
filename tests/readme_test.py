"""Runs every ```python block of README.md as written, each on its own, in a fresh folder.

Blocks fenced as ```py are shown, not run: they need data this test cannot have (the CIFAR-10 files).
"""

import os
import pathlib
import re
import tempfile

from absl.testing import parameterized
import tensorflow as tf

_README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'
_BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)


def _blocks():
  text = _README.read_text(encoding='utf-8')
  return [(f'line_{text.count(chr(10), 0, m.start()) + 1}', m.group(1)) for m in _BLOCK.finditer(text)]


class ReadmeTest(tf.test.TestCase, parameterized.TestCase):

  def test_readme_has_python_blocks(self):
    self.assertGreater(len(_blocks()), 5)

  @parameterized.named_parameters(*_blocks())
  def test_block_runs_as_written(self, source):
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
      os.chdir(tmp)
      try:
        tf.random.set_seed(0)
        exec(compile(source, str(_README), 'exec'), {'__name__': '__readme__'})  # pylint: disable=exec-used
      finally:
        os.chdir(cwd)


if __name__ == '__main__':
  tf.test.main()
