"""Fill a real store the way the round runner does (the same Store calls, in the same order),
without TensorFlow or devices: for the dashboard's API tests and its page-load benchmark."""

from __future__ import annotations

import random
from pathlib import Path

from edge.secagg.identity import SigningKey
from federated.authority import enroll_signed
from federated.store import Store

STAGES = ("advertise_keys", "share_keys", "masked_input_collection", "unmasking")


def fill_store(
    path: Path, devices: int = 3, rounds: int = 4, seed: int = 0, running: bool = False
) -> dict[str, object]:
    """``devices`` enrolled Pis and ``rounds`` finished rounds (every 5th aborted in secure
    aggregation, every 3rd candidate held back by the gate); ``running``: one more round left
    in evaluation. Returns the device tokens and what was written, for assertions."""
    rng = random.Random(seed)
    store = Store(path)
    # Enrolled as an operator does: each Pi's own key, certified by the fleet's authority.
    authority = SigningKey(rng.randbytes(32))
    tokens = {
        f"pi-{i:02d}": enroll_signed(store, f"pi-{i:02d}", SigningKey.generate().public, authority)[
            0
        ]
        for i in range(devices)
    }
    ids = [d.id for d in store.devices()]
    v1 = store.add_version(
        b"w0" * 8, {"manifest.json": b"{}", "model_int8.tflite": b"m0"}, "initial"
    )
    store.rollback(v1, "initial deployment", force=True)
    base, acc = v1, 0.45
    promoted, held, aborted = [], [], []
    for r in range(rounds + (1 if running else 0)):
        part = sorted(rng.sample(ids, k=max(1, min(len(ids), rng.randint(2, 10)))))
        rid = store.start_round(base, part)
        sid = f"{rid:04x}" + "ab" * 14
        store.start_session(rid, sid, len(part), max(1, len(part) * 2 // 3))
        if r % 5 == 4 and not (running and r == rounds):
            store.finish_session(
                sid, False, {part[0]: "MASKED_INPUT_COLLECTION"}, "too few survivors"
            )
            store.finish_round(rid, False, "SecAggError: too few survivors")
            aborted.append(rid)
            continue
        dropped = {part[-1]: "SHARE_KEYS"} if len(part) > 3 and r % 4 == 1 else {}
        store.finish_session(sid, True, dropped)
        survivors = [p for p in part if p not in dropped]
        v = store.add_version(
            f"w{r + 1}".encode() * 4,
            {"manifest.json": b"{}", "model_int8.tflite": f"m{r + 1}".encode()},
            "candidate",
            parent=base,
            round_id=rid,
        )
        acc = min(0.85, acc + rng.uniform(-0.01, 0.02))
        for d in survivors:
            store.add_device_metrics(
                rid,
                d,
                v,
                {
                    "n": 60,
                    "accuracy": acc,
                    "balanced_accuracy": acc - 0.2,
                    "macro_f1": acc - 0.25,
                },
            )
        if running and r == rounds:
            break  # left in evaluation
        fleet = {
            "accuracy": acc,
            "balanced_accuracy": acc - 0.2,
            "macro_f1": acc - 0.25,
            "n_examples": 60 * len(survivors),
            "n_devices": len(survivors),
        }
        promote = r % 3 != 2
        reason = "passes the gate" if promote else "held back: accuracy fell below the deployed"
        store.judge_version(v, promote, reason, fleet)
        timings = {f"secagg_{s}": 0.5 + rng.random() for s in STAGES}
        timings.update(export=2.0, evaluate=1.5, total=9.0, **({"deploy": 0.3} if promote else {}))
        store.finish_round(rid, True, reason, new_version=v, survivors=survivors, timings=timings)
        (promoted if promote else held).append(v)
        base = v
    store.close()
    return {
        "tokens": tokens,
        "promoted": promoted,
        "held": held,
        "aborted_rounds": aborted,
        "authority": authority,
    }
