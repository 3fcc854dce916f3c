"""The Pi's side of issue 22's quality session: the evaluate task that opens it, and the rule
that counts join only if they sum exactly (edge.secagg_member.quality_input)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.secagg import SecAggConfig, StageTimeouts
from edge.secagg.quantize import quantise
from edge.secagg.randomness import system_random
from edge.secagg_member import quality_input
from edge.tasks import EvaluateTask, decode_task
from edge.wire import WireError, decode, encode
from federated.evaluate_stage import MAX_COUNT, quality_config


def _cfg(n_languages: int = 3) -> SecAggConfig:
    return quality_config([4, 7, 9], n_languages, StageTimeouts())


def test_an_evaluate_task_carries_its_quality_session_through_the_wire() -> None:
    task = EvaluateTask(5, 2, {"model_float.tflite": "ab" * 32}, 7, _cfg())
    back = decode_task(decode(encode(task.header()), 1 << 20))
    assert isinstance(back, EvaluateTask)
    assert back.client_id == 7 and back.quality is not None
    assert back.quality.digest == task.quality.digest and back.quality.t == task.quality.t
    plain = EvaluateTask(5, 2, {"model_float.tflite": "ab" * 32})
    assert set(plain.header()) == {"kind", "round", "version", "files"}  # an old Pi's bytes
    with pytest.raises(WireError, match="both"):
        EvaluateTask(5, 2, {}, 7, None)


def test_counts_quantise_to_themselves_up_to_the_clip_bound() -> None:
    cfg = _cfg()
    counts = np.array([[MAX_COUNT, 0, 1], [2, 3, 4], [5, MAX_COUNT - 1, 7]])
    vec = quality_input(counts, cfg)
    q = quantise(vec, 1, cfg.quantisation, system_random)
    levels = q.words.astype(np.uint64).astype(np.int64)[: counts.size]
    assert levels.tolist() == counts.reshape(-1).tolist() and q.clip_count == 0 and q.weight == 1


def test_counts_that_would_not_sum_exactly_are_refused() -> None:
    cfg = _cfg()
    with pytest.raises(ValueError, match="clip bound"):
        quality_input(np.full((3, 3), MAX_COUNT + 1), cfg)
    with pytest.raises(ValueError, match="disagree on the languages"):
        quality_input(np.ones((2, 2)), cfg)
    rounding = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(9,), max_weight=1)
    with pytest.raises(ValueError, match="scale 1"):
        quality_input(np.ones((3, 3)), rounding)
