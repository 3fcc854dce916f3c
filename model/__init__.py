"""The surname classifier's data, encoding, partitions and (TensorFlow) model.

TF-free modules, safe to import on a Pi: ``dataset``, ``encoding``, ``split``, ``partition``,
``metrics``, ``manifest``, ``config``. The modules ``gru``, ``export`` and ``train`` import
TensorFlow and are only used on the coordinator / training machine.
"""
