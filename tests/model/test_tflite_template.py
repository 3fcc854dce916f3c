"""The TF-free TFLite writer on a small flatbuffer built here with the flatbuffers runtime.

The byte-for-byte comparison with the TensorFlow converter is in
tests/integration/test_template_writer.py.
"""

from __future__ import annotations

import sys

import flatbuffers
import numpy as np
import pytest

from federated.exporter import CandidateExporter, ExportError
from model.config import MAX_LEN
from model.encoding import Vocab, public_alphabet
from model.manifest import ModelManifest, WeightSpec
from model.tflite_template import (
    FLOAT32,
    INT8,
    KindMap,
    Patch,
    TemplateMap,
    TemplateMapError,
    read_layout,
    symmetric_int8,
)


def _table(b: flatbuffers.Builder, fields: list[tuple[str, int, int]]) -> int:
    b.StartObject(max(slot for _, slot, _ in fields) + 1)
    for how, slot, value in fields:
        if how == "off":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif how == "i8":
            b.PrependInt8Slot(slot, value, 0)
        else:
            b.PrependUint32Slot(slot, value, 0)
    return int(b.EndObject())


def _offsets(b: flatbuffers.Builder, offs: list[int]) -> int:
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return int(b.EndVector())


def tiny_tflite(weights: np.ndarray, table: np.ndarray, scale: float) -> bytes:
    """Buffers [empty, float32 weights [2, 3], int8 table [4]]; tensors: the weights, the
    table (scale, zero point 0) and an activation without a buffer carrying the same scale."""
    b = flatbuffers.Builder(0)
    buffers = [
        _table(b, [("off", 0, b.CreateByteVector(d))])
        for d in (weights.astype("<f4").tobytes(), table.astype(np.int8).tobytes())
    ]
    b.StartObject(1)
    empty = int(b.EndObject())
    tensors = []
    for shape, typ, buf, with_scale in (
        ([2, 3], FLOAT32, 1, False),
        ([4], INT8, 2, True),
        ([1, 4], INT8, 0, True),
    ):
        fields: list[tuple[str, int, int]] = [
            ("off", 0, b.CreateNumpyVector(np.array(shape, np.int32))),
            ("i8", 1, typ),
            ("u32", 2, buf),
        ]
        if with_scale:
            q = _table(
                b,
                [
                    ("off", 2, b.CreateNumpyVector(np.array([scale], np.float32))),
                    ("off", 3, b.CreateNumpyVector(np.array([0], np.int64))),
                ],
            )
            fields.append(("off", 4, q))
        tensors.append(_table(b, fields))
    subgraph = _table(b, [("off", 0, _offsets(b, tensors))])
    model = _table(
        b,
        [
            ("u32", 0, 3),
            ("off", 2, _offsets(b, [subgraph])),
            ("off", 4, _offsets(b, [empty, *buffers])),
        ],
    )
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def _tiny_map(skeleton: bytes) -> TemplateMap:
    layout = read_layout(skeleton)
    (w_at, _), (t_at, _) = layout.buffers[1], layout.buffers[2]
    scales = tuple(t.scale_at for t in layout.tensors if t.scale_at >= 0)
    # weights [2, 3] hold flat[0:6] transposed from a [3, 2] tensor; the table holds flat[6:10]
    gather = np.arange(6).reshape(3, 2).T.copy()
    return TemplateMap(
        10,
        {
            "dynamic": KindMap(
                "dynamic",
                skeleton,
                (Patch(w_at, gather), Patch(t_at, np.arange(6, 10), True, None, scales)),
            )
        },
    )


def test_the_layout_reads_buffers_tensors_and_scales() -> None:
    data = tiny_tflite(np.arange(6, dtype=np.float32), np.array([1, -2, 3, 127]), 0.5)
    layout = read_layout(data)
    assert [n for _, n in layout.buffers] == [0, 24, 4]
    at, n = layout.buffers[1]
    assert np.array_equal(np.frombuffer(data[at : at + n], "<f4"), np.arange(6))
    t = layout.tensors
    assert [(x.type, x.shape, x.buffer) for x in t] == [
        (FLOAT32, (2, 3), 1),
        (INT8, (4,), 2),
        (INT8, (1, 4), 0),
    ]
    assert t[0].scale_at == -1 and t[1].scales == 1 and t[1].zero_points == (0,)
    assert np.frombuffer(data[t[2].scale_at : t[2].scale_at + 4], "<f4")[0] == 0.5
    assert layout.tensors_of(2) == [t[1]]


def test_writing_puts_every_weight_and_scale_in_place() -> None:
    skeleton = tiny_tflite(np.zeros(6, np.float32), np.zeros(4), 1.0)
    flat = np.array([1, 2, 3, 4, 5, 6, 0.5, -1.0, 0.25, 0.0], np.float32)
    out = _tiny_map(skeleton).kinds["dynamic"].write(flat)
    assert len(out) == len(skeleton)
    layout = read_layout(out)
    at, n = layout.buffers[1]
    assert np.array_equal(np.frombuffer(out[at : at + n], "<f4"), [1, 3, 5, 2, 4, 6])
    at, n = layout.buffers[2]
    assert np.frombuffer(out[at : at + n], np.int8).tolist() == [64, -127, 32, 0]
    for t in layout.tensors[1:]:
        assert np.frombuffer(out[t.scale_at : t.scale_at + 4], "<f4")[0] == np.float32(1 / 127)


def test_symmetric_int8_rounds_half_away_and_handles_zero_and_channels() -> None:
    q, s = symmetric_int8(np.array([63.5, -127.0, 31.75, -0.5, 200 / 3], np.float32), None)
    assert q.tolist() == [64, -127, 32, -1, 67] and s.tolist() == [1.0]
    q, s = symmetric_int8(np.array([0.25, -1.0], np.float32), None)
    assert q.tolist() == [32, -127] and s.tolist() == [np.float32(1.0) / np.float32(127)]
    q, s = symmetric_int8(np.zeros((2, 2), np.float32), None)
    assert q.tolist() == [[0, 0], [0, 0]] and s.tolist() == [1.0]
    q, s = symmetric_int8(np.array([[2.0, -1.0], [0.0, 0.0]], np.float32), 0)
    assert q.tolist() == [[127, -64], [0, 0]]
    assert s.tolist() == [np.float32(2) / np.float32(127), 1.0]


def test_the_map_round_trips_and_refuses_what_does_not_fit() -> None:
    tmap = _tiny_map(tiny_tflite(np.zeros(6, np.float32), np.zeros(4), 1.0))
    again = TemplateMap.from_bytes(tmap.to_bytes())
    flat = np.linspace(-1, 1, 10).astype(np.float32)
    assert again.kinds["dynamic"].write(flat) == tmap.kinds["dynamic"].write(flat)
    small = TemplateMap(5, tmap.kinds)  # indices up to 9 for 5 weights
    with pytest.raises(TemplateMapError, match="out of range"):
        TemplateMap.from_bytes(small.to_bytes())
    with pytest.raises(TemplateMapError, match="re-derive"):
        TemplateMap.from_bytes(b"not a map")
    with pytest.raises(TemplateMapError, match="TFL3"):
        read_layout(b"\0" * 16)


def _manifest() -> ModelManifest:
    return ModelManifest(
        languages=("A", "B"),
        vocab=Vocab(public_alphabet(), MAX_LEN),
        model_config={},
        artifacts={},
        weights=(WeightSpec("w", (2,)),),
        train_batch=32,
    )


class _NoTensorFlow:
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"{name} is not installed")
        return None


def test_without_tensorflow_int8_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "meta_path", [_NoTensorFlow(), *sys.meta_path])
    # In the full run another test has imported TensorFlow already: hide it too.
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    exporter = CandidateExporter(_manifest())
    with pytest.raises(ExportError, match=r"--deploy-kind dynamic.*\.\[full\]"):
        exporter.export(np.zeros(2, np.float32), 1, ("float", "int8"))
