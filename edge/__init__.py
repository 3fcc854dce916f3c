"""Everything a Raspberry Pi runs: TFLite inference and training, evaluation, and (in later
modules) the secure-aggregation client and the fleet client.

Imports only numpy, a TFLite runtime (tflite-runtime, or ai-edge-litert on Python 3.12+),
pycryptodome, the transport, and the TF-free parts of ``model``. Never TensorFlow,
never ``federated``.
"""
