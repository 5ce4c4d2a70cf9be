"""pytest set-up: two logical CPU devices, so that the MirroredStrategy tests run in one process too."""

import tensorflow as tf


def pytest_configure(config):
  del config
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
