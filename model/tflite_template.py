"""Write new weights into a TFLite file whose structure never changes (no TensorFlow).

A federated round changes only numbers: the float file's weight buffers and, in the
dynamic-range file, the int8 weight buffers and their scales. Sizes never change, so a round's
file is the template's bytes with those slots overwritten. Where each slot's values come from is
a :class:`TemplateMap` (derived and verified with TensorFlow by ``federated/template_map.py``
when the template is made, stored beside it as ``tflite_map.npz`` and listed in its manifest).

Reading uses the ``flatbuffers`` runtime's ``Table`` over the TFLite schema's field slots (the
schema is stable: fields are only ever appended), so neither TensorFlow nor a generated schema
package is needed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flatbuffers import encode, number_types, packer
from flatbuffers.table import Table

MAP_FORMAT = 1
MAP_FILE = "tflite_map.npz"
MAP_KIND = "tflite_map"
FLOAT32, INT8 = 0, 9  # tflite.TensorType

# vtable slots (4 + 2 * field index) of the schema fields read here.
_MODEL_SUBGRAPHS, _MODEL_BUFFERS = 8, 12
_BUFFER_DATA, _BUFFER_OFFSET = 4, 6
_SUBGRAPH_TENSORS = 4
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_QUANT = 4, 6, 8, 12
_QUANT_SCALE, _QUANT_ZERO_POINT, _QUANT_DIM = 8, 10, 16


class TemplateMapError(ValueError):
    """A template map is missing, malformed, or does not fit the file it is applied to."""


@dataclass(frozen=True)
class TensorSlot:
    """Where one tensor's constant data and quantisation scales sit in the file."""

    index: int
    type: int
    shape: tuple[int, ...]
    buffer: int
    scale_at: int  # byte offset of the float32 scale vector's first element (-1: none)
    scales: int
    zero_points: tuple[int, ...]
    quantized_dimension: int


@dataclass(frozen=True)
class Layout:
    """The constant buffers (byte offset, length) and tensors of a .tflite file."""

    buffers: tuple[tuple[int, int], ...]
    tensors: tuple[TensorSlot, ...]

    def tensors_of(self, buffer: int) -> list[TensorSlot]:
        """Every tensor that reads ``buffer`` (the converter may share one)."""
        return [t for t in self.tensors if t.buffer == buffer]


def _vector(t: Table, slot: int) -> tuple[int, int]:
    o = t.Offset(slot)
    return (t.Vector(o), t.VectorLen(o)) if o else (0, 0)


def _scalar(t: Table, slot: int, flags: type, default: int) -> int:
    o = t.Offset(slot)
    return int(t.Get(flags, o + t.Pos)) if o else default


def _table_at(t: Table, vector_start: int, i: int) -> Table:
    return Table(t.Bytes, t.Indirect(vector_start + 4 * i))


def read_layout(data: bytes) -> Layout:
    """Buffers and tensors of a .tflite flatbuffer; raises TemplateMapError if it is not one."""
    buf = bytearray(data)
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise TemplateMapError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = Table(buf, encode.Get(packer.uoffset, buf, 0))
    buffers = []
    start, n = _vector(model, _MODEL_BUFFERS)
    for i in range(n):
        b = _table_at(model, start, i)
        if _scalar(b, _BUFFER_OFFSET, number_types.Uint64Flags, 0):
            raise TemplateMapError(
                "buffers stored outside the flatbuffer (files > 2 GB) are unsupported"
            )
        buffers.append(_vector(b, _BUFFER_DATA))
    tensors: list[TensorSlot] = []
    sg_start, n_sg = _vector(model, _MODEL_SUBGRAPHS)
    for s in range(n_sg):
        sg = _table_at(model, sg_start, s)
        t_start, n_t = _vector(sg, _SUBGRAPH_TENSORS)
        for i in range(n_t):
            t = _table_at(sg, t_start, i)
            shape_at, rank = _vector(t, _TENSOR_SHAPE)
            shape = tuple(int(encode.Get(packer.int32, buf, shape_at + 4 * d)) for d in range(rank))
            scale_at, scales, qdim = -1, 0, 0
            zps: tuple[int, ...] = ()
            qo = t.Offset(_TENSOR_QUANT)
            if qo:
                q = Table(buf, t.Indirect(qo + t.Pos))
                at, scales = _vector(q, _QUANT_SCALE)
                scale_at = at if scales else -1
                zp_at, n_zp = _vector(q, _QUANT_ZERO_POINT)
                zps = tuple(int(encode.Get(packer.int64, buf, zp_at + 8 * k)) for k in range(n_zp))
                qdim = _scalar(q, _QUANT_DIM, number_types.Int32Flags, 0)
            tensors.append(
                TensorSlot(
                    index=len(tensors),
                    type=_scalar(t, _TENSOR_TYPE, number_types.Int8Flags, 0),
                    shape=shape,
                    buffer=_scalar(t, _TENSOR_BUFFER, number_types.Uint32Flags, 0),
                    scale_at=scale_at,
                    scales=scales,
                    zero_points=zps,
                    quantized_dimension=qdim,
                )
            )
    return Layout(tuple(buffers), tuple(tensors))


def symmetric_int8(values: np.ndarray, qdim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights and float32 scales as TensorFlow's dynamic-range quantiser makes
    them: scale = max|w| / 127 (1 where all are 0), q = round-half-away(w / scale) clamped to
    +-127, the division in float64 (float32, or multiplying by 127 / max|w|, differ from the
    converter where w / scale is within an ulp of a tie); per tensor (``qdim`` None) or per
    channel along ``qdim``."""
    v = np.asarray(values, np.float32)
    axes = None if qdim is None else tuple(a for a in range(v.ndim) if a != qdim)
    top = np.abs(v).max(axis=axes, keepdims=True, initial=np.float32(0))
    scale = np.where(top == 0, 1.0, top.astype(np.float64) / 127.0)
    ratio = v.astype(np.float64) / scale
    q = np.clip(np.trunc(ratio + np.copysign(0.5, ratio)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32).reshape(-1)


@dataclass(frozen=True)
class Patch:
    """One weight-dependent buffer: which flat weights it holds (``gather`` has the tensor's
    shape), stored as float32 or as symmetric int8 with the scale vectors at ``scale_at``."""

    at: int
    gather: np.ndarray
    int8: bool = False
    qdim: int | None = None
    scale_at: tuple[int, ...] = ()

    def write(self, out: bytearray, flat: np.ndarray) -> None:
        """Overwrite this patch's bytes in ``out`` with the values of ``flat``."""
        values = flat[self.gather]
        if not self.int8:
            raw = values.astype("<f4").tobytes()
            out[self.at : self.at + len(raw)] = raw
            return
        q, scale = symmetric_int8(values, self.qdim)
        raw = q.tobytes()
        out[self.at : self.at + len(raw)] = raw
        sraw = scale.astype("<f4").tobytes()
        for at in self.scale_at:
            out[at : at + len(sraw)] = sraw


@dataclass(frozen=True)
class KindMap:
    """All patches of one artifact kind and the skeleton file they are written into: a
    converter export of random weights. Not the template's own file: the converter shares one
    buffer between equal constants (an initial model's all-zero biases), so that file's layout
    can differ from every later round's."""

    kind: str
    skeleton: bytes
    patches: tuple[Patch, ...]

    def write(self, flat: np.ndarray) -> bytes:
        """The skeleton's bytes with ``flat``'s weights in every patch."""
        out = bytearray(self.skeleton)
        for p in self.patches:
            p.write(out, flat)
        return bytes(out)


@dataclass(frozen=True)
class TemplateMap:
    """Per kind, how the flat FedAvg vector becomes that kind's .tflite file."""

    num_params: int
    kinds: dict[str, KindMap]

    def to_bytes(self) -> bytes:
        """An .npz (plain arrays and a JSON header; loads without pickle)."""
        header: dict = {"format": MAP_FORMAT, "num_params": self.num_params, "kinds": {}}
        arrays: dict[str, np.ndarray] = {}
        for kind, km in self.kinds.items():
            rows = []
            for i, p in enumerate(km.patches):
                arrays[f"{kind}_{i}"] = p.gather.astype(np.int32)
                rows.append({"at": p.at, "int8": p.int8, "qdim": p.qdim, "scale_at": p.scale_at})
            arrays[f"{kind}_skeleton"] = np.frombuffer(km.skeleton, np.uint8)
            header["kinds"][kind] = {"patches": rows}
        arrays["header"] = np.array(json.dumps(header, sort_keys=True))
        f = io.BytesIO()
        np.savez_compressed(f, **arrays)
        return f.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = MAP_FILE) -> TemplateMap:
        """Parse; raises TemplateMapError naming the file and the fix."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                if header.get("format") != MAP_FORMAT:
                    raise TemplateMapError(f"{where}: unknown map format {header.get('format')!r}")
                n = int(header["num_params"])
                kinds = {}
                for kind, info in header["kinds"].items():
                    patches = []
                    for i, row in enumerate(info["patches"]):
                        gather = np.asarray(z[f"{kind}_{i}"], np.int64)
                        if gather.size and (gather.min() < 0 or gather.max() >= n):
                            raise TemplateMapError(f"{where}: an index is out of range")
                        patches.append(
                            Patch(
                                int(row["at"]),
                                gather,
                                bool(row["int8"]),
                                None if row["qdim"] is None else int(row["qdim"]),
                                tuple(int(a) for a in row["scale_at"]),
                            )
                        )
                    skeleton = np.asarray(z[f"{kind}_skeleton"], np.uint8).tobytes()
                    read_layout(skeleton)  # a .tflite, or TemplateMapError
                    end = max(
                        (p.at + p.gather.size * (1 if p.int8 else 4) for p in patches), default=0
                    )
                    if end > len(skeleton):
                        raise TemplateMapError(f"{where}: a patch lies outside the {kind} skeleton")
                    kinds[kind] = KindMap(kind, skeleton, tuple(patches))
        except TemplateMapError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise TemplateMapError(
                f"{where}: malformed template map ({e!r}); re-derive it "
                "(python -m federated.template_map DIR, needs TensorFlow)"
            ) from e
        return cls(n, kinds)

    @classmethod
    def load(cls, path: Path) -> TemplateMap:
        """Read a map file (its sha256 is checked by the manifest before this)."""
        return cls.from_bytes(path.read_bytes(), str(path))
