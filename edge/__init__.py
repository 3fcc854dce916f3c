"""Everything a Raspberry Pi runs: TFLite inference and training, evaluation, and (in later
modules) the secure-aggregation client and the fleet client.

Imports only numpy, the TFLite runtimes (ai-edge-litert for inference, tflite-runtime for
training: see ``edge.runtime``), pycryptodome, the transport, and the TF-free parts of
``model``. Never TensorFlow, never ``federated``.
"""
