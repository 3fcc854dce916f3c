"""Everything a Raspberry Pi runs: TFLite inference and training, evaluation, the secure-
aggregation client (``edge.secagg``), the task messages (``edge.tasks``) and the fleet client.
``edge.numpy_trainer`` trains the same model in numpy alone, for a Pi whose TFLite runtime
cannot run the ``train`` signature (``edge.local_trainer``: what both trainers offer a round).

Imports only numpy, the TFLite runtimes (ai-edge-litert for inference, tflite-runtime for
training: see ``edge.runtime``), pycryptodome, the transport, and the TF-free parts of
``model``. Never TensorFlow, never ``federated``.
"""

# The distributions a Pi installs for pifed (pyproject's base dependencies and the ``edge``
# extra, on Python 3.11), by their PyPI names: what the footprint and the emulated-Pi checks
# look for. Their own requirements come on top.
EDGE_DISTRIBUTIONS = (
    "pifed",
    "numpy",
    "tflite-runtime",
    "ai-edge-litert",
    "pycryptodome",
    "grpcio",
    "protobuf",
)

# The heavyweight modules a Pi never loads: the tests, the emulated-Pi checks and the benchmarks
# block or look for exactly these (one list, so a new one is added in one place).
TF_MODULES = ("tensorflow", "keras", "tensorflow_federated", "tf_keras", "jax")
