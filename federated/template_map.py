"""Derive, with TensorFlow, where every weight sits in a template's float and dynamic .tflite.

Nothing here knows the architecture. The model is exported once with flat weight ``j`` set to
``j + 1`` (exact in float32 below 2**24) and once with random weights: a buffer equal in both is a
constant of the graph and stays as it is; a float32 buffer that changed holds, element by
element, weight ``value - 1`` (which covers transposes, splits, slices and reshapes); an int8
buffer is the quantised form of a float buffer of the same shape, found by requantising every
candidate. A buffer nothing explains (e.g. a folded sum of two weights) stops the derivation:
the coordinator then keeps the converter.

The map is then verified end to end: written with a third, fresh set of random weights it must
give the converter's file byte for byte, and written with the template's own weights the
template's file. Run ``python -m federated.template_map DIR`` to add a map to a model folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from model.config import ModelConfig
from model.manifest import ModelManifest, sha256_file, write_atomic
from model.tflite_template import (
    FLOAT32,
    INT8,
    MAP_FILE,
    MAP_KIND,
    KindMap,
    Layout,
    Patch,
    TemplateMap,
    TemplateMapError,
    read_layout,
    symmetric_int8,
)

MAPPED_KINDS = ("float", "dynamic")


def _convert(model: Any, flat: np.ndarray, kind: str) -> bytes:
    from model.export import _convert_inference
    from model.manifest import unflatten_weights

    specs = _specs(model)
    for var, value in zip(model.trainable_variables, unflatten_weights(specs, flat), strict=True):
        var.assign(value)
    return _convert_inference(model, kind, lambda: iter(()))


def _specs(model: Any) -> tuple:
    from model.manifest import WeightSpec

    return tuple(
        WeightSpec(v.name, tuple(int(d) for d in v.shape)) for v in model.trainable_variables
    )


def _int8_match(
    tensors: list,
    probe_bytes: bytes,
    rand_bytes: bytes,
    probe: np.ndarray,
    rand: np.ndarray,
    p_file: bytes,
    r_file: bytes,
    at: int,
    candidates: list[np.ndarray],
) -> Patch | None:
    """The float gather whose requantisation reproduces this int8 buffer in both exports."""
    t0 = tensors[0]
    qdim = None if t0.scales == 1 else t0.quantized_dimension
    scale_at = tuple(t.scale_at for t in tensors if t.scale_at >= 0)
    if len(scale_at) != len(tensors) or any(t.scales != t0.scales for t in tensors):
        return None
    for gather in candidates:
        if gather.shape != t0.shape:
            continue
        ok = True
        for flat, data, file in ((probe, probe_bytes, p_file), (rand, rand_bytes, r_file)):
            q, scale = symmetric_int8(flat[gather], qdim)
            sraw = scale.astype("<f4").tobytes()
            if q.tobytes() != data or any(file[a : a + len(sraw)] != sraw for a in scale_at):
                ok = False
                break
        if ok:
            return Patch(at, gather, True, qdim, scale_at)
    return None


def derive_kind(
    kind: str,
    p_file: bytes,
    r_file: bytes,
    probe: np.ndarray,
    rand: np.ndarray,
    float_gathers: list[np.ndarray],
) -> list[Patch]:
    """The patches of one kind from its probe and random exports; raises TemplateMapError."""
    lp, lr = read_layout(p_file), read_layout(r_file)
    if len(p_file) != len(r_file) or lp.buffers != lr.buffers:
        raise TemplateMapError(f"{kind}: the converter's file layout depends on the weights")
    patches = []
    for b, (at, n) in enumerate(lp.buffers):
        pb, rb = p_file[at : at + n], r_file[at : at + n]
        if not n or pb == rb:
            continue  # a constant of the graph
        tensors = lp.tensors_of(b)
        types = {t.type for t in tensors}
        if not tensors or len(types) != 1 or len({t.shape for t in tensors}) != 1:
            raise TemplateMapError(
                f"{kind}: buffer {b} changes with the weights but no tensor explains it"
            )
        shape = tensors[0].shape
        if types == {FLOAT32}:
            vals = np.frombuffer(pb, "<f4")
            idx = vals.astype(np.int64) - 1
            good = (
                vals.size == int(np.prod(shape))
                and np.all(vals == np.round(vals))
                and idx.min() >= 0
                and idx.max() < probe.size
                and np.array_equal(np.frombuffer(rb, "<f4"), rand[idx])
            )
            if not good:
                raise TemplateMapError(
                    f"{kind}: buffer {b} {shape} is not a rearrangement of the weights "
                    "(a folded expression?)"
                )
            patches.append(Patch(at, idx.reshape(shape)))
        elif types == {INT8}:
            patch = _int8_match(tensors, pb, rb, probe, rand, p_file, r_file, at, float_gathers)
            if patch is None:
                raise TemplateMapError(
                    f"{kind}: int8 buffer {b} {shape} matches no requantised weight tensor"
                )
            patches.append(patch)
        else:
            raise TemplateMapError(
                f"{kind}: buffer {b} of tensor type {types} changes with weights"
            )
    return _shared_scales(kind, lp, patches, p_file, r_file, probe, rand)


def _shared_scales(
    kind: str,
    layout: Layout,
    patches: list[Patch],
    p_file: bytes,
    r_file: bytes,
    probe: np.ndarray,
    rand: np.ndarray,
) -> list[Patch]:
    """Give each int8 patch the scale vectors of tensors without a buffer that carry its scale
    (a GATHER from an int8 embedding outputs int8 with the table's scale)."""
    covered = {a for p in patches for a in p.scale_at}
    extra: dict[int, list[int]] = {}
    for t in layout.tensors:
        if t.scale_at < 0 or t.scale_at in covered:
            continue
        span = slice(t.scale_at, t.scale_at + 4 * t.scales)
        if p_file[span] == r_file[span]:
            continue
        for i, p in enumerate(patches):
            if p.int8 and all(
                symmetric_int8(flat[p.gather], p.qdim)[1].astype("<f4").tobytes() == file[span]
                for flat, file in ((probe, p_file), (rand, r_file))
            ):
                extra.setdefault(i, []).append(t.scale_at)
                break
        else:
            raise TemplateMapError(
                f"{kind}: tensor {t.index}'s scale changes with the weights "
                "but matches no int8 weight"
            )
    return [
        Patch(p.at, p.gather, p.int8, p.qdim, p.scale_at + tuple(extra[i])) if i in extra else p
        for i, p in enumerate(patches)
    ]


def derive_map(
    model: Any, kinds: tuple[str, ...], template_flat: np.ndarray, seed: int = 0
) -> TemplateMap:
    """The verified map of ``kinds`` (float, dynamic) for ``model``'s architecture; the model
    is left holding ``template_flat``. Raises TemplateMapError."""
    n = int(template_flat.size)
    if n >= 2**24:
        raise TemplateMapError(f"{n} weights: too many to number exactly in float32 (< 2**24)")
    rng = np.random.default_rng(seed)
    probe = np.arange(1, n + 1, dtype=np.float32)
    rand = rng.normal(0.0, 0.3, n).astype(np.float32)
    check = rng.normal(0.0, 0.3, n).astype(np.float32)
    maps: dict[str, KindMap] = {}
    float_gathers: list[np.ndarray] = []
    for kind in MAPPED_KINDS:
        if kind not in kinds:
            continue
        p_file, r_file = _convert(model, probe, kind), _convert(model, rand, kind)
        patches = derive_kind(kind, p_file, r_file, probe, rand, float_gathers)
        float_gathers += [p.gather for p in patches if not p.int8]
        km = KindMap(kind, r_file, tuple(patches))
        if km.write(probe) != p_file:
            raise TemplateMapError(
                f"{kind}: bytes change with the weights that no weight buffer or scale explains"
            )
        if km.write(check) != _convert(model, check, kind):
            raise TemplateMapError(
                f"{kind}: the map's file differs from the converter's for fresh random weights"
            )
        maps[kind] = km
    _convert(model, template_flat, "float")  # leave the model holding its own weights
    return TemplateMap(n, maps)


def add_template_map(model_dir: str | Path, model: Any | None = None) -> ModelManifest:
    """Derive the map for a model folder, write ``tflite_map.npz`` and list it in the
    manifest (sha256 included); raises TemplateMapError if it cannot be verified."""
    from model.gru import build_classifier
    from model.manifest import flatten_weights

    folder = Path(model_dir)
    manifest = ModelManifest.load(folder)
    if model is None:
        from edge.trainer import OnDeviceTrainer

        model = build_classifier(ModelConfig.from_dict(manifest.model_config))
        flat = OnDeviceTrainer(folder).flat_weights()
        _convert(model, flat, "float")
    flat = flatten_weights(
        manifest.weights,
        [v.numpy() for v in model.trainable_variables],
    )
    kinds = tuple(k for k in MAPPED_KINDS if k in manifest.artifacts)
    if not kinds:
        raise TemplateMapError(f"{folder} has neither a float nor a dynamic artifact to map")
    saved = [v.numpy() for v in model.trainable_variables]
    try:
        tmap = derive_map(model, kinds, flat)
    finally:  # the probe exports overwrite the weights: hand the caller's model back as it was
        for var, value in zip(model.trainable_variables, saved, strict=True):
            var.assign(value)
    path = folder / MAP_FILE
    data = tmap.to_bytes()
    write_atomic(path, data)
    artifacts = dict(manifest.artifacts)
    artifacts[MAP_KIND] = {"file": MAP_FILE, "sha256": sha256_file(path), "bytes": len(data)}
    out = dataclasses.replace(manifest, artifacts=artifacts)
    out.save(folder)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m federated.template_map DIR``: add a verified map to a model folder."""
    p = argparse.ArgumentParser(prog="python -m federated.template_map", description=__doc__)
    p.add_argument("model_dir", metavar="DIR")
    args = p.parse_args(argv)
    try:
        manifest = add_template_map(args.model_dir)
    except TemplateMapError as e:
        print(f"template map: error: {e}; the coordinator will use the converter", file=sys.stderr)
        return 2
    info = manifest.artifacts[MAP_KIND]
    print(
        f"wrote {Path(args.model_dir) / MAP_FILE} ({info['bytes']} bytes), listed in the manifest"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
