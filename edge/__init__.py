"""Everything a Raspberry Pi runs: TFLite inference and training, evaluation, and (in later
modules) the secure-aggregation client and the fleet client.

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
