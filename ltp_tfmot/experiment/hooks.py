"""The points of a run where a caller can step in; by default nothing happens there.

The fault tests (tests/kill_test.py) pass a subclass of `RunHooks` to stop a
run exactly at one of these points and kill it, interrupt it, or make a write
fail as a full disk would; production code never pauses, sleeps or writes
half a file on its own.

Example:

```python
class StopAfterTenSteps(experiment.RunHooks):

  def __init__(self):
    self.steps = 0

  def after_train_step(self):
    self.steps += 1
    if self.steps == 10:
      raise KeyboardInterrupt

experiment.LotteryExperiment(config, 'runs', hooks=StopAfterTenSteps()).run()
```
"""


class RunHooks:
  """What `LotteryExperiment` calls at chosen points of a run; every method here does nothing but its job."""

  def after_train_step(self):
    """Called once per training step (batch) of every level and control, after the execution that ran it."""

  def after_round(self):
    """Called at a level's round boundary: the new masks are computed and the weights rewound, nothing saved yet."""

  def write_file(self, path, file, data):
    """Writes the bytes of a run-directory file to its open temporary file.

    Args:
      path: The file's final name (it is moved there once written).
      file: The open temporary file, in binary mode.
      data: The bytes to write.
    """
    file.write(data)
